//! `/api/v1/credentials`: listing, adding, changing, resetting and revoking the keys that may
//! sign in. Every change carries the owner key's binding over the credential's fields.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::SignedIn;
use crate::auth::credential_changes::{self, CredentialChange, CredentialFields, NewCredential};
use crate::auth::credentials::{Capabilities, Capability};
use crate::auth::sessions::EndReason;
use crate::error::Problem;
use crate::store::credentials::{self as rows, CredentialRow};

/// A credential as the API shows it.
#[derive(Debug, Serialize)]
pub struct CredentialView {
    id: String,
    kind: String,
    label: String,
    alg: String,
    kid: String,
    capabilities: Capabilities,
    networks: Vec<String>,
    expires_at: Option<i64>,
    created_at: i64,
    last_used_at: Option<i64>,
    current: bool,
    /// The stored row fails its check (its binding, or what the audit log recorded): it cannot
    /// sign in, and a rotation does not bind it again.
    tampered: bool,
    /// A passkey's WebAuthn details.
    #[serde(skip_serializing_if = "Option::is_none")]
    passkey: Option<PasskeyView>,
    /// The credential that approved this one with its own key (pairing), by id; `null` for a
    /// credential the owner key bound. A rotation leaves its binding as it is.
    approved_by: Option<String>,
}

/// What the API shows of a passkey besides its credential fields.
#[derive(Debug, Serialize)]
pub struct PasskeyView {
    aaguid: Option<String>,
    /// The authenticator's name where its AAGUID is known.
    authenticator: Option<&'static str>,
    sign_count: u32,
    backup_eligible: bool,
    backed_up: bool,
    /// Whether it holds a PRF copy of the current owner key (it unlocks a new device).
    unlocks: bool,
}

/// The views of `rows`, with each passkey's WebAuthn details.
pub(super) async fn view_with_passkeys(
    state: &AppState,
    stored: Vec<CredentialRow>,
    current: &str,
) -> Result<Vec<CredentialView>, Problem> {
    let (passkeys, owner_kid) = state
        .store
        .run(|c| {
            let passkeys = crate::store::passkeys::live(c)?;
            let owner_kid = crate::store::owner::find(c)?.map(|o| o.kid);
            Ok::<_, crate::store::StoreError>((passkeys, owner_kid))
        })
        .await
        .map_err(|e| Problem::internal(&e))?;
    let ids_by_kid: std::collections::HashMap<String, String> = stored
        .iter()
        .map(|row| (row.kid.clone(), row.id.clone()))
        .collect();
    let mut passkeys: std::collections::HashMap<String, crate::store::passkeys::PasskeyRow> =
        passkeys
            .into_iter()
            .map(|p| (p.credential_id.clone(), p))
            .collect();
    Ok(stored
        .into_iter()
        .map(|row| {
            let tampered = state.credentials.get(&row.id).is_none();
            let passkey = passkeys.remove(&row.id).map(|p| PasskeyView {
                authenticator: p
                    .aaguid
                    .as_deref()
                    .and_then(crate::auth::passkeys::authenticator_name),
                aaguid: p.aaguid,
                sign_count: p.sign_count,
                backup_eligible: p.backup_eligible,
                backed_up: p.backed_up,
                unlocks: p.prf_kid.is_some() && p.prf_kid == owner_kid,
            });
            let approved_by = owner_kid.as_deref().and_then(|owner_kid| {
                crate::auth::rotation::approver_kid(&row, owner_kid)
                    .map(|kid| ids_by_kid.get(&kid).cloned().unwrap_or(kid))
            });
            CredentialView {
                tampered,
                passkey,
                approved_by,
                ..CredentialView::of(row, current)
            }
        })
        .collect())
}

impl CredentialView {
    pub fn of(row: CredentialRow, current_credential: &str) -> Self {
        CredentialView {
            current: row.id == current_credential,
            capabilities: Capabilities::from_json(&row.capabilities).unwrap_or_default(),
            networks: serde_json::from_str(&row.networks).unwrap_or_default(),
            id: row.id,
            kind: row.kind,
            label: row.label,
            alg: row.alg,
            kid: row.kid,
            expires_at: row.expires_at,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            tampered: false,
            passkey: None,
            approved_by: None,
        }
    }
}

/// `GET /api/v1/credentials` (capability `credentials`) → `{"credentials":[...]}`: the owner
/// key first, then the others oldest first.
pub async fn list(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Credentials)?;
    state
        .credentials
        .refresh_if_changed(&state.store, state.clock.now())
        .await
        .map_err(|e| Problem::internal(&e))?;
    let stored = state
        .store
        .run(|c| rows::live(c))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let credentials = view_with_passkeys(&state, stored, &signed_in.session.credential_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "credentials": credentials })))
}

/// The request to add a credential. `public_key` is kept as raw JSON so that the JWK parser
/// sees (and refuses) duplicate members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCredentialBody {
    id: String,
    kind: String,
    label: String,
    public_key: Box<RawValue>,
    capabilities: Vec<String>,
    networks: Vec<String>,
    expires_at: Option<i64>,
    binding: String,
}

/// `POST /api/v1/credentials` (capability `credentials`, step-up) → 201 the credential; 409
/// when its kid (or id) is already registered; 422 naming the field at fault.
pub async fn create(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<NewCredentialBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    signed_in.require_step_up(now)?;
    let input = NewCredential {
        id: body.id,
        kind: body.kind,
        public_key_json: body.public_key.get().to_owned(),
        fields: CredentialFields {
            label: body.label,
            capabilities: body.capabilities,
            networks: body.networks,
            expires_at: body.expires_at,
        },
        binding: body.binding,
        passkey: None,
        approves_request: None,
        gated: true,
    };
    let row = credential_changes::add(
        &state.store,
        &state.credentials,
        input,
        &client.actor(),
        now,
    )
    .await?;
    let view = CredentialView::of(row, &signed_in.session.credential_id);
    Ok(HttpResponse::Created().json(view))
}

/// A present-but-null member reads as `Some(None)`, a missing one as `None`.
fn nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

/// The request to change a credential.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    networks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    expires_at: Option<Option<i64>>,
    binding: String,
}

/// Ends the sessions of a credential whose key or grants changed; their sockets close.
async fn end_sessions(
    state: &AppState,
    credential_id: &str,
    client: &Client,
    now: i64,
) -> Result<(), Problem> {
    state
        .sessions
        .end_for_credential(
            &state.store,
            credential_id,
            EndReason::Revoked,
            &client.actor(),
            now,
        )
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(())
}

/// `PATCH /api/v1/credentials/{id}` (capability `credentials`, step-up) → 200 the credential.
/// A change of capabilities, networks or expiry ends the credential's sessions.
pub async fn change(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
    StrictJson(body): StrictJson<ChangeBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    signed_in.require_step_up(now)?;
    let change = CredentialChange {
        label: body.label,
        capabilities: body.capabilities,
        networks: body.networks,
        expires_at: body.expires_at,
        binding: body.binding,
    };
    let changed = credential_changes::change(
        &state.store,
        &state.credentials,
        &id,
        change,
        &client.actor(),
        now,
    )
    .await?;
    if changed.ends_sessions {
        end_sessions(&state, &id, &client, now).await?;
    }
    let view = CredentialView::of(changed.row, &signed_in.session.credential_id);
    Ok(HttpResponse::Ok().json(view))
}

/// The request to reset a credential's key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    public_key: Box<RawValue>,
    binding: String,
}

/// `PUT /api/v1/credentials/{id}/key` (capability `credentials`, step-up) → 200 the
/// credential with its new key; the old key's sessions end.
pub async fn reset(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
    StrictJson(body): StrictJson<ResetBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    signed_in.require_step_up(now)?;
    let changed = credential_changes::reset(
        &state.store,
        &state.credentials,
        &id,
        body.public_key.get(),
        &body.binding,
        &client.actor(),
        now,
    )
    .await?;
    end_sessions(&state, &id, &client, now).await?;
    let view = CredentialView::of(changed.row, &signed_in.session.credential_id);
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/v1/credentials/{id}` (capability `credentials`, step-up) → 204; its sessions
/// end and its sockets close. The owner key is 409.
pub async fn revoke(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    signed_in.require_step_up(now)?;
    credential_changes::revoke(&state.store, &state.credentials, &id, &client.actor(), now).await?;
    end_sessions(&state, &id, &client, now).await?;
    Ok(HttpResponse::NoContent().finish())
}
