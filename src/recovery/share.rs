//! The recovery share format of docs/shares.md (version 1): the 65-byte binary share, its
//! Crockford base32 text form with a checksum, splitting the owner key into a set, and
//! rebuilding it with every refusal the format defines.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::shamir;
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};

/// The only format version this code writes and reads.
pub const VERSION: u8 = 1;
/// The smallest threshold: with 1, every share would be the key itself.
pub const MIN_THRESHOLD: u8 = 2;
/// The most shares in a set.
pub const MAX_SHARES: u8 = 16;
/// Length of the secret: the P-384 private scalar.
pub const SECRET_LEN: usize = 48;
/// Length of a binary share.
pub const SHARE_LEN: usize = 65;
/// Characters in a share's text form, separators not counted.
pub const TEXT_LEN: usize = 104;

/// The Crockford base32 alphabet (no I, L, O or U).
pub(crate) const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BODY_LEN: usize = 59;
const CHECKSUM_LEN: usize = 6;

/// What is wrong with a share or a set of shares: the codes of docs/shares.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareErrorCode {
    Alphabet,
    Length,
    Checksum,
    Version,
    Threshold,
    Index,
    DuplicateIndex,
    MixedSets,
    TooFew,
    Inconsistent,
    NotAKey,
    KeyCheck,
    WrongKey,
}

impl ShareErrorCode {
    /// The code as written in docs/shares.md and the test vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareErrorCode::Alphabet => "alphabet",
            ShareErrorCode::Length => "length",
            ShareErrorCode::Checksum => "checksum",
            ShareErrorCode::Version => "version",
            ShareErrorCode::Threshold => "threshold",
            ShareErrorCode::Index => "index",
            ShareErrorCode::DuplicateIndex => "duplicate-index",
            ShareErrorCode::MixedSets => "mixed-sets",
            ShareErrorCode::TooFew => "too-few",
            ShareErrorCode::Inconsistent => "inconsistent",
            ShareErrorCode::NotAKey => "not-a-key",
            ShareErrorCode::KeyCheck => "key-check",
            ShareErrorCode::WrongKey => "wrong-key",
        }
    }

    /// Whether the code is about one share on its own (as opposed to how shares combine).
    pub fn is_format_error(self) -> bool {
        matches!(
            self,
            ShareErrorCode::Alphabet
                | ShareErrorCode::Length
                | ShareErrorCode::Checksum
                | ShareErrorCode::Version
                | ShareErrorCode::Threshold
                | ShareErrorCode::Index
        )
    }
}

/// A refused share or set, with the 1-based position of the share at fault when there is one
/// and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShareError {
    pub code: ShareErrorCode,
    pub position: Option<usize>,
    pub message: String,
}

/// "Share 3" when the position is known, "This share" otherwise.
fn share_name(position: Option<usize>) -> String {
    position.map_or_else(|| "This share".to_owned(), |p| format!("Share {p}"))
}

fn share_error(code: ShareErrorCode, position: Option<usize>, message: String) -> ShareError {
    ShareError {
        code,
        position,
        message,
    }
}

/// The error type of rebuilding, named for readers of `rebuild_key`.
pub type RebuildError = ShareError;

/// One share of a set.
#[derive(Clone)]
pub struct Share {
    pub set_id: [u8; 4],
    pub threshold: u8,
    pub index: u8,
    pub key_check: [u8; 4],
    data: Zeroizing<[u8; SECRET_LEN]>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Share(set {}, index {} of threshold {})",
            hex(&self.set_id),
            self.index,
            self.threshold
        )
    }
}

/// Lowercase hex, for set ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 8 hex digits into a set id.
pub fn parse_set_id(text: &str) -> Option<[u8; 4]> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 4];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(body);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

/// The key check of a public key: the first 4 bytes of its RFC 7638 thumbprint digest.
pub fn key_check(public_key: &OwnerPublicKey) -> [u8; 4] {
    let digest = public_key.thumbprint_digest();
    [digest[0], digest[1], digest[2], digest[3]]
}

impl Share {
    /// The set id as 8 lowercase hex digits.
    pub fn set_id_hex(&self) -> String {
        hex(&self.set_id)
    }

    fn to_bytes(&self) -> Zeroizing<[u8; SHARE_LEN]> {
        let mut bytes = Zeroizing::new([0u8; SHARE_LEN]);
        bytes[0] = VERSION;
        bytes[1..5].copy_from_slice(&self.set_id);
        bytes[5] = self.threshold;
        bytes[6] = self.index;
        bytes[7..11].copy_from_slice(&self.key_check);
        bytes[11..BODY_LEN].copy_from_slice(self.data.as_slice());
        let sum = checksum(&bytes[..BODY_LEN]);
        bytes[BODY_LEN..].copy_from_slice(&sum);
        bytes
    }

    /// The canonical text form: 104 characters in groups of four joined by hyphens.
    pub fn to_text(&self) -> Zeroizing<String> {
        let characters = encode_base32(self.to_bytes().as_slice());
        let groups: Vec<&str> = characters
            .as_bytes()
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        Zeroizing::new(groups.join("-"))
    }

    /// Reads a share as a person typed it. `position` (1-based) only names the share in
    /// messages.
    pub fn parse(text: &str, position: Option<usize>) -> Result<Share, ShareError> {
        let name = share_name(position);
        let mut values = Zeroizing::new(Vec::with_capacity(text.len().min(4 * TEXT_LEN)));
        for character in text
            .chars()
            .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n' | '-'))
        {
            let Some(value) = crockford_value(character) else {
                let at = values.len() + 1;
                return Err(share_error(
                    ShareErrorCode::Alphabet,
                    position,
                    format!(
                        "{name} has a character that shares do not use: {:?} at character {at}.",
                        character
                    ),
                ));
            };
            values.push(value);
        }
        if values.len() != TEXT_LEN {
            return Err(share_error(
                ShareErrorCode::Length,
                position,
                format!(
                    "{name} has {} characters; a share has {TEXT_LEN} (spaces and hyphens not \
                     counted).",
                    values.len()
                ),
            ));
        }
        let bytes = decode_base32(&values);
        if !bool::from(checksum(&bytes[..BODY_LEN]).ct_eq(&bytes[BODY_LEN..])) {
            return Err(share_error(
                ShareErrorCode::Checksum,
                position,
                format!(
                    "{name} has a typo: its checksum does not match. Compare it with the \
                     original character by character."
                ),
            ));
        }
        if bytes[0] != VERSION {
            return Err(share_error(
                ShareErrorCode::Version,
                position,
                format!(
                    "{name} is in share format version {}, which this siteid does not read.",
                    bytes[0]
                ),
            ));
        }
        let threshold = bytes[5];
        if !(MIN_THRESHOLD..=MAX_SHARES).contains(&threshold) {
            return Err(share_error(
                ShareErrorCode::Threshold,
                position,
                format!(
                    "{name} says {threshold} shares rebuild the key; a set needs \
                     {MIN_THRESHOLD} to {MAX_SHARES}."
                ),
            ));
        }
        let index = bytes[6];
        if index == 0 || index > MAX_SHARES {
            return Err(share_error(
                ShareErrorCode::Index,
                position,
                format!("{name} has index {index}; share indexes run from 1 to {MAX_SHARES}."),
            ));
        }
        let mut data = Zeroizing::new([0u8; SECRET_LEN]);
        data.copy_from_slice(&bytes[11..BODY_LEN]);
        Ok(Share {
            set_id: [bytes[1], bytes[2], bytes[3], bytes[4]],
            threshold,
            index,
            key_check: [bytes[7], bytes[8], bytes[9], bytes[10]],
            data,
        })
    }
}

/// The value of a Crockford base32 character, reading lower case as upper case, O as 0 and
/// I and L as 1.
pub(crate) fn crockford_value(character: char) -> Option<u8> {
    let upper = match character.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    if !upper.is_ascii() {
        return None;
    }
    ALPHABET
        .iter()
        .position(|&a| a == upper as u8)
        .map(|p| p as u8)
}

fn encode_base32(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(TEXT_LEN));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    out
}

/// Decodes 104 five-bit values into 65 bytes (520 bits, no padding).
fn decode_base32(values: &[u8]) -> Zeroizing<[u8; SHARE_LEN]> {
    let mut out = Zeroizing::new([0u8; SHARE_LEN]);
    let (mut buffer, mut bits, mut at) = (0u32, 0u32, 0usize);
    for &value in values {
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if let Some(slot) = out.get_mut(at) {
                *slot = (buffer >> bits) as u8;
            }
            at += 1;
        }
        buffer &= (1 << bits) - 1;
    }
    out
}

/// A freshly made set of shares.
#[derive(Debug)]
pub struct Split {
    pub set_id: [u8; 4],
    pub threshold: u8,
    pub shares: Vec<Share>,
}

/// Why a split was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "a set needs a threshold of {MIN_THRESHOLD} to {MAX_SHARES} and at least as many shares, \
     at most {MAX_SHARES}; {threshold} of {count} is not allowed"
)]
pub struct SplitRangeError {
    pub threshold: u8,
    pub count: u8,
}

/// Checks 2 <= threshold <= count <= 16.
pub fn check_split_range(threshold: u8, count: u8) -> Result<(), SplitRangeError> {
    if threshold < MIN_THRESHOLD || threshold > count || count > MAX_SHARES {
        return Err(SplitRangeError { threshold, count });
    }
    Ok(())
}

/// Splits the owner key into `count` shares of which any `threshold` rebuild it.
pub fn split_key(
    key: &OwnerPrivateKey,
    threshold: u8,
    count: u8,
) -> Result<Split, SplitRangeError> {
    check_split_range(threshold, count)?;
    let mut rng = rand::rngs::OsRng;
    let mut set_id = [0u8; 4];
    rng.fill_bytes(&mut set_id);
    let key_check = key_check(&key.public_key());
    let scalar = key.scalar_bytes();
    let shares = shamir::split(scalar.as_slice(), threshold, count, &mut rng)
        .into_iter()
        .enumerate()
        .map(|(i, values)| {
            let mut data = Zeroizing::new([0u8; SECRET_LEN]);
            data.copy_from_slice(&values);
            Share {
                set_id,
                threshold,
                index: (i + 1) as u8,
                key_check,
                data,
            }
        })
        .collect();
    Ok(Split {
        set_id,
        threshold,
        shares,
    })
}

/// Rebuilds the owner key from shares in the order they were entered, refusing (in the order
/// of docs/shares.md) mixed sets, repeated indexes, too few shares, shares that disagree, a
/// result that is not a key, and a key that fails the key check or is not `expected`.
pub fn rebuild_key(
    shares: &[Share],
    expected: Option<&OwnerPublicKey>,
) -> Result<OwnerPrivateKey, ShareError> {
    let Some(first) = shares.first() else {
        return Err(share_error(
            ShareErrorCode::TooFew,
            None,
            "No shares were given.".into(),
        ));
    };
    for (i, share) in shares.iter().enumerate().skip(1) {
        if share.set_id != first.set_id {
            return Err(share_error(
                ShareErrorCode::MixedSets,
                Some(i + 1),
                format!(
                    "Share {} is from another set (set {}, while share 1 is from set {}). \
                     Shares of different sets cannot be combined.",
                    i + 1,
                    share.set_id_hex(),
                    first.set_id_hex()
                ),
            ));
        }
        if share.threshold != first.threshold || share.key_check != first.key_check {
            return Err(share_error(
                ShareErrorCode::MixedSets,
                Some(i + 1),
                format!(
                    "Share {} carries the set id of share 1 but another threshold or key: \
                     it does not belong to the same set.",
                    i + 1
                ),
            ));
        }
    }
    for (i, share) in shares.iter().enumerate() {
        if let Some(earlier) = shares[..i].iter().position(|s| s.index == share.index) {
            return Err(share_error(
                ShareErrorCode::DuplicateIndex,
                Some(i + 1),
                format!(
                    "Shares {} and {} have the same index ({}): each share of a set has its \
                     own, so one of them was entered twice.",
                    earlier + 1,
                    i + 1,
                    share.index
                ),
            ));
        }
    }
    let threshold = usize::from(first.threshold);
    if shares.len() < threshold {
        return Err(share_error(
            ShareErrorCode::TooFew,
            None,
            format!(
                "{} of {threshold} shares: this set needs {threshold} to rebuild the key.",
                shares.len()
            ),
        ));
    }
    let points: Vec<(u8, &[u8])> = shares[..threshold]
        .iter()
        .map(|s| (s.index, s.data.as_slice()))
        .collect();
    for (i, extra) in shares.iter().enumerate().skip(threshold) {
        let predicted = shamir::interpolate(&points, extra.index);
        if !bool::from(predicted.as_slice().ct_eq(extra.data.as_slice())) {
            return Err(share_error(
                ShareErrorCode::Inconsistent,
                Some(i + 1),
                format!(
                    "Share {} does not agree with the first {threshold}: it or one of them \
                     was altered.",
                    i + 1
                ),
            ));
        }
    }
    let secret = shamir::interpolate(&points, 0);
    let key = OwnerPrivateKey::from_scalar_bytes(&secret).map_err(|_| {
        share_error(
            ShareErrorCode::NotAKey,
            None,
            "These shares do not rebuild a P-384 private key: one of them was altered.".into(),
        )
    })?;
    let public_key = key.public_key();
    if !bool::from(key_check(&public_key).ct_eq(&first.key_check)) {
        return Err(share_error(
            ShareErrorCode::KeyCheck,
            None,
            "These shares rebuild a key that fails their key check: one of them was altered."
                .into(),
        ));
    }
    if let Some(expected) = expected
        && *expected != public_key
    {
        return Err(share_error(
            ShareErrorCode::WrongKey,
            None,
            format!(
                "These shares rebuild another key (kid {}) than the owner's (kid {}).",
                public_key.thumbprint(),
                expected.thumbprint()
            ),
        ));
    }
    Ok(key)
}

/// Test support: a share from raw parts, with a valid checksum over whatever they are.
#[doc(hidden)]
pub fn encode_raw_share(
    version: u8,
    set_id: [u8; 4],
    threshold: u8,
    index: u8,
    key_check: [u8; 4],
    data: &[u8; SECRET_LEN],
) -> String {
    let mut bytes = [0u8; SHARE_LEN];
    bytes[0] = version;
    bytes[1..5].copy_from_slice(&set_id);
    bytes[5] = threshold;
    bytes[6] = index;
    bytes[7..11].copy_from_slice(&key_check);
    bytes[11..BODY_LEN].copy_from_slice(data);
    let sum = checksum(&bytes[..BODY_LEN]);
    bytes[BODY_LEN..].copy_from_slice(&sum);
    encode_base32(&bytes).to_string()
}

/// Test support: the share values, for building altered shares.
#[doc(hidden)]
pub fn share_data(share: &Share) -> [u8; SECRET_LEN] {
    *share.data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_3_of_5() -> (OwnerPrivateKey, Split) {
        let key = OwnerPrivateKey::generate();
        let split = split_key(&key, 3, 5).expect("split");
        (key, split)
    }

    fn parsed(split: &Split, indexes: &[usize]) -> Vec<Share> {
        indexes
            .iter()
            .enumerate()
            .map(|(position, &i)| {
                Share::parse(&split.shares[i].to_text(), Some(position + 1)).expect("parse")
            })
            .collect()
    }

    fn refusal(shares: &[Share], expected: Option<&OwnerPublicKey>) -> ShareError {
        rebuild_key(shares, expected).expect_err("must be refused")
    }

    fn parse_refusal(text: &str) -> ShareError {
        Share::parse(text, Some(2)).expect_err("must be refused")
    }

    fn raw(version: u8, threshold: u8, index: u8) -> String {
        encode_raw_share(
            version,
            [1, 2, 3, 4],
            threshold,
            index,
            [0; 4],
            &[9; SECRET_LEN],
        )
    }

    #[test]
    fn the_text_form_round_trips_in_canonical_groups() {
        let (_, split) = split_3_of_5();
        for share in &split.shares {
            let text = share.to_text();
            assert_eq!(text.len(), TEXT_LEN + TEXT_LEN / 4 - 1);
            assert!(text.split('-').all(|group| group.len() == 4));
            let back = Share::parse(&text, None).expect("parse");
            assert_eq!(back.to_text().as_str(), text.as_str());
            assert_eq!(
                (back.set_id, back.index, back.threshold),
                (split.set_id, share.index, 3)
            );
        }
    }

    #[test]
    fn reading_forgives_case_separators_and_look_alike_characters() {
        let (_, split) = split_3_of_5();
        let canonical = split.shares[0].to_text();
        let compact: String = canonical.chars().filter(|&c| c != '-').collect();
        let lower = canonical.to_lowercase();
        let spaced = compact
            .as_bytes()
            .chunks(8)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join(" \n\t");
        let look_alike = compact.replace('0', "o").replace('1', "l");
        for variant in [compact.clone(), lower, spaced, look_alike] {
            let share = Share::parse(&variant, None).expect("lenient read");
            assert_eq!(share.to_text().as_str(), canonical.as_str());
        }
        let with_u = format!("U{}", &compact[1..]);
        let error = parse_refusal(&with_u);
        assert_eq!(
            (error.code, error.position),
            (ShareErrorCode::Alphabet, Some(2))
        );
        assert!(
            error.message.contains("'U' at character 1"),
            "{}",
            error.message
        );
        // The alphabet is checked over the whole input, before the length.
        let late = parse_refusal(&format!("{compact}00u"));
        assert_eq!(late.code, ShareErrorCode::Alphabet);
        for foreign in ["ı", "ſ", "é", "🔑", "*"] {
            let error = parse_refusal(&format!("{}{foreign}", &compact[1..]));
            assert_eq!(error.code, ShareErrorCode::Alphabet, "{foreign}");
        }
    }

    #[test]
    fn a_mistyped_character_fails_the_checksum() {
        let (_, split) = split_3_of_5();
        let text = split.shares[1].to_text().to_string();
        for at in [0, 5, 60, text.len() - 1] {
            let mut typo = text.clone().into_bytes();
            if typo[at] == b'-' {
                continue;
            }
            typo[at] = if typo[at] == b'Z' { b'Y' } else { b'Z' };
            let error = parse_refusal(std::str::from_utf8(&typo).expect("ascii"));
            assert_eq!(
                (error.code, error.position),
                (ShareErrorCode::Checksum, Some(2))
            );
            assert!(error.message.starts_with("Share 2 has a typo"));
        }
    }

    #[test]
    fn wrong_lengths_are_refused_with_the_count() {
        let (_, split) = split_3_of_5();
        let text = split.shares[0].to_text().to_string();
        let error = parse_refusal(&text[..text.len() - 1]);
        assert_eq!(error.code, ShareErrorCode::Length);
        assert!(
            error.message.contains("103 characters"),
            "{}",
            error.message
        );
        assert_eq!(
            parse_refusal(&format!("{text}0")).code,
            ShareErrorCode::Length
        );
        assert_eq!(parse_refusal("").code, ShareErrorCode::Length);
    }

    #[test]
    fn header_fields_are_checked_after_the_checksum() {
        assert_eq!(parse_refusal(&raw(2, 3, 1)).code, ShareErrorCode::Version);
        assert_eq!(parse_refusal(&raw(1, 1, 1)).code, ShareErrorCode::Threshold);
        assert_eq!(
            parse_refusal(&raw(1, 17, 1)).code,
            ShareErrorCode::Threshold
        );
        let zero = parse_refusal(&raw(1, 3, 0));
        assert_eq!((zero.code, zero.position), (ShareErrorCode::Index, Some(2)));
        assert!(zero.message.contains("index 0"));
        assert_eq!(parse_refusal(&raw(1, 3, 17)).code, ShareErrorCode::Index);
        assert!(Share::parse(&raw(1, 16, 16), None).is_ok());
    }

    #[test]
    fn any_three_of_five_rebuild_the_key_and_two_do_not() {
        let (key, split) = split_3_of_5();
        let public = key.public_key();
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let rebuilt =
                        rebuild_key(&parsed(&split, &[c, a, b]), Some(&public)).expect("rebuild");
                    assert_eq!(*rebuilt.scalar_bytes(), *key.scalar_bytes());
                }
                let error = refusal(&parsed(&split, &[a, b]), Some(&public));
                assert_eq!((error.code, error.position), (ShareErrorCode::TooFew, None));
                assert!(error.message.contains("needs 3"), "{}", error.message);
            }
        }
        let all = rebuild_key(&parsed(&split, &[0, 1, 2, 3, 4]), None).expect("all five");
        assert_eq!(*all.scalar_bytes(), *key.scalar_bytes());
    }

    #[test]
    fn shares_of_two_sets_do_not_mix() {
        let (key, first) = split_3_of_5();
        let second = split_key(&key, 3, 5).expect("split");
        let shares = vec![
            Share::parse(&first.shares[0].to_text(), Some(1)).expect("parse"),
            Share::parse(&first.shares[1].to_text(), Some(2)).expect("parse"),
            Share::parse(&second.shares[2].to_text(), Some(3)).expect("parse"),
        ];
        let error = refusal(&shares, None);
        assert_eq!(
            (error.code, error.position),
            (ShareErrorCode::MixedSets, Some(3))
        );
        assert!(error.message.contains(&second.shares[2].set_id_hex()));
    }

    #[test]
    fn a_share_entered_twice_is_named() {
        let (_, split) = split_3_of_5();
        let error = refusal(&parsed(&split, &[0, 1, 0]), None);
        assert_eq!(
            (error.code, error.position),
            (ShareErrorCode::DuplicateIndex, Some(3))
        );
        assert!(
            error.message.starts_with("Shares 1 and 3"),
            "{}",
            error.message
        );
    }

    #[test]
    fn altered_shares_never_yield_a_key() {
        let (key, split) = split_3_of_5();
        let mut data = share_data(&split.shares[3]);
        data[0] ^= 1;
        let forged = encode_raw_share(1, split.set_id, 3, 4, split.shares[3].key_check, &data);
        let mut shares = parsed(&split, &[0, 1, 2]);
        shares.push(Share::parse(&forged, Some(4)).expect("valid checksum"));
        let error = refusal(&shares, None);
        assert_eq!(
            (error.code, error.position),
            (ShareErrorCode::Inconsistent, Some(4))
        );
        // Within the threshold the alteration changes the key, which the key check catches.
        shares.swap(0, 3);
        let error = refusal(&shares[..3], Some(&key.public_key()));
        assert!(
            matches!(
                error.code,
                ShareErrorCode::KeyCheck | ShareErrorCode::NotAKey
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_rebuilt_key_is_checked_against_the_owner_key() {
        let (_, split) = split_3_of_5();
        let other = OwnerPrivateKey::generate().public_key();
        let error = refusal(&parsed(&split, &[0, 1, 2]), Some(&other));
        assert_eq!(error.code, ShareErrorCode::WrongKey);
        assert!(error.message.contains(&other.thumbprint()));
    }

    #[test]
    fn a_zero_scalar_is_not_a_key() {
        let zero = [0u8; SECRET_LEN];
        let shares: Vec<Share> = (1..=2)
            .map(|index| {
                let text = encode_raw_share(1, [7; 4], 2, index, [0; 4], &zero);
                Share::parse(&text, Some(usize::from(index))).expect("parse")
            })
            .collect();
        assert_eq!(refusal(&shares, None).code, ShareErrorCode::NotAKey);
    }

    #[test]
    fn splits_outside_the_limits_are_refused() {
        let key = OwnerPrivateKey::generate();
        for (threshold, count) in [(1, 3), (0, 0), (4, 3), (2, 17), (17, 17)] {
            assert!(
                split_key(&key, threshold, count).is_err(),
                "{threshold} of {count}"
            );
        }
        assert!(split_key(&key, 16, 16).is_ok());
        assert!(split_key(&key, 2, 2).is_ok());
    }

    #[test]
    fn set_ids_parse_as_eight_hex_digits() {
        assert_eq!(parse_set_id("0a1B2c3d"), Some([0x0a, 0x1b, 0x2c, 0x3d]));
        for bad in ["", "0a1b2c3", "0a1b2c3d4", "0a1b2c3g", "+a1b2c3d"] {
            assert_eq!(parse_set_id(bad), None, "{bad}");
        }
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }
}
