//! JOSE for siteid: JWK, JWS and JWE parsing and checking, and the ECDH-ES messages of the
//! inbox. The only code that touches p384, aes-kw, aes-gcm, pbkdf2 and jsonwebtoken.

pub mod b64;
pub mod ecdh;
pub mod jwe;
pub mod jwk;
pub mod jws;
pub mod keywrap;
pub mod message;
pub mod node_key;
pub mod sealed;

/// Reads an optional member that, when present, must hold a value of its type: `null` is
/// refused instead of being read as absent. For `#[serde(default, deserialize_with = ...)]`.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Whether `bytes` hold JSON text whose top-level value is an object. Derived serde parsers
/// also accept arrays for structs; JOSE objects and the API accept objects only.
pub fn is_json_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}
