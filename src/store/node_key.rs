//! The `node_key_binding` rows: the owner key's binding of the node's own key, by the node
//! key's kid.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The binding stored for the node key `node_kid`, if any.
pub fn binding(connection: &Connection, node_kid: &str) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT binding FROM node_key_binding WHERE node_kid = ?1",
            params![node_kid],
            |row| row.get(0),
        )
        .optional()?)
}

/// Stores (or replaces) the binding of the node key `node_kid`.
pub fn set_binding(
    connection: &Connection,
    node_kid: &str,
    binding: &str,
    now: i64,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO node_key_binding (node_kid, binding, bound_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (node_kid) DO UPDATE SET binding = excluded.binding, \
         bound_at = excluded.bound_at",
        params![node_kid, binding, now],
    )?;
    Ok(())
}

/// The node kid of the binding stored last (the key a rotation installed, or the one bound).
pub fn latest_node_kid(connection: &Connection) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT node_kid FROM node_key_binding ORDER BY bound_at DESC, rowid DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?)
}

/// Deletes the bindings of every node key but `node_kid`: a replaced key is vouched for no more.
pub fn delete_others(connection: &Connection, node_kid: &str) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "DELETE FROM node_key_binding WHERE node_kid <> ?1",
        params![node_kid],
    )?)
}
