//! The URLs of IndieAuth (living standard, revision of 11 July 2024): checking a user profile
//! URL (§3.2) and a client identifier (§3.3) strictly, canonicalizing what a user types
//! (§3.4), and whether a redirect URL is on its client's own scheme, host and port (§4.2.2).
//! Pure functions; nothing here fetches anything.

use url::{Host, Url};

/// The longest client identifier or redirect URL read, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL was refused. Messages complete "the URL ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is longer than {MAX_URL_LEN} bytes")]
    TooLong,
    #[error("is not an absolute URL")]
    NotAbsolute,
    #[error("must use the https or http scheme")]
    Scheme,
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("must not contain \".\" or \"..\" path segments")]
    DotSegment,
    #[error("must have a domain name as its host (or 127.0.0.1 or [::1] for a client)")]
    AddressHost,
    #[error("must not contain a port")]
    Port,
    #[error("must not contain a query")]
    Query,
    #[error("must have a host name of letters, digits, hyphens and dots")]
    HostName,
}

/// Whether `host` is a DNS name as the parser leaves it (lower case, international names in
/// punycode): labels of 1 to 63 letters, digits and hyphens, not starting or ending with a
/// hyphen, at most 253 bytes, an optional final dot. The URL parser lets `;`, `,`, `*` and `'`
/// through in a host; such a host never names a real site, and must never reach a header.
pub fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Whether an http(s) URL's host is an address or a DNS name (see [`is_dns_name`]).
pub fn has_sound_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => is_dns_name(name),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => true,
        None => false,
    }
}

/// The authority of `text` as written (user information, host and port), which the URL parser
/// would repair: it drops an empty `@` and reads `2130706433` or `0x7f.1` as 127.0.0.1.
fn raw_authority(text: &str) -> Option<&str> {
    let after_scheme = text.split_once("://")?.1;
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    Some(&after_scheme[..end])
}

/// Checks the parts of `text` that the URL parser would quietly repair: `.` and `..` segments
/// (which it removes), a fragment marker and user information (even an empty one). A URL
/// without a path is read with the path `/`, as §3.4 says every URL without one must be.
fn check_raw(text: &str) -> Result<Url, UrlError> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let url = Url::parse(text).map_err(|_| UrlError::NotAbsolute)?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(UrlError::Scheme);
    }
    let authority = raw_authority(text).ok_or(UrlError::NotAbsolute)?;
    if !url.username().is_empty() || url.password().is_some() || authority.contains('@') {
        return Err(UrlError::Credentials);
    }
    if url.fragment().is_some() || text.contains('#') {
        return Err(UrlError::Fragment);
    }
    // The parser resolves dot segments away; read the path as written.
    let after_scheme = text
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or(UrlError::NotAbsolute)?;
    let path_and_query = after_scheme
        .find('/')
        .map(|at| &after_scheme[at..])
        .unwrap_or_default();
    let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
    let dot = |segment: &str| {
        let lower = segment.to_ascii_lowercase();
        matches!(
            lower.as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    };
    if path.split('/').any(dot) {
        return Err(UrlError::DotSegment);
    }
    Ok(url)
}

/// Checks a client identifier (§3.3): https or http, a path (`/` when none is written), no
/// `.`/`..` segments, a query
/// allowed, no fragment, no user or password, a port allowed, and a domain name as host (or
/// the loopback addresses 127.0.0.1 and [::1], which the standard allows for clients).
pub fn check_client_id(text: &str) -> Result<Url, UrlError> {
    let url = check_raw(text)?;
    // An address must be written exactly 127.0.0.1 or [::1], not in a form the parser reads
    // as one (2130706433, 0x7f.1, [0:0::1]).
    let written_host = raw_authority(text)
        .map(|authority| match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                host
            }
            _ => authority,
        })
        .unwrap_or_default();
    match url.host() {
        Some(Host::Domain(name)) if is_dns_name(name) => {}
        Some(Host::Domain(_)) => return Err(UrlError::HostName),
        Some(Host::Ipv4(ip))
            if ip == std::net::Ipv4Addr::LOCALHOST && written_host == "127.0.0.1" => {}
        Some(Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST && written_host == "[::1]" => {}
        _ => return Err(UrlError::AddressHost),
    }
    Ok(url)
}

/// Checks a user profile URL (§3.2): as a client identifier, but the host must be a domain name
/// (no address at all), and there is no port.
pub fn check_profile_url(text: &str) -> Result<Url, UrlError> {
    let url = check_raw(text)?;
    match url.host() {
        Some(Host::Domain(name)) if is_dns_name(name) => {}
        Some(Host::Domain(_)) => return Err(UrlError::HostName),
        _ => return Err(UrlError::AddressHost),
    }
    if url.port().is_some() {
        return Err(UrlError::Port);
    }
    Ok(url)
}

/// What a user typed as their profile, canonicalized as §3.4 describes: a bare host gets
/// `https://`, an empty path becomes `/`, the host is lower-cased (the parser does that).
pub fn canonical_profile_input(text: &str) -> Result<Url, UrlError> {
    let trimmed = text.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let with_path = match with_scheme.split_once("://") {
        Some((scheme, rest)) if !rest.contains('/') => {
            let (host, tail) = match rest.find(['?', '#']) {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            format!("{scheme}://{host}/{tail}")
        }
        _ => with_scheme,
    };
    check_profile_url(&with_path)
}

/// Whether `redirect_uri` has the scheme, host and port of `client_id`: then it needs no
/// listing in the client's metadata (§4.2.2).
pub fn same_origin(client_id: &Url, redirect_uri: &Url) -> bool {
    client_id.scheme() == redirect_uri.scheme()
        && client_id.host() == redirect_uri.host()
        && client_id.port_or_known_default() == redirect_uri.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identifiers_the_standard_gives_as_valid_are_accepted() {
        for good in [
            "https://example.com/",
            "https://example.com/username",
            "https://example.com/users?id=100",
            "https://example.com:8443/",
            "http://127.0.0.1:8080/client",
            "http://[::1]/",
            "https://app.example.com/path/to/client",
        ] {
            assert!(check_client_id(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn client_identifiers_the_standard_gives_as_invalid_are_refused() {
        let cases = [
            ("example.com", UrlError::NotAbsolute),
            ("mailto:user@example.com", UrlError::Scheme),
            ("ftp://example.com/", UrlError::Scheme),
            ("https://example.com/foo/../bar", UrlError::DotSegment),
            ("https://example.com/./bar", UrlError::DotSegment),
            ("https://example.com/%2e%2E/bar", UrlError::DotSegment),
            ("https://example.com/#me", UrlError::Fragment),
            ("https://example.com/#", UrlError::Fragment),
            ("https://user:pass@example.com/", UrlError::Credentials),
            ("https://user@example.com/", UrlError::Credentials),
            ("https://172.28.92.51/", UrlError::AddressHost),
            ("https://10.0.0.1/", UrlError::AddressHost),
            ("https://[2001:db8::1]/", UrlError::AddressHost),
            ("http://127.0.0.2/", UrlError::AddressHost),
            ("http://2130706433/", UrlError::AddressHost),
            ("http://0x7f.1/", UrlError::AddressHost),
            ("http://[0:0::1]/", UrlError::AddressHost),
            ("https://@example.com/", UrlError::Credentials),
        ];
        for (bad, error) in cases {
            assert_eq!(check_client_id(bad), Err(error), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_client_id(&long), Err(UrlError::TooLong));
    }

    #[test]
    fn a_url_without_a_path_reads_as_the_root() {
        assert_eq!(
            check_client_id("https://example.com")
                .map(String::from)
                .as_deref(),
            Ok("https://example.com/")
        );
    }

    #[test]
    fn profile_urls_refuse_addresses_and_ports() {
        assert!(check_profile_url("https://example.com/").is_ok());
        assert!(check_profile_url("https://example.com/username?x=1").is_ok());
        assert_eq!(
            check_profile_url("https://example.com:8443/"),
            Err(UrlError::Port)
        );
        assert_eq!(
            check_profile_url("http://127.0.0.1/"),
            Err(UrlError::AddressHost)
        );
        assert_eq!(
            check_profile_url("https://[::1]/"),
            Err(UrlError::AddressHost)
        );
    }

    #[test]
    fn what_a_user_types_is_canonicalized() {
        let canonical = |text: &str| canonical_profile_input(text).map(String::from);
        assert_eq!(
            canonical("example.com").as_deref(),
            Ok("https://example.com/")
        );
        assert_eq!(
            canonical("http://Example.COM").as_deref(),
            Ok("http://example.com/")
        );
        assert_eq!(
            canonical("  example.com/~me ").as_deref(),
            Ok("https://example.com/~me")
        );
        assert_eq!(
            canonical("example.com?x=1").as_deref(),
            Ok("https://example.com/?x=1")
        );
        assert!(canonical("example.com/../x").is_err());
    }

    #[test]
    fn a_redirect_on_the_clients_scheme_host_and_port_needs_no_listing() {
        let client = check_client_id("https://app.example.com/").expect("client");
        let same = |text: &str| same_origin(&client, &Url::parse(text).expect("url"));
        assert!(same("https://app.example.com/callback"));
        assert!(same("https://app.example.com:443/callback?x=1"));
        assert!(!same("http://app.example.com/callback"));
        assert!(!same("https://app.example.com:8443/callback"));
        assert!(!same("https://example.com/callback"));
        assert!(!same("https://evil.example/app.example.com/"));
    }

    #[test]
    fn hosts_must_be_dns_names_so_that_none_can_reach_a_header() {
        for bad in [
            "https://a;b.example/",
            "https://*/",
            "https://a,b.example/",
            "https://a'b.example/",
            "https://-a.example/",
        ] {
            assert!(check_client_id(bad).is_err(), "{bad}");
        }
        assert!(is_dns_name("xn--bcher-kva.example"));
        assert!(is_dns_name("app.example."));
        assert!(!is_dns_name(&"a".repeat(64)));
        assert_eq!(
            check_client_id("https://b\u{fc}cher.example/")
                .expect("an international name in punycode")
                .host_str(),
            Some("xn--bcher-kva.example")
        );
    }
}
