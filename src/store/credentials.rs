//! Credential rows: the SQL behind the credential registry (every key that may sign in).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// One stored credential, as the database holds it. `capabilities` and `networks` are JSON
/// arrays; `binding` is the owner's JWS over the fields (absent for the owner key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub id: String,
    pub kid: String,
    pub kind: String,
    pub alg: String,
    pub public_key: String,
    pub label: String,
    pub capabilities: String,
    pub networks: String,
    pub expires_at: Option<i64>,
    pub binding: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, kid, kind, alg, public_key, label, capabilities, networks, expires_at,
     binding, created_at, updated_at, last_used_at, revoked_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        id: row.get(0)?,
        kid: row.get(1)?,
        kind: row.get(2)?,
        alg: row.get(3)?,
        public_key: row.get(4)?,
        label: row.get(5)?,
        capabilities: row.get(6)?,
        networks: row.get(7)?,
        expires_at: row.get(8)?,
        binding: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
        last_used_at: row.get(12)?,
        revoked_at: row.get(13)?,
    })
}

/// Every credential that has not been revoked: the owner key first, then oldest first.
pub fn live(connection: &Connection) -> Result<Vec<CredentialRow>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM credential WHERE revoked_at IS NULL
         ORDER BY kind != 'owner', created_at, id"
    ))?;
    let rows = statement
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The credential with `id`, revoked or not.
pub fn find(connection: &Connection, id: &str) -> Result<Option<CredentialRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM credential WHERE id = ?1"),
            params![id],
            from_row,
        )
        .optional()?)
}

/// Records when a credential last signed in.
pub fn touch(connection: &Connection, id: &str, at: i64) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE credential SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

/// Whether a credential with `kid` or `id` was ever stored (revoked ones count: a revoked key
/// stays refused).
pub fn taken(connection: &Connection, id: &str, kid: &str) -> Result<(bool, bool), StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM credential WHERE id = ?1),
                EXISTS (SELECT 1 FROM credential WHERE kid = ?2)",
        params![id, kid],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// Stores a new credential.
pub fn insert(connection: &Connection, row: &CredentialRow) -> Result<(), StoreError> {
    connection.execute(
        &format!(
            "INSERT INTO credential ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            row.id,
            row.kid,
            row.kind,
            row.alg,
            row.public_key,
            row.label,
            row.capabilities,
            row.networks,
            row.expires_at,
            row.binding,
            row.created_at,
            row.updated_at,
            row.last_used_at,
            row.revoked_at
        ],
    )?;
    Ok(())
}

/// Rewrites a live credential's key, fields and binding (a change or a reset); returns whether
/// there was one.
pub fn update(connection: &Connection, row: &CredentialRow) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE credential SET kid = ?2, alg = ?3, public_key = ?4, label = ?5,
                capabilities = ?6, networks = ?7, expires_at = ?8, binding = ?9, updated_at = ?10
         WHERE id = ?1 AND revoked_at IS NULL AND kind != 'owner'",
        params![
            row.id,
            row.kid,
            row.alg,
            row.public_key,
            row.label,
            row.capabilities,
            row.networks,
            row.expires_at,
            row.binding,
            row.updated_at
        ],
    )?;
    Ok(changed == 1)
}

/// The number of live credentials, the owner key included.
pub fn live_count(connection: &Connection) -> Result<usize, StoreError> {
    let count: i64 = connection.query_row(
        "SELECT count(*) FROM credential WHERE revoked_at IS NULL",
        [],
        |row| row.get(0),
    )?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// Marks a live credential (never the owner key) revoked; returns whether there was one.
pub fn revoke(connection: &Connection, id: &str, at: i64) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE credential SET revoked_at = ?2, updated_at = ?2
         WHERE id = ?1 AND revoked_at IS NULL AND kind != 'owner'",
        params![id, at],
    )?;
    Ok(changed == 1)
}
