//! AES key wrap (RFC 3394) with the input-length rules that the `aes-kw` crate leaves to its caller.

use aes_kw::{KekAes128, KekAes192, KekAes256};

/// Why a key wrap or unwrap failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyWrapError {
    #[error("the key-encryption key must be 16, 24 or 32 bytes")]
    BadKekLength,
    #[error("the key to wrap must be a multiple of 8 bytes and at least 16 bytes")]
    BadKeyLength,
    #[error("the wrapped key must be a multiple of 8 bytes and at least 24 bytes")]
    BadWrappedLength,
    #[error("the wrapped key failed its integrity check")]
    IntegrityCheckFailed,
}

/// Wraps `key` under `kek`. RFC 3394 §2.2.1 needs at least two 64-bit blocks of input.
pub fn wrap(kek: &[u8], key: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
    if key.len() < 16 || !key.len().is_multiple_of(8) {
        return Err(KeyWrapError::BadKeyLength);
    }
    let mut out = vec![0u8; key.len() + 8];
    let result = match kek.len() {
        16 => KekAes128::try_from(kek).map(|k| k.wrap(key, &mut out)),
        24 => KekAes192::try_from(kek).map(|k| k.wrap(key, &mut out)),
        32 => KekAes256::try_from(kek).map(|k| k.wrap(key, &mut out)),
        _ => return Err(KeyWrapError::BadKekLength),
    };
    match result {
        Ok(Ok(())) => Ok(out),
        _ => Err(KeyWrapError::BadKeyLength),
    }
}

/// Unwraps `wrapped` under `kek`, checking the RFC 3394 integrity value.
pub fn unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(KeyWrapError::BadWrappedLength);
    }
    let mut out = vec![0u8; wrapped.len() - 8];
    let result = match kek.len() {
        16 => KekAes128::try_from(kek).map(|k| k.unwrap(wrapped, &mut out)),
        24 => KekAes192::try_from(kek).map(|k| k.unwrap(wrapped, &mut out)),
        32 => KekAes256::try_from(kek).map(|k| k.unwrap(wrapped, &mut out)),
        _ => return Err(KeyWrapError::BadKekLength),
    };
    match result {
        Ok(Ok(())) => Ok(out),
        _ => {
            zeroize::Zeroize::zeroize(&mut out);
            Err(KeyWrapError::IntegrityCheckFailed)
        }
    }
}
