//! Signing in with a key: checking a login assertion (a JWT over a server challenge, in the
//! credential's own algorithm) against every rule of RFC 8725 and the protocol, under a
//! per-client throttle.

use super::InternalError;
use super::attempts::{AttemptLedger, Windows};
use super::challenge::{Challenges, Purpose};
use super::claim::secrets_match;
use super::credentials::{CredentialRegistry, Lookup, Principal};
use crate::audit::{Actor, AuditEvent};
use crate::jose::jws::{CompactJws, NonceClaims, PROOF_LIFETIME};
use crate::keys::JwsAlgorithm;
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
    #[error("the credential may not be used from this address")]
    NetworkNotAllowed { credential_id: String },
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
    pub credentials: &'a CredentialRegistry,
    pub challenges: &'a Challenges,
    pub audience: &'a str,
}

/// Checks an assertion and uses up its nonce; returns the principal of the credential that
/// signed it. `expected_nonce` binds the assertion to one challenge (a WebSocket's). The
/// credential's expiry and networks are checked once the signature holds, so that they tell
/// nothing to someone without the key.
pub async fn check_assertion(
    context: &LoginContext<'_>,
    token: &str,
    expected_nonce: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Principal, LoginError> {
    let rejected = |why: String| LoginError::Rejected(why);
    // A socket's challenge is answered on that socket; REST challenges only over REST.
    let purpose = if expected_nonce.is_some() {
        Purpose::WebSocket
    } else {
        Purpose::Rest
    };
    let jws =
        CompactJws::parse_accepting(token, LOGIN_TYPE, |alg| JwsAlgorithm::parse(alg).is_some())
            .map_err(|e| rejected(e.to_string()))?;
    let kid = jws
        .header
        .kid
        .clone()
        .ok_or_else(|| rejected("has no kid header".into()))?;
    let credential = match context.credentials.lookup(context.store, &kid, now).await? {
        Lookup::Found(credential) => credential,
        Lookup::Tampered { credential_id } => {
            let key = format!("tampered:{credential_id}");
            let event = AuditEvent::CredentialTampered {
                credential_id,
                kid,
                problem: "tried to sign in".into(),
            };
            context.attempts.record_limited(&key, event, actor, now);
            // Said like an unknown kid: the refusal tells nothing about the database.
            return Err(rejected("has a kid that is not a registered key".into()));
        }
        Lookup::Unknown => return Err(rejected("has a kid that is not a registered key".into())),
    };
    let alg = JwsAlgorithm::parse(&jws.header.alg)
        .ok_or_else(|| rejected("has an algorithm that is not accepted".into()))?;
    if alg != credential.key.alg {
        return Err(rejected(format!(
            "uses alg {}, but the credential signs with {}",
            alg.as_str(),
            credential.key.alg.as_str()
        )));
    }
    let claims: NonceClaims = jws
        .verify_by(|input, signature| credential.key.verify_jws(alg, input, signature))
        .map_err(|e| rejected(e.to_string()))?;
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
    // The nonce is used up before the credential's own limits are checked, so an assertion
    // refused for them cannot be replayed from elsewhere.
    context
        .challenges
        .redeem(&claims.nonce, now, purpose)
        .map_err(|e| rejected(format!("has a nonce that {e}")))?;
    if credential.has_expired(now) {
        return Err(rejected("names a credential that has expired".into()));
    }
    if !credential.allows_address(actor.ip_addr()) {
        return Err(LoginError::NetworkNotAllowed {
            credential_id: credential.id.clone(),
        });
    }
    Ok(credential.principal())
}

/// A sign-in step under the throttle: refuses a throttled client, checks the assertion, and
/// records a failure (kept in memory and written in the next batch). A credential used from
/// outside its networks counts as a failure too, and is audited.
pub async fn sign_in(
    context: &LoginContext<'_>,
    token: &str,
    expected_nonce: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Principal, LoginError> {
    let attempt = context
        .attempts
        .begin_login(actor, now)
        .map_err(|retry_after| LoginError::Throttled { retry_after })?;
    match check_assertion(context, token, expected_nonce, actor, now).await {
        Ok(principal) => {
            attempt.succeeded();
            Ok(principal)
        }
        Err(LoginError::NetworkNotAllowed { credential_id }) => {
            attempt.failed(
                actor,
                "names a credential that may not be used from this address",
                Windows::Client,
            );
            let key = format!(
                "network:{credential_id}:{}",
                super::throttle::network_key(actor.ip.as_deref())
            );
            let event = AuditEvent::CredentialNetworkRefused {
                credential_id: credential_id.clone(),
                session_id: None,
            };
            context.attempts.record_limited(&key, event, actor, now);
            Err(LoginError::NetworkNotAllowed { credential_id })
        }
        Err(LoginError::Rejected(reason)) => {
            attempt.failed(actor, &reason, Windows::Client);
            Err(LoginError::Rejected(reason))
        }
        Err(other) => {
            attempt.abandoned();
            Err(other)
        }
    }
}
