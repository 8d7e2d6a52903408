//! Talking to a node from the command line: which `--node` URLs are accepted (https anywhere,
//! plain http only to this machine), HTTP requests with certificate checks and size bounds, and
//! WebSockets over the same rules.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Bodies read from a node are refused beyond this size.
const MAX_BODY: u64 = 256 * 1024;
/// How long a request may take in all.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The origin (`scheme://host[:port]`) of a `--node` URL. https is required except for a
/// loopback host (127.0.0.0/8, ::1, localhost), where plain http is allowed for a node under
/// test. Credentials, queries, fragments and paths other than `/` are refused: the node is
/// named by its origin, which is also the audience a signature is for.
pub fn node_origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not carry a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !matches!(url.path(), "" | "/") {
        return Err("give the node's origin only, e.g. https://example.com".into());
    }
    let host = url.host().ok_or("the URL has no host")?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(
                "plain http is allowed only to this machine (127.0.0.1, ::1, localhost); use https"
                    .into(),
            );
        }
        other => return Err(format!("the scheme must be https, not {other}")),
    }
    Ok(url.origin().ascii_serialization())
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    // The aws-lc-rs provider supports the default protocol versions; this cannot fail.
    Arc::new(config.unwrap_or_else(|_| unreachable!("aws-lc-rs supports TLS 1.2 and 1.3")))
}

/// An HTTP agent for `url`: certificate checks, a timeout, and https only unless the host is
/// loopback.
fn agent(url: &str) -> ureq::Agent {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(provider)
        .build();
    let loopback = url::Url::parse(url)
        .ok()
        .is_some_and(|u| u.host().is_some_and(|host| is_loopback(&host)));
    ureq::Agent::config_builder()
        .https_only(!loopback)
        .tls_config(tls)
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        // A redirect could lead off https or to another node; the node never sends one.
        .max_redirects(0)
        .build()
        .into()
}

/// GETs a small document (a JWKS) over HTTP(S).
pub fn fetch(url: &str) -> Result<String, String> {
    let mut response = agent(url).get(url).call().map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the node answered {}", response.status()));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| e.to_string())
}

/// POSTs JSON (or nothing) and returns the status and the JSON answer (`Null` when empty).
pub fn post_json(url: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    call_json("POST", url, None, body)
}

/// Sends `method` (GET, POST, DELETE) with an optional bearer token and JSON body; returns the
/// status and the JSON answer (`Null` when empty).
pub fn call_json(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let agent = agent(url);
    let bearer = token.map(|t| format!("Bearer {t}"));
    let response = match (method, body) {
        ("GET", _) => {
            let mut request = agent.get(url);
            if let Some(bearer) = &bearer {
                request = request.header("authorization", bearer);
            }
            request.call()
        }
        ("DELETE", _) => {
            let mut request = agent.delete(url);
            if let Some(bearer) = &bearer {
                request = request.header("authorization", bearer);
            }
            request.call()
        }
        (_, body) => {
            let mut request = agent.post(url);
            if let Some(bearer) = &bearer {
                request = request.header("authorization", bearer);
            }
            match body {
                Some(body) => request.send_json(body),
                None => request.send_empty(),
            }
        }
    };
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if text.is_empty() {
        return Ok((status, Value::Null));
    }
    let value = serde_json::from_str(&text).map_err(|e| format!("the node's answer: {e}"))?;
    Ok((status, value))
}

/// The `detail` of a problem answer, or the status when there is none.
pub fn problem_detail(status: u16, body: &Value) -> String {
    body.get("detail")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the node answered {status}"))
}

/// A byte stream to a node: plain TCP to loopback, TLS elsewhere. While a deadline is set,
/// reads and writes after it fail (`TimedOut`), so a server that trickles bytes cannot hold a
/// handshake or a challenge open: socket timeouts alone restart with every byte.
pub struct NodeStream {
    inner: StreamKind,
    deadline: Option<std::time::Instant>,
}

enum StreamKind {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl NodeStream {
    /// Sets (or with `None` lifts) the moment after which reads and writes fail.
    pub fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.deadline = deadline;
    }

    fn check_deadline(&self) -> std::io::Result<()> {
        match self.deadline {
            Some(deadline) if std::time::Instant::now() >= deadline => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the node did not answer in time",
            )),
            _ => Ok(()),
        }
    }
}

impl Read for NodeStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.check_deadline()?;
        match &mut self.inner {
            StreamKind::Plain(stream) => stream.read(buf),
            StreamKind::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for NodeStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.check_deadline()?;
        match &mut self.inner {
            StreamKind::Plain(stream) => stream.write(buf),
            StreamKind::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            StreamKind::Plain(stream) => stream.flush(),
            StreamKind::Tls(stream) => stream.flush(),
        }
    }
}

/// A TCP connection to one of `host`'s addresses, each tried for at most `timeout`.
fn connect_within(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address");
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// A WebSocket to the node at `origin` (as [`node_origin`] returns it), at `path`.
pub fn websocket(origin: &str, path: &str) -> Result<tungstenite::WebSocket<NodeStream>, String> {
    websocket_with_timeout(origin, path, Duration::from_secs(60))
}

/// Like [`websocket`], with reads that give up after `read_timeout` (a loop that also does
/// other work reads in short slices).
pub fn websocket_with_timeout(
    origin: &str,
    path: &str,
    read_timeout: Duration,
) -> Result<tungstenite::WebSocket<NodeStream>, String> {
    use tungstenite::client::IntoClientRequest;
    let url = url::Url::parse(origin).map_err(|e| e.to_string())?;
    let host = url.host_str().ok_or("no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let tcp_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = connect_within(&tcp_host, port, Duration::from_secs(10))
        .map_err(|e| format!("cannot connect to {origin}: {e}"))?;
    tcp.set_read_timeout(Some(read_timeout))
        .map_err(|e| e.to_string())?;
    let stream = if url.scheme() == "https" {
        let name = rustls::pki_types::ServerName::try_from(tcp_host.clone())
            .map_err(|e| format!("{host}: {e}"))?;
        let connection =
            rustls::ClientConnection::new(tls_config(), name).map_err(|e| e.to_string())?;
        StreamKind::Tls(Box::new(rustls::StreamOwned::new(connection, tcp)))
    } else {
        StreamKind::Plain(tcp)
    };
    // The handshake as a whole must finish within ten seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stream = NodeStream {
        inner: stream,
        deadline: Some(deadline),
    };
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    let request = format!("{scheme}://{authority}{path}")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let mut attempt = tungstenite::client::client(request, stream);
    loop {
        match attempt {
            Ok((mut socket, _)) => {
                socket.get_mut().set_deadline(None);
                return Ok(socket);
            }
            Err(tungstenite::HandshakeError::Interrupted(pending))
                if std::time::Instant::now() < deadline =>
            {
                attempt = pending.handshake();
            }
            Err(tungstenite::HandshakeError::Interrupted(_)) => {
                return Err("the WebSocket handshake did not finish in ten seconds".into());
            }
            Err(tungstenite::HandshakeError::Failure(e)) => {
                return Err(format!("the WebSocket handshake failed: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_plain_http_only_to_this_machine() {
        assert_eq!(
            node_origin("https://example.com/").as_deref(),
            Ok("https://example.com")
        );
        assert_eq!(
            node_origin("https://example.com:8443").as_deref(),
            Ok("https://example.com:8443")
        );
        for loopback in [
            "http://127.0.0.1:8080",
            "http://127.9.8.7:1",
            "http://[::1]:8080/",
            "http://localhost:3000",
            "http://LOCALHOST:3000",
        ] {
            assert!(node_origin(loopback).is_ok(), "{loopback}");
        }
        for refused in [
            "http://example.com",
            "http://10.0.0.1",
            "http://192.168.1.1:8080",
            "http://[fe80::1]",
            "http://0.0.0.0:8080",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "ftp://example.com",
            "https://user:pw@example.com",
            "https://example.com/api",
            "https://example.com/?x=1",
            "https://example.com/#frag",
            "example.com",
            "",
        ] {
            assert!(node_origin(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_origin_is_what_a_signature_names() {
        // Default ports drop out, as they do in the node's public URL.
        assert_eq!(
            node_origin("https://example.com:443").as_deref(),
            Ok("https://example.com")
        );
        assert_eq!(
            node_origin("http://127.0.0.1:80").as_deref(),
            Ok("http://127.0.0.1")
        );
    }

    #[test]
    fn a_server_that_trickles_its_handshake_answer_is_given_up_on() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        // One byte of an endless header every 200 ms, for at most two minutes: without a
        // deadline the client would wait for all of it and then fail on the end of the stream.
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let _ = stream.write_all(b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ");
            for _ in 0..600 {
                if stream.write_all(b"a").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let origin = format!("http://127.0.0.1:{port}");
        let refused = websocket_with_timeout(&origin, "/api/v1/ws", Duration::from_secs(1))
            .err()
            .expect("the handshake fails");
        assert!(refused.contains("in time"), "{refused}");
        let _ = server.join();
    }
}
