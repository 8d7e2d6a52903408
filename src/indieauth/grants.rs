//! Authorization codes, grants and tokens: issuing a code on the owner's approval, redeeming it
//! (once: a second redemption revokes what the first issued), rotating refresh tokens (a reused
//! one revokes its grant), introspecting, revoking, and listing grants. Codes and tokens are
//! 256-bit random strings kept only as their SHA-256; every token lives only while its grant is
//! live and the credential that approved it still holds `indieauth`.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::request::{Scopes, verifier_matches};
use super::urls;
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::store::indieauth::{self as rows, CodeRow, GrantRow, TokenRow};
use crate::store::{Store, StoreError};

/// How long a code may wait for its redemption, in seconds (§5.2.1: at most 10 minutes).
pub const CODE_LIFETIME: i64 = 600;
/// How long an access token lives, in seconds (never past its grant).
pub const ACCESS_TOKEN_LIFETIME: i64 = 3600;
/// How long a refresh token lives unused, in seconds (never past its grant).
pub const REFRESH_TOKEN_IDLE_LIFETIME: i64 = 30 * 86_400;
/// The grant lifetimes the owner may choose, in seconds, with their names on the consent page.
pub const GRANT_LIFETIMES: [(i64, &str); 5] = [
    (86_400, "1 day"),
    (7 * 86_400, "1 week"),
    (30 * 86_400, "30 days"),
    (90 * 86_400, "90 days"),
    (365 * 86_400, "1 year"),
];
/// The lifetime chosen unless the owner picks another.
pub const DEFAULT_GRANT_LIFETIME: i64 = 30 * 86_400;
/// A grant's last use is written at most this often, in seconds.
const TOUCH_INTERVAL: i64 = 60;

/// Whether the credential with this id is live and still holds `indieauth`.
pub type CredentialCheck = Box<dyn Fn(&str) -> bool + Send>;

/// A fresh code or token: 32 random bytes in base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64::encode(&bytes)
}

/// What the node stores of a code or token.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64::encode(&bytes)
}

/// A client identifier as compared: canonical per §3.4 (a path of at least `/`, the host in
/// lower case), or as sent when it is not a valid one.
pub fn comparable_client_id(client_id: &str) -> String {
    urls::check_client_id(client_id)
        .map(|url| url.to_string())
        .unwrap_or_else(|_| client_id.to_owned())
}

/// What the owner approved.
#[derive(Debug, Clone)]
pub struct Approval {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Scopes,
    pub credential_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub lifetime: i64,
}

/// Issues a code for an approval, audited as `indieauth.approved`; returns the code.
pub async fn approve(
    store: &Store,
    approval: Approval,
    actor: Actor,
    now: i64,
) -> Result<String, StoreError> {
    let code = new_secret();
    let row = CodeRow {
        code_hash: secret_hash(&code),
        client_id: comparable_client_id(&approval.client_id),
        redirect_uri: approval.redirect_uri.clone(),
        code_challenge: approval.code_challenge,
        scope: approval.scopes.to_string(),
        credential_id: approval.credential_id.clone(),
        client_name: approval.client_name,
        client_uri: approval.client_uri,
        lifetime: approval.lifetime,
        created_at: now,
        expires_at: now + CODE_LIFETIME,
        used_at: None,
        grant_id: None,
    };
    store
        .run(move |c| {
            let tx = c.transaction()?;
            rows::insert_code(&tx, &row)?;
            let event = AuditEvent::IndieauthApproved {
                client_id: approval.client_id,
                redirect_uri: approval.redirect_uri,
                scope: row.scope.clone(),
                credential_id: approval.credential_id,
            };
            audit::append(&tx, now, &event, &actor)?;
            tx.commit()?;
            Ok::<_, StoreError>(())
        })
        .await?;
    Ok(code)
}

/// Records a denial as `indieauth.denied`.
pub async fn deny(
    store: &Store,
    client_id: String,
    credential_id: String,
    actor: Actor,
    now: i64,
) -> Result<(), StoreError> {
    store
        .run(move |c| {
            let event = AuditEvent::IndieauthDenied {
                client_id,
                credential_id,
            };
            audit::append(c, now, &event, &actor)?;
            Ok::<_, StoreError>(())
        })
        .await
}

/// Where a code is redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The token endpoint: a grant with tokens.
    Token,
    /// The authorization endpoint: the profile URL (and profile), no tokens.
    Authorization,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Authorization => "authorization",
        }
    }
}

/// A code redemption's parameters.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub code: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_verifier: String,
}

/// Tokens issued for a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    /// The access token's scopes.
    pub scope: Scopes,
    pub grant_id: String,
}

/// What a redemption gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub scope: Scopes,
    /// The tokens, at the token endpoint.
    pub tokens: Option<IssuedTokens>,
}

/// Why a redemption or refresh was refused; messages complete "The grant ...".
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// `invalid_grant`: unknown, used, expired, mismatched, or its approver is gone.
    #[error("{0}")]
    Invalid(&'static str),
    /// `invalid_grant` at the token endpoint for a code without scopes (not consumed).
    #[error(
        "was issued without a scope, so it gives no access token: redeem it at the authorization endpoint"
    )]
    NoScope,
    /// `invalid_scope`: a refresh asked for more than the grant holds.
    #[error("does not cover the scopes asked for")]
    ScopeTooWide,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Redeems a code at `endpoint`. Every check that needs the stored code runs in one
/// transaction, and any failure after the code was found spends it, except a scopeless code at
/// the token endpoint (which may still be redeemed at the authorization endpoint).
pub async fn redeem(
    store: &Store,
    credential_live: CredentialCheck,
    redemption: Redemption,
    endpoint: Endpoint,
    actor: Actor,
    now: i64,
) -> Result<Redeemed, GrantError> {
    let code_hash = secret_hash(&redemption.code);
    let grant_id = new_id();
    let access_token = new_secret();
    let refresh_token = new_secret();
    let tokens = (access_token.clone(), refresh_token.clone());
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            let Some(code) = rows::code(&tx, &code_hash)? else {
                return Ok(Err(GrantError::Invalid("code is not known")));
            };
            if code.used_at.is_some() {
                // Only the first reuse is audited: anyone holding a used code could otherwise
                // write to the log at will.
                if rows::mark_reused(&tx, &code_hash, now)? {
                    if let Some(grant_id) = &code.grant_id {
                        revoke_in(&tx, grant_id, &code.client_id, "code_reused", &actor, now)?;
                    }
                    let event = AuditEvent::IndieauthCodeReused {
                        client_id: code.client_id.clone(),
                        grant_id: code.grant_id.clone(),
                    };
                    audit::append(&tx, now, &event, &actor)?;
                    tx.commit().map_err(StoreError::from)?;
                }
                return Ok(Err(GrantError::Invalid(
                    "code was used already; what it gave was revoked",
                )));
            }
            let scope = Scopes::parse(&code.scope).unwrap_or_default();
            if endpoint == Endpoint::Token && scope.is_empty() {
                return Ok(Err(GrantError::NoScope));
            }
            let refusal = if code.expires_at <= now {
                Some("code expired")
            } else if comparable_client_id(&redemption.client_id) != code.client_id {
                Some("code was issued to another client_id")
            } else if redemption.redirect_uri != code.redirect_uri {
                Some("code was issued for another redirect_uri")
            } else if !verifier_matches(&redemption.code_verifier, &code.code_challenge) {
                Some("code_verifier does not match the code_challenge")
            } else if !credential_live(&code.credential_id)
                || crate::store::credentials::find(&tx, &code.credential_id)?
                    .is_none_or(|row| row.revoked_at.is_some())
            {
                Some("code's approving device was revoked")
            } else {
                None
            };
            if let Some(reason) = refusal {
                rows::use_code(&tx, &code_hash, now, None)?;
                tx.commit().map_err(StoreError::from)?;
                return Ok(Err(GrantError::Invalid(reason)));
            }
            let issued = if endpoint == Endpoint::Token {
                let grant = GrantRow {
                    id: grant_id.clone(),
                    client_id: code.client_id.clone(),
                    client_name: code.client_name.clone(),
                    client_uri: code.client_uri.clone(),
                    redirect_uri: code.redirect_uri.clone(),
                    scope: code.scope.clone(),
                    credential_id: code.credential_id.clone(),
                    created_at: now,
                    last_used_at: Some(now),
                    expires_at: now.saturating_add(code.lifetime),
                    revoked_at: None,
                    revoked_reason: None,
                };
                rows::insert_grant(&tx, &grant)?;
                let expires_in = insert_tokens(&tx, &grant, &tokens, &code.scope, now)?;
                rows::use_code(&tx, &code_hash, now, Some(&grant_id))?;
                Some(IssuedTokens {
                    access_token: tokens.0.clone(),
                    refresh_token: tokens.1.clone(),
                    expires_in,
                    scope: scope.clone(),
                    grant_id: grant_id.clone(),
                })
            } else {
                rows::use_code(&tx, &code_hash, now, None)?;
                None
            };
            let event = AuditEvent::IndieauthCodeRedeemed {
                client_id: code.client_id.clone(),
                grant_id: issued.as_ref().map(|t| t.grant_id.clone()),
                endpoint: endpoint.name(),
            };
            audit::append(&tx, now, &event, &actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok::<_, GrantError>(Ok(Redeemed {
                scope,
                tokens: issued,
            }))
        })
        .await?
}

/// Stores an access token with `access_scope` and a refresh token with the grant's scopes;
/// returns the access token's lifetime in seconds.
fn insert_tokens(
    connection: &rusqlite::Connection,
    grant: &GrantRow,
    (access, refresh): &(String, String),
    access_scope: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let access_expires = now
        .saturating_add(ACCESS_TOKEN_LIFETIME)
        .min(grant.expires_at);
    rows::insert_token(
        connection,
        &TokenRow {
            token_hash: secret_hash(access),
            grant_id: grant.id.clone(),
            kind: "access".into(),
            scope: access_scope.to_owned(),
            issued_at: now,
            expires_at: access_expires,
            superseded_at: None,
        },
        now,
    )?;
    rows::insert_token(
        connection,
        &TokenRow {
            token_hash: secret_hash(refresh),
            grant_id: grant.id.clone(),
            kind: "refresh".into(),
            scope: grant.scope.clone(),
            issued_at: now,
            expires_at: now
                .saturating_add(REFRESH_TOKEN_IDLE_LIFETIME)
                .min(grant.expires_at),
            superseded_at: None,
        },
        now,
    )?;
    Ok(access_expires - now)
}

/// Revokes a grant inside a transaction, audited as `indieauth.token_revoked`; returns whether
/// it was live.
fn revoke_in(
    connection: &rusqlite::Connection,
    grant_id: &str,
    client_id: &str,
    reason: &'static str,
    actor: &Actor,
    now: i64,
) -> Result<bool, StoreError> {
    if !rows::revoke_grant(connection, grant_id, now, reason)? {
        return Ok(false);
    }
    let event = AuditEvent::IndieauthTokenRevoked {
        client_id: client_id.to_owned(),
        grant_id: grant_id.to_owned(),
        reason,
    };
    audit::append(connection, now, &event, actor)?;
    Ok(true)
}

/// A refresh request's parameters.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub refresh_token: String,
    pub client_id: String,
    /// Narrower scopes for the new access token; `None` keeps the grant's.
    pub scope: Option<Scopes>,
}

/// The grant behind a token, and whether it may be used at `now`.
fn live_grant(
    connection: &rusqlite::Connection,
    grant_id: &str,
    credential_live: &CredentialCheck,
    now: i64,
) -> Result<Option<GrantRow>, StoreError> {
    Ok(rows::grant(connection, grant_id)?.filter(|grant| {
        grant.revoked_at.is_none()
            && grant.expires_at > now
            && credential_live(&grant.credential_id)
    }))
}

/// Exchanges a refresh token for a new access token and a new refresh token. Presenting a
/// refresh token that was already exchanged revokes its grant.
pub async fn refresh(
    store: &Store,
    credential_live: CredentialCheck,
    request: Refresh,
    actor: Actor,
    now: i64,
) -> Result<IssuedTokens, GrantError> {
    let token_hash = secret_hash(&request.refresh_token);
    let tokens = (new_secret(), new_secret());
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            let Some(token) = rows::token(&tx, &token_hash)?.filter(|t| t.kind == "refresh") else {
                return Err(GrantError::Invalid("refresh token is not known"));
            };
            let Some(grant) = rows::grant(&tx, &token.grant_id)? else {
                return Err(GrantError::Invalid("refresh token is not known"));
            };
            if comparable_client_id(&request.client_id) != grant.client_id {
                return Err(GrantError::Invalid(
                    "refresh token was issued to another client_id",
                ));
            }
            if token.superseded_at.is_some() {
                let event = AuditEvent::IndieauthRefreshReused {
                    client_id: grant.client_id.clone(),
                    grant_id: grant.id.clone(),
                };
                audit::append(&tx, now, &event, &actor)?;
                revoke_in(
                    &tx,
                    &grant.id,
                    &grant.client_id,
                    "refresh_reused",
                    &actor,
                    now,
                )?;
                tx.commit().map_err(StoreError::from)?;
                return Err(GrantError::Invalid(
                    "refresh token was used already; the grant is revoked",
                ));
            }
            if token.expires_at <= now {
                return Err(GrantError::Invalid("refresh token expired"));
            }
            let Some(grant) = live_grant(&tx, &grant.id, &credential_live, now)? else {
                return Err(GrantError::Invalid(
                    "refresh token's grant was revoked or expired",
                ));
            };
            let granted = Scopes::parse(&grant.scope).unwrap_or_default();
            let scope = match request.scope {
                Some(asked) if !asked.is_within(&granted) => return Err(GrantError::ScopeTooWide),
                Some(asked) if !asked.is_empty() => asked,
                _ => granted,
            };
            rows::supersede_token(&tx, &token_hash, now)?;
            let expires_in = insert_tokens(&tx, &grant, &tokens, &scope.to_string(), now)?;
            rows::touch_grant(&tx, &grant.id, now)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(IssuedTokens {
                access_token: tokens.0.clone(),
                refresh_token: tokens.1.clone(),
                expires_in,
                scope,
                grant_id: grant.id,
            })
        })
        .await
}

/// A live access token, as introspection and userinfo see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    pub client_id: String,
    pub scope: Scopes,
    pub issued_at: i64,
    pub expires_at: i64,
    pub grant_id: String,
}

/// The access token `token` if it is live at `now`: known, an access token, unexpired, its
/// grant live and its approving credential too. Records the grant's use.
pub async fn active_access_token(
    store: &Store,
    credential_live: CredentialCheck,
    token: &str,
    now: i64,
) -> Result<Option<ActiveToken>, StoreError> {
    let token_hash = secret_hash(token);
    store
        .run(move |c| {
            let Some(token) =
                rows::token(c, &token_hash)?.filter(|t| t.kind == "access" && t.expires_at > now)
            else {
                return Ok(None);
            };
            let Some(grant) = live_grant(c, &token.grant_id, &credential_live, now)? else {
                return Ok(None);
            };
            if grant
                .last_used_at
                .is_none_or(|at| now.saturating_sub(at) >= TOUCH_INTERVAL)
            {
                rows::touch_grant(c, &grant.id, now)?;
            }
            Ok(Some(ActiveToken {
                client_id: grant.client_id,
                scope: Scopes::parse(&token.scope).unwrap_or_default(),
                issued_at: token.issued_at,
                expires_at: token.expires_at,
                grant_id: grant.id,
            }))
        })
        .await
}

/// Revokes the grant of `token` (an access or a refresh token) for its client, RFC 7009; a
/// token of another client than `client_id` (when given) or an unknown one changes nothing.
pub async fn revoke_token(
    store: &Store,
    token: &str,
    client_id: Option<String>,
    actor: Actor,
    now: i64,
) -> Result<(), StoreError> {
    let token_hash = secret_hash(token);
    store
        .run(move |c| {
            let tx = c.transaction()?;
            let Some(token) = rows::token(&tx, &token_hash)? else {
                return Ok(());
            };
            let Some(grant) = rows::grant(&tx, &token.grant_id)? else {
                return Ok(());
            };
            if client_id.is_some_and(|id| comparable_client_id(&id) != grant.client_id) {
                return Ok(());
            }
            revoke_in(&tx, &grant.id, &grant.client_id, "client", &actor, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
}

/// Revokes a grant from the owner's pages; returns whether it was live.
pub async fn revoke_grant(
    store: &Store,
    grant_id: String,
    actor: Actor,
    now: i64,
) -> Result<bool, StoreError> {
    store
        .run(move |c| {
            let tx = c.transaction()?;
            let Some(grant) = rows::grant(&tx, &grant_id)? else {
                return Ok(false);
            };
            let revoked = revoke_in(&tx, &grant.id, &grant.client_id, "owner", &actor, now)?;
            tx.commit()?;
            Ok(revoked)
        })
        .await
}

/// The grants whose tokens may be used at `now`, newest first.
pub async fn live_grants(
    store: &Store,
    credential_live: CredentialCheck,
    now: i64,
) -> Result<Vec<GrantRow>, StoreError> {
    let grants = store.run(move |c| rows::live_grants(c, now)).await?;
    Ok(grants
        .into_iter()
        .filter(|grant| credential_live(&grant.credential_id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bits_and_stored_as_their_sha_256() {
        let secret = new_secret();
        assert_eq!(secret.len(), 43);
        assert_ne!(secret, new_secret());
        assert_eq!(secret_hash(&secret).len(), 32);
        assert_ne!(secret_hash(&secret), secret.as_bytes());
    }

    #[test]
    fn client_ids_compare_after_canonicalization() {
        assert_eq!(
            comparable_client_id("https://App.Example"),
            comparable_client_id("https://app.example/")
        );
        assert_ne!(
            comparable_client_id("https://app.example/a"),
            comparable_client_id("https://app.example/")
        );
    }
}
