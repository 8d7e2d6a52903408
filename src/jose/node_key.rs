//! The node's own P-384 key, with which it proves to clients that they reach the node the owner
//! bound (mutual authentication): kept in a file of its own in the data directory (`node.key`,
//! PKCS#8 PEM, mode 0600; never in the database), replaced atomically by a rotation and swapped
//! in a running node (`CurrentNodeKey`), the proof it signs over a sign-in challenge
//! (`siteid-node-proof+jwt`), and the owner key's binding of it (`siteid-node-key+jwt`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::jwk::OwnerPrivateKey;
use super::jws::{CompactJws, VerifyingKey, sign_es384};

/// The key file's name in the data directory.
pub const NODE_KEY_FILE: &str = "node.key";
/// The `typ` of the node's proof over a challenge.
pub const PROOF_TYPE: &str = "siteid-node-proof+jwt";
/// The `typ` of the owner key's binding of the node key.
pub const BINDING_TYPE: &str = "siteid-node-key+jwt";
/// The longest file read as a key, in bytes.
const MAX_KEY_FILE: u64 = 4096;

/// Why the node key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    #[error("cannot read or write the node key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the node key {0} is not a P-384 private key in PKCS#8 PEM; restore it from a backup")]
    DamagedKey(PathBuf),
}

/// The node's key pair.
pub struct NodeKey {
    key: OwnerPrivateKey,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field("kid", &self.verifying.kid)
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// Reads the key from `data_dir`, or makes it (readable by the file's owner only) when there
    /// is none. A damaged file is refused, never replaced: owners bound the key it held.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, NodeKeyError> {
        if let Some(key) = Self::load(data_dir)? {
            return Ok(key);
        }
        let path = data_dir.join(NODE_KEY_FILE);
        let key = NodeKey::generate();
        // create_new: two processes starting at once cannot both write a key.
        match key.write_new(&path) {
            Ok(()) => Ok(key),
            Err(NodeKeyError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Self::load_or_create(data_dir)
            }
            Err(error) => Err(error),
        }
    }

    /// Reads the key from `data_dir`; `None` when there is no key file.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, NodeKeyError> {
        let path = data_dir.join(NODE_KEY_FILE);
        let io = |source| NodeKeyError::Io {
            path: path.clone(),
            source,
        };
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(error)),
        };
        if metadata.len() > MAX_KEY_FILE {
            return Err(NodeKeyError::DamagedKey(path));
        }
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io)?);
        let secret = p384::SecretKey::from_pkcs8_pem(&text)
            .map_err(|_| NodeKeyError::DamagedKey(path.clone()))?;
        let scalar = Zeroizing::new(secret.to_bytes());
        let key = OwnerPrivateKey::from_scalar_bytes(&scalar[..])
            .map_err(|_| NodeKeyError::DamagedKey(path.clone()))?;
        Ok(Some(NodeKey::from_key(key)))
    }

    /// A new key, not yet written anywhere.
    pub fn generate() -> Self {
        NodeKey::from_key(OwnerPrivateKey::generate())
    }

    /// Writes the key as PKCS#8 PEM to a new file at `path` (mode 0600), synced to disk.
    fn write_new(&self, path: &Path) -> Result<(), NodeKeyError> {
        let io = |source| NodeKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let secret = p384::SecretKey::from_slice(self.key.scalar_bytes().as_slice())
            .map_err(|_| NodeKeyError::DamagedKey(path.to_owned()))?;
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| NodeKeyError::DamagedKey(path.to_owned()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(pem.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Writes the key beside `data_dir`'s key file, under a temporary name, for
    /// [`StagedNodeKey::install`] to put in its place; dropped uninstalled, the file is removed.
    pub fn stage(self, data_dir: &Path) -> Result<StagedNodeKey, NodeKeyError> {
        let temporary = data_dir.join(format!(
            "{NODE_KEY_FILE}.{:016x}.tmp",
            rand::random::<u64>()
        ));
        self.write_new(&temporary)?;
        Ok(StagedNodeKey {
            key: Some(self),
            temporary,
            path: data_dir.join(NODE_KEY_FILE),
        })
    }

    fn from_key(key: OwnerPrivateKey) -> Self {
        let verifying = VerifyingKey::new(key.public_key());
        NodeKey { key, verifying }
    }

    /// The public key, for checks and for publishing.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The key's RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.verifying.kid
    }

    /// The node's proof that it holds this key, over a challenge it issued and the nonce the
    /// client sent: a compact JWS whose claims are exactly `aud` (the public URL), `nonce`,
    /// `client_nonce` and `iat`.
    pub fn sign_proof(&self, audience: &str, nonce: &str, client_nonce: &str, now: i64) -> String {
        sign_es384(
            &self.key,
            &serde_json::json!({ "alg": "ES384", "typ": PROOF_TYPE, "kid": self.kid() }),
            &serde_json::json!({
                "aud": audience,
                "nonce": nonce,
                "client_nonce": client_nonce,
                "iat": now,
            }),
        )
    }
}

/// A new node key written under a temporary name beside the key file, not yet in use.
pub struct StagedNodeKey {
    key: Option<NodeKey>,
    temporary: PathBuf,
    path: PathBuf,
}

impl StagedNodeKey {
    /// The staged key.
    pub fn key(&self) -> Option<&NodeKey> {
        self.key.as_ref()
    }

    /// Renames the staged file over the key file (atomically: a reader sees the old key or the
    /// new one, never a mix) and syncs the directory.
    pub fn install(mut self) -> Result<NodeKey, NodeKeyError> {
        std::fs::rename(&self.temporary, &self.path).map_err(|source| NodeKeyError::Io {
            path: self.path.clone(),
            source,
        })?;
        if let Some(directory) = self.path.parent()
            && let Ok(handle) = std::fs::File::open(directory)
        {
            let _ = handle.sync_all();
        }
        self.key
            .take()
            .ok_or_else(|| NodeKeyError::DamagedKey(self.path.clone()))
    }
}

impl Drop for StagedNodeKey {
    fn drop(&mut self) {
        if self.key.is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// The node key in use, which `siteid node-key rotate` may replace while the node runs: read
/// again from the data directory when the stored binding names another key.
#[derive(Debug)]
pub struct CurrentNodeKey {
    data_dir: PathBuf,
    key: RwLock<Arc<NodeKey>>,
}

impl CurrentNodeKey {
    /// The key `key`, read from (or made in) `data_dir`.
    pub fn new(data_dir: &Path, key: NodeKey) -> Self {
        CurrentNodeKey {
            data_dir: data_dir.to_owned(),
            key: RwLock::new(Arc::new(key)),
        }
    }

    /// The key in use now.
    pub fn get(&self) -> Arc<NodeKey> {
        self.key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// [`NodeKey::sign_proof`] with the key in use now.
    pub fn sign_proof(&self, audience: &str, nonce: &str, client_nonce: &str, now: i64) -> String {
        self.get().sign_proof(audience, nonce, client_nonce, now)
    }

    /// Reads the key file again and uses its key if it is `kid` (a rotation installed it);
    /// returns whether the key in use is now `kid`.
    pub fn switch_to(&self, kid: &str) -> Result<bool, NodeKeyError> {
        if self.get().kid() == kid {
            return Ok(true);
        }
        match NodeKey::load(&self.data_dir)? {
            Some(key) if key.kid() == kid => {
                *self.key.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Whether `text` may be a client nonce: 16 to 128 base64url characters.
pub fn is_client_nonce(text: &str) -> bool {
    (16..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The claims of a binding: exactly these members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingClaims {
    aud: String,
    sub: String,
    iat: i64,
}

/// The owner key's binding of the node key `node_kid` at `audience` (the public URL), made on
/// this machine (the command line, tests).
pub fn sign_binding(owner: &OwnerPrivateKey, audience: &str, node_kid: &str, now: i64) -> String {
    sign_es384(
        owner,
        &serde_json::json!({
            "alg": "ES384",
            "typ": BINDING_TYPE,
            "kid": owner.public_key().thumbprint(),
        }),
        &serde_json::json!({ "aud": audience, "sub": node_kid, "iat": now }),
    )
}

/// Checks a binding: signed by `owner_key` (named in its kid), for `audience` and `node_kid`;
/// returns its `iat`. The message completes "the binding ...".
pub fn check_binding(
    binding: &str,
    owner_key: &VerifyingKey,
    audience: &str,
    node_kid: &str,
) -> Result<i64, String> {
    let jws = CompactJws::parse(binding, BINDING_TYPE).map_err(|e| e.to_string())?;
    if jws.header.kid.as_deref() != Some(owner_key.kid.as_str()) {
        return Err("does not name the owner key in its kid".into());
    }
    let claims: BindingClaims = jws.verify_with(owner_key).map_err(|e| e.to_string())?;
    if claims.aud != audience {
        return Err("is for another node (its aud is not this node's public URL)".into());
    }
    if claims.sub != node_kid {
        return Err("binds another key (its sub is not the node key's kid)".into());
    }
    Ok(claims.iat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_readable_by_its_owner_only_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let made = NodeKey::load_or_create(dir.path()).expect("made");
        let again = NodeKey::load_or_create(dir.path()).expect("read");
        assert_eq!(made.kid(), again.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(NODE_KEY_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(dir.path().join(NODE_KEY_FILE)).expect("text");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
        std::fs::write(dir.path().join(NODE_KEY_FILE), "damaged").expect("write");
        assert!(matches!(
            NodeKey::load_or_create(dir.path()),
            Err(NodeKeyError::DamagedKey(_))
        ));
    }

    #[test]
    fn a_staged_key_replaces_the_file_only_when_installed_and_the_running_key_follows() {
        let dir = tempfile::tempdir().expect("dir");
        let first = NodeKey::load_or_create(dir.path()).expect("made");
        let first_kid = first.kid().to_owned();
        let current = CurrentNodeKey::new(dir.path(), first);
        let abandoned = NodeKey::generate().stage(dir.path()).expect("staged");
        let abandoned_kid = abandoned.key().expect("key").kid().to_owned();
        drop(abandoned);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        assert!(!current.switch_to(&abandoned_kid).expect("read"));
        assert_eq!(current.get().kid(), first_kid);

        let staged = NodeKey::generate().stage(dir.path()).expect("staged");
        let next_kid = staged.key().expect("key").kid().to_owned();
        assert!(
            !current.switch_to(&next_kid).expect("read"),
            "not installed yet"
        );
        let installed = staged.install().expect("installed");
        assert_eq!(installed.kid(), next_kid);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(NODE_KEY_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(current.switch_to(&next_kid).expect("read"));
        assert_eq!(current.get().kid(), next_kid);
        let proof = current.sign_proof("https://id.example", "n", "client-nonce-123456", 7);
        let jws = CompactJws::parse(&proof, PROOF_TYPE).expect("proof");
        assert_eq!(jws.header.kid.as_deref(), Some(next_kid.as_str()));
    }

    #[test]
    fn a_binding_holds_only_for_its_owner_key_node_and_key() {
        let dir = tempfile::tempdir().expect("dir");
        let node = NodeKey::load_or_create(dir.path()).expect("key");
        let owner = OwnerPrivateKey::generate();
        let owner_key = VerifyingKey::new(owner.public_key());
        let url = "https://id.example";
        let binding = sign_binding(&owner, url, node.kid(), 1_800_000_000);
        assert_eq!(
            check_binding(&binding, &owner_key, url, node.kid()),
            Ok(1_800_000_000)
        );
        assert!(check_binding(&binding, &owner_key, "https://other.example", node.kid()).is_err());
        assert!(check_binding(&binding, &owner_key, url, "another-kid").is_err());
        let stranger = VerifyingKey::new(OwnerPrivateKey::generate().public_key());
        assert!(check_binding(&binding, &stranger, url, node.kid()).is_err());
    }

    #[test]
    fn the_proof_verifies_with_the_node_key_and_names_both_nonces() {
        let dir = tempfile::tempdir().expect("dir");
        let node = NodeKey::load_or_create(dir.path()).expect("key");
        let proof = node.sign_proof(
            "https://id.example",
            "server-nonce",
            "client-nonce-123456",
            7,
        );
        let jws = CompactJws::parse(&proof, PROOF_TYPE).expect("parses");
        assert_eq!(jws.header.kid.as_deref(), Some(node.kid()));
        let claims: serde_json::Value = jws.verify_with(node.verifying_key()).expect("verifies");
        assert_eq!(
            claims,
            serde_json::json!({
                "aud": "https://id.example",
                "nonce": "server-nonce",
                "client_nonce": "client-nonce-123456",
                "iat": 7,
            })
        );
        assert!(is_client_nonce("client-nonce-123456"));
        assert!(!is_client_nonce("short"));
        assert!(!is_client_nonce("has space in it 12345"));
    }
}
