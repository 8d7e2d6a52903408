//! Domain logic of claiming a node, unlocking its key, signing in and sessions: validation,
//! throttling and the database transactions behind them. No HTTP types live here.

pub mod attempts;
pub mod challenge;
pub mod claim;
pub mod credential_changes;
pub mod credentials;
pub mod encryption_keys;
pub mod enrollment;
pub mod key_history;
pub mod login;
pub mod node_key;
pub mod passkeys;
pub mod rotation;
pub mod sessions;
pub mod throttle;
pub mod totp;
pub mod unlock;
pub mod unlock_codes;

use crate::store::StoreError;

/// Errors shared by the domain operations: the store failed, which is never the client's fault.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct InternalError(#[from] pub StoreError);
