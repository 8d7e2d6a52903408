//! Signing in with a key: checking a login assertion (a JWT over a server challenge, in the
//! credential's own algorithm) against every rule of RFC 8725 and the protocol, or a signature
//! pasted from openssl or ssh-keygen over the challenge's message, under a per-client throttle.

use std::sync::Arc;

use super::InternalError;
use super::attempts::{AttemptLedger, Windows};
use super::challenge::{Challenges, Purpose};
use super::claim::secrets_match;
use super::credentials::{Credential, CredentialKind, CredentialRegistry, Lookup, Principal};
use crate::audit::{Actor, AuditEvent};
use crate::jose::jws::{CompactJws, NonceClaims, PROOF_LIFETIME};
use crate::keys::JwsAlgorithm;
use crate::keys::paste::{PasteFormat, verify_pasted};
use crate::store::{Store, StoreError};

/// The `typ` of a login assertion.
pub const LOGIN_TYPE: &str = "siteid-login+jwt";

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the assertion {0}")]
    Rejected(String),
    #[error("the signature {0}")]
    SignatureRejected(String),
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
    pub passkeys: &'a super::passkeys::Passkeys,
}

/// How a client proves that it holds a credential's key.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// A login assertion: a JWT over a challenge's nonce.
    Assertion(&'a str),
    /// A signature pasted from openssl or ssh-keygen over a REST challenge's message.
    Pasted(PastedSignature<'a>),
    /// A WebAuthn assertion by a passkey, over a passkey sign-in's challenge.
    Passkey(super::passkeys::PasskeyAssertion<'a>),
}

/// A pasted signature as a request gives it.
#[derive(Debug, Clone, Copy)]
pub struct PastedSignature<'a> {
    pub kid: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub format: &'a str,
}

/// The exact text a pasted signature signs: `siteid login <public_url> <nonce>`, no newline.
pub fn paste_message(audience: &str, nonce: &str) -> String {
    format!("siteid login {audience} {nonce}")
}

/// Checks a proof and uses up its nonce; returns the principal of the credential that made
/// it. `expected_nonce` binds an assertion to one challenge (a WebSocket's). The credential's
/// expiry and networks are checked once the signature holds, so that they tell nothing to
/// someone without the key.
pub async fn check_proof(
    context: &LoginContext<'_>,
    proof: Proof<'_>,
    expected_nonce: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Principal, LoginError> {
    let credential = match proof {
        Proof::Assertion(token) => {
            check_assertion(context, token, expected_nonce, actor, now).await?
        }
        Proof::Pasted(pasted) => {
            if expected_nonce.is_some() {
                return Err(LoginError::SignatureRejected(
                    "can only be pasted over REST".into(),
                ));
            }
            check_pasted(context, pasted, actor, now).await?
        }
        Proof::Passkey(assertion) => {
            if expected_nonce.is_some() {
                return Err(LoginError::Rejected(
                    "(a passkey) signs in over REST only".into(),
                ));
            }
            context
                .passkeys
                .check_assertion(context, assertion, actor, now)
                .await?
        }
    };
    if credential.has_expired(now) {
        return Err(LoginError::Rejected(
            "names a credential that has expired".into(),
        ));
    }
    if !credential.allows_address(actor.ip_addr()) {
        return Err(LoginError::NetworkNotAllowed {
            credential_id: credential.id.clone(),
        });
    }
    Ok(credential.principal())
}

/// The live credential `kid` names. A tampered row is audited and refused like an unknown kid,
/// so the refusal tells nothing about the database.
async fn find_credential(
    context: &LoginContext<'_>,
    kid: &str,
    actor: &Actor,
    now: i64,
) -> Result<Option<Arc<Credential>>, LoginError> {
    match context.credentials.lookup(context.store, kid, now).await? {
        Lookup::Found(credential) => Ok(Some(credential)),
        Lookup::Tampered { credential_id } => {
            let key = format!("tampered:{credential_id}");
            let event = AuditEvent::CredentialTampered {
                credential_id,
                kid: kid.to_owned(),
                problem: "tried to sign in".into(),
            };
            context.attempts.record_limited(&key, event, actor, now);
            Ok(None)
        }
        Lookup::Unknown => Ok(None),
    }
}

/// Checks a login assertion and uses up its nonce.
async fn check_assertion(
    context: &LoginContext<'_>,
    token: &str,
    expected_nonce: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Arc<Credential>, LoginError> {
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
    let credential = find_credential(context, &kid, actor, now)
        .await?
        .ok_or_else(|| rejected("has a kid that is not a registered key".into()))?;
    if credential.kind == CredentialKind::Passkey {
        return Err(rejected(
            "names a passkey, which signs in with WebAuthn, not with a JWT".into(),
        ));
    }
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
    Ok(credential)
}

/// Checks a pasted signature over the challenge's message and uses up its nonce.
async fn check_pasted(
    context: &LoginContext<'_>,
    pasted: PastedSignature<'_>,
    actor: &Actor,
    now: i64,
) -> Result<Arc<Credential>, LoginError> {
    let rejected = |why: String| LoginError::SignatureRejected(why);
    let format = PasteFormat::parse(pasted.format)
        .ok_or_else(|| rejected("has a format that is not openssl, raw or sshsig".into()))?;
    // The nonce must be one of ours before any key is looked up or any signature checked.
    context
        .challenges
        .check(pasted.nonce, now, Purpose::Rest)
        .map_err(|e| rejected(format!("answers a nonce that {e}")))?;
    let credential = find_credential(context, pasted.kid, actor, now)
        .await?
        .ok_or_else(|| rejected("names a kid that is not a registered key".into()))?;
    if credential.kind == CredentialKind::Passkey {
        return Err(rejected(
            "names a passkey, which signs in with WebAuthn, not with a pasted signature".into(),
        ));
    }
    // openssl and SSH RSA signatures are PKCS#1 v1.5: a credential pinned to PS256 signs only
    // PS256 assertions.
    if credential.key.alg == JwsAlgorithm::Ps256 {
        return Err(rejected(
            "cannot be pasted for a credential that signs with PS256; send a PS256 assertion"
                .into(),
        ));
    }
    let message = paste_message(context.audience, pasted.nonce);
    verify_pasted(
        &credential.key.public,
        format,
        message.as_bytes(),
        pasted.signature,
    )
    .map_err(|e| rejected(e.to_string()))?;
    context
        .challenges
        .redeem(pasted.nonce, now, Purpose::Rest)
        .map_err(|e| rejected(format!("answers a nonce that {e}")))?;
    Ok(credential)
}

/// A sign-in step under the throttle: refuses a throttled client, checks the assertion, and
/// records a failure (kept in memory and written in the next batch). A credential used from
/// outside its networks counts as a failure too, and is audited.
pub async fn sign_in(
    context: &LoginContext<'_>,
    proof: Proof<'_>,
    expected_nonce: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Principal, LoginError> {
    let attempt = context
        .attempts
        .begin_login(actor, now)
        .map_err(|retry_after| LoginError::Throttled { retry_after })?;
    match check_proof(context, proof, expected_nonce, actor, now).await {
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
        Err(LoginError::SignatureRejected(reason)) => {
            attempt.failed(actor, &reason, Windows::Client);
            Err(LoginError::SignatureRejected(reason))
        }
        Err(other) => {
            attempt.abandoned();
            Err(other)
        }
    }
}
