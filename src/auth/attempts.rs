//! Failed attempts in memory: the throttle windows of password unlock and sign-in, the audit
//! entries that sum up failures and throttling per network and minute, the per-type audit
//! budget, and the batched writes that make all of it durable.
//!
//! A failed attempt costs no database write of its own. [`AttemptLedger::flush`] runs every
//! second and at shutdown and writes what accumulated in one transaction, so a flood of
//! failures costs one commit a second, and a crash forgets at most a second of it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::throttle::{self, NODE_WIDE, PER_CLIENT, PER_NETWORK, RecentFailures, Scope, Window};
use crate::audit::{self, Actor, AuditEvent};
use crate::store::throttle::{self as rows, FailureKind};
use crate::store::{Store, StoreError};

/// Sign-in: at most 10 failures per 15 minutes from one client. There is no node-wide cap: a
/// key cannot be guessed, and a flood from elsewhere must not lock the owner out.
pub const LOGIN_PER_CLIENT: Window = Window {
    limit: 10,
    seconds: 15 * 60,
};

/// Seconds between two recorded events of one key for [`AttemptLedger::record_limited`].
pub const LIMITED_INTERVAL: i64 = 60;

/// Entries per minute for event types an attacker can cause without limit; past its budget a
/// type's entries are counted in an `audit.suppressed` summary instead. Types not listed are
/// never dropped.
pub const AUDIT_BUDGETS: [(&str, usize); 3] = [
    ("claim.rejected", 30),
    ("login.failed", 120),
    ("unlock.failed", 120),
];

/// Buckets kept per window; past this, buckets whose failures all left their window go first.
const MAX_BUCKETS: usize = 100_000;
/// Failure and throttling summaries kept between flushes; past this, failures are only counted.
const MAX_TALLIES: usize = 50_000;
/// Distinct clients counted per summary.
const MAX_CLIENTS_COUNTED: usize = 1_000;
/// Writes kept while the database refuses them; past this the oldest failure rows are dropped.
const MAX_QUEUED_WRITES: usize = 100_000;
/// The longest reason kept in an audit entry, in characters.
const MAX_REASON_CHARS: usize = 200;

/// One client's or network's failures under one window.
#[derive(Debug)]
struct Buckets {
    window: Window,
    by_key: HashMap<String, RecentFailures>,
}

impl Buckets {
    fn new(window: Window) -> Self {
        Buckets {
            window,
            by_key: HashMap::new(),
        }
    }

    fn retry_after(&mut self, key: &str, now: i64) -> Option<i64> {
        self.by_key.get_mut(key)?.retry_after(&self.window, now)
    }

    /// Adds a failure; returns whether it filled the window.
    fn push(&mut self, key: &str, at: i64) -> bool {
        if !self.by_key.contains_key(key) && self.by_key.len() >= MAX_BUCKETS {
            let window = self.window;
            self.by_key.retain(|_, recent| !recent.expire(&window, at));
            shrink_to_room(&mut self.by_key);
        }
        self.by_key
            .entry(key.to_owned())
            .or_default()
            .push(&self.window, at)
    }

    fn clear(&mut self, key: &str) -> bool {
        self.by_key.remove(key).is_some()
    }
}

/// Makes a full map nine-tenths full by dropping arbitrary entries, when dropping the expired
/// ones was not enough, so that the next full scan is far away. Under a flood from more
/// addresses than the map holds, some clients' failures are forgotten early; the node-wide and
/// network windows still count them.
fn shrink_to_room<V>(map: &mut HashMap<String, V>) {
    let room = MAX_BUCKETS / 10 * 9;
    if map.len() < room {
        return;
    }
    let excess: Vec<String> = map.keys().take(map.len() - room).cloned().collect();
    for key in excess {
        map.remove(&key);
    }
}

/// A durable change to the failure rows, in the order it happened.
#[derive(Debug, Clone)]
enum RowWrite {
    Failure {
        kind: FailureKind,
        client: String,
        at: i64,
    },
    Clear {
        kind: FailureKind,
        client: String,
    },
}

/// Failures of one kind from one network in one minute.
#[derive(Debug)]
struct FailureTally {
    count: u64,
    clients: HashSet<String>,
    first_at: i64,
    last_at: i64,
    reason: String,
    user_agent: Option<String>,
}

/// Clients of one network that became throttled in one minute.
#[derive(Debug)]
struct ThrottleTally {
    clients: u64,
    retry_after: i64,
    last_at: i64,
}

type TallyKey = (i64, FailureKind, String);
type ThrottleKey = (i64, FailureKind, Scope, String);

/// Counts of entries each budgeted type may still write, per minute, and what it suppressed.
#[derive(Debug, Default)]
struct AuditBudget {
    used: BTreeMap<(i64, &'static str), usize>,
    suppressed: BTreeMap<i64, BTreeMap<&'static str, u64>>,
}

impl AuditBudget {
    /// Whether an entry of `name` may be written for `minute`; otherwise `weight` is added to
    /// that minute's suppressed count.
    fn admit(&mut self, name: &'static str, minute: i64, weight: u64) -> bool {
        let Some((_, budget)) = AUDIT_BUDGETS.iter().find(|(n, _)| *n == name) else {
            return true;
        };
        let used = self.used.entry((minute, name)).or_insert(0);
        if *used < *budget {
            *used += 1;
            return true;
        }
        self.suppress(name, minute, weight);
        false
    }

    fn suppress(&mut self, name: &'static str, minute: i64, weight: u64) {
        *self
            .suppressed
            .entry(minute)
            .or_default()
            .entry(name)
            .or_insert(0) += weight;
    }
}

/// An audit entry waiting for the next flush.
type PendingEntry = (i64, AuditEvent, Actor);

#[derive(Debug)]
struct Ledger {
    login_clients: Buckets,
    unlock_clients: Buckets,
    unlock_networks: Buckets,
    unlock_node: RecentFailures,
    writes: VecDeque<RowWrite>,
    failures: BTreeMap<TallyKey, FailureTally>,
    throttle_starts: BTreeMap<ThrottleKey, ThrottleTally>,
    entries: Vec<PendingEntry>,
    budget: AuditBudget,
    last_limited: HashMap<String, i64>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            login_clients: Buckets::new(LOGIN_PER_CLIENT),
            unlock_clients: Buckets::new(PER_CLIENT),
            unlock_networks: Buckets::new(PER_NETWORK),
            unlock_node: RecentFailures::default(),
            writes: VecDeque::new(),
            failures: BTreeMap::new(),
            throttle_starts: BTreeMap::new(),
            entries: Vec::new(),
            budget: AuditBudget::default(),
            last_limited: HashMap::new(),
        }
    }
}

/// What a failed attempt was and who made it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub actor: &'a Actor,
    /// Why it failed, for the audit entry; may quote attacker text, so it is cut short.
    pub reason: &'a str,
    pub at: i64,
}

/// Everything one flush writes.
#[derive(Debug, Default)]
struct Batch {
    writes: Vec<RowWrite>,
    entries: Vec<PendingEntry>,
}

/// The node's failed attempts and the audit entries they cause.
#[derive(Debug, Default)]
pub struct AttemptLedger {
    ledger: Mutex<Ledger>,
}

impl AttemptLedger {
    /// Loads the failures still inside their windows from the database.
    pub async fn load(store: &Store, now: i64) -> Result<Self, StoreError> {
        let unlock_since = NODE_WIDE.start(now).min(PER_NETWORK.start(now));
        let login_since = LOGIN_PER_CLIENT.start(now);
        let (unlock, login) = store
            .run(move |c| {
                Ok::<_, StoreError>((
                    rows::recent(c, FailureKind::Unlock, unlock_since)?,
                    rows::recent(c, FailureKind::Login, login_since)?,
                ))
            })
            .await?;
        let attempts = AttemptLedger::default();
        {
            let mut ledger = attempts.lock();
            for (client, at) in unlock {
                if at >= PER_CLIENT.start(now) {
                    ledger.unlock_clients.push(&client, at);
                }
                let network = throttle::network_of_client_key(&client);
                ledger.unlock_networks.push(&network, at);
                ledger.unlock_node.push(&NODE_WIDE, at);
            }
            for (client, at) in login {
                ledger.login_clients.push(&client, at);
            }
        }
        Ok(attempts)
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until `actor` may try a sign-in again, if it is throttled.
    pub fn login_retry_after(&self, actor: &Actor, now: i64) -> Option<i64> {
        let client = throttle::client_key(actor.ip.as_deref());
        self.lock().login_clients.retry_after(&client, now)
    }

    /// Records a failed sign-in.
    pub fn login_failed(&self, failure: Failure<'_>) {
        self.lock().record_failure(FailureKind::Login, failure);
    }

    /// Forgets a client's failed sign-ins after it signed in.
    pub fn login_succeeded(&self, actor: &Actor) {
        self.lock().clear(FailureKind::Login, actor);
    }

    /// Seconds until `actor` may try a password unlock again and the window that is full, if
    /// one is. `shared_windows` is false for an unlock that carries a valid one-time code: the
    /// network and node-wide windows do not apply to it, the client's window does.
    pub fn unlock_retry_after(
        &self,
        actor: &Actor,
        shared_windows: bool,
        now: i64,
    ) -> Option<(i64, Scope)> {
        let client = throttle::client_key(actor.ip.as_deref());
        let network = throttle::network_key(actor.ip.as_deref());
        let mut ledger = self.lock();
        let mut waits = vec![
            ledger
                .unlock_clients
                .retry_after(&client, now)
                .map(|s| (s, Scope::Client)),
        ];
        if shared_windows {
            waits.push(
                ledger
                    .unlock_networks
                    .retry_after(&network, now)
                    .map(|s| (s, Scope::Network)),
            );
            waits.push(
                ledger
                    .unlock_node
                    .retry_after(&NODE_WIDE, now)
                    .map(|s| (s, Scope::Node)),
            );
        }
        waits
            .into_iter()
            .flatten()
            .max_by_key(|(seconds, _)| *seconds)
    }

    /// Records a failed unlock (a wrong verifier or a wrong code).
    pub fn unlock_failed(&self, failure: Failure<'_>) {
        self.lock().record_failure(FailureKind::Unlock, failure);
    }

    /// Forgets a client's failed unlocks after it unlocked.
    pub fn unlock_succeeded(&self, actor: &Actor) {
        self.lock().clear(FailureKind::Unlock, actor);
    }

    /// Queues `event`, which anyone can cause without limit, at most once per
    /// [`LIMITED_INTERVAL`] for `key` and within its type's budget.
    pub fn record_limited(&self, key: &str, event: AuditEvent, actor: &Actor, now: i64) {
        let mut ledger = self.lock();
        if ledger.last_limited.len() >= MAX_BUCKETS {
            ledger
                .last_limited
                .retain(|_, at| now - *at < LIMITED_INTERVAL);
            shrink_to_room(&mut ledger.last_limited);
        }
        if ledger
            .last_limited
            .get(key)
            .is_some_and(|at| now - *at < LIMITED_INTERVAL)
        {
            return;
        }
        ledger.last_limited.insert(key.to_owned(), now);
        if ledger.budget.admit(event.name(), now / 60, 1) {
            ledger.entries.push((now, event, actor.clone()));
        }
    }

    /// Writes what accumulated: failure rows, and the audit entries of every minute that has
    /// ended (every minute when `everything`, at shutdown). A batch the database refuses is
    /// kept for the next flush.
    pub async fn flush(&self, store: &Store, now: i64, everything: bool) -> Result<(), StoreError> {
        let batch = self.lock().drain(now, everything);
        if batch.writes.is_empty() && batch.entries.is_empty() {
            return Ok(());
        }
        let prune_unlock = NODE_WIDE.start(now).min(PER_NETWORK.start(now));
        let prune_login = LOGIN_PER_CLIENT.start(now);
        let kept = std::sync::Arc::new(Mutex::new(None));
        let result = {
            let kept = kept.clone();
            store
                .run(move |c| {
                    let outcome = write_batch(c, &batch, prune_unlock, prune_login);
                    if outcome.is_err() {
                        *kept.lock().unwrap_or_else(|p| p.into_inner()) = Some(batch);
                    }
                    outcome
                })
                .await
        };
        let refused = kept.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(batch) = refused {
            self.lock().restore(batch);
        }
        result
    }
}

fn write_batch(
    connection: &mut rusqlite::Connection,
    batch: &Batch,
    prune_unlock: i64,
    prune_login: i64,
) -> Result<(), StoreError> {
    let tx = connection.transaction()?;
    for write in &batch.writes {
        match write {
            RowWrite::Failure { kind, client, at } => {
                rows::record_failure(&tx, *kind, client, *at)?;
            }
            RowWrite::Clear { kind, client } => rows::clear_failures(&tx, *kind, client)?,
        }
    }
    rows::prune(&tx, FailureKind::Unlock, prune_unlock)?;
    rows::prune(&tx, FailureKind::Login, prune_login)?;
    for (at, event, actor) in &batch.entries {
        audit::append(&tx, *at, event, actor)?;
    }
    tx.commit()?;
    Ok(())
}

impl Ledger {
    fn record_failure(&mut self, kind: FailureKind, failure: Failure<'_>) {
        let ip = failure.actor.ip.as_deref();
        let client = throttle::client_key(ip);
        let network = throttle::network_key(ip);
        let at = failure.at;
        match kind {
            FailureKind::Login => {
                if self.login_clients.push(&client, at) {
                    let wait = self.login_clients.retry_after(&client, at);
                    self.throttle_started(kind, Scope::Client, &network, wait, at);
                }
            }
            FailureKind::Unlock => {
                if self.unlock_clients.push(&client, at) {
                    let wait = self.unlock_clients.retry_after(&client, at);
                    self.throttle_started(kind, Scope::Client, &network, wait, at);
                }
                if self.unlock_networks.push(&network, at) {
                    let wait = self.unlock_networks.retry_after(&network, at);
                    self.throttle_started(kind, Scope::Network, &network, wait, at);
                }
                if self.unlock_node.push(&NODE_WIDE, at) {
                    let wait = self.unlock_node.retry_after(&NODE_WIDE, at);
                    self.throttle_started(kind, Scope::Node, "*", wait, at);
                }
            }
        }
        if self.writes.len() >= MAX_QUEUED_WRITES {
            self.writes.pop_front();
        }
        self.writes.push_back(RowWrite::Failure {
            kind,
            client: client.clone(),
            at,
        });
        let key = (at / 60, kind, network);
        if !self.failures.contains_key(&key) && self.failures.len() >= MAX_TALLIES {
            self.budget.suppress(failed_event_name(kind), at / 60, 1);
            return;
        }
        let tally = self.failures.entry(key).or_insert_with(|| FailureTally {
            count: 0,
            clients: HashSet::new(),
            first_at: at,
            last_at: at,
            reason: String::new(),
            user_agent: None,
        });
        tally.count += 1;
        if tally.clients.len() < MAX_CLIENTS_COUNTED {
            tally.clients.insert(client);
        }
        tally.last_at = tally.last_at.max(at);
        tally.reason = failure.reason.chars().take(MAX_REASON_CHARS).collect();
        tally.user_agent = failure.actor.user_agent.clone();
    }

    fn throttle_started(
        &mut self,
        kind: FailureKind,
        scope: Scope,
        network: &str,
        retry_after: Option<i64>,
        at: i64,
    ) {
        let retry_after = retry_after.unwrap_or(1);
        let tally = self
            .throttle_starts
            .entry((at / 60, kind, scope, network.to_owned()))
            .or_insert(ThrottleTally {
                clients: 0,
                retry_after,
                last_at: at,
            });
        tally.clients += 1;
        tally.retry_after = tally.retry_after.max(retry_after);
        tally.last_at = tally.last_at.max(at);
    }

    fn clear(&mut self, kind: FailureKind, actor: &Actor) {
        let client = throttle::client_key(actor.ip.as_deref());
        let had_failures = match kind {
            FailureKind::Login => self.login_clients.clear(&client),
            FailureKind::Unlock => self.unlock_clients.clear(&client),
        };
        if had_failures {
            self.writes.push_back(RowWrite::Clear { kind, client });
        }
    }

    /// Takes the writes and the entries that are due: summaries of minutes before `now`'s
    /// (all of them when `everything`), then the summary of what the budget suppressed.
    fn drain(&mut self, now: i64, everything: bool) -> Batch {
        let due_before = if everything { i64::MAX } else { now / 60 };
        let mut entries = std::mem::take(&mut self.entries);
        let later_failures =
            self.failures
                .split_off(&(due_before, FailureKind::Unlock, String::new()));
        let due_failures = std::mem::replace(&mut self.failures, later_failures);
        for ((minute, kind, network), tally) in due_failures {
            let name = failed_event_name(kind);
            if !self.budget.admit(name, minute, tally.count) {
                continue;
            }
            let clients = tally.clients.len() as u64;
            let event = match kind {
                FailureKind::Login => AuditEvent::LoginFailed {
                    count: tally.count,
                    clients,
                    first_at: tally.first_at,
                    reason: tally.reason,
                },
                FailureKind::Unlock => AuditEvent::UnlockFailed {
                    count: tally.count,
                    clients,
                    first_at: tally.first_at,
                    reason: tally.reason,
                },
            };
            let actor = Actor {
                ip: Some(network),
                user_agent: tally.user_agent,
            };
            entries.push((tally.last_at, event, actor));
        }
        let later_starts = self.throttle_starts.split_off(&(
            due_before,
            FailureKind::Unlock,
            Scope::Client,
            String::new(),
        ));
        let due_starts = std::mem::replace(&mut self.throttle_starts, later_starts);
        for ((_, kind, scope, network), tally) in due_starts {
            let event = match kind {
                FailureKind::Login => AuditEvent::LoginThrottled {
                    clients: tally.clients,
                    retry_after: tally.retry_after,
                },
                FailureKind::Unlock => AuditEvent::UnlockThrottled {
                    scope: scope.as_str(),
                    clients: tally.clients,
                    retry_after: tally.retry_after,
                },
            };
            let actor = Actor {
                ip: (scope != Scope::Node).then_some(network),
                user_agent: None,
            };
            entries.push((tally.last_at, event, actor));
        }
        let later_suppressed = self.budget.suppressed.split_off(&due_before);
        let due_suppressed = std::mem::replace(&mut self.budget.suppressed, later_suppressed);
        for (minute, counts) in due_suppressed {
            let event = AuditEvent::AuditSuppressed {
                minute_start: minute * 60,
                counts: counts
                    .into_iter()
                    .map(|(name, count)| (name.to_owned(), count))
                    .collect(),
            };
            entries.push(((minute * 60 + 59).min(now), event, Actor::local()));
        }
        let later_used = self.budget.used.split_off(&(now / 60 - 1, ""));
        self.budget.used = later_used;
        entries.sort_by_key(|(at, _, _)| *at);
        Batch {
            writes: self.writes.drain(..).collect(),
            entries,
        }
    }

    /// Puts back a batch the database refused, ahead of anything newer.
    fn restore(&mut self, batch: Batch) {
        let newer = std::mem::take(&mut self.writes);
        self.writes = batch.writes.into_iter().chain(newer).collect();
        while self.writes.len() > MAX_QUEUED_WRITES {
            self.writes.pop_front();
        }
        let newer = std::mem::take(&mut self.entries);
        self.entries = batch.entries.into_iter().chain(newer).collect();
    }
}

/// The audit event of a failure summary.
fn failed_event_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Login => "login.failed",
        FailureKind::Unlock => "unlock.failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(ip: &str) -> Actor {
        Actor::client(ip.into(), Some("test"))
    }

    fn fail(ledger: &AttemptLedger, kind: FailureKind, ip: &str, at: i64) {
        let actor = actor(ip);
        let failure = Failure {
            actor: &actor,
            reason: "wrong",
            at,
        };
        match kind {
            FailureKind::Login => ledger.login_failed(failure),
            FailureKind::Unlock => ledger.unlock_failed(failure),
        }
    }

    fn names(batch: &Batch) -> Vec<&'static str> {
        batch.entries.iter().map(|(_, e, _)| e.name()).collect()
    }

    #[test]
    fn ten_sign_in_failures_throttle_one_client_only() {
        let ledger = AttemptLedger::default();
        for _ in 0..10 {
            fail(&ledger, FailureKind::Login, "192.0.2.1", 1_000);
        }
        assert!(
            ledger
                .login_retry_after(&actor("192.0.2.1"), 1_000)
                .is_some()
        );
        assert!(
            ledger
                .login_retry_after(&actor("192.0.2.2"), 1_000)
                .is_none()
        );
        ledger.login_succeeded(&actor("192.0.2.1"));
        assert!(
            ledger
                .login_retry_after(&actor("192.0.2.1"), 1_000)
                .is_none()
        );
    }

    /// An unlock attempt with a wrong password, as the node handles it: refused while a
    /// window is full, otherwise counted.
    fn wrong_unlock(ledger: &AttemptLedger, ip: &str, with_code: bool, at: i64) -> bool {
        if ledger
            .unlock_retry_after(&actor(ip), !with_code, at)
            .is_some()
        {
            return false;
        }
        fail(ledger, FailureKind::Unlock, ip, at);
        true
    }

    #[test]
    fn one_network_cannot_fill_the_node_wide_unlock_window() {
        let ledger = AttemptLedger::default();
        let mut counted = 0;
        for host in 0..=255u8 {
            for _ in 0..10 {
                counted += usize::from(wrong_unlock(
                    &ledger,
                    &format!("198.51.100.{host}"),
                    false,
                    1_000,
                ));
            }
        }
        assert_eq!(counted, PER_NETWORK.limit);
        let elsewhere = actor("192.0.2.7");
        assert_eq!(ledger.unlock_retry_after(&elsewhere, true, 1_000), None);
        let neighbour = actor("198.51.100.200");
        assert!(matches!(
            ledger.unlock_retry_after(&neighbour, true, 1_000),
            Some((_, Scope::Network))
        ));
        assert_eq!(
            ledger.unlock_retry_after(&neighbour, false, 1_000),
            None,
            "a code gets past the network window"
        );
    }

    #[test]
    fn a_full_node_window_stops_unlocks_without_a_code_only() {
        let ledger = AttemptLedger::default();
        for network in 0..10u8 {
            for host in 0..3u8 {
                for _ in 0..10 {
                    wrong_unlock(&ledger, &format!("10.{network}.0.{host}"), false, 1_000);
                }
            }
        }
        let owner = actor("192.0.2.7");
        assert!(matches!(
            ledger.unlock_retry_after(&owner, true, 1_000),
            Some((_, Scope::Node))
        ));
        assert_eq!(ledger.unlock_retry_after(&owner, false, 1_000), None);
    }

    #[test]
    fn failures_are_summed_up_per_network_and_minute() {
        let ledger = AttemptLedger::default();
        for host in 0..5 {
            fail(
                &ledger,
                FailureKind::Login,
                &format!("192.0.2.{host}"),
                6_000,
            );
        }
        fail(&ledger, FailureKind::Login, "198.51.100.1", 6_010);
        let early = ledger.lock().drain(6_030, false);
        assert!(early.entries.is_empty(), "the minute has not ended");
        assert_eq!(early.writes.len(), 6, "every failure is a row");
        let batch = ledger.lock().drain(6_060, false);
        assert_eq!(names(&batch), ["login.failed", "login.failed"]);
        let (_, event, actor) = &batch.entries[0];
        assert_eq!(actor.ip.as_deref(), Some("192.0.2.0/24"));
        assert_eq!(
            event.detail(),
            serde_json::json!({"count": 5, "clients": 5, "first_at": 6_000, "reason": "wrong"})
        );
    }

    #[test]
    fn throttling_starts_are_recorded_once_per_client_and_never_dropped() {
        let ledger = AttemptLedger::default();
        for network in 0..200u32 {
            let ip = format!("10.{}.{}.1", network / 256, network % 256);
            for _ in 0..12 {
                fail(&ledger, FailureKind::Login, &ip, 6_000);
            }
        }
        let batch = ledger.lock().drain(6_000, true);
        let starts = names(&batch)
            .iter()
            .filter(|n| **n == "login.throttled")
            .count();
        assert_eq!(starts, 200);
        let failed = names(&batch)
            .iter()
            .filter(|n| **n == "login.failed")
            .count();
        assert_eq!(failed, 120, "failure summaries have a budget");
        let (_, summary, _) = batch
            .entries
            .iter()
            .find(|(_, e, _)| e.name() == "audit.suppressed")
            .expect("a summary of what was suppressed");
        assert_eq!(summary.detail()["counts"]["login.failed"], 80 * 12);
    }

    #[test]
    fn junk_of_one_type_does_not_crowd_out_another() {
        let ledger = AttemptLedger::default();
        for client in 0..500 {
            ledger.record_limited(
                &format!("claim:{client}"),
                AuditEvent::ClaimRejected {
                    reason: "wrong_token",
                },
                &actor("192.0.2.1"),
                6_000,
            );
        }
        for _ in 0..10 {
            fail(&ledger, FailureKind::Unlock, "198.51.100.1", 6_001);
        }
        let batch = ledger.lock().drain(6_060, false);
        let count = |name: &str| names(&batch).iter().filter(|n| **n == name).count();
        assert_eq!(count("claim.rejected"), 30);
        assert_eq!(count("unlock.failed"), 1);
        assert_eq!(count("unlock.throttled"), 1);
        assert_eq!(count("audit.suppressed"), 1);
    }

    #[test]
    fn a_refused_batch_is_written_by_the_next_flush() {
        let ledger = AttemptLedger::default();
        fail(&ledger, FailureKind::Unlock, "192.0.2.1", 6_000);
        let batch = ledger.lock().drain(6_060, false);
        assert_eq!(batch.writes.len(), 1);
        ledger.lock().restore(batch);
        fail(&ledger, FailureKind::Unlock, "192.0.2.1", 6_070);
        let again = ledger.lock().drain(6_200, false);
        assert_eq!(again.writes.len(), 2);
        assert_eq!(names(&again), ["unlock.failed", "unlock.failed"]);
    }
}
