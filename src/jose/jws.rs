//! Compact JWS (RFC 7515): ES384 for the owner key (RFC 7518 §3.4), other algorithms for
//! credentials through a caller's check, parsed strictly before any signature check,
//! following the JWT best current practices of RFC 8725.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::b64;
use super::jwk::OwnerPublicKey;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8192;
/// The only signature algorithm accepted.
pub const ALG: &str = "ES384";
/// An ES384 signature is r || s, 48 bytes each (RFC 7518 §3.4).
pub const SIGNATURE_LEN: usize = 96;

/// Header members that would let a token choose its own key, algorithm handling or
/// processing rules. Their presence alone refuses the token.
const FORBIDDEN_HEADER_MEMBERS: [&str; 9] = [
    "crit", "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "b64", "zip",
];

/// Why a token was refused. Messages complete the sentence "the token ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("is not a JWS in compact serialization (three base64url parts separated by dots)")]
    NotCompact,
    #[error("has a {0} that is not base64url without padding")]
    BadEncoding(&'static str),
    #[error("has a header member {0:?}, which is not accepted")]
    ForbiddenHeaderMember(String),
    #[error("has a header that is not a JSON object of alg, typ and an optional kid: {0}")]
    BadHeader(String),
    #[error("must use alg ES384, not {0:?}")]
    WrongAlgorithm(String),
    #[error("uses alg {0:?}, which is not accepted")]
    UnsupportedAlgorithm(String),
    #[error("must have typ {expected:?}, not {actual:?}")]
    WrongType { expected: String, actual: String },
    #[error("has a signature that is not 96 bytes of r || s with r and s in range")]
    MalformedSignature,
    #[error("has a signature that does not verify")]
    BadSignature,
    #[error("has claims that are not valid: {0}")]
    BadClaims(String),
    #[error("has expired")]
    Expired,
    #[error("lives longer than {0} seconds (exp - iat)")]
    LifetimeTooLong(i64),
    #[error("was issued in the future (iat)")]
    IssuedInFuture,
    #[error("is for another audience (aud)")]
    WrongAudience,
}

/// The protected header of an accepted token. A `kid` of `null` is refused, not read as absent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwsHeader {
    pub alg: String,
    pub typ: String,
    #[serde(default, deserialize_with = "super::present")]
    pub kid: Option<String>,
}

/// A compact JWS split into its parts, with its header checked.
pub struct CompactJws<'a> {
    pub header: JwsHeader,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Splits and checks an ES384 token: its size, shape, header members, algorithm, type and
    /// signature encoding. Nothing here trusts the token's contents.
    pub fn parse(token: &'a str, expected_typ: &str) -> Result<Self, JwsError> {
        let jws = Self::split(token, expected_typ, |alg| alg == ALG).map_err(|e| match e {
            JwsError::UnsupportedAlgorithm(alg) => JwsError::WrongAlgorithm(alg),
            other => other,
        })?;
        if jws.signature.len() != SIGNATURE_LEN
            || p384::ecdsa::Signature::from_slice(&jws.signature).is_err()
        {
            return Err(JwsError::MalformedSignature);
        }
        Ok(jws)
    }

    /// Splits and checks a token signed with an algorithm `accepts` names. The signature's
    /// form is left to the key that checks it ([`CompactJws::verify_by`]).
    pub fn parse_accepting(
        token: &'a str,
        expected_typ: &str,
        accepts: impl Fn(&str) -> bool,
    ) -> Result<Self, JwsError> {
        Self::split(token, expected_typ, accepts)
    }

    fn split(
        token: &'a str,
        expected_typ: &str,
        accepts: impl Fn(&str) -> bool,
    ) -> Result<Self, JwsError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwsError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::NotCompact);
        };
        let header_bytes = b64::decode(header_b64).map_err(|_| JwsError::BadEncoding("header"))?;
        let header = parse_header(&header_bytes)?;
        if !accepts(&header.alg) {
            return Err(JwsError::UnsupportedAlgorithm(header.alg));
        }
        if header.typ != expected_typ {
            return Err(JwsError::WrongType {
                expected: expected_typ.into(),
                actual: header.typ,
            });
        }
        let payload = b64::decode(payload_b64).map_err(|_| JwsError::BadEncoding("payload"))?;
        let signature =
            b64::decode(signature_b64).map_err(|_| JwsError::BadEncoding("signature"))?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        Ok(CompactJws {
            header,
            signing_input,
            payload,
            signature,
        })
    }

    /// Checks the signature with `verify` (given the signing input and the signature bytes),
    /// then parses the claims strictly. Claims are never read from a token that fails.
    pub fn verify_by<C: DeserializeOwned>(
        &self,
        verify: impl FnOnce(&[u8], &[u8]) -> bool,
    ) -> Result<C, JwsError> {
        if !verify(self.signing_input.as_bytes(), &self.signature) {
            return Err(JwsError::BadSignature);
        }
        self.claims()
    }

    fn claims<C: DeserializeOwned>(&self) -> Result<C, JwsError> {
        if !super::is_json_object(&self.payload) {
            return Err(JwsError::BadClaims("not a JSON object".into()));
        }
        serde_json::from_slice(&self.payload).map_err(|e| JwsError::BadClaims(e.to_string()))
    }

    /// Checks the ES384 signature with `key`, then parses the claims strictly.
    pub fn verify<C: DeserializeOwned>(&self, key: &OwnerPublicKey) -> Result<C, JwsError> {
        self.verify_with(&VerifyingKey::new(key.clone()))
    }

    /// Like [`CompactJws::verify`] with a key prepared once for many checks.
    pub fn verify_with<C: DeserializeOwned>(&self, key: &VerifyingKey) -> Result<C, JwsError> {
        let signature_b64 = b64::encode(&self.signature);
        let valid = jsonwebtoken::crypto::verify(
            &signature_b64,
            self.signing_input.as_bytes(),
            &key.decoding,
            Algorithm::ES384,
        )
        .unwrap_or(false);
        if !valid {
            return Err(JwsError::BadSignature);
        }
        self.claims()
    }
}

/// A public key ready for repeated ES384 checks.
#[derive(Clone)]
pub struct VerifyingKey {
    pub public: OwnerPublicKey,
    /// The key's RFC 7638 thumbprint, computed once.
    pub kid: String,
    decoding: DecodingKey,
}

impl VerifyingKey {
    /// Prepares `public` for signature checks.
    pub fn new(public: OwnerPublicKey) -> Self {
        let decoding = DecodingKey::from_ec_der(&public.sec1_uncompressed());
        let kid = public.thumbprint();
        VerifyingKey {
            public,
            kid,
            decoding,
        }
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?})", self.public)
    }
}

fn parse_header(bytes: &[u8]) -> Result<JwsHeader, JwsError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| JwsError::BadHeader(e.to_string()))?;
    let Some(members) = value.as_object() else {
        return Err(JwsError::BadHeader("not a JSON object".into()));
    };
    if let Some(name) = FORBIDDEN_HEADER_MEMBERS
        .iter()
        .find(|name| members.contains_key(**name))
    {
        return Err(JwsError::ForbiddenHeaderMember((*name).into()));
    }
    // The typed parse refuses duplicate and unknown members.
    serde_json::from_slice(bytes).map_err(|e| JwsError::BadHeader(e.to_string()))
}

/// A JWT NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericDate(pub f64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        if !seconds.is_finite() || seconds.abs() > 1e15 {
            return Err(serde::de::Error::custom("a date out of range"));
        }
        Ok(NumericDate(seconds))
    }
}

/// The claims of a claim proof or login assertion: exactly these members, nothing else.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonceClaims {
    pub aud: String,
    pub nonce: String,
    pub iat: NumericDate,
    pub exp: NumericDate,
}

/// The time rules shared by every short-lived token the node accepts.
#[derive(Debug, Clone, Copy)]
pub struct LifetimeRules {
    /// The longest `exp - iat` accepted, in seconds.
    pub max_lifetime: i64,
    /// How far in the future `iat` may be, in seconds, for clock skew.
    pub max_future_iat: i64,
}

/// Short-lived proofs and assertions: at most 300 s long, issued at most 60 s ahead.
pub const PROOF_LIFETIME: LifetimeRules = LifetimeRules {
    max_lifetime: 300,
    max_future_iat: 60,
};

impl LifetimeRules {
    /// Checks `iat` and `exp` against `now` (seconds since the epoch).
    /// Dates are compared as given (fractions included), so rounding cannot stretch a lifetime.
    pub fn check(&self, iat: NumericDate, exp: NumericDate, now: i64) -> Result<(), JwsError> {
        let now = now as f64;
        if exp.0 <= now {
            return Err(JwsError::Expired);
        }
        if iat.0 > now + self.max_future_iat as f64 {
            return Err(JwsError::IssuedInFuture);
        }
        if exp.0 <= iat.0 {
            return Err(JwsError::BadClaims("exp is not after iat".into()));
        }
        if exp.0 - iat.0 > self.max_lifetime as f64 {
            return Err(JwsError::LifetimeTooLong(self.max_lifetime));
        }
        Ok(())
    }
}

/// Signs claims as a compact ES384 JWS. Used by the CLI and tests; the browser signs its own.
pub fn sign_es384(
    key: &super::jwk::OwnerPrivateKey,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    use p384::ecdsa::signature::Signer;
    let signing_input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let signature: p384::ecdsa::Signature = key.signing_key().sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64::encode(&signature.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jwk::OwnerPrivateKey;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Claims {
        aud: String,
        iat: NumericDate,
        exp: NumericDate,
    }

    const TYP: &str = "test+jwt";

    fn token(key: &OwnerPrivateKey, header: serde_json::Value) -> String {
        sign_es384(key, &header, &json!({"aud": "a", "iat": 1, "exp": 2}))
    }

    #[test]
    fn a_well_formed_token_verifies() {
        let key = OwnerPrivateKey::generate();
        let jwt = token(&key, json!({"alg": "ES384", "typ": TYP}));
        let jws = CompactJws::parse(&jwt, TYP).unwrap();
        let claims: Claims = jws.verify(&key.public_key()).unwrap();
        assert_eq!(claims.aud, "a");
    }

    #[test]
    fn another_key_does_not_verify() {
        let key = OwnerPrivateKey::generate();
        let jwt = token(&key, json!({"alg": "ES384", "typ": TYP}));
        let jws = CompactJws::parse(&jwt, TYP).unwrap();
        let other = OwnerPrivateKey::generate().public_key();
        assert_eq!(
            jws.verify::<Claims>(&other).unwrap_err(),
            JwsError::BadSignature
        );
    }

    #[test]
    fn forbidden_members_wrong_alg_and_wrong_typ_are_refused() {
        let key = OwnerPrivateKey::generate();
        for member in ["crit", "jwk", "jku", "x5u", "x5c"] {
            let mut header = json!({"alg": "ES384", "typ": TYP});
            header[member] = json!(["x"]);
            let jwt = token(&key, header);
            assert_eq!(
                CompactJws::parse(&jwt, TYP).err(),
                Some(JwsError::ForbiddenHeaderMember(member.into()))
            );
        }
        let jwt = token(&key, json!({"alg": "es384", "typ": TYP}));
        assert!(matches!(
            CompactJws::parse(&jwt, TYP).err(),
            Some(JwsError::WrongAlgorithm(_))
        ));
        let jwt = token(&key, json!({"alg": "ES384", "typ": "JWT"}));
        assert!(matches!(
            CompactJws::parse(&jwt, TYP).err(),
            Some(JwsError::WrongType { .. })
        ));
    }

    #[test]
    fn duplicate_header_members_are_refused() {
        let header = b64::encode(br#"{"alg":"ES384","typ":"test+jwt","alg":"none"}"#);
        let jwt = format!("{header}.e30.{}", b64::encode(&[1u8; 96]));
        assert!(matches!(
            CompactJws::parse(&jwt, TYP).err(),
            Some(JwsError::BadHeader(_))
        ));
    }

    #[test]
    fn a_null_kid_is_refused_not_read_as_absent() {
        let key = OwnerPrivateKey::generate();
        let jwt = token(&key, json!({"alg": "ES384", "typ": TYP, "kid": null}));
        assert!(matches!(
            CompactJws::parse(&jwt, TYP).err(),
            Some(JwsError::BadHeader(_))
        ));
        let jwt = token(&key, json!({"alg": "ES384", "typ": TYP, "kid": "k"}));
        assert_eq!(
            CompactJws::parse(&jwt, TYP).map(|jws| jws.header.kid).ok(),
            Some(Some("k".into()))
        );
    }

    #[test]
    fn zero_or_out_of_range_or_der_signatures_are_refused() {
        let key = OwnerPrivateKey::generate();
        let jwt = token(&key, json!({"alg": "ES384", "typ": TYP}));
        let signing_input = jwt.rsplit_once('.').unwrap().0;
        for signature in [
            vec![0u8; 96],
            vec![0xffu8; 96],
            vec![1u8; 95],
            vec![1u8; 104],
        ] {
            let forged = format!("{signing_input}.{}", b64::encode(&signature));
            assert_eq!(
                CompactJws::parse(&forged, TYP).err(),
                Some(JwsError::MalformedSignature)
            );
        }
    }

    #[test]
    fn oversized_and_non_compact_tokens_are_refused_before_parsing() {
        assert_eq!(
            CompactJws::parse(&"a".repeat(MAX_TOKEN_LEN + 1), TYP).err(),
            Some(JwsError::TooLong)
        );
        assert_eq!(
            CompactJws::parse("a.b", TYP).err(),
            Some(JwsError::NotCompact)
        );
        assert_eq!(
            CompactJws::parse("a.b.c.d", TYP).err(),
            Some(JwsError::NotCompact)
        );
    }

    #[test]
    fn lifetime_rules_hold() {
        let rules = PROOF_LIFETIME;
        let now = 1_000_000;
        assert!(
            rules
                .check(
                    NumericDate(now as f64),
                    NumericDate((now + 300) as f64),
                    now
                )
                .is_ok()
        );
        assert_eq!(
            rules.check(
                NumericDate(now as f64),
                NumericDate((now + 301) as f64),
                now
            ),
            Err(JwsError::LifetimeTooLong(300))
        );
        assert_eq!(
            rules.check(NumericDate((now - 10) as f64), NumericDate(now as f64), now),
            Err(JwsError::Expired)
        );
        assert_eq!(
            rules.check(
                NumericDate((now + 61) as f64),
                NumericDate((now + 100) as f64),
                now
            ),
            Err(JwsError::IssuedInFuture)
        );
    }
}
