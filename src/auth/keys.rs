//! The keys the node accepts signatures from, looked up by kid. Today that is the owner key;
//! later credentials join it here. A kid is an opaque id: it is only ever compared, never
//! used as a path or fetched.

use std::sync::{Arc, RwLock};

use crate::jose::jwk::OwnerPublicKey;
use crate::jose::jws::VerifyingKey;
use crate::store::{Store, StoreError, owner};

/// The registered keys, cached in memory once the owner exists (the owner key never changes).
#[derive(Debug, Default)]
pub struct RegisteredKeys {
    owner: RwLock<Option<Arc<VerifyingKey>>>,
}

impl RegisteredKeys {
    /// The owner's key, or `None` on an unclaimed node.
    pub async fn owner(&self, store: &Store) -> Result<Option<Arc<VerifyingKey>>, StoreError> {
        if let Some(key) = self.cached() {
            return Ok(Some(key));
        }
        let Some(record) = store.run(|c| owner::find(c)).await? else {
            return Ok(None);
        };
        let public = OwnerPublicKey::from_json(&record.public_jwk)
            .map_err(|e| StoreError::Task(format!("the stored public key is damaged: {e}")))?;
        let key = Arc::new(VerifyingKey::new(public));
        *self.owner.write().unwrap_or_else(|p| p.into_inner()) = Some(key.clone());
        Ok(Some(key))
    }

    /// The key registered under `kid`, if any.
    pub async fn find(
        &self,
        store: &Store,
        kid: &str,
    ) -> Result<Option<Arc<VerifyingKey>>, StoreError> {
        Ok(self.owner(store).await?.filter(|key| key.kid == kid))
    }

    fn cached(&self) -> Option<Arc<VerifyingKey>> {
        self.owner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
