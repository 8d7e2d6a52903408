//! Unlocking from a new device and replacing the wrapped key: publishing the PBES2 parameters,
//! checking unlock verifiers in constant time under the throttle, one-time unlock codes, the
//! TOTP second factor, and the owner-key proof a password change needs.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::InternalError;
use super::attempts::{AttemptLedger, Windows};
use super::challenge::{Challenges, Purpose};
use super::claim::{check_genesis, check_record, checked_set_id, verifier_hash};
use super::credentials::CredentialRegistry;
use super::key_history::{self, SignedRecord};
use super::throttle::Scope;
use super::totp::{self, FactorError, SecondFactor, TotpVault};
use super::unlock_codes::{self, LiveCodes, UnlockCode};
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::jose::jwe::{KEY_ALG, WrappedKey};
use crate::jose::jws::{CompactJws, NumericDate, PROOF_LIFETIME};
use crate::store::{Store, StoreError, owner, totp as totp_rows};

/// The `typ` of the proof that a password change comes from the owner key.
pub const REWRAP_TYPE: &str = "siteid-rewrap+jwt";

/// Why an unlock or a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("this node has no owner yet")]
    NotClaimed,
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the unlock verifier is wrong")]
    WrongVerifier,
    #[error("the owner key changed while the change was checked")]
    OwnerKeyChanged,
    #[error("the owner record fails its check")]
    RecordInvalid,
    #[error("the unlock code is wrong, used or expired")]
    WrongCode,
    #[error("too many failed unlocks")]
    Throttled { retry_after: i64, scope: Scope },
    #[error("both totp and recovery_code were sent")]
    BothFactors,
    #[error("TOTP is on and the request carries no code")]
    TotpRequired,
    #[error("the TOTP or recovery code is wrong, outside its window, or used already")]
    TotpInvalid,
    #[error("the TOTP secret does not open under this node's sealing key")]
    TotpUnavailable,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for UnlockError {
    fn from(error: StoreError) -> Self {
        UnlockError::Internal(InternalError(error))
    }
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> UnlockError {
    UnlockError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// What a new device needs to derive the KEK: the stored JWE's PBES2 header values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnlockParameters {
    pub alg: &'static str,
    pub p2s: String,
    pub p2c: u32,
    pub kid: String,
}

/// The wrapped key, released to a client that proved it knows the password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unlocked {
    pub wrapped_key: String,
    pub kid: String,
    /// After an unlock with a recovery code: how many are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes_left: Option<usize>,
}

/// What an unlock needs from the node.
pub struct UnlockContext<'a> {
    pub store: &'a Store,
    pub attempts: &'a AttemptLedger,
    pub live_codes: &'a LiveCodes,
    pub totp: &'a TotpVault,
}

/// An unlock as received.
#[derive(Debug)]
pub struct UnlockRequest<'a> {
    pub verifier: &'a str,
    pub unlock_code: Option<&'a str>,
    pub totp: Option<String>,
    pub recovery_code: Option<String>,
    /// The request comes with a live session whose credential has the `owner` capability (a
    /// device enrolled with the password and, while TOTP is on, a code): it stands in for the
    /// second factor.
    pub owner_session: bool,
}

/// The PBES2 parameters of the stored wrapped key.
pub async fn parameters(store: &Store) -> Result<UnlockParameters, UnlockError> {
    let record = store
        .run(|c| owner::find(c))
        .await?
        .ok_or(UnlockError::NotClaimed)?;
    // The key was checked on the way in; a stored key that no longer parses is a server fault.
    let wrapped = WrappedKey::parse(&record.wrapped_key).map_err(|e| {
        UnlockError::Internal(InternalError(StoreError::Task(format!(
            "stored wrapped key is damaged: {e}"
        ))))
    })?;
    Ok(UnlockParameters {
        alg: KEY_ALG,
        p2s: wrapped.p2s(),
        p2c: wrapped.p2c(),
        kid: record.kid,
    })
}

/// Checks an unlock verifier and returns the wrapped key. The client's throttle window always
/// applies; the network and node-wide windows apply unless the request carries a live
/// one-time unlock code, which is used up whether or not the verifier is right. A wrong
/// verifier is a password guess and counts in every window; a code that is not live counts
/// only in the client's window (the password was not tried). With TOTP on, a right verifier
/// also needs a TOTP or recovery code (or an owner session): a missing or wrong one counts in
/// every window, and a right one is used up in the transaction that releases the key.
pub async fn unlock(
    context: &UnlockContext<'_>,
    request: UnlockRequest<'_>,
    actor: Actor,
    now: i64,
) -> Result<Unlocked, UnlockError> {
    let presented_hash =
        verifier_hash(request.verifier).map_err(|e| invalid("unlock_verifier", e))?;
    let code = request
        .unlock_code
        .map(UnlockCode::parse)
        .transpose()
        .map_err(|e| invalid("unlock_code", e))?;
    let factor = SecondFactor::from_members(request.totp, request.recovery_code)
        .map_err(|_| UnlockError::BothFactors)?;
    let owner_session = request.owner_session;
    let windows = match &code {
        Some(code) if context.live_codes.contains(code, now) => Windows::Client,
        _ => Windows::All,
    };
    let attempt = context
        .attempts
        .begin_unlock(&actor, windows, now)
        .map_err(|(retry_after, scope)| UnlockError::Throttled { retry_after, scope })?;
    let transaction_actor = actor.clone();
    let vault = context.totp.clone();
    let outcome = context
        .store
        .run(move |c| {
            let actor = transaction_actor;
            let tx = c.transaction().map_err(StoreError::from)?;
            let record = owner::find(&tx)?.ok_or(UnlockError::NotClaimed)?;
            // Only a record the owner key signed is served, checked in this very transaction
            // (another process may have written the file since the node last looked).
            key_history::check_owner_record(&record, &owner::history(&tx)?)
                .map_err(|_| UnlockError::RecordInvalid)?;
            let code_id = match &code {
                Some(code) => match unlock_codes::redeem(&tx, code, now)? {
                    Some(code_id) => Some(code_id),
                    None => return Err(UnlockError::WrongCode),
                },
                None => None,
            };
            let right = bool::from(presented_hash.ct_eq(&record.verifier_hash));
            let second_factor = if !right {
                Err(UnlockError::WrongVerifier)
            } else if owner_session {
                Ok(totp_rows::settings(&tx)?
                    .is_some()
                    .then_some((SESSION_FACTOR, None)))
            } else {
                match totp::check_factor(&tx, &vault, factor.as_ref(), &actor, now) {
                    Ok(used) => Ok(used.map(|used| {
                        let left = match used {
                            totp::FactorUsed::RecoveryCode { left } => Some(left),
                            totp::FactorUsed::Totp => None,
                        };
                        (used.name(), left)
                    })),
                    Err(FactorError::Invalid) => Err(UnlockError::TotpInvalid),
                    // Nothing was guessed: the transaction is rolled back, so an unlock code
                    // sent along stays live for the retry with a code.
                    Err(FactorError::Required) => return Err(UnlockError::TotpRequired),
                    Err(FactorError::Unreadable) => return Err(UnlockError::TotpUnavailable),
                    Err(FactorError::Store(error)) => return Err(error.into()),
                }
            };
            if let Some(code_id) = code_id {
                let used = AuditEvent::UnlockCodeUsed {
                    code_id,
                    unlocked: second_factor.is_ok(),
                };
                audit::append(&tx, now, &used, &actor)?;
            }
            let (second_factor, recovery_codes_left) = match second_factor {
                Ok(Some((name, left))) => (Some(name), left),
                Ok(None) => (None, None),
                Err(refusal) => {
                    // A code, once presented with a password, is used up even when that (or
                    // the second factor) is wrong.
                    tx.commit().map_err(StoreError::from)?;
                    return Err(refusal);
                }
            };
            let kid = record.kid.clone();
            let succeeded = AuditEvent::UnlockSucceeded {
                kid: kid.clone(),
                second_factor,
            };
            audit::append(&tx, now, &succeeded, &actor)?;
            audit::append(&tx, now, &AuditEvent::WrappedKeyServed { kid }, &actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(Unlocked {
                wrapped_key: record.wrapped_key,
                kid: record.kid,
                recovery_codes_left,
            })
        })
        .await;
    match &outcome {
        Ok(_) => attempt.succeeded(),
        Err(UnlockError::WrongVerifier) => attempt.failed(&actor, "wrong_verifier", Windows::All),
        Err(UnlockError::WrongCode) => attempt.failed(&actor, "wrong_code", Windows::Client),
        Err(UnlockError::TotpRequired) => attempt.failed(&actor, "totp_required", Windows::All),
        Err(UnlockError::TotpInvalid) => attempt.failed(&actor, "totp_invalid", Windows::All),
        // Not the client's fault: the attempt is taken back.
        Err(_) => attempt.abandoned(),
    }
    outcome
}

/// The second factor's name in `unlock.succeeded` when an owner session stood in for it.
const SESSION_FACTOR: &str = "session";

/// A password change as received: a new wrapped key and verifier, the old verifier (absent
/// only when the key was rebuilt from recovery shares), and the owner key's proof.
#[derive(Debug, Clone, Copy)]
pub struct Rewrap<'a> {
    pub wrapped_key: &'a str,
    pub unlock_verifier: &'a str,
    pub old_unlock_verifier: Option<&'a str>,
    pub proof: &'a str,
    pub recovery_set: Option<&'a str>,
    /// The owner key's signature over the new record; required once the node has a key history.
    pub record: Option<&'a str>,
    /// A genesis statement, accepted only from a node without a key history (it signs one).
    pub statement: Option<&'a str>,
}

/// What checking a password change needs from the node.
pub struct RewrapContext<'a> {
    pub store: &'a Store,
    pub attempts: &'a AttemptLedger,
    pub credentials: &'a CredentialRegistry,
    pub challenges: &'a Challenges,
    pub audience: &'a str,
}

/// The claims of a rewrap proof: exactly these members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewrapClaims {
    aud: String,
    nonce: String,
    iat: NumericDate,
    exp: NumericDate,
    wrapped_key_sha256: String,
    unlock_verifier_sha256: String,
}

/// The base64url SHA-256 of a request member as sent, as a rewrap proof names it.
pub fn member_digest(text: &str) -> String {
    b64::encode(&Sha256::digest(text.as_bytes()))
}

/// Replaces the wrapped key and verifier after a password change, or after a recovery from
/// shares (`recovery_set`). The new JWE must name the owner key in its `kid`; the proof must be
/// signed by the owner key over a fresh challenge and the exact new members; the old verifier
/// must match (a wrong one counts as a failed unlock). The owner key itself never changes here.
pub async fn replace_wrapped_key(
    context: &RewrapContext<'_>,
    request: Rewrap<'_>,
    session_id: &str,
    actor: Actor,
    now: i64,
) -> Result<(), UnlockError> {
    let wrapped = WrappedKey::parse(request.wrapped_key).map_err(|e| invalid("wrapped_key", e))?;
    let Some(wrapped_kid) = wrapped.kid().map(str::to_owned) else {
        return Err(invalid(
            "wrapped_key",
            "must name the owner key in a kid header",
        ));
    };
    let new_hash =
        verifier_hash(request.unlock_verifier).map_err(|e| invalid("unlock_verifier", e))?;
    let old_hash = match (request.old_unlock_verifier, request.recovery_set) {
        (Some(old), _) => Some(verifier_hash(old).map_err(|e| invalid("old_unlock_verifier", e))?),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(invalid(
                "old_unlock_verifier",
                "is required, unless the key was rebuilt from recovery shares (recovery_set)",
            ));
        }
    };
    let recovery_set = request
        .recovery_set
        .map(checked_set_id)
        .transpose()
        .map_err(|e| invalid("recovery_set", e))?;
    let owner_key = context
        .credentials
        .owner_key(context.store, now)
        .await?
        .ok_or(UnlockError::NotClaimed)?;
    if wrapped_kid != owner_key.kid {
        return Err(invalid(
            "wrapped_key",
            "has a kid that is not the owner's key",
        ));
    }
    check_rewrap_proof(context, &request, &owner_key, now).map_err(|e| invalid("proof", e))?;
    if let Some(record) = request.record {
        let signed = SignedRecord {
            key: &owner_key.public,
            wrapped_key: wrapped.compact(),
            verifier_hash: &new_hash,
        };
        check_record(record, signed, context.audience, now).map_err(|e| invalid("record", e))?;
    }
    if let Some(statement) = request.statement {
        check_genesis(statement, &owner_key.public, now).map_err(|e| invalid("statement", e))?;
    }
    let record_signature = request.record.map(str::to_owned);
    let checked_kid = owner_key.kid.clone();
    let genesis = request.statement.map(str::to_owned);
    let owner_jwk = owner_key.public.to_json();
    // Only the client's window applies: the proof shows the owner key is at work. A wrong old
    // verifier still counts in every window.
    let attempt = match old_hash {
        Some(_) => Some(
            context
                .attempts
                .begin_unlock(&actor, Windows::Client, now)
                .map_err(|(retry_after, scope)| UnlockError::Throttled { retry_after, scope })?,
        ),
        None => None,
    };
    let session_id = session_id.to_owned();
    let transaction_actor = actor.clone();
    let outcome = context
        .store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            let record = owner::find(&tx)?.ok_or(UnlockError::NotClaimed)?;
            if record.kid != checked_kid {
                return Err(UnlockError::OwnerKeyChanged);
            }
            let has_history = owner::history_len(&tx)? > 0;
            match (has_history, &record_signature, &genesis) {
                (true, None, _) => {
                    return Err(invalid(
                        "record",
                        "is required: this node's record is signed by the owner key",
                    ));
                }
                (true, Some(_), Some(_)) => {
                    return Err(invalid(
                        "statement",
                        "is only accepted from a node without a key history",
                    ));
                }
                (false, Some(_), None) => {
                    return Err(invalid(
                        "statement",
                        "is required with record on a node without a key history (a genesis)",
                    ));
                }
                (false, None, Some(_)) => {
                    return Err(invalid("record", "is required with statement"));
                }
                _ => {}
            }
            if let Some(old_hash) = old_hash
                && !bool::from(old_hash.ct_eq(&record.verifier_hash))
            {
                return Err(UnlockError::WrongVerifier);
            }
            owner::replace_wrapped_key(
                &tx,
                wrapped.compact(),
                &new_hash,
                record_signature.as_deref(),
                now,
            )?;
            if let Some(genesis) = &genesis {
                owner::append_genesis(&tx, &checked_kid, &owner_jwk, genesis, now)?;
            }
            let event = match recovery_set {
                Some(recovery_set) => AuditEvent::OwnerRecovered {
                    kid: record.kid,
                    session_id: Some(session_id),
                    recovery_set,
                },
                None => AuditEvent::WrappedKeyReplaced {
                    kid: record.kid,
                    session_id,
                },
            };
            audit::append(&tx, now, &event, &transaction_actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        })
        .await;
    if let Some(attempt) = attempt {
        match &outcome {
            Ok(()) => attempt.succeeded(),
            Err(UnlockError::WrongVerifier) => {
                attempt.failed(&actor, "wrong_old_verifier", Windows::All);
            }
            Err(_) => attempt.abandoned(),
        }
    }
    outcome?;
    // The record (and, on a node just signed, the history) changed: check and serve them anew.
    context.credentials.reload(context.store, now).await?;
    Ok(())
}

/// Checks a rewrap proof; the message completes "proof ...". The nonce is used up last, once
/// everything else holds.
fn check_rewrap_proof(
    context: &RewrapContext<'_>,
    request: &Rewrap<'_>,
    owner_key: &crate::jose::jws::VerifyingKey,
    now: i64,
) -> Result<(), String> {
    let jws = CompactJws::parse(request.proof, REWRAP_TYPE).map_err(|e| e.to_string())?;
    if jws.header.kid.as_deref() != Some(owner_key.kid.as_str()) {
        return Err("must name the owner key in its kid header".into());
    }
    let claims: RewrapClaims = jws.verify_with(owner_key).map_err(|e| e.to_string())?;
    if claims.aud != context.audience {
        return Err(format!(
            "has aud {:?}, but this node is {:?}",
            claims.aud, context.audience
        ));
    }
    PROOF_LIFETIME
        .check(claims.iat, claims.exp, now)
        .map_err(|e| e.to_string())?;
    if claims.wrapped_key_sha256 != member_digest(request.wrapped_key) {
        return Err("names another wrapped_key (wrapped_key_sha256)".into());
    }
    if claims.unlock_verifier_sha256 != member_digest(request.unlock_verifier) {
        return Err("names another unlock_verifier (unlock_verifier_sha256)".into());
    }
    context
        .challenges
        .redeem(&claims.nonce, now, Purpose::Rest)
        .map_err(|e| format!("has a nonce that {e}"))
}
