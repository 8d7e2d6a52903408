//! Sessions after sign-in: an in-memory registry (the authority for every request, so that
//! revocation and expiry take effect at once) written through to the database (so sessions
//! survive a restart). Bearer tokens are 32 random bytes known to the node only by SHA-256.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::credentials::{Capabilities, Principal};
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::store::sessions::{self as rows, SessionRow};
use crate::store::{Store, StoreError};

pub use crate::config::SessionPolicy;

/// How long a step-up (re-authentication) lasts.
pub const STEP_UP_SECONDS: i64 = 5 * 60;
/// How often a session's last use is written to the database at most.
const TOUCH_INTERVAL: i64 = 60;

/// A session as the rest of the node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub kid: String,
    /// The credential that signed in.
    pub credential_id: String,
    /// What the session may do: its credential's capabilities at sign-in.
    pub capabilities: Capabilities,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub fresh_until: i64,
    pub ip: String,
    pub user_agent: Option<String>,
}

impl SessionInfo {
    /// When the session ends if unused: the earlier of its idle and absolute limits.
    pub fn ends_at(&self, policy: &SessionPolicy) -> i64 {
        (self.last_seen_at + policy.idle_seconds).min(self.expires_at)
    }

    /// Whether the session is within its step-up window.
    pub fn is_fresh(&self, now: i64) -> bool {
        now < self.fresh_until
    }
}

/// Why a session ended, for events and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    SignedOut,
    Revoked,
    Expired,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::SignedOut => "signed_out",
            EndReason::Revoked => "revoked",
            EndReason::Expired => "expired",
        }
    }
}

/// What happened to sessions, for open WebSockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Created(SessionInfo),
    Ended {
        id: String,
        reason: EndReason,
    },
    /// A message arrived in the inbox: sockets whose session may read it are told its id.
    InboxMessage {
        id: String,
    },
    /// A new device asks to be enrolled: sockets whose session may manage credentials are
    /// shown the request.
    EnrollmentRequested(Box<crate::auth::enrollment::RequestView>),
    /// An enrollment request was approved, denied or ran out.
    EnrollmentAnswered {
        request_id: String,
        status: &'static str,
    },
    /// The node is shutting down: sockets close with 1001.
    Stopping,
}

#[derive(Debug, Default)]
struct Registry {
    by_id: HashMap<String, SessionInfo>,
    by_token: HashMap<[u8; 32], String>,
    persisted_seen: HashMap<String, i64>,
    /// Ends already out of memory whose database write failed; the sweeper retries them, so
    /// that an ended session does not come back at the next start.
    unwritten_ends: Vec<SessionEnds>,
}

/// Sessions ended together: deleted from the database with one audit entry each.
#[derive(Debug, Clone)]
struct SessionEnds {
    ids: Vec<String>,
    reason: EndReason,
    actor: Actor,
    at: i64,
}

impl SessionEnds {
    fn write(&self, connection: &mut rusqlite::Connection) -> Result<(), StoreError> {
        let tx = connection.transaction()?;
        rows::delete(&tx, &self.ids)?;
        for id in &self.ids {
            let event = AuditEvent::SessionEnded {
                session_id: id.clone(),
                reason: self.reason.as_str(),
            };
            audit::append(&tx, self.at, &event, &self.actor)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// The node's sessions.
#[derive(Debug)]
pub struct Sessions {
    registry: Mutex<Registry>,
    events: broadcast::Sender<SessionEvent>,
    pub policy: SessionPolicy,
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a session keeps of its client address once the address's retention ends: its network
/// (an IPv4 /24, an IPv6 /48). `local` and an address already cut stay as they are.
fn retention_form(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(address) => crate::net::IpNetwork::retention_form(address).to_string(),
        Err(_) => ip.to_owned(),
    }
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64::encode(&bytes)
}

impl Sessions {
    /// Loads the stored sessions, dropping those that have ended.
    pub async fn load(store: &Store, policy: SessionPolicy, now: i64) -> Result<Self, StoreError> {
        let stored = store.run(|c| rows::all(c)).await?;
        let mut registry = Registry::default();
        let mut ended = Vec::new();
        for row in stored {
            // A row whose capabilities do not read grants none.
            let capabilities = Capabilities::from_json(&row.capabilities).unwrap_or_default();
            let info = SessionInfo {
                id: row.id.clone(),
                kid: row.kid,
                credential_id: row.credential_id,
                capabilities,
                created_at: row.created_at,
                last_seen_at: row.last_seen_at,
                expires_at: row.expires_at,
                // A step-up does not outlive a restart, so a stored one cannot be made up.
                fresh_until: 0,
                ip: row.ip,
                user_agent: row.user_agent,
            };
            if info.ends_at(&policy) <= now {
                ended.push(row.id);
                continue;
            }
            registry.by_token.insert(row.token_hash, row.id.clone());
            registry
                .persisted_seen
                .insert(row.id.clone(), info.last_seen_at);
            registry.by_id.insert(row.id, info);
        }
        if !ended.is_empty() {
            // Sessions that expired while the node was down are ended and audited like any other.
            let ends = SessionEnds {
                ids: ended,
                reason: EndReason::Expired,
                actor: Actor::local(),
                at: now,
            };
            store.run(move |c| ends.write(c)).await?;
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Sessions {
            registry: Mutex::new(registry),
            events,
            policy,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every open socket that the node is stopping.
    pub fn announce_stopping(&self) {
        let _ = self.events.send(SessionEvent::Stopping);
    }

    /// Tells the sockets that a message with `id` arrived in the inbox.
    pub fn announce_inbox_message(&self, id: &str) {
        let _ = self
            .events
            .send(SessionEvent::InboxMessage { id: id.to_owned() });
    }

    /// Tells the sockets that a new device asks to be enrolled.
    pub fn announce_enrollment_request(&self, request: crate::auth::enrollment::RequestView) {
        let _ = self
            .events
            .send(SessionEvent::EnrollmentRequested(Box::new(request)));
    }

    /// Tells the sockets that an enrollment request was answered (`approved`, `denied`) or
    /// ran out (`expired`).
    pub fn announce_enrollment_answer(&self, request_id: &str, status: &'static str) {
        let _ = self.events.send(SessionEvent::EnrollmentAnswered {
            request_id: request_id.to_owned(),
            status,
        });
    }

    /// Subscribes to session events.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// Starts a session for `principal`; returns it with its bearer token. Audited as
    /// `session.created`.
    pub async fn create(
        &self,
        store: &Store,
        principal: &Principal,
        actor: &Actor,
        via: &'static str,
        now: i64,
    ) -> Result<(SessionInfo, String), StoreError> {
        let token = random_b64(32);
        let info = SessionInfo {
            id: random_b64(16),
            kid: principal.kid.clone(),
            credential_id: principal.credential_id.clone(),
            capabilities: principal.capabilities,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.absolute_seconds,
            // A new session is not stepped up: sensitive operations need a fresh assertion
            // on top of the sign-in, so a token taken from a new session is not enough.
            fresh_until: now,
            ip: actor.ip.clone().unwrap_or_else(|| "local".into()),
            user_agent: actor.user_agent.clone(),
        };
        let row = SessionRow {
            id: info.id.clone(),
            token_hash: token_hash(&token),
            kid: info.kid.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: info.expires_at,
            fresh_until: info.fresh_until,
            ip: info.ip.clone(),
            user_agent: info.user_agent.clone(),
            credential_id: info.credential_id.clone(),
            capabilities: info.capabilities.to_json(),
        };
        let actor = actor.clone();
        let event = AuditEvent::SessionCreated {
            session_id: info.id.clone(),
            kid: info.kid.clone(),
            via,
        };
        store
            .run_grouped(move |c| {
                rows::insert(c, &row)?;
                crate::store::credentials::touch(c, &row.credential_id, now)?;
                audit::append(c, now, &event, &actor)?;
                Ok(())
            })
            .await?;
        {
            let mut registry = self.lock();
            registry
                .by_token
                .insert(token_hash(&token), info.id.clone());
            registry.persisted_seen.insert(info.id.clone(), now);
            registry.by_id.insert(info.id.clone(), info.clone());
        }
        let _ = self.events.send(SessionEvent::Created(info.clone()));
        Ok((info, token))
    }

    /// The live session for a bearer token, marking it used. Returns whether the last use should
    /// be written to the database now.
    pub fn authenticate(&self, token: &str, now: i64) -> Option<(SessionInfo, bool)> {
        let hash = token_hash(token);
        let mut registry = self.lock();
        let id = registry.by_token.get(&hash)?.clone();
        let session = registry.by_id.get_mut(&id)?;
        if session.ends_at(&self.policy) <= now {
            return None;
        }
        session.last_seen_at = session.last_seen_at.max(now);
        let info = session.clone();
        let persisted = registry.persisted_seen.get(&id).copied().unwrap_or(0);
        let due = now - persisted >= TOUCH_INTERVAL;
        if due {
            registry.persisted_seen.insert(id, now);
        }
        Some((info, due))
    }

    /// Writes a session's last use to the database.
    pub async fn persist_last_seen(&self, store: &Store, id: &str, at: i64) {
        let id = id.to_owned();
        if let Err(error) = store.run(move |c| rows::touch(c, &id, at)).await {
            tracing::warn!(%error, "recording a session's last use failed");
        }
    }

    /// Marks a session as used without a token (WebSocket traffic).
    pub fn touch(&self, id: &str, now: i64) {
        if let Some(session) = self.lock().by_id.get_mut(id) {
            session.last_seen_at = session.last_seen_at.max(now);
        }
    }

    /// Whether the session exists and has not ended at `now`.
    pub fn is_active(&self, id: &str, now: i64) -> bool {
        self.lock()
            .by_id
            .get(id)
            .is_some_and(|s| s.ends_at(&self.policy) > now)
    }

    /// Every live session, newest first.
    pub fn list(&self, now: i64) -> Vec<SessionInfo> {
        let mut sessions: Vec<SessionInfo> = self
            .lock()
            .by_id
            .values()
            .filter(|s| s.ends_at(&self.policy) > now)
            .cloned()
            .collect();
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        sessions
    }

    /// Marks a session freshly authenticated for [`STEP_UP_SECONDS`]. Audited as `session.stepped_up`.
    pub async fn step_up(
        &self,
        store: &Store,
        id: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        let fresh_until = now + STEP_UP_SECONDS;
        let session_id = id.to_owned();
        let actor = actor.clone();
        store
            .run(move |c| {
                let tx = c.transaction()?;
                rows::set_fresh_until(&tx, &session_id, fresh_until)?;
                let event = AuditEvent::SessionSteppedUp {
                    session_id: session_id.clone(),
                };
                audit::append(&tx, now, &event, &actor)?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .await?;
        if let Some(session) = self.lock().by_id.get_mut(id) {
            session.fresh_until = fresh_until;
        }
        Ok(())
    }

    /// Ends sessions: removed from memory first (so no later request passes), then from the
    /// database with one audit entry each, then announced. Returns how many ended.
    pub async fn end(
        &self,
        store: &Store,
        ids: Vec<String>,
        reason: EndReason,
        actor: &Actor,
        now: i64,
    ) -> Result<usize, StoreError> {
        let ended: Vec<String> = {
            let mut registry = self.lock();
            let ended: Vec<String> = ids
                .into_iter()
                .filter(|id| registry.by_id.remove(id).is_some())
                .collect();
            registry.by_token.retain(|_, id| !ended.contains(id));
            for id in &ended {
                registry.persisted_seen.remove(id);
            }
            ended
        };
        if ended.is_empty() {
            return Ok(0);
        }
        let count = ended.len();
        let ends = SessionEnds {
            ids: ended,
            reason,
            actor: actor.clone(),
            at: now,
        };
        let written = {
            let ends = ends.clone();
            store.run(move |c| ends.write(c)).await
        };
        for id in &ends.ids {
            let _ = self.events.send(SessionEvent::Ended {
                id: id.clone(),
                reason,
            });
        }
        if let Err(error) = written {
            self.lock().unwritten_ends.push(ends);
            return Err(error);
        }
        Ok(count)
    }

    /// The credentials that live sessions act for.
    pub fn credential_ids(&self) -> std::collections::HashSet<String> {
        self.lock()
            .by_id
            .values()
            .map(|s| s.credential_id.clone())
            .collect()
    }

    /// Ends every session of a credential (revoked, reset or changed), with `reason`.
    pub async fn end_for_credential(
        &self,
        store: &Store,
        credential_id: &str,
        reason: EndReason,
        actor: &Actor,
        now: i64,
    ) -> Result<usize, StoreError> {
        let ids: Vec<String> = self
            .lock()
            .by_id
            .values()
            .filter(|s| s.credential_id == credential_id)
            .map(|s| s.id.clone())
            .collect();
        self.end(store, ids, reason, actor, now).await
    }

    /// Writes the ends whose database write failed earlier; those that fail again stay queued.
    /// The sweeper calls this every second, and the node once more as it stops.
    pub async fn retry_unwritten_ends(&self, store: &Store) -> Result<(), StoreError> {
        let queued = std::mem::take(&mut self.lock().unwritten_ends);
        let mut first_error = None;
        for ends in queued {
            let attempt = {
                let ends = ends.clone();
                store.run(move |c| ends.write(c)).await
            };
            if let Err(error) = attempt {
                self.lock().unwritten_ends.push(ends);
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Cuts the client address of every session started more than `retention_days` before
    /// `now` (none when 0) to its network, in the database (including rows of ended sessions
    /// whose delete is still queued) and in memory, so listings show it cut too. Returns how
    /// many stored addresses were cut.
    pub async fn truncate_old_addresses(
        &self,
        store: &Store,
        now: i64,
        retention_days: u32,
    ) -> Result<usize, StoreError> {
        let Some(cutoff) = crate::audit::retention_cutoff(now, retention_days) else {
            return Ok(0);
        };
        let cut = store
            .run(move |c| {
                let tx = c.transaction()?;
                let mut cut = 0;
                for (id, ip) in rows::addresses_started_before(&tx, cutoff)? {
                    let network = retention_form(&ip);
                    if network != ip {
                        rows::set_ip(&tx, &id, &network)?;
                        cut += 1;
                    }
                }
                tx.commit()?;
                Ok::<_, StoreError>(cut)
            })
            .await?;
        for session in self.lock().by_id.values_mut() {
            if session.created_at < cutoff {
                session.ip = retention_form(&session.ip);
            }
        }
        Ok(cut)
    }

    /// Writes ends whose database write failed before, then ends every session that has
    /// expired by `now`.
    pub async fn sweep(&self, store: &Store, now: i64) -> Result<usize, StoreError> {
        self.retry_unwritten_ends(store).await?;
        let expired: Vec<String> = self
            .lock()
            .by_id
            .values()
            .filter(|s| s.ends_at(&self.policy) <= now)
            .map(|s| s.id.clone())
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        self.end(store, expired, EndReason::Expired, &Actor::local(), now)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_store(dir: &std::path::Path) -> Store {
        Store::open(dir).expect("store")
    }

    fn stored_ids(store: &Store) -> Vec<String> {
        store
            .run_blocking(|c| rows::all(c))
            .expect("rows")
            .into_iter()
            .map(|row| row.id)
            .collect()
    }

    #[tokio::test]
    async fn an_end_the_database_refused_is_written_by_the_next_sweep() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(dir.path());
        let sessions = Sessions::load(&store, SessionPolicy::default(), 1_000)
            .await
            .expect("load");
        let actor = Actor::local();
        let (info, token) = sessions
            .create(
                &store,
                &Principal {
                    credential_id: "kid".into(),
                    kid: "kid".into(),
                    capabilities: Capabilities::all(),
                },
                &actor,
                "test",
                1_000,
            )
            .await
            .expect("create");
        // The next delete from the session table fails, as a full disk would make it.
        store
            .run_blocking(|c| {
                c.execute_batch(
                    "CREATE TEMP TRIGGER refuse_delete BEFORE DELETE ON session
                     BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;",
                )
                .map_err(StoreError::from)
            })
            .expect("trigger");
        let ended = sessions
            .end(
                &store,
                vec![info.id.clone()],
                EndReason::Revoked,
                &actor,
                1_001,
            )
            .await;
        assert!(ended.is_err());
        assert!(
            sessions.authenticate(&token, 1_001).is_none(),
            "revoked at once"
        );
        assert_eq!(
            stored_ids(&store),
            vec![info.id.clone()],
            "the write failed"
        );
        store
            .run_blocking(|c| {
                c.execute_batch("DROP TRIGGER refuse_delete")
                    .map_err(StoreError::from)
            })
            .expect("drop trigger");
        sessions.sweep(&store, 1_002).await.expect("sweep");
        assert!(stored_ids(&store).is_empty(), "the sweep wrote the end");
        let reloaded = Sessions::load(&store, SessionPolicy::default(), 1_003)
            .await
            .expect("reload");
        assert!(
            reloaded.authenticate(&token, 1_003).is_none(),
            "not back after a restart"
        );
    }

    #[tokio::test]
    async fn addresses_past_their_retention_are_cut_in_the_database_and_in_listings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(dir.path());
        let day = crate::audit::SECONDS_PER_DAY;
        let policy = SessionPolicy {
            idle_seconds: 40 * day,
            absolute_seconds: 40 * day,
        };
        let sessions = Sessions::load(&store, policy, 0).await.expect("load");
        let principal = Principal {
            credential_id: "kid".into(),
            kid: "kid".into(),
            capabilities: Capabilities::all(),
        };
        let mut ids = Vec::new();
        for (ip, at) in [
            (Some("203.0.113.77"), 0),
            (Some("2001:db8:1:2::5"), 0),
            (None, 0),
            (Some("198.51.100.9"), 20 * day),
        ] {
            let actor = match ip {
                Some(ip) => Actor::client(ip.into(), Some("test")),
                None => Actor::local(),
            };
            let (info, _) = sessions
                .create(&store, &principal, &actor, "test", at)
                .await
                .expect("create");
            ids.push(info.id);
        }
        let stored_ips = || {
            let rows = store.run_blocking(|c| rows::all(c)).expect("rows");
            ids.iter()
                .map(|id| {
                    rows.iter()
                        .find(|row| &row.id == id)
                        .map(|row| row.ip.clone())
                        .expect("stored")
                })
                .collect::<Vec<_>>()
        };
        let listed_ips = || {
            let listed = sessions.list(31 * day);
            ids.iter()
                .map(|id| {
                    listed
                        .iter()
                        .find(|s| &s.id == id)
                        .map(|s| s.ip.clone())
                        .expect("listed")
                })
                .collect::<Vec<_>>()
        };
        let whole = ["203.0.113.77", "2001:db8:1:2::5", "local", "198.51.100.9"];
        assert_eq!(
            sessions
                .truncate_old_addresses(&store, 31 * day, 0)
                .await
                .expect("cut"),
            0,
            "0 keeps addresses whole"
        );
        assert_eq!(stored_ips(), whole);
        assert_eq!(
            sessions
                .truncate_old_addresses(&store, 31 * day, 30)
                .await
                .expect("cut"),
            2
        );
        let cut = ["203.0.113.0/24", "2001:db8:1::/48", "local", "198.51.100.9"];
        assert_eq!(
            stored_ips(),
            cut,
            "the session of day 20 is not 30 days old"
        );
        assert_eq!(listed_ips(), cut);
        assert_eq!(
            sessions
                .truncate_old_addresses(&store, 31 * day, 30)
                .await
                .expect("cut"),
            0,
            "a cut address stays as it is"
        );
        let reloaded = Sessions::load(&store, policy, 31 * day)
            .await
            .expect("reload");
        assert_eq!(reloaded.list(31 * day).len(), 4);
        assert!(
            reloaded
                .list(31 * day)
                .iter()
                .all(|s| cut.contains(&s.ip.as_str()))
        );
    }
}
