//! Credentials: the keys that may sign in, each with capabilities, networks and an optional
//! expiry. The owner key is the root credential; every other credential is bound by a JWS the
//! owner key signed over its fields, checked whenever credentials are loaded, so that a row
//! edited in the database (wider capabilities, another key, dropped networks) cannot sign in.
//! The registry keeps every live credential in memory; a kid is only ever compared.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::key_history::{self, RecordState};
use crate::audit::{self, Actor, AuditEvent};
use crate::auth::encryption_keys::EncryptionKeys;
use crate::jose::jwk::OwnerPublicKey;
use crate::jose::jws::{CompactJws, VerifyingKey};
use crate::keys::{CredentialKey, JwsAlgorithm, PublicKey};
use crate::net::IpNetwork;
use crate::store::credentials::{self as rows, CredentialRow};
use crate::store::owner::HistoryRow;
use crate::store::{Store, StoreError};

/// The `typ` of a credential binding.
pub const BINDING_TYPE: &str = "siteid-credential+jwt";

/// What a credential may do. Every endpoint and WebSocket message names the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Read its own session, open a WebSocket.
    Session,
    /// List and revoke sessions (and see other sessions' events).
    Sessions,
    /// Read the audit log.
    Audit,
    /// List, add, change and revoke credentials.
    Credentials,
    /// Recovery share sets.
    Recovery,
    /// Password change, unlock codes and everything else about the owner.
    Owner,
    /// Read, mark and delete inbox messages, and fetch the wrapped encryption keys.
    Inbox,
    /// Approve sign-ins to other sites (IndieAuth), and list and revoke what they were granted.
    Indieauth,
}

impl Capability {
    /// Every capability, in the canonical order.
    pub const ALL: [Capability; 8] = [
        Capability::Session,
        Capability::Sessions,
        Capability::Audit,
        Capability::Credentials,
        Capability::Recovery,
        Capability::Owner,
        Capability::Inbox,
        Capability::Indieauth,
    ];

    /// The capability's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Session => "session",
            Capability::Sessions => "sessions",
            Capability::Audit => "audit",
            Capability::Credentials => "credentials",
            Capability::Recovery => "recovery",
            Capability::Owner => "owner",
            Capability::Inbox => "inbox",
            Capability::Indieauth => "indieauth",
        }
    }

    /// The capability named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of capabilities, written as a JSON array of names in the canonical order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u16);

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Capabilities {
    /// Every capability: the owner key's set.
    pub fn all() -> Self {
        Capability::ALL
            .into_iter()
            .fold(Capabilities(0), |set, c| set.with(c))
    }

    /// This set and `capability`.
    pub fn with(self, capability: Capability) -> Self {
        Capabilities(self.0 | capability.bit())
    }

    /// The capabilities in both sets.
    pub fn intersection(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }

    /// Whether the set holds `capability`.
    pub fn contains(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    /// Reads names; an unknown or repeated name is refused. The message completes
    /// "capabilities ...".
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = Capabilities(0);
        for name in names {
            let capability = Capability::parse(name).ok_or_else(|| {
                format!(
                    "has {name:?}, which is not one of {}",
                    Capability::ALL.map(Capability::as_str).join(", ")
                )
            })?;
            if set.contains(capability) {
                return Err(format!("names {name:?} twice"));
            }
            set = set.with(capability);
        }
        Ok(set)
    }

    /// The names, in the canonical order.
    pub fn names(self) -> Vec<&'static str> {
        Capability::ALL
            .into_iter()
            .filter(|c| self.contains(*c))
            .map(Capability::as_str)
            .collect()
    }

    /// Reads the JSON array a row or a binding holds.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let names: Vec<String> =
            serde_json::from_str(text).map_err(|e| format!("is not a JSON array of names: {e}"))?;
        Capabilities::from_names(names.iter().map(String::as_str))
    }

    /// The JSON array, in the canonical order.
    pub fn to_json(self) -> String {
        serde_json::to_string(&self.names()).unwrap_or_else(|_| "[]".into())
    }
}

impl Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(serializer)
    }
}

/// What kind of key a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// The owner key: the root credential.
    Owner,
    /// A key a browser made with WebCrypto and keeps non-extractable.
    Device,
    /// A public key the owner brings (openssl, ssh-keygen, a script's key).
    Key,
    /// A WebAuthn passkey: signs in with assertions, never with JWTs.
    Passkey,
}

impl CredentialKind {
    /// The kind's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Owner => "owner",
            CredentialKind::Device => "device",
            CredentialKind::Key => "key",
            CredentialKind::Passkey => "passkey",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [
            CredentialKind::Owner,
            CredentialKind::Device,
            CredentialKind::Key,
            CredentialKind::Passkey,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// A live credential whose row checked out against its binding.
#[derive(Debug)]
pub struct Credential {
    pub id: String,
    pub kid: String,
    pub kind: CredentialKind,
    pub label: String,
    pub capabilities: Capabilities,
    pub networks: Vec<IpNetwork>,
    pub expires_at: Option<i64>,
    pub key: Arc<CredentialKey>,
    pub created_at: i64,
}

impl Credential {
    /// Whether a client at `ip` may use this credential: anywhere without networks, else only
    /// inside one of them. A client without an address (the command line) is inside none.
    pub fn allows_address(&self, ip: Option<IpAddr>) -> bool {
        self.networks.is_empty()
            || ip.is_some_and(|ip| self.networks.iter().any(|n| n.contains(ip)))
    }

    /// Whether the credential has expired at `now`.
    pub fn has_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// What a session of this credential acts as.
    pub fn principal(&self) -> Principal {
        Principal {
            credential_id: self.id.clone(),
            kid: self.kid.clone(),
            capabilities: self.capabilities,
        }
    }
}

/// Who a session acts for: the credential that signed in and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub credential_id: String,
    pub kid: String,
    pub capabilities: Capabilities,
}

/// The claims of a binding: exactly these members.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingClaims {
    pub sub: String,
    pub kind: String,
    pub label: String,
    pub cap: Vec<String>,
    pub net: Vec<String>,
    #[serde(default)]
    pub exp: Option<i64>,
    pub iat: i64,
    pub jti: String,
    /// An approval's binding may name the requester's address as the approver saw it; the node
    /// refuses the approval when the request came from another (a relay rewrote it).
    #[serde(default)]
    pub from: Option<String>,
}

/// Checks a stored row against its binding and the owner key; the message says what does not
/// match. The owner credential has no binding: it is the owner key itself.
pub(crate) fn check_row(
    row: &CredentialRow,
    owner_key: &VerifyingKey,
) -> Result<Credential, String> {
    check_row_with(row, |kind, binding| match (kind, binding) {
        (CredentialKind::Owner, None) => {
            if row.kid != owner_key.kid || row.id != row.kid || row.alg != "ES384" {
                return Err("is an owner credential that is not the owner key".into());
            }
            Ok(None)
        }
        (CredentialKind::Owner, Some(_)) | (_, None) => {
            Err("has no binding by the owner key".into())
        }
        (_, Some(binding)) => verify_binding(binding, owner_key).map(Some),
    })
}

/// Checks a stored row whose binding an approving credential made (pairing) rather than the
/// owner key: `issuer` must be an owner-bound credential with `credentials`, and the row may
/// hold no capability, network or lifetime beyond the issuer's.
pub(crate) fn check_delegated_row(
    row: &CredentialRow,
    issuer: &Credential,
) -> Result<Credential, String> {
    check_delegated(row, issuer).map(|(credential, _)| credential)
}

/// [`check_delegated_row`], also returning the binding's claims (its `iat` and `from`, which an
/// approval checks).
pub(crate) fn check_delegated(
    row: &CredentialRow,
    issuer: &Credential,
) -> Result<(Credential, BindingClaims), String> {
    if !issuer.capabilities.contains(Capability::Credentials)
        || matches!(issuer.kind, CredentialKind::Owner | CredentialKind::Passkey)
    {
        return Err("has a binding by a credential that may not approve others".into());
    }
    let mut verified = None;
    let credential = check_row_with(row, |kind, binding| match (kind, binding) {
        (CredentialKind::Device | CredentialKind::Key, Some(binding)) => {
            let claims = verify_delegated_binding(binding, issuer)?;
            verified = Some(claims.clone());
            Ok(Some(claims))
        }
        _ => Err("has a binding by a credential that may not approve it".into()),
    })?;
    let claims = verified.ok_or("has no binding")?;
    if credential.capabilities.intersection(issuer.capabilities) != credential.capabilities {
        return Err("has capabilities its approver does not hold".into());
    }
    if !issuer.networks.is_empty()
        && (credential.networks.is_empty()
            || !credential
                .networks
                .iter()
                .all(|n| issuer.networks.iter().any(|outer| n.within(outer))))
    {
        return Err("may be used from networks its approver may not".into());
    }
    if let Some(limit) = issuer.expires_at
        && credential.expires_at.is_none_or(|at| at > limit)
    {
        return Err("outlives its approver".into());
    }
    Ok((credential, claims))
}

/// The kid a binding's header names as its signer, read without any check (to find the key
/// that checks it).
pub(crate) fn binding_signer(binding: &str) -> Option<String> {
    CompactJws::parse_accepting(binding, BINDING_TYPE, |_| true)
        .ok()
        .and_then(|jws| jws.header.kid)
}

/// Checks a binding made by `issuer`'s key (in its own algorithm); returns its claims.
pub(crate) fn verify_delegated_binding(
    binding: &str,
    issuer: &Credential,
) -> Result<BindingClaims, String> {
    let jws = CompactJws::parse_accepting(binding, BINDING_TYPE, |alg| {
        JwsAlgorithm::parse(alg).is_some()
    })
    .map_err(|e| format!("has a binding that {e}"))?;
    if jws.header.kid.as_deref() != Some(issuer.kid.as_str()) {
        return Err("has a binding that does not name its approver".into());
    }
    let alg = JwsAlgorithm::parse(&jws.header.alg)
        .ok_or("has a binding in an algorithm this node does not verify")?;
    jws.verify_by(|input, signature| issuer.key.verify_jws(alg, input, signature))
        .map_err(|e| format!("has a binding that {e}"))
}

/// Checks a row's own fields, then its binding with `verify` (which returns the binding's claims,
/// or `None` for the owner key's own row), then that the claims agree with every field.
fn check_row_with(
    row: &CredentialRow,
    verify: impl FnOnce(CredentialKind, Option<&str>) -> Result<Option<BindingClaims>, String>,
) -> Result<Credential, String> {
    let kind = CredentialKind::parse(&row.kind).ok_or("has an unknown kind")?;
    let alg = JwsAlgorithm::parse(&row.alg)
        .ok_or_else(|| format!("has an algorithm this node does not verify: {}", row.alg))?;
    let (public, _) = PublicKey::from_jwk_json(&row.public_key)
        .map_err(|e| format!("has a public key that {e}"))?;
    let key = CredentialKey::new(public, alg).map_err(|e| format!("has a public key that {e}"))?;
    if key.kid != row.kid {
        return Err("has a public key whose thumbprint is not its kid".into());
    }
    let capabilities = Capabilities::from_json(&row.capabilities)
        .map_err(|e| format!("has capabilities that {e}"))?;
    let network_names: Vec<String> = serde_json::from_str(&row.networks)
        .map_err(|e| format!("has networks that are not a JSON array: {e}"))?;
    let networks = network_names
        .iter()
        .map(|n| IpNetwork::parse(n).map_err(|e| format!("has a network {n:?} that {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(claims) = verify(kind, row.binding.as_deref())? {
        let canonical = |names: &[String]| -> Result<BTreeSet<String>, String> {
            names
                .iter()
                .map(|n| IpNetwork::parse(n).map(|net| net.to_string()))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("has a binding network that {e}"))
        };
        let row_networks: BTreeSet<String> = networks.iter().map(ToString::to_string).collect();
        let agrees = claims.sub == row.kid
            && claims.jti == row.id
            && claims.kind == row.kind
            && claims.label == row.label
            && Capabilities::from_names(claims.cap.iter().map(String::as_str)).ok()
                == Some(capabilities)
            && canonical(&claims.net)? == row_networks
            && claims.exp == row.expires_at;
        if !agrees {
            return Err("does not match its binding".into());
        }
    }
    Ok(Credential {
        id: row.id.clone(),
        kid: row.kid.clone(),
        kind,
        label: row.label.clone(),
        capabilities,
        networks,
        expires_at: row.expires_at,
        key: Arc::new(key),
        created_at: row.created_at,
    })
}

/// Checks that a passkey credential's WebAuthn state holds the very key and credential id its
/// row (and so its binding) names: an edited state cannot put another authenticator's key
/// behind a bound row. The message says what does not match.
pub(crate) fn check_passkey_state(
    credential: &Credential,
    state: Option<&str>,
) -> Result<(), String> {
    let state = state.ok_or("is a passkey without its WebAuthn state")?;
    let (credential_id, public, alg) = crate::keys::passkey::stored_key(state)
        .map_err(|e| format!("has a WebAuthn state that {e}"))?;
    if crate::jose::b64::encode(&credential_id) != credential.id
        || public.thumbprint() != credential.kid
        || alg != credential.key.alg
    {
        return Err("has a WebAuthn state for another passkey than its row".into());
    }
    Ok(())
}

/// Checks that the owner key's credential is live and has exactly the fields every owner key
/// has: no binding covers it, so nothing else may vary (narrowed capabilities, networks or an
/// expiry would lock the owner out). The message says what does not hold.
fn check_owner_credential(rows: &[CredentialRow], kid: &str) -> Result<(), String> {
    let Some(row) = rows.iter().find(|row| row.kid == kid) else {
        return Err("the owner key's credential is missing or revoked".into());
    };
    let fixed = row.id == row.kid
        && row.kind == CredentialKind::Owner.as_str()
        && row.alg == "ES384"
        && Capabilities::from_json(&row.capabilities).ok()
            == Capabilities::from_json(crate::store::owner::OWNER_CAPABILITIES).ok()
        && serde_json::from_str::<Vec<String>>(&row.networks).is_ok_and(|n| n.is_empty())
        && row.expires_at.is_none()
        && row.binding.is_none();
    if !fixed {
        return Err(
            "the owner key's credential has been given other fields than an owner key \
                    has (capabilities, networks, expiry)"
                .into(),
        );
    }
    Ok(())
}

/// Checks a binding's form and the owner key's signature; returns its claims. The message
/// completes "... has a binding that ...", or says the binding names another key.
pub(crate) fn verify_binding(
    binding: &str,
    owner_key: &VerifyingKey,
) -> Result<BindingClaims, String> {
    let jws =
        CompactJws::parse(binding, BINDING_TYPE).map_err(|e| format!("has a binding that {e}"))?;
    if jws.header.kid.as_deref() != Some(owner_key.kid.as_str()) {
        return Err("has a binding that does not name the owner key".into());
    }
    jws.verify_with(owner_key)
        .map_err(|e| format!("has a binding that {e}"))
}

/// The live credentials by kid and by id.
#[derive(Debug, Default)]
struct Snapshot {
    by_kid: HashMap<String, Arc<Credential>>,
    by_id: HashMap<String, Arc<Credential>>,
    owner: Option<Arc<Credential>>,
    /// The owner credential's key, for checking bindings and proofs and publishing it.
    owner_key: Option<Arc<VerifyingKey>>,
    /// Rows that failed their check, by kid: their credential id and what was wrong. They
    /// cannot sign in.
    tampered: HashMap<String, Tampered>,
    /// Why the owner record failed its check (its history, key or signature): nothing is then
    /// served and nothing signs in.
    record_problem: Option<String>,
    /// Whether the owner record is unsigned (claimed before records were signed).
    unsigned: bool,
    /// The owner key's history as checked with the record, oldest first.
    history: Arc<Vec<HistoryRow>>,
    /// The owner's encryption keys that passed their check against the owner key.
    encryption_keys: Arc<EncryptionKeys>,
    /// Encryption keys that failed their check, by kid, with what was wrong.
    encryption_key_problems: Vec<(String, String)>,
}

/// A stored credential that failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tampered {
    credential_id: String,
    problem: String,
}

/// The node's credentials, all in memory, reloaded from the database when they change.
#[derive(Debug, Default)]
pub struct CredentialRegistry {
    snapshot: RwLock<Arc<Snapshot>>,
    /// The database's data version when the snapshot was read: another process's change (the
    /// command line, an edit of the file) moves it, and the next refresh reloads.
    data_version: std::sync::Mutex<Option<i64>>,
    /// Leaves tampered rows to the node to report (the command line loads a registry for one
    /// operation and would report them again at every run).
    quiet: bool,
}

/// How looking up a kid for a sign-in came out.
#[derive(Debug)]
pub enum Lookup {
    Found(Arc<Credential>),
    /// A stored credential whose row no longer matches its binding.
    Tampered {
        credential_id: String,
    },
    Unknown,
}

impl CredentialRegistry {
    /// Reads every live credential and checks each against the owner key; rows that fail are
    /// kept out and audited as `credential.tampered`.
    pub async fn load(store: &Store, now: i64) -> Result<Self, StoreError> {
        let registry = CredentialRegistry::default();
        registry.reload(store, now).await?;
        Ok(registry)
    }

    /// Like [`CredentialRegistry::load`], but tampered rows are kept out without being logged
    /// or audited: for the command line, whose node reports them.
    pub async fn load_quietly(store: &Store, now: i64) -> Result<Self, StoreError> {
        let registry = CredentialRegistry {
            quiet: true,
            ..CredentialRegistry::default()
        };
        registry.reload(store, now).await?;
        Ok(registry)
    }

    /// Reads the credentials again (after a claim or a change).
    pub async fn reload(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let (rows, owner, history, data_version, events, passkeys, encryption_rows) = store
            .run(|c| {
                let data_version = crate::store::meta::data_version(c)?;
                let owner = crate::store::owner::find(c)?;
                let history = crate::store::owner::history(c)?;
                let events = crate::store::audit_rows::credential_events(c)?;
                let passkeys = crate::store::passkeys::live(c)?;
                let rows = rows::live(c)?;
                let encryption_rows = crate::store::encryption_keys::all(c)?;
                Ok::<_, StoreError>((
                    rows,
                    owner,
                    history,
                    data_version,
                    events,
                    passkeys,
                    encryption_rows,
                ))
            })
            .await?;
        let passkey_states: HashMap<String, String> = passkeys
            .into_iter()
            .map(|p| (p.credential_id, p.state))
            .collect();
        let audited = AuditedStates::from_events(&events);
        let record_state = owner.as_ref().map(|record| {
            check_owner_credential(&rows, &record.kid)?;
            key_history::check_owner_record(record, &history)
        });
        let mut snapshot = match record_state {
            Some(Err(problem)) => Snapshot {
                record_problem: Some(problem),
                ..Snapshot::default()
            },
            state => Snapshot {
                unsigned: state == Some(Ok(RecordState::Unsigned)),
                history: Arc::new(history),
                ..build_snapshot(
                    &rows,
                    owner.map(|o| o.kid).as_deref(),
                    &audited,
                    &passkey_states,
                )
            },
        };
        if let Some(owner_key) = &snapshot.owner_key {
            let (keys, problems) = EncryptionKeys::check(&encryption_rows, owner_key);
            snapshot.encryption_keys = Arc::new(keys);
            snapshot.encryption_key_problems = problems;
        }
        self.report_record_state(&snapshot);
        self.report_encryption_key_problems(&snapshot);
        *self.data_version.lock().unwrap_or_else(|p| p.into_inner()) = Some(data_version);
        let newly_tampered: Vec<(String, Tampered)> = {
            let previous = self.current();
            snapshot
                .tampered
                .iter()
                .filter(|(kid, found)| previous.tampered.get(*kid) != Some(found))
                .map(|(kid, found)| (kid.clone(), found.clone()))
                .collect()
        };
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        if !newly_tampered.is_empty() && !self.quiet {
            for (kid, found) in &newly_tampered {
                tracing::error!(%kid, problem = %found.problem, "a credential row does not match its binding");
            }
            store
                .run(move |c| {
                    let tx = c.transaction()?;
                    for (kid, found) in &newly_tampered {
                        let event = AuditEvent::CredentialTampered {
                            credential_id: found.credential_id.clone(),
                            kid: kid.clone(),
                            problem: found.problem.clone(),
                        };
                        audit::append(&tx, now, &event, &Actor::local())?;
                    }
                    tx.commit()?;
                    Ok::<_, StoreError>(())
                })
                .await?;
        }
        Ok(())
    }

    /// Logs a change of the owner record's state: a record that fails its check (an error
    /// each time it is found), or an unsigned record (a warning once).
    fn report_record_state(&self, next: &Snapshot) {
        if self.quiet {
            return;
        }
        let previous = self.current();
        if let Some(problem) = &next.record_problem
            && previous.record_problem.as_ref() != Some(problem)
        {
            tracing::error!(
                %problem,
                "the owner record fails its check; the node serves no key and accepts no \
                 sign-in until it is restored (restore a backup, or restore from recovery shares \
                 onto a node you control)"
            );
        }
        if next.unsigned && !previous.unsigned {
            tracing::warn!(
                "the owner record is not signed by the owner key (claimed before key \
                 histories); a password change from the browser signs it"
            );
        }
    }

    /// Logs each encryption key that newly fails its check: it is then neither published nor
    /// accepted for messages.
    fn report_encryption_key_problems(&self, next: &Snapshot) {
        if self.quiet {
            return;
        }
        let previous = self.current();
        for (kid, problem) in &next.encryption_key_problems {
            if !previous
                .encryption_key_problems
                .contains(&(kid.clone(), problem.clone()))
            {
                tracing::error!(%kid, %problem, "an encryption key row fails its check");
            }
        }
    }

    /// The owner's encryption keys as last checked against the owner key.
    pub fn encryption_keys(&self) -> Arc<EncryptionKeys> {
        self.current().encryption_keys.clone()
    }

    /// The owner key's history as last checked with the owner record, oldest first (empty on
    /// an unsigned or unclaimed node).
    pub fn history(&self) -> Arc<Vec<HistoryRow>> {
        self.current().history.clone()
    }

    /// Whether the owner record failed its check: the node then serves no key.
    pub fn has_record_problem(&self) -> bool {
        self.current().record_problem.is_some()
    }

    /// Reloads when another process changed the database since the last load (a credential
    /// added or revoked from the command line, a row edited by hand). Returns whether it did.
    pub async fn refresh_if_changed(&self, store: &Store, now: i64) -> Result<bool, StoreError> {
        let version = store.run(|c| crate::store::meta::data_version(c)).await?;
        let seen = *self.data_version.lock().unwrap_or_else(|p| p.into_inner());
        if seen == Some(version) {
            return Ok(false);
        }
        self.reload(store, now).await?;
        Ok(true)
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The owner credential, loading the credentials once if the node was claimed since.
    pub async fn owner(
        &self,
        store: &Store,
        now: i64,
    ) -> Result<Option<Arc<Credential>>, StoreError> {
        let current = self.current();
        if let Some(owner) = current.owner.clone() {
            return Ok(Some(owner));
        }
        if current.record_problem.is_some() {
            return Ok(None);
        }
        self.reload(store, now).await?;
        Ok(self.current().owner.clone())
    }

    /// The owner key, for checking proofs and publishing it.
    pub async fn owner_key(
        &self,
        store: &Store,
        now: i64,
    ) -> Result<Option<Arc<VerifyingKey>>, StoreError> {
        self.owner(store, now).await?;
        Ok(self.current().owner_key.clone())
    }

    /// The owner key as last loaded, without reading the database (none before a claim).
    pub fn loaded_owner_key(&self) -> Option<Arc<VerifyingKey>> {
        self.current().owner_key.clone()
    }

    /// The credential a sign-in names by `kid`. A kid not in memory is looked up once more
    /// after reading the database again if another process changed it (a key just added from
    /// the command line signs in at once).
    pub async fn lookup(&self, store: &Store, kid: &str, now: i64) -> Result<Lookup, StoreError> {
        // A node claimed since start-up (or from the command line) has no owner loaded yet.
        self.owner(store, now).await?;
        let found = self.lookup_in_memory(kid);
        if !matches!(found, Lookup::Unknown) || !self.refresh_if_changed(store, now).await? {
            return Ok(found);
        }
        Ok(self.lookup_in_memory(kid))
    }

    /// The credential a passkey sign-in names by credential `id`, looked up like
    /// [`CredentialRegistry::lookup`].
    pub async fn lookup_id(&self, store: &Store, id: &str, now: i64) -> Result<Lookup, StoreError> {
        self.owner(store, now).await?;
        let found = self.lookup_id_in_memory(id);
        if !matches!(found, Lookup::Unknown) || !self.refresh_if_changed(store, now).await? {
            return Ok(found);
        }
        Ok(self.lookup_id_in_memory(id))
    }

    fn lookup_id_in_memory(&self, id: &str) -> Lookup {
        let snapshot = self.current();
        if let Some(credential) = snapshot.by_id.get(id) {
            return Lookup::Found(credential.clone());
        }
        if snapshot.tampered.values().any(|t| t.credential_id == id) {
            return Lookup::Tampered {
                credential_id: id.to_owned(),
            };
        }
        Lookup::Unknown
    }

    fn lookup_in_memory(&self, kid: &str) -> Lookup {
        let snapshot = self.current();
        if let Some(credential) = snapshot.by_kid.get(kid) {
            return Lookup::Found(credential.clone());
        }
        if let Some(found) = snapshot.tampered.get(kid) {
            return Lookup::Tampered {
                credential_id: found.credential_id.clone(),
            };
        }
        Lookup::Unknown
    }

    /// The ids of live credentials whose expiry has passed at `now`.
    pub fn expired(&self, now: i64) -> Vec<String> {
        self.current()
            .by_id
            .values()
            .filter(|credential| credential.has_expired(now))
            .map(|credential| credential.id.clone())
            .collect()
    }

    /// The live credential with `id`, from memory.
    pub fn get(&self, id: &str) -> Option<Arc<Credential>> {
        self.current().by_id.get(id).cloned()
    }
}

/// The base64url SHA-256 of a stored binding, as credential events record it.
pub(crate) fn binding_digest(binding: Option<&str>) -> String {
    crate::jose::b64::encode(&Sha256::digest(binding.unwrap_or_default().as_bytes()))
}

/// What the audit log last recorded about a credential.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct AuditedState {
    revoked: bool,
    binding_sha256: Option<String>,
    alg: Option<String>,
}

/// Each credential's last recorded state, by credential id, folded from its events in order.
/// Entries from before these members were recorded (or pruned) simply tell less.
#[derive(Debug, Default)]
struct AuditedStates(HashMap<String, AuditedState>);

impl AuditedStates {
    fn from_events(events: &[(String, String)]) -> Self {
        let mut states: HashMap<String, AuditedState> = HashMap::new();
        for (event, detail) in events {
            let Ok(detail) = serde_json::from_str::<serde_json::Value>(detail) else {
                continue;
            };
            let Some(id) = detail["credential_id"].as_str() else {
                continue;
            };
            let state = states.entry(id.to_owned()).or_default();
            let text = |name: &str| detail[name].as_str().map(str::to_owned);
            match event.as_str() {
                "credential.revoked" => state.revoked = true,
                "credential.added" => {
                    *state = AuditedState {
                        revoked: false,
                        binding_sha256: text("binding_sha256"),
                        alg: text("alg"),
                    };
                }
                "credential.reset" | "credential.rebound" => {
                    state.binding_sha256 = text("binding_sha256");
                    state.alg = text("alg").or(state.alg.take());
                }
                _ => state.binding_sha256 = text("binding_sha256"),
            }
        }
        AuditedStates(states)
    }

    /// What is wrong with a live row that the audit log contradicts, if anything.
    fn contradiction(&self, row: &CredentialRow) -> Option<&'static str> {
        let state = self.0.get(&row.id)?;
        if state.revoked {
            return Some("is live, but the audit log records its revocation");
        }
        if state
            .binding_sha256
            .as_ref()
            .is_some_and(|digest| *digest != binding_digest(row.binding.as_deref()))
        {
            return Some("has another binding than the audit log last recorded");
        }
        if state.alg.as_ref().is_some_and(|alg| *alg != row.alg) {
            return Some("has another algorithm than the audit log recorded");
        }
        None
    }
}

fn build_snapshot(
    rows: &[CredentialRow],
    owner_kid: Option<&str>,
    audited: &AuditedStates,
    passkey_states: &HashMap<String, String>,
) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let owner_row = owner_kid.and_then(|kid| {
        rows.iter()
            .find(|row| row.kid == kid && row.kind == CredentialKind::Owner.as_str())
    });
    let owner_key = owner_row.and_then(|row| {
        OwnerPublicKey::from_json(&row.public_key)
            .ok()
            .map(VerifyingKey::new)
    });
    let Some(owner_key) = owner_key else {
        for row in rows {
            let found = Tampered {
                credential_id: row.id.clone(),
                problem: "has no owner key to check it against".into(),
            };
            snapshot.tampered.insert(row.kid.clone(), found);
        }
        return snapshot;
    };
    // Rows an approving credential bound (pairing) are checked after the rows the owner key
    // bound, against the approver as checked.
    let delegated = |row: &CredentialRow| {
        row.binding
            .as_deref()
            .and_then(binding_signer)
            .is_some_and(|signer| signer != owner_key.kid)
    };
    let (by_approvers, by_owner): (Vec<&CredentialRow>, Vec<&CredentialRow>) =
        rows.iter().partition(|row| delegated(row));
    // An approved credential cannot approve others in turn: the chain is one link long.
    let approved_kids: std::collections::HashSet<String> =
        by_approvers.iter().map(|row| row.kid.clone()).collect();
    for row in by_owner.into_iter().chain(by_approvers) {
        let issuer = delegated(row)
            .then(|| row.binding.as_deref().and_then(binding_signer))
            .flatten()
            .map(|signer| {
                snapshot
                    .by_kid
                    .get(&signer)
                    .filter(|_| !approved_kids.contains(&signer))
                    .cloned()
            });
        let checked = match (audited.contradiction(row), issuer) {
            (Some(problem), _) => Err(problem.to_owned()),
            (None, Some(None)) => Err("has a binding by a credential that is not live".into()),
            (None, Some(Some(issuer))) => check_delegated_row(row, &issuer),
            (None, None) => check_row(row, &owner_key).and_then(|credential| {
                if credential.kind == CredentialKind::Passkey {
                    let state = passkey_states.get(&row.id).map(String::as_str);
                    check_passkey_state(&credential, state)?;
                }
                Ok(credential)
            }),
        };
        match checked {
            Ok(credential) => {
                let credential = Arc::new(credential);
                if credential.kind == CredentialKind::Owner {
                    snapshot.owner = Some(credential.clone());
                    snapshot.owner_key = Some(Arc::new(owner_key.clone()));
                }
                snapshot
                    .by_kid
                    .insert(credential.kid.clone(), credential.clone());
                snapshot.by_id.insert(credential.id.clone(), credential);
            }
            Err(problem) => {
                let found = Tampered {
                    credential_id: row.id.clone(),
                    problem,
                };
                snapshot.tampered.insert(row.kid.clone(), found);
            }
        }
    }
    snapshot
}
