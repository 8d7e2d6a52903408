//! The node's sealing key: 32 random bytes in a file of its own in the data directory (never
//! in the database), and AES-256-GCM sealing under it for the few secrets the node must be
//! able to read back (a TOTP secret), so that a copy of the database alone does not give them
//! away. A sealed value is a 12-byte random nonce followed by the ciphertext and its tag, bound
//! to what it is for by associated data.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// The key file's name in the data directory.
pub const SEALING_KEY_FILE: &str = "sealing.key";
/// Bytes in the key.
pub const KEY_BYTES: usize = 32;
/// Bytes in a nonce.
pub const NONCE_BYTES: usize = 12;
/// Bytes in a tag.
pub const TAG_BYTES: usize = 16;

/// Why the key could not be had, or a sealed value not opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read or write the sealing key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the sealing key {0} is not {KEY_BYTES} bytes; restore it from a backup")]
    DamagedKey(PathBuf),
    #[error("the sealed value does not open under this node's sealing key")]
    DoesNotOpen,
}

/// The node's sealing key, zeroed when dropped.
pub struct SealingKey(Zeroizing<[u8; KEY_BYTES]>);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// A key that lives in memory only, for values that need not outlive the process (a
    /// passkey ceremony in progress).
    pub fn ephemeral() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut *key);
        SealingKey(key)
    }

    /// Reads the key from `data_dir`, or makes it (readable by the owner of the file only) when
    /// there is none yet. A file of the wrong size is refused, never replaced: the values sealed
    /// under it would be lost.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SealError> {
        let path = data_dir.join(SEALING_KEY_FILE);
        let io = |source| SealError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let key = <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
                    .map_err(|_| SealError::DamagedKey(path.clone()))?;
                Ok(SealingKey(Zeroizing::new(key)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; KEY_BYTES]);
                rand::rngs::OsRng.fill_bytes(key.as_mut());
                let mut options = std::fs::OpenOptions::new();
                // create_new: two processes starting at once cannot both write a key.
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(&path) {
                    Ok(mut file) => {
                        file.write_all(key.as_ref()).map_err(io)?;
                        file.sync_all().map_err(io)?;
                        Ok(SealingKey(key))
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(data_dir)
                    }
                    Err(error) => Err(io(error)),
                }
            }
            Err(error) => Err(io(error)),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.as_ref().into())
    }

    /// Seals `plaintext` for the purpose `purpose` (associated data: a value sealed for one
    /// purpose does not open for another).
    pub fn seal(&self, plaintext: &[u8], purpose: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose,
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM seals any message under 64 GiB"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed for `purpose`.
    pub fn open(&self, sealed: &[u8], purpose: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce = <[u8; NONCE_BYTES]>::try_from(nonce).map_err(|_| SealError::DoesNotOpen)?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_for_its_purpose_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = SealingKey::load_or_create(dir.path()).expect("key");
        let sealed = key.seal(b"a totp secret", b"totp");
        assert_eq!(sealed.len(), NONCE_BYTES + 13 + TAG_BYTES);
        assert_eq!(
            key.open(&sealed, b"totp").expect("opens").as_slice(),
            b"a totp secret"
        );
        assert!(key.open(&sealed, b"other").is_err());
        let mut tampered = sealed.clone();
        tampered[NONCE_BYTES] ^= 1;
        assert!(key.open(&tampered, b"totp").is_err());
        assert!(
            key.open(&sealed[..NONCE_BYTES + TAG_BYTES - 1], b"totp")
                .is_err()
        );
        assert_ne!(
            key.seal(b"a totp secret", b"totp"),
            sealed,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn the_key_is_kept_in_a_private_file_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sealed = SealingKey::load_or_create(dir.path())
            .expect("key")
            .seal(b"x", b"p");
        let again = SealingKey::load_or_create(dir.path()).expect("the same key");
        assert_eq!(again.open(&sealed, b"p").expect("opens").as_slice(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SEALING_KEY_FILE))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another key (another data directory) does not open it.
        let other = tempfile::tempdir().expect("temp dir");
        let stranger = SealingKey::load_or_create(other.path()).expect("key");
        assert!(stranger.open(&sealed, b"p").is_err());
    }

    #[test]
    fn a_damaged_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(SEALING_KEY_FILE);
        std::fs::write(&path, b"too short").expect("write");
        assert!(matches!(
            SealingKey::load_or_create(dir.path()),
            Err(SealError::DamagedKey(_))
        ));
        assert_eq!(std::fs::read(&path).expect("read"), b"too short");
    }
}
