//! P-384 JSON Web Keys (RFC 7517/7518 §6.2): strict parsing, curve checks and RFC 7638 thumbprints.

use p384::elliptic_curve::sec1::ToEncodedPoint;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::b64;

/// Length of a P-384 coordinate or scalar in bytes.
pub const COORDINATE_LEN: usize = 48;

/// Why a JWK was refused. Messages complete the sentence "the key ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("is not a JSON object with the members kty, crv, x and y: {0}")]
    Shape(String),
    #[error("must be a public key, but it carries the private member d")]
    CarriesPrivateKey,
    #[error("must have kty \"EC\"")]
    WrongKeyType,
    #[error("must be on curve P-384 (crv \"P-384\")")]
    WrongCurve,
    #[error("has an {0} coordinate that {1}")]
    BadCoordinate(&'static str, String),
    #[error("is not a point on P-384")]
    NotOnCurve,
    #[error("has alg {0:?}, but only ES384 is allowed")]
    WrongAlgorithm(String),
    #[error("has use {0:?}, but only \"sig\" is allowed")]
    WrongUse(String),
    #[error("has key_ops other than verify")]
    WrongKeyOps,
    #[error("has a kid that is not its RFC 7638 thumbprint")]
    WrongKid,
    #[error("has a private scalar d that {0}")]
    BadPrivateScalar(String),
    #[error("has a private scalar that does not match its public coordinates")]
    MismatchedPrivateKey,
}

/// The members a P-384 JWK may carry on the wire. Duplicate and unknown members are refused,
/// and so is `null` for an optional member.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JwkMembers {
    kty: String,
    crv: String,
    x: String,
    y: String,
    #[serde(default)]
    d: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    alg: Option<String>,
    #[serde(default, rename = "use", deserialize_with = "super::present")]
    public_key_use: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    key_ops: Option<Vec<String>>,
    /// WebCrypto's `ext`: read (it must be a boolean) and otherwise ignored.
    #[serde(default, rename = "ext", deserialize_with = "super::present")]
    _ext: Option<bool>,
    #[serde(default, deserialize_with = "super::present")]
    kid: Option<String>,
}

/// A P-384 public key that has passed every check: the right type and curve, full-length
/// coordinates, and a point on the curve.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerPublicKey {
    key: p384::PublicKey,
    x: String,
    y: String,
}

impl std::fmt::Debug for OwnerPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerPublicKey({})", self.thumbprint())
    }
}

/// A public JWK with only the members RFC 7638 hashes, as published in the JWKS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
}

impl OwnerPublicKey {
    /// Parses a public JWK from JSON text, refusing anything but a bare P-384 public key.
    pub fn from_json(text: &str) -> Result<Self, JwkError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| JwkError::Shape(e.to_string()))?;
        if !value.is_object() {
            return Err(JwkError::Shape("not a JSON object".into()));
        }
        if value.get("d").is_some() {
            return Err(JwkError::CarriesPrivateKey);
        }
        // The typed parse refuses duplicated members, where a generic one would keep the last.
        let members: JwkMembers =
            serde_json::from_str(text).map_err(|e| JwkError::Shape(e.to_string()))?;
        let key = Self::from_members(&members)?;
        check_optional_members(&members, &key)?;
        Ok(key)
    }

    fn from_members(members: &JwkMembers) -> Result<Self, JwkError> {
        if members.kty != "EC" {
            return Err(JwkError::WrongKeyType);
        }
        if members.crv != "P-384" {
            return Err(JwkError::WrongCurve);
        }
        let x = b64::decode_array::<COORDINATE_LEN>(&members.x)
            .map_err(|e| JwkError::BadCoordinate("x", e.to_string()))?;
        let y = b64::decode_array::<COORDINATE_LEN>(&members.y)
            .map_err(|e| JwkError::BadCoordinate("y", e.to_string()))?;
        Self::from_coordinates(&x, &y)
    }

    /// Builds a key from affine coordinates, checking that the point is on the curve.
    pub fn from_coordinates(
        x: &[u8; COORDINATE_LEN],
        y: &[u8; COORDINATE_LEN],
    ) -> Result<Self, JwkError> {
        let mut sec1 = [0u8; 1 + 2 * COORDINATE_LEN];
        sec1[0] = 0x04;
        sec1[1..1 + COORDINATE_LEN].copy_from_slice(x);
        sec1[1 + COORDINATE_LEN..].copy_from_slice(y);
        let key = p384::PublicKey::from_sec1_bytes(&sec1).map_err(|_| JwkError::NotOnCurve)?;
        Ok(Self::from_verified(key))
    }

    /// Wraps a key that p384 has already validated.
    pub fn from_verified(key: p384::PublicKey) -> Self {
        let point = key.to_encoded_point(false);
        // An uncompressed point always has both coordinates.
        let x = point.x().map(|c| b64::encode(c)).unwrap_or_default();
        let y = point.y().map(|c| b64::encode(c)).unwrap_or_default();
        OwnerPublicKey { key, x, y }
    }

    /// The checked point, for key agreement ([`super::ecdh`]).
    pub fn point(&self) -> &p384::PublicKey {
        &self.key
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url), used as the key id everywhere.
    pub fn thumbprint(&self) -> String {
        b64::encode(&self.thumbprint_digest())
    }

    /// The raw SHA-256 digest behind the thumbprint.
    pub fn thumbprint_digest(&self) -> [u8; 32] {
        let canonical = format!(
            r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#,
            self.x, self.y
        );
        Sha256::digest(canonical.as_bytes()).into()
    }

    /// The bare public JWK.
    pub fn to_jwk(&self) -> PublicJwk {
        PublicJwk {
            kty: "EC".into(),
            crv: "P-384".into(),
            x: self.x.clone(),
            y: self.y.clone(),
        }
    }

    /// The bare public JWK as compact JSON text, as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_jwk()).unwrap_or_default()
    }

    /// The uncompressed SEC1 point (0x04 || x || y).
    pub fn sec1_uncompressed(&self) -> Vec<u8> {
        self.key.to_encoded_point(false).as_bytes().to_vec()
    }
}

fn check_optional_members(members: &JwkMembers, key: &OwnerPublicKey) -> Result<(), JwkError> {
    if let Some(alg) = &members.alg
        && alg != "ES384"
    {
        return Err(JwkError::WrongAlgorithm(alg.clone()));
    }
    match signing_member_problem(
        members.public_key_use.as_deref(),
        members.key_ops.as_deref(),
        members.kid.as_deref(),
        &key.thumbprint(),
    ) {
        Some(SigningMemberProblem::Use(found)) => Err(JwkError::WrongUse(found)),
        Some(SigningMemberProblem::KeyOps) => Err(JwkError::WrongKeyOps),
        Some(SigningMemberProblem::Kid) => Err(JwkError::WrongKid),
        None => Ok(()),
    }
}

/// What is wrong with the optional members of a public signing JWK (RFC 7517 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigningMemberProblem {
    /// `use` is not `sig`.
    Use(String),
    /// `key_ops` names an operation other than `verify`.
    KeyOps,
    /// `kid` is not the key's RFC 7638 thumbprint.
    Kid,
}

/// Checks `use`, `key_ops` and `kid` of a public key that only verifies signatures; `ext` may
/// be anything.
pub(crate) fn signing_member_problem(
    public_key_use: Option<&str>,
    key_ops: Option<&[String]>,
    kid: Option<&str>,
    thumbprint: &str,
) -> Option<SigningMemberProblem> {
    if let Some(found) = public_key_use
        && found != "sig"
    {
        return Some(SigningMemberProblem::Use(found.to_owned()));
    }
    if key_ops.is_some_and(|ops| ops.iter().any(|op| op != "verify")) {
        return Some(SigningMemberProblem::KeyOps);
    }
    if kid.is_some_and(|kid| kid != thumbprint) {
        return Some(SigningMemberProblem::Kid);
    }
    None
}

/// The owner's private key: a P-384 scalar with its public key. Zeroized on drop.
pub struct OwnerPrivateKey {
    secret: p384::SecretKey,
}

impl std::fmt::Debug for OwnerPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerPrivateKey(..)")
    }
}

/// The private JWK as it travels inside the wrapped-key JWE.
#[derive(Serialize)]
struct PrivateJwkOut<'a> {
    kty: &'a str,
    crv: &'a str,
    x: &'a str,
    y: &'a str,
    d: &'a str,
}

impl OwnerPrivateKey {
    /// Makes a new key pair from the operating system's random source.
    pub fn generate() -> Self {
        OwnerPrivateKey {
            secret: p384::SecretKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// Builds a key from a 48-byte big-endian scalar, refusing zero and values at or above n.
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self, JwkError> {
        if bytes.len() != COORDINATE_LEN {
            return Err(JwkError::BadPrivateScalar(format!(
                "must be {COORDINATE_LEN} bytes, not {}",
                bytes.len()
            )));
        }
        let secret = p384::SecretKey::from_slice(bytes).map_err(|_| {
            JwkError::BadPrivateScalar("is zero or not below the group order".into())
        })?;
        Ok(OwnerPrivateKey { secret })
    }

    /// Parses a private JWK (as found inside the JWE, or in a key file), checking that d
    /// belongs to x and y.
    pub fn from_json(text: &[u8]) -> Result<Self, JwkError> {
        if !super::is_json_object(text) {
            return Err(JwkError::Shape("not a JSON object".into()));
        }
        let members: JwkMembers =
            serde_json::from_slice(text).map_err(|e| JwkError::Shape(e.to_string()))?;
        let public = OwnerPublicKey::from_members(&members)?;
        let d = members
            .d
            .as_deref()
            .ok_or_else(|| JwkError::BadPrivateScalar("is missing".into()))?;
        let scalar = Zeroizing::new(
            b64::decode_array::<COORDINATE_LEN>(d)
                .map_err(|e| JwkError::BadPrivateScalar(e.to_string()))?,
        );
        let private = Self::from_scalar_bytes(scalar.as_slice())?;
        if private.public_key() != public {
            return Err(JwkError::MismatchedPrivateKey);
        }
        Ok(private)
    }

    /// The public half.
    pub fn public_key(&self) -> OwnerPublicKey {
        OwnerPublicKey::from_verified(self.secret.public_key())
    }

    /// The 48-byte scalar. The caller must not keep it longer than needed.
    pub fn scalar_bytes(&self) -> Zeroizing<[u8; COORDINATE_LEN]> {
        let mut out = Zeroizing::new([0u8; COORDINATE_LEN]);
        out.copy_from_slice(&self.secret.to_bytes());
        out
    }

    /// The private JWK `{"kty","crv","x","y","d"}` as compact JSON bytes.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let public = self.public_key();
        let d = Zeroizing::new(b64::encode(self.scalar_bytes().as_slice()));
        let jwk = PrivateJwkOut {
            kty: "EC",
            crv: "P-384",
            x: &public.x,
            y: &public.y,
            d: &d,
        };
        Zeroizing::new(serde_json::to_vec(&jwk).unwrap_or_default())
    }

    /// An ECDSA signing key for ES384.
    pub fn signing_key(&self) -> p384::ecdsa::SigningKey {
        p384::ecdsa::SigningKey::from(&self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7517 Appendix A.1 has no P-384 key; this one comes from the project vector.
    const X: &str = "F4nG4N6CIn0tx5QplcTpIIyc1iKqaz3Wt1C738U-F9ivYqKuGfquKmCuQ5ZCYrrB";
    const Y: &str = "qPt1M64Ktf1q99PNZ1-2j3z3zyUuksJny4_VasmmNX28tBjtFHdw9ZVUO7TtJP_G";

    fn jwk(extra: &str) -> String {
        format!(r#"{{"kty":"EC","crv":"P-384","x":"{X}","y":"{Y}"{extra}}}"#)
    }

    #[test]
    fn a_valid_public_key_parses_and_round_trips() {
        let key = OwnerPublicKey::from_json(&jwk("")).unwrap();
        assert_eq!(key.to_jwk().x, X);
        assert_eq!(OwnerPublicKey::from_json(&key.to_json()).unwrap(), key);
    }

    #[test]
    fn a_key_carrying_d_is_refused_even_when_null() {
        assert_eq!(
            OwnerPublicKey::from_json(&jwk(r#","d":"AAAA""#)),
            Err(JwkError::CarriesPrivateKey)
        );
        assert_eq!(
            OwnerPublicKey::from_json(&jwk(r#","d":null"#)),
            Err(JwkError::CarriesPrivateKey)
        );
    }

    #[test]
    fn another_curve_or_type_is_refused() {
        let p256 = jwk("").replace("P-384", "P-256");
        assert_eq!(OwnerPublicKey::from_json(&p256), Err(JwkError::WrongCurve));
        let rsa = jwk("").replace(r#""EC""#, r#""RSA""#);
        assert_eq!(OwnerPublicKey::from_json(&rsa), Err(JwkError::WrongKeyType));
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let mut y = b64::decode(Y).unwrap();
        y[47] ^= 1;
        let off = jwk("").replace(Y, &b64::encode(&y));
        assert_eq!(OwnerPublicKey::from_json(&off), Err(JwkError::NotOnCurve));
    }

    #[test]
    fn short_coordinates_and_duplicates_and_unknown_members_are_refused() {
        let short = jwk("").replace(X, &X[..60]);
        assert!(matches!(
            OwnerPublicKey::from_json(&short),
            Err(JwkError::BadCoordinate("x", _))
        ));
        let dup = jwk(r#","x":"AA""#);
        assert!(matches!(
            OwnerPublicKey::from_json(&dup),
            Err(JwkError::Shape(_))
        ));
        let unknown = jwk(r#","jku":"https://evil.example""#);
        assert!(matches!(
            OwnerPublicKey::from_json(&unknown),
            Err(JwkError::Shape(_))
        ));
    }

    #[test]
    fn optional_members_must_agree_with_the_key() {
        assert!(OwnerPublicKey::from_json(&jwk(r#","alg":"ES384","use":"sig""#)).is_ok());
        assert!(matches!(
            OwnerPublicKey::from_json(&jwk(r#","alg":"ES256""#)),
            Err(JwkError::WrongAlgorithm(_))
        ));
        assert_eq!(
            OwnerPublicKey::from_json(&jwk(r#","kid":"nope""#)),
            Err(JwkError::WrongKid)
        );
    }

    #[test]
    fn the_thumbprint_follows_rfc_7638() {
        let key = OwnerPublicKey::from_json(&jwk("")).unwrap();
        let canonical = format!(r#"{{"crv":"P-384","kty":"EC","x":"{X}","y":"{Y}"}}"#);
        assert_eq!(
            key.thumbprint(),
            b64::encode(&Sha256::digest(canonical.as_bytes()))
        );
        assert_eq!(key.thumbprint().len(), 43);
    }

    #[test]
    fn a_private_jwk_must_match_its_public_half() {
        let private = OwnerPrivateKey::generate();
        let text = private.to_json();
        let parsed = OwnerPrivateKey::from_json(&text).unwrap();
        assert_eq!(parsed.public_key(), private.public_key());
        let other = OwnerPrivateKey::generate();
        let mixed = String::from_utf8(text.to_vec()).unwrap().replace(
            &private.public_key().to_jwk().x,
            &other.public_key().to_jwk().x,
        );
        assert!(OwnerPrivateKey::from_json(mixed.as_bytes()).is_err());
    }

    #[test]
    fn scalars_of_zero_or_the_group_order_are_refused() {
        assert!(OwnerPrivateKey::from_scalar_bytes(&[0u8; 48]).is_err());
        let order = hex_48(
            "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
        );
        assert!(OwnerPrivateKey::from_scalar_bytes(&order).is_err());
    }

    #[test]
    fn optional_members_that_are_null_are_refused_not_read_as_absent() {
        for member in ["alg", "use", "key_ops", "ext", "kid"] {
            let text = jwk(&format!(r#","{member}":null"#));
            assert!(
                matches!(OwnerPublicKey::from_json(&text), Err(JwkError::Shape(_))),
                "{member}"
            );
        }
    }

    fn hex_48(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }
}
