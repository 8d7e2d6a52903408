//! The audit log: typed security events appended as hash-chained rows, the check that finds
//! the first changed, deleted or reordered entry, and the pruning of entries past retention.
//!
//! Each entry's hash covers the previous entry's hash and every column, and the newest
//! (sequence, hash) pair is kept beside the log, so deleting entries at the end is caught too.
//! Pruning removes the oldest entries after appending an `audit.pruned` checkpoint that names
//! the last one to go, and records the newest removed (sequence, hash) as the chain's base, so
//! the rest still verifies and deleting old entries outside pruning is caught.
//! The chain shows tampering by anyone who cannot rewrite the whole chain and its head.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::audit_rows::{self, AuditRow};
use crate::store::{Store, StoreError};

/// The longest user agent kept, in bytes.
pub const MAX_USER_AGENT_LEN: usize = 256;

const GENESIS_HASH: [u8; 32] = [0; 32];
const HASH_DOMAIN: &[u8] = b"siteid audit entry v1";

/// The name of the checkpoint event that pruning appends.
pub const PRUNED_EVENT: &str = "audit.pruned";
/// Entries removed per transaction when pruning, so the one connection is never held for long.
pub const PRUNE_BATCH: i64 = 5_000;
pub const SECONDS_PER_DAY: i64 = 86_400;

/// The time before which records are past a retention of `retention_days` at `now`; `None`
/// when the retention is 0 (keep everything).
pub fn retention_cutoff(now: i64, retention_days: u32) -> Option<i64> {
    (retention_days > 0).then(|| now.saturating_sub(i64::from(retention_days) * SECONDS_PER_DAY))
}

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
        /// With TOTP on: what stood for the second factor (`totp`, `recovery_code`, or
        /// `session` for a signed-in owner session).
        second_factor: Option<&'static str>,
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
    /// Unlock windows that filled in one minute: `clients` windows of `networks` networks (one
    /// entry per network, and past a cap one entry for the rest), or the node-wide window.
    UnlockThrottled {
        scope: &'static str,
        clients: u64,
        networks: u64,
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
    /// Clients whose sign-in window filled in one minute, as for `UnlockThrottled`.
    LoginThrottled {
        clients: u64,
        networks: u64,
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
    /// A code was used up, by an unlock whose password was right (`unlocked`) or wrong.
    UnlockCodeUsed {
        code_id: String,
        unlocked: bool,
    },
    /// A stored credential no longer matches its binding: it cannot sign in.
    CredentialTampered {
        credential_id: String,
        kid: String,
        problem: String,
    },
    CredentialAdded {
        credential_id: String,
        kid: String,
        kind: String,
        alg: String,
        /// The JSON arrays as stored.
        capabilities: String,
        networks: String,
        expires_at: Option<i64>,
        /// The SHA-256 of the stored binding (base64url): loading credentials compares the row
        /// with the binding the log last recorded.
        binding_sha256: String,
    },
    CredentialChanged {
        credential_id: String,
        capabilities: String,
        networks: String,
        expires_at: Option<i64>,
        binding_sha256: String,
    },
    CredentialReset {
        credential_id: String,
        kid: String,
        alg: String,
        binding_sha256: String,
    },
    CredentialRevoked {
        credential_id: String,
        kid: String,
    },
    /// A credential bound again by a new owner key in a rotation, its fields unchanged.
    CredentialRebound {
        credential_id: String,
        kid: String,
        binding_sha256: String,
    },
    /// The owner key was replaced.
    OwnerRotated {
        old: String,
        new: String,
        seq: u32,
        reason: &'static str,
        /// The session that rotated; `None` from the command line.
        session_id: Option<String>,
        rebound: usize,
        revoked: Vec<String>,
    },
    /// A credential signed in, or used a session, from outside its networks.
    CredentialNetworkRefused {
        credential_id: String,
        session_id: Option<String>,
    },
    /// A passkey's assertion carried a signature counter that did not move forward: the
    /// authenticator may have been cloned. The sign-in was refused.
    PasskeyCounterRegressed {
        credential_id: String,
        stored: u32,
    },
    /// A passkey's PRF copy of the owner key was released after its assertion verified.
    PasskeyWrappedKeyServed {
        credential_id: String,
        kid: String,
    },
    /// PRF copies were deleted: their passkey was revoked or narrowed below `owner`, or the
    /// owner key they hold was replaced (`reason` "revoked", "narrowed" or "rotated").
    PasskeyWrappedKeysDropped {
        credential_ids: Vec<String>,
        reason: &'static str,
    },
    /// A new encryption key became the current one; `retired` names the one it replaced.
    EncryptionKeyAdded {
        kid: String,
        retired: Option<String>,
    },
    /// A rotation wrapped and bound the encryption keys again by the new owner key; a reset
    /// drops those it could not open.
    EncryptionKeysRewrapped {
        kids: Vec<String>,
        owner_kid: String,
        dropped: Vec<String>,
    },
    /// The owner deleted an inbox message.
    InboxMessageDeleted {
        id: String,
    },
    /// A signed-in device approved a client's IndieAuth request; `scope` is what it granted.
    IndieauthApproved {
        client_id: String,
        redirect_uri: String,
        scope: String,
        credential_id: String,
    },
    /// A signed-in device denied a client's IndieAuth request.
    IndieauthDenied {
        client_id: String,
        credential_id: String,
    },
    /// A code was redeemed, at the token endpoint (a grant with tokens) or at the authorization
    /// endpoint (the profile only, no grant).
    IndieauthCodeRedeemed {
        client_id: String,
        grant_id: Option<String>,
        endpoint: &'static str,
    },
    /// A code was presented again; the grant its first redemption created is revoked.
    IndieauthCodeReused {
        client_id: String,
        grant_id: Option<String>,
    },
    /// A refresh token was presented again after it had been used; its grant is revoked.
    IndieauthRefreshReused {
        client_id: String,
        grant_id: String,
    },
    /// A grant and its tokens were revoked: by the client (`client`), by the owner (`owner`),
    /// with the credential that approved it (`credential_revoked`), or after a reused code or
    /// refresh token (`code_reused`, `refresh_reused`).
    IndieauthTokenRevoked {
        client_id: String,
        grant_id: String,
        reason: &'static str,
    },
    /// The owner key bound the node's own key (mutual authentication).
    NodeKeyBound {
        node_kid: String,
        owner_kid: String,
        binding_sha256: String,
    },
    /// The enrollment mode changed (`open`, `approval`, `window`).
    EnrollmentModeChanged {
        from: &'static str,
        to: &'static str,
    },
    /// An enrollment window opened until `closes_at`.
    EnrollmentWindowOpened {
        closes_at: i64,
    },
    /// The enrollment window closed: `owner` (early) or `expired`.
    EnrollmentWindowClosed {
        reason: &'static str,
    },
    /// A new device asked to be enrolled.
    EnrollmentRequested {
        request_id: String,
        kid: String,
        kind: String,
    },
    /// A device approved an enrollment request; the credential has the request's id.
    EnrollmentApproved {
        request_id: String,
        approved_by: String,
        capabilities: String,
    },
    /// A device denied an enrollment request.
    EnrollmentDenied {
        request_id: String,
        denied_by: String,
    },
    /// An enrollment request went unanswered for five minutes.
    EnrollmentExpired {
        request_id: String,
    },
    /// The node key was replaced (`siteid node-key rotate`); `old` is `None` when there was no
    /// key file.
    NodeKeyRotated {
        old: Option<String>,
        new: String,
    },
    /// The owner changed the profile shown on the home page and given to clients.
    ProfileChanged {
        fields: Vec<&'static str>,
    },
    /// TOTP was turned on; `secret_id` is the salted SHA-256 of the secret, never the secret.
    TotpEnabled {
        secret_id: String,
        session_id: String,
    },
    /// TOTP was turned off, with a current code or a recovery code (`with`).
    TotpDisabled {
        secret_id: String,
        /// The session that turned it off; `None` from the command line.
        session_id: Option<String>,
        with: &'static str,
    },
    /// The recovery codes were replaced by ten new ones.
    TotpRecoveryCodesReplaced {
        secret_id: String,
        session_id: String,
    },
    /// A recovery code was used up; `left` are left.
    TotpRecoveryCodeUsed {
        secret_id: String,
        left: usize,
    },
    /// A pruning pass is removing every entry up to and including `through_seq`.
    AuditPruned {
        through_seq: i64,
        /// The hash of entry `through_seq`, in lowercase hex.
        through_hash: String,
        removed: i64,
        oldest_at: i64,
        newest_at: i64,
    },
}

/// Revokes the IndieAuth grants a credential approved, in the caller's transaction, when it is
/// revoked, expires or loses `indieauth`; each is audited as `indieauth.token_revoked` with
/// reason `credential_revoked`.
pub fn revoke_grants_of_credential(
    connection: &rusqlite::Connection,
    credential_id: &str,
    now: i64,
    actor: &Actor,
) -> Result<(), StoreError> {
    let revoked =
        crate::store::indieauth::revoke_grants_of_credential(connection, credential_id, now)?;
    for (grant_id, client_id) in revoked {
        let event = AuditEvent::IndieauthTokenRevoked {
            client_id,
            grant_id,
            reason: "credential_revoked",
        };
        append(connection, now, &event, actor)?;
    }
    Ok(())
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
            AuditEvent::CredentialTampered { .. } => "credential.tampered",
            AuditEvent::CredentialAdded { .. } => "credential.added",
            AuditEvent::CredentialChanged { .. } => "credential.changed",
            AuditEvent::CredentialReset { .. } => "credential.reset",
            AuditEvent::CredentialRevoked { .. } => "credential.revoked",
            AuditEvent::CredentialRebound { .. } => "credential.rebound",
            AuditEvent::OwnerRotated { .. } => "owner.rotated",
            AuditEvent::CredentialNetworkRefused { .. } => "credential.network_refused",
            AuditEvent::PasskeyCounterRegressed { .. } => "passkey.counter_regressed",
            AuditEvent::PasskeyWrappedKeyServed { .. } => "passkey.wrapped_key_served",
            AuditEvent::PasskeyWrappedKeysDropped { .. } => "passkey.wrapped_keys_dropped",
            AuditEvent::EncryptionKeyAdded { .. } => "encryption_key.added",
            AuditEvent::EncryptionKeysRewrapped { .. } => "encryption_key.rewrapped",
            AuditEvent::InboxMessageDeleted { .. } => "inbox.message_deleted",
            AuditEvent::IndieauthApproved { .. } => "indieauth.approved",
            AuditEvent::IndieauthDenied { .. } => "indieauth.denied",
            AuditEvent::IndieauthCodeRedeemed { .. } => "indieauth.code_redeemed",
            AuditEvent::IndieauthCodeReused { .. } => "indieauth.code_reused",
            AuditEvent::IndieauthRefreshReused { .. } => "indieauth.refresh_reused",
            AuditEvent::IndieauthTokenRevoked { .. } => "indieauth.token_revoked",
            AuditEvent::ProfileChanged { .. } => "profile.changed",
            AuditEvent::EnrollmentModeChanged { .. } => "enrollment.mode_changed",
            AuditEvent::EnrollmentWindowOpened { .. } => "enrollment.window_opened",
            AuditEvent::EnrollmentWindowClosed { .. } => "enrollment.window_closed",
            AuditEvent::EnrollmentRequested { .. } => "enrollment.requested",
            AuditEvent::EnrollmentApproved { .. } => "enrollment.approved",
            AuditEvent::EnrollmentDenied { .. } => "enrollment.denied",
            AuditEvent::EnrollmentExpired { .. } => "enrollment.expired",
            AuditEvent::NodeKeyBound { .. } => "node_key.bound",
            AuditEvent::NodeKeyRotated { .. } => "node_key.rotated",
            AuditEvent::TotpEnabled { .. } => "totp.enabled",
            AuditEvent::TotpDisabled { .. } => "totp.disabled",
            AuditEvent::TotpRecoveryCodesReplaced { .. } => "totp.recovery_codes_replaced",
            AuditEvent::TotpRecoveryCodeUsed { .. } => "totp.recovery_code_used",
            AuditEvent::AuditPruned { .. } => PRUNED_EVENT,
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
            AuditEvent::UnlockSucceeded {
                kid,
                second_factor: Some(factor),
            } => json!({ "kid": kid, "second_factor": factor }),
            AuditEvent::UnlockSucceeded {
                kid,
                second_factor: None,
            }
            | AuditEvent::WrappedKeyServed { kid } => json!({ "kid": kid }),
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
                networks,
                retry_after,
            } => json!({
                "scope": scope,
                "clients": clients,
                "networks": networks,
                "retry_after": retry_after,
            }),
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
                networks,
                retry_after,
            } => json!({ "clients": clients, "networks": networks, "retry_after": retry_after }),
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
            AuditEvent::UnlockCodeUsed { code_id, unlocked } => {
                json!({ "code_id": code_id, "unlocked": unlocked })
            }
            AuditEvent::CredentialTampered {
                credential_id,
                kid,
                problem,
            } => json!({ "credential_id": credential_id, "kid": kid, "problem": problem }),
            AuditEvent::CredentialNetworkRefused {
                credential_id,
                session_id,
            } => json!({ "credential_id": credential_id, "session_id": session_id }),
            AuditEvent::PasskeyCounterRegressed {
                credential_id,
                stored,
            } => json!({ "credential_id": credential_id, "stored_sign_count": stored }),
            AuditEvent::PasskeyWrappedKeyServed { credential_id, kid } => {
                json!({ "credential_id": credential_id, "kid": kid })
            }
            AuditEvent::PasskeyWrappedKeysDropped {
                credential_ids,
                reason,
            } => json!({ "credential_ids": credential_ids, "reason": reason }),
            AuditEvent::EncryptionKeyAdded { kid, retired } => {
                json!({ "kid": kid, "retired": retired })
            }
            AuditEvent::EncryptionKeysRewrapped {
                kids,
                owner_kid,
                dropped,
            } => json!({ "kids": kids, "owner_kid": owner_kid, "dropped": dropped }),
            AuditEvent::InboxMessageDeleted { id } => json!({ "id": id }),
            AuditEvent::IndieauthApproved {
                client_id,
                redirect_uri,
                scope,
                credential_id,
            } => json!({
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": scope,
                "credential_id": credential_id,
            }),
            AuditEvent::IndieauthDenied {
                client_id,
                credential_id,
            } => json!({ "client_id": client_id, "credential_id": credential_id }),
            AuditEvent::IndieauthCodeRedeemed {
                client_id,
                grant_id,
                endpoint,
            } => json!({ "client_id": client_id, "grant_id": grant_id, "endpoint": endpoint }),
            AuditEvent::IndieauthCodeReused {
                client_id,
                grant_id,
            } => json!({ "client_id": client_id, "grant_id": grant_id }),
            AuditEvent::IndieauthRefreshReused {
                client_id,
                grant_id,
            } => json!({ "client_id": client_id, "grant_id": grant_id }),
            AuditEvent::IndieauthTokenRevoked {
                client_id,
                grant_id,
                reason,
            } => json!({ "client_id": client_id, "grant_id": grant_id, "reason": reason }),
            AuditEvent::ProfileChanged { fields } => json!({ "fields": fields }),
            AuditEvent::EnrollmentModeChanged { from, to } => json!({ "from": from, "to": to }),
            AuditEvent::EnrollmentWindowOpened { closes_at } => json!({ "closes_at": closes_at }),
            AuditEvent::EnrollmentWindowClosed { reason } => json!({ "reason": reason }),
            AuditEvent::EnrollmentRequested {
                request_id,
                kid,
                kind,
            } => json!({ "request_id": request_id, "kid": kid, "kind": kind }),
            AuditEvent::EnrollmentApproved {
                request_id,
                approved_by,
                capabilities,
            } => json!({
                "request_id": request_id,
                "approved_by": approved_by,
                "capabilities": json_or_text(capabilities),
            }),
            AuditEvent::EnrollmentDenied {
                request_id,
                denied_by,
            } => json!({ "request_id": request_id, "denied_by": denied_by }),
            AuditEvent::EnrollmentExpired { request_id } => json!({ "request_id": request_id }),
            AuditEvent::NodeKeyRotated { old, new } => json!({ "old": old, "new": new }),
            AuditEvent::NodeKeyBound {
                node_kid,
                owner_kid,
                binding_sha256,
            } => json!({
                "node_kid": node_kid,
                "owner_kid": owner_kid,
                "binding_sha256": binding_sha256,
            }),
            AuditEvent::CredentialAdded {
                credential_id,
                kid,
                kind,
                alg,
                capabilities,
                networks,
                expires_at,
                binding_sha256,
            } => json!({
                "credential_id": credential_id,
                "kid": kid,
                "kind": kind,
                "alg": alg,
                "capabilities": json_or_text(capabilities),
                "networks": json_or_text(networks),
                "expires_at": expires_at,
                "binding_sha256": binding_sha256,
            }),
            AuditEvent::CredentialChanged {
                credential_id,
                capabilities,
                networks,
                expires_at,
                binding_sha256,
            } => json!({
                "credential_id": credential_id,
                "capabilities": json_or_text(capabilities),
                "networks": json_or_text(networks),
                "expires_at": expires_at,
                "binding_sha256": binding_sha256,
            }),
            AuditEvent::CredentialReset {
                credential_id,
                kid,
                alg,
                binding_sha256,
            } => json!({
                "credential_id": credential_id,
                "kid": kid,
                "alg": alg,
                "binding_sha256": binding_sha256,
            }),
            AuditEvent::CredentialRevoked { credential_id, kid } => {
                json!({ "credential_id": credential_id, "kid": kid })
            }
            AuditEvent::CredentialRebound {
                credential_id,
                kid,
                binding_sha256,
            } => json!({
                "credential_id": credential_id,
                "kid": kid,
                "binding_sha256": binding_sha256,
            }),
            AuditEvent::OwnerRotated {
                old,
                new,
                seq,
                reason,
                session_id,
                rebound,
                revoked,
            } => json!({
                "old": old,
                "new": new,
                "seq": seq,
                "reason": reason,
                "session_id": session_id,
                "rebound": rebound,
                "revoked": revoked,
            }),
            AuditEvent::TotpEnabled {
                secret_id,
                session_id,
            }
            | AuditEvent::TotpRecoveryCodesReplaced {
                secret_id,
                session_id,
            } => json!({ "secret_id": secret_id, "session_id": session_id }),
            AuditEvent::TotpDisabled {
                secret_id,
                session_id,
                with,
            } => json!({ "secret_id": secret_id, "session_id": session_id, "with": with }),
            AuditEvent::TotpRecoveryCodeUsed { secret_id, left } => {
                json!({ "secret_id": secret_id, "left": left })
            }
            AuditEvent::AuditPruned {
                through_seq,
                through_hash,
                removed,
                oldest_at,
                newest_at,
            } => json!({
                "through_seq": through_seq,
                "through_hash": through_hash,
                "removed": removed,
                "oldest_at": oldest_at,
                "newest_at": newest_at,
            }),
        }
    }
}

/// A stored JSON array as a value in a detail, or its text if it does not parse.
fn json_or_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
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

    /// The client's address, when the event has one.
    pub fn ip_addr(&self) -> Option<std::net::IpAddr> {
        self.ip.as_deref()?.parse::<std::net::IpAddr>().ok()
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
    let (ip_digest, ip_salt) = match &actor.ip {
        Some(ip) => {
            let mut salt = [0u8; IP_SALT_LEN];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
            (Some(ip_digest(&salt, ip).to_vec()), Some(salt.to_vec()))
        }
        None => (None, None),
    };
    let mut row = AuditRow {
        seq: prev_seq + 1,
        at,
        event: event.name().to_owned(),
        ip: actor.ip.clone(),
        user_agent: actor.user_agent.clone(),
        detail: event.detail().to_string(),
        prev_hash,
        hash: Vec::new(),
        ip_digest,
        ip_salt,
    };
    row.hash = entry_hash(&row).to_vec();
    audit_rows::insert(transaction, &row)?;
    Ok(row.seq)
}

/// Random bytes salting an address's digest.
const IP_SALT_LEN: usize = 16;

/// The digest the chain covers in place of a client address: SHA-256 over a label, the
/// entry's salt and the address. Without the salt it does not give the address away.
fn ip_digest(salt: &[u8], ip: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"siteid audit ip v1\0");
    hasher.update(salt);
    hasher.update(ip.as_bytes());
    hasher.finalize().into()
}

/// The hash of an entry: SHA-256 over a domain label, the previous hash and every column,
/// each variable-length column prefixed with a presence byte and its length. An entry with an
/// address digest contributes the digest (marker 2) instead of the address, so the address can
/// later be truncated without breaking the chain.
pub fn entry_hash(row: &AuditRow) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(&row.prev_hash);
    hasher.update(row.seq.to_be_bytes());
    hasher.update(row.at.to_be_bytes());
    let text = |hasher: &mut Sha256, field: Option<&str>| match field {
        None => hasher.update([0u8]),
        Some(text) => {
            hasher.update([1u8]);
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
    };
    text(&mut hasher, Some(row.event.as_str()));
    match &row.ip_digest {
        Some(digest) => {
            hasher.update([2u8]);
            hasher.update((digest.len() as u64).to_be_bytes());
            hasher.update(digest);
        }
        None => text(&mut hasher, row.ip.as_deref()),
    }
    text(&mut hasher, row.user_agent.as_deref());
    text(&mut hasher, Some(row.detail.as_str()));
    hasher.finalize().into()
}

/// Whether an entry's address agrees with its digest: whole and matching while the salt is
/// kept, a network (truncated) once it is dropped. Entries from before digests hash the
/// address itself, which the chain hash checks.
fn address_agrees(row: &AuditRow) -> bool {
    match (&row.ip_digest, &row.ip_salt, &row.ip) {
        (None, None, _) => true,
        (Some(digest), Some(salt), Some(ip)) => ip_digest(salt, ip).as_slice() == digest.as_slice(),
        (Some(_), None, Some(ip)) => crate::net::IpNetwork::parse(ip).is_ok() && ip.contains('/'),
        _ => false,
    }
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
    #[error(
        "the log starts after entry {base}, but no audit.pruned entry accounts for removing it: \
         entries were deleted"
    )]
    BaseNotPruned { base: i64 },
}

/// Why the stored log could not be checked or pruned.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit log broken: {0}")]
    Broken(#[from] ChainError),
}

/// An intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    /// How many entries are stored.
    pub entries: i64,
    /// The newest removed entry; 0 when nothing was ever pruned.
    pub base_seq: i64,
    /// The newest entry's hash (zeros for an empty log).
    pub head_hash: [u8; 32],
}

/// What the newest `audit.pruned` entry says was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PrunedThrough {
    seq: i64,
    hash_hex: String,
}

/// Checks a chain one entry at a time, oldest first, in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    base_seq: i64,
    base_hash: Vec<u8>,
    last_seq: i64,
    last_hash: Vec<u8>,
    entries: i64,
    /// The newest checkpoint so far: `Some(None)` when its detail cannot be read.
    pruned: Option<Option<PrunedThrough>>,
}

impl ChainVerifier {
    /// A verifier for a chain that follows `base`, the newest removed entry (`None`: the
    /// chain starts at entry 1).
    pub fn new(base: Option<(i64, Vec<u8>)>) -> Self {
        let (base_seq, base_hash) = base.unwrap_or((0, GENESIS_HASH.to_vec()));
        ChainVerifier {
            base_seq,
            last_seq: base_seq,
            last_hash: base_hash.clone(),
            base_hash,
            entries: 0,
            pruned: None,
        }
    }

    /// Checks the next entry.
    pub fn push(&mut self, row: &AuditRow) -> Result<(), ChainError> {
        let expected_seq = self.last_seq + 1;
        if row.seq != expected_seq {
            return Err(ChainError::Missing { seq: expected_seq });
        }
        if row.prev_hash != self.last_hash {
            return Err(ChainError::BrokenLink { seq: row.seq });
        }
        if entry_hash(row).as_slice() != row.hash.as_slice() || !address_agrees(row) {
            return Err(ChainError::Changed { seq: row.seq });
        }
        if row.event == PRUNED_EVENT {
            self.pruned = Some(pruned_through(&row.detail));
        }
        self.last_seq = row.seq;
        self.last_hash.clone_from(&row.hash);
        self.entries += 1;
        Ok(())
    }

    /// The newest entry checked so far (the base before any).
    fn last(&self) -> (i64, &[u8]) {
        (self.last_seq, &self.last_hash)
    }

    /// Checks the end of the chain against the stored head, and the base against the newest
    /// checkpoint: a base may trail what that checkpoint names (a pass still removing, or
    /// stopped part way) but never pass it.
    pub fn finish(self, head: Option<(i64, Vec<u8>)>) -> Result<ChainSummary, ChainError> {
        let last = self.last_seq;
        match head {
            None if self.entries == 0 && self.base_seq == 0 => {}
            None => return Err(ChainError::HeadMismatch { seq: last }),
            Some((head_seq, _)) if head_seq != last => {
                return Err(ChainError::Truncated {
                    last,
                    head: head_seq,
                });
            }
            Some((_, head_hash)) if head_hash != self.last_hash => {
                return Err(ChainError::HeadMismatch { seq: last });
            }
            Some(_) => {}
        }
        if self.base_seq != 0 {
            let accounted = match &self.pruned {
                Some(Some(through)) if through.seq > self.base_seq => true,
                Some(Some(through)) => {
                    through.seq == self.base_seq && through.hash_hex == hex(&self.base_hash)
                }
                _ => false,
            };
            if !accounted {
                return Err(ChainError::BaseNotPruned {
                    base: self.base_seq,
                });
            }
        }
        let head_hash = <[u8; 32]>::try_from(self.last_hash.as_slice()).unwrap_or(GENESIS_HASH);
        Ok(ChainSummary {
            entries: self.entries,
            base_seq: self.base_seq,
            head_hash,
        })
    }
}

fn pruned_through(detail: &str) -> Option<PrunedThrough> {
    let detail: serde_json::Value = serde_json::from_str(detail).ok()?;
    Some(PrunedThrough {
        seq: detail["through_seq"].as_i64()?,
        hash_hex: detail["through_hash"].as_str()?.to_owned(),
    })
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a streamed check stopped.
enum Stop {
    Store(StoreError),
    Chain(ChainError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error)
    }
}

impl From<Stop> for AuditLogError {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Store(error) => AuditLogError::Store(error),
            Stop::Chain(error) => AuditLogError::Broken(error),
        }
    }
}

/// Checks the stored chain from its base to its head, reading one entry at a time inside one
/// read transaction (so a node writing at the same time cannot make it look broken).
pub fn verify_log(connection: &mut rusqlite::Connection) -> Result<ChainSummary, AuditLogError> {
    let snapshot = connection.transaction().map_err(StoreError::from)?;
    let base = audit_rows::base(&snapshot)?;
    let head = audit_rows::head(&snapshot)?;
    let mut verifier = ChainVerifier::new(base);
    audit_rows::for_each(&snapshot, |row| verifier.push(&row).map_err(Stop::Chain))?;
    Ok(verifier.finish(head)?)
}

/// Entries whose addresses one truncation pass handles per transaction.
const TRUNCATE_BATCH: i64 = 500;

/// Cuts the client addresses of entries older than `retention_days` before `now` (none when
/// 0) to their network (/24 for IPv4, /48 for IPv6) and forgets their salts, so the log keeps
/// where a request came from but no longer who. The chain still verifies: it covers the salted
/// digest of the whole address. Returns how many addresses were cut.
pub async fn truncate_old_addresses(
    store: &Store,
    now: i64,
    retention_days: u32,
) -> Result<usize, StoreError> {
    let Some(cutoff) = retention_cutoff(now, retention_days) else {
        return Ok(0);
    };
    let mut total = 0;
    loop {
        let cut = store
            .run(move |c| {
                let transaction = c.transaction()?;
                let whole =
                    audit_rows::whole_addresses_before(&transaction, cutoff, TRUNCATE_BATCH)?;
                for (seq, ip) in &whole {
                    let network = match ip.parse::<std::net::IpAddr>() {
                        Ok(address) => crate::net::IpNetwork::retention_form(address).to_string(),
                        // Failure summaries name a network already (a /24 or /48): kept.
                        Err(_) if is_retained_network(ip) => ip.clone(),
                        // An address that does not read is not kept either.
                        Err(_) => "0.0.0.0/0".to_owned(),
                    };
                    audit_rows::truncate_address(&transaction, *seq, &network)?;
                }
                transaction.commit()?;
                Ok::<_, StoreError>(whole.len())
            })
            .await?;
        total += cut;
        if (cut as i64) < TRUNCATE_BATCH {
            return Ok(total);
        }
    }
}

/// Whether `text` is a network no narrower than an address's retention form (/24, /48).
fn is_retained_network(text: &str) -> bool {
    let widest = if text.contains(':') { 48 } else { 24 };
    text.contains('/')
        && crate::net::IpNetwork::parse(text).is_ok_and(|network| network.prefix() <= widest)
}

/// Removes the entries older than `retention_days` before `now` (none when 0): the oldest
/// run of entries whose time is before the cutoff, never the newest entry. A pass first
/// appends an `audit.pruned` checkpoint naming the last entry it will remove, then removes
/// [`PRUNE_BATCH`] entries per transaction, checking each batch's links before deleting it
/// and moving the base with it. Returns how many entries were removed.
pub async fn prune(store: &Store, now: i64, retention_days: u32) -> Result<i64, AuditLogError> {
    prune_in_batches(store, now, retention_days, PRUNE_BATCH).await
}

async fn prune_in_batches(
    store: &Store,
    now: i64,
    retention_days: u32,
    batch: i64,
) -> Result<i64, AuditLogError> {
    let Some(cutoff) = retention_cutoff(now, retention_days) else {
        return Ok(0);
    };
    let (base, head) = store
        .run(|c| Ok::<_, StoreError>((audit_rows::base(c)?, audit_rows::head(c)?)))
        .await?;
    let Some((head_seq, _)) = head else {
        return Ok(0);
    };
    let base_seq = base.as_ref().map_or(0, |(seq, _)| *seq);
    let through_seq = last_entry_before(store, base_seq, head_seq - 1, cutoff, batch).await?;
    if through_seq <= base_seq {
        return Ok(0);
    }
    let checkpointed = store
        .run(move |c| {
            let transaction = c.transaction().map_err(StoreError::from)?;
            // Another pass moved the base since the search: leave the log to it.
            if audit_rows::base(&transaction)?.map_or(0, |(seq, _)| seq) != base_seq {
                return Ok(false);
            }
            let oldest = audit_rows::find(&transaction, base_seq + 1)?
                .ok_or(ChainError::Missing { seq: base_seq + 1 })?;
            let newest = audit_rows::find(&transaction, through_seq)?
                .ok_or(ChainError::Missing { seq: through_seq })?;
            let event = AuditEvent::AuditPruned {
                through_seq,
                through_hash: hex(&newest.hash),
                removed: through_seq - base_seq,
                oldest_at: oldest.at,
                newest_at: newest.at,
            };
            append(&transaction, now, &event, &Actor::local())?;
            transaction.commit().map_err(StoreError::from)?;
            Ok::<_, AuditLogError>(true)
        })
        .await?;
    if !checkpointed {
        return Ok(0);
    }
    let mut base = base;
    let mut removed = 0;
    while base.as_ref().map_or(0, |(seq, _)| *seq) < through_seq {
        let from = base.take();
        let (count, new_base) = store
            .run(move |c| remove_batch(c, from, through_seq, batch))
            .await?;
        removed += count;
        base = Some(new_base);
    }
    Ok(removed)
}

/// Finds the last entry to remove: the one before the first entry (after `base_seq`) whose time
/// is not before `cutoff`, and at most `newest_removable`. Looks `batch` entries at a time.
async fn last_entry_before(
    store: &Store,
    base_seq: i64,
    newest_removable: i64,
    cutoff: i64,
    batch: i64,
) -> Result<i64, StoreError> {
    let mut searched_through = base_seq;
    while searched_through < newest_removable {
        let after = searched_through;
        let found = store
            .run(move |c| audit_rows::first_not_older(c, after, batch, cutoff))
            .await?;
        if let Some(seq) = found {
            return Ok((seq - 1).min(newest_removable));
        }
        searched_through += batch;
    }
    Ok(newest_removable)
}

/// Removes up to `batch` entries after `base`, at most through `through_seq`, in one
/// transaction, after checking that they chain from the base; returns how many were removed
/// and the new base.
fn remove_batch(
    connection: &mut rusqlite::Connection,
    base: Option<(i64, Vec<u8>)>,
    through_seq: i64,
    batch: i64,
) -> Result<(i64, (i64, Vec<u8>)), AuditLogError> {
    let transaction = connection.transaction().map_err(StoreError::from)?;
    let base_seq = base.as_ref().map_or(0, |(seq, _)| *seq);
    let last_seq = base_seq.saturating_add(batch).min(through_seq);
    let mut verifier = ChainVerifier::new(base);
    audit_rows::for_each_between(&transaction, base_seq + 1, last_seq, |row| {
        verifier.push(&row).map_err(Stop::Chain)
    })?;
    let (checked_seq, checked_hash) = verifier.last();
    if checked_seq != last_seq {
        return Err(ChainError::Missing {
            seq: checked_seq + 1,
        }
        .into());
    }
    let new_base = (last_seq, checked_hash.to_vec());
    let count = audit_rows::delete_through(&transaction, last_seq)?;
    audit_rows::set_base(&transaction, new_base.0, &new_base.1)?;
    transaction.commit().map_err(StoreError::from)?;
    Ok((count as i64, new_base))
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

    fn check(store: &Store) -> Result<ChainSummary, ChainError> {
        store.run_blocking(verify_log).map_err(|error| match error {
            AuditLogError::Broken(error) => error,
            AuditLogError::Store(error) => panic!("reading the log failed: {error}"),
        })
    }

    fn entries(store: &Store) -> Result<i64, ChainError> {
        check(store).map(|summary| summary.entries)
    }

    /// Runs a pruning pass with small batches, so that every test crosses batch boundaries.
    fn prune_at(store: &Store, now: i64, retention_days: u32) -> Result<i64, AuditLogError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(prune_in_batches(store, now, retention_days, 2))
    }

    /// `now` for a one-day retention whose cutoff is `cutoff`.
    fn one_day_after(cutoff: i64) -> i64 {
        cutoff + SECONDS_PER_DAY
    }

    fn seqs(store: &Store) -> Vec<i64> {
        store
            .run_blocking(|c| audit_rows::all(c))
            .expect("read")
            .iter()
            .map(|row| row.seq)
            .collect()
    }

    fn stored(store: &Store, seq: i64) -> AuditRow {
        store
            .run_blocking(|c| audit_rows::find(c, seq))
            .expect("read")
            .expect("the entry is stored")
    }

    fn set_base(store: &Store, seq: i64, hash: Vec<u8>) {
        store
            .run_blocking(|c| audit_rows::set_base(c, seq, &hash))
            .expect("set the base");
    }

    fn append_from(store: &Store, at: i64, ip: Option<&str>) {
        store
            .run_blocking(|c| {
                let tx = c.transaction()?;
                let actor = match ip {
                    Some(ip) => Actor::client(ip.into(), Some("test")),
                    None => Actor::local(),
                };
                append(
                    &tx,
                    at,
                    &AuditEvent::NodeStarted {
                        version: "test".into(),
                    },
                    &actor,
                )?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .expect("append");
    }

    fn truncate_at(store: &Store, now: i64, days: u32) -> usize {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(truncate_old_addresses(store, now, days))
            .expect("truncate")
    }

    #[test]
    fn addresses_past_their_retention_are_cut_to_their_network_and_the_chain_still_verifies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let day = SECONDS_PER_DAY;
        append_from(&store, 0, Some("203.0.113.77"));
        append_from(&store, 0, Some("2001:db8:1:2::5"));
        append_from(&store, 0, None);
        append_from(&store, 29 * day, Some("198.51.100.9"));
        let salted = stored(&store, 1);
        assert_eq!(salted.ip_salt.as_ref().map(Vec::len), Some(IP_SALT_LEN));
        assert!(salted.ip_digest.is_some());
        assert_eq!(
            truncate_at(&store, 31 * day, 0),
            0,
            "0 keeps addresses whole"
        );
        assert_eq!(truncate_at(&store, 31 * day, 30), 2);
        assert_eq!(stored(&store, 1).ip.as_deref(), Some("203.0.113.0/24"));
        assert_eq!(stored(&store, 1).ip_salt, None);
        assert_eq!(stored(&store, 2).ip.as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(stored(&store, 3).ip, None);
        assert_eq!(
            stored(&store, 4).ip.as_deref(),
            Some("198.51.100.9"),
            "younger than 30 days"
        );
        assert_eq!(entries(&store), Ok(4));
        assert_eq!(truncate_at(&store, 31 * day, 30), 0, "nothing left to cut");
    }

    #[test]
    fn an_address_changed_in_the_database_breaks_the_chain_whole_or_cut() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        append_from(&store, 0, Some("203.0.113.77"));
        append_from(&store, 0, Some("203.0.113.78"));
        append_from(&store, 40 * SECONDS_PER_DAY, Some("203.0.113.79"));
        truncate_at(&store, 40 * SECONDS_PER_DAY, 30);
        // Entry 3 is whole: its salt ties the address to the digest the chain covers.
        exec(
            &store,
            "UPDATE audit_log SET ip = '203.0.113.80' WHERE seq = 3",
        );
        assert_eq!(entries(&store), Err(ChainError::Changed { seq: 3 }));
        exec(
            &store,
            "UPDATE audit_log SET ip = '203.0.113.79' WHERE seq = 3",
        );
        assert_eq!(entries(&store), Ok(3));
        // A cut address must stay a network; a whole address put back in its place is refused.
        exec(
            &store,
            "UPDATE audit_log SET ip = '203.0.113.77' WHERE seq = 1",
        );
        assert_eq!(entries(&store), Err(ChainError::Changed { seq: 1 }));
    }

    fn exec(store: &Store, sql: &str) {
        store
            .run_blocking(|c| c.execute_batch(sql).map_err(StoreError::from))
            .expect("tamper");
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (_dir, store) = store_with_entries(5);
        assert_eq!(entries(&store), Ok(5));
    }

    #[test]
    fn a_changed_entry_is_named() {
        let (_dir, store) = store_with_entries(5);
        exec(
            &store,
            "UPDATE audit_log SET ip = '203.0.113.9' WHERE seq = 3",
        );
        assert_eq!(entries(&store), Err(ChainError::Changed { seq: 3 }));
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let (_dir, store) = store_with_entries(5);
        exec(&store, "DELETE FROM audit_log WHERE seq = 2");
        assert_eq!(entries(&store), Err(ChainError::Missing { seq: 2 }));
    }

    #[test]
    fn deleting_the_newest_entries_is_caught_by_the_head() {
        let (_dir, store) = store_with_entries(5);
        exec(&store, "DELETE FROM audit_log WHERE seq >= 4");
        assert_eq!(
            entries(&store),
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
        assert_eq!(entries(&store), Err(ChainError::BrokenLink { seq: 2 }));
    }

    #[test]
    fn pruning_removes_old_entries_and_keeps_the_chain_verifiable() {
        // Entries 1 to 10 are at times 1000 to 1009.
        let (_dir, store) = store_with_entries(10);
        let now = one_day_after(1_005);
        assert_eq!(prune_at(&store, now, 1).expect("prune"), 5);
        assert_eq!(seqs(&store), [6, 7, 8, 9, 10, 11]);
        let checkpoint = stored(&store, 11);
        assert_eq!(checkpoint.event, PRUNED_EVENT);
        assert_eq!(checkpoint.at, now);
        let detail: serde_json::Value = serde_json::from_str(&checkpoint.detail).expect("JSON");
        assert_eq!(
            detail,
            json!({
                "through_seq": 5,
                "through_hash": hex(&stored(&store, 6).prev_hash),
                "removed": 5,
                "oldest_at": 1_000,
                "newest_at": 1_004,
            })
        );
        let summary = check(&store).expect("intact");
        assert_eq!((summary.entries, summary.base_seq), (6, 5));
    }

    #[test]
    fn deleting_one_more_old_entry_after_pruning_is_caught() {
        let (_dir, store) = store_with_entries(10);
        prune_at(&store, one_day_after(1_005), 1).expect("prune");
        exec(&store, "DELETE FROM audit_log WHERE seq = 6");
        assert_eq!(entries(&store), Err(ChainError::Missing { seq: 6 }));
    }

    #[test]
    fn moving_the_base_past_the_checkpoint_is_caught() {
        let (_dir, store) = store_with_entries(10);
        prune_at(&store, one_day_after(1_005), 1).expect("prune");
        let sixth = stored(&store, 6);
        set_base(&store, 6, sixth.hash);
        exec(&store, "DELETE FROM audit_log WHERE seq = 6");
        assert_eq!(entries(&store), Err(ChainError::BaseNotPruned { base: 6 }));
    }

    #[test]
    fn a_base_without_any_checkpoint_is_caught() {
        let (_dir, store) = store_with_entries(5);
        let third = stored(&store, 3);
        set_base(&store, 3, third.hash);
        exec(&store, "DELETE FROM audit_log WHERE seq <= 3");
        assert_eq!(entries(&store), Err(ChainError::BaseNotPruned { base: 3 }));
    }

    #[test]
    fn a_second_pruning_pass_moves_the_base_on() {
        let (_dir, store) = store_with_entries(10);
        prune_at(&store, one_day_after(1_005), 1).expect("first pass");
        assert_eq!(
            prune_at(&store, one_day_after(1_008), 1).expect("second pass"),
            3
        );
        // The first checkpoint is newer than the cutoff, so it stays.
        assert_eq!(seqs(&store), [9, 10, 11, 12]);
        let summary = check(&store).expect("intact");
        assert_eq!((summary.entries, summary.base_seq), (4, 8));
        assert_eq!(
            prune_at(&store, one_day_after(1_008), 1).expect("third pass"),
            0
        );
        assert_eq!(seqs(&store), [9, 10, 11, 12], "nothing more to remove");
    }

    #[test]
    fn a_retention_of_zero_days_removes_nothing() {
        let (_dir, store) = store_with_entries(5);
        assert_eq!(prune_at(&store, i64::MAX / 2, 0).expect("prune"), 0);
        assert_eq!(seqs(&store), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_newest_entry_is_never_removed() {
        let (_dir, store) = store_with_entries(5);
        assert_eq!(
            prune_at(&store, one_day_after(1_000_000), 1).expect("prune"),
            4
        );
        assert_eq!(seqs(&store), [5, 6]);
        assert_eq!(entries(&store), Ok(2));
    }

    #[test]
    fn a_pass_stopped_part_way_still_verifies() {
        let (_dir, store) = store_with_entries(10);
        let fifth = stored(&store, 5);
        store
            .run_blocking(|c| {
                let tx = c.transaction().map_err(StoreError::from)?;
                let event = AuditEvent::AuditPruned {
                    through_seq: 5,
                    through_hash: hex(&fifth.hash),
                    removed: 5,
                    oldest_at: 1_000,
                    newest_at: 1_004,
                };
                append(&tx, 2_000, &event, &Actor::local())?;
                tx.commit().map_err(StoreError::from)?;
                remove_batch(c, None, 5, 2)
            })
            .expect("one batch");
        assert_eq!(seqs(&store)[0], 3);
        let summary = check(&store).expect("intact");
        assert_eq!((summary.entries, summary.base_seq), (9, 2));
    }

    #[test]
    fn pruning_refuses_to_remove_a_broken_chain() {
        let (_dir, store) = store_with_entries(10);
        exec(
            &store,
            "UPDATE audit_log SET ip = '203.0.113.9' WHERE seq = 3",
        );
        let result = prune_at(&store, one_day_after(1_005), 1);
        assert!(
            matches!(
                result,
                Err(AuditLogError::Broken(ChainError::Changed { seq: 3 }))
            ),
            "{result:?}"
        );
        assert_eq!(
            seqs(&store)[0],
            3,
            "the batch before the changed entry went"
        );
        assert_eq!(entries(&store), Err(ChainError::Changed { seq: 3 }));
    }

    #[test]
    fn a_long_user_agent_is_cut_at_a_character_boundary() {
        let actor = Actor::client("ip".into(), Some(&"é".repeat(300)));
        let ua = actor.user_agent.expect("kept");
        assert!(ua.len() <= MAX_USER_AGENT_LEN);
        assert!(ua.chars().all(|c| c == 'é'));
    }
}
