//! Replacing the owner key: checking a rotation (the new key, its wrapped copy and verifier,
//! the new key's proof, the key statement, the record signature and the credentials bound again
//! by the new key) and the transaction that makes the new key the owner and revokes every
//! credential that was not bound again (and, from the command line, binds the node key again).

use std::collections::{HashMap, HashSet};

use serde_json::json;

use subtle::ConstantTimeEq;

use super::InternalError;
use super::attempts::{AttemptLedger, Windows};
use super::challenge::{Challenges, Purpose};
use super::claim::{check_new_key_proof, check_record, verifier_hash};
use super::credentials::{
    BINDING_TYPE, CredentialKind, CredentialRegistry, binding_digest, check_row, verify_binding,
};
use super::encryption_keys::{self, NewEncryptionKey, RewrappedKey};
use super::key_history::{self, Reason, SignedRecord};
use super::throttle::Scope;
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::jwe::WrappedKey;
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use crate::jose::jws::{self, VerifyingKey};
use crate::store::credentials::{self as rows, CredentialRow};
use crate::store::{Store, StoreError, owner};

/// The `typ` of the new key's proof.
pub const PROOF_TYPE: &str = "siteid-rotate+jwt";

/// Why a rotation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("this node has no owner yet")]
    NotClaimed,
    #[error(
        "this node has no key history yet (it was claimed before key histories); a password \
         change from the browser signs it"
    )]
    NoHistory,
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the owner key or the credentials changed while the rotation was checked")]
    Conflict,
    #[error("the old unlock verifier is wrong")]
    WrongVerifier,
    #[error("too many failed unlocks")]
    Throttled { retry_after: i64, scope: Scope },
    #[error("the owner record fails its check; restore a backup or restore from shares")]
    RecordInvalid,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for RotationError {
    fn from(error: StoreError) -> Self {
        RotationError::Internal(InternalError(error))
    }
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> RotationError {
    RotationError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// A rotation as received.
#[derive(Debug, Clone, Copy)]
pub struct RotationRequest<'a> {
    /// The new public JWK as JSON.
    pub public_key_json: &'a str,
    pub wrapped_key: &'a str,
    pub unlock_verifier: &'a str,
    /// The current password's verifier: required for a reset, whose only other authority is
    /// the session; checked, and counted as an unlock, whenever it is sent.
    pub old_unlock_verifier: Option<&'a str>,
    /// The new key's proof over a fresh challenge; `None` from the command line, which made the
    /// key itself on the server.
    pub proof: Option<&'a str>,
    pub statement: &'a str,
    pub bindings: &'a [String],
    pub record: &'a str,
    /// Every stored encryption key, wrapped and bound again by the new key (a reset may leave
    /// out those it cannot open; they are deleted).
    pub encryption_keys: &'a [RewrappedKey<'a>],
    /// A new current encryption key, bound by the new key.
    pub encryption_key: Option<NewEncryptionKey<'a>>,
}

/// What checking a rotation needs from the node.
pub struct RotationContext<'a> {
    pub store: &'a Store,
    pub attempts: &'a AttemptLedger,
    pub credentials: &'a CredentialRegistry,
    pub challenges: &'a Challenges,
    pub audience: &'a str,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub old_kid: String,
    pub new_kid: String,
    pub seq: u32,
    pub reason: Reason,
    /// The credentials bound again by the new key.
    pub rebound: Vec<String>,
    /// The credentials revoked because they were not bound again.
    pub revoked: Vec<String>,
    /// The passkeys whose PRF copy of the old key was deleted: they no longer unlock a new
    /// device until they are registered again.
    pub dropped_passkey_unlocks: Vec<String>,
    /// The encryption keys a reset deleted (it could not open them again).
    pub dropped_encryption_keys: Vec<String>,
}

/// The new owner key's binding of the node key, stored in the rotation's own transaction (the
/// command line, which holds both keys), so that the node key stays published.
#[derive(Debug, Clone, Copy)]
pub struct NodeKeyRebinding<'a> {
    pub node_kid: &'a str,
    pub binding: &'a str,
}

/// Checks a rotation and makes the new key the owner: JWKS, DID and key history show it at
/// once, the old key signs nothing in any more, and credentials not bound again are revoked.
/// The caller ends the sessions of the old owner credential and of the revoked ones.
pub async fn rotate(
    context: &RotationContext<'_>,
    request: RotationRequest<'_>,
    session_id: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Rotated, RotationError> {
    rotate_binding_node_key(context, request, None, session_id, actor, now).await
}

/// [`rotate`], also storing the new owner key's binding of the node key in the same
/// transaction when one is given (checked first: by the new key, for this node, fresh).
pub async fn rotate_binding_node_key(
    context: &RotationContext<'_>,
    request: RotationRequest<'_>,
    node_key: Option<NodeKeyRebinding<'_>>,
    session_id: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Rotated, RotationError> {
    let new_key =
        OwnerPublicKey::from_json(request.public_key_json).map_err(|e| invalid("public_key", e))?;
    let new_kid = new_key.thumbprint();
    let wrapped = WrappedKey::parse(request.wrapped_key).map_err(|e| invalid("wrapped_key", e))?;
    if wrapped.kid() != Some(new_kid.as_str()) {
        return Err(invalid(
            "wrapped_key",
            "must name the new key (public_key) in its kid header",
        ));
    }
    let new_hash =
        verifier_hash(request.unlock_verifier).map_err(|e| invalid("unlock_verifier", e))?;
    let old_hash = request
        .old_unlock_verifier
        .map(verifier_hash)
        .transpose()
        .map_err(|e| invalid("old_unlock_verifier", e))?;
    // Rows another process wrote since the last load are checked before anything is decided.
    context
        .credentials
        .refresh_if_changed(context.store, now)
        .await?;
    if context.credentials.has_record_problem() {
        return Err(RotationError::RecordInvalid);
    }
    let old_key = context
        .credentials
        .owner_key(context.store, now)
        .await?
        .ok_or(RotationError::NotClaimed)?;
    let taken_kid = new_kid.clone();
    let (history, live, kid_taken) = context
        .store
        .run(move |c| {
            let (_, kid_taken) = rows::taken(c, &taken_kid, &taken_kid)?;
            Ok::<_, StoreError>((owner::history(c)?, rows::live(c)?, kid_taken))
        })
        .await?;
    if history.is_empty() {
        return Err(RotationError::NoHistory);
    }
    if history.iter().any(|row| row.kid == new_kid) {
        return Err(invalid(
            "public_key",
            "is, or was, an owner key of this node; make a new key",
        ));
    }
    if kid_taken {
        return Err(invalid(
            "public_key",
            "is, or was, the key of a credential of this node; make a new key",
        ));
    }
    if history.len() >= key_history::MAX_KEYS {
        return Err(invalid("statement", "would make the key history too long"));
    }
    let seq = history.len() as u32;
    let proof_nonce = request
        .proof
        .map(|proof| check_new_key_proof(proof, PROOF_TYPE, &new_key, context.audience, now))
        .transpose()
        .map_err(|e| invalid("proof", e))?;
    let statement =
        key_history::verify_statement(request.statement, &new_key, Some(&old_key.public), seq)
            .and_then(|checked| {
                key_history::check_recent(checked.iat, now)?;
                Ok(checked)
            })
            .map_err(|e| invalid("statement", e))?;
    // Over HTTP a reset needs the password: without the old key, a session alone must not be
    // enough. The command line's authority is the data directory itself (as for `init`).
    let over_http = request.proof.is_some();
    if statement.reason == Reason::Reset && old_hash.is_none() && over_http {
        return Err(invalid(
            "old_unlock_verifier",
            "is required for a reset: without the old key, the password is its authority",
        ));
    }
    let signed = SignedRecord {
        key: &new_key,
        wrapped_key: wrapped.compact(),
        verifier_hash: &new_hash,
    };
    check_record(request.record, signed, context.audience, now)
        .map_err(|e| invalid("record", e))?;
    let new_verifying = VerifyingKey::new(new_key.clone());
    // Only rows that passed their check against the old key may be bound again: a row someone
    // wrote into the database must not be laundered into a binding by the new key.
    let checked: Vec<CredentialRow> = live
        .iter()
        .filter(|row| context.credentials.get(&row.id).is_some())
        .cloned()
        .collect();
    let rebound = check_bindings(
        request.bindings,
        &checked,
        &old_key.kid,
        &new_verifying,
        now,
    )?;
    if let Some(rebinding) = node_key {
        let iat = crate::jose::node_key::check_binding(
            rebinding.binding,
            &new_verifying,
            context.audience,
            rebinding.node_kid,
        )
        .map_err(|e| invalid("node_key_binding", e))?;
        if (iat - now).abs() > super::node_key::BINDING_FRESHNESS {
            return Err(invalid("node_key_binding", "is not fresh"));
        }
    }
    let node_key =
        node_key.map(|rebinding| (rebinding.node_kid.to_owned(), rebinding.binding.to_owned()));
    let encryption_changes = encryption_keys::check_rotation(
        &context.credentials.encryption_keys(),
        request.encryption_keys,
        request.encryption_key,
        &new_verifying,
        statement.reason,
        now,
    )
    .map_err(|e| invalid(e.field, e.message))?;
    if let Some(nonce) = proof_nonce {
        context
            .challenges
            .redeem(&nonce, now, Purpose::Rest)
            .map_err(|e| invalid("proof", format!("has a nonce that {e}")))?;
    }
    // The old verifier counts as an unlock, in every window when it is wrong. Before it is
    // judged, a reset (the password its only proof) must find room in every window, as a
    // password unlock does; a rotation signed by the old key only in the client's.
    let windows = if statement.reason == Reason::Reset {
        Windows::All
    } else {
        Windows::Client
    };
    let attempt = match old_hash {
        Some(_) => Some(
            context
                .attempts
                .begin_unlock(actor, windows, now)
                .map_err(|(retry_after, scope)| RotationError::Throttled { retry_after, scope })?,
        ),
        None => None,
    };

    let old_kid = old_key.kid.clone();
    let next_jwk = new_key.to_json();
    let wrapped_key = wrapped.compact().to_owned();
    let record = request.record.to_owned();
    let statement_text = request.statement.to_owned();
    let reason = statement.reason;
    let session_id = session_id.map(str::to_owned);
    let transaction_actor = actor.clone();
    let rotated_kid = new_kid.clone();
    let outcome = context
        .store
        .run(move |c| -> Result<Rotated, RotationError> {
            let tx = c.transaction().map_err(StoreError::from)?;
            let current = owner::find(&tx)?.ok_or(RotationError::NotClaimed)?;
            if current.kid != old_kid || owner::history_len(&tx)? != i64::from(seq) {
                return Err(RotationError::Conflict);
            }
            if let Some(old_hash) = old_hash
                && !bool::from(old_hash.ct_eq(&current.verifier_hash))
            {
                return Err(RotationError::WrongVerifier);
            }
            if rows::taken(&tx, &rotated_kid, &rotated_kid)?.1 {
                return Err(RotationError::Conflict);
            }
            let live_now: HashMap<String, CredentialRow> = rows::live(&tx)?
                .into_iter()
                .map(|row| (row.id.clone(), row))
                .collect();
            for (checked, _) in rebound.values() {
                if live_now.get(&checked.id) != Some(checked) {
                    return Err(RotationError::Conflict);
                }
            }
            owner::replace_owner_key(
                &tx,
                &owner::NextOwnerKey {
                    kid: &rotated_kid,
                    public_jwk: &next_jwk,
                    wrapped_key: &wrapped_key,
                    verifier_hash: &new_hash,
                    record_signature: &record,
                },
                now,
            )?;
            // The old key's credential is revoked: what it approved for other sites goes too.
            audit::revoke_grants_of_credential(&tx, &old_kid, now, &transaction_actor)?;
            owner::append_history(
                &tx,
                &owner::HistoryRow {
                    seq: i64::from(seq),
                    kid: rotated_kid.clone(),
                    public_jwk: next_jwk.clone(),
                    since: now,
                    statement: statement_text,
                },
            )?;
            let mut rebound_ids = Vec::new();
            let mut revoked_ids = Vec::new();
            let mut others: Vec<&CredentialRow> = live_now
                .values()
                .filter(|row| row.kind != CredentialKind::Owner.as_str())
                .collect();
            // Credentials another credential approved keep that binding while their approver
            // is bound again: the owner key never vouched for them directly.
            others.sort_by_key(|row| (approver_kid(row, &old_kid).is_some(), row.id.clone()));
            let rebound_kids: HashSet<String> =
                rebound.values().map(|(row, _)| row.kid.clone()).collect();
            for row in others {
                let kept_by_approver = approver_kid(row, &old_kid)
                    .is_some_and(|approver| rebound_kids.contains(&approver));
                if kept_by_approver {
                    continue;
                }
                if let Some((_, binding)) = rebound.get(&row.id) {
                    let updated = CredentialRow {
                        binding: Some(binding.clone()),
                        updated_at: now,
                        ..row.clone()
                    };
                    rows::update(&tx, &updated)?;
                    let event = AuditEvent::CredentialRebound {
                        credential_id: row.id.clone(),
                        kid: row.kid.clone(),
                        binding_sha256: binding_digest(Some(binding)),
                    };
                    audit::append(&tx, now, &event, &transaction_actor)?;
                    rebound_ids.push(row.id.clone());
                } else {
                    rows::revoke(&tx, &row.id, now)?;
                    let event = AuditEvent::CredentialRevoked {
                        credential_id: row.id.clone(),
                        kid: row.kid.clone(),
                    };
                    audit::append(&tx, now, &event, &transaction_actor)?;
                    audit::revoke_grants_of_credential(&tx, &row.id, now, &transaction_actor)?;
                    revoked_ids.push(row.id.clone());
                }
            }
            // PRF copies hold the old key: they go, and the owner is told which passkeys no
            // longer unlock a new device.
            let dropped = crate::store::passkeys::forget_every_wrapped_copy(&tx, now)?;
            if !dropped.is_empty() {
                let event = AuditEvent::PasskeyWrappedKeysDropped {
                    credential_ids: dropped.clone(),
                    reason: "rotated",
                };
                audit::append(&tx, now, &event, &transaction_actor)?;
            }
            if !encryption_keys::apply_rotation(
                &tx,
                &encryption_changes,
                &rotated_kid,
                &transaction_actor,
                now,
            )? {
                return Err(RotationError::Conflict);
            }
            if let Some((node_kid, binding)) = &node_key {
                super::node_key::store_binding(
                    &tx,
                    node_kid,
                    &rotated_kid,
                    binding,
                    &transaction_actor,
                    now,
                )?;
            }
            let event = AuditEvent::OwnerRotated {
                old: old_kid.clone(),
                new: rotated_kid.clone(),
                seq,
                reason: reason.as_str(),
                session_id,
                rebound: rebound_ids.len(),
                revoked: revoked_ids.clone(),
            };
            audit::append(&tx, now, &event, &transaction_actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(Rotated {
                old_kid,
                new_kid: rotated_kid,
                seq,
                reason,
                rebound: rebound_ids,
                revoked: revoked_ids,
                dropped_passkey_unlocks: dropped,
                dropped_encryption_keys: encryption_changes.dropped.clone(),
            })
        })
        .await;
    if let Some(attempt) = attempt {
        match &outcome {
            Ok(_) => attempt.succeeded(),
            Err(RotationError::WrongVerifier) => {
                attempt.failed(actor, "wrong_old_verifier", Windows::All);
            }
            Err(_) => attempt.abandoned(),
        }
    }
    let rotated = outcome?;
    context.credentials.reload(context.store, now).await?;
    Ok(rotated)
}

/// The credentials each binding binds again, by id, with the binding: each must be one of
/// `live` (the checked live credentials) and the new key's fresh signature over exactly its
/// current fields.
fn check_bindings(
    bindings: &[String],
    live: &[CredentialRow],
    old_owner_kid: &str,
    new_key: &VerifyingKey,
    now: i64,
) -> Result<HashMap<String, (CredentialRow, String)>, RotationError> {
    let others: HashMap<&str, &CredentialRow> = live
        .iter()
        .filter(|row| row.kind != CredentialKind::Owner.as_str())
        .map(|row| (row.id.as_str(), row))
        .collect();
    if bindings.len() > others.len() {
        return Err(invalid(
            "bindings",
            "has more bindings than there are credentials to bind again",
        ));
    }
    let mut seen = HashSet::new();
    let mut rebound = HashMap::new();
    for (index, binding) in bindings.iter().enumerate() {
        let at = |message: String| invalid("bindings", format!("[{index}] {message}"));
        let claims = verify_binding(binding, new_key)
            .map_err(|e| at(format!("{e} (it must be signed by the new key)")))?;
        key_history::check_recent(claims.iat as f64, now).map_err(&at)?;
        let Some(row) = others.get(claims.jti.as_str()) else {
            return Err(at(
                "binds a credential that is not live, or whose stored row fails its check (jti)"
                    .into(),
            ));
        };
        if !seen.insert(row.id.clone()) {
            return Err(at("binds a credential a second time".into()));
        }
        if approver_kid(row, old_owner_kid).is_some() {
            return Err(at(
                "binds a credential another credential approved: it keeps its approver's binding"
                    .into(),
            ));
        }
        let candidate = CredentialRow {
            binding: Some(binding.clone()),
            ..(*row).clone()
        };
        check_row(&candidate, new_key).map_err(|e| {
            at(format!(
                "{e}: a rotation binds a credential again with its fields unchanged"
            ))
        })?;
        rebound.insert(row.id.clone(), ((*row).clone(), binding.clone()));
    }
    Ok(rebound)
}

/// The kid of the credential that approved `row` (pairing), when its binding is not the owner
/// key's.
pub fn approver_kid(row: &CredentialRow, owner_kid: &str) -> Option<String> {
    row.binding
        .as_deref()
        .and_then(super::credentials::binding_signer)
        .filter(|signer| signer != owner_kid)
}

/// A binding of `row`'s current fields by `owner_key` (the command line and tests; the browser
/// makes its own).
pub fn sign_rebinding(row: &CredentialRow, owner_key: &OwnerPrivateKey, now: i64) -> String {
    let capabilities: serde_json::Value =
        serde_json::from_str(&row.capabilities).unwrap_or_else(|_| json!([]));
    let networks: serde_json::Value =
        serde_json::from_str(&row.networks).unwrap_or_else(|_| json!([]));
    let mut claims = json!({
        "sub": row.kid,
        "kind": row.kind,
        "label": row.label,
        "cap": capabilities,
        "net": networks,
        "iat": now,
        "jti": row.id,
    });
    if let Some(at) = row.expires_at {
        claims["exp"] = json!(at);
    }
    jws::sign_es384(
        owner_key,
        &json!({"alg": "ES384", "typ": BINDING_TYPE, "kid": owner_key.public_key().thumbprint()}),
        &claims,
    )
}
