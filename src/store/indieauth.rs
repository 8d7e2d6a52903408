//! The IndieAuth rows: authorization codes and tokens (each stored as its SHA-256, never as
//! issued), the grants they belong to, and the owner's profile document.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub credential_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    /// How long the grant a redemption creates lasts, in seconds.
    pub lifetime: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub grant_id: Option<String>,
}

const CODE_COLUMNS: &str = "code_hash, client_id, redirect_uri, code_challenge, scope, \
     credential_id, client_name, client_uri, lifetime, created_at, expires_at, used_at, grant_id";

fn code_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CodeRow> {
    Ok(CodeRow {
        code_hash: row.get(0)?,
        client_id: row.get(1)?,
        redirect_uri: row.get(2)?,
        code_challenge: row.get(3)?,
        scope: row.get(4)?,
        credential_id: row.get(5)?,
        client_name: row.get(6)?,
        client_uri: row.get(7)?,
        lifetime: row.get(8)?,
        created_at: row.get(9)?,
        expires_at: row.get(10)?,
        used_at: row.get(11)?,
        grant_id: row.get(12)?,
    })
}

/// Stores a new code.
pub fn insert_code(connection: &Connection, row: &CodeRow) -> Result<(), StoreError> {
    connection.execute(
        &format!(
            "INSERT INTO indieauth_code ({CODE_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ),
        params![
            row.code_hash,
            row.client_id,
            row.redirect_uri,
            row.code_challenge,
            row.scope,
            row.credential_id,
            row.client_name,
            row.client_uri,
            row.lifetime,
            row.created_at,
            row.expires_at,
            row.used_at,
            row.grant_id,
        ],
    )?;
    Ok(())
}

/// The code with this hash, if any.
pub fn code(connection: &Connection, code_hash: &[u8]) -> Result<Option<CodeRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {CODE_COLUMNS} FROM indieauth_code WHERE code_hash = ?1"),
            params![code_hash],
            code_from_row,
        )
        .optional()?)
}

/// Marks a code used, naming the grant its redemption created (if any); returns whether it was
/// still unused.
pub fn use_code(
    connection: &Connection,
    code_hash: &[u8],
    now: i64,
    grant_id: Option<&str>,
) -> Result<bool, StoreError> {
    Ok(connection.execute(
        "UPDATE indieauth_code SET used_at = ?2, grant_id = ?3 \
         WHERE code_hash = ?1 AND used_at IS NULL",
        params![code_hash, now, grant_id],
    )? == 1)
}

/// Marks a used code as presented again; returns whether this is the first time.
pub fn mark_reused(
    connection: &Connection,
    code_hash: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    Ok(connection.execute(
        "UPDATE indieauth_code SET reused_at = ?2 WHERE code_hash = ?1 AND reused_at IS NULL",
        params![code_hash, now],
    )? == 1)
}

/// A grant: what a client may do, until when, on whose approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uri: String,
    pub scope: String,
    pub credential_id: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

const GRANT_COLUMNS: &str = "id, client_id, client_name, client_uri, redirect_uri, scope, \
     credential_id, created_at, last_used_at, expires_at, revoked_at, revoked_reason";

fn grant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: row.get(0)?,
        client_id: row.get(1)?,
        client_name: row.get(2)?,
        client_uri: row.get(3)?,
        redirect_uri: row.get(4)?,
        scope: row.get(5)?,
        credential_id: row.get(6)?,
        created_at: row.get(7)?,
        last_used_at: row.get(8)?,
        expires_at: row.get(9)?,
        revoked_at: row.get(10)?,
        revoked_reason: row.get(11)?,
    })
}

/// Stores a new grant.
pub fn insert_grant(connection: &Connection, row: &GrantRow) -> Result<(), StoreError> {
    connection.execute(
        &format!(
            "INSERT INTO indieauth_grant ({GRANT_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            row.id,
            row.client_id,
            row.client_name,
            row.client_uri,
            row.redirect_uri,
            row.scope,
            row.credential_id,
            row.created_at,
            row.last_used_at,
            row.expires_at,
            row.revoked_at,
            row.revoked_reason,
        ],
    )?;
    Ok(())
}

/// The grant with this id, if any.
pub fn grant(connection: &Connection, id: &str) -> Result<Option<GrantRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {GRANT_COLUMNS} FROM indieauth_grant WHERE id = ?1"),
            params![id],
            grant_from_row,
        )
        .optional()?)
}

/// The grants neither revoked nor expired at `now`, newest first.
pub fn live_grants(connection: &Connection, now: i64) -> Result<Vec<GrantRow>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {GRANT_COLUMNS} FROM indieauth_grant \
         WHERE revoked_at IS NULL AND expires_at > ?1 ORDER BY created_at DESC, id"
    ))?;
    let rows = statement
        .query_map(params![now], grant_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Records a use of a grant.
pub fn touch_grant(connection: &Connection, id: &str, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE indieauth_grant SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// Revokes a grant and deletes its tokens; returns whether it was live.
pub fn revoke_grant(
    connection: &Connection,
    id: &str,
    now: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    connection.execute(
        "DELETE FROM indieauth_token WHERE grant_id = ?1",
        params![id],
    )?;
    Ok(connection.execute(
        "UPDATE indieauth_grant SET revoked_at = ?2, revoked_reason = ?3 \
         WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now, reason],
    )? == 1)
}

/// Revokes every live grant a credential approved (reason `credential_revoked`); returns each
/// one's id and client_id, for the audit log.
pub fn revoke_grants_of_credential(
    connection: &Connection,
    credential_id: &str,
    now: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, client_id FROM indieauth_grant \
         WHERE credential_id = ?1 AND revoked_at IS NULL ORDER BY id",
    )?;
    let grants = statement
        .query_map(params![credential_id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<(String, String)>, _>>()?;
    for (id, _) in &grants {
        revoke_grant(connection, id, now, "credential_revoked")?;
    }
    // Its codes not yet redeemed are spent, so that none becomes a grant later.
    connection.execute(
        "UPDATE indieauth_code SET used_at = ?2 WHERE credential_id = ?1 AND used_at IS NULL",
        params![credential_id, now],
    )?;
    Ok(grants)
}

/// Deletes grants (with their tokens) that ended before `before`, and codes that expired
/// before it; returns how many grants went.
pub fn forget_ended(connection: &Connection, before: i64) -> Result<usize, StoreError> {
    connection.execute(
        "DELETE FROM indieauth_token WHERE grant_id IN (SELECT id FROM indieauth_grant \
         WHERE revoked_at < ?1 OR expires_at < ?1)",
        params![before],
    )?;
    connection.execute(
        "DELETE FROM indieauth_code WHERE expires_at < ?1",
        params![before],
    )?;
    Ok(connection.execute(
        "DELETE FROM indieauth_grant WHERE revoked_at < ?1 OR expires_at < ?1",
        params![before],
    )?)
}

/// A stored access or refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_hash: Vec<u8>,
    pub grant_id: String,
    /// `access` or `refresh`.
    pub kind: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub superseded_at: Option<i64>,
}

const TOKEN_COLUMNS: &str =
    "token_hash, grant_id, kind, scope, issued_at, expires_at, superseded_at";

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        token_hash: row.get(0)?,
        grant_id: row.get(1)?,
        kind: row.get(2)?,
        scope: row.get(3)?,
        issued_at: row.get(4)?,
        expires_at: row.get(5)?,
        superseded_at: row.get(6)?,
    })
}

/// Stores a new token, and forgets the grant's tokens that expired before `now`.
pub fn insert_token(connection: &Connection, row: &TokenRow, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "DELETE FROM indieauth_token WHERE grant_id = ?1 AND expires_at <= ?2",
        params![row.grant_id, now],
    )?;
    connection.execute(
        &format!(
            "INSERT INTO indieauth_token ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ),
        params![
            row.token_hash,
            row.grant_id,
            row.kind,
            row.scope,
            row.issued_at,
            row.expires_at,
            row.superseded_at,
        ],
    )?;
    Ok(())
}

/// The token with this hash, if any.
pub fn token(connection: &Connection, token_hash: &[u8]) -> Result<Option<TokenRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {TOKEN_COLUMNS} FROM indieauth_token WHERE token_hash = ?1"),
            params![token_hash],
            token_from_row,
        )
        .optional()?)
}

/// Marks a refresh token used; returns whether it had not been used yet.
pub fn supersede_token(
    connection: &Connection,
    token_hash: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    Ok(connection.execute(
        "UPDATE indieauth_token SET superseded_at = ?2 \
         WHERE token_hash = ?1 AND superseded_at IS NULL",
        params![token_hash, now],
    )? == 1)
}

/// The owner's profile document (JSON), if one was set.
pub fn profile(connection: &Connection) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row("SELECT document FROM profile WHERE id = 1", [], |row| {
            row.get(0)
        })
        .optional()?)
}

/// Sets the owner's profile document.
pub fn set_profile(connection: &Connection, document: &str, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO profile (id, document, updated_at) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET document = excluded.document, \
         updated_at = excluded.updated_at",
        params![document, now],
    )?;
    Ok(())
}
