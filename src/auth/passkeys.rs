//! Passkeys: registering one as a credential (bound by the owner key like any other), signing
//! in with one (a discoverable WebAuthn assertion with user verification), and releasing its
//! PRF copy of the owner key once an assertion verifies. A ceremony in progress travels sealed
//! in its own id (five minutes, used once), so that no table of pending ceremonies can be
//! flooded; the node cannot open a PRF copy.

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::InternalError;
use super::challenge::UsedOnce;
use super::credential_changes::{self, CredentialError, CredentialFields, NewCredential};
use super::credentials::{
    Capability, Credential, CredentialKind, CredentialRegistry, Lookup, check_passkey_state,
};
use super::login::{LoginContext, LoginError};
use crate::audit::{self, Actor, AuditEvent};
use crate::jose::b64;
use crate::jose::jwe::KwWrappedKey;
use crate::jose::sealed::SealingKey;
use crate::keys::passkey::{
    AssertionError, PendingAuthentication, PendingRegistration, RelyingParty,
    registration_credential_id, user_handle_bytes,
};
use crate::store::credentials::CredentialRow;
use crate::store::passkeys::{self as rows, PasskeyRow};
use crate::store::{Store, StoreError, meta, owner};

/// How long a registration or sign-in ceremony may take, in seconds.
pub const CEREMONY_LIFETIME: i64 = 300;
/// The associated data of a sealed sign-in, and of a sealed registration.
const SIGN_IN_PURPOSE: &[u8] = b"siteid passkey sign-in v1";
const REGISTRATION_PURPOSE: &[u8] = b"siteid passkey registration v1";
/// The meta entry holding the owner's WebAuthn user handle (a random UUID).
const USER_HANDLE: &str = "webauthn_user_handle";

/// Why a passkey operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error(
        "passkeys need a public URL whose host is a domain name (browsers refuse IP addresses)"
    )]
    Unavailable,
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for PasskeyError {
    fn from(error: StoreError) -> Self {
        PasskeyError::Internal(InternalError(error))
    }
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// The relying party, the key that seals ceremonies in progress, and the ceremonies used up.
pub struct Passkeys {
    party: Option<RelyingParty>,
    sealer: SealingKey,
    /// SHA-256 of each ceremony id used up, until it expires.
    used: UsedOnce<[u8; 32]>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("available", &self.party.is_some())
            .finish()
    }
}

/// A ceremony in progress, as its sealed id carries it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedCeremony {
    exp: i64,
    /// The session a registration belongs to.
    #[serde(default)]
    session: Option<String>,
    state: Value,
}

/// Audits (within the limits) a passkey whose stored row or state fails its check.
async fn report_tampered(
    context: &LoginContext<'_>,
    credential_id: &str,
    problem: &str,
    actor: &Actor,
    now: i64,
) {
    let id = credential_id.to_owned();
    let kid = context
        .store
        .run(move |c| crate::store::credentials::find(c, &id))
        .await
        .ok()
        .flatten()
        .map(|row| row.kid)
        .unwrap_or_default();
    let event = AuditEvent::CredentialTampered {
        credential_id: credential_id.to_owned(),
        kid,
        problem: problem.to_owned(),
    };
    context
        .attempts
        .record_limited(&format!("tampered:{credential_id}"), event, actor, now);
}

/// Authenticators whose AAGUID names them (from the community list of passkey provider
/// AAGUIDs); any other shows as its AAGUID.
const KNOWN_AUTHENTICATORS: [(&str, &str); 9] = [
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    (
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
        "Google Password Manager",
    ),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("53414d53-554e-4700-0000-000000000000", "Samsung Pass"),
];

/// The name of the authenticator with `aaguid`, where it is known.
pub fn authenticator_name(aaguid: &str) -> Option<&'static str> {
    KNOWN_AUTHENTICATORS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(aaguid))
        .map(|(_, name)| *name)
}

/// A passkey registration as received, besides the WebAuthn answer.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    pub registration_id: String,
    pub answer: Value,
    pub fields: CredentialFields,
    pub binding: String,
    pub prf_wrapped_key: Option<String>,
}

/// A passkey sign-in as received.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyAssertion<'a> {
    pub sign_in_id: &'a str,
    pub answer: &'a Value,
}

/// The PRF copy released to a passkey that signed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReleasedCopy {
    pub wrapped_key: String,
    pub kid: String,
}

impl Passkeys {
    /// Passkeys for a node at `public_url` (unavailable where its host is an IP address).
    pub fn new(public_url: &str) -> Self {
        Passkeys {
            party: RelyingParty::for_public_url(public_url),
            sealer: SealingKey::ephemeral(),
            used: UsedOnce::default(),
        }
    }

    /// Seals a ceremony's state (as the relying party wrote it) into its id, valid for
    /// [`CEREMONY_LIFETIME`] and, for a registration, for one session.
    fn seal(
        &self,
        purpose: &[u8],
        state: Result<Value, String>,
        session: Option<&str>,
        now: i64,
    ) -> Result<String, PasskeyError> {
        let internal = |e: String| InternalError(StoreError::Task(e));
        let ceremony = SealedCeremony {
            exp: now + CEREMONY_LIFETIME,
            session: session.map(str::to_owned),
            state: state.map_err(internal)?,
        };
        let json = serde_json::to_vec(&ceremony).map_err(|e| internal(e.to_string()))?;
        Ok(b64::encode(&self.sealer.seal(&json, purpose)))
    }

    /// Opens a ceremony id sealed here for `purpose`, unexpired, and uses it up; `None` for an
    /// id that is not one, has expired or was used.
    fn redeem(&self, id: &str, purpose: &[u8], now: i64) -> Option<SealedCeremony> {
        if id.len() > 16 * 1024 {
            return None;
        }
        let sealed = b64::decode(id).ok()?;
        let opened = self.sealer.open(&sealed, purpose).ok()?;
        let ceremony: SealedCeremony = serde_json::from_slice(&opened).ok()?;
        if ceremony.exp <= now {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(id.as_bytes()).into();
        if !self.used.use_once(digest, ceremony.exp, now) {
            return None;
        }
        Some(ceremony)
    }

    /// Whether this node can use passkeys at all.
    pub fn available(&self) -> bool {
        self.party.is_some()
    }

    /// Refuses when this node cannot use passkeys.
    pub fn require_available(&self) -> Result<(), PasskeyError> {
        self.party().map(|_| ())
    }

    fn party(&self) -> Result<&RelyingParty, PasskeyError> {
        self.party.as_ref().ok_or(PasskeyError::Unavailable)
    }

    /// Starts registering a passkey for the session `session_id`: returns the registration id
    /// and the creation options. Live passkeys are excluded, so an authenticator is not
    /// registered twice.
    pub async fn start_registration(
        &self,
        store: &Store,
        session_id: &str,
        now: i64,
    ) -> Result<(String, Value), PasskeyError> {
        let party = self.party()?;
        let (handle, exclude) = store
            .run(|c| {
                let handle = match meta::get_text(c, USER_HANDLE)? {
                    Some(handle) => handle,
                    None => {
                        let handle = crate::keys::passkey::new_user_handle();
                        meta::set_text(c, USER_HANDLE, &handle)?;
                        handle
                    }
                };
                let exclude: Vec<Vec<u8>> = rows::live(c)?
                    .iter()
                    .filter_map(|p| b64::decode(&p.credential_id).ok())
                    .collect();
                Ok::<_, StoreError>((handle, exclude))
            })
            .await?;
        let user_name = party.id().to_owned();
        let (options, ceremony) = party
            .start_registration(&handle, &user_name, exclude)
            .map_err(|e| InternalError(StoreError::Task(e)))?;
        let id = self.seal(
            REGISTRATION_PURPOSE,
            ceremony.to_json(),
            Some(session_id),
            now,
        )?;
        Ok((id, options))
    }

    /// Finishes a registration: checks the WebAuthn answer, the owner key's binding over the
    /// passkey's credential id and key thumbprint, and the PRF copy's form; stores the passkey
    /// as a credential. Audited as `credential.added`.
    pub async fn register(
        &self,
        store: &Store,
        registry: &CredentialRegistry,
        session_id: &str,
        input: NewPasskey,
        actor: &Actor,
        now: i64,
    ) -> Result<CredentialRow, PasskeyError> {
        let party = self.party()?;
        let pending = self
            .redeem(&input.registration_id, REGISTRATION_PURPOSE, now)
            .filter(|p| p.session.as_deref() == Some(session_id))
            .and_then(|p| PendingRegistration::from_json(p.state).ok())
            .ok_or_else(|| {
                invalid(
                    "registration_id",
                    "names a registration that is unknown, used, expired or another session's",
                )
            })?;
        // An authenticator registered before (live or revoked) is refused by its id.
        if let Some(raw) = registration_credential_id(&input.answer) {
            let id = b64::encode(&raw);
            let taken = store
                .run(move |c| crate::store::credentials::taken(c, &id, ""))
                .await?;
            if taken.0 {
                return Err(CredentialError::Exists("id").into());
            }
        }
        let registered = party
            .finish_registration(&input.answer, &pending)
            .map_err(|e| invalid("credential", format!("(the new passkey) {e}")))?;
        let prf = match &input.prf_wrapped_key {
            None => None,
            Some(compact) => {
                let copy = KwWrappedKey::parse(compact)
                    .map_err(|e| invalid("prf_wrapped_key", format!("(the wrapped key) {e}")))?;
                let owner = registry
                    .owner_key(store, now)
                    .await?
                    .ok_or(CredentialError::NotClaimed)?;
                if copy.kid() != owner.kid {
                    return Err(invalid(
                        "prf_wrapped_key",
                        "names another key than the current owner key (kid)",
                    ));
                }
                // Whoever holds this passkey can open the owner key with it: only a passkey
                // that may do everything the owner key does may carry a copy.
                if !input
                    .fields
                    .capabilities
                    .iter()
                    .any(|c| c == Capability::Owner.as_str())
                {
                    return Err(invalid(
                        "prf_wrapped_key",
                        "may only come with a passkey that has the owner capability (whoever \
                         holds the passkey can open the owner key)",
                    ));
                }
                Some(copy)
            }
        };
        let mut jwk: serde_json::Map<String, Value> =
            serde_json::from_str(&registered.public_key.to_jwk_json())
                .map_err(|e| InternalError(StoreError::Task(e.to_string())))?;
        jwk.insert("alg".into(), registered.alg.as_str().into());
        let id = b64::encode(&registered.credential_id);
        let passkey = PasskeyRow {
            credential_id: id.clone(),
            state: registered.state,
            aaguid: registered.aaguid,
            sign_count: registered.sign_count,
            backup_eligible: registered.backup_eligible,
            backed_up: registered.backed_up,
            prf_kid: prf.as_ref().map(|p| p.kid().to_owned()),
            prf_wrapped_key: prf.map(|p| p.compact().to_owned()),
            created_at: now,
            updated_at: now,
        };
        let new = NewCredential {
            id,
            kind: CredentialKind::Passkey.as_str().into(),
            public_key_json: Value::Object(jwk).to_string(),
            fields: input.fields,
            binding: input.binding,
            passkey: Some(passkey),
            approves_request: None,
            gated: true,
        };
        Ok(credential_changes::add(store, registry, new, actor, now).await?)
    }

    /// Starts a sign-in: the id to answer with and the request options (no credential named:
    /// the browser offers the passkeys it has for this site).
    pub fn start_sign_in(&self, now: i64) -> Result<(String, Value), PasskeyError> {
        let party = self.party()?;
        let (options, ceremony) = party
            .start_authentication()
            .map_err(|e| InternalError(StoreError::Task(e)))?;
        let id = self.seal(SIGN_IN_PURPOSE, ceremony.to_json(), None, now)?;
        Ok((id, options))
    }

    /// Checks a passkey assertion for a sign-in: the ceremony is used up first, the passkey
    /// must be a live, untampered credential, and its counter must move forward (a counter
    /// that goes back is audited and refused). Records the counter, backup flag and last use.
    pub(crate) async fn check_assertion(
        &self,
        context: &LoginContext<'_>,
        assertion: PasskeyAssertion<'_>,
        actor: &Actor,
        now: i64,
    ) -> Result<Arc<Credential>, LoginError> {
        let rejected = |why: &str| LoginError::Rejected(why.to_owned());
        let party = self.party.as_ref().ok_or_else(|| {
            rejected("is by a passkey, which a node whose public URL is an IP address cannot check")
        })?;
        let pending = self
            .redeem(assertion.sign_in_id, SIGN_IN_PURPOSE, now)
            .and_then(|p| PendingAuthentication::from_json(p.state).ok())
            .ok_or_else(|| {
                rejected("answers a passkey sign-in that is unknown, used or expired")
            })?;
        let (read, credential_id) = party
            .read_assertion(assertion.answer)
            .map_err(|e| rejected(&format!("(a passkey {e})")))?;
        let id = b64::encode(&credential_id);
        let credential = match context
            .credentials
            .lookup_id(context.store, &id, now)
            .await?
        {
            Lookup::Found(credential) if credential.kind == CredentialKind::Passkey => credential,
            Lookup::Tampered { credential_id } => {
                report_tampered(context, &credential_id, "tried to sign in", actor, now).await;
                return Err(rejected("is by a passkey that is not registered"));
            }
            _ => return Err(rejected("is by a passkey that is not registered")),
        };
        let lookup_id = id.clone();
        let (stored, handle) = context
            .store
            .run(move |c| {
                Ok::<_, StoreError>((rows::find(c, &lookup_id)?, meta::get_text(c, USER_HANDLE)?))
            })
            .await?;
        // A discoverable passkey names the owner's user handle; another one is not this node's.
        if let Some(given) = read.user_handle()
            && handle.as_deref().and_then(user_handle_bytes).as_deref() != Some(given)
        {
            return Err(rejected("is by a passkey made for another user handle"));
        }
        let state = stored.as_ref().map(|p| p.state.clone());
        if let Err(problem) = check_passkey_state(&credential, state.as_deref()) {
            report_tampered(context, &id, &problem, actor, now).await;
            return Err(rejected("is by a passkey that is not registered"));
        }
        let state = state.unwrap_or_default();
        let stored_count = stored.map(|p| p.sign_count).unwrap_or_default();
        let regressed = |stored: u32| {
            let event = AuditEvent::PasskeyCounterRegressed {
                credential_id: id.clone(),
                stored,
            };
            context
                .attempts
                .record_limited(&format!("counter:{id}"), event, actor, now);
            rejected(
                "is by a passkey whose signature counter did not move forward (it may be cloned)",
            )
        };
        let asserted = match party.finish_authentication(&read, pending, &state) {
            Ok(asserted) => asserted,
            Err(AssertionError::CounterWentBack) => return Err(regressed(stored_count)),
            Err(AssertionError::Refused(why)) => return Err(rejected(&why)),
        };
        // The counter moves forward in the same statement that records it, so two assertions
        // checked at once against the same stored counter cannot both count.
        let record_id = id.clone();
        let recorded = context
            .store
            .run(move |c| {
                rows::record_assertion(
                    c,
                    &record_id,
                    &asserted.state,
                    asserted.sign_count,
                    asserted.backed_up,
                    now,
                )
            })
            .await?;
        if !recorded {
            return Err(regressed(stored_count));
        }
        Ok(credential)
    }

    /// The PRF copy of passkey `credential_id`, released to a client whose assertion just
    /// verified: only a copy of the current owner key, audited as
    /// `passkey.wrapped_key_served`. `None` when the passkey has none.
    pub async fn release_copy(
        &self,
        store: &Store,
        principal: &super::credentials::Principal,
        actor: &Actor,
        now: i64,
    ) -> Result<Option<ReleasedCopy>, PasskeyError> {
        // Only a passkey that may do all the owner key does holds a copy of it.
        if !principal.capabilities.contains(Capability::Owner) {
            return Ok(None);
        }
        let credential_id = principal.credential_id.clone();
        let actor = actor.clone();
        let released = store
            .run(move |c| {
                let tx = c.transaction()?;
                let current = owner::find(&tx)?.map(|o| o.kid);
                let copy = rows::find(&tx, &credential_id)?.and_then(|p| {
                    match (p.prf_wrapped_key, p.prf_kid) {
                        (Some(wrapped_key), Some(kid)) if Some(&kid) == current.as_ref() => {
                            Some(ReleasedCopy { wrapped_key, kid })
                        }
                        _ => None,
                    }
                });
                if let Some(copy) = &copy {
                    let event = AuditEvent::PasskeyWrappedKeyServed {
                        credential_id,
                        kid: copy.kid.clone(),
                    };
                    audit::append(&tx, now, &event, &actor)?;
                }
                tx.commit()?;
                Ok::<_, StoreError>(copy)
            })
            .await?;
        Ok(released)
    }
}
