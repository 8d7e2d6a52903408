//! Signing in with a key: checking a login assertion (an ES384 JWT over a server challenge)
//! against every rule of RFC 8725 and the protocol, under a per-client throttle.

use super::InternalError;
use super::attempts::{AttemptLedger, Failure};
use super::challenge::{Challenges, Purpose};
use super::claim::secrets_match;
use super::keys::RegisteredKeys;
use crate::audit::Actor;
use crate::jose::jws::{CompactJws, NonceClaims, PROOF_LIFETIME};
use crate::store::{Store, StoreError};

/// The `typ` of a login assertion.
pub const LOGIN_TYPE: &str = "siteid-login+jwt";

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

/// What checking an assertion needs from the node.
pub struct LoginContext<'a> {
    pub store: &'a Store,
    pub attempts: &'a AttemptLedger,
    pub keys: &'a RegisteredKeys,
    pub challenges: &'a Challenges,
    pub audience: &'a str,
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
/// records a failure (kept in memory and written in the next batch). Returns the kid.
pub async fn sign_in(
    context: &LoginContext<'_>,
    token: &str,
    expected_nonce: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<String, LoginError> {
    if let Some(retry_after) = context.attempts.login_retry_after(actor, now) {
        return Err(LoginError::Throttled { retry_after });
    }
    match check_assertion(context, token, expected_nonce, now).await {
        Ok(kid) => {
            context.attempts.login_succeeded(actor);
            Ok(kid)
        }
        Err(LoginError::Rejected(reason)) => {
            context.attempts.login_failed(Failure {
                actor,
                reason: &reason,
                at: now,
            });
            Err(LoginError::Rejected(reason))
        }
        Err(other) => Err(other),
    }
}
