//! Which node a client trusts: the owner kid it checks a node from (`--pin`, else the one kept
//! for that origin at first contact, else the one the node publishes now), the file that keeps
//! those kids (`known_nodes.json`), and the checks of the node key's binding and of the node's
//! proof over a fresh nonce of the client's. `siteid login` uses it, and so will the agent.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use super::owner_key::check_published;
use crate::jose::jws::{CompactJws, VerifyingKey};

/// The file's name under the configuration directory.
const KNOWN_NODES_FILE: &str = "known_nodes.json";
/// The largest known-nodes file read, in bytes.
const MAX_KNOWN_NODES_FILE: u64 = 1024 * 1024;
/// How much older than the latest binding seen a node-key binding may be before it is taken
/// for a replaced key shown again, in seconds (bindings are signed on devices whose clocks
/// the node allows 300 s either way).
pub const BINDING_ROLLBACK_MARGIN: i64 = 600;

/// How far the node's proof may be from the client's clock, in seconds.
pub const PROOF_FRESHNESS: i64 = 300;

/// The command-line options that say which owner key a node is checked from.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// The owner key's kid you trust. Without it, the kid kept for this node at first contact
    /// is used, and at first contact the kid the node publishes (then kept). Either way the node
    /// must show that this key (or one its history leads to) bound the node's own key, and sign
    /// a fresh nonce with it; it is refused otherwise.
    #[arg(long, allow_hyphen_values = true)]
    pub pin: Option<String>,
    /// The file of owner kids kept per node [default: $XDG_CONFIG_HOME/siteid/known_nodes.json,
    /// else ~/.config/siteid/known_nodes.json].
    #[arg(long, env = "SITEID_KNOWN_NODES")]
    pub known_nodes: Option<PathBuf>,
}

impl TrustArgs {
    /// The known-nodes file these options name, or the default one.
    pub fn known_nodes_path(&self) -> Result<PathBuf, String> {
        match &self.known_nodes {
            Some(path) => Ok(path.clone()),
            None => default_known_nodes_path(
                std::env::var_os("XDG_CONFIG_HOME"),
                std::env::var_os("HOME"),
            ),
        }
    }
}

/// `$XDG_CONFIG_HOME/siteid/known_nodes.json`, else `$HOME/.config/siteid/known_nodes.json`;
/// relative or empty values are ignored, as the XDG base directory specification says.
fn default_known_nodes_path(
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf, String> {
    let absolute = |value: Option<std::ffi::OsString>| {
        value.map(PathBuf::from).filter(|path| path.is_absolute())
    };
    absolute(xdg_config_home)
        .or_else(|| absolute(home).map(|home| home.join(".config")))
        .map(|config| config.join("siteid").join(KNOWN_NODES_FILE))
        .ok_or_else(|| {
            "neither XDG_CONFIG_HOME nor HOME names a directory for the known-nodes file; give \
             --known-nodes FILE"
                .to_owned()
        })
}

/// What is kept about one node: the owner kid it is checked from and the node key last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownNode {
    pub owner_kid: String,
    pub node_kid: String,
    /// When the node was first verified (seconds since the epoch).
    pub first_seen: i64,
    /// When it was last verified.
    pub last_verified: i64,
    /// The latest node-key binding seen for it (its `iat`): an older one is a replaced node
    /// key shown again. Absent in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_iat: Option<i64>,
}

/// The known-nodes file: one entry per origin.
#[derive(Debug)]
pub struct KnownNodes {
    path: PathBuf,
    nodes: BTreeMap<String, KnownNode>,
}

impl KnownNodes {
    /// Reads the file at `path`; a missing file is an empty one. A file that is not what this
    /// program writes is refused, never overwritten: it may be all that pins a node.
    pub fn load(path: &Path) -> Result<Self, String> {
        let unreadable = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
        // Not through a symbolic link, and without waiting on a FIFO: only a regular file,
        // which no other user may write, is the trust it holds.
        let opened = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
        };
        let file = match opened {
            Ok(file) => {
                use std::os::unix::fs::PermissionsExt;
                let metadata = file.metadata().map_err(|e| unreadable(&e))?;
                if !metadata.is_file() {
                    return Err(unreadable(&"it is not a regular file"));
                }
                if metadata.permissions().mode() & 0o022 != 0 {
                    return Err(unreadable(
                        &"other users may write it (its trust would be theirs); chmod 600 it",
                    ));
                }
                file
            }
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                return Err(unreadable(&"it is a symbolic link"));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KnownNodes {
                    path: path.to_owned(),
                    nodes: BTreeMap::new(),
                });
            }
            Err(error) => return Err(unreadable(&error)),
        };
        let mut text = Vec::new();
        file.take(MAX_KNOWN_NODES_FILE + 1)
            .read_to_end(&mut text)
            .map_err(|e| unreadable(&e))?;
        if text.len() as u64 > MAX_KNOWN_NODES_FILE {
            return Err(unreadable(&"it is larger than a known-nodes file"));
        }
        let nodes: BTreeMap<String, KnownNode> = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{} is not a known-nodes file ({e}); fix or remove it",
                path.display()
            )
        })?;
        Ok(KnownNodes {
            path: path.to_owned(),
            nodes,
        })
    }

    /// The file this was read from and is saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is kept for `origin`.
    pub fn get(&self, origin: &str) -> Option<&KnownNode> {
        self.nodes.get(origin)
    }

    /// Keeps what a verification of `origin` established at `now`.
    pub fn remember(&mut self, origin: &str, node: &TrustedNode, now: i64) {
        let kept = self.nodes.get(origin);
        let first_seen = kept.map_or(now, |kept| kept.first_seen);
        let binding_iat = kept
            .and_then(|kept| kept.binding_iat)
            .map_or(node.bound_at, |seen| seen.max(node.bound_at));
        self.nodes.insert(
            origin.to_owned(),
            KnownNode {
                owner_kid: node.owner_kid.clone(),
                node_kid: node.node_kid.clone(),
                first_seen,
                last_verified: now,
                binding_iat: Some(binding_iat),
            },
        );
    }

    /// Writes the file atomically (a temporary file beside it, then a rename), readable by its
    /// owner only, making its directory (mode 0700) when needed.
    pub fn save(&self) -> Result<(), String> {
        let failed =
            |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", self.path.display());
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&directory).map_err(|e| failed(&e))?;
        let mut text = serde_json::to_vec_pretty(&self.nodes).map_err(|e| failed(&e))?;
        text.push(b'\n');
        let name = self
            .path
            .file_name()
            .ok_or_else(|| failed(&"the path names no file"))?;
        let mut temporary_name = name.to_owned();
        temporary_name.push(format!(".{:016x}.tmp", rand::random::<u64>()));
        let temporary = directory.join(temporary_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options
            .open(&temporary)
            .and_then(|mut file| {
                file.write_all(&text)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(failed(&error));
        }
        // The rename is durable once the directory is written.
        if let Ok(handle) = std::fs::File::open(&directory) {
            let _ = handle.sync_all();
        }
        Ok(())
    }
}

/// Where the owner kid a node was checked from came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustSource {
    /// `--pin`.
    Pinned,
    /// The kid kept for the origin.
    Known,
    /// First contact: the kid the node publishes now.
    FirstContact,
}

/// A node whose key the owner key bound: what a client checks the node's proofs with.
#[derive(Debug, Clone)]
pub struct TrustedNode {
    /// The origin it was checked for (the `aud` of its binding and of its proofs).
    pub origin: String,
    /// The owner key's kid now (the trusted one, or one its history leads to).
    pub owner_kid: String,
    /// The node key's kid.
    pub node_kid: String,
    pub node_key: VerifyingKey,
    pub source: TrustSource,
    /// The owner kid the check started from.
    pub trusted_kid: String,
    /// When the owner key bound the node key (the binding's `iat`).
    pub bound_at: i64,
}

/// Why a node was not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeTrustError {
    /// A document could not be fetched.
    #[error("{0}")]
    Unreachable(String),
    /// The node is not the one the owner key vouches for.
    #[error("{0}")]
    Refused(String),
}

/// The claims of the node's proof: exactly these members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeProofClaims {
    aud: String,
    nonce: String,
    client_nonce: String,
    iat: i64,
}

impl TrustedNode {
    /// Checks the node's proof over a challenge: signed by the node key (named in its kid), for
    /// this origin, over the challenge's `nonce` and the client's own `client_nonce`, made
    /// within five minutes of `now`. The message completes "the node ...".
    pub fn check_proof(
        &self,
        node_signature: &str,
        nonce: &str,
        client_nonce: &str,
        now: i64,
    ) -> Result<(), String> {
        let jws = CompactJws::parse(node_signature, crate::jose::node_key::PROOF_TYPE)
            .map_err(|e| format!("sent a proof that {e}"))?;
        if jws.header.kid.as_deref() != Some(self.node_kid.as_str()) {
            return Err("signed its proof with another key than the bound node key".into());
        }
        let claims: NodeProofClaims = jws
            .verify_with(&self.node_key)
            .map_err(|e| format!("sent a proof that {e}"))?;
        if claims.aud != self.origin {
            return Err("sent a proof for another URL".into());
        }
        if claims.nonce != nonce || claims.client_nonce != client_nonce {
            return Err("sent a proof over other nonces than ours".into());
        }
        if (claims.iat - now).abs() > PROOF_FRESHNESS {
            return Err(format!(
                "sent a proof that is not fresh (its iat is more than {PROOF_FRESHNESS} s from \
                 our clock)"
            ));
        }
        Ok(())
    }
}

/// Fetches what the node at `origin` publishes (through `fetch`, which GETs a URL) and checks
/// that the owner key it is trusted from (`pin`, else the kid `known` keeps for it, else the
/// one it publishes now; `known` is `None` when no file is at hand) leads to the current owner key, and that this key bound the node's
/// own key for `origin`. The node's proof is checked apart, with [`TrustedNode::check_proof`].
pub fn trusted_node_key(
    fetch: &dyn Fn(&str) -> Result<String, String>,
    origin: &str,
    pin: Option<&str>,
    known: Option<&KnownNodes>,
) -> Result<TrustedNode, NodeTrustError> {
    let get = |path: &str| {
        let url = format!("{origin}{path}");
        fetch(&url).map_err(|e| NodeTrustError::Unreachable(format!("cannot fetch {url}: {e}")))
    };
    let history_text = get("/.well-known/siteid/keys.json")?;
    let jwks_text = get("/.well-known/jwks.json")?;
    // Older nodes have no node key; they are refused below, with that reason.
    let node_key_text = get("/.well-known/siteid/node-key.json").ok();
    let kept = known.and_then(|known| known.get(origin));
    let (trusted_kid, source) = match (pin, kept) {
        (Some(pin), _) => (pin.to_owned(), TrustSource::Pinned),
        (None, Some(kept)) => (kept.owner_kid.clone(), TrustSource::Known),
        (None, None) => (
            published_owner_kid(&history_text).map_err(NodeTrustError::Refused)?,
            TrustSource::FirstContact,
        ),
    };
    let refused = |why: String| {
        let advice = match (source, known) {
            (TrustSource::Known, Some(known)) => format!(
                " (the owner key {trusted_kid} was kept for {origin} in {} at first contact; if \
                 the owner really started again with a new key, check the new kid with them and \
                 pass it with --pin)",
                known.path().display()
            ),
            _ => String::new(),
        };
        NodeTrustError::Refused(format!(
            "{origin} is not the node the owner key {trusted_kid} vouches for: {why}{advice}"
        ))
    };
    let published = check_published(
        &history_text,
        &jwks_text,
        node_key_text.as_deref(),
        &trusted_kid,
        origin,
    )
    .map_err(refused)?;
    let Some(node_key) = published.node_key else {
        return Err(refused(match node_key_text {
            None => "it publishes no node key (/.well-known/siteid/node-key.json), so it cannot \
                     prove who it is; update siteid on it"
                .to_owned(),
            Some(_) => format!(
                "the owner key {} has not bound the node's own key (node-key.json has no \
                 binding): the owner must sign in once in the browser with the password, which \
                 binds it, or run `siteid node-key rotate` on the server",
                published.owner_kid
            ),
        }));
    };
    let bound_at = published.node_key_bound_at.unwrap_or_default();
    // A binding older than one seen before is a replaced node key shown again (by someone who
    // kept the old key file and documents); the margin allows for the signers' clocks.
    if let Some(seen) = kept.and_then(|kept| kept.binding_iat)
        && bound_at + BINDING_ROLLBACK_MARGIN < seen
    {
        return Err(refused(format!(
            "it shows a binding of its node key ({}) older than one seen here before: a node \
             key replaced since (`siteid node-key rotate`), shown again",
            node_key.kid
        )));
    }
    Ok(TrustedNode {
        origin: origin.to_owned(),
        owner_kid: published.owner_kid,
        node_kid: node_key.kid.clone(),
        node_key,
        source,
        trusted_kid,
        bound_at,
    })
}

/// The current owner kid a key history names (its last entry's); the whole history is checked
/// afterwards.
fn published_owner_kid(history_text: &str) -> Result<String, String> {
    let history: serde_json::Value = serde_json::from_str(history_text)
        .map_err(|e| format!("the key history is not JSON: {e}"))?;
    history
        .get("keys")
        .and_then(|keys| keys.as_array())
        .and_then(|keys| keys.last())
        .and_then(|key| key.get("kid"))
        .and_then(|kid| kid.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            "it publishes no key history (a node claimed before key histories): check it once \
             with --pin KID"
                .to_owned()
        })
}

/// A WebSocket's challenge, checked: reads the socket's challenge, asks for it again with a
/// fresh nonce of ours, and checks the node's proof over both with `trusted` before anything is
/// signed or sent. Returns the socket's nonce. `read` returns the next JSON text frame (within
/// the caller's deadline).
pub fn checked_socket_challenge<S: std::io::Read + std::io::Write>(
    socket: &mut tungstenite::WebSocket<S>,
    trusted: &TrustedNode,
    read: &mut dyn FnMut(&mut tungstenite::WebSocket<S>) -> Result<serde_json::Value, String>,
    now: i64,
) -> Result<String, String> {
    let first = read(socket)?;
    let nonce = first["nonce"]
        .as_str()
        .ok_or("the socket sent no challenge")?
        .to_owned();
    let client_nonce = crate::jose::b64::encode(&rand::random::<[u8; 32]>());
    let ask = serde_json::json!({"type": "challenge", "client_nonce": client_nonce});
    socket
        .send(tungstenite::Message::text(ask.to_string()))
        .map_err(|e| format!("the WebSocket failed: {e}"))?;
    let proved = read(socket)?;
    if proved["nonce"].as_str() != Some(nonce.as_str()) {
        return Err("the socket answered another challenge".into());
    }
    let proof = proved["node_signature"]
        .as_str()
        .ok_or("the node did not sign our nonce on the socket")?;
    trusted
        .check_proof(proof, &nonce, &client_nonce, now)
        .map_err(|why| format!("the node failed mutual authentication: it {why}"))?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::auth::key_history::{Reason, sign_statement};
    use crate::jose::jwk::OwnerPrivateKey;
    use crate::jose::node_key::{NodeKey, sign_binding};

    const ORIGIN: &str = "https://id.example";
    const NOW: i64 = 1_800_000_000;

    /// What a node publishes, built in memory: its owner keys (oldest first, each introduced by
    /// the one before), its node key and whether the current owner key bound it.
    struct PublishedNode {
        owners: Vec<OwnerPrivateKey>,
        node_key: NodeKey,
        bound: bool,
        /// The binding's `iat`.
        bound_at: i64,
        _dir: tempfile::TempDir,
    }

    impl PublishedNode {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("dir");
            PublishedNode {
                owners: vec![OwnerPrivateKey::generate()],
                node_key: NodeKey::load_or_create(dir.path()).expect("node key"),
                bound: true,
                bound_at: NOW,
                _dir: dir,
            }
        }

        fn rotate(&mut self) {
            self.owners.push(OwnerPrivateKey::generate());
        }

        fn owner_kid(&self, index: usize) -> String {
            self.owners[index].public_key().thumbprint()
        }

        fn documents(&self) -> HashMap<String, String> {
            let mut keys = Vec::new();
            for (seq, key) in self.owners.iter().enumerate() {
                let kid = key.public_key().thumbprint();
                let statement = match seq {
                    0 => sign_statement(key, &kid, None, 0, Reason::Genesis, NOW),
                    _ => {
                        let old = &self.owners[seq - 1];
                        let old_kid = old.public_key().thumbprint();
                        sign_statement(old, &kid, Some(&old_kid), seq as u32, Reason::Rotation, NOW)
                    }
                };
                let jwk: serde_json::Value =
                    serde_json::from_str(&key.public_key().to_json()).expect("jwk");
                keys.push(json!({"kid": kid, "jwk": jwk, "since": NOW, "statement": statement}));
            }
            let current = self.owners.last().expect("an owner key");
            let node = self.node_key.verifying_key();
            let mut node_jwk: serde_json::Value =
                serde_json::from_str(&node.public.to_json()).expect("jwk");
            node_jwk["kid"] = json!(node.kid);
            node_jwk["use"] = json!("sig");
            node_jwk["alg"] = json!("ES384");
            let mut owner_jwk: serde_json::Value =
                serde_json::from_str(&current.public_key().to_json()).expect("jwk");
            owner_jwk["kid"] = json!(current.public_key().thumbprint());
            let mut jwks = vec![owner_jwk];
            if self.bound {
                jwks.push(node_jwk.clone());
            }
            let binding = self
                .bound
                .then(|| sign_binding(current, ORIGIN, &node.kid, self.bound_at));
            HashMap::from([
                (
                    format!("{ORIGIN}/.well-known/siteid/keys.json"),
                    json!({ "keys": keys }).to_string(),
                ),
                (
                    format!("{ORIGIN}/.well-known/jwks.json"),
                    json!({ "keys": jwks }).to_string(),
                ),
                (
                    format!("{ORIGIN}/.well-known/siteid/node-key.json"),
                    json!({"kid": node.kid, "jwk": node_jwk, "binding": binding}).to_string(),
                ),
            ])
        }

        fn trust(
            &self,
            pin: Option<&str>,
            known: &KnownNodes,
        ) -> Result<TrustedNode, NodeTrustError> {
            let documents = self.documents();
            let fetch = move |url: &str| {
                documents
                    .get(url)
                    .cloned()
                    .ok_or_else(|| "the node answered 404 Not Found".to_owned())
            };
            trusted_node_key(&fetch, ORIGIN, pin, Some(known))
        }
    }

    fn empty_known(dir: &Path) -> KnownNodes {
        KnownNodes::load(&dir.join("nested").join(KNOWN_NODES_FILE)).expect("empty")
    }

    #[test]
    fn first_contact_trusts_the_published_owner_key_and_keeps_it() {
        let dir = tempfile::tempdir().expect("dir");
        let node = PublishedNode::new();
        let mut known = empty_known(dir.path());
        let trusted = node.trust(None, &known).expect("trusted");
        assert_eq!(trusted.source, TrustSource::FirstContact);
        assert_eq!(trusted.owner_kid, node.owner_kid(0));
        assert_eq!(trusted.node_kid, node.node_key.kid());
        known.remember(ORIGIN, &trusted, NOW);
        known.save().expect("saved");

        let again = KnownNodes::load(known.path()).expect("read back");
        assert_eq!(
            again.get(ORIGIN),
            Some(&KnownNode {
                owner_kid: node.owner_kid(0),
                node_kid: node.node_key.kid().to_owned(),
                first_seen: NOW,
                last_verified: NOW,
                binding_iat: Some(NOW),
            })
        );
        assert_eq!(
            node.trust(None, &again).expect("trusted").source,
            TrustSource::Known
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &Path| {
                std::fs::metadata(path)
                    .expect("exists")
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode(known.path()), 0o600);
            assert_eq!(mode(&dir.path().join("nested")), 0o700);
        }
        let leftovers = std::fs::read_dir(dir.path().join("nested"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn another_owner_key_at_a_known_origin_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let first = PublishedNode::new();
        let mut known = empty_known(dir.path());
        let trusted = first.trust(None, &known).expect("trusted");
        known.remember(ORIGIN, &trusted, NOW);
        let impostor = PublishedNode::new();
        let refused = impostor.trust(None, &known).expect_err("refused");
        let NodeTrustError::Refused(message) = refused else {
            panic!("not a refusal: {refused:?}");
        };
        assert!(message.contains("is not in the history"), "{message}");
        assert!(message.contains("--pin"), "{message}");
        // A pin of the impostor's own key is the owner's explicit word.
        assert!(impostor.trust(Some(&impostor.owner_kid(0)), &known).is_ok());
    }

    #[test]
    fn a_rotation_since_first_contact_is_followed_through_the_history() {
        let dir = tempfile::tempdir().expect("dir");
        let mut node = PublishedNode::new();
        let mut known = empty_known(dir.path());
        let trusted = node.trust(None, &known).expect("trusted");
        known.remember(ORIGIN, &trusted, NOW);
        node.rotate();
        let followed = node.trust(None, &known).expect("followed");
        assert_eq!(followed.trusted_kid, node.owner_kid(0));
        assert_eq!(followed.owner_kid, node.owner_kid(1));
        known.remember(ORIGIN, &followed, NOW + 5);
        let kept = known.get(ORIGIN).expect("kept");
        assert_eq!(
            (kept.owner_kid.as_str(), kept.first_seen, kept.last_verified),
            (node.owner_kid(1).as_str(), NOW, NOW + 5)
        );
    }

    #[test]
    fn an_unbound_node_is_refused_with_what_the_owner_can_do() {
        let dir = tempfile::tempdir().expect("dir");
        let mut node = PublishedNode::new();
        node.bound = false;
        let refused = node
            .trust(None, &empty_known(dir.path()))
            .expect_err("refused");
        assert!(
            refused.to_string().contains("sign in once in the browser"),
            "{refused}"
        );
    }

    #[test]
    fn a_pin_the_history_does_not_lead_from_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let node = PublishedNode::new();
        let stranger = OwnerPrivateKey::generate().public_key().thumbprint();
        assert!(matches!(
            node.trust(Some(&stranger), &empty_known(dir.path())),
            Err(NodeTrustError::Refused(_))
        ));
    }

    #[test]
    fn a_proof_holds_only_for_the_bound_key_this_origin_both_nonces_and_five_minutes() {
        let dir = tempfile::tempdir().expect("dir");
        let node = PublishedNode::new();
        let trusted = node.trust(None, &empty_known(dir.path())).expect("trusted");
        let client_nonce = "Y2xpZW50LW5vbmNlLTEyMzQ1Ng";
        let proof = node.node_key.sign_proof(ORIGIN, "nonce", client_nonce, NOW);
        assert_eq!(
            trusted.check_proof(&proof, "nonce", client_nonce, NOW + 299),
            Ok(())
        );
        assert!(
            trusted
                .check_proof(&proof, "nonce", client_nonce, NOW + 301)
                .is_err()
        );
        assert!(
            trusted
                .check_proof(&proof, "other", client_nonce, NOW)
                .is_err()
        );
        assert!(
            trusted
                .check_proof(&proof, "nonce", "another-nonce-12345", NOW)
                .is_err()
        );
        let elsewhere =
            node.node_key
                .sign_proof("https://other.example", "nonce", client_nonce, NOW);
        assert!(
            trusted
                .check_proof(&elsewhere, "nonce", client_nonce, NOW)
                .is_err()
        );
        let other_dir = tempfile::tempdir().expect("dir");
        let foreign = NodeKey::load_or_create(other_dir.path()).expect("key");
        let forged = foreign.sign_proof(ORIGIN, "nonce", client_nonce, NOW);
        assert!(
            trusted
                .check_proof(&forged, "nonce", client_nonce, NOW)
                .is_err()
        );
    }

    #[test]
    fn a_known_nodes_file_others_could_write_or_that_is_no_regular_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(KNOWN_NODES_FILE);
        std::fs::write(&path, "{}").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(KnownNodes::load(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).expect("chmod");
        assert!(KnownNodes::load(&path).is_err(), "group and world writable");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(KnownNodes::load(&link).is_err(), "a symbolic link");
        let fifo = dir.path().join("fifo.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs (coreutils)");
        assert!(made.success());
        // Opened without waiting for a writer, then refused.
        assert!(KnownNodes::load(&fifo).is_err(), "a FIFO");
    }

    #[test]
    fn a_damaged_known_nodes_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(KNOWN_NODES_FILE);
        std::fs::write(&path, "{\"https://id.example\": {\"owner_kid\": 1}}").expect("write");
        assert!(KnownNodes::load(&path).is_err());
        std::fs::write(&path, "[]").expect("write");
        assert!(KnownNodes::load(&path).is_err());
    }

    #[test]
    fn the_default_file_follows_xdg_config_home_then_home() {
        let path = |xdg: Option<&str>, home: Option<&str>| {
            default_known_nodes_path(xdg.map(Into::into), home.map(Into::into))
        };
        assert_eq!(
            path(Some("/x"), Some("/h")),
            Ok(PathBuf::from("/x/siteid/known_nodes.json"))
        );
        assert_eq!(
            path(Some("relative"), Some("/h")),
            Ok(PathBuf::from("/h/.config/siteid/known_nodes.json"))
        );
        assert_eq!(
            path(None, Some("/h")),
            Ok(PathBuf::from("/h/.config/siteid/known_nodes.json"))
        );
        assert!(path(None, None).is_err());
    }

    #[test]
    fn a_node_key_binding_older_than_one_seen_before_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let mut known = empty_known(dir.path());
        let mut node = PublishedNode::new();
        let trusted = node.trust(None, &known).expect("trusted");
        known.remember(ORIGIN, &trusted, NOW);
        // The node key was replaced since with a later binding; the old key shown again (its
        // binding as it was, long before) is refused, a signer's clock a little behind is not.
        node.bound_at = NOW - 2 * BINDING_ROLLBACK_MARGIN;
        let refused = node.trust(None, &known).expect_err("refused");
        assert!(
            refused.to_string().contains("older than one seen"),
            "{refused}"
        );
        node.bound_at = NOW - BINDING_ROLLBACK_MARGIN / 2;
        assert!(node.trust(None, &known).is_ok());
    }
}
