//! `siteid shares split|combine|check`: recovery shares on the command line. Shares go to
//! stdout one per line; messages go to stderr. Exit codes beyond the common ones: 4 a share
//! is unreadable, 5 the shares do not combine into a key, 6 the key is not the owner's.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    EXIT_ALREADY_CLAIMED, Failure, NodeArgs, new_password, node_public_url, open_store,
    unwrap_node_key,
};
use crate::audit::{self, Actor, AuditEvent};
use crate::auth::claim::{self, CheckedClaim, ClaimError, ClaimVia, OwnerSignatures};
use crate::clock::{Clock, SystemClock};
use crate::jose::jwe;
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use crate::recovery::sets;
use crate::recovery::share::{self, Share, ShareError, ShareErrorCode, key_check};
use crate::recovery::{rebuild_key, split_key};
use crate::store::{StoreError, owner};

/// Exit code for a share that cannot be read (format, checksum, header fields).
pub const EXIT_BAD_SHARE: u8 = 4;
/// Exit code for shares that do not combine into a key.
pub const EXIT_NO_KEY: u8 = 5;
/// Exit code for a key that is not the owner's.
pub const EXIT_WRONG_KEY: u8 = 6;

#[derive(Debug, Subcommand)]
pub enum SharesCommand {
    /// Split the owner key into N shares of which any K rebuild it; prints one share per line.
    Split(SplitArgs),
    /// Rebuild the key from shares (one per line on stdin, or arguments); prints the private
    /// JWK, or with --data-dir stores it wrapped under a new password.
    Combine(CombineArgs),
    /// Check shares: format and checksum, whether they combine, and whose key they rebuild.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// How many shares rebuild the key (2 to 16).
    #[arg(long, short = 'k')]
    pub threshold: u8,
    /// How many shares to make (threshold to 16).
    #[arg(long, short = 'n')]
    pub shares: u8,
    /// A label per share (who it is for), repeated N times [default: "Share 1", ...].
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Split the key in this private JWK file instead of the node's wrapped key; nothing is
    /// recorded on a node then.
    #[arg(long, conflicts_with = "password_file")]
    pub private_jwk: Option<PathBuf>,
    /// File holding the owner's password (one trailing newline is removed) [default: ask].
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct OwnerKeySource {
    /// Check the key against this public JWK file (a JWKS file with one key works too).
    #[arg(long, conflicts_with = "node")]
    pub public_jwk: Option<PathBuf>,
    /// Check the key against the JWKS of the node at this URL, e.g. https://example.com.
    #[arg(long)]
    pub node: Option<String>,
}

#[derive(Debug, Args)]
pub struct CombineArgs {
    /// Shares; without any, they are read from stdin, one per line (better: other users of
    /// the machine can see command-line arguments).
    pub shares: Vec<String>,
    #[command(flatten)]
    pub expected: OwnerKeySource,
    /// Store the rebuilt key, wrapped under a new password, in this data directory: an
    /// unclaimed node is claimed with it, a node with this key gets the new password.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: file holding the new password [default: ask twice].
    #[arg(long, requires = "data_dir")]
    pub password_file: Option<PathBuf>,
    /// With --data-dir: PBKDF2 iterations for the new wrapped key.
    #[arg(long, default_value_t = jwe::DEFAULT_P2C)]
    pub p2c: u32,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The shares to check; without any, they are read from stdin, one per line (better: other
    /// users of the machine can see command-line arguments).
    pub shares: Vec<String>,
    #[command(flatten)]
    pub expected: OwnerKeySource,
}

/// Runs a `shares` subcommand.
pub fn run(command: SharesCommand) -> Result<(), Failure> {
    match command {
        SharesCommand::Split(args) => split(&args),
        SharesCommand::Combine(args) => combine(&args),
        SharesCommand::Check(args) => check(&args),
    }
}

fn share_failure(error: ShareError) -> Failure {
    let code = match error.code {
        code if code.is_format_error() => EXIT_BAD_SHARE,
        ShareErrorCode::WrongKey => EXIT_WRONG_KEY,
        _ => EXIT_NO_KEY,
    };
    Failure {
        message: error.message,
        code,
    }
}

fn split(args: &SplitArgs) -> Result<(), Failure> {
    share::check_split_range(args.threshold, args.shares).map_err(|e| Failure {
        message: e.to_string(),
        code: 2,
    })?;
    let labels: Vec<String> = if args.labels.is_empty() {
        (1..=args.shares).map(|i| format!("Share {i}")).collect()
    } else {
        args.labels.iter().map(|l| l.trim().to_owned()).collect()
    };
    // The labels are checked before the slow unwrap; the set id is known only after the split.
    sets::check("00000000", args.threshold, args.shares, labels.clone()).map_err(|e| Failure {
        message: e.to_string(),
        code: 2,
    })?;
    let (key, store) = match &args.private_jwk {
        Some(path) => (read_private_jwk(path)?, None),
        None => {
            let (_, store) = open_store(&args.node)?;
            (
                unwrap_node_key(&store, args.password_file.as_deref())?,
                Some(store),
            )
        }
    };
    let split =
        split_key(&key, args.threshold, args.shares).map_err(|e| Failure::new(e.to_string()))?;
    let set_id = share::hex(&split.set_id);
    let set = sets::check(&set_id, args.threshold, args.shares, labels)
        .map_err(|e| Failure::new(e.to_string()))?;
    // The shares must be out before the set is recorded: a set without its shares helps nobody.
    let lines: Vec<Zeroizing<String>> = split.shares.iter().map(|s| s.to_text()).collect();
    write_lines(&lines)?;
    if let Some(store) = store {
        let now = SystemClock.now();
        store
            .run_blocking(|c| sets::record(c, set, &Actor::local(), now))
            .map_err(|e| {
                Failure::new(format!(
                    "the shares above are valid, but recording the set on the node failed: {e}"
                ))
            })?;
        store.close()?;
    }
    eprintln!(
        "siteid: set {set_id}: {} shares, any {} rebuild the key {}. Give each to one person; \
         they stay valid until the key itself is replaced.",
        args.shares,
        args.threshold,
        key.public_key().thumbprint()
    );
    Ok(())
}

/// Writes lines to stdout and flushes, reporting a failure (a closed pipe, a full disk) as
/// exit 1 instead of losing output silently.
fn write_lines(lines: &[impl AsRef<str>]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    lines
        .iter()
        .try_for_each(|line| writeln!(out, "{}", line.as_ref()))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(format!("cannot write to stdout: {e}")))
}

fn read_private_jwk(path: &Path) -> Result<OwnerPrivateKey, Failure> {
    let text = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?,
    );
    OwnerPrivateKey::from_json(&text).map_err(|e| {
        Failure::new(format!(
            "{} is not a P-384 private JWK: {e}",
            path.display()
        ))
    })
}

/// Share texts from the arguments, or else from stdin, one per line (blank lines skipped).
fn share_texts(arguments: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
    if !arguments.is_empty() {
        return Ok(arguments
            .iter()
            .map(|a| Zeroizing::new(a.clone()))
            .collect());
    }
    let mut texts = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line =
            Zeroizing::new(line.map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?);
        if !line.trim().is_empty() {
            texts.push(line);
        }
        if texts.len() > usize::from(share::MAX_SHARES) {
            return Err(Failure::new("more shares than a set can have (16)"));
        }
    }
    Ok(texts)
}

fn parse_all(texts: &[Zeroizing<String>]) -> Result<Vec<Share>, Failure> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| Share::parse(text, Some(i + 1)).map_err(share_failure))
        .collect()
}

/// The owner key to compare with, from a file or a node's JWKS, when one is given.
fn expected_key(source: &OwnerKeySource) -> Result<Option<OwnerPublicKey>, Failure> {
    if let Some(path) = &source.public_jwk {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
        return only_key(&text).map(Some).map_err(|e| {
            Failure::new(format!(
                "{} holds no usable public key: {e}",
                path.display()
            ))
        });
    }
    let Some(node) = &source.node else {
        return Ok(None);
    };
    let origin =
        super::node_client::node_origin(node).map_err(|e| Failure::new(format!("--node: {e}")))?;
    let url = format!("{origin}/.well-known/jwks.json");
    let text = super::node_client::fetch(&url)
        .map_err(|e| Failure::new(format!("cannot fetch {url}: {e}")))?;
    only_key(&text)
        .map(Some)
        .map_err(|e| Failure::new(format!("{url} holds no usable key: {e}")))
}

/// The one P-384 key of a public JWK, or the one signing key of a JWKS (its encryption key,
/// `use` `enc`, is left aside).
fn only_key(text: &str) -> Result<OwnerPublicKey, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let jwk = match value.get("keys").and_then(|k| k.as_array()) {
        Some(keys) => {
            let signing: Vec<&serde_json::Value> = keys
                .iter()
                .filter(|k| k.get("use").and_then(|u| u.as_str()) != Some("enc"))
                .collect();
            match signing.as_slice() {
                [only] => (*only).clone(),
                _ => return Err(format!("it has {} signing keys, not one", signing.len())),
            }
        }
        None => value,
    };
    OwnerPublicKey::from_json(&jwk.to_string()).map_err(|e| e.to_string())
}

fn combine(args: &CombineArgs) -> Result<(), Failure> {
    let expected = expected_key(&args.expected)?;
    let shares = parse_all(&share_texts(&args.shares)?)?;
    let key = rebuild_key(&shares, expected.as_ref()).map_err(share_failure)?;
    let set_id = shares.first().map(Share::set_id_hex).unwrap_or_default();
    let kid = key.public_key().thumbprint();
    let Some(data_dir) = &args.data_dir else {
        let jwk = key.to_json();
        let text = Zeroizing::new(String::from_utf8_lossy(&jwk).into_owned());
        write_lines(&[text.as_str()])?;
        eprintln!("siteid: rebuilt the key {kid} from set {set_id}; keep this private JWK secret");
        return Ok(());
    };
    store_rebuilt_key(args, data_dir, &key, &set_id)?;
    write_lines(&[kid])
}

/// Wraps the rebuilt key under a new password into a data directory: claims an unclaimed
/// node, or sets the new password on a node that already has this key.
fn store_rebuilt_key(
    args: &CombineArgs,
    data_dir: &Path,
    key: &OwnerPrivateKey,
    set_id: &str,
) -> Result<(), Failure> {
    let node = NodeArgs {
        public_url: None,
        data_dir: Some(data_dir.to_owned()),
        config: None,
    };
    let (settings, store) = open_store(&node)?;
    let audience = node_public_url(&settings, &store)?;
    let kid = key.public_key().thumbprint();
    let existing = store.run_blocking(|c| owner::find(c))?;
    if existing.as_ref().is_some_and(|record| record.kid != kid) {
        return Err(Failure {
            message: "this node already has an owner with another key".into(),
            code: EXIT_ALREADY_CLAIMED,
        });
    }
    let password = new_password(args.password_file.as_deref(), args.p2c)?;
    eprintln!("siteid: wrapping the key ({} iterations)...", args.p2c);
    let (wrapped_key, verifier) = jwe::wrap_private_key(key, password.as_bytes(), args.p2c)
        .map_err(|e| Failure::new(format!("wrapping the key failed: {e}")))?;
    let verifier_hash: [u8; 32] = Sha256::digest(verifier).into();
    let now = SystemClock.now();
    let actor = Actor::local();
    let signatures = OwnerSignatures::for_claim(
        key,
        wrapped_key.compact(),
        &verifier_hash,
        audience.as_str(),
        now,
    );
    if existing.is_none() {
        let (encryption_key, _) = crate::auth::encryption_keys::generate(key, now)
            .map_err(|e| Failure::new(format!("making the encryption key failed: {e}")))?;
        let checked = CheckedClaim {
            public_key: key.public_key(),
            wrapped_key,
            verifier_hash,
            recovery_set: Some(set_id.to_owned()),
            signatures: Some(signatures),
            encryption_key: Some(encryption_key),
        };
        store
            .run_blocking(|c| {
                claim::commit(
                    c,
                    None,
                    &checked,
                    ClaimVia::CommandLine,
                    settings.enrollment,
                    &actor,
                    now,
                )
            })
            .map_err(|e| match e {
                ClaimError::AlreadyClaimed => Failure {
                    message: "this node got an owner meanwhile".into(),
                    code: EXIT_ALREADY_CLAIMED,
                },
                other => Failure::new(other.to_string()),
            })?;
        eprintln!(
            "siteid: restored the identity {kid} into {}",
            data_dir.display()
        );
    } else {
        store.run_blocking(|c| -> Result<(), StoreError> {
            let tx = c.transaction()?;
            // The key stays, so the record is signed again for the new wrapping.
            owner::replace_wrapped_key(
                &tx,
                wrapped_key.compact(),
                &verifier_hash,
                Some(&signatures.record),
                now,
            )?;
            // A node claimed before key histories gets its first statement now.
            if owner::history_len(&tx)? == 0 {
                owner::append_genesis(
                    &tx,
                    &kid,
                    &key.public_key().to_json(),
                    &signatures.statement,
                    now,
                )?;
            }
            let event = AuditEvent::OwnerRecovered {
                kid: kid.clone(),
                session_id: None,
                recovery_set: set_id.to_owned(),
            };
            audit::append(&tx, now, &event, &actor)?;
            tx.commit()?;
            Ok(())
        })?;
        eprintln!("siteid: set a new password for the key {kid}");
    }
    store.close()?;
    Ok(())
}

fn check(args: &CheckArgs) -> Result<(), Failure> {
    let expected = expected_key(&args.expected)?;
    let shares = parse_all(&share_texts(&args.shares)?)?;
    let mut lines = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        lines.push(format!(
            "share {}: ok: set {}, index {}, any {} rebuild the key",
            i + 1,
            share.set_id_hex(),
            share.index,
            share.threshold
        ));
        if let Some(expected) = &expected
            && share.key_check != key_check(expected)
        {
            write_lines(&lines)?;
            return Err(Failure {
                message: format!(
                    "Share {} belongs to another key than {}.",
                    i + 1,
                    expected.thumbprint()
                ),
                code: EXIT_WRONG_KEY,
            });
        }
    }
    match rebuild_key(&shares, expected.as_ref()) {
        Ok(key) => lines.push(format!(
            "the shares rebuild the key {}",
            key.public_key().thumbprint()
        )),
        // Fewer than k shares that belong together are fine to check one by one.
        Err(error) if error.code == ShareErrorCode::TooFew => {
            lines.push(format!("the shares belong together; {}", error.message));
        }
        Err(error) => {
            write_lines(&lines)?;
            return Err(share_failure(error));
        }
    }
    write_lines(&lines)
}
