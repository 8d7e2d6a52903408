//! The owner key's binding of the node key: checked when it is sent (fresh, by the current owner
//! key, for this node's public URL and key), stored, and kept in memory for the owner key and
//! node key it was checked against, so that publishing it costs no signature check, an owner
//! key rotation leaves the node key unbound until the new owner key binds it, and a node key
//! rotation (`siteid node-key rotate`) is followed by the running node.

use std::sync::{PoisonError, RwLock};

use crate::audit::{self, Actor, AuditEvent};
use crate::auth::credentials::binding_digest;
use crate::jose::jws::VerifyingKey;
use crate::jose::node_key::{CurrentNodeKey, check_binding};
use crate::store::node_key as rows;
use crate::store::{Store, StoreError};

/// How far a binding's `iat` may be from the node's clock when it is sent, in seconds.
pub const BINDING_FRESHNESS: i64 = 300;

/// Why a binding was refused; messages complete "the binding ...".
#[derive(Debug, thiserror::Error)]
pub enum NodeBindingError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a binding must name: this node's key, the current owner key and the public URL.
#[derive(Debug, Clone, Copy)]
pub struct BindingTarget<'a> {
    pub node_key: &'a CurrentNodeKey,
    pub owner_key: &'a VerifyingKey,
    pub audience: &'a str,
}

/// A binding that checked out, with the owner key it was checked against.
#[derive(Debug, Clone)]
struct Checked {
    owner_kid: String,
    node_kid: String,
    binding: String,
}

/// The node key's binding as far as the current owner key vouches for it.
#[derive(Debug, Default)]
pub struct NodeKeyBinding(RwLock<Loaded>);

/// What was last read: for which owner key, the binding if it held, and whether the stored
/// binding names a node key that the key file does not hold yet (a rotation in progress).
#[derive(Debug, Default)]
struct Loaded {
    owner_kid: Option<String>,
    checked: Option<Checked>,
    awaiting_key: bool,
    /// A node key the stored bindings named at start-up that `node.key` does not hold (the
    /// file was lost or restored from elsewhere): the file's key is the node's, and the owner
    /// binds it anew. Only a binding stored later for another key is a rotation to follow.
    lost_kid: Option<String>,
}

impl NodeKeyBinding {
    /// Reads the stored binding and keeps it if `owner_key` signed it for this node.
    pub async fn load(
        store: &Store,
        node_key: &CurrentNodeKey,
        owner_key: &VerifyingKey,
        audience: &str,
    ) -> Result<Self, StoreError> {
        let cell = NodeKeyBinding::default();
        let latest = store.run(|c| rows::latest_node_kid(c)).await?;
        if let Some(latest) = latest.filter(|kid| kid.as_str() != node_key.get().kid())
            && !matches!(node_key.switch_to(&latest), Ok(true))
        {
            tracing::warn!(
                stored = %latest,
                file = %node_key.get().kid(),
                "the node key's binding names another key than node.key holds (a lost or replaced \
                 key file): the node signs with the file's key, which the owner binds anew by \
                 signing in with the password, or with siteid node-key rotate"
            );
            cell.0
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .lost_kid = Some(latest);
        }
        cell.reload(store, node_key, owner_key, audience).await?;
        Ok(cell)
    }

    /// Reads the stored binding again (another process, such as `siteid init`, may have
    /// written it) and keeps it if `owner_key` signed it for this node. When the binding stored
    /// last names another node key (`siteid node-key rotate` installed one), the key file is read
    /// again and its key used from now on, once it is that key.
    pub async fn reload(
        &self,
        store: &Store,
        node_key: &CurrentNodeKey,
        owner_key: &VerifyingKey,
        audience: &str,
    ) -> Result<(), StoreError> {
        let latest = store.run(|c| rows::latest_node_kid(c)).await?;
        let lost_kid = self.lost_kid();
        let mut awaiting_key = false;
        if let Some(latest) = latest
            .filter(|kid| kid.as_str() != node_key.get().kid())
            .filter(|kid| lost_kid.as_deref() != Some(kid.as_str()))
        {
            let old_kid = node_key.get().kid().to_owned();
            match node_key.switch_to(&latest) {
                Ok(true) => {
                    tracing::info!(old = %old_kid, new = %latest, "the node key was rotated: signing with the new key");
                }
                Ok(false) => awaiting_key = true,
                Err(error) => {
                    awaiting_key = true;
                    if !self.awaits_key() {
                        tracing::warn!(%error, "the stored binding names another node key, and the key file cannot be read");
                    }
                }
            }
        }
        let current = node_key.get();
        let node_kid = current.kid().to_owned();
        let stored = store.run(move |c| rows::binding(c, &node_kid)).await?;
        let checked = stored
            .filter(|binding| check_binding(binding, owner_key, audience, current.kid()).is_ok())
            .map(|binding| Checked {
                owner_kid: owner_key.kid.clone(),
                node_kid: current.kid().to_owned(),
                binding,
            });
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Loaded {
            owner_kid: Some(owner_key.kid.clone()),
            checked,
            awaiting_key,
            lost_kid,
        };
        Ok(())
    }

    fn lost_kid(&self) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .lost_kid
            .clone()
    }

    fn awaits_key(&self) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .awaiting_key
    }

    /// Whether the binding should be read again: it was last read for another owner key than
    /// `owner_kid` (or never), or the stored binding names a node key not in use yet.
    pub fn is_stale(&self, owner_kid: &str) -> bool {
        let loaded = self.0.read().unwrap_or_else(PoisonError::into_inner);
        loaded.awaiting_key || loaded.owner_kid.as_deref() != Some(owner_kid)
    }

    /// The binding, if the owner key `owner_kid` (the current one) signed it for the node key
    /// `node_kid` (the one in use).
    pub fn current(&self, owner_kid: &str, node_kid: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .checked
            .as_ref()
            .filter(|checked| checked.owner_kid == owner_kid && checked.node_kid == node_kid)
            .map(|checked| checked.binding.clone())
    }

    /// Whether the owner key `owner_kid` (the current one) bound the node key `node_kid`.
    pub fn is_bound(&self, owner_kid: &str, node_kid: &str) -> bool {
        self.current(owner_kid, node_kid).is_some()
    }

    /// Checks and stores a binding sent by the owner, audited as `node_key.bound`.
    pub async fn bind(
        &self,
        store: &Store,
        target: BindingTarget<'_>,
        binding: String,
        actor: Actor,
        now: i64,
    ) -> Result<(), NodeBindingError> {
        let BindingTarget {
            node_key,
            owner_key,
            audience,
        } = target;
        let node_key = node_key.get();
        let iat = check_binding(&binding, owner_key, audience, node_key.kid())
            .map_err(NodeBindingError::Invalid)?;
        if (iat - now).abs() > BINDING_FRESHNESS {
            return Err(NodeBindingError::Invalid(format!(
                "is not fresh: its iat must be within {BINDING_FRESHNESS} seconds of the node's clock"
            )));
        }
        let node_kid = node_key.kid().to_owned();
        let owner_kid = owner_key.kid.clone();
        let stored = binding.clone();
        let lost_kid = self.lost_kid();
        store
            .run(move |c| {
                let tx = c.transaction().map_err(StoreError::from)?;
                // The owner key may have changed since it was read: the binding must name the
                // one stored now.
                let current = crate::store::owner::find(&tx)?.map(|record| record.kid);
                if current.as_deref() != Some(owner_kid.as_str()) {
                    return Err(NodeBindingError::Invalid(
                        "is by an owner key that was replaced meanwhile".into(),
                    ));
                }
                // A node key replaced on the command line (`siteid node-key rotate`) a moment
                // ago is not yet in use here: binding the old one would outrank the new.
                if crate::store::node_key::latest_node_kid(&tx)?.is_some_and(|latest| {
                    latest != node_kid && lost_kid.as_deref() != Some(latest.as_str())
                }) {
                    return Err(NodeBindingError::Invalid(
                        "names a node key that was replaced meanwhile; fetch node-key.json again"
                            .into(),
                    ));
                }
                store_binding(&tx, &node_kid, &owner_kid, &stored, &actor, now)?;
                // Only the key bound now is vouched for: an old key file put back cannot come
                // back bound.
                crate::store::node_key::delete_others(&tx, &node_kid)?;
                tx.commit().map_err(StoreError::from)?;
                Ok(())
            })
            .await?;
        let mut loaded = self.0.write().unwrap_or_else(PoisonError::into_inner);
        loaded.owner_kid = Some(owner_key.kid.clone());
        loaded.checked = Some(Checked {
            owner_kid: owner_key.kid.clone(),
            node_kid: node_key.kid().to_owned(),
            binding,
        });
        Ok(())
    }
}

/// Stores a checked binding, audited as `node_key.bound`. Call inside a transaction.
pub fn store_binding(
    connection: &rusqlite::Connection,
    node_kid: &str,
    owner_kid: &str,
    binding: &str,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    rows::set_binding(connection, node_kid, binding, now)?;
    let event = AuditEvent::NodeKeyBound {
        node_kid: node_kid.to_owned(),
        owner_kid: owner_kid.to_owned(),
        binding_sha256: binding_digest(Some(binding)),
    };
    audit::append(connection, now, &event, actor)?;
    Ok(())
}
