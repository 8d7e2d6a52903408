//! Credential private keys read from the files people keep them in (PEM SEC1, PKCS#8 and
//! PKCS#1, OpenSSH private keys with or without a passphrase), for the command line and tests.
//! They sign JWS assertions on the client; the node never sees one.

use aws_lc_rs::cipher::{AES_256, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use crypto_bigint::{NonZero, U8192};
use der::Decode;
use der::asn1::ObjectIdentifier;
use zeroize::{Zeroize, Zeroizing};

use super::public::{JwsAlgorithm, PublicKey, RsaKey};
use super::ssh::WireReader;
use crate::jose::b64;

/// Private key files longer than this are refused before parsing.
pub const MAX_PRIVATE_KEY_LEN: usize = 64 * 1024;
/// bcrypt-pbkdf rounds above this are refused (ssh-keygen uses 16 by default).
const MAX_BCRYPT_ROUNDS: u32 = 1024;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why a private key file could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrivateKeyError {
    #[error("the key is protected by a passphrase")]
    NeedsPassphrase,
    #[error("the passphrase is wrong")]
    WrongPassphrase,
    #[error("{0}")]
    Unsupported(String),
    #[error("the key file is malformed: {0}")]
    Malformed(String),
}

fn malformed(what: impl std::fmt::Display) -> PrivateKeyError {
    PrivateKeyError::Malformed(what.to_string())
}

enum Signer {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs a credential's JWS assertions: with its key type's algorithm
/// (ES256, ES384, EdDSA, RS256 for RSA), or PS256 for an RSA key registered for it.
pub struct PrivateKey {
    signer: Signer,
    public: PublicKey,
    alg: JwsAlgorithm,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?})", self.public)
    }
}

impl PrivateKey {
    /// Reads the first private key in a PEM file. `passphrase` opens an encrypted OpenSSH key;
    /// without it such a key is `NeedsPassphrase`.
    pub fn from_pem(text: &str, passphrase: Option<&[u8]>) -> Result<Self, PrivateKeyError> {
        if text.len() > MAX_PRIVATE_KEY_LEN {
            return Err(malformed("longer than any key this accepts"));
        }
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(PrivateKeyError::Unsupported(
                "legacy encrypted PEM is not supported; convert it with `openssl pkey -in KEY -out PLAIN.pem`"
                    .into(),
            ));
        }
        let block = pem_blocks(text)
            .into_iter()
            .find(|(label, _)| label.ends_with("PRIVATE KEY"))
            .ok_or_else(|| malformed("no PEM private key block"))?;
        let (label, pem) = block;
        let der = pem_body(&pem)?;
        match label.as_str() {
            "EC PRIVATE KEY" => Self::from_sec1_der(&der, None),
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => {
                Self::from_rsa(RsaKeyPair::from_der(&der).map_err(|e| malformed(e.to_string()))?)
            }
            "OPENSSH PRIVATE KEY" => Self::from_openssh(&der, passphrase),
            "ENCRYPTED PRIVATE KEY" => Err(PrivateKeyError::Unsupported(
                "encrypted PKCS#8 is not supported; use an OpenSSH key with a passphrase, or decrypt it with `openssl pkey -in KEY -out PLAIN.pem`"
                    .into(),
            )),
            other => Err(PrivateKeyError::Unsupported(format!(
                "PEM label {other:?} is not a private key this reads"
            ))),
        }
    }

    /// Reads an RFC 5915 ECPrivateKey strictly: the curve it names (which must agree with
    /// `outer_curve`, the one a PKCS#8 wrapper names), a scalar of exactly that curve's size,
    /// and a stored public key, when there is one, that belongs to the scalar.
    fn from_sec1_der(
        der: &[u8],
        outer_curve: Option<ObjectIdentifier>,
    ) -> Result<Self, PrivateKeyError> {
        let parsed = sec1::EcPrivateKey::from_der(der).map_err(malformed)?;
        // The decoder passes over fields it does not expect; the exact DER of what it read
        // must be the whole input.
        let mut canonical = Zeroizing::new(vec![0u8; der.len()]);
        let written = der::Encode::encode_to_slice(&parsed, &mut canonical[..])
            .map_err(|_| malformed("the EC key is not in canonical DER"))?;
        if written != der {
            return Err(malformed("the EC key is not in canonical DER"));
        }
        let named = parsed.parameters.and_then(|p| p.named_curve());
        let curve = match (outer_curve, named) {
            (Some(outer), Some(inner)) if outer != inner => {
                return Err(malformed("the key names two different curves"));
            }
            (Some(curve), _) | (None, Some(curve)) => curve,
            (None, None) => return Err(malformed("the EC key names no curve")),
        };
        let (key, size) = match curve {
            OID_P256 => (
                p256::SecretKey::from_slice(parsed.private_key).map(Self::p256),
                32,
            ),
            OID_P384 => (
                p384::SecretKey::from_slice(parsed.private_key).map(Self::p384),
                48,
            ),
            _ => {
                return Err(PrivateKeyError::Unsupported(
                    "only P-256 and P-384 EC keys are supported".into(),
                ));
            }
        };
        if parsed.private_key.len() != size {
            return Err(malformed(format!("the private scalar is not {size} bytes")));
        }
        let key = key.map_err(|_| malformed("the private scalar is out of range"))?;
        if let Some(stored) = parsed.public_key {
            let matches = match &key.public {
                PublicKey::P256(public) => {
                    p256::PublicKey::from_sec1_bytes(stored).ok().as_ref() == Some(public)
                }
                PublicKey::P384(public) => {
                    p384::PublicKey::from_sec1_bytes(stored).ok().as_ref() == Some(public)
                }
                _ => false,
            };
            if !matches {
                return Err(malformed(
                    "the stored public key does not belong to the private key",
                ));
            }
        }
        Ok(key)
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, PrivateKeyError> {
        let info = p256::pkcs8::PrivateKeyInfo::from_der(der).map_err(malformed)?;
        match info.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| malformed("the EC key names no curve"))?;
                Self::from_sec1_der(info.private_key, Some(curve))
            }
            OID_ED25519 => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| malformed(e.to_string()))?;
                Self::from_ed25519(pair)
            }
            OID_RSA => {
                Self::from_rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| malformed(e.to_string()))?)
            }
            other => Err(PrivateKeyError::Unsupported(format!(
                "key algorithm {other} is not supported"
            ))),
        }
    }

    fn p256(key: p256::SecretKey) -> Self {
        let public = PublicKey::P256(key.public_key());
        PrivateKey {
            signer: Signer::P256(key.into()),
            alg: public.default_algorithm(),
            public,
        }
    }

    fn p384(key: p384::SecretKey) -> Self {
        let public = PublicKey::P384(key.public_key());
        PrivateKey {
            signer: Signer::P384(key.into()),
            alg: public.default_algorithm(),
            public,
        }
    }

    fn from_ed25519(pair: Ed25519KeyPair) -> Result<Self, PrivateKeyError> {
        let public =
            PublicKey::ed25519(pair.public_key().as_ref()).map_err(|e| malformed(e.to_string()))?;
        Ok(PrivateKey {
            signer: Signer::Ed25519(pair),
            alg: public.default_algorithm(),
            public,
        })
    }

    fn from_rsa(pair: RsaKeyPair) -> Result<Self, PrivateKeyError> {
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let public = RsaKey::new(&components.n, &components.e)
            .map_err(|e| PrivateKeyError::Unsupported(e.to_string()))?;
        Ok(PrivateKey {
            signer: Signer::Rsa(pair),
            public: PublicKey::Rsa(public),
            alg: JwsAlgorithm::Rs256,
        })
    }

    /// Reads an `openssh-key-v1` key (PROTOCOL.key): unencrypted, or `aes256-ctr` under
    /// `bcrypt` as ssh-keygen writes it.
    fn from_openssh(data: &[u8], passphrase: Option<&[u8]>) -> Result<Self, PrivateKeyError> {
        let body = data
            .strip_prefix(b"openssh-key-v1\0")
            .ok_or_else(|| malformed("not an openssh-key-v1 key"))?;
        let mut reader = WireReader::new(body);
        let cipher = reader.text().map_err(malformed)?;
        let kdf = reader.text().map_err(malformed)?;
        let kdf_options = reader.string().map_err(malformed)?;
        if reader.u32().map_err(malformed)? != 1 {
            return Err(malformed("a file with more than one key"));
        }
        let header_public = reader.string().map_err(malformed)?;
        let sealed = reader.string().map_err(malformed)?;
        reader.finish().map_err(malformed)?;
        let mut section = Zeroizing::new(sealed.to_vec());
        match (cipher, kdf) {
            ("none", "none") if kdf_options.is_empty() => {}
            ("aes256-ctr", "bcrypt") => {
                let passphrase = passphrase.ok_or(PrivateKeyError::NeedsPassphrase)?;
                let mut options = WireReader::new(kdf_options);
                let salt = options.string().map_err(malformed)?;
                let rounds = options.u32().map_err(malformed)?;
                options.finish().map_err(malformed)?;
                if rounds == 0 || rounds > MAX_BCRYPT_ROUNDS || section.len() % 16 != 0 {
                    return Err(malformed("unexpected key derivation parameters"));
                }
                let mut key_iv = Zeroizing::new([0u8; 48]);
                bcrypt_pbkdf::bcrypt_pbkdf(passphrase, salt, rounds, &mut key_iv[..])
                    .map_err(|_| malformed("bad key derivation parameters"))?;
                let key = UnboundCipherKey::new(&AES_256, &key_iv[..32])
                    .map_err(|_| malformed("cipher key"))?;
                let iv: [u8; 16] = key_iv[32..].try_into().map_err(|_| malformed("iv"))?;
                DecryptingKey::ctr(key)
                    .and_then(|key| {
                        key.decrypt(
                            &mut section,
                            DecryptionContext::Iv128(FixedLength::from(iv)),
                        )
                        .map(|_| ())
                    })
                    .map_err(|_| malformed("decryption failed"))?;
            }
            (cipher, kdf) => {
                return Err(PrivateKeyError::Unsupported(format!(
                    "OpenSSH keys encrypted with {cipher}/{kdf} are not supported; re-encrypt with `ssh-keygen -p -Z aes256-ctr -f KEY`"
                )));
            }
        }
        let mut reader = WireReader::new(&section);
        let first = reader.u32().map_err(malformed)?;
        let second = reader.u32().map_err(malformed)?;
        if first != second {
            return Err(if cipher == "none" {
                malformed("check integers differ")
            } else {
                PrivateKeyError::WrongPassphrase
            });
        }
        let key = match reader.text().map_err(malformed)? {
            "ssh-ed25519" => {
                let public = reader.string().map_err(malformed)?;
                let secret = reader.string().map_err(malformed)?;
                if public.len() != 32 || secret.len() != 64 || &secret[32..] != public {
                    return Err(malformed("ed25519 key of the wrong shape"));
                }
                let pair = Ed25519KeyPair::from_seed_and_public_key(&secret[..32], public)
                    .map_err(|e| malformed(e.to_string()))?;
                Self::from_ed25519(pair)?
            }
            name @ ("ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384") => {
                let _curve = reader.text().map_err(malformed)?;
                let point = reader.string().map_err(malformed)?;
                let scalar = reader.mpint().map_err(malformed)?;
                let size = if name.ends_with("256") { 32 } else { 48 };
                if scalar.len() > size {
                    return Err(malformed("EC private scalar too long"));
                }
                let mut fixed = Zeroizing::new(vec![0u8; size]);
                fixed[size - scalar.len()..].copy_from_slice(scalar);
                let key = if size == 32 {
                    Self::p256(p256::SecretKey::from_slice(&fixed).map_err(malformed)?)
                } else {
                    Self::p384(p384::SecretKey::from_slice(&fixed).map_err(malformed)?)
                };
                if key.public.sec1_uncompressed().as_deref() != Some(point) {
                    return Err(malformed("EC public point does not match the private key"));
                }
                key
            }
            "ssh-rsa" => {
                let n = reader.mpint().map_err(malformed)?;
                let e = reader.mpint().map_err(malformed)?;
                let d = reader.mpint().map_err(malformed)?;
                let q_inv = reader.mpint().map_err(malformed)?;
                let p = reader.mpint().map_err(malformed)?;
                let q = reader.mpint().map_err(malformed)?;
                let d_p = rsa_crt_exponent(d, p)?;
                let d_q = rsa_crt_exponent(d, q)?;
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents { n, e },
                    d,
                    p,
                    q,
                    dP: &d_p[..],
                    dQ: &d_q[..],
                    qInv: q_inv,
                };
                Self::from_rsa(
                    RsaKeyPair::from_components(&components)
                        .map_err(|e| malformed(e.to_string()))?,
                )?
            }
            other => {
                return Err(PrivateKeyError::Unsupported(format!(
                    "OpenSSH key type {other} is not supported"
                )));
            }
        };
        // OpenSSH refuses a file whose header names another key than the one it holds.
        if super::ssh::public_key_blob(&key.public) != header_public {
            return Err(malformed("the file's public key is not the key it holds"));
        }
        Ok(key)
    }

    /// The key's public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    /// Signs with `alg` instead (PS256 for an RSA key); refuses an algorithm the key cannot use.
    pub fn with_algorithm(mut self, alg: JwsAlgorithm) -> Result<Self, PrivateKeyError> {
        if !self.public.allows(alg) {
            return Err(PrivateKeyError::Unsupported(format!(
                "a {} key cannot sign {}",
                self.public.description(),
                alg.as_str()
            )));
        }
        self.alg = alg;
        Ok(self)
    }

    /// A compact JWS of `claims` under `header` (whose `alg` the caller sets to
    /// [`PrivateKey::algorithm`]).
    pub fn sign_compact(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let signing_input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let signature = self.sign_jws(signing_input.as_bytes());
        format!("{signing_input}.{}", b64::encode(&signature))
    }

    /// The JWS signature (RFC 7515 §5.1, in the form RFC 7518 gives for [`PrivateKey::algorithm`]) over
    /// `signing_input`.
    pub fn sign_jws(&self, signing_input: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        match &self.signer {
            Signer::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(signing_input);
                signature.to_bytes().to_vec()
            }
            Signer::P384(key) => {
                let signature: p384::ecdsa::Signature = key.sign(signing_input);
                signature.to_bytes().to_vec()
            }
            Signer::Ed25519(pair) => pair.sign(signing_input).as_ref().to_vec(),
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                // Signing with a key that loaded cannot fail but for a broken RNG.
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match self.alg {
                    JwsAlgorithm::Ps256 => &aws_lc_rs::signature::RSA_PSS_SHA256,
                    _ => &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                };
                if pair
                    .sign(padding, &rng, signing_input, &mut signature)
                    .is_err()
                {
                    signature.clear();
                }
                signature
            }
        }
    }
}

/// `d mod (prime - 1)`, the CRT exponent OpenSSH files leave out.
fn rsa_crt_exponent(d: &[u8], prime: &[u8]) -> Result<Zeroizing<Vec<u8>>, PrivateKeyError> {
    const BYTES: usize = 8192 / 8;
    if d.len() > BYTES || prime.len() > BYTES {
        return Err(malformed("RSA component too long"));
    }
    let widen = |bytes: &[u8]| {
        let mut padded = Zeroizing::new([0u8; BYTES]);
        padded[BYTES - bytes.len()..].copy_from_slice(bytes);
        U8192::from_be_slice(&padded[..])
    };
    let mut exponent = widen(d);
    let modulus = widen(prime).wrapping_sub(&U8192::ONE);
    let modulus = Option::<NonZero<U8192>>::from(NonZero::new(modulus))
        .ok_or_else(|| malformed("RSA prime of 1"))?;
    let mut remainder = exponent.rem(&modulus);
    exponent.zeroize();
    let mut out = Zeroizing::new(Vec::with_capacity(BYTES));
    for word in remainder.as_words().iter().rev() {
        out.extend_from_slice(&word.to_be_bytes());
    }
    remainder.zeroize();
    let first = out.iter().position(|b| *b != 0).unwrap_or(out.len() - 1);
    out.drain(..first);
    Ok(out)
}

/// The bytes of a PEM block. OpenSSH wraps its base64 at 70 columns, not RFC 7468's 64, so
/// the lines are joined rather than checked for width; headers are refused.
fn pem_body(block: &str) -> Result<Zeroizing<Vec<u8>>, PrivateKeyError> {
    use base64::Engine as _;
    let lines: Vec<&str> = block.lines().map(str::trim).collect();
    let inner = lines
        .get(1..lines.len().saturating_sub(1))
        .ok_or_else(|| malformed("empty PEM block"))?;
    if inner.iter().any(|line| line.contains(':')) {
        return Err(malformed("PEM headers are not supported"));
    }
    let text = Zeroizing::new(inner.concat());
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| malformed("the PEM block is not base64"))
}

/// The PEM blocks of `text` as (label, block text), in order.
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        blocks.push((label.to_owned(), rest[start..stop].to_owned()));
        rest = &rest[stop..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::keys::CredentialKey;
    use crate::keys::ssh::parse_public_key_line;

    fn vector(name: &str) -> String {
        let path = format!("{}/tests/vectors/keys/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).expect("vector")
    }

    fn signs_and_verifies(key: &PrivateKey) {
        let checker = CredentialKey::new(key.public_key().clone(), key.algorithm()).expect("key");
        let signature = key.sign_jws(b"header.payload");
        assert!(checker.verify_jws(key.algorithm(), b"header.payload", &signature));
        assert!(!checker.verify_jws(key.algorithm(), b"header.payloaD", &signature));
    }

    #[test]
    fn the_private_key_block_is_found_after_parameters() {
        let key = PrivateKey::from_pem(&vector("p384-sec1.pem"), None).expect("reads");
        assert_eq!(key.algorithm(), JwsAlgorithm::Es384);
        signs_and_verifies(&key);
    }

    #[test]
    fn openssh_keys_match_their_public_lines_and_sign() {
        for (name, algorithm) in [
            ("openssh-rsa", JwsAlgorithm::Rs256),
            ("openssh-ec256", JwsAlgorithm::Es256),
        ] {
            let key = PrivateKey::from_pem(&vector(name), None).expect(name);
            let public = parse_public_key_line(&vector(&format!("{name}.pub"))).expect("pub");
            assert_eq!(key.public_key(), &public, "{name}");
            assert_eq!(key.algorithm(), algorithm);
            signs_and_verifies(&key);
        }
    }

    #[test]
    fn an_encrypted_openssh_key_needs_the_right_passphrase() {
        let text = vector("openssh-ed25519-passphrase-secret");
        assert_eq!(
            PrivateKey::from_pem(&text, None).err(),
            Some(PrivateKeyError::NeedsPassphrase)
        );
        assert_eq!(
            PrivateKey::from_pem(&text, Some(b"wrong")).err(),
            Some(PrivateKeyError::WrongPassphrase)
        );
        let key = PrivateKey::from_pem(&text, Some(b"secret")).expect("opens");
        let public =
            parse_public_key_line(&vector("openssh-ed25519-passphrase-secret.pub")).expect("pub");
        assert_eq!(key.public_key(), &public);
        assert_eq!(key.algorithm(), JwsAlgorithm::EdDsa);
        signs_and_verifies(&key);
    }

    #[test]
    fn a_p256_key_without_its_public_half_is_read_as_p256() {
        // openssl ec -no_public: only the curve name says which curve the scalar is on.
        let full = PrivateKey::from_pem(&vector("p256-sec1.pem"), None).expect("full");
        let bare = PrivateKey::from_pem(&vector("p256-sec1-no-public.pem"), None).expect("bare");
        assert_eq!(bare.algorithm(), JwsAlgorithm::Es256);
        assert_eq!(bare.public_key(), full.public_key());
        signs_and_verifies(&bare);
    }

    #[test]
    fn crt_exponents_are_d_mod_prime_minus_one() {
        // d = 1000, p = 7: 1000 mod 6 = 4.
        let out = rsa_crt_exponent(&1000u16.to_be_bytes(), &[7]).expect("computes");
        assert_eq!(&out[..], &[4]);
        assert!(rsa_crt_exponent(&[5], &[1]).is_err());
    }

    #[test]
    fn encrypted_pkcs8_and_legacy_pem_are_refused_with_advice() {
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            PrivateKey::from_pem(encrypted, None),
            Err(PrivateKeyError::Unsupported(_))
        ));
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n-----END RSA PRIVATE KEY-----\n";
        assert!(matches!(
            PrivateKey::from_pem(legacy, None),
            Err(PrivateKeyError::Unsupported(_))
        ));
        assert!(PrivateKey::from_pem("no key here", None).is_err());
    }
}
