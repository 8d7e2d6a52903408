//! `POST /api/v1/owner` (claiming an unclaimed node), `PUT /api/v1/owner/wrapped-key` (a
//! password change: a new wrapped key and verifier for the same key) and
//! `POST /api/v1/owner/rotate` (a new owner key).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::{SignedIn, SteppedUpOwner};
use crate::auth::claim::{self, ClaimInput, ClaimVia};
use crate::auth::credentials::Capability;
use crate::auth::encryption_keys::{NewEncryptionKey, RewrappedKey};
use crate::auth::rotation::{self, RotationContext, RotationRequest};
use crate::auth::sessions::EndReason;
use crate::auth::unlock::{self, Rewrap};
use crate::error::Problem;

/// The claim request. `public_key` is kept as raw JSON so that the JWK parser sees (and
/// refuses) duplicate members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    claim_token: String,
    public_key: Box<RawValue>,
    wrapped_key: String,
    unlock_verifier: String,
    proof: String,
    /// Set when the key was rebuilt from recovery shares: the set id, for the audit log.
    #[serde(default)]
    recovery_set: Option<String>,
    /// The genesis key statement (`siteid-key-statement+jwt`), with `record`.
    #[serde(default)]
    statement: Option<String>,
    /// The owner key's `siteid-owner-record+jwt` over the record, with `statement`.
    #[serde(default)]
    record: Option<String>,
    /// The first encryption key, made with the owner key.
    #[serde(default)]
    encryption_key: Option<EncryptionKeyBody>,
}

/// A new encryption key as the owner's client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyBody {
    /// The public JWK (P-384).
    pub public_key: Box<RawValue>,
    /// The private JWK as an `A256KW` JWE under the owner key's encryption KEK.
    pub wrapped_key: String,
    /// The owner key's `siteid-enc-key+jwt`.
    pub binding: String,
}

impl EncryptionKeyBody {
    /// The key as the checks read it.
    pub fn as_new(&self) -> NewEncryptionKey<'_> {
        NewEncryptionKey {
            public_key_json: self.public_key.get(),
            wrapped_key: &self.wrapped_key,
            binding: &self.binding,
        }
    }
}

/// 201 `{"kid"}`; 403 once claimed; 401 for a wrong token; 422 naming the field at fault.
pub async fn claim(
    state: web::Data<AppState>,
    client: Client,
    StrictJson(body): StrictJson<ClaimBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let actor = client.actor();
    claim::check_state(
        &state.store,
        &body.claim_token,
        &actor,
        &state.attempts,
        now,
    )
    .await?;
    let checked = claim::check(
        &ClaimInput {
            claim_token: &body.claim_token,
            public_key_json: body.public_key.get(),
            wrapped_key: &body.wrapped_key,
            unlock_verifier: &body.unlock_verifier,
            proof: &body.proof,
            recovery_set: body.recovery_set.as_deref(),
            statement: body.statement.as_deref(),
            record: body.record.as_deref(),
            encryption_key: body.encryption_key.as_ref().map(EncryptionKeyBody::as_new),
        },
        state.public_url.as_str(),
        now,
    )?;
    let token = body.claim_token;
    let configured = state.enrollment.configured_mode();
    let kid = state
        .store
        .run(move |c| {
            claim::commit(
                c,
                Some(&token),
                &checked,
                ClaimVia::Http,
                configured,
                &actor,
                now,
            )
        })
        .await?;
    tracing::info!(kid = %kid, "node claimed");
    Ok(HttpResponse::Created().json(serde_json::json!({ "kid": kid })))
}

/// The password-change request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceWrappedKeyBody {
    wrapped_key: String,
    unlock_verifier: String,
    /// The verifier of the current password; absent only with `recovery_set`, when the
    /// password is what was lost.
    #[serde(default)]
    old_unlock_verifier: Option<String>,
    /// A `siteid-rewrap+jwt` signed by the owner key over a fresh challenge and the new members.
    proof: String,
    /// Set when the owner rebuilt the key from recovery shares: the change is audited as a
    /// recovery naming this set id.
    #[serde(default)]
    recovery_set: Option<String>,
    /// The owner key's `siteid-owner-record+jwt` over the new record; required once the node
    /// has a key history.
    #[serde(default)]
    record: Option<String>,
    /// A genesis key statement, from a node claimed before key histories.
    #[serde(default)]
    statement: Option<String>,
}

/// `PUT /api/v1/owner/wrapped-key` → 204. Needs a session within its step-up window, the owner
/// key's proof and the old verifier. With `recovery_set` it is audited as `owner.recovered`.
pub async fn replace_wrapped_key(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<ReplaceWrappedKeyBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Owner)?;
    signed_in.require_step_up(now)?;
    let context = state.rewrap_context();
    let request = Rewrap {
        wrapped_key: &body.wrapped_key,
        unlock_verifier: &body.unlock_verifier,
        old_unlock_verifier: body.old_unlock_verifier.as_deref(),
        proof: &body.proof,
        recovery_set: body.recovery_set.as_deref(),
        record: body.record.as_deref(),
        statement: body.statement.as_deref(),
    };
    unlock::replace_wrapped_key(
        &context,
        request,
        &signed_in.session.id,
        client.actor(),
        now,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The largest rotation request: room for a binding of every credential a node may hold
/// ([`crate::auth::credential_changes::MAX_LIVE_CREDENTIALS`], each binding at most about 3.5 KiB with its networks).
pub const MAX_ROTATION_BODY: usize = 2 * 1024 * 1024;

/// The rotation request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    public_key: Box<RawValue>,
    wrapped_key: String,
    unlock_verifier: String,
    /// The current password's verifier: required for a reset, checked whenever sent.
    #[serde(default)]
    old_unlock_verifier: Option<String>,
    /// A `siteid-rotate+jwt` by the new key over a fresh challenge.
    proof: String,
    /// The `siteid-key-statement+jwt` that introduces the new key.
    statement: String,
    /// The new key's bindings of the credentials to keep.
    bindings: Vec<String>,
    /// The new key's `siteid-owner-record+jwt` over the new record.
    record: String,
    /// Every encryption key, wrapped and bound again by the new key.
    #[serde(default)]
    encryption_keys: Vec<RewrappedKeyBody>,
    /// A new current encryption key, bound by the new key.
    #[serde(default)]
    encryption_key: Option<EncryptionKeyBody>,
    /// The new key's binding of the node key (`siteid-node-key+jwt`), stored in the rotation's
    /// own transaction so that the node key stays published throughout.
    #[serde(default)]
    node_key_binding: Option<String>,
}

/// An encryption key wrapped and bound again by a rotation's new key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewrappedKeyBody {
    kid: String,
    wrapped_key: String,
    binding: String,
}

/// `POST /api/v1/owner/rotate` (capability `owner`, step-up) → 200 `{"kid","seq","revoked"}`.
/// The sessions of the old owner key and of every credential not bound again end.
pub async fn rotate(
    state: web::Data<AppState>,
    client: Client,
    // Extracted before the body: only a stepped-up owner session may send a large one.
    SteppedUpOwner(signed_in): SteppedUpOwner,
    StrictJson(body): StrictJson<RotateBody, MAX_ROTATION_BODY>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let context = RotationContext {
        store: &state.store,
        attempts: &state.attempts,
        credentials: &state.credentials,
        challenges: &state.challenges,
        audience: state.public_url.as_str(),
    };
    let rewrapped: Vec<RewrappedKey<'_>> = body
        .encryption_keys
        .iter()
        .map(|key| RewrappedKey {
            kid: &key.kid,
            wrapped_key: &key.wrapped_key,
            binding: &key.binding,
        })
        .collect();
    let request = RotationRequest {
        public_key_json: body.public_key.get(),
        wrapped_key: &body.wrapped_key,
        unlock_verifier: &body.unlock_verifier,
        old_unlock_verifier: body.old_unlock_verifier.as_deref(),
        proof: Some(&body.proof),
        statement: &body.statement,
        bindings: &body.bindings,
        record: &body.record,
        encryption_keys: &rewrapped,
        encryption_key: body.encryption_key.as_ref().map(EncryptionKeyBody::as_new),
    };
    let actor = client.actor();
    let node_key = state.node_key.get();
    let rebinding = body
        .node_key_binding
        .as_deref()
        .map(|binding| rotation::NodeKeyRebinding {
            node_kid: node_key.kid(),
            binding,
        });
    let rotated = rotation::rotate_binding_node_key(
        &context,
        request,
        rebinding,
        Some(&signed_in.session.id),
        &actor,
        now,
    )
    .await?;
    // The binding cell follows the new owner key at once (the sweeper would within a second);
    // the rotation is done either way.
    if let Ok(Some(owner_key)) = state.credentials.owner_key(&state.store, now).await
        && let Err(error) = state
            .node_binding
            .reload(
                &state.store,
                &state.node_key,
                &owner_key,
                state.public_url.as_str(),
            )
            .await
    {
        tracing::warn!(%error, "reading the node key's binding after a rotation failed");
    }
    tracing::info!(old = %rotated.old_kid, new = %rotated.new_kid, "owner key rotated");
    for credential_id in std::iter::once(&rotated.old_kid).chain(&rotated.revoked) {
        state
            .sessions
            .end_for_credential(&state.store, credential_id, EndReason::Revoked, &actor, now)
            .await
            .map_err(|e| Problem::internal(&e))?;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "kid": rotated.new_kid,
        "seq": rotated.seq,
        "revoked": rotated.revoked,
        "dropped_passkey_unlocks": rotated.dropped_passkey_unlocks,
        "dropped_encryption_keys": rotated.dropped_encryption_keys,
    })))
}

/// `PUT /api/v1/node-key/binding` `{"binding"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeKeyBindingBody {
    binding: String,
}

/// `PUT /api/v1/node-key/binding` (capability `owner`) → 204: the owner key's binding of the
/// node key (`siteid-node-key+jwt`, claims exactly `aud`, `sub`, `iat`, fresh within 300 s),
/// audited as `node_key.bound`; 422 on `binding` when it does not hold.
pub async fn bind_node_key(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<NodeKeyBindingBody>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Owner)?;
    let now = state.clock.now();
    let owner_key = state
        .credentials
        .owner_key(&state.store, now)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(Problem::not_claimed)?;
    state
        .node_binding
        .bind(
            &state.store,
            crate::auth::node_key::BindingTarget {
                node_key: &state.node_key,
                owner_key: &owner_key,
                audience: state.public_url.as_str(),
            },
            body.binding,
            client.actor(),
            now,
        )
        .await
        .map_err(|e| match e {
            crate::auth::node_key::NodeBindingError::Invalid(reason) => {
                Problem::invalid_field("binding", format!("The binding {reason}."))
            }
            crate::auth::node_key::NodeBindingError::Store(e) => Problem::internal(&e),
        })?;
    Ok(HttpResponse::NoContent().finish())
}
