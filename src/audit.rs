//! The audit log: typed security events appended as hash-chained rows, and the check that
//! finds the first changed, deleted or reordered entry.
//!
//! Each entry's hash covers the previous entry's hash and every column, and the newest
//! (sequence, hash) pair is kept beside the log, so deleting entries at the end is caught too.
//! The chain shows tampering by anyone who cannot rewrite the whole chain and its head.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::StoreError;
use crate::store::audit_rows::{self, AuditRow};

/// The longest user agent kept, in bytes.
pub const MAX_USER_AGENT_LEN: usize = 256;

const GENESIS_HASH: [u8; 32] = [0; 32];
const HASH_DOMAIN: &[u8] = b"siteid audit entry v1";

/// A security event. Details never carry secrets: no passwords, verifiers, tokens or keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    NodeStarted {
        version: String,
    },
    OwnerClaimed {
        kid: String,
        via: &'static str,
        recovery_set: Option<String>,
    },
    ClaimRejected {
        reason: &'static str,
    },
    UnlockSucceeded {
        kid: String,
    },
    WrappedKeyServed {
        kid: String,
    },
    /// Failed unlocks from one network in one minute.
    UnlockFailed {
        count: u64,
        clients: u64,
        first_at: i64,
        reason: String,
    },
    /// Unlock windows that filled in one minute: `clients` clients (or networks) of one
    /// network, or the node-wide window.
    UnlockThrottled {
        scope: &'static str,
        clients: u64,
        retry_after: i64,
    },
    SessionCreated {
        session_id: String,
        kid: String,
        via: &'static str,
    },
    SessionEnded {
        session_id: String,
        reason: &'static str,
    },
    SessionSteppedUp {
        session_id: String,
    },
    /// Failed sign-ins from one network in one minute; `reason` is the last one's.
    LoginFailed {
        count: u64,
        clients: u64,
        first_at: i64,
        reason: String,
    },
    /// Clients of one network whose sign-in window filled in one minute.
    LoginThrottled {
        clients: u64,
        retry_after: i64,
    },
    WrappedKeyReplaced {
        kid: String,
        session_id: String,
    },
    OwnerRecovered {
        kid: String,
        /// The session that set the new password; `None` from the command line.
        session_id: Option<String>,
        recovery_set: String,
    },
    RecoverySetCreated {
        set_id: String,
        kid: String,
        threshold: u8,
        shares: u8,
    },
    /// Entries of budgeted types not written one by one in the minute from `minute_start`,
    /// counted by type (failure types count failures, others events).
    AuditSuppressed {
        minute_start: i64,
        counts: std::collections::BTreeMap<String, u64>,
    },
    UnlockCodeCreated {
        code_id: String,
        expires_at: i64,
        /// The session that made it; `None` from the command line.
        session_id: Option<String>,
    },
    UnlockCodeUsed {
        code_id: String,
    },
}

impl AuditEvent {
    /// The event name stored in the log.
    pub fn name(&self) -> &'static str {
        match self {
            AuditEvent::NodeStarted { .. } => "node.started",
            AuditEvent::OwnerClaimed { .. } => "owner.claimed",
            AuditEvent::ClaimRejected { .. } => "claim.rejected",
            AuditEvent::UnlockSucceeded { .. } => "unlock.succeeded",
            AuditEvent::WrappedKeyServed { .. } => "wrapped_key.served",
            AuditEvent::UnlockFailed { .. } => "unlock.failed",
            AuditEvent::UnlockThrottled { .. } => "unlock.throttled",
            AuditEvent::SessionCreated { .. } => "session.created",
            AuditEvent::SessionEnded { .. } => "session.ended",
            AuditEvent::SessionSteppedUp { .. } => "session.stepped_up",
            AuditEvent::LoginFailed { .. } => "login.failed",
            AuditEvent::LoginThrottled { .. } => "login.throttled",
            AuditEvent::WrappedKeyReplaced { .. } => "wrapped_key.replaced",
            AuditEvent::OwnerRecovered { .. } => "owner.recovered",
            AuditEvent::RecoverySetCreated { .. } => "recovery.set_created",
            AuditEvent::AuditSuppressed { .. } => "audit.suppressed",
            AuditEvent::UnlockCodeCreated { .. } => "unlock_code.created",
            AuditEvent::UnlockCodeUsed { .. } => "unlock_code.used",
        }
    }

    /// The event's details as a JSON object.
    pub fn detail(&self) -> serde_json::Value {
        match self {
            AuditEvent::NodeStarted { version } => json!({ "version": version }),
            AuditEvent::OwnerClaimed {
                kid,
                via,
                recovery_set: None,
            } => json!({ "kid": kid, "via": via }),
            AuditEvent::OwnerClaimed {
                kid,
                via,
                recovery_set: Some(set_id),
            } => json!({ "kid": kid, "via": via, "recovery_set": set_id }),
            AuditEvent::ClaimRejected { reason } => json!({ "reason": reason }),
            AuditEvent::UnlockSucceeded { kid } | AuditEvent::WrappedKeyServed { kid } => {
                json!({ "kid": kid })
            }
            AuditEvent::UnlockFailed {
                count,
                clients,
                first_at,
                reason,
            }
            | AuditEvent::LoginFailed {
                count,
                clients,
                first_at,
                reason,
            } => {
                json!({ "count": count, "clients": clients, "first_at": first_at, "reason": reason })
            }
            AuditEvent::UnlockThrottled {
                scope,
                clients,
                retry_after,
            } => json!({ "scope": scope, "clients": clients, "retry_after": retry_after }),
            AuditEvent::SessionCreated {
                session_id,
                kid,
                via,
            } => json!({ "session_id": session_id, "kid": kid, "via": via }),
            AuditEvent::SessionEnded { session_id, reason } => {
                json!({ "session_id": session_id, "reason": reason })
            }
            AuditEvent::SessionSteppedUp { session_id } => json!({ "session_id": session_id }),
            AuditEvent::LoginThrottled {
                clients,
                retry_after,
            } => json!({ "clients": clients, "retry_after": retry_after }),
            AuditEvent::WrappedKeyReplaced { kid, session_id } => {
                json!({ "kid": kid, "session_id": session_id })
            }
            AuditEvent::OwnerRecovered {
                kid,
                session_id,
                recovery_set,
            } => json!({ "kid": kid, "session_id": session_id, "recovery_set": recovery_set }),
            AuditEvent::RecoverySetCreated {
                set_id,
                kid,
                threshold,
                shares,
            } => json!({ "set_id": set_id, "kid": kid, "threshold": threshold, "shares": shares }),
            AuditEvent::AuditSuppressed {
                minute_start,
                counts,
            } => json!({ "minute_start": minute_start, "counts": counts }),
            AuditEvent::UnlockCodeCreated {
                code_id,
                expires_at,
                session_id,
            } => json!({ "code_id": code_id, "expires_at": expires_at, "session_id": session_id }),
            AuditEvent::UnlockCodeUsed { code_id } => json!({ "code_id": code_id }),
        }
    }
}

/// Who caused an event, as far as the node can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Actor {
    /// An event caused by the node itself or its command line.
    pub fn local() -> Self {
        Actor::default()
    }

    /// An event caused by a client, with its user agent cut to a bounded length.
    pub fn client(ip: String, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| truncate_utf8(ua, MAX_USER_AGENT_LEN).to_owned());
        Actor {
            ip: Some(ip),
            user_agent,
        }
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends an event, chaining it to the current head. Call inside a transaction (or savepoint),
/// so that the entry and the head move together.
pub fn append(
    transaction: &rusqlite::Connection,
    at: i64,
    event: &AuditEvent,
    actor: &Actor,
) -> Result<i64, StoreError> {
    let (prev_seq, prev_hash) =
        audit_rows::head(transaction)?.unwrap_or((0, GENESIS_HASH.to_vec()));
    let mut row = AuditRow {
        seq: prev_seq + 1,
        at,
        event: event.name().to_owned(),
        ip: actor.ip.clone(),
        user_agent: actor.user_agent.clone(),
        detail: event.detail().to_string(),
        prev_hash,
        hash: Vec::new(),
    };
    row.hash = entry_hash(&row).to_vec();
    audit_rows::insert(transaction, &row)?;
    Ok(row.seq)
}

/// The hash of an entry: SHA-256 over a domain label, the previous hash and every column,
/// each variable-length column prefixed with a presence byte and its length.
pub fn entry_hash(row: &AuditRow) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(&row.prev_hash);
    hasher.update(row.seq.to_be_bytes());
    hasher.update(row.at.to_be_bytes());
    for field in [
        Some(row.event.as_str()),
        row.ip.as_deref(),
        row.user_agent.as_deref(),
        Some(row.detail.as_str()),
    ] {
        match field {
            None => hasher.update([0u8]),
            Some(text) => {
                hasher.update([1u8]);
                hasher.update((text.len() as u64).to_be_bytes());
                hasher.update(text.as_bytes());
            }
        }
    }
    hasher.finalize().into()
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {seq} is missing (deleted, or entries were renumbered)")]
    Missing { seq: i64 },
    #[error("entry {seq} does not follow the entry before it (changed, deleted or reordered)")]
    BrokenLink { seq: i64 },
    #[error("entry {seq} was changed after it was written")]
    Changed { seq: i64 },
    #[error("the log ends at entry {last} but its head says {head}: entries were deleted")]
    Truncated { last: i64, head: i64 },
    #[error("the log head does not match entry {seq}")]
    HeadMismatch { seq: i64 },
}

/// Checks the whole chain; returns the number of entries and the head hash when intact.
pub fn verify(
    rows: &[AuditRow],
    head: Option<(i64, Vec<u8>)>,
) -> Result<(i64, [u8; 32]), ChainError> {
    let mut prev_hash = GENESIS_HASH.to_vec();
    let mut expected_seq = 1;
    for row in rows {
        if row.seq != expected_seq {
            return Err(ChainError::Missing { seq: expected_seq });
        }
        if row.prev_hash != prev_hash {
            return Err(ChainError::BrokenLink { seq: row.seq });
        }
        if entry_hash(row).as_slice() != row.hash.as_slice() {
            return Err(ChainError::Changed { seq: row.seq });
        }
        prev_hash = row.hash.clone();
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    match head {
        None if last == 0 => {}
        None => return Err(ChainError::HeadMismatch { seq: last }),
        Some((head_seq, _)) if head_seq != last => {
            return Err(ChainError::Truncated {
                last,
                head: head_seq,
            });
        }
        Some((_, head_hash)) if head_hash != prev_hash => {
            return Err(ChainError::HeadMismatch { seq: last });
        }
        Some(_) => {}
    }
    let head_hash = <[u8; 32]>::try_from(prev_hash.as_slice()).unwrap_or(GENESIS_HASH);
    Ok((last, head_hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store_with_entries(count: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        store
            .run_blocking(|c| {
                for i in 0..count {
                    let tx = c.transaction()?;
                    append(
                        &tx,
                        1_000 + i as i64,
                        &AuditEvent::UnlockFailed {
                            count: i as u64,
                            clients: 1,
                            first_at: 1_000,
                            reason: "wrong_verifier".into(),
                        },
                        &Actor::client("192.0.2.1".into(), Some("test")),
                    )?;
                    tx.commit()?;
                }
                Ok::<_, StoreError>(())
            })
            .expect("append");
        (dir, store)
    }

    fn check(store: &Store) -> Result<(i64, [u8; 32]), ChainError> {
        store
            .run_blocking(|c| Ok::<_, StoreError>((audit_rows::all(c)?, audit_rows::head(c)?)))
            .map(|(rows, head)| verify(&rows, head))
            .expect("read")
    }

    fn exec(store: &Store, sql: &str) {
        store
            .run_blocking(|c| c.execute_batch(sql).map_err(StoreError::from))
            .expect("tamper");
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (_dir, store) = store_with_entries(5);
        assert_eq!(check(&store).map(|(n, _)| n), Ok(5));
    }

    #[test]
    fn a_changed_entry_is_named() {
        let (_dir, store) = store_with_entries(5);
        exec(
            &store,
            "UPDATE audit_log SET ip = '203.0.113.9' WHERE seq = 3",
        );
        assert_eq!(check(&store), Err(ChainError::Changed { seq: 3 }));
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let (_dir, store) = store_with_entries(5);
        exec(&store, "DELETE FROM audit_log WHERE seq = 2");
        assert_eq!(check(&store), Err(ChainError::Missing { seq: 2 }));
    }

    #[test]
    fn deleting_the_newest_entries_is_caught_by_the_head() {
        let (_dir, store) = store_with_entries(5);
        exec(&store, "DELETE FROM audit_log WHERE seq >= 4");
        assert_eq!(
            check(&store),
            Err(ChainError::Truncated { last: 3, head: 5 })
        );
    }

    #[test]
    fn swapping_two_entries_is_caught() {
        let (_dir, store) = store_with_entries(5);
        exec(
            &store,
            "UPDATE audit_log SET seq = 100 WHERE seq = 2;
             UPDATE audit_log SET seq = 2 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = 100;",
        );
        assert_eq!(check(&store), Err(ChainError::BrokenLink { seq: 2 }));
    }

    #[test]
    fn a_long_user_agent_is_cut_at_a_character_boundary() {
        let actor = Actor::client("ip".into(), Some(&"é".repeat(300)));
        let ua = actor.user_agent.expect("kept");
        assert!(ua.len() <= MAX_USER_AGENT_LEN);
        assert!(ua.chars().all(|c| c == 'é'));
    }
}
