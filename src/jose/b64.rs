//! Strict base64url without padding (RFC 7515 §2), the only encoding JOSE values use on the wire.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A value that is not canonical unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not base64url without padding")]
pub struct Base64Error;

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes canonical base64url without padding: no `=`, no whitespace, no stray trailing bits.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| Base64Error)
}

/// Decodes base64url that must hold exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], LengthError> {
    let bytes = decode(text).map_err(|_| LengthError::NotBase64)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| LengthError::WrongLength {
        expected: N,
        actual: bytes.len(),
    })
}

/// Why a fixed-length base64url value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LengthError {
    #[error("is not base64url without padding")]
    NotBase64,
    #[error("must decode to {expected} bytes, not {actual}")]
    WrongLength { expected: usize, actual: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bytes() {
        let bytes = [0u8, 1, 2, 250, 251, 255];
        assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn padding_whitespace_and_standard_alphabet_are_refused() {
        assert!(decode("AQ==").is_err());
        assert!(decode("AQ ").is_err());
        assert!(decode("+/8").is_err());
        assert!(decode("_-8").is_ok());
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // "AQ" is the canonical encoding of [1]; "AR" differs only in unused bits.
        assert_eq!(decode("AQ").unwrap(), vec![1]);
        assert!(decode("AR").is_err());
    }

    #[test]
    fn fixed_length_values_name_the_length() {
        assert_eq!(
            decode_array::<2>("AQ"),
            Err(LengthError::WrongLength {
                expected: 2,
                actual: 1
            })
        );
    }
}
