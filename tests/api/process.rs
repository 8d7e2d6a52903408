//! The real binary as an operator runs it: the listening line, graceful shutdown on SIGTERM,
//! the command-line claim, and the zero-knowledge invariant over a whole claim-and-unlock run
//! (neither the database nor the logs ever hold the password, the KEK or the private scalar).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;
use sha2::{Digest, Sha256};
use siteid::jose::b64;
use siteid::jose::jwe::{self, WrappedKey};
use siteid::jose::jwk::OwnerPrivateKey;
use siteid::jose::jws::sign_es384;

const BINARY: &str = env!("CARGO_BIN_EXE_siteid");

pub(crate) struct RunningBinary {
    child: Child,
    pub(crate) base_url: String,
    log_path: std::path::PathBuf,
}

impl RunningBinary {
    pub(crate) fn start(data_dir: &Path, log_path: &Path) -> RunningBinary {
        Self::start_with_open_files(data_dir, log_path, None)
    }

    /// Starts the binary, under `(soft, hard)` open-file limits when given (set by the shell's
    /// `ulimit` before it runs the binary).
    fn start_with_open_files(
        data_dir: &Path,
        log_path: &Path,
        open_files: Option<(u64, u64)>,
    ) -> RunningBinary {
        Self::start_with(data_dir, log_path, open_files, &[])
    }

    /// Starts the binary with `extra` arguments after the usual ones.
    fn start_with(
        data_dir: &Path,
        log_path: &Path,
        open_files: Option<(u64, u64)>,
        extra: &[&str],
    ) -> RunningBinary {
        let log = std::fs::File::create(log_path).expect("log file");
        let mut command = match open_files {
            None => Command::new(BINARY),
            Some((soft, hard)) => {
                let mut shell = Command::new("sh");
                shell.args([
                    "-c",
                    &format!("ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""),
                    BINARY,
                ]);
                shell
            }
        };
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--well-known-dir")
            .arg(data_dir.join("well-known"))
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start siteid serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let base_url = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        assert!(base_url.starts_with("http://127.0.0.1:") && !base_url.ends_with(":0"));
        RunningBinary {
            child,
            base_url,
            log_path: log_path.to_owned(),
        }
    }

    /// Sends SIGTERM and returns whether the process exited successfully.
    pub(crate) fn terminate(mut self) -> bool {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        self.child.wait().expect("wait").success()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).expect("read log")
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

pub(crate) fn post(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let mut response = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .expect("POST");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .output()
        .expect("run siteid");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Claims the running node with `key` through its setup link (and an encryption key when given);
/// returns the claim token and the proof it sent.
fn claim_with(
    node: &RunningBinary,
    data_dir: &Path,
    key: &OwnerPrivateKey,
    wrapped_key: &str,
    verifier: &[u8],
    encryption_key: Option<serde_json::Value>,
) -> (String, String) {
    let (_, url, _) = run(&["claim-url", "--data-dir", data_dir.to_str().expect("path")]);
    assert!(
        url.starts_with(&format!("{}/setup#", node.base_url)),
        "claim-url uses the served URL: {url}"
    );
    let token = url
        .trim()
        .rsplit_once('#')
        .expect("a setup link")
        .1
        .to_owned();
    let now = siteid::clock::Clock::now(&siteid::clock::SystemClock);
    let proof = sign_es384(
        key,
        &json!({"alg": "ES384", "typ": "siteid-claim+jwt"}),
        &json!({"aud": node.base_url, "nonce": token, "iat": now, "exp": now + 300}),
    );
    let mut body = json!({
        "claim_token": token,
        "public_key": serde_json::to_value(key.public_key().to_jwk()).expect("jwk"),
        "wrapped_key": wrapped_key,
        "unlock_verifier": b64::encode(verifier),
        "proof": proof,
    });
    if let Some(encryption_key) = encryption_key {
        body["encryption_key"] = encryption_key;
    }
    let (status, answer) = post(&format!("{}/api/v1/owner", node.base_url), &body);
    assert_eq!(status, 201, "{answer}");
    (token, proof)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn all_files(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).expect("read file"));
        }
    }
    bytes
}

#[test]
fn a_full_claim_and_unlock_run_leaves_no_secret_in_the_database_or_logs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let log_path = dir.path().join("siteid.log");
    let node = RunningBinary::start(&data_dir, &log_path);

    let password = "zero knowledge ✓ passphrase";
    let key = OwnerPrivateKey::generate();
    let (wrapped, verifier) =
        jwe::wrap_private_key(&key, password.as_bytes(), jwe::MIN_P2C).expect("wrap");
    let kek = WrappedKey::parse(wrapped.compact())
        .expect("parse")
        .derive_kek(password.as_bytes());
    let (token, proof) = claim_with(&node, &data_dir, &key, wrapped.compact(), &verifier, None);
    let unlock_url = format!("{}/api/v1/unlock", node.base_url);
    let (status, _) = post(
        &unlock_url,
        &json!({"unlock_verifier": b64::encode(&[1; 32])}),
    );
    assert_eq!(status, 401);
    let (status, body) = post(
        &unlock_url,
        &json!({"unlock_verifier": b64::encode(&verifier)}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["wrapped_key"], wrapped.compact());
    let signed_in = sign_in_every_way(&node, &key, &verifier);
    let log_before_stop = node.log();
    assert!(node.terminate(), "SIGTERM ends the node with success");

    let log = std::fs::read(&log_path).expect("log");
    assert!(String::from_utf8_lossy(&log).contains("stopped"));
    let database = all_files(&data_dir);
    let scalar = key.scalar_bytes();
    let d = b64::encode(scalar.as_slice());
    let verifier_b64 = b64::encode(&verifier);
    let secrets: [(&str, &[u8]); 6] = [
        ("the password", password.as_bytes()),
        ("d (base64url)", d.as_bytes()),
        ("d (raw)", scalar.as_slice()),
        ("the KEK", kek.bytes()),
        ("the verifier (raw)", &verifier),
        ("the verifier (base64url)", verifier_b64.as_bytes()),
    ];
    for (name, secret) in secrets {
        assert_eq!(count(&database, secret), 0, "the database holds {name}");
        assert_eq!(count(&log, secret), 0, "the log holds {name}");
    }
    assert_eq!(
        count(&log, wrapped.compact().as_bytes()),
        0,
        "the log holds the wrapped key"
    );
    assert_eq!(count(&log, proof.as_bytes()), 0, "the log holds the proof");
    for (name, secret) in &signed_in.secrets {
        assert_eq!(count(&log, secret.as_bytes()), 0, "the log holds {name}");
        assert_eq!(
            count(&database, secret.as_bytes()),
            0,
            "the database holds {name}"
        );
    }
    assert_eq!(
        count(log_before_stop.as_bytes(), token.as_bytes()),
        1,
        "the claim token is logged once, at first display"
    );
    let new_verifier = signed_in
        .secrets
        .iter()
        .find(|(name, _)| *name == "the new verifier")
        .map(|(_, value)| b64::decode(value).expect("base64url"))
        .expect("a new verifier");
    let verifier_hash: [u8; 32] = Sha256::digest(&new_verifier).into();
    assert_eq!(
        count(&database, &verifier_hash),
        1,
        "only the verifier's hash is stored"
    );
    let old_hash: [u8; 32] = Sha256::digest(verifier).into();
    assert_eq!(
        count(&database, &old_hash),
        0,
        "the old verifier's hash is gone after the password change"
    );
}

/// The secrets of a signed-in owner: access tokens, a cookie, assertions, a rewrap proof, a
/// one-time unlock code and a new verifier, each used against the node.
struct SignedIn {
    secrets: Vec<(&'static str, String)>,
}

fn challenge(node: &RunningBinary) -> String {
    let mut response = agent()
        .post(format!("{}/api/v1/auth/challenge", node.base_url))
        .send_empty()
        .expect("challenge");
    let body: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
    body["nonce"].as_str().expect("nonce").to_owned()
}

fn assertion(node: &RunningBinary, key: &OwnerPrivateKey) -> String {
    let now = siteid::clock::Clock::now(&siteid::clock::SystemClock);
    sign_es384(
        key,
        &json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": key.public_key().thumbprint()}),
        &json!({"aud": node.base_url, "nonce": challenge(node), "iat": now, "exp": now + 300}),
    )
}

/// Signs in with a bearer token and with a cookie, steps up, changes the password, makes and
/// uses an unlock code, and returns every secret that went over the wire.
fn sign_in_every_way(node: &RunningBinary, key: &OwnerPrivateKey, verifier: &[u8]) -> SignedIn {
    let url = |path: &str| format!("{}{path}", node.base_url);
    let bearer_assertion = assertion(node, key);
    let (status, body) = post(
        &url("/api/v1/auth/login"),
        &json!({"assertion": bearer_assertion}),
    );
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().expect("token").to_owned();
    let authorization = format!("Bearer {access_token}");
    let read = agent()
        .get(url("/api/v1/session"))
        .header("authorization", &authorization)
        .call()
        .expect("session");
    assert_eq!(read.status(), 200);

    let cookie_assertion = assertion(node, key);
    let response = agent()
        .post(url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .send(
            json!({"assertion": cookie_assertion, "cookie": true})
                .to_string()
                .as_bytes(),
        )
        .expect("cookie login");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    let cookie_token = cookie.split_once('=').expect("name=value").1.to_owned();
    let read = agent()
        .get(url("/api/v1/session"))
        .header("cookie", &cookie)
        .call()
        .expect("session by cookie");
    assert_eq!(read.status(), 200);

    let step_up_assertion = assertion(node, key);
    let stepped = agent()
        .post(url("/api/v1/auth/reauth"))
        .header("authorization", &authorization)
        .header("content-type", "application/json")
        .send(
            json!({"assertion": step_up_assertion})
                .to_string()
                .as_bytes(),
        )
        .expect("reauth");
    assert_eq!(stepped.status(), 204);

    let new_password = "a second zero knowledge passphrase";
    let (rewrapped, new_verifier) =
        jwe::wrap_private_key(key, new_password.as_bytes(), jwe::MIN_P2C).expect("wrap");
    let new_verifier = b64::encode(&new_verifier);
    let now = siteid::clock::Clock::now(&siteid::clock::SystemClock);
    let digest = siteid::auth::unlock::member_digest;
    let proof = sign_es384(
        key,
        &json!({"alg": "ES384", "typ": "siteid-rewrap+jwt", "kid": key.public_key().thumbprint()}),
        &json!({
            "aud": node.base_url, "nonce": challenge(node), "iat": now, "exp": now + 300,
            "wrapped_key_sha256": digest(rewrapped.compact()),
            "unlock_verifier_sha256": digest(&new_verifier),
        }),
    );
    let changed = agent()
        .put(url("/api/v1/owner/wrapped-key"))
        .header("authorization", &authorization)
        .header("content-type", "application/json")
        .send(
            json!({
                "wrapped_key": rewrapped.compact(),
                "unlock_verifier": new_verifier,
                "old_unlock_verifier": b64::encode(verifier),
                "proof": proof,
            })
            .to_string()
            .as_bytes(),
        )
        .expect("password change");
    assert_eq!(changed.status(), 204);

    let mut minted = agent()
        .post(url("/api/v1/unlock-codes"))
        .header("authorization", &authorization)
        .send_empty()
        .expect("unlock code");
    assert_eq!(minted.status(), 201);
    let minted: serde_json::Value =
        serde_json::from_str(&minted.body_mut().read_to_string().expect("body")).expect("JSON");
    let code = minted["code"].as_str().expect("code").to_owned();
    let (status, body) = post(
        &url("/api/v1/unlock"),
        &json!({"unlock_verifier": new_verifier, "unlock_code": code}),
    );
    assert_eq!(status, 200, "{body}");
    SignedIn {
        secrets: vec![
            ("the access token", access_token),
            ("the session cookie", cookie_token),
            ("a login assertion", bearer_assertion),
            ("a cookie login assertion", cookie_assertion),
            ("a step-up assertion", step_up_assertion),
            ("the rewrap proof", proof),
            ("the new verifier", new_verifier),
            ("the unlock code", code.clone()),
            ("the unlock code (bare)", code.replace('-', "")),
        ],
    }
}

#[test]
fn the_command_line_claims_and_checks_a_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("path");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "a passphrase for init tests\n").expect("write");
    let password = password_file.to_str().expect("path");
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, "a passphrase for init tests\n\n").expect("write");
    let short_file = dir.path().join("short");
    std::fs::write(&short_file, "too short\n").expect("write");

    let (code, url, _) = run(&["claim-url", "--data-dir", data]);
    assert_eq!(code, 0);
    assert!(url.starts_with("http://127.0.0.1:8080/setup#"), "{url}");
    let (code, _, err) = run(&[
        "init",
        "--data-dir",
        data,
        "--password-file",
        short_file.to_str().expect("path"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("at least 12 characters"), "{err}");

    let (code, kid, err) = run(&[
        "init",
        "--data-dir",
        data,
        "--password-file",
        password,
        "--p2c",
        "210000",
    ]);
    assert_eq!(code, 0, "{err}");
    let kid = kid.trim();
    assert_eq!(kid.len(), 43);
    let (code, checked, err) = run(&[
        "wrapped-key",
        "check",
        "--data-dir",
        data,
        "--password-file",
        password,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(checked.trim(), kid);
    let (code, _, err) = run(&[
        "wrapped-key",
        "check",
        "--data-dir",
        data,
        "--password-file",
        wrong_file.to_str().expect("path"),
    ]);
    assert_eq!(code, 1, "only one trailing newline is removed");
    assert!(err.contains("wrong password"), "{err}");

    let (code, _, _) = run(&["claim-url", "--data-dir", data]);
    assert_eq!(code, 3, "a claimed node has no setup link");
    let (code, _, _) = run(&["init", "--data-dir", data, "--password-file", password]);
    assert_eq!(code, 3, "a node is claimed once");
    let (code, out, _) = run(&["audit", "verify", "--data-dir", data]);
    assert_eq!(code, 0);
    assert!(out.contains("intact"));
}

#[test]
fn a_bad_public_url_stops_start_up_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().expect("path"),
        "--public-url",
        "https://example.com/id",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("must not have a path"), "{err}");
}

#[test]
fn a_plain_http_public_url_outside_this_machine_needs_insecure_http() {
    // Nothing is sent anywhere: the public URL only names the node, and the refusal comes
    // before the data directory is opened or any socket bound.
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("path");
    for args in [
        vec![
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "http://id.example.org",
        ],
        vec!["--listen", "0.0.0.0:0"],
    ] {
        let mut all = vec!["serve", "--data-dir", data_dir];
        all.extend(&args);
        let (code, _, err) = run(&all);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("plain http and not this machine"), "{err}");
        assert!(err.contains("--insecure-http"), "{err}");
    }
    for loopback in [
        "http://localhost:8080",
        "http://[::1]:8080",
        "http://127.0.9.1:8080",
    ] {
        let log = dir.path().join("loopback.log");
        let node = RunningBinary::start_with(dir.path(), &log, None, &["--public-url", loopback]);
        assert!(!node.log().contains("--insecure-http"), "{loopback}");
        assert!(node.terminate());
    }
    let log = dir.path().join("insecure.log");
    let node = RunningBinary::start_with(
        dir.path(),
        &log,
        None,
        &["--public-url", "http://id.example.org", "--insecure-http"],
    );
    assert_eq!(health(&node.base_url), 204);
    assert!(node.log().contains("--insecure-http"), "{}", node.log());
    assert!(node.terminate());
}

/// The hard open-file limit of this process, which a child may lower but not raise.
fn hard_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(read, 0, "getrlimit");
    limit.rlim_max
}

/// Opens `count` connections that never send anything.
fn idle_connections(base_url: &str, count: usize) -> Vec<std::net::TcpStream> {
    let address = base_url.trim_start_matches("http://");
    (0..count)
        .map(|_| std::net::TcpStream::connect(address).expect("connect"))
        .collect()
}

fn health(base_url: &str) -> u16 {
    agent()
        .get(format!("{base_url}/api/v1/health"))
        .call()
        .expect("the health check is answered")
        .status()
        .as_u16()
}

#[test]
fn idle_connections_cannot_use_up_the_open_file_limit() {
    // A low soft limit under a higher hard one: the node raises its own limit at start-up.
    let hard = hard_open_file_limit().min(4096);
    assert!(
        hard >= 1024,
        "the test needs a hard open-file limit of at least 1024"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let raised = RunningBinary::start_with_open_files(
        &dir.path().join("data"),
        &dir.path().join("raised.log"),
        Some((256, hard)),
    );
    let idle = idle_connections(&raised.base_url, 400);
    assert_eq!(health(&raised.base_url), 204);
    drop(idle);
    let log = raised.log();
    assert!(log.contains(&format!("open_files={hard}")), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(raised.terminate());

    // No room to raise: the caps keep connections below the limit, idle ones are closed after
    // five seconds, and the health check is served once they are.
    let capped = RunningBinary::start_with_open_files(
        &dir.path().join("data"),
        &dir.path().join("capped.log"),
        Some((256, 256)),
    );
    let idle = idle_connections(&capped.base_url, 250);
    assert_eq!(health(&capped.base_url), 204);
    drop(idle);
    let log = capped.log();
    assert!(log.contains("open_files=256"), "{log}");
    assert!(log.contains("connections=192"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(capped.terminate());
}

#[test]
fn an_existing_data_directory_open_to_other_users_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).expect("mkdir");
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let node = RunningBinary::start(&data_dir, &dir.path().join("siteid.log"));
    let mode = std::fs::metadata(&data_dir)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "the node tightened {data_dir:?}");
    let log = node.log();
    assert!(
        log.contains("the data directory was open to other users"),
        "{log}"
    );
    assert!(node.terminate());
}

#[test]
fn an_inbox_message_leaves_no_plaintext_content_key_or_private_key_on_the_node() {
    use p384::pkcs8::EncodePrivateKey;
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let log_path = dir.path().join("siteid.log");
    let node = RunningBinary::start(&data_dir, &log_path);

    // Claim with an owner key and an encryption key made here, as a browser would.
    let key = OwnerPrivateKey::generate();
    let (wrapped, verifier) =
        jwe::wrap_private_key(&key, b"a passphrase", jwe::MIN_P2C).expect("wrap");
    let now = siteid::clock::Clock::now(&siteid::clock::SystemClock);
    let (encryption_row, encryption) =
        siteid::auth::encryption_keys::generate(&key, now).expect("an encryption key");
    let encryption_body = json!({
        "public_key": serde_json::from_str::<serde_json::Value>(&encryption_row.public_jwk).expect("jwk"),
        "wrapped_key": encryption_row.wrapped_key,
        "binding": encryption_row.binding,
    });
    claim_with(
        &node,
        &data_dir,
        &key,
        wrapped.compact(),
        &verifier,
        Some(encryption_body),
    );

    // The owner sends a signed message to their own node from the command line.
    let pem_path = dir.path().join("owner.pem");
    let secret = p384::SecretKey::from_slice(key.scalar_bytes().as_slice()).expect("scalar");
    let pem = secret
        .to_pkcs8_pem(p384::pkcs8::LineEnding::LF)
        .expect("PEM");
    std::fs::write(&pem_path, pem.as_bytes()).expect("write PEM");
    let marker = "zero-knowledge inbox marker 7f3a9c";
    let (code, id, stderr) = run(&[
        "inbox",
        "send",
        "--to",
        &node.base_url,
        "--from",
        &node.base_url,
        "--from-key",
        pem_path.to_str().expect("path"),
        "--subject",
        "a secret subject 5b1e",
        "--text",
        marker,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let id = id.trim().to_owned();

    // The owner reads it back: only their encryption key opens it.
    let (status, body) = post(
        &format!("{}/api/v1/auth/login", node.base_url),
        &json!({ "assertion": assertion(&node, &key) }),
    );
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().expect("token").to_owned();
    let mut response = agent()
        .get(format!("{}/api/v1/inbox/{id}", node.base_url))
        .header("authorization", &format!("Bearer {access_token}"))
        .call()
        .expect("GET");
    let fetched: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
    let stored = fetched["message"]
        .as_str()
        .expect("a compact JWE")
        .to_owned();
    let enc_secret =
        p384::SecretKey::from_slice(encryption.scalar_bytes().as_slice()).expect("scalar");
    let content_key = siteid::jose::ecdh::content_key(&enc_secret, &stored).expect("opens");
    let plaintext = siteid::jose::ecdh::decrypt(&enc_secret, &stored).expect("decrypts");
    let signed = String::from_utf8(plaintext.to_vec()).expect("a JWS");
    assert!(
        signed.starts_with("ey"),
        "the plaintext is a signed message"
    );
    assert!(node.terminate(), "SIGTERM ends the node with success");

    let log = std::fs::read(&log_path).expect("log");
    let database = all_files(&data_dir);
    assert!(
        count(&database, stored.as_bytes()) >= 1,
        "the message is stored as sent"
    );
    let enc_d = encryption.scalar_bytes();
    let enc_d_b64 = b64::encode(enc_d.as_slice());
    let kek = jwe::encryption_kek(&key);
    let cek_b64 = b64::encode(content_key.as_slice());
    let cek_hex: String = content_key.iter().map(|b| format!("{b:02x}")).collect();
    let owner_d = b64::encode(key.scalar_bytes().as_slice());
    let secrets: [(&str, &[u8]); 10] = [
        ("the message text", marker.as_bytes()),
        ("the subject", b"a secret subject 5b1e"),
        ("the signed plaintext", signed.as_bytes()),
        ("the content key (raw)", content_key.as_slice()),
        ("the content key (base64url)", cek_b64.as_bytes()),
        ("the content key (hex)", cek_hex.as_bytes()),
        ("the encryption key's d (raw)", enc_d.as_slice()),
        ("the encryption key's d (base64url)", enc_d_b64.as_bytes()),
        ("the encryption key's KEK", kek.as_slice()),
        ("the owner key's d", owner_d.as_bytes()),
    ];
    for (name, secret) in secrets {
        assert_eq!(count(&database, secret), 0, "the database holds {name}");
        assert_eq!(count(&log, secret), 0, "the log holds {name}");
    }
}
