//! The `recovery_set` rows: metadata of the share sets the owner made (never the shares).

use rusqlite::{Connection, params};

use super::StoreError;

/// One set's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySetRow {
    pub set_id: String,
    pub kid: String,
    pub threshold: u8,
    pub shares: u8,
    pub labels_json: String,
    pub created_at: i64,
}

/// Inserts a set; `Ok(false)` when its set id is already taken.
pub fn insert(connection: &Connection, row: &RecoverySetRow) -> Result<bool, StoreError> {
    let inserted = connection.execute(
        "INSERT INTO recovery_set (set_id, kid, threshold, shares, labels, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (set_id) DO NOTHING",
        params![
            row.set_id,
            row.kid,
            row.threshold,
            row.shares,
            row.labels_json,
            row.created_at
        ],
    )?;
    Ok(inserted == 1)
}

/// How many sets are stored.
pub fn count(connection: &Connection) -> Result<usize, StoreError> {
    let count: i64 = connection.query_row("SELECT count(*) FROM recovery_set", [], |r| r.get(0))?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// Every set, newest first.
pub fn list(connection: &Connection) -> Result<Vec<RecoverySetRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT set_id, kid, threshold, shares, labels, created_at FROM recovery_set
         ORDER BY created_at DESC, rowid DESC",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(RecoverySetRow {
            set_id: row.get(0)?,
            kid: row.get(1)?,
            threshold: row.get(2)?,
            shares: row.get(3)?,
            labels_json: row.get(4)?,
            created_at: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
