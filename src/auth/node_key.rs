//! The owner key's binding of the node key: checked when it is sent (fresh, by the current owner
//! key, for this node's public URL and key), stored, and kept in memory for the owner key it
//! was checked against, so that publishing it costs no signature check and a rotation leaves the
//! node key unbound until the new owner key binds it.

use std::sync::{PoisonError, RwLock};

use crate::audit::{self, Actor, AuditEvent};
use crate::auth::credentials::binding_digest;
use crate::jose::jws::VerifyingKey;
use crate::jose::node_key::{NodeKey, check_binding};
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
    pub node_key: &'a NodeKey,
    pub owner_key: &'a VerifyingKey,
    pub audience: &'a str,
}

/// A binding that checked out, with the owner key it was checked against.
#[derive(Debug, Clone)]
struct Checked {
    owner_kid: String,
    binding: String,
}

/// The node key's binding as far as the current owner key vouches for it.
#[derive(Debug, Default)]
pub struct NodeKeyBinding(RwLock<Loaded>);

/// What was last read: for which owner key, and the binding if it held.
#[derive(Debug, Default)]
struct Loaded {
    owner_kid: Option<String>,
    checked: Option<Checked>,
}

impl NodeKeyBinding {
    /// Reads the stored binding and keeps it if `owner_key` signed it for this node.
    pub async fn load(
        store: &Store,
        node_key: &NodeKey,
        owner_key: &VerifyingKey,
        audience: &str,
    ) -> Result<Self, StoreError> {
        let cell = NodeKeyBinding::default();
        cell.reload(store, node_key, owner_key, audience).await?;
        Ok(cell)
    }

    /// Reads the stored binding again (another process, such as `siteid init`, may have
    /// written it) and keeps it if `owner_key` signed it for this node.
    pub async fn reload(
        &self,
        store: &Store,
        node_key: &NodeKey,
        owner_key: &VerifyingKey,
        audience: &str,
    ) -> Result<(), StoreError> {
        let node_kid = node_key.kid().to_owned();
        let stored = store.run(move |c| rows::binding(c, &node_kid)).await?;
        let checked = stored
            .filter(|binding| check_binding(binding, owner_key, audience, node_key.kid()).is_ok())
            .map(|binding| Checked {
                owner_kid: owner_key.kid.clone(),
                binding,
            });
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Loaded {
            owner_kid: Some(owner_key.kid.clone()),
            checked,
        };
        Ok(())
    }

    /// Whether the binding was last read for another owner key than `owner_kid` (or never).
    pub fn is_stale(&self, owner_kid: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .owner_kid
            .as_deref()
            != Some(owner_kid)
    }

    /// The binding, if the owner key `owner_kid` (the current one) is the one that signed it.
    pub fn current(&self, owner_kid: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .checked
            .as_ref()
            .filter(|checked| checked.owner_kid == owner_kid)
            .map(|checked| checked.binding.clone())
    }

    /// Whether the owner key `owner_kid` (the current one) bound the node key.
    pub fn is_bound(&self, owner_kid: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .checked
            .as_ref()
            .is_some_and(|checked| checked.owner_kid == owner_kid)
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
                store_binding(&tx, &node_kid, &owner_kid, &stored, &actor, now)?;
                tx.commit().map_err(StoreError::from)?;
                Ok(())
            })
            .await?;
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Loaded {
            owner_kid: Some(owner_key.kid.clone()),
            checked: Some(Checked {
                owner_kid: owner_key.kid.clone(),
                binding,
            }),
        };
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
