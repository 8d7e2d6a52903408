//! Failed attempts in memory: the throttle windows of password unlock and sign-in, the audit
//! entries that sum up failures and throttling per network and minute, the per-type audit
//! budget, and the batched writes that make all of it durable.
//!
//! An attempt is counted in its windows from the moment it is let through until it is judged
//! ([`Attempt`]), so that concurrent attempts cannot all pass one check. A failed attempt costs
//! no database write of its own: [`AttemptLedger::flush`] runs every second and at shutdown and
//! writes what accumulated in one transaction, so a flood costs one commit a second, and a
//! crash forgets at most a second of it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::throttle::{self, NODE_WIDE, PER_CLIENT, PER_NETWORK, RecentFailures, Scope, Window};
use crate::audit::{self, Actor, AuditEvent};
use crate::store::throttle as rows;
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
pub const AUDIT_BUDGETS: [(&str, usize); 4] = [
    ("claim.rejected", 30),
    ("login.failed", 120),
    ("unlock.failed", 120),
    ("credential.network_refused", 30),
];

/// Throttling-start entries per minute, kind and scope that name their network; past this,
/// the rest of the minute's starts are folded into one entry, so that every start is still
/// counted.
pub const MAX_THROTTLE_START_ENTRIES: usize = 120;

/// Buckets kept per window; past this, buckets whose failures all left their window go first.
const MAX_BUCKETS: usize = 100_000;
/// Failure and throttling summaries kept between flushes; past this, failures are only counted.
const MAX_TALLIES: usize = 50_000;
/// Distinct clients counted per summary.
const MAX_CLIENTS_COUNTED: usize = 1_000;
/// Writes and audit entries kept while the database refuses them; past this the oldest go.
const MAX_QUEUED: usize = 100_000;
/// The longest reason kept in an audit entry, in characters.
const MAX_REASON_CHARS: usize = 200;

/// What an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttemptKind {
    Unlock,
    Login,
}

/// Which windows an attempt is checked against, or a failure counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// The client's window only.
    Client,
    /// The client's, its network's and the node-wide window (unlock); for sign-in the same as
    /// `Client`, which is sign-in's only window.
    All,
}

/// One window's buckets, by client or network key.
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

    fn push(&mut self, key: &str, at: i64) {
        if !self.by_key.contains_key(key) && self.by_key.len() >= MAX_BUCKETS {
            let window = self.window;
            self.by_key.retain(|_, recent| !recent.expire(&window, at));
            shrink_to_room(&mut self.by_key);
        }
        self.by_key
            .entry(key.to_owned())
            .or_default()
            .push(&self.window, at);
    }

    fn remove_one(&mut self, key: &str, at: i64) {
        if let Some(recent) = self.by_key.get_mut(key) {
            recent.remove_one(at);
        }
    }

    /// Whether `key`'s window just filled, recording that it did.
    fn throttling_starts(&mut self, key: &str, now: i64) -> Option<i64> {
        let recent = self.by_key.get_mut(key)?;
        recent
            .throttling_starts(&self.window, now)
            .then(|| recent.retry_after(&self.window, now))
            .flatten()
    }

    fn clear(&mut self, key: &str) -> bool {
        self.by_key.remove(key).is_some()
    }

    fn times(&mut self, key: &str, now: i64) -> Vec<i64> {
        let window = self.window;
        match self.by_key.get_mut(key) {
            Some(recent) => {
                recent.expire(&window, now);
                recent.times().collect()
            }
            None => Vec::new(),
        }
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

/// A durable change to the unlock failure rows, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UnlockRowWrite {
    Failure { client: String, at: i64 },
    Clear { client: String },
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

/// Windows of one network that filled in one minute.
#[derive(Debug)]
struct ThrottleTally {
    clients: u64,
    retry_after: i64,
    last_at: i64,
}

/// Throttling starts past the per-minute cap, counted together.
#[derive(Debug, Default)]
struct FoldedStarts {
    clients: u64,
    networks: u64,
    retry_after: i64,
    last_at: i64,
}

type TallyKey = (i64, AttemptKind, String);
type ThrottleKey = (i64, AttemptKind, Scope, String);

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
    unlock_rows: VecDeque<UnlockRowWrite>,
    /// Clients whose sign-in window changed since the last flush.
    login_changed: HashSet<String>,
    failures: BTreeMap<TallyKey, FailureTally>,
    throttle_starts: BTreeMap<ThrottleKey, ThrottleTally>,
    entries: VecDeque<PendingEntry>,
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
            unlock_rows: VecDeque::new(),
            login_changed: HashSet::new(),
            failures: BTreeMap::new(),
            throttle_starts: BTreeMap::new(),
            entries: VecDeque::new(),
            budget: AuditBudget::default(),
            last_limited: HashMap::new(),
        }
    }
}

/// Everything one flush writes.
#[derive(Debug, Default)]
struct Batch {
    unlock_rows: Vec<UnlockRowWrite>,
    /// Each changed client's sign-in failures now (none: its row goes).
    login_rows: Vec<(String, Vec<i64>)>,
    entries: Vec<PendingEntry>,
}

/// The node's failed attempts and the audit entries they cause.
#[derive(Debug, Default)]
pub struct AttemptLedger {
    ledger: Mutex<Ledger>,
}

/// An attempt let through its windows and not yet judged. It counts as a failure in the
/// windows it was checked against until it ends: [`Attempt::failed`] keeps it (and records
/// it), [`Attempt::succeeded`] takes it back and clears the client's failures, and dropping it
/// unjudged (the node failed, not the client) takes it back.
#[derive(Debug)]
pub struct Attempt<'a> {
    ledger: &'a AttemptLedger,
    kind: AttemptKind,
    client: String,
    network: String,
    checked: Windows,
    at: i64,
    open: bool,
}

impl Attempt<'_> {
    /// The attempt failed: it stays counted, in the windows `counted` names (taken back from
    /// the others), and is summed up for the audit log. An unlock counted in all windows is a
    /// password guess and becomes a durable row.
    pub fn failed(mut self, actor: &Actor, reason: &str, counted: Windows) {
        self.open = false;
        self.ledger
            .lock()
            .confirm_failure(&self, actor, reason, counted);
    }

    /// The attempt succeeded: it is taken back, and the client's failures are forgotten.
    pub fn succeeded(mut self) {
        self.open = false;
        self.ledger.lock().take_back(&self, true);
    }
}

impl Attempt<'_> {
    /// The node could not judge the attempt (its database failed, it has no owner): not the
    /// client's doing, so it is taken back.
    pub fn abandoned(mut self) {
        self.open = false;
        self.ledger.lock().take_back(&self, false);
    }
}

impl Drop for Attempt<'_> {
    /// An attempt dropped unjudged (the client went away mid-request, and the handler with it)
    /// counts as a failure in the windows it was checked against: the node may still judge it
    /// after the client left, so taking it back would give a guess for free.
    fn drop(&mut self) {
        if self.open {
            self.open = false;
            let actor = Actor {
                ip: None,
                user_agent: None,
            };
            let counted = self.checked;
            self.ledger.lock().confirm_failure(
                self,
                &actor,
                "the client went away before the answer",
                counted,
            );
        }
    }
}

impl AttemptLedger {
    /// Loads the failures still inside their windows from the database.
    pub async fn load(store: &Store, now: i64) -> Result<Self, StoreError> {
        let (unlock_since, login_since) = oldest_failures_read(now);
        let (unlock, login) = store
            .run(move |c| {
                Ok::<_, StoreError>((
                    rows::recent_unlock_failures(c, unlock_since)?,
                    rows::login_failures(c, login_since)?,
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
            for (client, times) in login {
                for at in times.into_iter().filter(|at| *at >= login_since) {
                    ledger.login_clients.push(&client, at);
                }
            }
        }
        Ok(attempts)
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a sign-in attempt through the client's window, or says how long to wait.
    pub fn begin_login(&self, actor: &Actor, now: i64) -> Result<Attempt<'_>, i64> {
        self.begin(AttemptKind::Login, actor, Windows::Client, now)
            .map_err(|(seconds, _)| seconds)
    }

    /// Lets a password unlock through `windows` (all of them, or the client's only for an
    /// unlock with a live one-time code), or says how long to wait and which window is full.
    pub fn begin_unlock(
        &self,
        actor: &Actor,
        windows: Windows,
        now: i64,
    ) -> Result<Attempt<'_>, (i64, Scope)> {
        self.begin(AttemptKind::Unlock, actor, windows, now)
    }

    fn begin(
        &self,
        kind: AttemptKind,
        actor: &Actor,
        checked: Windows,
        now: i64,
    ) -> Result<Attempt<'_>, (i64, Scope)> {
        let client = throttle::client_key(actor.ip.as_deref());
        let network = throttle::network_key(actor.ip.as_deref());
        let mut ledger = self.lock();
        let full = ledger.full_window(kind, &client, &network, checked, now);
        if let Some(full) = full {
            return Err(full);
        }
        ledger.push_attempt(kind, &client, &network, checked, now);
        Ok(Attempt {
            ledger: self,
            kind,
            client,
            network,
            checked,
            at: now,
            open: true,
        })
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
            ledger.queue_entry((now, event, actor.clone()));
        }
    }

    /// Writes what accumulated: failure rows, and the audit entries of every minute that has
    /// ended (every minute when `everything`, at shutdown). A batch the database refuses is
    /// kept for the next flush.
    pub async fn flush(&self, store: &Store, now: i64, everything: bool) -> Result<(), StoreError> {
        let batch = self.lock().drain(now, everything);
        if batch.unlock_rows.is_empty() && batch.login_rows.is_empty() && batch.entries.is_empty() {
            return Ok(());
        }
        let (prune_unlock, prune_login) = oldest_failures_read(now);
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

/// The oldest failed unlock and the oldest newest-failed-sign-in any window still reads at
/// `now`; failure rows older than these are outside every window.
fn oldest_failures_read(now: i64) -> (i64, i64) {
    (
        NODE_WIDE.start(now).min(PER_NETWORK.start(now)),
        LOGIN_PER_CLIENT.start(now),
    )
}

/// Deletes the failure rows that no window reads any more (failed unlocks older than a day,
/// sign-in rows whose newest failure is older than 15 minutes); returns how many went.
/// [`AttemptLedger::flush`] does the same whenever it writes, but on a quiet node nothing is
/// written, so the retention pass calls this to keep client addresses from lingering there.
pub async fn forget_stale_failures(store: &Store, now: i64) -> Result<usize, StoreError> {
    let (unlock_before, login_before) = oldest_failures_read(now);
    store
        .run(move |c| {
            let tx = c.transaction()?;
            let deleted = rows::prune_unlock_failures(&tx, unlock_before)?
                + rows::prune_login_failures(&tx, login_before)?;
            tx.commit()?;
            Ok::<_, StoreError>(deleted)
        })
        .await
}

fn write_batch(
    connection: &mut rusqlite::Connection,
    batch: &Batch,
    prune_unlock: i64,
    prune_login: i64,
) -> Result<(), StoreError> {
    let tx = connection.transaction()?;
    for write in &batch.unlock_rows {
        match write {
            UnlockRowWrite::Failure { client, at } => {
                rows::record_unlock_failure(&tx, client, *at)?;
            }
            UnlockRowWrite::Clear { client } => rows::clear_unlock_failures(&tx, client)?,
        }
    }
    for (client, times) in &batch.login_rows {
        rows::set_login_failures(&tx, client, times)?;
    }
    rows::prune_unlock_failures(&tx, prune_unlock)?;
    rows::prune_login_failures(&tx, prune_login)?;
    for (at, event, actor) in &batch.entries {
        audit::append(&tx, *at, event, actor)?;
    }
    tx.commit()?;
    Ok(())
}

impl Ledger {
    /// The longest wait among the full windows an attempt would be checked against.
    fn full_window(
        &mut self,
        kind: AttemptKind,
        client: &str,
        network: &str,
        checked: Windows,
        now: i64,
    ) -> Option<(i64, Scope)> {
        match kind {
            AttemptKind::Login => self
                .login_clients
                .retry_after(client, now)
                .map(|s| (s, Scope::Client)),
            AttemptKind::Unlock => {
                let mut waits = vec![
                    self.unlock_clients
                        .retry_after(client, now)
                        .map(|s| (s, Scope::Client)),
                ];
                if checked == Windows::All {
                    waits.push(
                        self.unlock_networks
                            .retry_after(network, now)
                            .map(|s| (s, Scope::Network)),
                    );
                    waits.push(
                        self.unlock_node
                            .retry_after(&NODE_WIDE, now)
                            .map(|s| (s, Scope::Node)),
                    );
                }
                waits
                    .into_iter()
                    .flatten()
                    .max_by_key(|(seconds, _)| *seconds)
            }
        }
    }

    /// Counts an attempt in `windows`.
    fn push_attempt(
        &mut self,
        kind: AttemptKind,
        client: &str,
        network: &str,
        windows: Windows,
        at: i64,
    ) {
        match kind {
            AttemptKind::Login => self.login_clients.push(client, at),
            AttemptKind::Unlock => {
                self.unlock_clients.push(client, at);
                if windows == Windows::All {
                    self.unlock_networks.push(network, at);
                    self.unlock_node.push(&NODE_WIDE, at);
                }
            }
        }
    }

    /// Takes an attempt back from `windows`.
    fn remove_attempt(
        &mut self,
        kind: AttemptKind,
        client: &str,
        network: &str,
        windows: Windows,
        at: i64,
    ) {
        match kind {
            AttemptKind::Login => self.login_clients.remove_one(client, at),
            AttemptKind::Unlock => {
                self.unlock_clients.remove_one(client, at);
                if windows == Windows::All {
                    self.unlock_networks.remove_one(network, at);
                    self.unlock_node.remove_one(at);
                }
            }
        }
    }

    fn take_back(&mut self, attempt: &Attempt<'_>, succeeded: bool) {
        let (kind, client, network) = (attempt.kind, &attempt.client, &attempt.network);
        self.remove_attempt(kind, client, network, attempt.checked, attempt.at);
        if !succeeded {
            return;
        }
        match kind {
            AttemptKind::Login => {
                if self.login_clients.clear(client) {
                    self.login_changed.insert(client.clone());
                }
            }
            AttemptKind::Unlock => {
                if self.unlock_clients.clear(client) {
                    self.queue_unlock_row(UnlockRowWrite::Clear {
                        client: client.clone(),
                    });
                }
            }
        }
    }

    fn confirm_failure(
        &mut self,
        attempt: &Attempt<'_>,
        actor: &Actor,
        reason: &str,
        counted: Windows,
    ) {
        let (kind, at) = (attempt.kind, attempt.at);
        let (client, network) = (attempt.client.as_str(), attempt.network.as_str());
        match (attempt.checked, counted) {
            // Not a password guess: it stays in the client's window only.
            (Windows::All, Windows::Client) if kind == AttemptKind::Unlock => {
                self.unlock_networks.remove_one(network, at);
                self.unlock_node.remove_one(at);
            }
            (Windows::Client, Windows::All) if kind == AttemptKind::Unlock => {
                self.unlock_networks.push(network, at);
                self.unlock_node.push(&NODE_WIDE, at);
            }
            _ => {}
        }
        match kind {
            AttemptKind::Login => {
                self.login_changed.insert(client.to_owned());
                if let Some(wait) = self.login_clients.throttling_starts(client, at) {
                    self.throttle_started(kind, Scope::Client, network, wait, at);
                }
            }
            AttemptKind::Unlock => {
                if let Some(wait) = self.unlock_clients.throttling_starts(client, at) {
                    self.throttle_started(kind, Scope::Client, network, wait, at);
                }
                if counted == Windows::All {
                    self.queue_unlock_row(UnlockRowWrite::Failure {
                        client: client.to_owned(),
                        at,
                    });
                    if let Some(wait) = self.unlock_networks.throttling_starts(network, at) {
                        self.throttle_started(kind, Scope::Network, network, wait, at);
                    }
                    if self.unlock_node.throttling_starts(&NODE_WIDE, at) {
                        let wait = self.unlock_node.retry_after(&NODE_WIDE, at).unwrap_or(1);
                        self.throttle_started(kind, Scope::Node, "*", wait, at);
                    }
                }
            }
        }
        self.tally_failure(kind, client, network, actor, reason, at);
    }

    fn queue_unlock_row(&mut self, write: UnlockRowWrite) {
        if self.unlock_rows.len() >= MAX_QUEUED {
            self.unlock_rows.pop_front();
        }
        self.unlock_rows.push_back(write);
    }

    fn queue_entry(&mut self, entry: PendingEntry) {
        if self.entries.len() >= MAX_QUEUED {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    fn tally_failure(
        &mut self,
        kind: AttemptKind,
        client: &str,
        network: &str,
        actor: &Actor,
        reason: &str,
        at: i64,
    ) {
        let key = (at / 60, kind, network.to_owned());
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
            tally.clients.insert(client.to_owned());
        }
        tally.last_at = tally.last_at.max(at);
        tally.reason = reason.chars().take(MAX_REASON_CHARS).collect();
        tally.user_agent = actor.user_agent.clone();
    }

    fn throttle_started(
        &mut self,
        kind: AttemptKind,
        scope: Scope,
        network: &str,
        retry_after: i64,
        at: i64,
    ) {
        let key = (at / 60, kind, scope, network.to_owned());
        if !self.throttle_starts.contains_key(&key) && self.throttle_starts.len() >= MAX_TALLIES {
            // Folded into the minute's summary of starts past the cap.
            let overflow = (at / 60, kind, scope, String::new());
            let tally = self
                .throttle_starts
                .entry(overflow)
                .or_insert(ThrottleTally {
                    clients: 0,
                    retry_after,
                    last_at: at,
                });
            tally.clients += 1;
            return;
        }
        let tally = self.throttle_starts.entry(key).or_insert(ThrottleTally {
            clients: 0,
            retry_after,
            last_at: at,
        });
        tally.clients += 1;
        tally.retry_after = tally.retry_after.max(retry_after);
        tally.last_at = tally.last_at.max(at);
    }

    /// Takes the writes and the entries that are due: summaries of minutes before `now`'s
    /// (all of them when `everything`), then the summary of what the budget suppressed.
    fn drain(&mut self, now: i64, everything: bool) -> Batch {
        let due_before = if everything { i64::MAX } else { now / 60 };
        let mut entries: Vec<PendingEntry> = self.entries.drain(..).collect();
        entries.extend(self.due_failure_entries(due_before));
        entries.extend(self.due_throttle_entries(due_before));
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
        let changed: Vec<String> = self.login_changed.drain().collect();
        // Only throttled clients are stored: a restart may forget a few failed sign-ins of a
        // client that is not throttled (a key cannot be guessed anyway), and a spray of
        // failures from fresh addresses then costs no rows.
        let login_rows = changed
            .into_iter()
            .map(|client| {
                let mut times = self.login_clients.times(&client, now);
                if times.len() < LOGIN_PER_CLIENT.limit {
                    times.clear();
                }
                (client, times)
            })
            .collect();
        Batch {
            unlock_rows: self.unlock_rows.drain(..).collect(),
            login_rows,
            entries,
        }
    }

    /// The failure summaries of minutes before `due_before`, the largest first within each
    /// minute's budget, so that the networks that failed most are the ones named.
    fn due_failure_entries(&mut self, due_before: i64) -> Vec<PendingEntry> {
        let later = self
            .failures
            .split_off(&(due_before, AttemptKind::Unlock, String::new()));
        let mut due: Vec<(TallyKey, FailureTally)> = std::mem::replace(&mut self.failures, later)
            .into_iter()
            .collect();
        due.sort_by_key(|((minute, kind, _), tally)| (*minute, *kind, Reverse(tally.count)));
        let mut entries = Vec::new();
        for ((minute, kind, network), tally) in due {
            if !self
                .budget
                .admit(failed_event_name(kind), minute, tally.count)
            {
                continue;
            }
            let clients = tally.clients.len() as u64;
            let event = match kind {
                AttemptKind::Login => AuditEvent::LoginFailed {
                    count: tally.count,
                    clients,
                    first_at: tally.first_at,
                    reason: tally.reason,
                },
                AttemptKind::Unlock => AuditEvent::UnlockFailed {
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
        entries
    }

    /// The throttling starts of minutes before `due_before`: one entry per network (the
    /// largest first) up to [`MAX_THROTTLE_START_ENTRIES`] per minute, kind and scope, then
    /// one entry that counts the rest. None is dropped.
    fn due_throttle_entries(&mut self, due_before: i64) -> Vec<PendingEntry> {
        let later = self.throttle_starts.split_off(&(
            due_before,
            AttemptKind::Unlock,
            Scope::Client,
            String::new(),
        ));
        let mut due: Vec<(ThrottleKey, ThrottleTally)> =
            std::mem::replace(&mut self.throttle_starts, later)
                .into_iter()
                .collect();
        due.sort_by_key(|((minute, kind, scope, network), tally)| {
            (
                *minute,
                *kind,
                *scope,
                network.is_empty(),
                Reverse(tally.clients),
            )
        });
        let mut entries = Vec::new();
        let mut named: HashMap<(i64, AttemptKind, Scope), usize> = HashMap::new();
        let mut folded: BTreeMap<(i64, AttemptKind, Scope), FoldedStarts> = BTreeMap::new();
        for ((minute, kind, scope, network), tally) in due {
            let count = named.entry((minute, kind, scope)).or_insert(0);
            if !network.is_empty() && *count < MAX_THROTTLE_START_ENTRIES {
                *count += 1;
                let actor = Actor {
                    ip: (scope != Scope::Node).then_some(network),
                    user_agent: None,
                };
                entries.push((
                    tally.last_at,
                    throttle_event(kind, scope, tally.clients, 1, tally.retry_after),
                    actor,
                ));
                continue;
            }
            let sum = folded.entry((minute, kind, scope)).or_default();
            sum.clients += tally.clients;
            sum.networks += u64::from(!network.is_empty());
            sum.retry_after = sum.retry_after.max(tally.retry_after);
            sum.last_at = sum.last_at.max(tally.last_at);
        }
        for ((_, kind, scope), sum) in folded {
            let event = throttle_event(kind, scope, sum.clients, sum.networks, sum.retry_after);
            entries.push((sum.last_at, event, Actor::local()));
        }
        entries
    }

    /// Puts back a batch the database refused, ahead of anything newer.
    fn restore(&mut self, batch: Batch) {
        let newer = std::mem::take(&mut self.unlock_rows);
        self.unlock_rows = batch.unlock_rows.into_iter().chain(newer).collect();
        while self.unlock_rows.len() > MAX_QUEUED {
            self.unlock_rows.pop_front();
        }
        for (client, _) in batch.login_rows {
            self.login_changed.insert(client);
        }
        let newer = std::mem::take(&mut self.entries);
        self.entries = batch.entries.into_iter().chain(newer).collect();
        while self.entries.len() > MAX_QUEUED {
            self.entries.pop_front();
        }
    }
}

/// A throttling-start entry: `clients` windows that filled in `networks` networks.
fn throttle_event(
    kind: AttemptKind,
    scope: Scope,
    clients: u64,
    networks: u64,
    retry_after: i64,
) -> AuditEvent {
    match kind {
        AttemptKind::Login => AuditEvent::LoginThrottled {
            clients,
            networks,
            retry_after,
        },
        AttemptKind::Unlock => AuditEvent::UnlockThrottled {
            scope: scope.as_str(),
            clients,
            networks,
            retry_after,
        },
    }
}

/// The audit event of a failure summary.
fn failed_event_name(kind: AttemptKind) -> &'static str {
    match kind {
        AttemptKind::Login => "login.failed",
        AttemptKind::Unlock => "unlock.failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(ip: &str) -> Actor {
        Actor::client(ip.into(), Some("test"))
    }

    #[test]
    fn an_attempt_dropped_unjudged_counts_as_a_failure() {
        let ledger = AttemptLedger::default();
        let who = actor("192.0.2.1");
        for _ in 0..10 {
            drop(
                ledger
                    .begin_unlock(&who, Windows::All, 1_000)
                    .expect("room"),
            );
        }
        assert!(
            ledger.begin_unlock(&who, Windows::All, 1_000).is_err(),
            "a client that hangs up mid-request gets no free guesses"
        );
    }

    /// A failed attempt as the node handles it: refused while a window is full, else counted.
    fn fail(ledger: &AttemptLedger, kind: AttemptKind, ip: &str, at: i64) -> bool {
        let who = actor(ip);
        let begun = match kind {
            AttemptKind::Login => ledger.begin_login(&who, at).map_err(|_| ()),
            AttemptKind::Unlock => ledger.begin_unlock(&who, Windows::All, at).map_err(|_| ()),
        };
        match begun {
            Ok(attempt) => {
                attempt.failed(&who, "wrong", Windows::All);
                true
            }
            Err(()) => false,
        }
    }

    fn names(batch: &Batch) -> Vec<&'static str> {
        batch.entries.iter().map(|(_, e, _)| e.name()).collect()
    }

    #[test]
    fn ten_sign_in_failures_throttle_one_client_only() {
        let ledger = AttemptLedger::default();
        for _ in 0..10 {
            assert!(fail(&ledger, AttemptKind::Login, "192.0.2.1", 1_000));
        }
        assert!(ledger.begin_login(&actor("192.0.2.1"), 1_000).is_err());
        let other = ledger.begin_login(&actor("192.0.2.2"), 1_000);
        assert!(other.is_ok());
        drop(other);
        ledger
            .lock()
            .login_clients
            .clear(&throttle::client_key(Some("192.0.2.1")));
        assert!(ledger.begin_login(&actor("192.0.2.1"), 1_000).is_ok());
    }

    #[test]
    fn concurrent_attempts_count_while_they_are_judged() {
        let ledger = AttemptLedger::default();
        let who = actor("192.0.2.1");
        let in_flight: Vec<Attempt<'_>> = (0..10)
            .map(|_| {
                ledger
                    .begin_unlock(&who, Windows::All, 1_000)
                    .expect("room")
            })
            .collect();
        assert!(
            ledger.begin_unlock(&who, Windows::All, 1_000).is_err(),
            "ten attempts in flight fill the client window"
        );
        for attempt in in_flight {
            attempt.succeeded();
        }
        assert!(ledger.begin_unlock(&who, Windows::All, 1_000).is_ok());
    }

    #[test]
    fn an_attempt_the_node_could_not_judge_is_taken_back() {
        let ledger = AttemptLedger::default();
        let who = actor("192.0.2.1");
        for _ in 0..20 {
            ledger
                .begin_unlock(&who, Windows::All, 1_000)
                .expect("room")
                .abandoned();
        }
        let more = ledger.begin_unlock(&who, Windows::All, 1_000);
        assert!(more.is_ok());
        more.map(Attempt::abandoned).ok();
        assert!(ledger.lock().drain(2_000, true).unlock_rows.is_empty());
    }

    #[test]
    fn one_network_cannot_fill_the_node_wide_unlock_window() {
        let ledger = AttemptLedger::default();
        let mut counted = 0;
        for host in 0..=255u8 {
            for _ in 0..10 {
                counted += usize::from(fail(
                    &ledger,
                    AttemptKind::Unlock,
                    &format!("198.51.100.{host}"),
                    1_000,
                ));
            }
        }
        assert_eq!(counted, PER_NETWORK.limit);
        assert!(
            ledger
                .begin_unlock(&actor("192.0.2.7"), Windows::All, 1_000)
                .is_ok()
        );
        let neighbour = actor("198.51.100.200");
        assert!(matches!(
            ledger.begin_unlock(&neighbour, Windows::All, 1_000),
            Err((_, Scope::Network))
        ));
        assert!(
            ledger
                .begin_unlock(&neighbour, Windows::Client, 1_000)
                .is_ok(),
            "a live code gets past the network window"
        );
    }

    #[test]
    fn a_wrong_code_counts_only_for_its_client_and_writes_no_row() {
        let ledger = AttemptLedger::default();
        let who = actor("192.0.2.1");
        for _ in 0..10 {
            let attempt = ledger
                .begin_unlock(&who, Windows::All, 1_000)
                .expect("room");
            attempt.failed(&who, "wrong_code", Windows::Client);
        }
        assert!(matches!(
            ledger.begin_unlock(&who, Windows::All, 1_000),
            Err((_, Scope::Client))
        ));
        let batch = ledger.lock().drain(2_000, true);
        assert!(batch.unlock_rows.is_empty(), "not a password guess");
        let mut ledger = ledger.lock();
        let network = throttle::network_key(Some("192.0.2.1"));
        assert_eq!(ledger.unlock_networks.retry_after(&network, 1_000), None);
        assert_eq!(ledger.unlock_node.retry_after(&NODE_WIDE, 1_000), None);
    }

    #[test]
    fn failures_are_summed_up_per_network_and_minute() {
        let ledger = AttemptLedger::default();
        for host in 0..5 {
            fail(
                &ledger,
                AttemptKind::Login,
                &format!("192.0.2.{host}"),
                6_000,
            );
        }
        fail(&ledger, AttemptKind::Login, "198.51.100.1", 6_010);
        let early = ledger.lock().drain(6_030, false);
        assert!(early.entries.is_empty(), "the minute has not ended");
        assert_eq!(early.login_rows.len(), 6, "every changed client is written");
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
    fn throttling_starts_past_the_cap_are_counted_in_one_entry() {
        let ledger = AttemptLedger::default();
        for network in 0..200u32 {
            let ip = format!("10.{}.{}.1", network / 256, network % 256);
            for _ in 0..12 {
                fail(&ledger, AttemptKind::Login, &ip, 6_000);
            }
        }
        let batch = ledger.lock().drain(6_000, true);
        let starts: Vec<_> = batch
            .entries
            .iter()
            .filter(|(_, e, _)| e.name() == "login.throttled")
            .collect();
        assert_eq!(starts.len(), MAX_THROTTLE_START_ENTRIES + 1);
        let folded = starts
            .iter()
            .find(|(_, _, actor)| actor.ip.is_none())
            .expect("one entry for the rest");
        assert_eq!(folded.1.detail()["clients"], 80);
        assert_eq!(folded.1.detail()["networks"], 80);
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
        assert_eq!(summary.detail()["counts"]["login.failed"], 80 * 10);
    }

    #[test]
    fn the_largest_failure_summaries_are_the_ones_named() {
        let ledger = AttemptLedger::default();
        for network in 0..150u32 {
            fail(
                &ledger,
                AttemptKind::Login,
                &format!("10.0.{network}.1"),
                6_000,
            );
        }
        for _ in 0..5 {
            fail(&ledger, AttemptKind::Login, "203.0.113.9", 6_000);
        }
        let batch = ledger.lock().drain(6_000, true);
        assert!(
            batch
                .entries
                .iter()
                .any(|(_, e, a)| e.name() == "login.failed"
                    && a.ip.as_deref() == Some("203.0.113.0/24")),
            "the network that failed most is named, whatever its address"
        );
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
            fail(&ledger, AttemptKind::Unlock, "198.51.100.1", 6_001);
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
        fail(&ledger, AttemptKind::Unlock, "192.0.2.1", 6_000);
        let batch = ledger.lock().drain(6_060, false);
        assert_eq!(batch.unlock_rows.len(), 1);
        ledger.lock().restore(batch);
        fail(&ledger, AttemptKind::Unlock, "192.0.2.1", 6_070);
        let again = ledger.lock().drain(6_200, false);
        assert_eq!(again.unlock_rows.len(), 2);
        assert_eq!(names(&again), ["unlock.failed", "unlock.failed"]);
    }

    #[tokio::test]
    async fn failure_rows_outside_every_window_go_without_a_flush() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let ledger = AttemptLedger::default();
        fail(&ledger, AttemptKind::Unlock, "192.0.2.1", 10_000);
        // Only a throttled client's failed sign-ins are stored.
        for _ in 0..LOGIN_PER_CLIENT.limit {
            fail(&ledger, AttemptKind::Login, "192.0.2.2", 10_000);
        }
        ledger.flush(&store, 10_000, true).await.expect("flush");
        let stored = || {
            store
                .run_blocking(|c| {
                    let count = |table: &str| {
                        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                            r.get::<_, i64>(0)
                        })
                    };
                    Ok::<_, StoreError>((count("unlock_failure")?, count("login_throttle")?))
                })
                .expect("count")
        };
        assert_eq!(stored(), (1, 1));
        // Nothing fails any more, so no flush writes or prunes: the retention pass must.
        let forget = |now: i64| {
            let store = store.clone();
            async move { forget_stale_failures(&store, now).await.expect("forget") }
        };
        assert_eq!(forget(10_000 + LOGIN_PER_CLIENT.seconds - 1).await, 0);
        assert_eq!(forget(10_000 + LOGIN_PER_CLIENT.seconds).await, 1);
        assert_eq!(stored(), (1, 0), "the sign-in row left its 15 minutes");
        assert_eq!(forget(10_000 + PER_NETWORK.seconds - 1).await, 0);
        assert_eq!(forget(10_000 + PER_NETWORK.seconds).await, 1);
        assert_eq!(stored(), (0, 0), "the unlock row left its day");
    }
}
