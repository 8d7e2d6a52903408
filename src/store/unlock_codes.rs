//! One-time unlock codes: the SQL that stores, lists, uses up and expires them.

use rusqlite::{Connection, params};

use super::StoreError;

/// A stored code: its public id and the SHA-256 of the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub id: String,
    pub code_hash: [u8; 32],
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores a new code.
pub fn insert(
    connection: &Connection,
    id: &str,
    code_hash: &[u8; 32],
    created_at: i64,
    expires_at: i64,
    session_id: Option<&str>,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO unlock_code (id, code_hash, created_at, expires_at, session_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, code_hash, created_at, expires_at, session_id])?;
    Ok(())
}

/// The codes that have not expired at `now`, oldest first.
pub fn live(connection: &Connection, now: i64) -> Result<Vec<StoredCode>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT id, code_hash, created_at, expires_at FROM unlock_code
         WHERE expires_at > ?1 ORDER BY created_at, id",
    )?;
    let rows = statement
        .query_map(params![now], |row| {
            let hash: Vec<u8> = row.get(1)?;
            Ok((
                row.get::<_, String>(0)?,
                hash,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        // The table's CHECK keeps every hash at 32 bytes.
        .filter_map(|(id, hash, created_at, expires_at)| {
            Some(StoredCode {
                id,
                code_hash: hash.try_into().ok()?,
                created_at,
                expires_at,
            })
        })
        .collect())
}

/// Deletes one code (used up, or replaced by a newer one).
pub fn delete(connection: &Connection, id: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM unlock_code WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// Deletes the codes that expired by `now`.
pub fn delete_expired(connection: &Connection, now: i64) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM unlock_code WHERE expires_at <= ?1")?
        .execute(params![now])?;
    Ok(())
}
