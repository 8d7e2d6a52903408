//! The owner's encryption keys: checking a new one (its public key, its wrapped private key
//! and the owner key's `siteid-enc-key+jwt` binding), checking stored ones at every registry
//! load, and which kids an incoming message may name.

use serde::Deserialize;

use super::key_history::Reason;
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::jwe::{self, KwWrappedKey};
use crate::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use crate::jose::jws::{CompactJws, VerifyingKey};
use crate::store::StoreError;
use crate::store::encryption_keys::{self as store, EncryptionKeyRow};

/// The `typ` of the owner key's binding of an encryption key.
pub const BINDING_TYPE: &str = "siteid-enc-key+jwt";
/// The JWKS `alg` of an encryption key.
pub const KEY_ALG: &str = "ECDH-ES+A256KW";
/// How long a retired encryption key still receives messages (senders that fetched the JWKS
/// before a rotation), in seconds: 30 days.
pub const RETIRED_KEY_GRACE: i64 = 30 * 24 * 3600;
/// How far a new binding's `iat` may lie from the node's clock, either way, in seconds: a
/// binding is made for the request that brings it, and an old one cannot be replayed.
const BINDING_FRESHNESS: i64 = 300;

/// Checks that a new binding was made now. The message completes "the binding ...".
fn check_fresh(iat: i64, now: i64) -> Result<(), String> {
    if (iat - now).abs() > BINDING_FRESHNESS {
        return Err(format!(
            "must be made within {BINDING_FRESHNESS} seconds of the node's clock (its iat is {iat}, \
             the node's time {now})"
        ));
    }
    Ok(())
}

/// The claims of a binding: exactly these members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingClaims {
    sub: String,
    #[serde(rename = "use")]
    key_use: String,
    iat: i64,
}

/// An encryption key that passed its checks.
#[derive(Debug, Clone)]
pub struct EncryptionKey {
    pub kid: String,
    pub public: OwnerPublicKey,
    pub wrapped_key: String,
    /// The owner key's `siteid-enc-key+jwt`, published so that anyone can check it.
    pub binding: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// Until when a retired key still receives messages.
    pub receives_until: Option<i64>,
}

/// Checks that `binding` is the owner key's binding of the encryption key `kid`; the message
/// completes "the binding ...".
fn check_binding(binding: &str, kid: &str, owner_key: &VerifyingKey) -> Result<i64, String> {
    let jws = CompactJws::parse(binding, BINDING_TYPE).map_err(|e| e.to_string())?;
    if jws.header.kid.as_deref() != Some(owner_key.kid.as_str()) {
        return Err("does not name the owner key in its kid".into());
    }
    let claims: BindingClaims = jws.verify_with(owner_key).map_err(|e| e.to_string())?;
    if claims.sub != kid {
        return Err("binds another key (its sub is not the key's kid)".into());
    }
    if claims.key_use != "enc" {
        return Err("must have use \"enc\"".into());
    }
    Ok(claims.iat)
}

/// Checks the wrapped private key's form: an `A256KW`/`A256GCM` JWE of a JWK naming `kid`. The
/// message completes "the wrapped key ...".
fn check_wrapped_key(wrapped_key: &str, kid: &str) -> Result<(), String> {
    let parsed = KwWrappedKey::parse(wrapped_key).map_err(|e| e.to_string())?;
    if parsed.kid() != kid {
        return Err("names another key in its kid".into());
    }
    Ok(())
}

/// Checks a stored row against its binding and the owner key; the message says what is wrong.
pub fn check_row(
    row: &EncryptionKeyRow,
    owner_key: &VerifyingKey,
) -> Result<EncryptionKey, String> {
    let public = OwnerPublicKey::from_json(&row.public_jwk)
        .map_err(|e| format!("has a public key that {e}"))?;
    if public.thumbprint() != row.kid {
        return Err("has a public key whose thumbprint is not its kid".into());
    }
    if public == owner_key.public {
        return Err("is the owner signing key itself".into());
    }
    check_wrapped_key(&row.wrapped_key, &row.kid)
        .map_err(|e| format!("has a wrapped key that {e}"))?;
    check_binding(&row.binding, &row.kid, owner_key)
        .map_err(|e| format!("has a binding that {e}"))?;
    Ok(EncryptionKey {
        kid: row.kid.clone(),
        public,
        wrapped_key: row.wrapped_key.clone(),
        binding: row.binding.clone(),
        created_at: row.created_at,
        retired_at: row.retired_at,
        receives_until: row.receives_until,
    })
}

/// Why a new encryption key was refused: the request member at fault and what is wrong with
/// it (completing "<member> ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> NewKeyError {
    NewKeyError {
        field,
        message: message.into(),
    }
}

/// A new encryption key as a request sends it.
#[derive(Debug, Clone, Copy)]
pub struct NewEncryptionKey<'a> {
    /// The public JWK, as JSON text.
    pub public_key_json: &'a str,
    /// The private JWK wrapped under the owner key's encryption KEK.
    pub wrapped_key: &'a str,
    /// The owner key's `siteid-enc-key+jwt`.
    pub binding: &'a str,
}

/// Checks a new encryption key sent by the owner's client and returns the row to store.
pub fn check_new(
    public_key_json: &str,
    wrapped_key: &str,
    binding: &str,
    owner_key: &VerifyingKey,
    now: i64,
) -> Result<EncryptionKeyRow, NewKeyError> {
    let public = OwnerPublicKey::from_json(public_key_json)
        .map_err(|e| refuse("public_key", e.to_string()))?;
    if public == owner_key.public {
        return Err(refuse(
            "public_key",
            "is the owner signing key: the encryption key must be a separate key pair",
        ));
    }
    let kid = public.thumbprint();
    check_wrapped_key(wrapped_key, &kid).map_err(|e| refuse("wrapped_key", e))?;
    check_binding(binding, &kid, owner_key)
        .and_then(|iat| check_fresh(iat, now))
        .map_err(|e| refuse("binding", e))?;
    Ok(EncryptionKeyRow {
        kid,
        public_jwk: public.to_json(),
        wrapped_key: wrapped_key.to_owned(),
        binding: binding.to_owned(),
        created_at: now,
        retired_at: None,
        receives_until: None,
    })
}

/// The owner's checked encryption keys, the current one first.
#[derive(Debug, Clone, Default)]
pub struct EncryptionKeys {
    keys: Vec<EncryptionKey>,
}

impl EncryptionKeys {
    /// Checks every stored row; rows that fail are left out and returned with their problem.
    pub fn check(
        rows: &[EncryptionKeyRow],
        owner_key: &VerifyingKey,
    ) -> (Self, Vec<(String, String)>) {
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for row in rows {
            match check_row(row, owner_key) {
                Ok(key) => keys.push(key),
                Err(problem) => problems.push((row.kid.clone(), problem)),
            }
        }
        (EncryptionKeys { keys }, problems)
    }

    /// The key senders encrypt to: the one not retired.
    pub fn current(&self) -> Option<&EncryptionKey> {
        self.keys.iter().find(|key| key.retired_at.is_none())
    }

    /// Every key, the current one first, then retired ones newest first.
    pub fn all(&self) -> &[EncryptionKey] {
        &self.keys
    }

    /// Whether a message sent at `now` may name `kid`: the current key, or a retired key
    /// within its grace ([`RETIRED_KEY_GRACE`] after a routine change, none after a
    /// compromise or a reset).
    pub fn receives(&self, kid: &str, now: i64) -> bool {
        self.keys.iter().any(|key| {
            key.kid == kid
                && (key.retired_at.is_none() || key.receives_until.is_some_and(|until| now < until))
        })
    }

    /// The kids of every checked key.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|key| key.kid.clone()).collect()
    }
}

/// The owner key's binding of the encryption key `kid`, signed at `now`.
pub fn sign_binding(owner: &OwnerPrivateKey, kid: &str, now: i64) -> String {
    crate::jose::jws::sign_es384(
        owner,
        &serde_json::json!({
            "alg": "ES384",
            "typ": BINDING_TYPE,
            "kid": owner.public_key().thumbprint(),
        }),
        &serde_json::json!({ "sub": kid, "use": "enc", "iat": now }),
    )
}

/// A fresh encryption key made with the owner key on this machine (the command line, tests):
/// the row to store, and the private key.
pub fn generate(
    owner: &OwnerPrivateKey,
    now: i64,
) -> Result<(EncryptionKeyRow, OwnerPrivateKey), crate::jose::jwe::JweError> {
    let key = OwnerPrivateKey::generate();
    let kid = key.public_key().thumbprint();
    let wrapped = jwe::seal_private_key(&key, &jwe::encryption_kek(owner))?;
    let row = EncryptionKeyRow {
        binding: sign_binding(owner, &kid, now),
        kid,
        public_jwk: key.public_key().to_json(),
        wrapped_key: wrapped.compact().to_owned(),
        created_at: now,
        retired_at: None,
        receives_until: None,
    };
    Ok((row, key))
}

/// Why adding an encryption key failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("an encryption key with this kid is stored already")]
    Exists,
    /// The owner key changed (a rotation) after the binding was checked.
    #[error("the owner key changed while the key was checked")]
    OwnerChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a checked new key the current one, retiring the one before it (which keeps receiving
/// for [`RETIRED_KEY_GRACE`]), audited as `encryption_key.added`. `owner_kid` is the owner key
/// that the binding was checked against; the transaction refuses if it is no longer the
/// owner's. Returns the kid it retired.
pub fn add(
    connection: &mut rusqlite::Connection,
    row: &EncryptionKeyRow,
    owner_kid: &str,
    actor: &Actor,
    now: i64,
) -> Result<Option<String>, AddError> {
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    if crate::store::owner::find(&tx)?.is_none_or(|owner| owner.kid != owner_kid) {
        return Err(AddError::OwnerChanged);
    }
    if store::exists(&tx, &row.kid)? {
        return Err(AddError::Exists);
    }
    let retired = store::all(&tx)?
        .into_iter()
        .find(|key| key.retired_at.is_none())
        .map(|key| key.kid);
    store::make_current(&tx, row, now + RETIRED_KEY_GRACE)?;
    let event = AuditEvent::EncryptionKeyAdded {
        kid: row.kid.clone(),
        retired: retired.clone(),
    };
    audit::append(&tx, now, &event, actor)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(retired)
}

/// An encryption key wrapped and bound again by a new owner key, as a rotation sends it.
#[derive(Debug, Clone, Copy)]
pub struct RewrappedKey<'a> {
    pub kid: &'a str,
    pub wrapped_key: &'a str,
    pub binding: &'a str,
}

/// What a rotation does to the encryption keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationChanges {
    /// `(kid, wrapped_key, binding)` of every key kept, wrapped and bound by the new key.
    pub rewrapped: Vec<(String, String, String)>,
    /// Keys deleted: a reset (the old owner key lost) cannot open them again.
    pub dropped: Vec<String>,
    /// A new current key, when the rotation brings one.
    pub added: Option<EncryptionKeyRow>,
    /// Whether the old key may be known to someone else: the replaced key then stops receiving
    /// at once.
    pub compromised: bool,
    /// The kids of the checked keys the rotation was decided on; the transaction refuses if the
    /// stored keys changed since.
    pub expected: Vec<String>,
}

/// Checks the encryption keys of a rotation to `new_owner`: every stored key, wrapped and bound
/// again by the new key; a reset (whose client no longer has the old key) may leave keys out,
/// and they are deleted. The error names the member at fault.
pub fn check_rotation(
    stored: &EncryptionKeys,
    rewrapped: &[RewrappedKey<'_>],
    new_key: Option<NewEncryptionKey<'_>>,
    new_owner: &VerifyingKey,
    reason: Reason,
    now: i64,
) -> Result<RotationChanges, NewKeyError> {
    let reset = reason == Reason::Reset;
    // The old key's d derives the key that wraps the encryption keys: whoever may know it may
    // open the current encryption key, which must then be replaced.
    let compromised = matches!(reason, Reason::Compromise | Reason::Reset);
    if compromised && new_key.is_none() && !stored.all().is_empty() {
        return Err(refuse(
            "encryption_key",
            "is required: after a compromise or a reset the old owner key may open the current \
             encryption key, so a new one must replace it",
        ));
    }
    let mut changes = RotationChanges {
        compromised,
        expected: stored.kids(),
        ..RotationChanges::default()
    };
    for (index, key) in rewrapped.iter().enumerate() {
        let at = |message: String| refuse("encryption_keys", format!("[{index}] {message}"));
        if !stored.all().iter().any(|k| k.kid == key.kid) {
            return Err(at(
                "names a kid that is not one of the stored encryption keys".into(),
            ));
        }
        if changes.rewrapped.iter().any(|(kid, _, _)| kid == key.kid) {
            return Err(at("names a key a second time".into()));
        }
        check_wrapped_key(key.wrapped_key, key.kid)
            .map_err(|e| at(format!("has a wrapped key that {e}")))?;
        check_binding(key.binding, key.kid, new_owner)
            .and_then(|iat| check_fresh(iat, now))
            .map_err(|e| at(format!("has a binding that {e} (it must be the new key's)")))?;
        changes.rewrapped.push((
            key.kid.to_owned(),
            key.wrapped_key.to_owned(),
            key.binding.to_owned(),
        ));
    }
    for key in stored.all() {
        if !changes.rewrapped.iter().any(|(kid, _, _)| *kid == key.kid) {
            if !reset {
                return Err(refuse(
                    "encryption_keys",
                    format!(
                        "leaves out the encryption key {}: a rotation wraps and binds every \
                         encryption key again (only a reset may drop them)",
                        key.kid
                    ),
                ));
            }
            changes.dropped.push(key.kid.clone());
        }
    }
    if let Some(new) = new_key {
        let row = check_new(
            new.public_key_json,
            new.wrapped_key,
            new.binding,
            new_owner,
            now,
        )
        .map_err(|e| {
            refuse(
                "encryption_key",
                format!("has a {} that {}", e.field, e.message),
            )
        })?;
        if stored.all().iter().any(|k| k.kid == row.kid) {
            return Err(refuse(
                "encryption_key",
                "is a key stored already; make a new key pair",
            ));
        }
        changes.added = Some(row);
    }
    Ok(changes)
}

/// Applies a rotation's checked changes inside its transaction, audited. Returns `false`, having
/// changed nothing, when the stored keys are no longer those the rotation was checked against
/// (a key added meanwhile): the caller refuses the rotation as a conflict.
pub fn apply_rotation(
    tx: &rusqlite::Connection,
    changes: &RotationChanges,
    new_owner_kid: &str,
    actor: &Actor,
    now: i64,
) -> Result<bool, StoreError> {
    let mut stored: Vec<String> = store::all(tx)?.into_iter().map(|row| row.kid).collect();
    let mut expected = changes.expected.clone();
    stored.sort();
    expected.sort();
    if stored != expected {
        return Ok(false);
    }
    for (kid, wrapped_key, binding) in &changes.rewrapped {
        if !store::rewrap(tx, kid, wrapped_key, binding)? {
            return Ok(false);
        }
    }
    for kid in &changes.dropped {
        store::delete(tx, kid)?;
    }
    if !changes.rewrapped.is_empty() || !changes.dropped.is_empty() {
        let event = AuditEvent::EncryptionKeysRewrapped {
            kids: changes
                .rewrapped
                .iter()
                .map(|(kid, _, _)| kid.clone())
                .collect(),
            owner_kid: new_owner_kid.to_owned(),
            dropped: changes.dropped.clone(),
        };
        audit::append(tx, now, &event, actor)?;
    }
    if let Some(row) = &changes.added {
        let retired = store::all(tx)?
            .into_iter()
            .find(|key| key.retired_at.is_none())
            .map(|key| key.kid);
        let receives_until = if changes.compromised {
            now
        } else {
            now + RETIRED_KEY_GRACE
        };
        store::make_current(tx, row, receives_until)?;
        if changes.compromised {
            store::stop_receiving_retired(tx, now)?;
        }
        let event = AuditEvent::EncryptionKeyAdded {
            kid: row.kid.clone(),
            retired,
        };
        audit::append(tx, now, &event, actor)?;
    }
    Ok(true)
}
