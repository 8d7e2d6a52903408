//! JOSE for siteid: JWK, JWS and JWE parsing and checking. The only code that touches
//! p384, aes-kw, aes-gcm, pbkdf2 and jsonwebtoken.

pub mod b64;
pub mod jwe;
pub mod jwk;
pub mod jws;
pub mod keywrap;

/// Whether `bytes` hold JSON text whose top-level value is an object. Derived serde parsers
/// also accept arrays for structs; JOSE objects and the API accept objects only.
pub fn is_json_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}
