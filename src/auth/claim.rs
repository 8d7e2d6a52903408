//! Claiming an unclaimed node: the one-time claim token, checking a claim's key, wrapped key,
//! verifier and proof, and storing the owner in one transaction.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::InternalError;
use super::attempts::AttemptLedger;
use super::encryption_keys::{self, NewEncryptionKey};
use super::key_history::{self, Reason, SignedRecord};
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::jose::jwe::WrappedKey;
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use crate::jose::jws::{CompactJws, NonceClaims, PROOF_LIFETIME, VerifyingKey};
use crate::store::encryption_keys::EncryptionKeyRow;
use crate::store::{Store, StoreError, owner};

/// The `typ` of a claim proof.
pub const PROOF_TYPE: &str = "siteid-claim+jwt";
/// Random bytes in a claim token (256 bits; the issue asks for at least 128).
pub const CLAIM_TOKEN_BYTES: usize = 32;
/// Length of the unlock verifier in bytes.
pub const VERIFIER_LEN: usize = 32;

/// Why a claim was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("this node already has an owner")]
    AlreadyClaimed,
    #[error("the claim token is wrong or has been used")]
    WrongToken,
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for ClaimError {
    fn from(error: StoreError) -> Self {
        ClaimError::Internal(InternalError(error))
    }
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> ClaimError {
    ClaimError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// A claim as received, before any checks.
pub struct ClaimInput<'a> {
    pub claim_token: &'a str,
    pub public_key_json: &'a str,
    pub wrapped_key: &'a str,
    pub unlock_verifier: &'a str,
    pub proof: &'a str,
    /// The share set the key was rebuilt from, when the claim restores an identity.
    pub recovery_set: Option<&'a str>,
    /// The genesis key statement, sent together with `record` (absent from older clients).
    pub statement: Option<&'a str>,
    /// The owner key's signature over the record.
    pub record: Option<&'a str>,
    /// The first encryption key, made with the owner key (absent from older clients).
    pub encryption_key: Option<NewEncryptionKey<'a>>,
}

/// The owner key's own signatures that a claim brings: the history's first statement and the
/// record's signature. A node claimed without them is unsigned.
#[derive(Debug, Clone)]
pub struct OwnerSignatures {
    pub statement: String,
    pub record: String,
}

/// A claim whose every field passed its checks.
#[derive(Debug)]
pub struct CheckedClaim {
    pub public_key: OwnerPublicKey,
    pub wrapped_key: WrappedKey,
    pub verifier_hash: [u8; 32],
    /// The set id (8 hex digits) of the shares the key was rebuilt from, if it was.
    pub recovery_set: Option<String>,
    pub signatures: Option<OwnerSignatures>,
    /// The first encryption key, checked against the new owner key.
    pub encryption_key: Option<EncryptionKeyRow>,
}

impl OwnerSignatures {
    /// The genesis statement and record signature for a claim made with `key` on this machine
    /// (the command line).
    pub fn for_claim(
        key: &OwnerPrivateKey,
        wrapped_key: &str,
        verifier_hash: &[u8; 32],
        audience: &str,
        now: i64,
    ) -> Self {
        let kid = key.public_key().thumbprint();
        OwnerSignatures {
            statement: key_history::sign_statement(key, &kid, None, 0, Reason::Genesis, now),
            record: key_history::sign_record(key, audience, wrapped_key, verifier_hash, now),
        }
    }
}

/// Makes a fresh claim token: 32 random bytes, base64url.
pub fn new_claim_token() -> String {
    let mut bytes = [0u8; CLAIM_TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64::encode(&bytes)
}

/// The claim token of an unclaimed node, made and stored on first use, and whether it was
/// just made. `None` once the node has an owner.
pub fn current_claim_token(
    connection: &rusqlite::Connection,
    now: i64,
) -> Result<Option<(String, bool)>, StoreError> {
    if owner::exists(connection)? {
        return Ok(None);
    }
    if let Some(token) = owner::claim_token(connection)? {
        return Ok(Some((token, false)));
    }
    let token = owner::ensure_claim_token(connection, &new_claim_token(), now)?;
    Ok(Some((token, true)))
}

/// Compares two secrets in constant time (hashing first hides their lengths too).
pub fn secrets_match(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// A share set id as 8 lowercase hex digits.
pub fn checked_set_id(text: &str) -> Result<String, &'static str> {
    crate::recovery::share::parse_set_id(text)
        .map(|id| crate::recovery::share::hex(&id))
        .ok_or("must be 8 hexadecimal digits")
}

/// Decodes an unlock verifier and returns its SHA-256, which is all the node keeps.
pub fn verifier_hash(verifier: &str) -> Result<[u8; 32], String> {
    let bytes = b64::decode_array::<VERIFIER_LEN>(verifier).map_err(|e| e.to_string())?;
    Ok(Sha256::digest(bytes).into())
}

/// Checks every field of a claim. `audience` is the node's public URL.
pub fn check(input: &ClaimInput<'_>, audience: &str, now: i64) -> Result<CheckedClaim, ClaimError> {
    let public_key =
        OwnerPublicKey::from_json(input.public_key_json).map_err(|e| invalid("public_key", e))?;
    let wrapped_key =
        WrappedKey::parse(input.wrapped_key).map_err(|e| invalid("wrapped_key", e))?;
    if let Some(kid) = wrapped_key.kid()
        && kid != public_key.thumbprint()
    {
        return Err(invalid(
            "wrapped_key",
            "has a kid that is not the thumbprint of public_key",
        ));
    }
    let verifier_hash =
        verifier_hash(input.unlock_verifier).map_err(|e| invalid("unlock_verifier", e))?;
    let recovery_set = input
        .recovery_set
        .map(checked_set_id)
        .transpose()
        .map_err(|e| invalid("recovery_set", e))?;
    check_proof(input.proof, &public_key, input.claim_token, audience, now)
        .map_err(|e| invalid("proof", e))?;
    let signatures = match (input.statement, input.record) {
        (None, None) => None,
        (Some(_), None) => return Err(invalid("record", "is required with statement")),
        (None, Some(_)) => return Err(invalid("statement", "is required with record")),
        (Some(statement), Some(record)) => {
            check_genesis(statement, &public_key, now).map_err(|e| invalid("statement", e))?;
            let signed = SignedRecord {
                key: &public_key,
                wrapped_key: wrapped_key.compact(),
                verifier_hash: &verifier_hash,
            };
            check_record(record, signed, audience, now).map_err(|e| invalid("record", e))?;
            Some(OwnerSignatures {
                statement: statement.to_owned(),
                record: record.to_owned(),
            })
        }
    };
    let encryption_key = input
        .encryption_key
        .map(|new| {
            let owner_key = VerifyingKey::new(public_key.clone());
            encryption_keys::check_new(
                new.public_key_json,
                new.wrapped_key,
                new.binding,
                &owner_key,
                now,
            )
            .map_err(|e| {
                invalid(
                    "encryption_key",
                    format!("has a {} that {}", e.field, e.message),
                )
            })
        })
        .transpose()?;
    Ok(CheckedClaim {
        public_key,
        wrapped_key,
        verifier_hash,
        recovery_set,
        signatures,
        encryption_key,
    })
}

/// Checks a genesis statement for the first key. The message completes "statement ...".
pub fn check_genesis(statement: &str, key: &OwnerPublicKey, now: i64) -> Result<(), String> {
    let checked = key_history::verify_statement(statement, key, None, 0)?;
    key_history::check_recent(checked.iat, now)
}

/// Checks a submitted record signature. The message completes "record ...".
pub fn check_record(
    record: &str,
    signed: SignedRecord<'_>,
    audience: &str,
    now: i64,
) -> Result<(), String> {
    let iat = key_history::verify_record(record, signed, Some(audience))?;
    key_history::check_recent(iat, now)
}

fn check_proof(
    proof: &str,
    key: &OwnerPublicKey,
    claim_token: &str,
    audience: &str,
    now: i64,
) -> Result<(), String> {
    let nonce = check_new_key_proof(proof, PROOF_TYPE, key, audience, now)?;
    if !secrets_match(&nonce, claim_token) {
        return Err("has a nonce that is not the claim token".into());
    }
    Ok(())
}

/// Checks a proof made by a key the request introduces (a claim's or a rotation's): `typ`, no
/// kid header (the key is in the request), the signature, the audience and the lifetime.
/// Returns its nonce for the caller to check. The message completes "proof ...".
pub fn check_new_key_proof(
    proof: &str,
    typ: &str,
    key: &OwnerPublicKey,
    audience: &str,
    now: i64,
) -> Result<String, String> {
    let jws = CompactJws::parse(proof, typ).map_err(|e| e.to_string())?;
    if jws.header.kid.is_some() {
        return Err("must not have a kid header (the key is public_key)".into());
    }
    let claims: NonceClaims = jws.verify(key).map_err(|e| e.to_string())?;
    if claims.aud != audience {
        return Err(format!(
            "has aud {:?}, but this node is {audience:?}",
            claims.aud
        ));
    }
    PROOF_LIFETIME
        .check(claims.iat, claims.exp, now)
        .map_err(|e| e.to_string())?;
    Ok(claims.nonce)
}

/// How a claim arrived, for the audit log.
#[derive(Debug, Clone, Copy)]
pub enum ClaimVia {
    Http,
    CommandLine,
}

impl ClaimVia {
    fn as_str(self) -> &'static str {
        match self {
            ClaimVia::Http => "http",
            ClaimVia::CommandLine => "cli",
        }
    }
}

/// Refuses a claim early: 403 once claimed, 401 for a wrong token. Rejections are audited
/// at most once a minute per client and within the type's audit budget.
pub async fn check_state(
    store: &Store,
    claim_token: &str,
    actor: &Actor,
    attempts: &AttemptLedger,
    now: i64,
) -> Result<(), ClaimError> {
    let token = claim_token.to_owned();
    let outcome = store
        .run(move |c| -> Result<Result<(), ClaimError>, StoreError> {
            if owner::exists(c)? {
                return Ok(Err(ClaimError::AlreadyClaimed));
            }
            match owner::claim_token(c)? {
                Some(stored) if secrets_match(&stored, &token) => Ok(Ok(())),
                _ => Ok(Err(ClaimError::WrongToken)),
            }
        })
        .await?;
    if let Err(refusal) = &outcome {
        let reason = match refusal {
            ClaimError::AlreadyClaimed => "already_claimed",
            _ => "wrong_token",
        };
        let key = format!("claim:{}", actor.ip.as_deref().unwrap_or("local"));
        attempts.record_limited(&key, AuditEvent::ClaimRejected { reason }, actor, now);
    }
    outcome
}

/// Stores the owner of a checked claim, using up the claim token, in one transaction that
/// checks the node's state again. Returns the kid.
pub fn commit(
    connection: &mut rusqlite::Connection,
    claim_token: Option<&str>,
    claim: &CheckedClaim,
    via: ClaimVia,
    enrollment: crate::config::EnrollmentMode,
    actor: &Actor,
    now: i64,
) -> Result<String, ClaimError> {
    let tx = connection.transaction().map_err(StoreError::from)?;
    if owner::exists(&tx)? {
        return Err(ClaimError::AlreadyClaimed);
    }
    if let Some(token) = claim_token {
        match owner::claim_token(&tx)? {
            Some(stored) if secrets_match(&stored, token) => {}
            _ => return Err(ClaimError::WrongToken),
        }
    }
    let kid = claim.public_key.thumbprint();
    owner::insert(
        &tx,
        &owner::OwnerRecord {
            kid: kid.clone(),
            public_jwk: claim.public_key.to_json(),
            wrapped_key: claim.wrapped_key.compact().to_owned(),
            verifier_hash: claim.verifier_hash,
            created_at: now,
            updated_at: now,
            record_signature: claim.signatures.as_ref().map(|s| s.record.clone()),
        },
    )?;
    if let Some(signatures) = &claim.signatures {
        owner::append_genesis(
            &tx,
            &kid,
            &claim.public_key.to_json(),
            &signatures.statement,
            now,
        )?;
    }
    if let Some(row) = &claim.encryption_key {
        crate::store::encryption_keys::make_current(&tx, row, now)?;
    }
    owner::delete_claim_token(&tx)?;
    audit::append(
        &tx,
        now,
        &AuditEvent::OwnerClaimed {
            kid: kid.clone(),
            via: via.as_str(),
            recovery_set: claim.recovery_set.clone(),
        },
        actor,
    )?;
    // In `window` mode the claiming browser still has to enroll its own device key.
    super::enrollment::open_claim_window(&tx, enrollment, actor, now)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jwe;
    use crate::jose::jws::sign_es384;
    use serde_json::json;

    const AUD: &str = "https://id.example";
    const TOKEN: &str = "claim-token";
    const NOW: i64 = 1_800_000_000;

    struct Parts {
        public_key: String,
        wrapped_key: String,
        verifier: String,
        proof: String,
    }

    fn parts(key: &OwnerPrivateKey) -> Parts {
        let (wrapped, verifier) =
            jwe::wrap_private_key(key, b"a long passphrase", jwe::MIN_P2C).expect("wrap");
        Parts {
            public_key: key.public_key().to_json(),
            wrapped_key: wrapped.compact().to_owned(),
            verifier: b64::encode(&verifier),
            proof: sign_es384(
                key,
                &json!({"alg": "ES384", "typ": PROOF_TYPE}),
                &json!({"aud": AUD, "nonce": TOKEN, "iat": NOW, "exp": NOW + 300}),
            ),
        }
    }

    fn run(p: &Parts) -> Result<CheckedClaim, ClaimError> {
        check(
            &ClaimInput {
                claim_token: TOKEN,
                public_key_json: &p.public_key,
                wrapped_key: &p.wrapped_key,
                unlock_verifier: &p.verifier,
                proof: &p.proof,
                recovery_set: None,
                statement: None,
                record: None,
                encryption_key: None,
            },
            AUD,
            NOW,
        )
    }

    fn field_of(result: Result<CheckedClaim, ClaimError>) -> &'static str {
        match result {
            Err(ClaimError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_well_formed_claim_passes() {
        let key = OwnerPrivateKey::generate();
        let checked = run(&parts(&key)).expect("valid");
        assert_eq!(checked.public_key, key.public_key());
    }

    #[test]
    fn a_proof_signed_by_another_key_names_the_proof() {
        let key = OwnerPrivateKey::generate();
        let mut p = parts(&key);
        p.proof = parts(&OwnerPrivateKey::generate()).proof;
        assert_eq!(field_of(run(&p)), "proof");
    }

    #[test]
    fn a_proof_for_another_audience_or_nonce_is_refused() {
        let key = OwnerPrivateKey::generate();
        for claims in [
            json!({"aud": "https://other.example", "nonce": TOKEN, "iat": NOW, "exp": NOW + 300}),
            json!({"aud": AUD, "nonce": "other", "iat": NOW, "exp": NOW + 300}),
            json!({"aud": AUD, "nonce": TOKEN, "iat": NOW, "exp": NOW + 301}),
            json!({"aud": AUD, "nonce": TOKEN, "iat": NOW - 400, "exp": NOW - 100}),
            json!({"aud": AUD, "nonce": TOKEN, "iat": NOW, "exp": NOW + 300, "extra": 1}),
        ] {
            let mut p = parts(&key);
            p.proof = sign_es384(&key, &json!({"alg": "ES384", "typ": PROOF_TYPE}), &claims);
            assert_eq!(field_of(run(&p)), "proof", "{claims}");
        }
    }

    #[test]
    fn a_short_verifier_is_refused() {
        let key = OwnerPrivateKey::generate();
        let mut p = parts(&key);
        p.verifier = b64::encode(&[0u8; 31]);
        assert_eq!(field_of(run(&p)), "unlock_verifier");
    }

    #[test]
    fn secrets_are_compared_whole() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
    }
}
