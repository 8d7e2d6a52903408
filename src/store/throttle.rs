//! Failed-attempt rows: the durable form of the throttle windows. Failed unlocks are one row
//! each (a password guess, and a day's worth at most is kept); failed sign-ins are one row per
//! client holding its newest failures.

use rusqlite::{Connection, params};

use super::StoreError;

/// Records one failed unlock from `client` at `at`.
pub fn record_unlock_failure(
    connection: &Connection,
    client: &str,
    at: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT INTO unlock_failure (ip, at) VALUES (?1, ?2)")?
        .execute(params![client, at])?;
    Ok(())
}

/// Forgets the failed unlocks of one client, after it unlocked.
pub fn clear_unlock_failures(connection: &Connection, client: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM unlock_failure WHERE ip = ?1")?
        .execute(params![client])?;
    Ok(())
}

/// Deletes failed unlocks older than `before`: no window looks that far back. Returns how
/// many went.
pub fn prune_unlock_failures(connection: &Connection, before: i64) -> Result<usize, StoreError> {
    let deleted = connection
        .prepare_cached("DELETE FROM unlock_failure WHERE at < ?1")?
        .execute(params![before])?;
    Ok(deleted)
}

/// Every failed unlock at or after `since` as (client, time), oldest first.
pub fn recent_unlock_failures(
    connection: &Connection,
    since: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut statement = connection.prepare(RECENT_UNLOCK_SQL)?;
    let rows = statement
        .query_map(params![since], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

const RECENT_UNLOCK_SQL: &str = "SELECT ip, at FROM unlock_failure WHERE at >= ?1 ORDER BY at";

/// Sets a client's failed sign-ins to `times`; no times deletes its row.
pub fn set_login_failures(
    connection: &Connection,
    client: &str,
    times: &[i64],
) -> Result<(), StoreError> {
    let Some(last_at) = times.iter().copied().max() else {
        connection
            .prepare_cached("DELETE FROM login_throttle WHERE client = ?1")?
            .execute(params![client])?;
        return Ok(());
    };
    let failures = serde_json::to_string(times).map_err(|e| StoreError::Task(e.to_string()))?;
    connection
        .prepare_cached(
            "INSERT INTO login_throttle (client, failures, last_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (client) DO UPDATE SET failures = excluded.failures,
                                                last_at = excluded.last_at",
        )?
        .execute(params![client, failures, last_at])?;
    Ok(())
}

/// Deletes the rows of clients whose newest failed sign-in is older than `before`. Returns how
/// many went.
pub fn prune_login_failures(connection: &Connection, before: i64) -> Result<usize, StoreError> {
    let deleted = connection
        .prepare_cached("DELETE FROM login_throttle WHERE last_at < ?1")?
        .execute(params![before])?;
    Ok(deleted)
}

/// The clients with a failed sign-in at or after `since`, and their failures. A row whose
/// failures do not read is skipped: it can only make the throttle more lenient.
pub fn login_failures(
    connection: &Connection,
    since: i64,
) -> Result<Vec<(String, Vec<i64>)>, StoreError> {
    let mut statement = connection.prepare(LOGIN_FAILURES_SQL)?;
    let rows = statement
        .query_map(params![since], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(client, failures)| Some((client, serde_json::from_str(&failures).ok()?)))
        .collect())
}

const LOGIN_FAILURES_SQL: &str = "SELECT client, failures FROM login_throttle WHERE last_at >= ?1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn loading_and_pruning_failures_search_the_time_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        for sql in [
            RECENT_UNLOCK_SQL,
            "DELETE FROM unlock_failure WHERE at < ?1",
            LOGIN_FAILURES_SQL,
            "DELETE FROM login_throttle WHERE last_at < ?1",
        ] {
            let plan: Vec<String> = store
                .run_blocking(|c| {
                    let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = statement
                        .query_map([0], |row| row.get::<_, String>(3))?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok::<_, StoreError>(rows)
                })
                .expect("plan");
            assert!(
                plan.iter().any(|step| step.contains("USING INDEX")
                    && (step.contains("(at") || step.contains("(last_at"))),
                "{sql}: {plan:?}"
            );
        }
    }

    #[test]
    fn a_client_keeps_one_row_of_failed_sign_ins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let (rows, count) = store
            .run_blocking(|c| {
                set_login_failures(c, "192.0.2.1", &[10, 11])?;
                set_login_failures(c, "192.0.2.1", &[10, 11, 12])?;
                set_login_failures(c, "192.0.2.2", &[5])?;
                set_login_failures(c, "192.0.2.2", &[])?;
                let count: i64 =
                    c.query_row("SELECT count(*) FROM login_throttle", [], |r| r.get(0))?;
                Ok::<_, StoreError>((login_failures(c, 0)?, count))
            })
            .expect("rows");
        assert_eq!(count, 1);
        assert_eq!(rows, [("192.0.2.1".to_owned(), vec![10, 11, 12])]);
    }
}
