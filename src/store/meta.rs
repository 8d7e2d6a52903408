//! Small named values kept beside the data, such as the public URL the node last served at.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The public URL of the last `serve`, so that `claim-url` prints a link that works.
pub const SERVED_PUBLIC_URL: &str = "served_public_url";

/// The enrollment mode the last `serve` was configured with (flag, environment or file), so
/// that `siteid enroll` shows and audits what the running node applies.
pub const SERVED_ENROLLMENT: &str = "served_enrollment";

/// Reads a text value.
pub fn get_text(connection: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    let value: Option<Vec<u8>> = connection
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(value.and_then(|bytes| String::from_utf8(bytes).ok()))
}

/// Writes a text value.
pub fn set_text(connection: &Connection, name: &str, value: &str) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value.as_bytes()],
    )?;
    Ok(())
}

/// SQLite's data version for this connection: it changes whenever another connection (the
/// command line, or someone editing the file) commits a change.
pub fn data_version(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.query_row("PRAGMA data_version", [], |row| row.get(0))?)
}
