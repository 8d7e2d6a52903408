//! OpenSSH formats: the wire encoding of RFC 4251 §5, public key blobs and lines (RFC 4253,
//! RFC 5656, RFC 8709), and SSH signatures (`ssh-keygen -Y sign`, OpenSSH's PROTOCOL.sshsig)
//! checked with aws-lc-rs.

use aws_lc_rs::signature::{self as lc, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};

use super::public::{KeyError, PublicKey, RsaKey};

/// The SSHSIG magic preamble.
const SSHSIG_MAGIC: &[u8] = b"SSHSIG";
const SSHSIG_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const SSHSIG_END: &str = "-----END SSH SIGNATURE-----";
/// Armored signatures longer than this are refused before decoding.
pub const MAX_SSHSIG_LEN: usize = 8 * 1024;

/// A reader of the SSH wire encoding that never reads past its input.
pub struct WireReader<'a> {
    bytes: &'a [u8],
}

impl<'a> WireReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        WireReader { bytes }
    }

    /// `n` raw bytes.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("ends early".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A big-endian `uint32`.
    pub fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.raw(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A `string`: a length and that many bytes.
    pub fn string(&mut self) -> Result<&'a [u8], String> {
        let length = self.u32()? as usize;
        self.raw(length)
    }

    /// A `string` that must be UTF-8 text.
    pub fn text(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.string()?).map_err(|_| "holds a name that is not text".into())
    }

    /// A non-negative `mpint` in its minimal form (RFC 4251 §5); returns its magnitude.
    pub fn mpint(&mut self) -> Result<&'a [u8], String> {
        let bytes = self.string()?;
        match bytes {
            [] => Ok(bytes),
            [first, ..] if first & 0x80 != 0 => Err("holds a negative number".into()),
            [0, second, ..] if second & 0x80 == 0 => {
                Err("holds a number not minimally encoded".into())
            }
            [0] => Err("holds a number not minimally encoded".into()),
            [0, rest @ ..] => Ok(rest),
            _ => Ok(bytes),
        }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Fails unless everything has been read.
    pub fn finish(&self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err("has bytes after its end".into())
        }
    }
}

/// Appends a `string` to `out`.
pub fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends a non-negative `mpint` given its big-endian magnitude.
pub fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let magnitude = &magnitude[first..];
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        out.extend_from_slice(&((magnitude.len() + 1) as u32).to_be_bytes());
        out.push(0);
        out.extend_from_slice(magnitude);
    } else {
        put_string(out, magnitude);
    }
}

/// The SSH name of a key's type.
pub fn key_type_name(key: &PublicKey) -> &'static str {
    match key {
        PublicKey::P256(_) => "ecdsa-sha2-nistp256",
        PublicKey::P384(_) => "ecdsa-sha2-nistp384",
        PublicKey::Ed25519(_) => "ssh-ed25519",
        PublicKey::Rsa(_) => "ssh-rsa",
    }
}

/// The SSH public key blob of a key.
pub fn public_key_blob(key: &PublicKey) -> Vec<u8> {
    let mut blob = Vec::new();
    put_string(&mut blob, key_type_name(key).as_bytes());
    match key {
        PublicKey::P256(_) | PublicKey::P384(_) => {
            let curve: &[u8] = if matches!(key, PublicKey::P256(_)) {
                b"nistp256"
            } else {
                b"nistp384"
            };
            put_string(&mut blob, curve);
            put_string(&mut blob, &key.sec1_uncompressed().unwrap_or_default());
        }
        PublicKey::Ed25519(point) => put_string(&mut blob, point),
        PublicKey::Rsa(rsa) => {
            put_mpint(&mut blob, rsa.exponent());
            put_mpint(&mut blob, rsa.modulus());
        }
    }
    blob
}

/// The OpenSSH public key line of a key, without a comment.
pub fn public_key_line(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key_type_name(key),
        STANDARD.encode(public_key_blob(key))
    )
}

/// Reads an SSH public key blob (the key types of RFC 4253, 5656 and 8709).
pub fn parse_public_key_blob(blob: &[u8]) -> Result<PublicKey, KeyError> {
    let ssh = |e: String| KeyError::Ssh(format!("the key blob {e}"));
    let mut reader = WireReader::new(blob);
    let name = reader.text().map_err(ssh)?;
    let key = match name {
        "ssh-ed25519" => PublicKey::ed25519(reader.string().map_err(ssh)?)?,
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" => {
            let (curve, jwk_curve) = if name.ends_with("256") {
                ("nistp256", "P-256")
            } else {
                ("nistp384", "P-384")
            };
            if reader.text().map_err(ssh)? != curve {
                return Err(KeyError::Ssh(format!(
                    "the key blob of {name} names another curve"
                )));
            }
            let point = reader.string().map_err(ssh)?;
            if point.first() != Some(&0x04) {
                return Err(KeyError::Ssh("the point is not uncompressed".into()));
            }
            PublicKey::from_sec1(jwk_curve, point)?
        }
        "ssh-rsa" => {
            let e = reader.mpint().map_err(ssh)?;
            let n = reader.mpint().map_err(ssh)?;
            PublicKey::Rsa(RsaKey::new(n, e)?)
        }
        other if other.starts_with("sk-") => {
            return Err(KeyError::Unsupported(format!(
                "{other}: security-key SSH keys are not supported yet"
            )));
        }
        other => return Err(KeyError::Unsupported(other.into())),
    };
    reader.finish().map_err(ssh)?;
    Ok(key)
}

/// Reads an OpenSSH public key line: `<type> <base64 blob> [comment]`, as in a `.pub` file.
pub fn parse_public_key_line(line: &str) -> Result<PublicKey, KeyError> {
    let line = line.trim();
    if line.contains('\n') || line.contains('\r') {
        return Err(KeyError::Ssh("it must be a single line".into()));
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(name), Some(encoded)) = (parts.next(), parts.next()) else {
        return Err(KeyError::UnknownFormat);
    };
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| KeyError::Ssh("the key is not base64".into()))?;
    let key = parse_public_key_blob(&blob)?;
    if key_type_name(&key) != name {
        return Err(KeyError::Ssh(format!(
            "the line says {name} but the key is {}",
            key_type_name(&key)
        )));
    }
    Ok(key)
}

/// Why an SSH signature was refused. Messages complete the sentence "the signature ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshSigError {
    #[error("is longer than {MAX_SSHSIG_LEN} bytes")]
    TooLong,
    #[error("is not an armored SSH signature (-----BEGIN SSH SIGNATURE-----)")]
    NotArmored,
    #[error("is not well-formed: {0}")]
    Malformed(String),
    #[error("has namespace {0:?}, not {1:?} (ssh-keygen -Y sign -n {1})")]
    WrongNamespace(String, String),
    #[error("was made by another key than the credential's")]
    OtherKey,
    #[error("uses {0}, which is not accepted")]
    WeakAlgorithm(String),
    #[error("does not verify")]
    BadSignature,
}

/// Checks an armored SSH signature over `message` in `namespace` by `key`.
pub fn verify_sshsig(
    armored: &str,
    namespace: &str,
    message: &[u8],
    key: &PublicKey,
) -> Result<(), SshSigError> {
    if armored.len() > MAX_SSHSIG_LEN {
        return Err(SshSigError::TooLong);
    }
    let armored = armored.trim();
    let body = armored
        .strip_prefix(SSHSIG_BEGIN)
        .and_then(|rest| rest.strip_suffix(SSHSIG_END))
        .ok_or(SshSigError::NotArmored)?;
    let encoded: String = body.split_ascii_whitespace().collect();
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| SshSigError::Malformed("the body is not base64".into()))?;
    let malformed = |e: String| SshSigError::Malformed(e);
    let mut reader = WireReader::new(&blob);
    if reader.raw(SSHSIG_MAGIC.len()).map_err(malformed)? != SSHSIG_MAGIC {
        return Err(SshSigError::Malformed(
            "the magic preamble is missing".into(),
        ));
    }
    if reader.u32().map_err(malformed)? != 1 {
        return Err(SshSigError::Malformed("the version is not 1".into()));
    }
    let signer = reader.string().map_err(malformed)?;
    let signed_namespace = reader.text().map_err(malformed)?;
    let reserved = reader.string().map_err(malformed)?;
    let hash_algorithm = reader.text().map_err(malformed)?;
    let signature = reader.string().map_err(malformed)?;
    reader.finish().map_err(malformed)?;
    if signed_namespace != namespace {
        return Err(SshSigError::WrongNamespace(
            signed_namespace.into(),
            namespace.into(),
        ));
    }
    if !reserved.is_empty() {
        return Err(SshSigError::Malformed(
            "the reserved field is not empty".into(),
        ));
    }
    let signer_key = parse_public_key_blob(signer)
        .map_err(|e| SshSigError::Malformed(format!("its public key {e}")))?;
    if &signer_key != key {
        return Err(SshSigError::OtherKey);
    }
    let message_hash = match hash_algorithm {
        "sha256" => Sha256::digest(message).to_vec(),
        "sha512" => Sha512::digest(message).to_vec(),
        other => return Err(SshSigError::WeakAlgorithm(format!("hash {other}"))),
    };
    let mut signed = Vec::new();
    signed.extend_from_slice(SSHSIG_MAGIC);
    put_string(&mut signed, namespace.as_bytes());
    put_string(&mut signed, reserved);
    put_string(&mut signed, hash_algorithm.as_bytes());
    put_string(&mut signed, &message_hash);
    verify_ssh_signature(key, signature, &signed)
}

/// Checks an SSH signature blob (`string` algorithm, `string` signature) by `key` over `data`.
fn verify_ssh_signature(key: &PublicKey, blob: &[u8], data: &[u8]) -> Result<(), SshSigError> {
    let malformed = |e: String| SshSigError::Malformed(format!("the signature blob {e}"));
    let mut reader = WireReader::new(blob);
    let algorithm = reader.text().map_err(malformed)?;
    let signature = reader.string().map_err(malformed)?;
    reader.finish().map_err(malformed)?;
    let verified = match (key, algorithm) {
        (PublicKey::Ed25519(point), "ssh-ed25519") => {
            UnparsedPublicKey::new(&lc::ED25519, point).verify(data, signature)
        }
        (PublicKey::P256(_), "ecdsa-sha2-nistp256")
        | (PublicKey::P384(_), "ecdsa-sha2-nistp384") => {
            let (width, algorithm): (usize, &'static dyn lc::VerificationAlgorithm) =
                if matches!(key, PublicKey::P256(_)) {
                    (32, &lc::ECDSA_P256_SHA256_FIXED)
                } else {
                    (48, &lc::ECDSA_P384_SHA384_FIXED)
                };
            let fixed = ecdsa_fixed(signature, width).map_err(malformed)?;
            let point = key.sec1_uncompressed().unwrap_or_default();
            UnparsedPublicKey::new(algorithm, point).verify(data, &fixed)
        }
        (PublicKey::Rsa(rsa), "rsa-sha2-256" | "rsa-sha2-512") => {
            let parameters = if algorithm == "rsa-sha2-256" {
                &lc::RSA_PKCS1_2048_8192_SHA256
            } else {
                &lc::RSA_PKCS1_2048_8192_SHA512
            };
            if signature.len() != rsa.modulus().len() {
                return Err(SshSigError::BadSignature);
            }
            RsaPublicKeyComponents {
                n: rsa.modulus(),
                e: rsa.exponent(),
            }
            .verify(parameters, data, signature)
        }
        (PublicKey::Rsa(_), "ssh-rsa") => {
            return Err(SshSigError::WeakAlgorithm("ssh-rsa (SHA-1)".into()));
        }
        (_, other) => {
            return Err(SshSigError::Malformed(format!(
                "the signature algorithm {other} does not fit the key"
            )));
        }
    };
    verified.map_err(|_| SshSigError::BadSignature)
}

/// An SSH ECDSA signature (`mpint r`, `mpint s`) as the fixed-width `r || s`.
fn ecdsa_fixed(signature: &[u8], width: usize) -> Result<Vec<u8>, String> {
    let mut reader = WireReader::new(signature);
    let r = reader.mpint()?;
    let s = reader.mpint()?;
    reader.finish()?;
    if r.len() > width || s.len() > width {
        return Err("has an ECDSA value wider than its curve".into());
    }
    let mut fixed = vec![0u8; 2 * width];
    fixed[width - r.len()..width].copy_from_slice(r);
    fixed[2 * width - s.len()..].copy_from_slice(s);
    Ok(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpints_must_be_minimal_and_non_negative() {
        let read = |bytes: &[u8]| {
            let mut out = Vec::new();
            put_string(&mut out, bytes);
            WireReader::new(&out).mpint().map(<[u8]>::to_vec)
        };
        assert_eq!(read(&[]), Ok(vec![]));
        assert_eq!(read(&[0x7f]), Ok(vec![0x7f]));
        assert_eq!(read(&[0x00, 0x80]), Ok(vec![0x80]));
        assert!(read(&[0x80]).is_err());
        assert!(read(&[0x00, 0x7f]).is_err());
        assert!(read(&[0x00]).is_err());
    }

    #[test]
    fn an_mpint_round_trips() {
        for magnitude in [&[0x80u8, 1][..], &[0x7f, 1], &[0, 0, 5], &[]] {
            let mut out = Vec::new();
            put_mpint(&mut out, magnitude);
            let stripped: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
            assert_eq!(
                WireReader::new(&out).mpint().map(<[u8]>::to_vec),
                Ok(stripped)
            );
        }
    }

    #[test]
    fn a_reader_never_reads_past_its_input() {
        let mut reader = WireReader::new(&[0, 0, 0, 9, 1, 2]);
        assert!(reader.string().is_err());
        let mut reader = WireReader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(reader.string().is_err());
    }

    #[test]
    fn an_ed25519_line_round_trips_and_a_mislabelled_line_is_refused() {
        // RFC 8032 §7.1, test 1.
        let point: Vec<u8> = (0..32)
            .map(|i| {
                u8::from_str_radix(
                    &"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
                        [2 * i..2 * i + 2],
                    16,
                )
                .expect("hex")
            })
            .collect();
        let key = PublicKey::ed25519(&point).expect("key");
        let line = public_key_line(&key);
        assert_eq!(
            parse_public_key_line(&format!("{line} me@laptop")),
            Ok(key.clone())
        );
        let mislabelled = line.replace("ssh-ed25519", "ssh-rsa");
        assert!(matches!(
            parse_public_key_line(&mislabelled),
            Err(KeyError::Ssh(_))
        ));
        let mut blob = public_key_blob(&key);
        blob.push(0);
        assert!(matches!(
            parse_public_key_blob(&blob),
            Err(KeyError::Ssh(_))
        ));
    }

    #[test]
    fn an_unarmored_or_oversized_signature_is_refused_before_decoding() {
        let key = PublicKey::ed25519(&[9u8; 32]).expect("key");
        assert_eq!(
            verify_sshsig("AAAA", "siteid-login", b"m", &key),
            Err(SshSigError::NotArmored)
        );
        let huge = "A".repeat(MAX_SSHSIG_LEN + 1);
        assert_eq!(
            verify_sshsig(&huge, "siteid-login", b"m", &key),
            Err(SshSigError::TooLong)
        );
    }
}
