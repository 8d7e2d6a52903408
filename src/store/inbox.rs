//! The `inbox_message` rows: messages as received (JWE text the node cannot open), with their
//! receipt time, size and read mark.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: String,
    pub kid: String,
    pub jwe: String,
    pub size: i64,
    pub received_at: i64,
    pub read_at: Option<i64>,
}

const COLUMNS: &str = "id, kid, jwe, size, received_at, read_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: row.get(0)?,
        kid: row.get(1)?,
        jwe: row.get(2)?,
        size: row.get(3)?,
        received_at: row.get(4)?,
        read_at: row.get(5)?,
    })
}

/// Stores a message unless the inbox would then hold more than `max_total` bytes; returns
/// whether it was stored. Call inside a transaction, so that the check and the insert agree.
pub fn insert_within(
    connection: &Connection,
    row: &MessageRow,
    max_total: i64,
) -> Result<bool, StoreError> {
    let held = total_size(connection)?;
    if held.saturating_add(row.size) > max_total {
        return Ok(false);
    }
    connection.execute(
        &format!("INSERT INTO inbox_message ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            row.id,
            row.kid,
            row.jwe,
            row.size,
            row.received_at,
            row.read_at
        ],
    )?;
    Ok(true)
}

/// The bytes every stored message takes.
pub fn total_size(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.query_row(
        "SELECT coalesce(sum(size), 0) FROM inbox_message",
        [],
        |row| row.get(0),
    )?)
}

/// Up to `limit` messages, newest first (in the order they were stored), after the message
/// `before` when given; `None` when `before` names no stored message.
pub fn page(
    connection: &Connection,
    limit: u32,
    before: Option<&str>,
) -> Result<Option<Vec<MessageRow>>, StoreError> {
    let below = match before {
        Some(id) => {
            let found: Option<i64> = connection
                .query_row(
                    "SELECT rowid FROM inbox_message WHERE id = ?1",
                    params![id],
                    |row| row.get(0),
                )
                .optional()?;
            match found {
                Some(rowid) => rowid,
                None => return Ok(None),
            }
        }
        None => i64::MAX,
    };
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM inbox_message WHERE rowid < ?1 ORDER BY rowid DESC LIMIT ?2"
    ))?;
    let rows = statement.query_map(params![below, limit], from_row)?;
    Ok(Some(rows.collect::<Result<_, _>>()?))
}

/// The message with `id`.
pub fn get(connection: &Connection, id: &str) -> Result<Option<MessageRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM inbox_message WHERE id = ?1"),
            params![id],
            from_row,
        )
        .optional()?)
}

/// Deletes the message with `id`; returns whether there was one.
pub fn delete(connection: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(connection.execute("DELETE FROM inbox_message WHERE id = ?1", params![id])? == 1)
}

/// Marks the message with `id` read at `now` (a message read before keeps its first time);
/// returns whether there was one.
pub fn mark_read(connection: &Connection, id: &str, now: i64) -> Result<bool, StoreError> {
    Ok(connection.execute(
        "UPDATE inbox_message SET read_at = coalesce(read_at, ?2) WHERE id = ?1",
        params![id, now],
    )? == 1)
}
