//! Sign-in challenges: stateless nonces (random bytes, an expiry and a MAC under a per-process
//! key) that are remembered only once used, so a flood of challenge requests costs no memory
//! and every nonce is accepted at most once.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::jose::b64;

/// How long a challenge may be answered, in seconds.
pub const CHALLENGE_LIFETIME: i64 = 120;
/// Random bytes in a nonce.
pub const NONCE_RANDOM_LEN: usize = 32;
const EXPIRY_LEN: usize = 8;
const PURPOSE_LEN: usize = 1;
const TAG_LEN: usize = 16;
const SIGNED_LEN: usize = NONCE_RANDOM_LEN + EXPIRY_LEN + PURPOSE_LEN;
const NONCE_LEN: usize = SIGNED_LEN + TAG_LEN;

/// Where a challenge was issued, and so the only place it can be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /api/v1/auth/challenge`, answered at login or reauth.
    Rest = 1,
    /// A WebSocket's first frame, answered on that socket.
    WebSocket = 2,
}

/// Why a nonce was refused. Messages complete the sentence "the nonce ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("was not issued by this node")]
    Unknown,
    #[error("has expired")]
    Expired,
    #[error("has already been used")]
    Used,
    #[error("was issued for another channel")]
    WrongPurpose,
}

/// Values used once, each remembered until it expires: a second use fails. Expired values are
/// swept out when the set reaches a size that doubles after each sweep, so sweeping costs O(1)
/// per use on average however many values are live.
#[derive(Debug)]
pub struct UsedOnce<K> {
    used: Mutex<(HashMap<K, i64>, usize)>,
}

impl<K> Default for UsedOnce<K> {
    fn default() -> Self {
        UsedOnce {
            used: Mutex::new((HashMap::new(), 0)),
        }
    }
}

impl<K: std::hash::Hash + Eq> UsedOnce<K> {
    /// Fewest values held before the first sweep.
    const FIRST_SWEEP: usize = 1024;

    /// Records `value` as used until `expires_at`; `false` when it was used already.
    pub fn use_once(&self, value: K, expires_at: i64, now: i64) -> bool {
        let mut guard = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let (used, sweep_at) = &mut *guard;
        if used.len() >= (*sweep_at).max(Self::FIRST_SWEEP) {
            used.retain(|_, until| *until > now);
            *sweep_at = used.len() * 2;
        }
        used.insert(value, expires_at).is_none()
    }
}

/// Issues and redeems challenges. One per node; the key changes at every start, which ends
/// every outstanding challenge.
pub struct Challenges {
    key: Zeroizing<[u8; 32]>,
    used: UsedOnce<[u8; NONCE_RANDOM_LEN]>,
}

impl Default for Challenges {
    fn default() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut *key);
        Challenges {
            key,
            used: UsedOnce::default(),
        }
    }
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenges(..)")
    }
}

impl Challenges {
    /// A new nonce, valid until `now + CHALLENGE_LIFETIME`.
    pub fn issue(&self, now: i64, purpose: Purpose) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce[..NONCE_RANDOM_LEN]);
        let expires_at = now + CHALLENGE_LIFETIME;
        nonce[NONCE_RANDOM_LEN..NONCE_RANDOM_LEN + EXPIRY_LEN]
            .copy_from_slice(&expires_at.to_be_bytes());
        nonce[NONCE_RANDOM_LEN + EXPIRY_LEN] = purpose as u8;
        let tag = self.tag(&nonce[..SIGNED_LEN]);
        nonce[SIGNED_LEN..].copy_from_slice(&tag);
        b64::encode(&nonce)
    }

    /// Checks that `nonce` was issued here and has not expired, without using it up.
    pub fn check(
        &self,
        nonce: &str,
        now: i64,
        purpose: Purpose,
    ) -> Result<[u8; NONCE_RANDOM_LEN], ChallengeError> {
        let bytes = b64::decode_array::<NONCE_LEN>(nonce).map_err(|_| ChallengeError::Unknown)?;
        let (signed, tag) = bytes.split_at(SIGNED_LEN);
        if !bool::from(self.tag(signed).ct_eq(tag)) {
            return Err(ChallengeError::Unknown);
        }
        if signed[NONCE_RANDOM_LEN + EXPIRY_LEN] != purpose as u8 {
            return Err(ChallengeError::WrongPurpose);
        }
        let mut expiry = [0u8; EXPIRY_LEN];
        expiry.copy_from_slice(&signed[NONCE_RANDOM_LEN..NONCE_RANDOM_LEN + EXPIRY_LEN]);
        if i64::from_be_bytes(expiry) <= now {
            return Err(ChallengeError::Expired);
        }
        let mut random = [0u8; NONCE_RANDOM_LEN];
        random.copy_from_slice(&signed[..NONCE_RANDOM_LEN]);
        Ok(random)
    }

    /// Uses up a valid nonce. A second redemption of the same nonce fails, whatever token
    /// carried it, so replay protection keys on the nonce and not on signature bytes.
    pub fn redeem(&self, nonce: &str, now: i64, purpose: Purpose) -> Result<(), ChallengeError> {
        let random = self.check(nonce, now, purpose)?;
        let expires_at = now + CHALLENGE_LIFETIME;
        if !self.used.use_once(random, expires_at, now) {
            return Err(ChallengeError::Used);
        }
        Ok(())
    }

    fn tag(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"siteid challenge v1");
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_once_set_refuses_a_second_use_and_sweeps_out_expired_values() {
        let used = UsedOnce::default();
        assert!(used.use_once(0u32, 100, 0));
        assert!(!used.use_once(0u32, 100, 1));
        for value in 1..3000u32 {
            assert!(used.use_once(value, 10, 5));
        }
        // Past their expiry they are swept out once the set has doubled; live values stay used.
        for value in 10_000..11_100u32 {
            assert!(used.use_once(value, 200, 50));
        }
        let held = used.used.lock().expect("lock").0.len();
        assert!(held <= 1_101, "{held} values held after the sweep");
        assert!(!used.use_once(0u32, 100, 51));
    }

    #[test]
    fn a_nonce_is_redeemed_once() {
        let challenges = Challenges::default();
        let nonce = challenges.issue(1000, Purpose::Rest);
        assert_eq!(challenges.redeem(&nonce, 1001, Purpose::Rest), Ok(()));
        assert_eq!(
            challenges.redeem(&nonce, 1002, Purpose::Rest),
            Err(ChallengeError::Used)
        );
    }

    #[test]
    fn a_nonce_answers_only_its_own_channel() {
        let challenges = Challenges::default();
        let nonce = challenges.issue(1000, Purpose::WebSocket);
        assert_eq!(
            challenges.redeem(&nonce, 1001, Purpose::Rest),
            Err(ChallengeError::WrongPurpose)
        );
        assert_eq!(challenges.redeem(&nonce, 1001, Purpose::WebSocket), Ok(()));
    }

    #[test]
    fn an_expired_nonce_is_refused() {
        let challenges = Challenges::default();
        let nonce = challenges.issue(1000, Purpose::Rest);
        assert_eq!(
            challenges.redeem(&nonce, 1000 + CHALLENGE_LIFETIME, Purpose::Rest),
            Err(ChallengeError::Expired)
        );
    }

    #[test]
    fn a_nonce_from_another_node_or_altered_is_unknown() {
        let ours = Challenges::default();
        let theirs = Challenges::default();
        let nonce = theirs.issue(1000, Purpose::Rest);
        assert_eq!(
            ours.redeem(&nonce, 1001, Purpose::Rest),
            Err(ChallengeError::Unknown)
        );
        let mut bytes = b64::decode(&ours.issue(1000, Purpose::Rest)).expect("b64");
        bytes[NONCE_RANDOM_LEN + 7] ^= 1;
        assert_eq!(
            ours.redeem(&b64::encode(&bytes), 1001, Purpose::Rest),
            Err(ChallengeError::Unknown)
        );
        assert_eq!(
            ours.redeem("short", 1001, Purpose::Rest),
            Err(ChallengeError::Unknown)
        );
    }
}
