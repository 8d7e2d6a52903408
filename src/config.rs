//! Settings: built-in defaults, then `<data_dir>/config.toml`, then `SITEID_*` environment
//! variables, then command-line flags. Passed in explicitly; there is no global configuration.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variables the node and its command line read. Others starting with
/// `SITEID_` earn a warning.
pub const KNOWN_ENV_VARS: [&str; 8] = [
    "SITEID_DATA_DIR",
    "SITEID_ENROLLMENT",
    "SITEID_KNOWN_NODES",
    "SITEID_LISTEN",
    "SITEID_PUBLIC_URL",
    "SITEID_WELL_KNOWN_DIR",
    "SITEID_TRUSTED_PROXIES",
    "SITEID_CONFIG",
];

/// The default listening address: loopback only, for a node behind a reverse proxy.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// The default directory of extra files served under `/.well-known/`.
pub const DEFAULT_WELL_KNOWN_DIR: &str = "well-known";
/// The name of the optional configuration file inside the data directory.
pub const CONFIG_FILE_NAME: &str = "config.toml";
/// How many days audit entries are kept by default.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;
/// How many days client addresses are kept whole in the audit log by default.
pub const DEFAULT_IP_RETENTION_DAYS: u32 = 30;

/// Why the settings could not be loaded. Start-up stops with this message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The default number of open WebSockets per client (an IPv4 address or an IPv6 /64).
pub const DEFAULT_WEBSOCKETS_PER_CLIENT: usize = 32;

/// How long a session lives without use, and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_seconds: i64,
    pub absolute_seconds: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_seconds: 30 * 60,
            absolute_seconds: 12 * 60 * 60,
        }
    }
}

/// The node's settings after every layer has been applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the SQLite database lives.
    pub data_dir: PathBuf,
    /// The socket address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The origin the node is reached at; defaults to `http://` plus the bound address.
    pub public_url: Option<PublicUrl>,
    /// Extra files served under `/.well-known/`.
    pub well_known_dir: PathBuf,
    /// Peers whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Session lifetimes.
    pub session_policy: SessionPolicy,
    /// Open WebSockets allowed per client address.
    pub websocket_max_per_client: usize,
    /// What the public home page shows about the owner.
    pub profile: Profile,
    /// Audit entries older than this many days are pruned; 0 keeps every entry.
    pub audit_retention_days: u32,
    /// Serve a plain-http public URL outside this machine anyway (`--insecure-http`).
    pub insecure_http: bool,
    /// Client addresses in the audit log are cut to their network (/24, /48) after this many
    /// days; 0 keeps them whole.
    pub ip_retention_days: u32,
    /// What the inbox accepts from anonymous senders.
    pub inbox: InboxSettings,
    /// How new devices join, until the owner chooses on the account page.
    pub enrollment: EnrollmentMode,
}

/// How new devices join (pairing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentMode {
    /// Anyone with the password may unlock the owner key and enroll (devices may still ask
    /// for approval instead).
    #[default]
    Open,
    /// New devices are enrolled by an enrolled device's approval; the password alone unlocks
    /// nothing.
    Approval,
    /// The password unlocks, and new credentials are accepted, only while a window is open.
    Window,
}

impl EnrollmentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentMode::Open => "open",
            EnrollmentMode::Approval => "approval",
            EnrollmentMode::Window => "window",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(EnrollmentMode::Open),
            "approval" => Some(EnrollmentMode::Approval),
            "window" => Some(EnrollmentMode::Window),
            _ => None,
        }
    }
}

/// The inbox's limits: the bytes it keeps at most, and how many messages it accepts per
/// minute from one client address (an IPv6 client counts by its /64) and from everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxSettings {
    pub max_bytes: u64,
    pub per_client_per_minute: u32,
    pub per_minute: u32,
}

impl Default for InboxSettings {
    fn default() -> Self {
        InboxSettings {
            max_bytes: 100 * 1024 * 1024,
            per_client_per_minute: 10,
            per_minute: 100,
        }
    }
}

/// The owner's public profile on the home page, rendered as an h-card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The owner's display name.
    #[serde(default)]
    pub name: Option<String>,
    /// A short line about the owner.
    #[serde(default)]
    pub note: Option<String>,
    /// Profiles elsewhere, linked with `rel="me"`.
    #[serde(default)]
    pub links: Vec<ProfileLink>,
}

/// One `rel="me"` link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileLink {
    pub name: String,
    pub url: String,
}

impl Settings {
    /// Settings for a node in `data_dir` with every other value at its default.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Settings {
            well_known_dir: data_dir.join(DEFAULT_WELL_KNOWN_DIR),
            data_dir,
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!("the default address parses")),
            public_url: None,
            trusted_proxies: Vec::new(),
            session_policy: Default::default(),
            websocket_max_per_client: DEFAULT_WEBSOCKETS_PER_CLIENT,
            profile: Profile::default(),
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            insecure_http: false,
            ip_retention_days: DEFAULT_IP_RETENTION_DAYS,
            inbox: InboxSettings::default(),
            enrollment: EnrollmentMode::default(),
        }
    }

    /// The public URL this node will have when it is not set: plain http at the listening
    /// address, which is loopback unless the node listens elsewhere.
    fn public_url_is_plain_http_elsewhere(&self) -> Option<String> {
        match &self.public_url {
            Some(url) if url.is_https() || url.is_loopback() => None,
            Some(url) => Some(url.to_string()),
            None if self.listen.ip().is_loopback() => None,
            None => Some(format!(
                "http://{} (from the listening address)",
                self.listen
            )),
        }
    }

    /// Refuses a public URL that is plain http and not this machine, unless `insecure_http`:
    /// sessions, cookies and pages would cross the network readable and changeable.
    pub fn check_transport(&self) -> Result<(), ConfigError> {
        match self.public_url_is_plain_http_elsewhere() {
            Some(url) if !self.insecure_http => Err(ConfigError::Invalid(format!(
                "public URL {url} is plain http and not this machine; serve the node behind \
                 https (a TLS reverse proxy) and set --public-url https://..., or pass \
                 --insecure-http to accept that sessions and pages cross the network unprotected"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the node serves plain http outside this machine because `--insecure-http` says
    /// so (start-up warns about it every time).
    pub fn serves_insecure_http(&self) -> bool {
        self.insecure_http && self.public_url_is_plain_http_elsewhere().is_some()
    }

    /// Applies the configuration file (if any) and then `overrides` (flags and environment).
    pub fn load(overrides: Overrides) -> Result<Self, ConfigError> {
        let data_dir = overrides
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let (file, file_path) = match &overrides.config {
            Some(path) => (Some(FileSettings::read(path)?), path.clone()),
            None => {
                let path = data_dir.join(CONFIG_FILE_NAME);
                if path.exists() {
                    (Some(FileSettings::read(&path)?), path)
                } else {
                    (None, path)
                }
            }
        };
        let file = file.unwrap_or_default();
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "listen address {listen_text:?} is not an IP address and port such as 127.0.0.1:8080"
            ))
        })?;
        let public_url = overrides
            .public_url
            .or(file.public_url)
            .map(|text| PublicUrl::parse(&text))
            .transpose()?;
        let well_known_dir = overrides
            .well_known_dir
            .or(file.well_known_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_WELL_KNOWN_DIR));
        let trusted_proxies = match overrides.trusted_proxies {
            Some(text) => parse_proxy_list(&text)?,
            None => file
                .trusted_proxies
                .iter()
                .map(|text| parse_proxy(text))
                .collect::<Result<_, _>>()
                .map_err(|e| ConfigError::File {
                    path: file_path.clone(),
                    message: e.to_string(),
                })?,
        };
        let mut session_policy = SessionPolicy::default();
        if let Some(minutes) = file.session_idle_minutes {
            session_policy.idle_seconds = i64::from(minutes.max(1)) * 60;
        }
        if let Some(hours) = file.session_lifetime_hours {
            session_policy.absolute_seconds = i64::from(hours.max(1)) * 3600;
        }
        let enrollment_text = overrides.enrollment.or(file.enrollment);
        let enrollment = match enrollment_text.as_deref() {
            None => EnrollmentMode::default(),
            Some(text) => EnrollmentMode::parse(text).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "enrollment {text:?} is not one of \"open\", \"approval\", \"window\""
                ))
            })?,
        };
        Ok(Settings {
            enrollment,
            data_dir,
            listen,
            public_url,
            well_known_dir,
            trusted_proxies,
            session_policy,
            websocket_max_per_client: file
                .websocket_max_per_client
                .unwrap_or(DEFAULT_WEBSOCKETS_PER_CLIENT),
            profile: check_profile(file.profile, &file_path)?,
            audit_retention_days: file
                .audit_retention_days
                .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS),
            insecure_http: overrides.insecure_http,
            ip_retention_days: file.ip_retention_days.unwrap_or(DEFAULT_IP_RETENTION_DAYS),
            inbox: InboxSettings {
                max_bytes: file
                    .inbox_max_bytes
                    .unwrap_or(InboxSettings::default().max_bytes),
                per_client_per_minute: file
                    .inbox_messages_per_client_per_minute
                    .unwrap_or(InboxSettings::default().per_client_per_minute)
                    .max(1),
                per_minute: file
                    .inbox_messages_per_minute
                    .unwrap_or(InboxSettings::default().per_minute)
                    .max(1),
            },
        })
    }
}

/// Values from flags or environment variables, which win over the configuration file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub well_known_dir: Option<PathBuf>,
    pub trusted_proxies: Option<String>,
    pub insecure_http: bool,
    pub enrollment: Option<String>,
}

/// The optional `config.toml`. Unknown keys are an error, so that typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    public_url: Option<String>,
    well_known_dir: Option<PathBuf>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    profile: Profile,
    session_idle_minutes: Option<u32>,
    session_lifetime_hours: Option<u32>,
    websocket_max_per_client: Option<usize>,
    audit_retention_days: Option<u32>,
    ip_retention_days: Option<u32>,
    inbox_max_bytes: Option<u64>,
    inbox_messages_per_client_per_minute: Option<u32>,
    inbox_messages_per_minute: Option<u32>,
    enrollment: Option<String>,
}

impl FileSettings {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// Refuses profile links that are not http(s) URLs, so the page never carries `javascript:`.
fn check_profile(profile: Profile, path: &Path) -> Result<Profile, ConfigError> {
    for link in &profile.links {
        let ok = url::Url::parse(&link.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(ConfigError::File {
                path: path.to_owned(),
                message: format!("profile link {:?} is not an http or https URL", link.url),
            });
        }
    }
    Ok(profile)
}

fn parse_proxy(text: &str) -> Result<IpAddr, ConfigError> {
    text.trim()
        .parse::<IpAddr>()
        .map(|a| a.to_canonical())
        .map_err(|_| {
            ConfigError::Invalid(format!(
                "trusted proxy {text:?} is not an IP address (networks are not supported yet)"
            ))
        })
}

fn parse_proxy_list(text: &str) -> Result<Vec<IpAddr>, ConfigError> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(parse_proxy)
        .collect()
}

/// Names of `SITEID_*` environment variables the node does not know, to warn about.
pub fn unknown_env_vars() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("SITEID_") && !KNOWN_ENV_VARS.contains(&name.as_str()))
        .collect()
}

/// The node's public origin: `http` or `https`, a host and an optional port, nothing else.
/// It is the `aud` of every token and the source of the did:web identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    origin: String,
    host: String,
    port: Option<u16>,
    https: bool,
}

impl PublicUrl {
    /// Parses an origin such as `https://example.com` or `http://127.0.0.1:8080`. A path other
    /// than `/`, a query, a fragment or credentials are refused: did:web with a path names a
    /// different document, and the node serves from the root of its origin.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| {
            ConfigError::Invalid(format!(
                "public URL {text:?} {why}; give an origin such as https://example.com"
            ))
        };
        let url = url::Url::parse(text).map_err(|_| invalid("is not a URL"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(invalid("must use http or https")),
        };
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a path, query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid("has no host"))?
            .to_owned();
        Ok(PublicUrl {
            origin: url.origin().ascii_serialization(),
            host,
            port: url.port(),
            https,
        })
    }

    /// The public URL of a node reached directly at its listening address.
    pub fn from_listen_address(address: SocketAddr) -> Self {
        let origin = format!("http://{address}");
        PublicUrl::parse(&origin).unwrap_or_else(|_| PublicUrl {
            host: address.ip().to_string(),
            port: Some(address.port()),
            https: false,
            origin,
        })
    }

    /// The origin without a trailing slash, e.g. `https://example.com`.
    pub fn as_str(&self) -> &str {
        &self.origin
    }

    /// The host and, when there is one, `:port`, as an `acct:` URI names them.
    pub fn host_with_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// Whether the node is reached over TLS (cookies get `Secure`, pages get HSTS).
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Whether the host is this machine: `localhost` or a loopback address (127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The did:web identifier: the host, with `:port` percent-encoded as `%3A` when present. An
    /// IPv6 host keeps its brackets, percent-encoded with its colons (`%5B%3A%3A1%5D`), since
    /// a DID may hold only letters, digits, `.`, `-`, `_` and percent-encodings; percent-decoding
    /// gives back `[::1]:8080`, the host and port did:web resolution fetches from.
    pub fn did_web(&self) -> String {
        let host = self
            .host
            .replace(':', "%3A")
            .replace('[', "%5B")
            .replace(']', "%5D");
        match self.port {
            Some(port) => format!("did:web:{host}%3A{port}"),
            None => format!("did:web:{host}"),
        }
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_served_only_to_this_machine_unless_the_operator_insists() {
        let with = |public_url: Option<&str>, listen: &str, insecure_http: bool| Settings {
            public_url: public_url.map(|u| PublicUrl::parse(u).expect("valid")),
            listen: listen.parse().expect("address"),
            insecure_http,
            ..Settings::for_data_dir("data")
        };
        for allowed in [
            with(Some("https://example.com"), "0.0.0.0:8080", false),
            with(Some("http://127.0.0.1:8080"), "127.0.0.1:8080", false),
            with(Some("http://127.200.3.4"), "0.0.0.0:8080", false),
            with(Some("http://[::1]:8080"), "[::1]:8080", false),
            with(Some("http://LOCALHOST:3000"), "127.0.0.1:3000", false),
            with(None, "127.0.0.1:0", false),
            with(None, "[::1]:0", false),
        ] {
            assert!(
                allowed.check_transport().is_ok(),
                "{:?}",
                allowed.public_url
            );
            assert!(!allowed.serves_insecure_http());
        }
        for refused in [
            with(Some("http://example.com"), "127.0.0.1:8080", false),
            with(Some("http://10.0.0.1"), "127.0.0.1:8080", false),
            with(
                Some("http://localhost.example.com"),
                "127.0.0.1:8080",
                false,
            ),
            with(Some("http://[fe80::1]:8080"), "127.0.0.1:8080", false),
            with(None, "0.0.0.0:8080", false),
            with(None, "192.0.2.1:8080", false),
        ] {
            assert!(
                refused.check_transport().is_err(),
                "{:?}",
                refused.public_url
            );
            let insisted = Settings {
                insecure_http: true,
                ..refused
            };
            assert!(insisted.check_transport().is_ok());
            assert!(insisted.serves_insecure_http());
        }
    }

    #[test]
    fn a_public_url_is_reduced_to_its_origin() {
        let url = PublicUrl::parse("https://Example.COM/").expect("valid");
        assert_eq!(url.as_str(), "https://example.com");
        assert_eq!(url.did_web(), "did:web:example.com");
        assert!(url.is_https());
    }

    #[test]
    fn a_port_is_percent_encoded_in_the_did() {
        let url = PublicUrl::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(url.did_web(), "did:web:127.0.0.1%3A8080");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080");
    }

    #[test]
    fn an_ipv6_public_url_gives_a_valid_did() {
        let url = PublicUrl::parse("http://[::1]:8080").expect("valid");
        let did = url.did_web();
        assert_eq!(did, "did:web:%5B%3A%3A1%5D%3A8080");
        let id = did.strip_prefix("did:web:").expect("method");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '%')),
            "only DID idchars: {id}"
        );
        assert_eq!(
            id.replace("%3A", ":")
                .replace("%5B", "[")
                .replace("%5D", "]"),
            "[::1]:8080"
        );
        assert_eq!(
            PublicUrl::parse("https://[2001:db8::7]")
                .expect("valid")
                .did_web(),
            "did:web:%5B2001%3Adb8%3A%3A7%5D"
        );
    }

    #[test]
    fn a_public_url_with_a_path_query_or_credentials_is_refused() {
        for bad in [
            "https://example.com/id",
            "https://example.com/?a=1",
            "https://user:pw@example.com",
            "ftp://example.com",
            "example.com",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn flags_win_over_the_configuration_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join(CONFIG_FILE_NAME),
            "listen = \"127.0.0.1:9000\"\npublic_url = \"https://a.example\"\n",
        )
        .expect("write config");
        let settings = Settings::load(Overrides {
            data_dir: Some(dir.path().to_owned()),
            public_url: Some("https://b.example".into()),
            ..Overrides::default()
        })
        .expect("load");
        assert_eq!(settings.listen.port(), 9000);
        assert_eq!(
            settings.public_url.map(|u| u.as_str().to_owned()),
            Some("https://b.example".into())
        );
    }

    #[test]
    fn profile_links_must_be_web_urls() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join(CONFIG_FILE_NAME),
            "[profile]\nname = \"A\"\nlinks = [{ name = \"x\", url = \"javascript:alert(1)\" }]\n",
        )
        .expect("write");
        let result = Settings::load(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        });
        assert!(matches!(result, Err(ConfigError::File { .. })));
    }

    #[test]
    fn audit_retention_defaults_to_a_year_and_is_read_from_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let load = || {
            Settings::load(Overrides {
                data_dir: Some(dir.path().to_owned()),
                ..Overrides::default()
            })
            .expect("load")
            .audit_retention_days
        };
        assert_eq!(load(), 365);
        assert_eq!(Settings::for_data_dir(dir.path()).audit_retention_days, 365);
        std::fs::write(
            dir.path().join(CONFIG_FILE_NAME),
            "audit_retention_days = 0\n",
        )
        .expect("write");
        assert_eq!(load(), 0);
        std::fs::write(
            dir.path().join(CONFIG_FILE_NAME),
            "audit_retention_days = -1\n",
        )
        .expect("write");
        assert!(matches!(
            Settings::load(Overrides {
                data_dir: Some(dir.path().to_owned()),
                ..Overrides::default()
            }),
            Err(ConfigError::File { .. })
        ));
    }

    #[test]
    fn an_unknown_key_in_the_configuration_file_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), "lisen = \"x\"\n").expect("write");
        let result = Settings::load(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        });
        assert!(matches!(result, Err(ConfigError::File { .. })));
    }
}
