//! The `encryption_key` rows: the owner's ECDH public keys, each with its wrapped private key
//! (which the node cannot open) and the owner key's binding of it.

use rusqlite::{Connection, params};

use super::StoreError;

/// One encryption key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionKeyRow {
    pub kid: String,
    pub public_jwk: String,
    pub wrapped_key: String,
    pub binding: String,
    pub created_at: i64,
    /// When a newer key replaced it; `None` for the current key.
    pub retired_at: Option<i64>,
    /// Until when a retired key still receives messages.
    pub receives_until: Option<i64>,
}

/// Every encryption key, the current one first, then the retired ones newest first.
pub fn all(connection: &Connection) -> Result<Vec<EncryptionKeyRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT kid, public_jwk, wrapped_key, binding, created_at, retired_at, receives_until
         FROM encryption_key
         ORDER BY retired_at IS NOT NULL, retired_at DESC, created_at DESC, kid",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(EncryptionKeyRow {
            kid: row.get(0)?,
            public_jwk: row.get(1)?,
            wrapped_key: row.get(2)?,
            binding: row.get(3)?,
            created_at: row.get(4)?,
            retired_at: row.get(5)?,
            receives_until: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes `row` the current key and retires the one before it, which receives messages until
/// `previous_receives_until`. Call inside a transaction.
pub fn make_current(
    connection: &Connection,
    row: &EncryptionKeyRow,
    previous_receives_until: i64,
) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE encryption_key SET retired_at = ?1, receives_until = ?2 WHERE retired_at IS NULL",
        params![row.created_at, previous_receives_until],
    )?;
    connection.execute(
        "INSERT INTO encryption_key (kid, public_jwk, wrapped_key, binding, created_at, retired_at)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
        params![
            row.kid,
            row.public_jwk,
            row.wrapped_key,
            row.binding,
            row.created_at
        ],
    )?;
    Ok(())
}

/// Replaces a key's wrapping and binding (after an owner-key rotation); `Ok(false)` when no key
/// has `kid`.
pub fn rewrap(
    connection: &Connection,
    kid: &str,
    wrapped_key: &str,
    binding: &str,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE encryption_key SET wrapped_key = ?2, binding = ?3 WHERE kid = ?1",
        params![kid, wrapped_key, binding],
    )?;
    Ok(changed == 1)
}

/// Whether a key with `kid` is stored, current or retired.
pub fn exists(connection: &Connection, kid: &str) -> Result<bool, StoreError> {
    let found: i64 = connection.query_row(
        "SELECT count(*) FROM encryption_key WHERE kid = ?1",
        params![kid],
        |row| row.get(0),
    )?;
    Ok(found > 0)
}

/// Deletes the key with `kid` (a reset that could not open it again).
pub fn delete(connection: &Connection, kid: &str) -> Result<(), StoreError> {
    connection.execute("DELETE FROM encryption_key WHERE kid = ?1", params![kid])?;
    Ok(())
}

/// Stops every retired key receiving from `now` on (a compromise: the old owner key opens them
/// all).
pub fn stop_receiving_retired(connection: &Connection, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE encryption_key SET receives_until = min(coalesce(receives_until, ?1), ?1)
         WHERE retired_at IS NOT NULL",
        params![now],
    )?;
    Ok(())
}
