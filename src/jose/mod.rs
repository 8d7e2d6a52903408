//! JOSE for siteid: JWK, JWS and JWE parsing and checking. The only code that touches
//! p384, aes-kw, aes-gcm, pbkdf2 and jsonwebtoken.

pub mod b64;
pub mod jwe;
pub mod jwk;
pub mod jws;
pub mod keywrap;
