//! The encrypted inbox's messages: the strict shape check of an ECDH-ES JWE on P-384 (RFC 7516,
//! RFC 7518 §4.6) addressed to one of the owner's encryption keys. Nothing is decrypted here.
//!
//! A message is a JWE in compact serialization (a JSON string) or in general JSON serialization
//! with exactly one recipient (a JSON object). The flattened JSON serialization is refused, so
//! that every message has one of two shapes. What passes is stored exactly as received.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::b64;
use super::jwk::COORDINATE_LEN;

/// The longest message accepted: bytes of the JWE text as received.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// The key agreement with AES key wrap of the content key (RFC 7518 §4.6).
pub const ALG_ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";
/// Direct key agreement: the agreed key is the content key (RFC 7518 §4.6).
pub const ALG_ECDH_ES: &str = "ECDH-ES";
/// The only content encryption accepted.
pub const CONTENT_ENC: &str = "A256GCM";
/// The longest `kid`, in characters.
pub const MAX_KID_CHARS: usize = 128;
/// The most bytes `apu` and `apv` may decode to.
pub const MAX_PARTY_INFO_LEN: usize = 64;
/// The longest `typ` and `cty`, in characters.
pub const MAX_TYPE_CHARS: usize = 64;

/// A 256-bit content key wrapped with RFC 3394 is 40 bytes.
pub(super) const ENCRYPTED_KEY_LEN: usize = 40;
/// The AES-GCM nonce length.
pub(super) const IV_LEN: usize = 12;
/// The AES-GCM tag length.
pub(super) const TAG_LEN: usize = 16;

/// The key-management algorithm of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAlg {
    /// `ECDH-ES`: the Concat KDF output is the content key; no encrypted key.
    EcdhEs,
    /// `ECDH-ES+A256KW`: the Concat KDF output wraps a random content key.
    EcdhEsA256kw,
}

impl MessageAlg {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageAlg::EcdhEs => ALG_ECDH_ES,
            MessageAlg::EcdhEsA256kw => ALG_ECDH_ES_A256KW,
        }
    }

    fn from_header(alg: &str) -> Option<Self> {
        match alg {
            ALG_ECDH_ES => Some(MessageAlg::EcdhEs),
            ALG_ECDH_ES_A256KW => Some(MessageAlg::EcdhEsA256kw),
            _ => None,
        }
    }
}

/// How a message was serialized (RFC 7516 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serialization {
    /// Five base64url parts separated by dots, sent as a JSON string.
    Compact,
    /// A JSON object with a `recipients` array (of one).
    General,
}

/// A message that passed every shape check, addressed to a known kid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedMessage {
    /// The kid of the owner's encryption key it is addressed to.
    pub kid: String,
    pub alg: MessageAlg,
    pub serialization: Serialization,
    /// The JWE exactly as received: the compact string itself, or the JSON object's text.
    pub stored: String,
}

/// Why a message was refused. Messages complete the sentence "the message ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("is {0} bytes long; at most {MAX_MESSAGE_LEN} bytes are accepted")]
    TooLong(usize),
    #[error(
        "must be a JWE in compact serialization (a JSON string) or in general JSON serialization \
         (a JSON object with a recipients array)"
    )]
    NotJwe,
    #[error(
        "uses the flattened JSON serialization (header or encrypted_key at the top level), which \
         is not accepted: send it in compact serialization or in general JSON serialization (a \
         recipients array of one)"
    )]
    Flattened,
    #[error("is not a JWE in compact serialization: {0}")]
    NotCompact(String),
    #[error(
        "is not a JWE in general JSON serialization (an object of protected, recipients, iv, \
         ciphertext, tag and optionally unprotected and aad, each once): {0}"
    )]
    NotGeneral(String),
    #[error("must have exactly one recipient, not {0}")]
    RecipientCount(usize),
    #[error(
        "has a recipient that is not a JSON object of an optional header and encrypted_key, each \
         once: {0}"
    )]
    BadRecipient(String),
    #[error("has an invalid {part}: it {reason}")]
    BadPart { part: &'static str, reason: String },
    #[error(
        "has a {header} that is not a JSON object of only alg, enc, kid, epk, apu, apv, typ and \
         cty, each once: {reason}"
    )]
    BadHeader {
        header: &'static str,
        reason: String,
    },
    #[error(
        "has the header member {0} in more than one of its headers (protected, unprotected, \
         recipient), which must be disjoint (RFC 7516 §7.2.1)"
    )]
    RepeatedHeaderMember(&'static str),
    #[error("has no {0} header member (alg, enc, kid and epk are required)")]
    MissingHeaderMember(&'static str),
    #[error("must use alg \"{ALG_ECDH_ES_A256KW}\" or \"{ALG_ECDH_ES}\", not {0:?}")]
    WrongAlgorithm(String),
    #[error("must use enc \"{CONTENT_ENC}\", not {0:?}")]
    WrongEncryption(String),
    #[error("must have a kid of 1 to {MAX_KID_CHARS} characters, not {0}")]
    BadKid(usize),
    #[error("has an epk that {0}")]
    BadEpk(String),
    #[error("has an epk that is not a point on P-384")]
    EpkNotOnCurve,
    #[error("has an {0} that is not base64url of at most {MAX_PARTY_INFO_LEN} bytes")]
    BadPartyInfo(&'static str),
    #[error("has a {0} that is not a string of 1 to {MAX_TYPE_CHARS} characters")]
    BadTypeMember(&'static str),
    #[error("is addressed to kid {0:?}, which is not one of this node's encryption keys")]
    UnknownKid(String),
}

impl MessageError {
    /// Whether the message is well formed but addressed to a key this node does not know.
    pub fn is_unknown_kid(&self) -> bool {
        matches!(self, MessageError::UnknownKid(_))
    }
}

/// Checks the shape of an inbox message, the value of the request's `message` member: a JSON
/// string holds a compact JWE, a JSON object a JWE in general JSON serialization. Every header
/// member, length and the ephemeral key's point are checked; `kid_known` is asked last, so
/// [`MessageError::UnknownKid`] means the message is otherwise well formed.
pub fn check_message(
    raw: &RawValue,
    kid_known: impl Fn(&str) -> bool,
) -> Result<CheckedMessage, MessageError> {
    let text = raw.get();
    // A compact JWE counts without the quotes around it.
    let quoted = usize::from(text.starts_with('"')) * 2;
    if text.len() > MAX_MESSAGE_LEN + quoted {
        return Err(MessageError::TooLong(text.len() - quoted));
    }
    let (parsed, stored) = match text.as_bytes().first() {
        Some(b'"') => {
            let compact: String = serde_json::from_str(text)
                .map_err(|e| MessageError::NotCompact(format!("not a JSON string: {e}")))?;
            // A compact JWE is base64url and dots only, which JSON never needs to escape; an
            // escaped one would be stored differently from how it was sent.
            if compact.len() + 2 != text.len() {
                return Err(MessageError::NotCompact(
                    "it must be written without JSON escape sequences".into(),
                ));
            }
            (parse_compact(&compact)?, compact)
        }
        Some(b'{') => (parse_general(text)?, text.to_owned()),
        _ => return Err(MessageError::NotJwe),
    };
    if !kid_known(&parsed.header.kid) {
        return Err(MessageError::UnknownKid(parsed.header.kid));
    }
    Ok(CheckedMessage {
        kid: parsed.header.kid,
        alg: parsed.header.alg,
        serialization: parsed.serialization,
        stored,
    })
}

/// The checked header members a recipient needs to decrypt.
pub(super) struct MessageHeader {
    pub(super) alg: MessageAlg,
    pub(super) kid: String,
    pub(super) epk: p384::PublicKey,
    pub(super) apu: Vec<u8>,
    pub(super) apv: Vec<u8>,
}

/// A message that passed every shape check, decoded into its parts.
pub(super) struct ParsedMessage {
    pub(super) header: MessageHeader,
    pub(super) serialization: Serialization,
    /// Empty for `ECDH-ES`, 40 bytes for `ECDH-ES+A256KW`.
    pub(super) encrypted_key: Vec<u8>,
    pub(super) iv: [u8; IV_LEN],
    pub(super) ciphertext: Vec<u8>,
    pub(super) tag: [u8; TAG_LEN],
    /// The AES-GCM additional data (RFC 7516 §5.1 step 14).
    pub(super) additional_data: Vec<u8>,
}

/// Parses a stored message (a compact JWE or the text of a general JSON one) under the same
/// rules as [`check_message`], without asking about its kid.
pub(super) fn parse_stored(stored: &str) -> Result<ParsedMessage, MessageError> {
    if stored.len() > MAX_MESSAGE_LEN {
        return Err(MessageError::TooLong(stored.len()));
    }
    if stored.starts_with('{') {
        parse_general(stored)
    } else {
        parse_compact(stored)
    }
}

/// The header members a message may carry, in any of its headers. Duplicated and unknown
/// members are refused, and so is `null` for any of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderMembers {
    #[serde(default, deserialize_with = "super::present")]
    alg: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    enc: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    kid: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    epk: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "super::present")]
    apu: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    apv: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    typ: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    cty: Option<String>,
}

impl HeaderMembers {
    fn is_empty(&self) -> bool {
        self.alg.is_none()
            && self.enc.is_none()
            && self.kid.is_none()
            && self.epk.is_none()
            && self.apu.is_none()
            && self.apv.is_none()
            && self.typ.is_none()
            && self.cty.is_none()
    }
}

/// The ephemeral public key: a bare P-384 public JWK. A `d` (even `null`) is read only to be
/// named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EpkMembers {
    kty: String,
    crv: String,
    x: String,
    y: String,
    #[serde(default, deserialize_with = "super::present")]
    d: Option<IgnoredAny>,
}

/// The members of a JWE in general JSON serialization (RFC 7516 §7.2.1) that siteid accepts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneralMembers {
    protected: String,
    #[serde(default, deserialize_with = "super::present")]
    unprotected: Option<Box<RawValue>>,
    recipients: Vec<Box<RawValue>>,
    iv: String,
    ciphertext: String,
    tag: String,
    #[serde(default, deserialize_with = "super::present")]
    aad: Option<String>,
}

/// The members that give away the flattened serialization (RFC 7516 §7.2.2). Other members are
/// ignored here: this only tells the flattened form apart.
#[derive(Deserialize)]
struct FlattenedProbe {
    #[serde(default, deserialize_with = "super::present")]
    recipients: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "super::present")]
    header: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "super::present")]
    encrypted_key: Option<IgnoredAny>,
}

/// One element of `recipients`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientMembers {
    #[serde(default, deserialize_with = "super::present")]
    header: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "super::present")]
    encrypted_key: Option<String>,
}

const PROTECTED_HEADER: &str = "protected header";
const UNPROTECTED_HEADER: &str = "shared unprotected header";
const RECIPIENT_HEADER: &str = "recipient header";
const ENCRYPTED_KEY: &str = "encrypted key (encrypted_key)";
const INITIALIZATION_VECTOR: &str = "initialization vector (iv)";
const CIPHERTEXT: &str = "ciphertext";
const AUTHENTICATION_TAG: &str = "authentication tag (tag)";
const ADDITIONAL_DATA: &str = "additional authenticated data (aad)";

fn parse_compact(compact: &str) -> Result<ParsedMessage, MessageError> {
    let parts: Vec<&str> = compact.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
        return Err(MessageError::NotCompact(format!(
            "it must be five base64url parts separated by dots, not {}",
            parts.len()
        )));
    };
    let protected_header = parse_protected(protected)?;
    let header = check_header(&[(PROTECTED_HEADER, protected_header)])?;
    let encrypted_key = decode_part(ENCRYPTED_KEY, encrypted_key)?;
    check_encrypted_key(header.alg, Some(&encrypted_key))?;
    Ok(ParsedMessage {
        header,
        serialization: Serialization::Compact,
        encrypted_key,
        iv: decode_fixed(INITIALIZATION_VECTOR, iv)?,
        ciphertext: decode_ciphertext(ciphertext)?,
        tag: decode_fixed(AUTHENTICATION_TAG, tag)?,
        additional_data: protected.as_bytes().to_vec(),
    })
}

fn parse_general(text: &str) -> Result<ParsedMessage, MessageError> {
    if let Ok(probe) = serde_json::from_str::<FlattenedProbe>(text)
        && probe.recipients.is_none()
        && (probe.header.is_some() || probe.encrypted_key.is_some())
    {
        return Err(MessageError::Flattened);
    }
    let members: GeneralMembers =
        serde_json::from_str(text).map_err(|e| MessageError::NotGeneral(e.to_string()))?;
    let [recipient] = members.recipients.as_slice() else {
        return Err(MessageError::RecipientCount(members.recipients.len()));
    };
    let recipient: RecipientMembers =
        parse_object(recipient.get()).map_err(|e| MessageError::BadRecipient(e.to_string()))?;
    if members.protected.is_empty() {
        return Err(MessageError::BadPart {
            part: PROTECTED_HEADER,
            reason: "must not be empty".into(),
        });
    }
    let mut headers = vec![(PROTECTED_HEADER, parse_protected(&members.protected)?)];
    if let Some(unprotected) = &members.unprotected {
        headers.push((
            UNPROTECTED_HEADER,
            parse_header(UNPROTECTED_HEADER, unprotected)?,
        ));
    }
    if let Some(header) = &recipient.header {
        headers.push((RECIPIENT_HEADER, parse_header(RECIPIENT_HEADER, header)?));
    }
    let header = check_header(&headers)?;
    let encrypted_key = match &recipient.encrypted_key {
        Some(text) => {
            let bytes = decode_part(ENCRYPTED_KEY, text)?;
            if bytes.is_empty() {
                return Err(MessageError::BadPart {
                    part: ENCRYPTED_KEY,
                    reason: "must be absent, not empty, when there is no encrypted key \
                             (RFC 7516 §7.2.1)"
                        .into(),
                });
            }
            check_encrypted_key(header.alg, Some(&bytes))?;
            bytes
        }
        None => {
            check_encrypted_key(header.alg, None)?;
            Vec::new()
        }
    };
    let mut additional_data = members.protected.as_bytes().to_vec();
    if let Some(aad) = &members.aad {
        if decode_part(ADDITIONAL_DATA, aad)?.is_empty() {
            return Err(MessageError::BadPart {
                part: ADDITIONAL_DATA,
                reason: "must be absent, not empty, when there is none (RFC 7516 §7.2.1)".into(),
            });
        }
        additional_data.push(b'.');
        additional_data.extend_from_slice(aad.as_bytes());
    }
    Ok(ParsedMessage {
        header,
        serialization: Serialization::General,
        encrypted_key,
        iv: decode_fixed(INITIALIZATION_VECTOR, &members.iv)?,
        ciphertext: decode_ciphertext(&members.ciphertext)?,
        tag: decode_fixed(AUTHENTICATION_TAG, &members.tag)?,
        additional_data,
    })
}

/// Parses JSON text that must be an object into a typed struct. Derived struct parsers also
/// accept arrays, which no JOSE object is.
fn parse_object<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    if !super::is_json_object(text.as_bytes()) {
        return Err("not a JSON object".into());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Decodes and parses the protected header: base64url of a non-empty JSON object.
fn parse_protected(protected: &str) -> Result<HeaderMembers, MessageError> {
    let bytes = decode_part(PROTECTED_HEADER, protected)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| MessageError::BadHeader {
        header: PROTECTED_HEADER,
        reason: "not UTF-8".into(),
    })?;
    let members: HeaderMembers = parse_object(text).map_err(|reason| MessageError::BadHeader {
        header: PROTECTED_HEADER,
        reason,
    })?;
    if members.is_empty() {
        return Err(MessageError::BadHeader {
            header: PROTECTED_HEADER,
            reason: "it is empty".into(),
        });
    }
    Ok(members)
}

/// Parses an unprotected header, which must be absent rather than empty (RFC 7516 §7.2.1).
fn parse_header(name: &'static str, raw: &RawValue) -> Result<HeaderMembers, MessageError> {
    let members: HeaderMembers =
        parse_object(raw.get()).map_err(|reason| MessageError::BadHeader {
            header: name,
            reason,
        })?;
    if members.is_empty() {
        return Err(MessageError::BadHeader {
            header: name,
            reason: "it is empty; leave it out instead (RFC 7516 §7.2.1)".into(),
        });
    }
    Ok(members)
}

/// Takes a member from at most one of the headers.
fn one_of<T>(
    name: &'static str,
    values: impl Iterator<Item = Option<T>>,
) -> Result<Option<T>, MessageError> {
    let mut found = None;
    for value in values.flatten() {
        if found.is_some() {
            return Err(MessageError::RepeatedHeaderMember(name));
        }
        found = Some(value);
    }
    Ok(found)
}

/// Merges the headers (which must be disjoint) and checks every member.
fn check_header(headers: &[(&'static str, HeaderMembers)]) -> Result<MessageHeader, MessageError> {
    let members = || headers.iter().map(|(_, members)| members);
    let alg = one_of("alg", members().map(|m| m.alg.as_deref()))?;
    let enc = one_of("enc", members().map(|m| m.enc.as_deref()))?;
    let kid = one_of("kid", members().map(|m| m.kid.as_deref()))?;
    let epk = one_of("epk", members().map(|m| m.epk.as_deref()))?;
    let apu = one_of("apu", members().map(|m| m.apu.as_deref()))?;
    let apv = one_of("apv", members().map(|m| m.apv.as_deref()))?;
    let typ = one_of("typ", members().map(|m| m.typ.as_deref()))?;
    let cty = one_of("cty", members().map(|m| m.cty.as_deref()))?;

    let alg = alg.ok_or(MessageError::MissingHeaderMember("alg"))?;
    let alg =
        MessageAlg::from_header(alg).ok_or_else(|| MessageError::WrongAlgorithm(alg.to_owned()))?;
    let enc = enc.ok_or(MessageError::MissingHeaderMember("enc"))?;
    if enc != CONTENT_ENC {
        return Err(MessageError::WrongEncryption(enc.to_owned()));
    }
    let kid = kid.ok_or(MessageError::MissingHeaderMember("kid"))?;
    let kid_chars = kid.chars().count();
    if !(1..=MAX_KID_CHARS).contains(&kid_chars) {
        return Err(MessageError::BadKid(kid_chars));
    }
    let epk = check_epk(epk.ok_or(MessageError::MissingHeaderMember("epk"))?)?;
    let apu = party_info("apu", apu)?;
    let apv = party_info("apv", apv)?;
    for (name, value) in [("typ", typ), ("cty", cty)] {
        if value.is_some_and(|v| !(1..=MAX_TYPE_CHARS).contains(&v.chars().count())) {
            return Err(MessageError::BadTypeMember(name));
        }
    }
    Ok(MessageHeader {
        alg,
        kid: kid.to_owned(),
        epk,
        apu,
        apv,
    })
}

/// Checks the ephemeral public key: exactly kty EC, crv P-384, x and y of 48 bytes, on the curve.
fn check_epk(raw: &RawValue) -> Result<p384::PublicKey, MessageError> {
    let members: EpkMembers = parse_object(raw.get()).map_err(|e| {
        MessageError::BadEpk(format!(
            "is not a JSON object of exactly kty, crv, x and y: {e}"
        ))
    })?;
    if members.d.is_some() {
        return Err(MessageError::BadEpk(
            "must be a public key, but it carries the private member d".into(),
        ));
    }
    if members.kty != "EC" {
        return Err(MessageError::BadEpk(format!(
            "must have kty \"EC\", not {:?}",
            members.kty
        )));
    }
    if members.crv != "P-384" {
        return Err(MessageError::BadEpk(format!(
            "must have crv \"P-384\", not {:?}",
            members.crv
        )));
    }
    let mut sec1 = [0u8; 1 + 2 * COORDINATE_LEN];
    sec1[0] = 0x04;
    for (name, text, at) in [("x", &members.x, 1), ("y", &members.y, 1 + COORDINATE_LEN)] {
        let coordinate = b64::decode_array::<COORDINATE_LEN>(text)
            .map_err(|e| MessageError::BadEpk(format!("has an {name} coordinate that {e}")))?;
        sec1[at..at + COORDINATE_LEN].copy_from_slice(&coordinate);
    }
    p384::PublicKey::from_sec1_bytes(&sec1).map_err(|_| MessageError::EpkNotOnCurve)
}

fn party_info(name: &'static str, value: Option<&str>) -> Result<Vec<u8>, MessageError> {
    let Some(text) = value else {
        return Ok(Vec::new());
    };
    match b64::decode(text) {
        Ok(bytes) if bytes.len() <= MAX_PARTY_INFO_LEN => Ok(bytes),
        _ => Err(MessageError::BadPartyInfo(name)),
    }
}

/// The encrypted key must be absent (or the empty compact part) for `ECDH-ES` and exactly 40
/// bytes for `ECDH-ES+A256KW`.
fn check_encrypted_key(alg: MessageAlg, bytes: Option<&[u8]>) -> Result<(), MessageError> {
    let len = bytes.map_or(0, <[u8]>::len);
    let reason = match alg {
        MessageAlg::EcdhEs if len != 0 => {
            format!("must be empty with alg {ALG_ECDH_ES}, not {len} bytes")
        }
        MessageAlg::EcdhEsA256kw if len != ENCRYPTED_KEY_LEN => match bytes {
            Some(_) => format!(
                "must be {ENCRYPTED_KEY_LEN} bytes with alg {ALG_ECDH_ES_A256KW}, not {len}"
            ),
            None => format!(
                "is missing; alg {ALG_ECDH_ES_A256KW} needs one of {ENCRYPTED_KEY_LEN} bytes"
            ),
        },
        _ => return Ok(()),
    };
    Err(MessageError::BadPart {
        part: ENCRYPTED_KEY,
        reason,
    })
}

fn decode_part(part: &'static str, text: &str) -> Result<Vec<u8>, MessageError> {
    b64::decode(text).map_err(|e| MessageError::BadPart {
        part,
        reason: e.to_string(),
    })
}

fn decode_fixed<const N: usize>(part: &'static str, text: &str) -> Result<[u8; N], MessageError> {
    let bytes = decode_part(part, text)?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| MessageError::BadPart {
        part,
        reason: format!("must be {N} bytes, not {len}"),
    })
}

fn decode_ciphertext(text: &str) -> Result<Vec<u8>, MessageError> {
    let bytes = decode_part(CIPHERTEXT, text)?;
    if bytes.is_empty() {
        return Err(MessageError::BadPart {
            part: CIPHERTEXT,
            reason: "must not be empty".into(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::ecdh::{self, EncryptOptions, Envelope};
    use serde_json::{Value, json};

    const KID: &str = "enc-key-1";

    fn recipient() -> p384::PublicKey {
        p384::SecretKey::random(&mut rand::rngs::OsRng).public_key()
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("test JSON is valid")
    }

    fn check_text(text: &str) -> Result<CheckedMessage, MessageError> {
        check_message(&raw(text), |kid| kid == KID)
    }

    fn check_compact(compact: &str) -> Result<CheckedMessage, MessageError> {
        check_text(&format!("\"{compact}\""))
    }

    fn check_general(message: &Value) -> Result<CheckedMessage, MessageError> {
        check_text(&message.to_string())
    }

    fn good_compact(alg: MessageAlg) -> String {
        let options = EncryptOptions {
            alg,
            ..EncryptOptions::default()
        };
        ecdh::encrypt(&recipient(), KID, b"hello", &options)
    }

    fn good_general(alg: MessageAlg) -> Value {
        let options = EncryptOptions {
            alg,
            envelope: Envelope::General { aad: None },
            ..EncryptOptions::default()
        };
        serde_json::from_str(&ecdh::encrypt(&recipient(), KID, b"hello", &options))
            .expect("a general message is JSON")
    }

    fn decode_header(protected: &str) -> Value {
        serde_json::from_slice(&b64::decode(protected).expect("base64url")).expect("JSON")
    }

    fn encode_header(header: &Value) -> String {
        b64::encode(header.to_string().as_bytes())
    }

    /// The good compact ECDH-ES+A256KW message with its protected header changed by `change`.
    fn compact_with_header(change: impl FnOnce(&mut Value)) -> String {
        let compact = good_compact(MessageAlg::EcdhEsA256kw);
        let mut parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
        let mut header = decode_header(&parts[0]);
        change(&mut header);
        parts[0] = encode_header(&header);
        parts.join(".")
    }

    /// The good compact ECDH-ES+A256KW message with part `index` replaced by `bytes`.
    fn compact_with_part(index: usize, bytes: &[u8]) -> String {
        let compact = good_compact(MessageAlg::EcdhEsA256kw);
        let mut parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
        parts[index] = b64::encode(bytes);
        parts.join(".")
    }

    /// The good general ECDH-ES+A256KW message with its protected header and then the whole
    /// object changed.
    fn general_with(
        change_protected: impl FnOnce(&mut Value),
        change: impl FnOnce(&mut Value),
    ) -> Value {
        let mut message = good_general(MessageAlg::EcdhEsA256kw);
        let mut protected = decode_header(message["protected"].as_str().expect("protected"));
        change_protected(&mut protected);
        message["protected"] = encode_header(&protected).into();
        change(&mut message);
        message
    }

    fn bad_part(result: Result<CheckedMessage, MessageError>) -> &'static str {
        match result {
            Err(MessageError::BadPart { part, .. }) => part,
            other => panic!("expected a bad part, got {other:?}"),
        }
    }

    fn bad_header(result: Result<CheckedMessage, MessageError>) -> (&'static str, String) {
        match result {
            Err(MessageError::BadHeader { header, reason }) => (header, reason),
            other => panic!("expected a bad header, got {other:?}"),
        }
    }

    #[test]
    fn a_good_compact_message_is_accepted_with_its_kid_alg_and_text() {
        for alg in [MessageAlg::EcdhEsA256kw, MessageAlg::EcdhEs] {
            let compact = good_compact(alg);
            let checked = check_compact(&compact).unwrap();
            assert_eq!(checked.kid, KID);
            assert_eq!(checked.alg, alg);
            assert_eq!(checked.serialization, Serialization::Compact);
            assert_eq!(checked.stored, compact);
        }
    }

    #[test]
    fn a_good_general_message_is_accepted_and_stored_exactly_as_received() {
        for alg in [MessageAlg::EcdhEsA256kw, MessageAlg::EcdhEs] {
            let message = good_general(alg);
            // Pretty-printed, with its members in another order: stored as it came.
            let text = serde_json::to_string_pretty(&message).unwrap();
            let checked = check_text(&text).unwrap();
            assert_eq!(checked.kid, KID);
            assert_eq!(checked.alg, alg);
            assert_eq!(checked.serialization, Serialization::General);
            assert_eq!(checked.stored, text);
        }
    }

    #[test]
    fn a_general_message_with_aad_apu_apv_and_cty_is_accepted() {
        let options = EncryptOptions {
            envelope: Envelope::General {
                aad: Some(b"extra"),
            },
            cty: Some("siteid-message+jwt"),
            apu: Some(&[1u8; MAX_PARTY_INFO_LEN]),
            apv: Some(b"Bob"),
            ..EncryptOptions::default()
        };
        let text = ecdh::encrypt(&recipient(), KID, b"hi", &options);
        assert_eq!(check_text(&text).unwrap().stored, text);
    }

    #[test]
    fn an_unknown_kid_is_its_own_error_and_only_for_an_otherwise_good_message() {
        let compact = good_compact(MessageAlg::EcdhEsA256kw);
        let error = check_message(&raw(&format!("\"{compact}\"")), |_| false).unwrap_err();
        assert_eq!(error, MessageError::UnknownKid(KID.into()));
        assert!(error.is_unknown_kid());
        assert!(error.to_string().contains(KID));
        // A shape error wins over an unknown kid.
        let short_iv = compact_with_part(2, &[0u8; 8]);
        let error = check_message(&raw(&format!("\"{short_iv}\"")), |_| false).unwrap_err();
        assert!(!error.is_unknown_kid());
        assert!(matches!(error, MessageError::BadPart { .. }));
        // The kid is matched exactly, from any header.
        let general = good_general(MessageAlg::EcdhEs);
        assert!(check_message(&raw(&general.to_string()), |kid| kid == "ENC-KEY-1").is_err());
    }

    #[test]
    fn neither_a_string_nor_an_object_is_refused() {
        for text in ["null", "true", "42", "[]", r#"["a.b.c.d.e"]"#] {
            assert_eq!(check_text(text), Err(MessageError::NotJwe), "{text}");
        }
    }

    #[test]
    fn the_flattened_serialization_is_refused_with_a_pointer_to_compact_or_general() {
        let mut message = good_general(MessageAlg::EcdhEsA256kw);
        let recipient = message["recipients"][0].clone();
        let object = message.as_object_mut().unwrap();
        object.remove("recipients");
        object.insert("header".into(), recipient["header"].clone());
        object.insert("encrypted_key".into(), recipient["encrypted_key"].clone());
        let error = check_general(&message).unwrap_err();
        assert_eq!(error, MessageError::Flattened);
        assert!(error.to_string().contains("compact"));
        assert!(error.to_string().contains("general"));
        // A flattened ECDH-ES message has a header and no encrypted key.
        message.as_object_mut().unwrap().remove("encrypted_key");
        assert_eq!(check_general(&message), Err(MessageError::Flattened));
    }

    #[test]
    fn a_message_over_256_kib_is_refused_as_too_long() {
        let compact = compact_with_part(3, &vec![7u8; MAX_MESSAGE_LEN]);
        let error = check_compact(&compact).unwrap_err();
        assert!(matches!(error, MessageError::TooLong(len) if len > MAX_MESSAGE_LEN));
        let general = general_with(
            |_| {},
            |m| m["ciphertext"] = b64::encode(&vec![7u8; MAX_MESSAGE_LEN]).into(),
        );
        assert!(matches!(
            check_general(&general),
            Err(MessageError::TooLong(_))
        ));
        // The limit counts the text as received, padding included.
        let padded = format!(
            "{}{}",
            " ".repeat(MAX_MESSAGE_LEN),
            good_general(MessageAlg::EcdhEs)
        );
        assert!(matches!(
            check_text(&format!("{{\"iv\":{padded}}}")),
            Err(MessageError::TooLong(_))
        ));
    }

    #[test]
    fn a_compact_message_must_have_five_parts_without_escapes() {
        let compact = good_compact(MessageAlg::EcdhEs);
        for text in [
            format!("{compact}."),
            compact.rsplit_once('.').unwrap().0.to_owned(),
            String::new(),
        ] {
            assert!(
                matches!(check_compact(&text), Err(MessageError::NotCompact(_))),
                "{text}"
            );
        }
        let escaped = compact.replacen('.', "\\u002e", 1);
        assert!(matches!(
            check_compact(&escaped),
            Err(MessageError::NotCompact(_))
        ));
    }

    #[test]
    fn compact_parts_must_be_strict_base64url_of_the_right_lengths() {
        assert_eq!(
            bad_part(check_compact(&compact_with_part(1, &[1u8; 32]))),
            ENCRYPTED_KEY
        );
        assert_eq!(
            bad_part(check_compact(&compact_with_part(1, &[]))),
            ENCRYPTED_KEY
        );
        assert_eq!(
            bad_part(check_compact(&compact_with_part(2, &[1u8; 16]))),
            INITIALIZATION_VECTOR
        );
        assert_eq!(
            bad_part(check_compact(&compact_with_part(3, &[]))),
            CIPHERTEXT
        );
        assert_eq!(
            bad_part(check_compact(&compact_with_part(4, &[1u8; 12]))),
            AUTHENTICATION_TAG
        );
        let compact = good_compact(MessageAlg::EcdhEsA256kw);
        let parts: Vec<&str> = compact.split('.').collect();
        let padded = format!(
            "{}.{}.{}.{}=.{}",
            parts[0], parts[1], parts[2], parts[3], parts[4]
        );
        let with_padding = check_compact(&padded);
        assert!(matches!(with_padding, Err(MessageError::BadPart { .. })));
        let standard = compact.replace('-', "+").replace('_', "/");
        if standard != compact {
            assert!(matches!(
                check_compact(&standard),
                Err(MessageError::BadPart { .. })
            ));
        }
        // ECDH-ES has no encrypted key.
        let direct = good_compact(MessageAlg::EcdhEs);
        let mut parts: Vec<String> = direct.split('.').map(str::to_owned).collect();
        parts[1] = b64::encode(&[1u8; ENCRYPTED_KEY_LEN]);
        let error = check_compact(&parts.join(".")).unwrap_err();
        assert!(error.to_string().contains("must be empty with alg ECDH-ES"));
    }

    #[test]
    fn a_protected_header_that_is_not_a_json_object_is_refused() {
        let compact = good_compact(MessageAlg::EcdhEs);
        let rest = compact.split_once('.').unwrap().1;
        for header in [
            &b"[\"ECDH-ES\"]"[..],
            b"not json",
            b"{}",
            b"\xff\xfe",
            b"{\"alg\":1}",
        ] {
            let text = format!("{}.{rest}", b64::encode(header));
            let (which, _) = bad_header(check_compact(&text));
            assert_eq!(which, PROTECTED_HEADER);
        }
        // Not base64url at all is a bad part, not a bad header.
        assert_eq!(
            bad_part(check_compact(&format!("!!.{rest}"))),
            PROTECTED_HEADER
        );
    }

    #[test]
    fn a_duplicate_member_in_the_protected_header_is_refused() {
        let compact = good_compact(MessageAlg::EcdhEsA256kw);
        let (protected, rest) = compact.split_once('.').unwrap();
        let text = String::from_utf8(b64::decode(protected).unwrap()).unwrap();
        for duplicated in [
            text.replacen("{", "{\"alg\":\"ECDH-ES\",", 1),
            text.replacen("{", &format!("{{\"kid\":\"{KID}\","), 1),
            text.replacen("\"kty\"", "\"x\":\"AA\",\"kty\"", 1),
        ] {
            let changed = format!("{}.{rest}", b64::encode(duplicated.as_bytes()));
            match check_compact(&changed) {
                Err(MessageError::BadHeader { reason, .. }) => {
                    assert!(reason.contains("duplicate"), "{reason}")
                }
                Err(MessageError::BadEpk(reason)) => {
                    assert!(reason.contains("duplicate"), "{reason}")
                }
                other => panic!("{duplicated}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_duplicate_member_in_the_general_object_is_refused() {
        let message = good_general(MessageAlg::EcdhEsA256kw).to_string();
        let iv = format!("\"iv\":{},", good_general(MessageAlg::EcdhEs)["iv"]);
        let twice = message.replacen('{', &format!("{{{iv}"), 1);
        assert!(matches!(
            check_text(&twice),
            Err(MessageError::NotGeneral(reason)) if reason.contains("duplicate")
        ));
        let key_twice = message.replacen(
            "\"encrypted_key\":",
            "\"encrypted_key\":\"AAAA\",\"encrypted_key\":",
            1,
        );
        assert!(matches!(
            check_text(&key_twice),
            Err(MessageError::BadRecipient(reason)) if reason.contains("duplicate")
        ));
        let kid_twice = message.replacen("\"kid\":", "\"kid\":\"other\",\"kid\":", 1);
        let (which, reason) = bad_header(check_text(&kid_twice));
        assert_eq!(which, RECIPIENT_HEADER);
        assert!(reason.contains("duplicate"));
    }

    #[test]
    fn a_header_member_in_two_headers_is_refused() {
        let kid_twice = general_with(|p| p["kid"] = KID.into(), |_| {});
        assert_eq!(
            check_general(&kid_twice),
            Err(MessageError::RepeatedHeaderMember("kid"))
        );
        let enc_twice = general_with(|_| {}, |m| m["unprotected"] = json!({"enc": CONTENT_ENC}));
        assert_eq!(
            check_general(&enc_twice),
            Err(MessageError::RepeatedHeaderMember("enc"))
        );
        let alg_twice = general_with(|_| {}, |m| m["unprotected"] = json!({"alg": "ECDH-ES"}));
        assert_eq!(
            check_general(&alg_twice),
            Err(MessageError::RepeatedHeaderMember("alg"))
        );
        // Members spread over the three headers, once each, are fine.
        let spread = general_with(
            |_| {},
            |m| {
                let typ = m["recipients"][0]["header"]["kid"].take();
                m["recipients"][0]["header"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kid");
                m["unprotected"] = json!({"kid": typ, "typ": "JWE"});
            },
        );
        assert_eq!(check_general(&spread).unwrap().kid, KID);
    }

    #[test]
    fn only_the_two_ecdh_es_algorithms_are_accepted() {
        for alg in [
            "ECDH-ES+A128KW",
            "ECDH-ES+A192KW",
            "RSA-OAEP-256",
            "dir",
            "ecdh-es",
            "",
        ] {
            let compact = compact_with_header(|h| h["alg"] = alg.into());
            assert_eq!(
                check_compact(&compact),
                Err(MessageError::WrongAlgorithm(alg.into()))
            );
        }
    }

    #[test]
    fn only_a256gcm_content_encryption_is_accepted() {
        for enc in ["A128GCM", "A256CBC-HS512", "a256gcm"] {
            let compact = compact_with_header(|h| h["enc"] = enc.into());
            assert_eq!(
                check_compact(&compact),
                Err(MessageError::WrongEncryption(enc.into()))
            );
        }
    }

    #[test]
    fn alg_enc_kid_and_epk_are_required() {
        for name in ["alg", "enc", "kid", "epk"] {
            let compact = compact_with_header(|h| {
                h.as_object_mut().unwrap().remove(name);
            });
            let error = check_compact(&compact).unwrap_err();
            assert!(
                matches!(&error, MessageError::MissingHeaderMember(n) if *n == name),
                "{name}: {error:?}"
            );
        }
    }

    #[test]
    fn forbidden_header_members_are_refused_by_name() {
        let values = [
            ("zip", json!("DEF")),
            ("crit", json!(["exp"])),
            ("jku", json!("https://example.org/jwks")),
            ("jwk", json!({"kty": "EC"})),
            ("x5u", json!("https://example.org/cert")),
            ("x5c", json!(["MIIB"])),
            ("x5t", json!("AA")),
            ("p2s", json!("AAAAAAAAAAAAAAAAAAAAAA")),
            ("p2c", json!(1000)),
            ("iv", json!("AA")),
            ("tag", json!("AA")),
            ("b64", json!(false)),
        ];
        for (name, value) in values {
            let compact = compact_with_header(|h| h[name] = value.clone());
            let (which, reason) = bad_header(check_compact(&compact));
            assert_eq!(which, PROTECTED_HEADER);
            assert!(reason.contains(&format!("`{name}`")), "{name}: {reason}");
            let general = general_with(|_| {}, |m| m["recipients"][0]["header"][name] = value);
            let (which, _) = bad_header(check_general(&general));
            assert_eq!(which, RECIPIENT_HEADER);
        }
    }

    #[test]
    fn a_null_header_member_is_refused_not_read_as_absent() {
        for name in ["typ", "cty", "apu", "apv"] {
            let compact = compact_with_header(|h| h[name] = Value::Null);
            assert!(check_compact(&compact).is_err(), "{name}");
        }
        let compact = compact_with_header(|h| h["kid"] = Value::Null);
        bad_header(check_compact(&compact));
    }

    #[test]
    fn a_kid_must_be_1_to_128_characters() {
        let empty = compact_with_header(|h| h["kid"] = "".into());
        assert_eq!(check_compact(&empty), Err(MessageError::BadKid(0)));
        let long = "é".repeat(MAX_KID_CHARS + 1);
        let too_long = compact_with_header(|h| h["kid"] = long.clone().into());
        assert_eq!(
            check_compact(&too_long),
            Err(MessageError::BadKid(MAX_KID_CHARS + 1))
        );
        // Characters are counted, not bytes.
        let longest = "é".repeat(MAX_KID_CHARS);
        let compact = compact_with_header(|h| h["kid"] = longest.clone().into());
        let checked = check_message(&raw(&format!("\"{compact}\"")), |_| true).unwrap();
        assert_eq!(checked.kid, longest);
        let number = compact_with_header(|h| h["kid"] = 7.into());
        bad_header(check_compact(&number));
    }

    #[test]
    fn an_epk_off_the_curve_is_refused() {
        let compact = compact_with_header(|h| {
            let mut y = b64::decode(h["epk"]["y"].as_str().unwrap()).unwrap();
            y[47] ^= 1;
            h["epk"]["y"] = b64::encode(&y).into();
        });
        assert_eq!(check_compact(&compact), Err(MessageError::EpkNotOnCurve));
        let zeros = compact_with_header(|h| {
            h["epk"]["x"] = b64::encode(&[0u8; 48]).into();
            h["epk"]["y"] = b64::encode(&[0u8; 48]).into();
        });
        assert_eq!(check_compact(&zeros), Err(MessageError::EpkNotOnCurve));
    }

    /// A change to an epk.
    type EpkChange = fn(&mut Value);

    #[test]
    fn an_epk_must_be_exactly_a_bare_p384_public_jwk() {
        let changes: [(&str, EpkChange); 9] = [
            ("d", |e| e["d"] = b64::encode(&[1u8; 48]).into()),
            ("kid", |e| e["kid"] = "k".into()),
            ("alg", |e| e["alg"] = "ECDH-ES".into()),
            ("P-384", |e| e["crv"] = "P-256".into()),
            ("EC", |e| e["kty"] = "OKP".into()),
            ("48 bytes", |e| {
                let x = b64::decode(e["x"].as_str().unwrap()).unwrap();
                e["x"] = b64::encode(&x[1..]).into();
            }),
            ("base64url", |e| {
                let x = e["x"].as_str().unwrap().to_owned();
                e["x"] = format!("{x}=").into();
            }),
            ("y", |e| {
                e.as_object_mut().unwrap().remove("y");
            }),
            ("not a JSON object", |e| {
                *e = json!(["EC", "P-384", e["x"].clone(), e["y"].clone()]);
            }),
        ];
        for (needle, change) in changes {
            let compact = compact_with_header(|h| change(&mut h["epk"]));
            match check_compact(&compact) {
                Err(MessageError::BadEpk(reason)) => {
                    assert!(reason.contains(needle), "{needle}: {reason}")
                }
                other => panic!("{needle}: {other:?}"),
            }
        }
        let null = compact_with_header(|h| h["epk"] = Value::Null);
        assert!(matches!(check_compact(&null), Err(MessageError::BadEpk(_))));
        // Found by the inbox_message fuzz target: an Option reads null as absent.
        let null_d = compact_with_header(|h| h["epk"]["d"] = Value::Null);
        assert!(matches!(
            check_compact(&null_d),
            Err(MessageError::BadEpk(reason)) if reason.contains("private member d")
        ));
    }

    #[test]
    fn apu_and_apv_must_be_base64url_of_at_most_64_bytes() {
        for name in ["apu", "apv"] {
            let longest =
                compact_with_header(|h| h[name] = b64::encode(&[1u8; MAX_PARTY_INFO_LEN]).into());
            assert!(check_compact(&longest).is_ok(), "{name}");
            let too_long = compact_with_header(|h| {
                h[name] = b64::encode(&[1u8; MAX_PARTY_INFO_LEN + 1]).into()
            });
            assert_eq!(
                check_compact(&too_long),
                Err(MessageError::BadPartyInfo(name))
            );
            let padded = compact_with_header(|h| h[name] = "QWxpY2U=".into());
            assert_eq!(
                check_compact(&padded),
                Err(MessageError::BadPartyInfo(name))
            );
        }
    }

    #[test]
    fn typ_and_cty_must_be_1_to_64_characters() {
        for name in ["typ", "cty"] {
            let longest = compact_with_header(|h| h[name] = "t".repeat(MAX_TYPE_CHARS).into());
            assert!(check_compact(&longest).is_ok(), "{name}");
            for bad in [String::new(), "t".repeat(MAX_TYPE_CHARS + 1)] {
                let compact = compact_with_header(|h| h[name] = bad.into());
                assert_eq!(
                    check_compact(&compact),
                    Err(MessageError::BadTypeMember(name))
                );
            }
        }
    }

    #[test]
    fn the_general_serialization_needs_exactly_one_recipient() {
        let none = general_with(|_| {}, |m| m["recipients"] = json!([]));
        assert_eq!(check_general(&none), Err(MessageError::RecipientCount(0)));
        let two = general_with(
            |_| {},
            |m| {
                let recipient = m["recipients"][0].clone();
                m["recipients"] = json!([recipient.clone(), recipient]);
            },
        );
        assert_eq!(check_general(&two), Err(MessageError::RecipientCount(2)));
        let array = general_with(|_| {}, |m| m["recipients"] = json!([["header"]]));
        assert!(matches!(
            check_general(&array),
            Err(MessageError::BadRecipient(_))
        ));
        let extra = general_with(|_| {}, |m| m["recipients"][0]["kid"] = KID.into());
        assert!(matches!(
            check_general(&extra),
            Err(MessageError::BadRecipient(_))
        ));
    }

    #[test]
    fn the_general_object_has_only_its_members_and_all_required_ones() {
        for name in ["protected", "recipients", "iv", "ciphertext", "tag"] {
            let missing = general_with(
                |_| {},
                |m| {
                    m.as_object_mut().unwrap().remove(name);
                },
            );
            assert!(
                matches!(check_general(&missing), Err(MessageError::NotGeneral(r)) if r.contains(name)),
                "{name}"
            );
        }
        for (name, value) in [
            ("header", json!({"typ": "JWE"})),
            ("encrypted_key", json!("AAAA")),
            ("zip", json!("DEF")),
            ("signatures", json!([])),
        ] {
            let extra = general_with(|_| {}, |m| m[name] = value);
            assert!(
                matches!(check_general(&extra), Err(MessageError::NotGeneral(_))),
                "{name}"
            );
        }
        let null_aad = general_with(|_| {}, |m| m["aad"] = Value::Null);
        assert!(matches!(
            check_general(&null_aad),
            Err(MessageError::NotGeneral(_))
        ));
    }

    #[test]
    fn empty_general_members_must_be_left_out() {
        let protected = general_with(|_| {}, |m| m["protected"] = "".into());
        assert_eq!(bad_part(check_general(&protected)), PROTECTED_HEADER);
        let unprotected = general_with(|_| {}, |m| m["unprotected"] = json!({}));
        assert_eq!(
            bad_header(check_general(&unprotected)).0,
            UNPROTECTED_HEADER
        );
        let empty_protected = general_with(
            |_| {},
            |m| m["protected"] = encode_header(&json!({})).into(),
        );
        assert_eq!(
            bad_header(check_general(&empty_protected)).0,
            PROTECTED_HEADER
        );
        // Everything in the protected header, and an empty recipient header.
        let header = general_with(
            |_| {},
            |m| {
                let moved = m["recipients"][0]["header"].take();
                let mut protected = decode_header(m["protected"].as_str().unwrap());
                for (name, value) in moved.as_object().unwrap() {
                    protected[name] = value.clone();
                }
                m["protected"] = encode_header(&protected).into();
                m["recipients"][0]["header"] = json!({});
            },
        );
        assert_eq!(bad_header(check_general(&header)).0, RECIPIENT_HEADER);
        header_moved_is_accepted(header);
        let key = general_with(|_| {}, |m| m["recipients"][0]["encrypted_key"] = "".into());
        assert_eq!(bad_part(check_general(&key)), ENCRYPTED_KEY);
        let aad = general_with(|_| {}, |m| m["aad"] = "".into());
        assert_eq!(bad_part(check_general(&aad)), ADDITIONAL_DATA);
        let not_base64 = general_with(|_| {}, |m| m["aad"] = "a=".into());
        assert_eq!(bad_part(check_general(&not_base64)), ADDITIONAL_DATA);
    }

    /// The message of `empty_general_members_must_be_left_out` without its empty header is good.
    fn header_moved_is_accepted(mut message: Value) {
        message["recipients"][0]
            .as_object_mut()
            .unwrap()
            .remove("header");
        assert_eq!(check_general(&message).unwrap().kid, KID);
    }

    #[test]
    fn a_message_member_of_a_request_body_is_stored_without_the_space_around_it() {
        #[derive(Deserialize)]
        struct Body {
            message: Box<RawValue>,
        }
        let message = good_general(MessageAlg::EcdhEs).to_string();
        let body: Body =
            serde_json::from_str(&format!("{{ \"message\" :\n {message} \n}}")).unwrap();
        assert_eq!(
            check_message(&body.message, |_| true).unwrap().stored,
            message
        );
        let compact = good_compact(MessageAlg::EcdhEs);
        let body: Body = serde_json::from_str(&format!("{{\"message\": \"{compact}\" }}")).unwrap();
        assert_eq!(
            check_message(&body.message, |_| true).unwrap().stored,
            compact
        );
    }

    #[test]
    fn the_encrypted_key_of_a_general_message_follows_its_alg() {
        let missing = general_with(
            |_| {},
            |m| {
                m["recipients"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("encrypted_key");
            },
        );
        assert_eq!(bad_part(check_general(&missing)), ENCRYPTED_KEY);
        let short = general_with(
            |_| {},
            |m| m["recipients"][0]["encrypted_key"] = b64::encode(&[1u8; 32]).into(),
        );
        assert_eq!(bad_part(check_general(&short)), ENCRYPTED_KEY);
        let mut direct = good_general(MessageAlg::EcdhEs);
        direct["recipients"][0]["encrypted_key"] = b64::encode(&[1u8; 40]).into();
        assert_eq!(bad_part(check_general(&direct)), ENCRYPTED_KEY);
        let iv = general_with(|_| {}, |m| m["iv"] = b64::encode(&[1u8; 16]).into());
        assert_eq!(bad_part(check_general(&iv)), INITIALIZATION_VECTOR);
        let tag = general_with(|_| {}, |m| m["tag"] = b64::encode(&[1u8; 15]).into());
        assert_eq!(bad_part(check_general(&tag)), AUTHENTICATION_TAG);
        let ciphertext = general_with(|_| {}, |m| m["ciphertext"] = "".into());
        assert_eq!(bad_part(check_general(&ciphertext)), CIPHERTEXT);
    }

    #[test]
    fn every_refusal_reads_as_a_sentence_about_the_message() {
        let errors = [
            MessageError::TooLong(300_000),
            MessageError::Flattened,
            MessageError::BadPart {
                part: INITIALIZATION_VECTOR,
                reason: "must be 12 bytes, not 16".into(),
            },
            MessageError::RepeatedHeaderMember("kid"),
            MessageError::BadPartyInfo("apu"),
        ];
        let sentences: Vec<String> = errors.iter().map(|e| format!("the message {e}")).collect();
        assert_eq!(
            sentences[2],
            "the message has an invalid initialization vector (iv): it must be 12 bytes, not 16"
        );
        assert!(sentences[0].contains("300000 bytes long; at most 262144"));
        assert!(sentences[3].contains("RFC 7516 §7.2.1"));
        assert_eq!(
            sentences[4],
            "the message has an apu that is not base64url of at most 64 bytes"
        );
    }
}
