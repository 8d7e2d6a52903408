//! SQLite storage: opening the database, its pragmas and migrations, and running queries off
//! the async executor. The submodules hold every SQL statement the node runs.

pub mod audit_rows;
pub mod credentials;
pub mod encryption_keys;
pub mod enrollment;
pub mod inbox;
pub mod indieauth;
pub mod meta;
pub mod node_key;
pub mod owner;
pub mod passkeys;
pub mod recovery_sets;
pub mod sessions;
pub mod throttle;
pub mod totp;
pub mod unlock_codes;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

/// The database file inside the data directory.
pub const DATABASE_FILE_NAME: &str = "siteid.sqlite3";

/// The migrations, in order. Version N is the state after the Nth script.
const MIGRATIONS: [&str; 15] = [
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_sessions.sql"),
    include_str!("migrations/0003_recovery_sets.sql"),
    include_str!("migrations/0004_unlock_codes.sql"),
    include_str!("migrations/0005_credentials.sql"),
    include_str!("migrations/0006_login_throttle.sql"),
    include_str!("migrations/0007_audit_event_index.sql"),
    include_str!("migrations/0008_audit_ip_seal.sql"),
    include_str!("migrations/0009_owner_key_history.sql"),
    include_str!("migrations/0010_totp.sql"),
    include_str!("migrations/0011_passkeys.sql"),
    include_str!("migrations/0012_inbox.sql"),
    include_str!("migrations/0013_indieauth.sql"),
    include_str!("migrations/0014_node_key.sql"),
    include_str!("migrations/0015_enrollment.sql"),
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

/// A write that may share its transaction (and its fsync) with other writes.
type GroupedWrite = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

struct GroupedRequest {
    write: GroupedWrite,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// The most writes committed together.
const MAX_GROUP: usize = 256;

/// The node's database: one connection, used by one task at a time on a blocking thread.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Option<Connection>>>,
    path: PathBuf,
    grouped: tokio::sync::mpsc::UnboundedSender<GroupedRequest>,
    /// Transactions the group writer has committed, for tests of the grouping.
    group_commits: Arc<AtomicU64>,
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
        configure(&mut connection)?;
        migrate(&mut connection, &path)?;
        let connection = Arc::new(Mutex::new(Some(connection)));
        let (grouped, requests) = tokio::sync::mpsc::unbounded_channel();
        let writer_connection = connection.clone();
        let group_commits = Arc::new(AtomicU64::new(0));
        let writer_commits = group_commits.clone();
        std::thread::Builder::new()
            .name("store-group-writer".into())
            .spawn(move || write_groups(&writer_connection, requests, &writer_commits))
            .map_err(|e| StoreError::Task(format!("cannot start the group writer: {e}")))?;
        Ok(Store {
            connection,
            path,
            grouped,
            group_commits,
        })
    }

    /// Runs `write` in a transaction shared with whatever other grouped writes are waiting, so
    /// that concurrent writers share one commit (and one fsync) instead of queueing for their
    /// own. Each write runs in its own savepoint: a failing write is rolled back alone. Returns
    /// once the commit is durable.
    pub async fn run_grouped<F>(&self, write: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let (done, finished) = tokio::sync::oneshot::channel();
        self.grouped
            .send(GroupedRequest {
                write: Box::new(write),
                done,
            })
            .map_err(|_| StoreError::Closed)?;
        finished.await.map_err(|_| StoreError::Closed)?
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

    /// How many grouped transactions have been committed.
    pub fn group_commits(&self) -> u64 {
        self.group_commits.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back
        // the unfinished transaction when its guard is dropped.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The group writer's loop: take one request, wait for the connection, add every other request
/// that arrived meanwhile, run them in one transaction, answer them all. Ends when every
/// `Store` handle is gone.
fn write_groups(
    connection: &Mutex<Option<Connection>>,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<GroupedRequest>,
    commits: &AtomicU64,
) {
    while let Some(first) = requests.blocking_recv() {
        let mut group = vec![first];
        // Requests that queue while another task holds the connection join this group.
        let mut guard = connection.lock().unwrap_or_else(|p| p.into_inner());
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let Some(connection) = guard.as_mut() else {
            for request in group {
                let _ = request.done.send(Err(StoreError::Closed));
            }
            continue;
        };
        let (results, committed) = commit_group(
            connection,
            group
                .iter_mut()
                .map(|r| std::mem::replace(&mut r.write, Box::new(|_| Ok(())))),
        );
        drop(guard);
        if committed.is_ok() {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        for (request, result) in group.into_iter().zip(results) {
            let outcome = match (&committed, result) {
                (Ok(()), result) => result,
                (Err(error), _) => Err(StoreError::Task(format!("group commit failed: {error}"))),
            };
            let _ = request.done.send(outcome);
        }
    }
}

fn commit_group(
    connection: &mut Connection,
    writes: impl Iterator<Item = GroupedWrite>,
) -> (Vec<Result<(), StoreError>>, Result<(), String>) {
    let mut results = Vec::new();
    let mut transaction = match connection.transaction() {
        Ok(transaction) => transaction,
        Err(error) => {
            let message = error.to_string();
            return (
                writes
                    .map(|_| Err(StoreError::Task(message.clone())))
                    .collect(),
                Err(message),
            );
        }
    };
    for write in writes {
        let result = match transaction.savepoint() {
            Ok(savepoint) => match write(&savepoint) {
                Ok(()) => savepoint.commit().map_err(StoreError::from),
                // Dropping the savepoint rolls this write back and keeps the others.
                Err(error) => Err(error),
            },
            Err(error) => Err(StoreError::from(error)),
        };
        results.push(result);
    }
    let committed = transaction.commit().map_err(|e| e.to_string());
    (results, committed)
}

fn configure(connection: &mut Connection) -> Result<(), StoreError> {
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    // Every transaction takes the write lock when it begins, waiting (busy_timeout) for another
    // process's (the command line's): a deferred one that read first could not wait to upgrade
    // and would fail with "database is locked" (seen as a 500 while `siteid enroll` wrote).
    connection.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
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
    // A migration may rebuild a table that others reference (SQLite's twelve-step ALTER):
    // foreign keys are off while it runs, and every reference is checked before it commits.
    connection.pragma_update(None, "foreign_keys", false)?;
    let migrated = run_migrations(connection, found);
    connection.pragma_update(None, "foreign_keys", true)?;
    migrated
}

/// Runs the migrations after version `found`, each in its own transaction.
fn run_migrations(connection: &mut Connection, found: i64) -> Result<(), StoreError> {
    for (index, script) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let transaction = connection.transaction()?;
        transaction.execute_batch(script)?;
        let dangling: i64 =
            transaction.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })?;
        if dangling != 0 {
            return Err(StoreError::Task(format!(
                "migration {version} would leave {dangling} dangling references"
            )));
        }
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}

/// Creates the data directory as `0700`, and makes an existing one private: other users of the
/// machine must not read the database (it holds the audit log and who holds recovery shares).
fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    let data_dir_error = |source| StoreError::DataDir {
        path: path.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(data_dir_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(data_dir_error)?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)).map_err(
                |error| {
                    data_dir_error(std::io::Error::new(
                        error.kind(),
                        format!(
                            "it is open to other users (mode {mode:o}) and cannot be made private \
                             ({error}); run `chmod 700` on it as its owner"
                        ),
                    ))
                },
            )?;
            tracing::warn!(
                path = %path.display(),
                was = format!("{mode:o}"),
                "the data directory was open to other users; it is now 0700"
            );
        }
    }
    Ok(())
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
    fn grouped_writes_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        // Hold the connection so that the three writes queue up while the writer waits for it.
        let (held, release) = std::sync::mpsc::channel::<()>();
        let (holding, is_held) = std::sync::mpsc::channel::<()>();
        let holder = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.run_blocking(|_| {
                    let _ = holding.send(());
                    let _ = release.recv();
                    Ok::<_, StoreError>(())
                })
            })
        };
        is_held.recv().expect("the connection is held");
        let commits_before = store.group_commits();
        let results = runtime.block_on(async {
            let good = store.run_grouped(|c| {
                c.execute("INSERT INTO meta (name, value) VALUES ('a', x'01')", [])?;
                Ok(())
            });
            let bad = store.run_grouped(|c| {
                c.execute("INSERT INTO meta (name, value) VALUES ('b', x'01')", [])?;
                Err(StoreError::Task("refused".into()))
            });
            let also_good = store.run_grouped(|c| {
                c.execute("INSERT INTO meta (name, value) VALUES ('c', x'01')", [])?;
                Ok(())
            });
            // `join!` polls the writes in order, so all three are queued before the release.
            let release_connection = async {
                let _ = held.send(());
            };
            let (good, bad, also_good, ()) = tokio::join!(good, bad, also_good, release_connection);
            (good, bad, also_good)
        });
        holder.join().expect("holder").expect("held");
        assert!(results.0.is_ok() && results.1.is_err() && results.2.is_ok());
        assert_eq!(
            store.group_commits() - commits_before,
            1,
            "the three writes shared one commit"
        );
        let names: Vec<String> = store
            .run_blocking(|c| {
                let mut statement = c.prepare("SELECT name FROM meta ORDER BY name")?;
                let names = statement
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok::<_, StoreError>(names)
            })
            .expect("read");
        assert_eq!(names, ["a", "c"]);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_data_directory_open_to_others_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Store::open(&data).expect("open");
        let mode = std::fs::metadata(&data).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_claimed_node_of_schema_4_keeps_its_owner_and_sessions_through_the_credentials_migration() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let mut connection =
                Connection::open(dir.path().join(DATABASE_FILE_NAME)).expect("open");
            for script in &MIGRATIONS[..4] {
                connection.execute_batch(script).expect("old migration");
            }
            connection
                .pragma_update(None, "user_version", 4)
                .expect("version");
            let tx = connection.transaction().expect("tx");
            tx.execute_batch(
                "INSERT INTO owner (id, kid, public_jwk, wrapped_key, verifier_hash, created_at,
                                    updated_at)
                 VALUES (1, 'the-kid', '{\"kty\":\"EC\"}', 'a.b.c.d.e', zeroblob(32), 10, 20);
                 INSERT INTO session (id, token_hash, kid, created_at, last_seen_at, expires_at,
                                      fresh_until, ip)
                 VALUES ('s1', zeroblob(32), 'the-kid', 1, 1, 2, 0, '127.0.0.1');",
            )
            .expect("old rows");
            tx.commit().expect("commit");
        }
        let store = Store::open(dir.path()).expect("migrate");
        let (owner, session, credential): (owner::OwnerRecord, (String, String), (String, String)) =
            store
                .run_blocking(|c| {
                    let owner = owner::find(c)?.ok_or(StoreError::Closed)?;
                    let session = c.query_row(
                        "SELECT credential_id, capabilities FROM session WHERE id = 's1'",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?;
                    let credential = c.query_row(
                        "SELECT id, kind FROM credential WHERE kid = 'the-kid'",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?;
                    Ok::<_, StoreError>((owner, session, credential))
                })
                .expect("read");
        assert_eq!(owner.kid, "the-kid");
        assert_eq!(owner.public_jwk, r#"{"kty":"EC"}"#);
        assert_eq!(owner.wrapped_key, "a.b.c.d.e");
        assert_eq!((owner.created_at, owner.updated_at), (10, 20));
        assert_eq!(session.0, "the-kid");
        assert_eq!(session.1, owner::OWNER_CAPABILITIES);
        assert_eq!(credential, ("the-kid".to_owned(), "owner".to_owned()));
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
