//! Outbound HTTP fetches made for someone else's input (a sender site's JWKS, an IndieAuth
//! client's metadata): http(s) only, every address checked with [`outbound_refusal`] and the
//! connection pinned to the checked addresses, redirects followed by hand and checked again, one
//! time limit for the whole fetch, a capped body; RFC 8288 `Link` headers; and a small cache of
//! fetch outcomes.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION};
use ureq::http::{Response, Uri};
use ureq::tls::TlsConfig;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Body};
use url::{Host, Url};

use crate::net::outbound_refusal;

/// The `User-Agent` of every outbound fetch.
const USER_AGENT: &str = concat!("siteid/", env!("CARGO_PKG_VERSION"));
/// The longest URL fetched (the asked one and every redirect), in bytes.
const MAX_URL_LEN: usize = 2048;
/// The longest time limit honoured, so that adding it to "now" cannot overflow.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long a successful fetch is reused by a [`FetchCache`], in seconds.
pub const SUCCESS_TTL: i64 = 600;
/// How long a failed fetch is reused by a [`FetchCache`], in seconds.
pub const FAILURE_TTL: i64 = 60;

/// The limits of one outbound fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Whether loopback addresses may be reached (a node that itself runs on loopback, in tests).
    pub loopback_allowed: bool,
    /// The time the whole fetch may take, name resolution and redirects included.
    pub timeout: Duration,
    /// The largest body accepted, in bytes.
    pub max_body: usize,
    /// The most redirects followed.
    pub max_redirects: u8,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        OutboundPolicy {
            loopback_allowed: false,
            timeout: Duration::from_secs(5),
            max_body: 512 * 1024,
            max_redirects: 3,
        }
    }
}

/// A document fetched with status 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URL the document came from, after redirects, without a fragment.
    pub final_url: Url,
    /// The `Content-Type` header, if there was one in UTF-8.
    pub content_type: Option<String>,
    /// Every `Link` header value, as sent.
    pub links: Vec<String>,
    pub body: Vec<u8>,
}

/// Why a fetch failed. Messages complete "the fetch ..." and never repeat a response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL asked for is not one the node fetches.
    #[error("refuses the URL: it {0}")]
    BadUrl(&'static str),
    /// A redirect pointed to a URL the node does not fetch.
    #[error("was redirected to a URL it refuses: it {0}")]
    BadRedirect(&'static str),
    /// An address of the host is not public unicast (checked before any connection).
    #[error("may not reach {address}{}: {reason}", redirect_note(.redirected))]
    Refused {
        address: IpAddr,
        reason: &'static str,
        /// Whether a redirect led there rather than the URL asked for.
        redirected: bool,
    },
    #[error("could not resolve {0}")]
    Resolve(String),
    #[error("took longer than {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("was redirected more than {0} times")]
    TooManyRedirects(u8),
    #[error("was redirected from https to plain http")]
    Downgrade,
    #[error("got HTTP status {0}, not 200")]
    Status(u16),
    #[error("got a body over {0} bytes")]
    TooLarge(usize),
    #[error("failed: {0}")]
    Transport(String),
}

/// The words a refusal adds when a redirect led to the address.
fn redirect_note(redirected: &bool) -> &'static str {
    if *redirected {
        " (where it was redirected)"
    } else {
        ""
    }
}

impl FetchError {
    /// Whether the caller asked for a URL the node will not fetch (an HTTP answer would be 422),
    /// as opposed to the far side failing or misbehaving (502).
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            FetchError::BadUrl(_)
                | FetchError::Refused {
                    redirected: false,
                    ..
                }
        )
    }
}

/// GETs `url` with `Accept: accept` under `policy`, blocking: no cookies, no credentials, no
/// proxy, every hop's addresses checked before connecting to exactly those, redirects followed
/// by hand (never from https to http), only status 200 accepted, the body capped.
pub fn fetch(url: &str, accept: &str, policy: &OutboundPolicy) -> Result<Fetched, FetchError> {
    let deadline = Deadline::after(policy.timeout);
    if url.len() > MAX_URL_LEN {
        return Err(FetchError::BadUrl("is longer than 2048 bytes"));
    }
    let parsed = Url::parse(url).map_err(|_| FetchError::BadUrl("is not an absolute URL"))?;
    let mut current = fetchable(parsed).map_err(FetchError::BadUrl)?;
    let mut redirects: u8 = 0;
    loop {
        let addresses = checked_addresses(&current, policy, &deadline, redirects > 0)?;
        let mut response = get(&current, addresses, accept, &deadline)?;
        let status = response.status().as_u16();
        let location = response.headers().get(LOCATION);
        match location {
            Some(location) if matches!(status, 301 | 302 | 303 | 307 | 308) => {
                if redirects >= policy.max_redirects {
                    return Err(FetchError::TooManyRedirects(policy.max_redirects));
                }
                current = redirect_target(&current, location.as_bytes())?;
                redirects += 1;
            }
            _ if status != 200 => return Err(FetchError::Status(status)),
            _ => return read_document(current, &mut response, policy, &deadline),
        }
    }
}

/// The end of a fetch's time.
struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    fn after(budget: Duration) -> Self {
        let budget = budget.min(LONGEST_TIMEOUT);
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// The time left, or the timeout error when none is.
    fn remaining(&self) -> Result<Duration, FetchError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(self.expired())
        } else {
            Ok(left)
        }
    }

    fn expired(&self) -> FetchError {
        FetchError::Timeout(self.budget)
    }
}

/// `url` if the node may fetch it (http or https, a host, no user name or password, short, a
/// valid request URI), without its fragment; otherwise why not.
fn fetchable(mut url: Url) -> Result<Url, &'static str> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is neither http nor https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("carries a user name or password");
    }
    if url.host().is_none() || url.port_or_known_default().is_none() {
        return Err("has no host");
    }
    url.set_fragment(None);
    if url.as_str().len() > MAX_URL_LEN {
        return Err("is longer than 2048 bytes");
    }
    if url.as_str().parse::<Uri>().is_err() {
        return Err("cannot be sent in an HTTP request");
    }
    Ok(url)
}

/// Where a redirect from `current` with this `Location` leads, checked as the URL asked for was,
/// and never from https down to plain http.
fn redirect_target(current: &Url, location: &[u8]) -> Result<Url, FetchError> {
    let location = std::str::from_utf8(location)
        .map_err(|_| FetchError::BadRedirect("is not a URL"))?
        .trim();
    if location.len() > MAX_URL_LEN {
        return Err(FetchError::BadRedirect("is longer than 2048 bytes"));
    }
    let next = current
        .join(location)
        .map_err(|_| FetchError::BadRedirect("is not a URL"))?;
    let next = fetchable(next).map_err(FetchError::BadRedirect)?;
    if current.scheme() == "https" && next.scheme() == "http" {
        return Err(FetchError::Downgrade);
    }
    Ok(next)
}

/// The addresses of `url`'s host, every one of them allowed by the policy: an IP literal as it
/// is, a name resolved within the deadline. One refused address refuses them all.
fn checked_addresses(
    url: &Url,
    policy: &OutboundPolicy,
    deadline: &Deadline,
    redirected: bool,
) -> Result<Vec<SocketAddr>, FetchError> {
    let port = url
        .port_or_known_default()
        .ok_or(FetchError::BadUrl("has no host"))?;
    let addresses = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(name)) => resolve(name, port, deadline)?,
        None => return Err(FetchError::BadUrl("has no host")),
    };
    check_addresses(&addresses, policy.loopback_allowed, redirected)?;
    Ok(addresses)
}

/// Refuses the whole list when any address in it may not be reached.
fn check_addresses(
    addresses: &[SocketAddr],
    loopback_allowed: bool,
    redirected: bool,
) -> Result<(), FetchError> {
    for address in addresses {
        if let Some(reason) = outbound_refusal(address.ip(), loopback_allowed) {
            return Err(FetchError::Refused {
                address: address.ip(),
                reason,
                redirected,
            });
        }
    }
    Ok(())
}

/// Resolves a host name on a helper thread, waiting no longer than the deadline. The thread
/// finishes on its own when the system resolver gives up.
fn resolve(name: &str, port: u16, deadline: &Deadline) -> Result<Vec<SocketAddr>, FetchError> {
    let wait = deadline.remaining()?;
    let (sender, receiver) = mpsc::sync_channel(1);
    let target = (name.to_owned(), port);
    std::thread::Builder::new()
        .name("outbound-resolve".into())
        .spawn(move || {
            let found = target
                .to_socket_addrs()
                .map(|addresses| addresses.collect::<Vec<_>>());
            sender.send(found).ok();
        })
        .map_err(|e| FetchError::Transport(format!("could not start resolving: {e}")))?;
    match receiver.recv_timeout(wait) {
        Ok(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
        Ok(_) | Err(RecvTimeoutError::Disconnected) => Err(FetchError::Resolve(name.to_owned())),
        Err(RecvTimeoutError::Timeout) => Err(deadline.expired()),
    }
}

/// A ureq resolver that answers with addresses checked beforehand, and only for their host, so
/// the connection goes where the check said and the name is never looked up again.
#[derive(Debug)]
struct PinnedResolver {
    host: String,
    port: u16,
    addresses: Vec<SocketAddr>,
}

/// A host as written in a URL, without the brackets around an IPv6 literal.
fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

impl Resolver for PinnedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let default_port = match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        };
        let same_host = uri
            .host()
            .is_some_and(|host| bare_host(host).eq_ignore_ascii_case(bare_host(&self.host)));
        let same_port = uri.port_u16().or(default_port) == Some(self.port);
        if !same_host || !same_port {
            return Err(ureq::Error::HostNotFound);
        }
        let mut pinned = self.empty();
        for address in &self.addresses {
            if pinned.try_push(*address).is_err() {
                break;
            }
        }
        Ok(pinned)
    }
}

/// rustls on aws-lc-rs with the webpki roots, built once.
fn tls_config() -> TlsConfig {
    static TLS: OnceLock<TlsConfig> = OnceLock::new();
    TLS.get_or_init(|| {
        TlsConfig::builder()
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build()
    })
    .clone()
}

/// One GET of `url` to the checked `addresses`, on an agent of its own (no pool, no cookie jar
/// shared with anything), with redirects and proxies off.
fn get(
    url: &Url,
    addresses: Vec<SocketAddr>,
    accept: &str,
    deadline: &Deadline,
) -> Result<Response<Body>, FetchError> {
    let time_left = deadline.remaining()?;
    let config = Config::builder()
        .tls_config(tls_config())
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(USER_AGENT)
        .accept(accept)
        .accept_encoding("")
        .timeout_global(Some(time_left))
        .build();
    let resolver = PinnedResolver {
        host: url.host_str().unwrap_or_default().to_owned(),
        port: url.port_or_known_default().unwrap_or_default(),
        addresses,
    };
    let agent = Agent::with_parts(config, DefaultConnector::default(), resolver);
    agent
        .get(url.as_str())
        .call()
        .map_err(|e| transport_error(e, deadline))
}

/// Reads a 200 answer's headers and at most `max_body` bytes of its body.
fn read_document(
    final_url: Url,
    response: &mut Response<Body>,
    policy: &OutboundPolicy,
    deadline: &Deadline,
) -> Result<Fetched, FetchError> {
    let cap = u64::try_from(policy.max_body).unwrap_or(u64::MAX);
    let headers = response.headers();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > cap) {
        return Err(FetchError::TooLarge(policy.max_body));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let links = headers
        .get_all(LINK)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(cap.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| transport_error(ureq::Error::from(e), deadline))?;
    if body.len() > policy.max_body {
        return Err(FetchError::TooLarge(policy.max_body));
    }
    Ok(Fetched {
        final_url,
        content_type,
        links,
        body,
    })
}

/// A ureq failure as a fetch error: running out of time is a timeout, the rest is transport.
fn transport_error(error: ureq::Error, deadline: &Deadline) -> FetchError {
    match error {
        ureq::Error::Timeout(_) => deadline.expired(),
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            deadline.expired()
        }
        other => FetchError::Transport(other.to_string()),
    }
}

/// The first link in `values` (each a `Link` header value, RFC 8288) whose first `rel`
/// parameter lists `rel` (compared without case), resolved against `base`. Links with an
/// `anchor` are about another resource and are skipped; malformed links are skipped.
pub fn parse_link_header(values: &[String], rel: &str, base: &Url) -> Option<Url> {
    link_targets(values, rel).find_map(|target| base.join(target).ok())
}

/// The targets, as written, of every link in `values` (each a `Link` header value, RFC 8288)
/// whose first `rel` parameter lists `rel` (compared without case), in order. Links with an
/// `anchor` are about another resource and are skipped; malformed links are skipped.
pub fn link_targets<'a>(values: &'a [String], rel: &'a str) -> impl Iterator<Item = &'a str> {
    values
        .iter()
        .flat_map(|value| link_values(value))
        .filter(|link| !link.has_anchor)
        .filter(move |link| {
            link.rel.as_deref().is_some_and(|rels| {
                rels.split_ascii_whitespace()
                    .any(|candidate| candidate.eq_ignore_ascii_case(rel))
            })
        })
        .map(|link| link.target)
}

/// One link of a `Link` header: its target as written and the parameters that matter here.
struct LinkValue<'a> {
    target: &'a str,
    rel: Option<String>,
    has_anchor: bool,
}

/// The well-formed links of one `Link` header value, in order. Every step moves forward, so
/// junk ends the scan at the end of the text at worst.
fn link_values(header: &str) -> Vec<LinkValue<'_>> {
    let bytes = header.as_bytes();
    let mut links = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b',' || bytes[at].is_ascii_whitespace() {
            at += 1;
            continue;
        }
        if bytes[at] != b'<' {
            at = past_this_link(bytes, at);
            continue;
        }
        let Some(close) = header[at + 1..].find('>') else {
            break;
        };
        let mut link = LinkValue {
            target: header[at + 1..at + 1 + close].trim(),
            rel: None,
            has_anchor: false,
        };
        at += close + 2;
        let mut well_formed = true;
        loop {
            at = past_whitespace(bytes, at);
            match bytes.get(at) {
                None | Some(b',') => break,
                Some(b';') => {
                    let (name, value, next) = link_param(header, at + 1);
                    at = next;
                    if name.eq_ignore_ascii_case("rel") && link.rel.is_none() {
                        link.rel = Some(value.unwrap_or_default());
                    } else if name.eq_ignore_ascii_case("anchor") {
                        link.has_anchor = true;
                    }
                }
                Some(_) => {
                    well_formed = false;
                    at = past_this_link(bytes, at);
                    break;
                }
            }
        }
        if well_formed {
            links.push(link);
        }
    }
    links
}

/// The position of the first byte at or after `at` that is not whitespace.
fn past_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The position just past the next comma outside a quoted string, or the end.
fn past_this_link(bytes: &[u8], mut at: usize) -> usize {
    let mut quoted = false;
    while let Some(&byte) = bytes.get(at) {
        at += 1;
        match byte {
            b'\\' if quoted => at += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => return at,
            _ => {}
        }
    }
    bytes.len()
}

/// One `name[=value]` parameter starting at `at`: its name, its value (a quoted string
/// unescaped, or a bare word), and the position after it. Bare names and values end at `;`,
/// `,`, `=` (names only) or whitespace, a little more leniently than RFC 8288's tokens.
fn link_param(header: &str, at: usize) -> (&str, Option<String>, usize) {
    let bytes = header.as_bytes();
    let start = past_whitespace(bytes, at);
    let mut at = start;
    while bytes
        .get(at)
        .is_some_and(|b| !matches!(b, b'=' | b';' | b',') && !b.is_ascii_whitespace())
    {
        at += 1;
    }
    let name = &header[start..at];
    at = past_whitespace(bytes, at);
    if bytes.get(at) != Some(&b'=') {
        return (name, None, at);
    }
    at = past_whitespace(bytes, at + 1);
    if bytes.get(at) == Some(&b'"') {
        at += 1;
        let mut value = Vec::new();
        while let Some(&byte) = bytes.get(at) {
            at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    if let Some(&escaped) = bytes.get(at) {
                        value.push(escaped);
                        at += 1;
                    }
                }
                _ => value.push(byte),
            }
        }
        return (name, Some(String::from_utf8_lossy(&value).into_owned()), at);
    }
    let value_start = at;
    while bytes
        .get(at)
        .is_some_and(|b| !matches!(b, b';' | b',') && !b.is_ascii_whitespace())
    {
        at += 1;
    }
    (name, Some(header[value_start..at].to_owned()), at)
}

/// Fetch outcomes kept in memory by URL: a success for [`SUCCESS_TTL`] seconds, a failure for
/// [`FAILURE_TTL`] (or other lengths), at most `capacity` of them (the oldest stored goes first).
/// Time is passed in (seconds, as [`crate::clock::Clock::now`] gives it).
pub struct FetchCache<T, E = FetchError> {
    state: Mutex<CacheState<T, E>>,
    capacity: usize,
    success_ttl: i64,
    failure_ttl: i64,
}

struct CacheState<T, E> {
    entries: HashMap<String, CachedOutcome<T, E>>,
    next_sequence: u64,
}

struct CachedOutcome<T, E> {
    /// The order of storing, for evicting the oldest.
    sequence: u64,
    expires_at: i64,
    outcome: Result<T, E>,
}

impl<T: Clone, E: Clone> FetchCache<T, E> {
    /// A cache of at most `capacity` outcomes with the default lifetimes.
    pub fn new(capacity: usize) -> Self {
        Self::with_ttls(capacity, SUCCESS_TTL, FAILURE_TTL)
    }

    /// A cache of at most `capacity` outcomes, successes kept `success_ttl` seconds and
    /// failures `failure_ttl` seconds.
    pub fn with_ttls(capacity: usize, success_ttl: i64, failure_ttl: i64) -> Self {
        FetchCache {
            state: Mutex::new(CacheState {
                entries: HashMap::new(),
                next_sequence: 0,
            }),
            capacity,
            success_ttl,
            failure_ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState<T, E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The outcome stored for `url`, unless there is none or it has expired at `now`.
    pub fn get(&self, url: &str, now: i64) -> Option<Result<T, E>> {
        let mut state = self.lock();
        let fresh = state.entries.get(url).map(|entry| now < entry.expires_at)?;
        if fresh {
            state.entries.get(url).map(|entry| entry.outcome.clone())
        } else {
            state.entries.remove(url);
            None
        }
    }

    /// Stores the outcome of fetching `url` at `now`, replacing an earlier one. When full, the
    /// expired outcomes go first, then the oldest stored.
    pub fn put(&self, url: &str, outcome: Result<T, E>, now: i64) {
        let ttl = if outcome.is_ok() {
            self.success_ttl
        } else {
            self.failure_ttl
        };
        // An outcome kept for no time is not stored, so that it cannot push others out.
        if self.capacity == 0 || ttl <= 0 {
            return;
        }
        let mut state = self.lock();
        if !state.entries.contains_key(url) && state.entries.len() >= self.capacity {
            state.entries.retain(|_, entry| now < entry.expires_at);
            while state.entries.len() >= self.capacity {
                let oldest = state
                    .entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.sequence)
                    .map(|(key, _)| key.clone());
                match oldest {
                    Some(key) => state.entries.remove(&key),
                    None => break,
                };
            }
        }
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        state.entries.insert(
            url.to_owned(),
            CachedOutcome {
                sequence,
                expires_at: now.saturating_add(ttl),
                outcome,
            },
        );
    }

    /// The stored outcome for `url`, or else the outcome of `fetch` (run without the lock held),
    /// stored. Two callers missing at once may both fetch.
    pub fn get_or_fetch(
        &self,
        url: &str,
        now: i64,
        fetch: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(outcome) = self.get(url, now) {
            return outcome;
        }
        let outcome = fetch();
        self.put(url, outcome.clone(), now);
        outcome
    }

    /// How many outcomes are stored, expired ones included until they are swept.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    /// How long a test server waits for anything before giving up, so no test can hang.
    const BOUND: Duration = Duration::from_secs(10);

    /// What a test server answers on one connection.
    enum Answer {
        /// These bytes, then the connection is closed.
        Canned(Vec<u8>),
        /// A 200 header without a length, then up to `total` body bytes until the client leaves.
        Endless { total: usize },
        /// These bytes, then nothing until released (or the bound passes).
        Stall {
            first: Vec<u8>,
            release: mpsc::Receiver<()>,
        },
    }

    /// What a test server saw and did.
    #[derive(Debug)]
    enum Event {
        /// A request's head, reported before it is answered.
        Request(String),
        /// How many body bytes an endless answer managed to write.
        Wrote(usize),
    }

    fn loopback_listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener")
    }

    fn base_url(listener: &TcpListener) -> String {
        format!("http://{}", listener.local_addr().expect("address"))
    }

    fn canned(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut head = format!("HTTP/1.1 {status}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Answer::Canned(bytes)
    }

    fn redirect(location: &str) -> Answer {
        canned(
            "302 Found",
            &[("Location", location), ("Set-Cookie", "session=abc")],
            b"",
        )
    }

    /// Reads a request head (bounded in size and time).
    fn read_head(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    /// Answers one connection per answer, in order, on a thread of its own; reports each request
    /// before answering it.
    fn serve(listener: TcpListener, answers: Vec<Answer>) -> mpsc::Receiver<Event> {
        let (events, receiver) = mpsc::channel();
        thread::spawn(move || {
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                stream.set_read_timeout(Some(BOUND)).ok();
                stream.set_write_timeout(Some(BOUND)).ok();
                let head = read_head(&mut stream);
                events.send(Event::Request(head)).ok();
                match answer {
                    Answer::Canned(bytes) => {
                        stream.write_all(&bytes).ok();
                    }
                    Answer::Endless { total } => {
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                    Connection: close\r\n\r\n";
                        let mut wrote = 0;
                        if stream.write_all(head.as_bytes()).is_ok() {
                            let chunk = vec![b' '; 64 * 1024];
                            while wrote < total && stream.write_all(&chunk).is_ok() {
                                wrote += chunk.len();
                            }
                        }
                        events.send(Event::Wrote(wrote)).ok();
                    }
                    Answer::Stall { first, release } => {
                        stream.write_all(&first).ok();
                        release.recv_timeout(BOUND).ok();
                    }
                }
            }
        });
        receiver
    }

    /// The request heads a server has reported so far.
    fn requests(events: &mpsc::Receiver<Event>) -> Vec<String> {
        events
            .try_iter()
            .filter_map(|event| match event {
                Event::Request(head) => Some(head),
                Event::Wrote(_) => None,
            })
            .collect()
    }

    fn request_path(head: &str) -> &str {
        head.split_whitespace().nth(1).unwrap_or_default()
    }

    fn loopback_policy() -> OutboundPolicy {
        OutboundPolicy {
            loopback_allowed: true,
            ..OutboundPolicy::default()
        }
    }

    #[test]
    fn a_json_document_is_fetched_from_loopback_when_loopback_is_allowed() {
        let listener = loopback_listener();
        let base = base_url(&listener);
        let body = br#"{"keys":[]}"#;
        let events = serve(
            listener,
            vec![canned(
                "200 OK",
                &[
                    ("Content-Type", "application/jwk-set+json"),
                    ("Link", "</a>; rel=\"one\""),
                    ("Link", "</b>; rel=two"),
                ],
                body,
            )],
        );
        let fetched = fetch(
            &format!("{base}/.well-known/jwks.json#ignored"),
            "application/jwk-set+json, application/json",
            &loopback_policy(),
        )
        .expect("fetched");
        assert_eq!(fetched.body, body);
        assert_eq!(
            fetched.final_url.as_str(),
            format!("{base}/.well-known/jwks.json")
        );
        assert_eq!(
            fetched.content_type.as_deref(),
            Some("application/jwk-set+json")
        );
        assert_eq!(fetched.links, ["</a>; rel=\"one\"", "</b>; rel=two"]);
        let heads = requests(&events);
        assert_eq!(heads.len(), 1);
        let head = heads[0].to_ascii_lowercase();
        assert!(
            head.starts_with("get /.well-known/jwks.json http/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!(
                "\r\nuser-agent: siteid/{}\r\n",
                env!("CARGO_PKG_VERSION")
            )),
            "{head}"
        );
        assert!(
            head.contains("\r\naccept: application/jwk-set+json, application/json\r\n"),
            "{head}"
        );
        assert!(
            !head.contains("cookie:") && !head.contains("authorization:"),
            "{head}"
        );
    }

    #[test]
    fn loopback_is_refused_without_connecting_when_it_is_not_allowed() {
        let listener = loopback_listener();
        let error = fetch(
            &format!("{}/.well-known/jwks.json", base_url(&listener)),
            "application/json",
            &OutboundPolicy::default(),
        )
        .expect_err("refused");
        assert_eq!(
            error,
            FetchError::Refused {
                address: "127.0.0.1".parse().expect("ip"),
                reason: "loopback",
                redirected: false,
            }
        );
        assert!(error.is_caller_fault());
        assert_eq!(error.to_string(), "may not reach 127.0.0.1: loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let attempt = listener.accept();
        assert!(
            matches!(&attempt, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "a connection was made: {attempt:?}"
        );
    }

    #[test]
    fn a_chain_of_three_redirects_is_followed_with_each_location_resolved_and_no_cookies() {
        let listener = loopback_listener();
        let base = base_url(&listener);
        let events = serve(
            listener,
            vec![
                redirect("/step1"),
                redirect(&format!("{base}/step2")),
                redirect("step3?x=1"),
                canned("200 OK", &[], b"{}"),
            ],
        );
        let fetched = fetch(
            &format!("{base}/step0"),
            "application/json",
            &loopback_policy(),
        )
        .expect("fetched");
        assert_eq!(fetched.final_url.as_str(), format!("{base}/step3?x=1"));
        assert_eq!(fetched.body, b"{}");
        let heads = requests(&events);
        let paths: Vec<&str> = heads.iter().map(|head| request_path(head)).collect();
        assert_eq!(paths, ["/step0", "/step1", "/step2", "/step3?x=1"]);
        for head in &heads {
            assert!(!head.to_ascii_lowercase().contains("cookie:"), "{head}");
        }
    }

    #[test]
    fn a_fourth_redirect_is_refused_and_not_followed() {
        let listener = loopback_listener();
        let base = base_url(&listener);
        let events = serve(
            listener,
            vec![
                redirect("/1"),
                redirect("/2"),
                redirect("/3"),
                redirect("/4"),
                canned("200 OK", &[], b"{}"),
            ],
        );
        let error = fetch(&format!("{base}/0"), "application/json", &loopback_policy())
            .expect_err("refused");
        assert_eq!(error, FetchError::TooManyRedirects(3));
        assert!(!error.is_caller_fault());
        assert_eq!(requests(&events).len(), 4);
    }

    #[test]
    fn a_redirect_to_a_refused_address_is_refused_before_connecting_there() {
        for (location, address, reason) in [
            ("http://10.0.0.1/keys", "10.0.0.1", "private"),
            ("https://192.0.2.1:8443/keys", "192.0.2.1", "documentation"),
            (
                "http://[::ffff:169.254.169.254]/",
                "::ffff:169.254.169.254",
                "link-local",
            ),
        ] {
            let listener = loopback_listener();
            let base = base_url(&listener);
            let events = serve(listener, vec![redirect(location)]);
            let error = fetch(
                &format!("{base}/start"),
                "application/json",
                &loopback_policy(),
            )
            .expect_err("refused");
            assert_eq!(
                error,
                FetchError::Refused {
                    address: address.parse().expect("ip"),
                    reason,
                    redirected: true,
                },
                "{location}"
            );
            assert!(!error.is_caller_fault());
            assert_eq!(
                error.to_string(),
                format!("may not reach {address} (where it was redirected): {reason}")
            );
            assert_eq!(requests(&events).len(), 1);
        }
    }

    #[test]
    fn a_redirect_to_another_scheme_or_with_credentials_is_refused() {
        for (location, expected) in [
            (
                "ftp://127.0.0.1/keys",
                FetchError::BadRedirect("is neither http nor https"),
            ),
            (
                "http://user:pw@127.0.0.1/",
                FetchError::BadRedirect("carries a user name or password"),
            ),
            ("http://[::1", FetchError::BadRedirect("is not a URL")),
        ] {
            let listener = loopback_listener();
            let base = base_url(&listener);
            let events = serve(listener, vec![redirect(location)]);
            let error = fetch(&base, "application/json", &loopback_policy()).expect_err("refused");
            assert_eq!(error, expected, "{location}");
            assert_eq!(requests(&events).len(), 1);
        }
    }

    #[test]
    fn a_redirect_from_https_down_to_http_is_refused() {
        let current = Url::parse("https://sender.example/.well-known/jwks.json").expect("url");
        assert_eq!(
            redirect_target(&current, b"http://sender.example/keys"),
            Err(FetchError::Downgrade)
        );
        assert_eq!(
            redirect_target(&current, b"//other.example/keys#part")
                .expect("allowed")
                .as_str(),
            "https://other.example/keys"
        );
        let plain = Url::parse("http://sender.example/").expect("url");
        assert_eq!(
            redirect_target(&plain, b" https://sender.example/keys ")
                .expect("allowed")
                .as_str(),
            "https://sender.example/keys"
        );
        assert_eq!(
            redirect_target(&plain, b"\xff\xfe"),
            Err(FetchError::BadRedirect("is not a URL"))
        );
    }

    #[test]
    fn a_body_over_the_cap_is_refused_without_reading_all_of_it() {
        let listener = loopback_listener();
        let total = 64 * 1024 * 1024;
        let events = serve(
            listener.try_clone().expect("clone"),
            vec![Answer::Endless { total }],
        );
        let policy = OutboundPolicy {
            max_body: 1024,
            ..loopback_policy()
        };
        let error =
            fetch(&base_url(&listener), "application/json", &policy).expect_err("too large");
        assert_eq!(error, FetchError::TooLarge(1024));
        assert!(!error.is_caller_fault());
        let wrote = loop {
            match events
                .recv_timeout(BOUND)
                .expect("the server reports what it wrote")
            {
                Event::Wrote(wrote) => break wrote,
                Event::Request(_) => {}
            }
        };
        assert!(wrote < total, "the whole body was written ({wrote} bytes)");
    }

    #[test]
    fn a_declared_length_over_the_cap_is_refused_from_the_header() {
        let listener = loopback_listener();
        let base = base_url(&listener);
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n{}";
        serve(listener, vec![Answer::Canned(head.as_bytes().to_vec())]);
        let error = fetch(&base, "application/json", &loopback_policy()).expect_err("too large");
        assert_eq!(error, FetchError::TooLarge(512 * 1024));
    }

    #[test]
    fn a_body_at_the_cap_is_accepted() {
        let listener = loopback_listener();
        let base = base_url(&listener);
        let body = vec![b'x'; 1024];
        serve(listener, vec![canned("200 OK", &[], &body)]);
        let policy = OutboundPolicy {
            max_body: 1024,
            ..loopback_policy()
        };
        assert_eq!(fetch(&base, "*/*", &policy).expect("fetched").body, body);
    }

    #[test]
    fn any_status_but_200_is_refused() {
        for (status, code) in [
            ("404 Not Found", 404),
            ("500 Internal Server Error", 500),
            ("204 No Content", 204),
            ("302 Found", 302),
        ] {
            let listener = loopback_listener();
            let base = base_url(&listener);
            serve(listener, vec![canned(status, &[], b"secret body")]);
            let error = fetch(&base, "application/json", &loopback_policy()).expect_err("refused");
            assert_eq!(error, FetchError::Status(code));
            assert!(!error.is_caller_fault());
            assert!(!error.to_string().contains("secret"));
        }
    }

    #[test]
    fn a_server_that_never_answers_runs_into_the_timeout() {
        let listener = loopback_listener();
        let base = base_url(&listener);
        let (release, released) = mpsc::channel();
        let events = serve(
            listener,
            vec![Answer::Stall {
                first: Vec::new(),
                release: released,
            }],
        );
        let policy = OutboundPolicy {
            timeout: Duration::from_millis(300),
            ..loopback_policy()
        };
        let error = fetch(&base, "application/json", &policy).expect_err("timed out");
        release.send(()).ok();
        assert_eq!(error, FetchError::Timeout(Duration::from_millis(300)));
        assert_eq!(error.to_string(), "took longer than 300 ms");
        assert!(!error.is_caller_fault());
        assert_eq!(requests(&events).len(), 1);
    }

    #[test]
    fn a_body_that_stalls_runs_into_the_timeout() {
        let listener = loopback_listener();
        let base = base_url(&listener);
        let (release, released) = mpsc::channel();
        let first = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"keys\"".to_vec();
        serve(
            listener,
            vec![Answer::Stall {
                first,
                release: released,
            }],
        );
        let policy = OutboundPolicy {
            timeout: Duration::from_millis(300),
            ..loopback_policy()
        };
        let error = fetch(&base, "application/json", &policy).expect_err("timed out");
        release.send(()).ok();
        assert_eq!(error, FetchError::Timeout(Duration::from_millis(300)));
    }

    #[test]
    fn name_resolution_answers_within_the_deadline() {
        // An IP address in text resolves without asking any name server.
        let deadline = Deadline::after(Duration::from_secs(5));
        assert_eq!(
            resolve("127.0.0.1", 8080, &deadline),
            Ok(vec!["127.0.0.1:8080".parse().expect("address")])
        );
        let spent = Deadline::after(Duration::ZERO);
        assert_eq!(
            resolve("127.0.0.1", 8080, &spent),
            Err(FetchError::Timeout(Duration::ZERO))
        );
    }

    #[test]
    fn urls_other_than_plain_http_or_https_are_refused() {
        for (url, reason) in [
            ("ftp://127.0.0.1/keys", "is neither http nor https"),
            ("file:///etc/passwd", "is neither http nor https"),
            (
                "http://user:secret@127.0.0.1/",
                "carries a user name or password",
            ),
            ("https://user@127.0.0.1/", "carries a user name or password"),
            ("/.well-known/jwks.json", "is not an absolute URL"),
            ("sender.example", "is not an absolute URL"),
            ("http://", "is not an absolute URL"),
        ] {
            let error = fetch(url, "application/json", &loopback_policy()).expect_err(url);
            assert_eq!(error, FetchError::BadUrl(reason), "{url}");
            assert!(error.is_caller_fault());
        }
        let long = format!("http://127.0.0.1/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            fetch(&long, "*/*", &loopback_policy()),
            Err(FetchError::BadUrl("is longer than 2048 bytes"))
        );
    }

    #[test]
    fn addresses_that_are_not_public_are_refused_before_any_connection() {
        let deadline = Deadline::after(Duration::from_secs(5));
        for (url, address) in [
            ("http://10.0.0.1/", "10.0.0.1"),
            ("https://192.0.2.1/keys", "192.0.2.1"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1"),
            ("http://[fd00::1]:8080/", "fd00::1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
        ] {
            let url = Url::parse(url).expect("url");
            let error = checked_addresses(&url, &OutboundPolicy::default(), &deadline, false)
                .expect_err("refused");
            assert!(
                matches!(error, FetchError::Refused { address: a, .. } if a == address.parse::<IpAddr>().expect("ip")),
                "{url}: {error:?}"
            );
        }
    }

    #[test]
    fn a_name_resolving_to_public_and_private_addresses_is_refused() {
        let public: SocketAddr = "203.0.114.7:443".parse().expect("address");
        let private: SocketAddr = "[fd00::7]:443".parse().expect("address");
        assert_eq!(check_addresses(&[public], false, false), Ok(()));
        assert_eq!(
            check_addresses(&[public, private], false, false),
            Err(FetchError::Refused {
                address: private.ip(),
                reason: "unique local (private)",
                redirected: false,
            })
        );
        let loopback: SocketAddr = "127.0.0.1:443".parse().expect("address");
        assert_eq!(check_addresses(&[public, loopback], true, false), Ok(()));
    }

    #[test]
    fn the_pinned_resolver_answers_only_for_the_checked_host() {
        let address: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        let resolver = PinnedResolver {
            host: "sender.example".into(),
            port: 8080,
            addresses: vec![address],
        };
        let config = Config::default();
        let timeout = NextTimeout::default();
        let uri: Uri = "http://Sender.Example:8080/keys".parse().expect("uri");
        let pinned = resolver.resolve(&uri, &config, timeout).expect("pinned");
        assert_eq!(pinned.iter().copied().collect::<Vec<_>>(), [address]);
        for other in [
            "http://other.example:8080/",
            "http://sender.example/",
            "https://sender.example:443/",
        ] {
            let uri: Uri = other.parse().expect("uri");
            assert!(resolver.resolve(&uri, &config, timeout).is_err(), "{other}");
        }
        let v6 = PinnedResolver {
            host: "[::1]".into(),
            port: 443,
            addresses: vec![address],
        };
        let uri: Uri = "https://[::1]/".parse().expect("uri");
        assert!(v6.resolve(&uri, &config, timeout).is_ok());
    }

    fn links(values: &[&str], rel: &str) -> Option<String> {
        let base = Url::parse("https://sender.example/dir/page").expect("url");
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        parse_link_header(&values, rel, &base).map(|url| url.to_string())
    }

    #[test]
    fn link_headers_are_read_as_rfc_8288_says() {
        assert_eq!(
            links(&["<https://keys.example/jwks>; rel=\"jwks\""], "jwks").as_deref(),
            Some("https://keys.example/jwks")
        );
        assert_eq!(
            links(&["</k>; rel=jwks"], "jwks").as_deref(),
            Some("https://sender.example/k")
        );
        assert_eq!(
            links(&["<keys.json> ;REL = \"Alternate JWKS\""], "jwks").as_deref(),
            Some("https://sender.example/dir/keys.json")
        );
        assert_eq!(
            links(
                &["<https://a.example/x,y>; rel=\"other\", </keys>; rel=\"alternate jwks\""],
                "jwks"
            )
            .as_deref(),
            Some("https://sender.example/keys")
        );
        assert_eq!(
            links(&["</a>; rel=other", "</b>; title=\"t\"; rel=jwks"], "jwks").as_deref(),
            Some("https://sender.example/b")
        );
        assert_eq!(
            links(
                &["</a>; title=\"a, </b>; rel=jwks\", </c>; rel=jwks"],
                "jwks"
            )
            .as_deref(),
            Some("https://sender.example/c")
        );
        assert_eq!(
            links(&["</a>; title=\"say \\\"hi\\\"\"; rel=\"jwks\""], "jwks").as_deref(),
            Some("https://sender.example/a")
        );
    }

    #[test]
    fn only_the_first_rel_counts_and_anchored_links_are_skipped() {
        assert_eq!(links(&["</a>; rel=\"x\"; rel=\"jwks\""], "jwks"), None);
        assert_eq!(links(&["</a>; anchor=\"#other\"; rel=jwks"], "jwks"), None);
        assert_eq!(links(&["</a>; rel=jwks-extra"], "jwks"), None);
        assert_eq!(links(&["</a>; rel"], "jwks"), None);
        assert_eq!(links(&[], "jwks"), None);
    }

    #[test]
    fn junk_in_link_headers_is_skipped_without_panicking() {
        assert_eq!(
            links(&["garbage; rel=jwks, </ok>; rel=jwks"], "jwks").as_deref(),
            Some("https://sender.example/ok")
        );
        assert_eq!(
            links(&["</bad> junk; rel=jwks, </good>; rel=jwks"], "jwks").as_deref(),
            Some("https://sender.example/good")
        );
        assert_eq!(links(&["<unterminated; rel=jwks"], "jwks"), None);
        assert_eq!(links(&["<http://[::1>; rel=jwks"], "jwks"), None);
        let pieces = [
            "<", ">", ";", ",", "=", "\"", "\\", " ", "rel", "jwks", "é", "</x>", "anchor", "\t",
            "€", "\u{0}",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            let mut text = String::new();
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = links(&[text.as_str()], "jwks");
        }
    }

    #[test]
    fn cached_outcomes_live_for_their_time_to_live() {
        let cache: FetchCache<String> = FetchCache::new(8);
        assert!(cache.is_empty());
        cache.put("https://a.example/", Ok("keys".into()), 1000);
        cache.put("https://b.example/", Err(FetchError::Status(404)), 1000);
        assert_eq!(
            cache.get("https://a.example/", 1000 + SUCCESS_TTL - 1),
            Some(Ok("keys".into()))
        );
        assert_eq!(cache.get("https://a.example/", 1000 + SUCCESS_TTL), None);
        assert_eq!(
            cache.get("https://b.example/", 1000 + FAILURE_TTL - 1),
            Some(Err(FetchError::Status(404)))
        );
        assert_eq!(cache.get("https://b.example/", 1000 + FAILURE_TTL), None);
        assert!(cache.is_empty());
        assert_eq!(cache.get("https://c.example/", 1000), None);
    }

    #[test]
    fn a_full_cache_drops_the_expired_then_the_oldest_outcome() {
        let cache: FetchCache<u32> = FetchCache::with_ttls(2, 100, 10);
        cache.put("a", Ok(1), 0);
        cache.put("b", Err(FetchError::Downgrade), 0);
        cache.put("c", Ok(3), 20);
        assert_eq!(cache.get("b", 20), None, "the expired failure went first");
        assert_eq!(cache.get("a", 20), Some(Ok(1)));
        cache.put("d", Ok(4), 20);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", 20), None, "the oldest went next");
        assert_eq!(cache.get("c", 20), Some(Ok(3)));
        assert_eq!(cache.get("d", 20), Some(Ok(4)));
        cache.put("c", Ok(33), 21);
        assert_eq!(cache.len(), 2, "replacing does not evict");
        assert_eq!(cache.get("c", 21), Some(Ok(33)));
        let none: FetchCache<u32> = FetchCache::new(0);
        none.put("a", Ok(1), 0);
        assert_eq!(none.get("a", 0), None);
        let successes_only: FetchCache<u32> = FetchCache::with_ttls(1, 100, 0);
        successes_only.put("a", Ok(1), 0);
        successes_only.put("b", Err(FetchError::Downgrade), 0);
        assert_eq!(
            successes_only.get("a", 0),
            Some(Ok(1)),
            "a failure kept for no time pushes nothing out"
        );
    }

    #[test]
    fn get_or_fetch_fetches_only_on_a_miss() {
        let cache: FetchCache<u32> = FetchCache::new(4);
        let mut calls = 0;
        let mut fetch_counting = |value: u32| {
            calls += 1;
            Ok(value)
        };
        assert_eq!(cache.get_or_fetch("u", 0, || fetch_counting(1)), Ok(1));
        assert_eq!(cache.get_or_fetch("u", 599, || fetch_counting(2)), Ok(1));
        assert_eq!(cache.get_or_fetch("u", 600, || fetch_counting(3)), Ok(3));
        assert_eq!(calls, 2);
        assert_eq!(
            cache.get_or_fetch("v", 0, || Err(FetchError::Status(500))),
            Err(FetchError::Status(500))
        );
        assert_eq!(
            cache.get_or_fetch("v", 59, || Ok(9)),
            Err(FetchError::Status(500))
        );
        assert_eq!(cache.get_or_fetch("v", 60, || Ok(9)), Ok(9));
    }
}
