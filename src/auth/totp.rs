//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) as every authenticator app
//! expects them: HMAC-SHA-1, 6 digits, 30-second steps, a 160-bit secret written in base32
//! (RFC 4648) and shared as an `otpauth://totp/` URI. Checking accepts one step either side
//! and never a step at or before the last one used, so a code works once.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one (clock drift between phone and node).
pub const WINDOW_STEPS: i64 = 1;
/// Bytes in a secret: 160 bits, the HMAC-SHA-1 block's natural key size (RFC 4226 §4).
pub const SECRET_BYTES: usize = 20;

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("is not {DIGITS} digits")]
    Malformed,
    #[error("is not the code of this moment")]
    Wrong,
    #[error("was used already")]
    Replayed,
}

/// A TOTP secret, zeroed when dropped.
pub struct TotpSecret(Zeroizing<[u8; SECRET_BYTES]>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        TotpSecret(bytes)
    }

    /// A secret from its bytes (as stored).
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Self {
        TotpSecret(Zeroizing::new(bytes))
    }

    /// The secret's bytes.
    pub fn bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }

    /// The secret in base32 without padding, as authenticator apps take it typed in.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32(self.0.as_ref()))
    }

    /// The `otpauth://totp/` URI an authenticator app reads from a QR code.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(issuer),
            percent_encode(account),
            self.base32().as_str(),
            percent_encode(issuer),
        ))
    }

    /// The code of time step `step` (RFC 4226 §5.3 dynamic truncation, then `DIGITS` digits).
    pub fn code_at_step(&self, step: i64) -> u32 {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[19] & 0x0f);
        let binary = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        binary % 10u32.pow(DIGITS)
    }

    /// Checks `code` at `now` (seconds since the epoch): it must be the code of the current
    /// step or one either side, and of a step after `last_used_step`. Returns the step it
    /// matched, for the caller to store as the last one used.
    pub fn verify(
        &self,
        code: &str,
        now: i64,
        last_used_step: Option<i64>,
    ) -> Result<i64, TotpError> {
        let presented = parse_code(code)?;
        let current = now.div_euclid(STEP_SECONDS);
        let mut matched = None;
        // Every step of the window is computed and compared, so the time taken says nothing.
        for step in current - WINDOW_STEPS..=current + WINDOW_STEPS {
            let expected = format!(
                "{:0width$}",
                self.code_at_step(step),
                width = DIGITS as usize
            );
            if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) && matched.is_none() {
                matched = Some(step);
            }
        }
        let step = matched.ok_or(TotpError::Wrong)?;
        if last_used_step.is_some_and(|last| step <= last) {
            return Err(TotpError::Replayed);
        }
        Ok(step)
    }
}

/// A code as typed: exactly `DIGITS` ASCII digits, spaces around or in the middle allowed.
fn parse_code(code: &str) -> Result<String, TotpError> {
    let digits: String = code.chars().filter(|c| *c != ' ').collect();
    if digits.len() != DIGITS as usize || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed);
    }
    Ok(digits)
}

/// RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer = 0u64;
    let mut bits = 0u32;
    for byte in bytes {
        buffer = (buffer << 8) | u64::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 secret is the ASCII "12345678901234567890"; the table's
    /// 8-digit codes end in these 6 digits.
    const RFC_6238_SHA1: [(i64, &str); 6] = [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ];

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(*b"12345678901234567890")
    }

    #[test]
    fn the_rfc_6238_sha1_vectors_give_their_codes() {
        let secret = rfc_secret();
        for (time, code) in RFC_6238_SHA1 {
            assert_eq!(
                secret.verify(code, time, None),
                Ok(time / STEP_SECONDS),
                "{time}"
            );
        }
    }

    #[test]
    fn the_rfc_4226_hotp_vectors_give_their_codes() {
        // RFC 4226 Appendix D, counters 0 to 9.
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        let secret = rfc_secret();
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                secret.code_at_step(counter as i64),
                *code,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn one_step_either_side_is_accepted_and_two_are_not() {
        let secret = rfc_secret();
        let now = 1_111_111_111;
        let step = now / STEP_SECONDS;
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = format!("{:06}", secret.code_at_step(step + offset));
            assert_eq!(
                secret.verify(&code, now, None).is_ok(),
                accepted,
                "{offset}"
            );
        }
    }

    #[test]
    fn a_code_works_once_and_never_after_a_later_one() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let step = secret.verify("005924", now, None).expect("right");
        assert_eq!(
            secret.verify("005924", now, Some(step)),
            Err(TotpError::Replayed)
        );
        let earlier = format!("{:06}", secret.code_at_step(step - 1));
        assert_eq!(
            secret.verify(&earlier, now, Some(step)),
            Err(TotpError::Replayed)
        );
        let later = format!("{:06}", secret.code_at_step(step + 1));
        assert_eq!(secret.verify(&later, now, Some(step)), Ok(step + 1));
    }

    #[test]
    fn malformed_codes_are_refused_before_any_check() {
        let secret = rfc_secret();
        for code in ["", "12345", "1234567", "12345a", "１２３４５６", "-12345"] {
            assert_eq!(
                secret.verify(code, 59, None),
                Err(TotpError::Malformed),
                "{code}"
            );
        }
        assert_eq!(secret.verify("287 082", 59, None), Ok(1));
        assert_eq!(secret.verify("000000", 59, None), Err(TotpError::Wrong));
    }

    #[test]
    fn the_secret_is_written_in_rfc_4648_base32() {
        // RFC 4648 §10.
        for (input, output) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), output);
        }
        assert_eq!(
            rfc_secret().base32().as_str(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_account_and_parameters() {
        let uri = rfc_secret().otpauth_uri("id.example", "owner@id.example");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/id.example:owner%40id.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=id.example&algorithm=SHA1&digits=6&period=30"
        );
    }
}
