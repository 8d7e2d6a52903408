//! `siteid owner rotate` (replacing the owner key on the server itself) and `siteid verify`
//! (checking a node's key history and JWKS against a pinned kid, from anywhere).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use sha2::{Digest, Sha256};

use super::node_client::{self, node_origin};
use super::{
    Failure, NodeArgs, new_password, node_public_url, open_store, read_password_file,
    unwrap_node_key,
};
use crate::audit::Actor;
use crate::auth::attempts::AttemptLedger;
use crate::auth::challenge::Challenges;
use crate::auth::credentials::{CredentialKind, CredentialRegistry};
use crate::auth::encryption_keys::{self, NewEncryptionKey, RewrappedKey};
use crate::auth::key_history::{self, HistoryEntry, Reason};
use crate::auth::rotation::{self, RotationContext, RotationRequest};
use crate::clock::{Clock, SystemClock};
use crate::jose::b64;
use crate::jose::jwe;
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use crate::store::credentials as credential_rows;
use crate::store::{Store, StoreError, owner};

/// The largest private JWK file read.
const MAX_PRIVATE_JWK_FILE: u64 = 4096;

#[derive(Debug, Subcommand)]
pub enum OwnerCommand {
    /// Replace the owner key: a new key wrapped under the password, introduced by a statement
    /// signed by the old key (or by the new key alone with --reason reset). Every other
    /// credential is bound again by the new key.
    Rotate(RotateArgs),
}

/// Why the key is replaced, as the statement records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RotateReason {
    /// A routine replacement.
    Rotation,
    /// The old key may be known to someone else.
    Compromise,
    /// The old key is gone: the statement is signed by the new key alone, a visible break.
    Reset,
}

impl From<RotateReason> for Reason {
    fn from(reason: RotateReason) -> Self {
        match reason {
            RotateReason::Rotation => Reason::Rotation,
            RotateReason::Compromise => Reason::Compromise,
            RotateReason::Reset => Reason::Reset,
        }
    }
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The owner's password (one trailing newline is removed): it unwraps the old key, and
    /// wraps the new one unless --new-password-file is given.
    #[arg(long)]
    pub password_file: PathBuf,
    /// Wrap the new key under this password instead.
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
    /// The old private key as a JWK file, when the stored wrapped key cannot be used.
    #[arg(long)]
    pub private_jwk: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = RotateReason::Rotation)]
    pub reason: RotateReason,
    /// PBKDF2 iterations for the new wrapped key.
    #[arg(long, default_value_t = jwe::DEFAULT_P2C)]
    pub p2c: u32,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The node's origin, e.g. https://example.com (plain http only to this machine).
    #[arg(long)]
    pub node: String,
    /// The kid you trust (from your own claim or your last check). A kid may start with `-`
    /// (base64url), so the value is taken as given.
    #[arg(long, allow_hyphen_values = true)]
    pub pin: String,
}

pub fn run(command: OwnerCommand) -> Result<(), Failure> {
    match command {
        OwnerCommand::Rotate(args) => rotate(&args),
    }
}

/// The old key for the statement: from --private-jwk, or unwrapped with the password; none for
/// a reset.
fn old_key(
    args: &RotateArgs,
    store: &Store,
    kid: &str,
) -> Result<Option<OwnerPrivateKey>, Failure> {
    if let Some(path) = &args.private_jwk {
        let key = read_private_jwk(path)?;
        if key.public_key().thumbprint() != kid {
            return Err(Failure::new(format!(
                "{} holds another key than the owner key {kid}",
                path.display()
            )));
        }
        return Ok(Some(key));
    }
    if args.reason == RotateReason::Reset {
        return Ok(None);
    }
    unwrap_node_key(store, Some(&args.password_file)).map(Some)
}

pub(crate) fn read_private_jwk(path: &std::path::Path) -> Result<OwnerPrivateKey, Failure> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
    let mut text = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_PRIVATE_JWK_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_PRIVATE_JWK_FILE {
        return Err(Failure::new(format!(
            "{} is larger than a private JWK",
            path.display()
        )));
    }
    OwnerPrivateKey::from_json(&text)
        .map_err(|e| Failure::new(format!("{}: the private JWK {e}", path.display())))
}

fn rotate(args: &RotateArgs) -> Result<(), Failure> {
    let (settings, store) = open_store(&args.node)?;
    let audience = node_public_url(&settings, &store)?;
    let record = store
        .run_blocking(|c| owner::find(c))?
        .ok_or_else(|| Failure::new("this node has no owner yet"))?;
    let old = old_key(args, &store, &record.kid)?;
    let reason = Reason::from(args.reason);
    if reason == Reason::Reset && args.private_jwk.is_some() {
        return Err(Failure::new(
            "--reason reset is for a lost old key; with --private-jwk use rotation or compromise",
        ));
    }
    let now = SystemClock.now();
    if let Some(old) = &old {
        sign_unsigned_record(&store, old, &record, audience.as_str(), now)?;
    }
    let password = match &args.new_password_file {
        Some(path) => new_password(Some(path), args.p2c)?,
        None => read_password_file(&args.password_file)?,
    };
    eprintln!("siteid: wrapping the new key ({} iterations)...", args.p2c);
    let next = OwnerPrivateKey::generate();
    let next_kid = next.public_key().thumbprint();
    let (wrapped, verifier) = jwe::wrap_private_key(&next, password.as_bytes(), args.p2c)
        .map_err(|e| Failure::new(format!("wrapping the key failed: {e}")))?;
    let verifier_hash: [u8; 32] = Sha256::digest(verifier).into();
    let (seq, live) = store.run_blocking(|c| {
        Ok::<_, StoreError>((owner::history_len(c)?, credential_rows::live(c)?))
    })?;
    let seq = u32::try_from(seq).map_err(|_| Failure::new("the key history is too long"))?;
    let signer = old
        .as_ref()
        .filter(|_| reason != Reason::Reset)
        .unwrap_or(&next);
    let statement =
        key_history::sign_statement(signer, &next_kid, Some(&record.kid), seq, reason, now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Failure::new(format!("cannot start: {e}")))?;
    let registry = runtime
        .block_on(CredentialRegistry::load_quietly(&store, now))
        .map_err(|e| Failure::new(e.to_string()))?;
    // Rows that fail their check (written into the database by someone else) are not bound
    // again: the rotation revokes them.
    let (kept, refused): (Vec<_>, Vec<_>) = live
        .iter()
        .filter(|row| row.kind != CredentialKind::Owner.as_str())
        .partition(|row| registry.get(&row.id).is_some());
    for row in &refused {
        eprintln!(
            "siteid: not binding {:?} ({}) again: its stored row fails its check",
            row.label, row.id
        );
    }
    // Credentials another credential approved keep that binding (their approver is bound
    // again).
    let bindings: Vec<String> = kept
        .iter()
        .filter(|row| rotation::approver_kid(row, &record.kid).is_none())
        .map(|row| rotation::sign_rebinding(row, &next, now))
        .collect();
    let record_signature = key_history::sign_record(
        &next,
        audience.as_str(),
        wrapped.compact(),
        &verifier_hash,
        now,
    );
    // The encryption keys: wrapped and bound again by the new key when the old key opens
    // them; a reset (the old key lost) drops them, and a reset or a compromise makes a new one.
    let mut rewrapped_rows = Vec::new();
    if let Some(old) = old.as_ref().filter(|_| reason != Reason::Reset) {
        let old_kek = jwe::encryption_kek(old);
        let next_kek = jwe::encryption_kek(&next);
        for key in registry.encryption_keys().all() {
            let opened = jwe::KwWrappedKey::parse(&key.wrapped_key)
                .and_then(|wrapped| wrapped.open(&old_kek))
                .map_err(|e| Failure::new(format!("the encryption key {} {e}", key.kid)))?;
            let sealed = jwe::seal_private_key(&opened, &next_kek)
                .map_err(|e| Failure::new(format!("wrapping an encryption key failed: {e}")))?;
            rewrapped_rows.push((
                key.kid.clone(),
                sealed.compact().to_owned(),
                encryption_keys::sign_binding(&next, &key.kid, now),
            ));
        }
    }
    let new_encryption_key = if matches!(reason, Reason::Reset | Reason::Compromise)
        || registry.encryption_keys().all().is_empty()
    {
        let (row, _) = encryption_keys::generate(&next, now)
            .map_err(|e| Failure::new(format!("making the encryption key failed: {e}")))?;
        Some(row)
    } else {
        None
    };
    let rewrapped: Vec<RewrappedKey<'_>> = rewrapped_rows
        .iter()
        .map(|(kid, wrapped_key, binding)| RewrappedKey {
            kid,
            wrapped_key,
            binding,
        })
        .collect();
    // The node key stays published: the new key binds it in the rotation's transaction.
    let node_key = crate::jose::node_key::NodeKey::load_or_create(&settings.data_dir)
        .map_err(|e| Failure::new(e.to_string()))?;
    let node_binding =
        crate::jose::node_key::sign_binding(&next, audience.as_str(), node_key.kid(), now);
    let public_key_json = next.public_key().to_json();
    let unlock_verifier = b64::encode(&verifier);
    drop(next);
    drop(old);
    let request = RotationRequest {
        public_key_json: &public_key_json,
        wrapped_key: wrapped.compact(),
        unlock_verifier: &unlock_verifier,
        old_unlock_verifier: None,
        proof: None,
        statement: &statement,
        bindings: &bindings,
        record: &record_signature,
        encryption_keys: &rewrapped,
        encryption_key: new_encryption_key.as_ref().map(|row| NewEncryptionKey {
            public_key_json: &row.public_jwk,
            wrapped_key: &row.wrapped_key,
            binding: &row.binding,
        }),
    };
    let rotated = runtime.block_on(async {
        let challenges = Challenges::default();
        let attempts = AttemptLedger::default();
        let context = RotationContext {
            store: &store,
            attempts: &attempts,
            credentials: &registry,
            challenges: &challenges,
            audience: audience.as_str(),
        };
        let rebinding = rotation::NodeKeyRebinding {
            node_kid: node_key.kid(),
            binding: &node_binding,
        };
        rotation::rotate_binding_node_key(
            &context,
            request,
            Some(rebinding),
            None,
            &Actor::local(),
            now,
        )
        .await
        .map_err(|e| Failure::new(e.to_string()))
    });
    store.close()?;
    let rotated = rotated?;
    println!("{}", rotated.new_kid);
    eprintln!(
        "siteid: the owner key is now {} (statement {} of the history, {}); {} credentials bound \
         again, and the node key {}; a running node signs the old key out within a second. \
         Recovery shares of the old key are void: make new ones.",
        rotated.new_kid,
        rotated.seq,
        rotated.reason.as_str(),
        rotated.rebound.len(),
        node_key.kid()
    );
    Ok(())
}

/// Gives a node claimed before key histories its genesis statement and record signature, made
/// with the old key, so that the rotation has a history to follow.
fn sign_unsigned_record(
    store: &Store,
    old: &OwnerPrivateKey,
    record: &owner::OwnerRecord,
    audience: &str,
    now: i64,
) -> Result<(), Failure> {
    if record.record_signature.is_some() {
        return Ok(());
    }
    let kid = record.kid.clone();
    let genesis = key_history::sign_statement(old, &kid, None, 0, Reason::Genesis, now);
    let signature = key_history::sign_record(
        old,
        audience,
        &record.wrapped_key,
        &record.verifier_hash,
        now,
    );
    let public_jwk = old.public_key().to_json();
    let signed = store.run_blocking(|c| -> Result<bool, StoreError> {
        let tx = c.transaction()?;
        let unsigned = owner::history_len(&tx)? == 0;
        if unsigned {
            owner::append_genesis(&tx, &kid, &public_jwk, &genesis, now)?;
            owner::set_record_signature(&tx, &signature, now)?;
        }
        tx.commit()?;
        Ok(unsigned)
    })?;
    if signed {
        eprintln!("siteid: signed the key history's first statement with the old key");
    }
    Ok(())
}

/// Exit code of `verify` when the history does not lead from the pinned kid to the JWKS key.
pub const EXIT_BROKEN: u8 = 1;

pub fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    let origin = node_origin(&args.node).map_err(|e| Failure::new(format!("--node: {e}")))?;
    let published = fetch_published(&origin, &args.pin)?.map_err(|message| Failure {
        message,
        code: EXIT_BROKEN,
    })?;
    let current = published.owner_kid;
    println!("{current}");
    if current != args.pin {
        eprintln!(
            "siteid: the key changed from {} to {current} through signed statements; pin the \
             new kid",
            args.pin
        );
    }
    Ok(())
}

/// Fetches what the node at `origin` publishes about its keys and checks it from `pin`: the
/// outer error is a fetch that failed, the inner one a check that did not hold. Older nodes
/// have no node key: without one the JWKS must hold the owner key alone.
pub fn fetch_published(origin: &str, pin: &str) -> Result<Result<PublishedKeys, String>, Failure> {
    let fetch = |path: &str| {
        let url = format!("{origin}{path}");
        node_client::fetch(&url).map_err(|e| Failure::new(format!("cannot fetch {url}: {e}")))
    };
    let history_text = fetch("/.well-known/siteid/keys.json")?;
    let jwks_text = fetch("/.well-known/jwks.json")?;
    let node_key_text = fetch("/.well-known/siteid/node-key.json").ok();
    Ok(check_published(
        &history_text,
        &jwks_text,
        node_key_text.as_deref(),
        pin,
        origin,
    ))
}

/// What a node publishes about its keys, checked from a pinned kid.
#[derive(Debug)]
pub struct PublishedKeys {
    /// The current owner key's kid, which the history leads to from the pin.
    pub owner_kid: String,
    /// The node's own key, when the current owner key bound it for `origin`.
    pub node_key: Option<crate::jose::jws::VerifyingKey>,
    /// When the owner key bound it (the binding's `iat`): a client that saw a later binding
    /// refuses an older one (a replaced node key shown again).
    pub node_key_bound_at: Option<i64>,
}

/// Checks a published key history, JWKS and (when the node has one) node key document against
/// a pinned kid and the origin asked: the history must lead from the pin, the JWKS's signing keys
/// must be the history's current key and, beside it, only the node key that key bound.
pub fn check_published(
    history_text: &str,
    jwks_text: &str,
    node_key_text: Option<&str>,
    pin: &str,
    origin: &str,
) -> Result<PublishedKeys, String> {
    let history: serde_json::Value = serde_json::from_str(history_text)
        .map_err(|e| format!("the key history is not JSON: {e}"))?;
    let Some(keys) = history.get("keys").and_then(|k| k.as_array()) else {
        return Err("the key history has no keys array".into());
    };
    let mut owned = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let text = |name: &str| key.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(kid), Some(statement), Some(jwk)) =
            (text("kid"), text("statement"), key.get("jwk"))
        else {
            return Err(format!(
                "key {index} of the history lacks kid, jwk or statement"
            ));
        };
        owned.push((kid, jwk.to_string(), statement));
    }
    let entries: Vec<HistoryEntry<'_>> = owned
        .iter()
        .map(|(kid, jwk, statement)| HistoryEntry {
            kid,
            jwk,
            statement,
        })
        .collect();
    let verified = key_history::verify_history(&entries).map_err(|e| e.to_string())?;
    verified.leads_from(pin)?;
    let current = verified
        .current_kid()
        .ok_or("the key history is empty")?
        .to_owned();
    let owner_key = crate::jose::jws::VerifyingKey::new(
        verified
            .current_key()
            .ok_or("the key history is empty")?
            .clone(),
    );
    let (node_key, node_key_bound_at) = match node_key_text {
        Some(text) => match bound_node_key(text, &owner_key, origin)? {
            Some((key, bound_at)) => (Some(key), Some(bound_at)),
            None => (None, None),
        },
        None => (None, None),
    };
    let jwks: serde_json::Value =
        serde_json::from_str(jwks_text).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    // Each published signing key is named by its own thumbprint, whatever its kid member says;
    // the encryption key (use "enc") is not the owner key and has no place in its history.
    let published: Vec<String> = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .map(|keys| {
            keys.iter()
                .filter(|k| k.get("use").and_then(|u| u.as_str()) != Some("enc"))
                .map(|k| {
                    OwnerPublicKey::from_json(&k.to_string())
                        .map(|key| key.thumbprint())
                        .unwrap_or_else(|e| format!("(a key that {e})"))
                })
                .collect()
        })
        .unwrap_or_default();
    let expected: Vec<&str> = std::iter::once(current.as_str())
        .chain(node_key.as_ref().map(|key| key.kid.as_str()))
        .collect();
    if published != expected {
        return Err(format!(
            "the JWKS publishes {published:?}, but the key history ends at {current}{}: the key \
             was swapped without a statement, or a signing key stands there that the owner key \
             did not bind",
            node_key
                .as_ref()
                .map(|key| format!(" and the bound node key is {}", key.kid))
                .unwrap_or_default()
        ));
    }
    Ok(PublishedKeys {
        owner_kid: current,
        node_key,
        node_key_bound_at,
    })
}

/// The node key `node-key.json` describes and when it was bound, if `owner_key` bound it for
/// `origin`; `None` while it is unbound. A binding that does not hold is an error.
pub fn bound_node_key(
    text: &str,
    owner_key: &crate::jose::jws::VerifyingKey,
    origin: &str,
) -> Result<Option<(crate::jose::jws::VerifyingKey, i64)>, String> {
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("node-key.json is not JSON: {e}"))?;
    let Some(binding) = document.get("binding").and_then(|b| b.as_str()) else {
        return Ok(None);
    };
    let mut jwk = document
        .get("jwk")
        .and_then(|j| j.as_object())
        .cloned()
        .ok_or("node-key.json has no jwk")?;
    for member in ["kid", "alg", "use"] {
        jwk.remove(member);
    }
    let key = OwnerPublicKey::from_json(&serde_json::Value::Object(jwk).to_string())
        .map_err(|e| format!("the node key {e}"))?;
    let key = crate::jose::jws::VerifyingKey::new(key);
    if document.get("kid").and_then(|k| k.as_str()) != Some(key.kid.as_str()) {
        return Err("node-key.json names its key by another kid than its thumbprint".into());
    }
    let bound_at = crate::jose::node_key::check_binding(binding, owner_key, origin, &key.kid)
        .map_err(|e| format!("the node key's binding {e}"))?;
    Ok(Some((key, bound_at)))
}
