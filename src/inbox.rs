//! The inbox: receiving messages from anyone (strictly shaped JWEs to the owner's encryption
//! key, which the node cannot open) within per-client, per-network and node-wide rates and a
//! storage cap; deleting them; and fetching senders' JWKS for the owner's pages.

use std::net::IpAddr;

use rand::RngCore;
use serde_json::value::RawValue;

use crate::audit::{self, Actor, AuditEvent};
use crate::auth::encryption_keys::EncryptionKeys;
use crate::config::InboxSettings;
use crate::jose::b64;
use crate::jose::message::{self, MessageError};
use crate::limits::{MinuteRates, RateLimited};
use crate::outbound::{self, FetchCache, OutboundPolicy};
use crate::store::inbox::{self as rows, MessageRow};
use crate::store::{Store, StoreError};

/// The most messages one page lists.
pub const MAX_PAGE: u32 = 100;
/// The number of random bytes in a message id.
const ID_BYTES: usize = 16;

/// Why a message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// Over a rate: `scope` is `client`, `network` or `node`; retry after this many seconds.
    #[error("too many messages")]
    RateLimited {
        scope: &'static str,
        retry_after: i64,
    },
    /// The node has no encryption key yet.
    #[error("the owner has no encryption key yet")]
    NoKey,
    #[error("the message {0}")]
    Refused(MessageError),
    /// Storing it would pass the configured total.
    #[error("the inbox is full")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many clients' worth of messages one network may send in a window: a network of many
/// addresses (an IPv6 /48 holds 65,536 /64s) cannot take the whole node-wide rate alone.
pub const NETWORK_CLIENTS: u32 = 4;

/// The inbox's limits and rate counters.
#[derive(Debug)]
pub struct Inbox {
    settings: InboxSettings,
    rates: MinuteRates,
}

impl Inbox {
    pub fn new(settings: InboxSettings) -> Self {
        Inbox {
            settings,
            rates: MinuteRates::new(
                settings.per_client_per_minute,
                settings
                    .per_client_per_minute
                    .saturating_mul(NETWORK_CLIENTS),
                settings.per_minute,
            ),
        }
    }

    /// Counts one message from `client` at `now`, or says which rate it is over. Past
    /// [`crate::limits::MAX_TRACKED_CLIENTS`] clients a minute only the node-wide rate, which
    /// counts well-formed messages alone, applies: many addresses sending junk cannot shut
    /// others out.
    fn admit(&self, client: IpAddr, now: i64) -> Result<(), ReceiveError> {
        self.rates
            .admit(client, now)
            .map_err(
                |RateLimited { scope, retry_after }| ReceiveError::RateLimited {
                    scope,
                    retry_after,
                },
            )
    }

    /// Gives back the node-wide count of a message refused for its shape (its client and
    /// network keep theirs): malformed messages from a few addresses must not shut everyone
    /// else out.
    fn refund_node(&self, now: i64) {
        self.rates.refund_node(now);
    }

    /// Checks and stores a message from `client`; returns its id.
    pub async fn receive(
        &self,
        store: &Store,
        keys: &EncryptionKeys,
        message: &RawValue,
        client: IpAddr,
        now: i64,
    ) -> Result<String, ReceiveError> {
        self.admit(client, now)?;
        if keys.current().is_none() {
            return Err(ReceiveError::NoKey);
        }
        let checked = match message::check_message(message, |kid| keys.receives(kid, now)) {
            Ok(checked) => checked,
            Err(error) => {
                self.refund_node(now);
                return Err(ReceiveError::Refused(error));
            }
        };
        let mut id_bytes = [0u8; ID_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut id_bytes);
        let row = MessageRow {
            id: b64::encode(&id_bytes),
            kid: checked.kid,
            size: i64::try_from(checked.stored.len()).unwrap_or(i64::MAX),
            jwe: checked.stored,
            received_at: now,
            read_at: None,
        };
        let max_total = i64::try_from(self.settings.max_bytes).unwrap_or(i64::MAX);
        let id = row.id.clone();
        let stored = store
            .run(move |c| {
                // Immediate: the sum and the insert see the same inbox, whoever else writes.
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let stored = rows::insert_within(&tx, &row, max_total)?;
                tx.commit()?;
                Ok::<_, StoreError>(stored)
            })
            .await?;
        if !stored {
            return Err(ReceiveError::Full);
        }
        Ok(id)
    }
}

/// The link relation of a site's inbox, sent as a `Link` header with its JWKS (Linked Data
/// Notifications, W3C Recommendation 2017).
pub const INBOX_REL: &str = "http://www.w3.org/ns/ldp#inbox";
/// The most keys taken from a sender's JWKS.
pub const MAX_SENDER_KEYS: usize = 20;
/// The most senders whose keys are cached.
const SENDER_CACHE_SIZE: usize = 256;

/// A sender site's published keys, as its JWKS lists them, and its inbox when it names one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SenderKeys {
    /// The sender's origin, as the message's `iss` must name it.
    pub iss: String,
    /// The public keys, each a JWK object as published (private members refused).
    pub keys: Vec<serde_json::Value>,
    /// The sender's inbox, from the JWKS answer's `Link` header.
    pub inbox: Option<String>,
}

/// Why a sender's keys could not be had. Messages complete "the sender's keys ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderKeysError {
    /// `iss` is not a site URL the node fetches from.
    #[error("cannot be fetched for this iss: {0}")]
    BadIss(String),
    /// The fetch or the document failed.
    #[error("could not be fetched: {0}")]
    Unavailable(String),
}

/// The origin a sender's `iss` names: an http(s) URL with no path beyond `/`, no query, no
/// fragment and no credentials.
pub fn sender_origin(iss: &str) -> Result<url::Url, SenderKeysError> {
    let bad = |why: &str| SenderKeysError::BadIss(why.to_owned());
    let url = url::Url::parse(iss).map_err(|_| bad("it is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("it is neither http nor https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it carries credentials"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "a site is named by its origin, with no path, query or fragment",
        ));
    }
    Ok(url)
}

/// Reads a JWKS document: an object whose `keys` is an array of public JWK objects.
fn read_jwks(body: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    #[derive(serde::Deserialize)]
    struct Jwks {
        keys: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let jwks: Jwks = serde_json::from_slice(body)
        .map_err(|e| format!("its JWKS is not a JSON object with a keys array: {e}"))?;
    if jwks.keys.len() > MAX_SENDER_KEYS {
        return Err(format!("its JWKS lists more than {MAX_SENDER_KEYS} keys"));
    }
    const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    if jwks
        .keys
        .iter()
        .any(|key| PRIVATE.iter().any(|member| key.contains_key(*member)))
    {
        return Err("its JWKS publishes private or symmetric key material".into());
    }
    Ok(jwks
        .keys
        .into_iter()
        .map(serde_json::Value::Object)
        .collect())
}

/// Fetches and caches senders' keys from their `/.well-known/jwks.json`.
pub struct SenderKeyFetcher {
    policy: OutboundPolicy,
    cache: FetchCache<SenderKeys, SenderKeysError>,
}

impl std::fmt::Debug for SenderKeyFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyFetcher")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SenderKeyFetcher {
    /// A fetcher that may reach loopback addresses only when `loopback_allowed` (a node that
    /// itself runs on loopback, in tests).
    pub fn new(loopback_allowed: bool) -> Self {
        SenderKeyFetcher {
            policy: OutboundPolicy {
                loopback_allowed,
                ..OutboundPolicy::default()
            },
            cache: FetchCache::new(SENDER_CACHE_SIZE),
        }
    }

    /// The keys of the site `iss` names, from the cache or fetched (blocking: call it off the
    /// async workers). Only over https (anyone on the path could swap keys fetched over plain
    /// http), except for a node on loopback, in tests.
    pub fn keys(&self, iss: &str, now: i64) -> Result<SenderKeys, SenderKeysError> {
        let origin = sender_origin(iss)?;
        if origin.scheme() != "https" && !self.policy.loopback_allowed {
            return Err(SenderKeysError::BadIss(
                "a sender's keys are fetched over https only".into(),
            ));
        }
        let origin_text = origin.as_str().trim_end_matches('/').to_owned();
        self.cache.get_or_fetch(&origin_text, now, || {
            let jwks_url = origin
                .join("/.well-known/jwks.json")
                .map_err(|e| SenderKeysError::BadIss(e.to_string()))?;
            let fetched = outbound::fetch(
                jwks_url.as_str(),
                "application/jwk-set+json, application/json",
                &self.policy,
            )
            .map_err(|e| {
                if e.is_caller_fault() {
                    SenderKeysError::BadIss(e.to_string())
                } else {
                    SenderKeysError::Unavailable(e.to_string())
                }
            })?;
            let mut keys = read_jwks(&fetched.body).map_err(SenderKeysError::Unavailable)?;
            // A siteid node lists its own node key beside the owner key; it speaks for the node,
            // never for the owner, so a message it signed must not read as the owner's. The
            // site's node-key.json names it (a site without one keeps every key).
            if let Some(node_kid) = origin
                .join("/.well-known/siteid/node-key.json")
                .ok()
                .and_then(|url| {
                    outbound::fetch(url.as_str(), "application/json", &self.policy).ok()
                })
                .and_then(|fetched| serde_json::from_slice::<serde_json::Value>(&fetched.body).ok())
                .and_then(|document| document.get("kid")?.as_str().map(str::to_owned))
            {
                keys.retain(|key| key.get("kid").and_then(|kid| kid.as_str()) != Some(&node_kid));
            }
            let inbox = outbound::parse_link_header(&fetched.links, INBOX_REL, &fetched.final_url)
                .filter(|url| {
                    url.scheme() == "https"
                        || (url.scheme() == "http" && self.policy.loopback_allowed)
                })
                .map(String::from);
            Ok(SenderKeys {
                iss: origin_text.clone(),
                keys,
                inbox,
            })
        })
    }
}

/// Deletes a message, audited as `inbox.message_deleted`; returns whether there was one.
pub async fn delete(store: &Store, id: &str, actor: Actor, now: i64) -> Result<bool, StoreError> {
    let id = id.to_owned();
    store
        .run(move |c| {
            let tx = c.transaction()?;
            if !rows::delete(&tx, &id)? {
                return Ok(false);
            }
            audit::append(&tx, now, &AuditEvent::InboxMessageDeleted { id }, &actor)?;
            tx.commit()?;
            Ok(true)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox(per_client: u32, total: u32) -> Inbox {
        Inbox::new(InboxSettings {
            max_bytes: 1024,
            per_client_per_minute: per_client,
            per_minute: total,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_over_its_rate_waits_for_the_next_window() {
        let inbox = inbox(2, 100);
        let now = 1_800_000_010;
        assert!(inbox.admit(ip("127.0.0.1"), now).is_ok());
        assert!(inbox.admit(ip("127.0.0.1"), now).is_ok());
        match inbox.admit(ip("127.0.0.1"), now) {
            Err(ReceiveError::RateLimited { scope, retry_after }) => {
                assert_eq!(scope, "client");
                assert_eq!(retry_after, 50);
            }
            other => panic!("expected a client limit, got {other:?}"),
        }
        assert!(inbox.admit(ip("127.0.0.2"), now).is_ok());
        assert!(inbox.admit(ip("127.0.0.1"), now + 50).is_ok());
    }

    #[test]
    fn the_node_wide_rate_holds_across_clients() {
        let inbox = inbox(10, 3);
        let now = 1_800_000_000;
        for last in 1..=3 {
            assert!(inbox.admit(ip(&format!("127.0.0.{last}")), now).is_ok());
        }
        assert!(matches!(
            inbox.admit(ip("127.0.0.9"), now),
            Err(ReceiveError::RateLimited { scope: "node", .. })
        ));
    }

    #[test]
    fn a_network_cannot_take_the_node_wide_rate_alone() {
        let inbox = inbox(1, 100);
        let now = 1_800_000_000;
        for host in 1..=NETWORK_CLIENTS {
            assert!(
                inbox
                    .admit(ip(&format!("2001:db8:1:{host}::1")), now)
                    .is_ok()
            );
        }
        assert!(matches!(
            inbox.admit(ip("2001:db8:1:99::1"), now),
            Err(ReceiveError::RateLimited {
                scope: "network",
                ..
            })
        ));
        assert!(inbox.admit(ip("2001:db8:2::1"), now).is_ok());
    }

    #[test]
    fn a_refused_message_gives_back_its_node_wide_count() {
        let inbox = inbox(10, 1);
        let now = 1_800_000_000;
        assert!(inbox.admit(ip("127.0.0.1"), now).is_ok());
        inbox.refund_node(now);
        assert!(inbox.admit(ip("127.0.0.2"), now).is_ok());
        assert!(matches!(
            inbox.admit(ip("127.0.0.3"), now),
            Err(ReceiveError::RateLimited { scope: "node", .. })
        ));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let inbox = inbox(1, 100);
        let now = 1_800_000_000;
        assert!(inbox.admit(ip("2001:db8:1:2::1"), now).is_ok());
        assert!(matches!(
            inbox.admit(ip("2001:db8:1:2::ffff"), now),
            Err(ReceiveError::RateLimited {
                scope: "client",
                ..
            })
        ));
        assert!(inbox.admit(ip("2001:db8:1:3::1"), now).is_ok());
    }
}
