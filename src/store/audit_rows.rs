//! Audit log rows and the chain head: the SQL behind the hash-chained audit log.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

const HEAD_NAME: &str = "audit_head";

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
}

/// The sequence number and hash of the newest entry, as recorded beside the log.
pub fn head(connection: &Connection) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    let value: Option<Vec<u8>> = connection
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([HEAD_NAME], |row| row.get(0))
        .optional()?;
    Ok(value.and_then(|bytes| {
        let (seq, hash) = bytes.split_at_checked(8)?;
        let seq = i64::from_be_bytes(<[u8; 8]>::try_from(seq).ok()?);
        Some((seq, hash.to_vec()))
    }))
}

/// Inserts an entry and moves the head to it. Call inside a transaction.
pub fn insert(connection: &Connection, row: &AuditRow) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO audit_log (seq, at, event, ip, user_agent, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            row.seq,
            row.at,
            row.event,
            row.ip,
            row.user_agent,
            row.detail,
            row.prev_hash,
            row.hash
        ])?;
    let mut head = row.seq.to_be_bytes().to_vec();
    head.extend_from_slice(&row.hash);
    connection
        .prepare_cached(
            "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![HEAD_NAME, head])?;
    Ok(())
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
    })
}

/// Every entry, oldest first.
pub fn all(connection: &Connection) -> Result<Vec<AuditRow>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT seq, at, event, ip, user_agent, detail, prev_hash, hash
         FROM audit_log ORDER BY seq",
    )?;
    let rows = statement
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Up to `limit` entries older than `before` (all when `None`), newest first.
pub fn page(
    connection: &Connection,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, at, event, ip, user_agent, detail, prev_hash, hash
         FROM audit_log WHERE (?1 IS NULL OR seq < ?1) ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = statement
        .query_map(params![before, limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
