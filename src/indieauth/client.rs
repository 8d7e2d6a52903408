//! Looking up an IndieAuth client (§4.2): its metadata document or h-app page fetched from its
//! client_id with the guarded fetch of [`crate::outbound`], never for a client_id on a loopback
//! host unless the node itself runs on loopback (for tests), its logo fetched too when it is on
//! the client's own origin and shown as a `data:` URL, successes cached, failures never.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use url::{Host, Url};

use super::client_page::{self, ClientInfo};
use crate::limits::MinuteRates;
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
/// How many lookups that miss the cache one network (an IPv4 /24, an IPv6 /48) may cause a
/// minute.
pub const FETCHES_PER_NETWORK_PER_MINUTE: u32 = 30;
/// How many lookups that miss the cache the node makes a minute in all (a signed-in owner's
/// consent is not counted).
pub const FETCHES_PER_MINUTE: u32 = 120;
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

/// Fetches and caches clients' metadata.
pub struct ClientFetcher {
    policy: OutboundPolicy,
    cache: FetchCache<ClientDisplay, ClientError>,
    budget: MinuteRates,
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
            budget: MinuteRates::new(
                FETCHES_PER_CLIENT_PER_MINUTE,
                FETCHES_PER_NETWORK_PER_MINUTE,
                FETCHES_PER_MINUTE,
            ),
        }
    }

    /// What the client at `client_id` (already checked as §3.3 says) publishes, from the cache
    /// or fetched for `requester` within the fetch budget (`None`: a signed-in owner, not
    /// counted) (blocking: call it off the async workers).
    pub fn display(
        &self,
        client_id: &str,
        client_url: &Url,
        requester: Option<IpAddr>,
        now: i64,
    ) -> Result<ClientDisplay, ClientError> {
        if is_loopback_host(client_url) && !self.policy.loopback_allowed {
            return Ok(ClientDisplay::default());
        }
        self.cache.get_or_fetch(client_id, now, || {
            if let Some(requester) = requester {
                self.budget
                    .admit(requester, now)
                    .map_err(|limited| ClientError::Busy {
                        retry_after: limited.retry_after,
                    })?;
            }
            let fetched = outbound::fetch(
                client_url.as_str(),
                "application/json, text/html;q=0.9",
                &self.policy,
            )
            .map_err(ClientError::Fetch)?;
            // A redirect may not hand the client's identity to another site: the document
            // must come from the client_id's own origin.
            if fetched.final_url.origin() != client_url.origin() {
                return Err(ClientError::Invalid(
                    "was served from another origin after a redirect".into(),
                ));
            }
            let mut info = client_page::read_client_page(
                client_id,
                &fetched.final_url,
                fetched.content_type.as_deref(),
                &fetched.links,
                &fetched.body,
            )
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
            // An h-app's home page is shown only when it is the client's own.
            info.url = info.url.filter(|url| url.origin() == client_url.origin());
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
    fn a_public_node_never_fetches_a_loopback_client() {
        let fetcher = ClientFetcher::new(false);
        let url = Url::parse("http://127.0.0.1:9/").expect("valid");
        let requester = Some(IpAddr::from([127, 0, 0, 1]));
        let display = fetcher
            .display("http://127.0.0.1:9/", &url, requester, 0)
            .expect("not fetched");
        assert!(!display.fetched);
        assert_eq!(display, ClientDisplay::default());
    }
}
