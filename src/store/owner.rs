//! The owner and the claim token: the SQL behind claiming a node and unlocking its key. The
//! owner names its key's credential and the key's password wrapping; this module reads and
//! writes the three rows together.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The owner's stored identity. Nothing here is secret except that the verifier hash guards
/// the wrapped key; the wrapped key itself is useless without the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    pub kid: String,
    pub public_jwk: String,
    pub wrapped_key: String,
    pub verifier_hash: [u8; 32],
    pub created_at: i64,
    pub updated_at: i64,
    /// The owner key's `siteid-owner-record+jwt` over this record; `None` on a node claimed
    /// before records were signed.
    pub record_signature: Option<String>,
}

/// The owner, or `None` on an unclaimed node.
pub fn find(connection: &Connection) -> Result<Option<OwnerRecord>, StoreError> {
    let row = connection
        .query_row(
            "SELECT owner.kid, credential.public_key, key_wrapping.wrapped_key,
                    key_wrapping.verifier_hash, owner.created_at, key_wrapping.updated_at,
                    owner.record_signature
             FROM owner
             JOIN credential ON credential.kid = owner.kid
             JOIN key_wrapping ON key_wrapping.kid = owner.kid AND key_wrapping.method = 'password'
             WHERE owner.id = 1",
            [],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((kid, public_jwk, wrapped_key, hash, created_at, updated_at, record_signature)) = row
    else {
        return Ok(None);
    };
    // The table's CHECK constraint keeps the hash at 32 bytes.
    let verifier_hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| {
        StoreError::Sqlite(rusqlite::Error::IntegralValueOutOfRange(
            3,
            hash.len() as i64,
        ))
    })?;
    Ok(Some(OwnerRecord {
        kid,
        public_jwk,
        wrapped_key,
        verifier_hash,
        created_at,
        updated_at,
        record_signature,
    }))
}

/// Whether the node has an owner.
pub fn exists(connection: &Connection) -> Result<bool, StoreError> {
    Ok(connection
        .query_row("SELECT 1 FROM owner WHERE id = 1", [], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The capabilities of the owner credential: all of them, in the canonical order.
pub const OWNER_CAPABILITIES: &str =
    r#"["session","sessions","audit","credentials","recovery","owner","inbox","indieauth"]"#;

/// Stores the owner: its key as the root credential, the key's password wrapping, and the
/// owner row naming it. Fails if there already is an owner. Call inside a transaction.
pub fn insert(connection: &Connection, owner: &OwnerRecord) -> Result<(), StoreError> {
    insert_key(
        connection,
        &owner.kid,
        &owner.public_jwk,
        &owner.wrapped_key,
        &owner.verifier_hash,
        owner.created_at,
    )?;
    connection.execute(
        "INSERT INTO owner (id, kid, created_at, updated_at, record_signature)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![
            owner.kid,
            owner.created_at,
            owner.updated_at,
            owner.record_signature
        ],
    )?;
    Ok(())
}

/// Stores an owner key: its root credential and its password wrapping.
fn insert_key(
    connection: &Connection,
    kid: &str,
    public_jwk: &str,
    wrapped_key: &str,
    verifier_hash: &[u8; 32],
    now: i64,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO credential (id, kid, kind, alg, public_key, label, capabilities, networks,
                                 expires_at, binding, created_at, updated_at)
         VALUES (?1, ?1, 'owner', 'ES384', ?2, 'Owner key', ?3, '[]', NULL, NULL, ?4, ?4)",
        params![kid, public_jwk, OWNER_CAPABILITIES, now],
    )?;
    connection.execute(
        "INSERT INTO key_wrapping (kid, method, wrapped_key, verifier_hash, created_at, updated_at)
         VALUES (?1, 'password', ?2, ?3, ?4, ?4)",
        params![kid, wrapped_key, verifier_hash.as_slice(), now],
    )?;
    Ok(())
}

/// The current claim token, if one has been made.
pub fn claim_token(connection: &Connection) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row("SELECT token FROM claim_token WHERE id = 1", [], |row| {
            row.get(0)
        })
        .optional()?)
}

/// Stores a new claim token unless one exists; returns the token now in force.
pub fn ensure_claim_token(
    connection: &Connection,
    fresh_token: &str,
    now: i64,
) -> Result<String, StoreError> {
    connection.execute(
        "INSERT OR IGNORE INTO claim_token (id, token, created_at) VALUES (1, ?1, ?2)",
        params![fresh_token, now],
    )?;
    claim_token(connection)?.ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

/// Deletes the claim token: it is used up.
pub fn delete_claim_token(connection: &Connection) -> Result<(), StoreError> {
    connection.execute("DELETE FROM claim_token", [])?;
    Ok(())
}

/// Replaces the wrapped key and verifier hash (a password change); the key itself stays.
/// `record_signature` replaces the record's signature; `None` keeps an unsigned record unsigned
/// (the caller refuses that on a signed node).
pub fn replace_wrapped_key(
    connection: &Connection,
    wrapped_key: &str,
    verifier_hash: &[u8; 32],
    record_signature: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE key_wrapping SET wrapped_key = ?1, verifier_hash = ?2, updated_at = ?3
         WHERE method = 'password' AND kid = (SELECT kid FROM owner WHERE id = 1)",
        params![wrapped_key, verifier_hash.as_slice(), now],
    )?;
    connection.execute(
        "UPDATE owner SET record_signature = ?1, updated_at = ?2 WHERE id = 1",
        params![record_signature, now],
    )?;
    Ok(changed == 1)
}

/// Sets the owner record's signature (signing a record claimed before signatures).
pub fn set_record_signature(
    connection: &Connection,
    record_signature: &str,
    now: i64,
) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE owner SET record_signature = ?1, updated_at = ?2 WHERE id = 1",
        params![record_signature, now],
    )?;
    Ok(())
}

/// The owner key that replaces the current one in a rotation.
#[derive(Debug, Clone)]
pub struct NextOwnerKey<'a> {
    pub kid: &'a str,
    pub public_jwk: &'a str,
    pub wrapped_key: &'a str,
    pub verifier_hash: &'a [u8; 32],
    pub record_signature: &'a str,
}

/// Makes `next` the owner key: a new root credential, its password wrapping and the owner row
/// naming it, with the old root credential revoked and its wrapping deleted. Call inside a
/// transaction; returns the old kid.
pub fn replace_owner_key(
    connection: &Connection,
    next: &NextOwnerKey<'_>,
    now: i64,
) -> Result<String, StoreError> {
    let old_kid: String =
        connection.query_row("SELECT kid FROM owner WHERE id = 1", [], |row| row.get(0))?;
    connection.execute(
        "UPDATE credential SET revoked_at = ?2, updated_at = ?2 WHERE kid = ?1",
        params![old_kid, now],
    )?;
    connection.execute("DELETE FROM key_wrapping WHERE kid = ?1", params![old_kid])?;
    insert_key(
        connection,
        next.kid,
        next.public_jwk,
        next.wrapped_key,
        next.verifier_hash,
        now,
    )?;
    connection.execute(
        "UPDATE owner SET kid = ?1, record_signature = ?2, updated_at = ?3 WHERE id = 1",
        params![next.kid, next.record_signature, now],
    )?;
    Ok(old_kid)
}

/// One key of the owner's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub seq: i64,
    pub kid: String,
    pub public_jwk: String,
    pub since: i64,
    pub statement: String,
}

/// The owner key's history, oldest first (empty on an unsigned node).
pub fn history(connection: &Connection) -> Result<Vec<HistoryRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, kid, public_key, since, statement FROM owner_key_history ORDER BY seq",
    )?;
    let rows = statement
        .query_map([], |row| {
            Ok(HistoryRow {
                seq: row.get(0)?,
                kid: row.get(1)?,
                public_jwk: row.get(2)?,
                since: row.get(3)?,
                statement: row.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Appends a key to the history. Fails if its seq or kid is taken.
pub fn append_history(connection: &Connection, row: &HistoryRow) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO owner_key_history (seq, kid, public_key, since, statement)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![row.seq, row.kid, row.public_jwk, row.since, row.statement],
    )?;
    Ok(())
}

/// Appends the first key of the history with its genesis statement. Fails if the history is
/// not empty.
pub fn append_genesis(
    connection: &Connection,
    kid: &str,
    public_jwk: &str,
    statement: &str,
    since: i64,
) -> Result<(), StoreError> {
    append_history(
        connection,
        &HistoryRow {
            seq: 0,
            kid: kid.to_owned(),
            public_jwk: public_jwk.to_owned(),
            since,
            statement: statement.to_owned(),
        },
    )
}

/// The number of keys in the history.
pub fn history_len(connection: &Connection) -> Result<i64, StoreError> {
    Ok(
        connection.query_row("SELECT count(*) FROM owner_key_history", [], |row| {
            row.get(0)
        })?,
    )
}
