//! Building and running a node: open the store, make the claim token, bind the listener,
//! wire state and routes, and shut down cleanly.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};

use crate::audit::{self, Actor, AuditEvent};
use crate::auth::attempts::{self, AttemptLedger};
use crate::auth::challenge::Challenges;
use crate::auth::claim::current_claim_token;
use crate::auth::credentials::CredentialRegistry;
use crate::auth::node_key::NodeKeyBinding;
use crate::auth::sessions::{EndReason, Sessions};
use crate::auth::totp::{self, TotpVault};
use crate::auth::unlock_codes::LiveCodes;
use crate::clock::{Clock, SystemClock};
use crate::config::{PublicUrl, Settings};
use crate::http::{self, AppState};
use crate::jose::sealed::SEALING_KEY_FILE;
use crate::limits::{self, ConnectionCaps};
use crate::store::{Store, StoreError, meta, owner};
use crate::telemetry;
use crate::well_known_dir::WellKnownDir;

/// How long in-flight requests get to finish after a stop signal, in seconds.
pub const SHUTDOWN_GRACE_SECONDS: u64 = 10;
/// How long a new connection may take to send its first request head, and how long an idle
/// keep-alive connection stays open, in seconds.
pub const IDLE_CONNECTION_SECONDS: u64 = 5;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch the well-known directory {path}: {source}")]
    WellKnownDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    SealingKey(#[from] crate::jose::sealed::SealError),
    #[error(transparent)]
    NodeKey(#[from] crate::jose::node_key::NodeKeyError),
}

/// A node that is bound and ready to run.
pub struct Application {
    server: Server,
    state: web::Data<AppState>,
    /// The background tasks that write to the database, and the signal that stops them.
    background: Vec<tokio::task::JoinHandle<()>>,
    stop_background: tokio::sync::watch::Sender<bool>,
    address: SocketAddr,
    public_url: PublicUrl,
}

impl Application {
    /// Builds a node on the system clock.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds a node with the given clock (tests move time by hand).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        // Before anything is opened or bound.
        settings.check_transport()?;
        if settings.serves_insecure_http() {
            tracing::warn!(
                "serving a plain-http public URL outside this machine (--insecure-http): sessions, \
                 cookies and pages cross the network readable and changeable; use https"
            );
        }
        let data_dir = settings.data_dir.clone();
        let (store, totp, node_key) = tokio::task::spawn_blocking(move || {
            // The store makes the data directory private before the key files go in.
            let store = Store::open(&data_dir)?;
            let totp = TotpVault::load_or_create(&data_dir)?;
            let node_key = crate::jose::node_key::CurrentNodeKey::new(
                &data_dir,
                crate::jose::node_key::NodeKey::load_or_create(&data_dir)?,
            );
            Ok::<_, StartupError>((store, totp, node_key))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        let listener =
            TcpListener::bind(settings.listen).map_err(|source| StartupError::Listen {
                address: settings.listen,
                source,
            })?;
        let address = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                address: settings.listen,
                source,
            })?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| PublicUrl::from_listen_address(address));
        let well_known_dir = WellKnownDir::watch(&settings.well_known_dir).map_err(|source| {
            StartupError::WellKnownDir {
                path: settings.well_known_dir.clone(),
                source,
            }
        })?;
        announce_owner_state(&store, &public_url, clock.now(), &settings).await?;
        if totp::secret_opens(&store, &totp).await? == Some(false) {
            tracing::error!(
                "two-step unlock is on, but its secret does not open under {}: restore the \
                 sealing.key backed up with this database; until then codes are refused and \
                 only recovery codes unlock",
                settings.data_dir.join(SEALING_KEY_FILE).display()
            );
        }
        let sessions =
            Arc::new(Sessions::load(&store, settings.session_policy, clock.now()).await?);
        let credentials = CredentialRegistry::load(&store, clock.now()).await?;
        let node_binding = match credentials.owner_key(&store, clock.now()).await? {
            Some(owner_key) => {
                NodeKeyBinding::load(&store, &node_key, &owner_key, public_url.as_str()).await?
            }
            None => NodeKeyBinding::default(),
        };
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let caps = ConnectionCaps::for_open_files(limits::raise_open_file_limit(), workers);
        tracing::info!(
            open_files = caps.open_files,
            connections = caps.connections,
            websockets = caps.websockets,
            "connection caps sized from the open-file limit"
        );
        let state = web::Data::new(AppState {
            store: store.clone(),
            public_url: public_url.clone(),
            clock: clock.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            attempts: AttemptLedger::load(&store, clock.now()).await?,
            live_codes: {
                let live_codes = LiveCodes::default();
                live_codes.refresh(&store, clock.now()).await?;
                live_codes
            },
            totp,
            node_key,
            node_binding,
            node_proofs: crate::limits::MinuteRates::new(
                NODE_PROOFS_PER_CLIENT_PER_MINUTE,
                NODE_PROOFS_PER_CLIENT_PER_MINUTE * 4,
                NODE_PROOFS_PER_MINUTE,
            ),
            well_known_dir,
            credentials,
            enrollment: crate::auth::enrollment::Enrollment::new(settings.enrollment),
            challenges: Challenges::default(),
            sessions: sessions.clone(),
            websockets: crate::limits::OpenSockets::new(
                settings.websocket_max_per_client,
                caps.websockets,
            ),
            profile: crate::indieauth::profile::ProfileCell::load(&store, &settings.profile)
                .await?,
            indieauth_clients: crate::indieauth::client::ClientFetcher::new(
                public_url.is_loopback(),
            ),
            passkeys: crate::auth::passkeys::Passkeys::new(public_url.as_str()),
            inbox: crate::inbox::Inbox::new(settings.inbox),
            sender_keys: crate::inbox::SenderKeyFetcher::new(public_url.is_loopback()),
        });
        let app_state = state.clone();
        let idle = std::time::Duration::from_secs(IDLE_CONNECTION_SECONDS);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(http::query_config())
                .app_data(http::path_config())
                .configure(http::routes)
                .wrap(Compress::default())
                .wrap(http::default_headers())
                .wrap(from_fn(telemetry::request_span))
        })
        .workers(workers)
        .max_connections(caps.per_worker)
        .client_request_timeout(idle)
        .keep_alive(idle)
        .listen(listener)
        .map_err(|source| StartupError::Listen { address, source })?
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
        .run();
        let (stop_background, stopping) = tokio::sync::watch::channel(false);
        let background = vec![
            actix_web::rt::spawn(apply_retention(
                state.clone(),
                Retention {
                    entries_days: settings.audit_retention_days,
                    addresses_days: settings.ip_retention_days,
                },
                stopping.clone(),
            )),
            actix_web::rt::spawn(sweep_sessions(state.clone(), stopping.clone())),
            actix_web::rt::spawn(flush_attempts(state.clone(), stopping)),
        ];
        Ok(Application {
            server,
            state,
            background,
            stop_background,
            address,
            public_url,
        })
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The node's public URL.
    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
    }

    /// A handle to stop the node gracefully.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            sessions: self.state.sessions.clone(),
        }
    }

    /// Serves until stopped, then writes what is still in memory (failed attempts, their
    /// audit entries, session ends a failed write left queued) and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        // Background writers finish what they are doing and stop, so that nothing they hold
        // meets a closed database.
        let _ = self.stop_background.send(true);
        for task in self.background {
            let _ = task.await;
        }
        let state = self.state;
        let now = state.clock.now();
        if let Err(error) = state.attempts.flush(&state.store, now, true).await {
            tracing::error!(%error, "writing failed attempts at shutdown failed");
        }
        if let Err(error) = state.sessions.retry_unwritten_ends(&state.store).await {
            tracing::error!(%error, "writing session ends at shutdown failed");
        }
        let store = state.store.clone();
        let closed = tokio::task::spawn_blocking(move || store.close()).await;
        match closed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "closing the database failed"),
            Err(error) => tracing::error!(%error, "closing the database failed"),
        }
        tracing::info!("stopped");
        result
    }
}

/// Stops a running node: open WebSockets are closed with 1001 first, then requests in flight
/// get up to [`SHUTDOWN_GRACE_SECONDS`] to finish.
#[derive(Clone)]
pub struct Stopper {
    server: ServerHandle,
    sessions: Arc<Sessions>,
}

impl Stopper {
    pub async fn stop(self) {
        self.sessions.announce_stopping();
        self.server.stop(true).await;
    }
}

/// Audits the start and tells the operator how to claim an unclaimed node. The setup link is
/// logged only when its token is new; later starts point at `siteid claim-url` instead.
async fn announce_owner_state(
    store: &Store,
    public_url: &PublicUrl,
    now: i64,
    settings: &Settings,
) -> Result<(), StoreError> {
    let served_url = public_url.to_string();
    let served_enrollment = settings.enrollment.as_str();
    let (token, kid) = store
        .run(move |c| {
            let tx = c.transaction()?;
            let event = AuditEvent::NodeStarted {
                version: env!("CARGO_PKG_VERSION").into(),
            };
            audit::append(&tx, now, &event, &Actor::local())?;
            meta::set_text(&tx, meta::SERVED_PUBLIC_URL, &served_url)?;
            meta::set_text(&tx, meta::SERVED_ENROLLMENT, served_enrollment)?;
            let token = current_claim_token(&tx, now)?;
            let kid = owner::find(&tx)?.map(|o| o.kid);
            tx.commit()?;
            Ok::<_, StoreError>((token, kid))
        })
        .await?;
    match (token, kid) {
        (Some((token, true)), _) => {
            tracing::info!("this node has no owner yet; claim it at {public_url}/setup#{token}");
        }
        (Some((_, false)), _) => tracing::info!(
            "this node has no owner yet; `siteid claim-url --data-dir {}` prints its setup link",
            settings.data_dir.display()
        ),
        (None, Some(kid)) => tracing::info!(%kid, "serving the owner's identity"),
        (None, None) => {}
    }
    Ok(())
}

/// Ends expired sessions once a second, so their sockets close and the audit log records it.
async fn sweep_sessions(
    state: web::Data<AppState>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.changed() => return,
        }
        let now = state.clock.now();
        // Credentials another process changed (the command line, an edit of the file) are
        // read again first, so a key revoked there stops working within a second.
        let mut outcome = state
            .credentials
            .refresh_if_changed(&state.store, now)
            .await;
        // The node key's binding may have changed with them (`siteid init` writing it, a
        // rotation replacing the key it was read for, `siteid node-key rotate` installing
        // another node key, which the reload then swaps in).
        if let Ok(changed) = outcome
            && let Some(owner_key) = state.credentials.loaded_owner_key()
            && (changed || state.node_binding.is_stale(&owner_key.kid))
        {
            outcome = state
                .node_binding
                .reload(
                    &state.store,
                    &state.node_key,
                    &owner_key,
                    state.public_url.as_str(),
                )
                .await
                .map(|()| true);
        }
        let mut outcome = outcome.map(|_| ());
        if outcome.is_ok() {
            outcome = state.sessions.sweep(&state.store, now).await.map(|_| ());
        }
        // Enrollment requests nobody answered in time, and a window that ran out.
        if outcome.is_ok() {
            outcome = crate::auth::enrollment::sweep(&state.store, now)
                .await
                .map(|expired| {
                    for id in expired {
                        state.sessions.announce_enrollment_answer(&id, "expired");
                    }
                });
        }
        // The sessions of a credential past its expiry end too, and those of a credential that
        // is no longer live (revoked elsewhere, or failing its binding since a reload).
        let mut ended_credentials = state.credentials.expired(now);
        ended_credentials.extend(
            state
                .sessions
                .credential_ids()
                .into_iter()
                .filter(|id| state.credentials.get(id).is_none()),
        );
        for credential_id in ended_credentials {
            // What an expired or vanished credential approved for other sites ends with it.
            if outcome.is_ok() {
                let id = credential_id.clone();
                outcome = state
                    .store
                    .run(move |c| {
                        let tx = c.transaction()?;
                        crate::audit::revoke_grants_of_credential(&tx, &id, now, &Actor::local())?;
                        tx.commit()?;
                        Ok::<_, StoreError>(())
                    })
                    .await;
            }
            if outcome.is_ok() {
                outcome = state
                    .sessions
                    .end_for_credential(
                        &state.store,
                        &credential_id,
                        EndReason::Expired,
                        &Actor::local(),
                        now,
                    )
                    .await
                    .map(|_| ());
            }
        }
        match outcome {
            Ok(()) => {}
            Err(StoreError::Closed) => return,
            Err(error) => tracing::warn!(%error, "ending expired sessions failed"),
        }
    }
}

/// Writes failed attempts and their audit entries once a second, in one transaction, and
/// reads the live unlock codes again.
async fn flush_attempts(
    state: web::Data<AppState>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.changed() => return,
        }
        match state
            .attempts
            .flush(&state.store, state.clock.now(), false)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Closed) => return,
            Err(error) => tracing::warn!(%error, "writing failed attempts failed"),
        }
        // Codes made on the command line become usable here.
        match state
            .live_codes
            .refresh(&state.store, state.clock.now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Closed) => return,
            Err(error) => tracing::warn!(%error, "reading the live unlock codes failed"),
        }
    }
}

/// How long the audit log keeps entries, and client addresses whole, in days (0: forever).
#[derive(Debug, Clone, Copy)]
struct Retention {
    entries_days: u32,
    addresses_days: u32,
}

/// How often the retention task reads the node's clock, in real seconds. Reading it costs
/// nothing; a pass runs only once the clock has moved [`RETENTION_PASS_SECONDS`].
const RETENTION_CHECK_SECONDS: u64 = 1;
/// How far the node's clock moves between two retention passes, in seconds.
const RETENTION_PASS_SECONDS: i64 = 3600;

/// Whether a retention pass is due at `now`: at start-up, once the node's clock has moved an
/// hour past the last pass, and when it went back (the system clock was set back).
fn retention_pass_due(last_pass: Option<i64>, now: i64) -> bool {
    last_pass.is_none_or(|last| now < last || now - last >= RETENTION_PASS_SECONDS)
}

/// At start-up and then every hour of the node's clock (so a hand-driven clock drives it too):
/// one retention pass.
/// How many challenges with the node's proof one client address may ask for a minute.
const NODE_PROOFS_PER_CLIENT_PER_MINUTE: u32 = 60;
/// How many challenges with the node's proof the node answers a minute in all (about a core's
/// twentieth at the cost of a P-384 signature).
const NODE_PROOFS_PER_MINUTE: u32 = 3000;

/// How long an IndieAuth grant that ended (revoked or expired) is kept, in seconds.
const ENDED_GRANTS_KEPT_SECONDS: i64 = 30 * 86_400;

async fn apply_retention(
    state: web::Data<AppState>,
    retention: Retention,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(RETENTION_CHECK_SECONDS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_pass = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.changed() => return,
        }
        let now = state.clock.now();
        if !retention_pass_due(last_pass, now) {
            continue;
        }
        last_pass = Some(now);
        if let Err(StoreError::Closed) = retention_pass(&state, retention, now).await {
            return;
        }
    }
}

/// Cuts client addresses past their retention to their network (audit entries and sessions),
/// deletes failure rows no throttle window reads any more, and removes audit entries past
/// their retention. A step that fails is logged and tried again at the next pass.
async fn retention_pass(
    state: &AppState,
    retention: Retention,
    now: i64,
) -> Result<(), StoreError> {
    let store = &state.store;
    match audit::truncate_old_addresses(store, now, retention.addresses_days).await {
        Ok(0) => {}
        Ok(cut) => tracing::info!(
            cut,
            "audit entries' client addresses past their retention cut to their network"
        ),
        Err(StoreError::Closed) => return Err(StoreError::Closed),
        Err(error) => {
            tracing::warn!(%error, "cutting old client addresses in the audit log failed")
        }
    }
    match state
        .sessions
        .truncate_old_addresses(store, now, retention.addresses_days)
        .await
    {
        Ok(0) => {}
        Ok(cut) => tracing::info!(
            cut,
            "sessions' client addresses past their retention cut to their network"
        ),
        Err(StoreError::Closed) => return Err(StoreError::Closed),
        Err(error) => tracing::warn!(%error, "cutting old client addresses of sessions failed"),
    }
    match attempts::forget_stale_failures(store, now).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "failure rows outside every window removed"),
        Err(StoreError::Closed) => return Err(StoreError::Closed),
        Err(error) => tracing::warn!(%error, "removing old failure rows failed"),
    }
    // IndieAuth grants that ended 30 days ago go, with their tokens, and expired codes.
    let before = now.saturating_sub(ENDED_GRANTS_KEPT_SECONDS);
    match store
        .run(move |c| crate::store::indieauth::forget_ended(c, before))
        .await
    {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "IndieAuth grants that ended 30 days ago removed"),
        Err(StoreError::Closed) => return Err(StoreError::Closed),
        Err(error) => tracing::warn!(%error, "removing ended IndieAuth grants failed"),
    }
    match audit::prune(store, now, retention.entries_days).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "old audit entries removed"),
        Err(audit::AuditLogError::Store(StoreError::Closed)) => return Err(StoreError::Closed),
        Err(error) => tracing::warn!(%error, "removing old audit entries failed"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_pass_runs_at_start_up_and_then_once_an_hour_of_the_node_clock() {
        assert!(retention_pass_due(None, 1_000));
        assert!(!retention_pass_due(Some(1_000), 1_000));
        assert!(!retention_pass_due(Some(1_000), 1_000 + 3_599));
        assert!(retention_pass_due(Some(1_000), 1_000 + 3_600));
        assert!(
            retention_pass_due(Some(1_000), 1_000 + 40 * 86_400),
            "a clock moved by days runs one pass at once"
        );
        assert!(
            retention_pass_due(Some(1_000), 999),
            "a clock set back does not hold the next pass off"
        );
    }
}
