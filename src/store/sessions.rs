//! Session rows: the SQL behind signing in, listing, step-up, sign-out and revocation.

use rusqlite::{Connection, params};

use super::StoreError;

/// One stored session. The bearer token is known only by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: [u8; 32],
    pub kid: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub fresh_until: i64,
    pub ip: String,
    pub user_agent: Option<String>,
    /// The credential that signed in, and its capabilities then (a JSON array).
    pub credential_id: String,
    pub capabilities: String,
}

/// Stores a new session.
pub fn insert(connection: &Connection, row: &SessionRow) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO session (id, token_hash, kid, created_at, last_seen_at, expires_at,
                              fresh_until, ip, user_agent, credential_id, capabilities)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            row.id,
            row.token_hash.as_slice(),
            row.kid,
            row.created_at,
            row.last_seen_at,
            row.expires_at,
            row.fresh_until,
            row.ip,
            row.user_agent,
            row.credential_id,
            row.capabilities
        ])?;
    Ok(())
}

/// Every stored session.
pub fn all(connection: &Connection) -> Result<Vec<SessionRow>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, token_hash, kid, created_at, last_seen_at, expires_at, fresh_until, ip,
                user_agent, credential_id, capabilities
         FROM session",
    )?;
    let rows = statement
        .query_map([], |row| {
            let hash: Vec<u8> = row.get(1)?;
            Ok(SessionRow {
                id: row.get(0)?,
                token_hash: <[u8; 32]>::try_from(hash.as_slice()).unwrap_or([0; 32]),
                kid: row.get(2)?,
                created_at: row.get(3)?,
                last_seen_at: row.get(4)?,
                expires_at: row.get(5)?,
                fresh_until: row.get(6)?,
                ip: row.get(7)?,
                user_agent: row.get(8)?,
                credential_id: row.get(9)?,
                capabilities: row.get(10)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Records when a session was last used.
pub fn touch(connection: &Connection, id: &str, last_seen_at: i64) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE session SET last_seen_at = ?2 WHERE id = ?1")?
        .execute(params![id, last_seen_at])?;
    Ok(())
}

/// Marks a session as freshly authenticated until `fresh_until`.
pub fn set_fresh_until(
    connection: &Connection,
    id: &str,
    fresh_until: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE session SET fresh_until = ?2 WHERE id = ?1")?
        .execute(params![id, fresh_until])?;
    Ok(())
}

/// The sessions started before `before`, as `(id, ip)`.
pub fn addresses_started_before(
    connection: &Connection,
    before: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement =
        connection.prepare_cached("SELECT id, ip FROM session WHERE created_at < ?1")?;
    let rows = statement
        .query_map(params![before], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Replaces a session's client address (by its network, once its retention ends).
pub fn set_ip(connection: &Connection, id: &str, ip: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE session SET ip = ?2 WHERE id = ?1")?
        .execute(params![id, ip])?;
    Ok(())
}

/// Deletes sessions by id; returns how many there were.
pub fn delete(connection: &Connection, ids: &[String]) -> Result<usize, StoreError> {
    let mut statement = connection.prepare_cached("DELETE FROM session WHERE id = ?1")?;
    let mut deleted = 0;
    for id in ids {
        deleted += statement.execute([id])?;
    }
    Ok(deleted)
}
