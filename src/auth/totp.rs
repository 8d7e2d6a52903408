//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) as every authenticator app
//! expects them: HMAC-SHA-1, 6 digits, 30-second steps, a 160-bit secret written in base32
//! (RFC 4648) and shared as an `otpauth://totp/` URI. Checking accepts one step either side
//! and never a step at or before the last one used, so a code works once. On top of the codes,
//! TOTP as the second factor of password unlock: the secret sealed under the node's sealing key,
//! setup and its confirmation, single-use recovery codes, turning it off, and the check an
//! unlock makes inside its transaction.

use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::InternalError;
use super::attempts::{AttemptLedger, Windows};
use super::throttle::Scope;
use super::unlock_codes::UnlockCode;
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::jose::sealed::{SealError, SealingKey};
use crate::store::totp::{self as rows, SealedSecret};
use crate::store::{Store, StoreError};

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

/// How long a setup waits for its confirming code, in seconds.
pub const PENDING_LIFETIME: i64 = 15 * 60;
/// Recovery codes made at once.
pub const RECOVERY_CODES: usize = 10;
/// Crockford base32 characters in a recovery code (80 random bits), as in an unlock code.
pub const RECOVERY_CODE_CHARS: usize = super::unlock_codes::CODE_CHARS;
/// The associated data a TOTP secret is sealed under.
const SEAL_PURPOSE: &[u8] = b"siteid totp-secret v1";
/// Bytes of salt in a secret's public id.
const SECRET_SALT_BYTES: usize = 16;

/// The key that keeps TOTP secrets out of the database: the node's sealing key, a file of its
/// own in the data directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TotpVault(Arc<SealingKey>);

impl TotpVault {
    /// Reads the sealing key from `data_dir`, or makes it there.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SealError> {
        SealingKey::load_or_create(data_dir).map(|key| TotpVault(Arc::new(key)))
    }

    /// Seals `secret`, with a fresh salted id.
    fn seal(&self, secret: &TotpSecret) -> SealedSecret {
        let mut salt = [0u8; SECRET_SALT_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        SealedSecret {
            sealed: self.0.seal(secret.bytes(), SEAL_PURPOSE),
            secret_id: secret_id(&salt, secret),
            salt: salt.to_vec(),
        }
    }

    /// Opens a sealed secret; `None` when it does not open under this node's key (the key
    /// file was lost or replaced) or is not a secret.
    fn open(&self, sealed: &SealedSecret) -> Option<TotpSecret> {
        let bytes = self.0.open(&sealed.sealed, SEAL_PURPOSE).ok()?;
        let bytes = <[u8; SECRET_BYTES]>::try_from(bytes.as_slice()).ok()?;
        Some(TotpSecret::from_bytes(bytes))
    }
}

/// A secret's public id: base64url SHA-256 over a random salt and the secret, so that audit
/// entries can name the secret without giving it away.
fn secret_id(salt: &[u8], secret: &TotpSecret) -> String {
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(secret.bytes());
    b64::encode(&hash.finalize())
}

/// A single-use recovery code: the same form as a one-time unlock code (16 Crockford base32
/// characters, 80 random bits, read leniently), shown in lower case.
pub struct RecoveryCode(UnlockCode);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

impl RecoveryCode {
    /// A fresh random code.
    pub fn generate() -> Self {
        RecoveryCode(UnlockCode::generate())
    }

    /// Reads a typed code: any case, spaces or hyphens anywhere, O read as 0, I and L as 1.
    pub fn parse(text: &str) -> Option<Self> {
        UnlockCode::parse(text).ok().map(RecoveryCode)
    }

    /// The code as shown to people: lower case, four groups of four (`7kq2-m9xd-3fht-pw4c`).
    pub fn display(&self) -> String {
        self.0.display().to_ascii_lowercase()
    }

    /// The SHA-256 the node keeps instead of the code.
    fn hash(&self) -> [u8; 32] {
        self.0.hash()
    }
}

/// Ten fresh recovery codes, their hashes, and the codes as shown once.
fn fresh_recovery_codes() -> (Vec<[u8; 32]>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let code = RecoveryCode::generate();
            (code.hash(), code.display())
        })
        .unzip()
}

/// The second factor a request carries: a code from the authenticator app, or a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
}

impl SecondFactor {
    /// The factor of a request's `totp` and `recovery_code` members; `Err` when both are there.
    pub fn from_members(
        totp: Option<String>,
        recovery_code: Option<String>,
    ) -> Result<Option<Self>, BothFactors> {
        match (totp, recovery_code) {
            (Some(_), Some(_)) => Err(BothFactors),
            (Some(code), None) => Ok(Some(SecondFactor::Totp(code))),
            (None, Some(code)) => Ok(Some(SecondFactor::RecoveryCode(code))),
            (None, None) => Ok(None),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            SecondFactor::Totp(_) => "totp",
            SecondFactor::RecoveryCode(_) => "recovery_code",
        }
    }
}

/// A request carried both a TOTP code and a recovery code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("send either totp or recovery_code, not both")]
pub struct BothFactors;

/// A second factor that was right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorUsed {
    Totp,
    /// A recovery code, used up; this many are left.
    RecoveryCode {
        left: usize,
    },
}

impl FactorUsed {
    /// The factor's name in audit entries.
    pub fn name(self) -> &'static str {
        match self {
            FactorUsed::Totp => "totp",
            FactorUsed::RecoveryCode { .. } => "recovery_code",
        }
    }
}

/// Why a second factor was refused.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("TOTP is on and the request carries no code")]
    Required,
    #[error("the code is wrong, outside its window, or used already")]
    Invalid,
    #[error("the TOTP secret does not open under this node's sealing key")]
    Unreadable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the second factor of a request when TOTP is on, inside the caller's transaction:
/// a TOTP code's step is stored as the last one used, and a recovery code is used up (and
/// audited), so that neither works twice even for requests that arrive together. `Ok(None)`
/// when TOTP is off (a factor sent then is ignored).
pub fn check_factor(
    transaction: &rusqlite::Connection,
    vault: &TotpVault,
    factor: Option<&SecondFactor>,
    actor: &Actor,
    now: i64,
) -> Result<Option<FactorUsed>, FactorError> {
    let Some(settings) = rows::settings(transaction)? else {
        return Ok(None);
    };
    match factor.ok_or(FactorError::Required)? {
        SecondFactor::Totp(code) => {
            let secret = vault
                .open(&settings.secret)
                .ok_or(FactorError::Unreadable)?;
            let step = secret
                .verify(code, now, settings.last_used_step)
                .map_err(|_| FactorError::Invalid)?;
            rows::set_last_used_step(transaction, step)?;
            Ok(Some(FactorUsed::Totp))
        }
        SecondFactor::RecoveryCode(text) => {
            let presented = RecoveryCode::parse(text)
                .ok_or(FactorError::Invalid)?
                .hash();
            let mut matched = None;
            for stored in rows::recovery_code_hashes(transaction)? {
                if bool::from(stored.ct_eq(&presented)) {
                    matched = Some(stored);
                }
            }
            let stored = matched.ok_or(FactorError::Invalid)?;
            rows::delete_recovery_code(transaction, &stored)?;
            let left = rows::recovery_codes_left(transaction)?;
            let event = AuditEvent::TotpRecoveryCodeUsed {
                secret_id: settings.secret.secret_id,
                left,
            };
            audit::append(transaction, now, &event, actor)?;
            Ok(Some(FactorUsed::RecoveryCode { left }))
        }
    }
}

/// Why a change to the TOTP settings was refused.
#[derive(Debug, thiserror::Error)]
pub enum TotpChangeError {
    #[error("TOTP is on already")]
    Enabled,
    #[error("TOTP is off")]
    NotEnabled,
    #[error("no setup is waiting for its confirming code")]
    NotPending,
    #[error("the code is wrong, outside its window, or used already")]
    InvalidCode,
    #[error("the TOTP secret does not open under this node's sealing key")]
    Unreadable,
    #[error("too many wrong codes")]
    Throttled { retry_after: i64, scope: Scope },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for TotpChangeError {
    fn from(error: StoreError) -> Self {
        TotpChangeError::Internal(InternalError(error))
    }
}

impl From<FactorError> for TotpChangeError {
    fn from(error: FactorError) -> Self {
        match error {
            FactorError::Required | FactorError::Invalid => TotpChangeError::InvalidCode,
            FactorError::Unreadable => TotpChangeError::Unreadable,
            FactorError::Store(error) => error.into(),
        }
    }
}

/// Whether TOTP is on, since when, and how many recovery codes are left.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TotpStatus {
    pub enabled: bool,
    pub enabled_at: Option<i64>,
    pub recovery_codes_left: usize,
}

/// The TOTP status.
pub async fn status(store: &Store) -> Result<TotpStatus, TotpChangeError> {
    let status = store
        .run(|c| {
            let settings = rows::settings(c)?;
            Ok::<_, StoreError>(TotpStatus {
                enabled: settings.is_some(),
                enabled_at: settings.map(|s| s.enabled_at),
                recovery_codes_left: rows::recovery_codes_left(c)?,
            })
        })
        .await?;
    Ok(status)
}

/// Whether the TOTP secret opens under the vault's key: `None` while TOTP is off. Start-up
/// reports a secret that does not (a database restored without its `sealing.key`).
pub async fn secret_opens(store: &Store, vault: &TotpVault) -> Result<Option<bool>, StoreError> {
    let settings = store.run(|c| rows::settings(c)).await?;
    Ok(settings.map(|settings| vault.open(&settings.secret).is_some()))
}

/// A setup just started: the secret for the authenticator app, as text and as a URI.
pub struct Setup {
    pub secret: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
}

/// Starts (or starts again) a setup: a fresh secret, stored sealed as pending until one of
/// its codes confirms it. Refused while TOTP is on.
pub async fn start_setup(
    store: &Store,
    vault: &TotpVault,
    issuer: &str,
    account: &str,
    now: i64,
) -> Result<Setup, TotpChangeError> {
    let secret = TotpSecret::generate();
    let sealed = vault.seal(&secret);
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            if rows::settings(&tx)?.is_some() {
                return Err(TotpChangeError::Enabled);
            }
            rows::set_pending(&tx, &sealed, now)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        })
        .await?;
    Ok(Setup {
        secret: secret.base32(),
        otpauth_uri: secret.otpauth_uri(issuer, account),
    })
}

/// Confirms the pending setup with a code of its secret: TOTP is on from here (that code's
/// step counts as used), and ten fresh recovery codes are returned, to be shown once.
pub async fn confirm(
    store: &Store,
    vault: &TotpVault,
    code: &str,
    session_id: &str,
    actor: Actor,
    now: i64,
) -> Result<Vec<String>, TotpChangeError> {
    let (hashes, codes) = fresh_recovery_codes();
    let vault = vault.clone();
    let code = Zeroizing::new(code.to_owned());
    let session_id = session_id.to_owned();
    store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            if rows::settings(&tx)?.is_some() {
                return Err(TotpChangeError::Enabled);
            }
            let pending = rows::pending(&tx)?
                .filter(|p| now - p.created_at < PENDING_LIFETIME)
                .ok_or(TotpChangeError::NotPending)?;
            let secret = vault
                .open(&pending.secret)
                .ok_or(TotpChangeError::Unreadable)?;
            let step = secret
                .verify(&code, now, None)
                .map_err(|_| TotpChangeError::InvalidCode)?;
            rows::enable(&tx, &pending.secret, step, now)?;
            rows::delete_pending(&tx)?;
            rows::replace_recovery_codes(&tx, &hashes, now)?;
            let event = AuditEvent::TotpEnabled {
                secret_id: pending.secret.secret_id,
                session_id,
            };
            audit::append(&tx, now, &event, &actor)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(())
        })
        .await?;
    Ok(codes)
}

/// What a change that needs a current code (turning TOTP off, new recovery codes) takes.
pub struct CodeChange<'a> {
    pub store: &'a Store,
    pub vault: &'a TotpVault,
    pub attempts: &'a AttemptLedger,
    pub session_id: &'a str,
    pub actor: Actor,
    pub now: i64,
}

/// Runs `change` in a transaction once `factor` is checked in it. A wrong code counts in the
/// client's unlock window, so a session cannot guess codes without limit.
async fn with_checked_factor<T, F>(
    context: CodeChange<'_>,
    factor: SecondFactor,
    change: F,
) -> Result<T, TotpChangeError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection, &str, &Actor, i64) -> Result<T, StoreError> + Send + 'static,
{
    let attempt = context
        .attempts
        .begin_unlock(&context.actor, Windows::Client, context.now)
        .map_err(|(retry_after, scope)| TotpChangeError::Throttled { retry_after, scope })?;
    let vault = context.vault.clone();
    let actor = context.actor.clone();
    let now = context.now;
    let outcome = context
        .store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            let settings = rows::settings(&tx)?.ok_or(TotpChangeError::NotEnabled)?;
            check_factor(&tx, &vault, Some(&factor), &actor, now)?;
            let value = change(&tx, &settings.secret.secret_id, &actor, now)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(value)
        })
        .await;
    match &outcome {
        Err(TotpChangeError::InvalidCode) => {
            attempt.failed(&context.actor, "totp_invalid", Windows::Client);
        }
        // A right code is no password: it neither clears the client's failures nor counts.
        _ => attempt.abandoned(),
    }
    outcome
}

/// Turns TOTP off with a current code or a recovery code: the secret, a pending setup and the
/// recovery codes are deleted.
pub async fn disable(context: CodeChange<'_>, factor: SecondFactor) -> Result<(), TotpChangeError> {
    let session_id = context.session_id.to_owned();
    let with = factor.kind();
    with_checked_factor(context, factor, move |tx, secret_id, actor, now| {
        rows::disable(tx)?;
        let event = AuditEvent::TotpDisabled {
            secret_id: secret_id.to_owned(),
            session_id: Some(session_id),
            with,
        };
        audit::append(tx, now, &event, actor)?;
        Ok(())
    })
    .await
}

/// Turns TOTP off on the server itself (`siteid totp-disable`), for an owner who lost both the
/// authenticator app and the recovery codes: whoever runs commands on the server can read and
/// write the node's files anyway. Returns whether TOTP was on. Audited as `totp.disabled` with
/// `with` `command_line`.
pub fn disable_on_the_server(
    connection: &mut rusqlite::Connection,
    now: i64,
) -> Result<bool, StoreError> {
    let tx = connection.transaction()?;
    let Some(settings) = rows::settings(&tx)? else {
        return Ok(false);
    };
    rows::disable(&tx)?;
    let event = AuditEvent::TotpDisabled {
        secret_id: settings.secret.secret_id,
        session_id: None,
        with: "command_line",
    };
    audit::append(&tx, now, &event, &Actor::local())?;
    tx.commit()?;
    Ok(true)
}

/// Replaces the recovery codes with ten fresh ones (the old ones stop working), with a
/// current code; returns the new codes, to be shown once.
pub async fn replace_recovery_codes(
    context: CodeChange<'_>,
    code: &str,
) -> Result<Vec<String>, TotpChangeError> {
    let (hashes, codes) = fresh_recovery_codes();
    let session_id = context.session_id.to_owned();
    let factor = SecondFactor::Totp(code.to_owned());
    with_checked_factor(context, factor, move |tx, secret_id, actor, now| {
        rows::replace_recovery_codes(tx, &hashes, now)?;
        let event = AuditEvent::TotpRecoveryCodesReplaced {
            secret_id: secret_id.to_owned(),
            session_id,
        };
        audit::append(tx, now, &event, actor)?;
        Ok(())
    })
    .await?;
    Ok(codes)
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
