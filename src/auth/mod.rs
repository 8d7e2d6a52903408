//! Domain logic of claiming a node, unlocking its key, signing in and sessions: validation,
//! throttling and the database transactions behind them. No HTTP types live here.

pub mod challenge;
pub mod claim;
pub mod keys;
pub mod login;
pub mod sessions;
pub mod throttle;
pub mod unlock;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::StoreError;

/// Keeps repeated, attacker-triggerable audit events (rejected claims, throttled unlocks) to
/// one entry per client per interval, so that a flood cannot grow the log without bound.
#[derive(Debug, Default)]
pub struct AuditLimiter {
    last_recorded: Mutex<HashMap<String, i64>>,
    /// The current minute and how many events were recorded in it, across all keys.
    minute: Mutex<(i64, usize)>,
    /// The same for failure events, which have their own, higher cap.
    failures_minute: Mutex<(i64, usize)>,
}

impl AuditLimiter {
    /// Seconds between two recorded events for the same key.
    pub const INTERVAL: i64 = 60;
    const MAX_KEYS: usize = 10_000;
    /// At most this many limited events are recorded per minute in all, however many
    /// addresses an attacker uses.
    pub const MAX_PER_MINUTE: usize = 60;

    /// Failure events (each already limited per client by a throttle) recorded per minute in all.
    pub const MAX_FAILURES_PER_MINUTE: usize = 300;

    /// Whether another failure event may be recorded this minute, however many addresses the
    /// failures come from.
    pub fn should_record_failure(&self, now: i64) -> bool {
        let mut minute = self
            .failures_minute
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if minute.0 != now / 60 {
            *minute = (now / 60, 0);
        }
        minute.1 += 1;
        minute.1 <= Self::MAX_FAILURES_PER_MINUTE
    }

    /// Whether an event for `key` should be recorded at `now`; remembers that it was.
    pub fn should_record(&self, key: &str, now: i64) -> bool {
        let mut last = self
            .last_recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.len() >= Self::MAX_KEYS {
            last.retain(|_, at| now - *at < Self::INTERVAL);
        }
        if last.get(key).is_some_and(|at| now - *at < Self::INTERVAL) {
            return false;
        }
        let mut minute = self.minute.lock().unwrap_or_else(|p| p.into_inner());
        if minute.0 != now / 60 {
            *minute = (now / 60, 0);
        }
        if minute.1 >= Self::MAX_PER_MINUTE {
            return false;
        }
        minute.1 += 1;
        last.insert(key.to_owned(), now);
        true
    }
}

/// Errors shared by the domain operations: the store failed, which is never the client's fault.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct InternalError(#[from] pub StoreError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_limiter_records_once_per_interval_and_key() {
        let limiter = AuditLimiter::default();
        assert!(limiter.should_record("a", 100));
        assert!(!limiter.should_record("a", 159));
        assert!(limiter.should_record("b", 159));
        assert!(limiter.should_record("a", 160));
    }
}
