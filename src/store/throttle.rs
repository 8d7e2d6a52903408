//! Failed-unlock rows: recording, counting and pruning them for the sliding-window throttle.

use rusqlite::{Connection, params};

use super::StoreError;

/// Records one failed unlock from `ip` at `at`.
pub fn record_failure(connection: &Connection, ip: &str, at: i64) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO unlock_failure (ip, at) VALUES (?1, ?2)",
        params![ip, at],
    )?;
    Ok(())
}

/// The times of failures from `ip` (or from anyone, when `ip` is `None`) at or after `since`,
/// oldest first.
pub fn failure_times(
    connection: &Connection,
    ip: Option<&str>,
    since: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT at FROM unlock_failure WHERE at >= ?1 AND (?2 IS NULL OR ip = ?2) ORDER BY at",
    )?;
    let times = statement
        .query_map(params![since, ip], |row| row.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(times)
}

/// Forgets the failures of one client, after it proved it knows the password.
pub fn clear_failures(connection: &Connection, ip: &str) -> Result<(), StoreError> {
    connection.execute("DELETE FROM unlock_failure WHERE ip = ?1", params![ip])?;
    Ok(())
}

/// Deletes failures older than `before`: no window looks that far back.
pub fn prune(connection: &Connection, before: i64) -> Result<(), StoreError> {
    connection.execute("DELETE FROM unlock_failure WHERE at < ?1", params![before])?;
    Ok(())
}
