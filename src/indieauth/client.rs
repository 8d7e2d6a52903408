//! Looking up an IndieAuth client (§4.2): its metadata document or h-app page fetched from its
//! client_id with the guarded fetch of [`crate::outbound`], never for a client_id on a loopback
//! host unless the node itself runs on loopback (for tests), its logo fetched too when it is on
//! the client's own origin and shown as a `data:` URL, successes cached, failures never.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use url::{Host, Url};

use super::client_page::{self, ClientInfo};
use crate::outbound::{self, FetchCache, FetchError, OutboundPolicy};

/// How many clients are remembered.
const CACHE_SIZE: usize = 256;
/// How long a client's metadata is reused, in seconds.
const CACHE_SECONDS: i64 = 600;
/// The largest logo shown, in bytes.
const MAX_LOGO_BYTES: usize = 64 * 1024;
/// How many lookups that miss the cache one client address (an IPv6 client by its /64) may
/// cause a minute.
pub const FETCHES_PER_CLIENT_PER_MINUTE: u32 = 10;
/// How many lookups that miss the cache the node makes a minute in all.
pub const FETCHES_PER_MINUTE: u32 = 60;
/// The most client addresses counted in a minute; past it only the node-wide count applies.
const MAX_TRACKED_CLIENTS: usize = 4096;
/// The logo types shown (never SVG).
const LOGO_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// What the consent page shows about a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientDisplay {
    pub info: ClientInfo,
    /// The logo as a `data:` URL, when it could be fetched from the client's own origin.
    pub logo_data: Option<String>,
    /// Whether the metadata was fetched (a loopback client_id is not, on a public node).
    pub fetched: bool,
}

/// Why a client could not be looked up; messages complete "The client's metadata ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("could not be fetched: the fetch {0}")]
    Fetch(FetchError),
    #[error("{0}")]
    Invalid(String),
    /// Too many lookups that missed the cache this minute, from this client or in all.
    #[error(
        "was not fetched: too many applications were looked up this minute; try again in {retry_after} seconds"
    )]
    Busy { retry_after: i64 },
}

/// The lookups that missed the cache in the current minute.
#[derive(Debug, Default)]
struct FetchBudget {
    minute: i64,
    total: u32,
    by_client: HashMap<String, u32>,
}

/// The key a client address is counted under: an IPv4 address, or an IPv6 address's /64.
fn client_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Fetches and caches clients' metadata.
pub struct ClientFetcher {
    policy: OutboundPolicy,
    cache: FetchCache<ClientDisplay, ClientError>,
    budget: Mutex<FetchBudget>,
}

impl std::fmt::Debug for ClientFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFetcher")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Whether a URL's host is a loopback name or address (§4.2 forbids fetching those).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

impl ClientFetcher {
    /// A fetcher that may reach loopback clients only when `loopback_allowed` (a node that itself
    /// runs on loopback, in tests).
    pub fn new(loopback_allowed: bool) -> Self {
        ClientFetcher {
            policy: OutboundPolicy {
                loopback_allowed,
                ..OutboundPolicy::default()
            },
            cache: FetchCache::with_ttls(CACHE_SIZE, CACHE_SECONDS, 0),
            budget: Mutex::new(FetchBudget::default()),
        }
    }

    /// Counts a lookup that missed the cache, asked for by `requester`, or refuses it.
    fn admit(&self, requester: IpAddr, now: i64) -> Result<(), ClientError> {
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        let minute = now - now.rem_euclid(60);
        if budget.minute != minute {
            *budget = FetchBudget {
                minute,
                ..FetchBudget::default()
            };
        }
        let retry_after = (minute + 60 - now).max(1);
        let key = client_key(requester);
        let from_client = budget.by_client.get(&key).copied().unwrap_or(0);
        if from_client >= FETCHES_PER_CLIENT_PER_MINUTE || budget.total >= FETCHES_PER_MINUTE {
            return Err(ClientError::Busy { retry_after });
        }
        budget.total += 1;
        if budget.by_client.len() < MAX_TRACKED_CLIENTS || budget.by_client.contains_key(&key) {
            *budget.by_client.entry(key).or_insert(0) += 1;
        }
        Ok(())
    }

    /// What the client at `client_id` (already checked as §3.3 says) publishes, from the cache
    /// or fetched for `requester` within the fetch budget (blocking: call it off the async
    /// workers).
    pub fn display(
        &self,
        client_id: &str,
        client_url: &Url,
        requester: IpAddr,
        now: i64,
    ) -> Result<ClientDisplay, ClientError> {
        if is_loopback_host(client_url) && !self.policy.loopback_allowed {
            return Ok(ClientDisplay::default());
        }
        self.cache.get_or_fetch(client_id, now, || {
            self.admit(requester, now)?;
            let fetched = outbound::fetch(
                client_url.as_str(),
                "application/json, text/html;q=0.9",
                &self.policy,
            )
            .map_err(ClientError::Fetch)?;
            let info = client_page::read_client_page(
                client_id,
                &fetched.final_url,
                fetched.content_type.as_deref(),
                &fetched.links,
                &fetched.body,
            )
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
            let logo_data = info
                .logo
                .as_ref()
                .filter(|logo| logo.origin() == client_url.origin())
                .and_then(|logo| self.logo(logo));
            Ok(ClientDisplay {
                info,
                logo_data,
                fetched: true,
            })
        })
    }

    /// The logo at `url` as a `data:` URL, if it is a small raster image.
    fn logo(&self, url: &Url) -> Option<String> {
        let policy = OutboundPolicy {
            max_body: MAX_LOGO_BYTES,
            ..self.policy.clone()
        };
        let fetched = outbound::fetch(url.as_str(), &LOGO_TYPES.join(", "), &policy).ok()?;
        let media_type = fetched
            .content_type?
            .split(';')
            .next()?
            .trim()
            .to_ascii_lowercase();
        if !LOGO_TYPES.contains(&media_type.as_str()) {
            return None;
        }
        Some(format!(
            "data:{media_type};base64,{}",
            STANDARD.encode(&fetched.body)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_by_name_and_address() {
        for url in [
            "http://127.0.0.1:8000/",
            "http://[::1]/",
            "http://localhost:3000/",
            "http://app.localhost/",
        ] {
            assert!(is_loopback_host(&Url::parse(url).expect("valid")), "{url}");
        }
        assert!(!is_loopback_host(
            &Url::parse("https://app.example/").expect("valid")
        ));
    }

    #[test]
    fn lookups_that_miss_the_cache_are_counted_per_client_and_in_all() {
        let fetcher = ClientFetcher::new(false);
        let one = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..FETCHES_PER_CLIENT_PER_MINUTE {
            fetcher.admit(one, 120).expect("within the budget");
        }
        assert_eq!(
            fetcher.admit(one, 150),
            Err(ClientError::Busy { retry_after: 30 })
        );
        // The same /64 counts as one client; the next minute starts afresh.
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        for _ in 0..FETCHES_PER_CLIENT_PER_MINUTE {
            fetcher.admit(v6(1), 150).expect("within the budget");
        }
        assert!(fetcher.admit(v6(2), 150).is_err());
        fetcher.admit(one, 180).expect("a new minute");
        let mut others = (0..=255u8).map(|i| IpAddr::from([198, 51, 100, i]));
        let admitted = others
            .by_ref()
            .take(100)
            .filter(|ip| fetcher.admit(*ip, 181).is_ok())
            .count();
        assert_eq!(admitted as u32, FETCHES_PER_MINUTE - 1);
    }

    #[test]
    fn a_public_node_never_fetches_a_loopback_client() {
        let fetcher = ClientFetcher::new(false);
        let url = Url::parse("http://127.0.0.1:9/").expect("valid");
        let requester = IpAddr::from([127, 0, 0, 1]);
        let display = fetcher
            .display("http://127.0.0.1:9/", &url, requester, 0)
            .expect("not fetched");
        assert!(!display.fetched);
        assert_eq!(display, ClientDisplay::default());
    }
}
