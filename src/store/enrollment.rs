//! The pairing state: the enrollment mode and window (in `meta`) and the `enrollment_request`
//! rows of new devices waiting for approval.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::meta;

/// The mode the owner chose on the account page (or the command line); absent until then.
pub const MODE: &str = "enrollment_mode";
/// The last window as `<opened_at> <closes_at> <open|closed>` (unix seconds): `closed` once
/// its closing was audited (early, or by the sweeper after `closes_at`).
pub const WINDOW: &str = "enrollment_window";

/// An enrollment request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub kid: String,
    pub kind: String,
    pub label: String,
    /// The canonical public JWK.
    pub public_key: String,
    pub alg: String,
    pub node_nonce: String,
    pub ip: String,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// `pending`, `approved`, `denied` or `expired`.
    pub status: String,
    pub answered_at: Option<i64>,
    /// The credential id of the device that approved or denied it.
    pub answered_by: Option<String>,
}

const COLUMNS: &str = "id, kid, kind, label, public_key, alg, node_nonce, ip, user_agent, \
                       created_at, expires_at, status, answered_at, answered_by";

fn from_row(row: &Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: row.get(0)?,
        kid: row.get(1)?,
        kind: row.get(2)?,
        label: row.get(3)?,
        public_key: row.get(4)?,
        alg: row.get(5)?,
        node_nonce: row.get(6)?,
        ip: row.get(7)?,
        user_agent: row.get(8)?,
        created_at: row.get(9)?,
        expires_at: row.get(10)?,
        status: row.get(11)?,
        answered_at: row.get(12)?,
        answered_by: row.get(13)?,
    })
}

/// The stored mode, if the owner chose one.
pub fn mode(connection: &Connection) -> Result<Option<String>, StoreError> {
    meta::get_text(connection, MODE)
}

/// Stores the mode.
pub fn set_mode(connection: &Connection, mode: &str) -> Result<(), StoreError> {
    meta::set_text(connection, MODE, mode)
}

/// The last window opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRow {
    pub opened_at: i64,
    pub closes_at: i64,
    /// Whether its closing has been recorded (it closes at `closes_at` in any case).
    pub closed: bool,
}

/// The last window opened, if any; it may have closed since.
pub fn window(connection: &Connection) -> Result<Option<WindowRow>, StoreError> {
    let Some(text) = meta::get_text(connection, WINDOW)? else {
        return Ok(None);
    };
    let mut parts = text.split(' ');
    let number = |part: Option<&str>| part.and_then(|p| p.parse::<i64>().ok());
    let opened_at = number(parts.next());
    let closes_at = number(parts.next());
    let closed = match parts.next() {
        Some("open") => Some(false),
        Some("closed") => Some(true),
        _ => None,
    };
    match (opened_at, closes_at, closed, parts.next()) {
        (Some(opened_at), Some(closes_at), Some(closed), None) => Ok(Some(WindowRow {
            opened_at,
            closes_at,
            closed,
        })),
        _ => Ok(None),
    }
}

/// Stores the window.
pub fn set_window(connection: &Connection, window: WindowRow) -> Result<(), StoreError> {
    let state = if window.closed { "closed" } else { "open" };
    meta::set_text(
        connection,
        WINDOW,
        &format!("{} {} {state}", window.opened_at, window.closes_at),
    )
}

/// Stores a new request.
pub fn insert(connection: &Connection, row: &RequestRow) -> Result<(), StoreError> {
    connection.execute(
        &format!(
            "INSERT INTO enrollment_request ({COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            row.id,
            row.kid,
            row.kind,
            row.label,
            row.public_key,
            row.alg,
            row.node_nonce,
            row.ip,
            row.user_agent,
            row.created_at,
            row.expires_at,
            row.status,
            row.answered_at,
            row.answered_by,
        ],
    )?;
    Ok(())
}

/// The request `id`, whatever its status.
pub fn get(connection: &Connection, id: &str) -> Result<Option<RequestRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM enrollment_request WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// Whether a request (of any status) already names this id or kid.
pub fn taken(connection: &Connection, id: &str, kid: &str) -> Result<bool, StoreError> {
    let count: i64 = connection.query_row(
        "SELECT COUNT(*) FROM enrollment_request WHERE id = ?1 OR \
         (kid = ?2 AND status IN ('pending', 'approved'))",
        params![id, kid],
        |row| row.get(0),
    )?;
    Ok(count > 0)
}

/// The pending requests that have not expired at `now`, oldest first.
pub fn pending(connection: &Connection, now: i64) -> Result<Vec<RequestRow>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM enrollment_request WHERE status = 'pending' AND expires_at > ?1 \
         ORDER BY created_at, id"
    ))?;
    let rows = statement
        .query_map([now], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Pending requests whose time ran out at `now`.
pub fn overdue(connection: &Connection, now: i64) -> Result<Vec<RequestRow>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM enrollment_request WHERE status = 'pending' AND expires_at <= ?1 \
         ORDER BY created_at, id"
    ))?;
    let rows = statement
        .query_map([now], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Answers a pending request: `approved`, `denied` or `expired`. Returns whether it was still
/// pending (a request is answered once, and only `expired` after its time ran out).
pub fn answer(
    connection: &Connection,
    id: &str,
    status: &str,
    answered_by: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE enrollment_request SET status = ?2, answered_at = ?3, answered_by = ?4 \
         WHERE id = ?1 AND status = 'pending' AND (?2 = 'expired' OR expires_at > ?3)",
        params![id, status, now, answered_by],
    )?;
    Ok(changed == 1)
}

/// Deletes answered requests answered before `before`; returns how many.
pub fn delete_answered_before(connection: &Connection, before: i64) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "DELETE FROM enrollment_request WHERE status != 'pending' AND answered_at < ?1",
        [before],
    )?)
}
