//! Signatures pasted by hand: what `openssl dgst -sign`, `openssl pkeyutl -sign -rawin` and
//! `ssh-keygen -Y sign` print over a sign-in message, checked with aws-lc-rs.

use aws_lc_rs::signature::{self as lc, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::public::PublicKey;
use super::ssh::{SshSigError, verify_sshsig};

/// The SSHSIG namespace of a sign-in.
pub const SSHSIG_NAMESPACE: &str = "siteid-login";
/// Pasted signatures longer than this are refused before decoding.
pub const MAX_PASTED_LEN: usize = super::ssh::MAX_SSHSIG_LEN;

/// How a pasted signature was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasteFormat {
    /// Base64 of `openssl dgst -sign`: DER ECDSA (SHA-384 for P-384, SHA-256 for P-256), or
    /// PKCS#1 v1.5 with SHA-256 for RSA.
    Openssl,
    /// Base64 of a raw Ed25519 signature (`openssl pkeyutl -sign -rawin`).
    Raw,
    /// The armored output of `ssh-keygen -Y sign -n siteid-login`.
    Sshsig,
}

impl PasteFormat {
    /// The format named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "openssl" => Some(PasteFormat::Openssl),
            "raw" => Some(PasteFormat::Raw),
            "sshsig" => Some(PasteFormat::Sshsig),
            _ => None,
        }
    }
}

/// Why a pasted signature was refused. Messages complete the sentence "the signature ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasteError {
    #[error("is longer than {MAX_PASTED_LEN} bytes")]
    TooLong,
    #[error("is not base64")]
    NotBase64,
    #[error("is in format {0}, which does not fit a {1} key; {2}")]
    WrongFormat(&'static str, String, &'static str),
    #[error("does not verify")]
    BadSignature,
    #[error(transparent)]
    Ssh(#[from] SshSigError),
}

/// The format each key type's pasted signatures come in, for error messages.
fn formats_for(key: &PublicKey) -> &'static str {
    match key {
        PublicKey::Ed25519(_) => "use raw or sshsig",
        _ => "use openssl or sshsig",
    }
}

/// Decodes standard base64 (RFC 4648 §4) with padding, ignoring line breaks and spaces as
/// `openssl base64` and `base64` write them.
fn decode_wrapped_base64(text: &str) -> Result<Vec<u8>, PasteError> {
    let compact: String = text.split_ascii_whitespace().collect();
    STANDARD.decode(compact).map_err(|_| PasteError::NotBase64)
}

/// Checks a pasted signature by `key` over `message`.
pub fn verify_pasted(
    key: &PublicKey,
    format: PasteFormat,
    message: &[u8],
    signature: &str,
) -> Result<(), PasteError> {
    if signature.len() > MAX_PASTED_LEN {
        return Err(PasteError::TooLong);
    }
    let wrong =
        |name: &'static str| PasteError::WrongFormat(name, key.description(), formats_for(key));
    let verified = match (format, key) {
        (PasteFormat::Sshsig, _) => {
            return Ok(verify_sshsig(signature, SSHSIG_NAMESPACE, message, key)?);
        }
        (PasteFormat::Openssl, PublicKey::P256(_) | PublicKey::P384(_)) => {
            let der = decode_wrapped_base64(signature)?;
            let algorithm: &'static dyn lc::VerificationAlgorithm =
                if matches!(key, PublicKey::P256(_)) {
                    &lc::ECDSA_P256_SHA256_ASN1
                } else {
                    &lc::ECDSA_P384_SHA384_ASN1
                };
            let point = key.sec1_uncompressed().unwrap_or_default();
            UnparsedPublicKey::new(algorithm, point).verify(message, &der)
        }
        (PasteFormat::Openssl, PublicKey::Rsa(rsa)) => {
            let bytes = decode_wrapped_base64(signature)?;
            if bytes.len() != rsa.modulus().len() {
                return Err(PasteError::BadSignature);
            }
            RsaPublicKeyComponents {
                n: rsa.modulus(),
                e: rsa.exponent(),
            }
            .verify(&lc::RSA_PKCS1_2048_8192_SHA256, message, &bytes)
        }
        (PasteFormat::Raw, PublicKey::Ed25519(point)) => {
            let bytes = decode_wrapped_base64(signature)?;
            UnparsedPublicKey::new(&lc::ED25519, point).verify(message, &bytes)
        }
        (PasteFormat::Openssl, PublicKey::Ed25519(_)) => return Err(wrong("openssl")),
        (PasteFormat::Raw, _) => return Err(wrong("raw")),
    };
    verified.map_err(|_| PasteError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::Signer;

    #[test]
    fn a_der_p384_signature_in_wrapped_base64_verifies_and_another_message_does_not() {
        let secret = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let key = PublicKey::P384(secret.public_key());
        let signing = p384::ecdsa::SigningKey::from(&secret);
        let signature: p384::ecdsa::Signature = signing.sign(b"siteid login x n");
        let encoded = STANDARD.encode(signature.to_der().as_bytes());
        let wrapped = format!("{}\n{}\n", &encoded[..64], &encoded[64..]);
        assert_eq!(
            verify_pasted(&key, PasteFormat::Openssl, b"siteid login x n", &wrapped),
            Ok(())
        );
        assert_eq!(
            verify_pasted(&key, PasteFormat::Openssl, b"siteid login x m", &wrapped),
            Err(PasteError::BadSignature)
        );
        assert!(matches!(
            verify_pasted(&key, PasteFormat::Raw, b"siteid login x n", &wrapped),
            Err(PasteError::WrongFormat(..))
        ));
        assert_eq!(
            verify_pasted(&key, PasteFormat::Openssl, b"m", "not base64!"),
            Err(PasteError::NotBase64)
        );
    }
}
