//! One-time unlock codes: making one (from a signed-in device or on the server), reading a
//! typed code leniently, and using one up. A valid code lets one password unlock past the
//! network and node-wide throttle windows, so that a flood of wrong passwords from elsewhere
//! cannot keep the owner out.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::recovery::share::{ALPHABET, crockford_value};
use crate::store::{StoreError, unlock_codes};

/// How long a code can be used, in seconds.
pub const CODE_LIFETIME: i64 = 10 * 60;
/// Codes alive at once; making another retires the oldest.
pub const MAX_LIVE_CODES: usize = 5;
/// Crockford base32 characters in a code (80 random bits).
pub const CODE_CHARS: usize = 16;

/// A code in canonical form: 16 upper-case Crockford base32 characters.
pub struct UnlockCode(Zeroizing<String>);

impl std::fmt::Debug for UnlockCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockCode(..)")
    }
}

impl UnlockCode {
    /// A fresh random code.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let text: String = (0..CODE_CHARS)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        UnlockCode(Zeroizing::new(text))
    }

    /// Reads a typed code: any case, with spaces or hyphens anywhere, O read as 0 and I and L
    /// as 1. The message completes "unlock_code ...".
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.len() > 4 * CODE_CHARS {
            return Err("is too long; a code has 16 characters");
        }
        let mut canonical = Zeroizing::new(String::with_capacity(CODE_CHARS));
        for character in text.chars() {
            if character == '-' || character == ' ' {
                continue;
            }
            let value = crockford_value(character)
                .ok_or("may hold only the letters and digits of a code")?;
            canonical.push(ALPHABET[usize::from(value)] as char);
        }
        if canonical.len() != CODE_CHARS {
            return Err("must have 16 letters and digits");
        }
        Ok(UnlockCode(canonical))
    }

    /// The code as shown to people: four groups of four, e.g. `7KQ2-M9XD-3FHT-PW4C`.
    pub fn display(&self) -> String {
        let bytes = self.0.as_bytes();
        bytes
            .chunks(4)
            .map(|group| String::from_utf8_lossy(group).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The SHA-256 the node keeps instead of the code.
    pub(crate) fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// A code just made.
#[derive(Debug)]
pub struct MintedCode {
    pub code: UnlockCode,
    pub code_id: String,
    pub expires_at: i64,
}

/// Makes a code and stores its hash, retiring expired codes and, past
/// [`MAX_LIVE_CODES`], the oldest. Audited as `unlock_code.created`.
pub fn mint(
    connection: &mut rusqlite::Connection,
    session_id: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<MintedCode, StoreError> {
    let code = UnlockCode::generate();
    let mut id_bytes = [0u8; 9];
    rand::rngs::OsRng.fill(&mut id_bytes);
    let code_id = b64::encode(&id_bytes);
    let expires_at = now + CODE_LIFETIME;
    let tx = connection.transaction()?;
    unlock_codes::delete_expired(&tx, now)?;
    let live = unlock_codes::live(&tx, now)?;
    for old in live
        .iter()
        .take((live.len() + 1).saturating_sub(MAX_LIVE_CODES))
    {
        unlock_codes::delete(&tx, &old.id)?;
    }
    unlock_codes::insert(&tx, &code_id, &code.hash(), now, expires_at, session_id)?;
    let event = AuditEvent::UnlockCodeCreated {
        code_id: code_id.clone(),
        expires_at,
        session_id: session_id.map(str::to_owned),
    };
    audit::append(&tx, now, &event, actor)?;
    tx.commit()?;
    Ok(MintedCode {
        code,
        code_id,
        expires_at,
    })
}

/// Uses up `code` if it is live: compared with every live code in constant time and deleted
/// when it matches. Returns the code's id. Call inside the unlock's transaction, which audits
/// the use once it knows whether the password was right.
pub fn redeem(
    transaction: &rusqlite::Connection,
    code: &UnlockCode,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let presented = code.hash();
    let mut matched = None;
    for stored in unlock_codes::live(transaction, now)? {
        if bool::from(stored.code_hash.ct_eq(&presented)) {
            matched = Some(stored.id);
        }
    }
    if let Some(code_id) = &matched {
        unlock_codes::delete(transaction, code_id)?;
    }
    Ok(matched)
}

/// The hashes of the live codes, in memory, so that deciding which throttle windows apply to
/// an unlock costs no database read. Refreshed every second (codes made on the command line
/// appear within a second) and at once when the node makes one.
#[derive(Debug, Default)]
pub struct LiveCodes {
    codes: std::sync::Mutex<KnownCodes>,
}

/// The live codes as last read, and those the node made since that read began.
#[derive(Debug, Default)]
struct KnownCodes {
    read: Vec<([u8; 32], i64)>,
    /// Codes made here, with the refresh count at which they were added: a refresh whose read
    /// began before a code was stored must not forget it.
    made_here: Vec<([u8; 32], i64, u64)>,
    refreshes: u64,
}

impl LiveCodes {
    fn lock(&self) -> std::sync::MutexGuard<'_, KnownCodes> {
        self.codes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the live codes again.
    pub async fn refresh(&self, store: &crate::store::Store, now: i64) -> Result<(), StoreError> {
        let started = self.lock().refreshes;
        let live = store.run(move |c| unlock_codes::live(c, now)).await?;
        let mut known = self.lock();
        known.read = live
            .into_iter()
            .map(|code| (code.code_hash, code.expires_at))
            .collect();
        // Codes made before this read began are in it; later ones are kept until the next.
        known.made_here.retain(|(_, _, at)| *at >= started);
        known.refreshes += 1;
        Ok(())
    }

    /// Adds a code the node just made.
    pub fn add(&self, minted: &MintedCode) {
        let mut known = self.lock();
        let at = known.refreshes;
        known
            .made_here
            .push((minted.code.hash(), minted.expires_at, at));
    }

    /// Whether `code` is live at `now`, compared with every known code in constant time. The
    /// transaction that uses the code up has the last word.
    pub fn contains(&self, code: &UnlockCode, now: i64) -> bool {
        let presented = code.hash();
        let known = self.lock();
        let mut found = false;
        let made_here = known
            .made_here
            .iter()
            .map(|(hash, expires_at, _)| (hash, expires_at));
        for (hash, expires_at) in known.read.iter().map(|(h, e)| (h, e)).chain(made_here) {
            found |= bool::from(hash.ct_eq(&presented)) && *expires_at > now;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_code_reads_back_in_any_case_with_separators_and_look_alikes() {
        let code = UnlockCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 19);
        let typed = shown
            .to_lowercase()
            .replace('0', "o")
            .replace('1', "l")
            .replace('-', " ");
        let read = UnlockCode::parse(&typed).expect("reads");
        assert_eq!(read.hash(), code.hash());
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "ABCD-EFGH-JKMN",
            "ABCD-EFGH-JKMN-PQRSU",
            "ABCD-EFGH-JKMN-PQR!",
            "ÄBCD-EFGH-JKMN-PQRS",
        ] {
            assert!(UnlockCode::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UnlockCode::parse(&"-".repeat(100)).is_err());
    }

    #[test]
    fn a_code_works_once_and_only_until_it_expires() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let actor = Actor::local();
        let minted = store
            .run_blocking(|c| mint(c, None, &actor, 1_000))
            .expect("mint");
        let again = UnlockCode::parse(&minted.code.display()).expect("parse");
        let redeem_at = |at: i64| {
            store
                .run_blocking(|c| redeem(c, &again, at))
                .expect("redeem")
                .is_some()
        };
        assert!(!redeem_at(1_000 + CODE_LIFETIME), "expired");
        assert!(redeem_at(1_000 + CODE_LIFETIME - 1));
        assert!(!redeem_at(1_001), "used up");
    }

    #[test]
    fn making_a_sixth_code_retires_the_oldest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let actor = Actor::local();
        let codes: Vec<MintedCode> = (0..6)
            .map(|i| {
                store
                    .run_blocking(|c| mint(c, None, &actor, 1_000 + i))
                    .expect("mint")
            })
            .collect();
        let live = store
            .run_blocking(|c| unlock_codes::live(c, 1_010))
            .expect("live");
        assert_eq!(live.len(), MAX_LIVE_CODES);
        assert!(live.iter().all(|c| c.id != codes[0].code_id));
    }
}
