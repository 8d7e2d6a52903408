//! Benchmarks for BENCHMARKS.md: rates measured side by side in one run against a real
//! `siteid serve` process, reported as ratios. Run with `scripts/bench` (release build).
//!
//! 1. `GET /api/v1/session` (bearer) and `GET /.well-known/jwks.json` against the do-nothing
//!    `GET /api/v1/health`, in interleaved rounds.
//! 2. Complete sign-ins (challenge, login, session read) against the raw ES384 verification
//!    rate of this machine (jsonwebtoken with aws-lc-rs, the node's own verifier).
//! 3. 5,000 concurrent authenticated WebSockets: the server's resident memory, and the time
//!    from `revoke-others` until every socket has received its close frame.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siteid::jose::b64;
use siteid::jose::jwe;
use siteid::jose::jwk::OwnerPrivateKey;
use siteid::jose::jws::{CompactJws, VerifyingKey, sign_es384};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

const CLIENT_THREADS: usize = 2;
const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 3;
const SIGN_IN_CLIENTS: usize = 8;
const SIGN_INS_PER_CLIENT: usize = 250;
const SOCKETS: usize = 5_000;
const SOCKET_SESSIONS: usize = 50;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A keep-alive HTTP/1.1 connection with just enough parsing for these endpoints.
struct Connection {
    reader: BufReader<TcpStream>,
    address: SocketAddr,
}

impl Connection {
    fn open(address: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
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
    let mut connection = Connection::open(server.address)?;
    let (_, challenge) = challenge(&mut connection)?;
    let nonce = challenge["nonce"].as_str().ok_or("no nonce")?;
    let (status, body) = connection.json(
        "POST",
        "/api/v1/auth/login",
        "",
        &json!({"assertion": assertion(key, kid, &server.base_url, nonce)}),
    )?;
    if status != 200 {
        return Err(format!("sign-in failed: {status} {body}").into());
    }
    Ok(body["access_token"].as_str().ok_or("no token")?.to_owned())
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

/// ES384 verifications per second on `threads` threads, with the node's verifier.
fn verification_rate(key: &OwnerPrivateKey, kid: &str, threads: usize, duration: Duration) -> f64 {
    let token = assertion(key, kid, "https://bench.example", &b64::encode(&[1; 56]));
    let verifying = Arc::new(VerifyingKey::new(key.public_key()));
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..threads)
        .map(|_| {
            let (count, stop, verifying, token) = (
                count.clone(),
                stop.clone(),
                verifying.clone(),
                token.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let jws = CompactJws::parse(&token, "siteid-login+jwt").expect("parses");
                    let _: Value = jws.verify_with(&verifying).expect("verifies");
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

fn main() -> Result<()> {
    let server = Server::start().map_err(|e| format!("starting the server: {e}"))?;
    let key = OwnerPrivateKey::generate();
    let kid = claim(&server, &key).map_err(|e| format!("claiming: {e}"))?;
    let token = sign_in(&server, &key, &kid).map_err(|e| format!("signing in: {e}"))?;
    let bearer = format!("Authorization: Bearer {token}\r\n");
    println!(
        "siteid benchmark: server pid {}, {} client threads, {} cores",
        server.child.id(),
        CLIENT_THREADS,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    let mut totals = [0.0f64; 3];
    for _ in 0..ROUNDS {
        totals[0] += rate(server.address, "/api/v1/health", "", ROUND)?;
        totals[1] += rate(server.address, "/api/v1/session", &bearer, ROUND)?;
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

    let per_core = verification_rate(&key, &kid, 1, Duration::from_secs(3));
    let verifications = verification_rate(&key, &kid, CLIENT_THREADS, Duration::from_secs(3));
    let cpu_before = server.cpu_seconds();
    let sign_ins = sign_in_rate(&server, &key, &kid)?;
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

    let tokens: Vec<String> = (0..SOCKET_SESSIONS)
        .map(|_| sign_in(&server, &key, &kid))
        .collect::<Result<_>>()?;
    let before = server.resident_kib();
    let opened = Instant::now();
    let mut sockets: Vec<Option<Socket>> = Vec::with_capacity(SOCKETS);
    for index in 0..SOCKETS {
        sockets.push(Some(open_socket(
            &server,
            &tokens[index % SOCKET_SESSIONS],
        )?));
        if index % 500 == 499 {
            drain(&mut sockets);
        }
    }
    let open_time = opened.elapsed();
    drain(&mut sockets);
    let after = server.resident_kib();
    let revoked = Instant::now();
    let mut connection = Connection::open(server.address)?;
    let (status, body) = connection.json(
        "POST",
        "/api/v1/sessions/revoke-others",
        &bearer,
        &json!({}),
    )?;
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
