//! Credential keys in the formats people bring them (JWK, PEM SubjectPublicKeyInfo, OpenSSH
//! public key lines), their RFC 7638 thumbprints, and the signatures they make: JWS (ES256,
//! ES384, EdDSA, RS256, PS256), `openssl dgst`, raw Ed25519 and SSHSIG. With `jose`, the only
//! code that touches p256, p384, aws-lc-rs and jsonwebtoken.

pub mod passkey;
pub mod paste;
pub mod private;
pub mod public;
pub mod ssh;

pub use public::{CredentialKey, JwsAlgorithm, KeyError, PublicKey};
