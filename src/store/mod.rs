//! SQLite storage: opening the database, its pragmas and migrations, and running queries off
//! the async executor. The submodules hold every SQL statement the node runs.

pub mod audit_rows;
pub mod meta;
pub mod owner;
pub mod sessions;
pub mod throttle;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

/// The database file inside the data directory.
pub const DATABASE_FILE_NAME: &str = "siteid.sqlite3";

/// The migrations, in order. Version N is the state after the Nth script.
const MIGRATIONS: [&str; 2] = [
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_sessions.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why a storage operation failed. None of these are the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database {path} has schema version {found}, newer than this siteid knows ({known}); \
         run a newer siteid or restore a backup"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the database is closed")]
    Closed,
    #[error("a database task failed: {0}")]
    Task(String),
}

/// The node's database: one connection, used by one task at a time on a blocking thread.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Option<Connection>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DATABASE_FILE_NAME);
        let mut connection = Connection::open(&path)?;
        restrict_file_permissions(&path)?;
        configure(&connection)?;
        migrate(&mut connection, &path)?;
        Ok(Store {
            connection: Arc::new(Mutex::new(Some(connection))),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `task` with the connection on a blocking thread, so no executor thread waits on
    /// SQLite.
    pub async fn run<T, E, F>(&self, task: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.run_blocking(task))
            .await
            .map_err(|e| E::from(StoreError::Task(e.to_string())))?
    }

    /// Runs `task` with the connection on the current thread. For the CLI and start-up.
    pub fn run_blocking<T, E, F>(&self, task: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut guard = self.lock();
        let connection = guard.as_mut().ok_or(E::from(StoreError::Closed))?;
        task(connection)
    }

    /// Checkpoints the write-ahead log and closes the connection. Later calls fail with
    /// [`StoreError::Closed`].
    pub fn close(&self) -> Result<(), StoreError> {
        let Some(connection) = self.lock().take() else {
            return Ok(());
        };
        connection.execute_batch("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);")?;
        connection.close().map_err(|(_, e)| StoreError::Sqlite(e))
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back
        // the unfinished transaction when its guard is dropped.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )?;
    Ok(())
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, script) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let transaction = connection.transaction()?;
        transaction.execute_batch(script)?;
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}

fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|source| StoreError::DataDir {
        path: path.to_owned(),
        source,
    })
}

fn restrict_file_permissions(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| StoreError::DataDir {
                path: path.to_owned(),
                source,
            },
        )?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_the_current_schema_and_wal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let (version, mode, sync): (i64, String, i64) = store
            .run_blocking(|c| {
                Ok::<_, StoreError>((
                    c.query_row("PRAGMA user_version", [], |r| r.get(0))?,
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                ))
            })
            .expect("query");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL");
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        Store::open(dir.path())
            .expect("open")
            .run_blocking(|c| {
                c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                    .map_err(StoreError::from)
            })
            .expect("bump version");
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::NewerSchema { .. })
        ));
    }

    #[test]
    fn a_closed_store_refuses_work() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        store.close().expect("close");
        let result = store.run_blocking(|_| Ok::<_, StoreError>(()));
        assert!(matches!(result, Err(StoreError::Closed)));
    }
}
