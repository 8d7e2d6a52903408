//! The state every request handler and WebSocket shares (one per node, nothing global), the
//! client of a request, and the contexts domain operations take from that state.

pub mod client;

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::attempts::AttemptLedger;
use crate::auth::challenge::Challenges;
use crate::auth::credentials::CredentialRegistry;
use crate::auth::login::LoginContext;
use crate::auth::sessions::Sessions;
use crate::auth::totp::TotpVault;
use crate::auth::unlock::{RewrapContext, UnlockContext};
use crate::auth::unlock_codes::LiveCodes;
use crate::clock::Clock;
use crate::config::PublicUrl;
use crate::limits::OpenSockets;
use crate::store::Store;
use crate::well_known_dir::WellKnownDir;

/// Everything a handler may use. One per node; nothing here is global.
pub struct AppState {
    pub store: Store,
    pub public_url: PublicUrl,
    pub clock: Arc<dyn Clock>,
    pub trusted_proxies: Vec<IpAddr>,
    pub attempts: AttemptLedger,
    /// The live one-time unlock codes, by hash.
    pub live_codes: LiveCodes,
    /// The node's own key, with which it proves itself to clients (`node.key`); replaced while
    /// the node runs when `siteid node-key rotate` installs another.
    pub node_key: crate::jose::node_key::CurrentNodeKey,
    /// The owner key's binding of the node key, for the current owner key.
    pub node_binding: crate::auth::node_key::NodeKeyBinding,
    /// How many node proofs each client, network and the node may ask for a minute (each is a
    /// P-384 signature anyone can ask for).
    pub node_proofs: crate::limits::MinuteRates,
    /// The sealing key that keeps the TOTP secret out of the database.
    pub totp: TotpVault,
    pub well_known_dir: WellKnownDir,
    pub credentials: CredentialRegistry,
    pub challenges: Challenges,
    pub sessions: Arc<Sessions>,
    pub websockets: OpenSockets,
    /// The owner's profile (the home page's h-card, IndieAuth's `profile`).
    pub profile: crate::indieauth::profile::ProfileCell,
    /// IndieAuth clients' metadata, fetched for the consent page.
    pub indieauth_clients: crate::indieauth::client::ClientFetcher,
    /// The WebAuthn relying party and the passkey ceremonies in progress.
    pub passkeys: crate::auth::passkeys::Passkeys,
    /// Pairing: the configured enrollment mode and the request rates.
    pub enrollment: crate::auth::enrollment::Enrollment,
    /// The inbox's limits and rate counters.
    pub inbox: crate::inbox::Inbox,
    /// Senders' keys fetched for the owner's pages.
    pub sender_keys: crate::inbox::SenderKeyFetcher,
}

impl AppState {
    /// What checking a login assertion needs.
    pub fn login_context(&self) -> LoginContext<'_> {
        LoginContext {
            store: &self.store,
            attempts: &self.attempts,
            credentials: &self.credentials,
            challenges: &self.challenges,
            audience: self.public_url.as_str(),
            passkeys: &self.passkeys,
        }
    }

    /// What an unlock needs.
    pub fn unlock_context(&self) -> UnlockContext<'_> {
        UnlockContext {
            store: &self.store,
            attempts: &self.attempts,
            live_codes: &self.live_codes,
            totp: &self.totp,
        }
    }

    /// What checking a password change needs.
    pub fn rewrap_context(&self) -> RewrapContext<'_> {
        RewrapContext {
            store: &self.store,
            attempts: &self.attempts,
            credentials: &self.credentials,
            challenges: &self.challenges,
            audience: self.public_url.as_str(),
        }
    }
}
