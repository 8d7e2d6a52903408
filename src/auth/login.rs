//! Signing in with a key: checking a login assertion (an ES384 JWT over a server challenge)
//! against every rule of RFC 8725 and the protocol, under a per-client throttle.

use super::challenge::{Challenges, Purpose};
use super::claim::secrets_match;
use super::keys::RegisteredKeys;
use super::throttle::Window;
use super::{AuditLimiter, InternalError};
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::jws::{CompactJws, NonceClaims, PROOF_LIFETIME};
use crate::store::throttle::{self as failures, FailureKind};
use crate::store::{Store, StoreError};

/// The `typ` of a login assertion.
pub const LOGIN_TYPE: &str = "siteid-login+jwt";

/// At most 10 failed sign-ins per 15 minutes from one client. There is no node-wide cap: a
/// key cannot be guessed, and a flood from elsewhere must not lock the owner out.
pub const LOGIN_PER_CLIENT: Window = Window {
    limit: 10,
    seconds: 15 * 60,
};

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the assertion {0}")]
    Rejected(String),
    #[error("too many failed sign-ins")]
    Throttled { retry_after: i64 },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for LoginError {
    fn from(error: StoreError) -> Self {
        LoginError::Internal(InternalError(error))
    }
}

/// Recent failed sign-ins per client, mirrored in memory so that the sign-in path reads no
/// database. Every change is also written to the database, which seeds the mirror at start-up.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: std::sync::Mutex<std::collections::HashMap<String, Vec<i64>>>,
}

impl LoginThrottle {
    const MAX_CLIENTS: usize = 100_000;

    /// Loads the failures still inside the window.
    pub fn load(store: &Store, now: i64) -> Result<Self, StoreError> {
        let since = LOGIN_PER_CLIENT.start(now);
        let rows = store.run_blocking(|c| failures::recent(c, FailureKind::Login, since))?;
        let throttle = LoginThrottle::default();
        {
            let mut map = throttle.lock();
            for (client, at) in rows {
                map.entry(client).or_default().push(at);
            }
        }
        Ok(throttle)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<i64>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until `client` may try again, if it is throttled; and whether it has failures.
    fn check(&self, client: &str, now: i64) -> (Option<i64>, bool) {
        let since = LOGIN_PER_CLIENT.start(now);
        let mut map = self.lock();
        let Some(times) = map.get_mut(client) else {
            return (None, false);
        };
        times.retain(|at| *at >= since);
        (LOGIN_PER_CLIENT.retry_after(times, now), !times.is_empty())
    }

    fn record(&self, client: &str, now: i64) {
        let mut map = self.lock();
        if map.len() >= Self::MAX_CLIENTS {
            let since = LOGIN_PER_CLIENT.start(now);
            map.retain(|_, times| times.iter().any(|at| *at >= since));
        }
        map.entry(client.to_owned()).or_default().push(now);
    }

    fn clear(&self, client: &str) {
        self.lock().remove(client);
    }
}

/// What checking an assertion needs from the node.
pub struct LoginContext<'a> {
    pub store: &'a Store,
    pub throttle: &'a LoginThrottle,
    pub keys: &'a RegisteredKeys,
    pub challenges: &'a Challenges,
    pub audience: &'a str,
    pub limiter: &'a AuditLimiter,
}

/// Checks an assertion and uses up its nonce; returns the signing key's kid. `expected_nonce`
/// binds the assertion to one challenge (a WebSocket's).
pub async fn check_assertion(
    context: &LoginContext<'_>,
    token: &str,
    expected_nonce: Option<&str>,
    now: i64,
) -> Result<String, LoginError> {
    let rejected = |why: String| LoginError::Rejected(why);
    // A socket's challenge is answered on that socket; REST challenges only over REST.
    let purpose = if expected_nonce.is_some() {
        Purpose::WebSocket
    } else {
        Purpose::Rest
    };
    let jws = CompactJws::parse(token, LOGIN_TYPE).map_err(|e| rejected(e.to_string()))?;
    let kid = jws
        .header
        .kid
        .clone()
        .ok_or_else(|| rejected("has no kid header".into()))?;
    let key = context
        .keys
        .find(context.store, &kid)
        .await?
        .ok_or_else(|| rejected("has a kid that is not a registered key".into()))?;
    let claims: NonceClaims = jws.verify_with(&key).map_err(|e| rejected(e.to_string()))?;
    if claims.aud != context.audience {
        return Err(rejected("is for another audience (aud)".into()));
    }
    PROOF_LIFETIME
        .check(claims.iat, claims.exp, now)
        .map_err(|e| rejected(e.to_string()))?;
    if let Some(expected) = expected_nonce
        && !secrets_match(expected, &claims.nonce)
    {
        return Err(rejected("answers another challenge (nonce)".into()));
    }
    context
        .challenges
        .redeem(&claims.nonce, now, purpose)
        .map_err(|e| rejected(format!("has a nonce that {e}")))?;
    Ok(kid)
}

/// A sign-in step under the throttle: refuses a throttled client, checks the assertion, and
/// records and audits a failure. Returns the kid.
pub async fn sign_in(
    context: &LoginContext<'_>,
    token: &str,
    expected_nonce: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<String, LoginError> {
    let ip = super::throttle::client_key(actor.ip.as_deref());
    let (throttled, had_failures) = context.throttle.check(&ip, now);
    if let Some(retry_after) = throttled {
        if context.limiter.should_record(&format!("login:{ip}"), now) {
            record(
                context.store,
                actor,
                now,
                Some(AuditEvent::LoginThrottled { retry_after }),
                None,
            )
            .await?;
        }
        return Err(LoginError::Throttled { retry_after });
    }
    match check_assertion(context, token, expected_nonce, now).await {
        Ok(kid) => {
            if had_failures {
                context.throttle.clear(&ip);
                let ip = ip.clone();
                context
                    .store
                    .run(move |c| failures::clear_failures(c, FailureKind::Login, &ip))
                    .await?;
            }
            Ok(kid)
        }
        Err(LoginError::Rejected(reason)) => {
            context.throttle.record(&ip, now);
            // The reason can quote attacker text (an alg, a typ): keep it short.
            let short: String = reason.chars().take(200).collect();
            let event = context
                .limiter
                .should_record_failure(now)
                .then_some(AuditEvent::LoginFailed { reason: short });
            record(context.store, actor, now, event, Some(ip)).await?;
            Err(LoginError::Rejected(reason))
        }
        Err(other) => Err(other),
    }
}

/// Appends an audit event (when given) and a failure row (when `failure_ip` is), in one
/// transaction.
async fn record(
    store: &Store,
    actor: &Actor,
    now: i64,
    event: Option<AuditEvent>,
    failure_ip: Option<String>,
) -> Result<(), StoreError> {
    let actor = actor.clone();
    store
        .run(move |c| {
            let tx = c.transaction()?;
            if let Some(ip) = &failure_ip {
                failures::record_failure(&tx, FailureKind::Login, ip, now)?;
                failures::prune(&tx, FailureKind::Login, LOGIN_PER_CLIENT.start(now))?;
            }
            if let Some(event) = &event {
                audit::append(&tx, now, event, &actor)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
}
