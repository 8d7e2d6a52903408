//! Pairing: the enrollment mode (`open`, `approval`, `window`), the enrollment window, and the
//! requests of new devices that an enrolled device approves, with the comparison code both
//! screens show.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::InternalError;
use super::credential_changes::{self, CredentialError};
use super::credentials::{Capabilities, CredentialRegistry, Principal};
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::limits::{MinuteRates, RateLimited};
use crate::recovery::sets::label_problem;
use crate::store::enrollment::{self as rows, RequestRow, WindowRow};
use crate::store::{Store, StoreError};

/// How long a request waits for an answer, in seconds.
pub const REQUEST_LIFETIME: i64 = 300;
/// The longest window an owner may open, in minutes.
pub const MAX_WINDOW_MINUTES: u32 = 60;
/// The window a claim or a restore opens in `window` mode, so that the browser that claimed
/// can enroll its own device key, in seconds.
pub const CLAIM_WINDOW_SECONDS: i64 = 600;
/// Requests that may wait at once, node-wide, from one client address (an IPv6 /64) and from
/// one network (an IPv4 /24, an IPv6 /48): one address cannot fill the queue alone.
pub const MAX_PENDING_REQUESTS: usize = 8;
pub const MAX_PENDING_PER_CLIENT: usize = 2;
pub const MAX_PENDING_PER_NETWORK: usize = 4;
/// How long answered requests are kept (their id still answers its status), in seconds.
pub const ANSWERED_KEPT_SECONDS: i64 = 86_400;
/// Requests one client address, one network and the node may make a minute.
const REQUESTS_PER_CLIENT_PER_MINUTE: u32 = 6;
const REQUESTS_PER_NETWORK_PER_MINUTE: u32 = 12;
const REQUESTS_PER_MINUTE: u32 = 30;
/// The domain separator of the comparison code.
const CODE_CONTEXT: &str = "siteid-pairing-v1";

pub use crate::config::EnrollmentMode as Mode;

/// Why pairing refused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `approval` mode: only an enrolled device's approval (or an open window) lets a device in.
    ApprovalRequired,
    /// `window` mode, and no window is open.
    WindowClosed,
}

/// The window, while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpenWindow {
    pub opened_at: i64,
    pub closes_at: i64,
}

/// The pairing settings in force at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EnrollmentState {
    pub mode: Mode,
    /// The mode `config.toml` or `SITEID_ENROLLMENT` sets, which applies until the owner
    /// chooses one.
    pub configured_mode: Mode,
    pub window: Option<OpenWindow>,
}

impl EnrollmentState {
    /// Whether a device that is not signed in may unlock the owner key with the password.
    pub fn admits_password_unlock(&self) -> Result<(), Gate> {
        match (self.mode, self.window) {
            (Mode::Open, _) | (_, Some(_)) => Ok(()),
            (Mode::Approval, None) => Err(Gate::ApprovalRequired),
            (Mode::Window, None) => Err(Gate::WindowClosed),
        }
    }

    /// Whether a new credential may be added (through the credentials API, a passkey, or an
    /// approved request): in `window` mode only while the window is open.
    pub fn admits_new_credential(&self) -> Result<(), Gate> {
        match (self.mode, self.window) {
            (Mode::Window, None) => Err(Gate::WindowClosed),
            _ => Ok(()),
        }
    }
}

/// Why an enrollment operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("this node has no owner yet")]
    NotClaimed,
    #[error("enrollment is closed")]
    Gate(Gate),
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a credential or request with this key or id exists")]
    Exists,
    #[error("no such enrollment request")]
    NotFound,
    #[error("the request was answered or ran out")]
    Answered,
    #[error("too many requests are waiting")]
    TooManyPending {
        /// Seconds until the oldest waiting request runs out.
        retry_after: i64,
    },
    #[error("too many requests from here")]
    RateLimited(RateLimited),
    #[error("the approval grants capabilities the approver does not hold")]
    ExceedsApprover(Vec<&'static str>),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for EnrollmentError {
    fn from(error: StoreError) -> Self {
        EnrollmentError::Internal(InternalError(error))
    }
}

/// The node's pairing settings and request rates.
#[derive(Debug)]
pub struct Enrollment {
    configured_mode: Mode,
    requests: MinuteRates,
}

/// A request as a new device sends it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub kind: String,
    pub label: String,
    /// The `public_key` member as raw JSON.
    pub public_key_json: String,
}

/// What the new device and the approving devices are shown of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    pub request_id: String,
    pub status: String,
    pub kind: String,
    pub label: String,
    pub kid: String,
    pub alg: String,
    pub public_key: serde_json::Value,
    pub node_nonce: String,
    pub ip: String,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl RequestView {
    pub fn of(row: &RequestRow, now: i64) -> Self {
        let status = if row.status == "pending" && row.expires_at <= now {
            "expired".to_owned()
        } else {
            row.status.clone()
        };
        RequestView {
            request_id: row.id.clone(),
            status,
            kind: row.kind.clone(),
            label: row.label.clone(),
            kid: row.kid.clone(),
            alg: row.alg.clone(),
            public_key: serde_json::from_str(&row.public_key).unwrap_or_default(),
            node_nonce: row.node_nonce.clone(),
            ip: row.ip.clone(),
            user_agent: row.user_agent.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// The six-digit comparison code of a request: the first four bytes of
/// SHA-256(`siteid-pairing-v1` 0x00 public URL 0x00 request id 0x00 kid 0x00 node nonce), read
/// as a big-endian integer, modulo 1,000,000, with leading zeros. The new device contributes its
/// request id and key, the node a nonce it chose after the request arrived.
pub fn comparison_code(public_url: &str, request_id: &str, kid: &str, node_nonce: &str) -> String {
    let mut hash = Sha256::new();
    for (i, part) in [CODE_CONTEXT, public_url, request_id, kid, node_nonce]
        .iter()
        .enumerate()
    {
        if i > 0 {
            hash.update([0u8]);
        }
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let number = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    format!("{:06}", number % 1_000_000)
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> EnrollmentError {
    EnrollmentError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// What ended a window, for the audit log.
pub enum WindowEnd {
    Owner,
    Expired,
}

impl Enrollment {
    pub fn new(configured_mode: Mode) -> Self {
        Enrollment {
            configured_mode,
            requests: MinuteRates::new(
                REQUESTS_PER_CLIENT_PER_MINUTE,
                REQUESTS_PER_NETWORK_PER_MINUTE,
                REQUESTS_PER_MINUTE,
            ),
        }
    }

    /// The mode `config.toml` or `SITEID_ENROLLMENT` sets.
    pub fn configured_mode(&self) -> Mode {
        self.configured_mode
    }

    /// The settings in force at `now`, read from the database (the command line may have
    /// changed them a moment ago).
    pub async fn state(&self, store: &Store, now: i64) -> Result<EnrollmentState, StoreError> {
        let configured = self.configured_mode;
        store.run(move |c| read_state(c, configured, now)).await
    }

    /// Sets the mode. Audited as `enrollment.mode_changed` when it changes.
    pub async fn set_mode(
        &self,
        store: &Store,
        mode: Mode,
        actor: &Actor,
        now: i64,
    ) -> Result<EnrollmentState, StoreError> {
        set_mode(store, self.configured_mode, mode, actor, now).await
    }

    /// Opens (or extends) the window for `minutes` (1 to 60). Audited as
    /// `enrollment.window_opened`.
    pub async fn open_window(
        &self,
        store: &Store,
        minutes: u32,
        actor: &Actor,
        now: i64,
    ) -> Result<EnrollmentState, EnrollmentError> {
        if !(1..=MAX_WINDOW_MINUTES).contains(&minutes) {
            return Err(invalid(
                "minutes",
                format!("must be from 1 to {MAX_WINDOW_MINUTES}"),
            ));
        }
        let state = open_window(
            store,
            self.configured_mode,
            i64::from(minutes) * 60,
            actor,
            now,
        )
        .await?;
        Ok(state)
    }

    /// Closes the window now. Audited as `enrollment.window_closed` (reason `owner`) when one
    /// was open.
    pub async fn close_window(
        &self,
        store: &Store,
        actor: &Actor,
        now: i64,
    ) -> Result<EnrollmentState, StoreError> {
        close_window(store, self.configured_mode, actor, now).await
    }

    /// Stores a new device's request. Audited as `enrollment.requested`.
    pub async fn request(
        &self,
        store: &Store,
        registry: &CredentialRegistry,
        input: NewRequest,
        actor: &Actor,
        now: i64,
    ) -> Result<RequestRow, EnrollmentError> {
        credential_changes::check_id(&input.id).map_err(EnrollmentError::from)?;
        if !matches!(input.kind.as_str(), "device" | "key") {
            return Err(invalid("kind", "must be \"device\" or \"key\""));
        }
        if let Some(problem) = label_problem(&input.label) {
            return Err(invalid("label", problem));
        }
        let key = credential_changes::check_public_key(&input.public_key_json)?;
        if registry.owner_key(store, now).await?.is_none() {
            return Err(EnrollmentError::NotClaimed);
        }
        if let Some(ip) = actor.ip_addr() {
            self.requests
                .admit(ip, now)
                .map_err(EnrollmentError::RateLimited)?;
        }
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let row = RequestRow {
            id: input.id,
            kid: key.public.thumbprint(),
            kind: input.kind,
            label: input.label,
            public_key: key.public.to_jwk_json(),
            alg: key.alg.as_str().into(),
            node_nonce: b64::encode(&nonce),
            ip: actor.ip.clone().unwrap_or_default(),
            user_agent: actor.user_agent.clone(),
            created_at: now,
            expires_at: now + REQUEST_LIFETIME,
            status: "pending".into(),
            answered_at: None,
            answered_by: None,
        };
        let stored = row.clone();
        let actor = actor.clone();
        store
            .run(move |c| {
                let tx = c.transaction().map_err(StoreError::from)?;
                admits_new_credential_in(&tx, now)?.map_err(EnrollmentError::Gate)?;
                let pending = rows::pending(&tx, now)?;
                let requester: Option<std::net::IpAddr> = row.ip.parse().ok();
                let same = |bucket: fn(std::net::IpAddr) -> String| {
                    let Some(requester) = requester else { return 0 };
                    let mine = bucket(requester);
                    pending
                        .iter()
                        .filter_map(|p| p.ip.parse().ok())
                        .filter(|ip| bucket(*ip) == mine)
                        .count()
                };
                if pending.len() >= MAX_PENDING_REQUESTS
                    || same(crate::net::client_bucket) >= MAX_PENDING_PER_CLIENT
                    || same(crate::net::network_bucket) >= MAX_PENDING_PER_NETWORK
                {
                    let oldest = pending.iter().map(|p| p.expires_at).min().unwrap_or(now);
                    return Err(EnrollmentError::TooManyPending {
                        retry_after: (oldest - now).max(1),
                    });
                }
                let (id_taken, kid_taken) =
                    crate::store::credentials::taken(&tx, &row.id, &row.kid)?;
                if id_taken || kid_taken || rows::taken(&tx, &row.id, &row.kid)? {
                    return Err(EnrollmentError::Exists);
                }
                rows::insert(&tx, &row)?;
                let event = AuditEvent::EnrollmentRequested {
                    request_id: row.id.clone(),
                    kid: row.kid.clone(),
                    kind: row.kind.clone(),
                };
                audit::append(&tx, now, &event, &actor)?;
                tx.commit().map_err(StoreError::from)?;
                Ok(())
            })
            .await?;
        Ok(stored)
    }

    /// Approves a pending request: checks the approval grants nothing the approving session
    /// lacks and that new credentials are admitted, then adds the credential (whose id is the
    /// request's) with the owner key's binding. Audited as `credential.added` and
    /// `enrollment.approved`.
    pub async fn approve(
        &self,
        store: &Store,
        registry: &CredentialRegistry,
        approval: Approval,
        approver: &Principal,
        actor: &Actor,
        now: i64,
    ) -> Result<crate::store::credentials::CredentialRow, EnrollmentError> {
        let row = pending_request(store, &approval.request_id, now).await?;
        let granted = Capabilities::from_names(approval.capabilities.iter().map(String::as_str))
            .map_err(|e| invalid("capabilities", e))?;
        let beyond: Vec<&'static str> = granted
            .names()
            .into_iter()
            .filter(|name| {
                super::credentials::Capability::parse(name)
                    .is_some_and(|c| !approver.capabilities.contains(c))
            })
            .collect();
        if !beyond.is_empty() {
            return Err(EnrollmentError::ExceedsApprover(beyond));
        }
        // The enrollment mode, the binding (and its `from`) and the request's state are checked
        // where the credential is added, inside its transaction.
        let input = credential_changes::NewCredential {
            id: row.id.clone(),
            kind: row.kind.clone(),
            public_key_json: row.public_key.clone(),
            fields: credential_changes::CredentialFields {
                label: row.label.clone(),
                capabilities: approval.capabilities,
                networks: approval.networks,
                expires_at: approval.expires_at,
            },
            binding: approval.binding,
            passkey: None,
            approves_request: Some(credential_changes::ApprovedRequest {
                request_id: row.id.clone(),
                approver_id: approver.credential_id.clone(),
                requester_ip: row.ip.clone(),
            }),
            gated: true,
        };
        let added = credential_changes::add(store, registry, input, actor, now)
            .await
            .map_err(|error| match error {
                CredentialError::RequestAnswered => EnrollmentError::Answered,
                CredentialError::EnrollmentClosed(gate) => EnrollmentError::Gate(gate),
                other => EnrollmentError::Credential(other),
            })?;
        Ok(added)
    }

    /// Denies a pending request. Audited as `enrollment.denied`.
    pub async fn deny(
        &self,
        store: &Store,
        request_id: &str,
        approver: &Principal,
        actor: &Actor,
        now: i64,
    ) -> Result<(), EnrollmentError> {
        let id = request_id.to_owned();
        let by = approver.credential_id.clone();
        let actor = actor.clone();
        store
            .run(move |c| {
                let tx = c.transaction().map_err(StoreError::from)?;
                if rows::get(&tx, &id)?.is_none() {
                    return Err(EnrollmentError::NotFound);
                }
                if !rows::answer(&tx, &id, "denied", Some(&by), now)? {
                    return Err(EnrollmentError::Answered);
                }
                let event = AuditEvent::EnrollmentDenied {
                    request_id: id.clone(),
                    denied_by: by.clone(),
                };
                audit::append(&tx, now, &event, &actor)?;
                tx.commit().map_err(StoreError::from)?;
                Ok(())
            })
            .await
    }

    /// The request `id` as its device sees it.
    pub async fn get(
        &self,
        store: &Store,
        id: &str,
        now: i64,
    ) -> Result<RequestView, EnrollmentError> {
        let id = id.to_owned();
        let row = store
            .run(move |c| rows::get(c, &id))
            .await?
            .ok_or(EnrollmentError::NotFound)?;
        Ok(RequestView::of(&row, now))
    }

    /// The requests waiting for an answer.
    pub async fn pending(&self, store: &Store, now: i64) -> Result<Vec<RequestView>, StoreError> {
        let rows = store.run(move |c| rows::pending(c, now)).await?;
        Ok(rows.iter().map(|row| RequestView::of(row, now)).collect())
    }
}

/// An approval as the approving device sends it.
#[derive(Debug, Clone)]
pub struct Approval {
    pub request_id: String,
    pub capabilities: Vec<String>,
    pub networks: Vec<String>,
    pub expires_at: Option<i64>,
    /// The owner key's binding of the new credential.
    pub binding: String,
}

async fn pending_request(store: &Store, id: &str, now: i64) -> Result<RequestRow, EnrollmentError> {
    let id = id.to_owned();
    let row = store
        .run(move |c| rows::get(c, &id))
        .await?
        .ok_or(EnrollmentError::NotFound)?;
    if row.status != "pending" || row.expires_at <= now {
        return Err(EnrollmentError::Answered);
    }
    Ok(row)
}

fn read_state(
    connection: &rusqlite::Connection,
    configured: Mode,
    now: i64,
) -> Result<EnrollmentState, StoreError> {
    let mode = rows::mode(connection)?
        .and_then(|text| Mode::parse(&text))
        .unwrap_or(configured);
    let window = rows::window(connection)?
        .filter(|w| !w.closed && now < w.closes_at)
        .map(|w| OpenWindow {
            opened_at: w.opened_at,
            closes_at: w.closes_at,
        });
    Ok(EnrollmentState {
        mode,
        configured_mode: configured,
        window,
    })
}

/// Whether the enrollment mode in force admits a new credential now, read inside the caller's
/// transaction with the mode the running node was started with (recorded at its start).
pub fn admits_new_credential_in(
    connection: &rusqlite::Connection,
    now: i64,
) -> Result<Result<(), Gate>, StoreError> {
    let configured =
        crate::store::meta::get_text(connection, crate::store::meta::SERVED_ENROLLMENT)?
            .as_deref()
            .and_then(Mode::parse)
            .unwrap_or_default();
    Ok(read_state(connection, configured, now)?.admits_new_credential())
}

/// Sets the mode. Audited when it changes.
async fn set_mode(
    store: &Store,
    configured: Mode,
    mode: Mode,
    actor: &Actor,
    now: i64,
) -> Result<EnrollmentState, StoreError> {
    let actor = actor.clone();
    store
        .run(move |c| {
            let tx = c.transaction()?;
            let before = read_state(&tx, configured, now)?;
            rows::set_mode(&tx, mode.as_str())?;
            if before.mode != mode {
                let event = AuditEvent::EnrollmentModeChanged {
                    from: before.mode.as_str(),
                    to: mode.as_str(),
                };
                audit::append(&tx, now, &event, &actor)?;
            }
            let after = read_state(&tx, configured, now)?;
            tx.commit()?;
            Ok(after)
        })
        .await
}

/// Opens (or extends) the window for `seconds`.
async fn open_window(
    store: &Store,
    configured: Mode,
    seconds: i64,
    actor: &Actor,
    now: i64,
) -> Result<EnrollmentState, StoreError> {
    let actor = actor.clone();
    store
        .run(move |c| {
            let tx = c.transaction()?;
            let opened_at = read_state(&tx, configured, now)?
                .window
                .map_or(now, |w| w.opened_at);
            record_opened(&tx, opened_at, now + seconds, &actor, now)?;
            let after = read_state(&tx, configured, now)?;
            tx.commit()?;
            Ok(after)
        })
        .await
}

/// Opens the short window a claim or a restore brings in `window` mode, inside the claim's
/// transaction.
pub fn open_claim_window(
    connection: &rusqlite::Connection,
    configured: Mode,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    if read_state(connection, configured, now)?.mode != Mode::Window {
        return Ok(());
    }
    record_opened(connection, now, now + CLAIM_WINDOW_SECONDS, actor, now)
}

/// Stores an open window and audits its opening.
fn record_opened(
    connection: &rusqlite::Connection,
    opened_at: i64,
    closes_at: i64,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let window = WindowRow {
        opened_at,
        closes_at,
        closed: false,
    };
    rows::set_window(connection, window)?;
    let event = AuditEvent::EnrollmentWindowOpened { closes_at };
    audit::append(connection, now, &event, actor)?;
    Ok(())
}

/// Stores a window as closed at `closes_at` and audits why (`owner` or `expired`).
fn record_closed(
    connection: &rusqlite::Connection,
    window: WindowRow,
    closes_at: i64,
    reason: &'static str,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let closed = WindowRow {
        closes_at,
        closed: true,
        ..window
    };
    rows::set_window(connection, closed)?;
    let event = AuditEvent::EnrollmentWindowClosed { reason };
    audit::append(connection, now, &event, actor)?;
    Ok(())
}

/// Closes the window now.
async fn close_window(
    store: &Store,
    configured: Mode,
    actor: &Actor,
    now: i64,
) -> Result<EnrollmentState, StoreError> {
    let actor = actor.clone();
    store
        .run(move |c| {
            let tx = c.transaction()?;
            if let Some(window) = rows::window(&tx)?
                && !window.closed
            {
                let reason = if now < window.closes_at {
                    "owner"
                } else {
                    "expired"
                };
                let closes_at = window.closes_at.min(now);
                record_closed(&tx, window, closes_at, reason, &actor, now)?;
            }
            let after = read_state(&tx, configured, now)?;
            tx.commit()?;
            Ok(after)
        })
        .await
}

/// Once a second: records a window that ran out and the requests nobody answered in time
/// (`enrollment.expired`), and forgets requests answered more than a day ago. Returns the ids
/// of the requests it expired.
pub async fn sweep(store: &Store, now: i64) -> Result<Vec<String>, StoreError> {
    store
        .run(move |c| {
            // A quick look first, so that a quiet second writes nothing; then the same reads
            // again inside the transaction (the command line may have opened a window since).
            let ran_out =
                |window: Option<WindowRow>| window.is_some_and(|w| !w.closed && w.closes_at <= now);
            if rows::overdue(c, now)?.is_empty() && !ran_out(rows::window(c)?) {
                return Ok(Vec::new());
            }
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let window = rows::window(&tx)?;
            let overdue = rows::overdue(&tx, now)?;
            let ran_out = ran_out(window);
            if let Some(window) = window.filter(|_| ran_out) {
                let closes_at = window.closes_at;
                record_closed(&tx, window, closes_at, "expired", &Actor::local(), now)?;
            }
            let mut expired = Vec::new();
            for row in overdue {
                if rows::answer(&tx, &row.id, "expired", None, now)? {
                    audit::append(
                        &tx,
                        now,
                        &AuditEvent::EnrollmentExpired {
                            request_id: row.id.clone(),
                        },
                        &Actor::local(),
                    )?;
                    expired.push(row.id);
                }
            }
            rows::delete_answered_before(&tx, now - ANSWERED_KEPT_SECONDS)?;
            tx.commit()?;
            Ok(expired)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comparison_code_is_six_digits_and_depends_on_every_input() {
        let code = comparison_code("https://example.com", "req", "kid", "nonce");
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        for other in [
            comparison_code("https://example.org", "req", "kid", "nonce"),
            comparison_code("https://example.com", "req2", "kid", "nonce"),
            comparison_code("https://example.com", "req", "kid2", "nonce"),
            comparison_code("https://example.com", "req", "kid", "nonce2"),
        ] {
            assert_ne!(code, other);
        }
    }

    #[test]
    fn the_comparison_code_matches_its_documented_derivation() {
        // SHA-256("siteid-pairing-v1\0https://example.com\0req\0kid\0nonce"), first four bytes.
        let digest = Sha256::digest(b"siteid-pairing-v1\0https://example.com\0req\0kid\0nonce");
        let number = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        assert_eq!(
            comparison_code("https://example.com", "req", "kid", "nonce"),
            format!("{:06}", number % 1_000_000)
        );
        assert_eq!(
            comparison_code("https://example.com", "req", "kid", "nonce"),
            "205431"
        );
    }

    #[test]
    fn the_gates_follow_the_mode_and_the_window() {
        let window = Some(OpenWindow {
            opened_at: 0,
            closes_at: 60,
        });
        let state = |mode, window| EnrollmentState {
            mode,
            configured_mode: Mode::Open,
            window,
        };
        assert_eq!(state(Mode::Open, None).admits_password_unlock(), Ok(()));
        assert_eq!(
            state(Mode::Approval, None).admits_password_unlock(),
            Err(Gate::ApprovalRequired)
        );
        assert_eq!(
            state(Mode::Approval, window).admits_password_unlock(),
            Ok(())
        );
        assert_eq!(
            state(Mode::Window, None).admits_password_unlock(),
            Err(Gate::WindowClosed)
        );
        assert_eq!(state(Mode::Window, window).admits_password_unlock(), Ok(()));
        assert_eq!(state(Mode::Approval, None).admits_new_credential(), Ok(()));
        assert_eq!(
            state(Mode::Window, None).admits_new_credential(),
            Err(Gate::WindowClosed)
        );
        assert_eq!(state(Mode::Window, window).admits_new_credential(), Ok(()));
    }

    #[test]
    fn modes_parse_only_their_names() {
        for mode in [Mode::Open, Mode::Approval, Mode::Window] {
            assert_eq!(Mode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(Mode::parse("Open"), None);
        assert_eq!(Mode::parse(""), None);
    }
}
