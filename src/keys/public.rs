//! Credential public keys: P-256, P-384, Ed25519 and RSA keys read strictly from a JWK, a PEM
//! SubjectPublicKeyInfo or an OpenSSH public key line, stored as a canonical JWK and named by
//! their RFC 7638 thumbprint; and the JWS check of a credential's assertions.

use der::Decode;
use der::asn1::{BitStringRef, ObjectIdentifier, UintRef};
use jsonwebtoken::DecodingKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoRef;

use crate::jose::b64;
use crate::jose::jwk::{SigningMemberProblem, signing_member_problem};

/// Public key text longer than this is refused before parsing (an 8192-bit RSA key in any
/// accepted format is well under it).
pub const MAX_PUBLIC_KEY_LEN: usize = 8 * 1024;
/// The smallest and largest RSA moduli accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
pub const MAX_RSA_BITS: usize = 8192;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The JWS algorithms a credential may sign its assertions with (RFC 7518 §3, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    Es256,
    Es384,
    EdDsa,
    Rs256,
    Ps256,
}

impl JwsAlgorithm {
    /// Every algorithm, for parsing a token before its key is known.
    pub const ALL: [JwsAlgorithm; 5] = [
        JwsAlgorithm::Es256,
        JwsAlgorithm::Es384,
        JwsAlgorithm::EdDsa,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Ps256,
    ];

    /// The algorithm's name in a JWS header and a JWK.
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Ps256 => "PS256",
        }
    }

    /// The algorithm named `name`, if it is one of ours.
    pub fn parse(name: &str) -> Option<Self> {
        JwsAlgorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            JwsAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            JwsAlgorithm::Es384 => jsonwebtoken::Algorithm::ES384,
            JwsAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            JwsAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            JwsAlgorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
        }
    }
}

/// Why a public key was refused. Messages complete the sentence "public_key ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is longer than {MAX_PUBLIC_KEY_LEN} bytes")]
    TooLong,
    #[error(
        "is not a JWK object, a PEM public key (-----BEGIN PUBLIC KEY-----) or an OpenSSH public \
         key line"
    )]
    UnknownFormat,
    #[error("is a private key; send only the public key ({0})")]
    PrivateKey(&'static str),
    #[error("is not a valid JWK: {0}")]
    Jwk(String),
    #[error("is not a valid PEM public key: {0}")]
    Pem(String),
    #[error("is not a valid SubjectPublicKeyInfo: {0}")]
    Der(String),
    #[error("is not a valid OpenSSH public key: {0}")]
    Ssh(String),
    #[error("is a key type this node does not accept ({0}); use P-256, P-384, Ed25519 or RSA")]
    Unsupported(String),
    #[error("is not a point on {0}")]
    NotOnCurve(&'static str),
    #[error("is a small-order or non-canonical Ed25519 point")]
    WeakEd25519,
    #[error("is an RSA key of {0} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted")]
    RsaSize(usize),
    #[error("has an RSA exponent that is not an odd number from 3 to 2^32 - 1")]
    RsaExponent,
    #[error("has an RSA modulus that is even")]
    RsaModulus,
    #[error("has alg {0:?}, which does not fit its key type")]
    WrongAlgorithm(String),
    #[error("has use {0:?}, but only \"sig\" is allowed")]
    WrongUse(String),
    #[error("has key_ops other than verify")]
    WrongKeyOps,
    #[error("has a kid that is not its RFC 7638 thumbprint")]
    WrongKid,
}

/// An RSA public key: modulus and exponent, big-endian without leading zeros.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaKey {
    /// Checks a modulus and exponent: minimal encodings (leading zero bytes are refused by the
    /// callers that read signed integers, and stripped here for unsigned ones), a modulus of
    /// 2048 to 8192 bits that is odd, and an odd exponent from 3 to 2^32 - 1.
    pub fn new(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_length(n);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(KeyError::RsaSize(bits));
        }
        if n.last().is_none_or(|b| b & 1 == 0) {
            return Err(KeyError::RsaModulus);
        }
        let exponent_ok = !e.is_empty()
            && e.len() <= 4
            && e.last().is_some_and(|b| b & 1 == 1)
            && (e.len() > 1 || e[0] >= 3);
        if !exponent_ok {
            return Err(KeyError::RsaExponent);
        }
        Ok(RsaKey {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// The modulus, big-endian, without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// The public exponent, big-endian, without leading zeros.
    pub fn exponent(&self) -> &[u8] {
        &self.e
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        bit_length(&self.n)
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// A credential's public key, checked: a point on its curve, a strong Ed25519 point, or an
/// RSA key of an accepted size.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    Ed25519([u8; 32]),
    Rsa(RsaKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.description(),
            self.thumbprint()
        )
    }
}

/// The members a public JWK of any accepted type may carry. Unknown and duplicated members
/// are refused, and so is `null` for an optional member.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JwkMembers {
    kty: String,
    #[serde(default, deserialize_with = "crate::jose::present")]
    crv: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    x: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    y: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    n: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    e: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    alg: Option<String>,
    #[serde(default, rename = "use", deserialize_with = "crate::jose::present")]
    public_key_use: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    key_ops: Option<Vec<String>>,
    /// WebCrypto's `ext`: read (it must be a boolean) and otherwise ignored.
    #[serde(default, rename = "ext", deserialize_with = "crate::jose::present")]
    _ext: Option<bool>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    kid: Option<String>,
}

/// JWK members that only a private or symmetric key carries.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

impl PublicKey {
    /// Reads a JWK object; returns the key and the algorithm its `alg` member names, if any.
    pub fn from_jwk_json(text: &str) -> Result<(Self, Option<JwsAlgorithm>), KeyError> {
        if text.len() > MAX_PUBLIC_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| KeyError::Jwk(e.to_string()))?;
        let Some(object) = value.as_object() else {
            return Err(KeyError::Jwk("not a JSON object".into()));
        };
        if PRIVATE_MEMBERS.iter().any(|m| object.contains_key(*m)) {
            return Err(KeyError::PrivateKey(
                "a JWK without d, p, q, dp, dq, qi or k",
            ));
        }
        let members: JwkMembers =
            serde_json::from_str(text).map_err(|e| KeyError::Jwk(e.to_string()))?;
        let key = Self::from_members(&members)?;
        let alg = match &members.alg {
            None => None,
            Some(name) => {
                let named = match name.as_str() {
                    // RFC 9864's fully specified name for EdDSA over Ed25519.
                    "Ed25519" => Some(JwsAlgorithm::EdDsa),
                    other => JwsAlgorithm::parse(other),
                };
                match named {
                    Some(alg) if key.allows(alg) => Some(alg),
                    _ => return Err(KeyError::WrongAlgorithm(name.clone())),
                }
            }
        };
        match signing_member_problem(
            members.public_key_use.as_deref(),
            members.key_ops.as_deref(),
            members.kid.as_deref(),
            &key.thumbprint(),
        ) {
            Some(SigningMemberProblem::Use(found)) => Err(KeyError::WrongUse(found)),
            Some(SigningMemberProblem::KeyOps) => Err(KeyError::WrongKeyOps),
            Some(SigningMemberProblem::Kid) => Err(KeyError::WrongKid),
            None => Ok((key, alg)),
        }
    }

    fn from_members(members: &JwkMembers) -> Result<Self, KeyError> {
        let member = |value: &Option<String>, name: &str| -> Result<Vec<u8>, KeyError> {
            let text = value
                .as_deref()
                .ok_or_else(|| KeyError::Jwk(format!("member {name} is missing")))?;
            b64::decode(text).map_err(|_| KeyError::Jwk(format!("member {name} is not base64url")))
        };
        let absent = |names: &[(&str, bool)]| -> Result<(), KeyError> {
            match names.iter().find(|(_, present)| *present) {
                Some((name, _)) => Err(KeyError::Jwk(format!(
                    "member {name} does not belong to kty {:?}",
                    members.kty
                ))),
                None => Ok(()),
            }
        };
        match members.kty.as_str() {
            "EC" => {
                absent(&[("n", members.n.is_some()), ("e", members.e.is_some())])?;
                let x = member(&members.x, "x")?;
                let y = member(&members.y, "y")?;
                let (curve, length) = match members.crv.as_deref() {
                    Some("P-256") => ("P-256", 32),
                    Some("P-384") => ("P-384", 48),
                    Some(other) => return Err(KeyError::Unsupported(format!("curve {other}"))),
                    None => return Err(KeyError::Jwk("member crv is missing".into())),
                };
                if x.len() != length || y.len() != length {
                    return Err(KeyError::Jwk(format!(
                        "coordinates of a {curve} key must be {length} bytes each"
                    )));
                }
                let mut point = Vec::with_capacity(1 + 2 * length);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::from_sec1(curve, &point)
            }
            "OKP" => {
                absent(&[
                    ("y", members.y.is_some()),
                    ("n", members.n.is_some()),
                    ("e", members.e.is_some()),
                ])?;
                match members.crv.as_deref() {
                    Some("Ed25519") => {}
                    Some(other) => return Err(KeyError::Unsupported(format!("curve {other}"))),
                    None => return Err(KeyError::Jwk("member crv is missing".into())),
                }
                let x = member(&members.x, "x")?;
                Self::ed25519(&x)
            }
            "RSA" => {
                absent(&[
                    ("crv", members.crv.is_some()),
                    ("x", members.x.is_some()),
                    ("y", members.y.is_some()),
                ])?;
                let n = member(&members.n, "n")?;
                let e = member(&members.e, "e")?;
                // RFC 7518 §2: a Base64urlUInt uses the minimum number of octets.
                if n.first() == Some(&0) || e.first() == Some(&0) {
                    return Err(KeyError::Jwk(
                        "members n and e must not have leading zero bytes".into(),
                    ));
                }
                Ok(PublicKey::Rsa(RsaKey::new(&n, &e)?))
            }
            other => Err(KeyError::Unsupported(format!("kty {other}"))),
        }
    }

    /// Reads a key from text: a PEM SubjectPublicKeyInfo or an OpenSSH public key line.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        if text.len() > MAX_PUBLIC_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        let text = text.trim();
        if text.starts_with("-----BEGIN ") {
            Self::from_pem(text)
        } else if text.starts_with('{') {
            Ok(Self::from_jwk_json(text)?.0)
        } else {
            super::ssh::parse_public_key_line(text)
        }
    }

    /// Reads a PEM `PUBLIC KEY` (a SubjectPublicKeyInfo, RFC 7468 §13).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let begin = text.lines().next().unwrap_or_default();
        if begin.contains("PRIVATE KEY") {
            return Err(KeyError::PrivateKey(
                "for example `openssl pkey -in key.pem -pubout` or the .pub file of an SSH key",
            ));
        }
        if begin == "-----BEGIN RSA PUBLIC KEY-----" {
            return Err(KeyError::Pem(
                "this is PKCS#1; convert it with `openssl rsa -RSAPublicKey_in -pubout`".into(),
            ));
        }
        if begin == "-----BEGIN CERTIFICATE-----" {
            return Err(KeyError::Pem(
                "this is a certificate; take its key with `openssl x509 -pubkey -noout`".into(),
            ));
        }
        // The decoder wants the document to end with a line break.
        let document = format!("{text}\n");
        let (label, der) = pem_rfc7468::decode_vec(document.as_bytes())
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Pem(format!(
                "the label is {label:?}, not \"PUBLIC KEY\""
            )));
        }
        Self::from_spki_der(&der)
    }

    /// Reads a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7; RFC 5480, 3279 and 8410 for the
    /// algorithms).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki =
            SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Der(e.to_string()))?;
        let bits: BitStringRef<'_> = spki.subject_public_key;
        let key_bytes = bits
            .as_bytes()
            .ok_or_else(|| KeyError::Der("the key bit string is not whole bytes".into()))?;
        let parameters = spki.algorithm.parameters;
        match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = parameters
                    .ok_or_else(|| KeyError::Der("an EC key names no curve".into()))?
                    .decode_as::<ObjectIdentifier>()
                    .map_err(|_| KeyError::Der("an EC key's curve is not a named curve".into()))?;
                match curve {
                    OID_P256 => Self::from_sec1("P-256", key_bytes),
                    OID_P384 => Self::from_sec1("P-384", key_bytes),
                    other => Err(KeyError::Unsupported(format!("curve {other}"))),
                }
            }
            OID_RSA => {
                if !parameters.is_some_and(|p| p.is_null()) {
                    return Err(KeyError::Der("RSA parameters must be NULL".into()));
                }
                let (n, e) = der::asn1::AnyRef::from_der(key_bytes)
                    .and_then(|any| {
                        any.sequence(|reader| {
                            let n = UintRef::decode(reader)?;
                            let e = UintRef::decode(reader)?;
                            Ok((n, e))
                        })
                    })
                    .map_err(|e| KeyError::Der(format!("RSAPublicKey: {e}")))?;
                Ok(PublicKey::Rsa(RsaKey::new(n.as_bytes(), e.as_bytes())?))
            }
            OID_ED25519 => {
                if parameters.is_some() {
                    return Err(KeyError::Der("Ed25519 keys have no parameters".into()));
                }
                Self::ed25519(key_bytes)
            }
            other => Err(KeyError::Unsupported(format!("algorithm {other}"))),
        }
    }

    /// A key from an uncompressed SEC1 point on the named curve. Compressed points are refused,
    /// as every format here carries both coordinates.
    pub fn from_sec1(curve: &'static str, point: &[u8]) -> Result<Self, KeyError> {
        let size = match curve {
            "P-256" => 32,
            "P-384" => 48,
            other => return Err(KeyError::Unsupported(format!("curve {other}"))),
        };
        if point.len() != 1 + 2 * size || point[0] != 0x04 {
            return Err(KeyError::NotOnCurve(curve));
        }
        match curve {
            "P-256" => p256::PublicKey::from_sec1_bytes(point)
                .map(PublicKey::P256)
                .map_err(|_| KeyError::NotOnCurve("P-256")),
            "P-384" => p384::PublicKey::from_sec1_bytes(point)
                .map(PublicKey::P384)
                .map_err(|_| KeyError::NotOnCurve("P-384")),
            other => Err(KeyError::Unsupported(format!("curve {other}"))),
        }
    }

    /// An Ed25519 key from its 32-byte encoding, refusing small-order and non-canonical points.
    pub fn ed25519(bytes: &[u8]) -> Result<Self, KeyError> {
        let point: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Jwk("an Ed25519 key is 32 bytes".into()))?;
        if is_weak_ed25519(&point) {
            return Err(KeyError::WeakEd25519);
        }
        Ok(PublicKey::Ed25519(point))
    }

    /// The uncompressed SEC1 point of an EC key.
    pub fn sec1_uncompressed(&self) -> Option<Vec<u8>> {
        match self {
            PublicKey::P256(key) => Some(key.to_encoded_point(false).as_bytes().to_vec()),
            PublicKey::P384(key) => Some(
                p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(key, false)
                    .as_bytes()
                    .to_vec(),
            ),
            _ => None,
        }
    }

    /// The JWK members RFC 7638 hashes, in its order, as compact JSON: also the stored form.
    pub fn to_jwk_json(&self) -> String {
        match self {
            PublicKey::P256(_) | PublicKey::P384(_) => {
                let point = self.sec1_uncompressed().unwrap_or_default();
                let half = (point.len().saturating_sub(1)) / 2;
                let (x, y) = point.get(1..).unwrap_or_default().split_at(half);
                format!(
                    r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                    self.curve_name(),
                    b64::encode(x),
                    b64::encode(y)
                )
            }
            PublicKey::Ed25519(x) => {
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    b64::encode(x)
                )
            }
            PublicKey::Rsa(key) => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(&key.e),
                b64::encode(&key.n)
            ),
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url): the credential's kid.
    pub fn thumbprint(&self) -> String {
        b64::encode(&Sha256::digest(self.to_jwk_json().as_bytes()))
    }

    fn curve_name(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "P-256",
            PublicKey::P384(_) => "P-384",
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::Rsa(_) => "RSA",
        }
    }

    /// A short description: the curve, or RSA and its size.
    pub fn description(&self) -> String {
        match self {
            PublicKey::Rsa(key) => format!("RSA {}", key.bits()),
            other => other.curve_name().to_owned(),
        }
    }

    /// The JWS algorithm a key signs with unless its JWK names another it allows.
    pub fn default_algorithm(&self) -> JwsAlgorithm {
        match self {
            PublicKey::P256(_) => JwsAlgorithm::Es256,
            PublicKey::P384(_) => JwsAlgorithm::Es384,
            PublicKey::Ed25519(_) => JwsAlgorithm::EdDsa,
            PublicKey::Rsa(_) => JwsAlgorithm::Rs256,
        }
    }

    /// Whether the key may sign with `alg`.
    pub fn allows(&self, alg: JwsAlgorithm) -> bool {
        match self {
            PublicKey::Rsa(_) => matches!(alg, JwsAlgorithm::Rs256 | JwsAlgorithm::Ps256),
            other => other.default_algorithm() == alg,
        }
    }

    fn decoding_key(&self) -> DecodingKey {
        match self {
            PublicKey::P256(_) | PublicKey::P384(_) => {
                DecodingKey::from_ec_der(&self.sec1_uncompressed().unwrap_or_default())
            }
            // The aws-lc-rs backend reads the raw 32-byte point.
            PublicKey::Ed25519(x) => DecodingKey::from_ed_der(x),
            PublicKey::Rsa(key) => DecodingKey::from_rsa_raw_components(&key.n, &key.e),
        }
    }
}

/// Whether an Ed25519 encoding is non-canonical (y ≥ p) or a point of small order (RFC 8032
/// §5.1.3; the low-order points listed by C2SP's ed25519 vectors), with either sign bit.
fn is_weak_ed25519(point: &[u8; 32]) -> bool {
    let mut y = *point;
    y[31] &= 0x7f;
    let at_least_p = y[0] >= 0xed && y[1..31].iter().all(|b| *b == 0xff) && y[31] == 0x7f;
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    const ORDER_EIGHT: [[u8; 32]; 2] = [
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ];
    at_least_p || y == [0u8; 32] || y == one || y == minus_one || ORDER_EIGHT.contains(&y)
}

/// A credential's key ready for repeated checks of its JWS assertions with one algorithm.
#[derive(Clone)]
pub struct CredentialKey {
    pub public: PublicKey,
    /// The key's RFC 7638 thumbprint, computed once.
    pub kid: String,
    /// The one algorithm its assertions must name.
    pub alg: JwsAlgorithm,
    decoding: DecodingKey,
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialKey({:?}, {})", self.public, self.alg.as_str())
    }
}

impl CredentialKey {
    /// Prepares `public` for checks of `alg` signatures; the key must allow the algorithm.
    pub fn new(public: PublicKey, alg: JwsAlgorithm) -> Result<Self, KeyError> {
        if !public.allows(alg) {
            return Err(KeyError::WrongAlgorithm(alg.as_str().into()));
        }
        let decoding = public.decoding_key();
        let kid = public.thumbprint();
        Ok(CredentialKey {
            public,
            kid,
            alg,
            decoding,
        })
    }

    /// Whether `signature` is this key's `alg` signature over `signing_input`. A token naming
    /// another algorithm than the credential's is refused before any cryptography.
    pub fn verify_jws(&self, alg: JwsAlgorithm, signing_input: &[u8], signature: &[u8]) -> bool {
        if alg != self.alg || !self.signature_length_fits(signature.len()) {
            return false;
        }
        jsonwebtoken::crypto::verify(
            &b64::encode(signature),
            signing_input,
            &self.decoding,
            alg.jsonwebtoken(),
        )
        .unwrap_or(false)
    }

    fn signature_length_fits(&self, length: usize) -> bool {
        match &self.public {
            PublicKey::P256(_) => length == 64,
            PublicKey::P384(_) => length == 96,
            PublicKey::Ed25519(_) => length == 64,
            PublicKey::Rsa(key) => length == key.n.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p384_jwk() -> (p384::SecretKey, String) {
        let secret = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let jwk = format!(
            r#"{{"kty":"EC","crv":"P-384","x":"{}","y":"{}"}}"#,
            b64::encode(point.x().expect("x")),
            b64::encode(point.y().expect("y"))
        );
        (secret, jwk)
    }

    #[test]
    fn a_p384_jwk_has_the_same_thumbprint_as_the_owner_key_code_gives_it() {
        let (_, jwk) = p384_jwk();
        let (key, alg) = PublicKey::from_jwk_json(&jwk).expect("parses");
        let owner = crate::jose::jwk::OwnerPublicKey::from_json(&jwk).expect("owner parse");
        assert_eq!(key.thumbprint(), owner.thumbprint());
        assert_eq!(alg, None);
        assert_eq!(key.default_algorithm(), JwsAlgorithm::Es384);
    }

    #[test]
    fn the_rfc_7638_example_key_has_the_rfc_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}"#;
        let (key, alg) = PublicKey::from_jwk_json(jwk).expect("parses");
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(alg, Some(JwsAlgorithm::Rs256));
    }

    #[test]
    fn the_rfc_8037_example_ed25519_key_has_the_rfc_thumbprint() {
        // RFC 8037 §A.3.
        let jwk =
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let (key, _) = PublicKey::from_jwk_json(jwk).expect("parses");
        assert_eq!(
            key.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn private_members_unknown_members_and_nulls_are_refused() {
        let (_, jwk) = p384_jwk();
        let with = |extra: &str| format!("{},{extra}}}", jwk.trim_end_matches('}'));
        assert!(matches!(
            PublicKey::from_jwk_json(&with(r#""d":"AAAA""#)),
            Err(KeyError::PrivateKey(_))
        ));
        assert!(matches!(
            PublicKey::from_jwk_json(&with(r#""x5c":[]"#)),
            Err(KeyError::Jwk(_))
        ));
        assert!(matches!(
            PublicKey::from_jwk_json(&with(r#""alg":null"#)),
            Err(KeyError::Jwk(_))
        ));
        assert_eq!(
            PublicKey::from_jwk_json(&with(r#""alg":"ES256""#)),
            Err(KeyError::WrongAlgorithm("ES256".into()))
        );
        assert_eq!(
            PublicKey::from_jwk_json(&with(r#""kid":"other""#)),
            Err(KeyError::WrongKid)
        );
    }

    #[test]
    fn rsa_keys_outside_the_size_and_exponent_rules_are_refused() {
        let mut n = vec![0xffu8; 128];
        n[127] |= 1;
        assert_eq!(RsaKey::new(&n, &[1, 0, 1]), Err(KeyError::RsaSize(1024)));
        let mut n = vec![0xffu8; 256];
        assert!(RsaKey::new(&n, &[1, 0, 1]).is_ok());
        assert_eq!(RsaKey::new(&n, &[1]), Err(KeyError::RsaExponent));
        assert_eq!(RsaKey::new(&n, &[2]), Err(KeyError::RsaExponent));
        assert_eq!(
            RsaKey::new(&n, &[1, 0, 0, 0, 1]),
            Err(KeyError::RsaExponent)
        );
        n[255] = 0xfe;
        assert_eq!(RsaKey::new(&n, &[3]), Err(KeyError::RsaModulus));
        let too_big = vec![0xffu8; 1025];
        assert_eq!(RsaKey::new(&too_big, &[3]), Err(KeyError::RsaSize(8200)));
    }

    #[test]
    fn a_jwk_modulus_with_a_leading_zero_is_refused() {
        let n = [vec![0u8], vec![0xffu8; 256]].concat();
        let jwk = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, b64::encode(&n));
        assert!(matches!(
            PublicKey::from_jwk_json(&jwk),
            Err(KeyError::Jwk(_))
        ));
    }

    #[test]
    fn small_order_and_non_canonical_ed25519_points_are_refused_with_either_sign() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        };
        let weak = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        ];
        for point in weak {
            let mut bytes = hex(point);
            assert_eq!(
                PublicKey::ed25519(&bytes),
                Err(KeyError::WeakEd25519),
                "{point}"
            );
            bytes[31] |= 0x80;
            assert_eq!(
                PublicKey::ed25519(&bytes),
                Err(KeyError::WeakEd25519),
                "{point}+sign"
            );
        }
        let rfc_8032_key = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert!(PublicKey::ed25519(&rfc_8032_key).is_ok());
    }

    #[test]
    fn a_p256_jwk_off_the_curve_is_refused() {
        let jwk = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
            b64::encode(&[1u8; 32]),
            b64::encode(&[2u8; 32])
        );
        assert_eq!(
            PublicKey::from_jwk_json(&jwk),
            Err(KeyError::NotOnCurve("P-256"))
        );
    }

    #[test]
    fn a_credential_key_checks_only_its_own_algorithm() {
        use p384::ecdsa::signature::Signer;
        let (secret, jwk) = p384_jwk();
        let (public, _) = PublicKey::from_jwk_json(&jwk).expect("parses");
        let key = CredentialKey::new(public, JwsAlgorithm::Es384).expect("key");
        let signing = p384::ecdsa::SigningKey::from(&secret);
        let signature: p384::ecdsa::Signature = signing.sign(b"input");
        let bytes = signature.to_bytes();
        assert!(key.verify_jws(JwsAlgorithm::Es384, b"input", &bytes));
        assert!(!key.verify_jws(JwsAlgorithm::Es384, b"other", &bytes));
        assert!(!key.verify_jws(JwsAlgorithm::Es256, b"input", &bytes));
        assert!(!key.verify_jws(JwsAlgorithm::Es384, b"input", &bytes[..64]));
    }
}
