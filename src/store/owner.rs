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
}

/// The owner, or `None` on an unclaimed node.
pub fn find(connection: &Connection) -> Result<Option<OwnerRecord>, StoreError> {
    let row = connection
        .query_row(
            "SELECT owner.kid, credential.public_key, key_wrapping.wrapped_key,
                    key_wrapping.verifier_hash, owner.created_at, key_wrapping.updated_at
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
                ))
            },
        )
        .optional()?;
    let Some((kid, public_jwk, wrapped_key, hash, created_at, updated_at)) = row else {
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
    r#"["session","sessions","audit","credentials","recovery","owner"]"#;

/// Stores the owner: its key as the root credential, the key's password wrapping, and the
/// owner row naming it. Fails if there already is an owner. Call inside a transaction.
pub fn insert(connection: &Connection, owner: &OwnerRecord) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO credential (id, kid, kind, alg, public_key, label, capabilities, networks,
                                 expires_at, binding, created_at, updated_at)
         VALUES (?1, ?1, 'owner', 'ES384', ?2, 'Owner key', ?3, '[]', NULL, NULL, ?4, ?4)",
        params![
            owner.kid,
            owner.public_jwk,
            OWNER_CAPABILITIES,
            owner.created_at
        ],
    )?;
    connection.execute(
        "INSERT INTO key_wrapping (kid, method, wrapped_key, verifier_hash, created_at, updated_at)
         VALUES (?1, 'password', ?2, ?3, ?4, ?5)",
        params![
            owner.kid,
            owner.wrapped_key,
            owner.verifier_hash.as_slice(),
            owner.created_at,
            owner.updated_at
        ],
    )?;
    connection.execute(
        "INSERT INTO owner (id, kid, created_at, updated_at) VALUES (1, ?1, ?2, ?3)",
        params![owner.kid, owner.created_at, owner.updated_at],
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
pub fn replace_wrapped_key(
    connection: &Connection,
    wrapped_key: &str,
    verifier_hash: &[u8; 32],
    now: i64,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE key_wrapping SET wrapped_key = ?1, verifier_hash = ?2, updated_at = ?3
         WHERE method = 'password' AND kid = (SELECT kid FROM owner WHERE id = 1)",
        params![wrapped_key, verifier_hash.as_slice(), now],
    )?;
    Ok(changed == 1)
}
