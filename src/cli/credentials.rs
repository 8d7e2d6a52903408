//! `siteid credentials list|add|revoke`: the credential registry on the server itself, for an
//! owner who works there. Adding a key binds it with the owner key, unwrapped here with the
//! password; a running node picks the change up within a second.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Failure, NodeArgs, open_store, unwrap_node_key};
use crate::audit::Actor;
use crate::auth::credential_changes::{self, CredentialError, CredentialFields, NewCredential};
use crate::auth::credentials::CredentialRegistry;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::jose::b64;
use crate::keys::PublicKey;
use crate::keys::public::MAX_PUBLIC_KEY_LEN;
use crate::store::{Store, credentials as rows};

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Print the live credentials, one tab-separated line each: id, kind, alg, kid, label,
    /// capabilities, networks, expiry and last use.
    List(NodeArgs),
    /// Bind a public key (PEM, OpenSSH line or JWK, from a file) as a new credential; prints its
    /// id and kid.
    Add(AddArgs),
    /// Revoke a credential by id: its sessions end and its key never signs in again.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// File holding the owner's password (one trailing newline is removed) [default: ask].
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// File holding the public key: PEM SubjectPublicKeyInfo, an OpenSSH public key line
    /// (`id_ed25519.pub`) or a JWK.
    #[arg(long)]
    pub public_key: PathBuf,
    /// A name for the key, 1 to 64 characters.
    #[arg(long)]
    pub label: String,
    /// A capability it holds, repeated: session, sessions, audit, credentials, recovery, owner.
    #[arg(long = "capability", default_values_t = vec!["session".to_owned()])]
    pub capabilities: Vec<String>,
    /// A network (CIDR) it may be used from, repeated [default: anywhere].
    #[arg(long = "network")]
    pub networks: Vec<String>,
    /// Days until it expires [default: never].
    #[arg(long)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The credential's id, as `siteid credentials list` prints it (base64url, so it may start
    /// with `-`).
    #[arg(allow_hyphen_values = true)]
    pub id: String,
}

/// Runs a `credentials` subcommand.
pub fn run(command: CredentialsCommand) -> Result<(), Failure> {
    match command {
        CredentialsCommand::List(node) => list(&node),
        CredentialsCommand::Add(args) => add(&args),
        CredentialsCommand::Revoke(args) => revoke(&args),
    }
}

fn list(node: &NodeArgs) -> Result<(), Failure> {
    let (_, store) = open_store(node)?;
    let live = store.run_blocking(|c| rows::live(c))?;
    store.close()?;
    let names = |json: &str| -> String {
        let names: Vec<String> = serde_json::from_str(json).unwrap_or_default();
        if names.is_empty() {
            "-".into()
        } else {
            names.join(",")
        }
    };
    let mut out = std::io::stdout().lock();
    for row in live {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            row.id,
            row.kind,
            row.alg,
            row.kid,
            row.label.replace(['\t', '\n'], " "),
            names(&row.capabilities),
            names(&row.networks),
            row.expires_at.map(rfc3339).unwrap_or_else(|| "-".into()),
            row.last_used_at.map(rfc3339).unwrap_or_else(|| "-".into()),
        );
        if let Err(error) = writeln!(out, "{line}") {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure::new(format!("cannot write the list: {error}")));
        }
    }
    Ok(())
}

/// Runs a registry operation on a runtime of its own (the command line has no executor).
fn with_registry<T>(
    store: &Store,
    operation: impl AsyncFnOnce(&Store, &CredentialRegistry, i64) -> Result<T, CredentialError>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
    let now = SystemClock.now();
    runtime.block_on(async {
        let registry = CredentialRegistry::load_quietly(store, now)
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        operation(store, &registry, now)
            .await
            .map_err(|e| Failure::new(e.to_string()))
    })
}

fn add(args: &AddArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.public_key)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", args.public_key.display())))?;
    if text.len() > MAX_PUBLIC_KEY_LEN {
        return Err(Failure::new(format!(
            "{} is larger than any public key",
            args.public_key.display()
        )));
    }
    let public = PublicKey::from_text(&text)
        .map_err(|e| Failure::new(format!("{}: public_key {e}", args.public_key.display())))?;
    let kid = public.thumbprint();
    // The request carries the key as the owner gave it: a JWK object, or the PEM/OpenSSH text.
    let public_key_json = if text.trim_start().starts_with('{') {
        text.trim().to_owned()
    } else {
        serde_json::Value::String(text.trim().to_owned()).to_string()
    };
    let now = SystemClock.now();
    let expires_at = args
        .expires_in_days
        .map(|days| now + i64::from(days) * 86_400);
    let id = b64::encode(&rand::random::<[u8; 16]>());
    let (_, store) = open_store(&args.node)?;
    let owner_key = unwrap_node_key(&store, args.password_file.as_deref())?;
    let mut claims = json!({
        "sub": kid,
        "kind": "key",
        "label": args.label,
        "cap": args.capabilities,
        "net": args.networks,
        "iat": now,
        "jti": id,
    });
    if let Some(at) = expires_at {
        claims["exp"] = json!(at);
    }
    let binding = crate::jose::jws::sign_es384(
        &owner_key,
        &json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": owner_key.public_key().thumbprint()}),
        &claims,
    );
    drop(owner_key);
    let input = NewCredential {
        id,
        kind: "key".into(),
        public_key_json,
        fields: CredentialFields {
            label: args.label.clone(),
            capabilities: args.capabilities.clone(),
            networks: args.networks.clone(),
            expires_at,
        },
        binding,
        passkey: None,
        approves_request: None,
        gated: false,
    };
    let added = with_registry(&store, async |store, registry, now| {
        credential_changes::add(store, registry, input, &Actor::local(), now).await
    });
    store.close()?;
    let row = added?;
    println!("{}\t{}", row.id, row.kid);
    eprintln!(
        "siteid: added {:?} ({}, {}); a running node accepts it within a second",
        row.label, row.alg, row.capabilities
    );
    Ok(())
}

fn revoke(args: &RevokeArgs) -> Result<(), Failure> {
    let (_, store) = open_store(&args.node)?;
    let revoked = with_registry(&store, async |store, registry, now| {
        credential_changes::revoke(store, registry, &args.id, &Actor::local(), now).await
    });
    store.close()?;
    let row = revoked?;
    eprintln!(
        "siteid: revoked {:?} ({}); a running node ends its sessions within a second",
        row.label, row.kid
    );
    Ok(())
}
