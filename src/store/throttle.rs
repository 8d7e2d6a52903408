//! Failed-attempt rows: recording, counting and pruning them for the sliding-window throttles
//! of password unlock and of sign-in.

use rusqlite::{Connection, params};

use super::StoreError;

/// Which attempts a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    Unlock,
    Login,
}

impl FailureKind {
    fn insert_sql(self) -> &'static str {
        match self {
            FailureKind::Unlock => "INSERT INTO unlock_failure (ip, at) VALUES (?1, ?2)",
            FailureKind::Login => "INSERT INTO login_failure (ip, at) VALUES (?1, ?2)",
        }
    }

    fn recent_sql(self) -> &'static str {
        match self {
            FailureKind::Unlock => "SELECT ip, at FROM unlock_failure WHERE at >= ?1 ORDER BY at",
            FailureKind::Login => "SELECT ip, at FROM login_failure WHERE at >= ?1 ORDER BY at",
        }
    }

    fn clear_sql(self) -> &'static str {
        match self {
            FailureKind::Unlock => "DELETE FROM unlock_failure WHERE ip = ?1",
            FailureKind::Login => "DELETE FROM login_failure WHERE ip = ?1",
        }
    }

    fn prune_sql(self) -> &'static str {
        match self {
            FailureKind::Unlock => "DELETE FROM unlock_failure WHERE at < ?1",
            FailureKind::Login => "DELETE FROM login_failure WHERE at < ?1",
        }
    }
}

/// Records one failure of `kind` from `ip` at `at`.
pub fn record_failure(
    connection: &Connection,
    kind: FailureKind,
    ip: &str,
    at: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(kind.insert_sql())?
        .execute(params![ip, at])?;
    Ok(())
}

/// Forgets the failures of one client, after it succeeded.
pub fn clear_failures(
    connection: &Connection,
    kind: FailureKind,
    ip: &str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(kind.clear_sql())?
        .execute(params![ip])?;
    Ok(())
}

/// Deletes failures older than `before`: no window looks that far back.
pub fn prune(connection: &Connection, kind: FailureKind, before: i64) -> Result<(), StoreError> {
    connection
        .prepare_cached(kind.prune_sql())?
        .execute(params![before])?;
    Ok(())
}

/// Every failure of `kind` at or after `since` as (client, time), oldest first.
pub fn recent(
    connection: &Connection,
    kind: FailureKind,
    since: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut statement = connection.prepare(kind.recent_sql())?;
    let rows = statement
        .query_map(params![since], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn loading_and_pruning_failures_search_the_time_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        for kind in [FailureKind::Unlock, FailureKind::Login] {
            for sql in [kind.recent_sql(), kind.prune_sql()] {
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
                    plan.iter()
                        .any(|step| step.contains("USING INDEX") && step.contains("(at")),
                    "{sql}: {plan:?}"
                );
            }
        }
    }
}
