//! Benchmarks for BENCHMARKS.md: rates measured side by side in one run against a real
//! `siteid serve` process, reported as ratios. Run with `scripts/bench` (release build).
//!
//! 1. `GET /api/v1/session` (bearer) and `GET /.well-known/jwks.json` against the do-nothing
//!    `GET /api/v1/health`, in interleaved rounds.
//! 2. Complete sign-ins (challenge, login, session read) against the raw ES384 verification
//!    rate of this machine (jsonwebtoken with aws-lc-rs, the node's own verifier).
//! 3. 5,000 concurrent authenticated WebSockets: the server's resident memory, and the time
//!    from `revoke-others` until every socket has received its close frame.
//! 4. The owner's sign-in latency on a node of its own, in alternating blocks without and with
//!    a flood of bad sign-ins and bad unlocks from many loopback source addresses.
//!
//! `bench` runs them all; `bench rates sign-in sockets flood` (any subset) runs only those.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siteid::jose::b64;
use siteid::jose::jwe;
use siteid::jose::jwk::OwnerPrivateKey;
use siteid::jose::jws::{CompactJws, sign_es384};
use siteid::keys::private::PrivateKey;
use siteid::keys::{CredentialKey, JwsAlgorithm, PublicKey};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

const CLIENT_THREADS: usize = 2;
const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 3;
const SIGN_IN_CLIENTS: usize = 8;
const SIGN_INS_PER_CLIENT: usize = 250;
const SOCKETS: usize = 5_000;
const SOCKET_SESSIONS: usize = 50;
/// How long a client waits for a connection or an answer before it counts a failure.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A keep-alive HTTP/1.1 connection with just enough parsing for these endpoints.
struct Connection {
    reader: BufReader<TcpStream>,
    address: SocketAddr,
}

impl Connection {
    fn open(address: SocketAddr) -> Result<Self> {
        Self::over(TcpStream::connect_timeout(&address, IO_TIMEOUT)?, address)
    }

    /// Opens a connection from the local address `source` (any 127.x.y.z on Linux), so the
    /// server sees it as another client.
    fn open_from(address: SocketAddr, source: IpAddr) -> Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
        socket.connect_timeout(&address.into(), IO_TIMEOUT)?;
        Self::over(socket.into(), address)
    }

    fn over(stream: TcpStream, address: SocketAddr) -> Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Connection {
            reader: BufReader::new(stream),
            address,
        })
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{headers}\r\n",
            self.address,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line.split(' ').nth(1).ok_or("no status")?.parse()?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }

    fn json(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &Value,
    ) -> Result<(u16, Value)> {
        let headers = format!("{headers}Content-Type: application/json\r\n");
        let (status, bytes) = self.request(method, path, &headers, body.to_string().as_bytes())?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((status, value))
    }
}

/// The server under test, in its own process.
struct Server {
    child: Child,
    address: SocketAddr,
    base_url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Result<Self> {
        let binary = std::env::var_os("SITEID_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/siteid"));
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("config.toml"),
            format!("websocket_max_per_client = {}\n", SOCKETS + 100),
        )?;
        let mut child = Command::new(&binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .arg("--well-known-dir")
            .arg(dir.path().join("well-known"))
            .env("RUST_LOG", "warn")
            .env_remove("SITEID_BIN")
            .env_remove("SITEID_BENCH_FLOOD_THREADS")
            .env_remove("SITEID_BENCH_FLOOD_NICE")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {}: {e} (build it with cargo build --release)",
                    binary.display()
                )
            })?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
        let base_url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or("no listening line")?
            .to_owned();
        let address: SocketAddr = base_url.trim_start_matches("http://").parse()?;
        Ok(Server {
            child,
            address,
            base_url,
            _dir: dir,
        })
    }

    fn resident_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Server {
    /// CPU seconds the server has used so far (user + system), from /proc.
    fn cpu_seconds(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|stat| {
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                let user: f64 = fields.get(11)?.parse().ok()?;
                let system: f64 = fields.get(12)?.parse().ok()?;
                Some((user + system) / 100.0)
            })
            .unwrap_or(0.0)
    }

    /// The server's SQLite file.
    fn database(&self) -> PathBuf {
        self._dir.path().join(siteid::store::DATABASE_FILE_NAME)
    }

    /// Asks the server to stop (SIGTERM, its graceful stop) and waits up to `limit` for it to
    /// exit; returns whether it did.
    fn terminate(&mut self, limit: Duration) -> bool {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + limit;
        while signalled && Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn claim(server: &Server, key: &OwnerPrivateKey) -> Result<String> {
    let output = Command::new(
        std::env::var_os("SITEID_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| "target/release/siteid".into()),
    )
    .args(["claim-url", "--data-dir"])
    .arg(server._dir.path())
    .output()?;
    let url = String::from_utf8(output.stdout)?;
    let token = url
        .trim()
        .rsplit_once('#')
        .ok_or("no claim link")?
        .1
        .to_owned();
    let (wrapped, verifier) = jwe::wrap_private_key(key, b"benchmark password", jwe::MIN_P2C)?;
    let now = now();
    let proof = sign_es384(
        key,
        &json!({"alg": "ES384", "typ": "siteid-claim+jwt"}),
        &json!({"aud": server.base_url, "nonce": token, "iat": now, "exp": now + 300}),
    );
    // A signed claim, as the browser and the command line make it.
    let verifier_hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(verifier).into();
    let signatures = siteid::auth::claim::OwnerSignatures::for_claim(
        key,
        wrapped.compact(),
        &verifier_hash,
        &server.base_url,
        now,
    );
    let mut connection = Connection::open(server.address)?;
    let (status, body) = connection.json(
        "POST",
        "/api/v1/owner",
        "",
        &json!({
            "claim_token": token,
            "public_key": key.public_key().to_jwk(),
            "wrapped_key": wrapped.compact(),
            "unlock_verifier": b64::encode(&verifier),
            "proof": proof,
            "statement": signatures.statement,
            "record": signatures.record,
        }),
    )?;
    if status != 201 {
        return Err(format!("claim failed: {status} {body}").into());
    }
    Ok(body["kid"].as_str().ok_or("no kid")?.to_owned())
}

/// Asks for a challenge (with no body, so the connection stays reusable).
fn challenge(connection: &mut Connection) -> Result<(u16, Value)> {
    let (status, body) = connection.request("POST", "/api/v1/auth/challenge", "", b"")?;
    Ok((status, serde_json::from_slice(&body)?))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn assertion(key: &OwnerPrivateKey, kid: &str, audience: &str, nonce: &str) -> String {
    let now = now();
    sign_es384(
        key,
        &json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": kid}),
        &json!({"aud": audience, "nonce": nonce, "iat": now, "exp": now + 300}),
    )
}

fn sign_in(server: &Server, key: &OwnerPrivateKey, kid: &str) -> Result<String> {
    Ok(sign_in_timed(server, key, kid)?.0)
}

/// A complete sign-in over one fresh connection: challenge, assertion signed here, login.
/// Returns the access token and the time spent signing.
fn sign_in_timed(server: &Server, key: &OwnerPrivateKey, kid: &str) -> Result<(String, Duration)> {
    let mut connection = Connection::open(server.address)?;
    let (status, body) = connection.request("POST", "/api/v1/auth/challenge", "", b"")?;
    if status != 200 {
        return Err(format!(
            "challenge refused: {status} {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    let challenge: Value = serde_json::from_slice(&body)?;
    let nonce = challenge["nonce"].as_str().ok_or("no nonce")?;
    let signing = Instant::now();
    let assertion = assertion(key, kid, &server.base_url, nonce);
    let signing = signing.elapsed();
    let (status, body) = connection.json(
        "POST",
        "/api/v1/auth/login",
        "",
        &json!({"assertion": assertion}),
    )?;
    if status != 200 {
        return Err(format!("sign-in failed: {status} {body}").into());
    }
    let token = body["access_token"].as_str().ok_or("no token")?.to_owned();
    Ok((token, signing))
}

/// Requests per second on `path` with CLIENT_THREADS keep-alive connections for `duration`.
fn rate(address: SocketAddr, path: &str, headers: &str, duration: Duration) -> Result<f64> {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..CLIENT_THREADS)
        .map(|_| {
            let (count, stop) = (count.clone(), stop.clone());
            let (path, headers) = (path.to_owned(), headers.to_owned());
            std::thread::spawn(move || -> Result<()> {
                let mut connection = Connection::open(address)?;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = connection.request("GET", &path, &headers, b"")?;
                    if status >= 300 {
                        return Err(format!("{path} answered {status}").into());
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread
            .join()
            .map_err(|_| "client thread panicked")?
            .map_err(|e| e.to_string())?;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Verifications per second of `token` on `threads` threads, with the node's sign-in check:
/// the strict parse, then the credential's one algorithm.
fn verification_rate(token: &str, key: CredentialKey, threads: usize, duration: Duration) -> f64 {
    let key = Arc::new(key);
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..threads)
        .map(|_| {
            let (count, stop, key, token) =
                (count.clone(), stop.clone(), key.clone(), token.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let jws = CompactJws::parse_accepting(&token, "siteid-login+jwt", |alg| {
                        JwsAlgorithm::parse(alg).is_some()
                    })
                    .expect("parses");
                    let alg = JwsAlgorithm::parse(&jws.header.alg).expect("alg");
                    let _: Value = jws
                        .verify_by(|input, signature| key.verify_jws(alg, input, signature))
                        .expect("verifies");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The owner key as the registry checks it.
fn owner_credential_key(key: &OwnerPrivateKey) -> CredentialKey {
    let (public, _) = PublicKey::from_jwk_json(&key.public_key().to_json()).expect("owner JWK");
    CredentialKey::new(public, JwsAlgorithm::Es384).expect("ES384")
}

/// A credential key of the test vectors, with a login assertion it signed.
fn vector_credential(file: &str, passphrase: Option<&[u8]>) -> (CredentialKey, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/keys")
        .join(file);
    let text = std::fs::read_to_string(path).expect("vector key");
    let private = PrivateKey::from_pem(&text, passphrase).expect("vector key reads");
    let alg = private.algorithm();
    let token = private.sign_compact(
        &json!({"alg": alg.as_str(), "typ": "siteid-login+jwt", "kid": private.public_key().thumbprint()}),
        &json!({"aud": "https://bench.example", "nonce": b64::encode(&[1; 56]), "iat": now(), "exp": now() + 300}),
    );
    let key = CredentialKey::new(private.public_key().clone(), alg).expect("key");
    (key, token)
}

/// Runs `work` on SIGN_IN_CLIENTS threads with an index each; returns their results in order.
fn on_clients<T: Send + 'static>(
    work: impl Fn(usize) -> Result<T> + Send + Sync + 'static,
) -> Result<Vec<T>> {
    let work = Arc::new(work);
    let threads: Vec<_> = (0..SIGN_IN_CLIENTS)
        .map(|index| {
            let work = work.clone();
            std::thread::spawn(move || work(index))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().map_err(|_| "client thread panicked")?)
        .collect()
}

/// Complete sign-ins per second: challenge, login and a session read, from SIGN_IN_CLIENTS
/// concurrent clients. Challenges are fetched (timed), signed by the clients (not timed: the
/// client's cost), then redeemed (timed), so the figure is the server's.
fn sign_in_rate(server: &Server, key: &OwnerPrivateKey, kid: &str) -> Result<f64> {
    let address = server.address;
    let started = Instant::now();
    let nonces: Vec<Vec<String>> = on_clients(move |_| {
        let mut connection = Connection::open(address)?;
        (0..SIGN_INS_PER_CLIENT)
            .map(|_| {
                let (_, challenge) = challenge(&mut connection)?;
                Ok(challenge["nonce"].as_str().ok_or("no nonce")?.to_owned())
            })
            .collect()
    })?;
    let fetching = started.elapsed();
    let assertions: Vec<Vec<String>> = nonces
        .iter()
        .map(|batch| {
            batch
                .iter()
                .map(|n| assertion(key, kid, &server.base_url, n))
                .collect()
        })
        .collect();
    let assertions = Arc::new(assertions);
    let started = Instant::now();
    let counts = on_clients(move |index| {
        let mut connection = Connection::open(address)?;
        for assertion in &assertions[index] {
            let (status, body) = connection.json(
                "POST",
                "/api/v1/auth/login",
                "",
                &json!({"assertion": assertion}),
            )?;
            if status != 200 {
                return Err(format!("sign-in failed: {status} {body}").into());
            }
            let token = body["access_token"].as_str().ok_or("no token")?;
            let (status, _) = connection.request(
                "GET",
                "/api/v1/session",
                &format!("Authorization: Bearer {token}\r\n"),
                b"",
            )?;
            if status != 200 {
                return Err(format!("session read failed: {status}").into());
            }
        }
        Ok(assertions[index].len())
    })?;
    let redeeming = started.elapsed();
    let done: usize = counts.iter().sum();
    Ok(done as f64 / (fetching + redeeming).as_secs_f64())
}

type Socket = tungstenite::WebSocket<TcpStream>;

fn open_socket(server: &Server, token: &str) -> Result<Socket> {
    let request = format!("ws://{}/api/v1/ws", server.address).into_client_request()?;
    let stream = TcpStream::connect(server.address)?;
    let (mut socket, _) =
        tungstenite::client::client(request, stream).map_err(|e| format!("handshake: {e}"))?;
    let _challenge = socket.read()?;
    socket.send(Message::text(
        json!({"type": "auth", "access_token": token}).to_string(),
    ))?;
    match socket.read()? {
        Message::Text(text) if text.contains("\"ready\"") => {}
        other => return Err(format!("no ready frame: {other:?}").into()),
    }
    socket.get_mut().set_nonblocking(true)?;
    Ok(socket)
}

/// Reads what is waiting on every open socket; returns how many have been closed by the server.
fn drain(sockets: &mut [Option<Socket>]) -> usize {
    let mut closed = 0;
    for slot in sockets.iter_mut() {
        let Some(socket) = slot else {
            closed += 1;
            continue;
        };
        loop {
            match socket.read() {
                Ok(Message::Close(_)) => {
                    *slot = None;
                    closed += 1;
                    break;
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = socket.flush();
                    break;
                }
                Err(_) => {
                    *slot = None;
                    closed += 1;
                    break;
                }
            }
        }
    }
    closed
}

/// The scenarios a run can choose, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Rates,
    SignIn,
    Sockets,
    Flood,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Rates,
        Scenario::SignIn,
        Scenario::Sockets,
        Scenario::Flood,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Rates => "rates",
            Scenario::SignIn => "sign-in",
            Scenario::Sockets => "sockets",
            Scenario::Flood => "flood",
        }
    }
}

/// The scenarios named on the command line, or all of them when none is.
fn chosen_scenarios() -> Result<Vec<Scenario>> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        return Ok(Scenario::ALL.to_vec());
    }
    for name in &names {
        if !Scenario::ALL.iter().any(|s| s.name() == name) {
            let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            return Err(format!(
                "unknown scenario {name:?}; choose from {}",
                known.join(", ")
            )
            .into());
        }
    }
    Ok(Scenario::ALL
        .into_iter()
        .filter(|s| names.iter().any(|n| n == s.name()))
        .collect())
}

fn main() -> Result<()> {
    let scenarios = chosen_scenarios()?;
    if scenarios.iter().any(|s| *s != Scenario::Flood) {
        let server = Server::start().map_err(|e| format!("starting the server: {e}"))?;
        let key = OwnerPrivateKey::generate();
        let kid = claim(&server, &key).map_err(|e| format!("claiming: {e}"))?;
        let token = sign_in(&server, &key, &kid).map_err(|e| format!("signing in: {e}"))?;
        let bearer = format!("Authorization: Bearer {token}\r\n");
        println!(
            "siteid benchmark: server pid {}, {} client threads, {} cores",
            server.child.id(),
            CLIENT_THREADS,
            cores()
        );
        if scenarios.contains(&Scenario::Rates) {
            request_rates(&server, &bearer)?;
        }
        if scenarios.contains(&Scenario::SignIn) {
            sign_in_figures(&server, &key, &kid)?;
        }
        if scenarios.contains(&Scenario::Sockets) {
            websockets(&server, &key, &kid, &bearer)?;
        }
    }
    if scenarios.contains(&Scenario::Flood) {
        flood::run()?;
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Scenario 1: request rates against the do-nothing endpoint.
fn request_rates(server: &Server, bearer: &str) -> Result<()> {
    let mut totals = [0.0f64; 3];
    for _ in 0..ROUNDS {
        totals[0] += rate(server.address, "/api/v1/health", "", ROUND)?;
        totals[1] += rate(server.address, "/api/v1/session", bearer, ROUND)?;
        totals[2] += rate(server.address, "/.well-known/jwks.json", "", ROUND)?;
    }
    let [health, session, jwks] = totals.map(|t| t / ROUNDS as f64);
    println!(
        "\n## Request rates ({ROUNDS} interleaved rounds of {} s)",
        ROUND.as_secs()
    );
    println!("| endpoint | requests/s | ratio to do-nothing |");
    println!("|---|---:|---:|");
    println!("| GET /api/v1/health (do-nothing) | {health:.0} | 1.00 |");
    println!(
        "| GET /api/v1/session (bearer) | {session:.0} | {:.2} |",
        session / health
    );
    println!(
        "| GET /.well-known/jwks.json | {jwks:.0} | {:.2} |",
        jwks / health
    );

    Ok(())
}

/// Scenario 2: complete sign-ins against the raw verification rate.
fn sign_in_figures(server: &Server, key: &OwnerPrivateKey, kid: &str) -> Result<()> {
    let token = assertion(key, kid, "https://bench.example", &b64::encode(&[1; 56]));
    let per_core = verification_rate(&token, owner_credential_key(key), 1, Duration::from_secs(3));
    let verifications = verification_rate(
        &token,
        owner_credential_key(key),
        CLIENT_THREADS,
        Duration::from_secs(3),
    );
    let cpu_before = server.cpu_seconds();
    let sign_ins = sign_in_rate(server, key, kid)?;
    let server_cpu = server.cpu_seconds() - cpu_before;
    println!("\n## Sign-in");
    println!("| measure | per second | sign-ins as a share of it |");
    println!("|---|---:|---:|");
    println!(
        "| raw ES384 verification, one core (aws-lc-rs) | {per_core:.0} | {:.2} |",
        sign_ins / per_core
    );
    println!(
        "| raw ES384 verification, {CLIENT_THREADS} threads (all cores) | {verifications:.0} | {:.2} |",
        sign_ins / verifications
    );
    println!(
        "| complete sign-ins (challenge + login + session), {SIGN_IN_CLIENTS} clients | {sign_ins:.0} | |"
    );
    let total = (SIGN_IN_CLIENTS * SIGN_INS_PER_CLIENT) as f64;
    println!(
        "\nServer CPU per complete sign-in: {:.0} µs; one ES384 verification on one core: {:.0} µs.",
        server_cpu / total * 1e6,
        1e6 / per_core
    );

    // The other credential algorithms, side by side on one core in the same run.
    println!("\n| credential algorithm | verifications per second, one core | ratio to ES384 |");
    println!("|---|---:|---:|");
    for (label, file, passphrase) in [
        ("ES384 (P-384, SEC1 file)", "p384-sec1.pem", None),
        ("ES256 (P-256, OpenSSH file)", "openssh-ec256", None),
        (
            "EdDSA (Ed25519, OpenSSH file)",
            "openssh-ed25519-passphrase-secret",
            Some(&b"secret"[..]),
        ),
        ("RS256 (RSA 2048, OpenSSH file)", "openssh-rsa", None),
    ] {
        let (key, token) = vector_credential(file, passphrase);
        let rate = verification_rate(&token, key, 1, Duration::from_secs(2));
        println!("| {label} | {rate:.0} | {:.2} |", rate / per_core);
    }

    Ok(())
}

/// Scenario 3: thousands of authenticated WebSockets, then one revocation that closes them.
fn websockets(server: &Server, key: &OwnerPrivateKey, kid: &str, bearer: &str) -> Result<()> {
    let tokens: Vec<String> = (0..SOCKET_SESSIONS)
        .map(|_| sign_in(server, key, kid))
        .collect::<Result<_>>()?;
    let before = server.resident_kib();
    let opened = Instant::now();
    let mut sockets: Vec<Option<Socket>> = Vec::with_capacity(SOCKETS);
    for index in 0..SOCKETS {
        sockets.push(Some(open_socket(server, &tokens[index % SOCKET_SESSIONS])?));
        if index % 500 == 499 {
            drain(&mut sockets);
        }
    }
    let open_time = opened.elapsed();
    drain(&mut sockets);
    let after = server.resident_kib();
    let revoked = Instant::now();
    let mut connection = Connection::open(server.address)?;
    let (status, body) =
        connection.json("POST", "/api/v1/sessions/revoke-others", bearer, &json!({}))?;
    if status != 200 {
        return Err(format!("revoke-others failed: {status} {body}").into());
    }
    let answered = revoked.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut closed = 0;
    while closed < SOCKETS && Instant::now() < deadline {
        closed = drain(&mut sockets);
    }
    let all_closed = revoked.elapsed();
    println!("\n## {SOCKETS} authenticated WebSockets ({SOCKET_SESSIONS} sessions)");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| time to open and authenticate all | {:.2} s |",
        open_time.as_secs_f64()
    );
    println!(
        "| server resident memory before | {:.1} MiB |",
        before as f64 / 1024.0
    );
    println!(
        "| server resident memory with all open | {:.1} MiB |",
        after as f64 / 1024.0
    );
    println!(
        "| per socket | {:.1} KiB |",
        (after.saturating_sub(before)) as f64 / SOCKETS as f64
    );
    println!(
        "| revoke-others answered ({} sessions revoked) | {:.0} ms |",
        body["revoked"],
        answered.as_secs_f64() * 1000.0
    );
    println!(
        "| until all {closed} sockets had their close frame | {:.0} ms |",
        all_closed.as_secs_f64() * 1000.0
    );
    if closed < SOCKETS {
        return Err(format!("only {closed} of {SOCKETS} sockets closed within 60 s").into());
    }
    Ok(())
}

/// Scenario 4: the owner's sign-in latency while other clients flood bad sign-ins and bad
/// unlocks from many loopback addresses, beside the same latency without the flood.
mod flood {
    use super::*;

    /// Flood client threads, unless `SITEID_BENCH_FLOOD_THREADS` says otherwise. On the current
    /// code the flood's rate stops growing at about four; six keep the node's queue full.
    const THREADS: usize = 6;
    /// Pairs of blocks: one quiet, then one under flood.
    const BLOCK_PAIRS: usize = 20;
    /// Owner sign-ins per block, one after another.
    const SIGN_INS_PER_BLOCK: usize = 25;
    /// Unmeasured owner sign-ins before the first block.
    const WARM_UP_SIGN_INS: usize = 10;
    /// Requests sent from one source address (alternately a bad sign-in and a bad unlock)
    /// before the next: 4 of each, under the per-client limits of 10 failures.
    const REQUESTS_PER_ADDRESS: usize = 8;
    /// Flood answers to wait for before a flood block's first owner sign-in is timed.
    const RAMP_ANSWERS: u64 = 50;
    /// Bounds on a flood block, whatever the node does.
    const BLOCK_LIMIT: Duration = Duration::from_secs(300);
    const MAX_REQUESTS_PER_THREAD: u64 = 5_000_000;
    /// A thread that cannot connect this many times in a row gives up.
    const MAX_CONNECT_FAILURES_IN_A_ROW: u64 = 1_000;
    /// Bad assertions made before the flood, used round-robin.
    const BAD_ASSERTIONS: usize = 16;
    /// The failure tables (sign-in failures: one row per client since migration 0006; before,
    /// `login_failure` held one row per failure) and the audit log.
    const TABLES: [&str; 3] = ["login_throttle", "unlock_failure", "audit_log"];

    /// The `n`th flood source address, 127.A.B.C with A from 1 (never 127.0.0.1, the owner):
    /// consecutive addresses go to the 256 different /24s of 127.A.0.0/16 before any /24 gets
    /// a second one.
    fn source_address(n: u64) -> Ipv4Addr {
        let b = n % 256;
        let c = 1 + (n / 256) % 254;
        let a = 1 + (n / (256 * 254)) % 254;
        Ipv4Addr::new(127, a as u8, b as u8, c as u8)
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Endpoint {
        Login,
        Unlock,
        Connect,
    }

    impl Endpoint {
        fn label(self) -> &'static str {
            match self {
                Endpoint::Login => "POST /api/v1/auth/login (bad assertion)",
                Endpoint::Unlock => "POST /api/v1/unlock (wrong verifier)",
                Endpoint::Connect => "connecting from a flood address",
            }
        }
    }

    /// Answers by endpoint and status; status 0 is a transport failure (refused, reset, timed
    /// out).
    type Tally = BTreeMap<(Endpoint, u16), u64>;

    /// The flood's shared state for one block.
    struct Flood {
        stop: Arc<AtomicBool>,
        answered: Arc<AtomicU64>,
        threads: Vec<std::thread::JoinHandle<Tally>>,
    }

    impl Flood {
        fn start(
            address: SocketAddr,
            threads: usize,
            next_source: &Arc<AtomicU64>,
            assertions: &Arc<Vec<String>>,
        ) -> Flood {
            let stop = Arc::new(AtomicBool::new(false));
            let answered = Arc::new(AtomicU64::new(0));
            let threads = (0..threads)
                .map(|_| {
                    let (stop, answered) = (stop.clone(), answered.clone());
                    let (next_source, assertions) = (next_source.clone(), assertions.clone());
                    std::thread::spawn(move || {
                        lower_priority(flood_nice());
                        flood_client(address, &stop, &answered, &next_source, &assertions)
                    })
                })
                .collect();
            Flood {
                stop,
                answered,
                threads,
            }
        }

        /// Waits (up to 10 s) until the flood has had RAMP_ANSWERS answers.
        fn ramp_up(&self) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.answered.load(Ordering::Relaxed) < RAMP_ANSWERS && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        fn stop(self, tally: &mut Tally) {
            self.stop.store(true, Ordering::Relaxed);
            for thread in self.threads {
                match thread.join() {
                    Ok(counts) => {
                        for (key, count) in counts {
                            *tally.entry(key).or_default() += count;
                        }
                    }
                    Err(_) => eprintln!("a flood thread panicked"),
                }
            }
        }
    }

    /// One flood client: as fast as it can, a bad sign-in and a bad unlock in turn, over one
    /// keep-alive connection per source address, moving to a new address every
    /// REQUESTS_PER_ADDRESS requests.
    fn flood_client(
        address: SocketAddr,
        stop: &AtomicBool,
        answered: &AtomicU64,
        next_source: &AtomicU64,
        assertions: &[String],
    ) -> Tally {
        let mut tally = Tally::new();
        let deadline = Instant::now() + BLOCK_LIMIT;
        let (mut sent, mut connect_failures) = (0u64, 0u64);
        while !stop.load(Ordering::Relaxed)
            && Instant::now() < deadline
            && sent < MAX_REQUESTS_PER_THREAD
            && connect_failures < MAX_CONNECT_FAILURES_IN_A_ROW
        {
            let source = source_address(next_source.fetch_add(1, Ordering::Relaxed));
            let mut connection = match Connection::open_from(address, source.into()) {
                Ok(connection) => connection,
                Err(_) => {
                    *tally.entry((Endpoint::Connect, 0)).or_default() += 1;
                    connect_failures += 1;
                    continue;
                }
            };
            connect_failures = 0;
            for index in 0..REQUESTS_PER_ADDRESS {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (endpoint, path, body) = if index % 2 == 0 {
                    let assertion = &assertions[(sent as usize) % assertions.len()];
                    (
                        Endpoint::Login,
                        "/api/v1/auth/login",
                        json!({ "assertion": assertion }),
                    )
                } else {
                    let verifier: [u8; 32] = rand::random();
                    (
                        Endpoint::Unlock,
                        "/api/v1/unlock",
                        json!({ "unlock_verifier": b64::encode(&verifier) }),
                    )
                };
                sent += 1;
                match connection.json("POST", path, "", &body) {
                    Ok((status, _)) => {
                        *tally.entry((endpoint, status)).or_default() += 1;
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        *tally.entry((endpoint, 0)).or_default() += 1;
                        break;
                    }
                }
            }
        }
        tally
    }

    /// Sign-ins naming the owner's kid, over real challenges, signed by another key: the
    /// server checks the signature before anything else can refuse them.
    fn bad_assertions(server: &Server, kid: &str) -> Result<Vec<String>> {
        let attacker = OwnerPrivateKey::generate();
        let mut connection = Connection::open(server.address)?;
        (0..BAD_ASSERTIONS)
            .map(|_| {
                let (_, challenge) = challenge(&mut connection)?;
                let nonce = challenge["nonce"].as_str().ok_or("no nonce")?;
                Ok(assertion(&attacker, kid, &server.base_url, nonce))
            })
            .collect()
    }

    /// The owner's sign-in latencies of one condition.
    #[derive(Default)]
    struct Latencies {
        total: Vec<Duration>,
        signing: Vec<Duration>,
        refused: Vec<String>,
        server_cpu: f64,
        wall: Duration,
    }

    impl Latencies {
        /// One block of owner sign-ins, one after another.
        fn block(&mut self, server: &Server, key: &OwnerPrivateKey, kid: &str, label: &str) {
            for _ in 0..SIGN_INS_PER_BLOCK {
                let started = Instant::now();
                match sign_in_timed(server, key, kid) {
                    Ok((_, signing)) => {
                        self.total.push(started.elapsed());
                        self.signing.push(signing);
                    }
                    Err(error) => {
                        eprintln!("!!! OWNER SIGN-IN REFUSED ({label}): {error}");
                        self.refused.push(error.to_string());
                    }
                }
            }
        }
    }

    /// The value below which `share` of the sorted `values` lie (nearest rank).
    fn percentile(sorted: &[Duration], share: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((share * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn milliseconds(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }

    /// Rows in the node's failure and audit tables, read from its SQLite file read-only.
    fn row_counts(database: &Path) -> Result<[i64; 3]> {
        let connection = rusqlite::Connection::open_with_flags(
            database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut counts = [0i64; 3];
        for (count, table) in counts.iter_mut().zip(TABLES) {
            *count = connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })?;
        }
        Ok(counts)
    }

    /// The machine's 1-minute load average, which counts other processes competing for the
    /// cores.
    fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into())
    }

    /// The audit entries by event name, most frequent first.
    fn audit_events(database: &Path) -> Result<Vec<(String, i64)>> {
        let connection = rusqlite::Connection::open_with_flags(
            database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut statement = connection
            .prepare("SELECT event, COUNT(*) FROM audit_log GROUP BY event ORDER BY 2 DESC, 1")?;
        let events = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(events)
    }

    /// The nice value of the flood threads: `SITEID_BENCH_FLOOD_NICE` (0 to 19), default 0.
    /// A positive value stands for attackers on other machines: their clients then do not
    /// take CPU from the node or from the owner's client, which share this machine with them.
    fn flood_nice() -> i32 {
        std::env::var("SITEID_BENCH_FLOOD_NICE")
            .ok()
            .and_then(|text| text.parse().ok())
            .filter(|nice| (0..=19).contains(nice))
            .unwrap_or(0)
    }

    /// Lowers the calling thread's CPU priority to `nice` (Linux sets nice per thread).
    fn lower_priority(nice: i32) {
        if nice > 0 {
            // SAFETY: setpriority only reads its arguments; `who` 0 is the calling thread.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, nice);
            }
        }
    }

    fn flood_threads() -> Result<usize> {
        match std::env::var("SITEID_BENCH_FLOOD_THREADS") {
            Ok(text) => {
                let threads: usize = text.parse()?;
                if !(1..=64).contains(&threads) {
                    return Err("SITEID_BENCH_FLOOD_THREADS must be 1 to 64".into());
                }
                Ok(threads)
            }
            Err(_) => Ok(THREADS),
        }
    }

    pub(super) fn run() -> Result<()> {
        let threads = flood_threads()?;
        let mut server = Server::start().map_err(|e| format!("starting the server: {e}"))?;
        if !server.address.ip().is_loopback() {
            return Err(format!("the node listens on {}, not loopback", server.address).into());
        }
        let key = OwnerPrivateKey::generate();
        let kid = claim(&server, &key).map_err(|e| format!("claiming: {e}"))?;
        let assertions = Arc::new(bad_assertions(&server, &kid)?);
        for _ in 0..WARM_UP_SIGN_INS {
            sign_in(&server, &key, &kid).map_err(|e| format!("warming up: {e}"))?;
        }
        println!(
            "\n## Flood (node pid {}, no trusted proxies; {threads} flood threads at nice {} and 1 \
             owner client on {} cores shared with the node)",
            server.child.id(),
            flood_nice(),
            cores()
        );

        let load_before = load_average();
        let next_source = Arc::new(AtomicU64::new(0));
        let (mut quiet, mut flooded) = (Latencies::default(), Latencies::default());
        let mut tally = Tally::new();
        for pair in 1..=BLOCK_PAIRS {
            let (cpu, started) = (server.cpu_seconds(), Instant::now());
            quiet.block(&server, &key, &kid, &format!("quiet block {pair}"));
            quiet.wall += started.elapsed();
            quiet.server_cpu += server.cpu_seconds() - cpu;

            let (cpu, started) = (server.cpu_seconds(), Instant::now());
            let flood = Flood::start(server.address, threads, &next_source, &assertions);
            flood.ramp_up();
            flooded.block(&server, &key, &kid, &format!("flood block {pair}"));
            flood.stop(&mut tally);
            flooded.wall += started.elapsed();
            flooded.server_cpu += server.cpu_seconds() - cpu;
        }
        let load_after = load_average();
        let rows_running = row_counts(&server.database())?;
        let stopped = server.terminate(Duration::from_secs(30));
        let rows_stopped = if stopped {
            Some(row_counts(&server.database())?)
        } else {
            None
        };

        report_latencies(&mut quiet, &mut flooded);
        report_flood(
            &tally,
            &flooded,
            &quiet,
            next_source.load(Ordering::Relaxed),
        );
        println!(
            "Machine load (1-minute average, other processes included): {load_before} before the \
             blocks, {load_after} after."
        );
        println!("\n| table | rows at the end of the last block | after a graceful stop |");
        println!("|---|---:|---:|");
        for (index, table) in TABLES.iter().enumerate() {
            let after = rows_stopped.map_or("(did not stop)".to_owned(), |r| r[index].to_string());
            println!("| {table} | {} | {after} |", rows_running[index]);
        }
        let events: Vec<String> = audit_events(&server.database())?
            .into_iter()
            .map(|(event, count)| format!("{event} {count}"))
            .collect();
        println!("\naudit_log by event: {}.", events.join(", "));
        let refused = quiet.refused.len() + flooded.refused.len();
        if refused > 0 {
            eprintln!("\n!!! {refused} OWNER SIGN-INS WERE REFUSED:");
            for reason in quiet.refused.iter().chain(&flooded.refused) {
                eprintln!("!!!   {reason}");
            }
            return Err(format!("{refused} owner sign-ins were refused").into());
        }
        Ok(())
    }

    fn report_latencies(quiet: &mut Latencies, flooded: &mut Latencies) {
        for latencies in [&mut *quiet, &mut *flooded] {
            latencies.total.sort();
            latencies.signing.sort();
        }
        println!(
            "\nOwner sign-ins (fresh connection from 127.0.0.1: challenge, signing here, login), \
             {BLOCK_PAIRS} quiet and {BLOCK_PAIRS} flood blocks of {SIGN_INS_PER_BLOCK}, alternating."
        );
        println!("\n| owner sign-in | done | refused | median | p99 | max | signing (median) |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (label, latencies) in [("quiet", &*quiet), ("under flood", &*flooded)] {
            println!(
                "| {label} | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
                latencies.total.len(),
                latencies.refused.len(),
                milliseconds(percentile(&latencies.total, 0.5)),
                milliseconds(percentile(&latencies.total, 0.99)),
                milliseconds(latencies.total.last().copied().unwrap_or_default()),
                milliseconds(percentile(&latencies.signing, 0.5)),
            );
        }
        let ratio = |share: f64| {
            percentile(&flooded.total, share).as_secs_f64()
                / percentile(&quiet.total, share).as_secs_f64().max(1e-9)
        };
        println!(
            "| ratio flood / quiet | | | {:.2} | {:.2} | | |",
            ratio(0.5),
            ratio(0.99)
        );
        let refused = quiet.refused.len() + flooded.refused.len();
        println!(
            "\nTarget: p99 under flood within 3x of quiet: {} ({:.2}x). No owner sign-in refused: {} ({refused}).",
            if ratio(0.99) <= 3.0 { "met" } else { "NOT MET" },
            ratio(0.99),
            if refused == 0 { "met" } else { "NOT MET" },
        );
    }

    fn report_flood(tally: &Tally, flooded: &Latencies, quiet: &Latencies, sources: u64) {
        let seconds = flooded.wall.as_secs_f64().max(1e-9);
        println!(
            "\nFlood traffic over {seconds:.1} s of flood blocks ({REQUESTS_PER_ADDRESS} requests \
             per source address, then the next):"
        );
        println!("\n| request | status | answers | per second |");
        println!("|---|---:|---:|---:|");
        let mut total = 0;
        for ((endpoint, status), count) in tally {
            let status = if *status == 0 {
                "failed".to_owned()
            } else {
                status.to_string()
            };
            println!(
                "| {} | {status} | {count} | {:.0} |",
                endpoint.label(),
                *count as f64 / seconds
            );
            if !matches!(endpoint, Endpoint::Connect) {
                total += count;
            }
        }
        println!(
            "| all flood requests | | {total} | {:.0} |",
            total as f64 / seconds
        );
        let networks: HashSet<[u8; 3]> = (0..sources.min(1 << 24))
            .map(|n| {
                let [_, a, b, _] = source_address(n).octets();
                [127, a, b]
            })
            .collect();
        println!(
            "\nSource addresses used: {sources} (127.1.0.1 onwards), in {} /24 networks.",
            networks.len()
        );
        println!(
            "Server CPU: {:.2} s over {seconds:.1} s of flood blocks ({:.2} cores busy, {:.0} µs per \
             flood request); {:.2} s over {:.1} s of quiet blocks ({:.2} cores busy).",
            flooded.server_cpu,
            flooded.server_cpu / seconds,
            flooded.server_cpu / (total.max(1) as f64) * 1e6,
            quiet.server_cpu,
            quiet.wall.as_secs_f64(),
            quiet.server_cpu / quiet.wall.as_secs_f64().max(1e-9),
        );
    }
}
