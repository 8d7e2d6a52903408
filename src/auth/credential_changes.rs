//! Adding, changing, resetting and revoking credentials: reading a request's fields, checking
//! the owner's binding against every one of them, and the transactions that store the change.
//! The node never holds the owner's private key: the browser or the command line makes the
//! binding, and the node only checks it with the owner's public key.

use std::collections::BTreeSet;

use super::InternalError;
use super::credentials::{
    BINDING_TYPE, BindingClaims, Capabilities, Capability, CredentialKind, CredentialRegistry,
    binding_digest, verify_binding,
};
use super::key_history::check_recent;
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::jose::jws::{CompactJws, VerifyingKey};
use crate::keys::{JwsAlgorithm, PublicKey};
use crate::net::IpNetwork;
use crate::recovery::sets::label_problem;
use crate::store::credentials::{self as rows, CredentialRow};
use crate::store::{Store, StoreError};

/// Random bytes a credential id holds at least (128 bits), and at most.
pub const MIN_ID_BYTES: usize = 16;
pub const MAX_ID_BYTES: usize = 64;
/// Live credentials a node keeps at most, the owner key included (a rotation binds each again
/// in one request).
pub const MAX_LIVE_CREDENTIALS: usize = 500;
/// Networks a credential may name.
pub const MAX_NETWORKS: usize = 32;

/// Why a credential change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("this node has no owner yet")]
    NotClaimed,
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a credential with this {0} is already registered")]
    Exists(&'static str),
    #[error("there is no live credential with this id")]
    NotFound,
    #[error("the owner key cannot be changed or revoked here")]
    OwnerCredential,
    #[error("the owner key changed while the change was checked")]
    OwnerKeyChanged,
    #[error("this node already has {MAX_LIVE_CREDENTIALS} live credentials")]
    TooMany,
    #[error("the enrollment request was answered or ran out meanwhile")]
    RequestAnswered,
    #[error("enrollment is closed")]
    EnrollmentClosed(super::enrollment::Gate),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for CredentialError {
    fn from(error: StoreError) -> Self {
        CredentialError::Internal(InternalError(error))
    }
}

pub(crate) fn invalid(field: &'static str, message: impl std::fmt::Display) -> CredentialError {
    CredentialError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// The fields a binding signs, as a request gives them (before checking).
#[derive(Debug, Clone)]
pub struct CredentialFields {
    pub label: String,
    pub capabilities: Vec<String>,
    pub networks: Vec<String>,
    pub expires_at: Option<i64>,
}

/// The fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckedFields {
    label: String,
    capabilities: Capabilities,
    networks: Vec<IpNetwork>,
    expires_at: Option<i64>,
}

fn check_fields(fields: &CredentialFields, now: i64) -> Result<CheckedFields, CredentialError> {
    if let Some(problem) = label_problem(&fields.label) {
        return Err(invalid("label", problem));
    }
    let capabilities = Capabilities::from_names(fields.capabilities.iter().map(String::as_str))
        .map_err(|e| invalid("capabilities", e))?;
    if fields.networks.len() > MAX_NETWORKS {
        return Err(invalid(
            "networks",
            format!("may name at most {MAX_NETWORKS} networks"),
        ));
    }
    let mut networks = Vec::new();
    for text in &fields.networks {
        let network = IpNetwork::parse(text)
            .map_err(|e| invalid("networks", format!("has {text:?}, which {e}")))?;
        if !networks.contains(&network) {
            networks.push(network);
        }
    }
    networks.sort();
    if let Some(at) = fields.expires_at
        && at <= now
    {
        return Err(invalid("expires_at", "must be in the future"));
    }
    Ok(CheckedFields {
        label: fields.label.clone(),
        capabilities,
        networks,
        expires_at: fields.expires_at,
    })
}

/// A credential's public key and the one algorithm it signs with.
pub(crate) struct CheckedKey {
    pub public: PublicKey,
    pub alg: JwsAlgorithm,
}

/// Reads a credential's public key: a JWK object (its `alg` member, if any, names the
/// algorithm), or a string holding a PEM SubjectPublicKeyInfo or an OpenSSH public key line
/// (RSA keys then sign RS256). The message completes "public_key ...".
pub(crate) fn check_public_key(json: &str) -> Result<CheckedKey, CredentialError> {
    let (public, named) = if json.trim_start().starts_with('"') {
        let text: String = serde_json::from_str(json)
            .map_err(|_| invalid("public_key", "is not a JSON string"))?;
        if text.trim_start().starts_with('{') {
            return Err(invalid(
                "public_key",
                "holds a JWK as a string; send it as a JSON object",
            ));
        }
        (
            PublicKey::from_text(&text).map_err(|e| invalid("public_key", e))?,
            None,
        )
    } else {
        PublicKey::from_jwk_json(json).map_err(|e| invalid("public_key", e))?
    };
    let alg = named.unwrap_or_else(|| public.default_algorithm());
    Ok(CheckedKey { public, alg })
}

pub(crate) fn check_id(id: &str) -> Result<(), CredentialError> {
    let bytes = b64::decode(id).map_err(|_| invalid("id", "must be base64url without padding"))?;
    if !(MIN_ID_BYTES..=MAX_ID_BYTES).contains(&bytes.len()) {
        return Err(invalid(
            "id",
            format!("must hold {MIN_ID_BYTES} to {MAX_ID_BYTES} random bytes"),
        ));
    }
    Ok(())
}

fn check_kind(kind: &str) -> Result<CredentialKind, CredentialError> {
    match kind {
        "device" => Ok(CredentialKind::Device),
        "key" => Ok(CredentialKind::Key),
        _ => Err(invalid("kind", "must be \"device\" or \"key\"")),
    }
}

/// Checks that `binding` is the owner key's fresh signature over exactly this credential, made
/// no earlier than the binding it replaces; the error names the request member that disagrees.
#[allow(clippy::too_many_arguments)]
fn check_binding(
    binding: &str,
    owner_key: &VerifyingKey,
    id: &str,
    kid: &str,
    kind: CredentialKind,
    fields: &CheckedFields,
    replacing: Option<&str>,
    now: i64,
) -> Result<BindingClaims, CredentialError> {
    let claims = verify_binding(binding, owner_key).map_err(|e| invalid("binding", e))?;
    // Fresh, so that a binding seen once (in a log, a backup, a request) cannot be sent again
    // later to undo a change.
    check_recent(claims.iat as f64, now).map_err(|e| invalid("binding", e))?;
    if let Some(previous) = replacing
        && let Ok(previous) = verify_binding(previous, owner_key)
        && claims.iat < previous.iat
    {
        return Err(invalid(
            "binding",
            "is older than the credential's current binding (iat)",
        ));
    }
    let disagrees =
        |field: &'static str| invalid(field, "does not agree with the binding's claims");
    if claims.jti != id {
        return Err(disagrees("id"));
    }
    if claims.sub != kid {
        return Err(disagrees("public_key"));
    }
    if claims.kind != kind.as_str() {
        return Err(disagrees("kind"));
    }
    if claims.label != fields.label {
        return Err(disagrees("label"));
    }
    if Capabilities::from_names(claims.cap.iter().map(String::as_str)).ok()
        != Some(fields.capabilities)
    {
        return Err(disagrees("capabilities"));
    }
    let bound: Option<BTreeSet<String>> = claims
        .net
        .iter()
        .map(|n| IpNetwork::parse(n).ok().map(|net| net.to_string()))
        .collect();
    let given: BTreeSet<String> = fields.networks.iter().map(ToString::to_string).collect();
    if bound != Some(given) {
        return Err(disagrees("networks"));
    }
    if claims.exp != fields.expires_at {
        return Err(disagrees("expires_at"));
    }
    Ok(claims)
}

fn networks_json(networks: &[IpNetwork]) -> String {
    let names: Vec<String> = networks.iter().map(ToString::to_string).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// A new credential as received.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub id: String,
    pub kind: String,
    /// The `public_key` member as raw JSON.
    pub public_key_json: String,
    pub fields: CredentialFields,
    pub binding: String,
    /// A passkey's WebAuthn state, stored beside its row; only for kind `passkey`, whose key,
    /// id and state the node took from a verified registration.
    pub passkey: Option<crate::store::passkeys::PasskeyRow>,
    /// The enrollment request this credential answers, marked approved in the same
    /// transaction.
    pub approves_request: Option<ApprovedRequest>,
    /// Whether the node's enrollment mode applies (`window` mode admits new credentials only
    /// while a window is open), checked again inside the transaction. The command line on the
    /// server, which holds the owner key, is not gated.
    pub gated: bool,
}

/// The enrollment request an added credential answers (pairing).
#[derive(Debug, Clone)]
pub struct ApprovedRequest {
    pub request_id: String,
    /// The approving session's credential.
    pub approver_id: String,
    /// The address the request came from, which a binding's `from` must name.
    pub requester_ip: String,
}

/// A change as received: the fields it leaves out keep their values; the binding covers the
/// result.
#[derive(Debug, Clone, Default)]
pub struct CredentialChange {
    pub label: Option<String>,
    pub capabilities: Option<Vec<String>>,
    pub networks: Option<Vec<String>>,
    /// `Some(None)` removes the expiry.
    pub expires_at: Option<Option<i64>>,
    pub binding: String,
}

/// What a change did, for the caller to end sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub row: CredentialRow,
    /// Whether the credential's sessions must end: its key, capabilities, networks or expiry
    /// changed.
    pub ends_sessions: bool,
}

async fn owner_key(
    registry: &CredentialRegistry,
    store: &Store,
    now: i64,
) -> Result<std::sync::Arc<VerifyingKey>, CredentialError> {
    registry
        .owner_key(store, now)
        .await?
        .ok_or(CredentialError::NotClaimed)
}

/// Checks and stores a new credential. Audited as `credential.added`.
pub async fn add(
    store: &Store,
    registry: &CredentialRegistry,
    input: NewCredential,
    actor: &Actor,
    now: i64,
) -> Result<CredentialRow, CredentialError> {
    let kind = match &input.passkey {
        Some(_) => CredentialKind::Passkey,
        None => {
            check_id(&input.id)?;
            check_kind(&input.kind)?
        }
    };
    let key = check_public_key(&input.public_key_json)?;
    let fields = check_fields(&input.fields, now)?;
    let kid = key.public.thumbprint();
    let owner = owner_key(registry, store, now).await?;
    // An approval (pairing) may carry the approving credential's own binding instead of the
    // owner key's: the approver then vouches, within what it holds itself.
    let approver = match &input.approves_request {
        Some(ApprovedRequest { approver_id, .. })
            if super::credentials::binding_signer(&input.binding)
                .is_some_and(|signer| signer != owner.kid) =>
        {
            Some(
                registry
                    .get(approver_id)
                    .ok_or_else(|| invalid("binding", "is by a credential that is not live"))?,
            )
        }
        _ => None,
    };
    let owner_claims = match approver {
        Some(_) => None,
        None => {
            let replacing = None;
            Some(check_binding(
                &input.binding,
                &owner,
                &input.id,
                &kid,
                kind,
                &fields,
                replacing,
                now,
            )?)
        }
    };
    let row = CredentialRow {
        id: input.id,
        kid,
        kind: kind.as_str().into(),
        alg: key.alg.as_str().into(),
        public_key: key.public.to_jwk_json(),
        label: fields.label.clone(),
        capabilities: fields.capabilities.to_json(),
        networks: networks_json(&fields.networks),
        expires_at: fields.expires_at,
        binding: Some(input.binding),
        created_at: now,
        updated_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    let from = match (&approver, owner_claims) {
        (Some(approver), _) => {
            let (_, claims) = super::credentials::check_delegated(&row, approver).map_err(|e| {
                let e = e.replace(
                    "does not match its binding",
                    "does not agree with the approval's capabilities, networks and \
                         expires_at, or the request's kind, label, key and id",
                );
                invalid("binding", format!("is refused: the credential {e}"))
            })?;
            check_recent(claims.iat as f64, now).map_err(|e| invalid("binding", e))?;
            // An approver that is not the owner judges the request by what it was shown, the
            // requester's address among it: its binding must say which address it judged.
            if claims.from.is_none() {
                return Err(invalid(
                    "binding",
                    "by an approving credential must name the requester's address it judged \
                     (from)",
                ));
            }
            claims.from
        }
        (None, claims) => claims.and_then(|claims| claims.from),
    };
    // A binding that names the address it judged must name the request's: a relay that
    // rewrote the event cannot make the approver let in a request from elsewhere.
    if let (Some(from), Some(request)) = (&from, &input.approves_request)
        && *from != request.requester_ip
    {
        return Err(invalid(
            "binding",
            "names another requester address (from) than the request came from",
        ));
    }
    let approver_kid = approver.as_ref().map(|a| a.kid.clone());
    // The approver's row as the registry checked it, compared again inside the transaction.
    let approver_fields = approver.as_ref().map(|a| {
        (
            a.capabilities.to_json(),
            networks_json(&a.networks),
            a.expires_at,
        )
    });
    let actor = actor.clone();
    let stored = row.clone();
    let passkey = input.passkey;
    let approves_request = input.approves_request;
    let gated = input.gated;
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            match &approver_kid {
                None => check_bound_by_current_owner(&tx, row.binding.as_deref())?,
                // The approver must still be live when the row is written, and bound by the
                // owner key itself: an approved credential cannot approve others in turn.
                Some(kid) => {
                    let owner_kid = crate::store::owner::find(&tx)?.map(|record| record.kid);
                    // The approver as checked: a change made meanwhile (narrowed, reset) must
                    // not let in a credential it no longer vouches for.
                    let owner_bound = rows::live(&tx)?.iter().any(|r| {
                        &r.kid == kid
                            && r.binding
                                .as_deref()
                                .and_then(super::credentials::binding_signer)
                                == owner_kid
                            && approver_fields.as_ref().is_some_and(|fields| {
                                *fields
                                    == (r.capabilities.clone(), r.networks.clone(), r.expires_at)
                            })
                    });
                    if !owner_bound {
                        return Err(invalid(
                            "binding",
                            "is by a credential that is not live or was itself approved by \
                             another device (only credentials the owner key bound may approve)",
                        ));
                    }
                }
            }
            if gated {
                super::enrollment::admits_new_credential_in(&tx, now)?
                    .map_err(CredentialError::EnrollmentClosed)?;
            }
            if rows::live_count(&tx)? >= MAX_LIVE_CREDENTIALS {
                return Err(CredentialError::TooMany);
            }
            let (id_taken, kid_taken) = rows::taken(&tx, &row.id, &row.kid)?;
            if kid_taken {
                return Err(CredentialError::Exists("kid"));
            }
            if id_taken {
                return Err(CredentialError::Exists("id"));
            }
            rows::insert(&tx, &row)?;
            if let Some(passkey) = &passkey {
                crate::store::passkeys::insert(&tx, passkey)?;
            }
            if let Some(request) = &approves_request {
                let answered = crate::store::enrollment::answer(
                    &tx,
                    &request.request_id,
                    "approved",
                    Some(&request.approver_id),
                    now,
                )?;
                if !answered {
                    return Err(CredentialError::RequestAnswered);
                }
                let event = AuditEvent::EnrollmentApproved {
                    request_id: request.request_id.clone(),
                    approved_by: request.approver_id.clone(),
                    capabilities: row.capabilities.clone(),
                };
                audit::append(&tx, now, &event, &actor)?;
            }
            let event = AuditEvent::CredentialAdded {
                credential_id: row.id.clone(),
                kid: row.kid.clone(),
                kind: row.kind.clone(),
                alg: row.alg.clone(),
                binding_sha256: binding_digest(row.binding.as_deref()),
                capabilities: row.capabilities.clone(),
                networks: row.networks.clone(),
                expires_at: row.expires_at,
            };
            audit::append(&tx, now, &event, &actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        })
        .await?;
    registry.reload(store, now).await?;
    Ok(stored)
}

/// The live credential `id` that is not the owner key.
async fn changeable(store: &Store, id: &str) -> Result<CredentialRow, CredentialError> {
    let id = id.to_owned();
    let row = store
        .run(move |c| rows::find(c, &id))
        .await?
        .filter(|row| row.revoked_at.is_none())
        .ok_or(CredentialError::NotFound)?;
    if row.kind == CredentialKind::Owner.as_str() {
        return Err(CredentialError::OwnerCredential);
    }
    Ok(row)
}

fn stored_fields(row: &CredentialRow) -> CredentialFields {
    CredentialFields {
        label: row.label.clone(),
        capabilities: serde_json::from_str(&row.capabilities).unwrap_or_default(),
        networks: serde_json::from_str(&row.networks).unwrap_or_default(),
        expires_at: row.expires_at,
    }
}

fn row_kind(row: &CredentialRow) -> CredentialKind {
    CredentialKind::parse(&row.kind).unwrap_or(CredentialKind::Key)
}

/// Changes a credential's label, capabilities, networks or expiry under a new binding.
/// Audited as `credential.changed`.
pub async fn change(
    store: &Store,
    registry: &CredentialRegistry,
    id: &str,
    change: CredentialChange,
    actor: &Actor,
    now: i64,
) -> Result<Changed, CredentialError> {
    let current = changeable(store, id).await?;
    let mut fields = stored_fields(&current);
    if let Some(label) = change.label {
        fields.label = label;
    }
    if let Some(capabilities) = change.capabilities {
        fields.capabilities = capabilities;
    }
    if let Some(networks) = change.networks {
        fields.networks = networks;
    }
    if let Some(expires_at) = change.expires_at {
        fields.expires_at = expires_at;
    }
    let checked = check_fields(&fields, now)?;
    let owner = owner_key(registry, store, now).await?;
    let kind = row_kind(&current);
    let replacing = current.binding.as_deref();
    check_binding(
        &change.binding,
        &owner,
        id,
        &current.kid,
        kind,
        &checked,
        replacing,
        now,
    )?;
    let row = CredentialRow {
        label: checked.label.clone(),
        capabilities: checked.capabilities.to_json(),
        networks: networks_json(&checked.networks),
        expires_at: checked.expires_at,
        binding: Some(change.binding),
        updated_at: now,
        ..current.clone()
    };
    let ends_sessions = row.capabilities != current.capabilities
        || row.networks != current.networks
        || row.expires_at != current.expires_at;
    store_change(
        store,
        registry,
        row.clone(),
        actor,
        now,
        ChangeKind::Changed,
    )
    .await?;
    Ok(Changed { row, ends_sessions })
}

/// Gives a credential a new key under a new binding; its id, label, capabilities, networks
/// and expiry stay. The old key's sessions must end. Audited as `credential.reset`.
pub async fn reset(
    store: &Store,
    registry: &CredentialRegistry,
    id: &str,
    public_key_json: &str,
    binding: &str,
    actor: &Actor,
    now: i64,
) -> Result<Changed, CredentialError> {
    let current = changeable(store, id).await?;
    if current.kind == CredentialKind::Passkey.as_str() {
        return Err(invalid(
            "public_key",
            "cannot be replaced on a passkey: its key lives in the authenticator; register \
             the authenticator again instead",
        ));
    }
    let key = check_public_key(public_key_json)?;
    let kid = key.public.thumbprint();
    // The stored fields were checked when they were bound; only the expiry can have passed, and
    // a credential past its expiry is changed (given a new expiry), not reset.
    let checked = check_fields(&stored_fields(&current), now)?;
    let owner = owner_key(registry, store, now).await?;
    let replacing = current.binding.as_deref();
    let kind = row_kind(&current);
    check_binding(binding, &owner, id, &kid, kind, &checked, replacing, now)?;
    let row = CredentialRow {
        kid,
        alg: key.alg.as_str().into(),
        public_key: key.public.to_jwk_json(),
        binding: Some(binding.to_owned()),
        updated_at: now,
        ..current
    };
    store_change(store, registry, row.clone(), actor, now, ChangeKind::Reset).await?;
    Ok(Changed {
        row,
        ends_sessions: true,
    })
}

/// Revokes a credential: its key can never sign in again. The caller ends its sessions.
/// Audited as `credential.revoked`.
pub async fn revoke(
    store: &Store,
    registry: &CredentialRegistry,
    id: &str,
    actor: &Actor,
    now: i64,
) -> Result<CredentialRow, CredentialError> {
    let current = changeable(store, id).await?;
    let actor = actor.clone();
    let revoked = current.clone();
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            if !rows::revoke(&tx, &revoked.id, now)? {
                return Err(CredentialError::NotFound);
            }
            let event = AuditEvent::CredentialRevoked {
                credential_id: revoked.id.clone(),
                kid: revoked.kid.clone(),
            };
            audit::append(&tx, now, &event, &actor)?;
            // What the credential approved for other sites goes with it, and the credentials it
            // approved here.
            audit::revoke_grants_of_credential(&tx, &revoked.id, now, &actor)?;
            revoke_approved_by(&tx, &revoked.kid, now, &actor)?;
            // A revoked passkey's copy of the owner key goes with it.
            if crate::store::passkeys::forget_wrapped_copy(&tx, &revoked.id, now)? {
                let event = AuditEvent::PasskeyWrappedKeysDropped {
                    credential_ids: vec![revoked.id.clone()],
                    reason: "revoked",
                };
                audit::append(&tx, now, &event, &actor)?;
            }
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        })
        .await?;
    registry.reload(store, now).await?;
    Ok(current)
}

/// Revokes the live credentials whose binding the credential with `approver_kid` made (an
/// approval in pairing), each audited as `credential.revoked`, with what they approved for
/// other sites.
fn revoke_approved_by(
    tx: &rusqlite::Connection,
    approver_kid: &str,
    now: i64,
    actor: &Actor,
) -> Result<(), StoreError> {
    for row in rows::live(tx)? {
        let approved = row
            .binding
            .as_deref()
            .and_then(super::credentials::binding_signer)
            .is_some_and(|signer| signer == approver_kid);
        if approved && rows::revoke(tx, &row.id, now)? {
            let event = AuditEvent::CredentialRevoked {
                credential_id: row.id.clone(),
                kid: row.kid.clone(),
            };
            audit::append(tx, now, &event, actor)?;
            audit::revoke_grants_of_credential(tx, &row.id, now, actor)?;
        }
    }
    Ok(())
}

/// Refuses a change whose binding names another key than the stored owner key: a rotation
/// landed while the change was checked, and the binding would no longer hold.
fn check_bound_by_current_owner(
    connection: &rusqlite::Connection,
    binding: Option<&str>,
) -> Result<(), CredentialError> {
    let signer = binding
        .and_then(|binding| CompactJws::parse(binding, BINDING_TYPE).ok())
        .and_then(|jws| jws.header.kid);
    let owner = crate::store::owner::find(connection)?.map(|record| record.kid);
    if signer.is_none() || signer != owner {
        return Err(CredentialError::OwnerKeyChanged);
    }
    Ok(())
}

/// Which change a stored row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Changed,
    Reset,
}

/// Stores a changed row (a change or a reset) with its audit entry, then reloads the registry.
async fn store_change(
    store: &Store,
    registry: &CredentialRegistry,
    row: CredentialRow,
    actor: &Actor,
    now: i64,
    what: ChangeKind,
) -> Result<(), CredentialError> {
    let actor = actor.clone();
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            check_bound_by_current_owner(&tx, row.binding.as_deref())?;
            // A new key for a credential is a new credential as far as `window` mode goes.
            if what == ChangeKind::Reset {
                super::enrollment::admits_new_credential_in(&tx, now)?
                    .map_err(CredentialError::EnrollmentClosed)?;
            }
            if what == ChangeKind::Reset {
                let (_, kid_taken) = rows::taken(&tx, "", &row.kid)?;
                if kid_taken {
                    return Err(CredentialError::Exists("kid"));
                }
            }
            let before = rows::live(&tx)?.into_iter().find(|r| r.id == row.id);
            if !rows::update(&tx, &row)? {
                return Err(CredentialError::NotFound);
            }
            // What this credential approved (pairing) was bound by its key within what it held:
            // a new key, or other capabilities, networks or expiry, revoke those credentials.
            if let Some(before) = before
                && (before.kid != row.kid
                    || before.capabilities != row.capabilities
                    || before.networks != row.networks
                    || before.expires_at != row.expires_at)
            {
                revoke_approved_by(&tx, &before.kid, now, &actor)?;
            }
            let event = match what {
                ChangeKind::Changed => AuditEvent::CredentialChanged {
                    credential_id: row.id.clone(),
                    capabilities: row.capabilities.clone(),
                    networks: row.networks.clone(),
                    expires_at: row.expires_at,
                    binding_sha256: binding_digest(row.binding.as_deref()),
                },
                ChangeKind::Reset => AuditEvent::CredentialReset {
                    credential_id: row.id.clone(),
                    kid: row.kid.clone(),
                    alg: row.alg.clone(),
                    binding_sha256: binding_digest(row.binding.as_deref()),
                },
            };
            audit::append(&tx, now, &event, &actor)?;
            let capabilities = Capabilities::from_json(&row.capabilities).unwrap_or_default();
            // A credential that may no longer approve sign-ins elsewhere loses what it approved;
            // so does one whose key was replaced (the old key may be in someone else's hands).
            if !capabilities.contains(Capability::Indieauth) || what == ChangeKind::Reset {
                audit::revoke_grants_of_credential(&tx, &row.id, now, &actor)?;
            }
            // A passkey that may no longer do all the owner key does keeps no copy of it.
            let owner_capable = capabilities.contains(Capability::Owner);
            if row.kind == CredentialKind::Passkey.as_str()
                && !owner_capable
                && crate::store::passkeys::forget_wrapped_copy(&tx, &row.id, now)?
            {
                let event = AuditEvent::PasskeyWrappedKeysDropped {
                    credential_ids: vec![row.id.clone()],
                    reason: "narrowed",
                };
                audit::append(&tx, now, &event, &actor)?;
            }
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        })
        .await?;
    registry.reload(store, now).await?;
    Ok(())
}
