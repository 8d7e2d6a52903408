//! Passkey rows: the WebAuthn state beside a passkey credential (counter, backup flags, the
//! authenticator's AAGUID) and its optional PRF copy of the owner key.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A passkey's WebAuthn state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRow {
    pub credential_id: String,
    /// The passkey as webauthn-rs keeps it (JSON).
    pub state: String,
    pub aaguid: Option<String>,
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub backed_up: bool,
    /// The owner key wrapped under the passkey's PRF-derived key (a compact JWE), and the kid
    /// of the owner key it holds.
    pub prf_wrapped_key: Option<String>,
    pub prf_kid: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "credential_id, state, aaguid, sign_count, backup_eligible, backed_up,
     prf_wrapped_key, prf_kid, created_at, updated_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PasskeyRow> {
    Ok(PasskeyRow {
        credential_id: row.get(0)?,
        state: row.get(1)?,
        aaguid: row.get(2)?,
        sign_count: row.get(3)?,
        backup_eligible: row.get(4)?,
        backed_up: row.get(5)?,
        prf_wrapped_key: row.get(6)?,
        prf_kid: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

/// Stores a new passkey's state (its credential row is inserted first).
pub fn insert(connection: &Connection, row: &PasskeyRow) -> Result<(), StoreError> {
    connection.execute(
        &format!(
            "INSERT INTO passkey ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            row.credential_id,
            row.state,
            row.aaguid,
            row.sign_count,
            row.backup_eligible,
            row.backed_up,
            row.prf_wrapped_key,
            row.prf_kid,
            row.created_at,
            row.updated_at
        ],
    )?;
    Ok(())
}

/// The passkey state of credential `credential_id`.
pub fn find(
    connection: &Connection,
    credential_id: &str,
) -> Result<Option<PasskeyRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM passkey WHERE credential_id = ?1"),
            params![credential_id],
            from_row,
        )
        .optional()?)
}

/// Every passkey state whose credential is live.
pub fn live(connection: &Connection) -> Result<Vec<PasskeyRow>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM passkey
         WHERE credential_id IN (SELECT id FROM credential WHERE revoked_at IS NULL)
         ORDER BY created_at, credential_id"
    ))?;
    let rows = statement
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Records an assertion: the new state, counter and backup flag, only if the counter moves
/// forward from what is stored now (or both are 0, as with synced passkeys). Returns whether
/// it did: `false` means another assertion recorded an equal or higher counter meanwhile.
pub fn record_assertion(
    connection: &Connection,
    credential_id: &str,
    state: &str,
    sign_count: u32,
    backed_up: bool,
    at: i64,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE passkey SET state = ?2, sign_count = ?3, backed_up = ?4, updated_at = ?5
         WHERE credential_id = ?1 AND (sign_count < ?3 OR (sign_count = 0 AND ?3 = 0))",
        params![credential_id, state, sign_count, backed_up, at],
    )?;
    Ok(changed == 1)
}

/// Deletes the PRF copy of one passkey; returns whether it had one.
pub fn forget_wrapped_copy(
    connection: &Connection,
    credential_id: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE passkey SET prf_wrapped_key = NULL, prf_kid = NULL, updated_at = ?2
         WHERE credential_id = ?1 AND prf_wrapped_key IS NOT NULL",
        params![credential_id, at],
    )?;
    Ok(changed == 1)
}

/// Deletes every PRF copy (the owner key they hold is being replaced); returns the credential
/// ids that had one.
pub fn forget_every_wrapped_copy(
    connection: &Connection,
    at: i64,
) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = connection
        .prepare(
            "UPDATE passkey SET prf_wrapped_key = NULL, prf_kid = NULL, updated_at = ?1
             WHERE prf_wrapped_key IS NOT NULL RETURNING credential_id",
        )?
        .query_map(params![at], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    ids.sort();
    Ok(ids)
}
