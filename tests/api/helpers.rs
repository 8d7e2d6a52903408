//! Test fixtures: starting and stopping nodes, an HTTP client that never treats a status as an
//! error, and an owner whose key and wrapped key come from the project's test vector.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use siteid::auth::key_history::{self, Reason};
use siteid::clock::{Clock, ManualClock, SystemClock};
use siteid::config::Settings;
use siteid::jose::b64;
use siteid::jose::jwk::OwnerPrivateKey;
use siteid::jose::jws::sign_es384;
use siteid::startup::Application;
use siteid::store::{Store, StoreError, owner};

/// A node running on its own thread and actix system.
pub struct TestNode {
    pub address: SocketAddr,
    pub base_url: String,
    /// The node's public URL: the audience of its proofs (`base_url` unless one was set).
    pub audience: String,
    pub data_dir: PathBuf,
    stopper: Option<siteid::startup::Stopper>,
    thread: Option<std::thread::JoinHandle<()>>,
    agent: ureq::Agent,
}

/// Options for starting a node.
#[derive(Clone)]
pub struct NodeOptions {
    pub clock: Arc<dyn Clock>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub public_url: Option<String>,
    pub websocket_max_per_client: Option<usize>,
    /// Session lifetimes other than the defaults.
    pub session_policy: Option<siteid::config::SessionPolicy>,
    /// Inbox limits other than the defaults.
    pub inbox: Option<siteid::config::InboxSettings>,
    /// The address to listen on (a restarted node on its former port); port 0 otherwise.
    pub listen: Option<std::net::SocketAddr>,
    /// The configured enrollment mode (`open` by default).
    pub enrollment: siteid::config::EnrollmentMode,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            clock: Arc::new(SystemClock),
            trusted_proxies: Vec::new(),
            public_url: None,
            websocket_max_per_client: None,
            session_policy: None,
            inbox: None,
            listen: None,
            enrollment: Default::default(),
        }
    }
}

/// A fresh node on a new temporary directory. The directory lives as long as the returned guard.
pub fn spawn_node() -> (tempfile::TempDir, TestNode) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(dir.path(), NodeOptions::default());
    (dir, node)
}

/// A fresh node on loopback whose public URL is the public-looking `https://id.example`: it
/// must never fetch from loopback, which tests watch with loopback listeners.
pub fn spawn_public_node() -> (tempfile::TempDir, TestNode) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            public_url: Some("https://id.example".into()),
            ..NodeOptions::default()
        },
    );
    (dir, node)
}

/// A fresh node that believes `X-Forwarded-For` from 127.0.0.1, so that a test can play many
/// clients.
pub fn spawn_node_behind_proxy() -> (tempfile::TempDir, TestNode) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            ..NodeOptions::default()
        },
    );
    (dir, node)
}

/// A node with a hand-driven clock starting at the real time.
pub fn spawn_node_with_clock() -> (tempfile::TempDir, TestNode, ManualClock) {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(SystemClock.now());
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            clock: Arc::new(clock.clone()),
            ..NodeOptions::default()
        },
    );
    (dir, node, clock)
}

impl TestNode {
    /// Starts a node on `data_dir`, waiting until it is bound.
    pub fn start(data_dir: &Path, options: NodeOptions) -> TestNode {
        if std::env::var_os("TEST_LOG").is_some() {
            siteid::telemetry::init();
        }
        let mut settings = Settings::for_data_dir(data_dir);
        // The profile comes from the data directory's config.toml, when a test writes one.
        settings.profile = Settings::load(siteid::config::Overrides {
            data_dir: Some(data_dir.to_owned()),
            ..Default::default()
        })
        .expect("the test configuration loads")
        .profile;
        settings.listen = options
            .listen
            .unwrap_or_else(|| "127.0.0.1:0".parse().expect("address"));
        settings.trusted_proxies = options.trusted_proxies.clone();
        settings.public_url = options
            .public_url
            .as_deref()
            .map(|url| siteid::config::PublicUrl::parse(url).expect("public url"));
        if let Some(max) = options.websocket_max_per_client {
            settings.websocket_max_per_client = max;
        }
        if let Some(policy) = options.session_policy {
            settings.session_policy = policy;
        }
        if let Some(inbox) = options.inbox {
            settings.inbox = inbox;
        }
        settings.enrollment = options.enrollment;
        let (sender, receiver) = mpsc::channel();
        let clock = options.clock.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let application = Application::build_with_clock(settings, clock)
                    .await
                    .expect("the node starts");
                sender
                    .send((application.address(), application.stopper()))
                    .expect("test is waiting");
                application
                    .run_until_stopped()
                    .await
                    .expect("the node runs");
            });
        });
        let (address, stopper) = receiver.recv().expect("the node reports its address");
        let base_url = format!("http://{address}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        TestNode {
            address,
            audience: options
                .public_url
                .clone()
                .unwrap_or_else(|| base_url.clone()),
            base_url,
            data_dir: data_dir.to_owned(),
            stopper: Some(stopper),
            thread: Some(thread),
            agent,
        }
    }

    /// Stops the node gracefully and waits for its database to close.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stopper) = self.stopper.take() {
            actix_web::rt::System::new().block_on(stopper.stop());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the node thread ends");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.agent.get(&self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::from(request.call().expect("GET reaches the node"))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, "application/json", body.to_string().as_bytes())
    }

    pub fn post_json_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .agent
            .post(&self.url(path))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::from(
            request
                .send(body.to_string().as_bytes())
                .expect("POST reaches the node"),
        )
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Answer {
        let mut request = self.agent.post(&self.url(path));
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        Answer::from(request.send(body).expect("POST reaches the node"))
    }

    /// Sends `method` to `path` with optional bearer token, JSON body and extra headers.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = self.url(path);
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(token) = bearer {
            all.push(("authorization".into(), format!("Bearer {token}")));
        }
        let response = match method {
            "GET" | "DELETE" => {
                let mut request = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                for (name, value) in &all {
                    request = request.header(name, value);
                }
                request.call()
            }
            _ => {
                let mut request = match method {
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    "POST" => self.agent.post(&url),
                    other => panic!("call() does not send {other}"),
                };
                for (name, value) in &all {
                    request = request.header(name, value);
                }
                match body {
                    Some(body) => request
                        .header("content-type", "application/json")
                        .send(body.to_string().as_bytes()),
                    None => request.send_empty(),
                }
            }
        };
        Answer::from(response.expect("the request reaches the node"))
    }

    /// A fresh sign-in challenge nonce.
    pub fn challenge(&self) -> String {
        let answer = self.post_raw("/api/v1/auth/challenge", "", b"");
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.json();
        assert_eq!(body["expires_in"], 120);
        body["nonce"].as_str().expect("nonce").to_owned()
    }

    /// Signs in as `owner`; returns the access token and session id.
    pub fn login(&self, owner: &TestOwner) -> (String, String) {
        self.login_at(owner, now())
    }

    /// Signs in with an assertion issued at `at` (for nodes on a hand-driven clock).
    pub fn login_at(&self, owner: &TestOwner, at: i64) -> (String, String) {
        let assertion = owner.login_assertion_at(self, &self.challenge(), at);
        let answer = self.post_json("/api/v1/auth/login", &json!({ "assertion": assertion }));
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.json();
        (
            body["access_token"].as_str().expect("token").to_owned(),
            body["session_id"].as_str().expect("session").to_owned(),
        )
    }

    /// Steps the session of `token` up with a fresh assertion by `owner` (POST /auth/reauth).
    pub fn step_up(&self, owner: &TestOwner, token: &str) {
        self.step_up_at(owner, token, now());
    }

    /// Steps up with an assertion issued at `at` (for nodes on a hand-driven clock).
    pub fn step_up_at(&self, owner: &TestOwner, token: &str, at: i64) {
        let assertion = owner.login_assertion_at(self, &self.challenge(), at);
        let answer = self.call(
            "POST",
            "/api/v1/auth/reauth",
            Some(token),
            Some(&json!({ "assertion": assertion })),
            &[],
        );
        assert_eq!(answer.status, 204, "step-up failed: {}", answer.body);
    }

    /// Signs in as `owner` and steps the new session up, for sensitive operations.
    pub fn login_stepped_up(&self, owner: &TestOwner) -> (String, String) {
        let (token, session) = self.login(owner);
        self.step_up(owner, &token);
        (token, session)
    }

    /// A password-change body (`PUT /api/v1/owner/wrapped-key`) with a valid proof over a
    /// fresh challenge, issued at `at`.
    pub fn rewrap_body_at(
        &self,
        owner: &TestOwner,
        new: &Rewrapped,
        old_unlock_verifier: Option<&str>,
        at: i64,
    ) -> Value {
        let proof = owner.rewrap_proof(self, &self.challenge(), new, at);
        let mut body = json!({
            "wrapped_key": new.wrapped_key,
            "unlock_verifier": new.unlock_verifier,
            "proof": proof,
            "record": owner.record(self, &new.wrapped_key, &new.unlock_verifier, at),
        });
        if let Some(old) = old_unlock_verifier {
            body["old_unlock_verifier"] = json!(old);
        }
        body
    }

    /// [`TestNode::rewrap_body_at`] at the current time.
    pub fn rewrap_body(
        &self,
        owner: &TestOwner,
        new: &Rewrapped,
        old_unlock_verifier: Option<&str>,
    ) -> Value {
        self.rewrap_body_at(owner, new, old_unlock_verifier, now())
    }

    /// Polls the audit log (over the API) until an entry named `event` appears; failure
    /// summaries are written when their minute ends.
    pub fn wait_for_audit_entry(&self, token: &str, event: &str) -> Value {
        let mut found = None;
        let appeared = wait_until(Duration::from_secs(20), || {
            found = self
                .audit_entries(token)
                .into_iter()
                .find(|e| e["event"] == event);
            found.is_some()
        });
        assert!(appeared, "no {event} in the audit log");
        found.unwrap_or_default()
    }

    /// The newest audit entries (up to 500), newest first, read over the API.
    pub fn audit_entries(&self, token: &str) -> Vec<Value> {
        let audit = self
            .call("GET", "/api/v1/audit?limit=500", Some(token), None, &[])
            .json();
        audit["entries"].as_array().expect("entries").clone()
    }

    /// The event names of the newest audit entries, newest first.
    pub fn audit_events(&self, token: &str) -> Vec<String> {
        self.audit_entries(token)
            .iter()
            .filter_map(|e| e["event"].as_str().map(str::to_owned))
            .collect()
    }

    /// The newest audit entry named `event`.
    pub fn audit_entry(&self, token: &str, event: &str) -> Value {
        self.audit_entries(token)
            .into_iter()
            .find(|e| e["event"] == event)
            .unwrap_or_else(|| panic!("no {event} in the audit log"))
    }

    /// A connection to the node from the loopback address `source` (any of 127.0.0.0/8).
    pub fn connect_from(&self, source: &str) -> std::net::TcpStream {
        let source: std::net::IpAddr = source.parse().expect("a source address");
        assert!(
            source.is_loopback(),
            "tests send only from loopback addresses"
        );
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(self.address),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .expect("bind the source address");
        socket
            .connect_timeout(&self.address.into(), Duration::from_secs(10))
            .expect("connect");
        let stream: std::net::TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream
    }

    /// The bytes of an HTTP/1.1 request to the node with an optional JSON body and bearer
    /// token, closing the connection after the answer.
    pub fn raw_request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Vec<u8> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(token) = bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }

    /// Sends `method path` with an optional JSON body and bearer token from the loopback
    /// address `source` (any of 127.0.0.0/8), so that one test can play clients on many
    /// addresses and networks without a proxy.
    pub fn request_from(
        &self,
        source: &str,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        use std::io::{Read, Write};
        let mut stream = self.connect_from(source);
        stream
            .write_all(&self.raw_request(method, path, bearer, body))
            .expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        Answer::parse_raw(&raw)
    }

    /// Sends a raw HTTP/1.1 GET with the path exactly as given (no client-side normalisation).
    pub fn raw_get_status(&self, path: &str) -> u16 {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.address).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line")
    }

    /// The node's current claim token, read from its database.
    pub fn claim_token(&self) -> String {
        with_store(&self.data_dir, owner::claim_token)
            .expect("the unclaimed node has a claim token")
    }

    /// Claims the node with `owner`, asserting success; returns the kid.
    pub fn claim(&self, owner: &TestOwner) -> String {
        let answer = self.post_json(
            "/api/v1/owner",
            &owner.claim_body(self, &self.claim_token()),
        );
        assert_eq!(answer.status, 201, "claim failed: {}", answer.body);
        answer.json()["kid"].as_str().expect("kid").to_owned()
    }

    /// Whether the node has an owner, read from its database.
    pub fn is_claimed(&self) -> bool {
        with_store(&self.data_dir, owner::exists)
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs a query on a node's database through a second connection, as another process would.
pub fn with_store<T>(
    data_dir: &Path,
    query: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
) -> T {
    let store = Store::open(data_dir).expect("open the node's database");
    let value = store.run_blocking(|c| query(c)).expect("query");
    store.close().expect("close");
    value
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl From<ureq::http::Response<ureq::Body>> for Answer {
    fn from(mut response: ureq::http::Response<ureq::Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let body = response.body_mut().read_to_string().expect("a text body");
        Answer {
            status,
            headers,
            body,
        }
    }
}

impl Answer {
    /// Reads a whole HTTP/1.1 response of a `Connection: close` request.
    pub fn parse_raw(raw: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
            .collect();
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts a problem+json answer with `status` and returns its body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem answers are problem+json"
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:siteid:problem:")),
            "{body}"
        );
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        body
    }
}

/// Decodes hex from the vector files.
pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Reads a file from `tests/vectors/`.
pub fn vector(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("JSON")
}

/// The verifier for a KEK: HMAC-SHA-256(KEK, "siteid unlock verifier v1").
pub fn verifier_for_kek(kek: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(kek).expect("any key length");
    mac.update(b"siteid unlock verifier v1");
    mac.finalize().into_bytes().into()
}

/// The owner of the project vector: a fixed key, its wrapped key and its verifier, so that
/// tests need no key derivation.
pub struct TestOwner {
    pub key: OwnerPrivateKey,
    pub public_jwk: Value,
    pub wrapped_key: String,
    pub unlock_verifier: String,
    pub d: String,
    /// The owner's encryption key (made fresh for each test owner).
    pub encryption: OwnerPrivateKey,
}

impl TestOwner {
    pub fn from_vector() -> TestOwner {
        let v = vector("project_pbes2_hs512_a256kw_a256gcm_p384.json");
        let private = v["plaintext_jwk"].to_string();
        TestOwner {
            key: OwnerPrivateKey::from_json(private.as_bytes()).expect("vector key"),
            public_jwk: v["public_jwk"].clone(),
            wrapped_key: v["compact"].as_str().expect("compact").to_owned(),
            unlock_verifier: b64::encode(&verifier_for_kek(&hex(v["kek_hex"]
                .as_str()
                .expect("kek")))),
            d: v["plaintext_jwk"]["d"].as_str().expect("d").to_owned(),
            encryption: OwnerPrivateKey::generate(),
        }
    }

    /// A claim proof with explicit header and claims.
    pub fn sign(&self, header: Value, claims: Value) -> String {
        sign_es384(&self.key, &header, &claims)
    }

    /// A valid proof for `node` and `token` at the current time.
    pub fn proof(&self, node: &TestNode, token: &str) -> String {
        let now = now();
        self.sign(
            json!({"alg": "ES384", "typ": "siteid-claim+jwt"}),
            json!({"aud": node.audience, "nonce": token, "iat": now, "exp": now + 300}),
        )
    }

    /// A login assertion over `nonce` for `node`, valid now.
    pub fn login_assertion(&self, node: &TestNode, nonce: &str) -> String {
        self.login_assertion_at(node, nonce, now())
    }

    /// A login assertion issued at `now`.
    pub fn login_assertion_at(&self, node: &TestNode, nonce: &str, now: i64) -> String {
        self.sign(
            json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": self.key.public_key().thumbprint()}),
            json!({"aud": node.audience, "nonce": nonce, "iat": now, "exp": now + 300}),
        )
    }

    /// A complete, valid claim body, with the genesis statement and the record signature.
    pub fn claim_body(&self, node: &TestNode, token: &str) -> Value {
        let mut body = self.unsigned_claim_body(node, token);
        let kid = self.key.public_key().thumbprint();
        body["statement"] = json!(key_history::sign_statement(
            &self.key,
            &kid,
            None,
            0,
            Reason::Genesis,
            now()
        ));
        body["record"] = json!(self.record(node, &self.wrapped_key, &self.unlock_verifier, now()));
        body["encryption_key"] = self.encryption_key_body(&self.encryption, now());
        body
    }

    /// `{"public_key","wrapped_key","binding"}` for the encryption key `key`, as the owner's
    /// client sends it at a claim or with `PUT /api/v1/owner/encryption-key`.
    pub fn encryption_key_body(&self, key: &OwnerPrivateKey, at: i64) -> Value {
        let kid = key.public_key().thumbprint();
        let wrapped =
            siteid::jose::jwe::seal_private_key(key, &siteid::jose::jwe::encryption_kek(&self.key))
                .expect("the encryption key wraps");
        json!({
            "public_key": serde_json::from_str::<Value>(&key.public_key().to_json()).expect("jwk"),
            "wrapped_key": wrapped.compact(),
            "binding": siteid::auth::encryption_keys::sign_binding(&self.key, &kid, at),
        })
    }

    /// A claim body as clients before key histories sent it: it makes an unsigned node.
    pub fn unsigned_claim_body(&self, node: &TestNode, token: &str) -> Value {
        json!({
            "claim_token": token,
            "public_key": self.public_jwk,
            "wrapped_key": self.wrapped_key,
            "unlock_verifier": self.unlock_verifier,
            "proof": self.proof(node, token),
        })
    }

    /// The owner key's signature over a record of `wrapped_key` and `unlock_verifier`.
    pub fn record(
        &self,
        node: &TestNode,
        wrapped_key: &str,
        unlock_verifier: &str,
        at: i64,
    ) -> String {
        let verifier = b64::decode(unlock_verifier).expect("a base64url verifier");
        let hash: [u8; 32] = Sha256::digest(verifier).into();
        key_history::sign_record(&self.key, &node.audience, wrapped_key, &hash, at)
    }
}

/// A wrapped key and verifier made for a password change.
pub struct Rewrapped {
    pub wrapped_key: String,
    pub unlock_verifier: String,
}

impl TestOwner {
    /// The owner key wrapped under `password` at the lowest iteration count, with its kid in
    /// the header, as a password change sends it.
    pub fn rewrapped(&self, password: &str) -> Rewrapped {
        let (wrapped, verifier) = siteid::jose::jwe::wrap_private_key(
            &self.key,
            password.as_bytes(),
            siteid::jose::jwe::MIN_P2C,
        )
        .expect("wrap");
        Rewrapped {
            wrapped_key: wrapped.compact().to_owned(),
            unlock_verifier: b64::encode(&verifier),
        }
    }

    /// A rewrap proof over `nonce` for the members of `new`, issued at `at`.
    pub fn rewrap_proof(&self, node: &TestNode, nonce: &str, new: &Rewrapped, at: i64) -> String {
        use siteid::auth::unlock::member_digest;
        self.sign(
            json!({"alg": "ES384", "typ": "siteid-rewrap+jwt", "kid": self.key.public_key().thumbprint()}),
            json!({
                "aud": node.audience,
                "nonce": nonce,
                "iat": at,
                "exp": at + 300,
                "wrapped_key_sha256": member_digest(&new.wrapped_key),
                "unlock_verifier_sha256": member_digest(&new.unlock_verifier),
            }),
        )
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemClock.now()
}

/// Polls `condition` until it holds or `limit` passes. For waiting on file watchers, not for
/// asserting speed.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}
