//! TOTP settings: the SQL that stores the sealed secret (on, or pending until confirmed), the
//! last time step used, and the hashed single-use recovery codes.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A sealed secret and its public id, as a settings or pending row holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The secret sealed under the node's sealing key (nonce, ciphertext, tag).
    pub sealed: Vec<u8>,
    /// SHA-256 over `salt` and the secret, base64url: what audit entries name.
    pub secret_id: String,
    pub salt: Vec<u8>,
}

/// TOTP as turned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSettings {
    pub secret: SealedSecret,
    pub last_used_step: Option<i64>,
    pub enabled_at: i64,
}

/// A secret being set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSecret {
    pub secret: SealedSecret,
    pub created_at: i64,
}

/// The settings, when TOTP is on.
pub fn settings(connection: &Connection) -> Result<Option<TotpSettings>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT sealed_secret, secret_id, secret_salt, last_used_step, enabled_at
             FROM totp WHERE id = 1",
        )?
        .query_row([], |row| {
            Ok(TotpSettings {
                secret: SealedSecret {
                    sealed: row.get(0)?,
                    secret_id: row.get(1)?,
                    salt: row.get(2)?,
                },
                last_used_step: row.get(3)?,
                enabled_at: row.get(4)?,
            })
        })
        .optional()?)
}

/// Turns TOTP on with `secret`, whose code of step `last_used_step` confirmed it.
pub fn enable(
    connection: &Connection,
    secret: &SealedSecret,
    last_used_step: i64,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO totp (id, sealed_secret, secret_id, secret_salt, last_used_step,
                               enabled_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            secret.sealed,
            secret.secret_id,
            secret.salt,
            last_used_step,
            now
        ])?;
    Ok(())
}

/// Records the step of a code just accepted. Returns whether TOTP was on to record it.
pub fn set_last_used_step(connection: &Connection, step: i64) -> Result<bool, StoreError> {
    let changed = connection
        .prepare_cached("UPDATE totp SET last_used_step = ?1 WHERE id = 1")?
        .execute(params![step])?;
    Ok(changed == 1)
}

/// Turns TOTP off: the settings, a pending secret and every recovery code go.
pub fn disable(connection: &Connection) -> Result<(), StoreError> {
    connection.execute_batch(
        "DELETE FROM totp; DELETE FROM totp_pending; DELETE FROM totp_recovery_code;",
    )?;
    Ok(())
}

/// The pending secret, if a setup was started.
pub fn pending(connection: &Connection) -> Result<Option<PendingSecret>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT sealed_secret, secret_id, secret_salt, created_at FROM totp_pending
             WHERE id = 1",
        )?
        .query_row([], |row| {
            Ok(PendingSecret {
                secret: SealedSecret {
                    sealed: row.get(0)?,
                    secret_id: row.get(1)?,
                    salt: row.get(2)?,
                },
                created_at: row.get(3)?,
            })
        })
        .optional()?)
}

/// Starts a setup with `secret`, replacing one already pending.
pub fn set_pending(
    connection: &Connection,
    secret: &SealedSecret,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO totp_pending (id, sealed_secret, secret_id, secret_salt,
                                                  created_at)
             VALUES (1, ?1, ?2, ?3, ?4)",
        )?
        .execute(params![secret.sealed, secret.secret_id, secret.salt, now])?;
    Ok(())
}

/// Deletes the pending secret.
pub fn delete_pending(connection: &Connection) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM totp_pending")?
        .execute([])?;
    Ok(())
}

/// Replaces every recovery code with those of `hashes`.
pub fn replace_recovery_codes(
    connection: &Connection,
    hashes: &[[u8; 32]],
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM totp_recovery_code")?
        .execute([])?;
    let mut insert = connection
        .prepare_cached("INSERT INTO totp_recovery_code (code_hash, created_at) VALUES (?1, ?2)")?;
    for hash in hashes {
        insert.execute(params![hash.as_slice(), now])?;
    }
    Ok(())
}

/// The hashes of the recovery codes not used yet.
pub fn recovery_code_hashes(connection: &Connection) -> Result<Vec<[u8; 32]>, StoreError> {
    let mut statement =
        connection.prepare_cached("SELECT code_hash FROM totp_recovery_code ORDER BY rowid")?;
    let hashes = statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    // The table's CHECK keeps every hash at 32 bytes.
    Ok(hashes
        .into_iter()
        .filter_map(|hash| hash.try_into().ok())
        .collect())
}

/// Uses up one recovery code. Returns whether it was there.
pub fn delete_recovery_code(connection: &Connection, hash: &[u8; 32]) -> Result<bool, StoreError> {
    let deleted = connection
        .prepare_cached("DELETE FROM totp_recovery_code WHERE code_hash = ?1")?
        .execute(params![hash.as_slice()])?;
    Ok(deleted == 1)
}

/// How many recovery codes are left.
pub fn recovery_codes_left(connection: &Connection) -> Result<usize, StoreError> {
    let count: i64 = connection
        .prepare_cached("SELECT count(*) FROM totp_recovery_code")?
        .query_row([], |row| row.get(0))?;
    Ok(usize::try_from(count).unwrap_or(0))
}
