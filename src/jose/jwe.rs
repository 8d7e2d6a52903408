//! The owner's wrapped key: a PBES2-HS512+A256KW / A256GCM JWE (RFC 7516, RFC 7518 §4.8)
//! whose plaintext is the private JWK, and the unlock verifier derived from the same KEK.
//!
//! The server only parses and checks the structure of these JWEs; unwrapping is for the CLI,
//! tests and recovery tools, which hold the password.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use super::jwk::{JwkError, OwnerPrivateKey};
use super::{b64, keywrap};

/// The only key-management algorithm accepted.
pub const KEY_ALG: &str = "PBES2-HS512+A256KW";
/// The only content-encryption algorithm accepted.
pub const CONTENT_ENC: &str = "A256GCM";
/// The content type of the plaintext.
pub const CONTENT_TYPE: &str = "jwk+json";
/// The fewest PBKDF2 iterations accepted (OWASP's 2023 floor for PBKDF2-HMAC-SHA512).
pub const MIN_P2C: u32 = 210_000;
/// The most PBKDF2 iterations accepted, so that a hostile value cannot stall a client.
pub const MAX_P2C: u32 = 10_000_000;
/// The iteration count for new keys.
pub const DEFAULT_P2C: u32 = 600_000;
/// The shortest salt input accepted, in bytes.
pub const MIN_P2S_LEN: usize = 16;
/// The longest salt input accepted, in bytes.
pub const MAX_P2S_LEN: usize = 64;
/// The salt length used for new keys, in bytes.
pub const NEW_P2S_LEN: usize = 16;
/// The largest compact JWE accepted, in bytes.
pub const MAX_COMPACT_LEN: usize = 4096;
/// The largest ciphertext accepted, in bytes (a P-384 private JWK is about 200).
pub const MAX_CIPHERTEXT_LEN: usize = 1024;
/// The message the unlock verifier authenticates.
pub const VERIFIER_MESSAGE: &[u8] = b"siteid unlock verifier v1";

const ENCRYPTED_KEY_LEN: usize = 40;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const CEK_LEN: usize = 32;

/// Why a wrapped key was refused. Messages complete the sentence "the wrapped key ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    #[error("is longer than {MAX_COMPACT_LEN} bytes")]
    TooLong,
    #[error("is not a JWE in compact serialization (five base64url parts separated by dots)")]
    NotCompact,
    #[error("has a {0} that {1}")]
    BadPart(&'static str, String),
    #[error(
        "has a protected header that is not a JSON object of alg, enc, cty, p2s, p2c and an optional kid: {0}"
    )]
    BadHeader(String),
    #[error("must use alg {KEY_ALG}, not {0:?}")]
    WrongAlgorithm(String),
    #[error("must use enc {CONTENT_ENC}, not {0:?}")]
    WrongEncryption(String),
    #[error("must have cty {CONTENT_TYPE}, not {0:?}")]
    WrongContentType(String),
    #[error("must have a p2s of {MIN_P2S_LEN} to {MAX_P2S_LEN} bytes")]
    BadSalt,
    #[error("must have a p2c from {MIN_P2C} to {MAX_P2C}, not {0}")]
    BadIterationCount(u64),
    #[error("could not be decrypted: wrong password or damaged data")]
    DecryptionFailed,
    #[error("decrypts to a key that {0}")]
    BadPlaintext(JwkError),
}

/// The protected header members. Anything else (zip, crit, jku, ...) is refused, and so is a
/// `kid` of `null`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct ProtectedHeader {
    alg: String,
    enc: String,
    cty: String,
    p2s: String,
    p2c: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::present"
    )]
    kid: Option<String>,
}

/// The key-management algorithm of a key wrapped under a derived KEK (a passkey's PRF copy of
/// the owner key, an encryption key under the owner key's KEK): AES key wrap.
pub const PRF_KEY_ALG: &str = "A256KW";

/// The protected header of a [`KwWrappedKey`]: exactly these members.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct KwHeader {
    alg: String,
    enc: String,
    cty: String,
    kid: String,
}

/// A structurally valid private key wrapped under a derived KEK (`A256KW`/`A256GCM`, `cty`
/// `jwk+json`, the wrapped key's `kid`): a passkey's PRF copy of the owner key, or an
/// encryption key under the owner key's KEK. The node cannot open either: their KEKs never
/// reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KwWrappedKey {
    compact: String,
    kid: String,
}

impl KwWrappedKey {
    /// Checks every structural rule of the format; nothing is decrypted.
    pub fn parse(compact: &str) -> Result<Self, JweError> {
        let header_bytes = check_compact(compact)?;
        let header: KwHeader = serde_json::from_slice(&header_bytes).map_err(|e| {
            JweError::BadHeader(format!("(a PRF copy has alg, enc, cty and kid) {e}"))
        })?;
        if header.alg != PRF_KEY_ALG {
            return Err(JweError::BadHeader(format!(
                "a PRF copy must use alg {PRF_KEY_ALG}, not {:?}",
                header.alg
            )));
        }
        check_content(&header.enc, &header.cty)?;
        Ok(KwWrappedKey {
            compact: compact.to_owned(),
            kid: header.kid,
        })
    }

    /// The JWE exactly as received.
    pub fn compact(&self) -> &str {
        &self.compact
    }

    /// The kid of the key it holds, as its header names it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Decrypts the private key with `kek` and checks that it is the key the header names.
    pub fn open(&self, kek: &[u8; 32]) -> Result<OwnerPrivateKey, JweError> {
        let plaintext = open_compact(&self.compact, kek)?;
        let key = OwnerPrivateKey::from_json(&plaintext).map_err(JweError::BadPlaintext)?;
        if key.public_key().thumbprint() != self.kid {
            return Err(JweError::BadHeader(
                "names another key in its kid than the one it holds".into(),
            ));
        }
        Ok(key)
    }
}

/// A structurally valid wrapped key. Holding one says nothing about the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    compact: String,
    p2s: Vec<u8>,
    p2c: u32,
    kid: Option<String>,
}

impl WrappedKey {
    /// Checks every structural rule of the format without decrypting anything.
    pub fn parse(compact: &str) -> Result<Self, JweError> {
        let header_bytes = check_compact(compact)?;
        let header: ProtectedHeader = serde_json::from_slice(&header_bytes)
            .map_err(|e| JweError::BadHeader(e.to_string()))?;
        if header.alg != KEY_ALG {
            return Err(JweError::WrongAlgorithm(header.alg));
        }
        check_content(&header.enc, &header.cty)?;
        let p2s = b64::decode(&header.p2s).map_err(|_| JweError::BadSalt)?;
        if !(MIN_P2S_LEN..=MAX_P2S_LEN).contains(&p2s.len()) {
            return Err(JweError::BadSalt);
        }
        let p2c = u32::try_from(header.p2c)
            .ok()
            .filter(|c| (MIN_P2C..=MAX_P2C).contains(c))
            .ok_or(JweError::BadIterationCount(header.p2c))?;
        Ok(WrappedKey {
            compact: compact.to_owned(),
            p2s,
            p2c,
            kid: header.kid,
        })
    }

    /// The JWE exactly as received.
    pub fn compact(&self) -> &str {
        &self.compact
    }

    /// The PBES2 salt input, base64url.
    pub fn p2s(&self) -> String {
        b64::encode(&self.p2s)
    }

    /// The PBKDF2 iteration count.
    pub fn p2c(&self) -> u32 {
        self.p2c
    }

    /// The optional kid header member.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Derives the KEK from the password with this JWE's salt and iteration count.
    pub fn derive_kek(&self, password: &[u8]) -> Kek {
        Kek::derive(password, &self.p2s, self.p2c)
    }

    /// Decrypts the private key with an already derived KEK and checks that it is a
    /// consistent P-384 private JWK.
    pub fn unwrap_with_kek(&self, kek: &Kek) -> Result<OwnerPrivateKey, JweError> {
        let plaintext = open_compact(&self.compact, kek.bytes())?;
        OwnerPrivateKey::from_json(&plaintext).map_err(JweError::BadPlaintext)
    }

    /// Derives the KEK from the password and decrypts the private key.
    pub fn unwrap_with_password(&self, password: &[u8]) -> Result<OwnerPrivateKey, JweError> {
        self.unwrap_with_kek(&self.derive_kek(password))
    }
}

/// Decrypts a structurally checked compact JWE whose CEK is wrapped under `kek` (A256KW) and
/// whose content is A256GCM; the plaintext is zeroized on drop.
fn open_compact(compact: &str, kek: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, JweError> {
    let mut parts = compact.split('.');
    let (Some(protected), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(JweError::NotCompact);
    };
    let encrypted_key = decode_part("encrypted key", encrypted_key)?;
    if encrypted_key.len() != ENCRYPTED_KEY_LEN {
        return Err(JweError::DecryptionFailed);
    }
    let cek = Zeroizing::new(
        keywrap::unwrap(kek, &encrypted_key).map_err(|_| JweError::DecryptionFailed)?,
    );
    let iv: [u8; IV_LEN] = decode_part("initialization vector", iv)?
        .try_into()
        .map_err(|_| JweError::NotCompact)?;
    let tag: [u8; TAG_LEN] = decode_part("authentication tag", tag)?
        .try_into()
        .map_err(|_| JweError::NotCompact)?;
    let mut plaintext = Zeroizing::new(decode_part("ciphertext", ciphertext)?);
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| JweError::DecryptionFailed)?;
    cipher
        .decrypt_in_place_detached(
            &Nonce::from(iv),
            protected.as_bytes(),
            &mut plaintext,
            &Tag::from(tag),
        )
        .map_err(|_| JweError::DecryptionFailed)?;
    Ok(plaintext)
}

/// Encrypts `plaintext` as a compact JWE with the protected header `header` (JSON text), a
/// fresh CEK wrapped under `kek` (A256KW) and a fresh IV (A256GCM).
fn seal_compact(header: &[u8], kek: &[u8; 32], plaintext: &[u8]) -> Result<String, JweError> {
    let mut rng = rand::rngs::OsRng;
    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut *cek);
    rng.fill_bytes(&mut iv);
    let protected = b64::encode(header);
    let encrypted_key =
        keywrap::wrap(kek, cek.as_slice()).map_err(|_| JweError::DecryptionFailed)?;
    let cipher =
        Aes256Gcm::new_from_slice(cek.as_slice()).map_err(|_| JweError::DecryptionFailed)?;
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::from(iv), protected.as_bytes(), &mut buffer)
        .map_err(|_| JweError::DecryptionFailed)?;
    Ok(format!(
        "{protected}.{}.{}.{}.{}",
        b64::encode(&encrypted_key),
        b64::encode(&iv),
        b64::encode(&buffer),
        b64::encode(&tag)
    ))
}

/// The HKDF-SHA-256 salt of the key that wraps the owner's encryption keys.
pub const ENCRYPTION_KEK_SALT: &[u8] = b"siteid-enc-kek-v1";
/// The HKDF-SHA-256 info of the key that wraps the owner's encryption keys.
pub const ENCRYPTION_KEK_INFO: &[u8] = b"siteid encryption key A256KW";

/// HKDF-SHA-256 (RFC 5869) with one output block: 32 bytes.
fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut extract = <Hmac<Sha256> as Mac>::new_from_slice(salt)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    extract.update(ikm);
    let prk = Zeroizing::new(<[u8; 32]>::from(extract.finalize().into_bytes()));
    let mut expand = <Hmac<Sha256> as Mac>::new_from_slice(prk.as_slice())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    expand.update(info);
    expand.update(&[1]);
    Zeroizing::new(expand.finalize().into_bytes().into())
}

/// The key that wraps the owner's encryption keys: HKDF-SHA-256 of the owner key's private
/// scalar with [`ENCRYPTION_KEK_SALT`] and [`ENCRYPTION_KEK_INFO`]. Whoever opens the owner
/// key (password, passkey, recovery shares) opens the encryption keys.
pub fn encryption_kek(owner: &OwnerPrivateKey) -> Zeroizing<[u8; 32]> {
    hkdf_sha256(
        owner.scalar_bytes().as_slice(),
        ENCRYPTION_KEK_SALT,
        ENCRYPTION_KEK_INFO,
    )
}

/// Wraps the private encryption key `key` under `kek` as an `A256KW` JWE naming it by its
/// thumbprint (the form of a PRF copy and of a wrapped encryption key).
pub fn seal_private_key(key: &OwnerPrivateKey, kek: &[u8; 32]) -> Result<KwWrappedKey, JweError> {
    let header = serde_json::json!({
        "alg": PRF_KEY_ALG,
        "enc": CONTENT_ENC,
        "cty": CONTENT_TYPE,
        "kid": key.public_key().thumbprint(),
    });
    let compact = seal_compact(header.to_string().as_bytes(), kek, &key.to_json())?;
    KwWrappedKey::parse(&compact)
}

/// Checks a compact JWE's size, its five parts and every part's length (RFC 3394: a 256-bit CEK
/// wraps to 40 bytes; aes-kw alone would accept shorter input); returns the protected header's
/// bytes, a JSON object.
fn check_compact(compact: &str) -> Result<Vec<u8>, JweError> {
    if compact.len() > MAX_COMPACT_LEN {
        return Err(JweError::TooLong);
    }
    let parts: Vec<&str> = compact.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
        return Err(JweError::NotCompact);
    };
    let header_bytes = decode_part("protected header", protected)?;
    if !super::is_json_object(&header_bytes) {
        return Err(JweError::BadHeader("not a JSON object".into()));
    }
    expect_len("encrypted key", encrypted_key, ENCRYPTED_KEY_LEN)?;
    expect_len("initialization vector", iv, IV_LEN)?;
    expect_len("authentication tag", tag, TAG_LEN)?;
    let ciphertext = decode_part("ciphertext", ciphertext)?;
    if ciphertext.is_empty() || ciphertext.len() > MAX_CIPHERTEXT_LEN {
        return Err(JweError::BadPart(
            "ciphertext",
            format!("must be 1 to {MAX_CIPHERTEXT_LEN} bytes"),
        ));
    }
    Ok(header_bytes)
}

/// Checks the content encryption and content type every wrapped key has.
fn check_content(enc: &str, cty: &str) -> Result<(), JweError> {
    if enc != CONTENT_ENC {
        return Err(JweError::WrongEncryption(enc.to_owned()));
    }
    if cty != CONTENT_TYPE {
        return Err(JweError::WrongContentType(cty.to_owned()));
    }
    Ok(())
}

fn decode_part(name: &'static str, text: &str) -> Result<Vec<u8>, JweError> {
    b64::decode(text).map_err(|e| JweError::BadPart(name, e.to_string()))
}

fn expect_len(name: &'static str, text: &str, len: usize) -> Result<(), JweError> {
    let bytes = decode_part(name, text)?;
    if bytes.len() != len {
        return Err(JweError::BadPart(
            name,
            format!("must be {len} bytes, not {}", bytes.len()),
        ));
    }
    Ok(())
}

/// The PBES2 key-encryption key: 32 bytes, zeroized on drop.
pub struct Kek(Zeroizing<[u8; 32]>);

impl Kek {
    /// `PBKDF2-HMAC-SHA-512(password, UTF8(alg) || 0x00 || p2s, p2c, 32)` (RFC 7518 §4.8.1.1).
    pub fn derive(password: &[u8], p2s: &[u8], p2c: u32) -> Kek {
        let mut key = Zeroizing::new([0u8; 32]);
        pbkdf2::pbkdf2_hmac::<Sha512>(password, &pbes2_salt(KEY_ALG, p2s), p2c, &mut *key);
        Kek(key)
    }

    /// The raw key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `HMAC-SHA-256(key = KEK, "siteid unlock verifier v1")`: proves knowledge of the password
    /// to the server without revealing the KEK.
    pub fn unlock_verifier(&self) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(VERIFIER_MESSAGE);
        mac.finalize().into_bytes().into()
    }
}

/// The PBES2 salt: `UTF8(alg) || 0x00 || p2s` (RFC 7518 §4.8.1.1).
pub fn pbes2_salt(alg: &str, p2s: &[u8]) -> Vec<u8> {
    let mut salt = Vec::with_capacity(alg.len() + 1 + p2s.len());
    salt.extend_from_slice(alg.as_bytes());
    salt.push(0);
    salt.extend_from_slice(p2s);
    salt
}

/// The fixed inputs of a wrap, for known-answer tests. New keys use [`wrap_private_key`].
pub struct WrapInputs<'a> {
    pub p2s: &'a [u8],
    pub p2c: u32,
    pub cek: &'a [u8; CEK_LEN],
    pub iv: &'a [u8; IV_LEN],
    /// The kid header: the wrapped key's thumbprint, or none (known-answer vectors).
    pub kid: Option<&'a str>,
}

/// Wraps a private key under a password with a fresh salt, CEK and IV, naming the key by its
/// thumbprint in the `kid` header. Returns the JWE and the unlock verifier, deriving the KEK
/// once.
pub fn wrap_private_key(
    key: &OwnerPrivateKey,
    password: &[u8],
    p2c: u32,
) -> Result<(WrappedKey, [u8; 32]), JweError> {
    let mut rng = rand::rngs::OsRng;
    let mut p2s = [0u8; NEW_P2S_LEN];
    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut p2s);
    rng.fill_bytes(&mut *cek);
    rng.fill_bytes(&mut iv);
    let kid = key.public_key().thumbprint();
    let inputs = WrapInputs {
        p2s: &p2s,
        p2c,
        cek: &cek,
        iv: &iv,
        kid: Some(&kid),
    };
    wrap_plaintext(&key.to_json(), password, &inputs)
}

/// Wraps plaintext bytes with fixed inputs. Only known-answer tests call this directly.
pub fn wrap_plaintext(
    plaintext: &[u8],
    password: &[u8],
    inputs: &WrapInputs<'_>,
) -> Result<(WrappedKey, [u8; 32]), JweError> {
    if !(MIN_P2C..=MAX_P2C).contains(&inputs.p2c) {
        return Err(JweError::BadIterationCount(inputs.p2c.into()));
    }
    let header = ProtectedHeader {
        alg: KEY_ALG.into(),
        enc: CONTENT_ENC.into(),
        cty: CONTENT_TYPE.into(),
        p2s: b64::encode(inputs.p2s),
        p2c: inputs.p2c.into(),
        kid: inputs.kid.map(str::to_owned),
    };
    let protected =
        b64::encode(&serde_json::to_vec(&header).map_err(|e| JweError::BadHeader(e.to_string()))?);
    let kek = Kek::derive(password, inputs.p2s, inputs.p2c);
    let encrypted_key = keywrap::wrap(kek.bytes(), inputs.cek.as_slice())
        .map_err(|_| JweError::DecryptionFailed)?;
    let cipher =
        Aes256Gcm::new_from_slice(inputs.cek.as_slice()).map_err(|_| JweError::DecryptionFailed)?;
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::from(*inputs.iv), protected.as_bytes(), &mut buffer)
        .map_err(|_| JweError::DecryptionFailed)?;
    let compact = format!(
        "{protected}.{}.{}.{}.{}",
        b64::encode(&encrypted_key),
        b64::encode(inputs.iv),
        b64::encode(&buffer),
        b64::encode(&tag)
    );
    Ok((WrappedKey::parse(&compact)?, kek.unlock_verifier()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A structurally valid compact JWE with `header` as its protected header.
    fn compact(header: &serde_json::Value) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(&[1u8; ENCRYPTED_KEY_LEN]),
            b64::encode(&[2u8; IV_LEN]),
            b64::encode(&[3u8; 200]),
            b64::encode(&[4u8; TAG_LEN])
        )
    }

    fn header(kid: Option<serde_json::Value>) -> serde_json::Value {
        let mut header = serde_json::json!({
            "alg": KEY_ALG, "enc": CONTENT_ENC, "cty": CONTENT_TYPE,
            "p2s": b64::encode(&[5u8; NEW_P2S_LEN]), "p2c": DEFAULT_P2C,
        });
        if let Some(kid) = kid {
            header["kid"] = kid;
        }
        header
    }

    #[test]
    fn a_null_kid_in_the_protected_header_is_refused_not_read_as_absent() {
        let with_null = compact(&header(Some(serde_json::Value::Null)));
        assert!(matches!(
            WrappedKey::parse(&with_null),
            Err(JweError::BadHeader(_))
        ));
        let with_kid = WrappedKey::parse(&compact(&header(Some("k".into())))).unwrap();
        assert_eq!(with_kid.kid(), Some("k"));
        let without = WrappedKey::parse(&compact(&header(None))).unwrap();
        assert_eq!(without.kid(), None);
        assert_eq!(without.p2c(), DEFAULT_P2C);
    }

    #[test]
    fn a_prf_copy_has_exactly_its_four_header_members_and_the_jwe_lengths() {
        let prf = serde_json::json!({
            "alg": PRF_KEY_ALG, "enc": CONTENT_ENC, "cty": CONTENT_TYPE, "kid": "owner",
        });
        let copy = KwWrappedKey::parse(&compact(&prf)).unwrap();
        assert_eq!(copy.kid(), "owner");
        // A PBES2 wrapped key is not a PRF copy, nor one with a member more or another alg.
        assert!(KwWrappedKey::parse(&compact(&header(Some("owner".into())))).is_err());
        let mut extra = prf.clone();
        extra["zip"] = "DEF".into();
        assert!(KwWrappedKey::parse(&compact(&extra)).is_err());
        let mut direct = prf.clone();
        direct["alg"] = "dir".into();
        assert!(KwWrappedKey::parse(&compact(&direct)).is_err());
        let short = compact(&prf).replacen(
            &b64::encode(&[1u8; ENCRYPTED_KEY_LEN]),
            &b64::encode(&[1u8; 32]),
            1,
        );
        assert!(matches!(
            KwWrappedKey::parse(&short),
            Err(JweError::BadPart("encrypted key", _))
        ));
    }

    #[test]
    fn hkdf_matches_rfc_5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(&ikm, &salt, &info);
        let expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn the_encryption_kek_matches_the_cross_language_vector() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/encryption_kek.json"
        );
        let vector: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let owner =
            OwnerPrivateKey::from_json(vector["owner_private_jwk"].to_string().as_bytes()).unwrap();
        let hex: String = encryption_kek(&owner)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, vector["kek_hex"].as_str().unwrap());
    }

    #[test]
    fn an_encryption_key_opens_only_under_its_owner_keys_kek() {
        let owner = OwnerPrivateKey::generate();
        let encryption = OwnerPrivateKey::generate();
        let sealed = seal_private_key(&encryption, &encryption_kek(&owner)).unwrap();
        assert_eq!(sealed.kid(), encryption.public_key().thumbprint());
        let opened = sealed.open(&encryption_kek(&owner)).unwrap();
        assert_eq!(opened.public_key(), encryption.public_key());
        let stranger = OwnerPrivateKey::generate();
        assert!(matches!(
            sealed.open(&encryption_kek(&stranger)),
            Err(JweError::DecryptionFailed)
        ));
    }
}
