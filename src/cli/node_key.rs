//! `siteid node-key rotate`: replacing the node's own key on the server itself, bound by the
//! owner key (unwrapped with the password) in the same step, so that clients keep verifying
//! the node; a running node signs with the new key within a second.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, NodeArgs, node_public_url, open_store, unwrap_node_key};
use crate::audit::{self, Actor, AuditEvent};
use crate::clock::{Clock, SystemClock};
use crate::jose::node_key::{NodeKey, NodeKeyError, sign_binding};
use crate::store::node_key as rows;
use crate::store::{StoreError, owner};

#[derive(Debug, Subcommand)]
pub enum NodeKeyCommand {
    /// Replace the node's own key with a new one, bound by the owner key: its proofs by the old
    /// key stop verifying, and a running node signs with the new one within a second.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The owner's password (one trailing newline is removed): it unwraps the owner key, which
    /// binds the new node key.
    #[arg(long)]
    pub password_file: PathBuf,
}

pub fn run(command: NodeKeyCommand) -> Result<(), Failure> {
    match command {
        NodeKeyCommand::Rotate(args) => rotate(&args),
    }
}

fn rotate(args: &RotateArgs) -> Result<(), Failure> {
    let (settings, store) = open_store(&args.node)?;
    let audience = node_public_url(&settings, &store)?;
    let owner_key = unwrap_node_key(&store, Some(&args.password_file))?;
    let owner_kid = owner_key.public_key().thumbprint();
    // A damaged key file is what a rotation can replace: the owner key binds the new key.
    let old_kid = match NodeKey::load(&settings.data_dir) {
        Ok(old) => old.map(|key| key.kid().to_owned()),
        Err(NodeKeyError::DamagedKey(path)) => {
            eprintln!(
                "siteid: {} is damaged; replacing it with the new key",
                path.display()
            );
            None
        }
        Err(error) => return Err(Failure::new(error.to_string())),
    };
    let now = SystemClock.now();
    let staged = NodeKey::generate()
        .stage(&settings.data_dir)
        .map_err(|e| Failure::new(e.to_string()))?;
    let new_kid = staged
        .key()
        .map(|key| key.kid().to_owned())
        .ok_or_else(|| Failure::new("the new node key was not made"))?;
    let binding = sign_binding(&owner_key, audience.as_str(), &new_kid, now);
    drop(owner_key);
    // The binding first, the key file after: a node that reads the binding before the file is
    // renamed keeps its old key and reads the file again a second later.
    let stored = store.run_blocking(|c| -> Result<bool, StoreError> {
        let tx = c.transaction()?;
        if owner::find(&tx)?.map(|record| record.kid).as_deref() != Some(owner_kid.as_str()) {
            return Ok(false);
        }
        crate::auth::node_key::store_binding(
            &tx,
            &new_kid,
            &owner_kid,
            &binding,
            &Actor::local(),
            now,
        )?;
        rows::delete_others(&tx, &new_kid)?;
        let event = AuditEvent::NodeKeyRotated {
            old: old_kid.clone(),
            new: new_kid.clone(),
        };
        audit::append(&tx, now, &event, &Actor::local())?;
        tx.commit()?;
        Ok(true)
    });
    let stored = match stored {
        Ok(stored) => stored,
        Err(error) => {
            store.close()?;
            return Err(error.into());
        }
    };
    if !stored {
        store.close()?;
        return Err(Failure::new(
            "the owner key was replaced while the node key was rotated; run it again",
        ));
    }
    let installed = staged.install();
    store.close()?;
    installed.map_err(|e| {
        Failure::new(format!(
            "the new node key {new_kid} is bound, but putting its file in place failed: {e}; \
             run `siteid node-key rotate` again"
        ))
    })?;
    println!("{new_kid}");
    eprintln!(
        "siteid: the node key is now {new_kid}{}, bound by the owner key {owner_kid}; a running \
         node signs with it within a second",
        old_kid
            .map(|old| format!(" (it was {old})"))
            .unwrap_or_default()
    );
    Ok(())
}
