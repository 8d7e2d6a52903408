//! Unlocking from a new device: publishing the PBES2 parameters, checking the unlock verifier
//! in constant time under the throttle, and handing out the wrapped key.

use subtle::ConstantTimeEq;

use super::claim::verifier_hash;
use super::throttle::{self, Scope};
use super::{AuditLimiter, InternalError};
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::jwe::{KEY_ALG, WrappedKey};
use crate::store::throttle::FailureKind::Unlock;
use crate::store::{Store, StoreError, owner, throttle as failures};

/// Why an unlock was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("this node has no owner yet")]
    NotClaimed,
    #[error("unlock_verifier {0}")]
    InvalidVerifier(String),
    #[error("the unlock verifier is wrong")]
    WrongVerifier,
    #[error("too many failed unlocks")]
    Throttled { retry_after: i64, scope: Scope },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for UnlockError {
    fn from(error: StoreError) -> Self {
        UnlockError::Internal(InternalError(error))
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

/// Checks an unlock verifier and returns the wrapped key. Throttled per client and node-wide;
/// every outcome is audited (throttled attempts at most once a minute per client).
pub async fn unlock(
    store: &Store,
    verifier: &str,
    actor: Actor,
    limiter: &AuditLimiter,
    now: i64,
) -> Result<Unlocked, UnlockError> {
    let presented_hash = verifier_hash(verifier).map_err(UnlockError::InvalidVerifier)?;
    let ip = throttle::client_key(actor.ip.as_deref());
    let limiter_key = format!("unlock:{ip}");
    let audit_actor = actor.clone();
    let outcome = store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            let record = owner::find(&tx)?.ok_or(UnlockError::NotClaimed)?;
            if let Some((retry_after, scope)) = throttled(&tx, &ip, now)? {
                return Err(UnlockError::Throttled { retry_after, scope });
            }
            if !bool::from(presented_hash.ct_eq(&record.verifier_hash)) {
                failures::record_failure(&tx, Unlock, &ip, now)?;
                failures::prune(&tx, Unlock, throttle::NODE_WIDE.start(now))?;
                let from_client = failures::failure_times(
                    &tx,
                    Unlock,
                    Some(&ip),
                    throttle::PER_CLIENT.start(now),
                )?
                .len();
                let event = AuditEvent::UnlockFailed {
                    failures_from_client: from_client,
                };
                audit::append(&tx, now, &event, &actor)?;
                tx.commit().map_err(StoreError::from)?;
                return Err(UnlockError::WrongVerifier);
            }
            failures::clear_failures(&tx, Unlock, &ip)?;
            let kid = record.kid.clone();
            audit::append(
                &tx,
                now,
                &AuditEvent::UnlockSucceeded { kid: kid.clone() },
                &actor,
            )?;
            audit::append(&tx, now, &AuditEvent::WrappedKeyServed { kid }, &actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(Unlocked {
                wrapped_key: record.wrapped_key,
                kid: record.kid,
            })
        })
        .await;
    if let Err(UnlockError::Throttled { retry_after, scope }) = &outcome
        && limiter.should_record(&limiter_key, now)
    {
        let event = AuditEvent::UnlockThrottled {
            retry_after: *retry_after,
            scope: scope.as_str(),
        };
        store
            .run(move |c| {
                let tx = c.transaction()?;
                audit::append(&tx, now, &event, &audit_actor)?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .await?;
    }
    outcome
}

/// The longer wait of the two windows, if either is full.
fn throttled(
    connection: &rusqlite::Connection,
    ip: &str,
    now: i64,
) -> Result<Option<(i64, Scope)>, StoreError> {
    let client_times = failures::failure_times(
        connection,
        Unlock,
        Some(ip),
        throttle::PER_CLIENT.start(now),
    )?;
    let node_times =
        failures::failure_times(connection, Unlock, None, throttle::NODE_WIDE.start(now))?;
    let client = throttle::PER_CLIENT
        .retry_after(&client_times, now)
        .map(|s| (s, Scope::Client));
    let node = throttle::NODE_WIDE
        .retry_after(&node_times, now)
        .map(|s| (s, Scope::Node));
    Ok(match (client, node) {
        (Some(c), Some(n)) => Some(if n.0 > c.0 { n } else { c }),
        (c, n) => c.or(n),
    })
}

/// Replaces the wrapped key and verifier after a password change, or after a recovery from
/// shares (`recovery_set`). The JWE is checked like a claim's; one naming another kid is
/// refused, and the owner key itself never changes here.
pub async fn replace_wrapped_key(
    store: &Store,
    wrapped_key: &str,
    verifier: &str,
    recovery_set: Option<&str>,
    session_id: &str,
    actor: Actor,
    now: i64,
) -> Result<(), super::claim::ClaimError> {
    use super::claim::ClaimError;
    let invalid = |field: &'static str, message: String| ClaimError::Invalid { field, message };
    let wrapped =
        WrappedKey::parse(wrapped_key).map_err(|e| invalid("wrapped_key", e.to_string()))?;
    let verifier_hash = verifier_hash(verifier).map_err(|e| invalid("unlock_verifier", e))?;
    let recovery_set = recovery_set
        .map(super::claim::checked_set_id)
        .transpose()
        .map_err(|e| invalid("recovery_set", e.into()))?;
    let session_id = session_id.to_owned();
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            let Some(record) = owner::find(&tx)? else {
                return Err(invalid(
                    "wrapped_key",
                    "cannot replace a key on an unclaimed node".into(),
                ));
            };
            if wrapped.kid().is_some_and(|kid| kid != record.kid) {
                return Err(invalid(
                    "wrapped_key",
                    "has a kid that is not the owner's key".into(),
                ));
            }
            owner::replace_wrapped_key(&tx, wrapped.compact(), &verifier_hash, now)?;
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
            audit::append(&tx, now, &event, &actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        })
        .await
}
