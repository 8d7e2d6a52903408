//! The owner key's history and the owner record's signature: key statements (genesis,
//! rotation, compromise, reset), checking a chain of them from any trusted key to the current
//! one, and the owner key's signature over the record the node serves. The node holds no key
//! that could make any of these; it only checks them.

use serde::{Deserialize, Deserializer};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::jose::b64;
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use crate::jose::jws::{self, CompactJws, NumericDate};
use crate::store::owner::{HistoryRow, OwnerRecord};

/// The `typ` of a key statement.
pub const STATEMENT_TYPE: &str = "siteid-key-statement+jwt";
/// The `typ` of the owner record's signature.
pub const RECORD_TYPE: &str = "siteid-owner-record+jwt";
/// A statement, record signature or credential binding is accepted only this many seconds
/// after its `iat`, so one seen once (in a log, a backup, a request) cannot be sent again later.
pub const MAX_AGE: i64 = 300;
/// How far ahead of the node's clock such an `iat` may be.
pub const MAX_FUTURE: i64 = 60;
/// The most keys a history may hold (a rotation beyond it is refused); the published history
/// then stays well under the 256 KiB `siteid verify` reads.
pub const MAX_KEYS: usize = 200;

/// Why a key replaced the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The first key, signed by itself at claim time.
    Genesis,
    /// A routine replacement, signed by the old key.
    Rotation,
    /// The old key may be known to someone else; still signed by the old key.
    Compromise,
    /// The old key is gone: signed by the new key alone, a visible break in the chain.
    Reset,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Genesis => "genesis",
            Reason::Rotation => "rotation",
            Reason::Compromise => "compromise",
            Reason::Reset => "reset",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Reason::Genesis,
            Reason::Rotation,
            Reason::Compromise,
            Reason::Reset,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }

    /// Whether the statement is signed by the key it replaces.
    pub fn signed_by_old_key(self) -> bool {
        matches!(self, Reason::Rotation | Reason::Compromise)
    }
}

/// A member that must be present but may be `null`.
fn nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(deserializer)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementClaims {
    new: String,
    #[serde(deserialize_with = "nullable")]
    old: Option<String>,
    seq: u32,
    iat: NumericDate,
    reason: String,
}

/// A statement whose signature and fields were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub new: String,
    pub old: Option<String>,
    pub seq: u32,
    pub iat: f64,
    pub reason: Reason,
}

/// Checks a key statement that introduces `new_key` after `old_key` (`None` for the first
/// key) at position `seq`: its form, its signer (the old key, or the new key for a genesis or
/// a reset) and its claims. The message completes "the statement ...".
pub fn verify_statement(
    token: &str,
    new_key: &OwnerPublicKey,
    old_key: Option<&OwnerPublicKey>,
    seq: u32,
) -> Result<Statement, String> {
    let jws = CompactJws::parse(token, STATEMENT_TYPE).map_err(|e| e.to_string())?;
    let new_kid = new_key.thumbprint();
    let old_kid = old_key.map(OwnerPublicKey::thumbprint);
    let Some(signer) = jws.header.kid.as_deref() else {
        return Err("has no kid header naming the key that signed it".into());
    };
    let signed_by_old = old_kid.as_deref() == Some(signer);
    let signer_key = if signer == new_kid {
        new_key
    } else if let (true, Some(old_key)) = (signed_by_old, old_key) {
        old_key
    } else {
        return Err("is signed by neither the new key nor the key it replaces (kid)".into());
    };
    let claims: StatementClaims = jws.verify(signer_key).map_err(|e| e.to_string())?;
    let reason = Reason::parse(&claims.reason).ok_or_else(|| {
        format!(
            "has reason {:?}; expected genesis, rotation, compromise or reset",
            claims.reason
        )
    })?;
    if claims.new != new_kid {
        return Err("names another new key (new) than the one it introduces".into());
    }
    if claims.old != old_kid {
        return Err(match old_kid {
            None => "must have old null: it introduces the first key".into(),
            Some(_) => "names another old key (old) than the current one".into(),
        });
    }
    if claims.seq != seq {
        return Err(format!("has seq {}, expected {seq}", claims.seq));
    }
    let expected_reason = match (old_key.is_some(), signed_by_old) {
        (false, _) => reason == Reason::Genesis,
        (true, true) => reason.signed_by_old_key(),
        (true, false) => reason == Reason::Reset,
    };
    if !expected_reason {
        return Err(format!(
            "has reason {:?}, which does not fit its signer: genesis is signed by the first key, \
             rotation and compromise by the old key, reset by the new key",
            reason.as_str()
        ));
    }
    Ok(Statement {
        new: claims.new,
        old: claims.old,
        seq: claims.seq,
        iat: claims.iat.0,
        reason,
    })
}

/// Checks that `iat` (seconds) is recent at `now`. The message completes "... was made ...".
pub fn check_recent(iat: f64, now: i64) -> Result<(), String> {
    if iat < (now - MAX_AGE) as f64 {
        return Err(format!(
            "was made more than {MAX_AGE} seconds ago (iat); make a fresh one"
        ));
    }
    if iat > (now + MAX_FUTURE) as f64 {
        return Err("was made in the future (iat)".into());
    }
    Ok(())
}

/// One key of a history as stored or published.
#[derive(Debug, Clone, Copy)]
pub struct HistoryEntry<'a> {
    pub kid: &'a str,
    /// The key's public JWK as JSON.
    pub jwk: &'a str,
    pub statement: &'a str,
}

/// Where a history breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {index} of the history: {message}")]
pub struct HistoryError {
    pub index: usize,
    pub message: String,
}

/// A history whose every statement checked out.
#[derive(Debug, Clone)]
pub struct VerifiedHistory {
    keys: Vec<(String, OwnerPublicKey, Reason)>,
}

impl VerifiedHistory {
    /// The current key's kid.
    pub fn current_kid(&self) -> Option<&str> {
        self.keys.last().map(|(kid, _, _)| kid.as_str())
    }

    /// The current key.
    pub fn current_key(&self) -> Option<&OwnerPublicKey> {
        self.keys.last().map(|(_, key, _)| key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that a device trusting `kid` may follow the history to the current key: `kid`
    /// is in it and every later key was signed in by the key before it (no reset after it).
    pub fn leads_from(&self, kid: &str) -> Result<(), String> {
        let position = self
            .keys
            .iter()
            .position(|(k, _, _)| k == kid)
            .ok_or_else(|| format!("the trusted key {kid} is not in the history"))?;
        if let Some((reset_kid, _, _)) = self.keys[position + 1..]
            .iter()
            .find(|(_, _, reason)| *reason == Reason::Reset)
        {
            return Err(format!(
                "the key was reset to {reset_kid} after the trusted key without the old key's \
                 signature"
            ));
        }
        Ok(())
    }
}

/// Checks a whole history, oldest first: each kid is its JWK's thumbprint, the first statement
/// is a genesis signed by the first key, and each later one introduces its key after the one
/// before it at its position.
pub fn verify_history(entries: &[HistoryEntry<'_>]) -> Result<VerifiedHistory, HistoryError> {
    if entries.len() > MAX_KEYS {
        return Err(HistoryError {
            index: MAX_KEYS,
            message: format!("a history holds at most {MAX_KEYS} keys"),
        });
    }
    let mut keys: Vec<(String, OwnerPublicKey, Reason)> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let fail = |message: String| HistoryError { index, message };
        let key = OwnerPublicKey::from_json(entry.jwk)
            .map_err(|e| fail(format!("the public key {e}")))?;
        if key.thumbprint() != entry.kid {
            return Err(fail("the kid is not the thumbprint of the key".into()));
        }
        if keys.iter().any(|(kid, _, _)| kid == entry.kid) {
            return Err(fail("the key appears twice".into()));
        }
        let previous = keys.last().map(|(_, key, _)| key);
        let seq = u32::try_from(index).map_err(|_| fail("too many keys".into()))?;
        let statement = verify_statement(entry.statement, &key, previous, seq)
            .map_err(|e| fail(format!("the statement {e}")))?;
        keys.push((entry.kid.to_owned(), key, statement.reason));
    }
    Ok(VerifiedHistory { keys })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordClaims {
    aud: String,
    sub: String,
    wrapped_key_sha256: String,
    verifier_hash: String,
    iat: NumericDate,
}

/// The parts of the owner record its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRecord<'a> {
    pub key: &'a OwnerPublicKey,
    pub wrapped_key: &'a str,
    pub verifier_hash: &'a [u8; 32],
}

/// The base64url SHA-256 of a wrapped key's compact form, as a record signature names it.
pub fn wrapped_key_digest(wrapped_key: &str) -> String {
    b64::encode(&Sha256::digest(wrapped_key.as_bytes()))
}

/// Checks the owner key's signature over `record`. With `audience` (when the record is
/// submitted) its `aud` must be the node's public URL; the stored signature is checked again
/// at every load without it. Returns the signature's `iat`. The message completes
/// "the record signature ...".
pub fn verify_record(
    token: &str,
    record: SignedRecord<'_>,
    audience: Option<&str>,
) -> Result<f64, String> {
    let jws = CompactJws::parse(token, RECORD_TYPE).map_err(|e| e.to_string())?;
    let kid = record.key.thumbprint();
    if jws.header.kid.as_deref() != Some(kid.as_str()) {
        return Err("does not name the owner key (kid)".into());
    }
    let claims: RecordClaims = jws.verify(record.key).map_err(|e| e.to_string())?;
    if claims.sub != kid {
        return Err("is for another key (sub)".into());
    }
    if let Some(audience) = audience
        && claims.aud != audience
    {
        return Err(format!(
            "has aud {:?}, but this node is {audience:?}",
            claims.aud
        ));
    }
    if claims.wrapped_key_sha256 != wrapped_key_digest(record.wrapped_key) {
        return Err("covers another wrapped key (wrapped_key_sha256)".into());
    }
    if claims.verifier_hash != b64::encode(record.verifier_hash) {
        return Err("covers another unlock verifier (verifier_hash)".into());
    }
    Ok(claims.iat.0)
}

/// Signs a key statement (the command line and tests; the browser signs its own).
pub fn sign_statement(
    signer: &OwnerPrivateKey,
    new_kid: &str,
    old_kid: Option<&str>,
    seq: u32,
    reason: Reason,
    now: i64,
) -> String {
    jws::sign_es384(
        signer,
        &json!({"alg": "ES384", "typ": STATEMENT_TYPE, "kid": signer.public_key().thumbprint()}),
        &json!({"new": new_kid, "old": old_kid, "seq": seq, "iat": now, "reason": reason.as_str()}),
    )
}

/// Signs the owner record (the command line and tests; the browser signs its own).
pub fn sign_record(
    key: &OwnerPrivateKey,
    audience: &str,
    wrapped_key: &str,
    verifier_hash: &[u8; 32],
    now: i64,
) -> String {
    let kid = key.public_key().thumbprint();
    jws::sign_es384(
        key,
        &json!({"alg": "ES384", "typ": RECORD_TYPE, "kid": kid}),
        &json!({
            "aud": audience,
            "sub": kid,
            "wrapped_key_sha256": wrapped_key_digest(wrapped_key),
            "verifier_hash": b64::encode(verifier_hash),
            "iat": now,
        }),
    )
}

/// Whether a stored owner record is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Claimed before records were signed: no history and no signature.
    Unsigned,
    /// The history verifies, ends at the record's key, and the record's signature verifies.
    Signed,
}

/// Checks the stored owner record against its history and signature, as the node does at
/// every load. The message says what does not hold.
pub fn check_owner_record(
    record: &OwnerRecord,
    history: &[HistoryRow],
) -> Result<RecordState, String> {
    let Some(signature) = record.record_signature.as_deref() else {
        return if history.is_empty() {
            Ok(RecordState::Unsigned)
        } else {
            Err("the owner record has a key history but no signature".into())
        };
    };
    if history.is_empty() {
        return Err("the owner record is signed but has no key history".into());
    }
    let entries: Vec<HistoryEntry<'_>> = history
        .iter()
        .enumerate()
        .map(|(index, row)| {
            (row.seq == index as i64)
                .then_some(HistoryEntry {
                    kid: &row.kid,
                    jwk: &row.public_jwk,
                    statement: &row.statement,
                })
                .ok_or_else(|| format!("the key history has a gap before key {}", row.seq))
        })
        .collect::<Result<_, _>>()?;
    let verified = verify_history(&entries).map_err(|e| e.to_string())?;
    let key = OwnerPublicKey::from_json(&record.public_jwk)
        .map_err(|e| format!("the owner's public key {e}"))?;
    if verified.current_kid() != Some(record.kid.as_str())
        || verified.current_key() != Some(&key)
        || key.thumbprint() != record.kid
    {
        return Err("the owner key is not the last key of its history".into());
    }
    let signed = SignedRecord {
        key: &key,
        wrapped_key: &record.wrapped_key,
        verifier_hash: &record.verifier_hash,
    };
    verify_record(signature, signed, None).map_err(|e| format!("the record signature {e}"))?;
    Ok(RecordState::Signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    struct Chain {
        keys: Vec<OwnerPrivateKey>,
        jwks: Vec<String>,
        statements: Vec<String>,
    }

    impl Chain {
        fn new() -> Self {
            let first = OwnerPrivateKey::generate();
            let kid = first.public_key().thumbprint();
            let genesis = sign_statement(&first, &kid, None, 0, Reason::Genesis, NOW);
            Chain {
                jwks: vec![first.public_key().to_json()],
                keys: vec![first],
                statements: vec![genesis],
            }
        }

        fn rotate(&mut self, reason: Reason) {
            let next = OwnerPrivateKey::generate();
            let old = self.keys.last().expect("a key");
            let signer = if reason == Reason::Reset { &next } else { old };
            let statement = sign_statement(
                signer,
                &next.public_key().thumbprint(),
                Some(&old.public_key().thumbprint()),
                self.keys.len() as u32,
                reason,
                NOW,
            );
            self.jwks.push(next.public_key().to_json());
            self.statements.push(statement);
            self.keys.push(next);
        }

        fn kids(&self) -> Vec<String> {
            self.keys
                .iter()
                .map(|k| k.public_key().thumbprint())
                .collect()
        }

        fn verify(&self) -> Result<VerifiedHistory, HistoryError> {
            let kids = self.kids();
            let entries: Vec<HistoryEntry> = (0..self.keys.len())
                .map(|i| HistoryEntry {
                    kid: &kids[i],
                    jwk: &self.jwks[i],
                    statement: &self.statements[i],
                })
                .collect();
            verify_history(&entries)
        }
    }

    #[test]
    fn a_chain_of_rotations_verifies_and_leads_from_every_key() {
        let mut chain = Chain::new();
        chain.rotate(Reason::Rotation);
        chain.rotate(Reason::Compromise);
        let history = chain.verify().expect("valid");
        assert_eq!(history.len(), 3);
        assert_eq!(history.current_kid(), Some(chain.kids()[2].as_str()));
        for kid in chain.kids() {
            history.leads_from(&kid).expect("leads to the current key");
        }
        assert!(history.leads_from("unknown").is_err());
    }

    #[test]
    fn a_reset_breaks_the_path_from_earlier_keys_only() {
        let mut chain = Chain::new();
        chain.rotate(Reason::Reset);
        chain.rotate(Reason::Rotation);
        let history = chain.verify().expect("a reset is a valid, visible break");
        let kids = chain.kids();
        assert!(history.leads_from(&kids[0]).unwrap_err().contains("reset"));
        history.leads_from(&kids[1]).expect("after the reset");
    }

    #[test]
    fn a_statement_signed_by_the_wrong_key_or_with_wrong_claims_breaks_the_chain() {
        // A rotation signed by the new key (as an attacker without the old key would).
        let mut chain = Chain::new();
        chain.rotate(Reason::Rotation);
        let next = &chain.keys[1];
        chain.statements[1] = sign_statement(
            next,
            &next.public_key().thumbprint(),
            Some(&chain.kids()[0]),
            1,
            Reason::Rotation,
            NOW,
        );
        assert_eq!(chain.verify().unwrap_err().index, 1);

        // A genesis with the wrong seq, and a swapped key under a kept statement.
        let mut chain = Chain::new();
        let first = &chain.keys[0];
        chain.statements[0] = sign_statement(
            first,
            &first.public_key().thumbprint(),
            None,
            1,
            Reason::Genesis,
            NOW,
        );
        assert!(chain.verify().unwrap_err().message.contains("seq"));
        let mut chain = Chain::new();
        chain.rotate(Reason::Rotation);
        let stranger = OwnerPrivateKey::generate();
        chain.jwks[1] = stranger.public_key().to_json();
        chain.keys[1] = stranger;
        assert_eq!(chain.verify().unwrap_err().index, 1);
    }

    #[test]
    fn a_statement_with_an_extra_or_missing_member_is_refused() {
        let key = OwnerPrivateKey::generate();
        let kid = key.public_key().thumbprint();
        let header = json!({"alg": "ES384", "typ": STATEMENT_TYPE, "kid": kid});
        for claims in [
            json!({"new": kid, "seq": 0, "iat": NOW, "reason": "genesis"}),
            json!({"new": kid, "old": null, "seq": 0, "iat": NOW, "reason": "genesis", "x": 1}),
            json!({"new": kid, "old": null, "seq": -1, "iat": NOW, "reason": "genesis"}),
            json!({"new": kid, "old": null, "seq": 0, "iat": NOW, "reason": "rotation"}),
        ] {
            let token = jws::sign_es384(&key, &header, &claims);
            assert!(
                verify_statement(&token, &key.public_key(), None, 0).is_err(),
                "{claims}"
            );
        }
    }

    #[test]
    fn a_record_signature_covers_the_wrapped_key_and_the_verifier() {
        let key = OwnerPrivateKey::generate();
        let public = key.public_key();
        let hash = [7u8; 32];
        let token = sign_record(&key, "https://id.example", "a.b.c.d.e", &hash, NOW);
        let record = SignedRecord {
            key: &public,
            wrapped_key: "a.b.c.d.e",
            verifier_hash: &hash,
        };
        verify_record(&token, record, Some("https://id.example")).expect("valid");
        verify_record(&token, record, None).expect("valid without audience");
        assert!(verify_record(&token, record, Some("https://other.example")).is_err());
        let other_wrapped = SignedRecord {
            wrapped_key: "a.b.c.d.f",
            ..record
        };
        assert!(verify_record(&token, other_wrapped, None).is_err());
        let other_hash = [8u8; 32];
        let other_verifier = SignedRecord {
            verifier_hash: &other_hash,
            ..record
        };
        assert!(verify_record(&token, other_verifier, None).is_err());
        let stranger = OwnerPrivateKey::generate().public_key();
        let other_key = SignedRecord {
            key: &stranger,
            ..record
        };
        assert!(verify_record(&token, other_key, None).is_err());
    }

    #[test]
    fn recent_means_five_minutes_back_and_one_ahead() {
        assert!(check_recent(NOW as f64, NOW).is_ok());
        assert!(check_recent((NOW - 300) as f64, NOW).is_ok());
        assert!(check_recent((NOW - 301) as f64, NOW).is_err());
        assert!(check_recent((NOW + 61) as f64, NOW).is_err());
    }
}
