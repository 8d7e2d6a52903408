//! Audit log rows, the chain head and the chain base: the SQL behind the hash-chained audit log.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The newest entry's (sequence, hash), in `meta`.
const HEAD_NAME: &str = "audit_head";
/// The newest removed entry's (sequence, hash), in `meta`; absent until the first pruning.
const BASE_NAME: &str = "audit_base";

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub event: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    /// SHA-256(salt || address), which the chain hash covers instead of the address (entries
    /// written since migration 8; older ones hash the address itself).
    pub ip_digest: Option<Vec<u8>>,
    /// The salt of `ip_digest`, kept while `ip` is whole and dropped when it is truncated.
    pub ip_salt: Option<Vec<u8>>,
}

/// The sequence number and hash of the newest entry, as recorded beside the log.
pub fn head(connection: &Connection) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    read_position(connection, HEAD_NAME)
}

/// The sequence number and hash of the newest removed entry, which the oldest kept entry
/// follows; `None` while nothing was ever removed.
pub fn base(connection: &Connection) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    read_position(connection, BASE_NAME)
}

/// Records the newest removed entry. Call inside the transaction that removes it.
pub fn set_base(connection: &Connection, seq: i64, hash: &[u8]) -> Result<(), StoreError> {
    write_position(connection, BASE_NAME, seq, hash)
}

fn read_position(
    connection: &Connection,
    name: &str,
) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    let value: Option<Vec<u8>> = connection
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?;
    Ok(value.and_then(|bytes| {
        let (seq, hash) = bytes.split_at_checked(8)?;
        let seq = i64::from_be_bytes(<[u8; 8]>::try_from(seq).ok()?);
        Some((seq, hash.to_vec()))
    }))
}

fn write_position(
    connection: &Connection,
    name: &str,
    seq: i64,
    hash: &[u8],
) -> Result<(), StoreError> {
    let mut value = seq.to_be_bytes().to_vec();
    value.extend_from_slice(hash);
    connection
        .prepare_cached(
            "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![name, value])?;
    Ok(())
}

/// Inserts an entry and moves the head to it. Call inside a transaction.
pub fn insert(connection: &Connection, row: &AuditRow) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO audit_log
                 (seq, at, event, ip, user_agent, detail, prev_hash, hash, ip_digest, ip_salt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            row.seq,
            row.at,
            row.event,
            row.ip,
            row.user_agent,
            row.detail,
            row.prev_hash,
            row.hash,
            row.ip_digest,
            row.ip_salt
        ])?;
    write_position(connection, HEAD_NAME, row.seq, &row.hash)
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: row.get(0)?,
        at: row.get(1)?,
        event: row.get(2)?,
        ip: row.get(3)?,
        user_agent: row.get(4)?,
        detail: row.get(5)?,
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
        ip_digest: row.get(8)?,
        ip_salt: row.get(9)?,
    })
}

/// The events that record a credential's state (added, changed, reset, revoked) as
/// `(event, detail)`, oldest first.
pub fn credential_events(connection: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT event, detail FROM audit_log
         WHERE event IN ('credential.added', 'credential.changed', 'credential.reset',
                         'credential.rebound', 'credential.revoked')
         ORDER BY seq",
    )?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The entries older than `before` whose address is still whole (it has a salt), as
/// `(seq, address)`, at most `limit` of them, oldest first.
pub fn whole_addresses_before(
    connection: &Connection,
    before: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, ip FROM audit_log
         WHERE at < ?1 AND ip_salt IS NOT NULL AND ip IS NOT NULL
         ORDER BY seq LIMIT ?2",
    )?;
    let rows = statement
        .query_map(params![before, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Replaces an entry's address by its truncated form and forgets the salt.
pub fn truncate_address(
    connection: &Connection,
    seq: i64,
    truncated: &str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE audit_log SET ip = ?2, ip_salt = NULL WHERE seq = ?1")?
        .execute(params![seq, truncated])?;
    Ok(())
}

/// Every entry, oldest first, read whole. For small logs (tests); use [`for_each`] otherwise.
pub fn all(connection: &Connection) -> Result<Vec<AuditRow>, StoreError> {
    let mut rows = Vec::new();
    for_each(connection, |row| {
        rows.push(row);
        Ok::<_, StoreError>(())
    })?;
    Ok(rows)
}

/// Hands every entry to `visit`, oldest first, one at a time, so memory stays constant however
/// long the log. Stops at the first error `visit` returns.
pub fn for_each<E>(
    connection: &Connection,
    visit: impl FnMut(AuditRow) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<StoreError>,
{
    for_each_between(connection, i64::MIN, i64::MAX, visit)
}

/// Like [`for_each`], for the entries from `first` to `last` (both included).
pub fn for_each_between<E>(
    connection: &Connection,
    first: i64,
    last: i64,
    mut visit: impl FnMut(AuditRow) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<StoreError>,
{
    let mut statement = connection
        .prepare_cached(
            "SELECT seq, at, event, ip, user_agent, detail, prev_hash, hash, ip_digest, ip_salt
             FROM audit_log WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
        )
        .map_err(StoreError::from)?;
    let mut rows = statement.query([first, last]).map_err(StoreError::from)?;
    while let Some(row) = rows.next().map_err(StoreError::from)? {
        visit(from_row(row).map_err(StoreError::from)?)?;
    }
    Ok(())
}

/// The entry `seq`, if it is stored.
pub fn find(connection: &Connection, seq: i64) -> Result<Option<AuditRow>, StoreError> {
    let row = connection
        .prepare_cached(
            "SELECT seq, at, event, ip, user_agent, detail, prev_hash, hash, ip_digest, ip_salt
             FROM audit_log WHERE seq = ?1",
        )?
        .query_row([seq], from_row)
        .optional()?;
    Ok(row)
}

/// The oldest entry after `after` and at most `within` places after it whose time is `at` or
/// later: one bounded step of finding where old entries end.
pub fn first_not_older(
    connection: &Connection,
    after: i64,
    within: i64,
    at: i64,
) -> Result<Option<i64>, StoreError> {
    let seq = connection
        .prepare_cached(
            "SELECT seq FROM audit_log WHERE seq > ?1 AND seq <= ?1 + ?2 AND at >= ?3
             ORDER BY seq LIMIT 1",
        )?
        .query_row(params![after, within, at], |row| row.get(0))
        .optional()?;
    Ok(seq)
}

/// Deletes every entry up to and including `seq`; returns how many were deleted. Call inside
/// the transaction that moves the base.
pub fn delete_through(connection: &Connection, seq: i64) -> Result<usize, StoreError> {
    Ok(connection
        .prepare_cached("DELETE FROM audit_log WHERE seq <= ?1")?
        .execute([seq])?)
}

/// Up to `limit` entries older than `before` (all when `None`), newest first.
pub fn page(
    connection: &Connection,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, at, event, ip, user_agent, detail, prev_hash, hash, ip_digest, ip_salt
         FROM audit_log WHERE (?1 IS NULL OR seq < ?1) ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = statement
        .query_map(params![before, limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// At most `limit` entries with a sequence number above `after`, oldest first.
pub fn after(connection: &Connection, after: i64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, at, event, ip, user_agent, detail, prev_hash, hash, ip_digest, ip_salt
         FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = statement
        .query_map(params![after, limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
