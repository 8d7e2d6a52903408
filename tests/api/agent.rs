//! `siteid agent`, the real binary against a real node: it checks the node's own key, signs in
//! with a scoped credential, approves exactly what its policy allows, reconnects after its
//! socket is dropped and after the node restarts, and exits cleanly on SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use siteid::config::EnrollmentMode;

use crate::credentials::{Device, register};
use crate::helpers::{NodeOptions, TestNode, TestOwner, wait_until};
use crate::node_key::bind_node_key;

const BINARY: &str = env!("CARGO_BIN_EXE_siteid");
const REQUESTS: &str = "/api/v1/enrollment/requests";

/// An agent process that is killed if the test ends before it does.
struct AgentProcess(Option<Child>);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes `key` as a PKCS#8 PEM file.
fn key_file(path: &std::path::Path, key: &siteid::jose::jwk::OwnerPrivateKey) {
    use p384::pkcs8::EncodePrivateKey;
    let secret = p384::SecretKey::from_slice(key.scalar_bytes().as_slice()).expect("scalar");
    let pem = secret
        .to_pkcs8_pem(p384::pkcs8::LineEnding::LF)
        .expect("pem");
    std::fs::write(path, pem.as_bytes()).expect("write");
}

/// The interaction log's entries.
fn interactions(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn count(path: &std::path::Path, event: &str) -> usize {
    interactions(path)
        .iter()
        .filter(|e| e["event"] == event)
        .count()
}

fn logged_for(path: &std::path::Path, event: &str, request_id: &str) -> bool {
    interactions(path)
        .iter()
        .any(|e| e["event"] == event && e["request_id"] == request_id)
}

/// Sends a request for a new key with `label` and `kind`, each from a loopback network of its
/// own (the node believes the test's X-Forwarded-For: one address may keep only two waiting);
/// returns its id.
fn request(node: &TestNode, kind: &'static str, label: &str) -> String {
    static SENT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let network = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let from = format!("127.0.{network}.9");
    let mut device = Device::new(&[]);
    device.kind = kind;
    device.label = label.into();
    let answer = node.post_json_with(
        REQUESTS,
        &json!({
            "id": device.id,
            "kind": kind,
            "label": label,
            "public_key": serde_json::to_value(device.signer.key.public_key().to_jwk()).expect("jwk"),
        }),
        &[("x-forwarded-for", &from)],
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    device.id
}

fn status(node: &TestNode, id: &str) -> String {
    node.get(&format!("{REQUESTS}/{id}")).json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn start(dir: &std::path::Path, listen: Option<std::net::SocketAddr>) -> TestNode {
    TestNode::start(
        dir,
        NodeOptions {
            enrollment: EnrollmentMode::Approval,
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            listen,
            ..NodeOptions::default()
        },
    )
}

/// A claimed node in approval mode and an agent credential with `capabilities` whose private
/// key is in `work/agent.pem`; the node key is bound when `bound`.
struct Setup {
    dir: tempfile::TempDir,
    work: tempfile::TempDir,
    node: TestNode,
    owner: TestOwner,
    owner_token: String,
    node_kid: String,
    agent: Device,
    key_path: std::path::PathBuf,
}

fn setup(capabilities: &[&'static str], bound: bool) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path(), None);
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (owner_token, _) = node.login_stepped_up(&owner);
    let node_kid = node.get("/.well-known/siteid/node-key.json").json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    if bound {
        bind_node_key(&node, &owner_token, &owner, &node_kid);
    }
    let agent = Device::new(capabilities);
    register(&node, &owner_token, &owner, &agent);
    let key_path = work.path().join("agent.pem");
    key_file(&key_path, &agent.signer.key);
    Setup {
        dir,
        work,
        node,
        owner,
        owner_token,
        node_kid,
        agent,
        key_path,
    }
}

#[test]
fn the_agent_approves_what_its_policy_allows_and_survives_dropped_sockets_and_restarts() {
    let Setup {
        dir,
        work,
        node,
        owner,
        agent,
        key_path,
        ..
    } = setup(&["session", "credentials"], true);
    let mut node = node;
    let policy_path = work.path().join("policy.toml");
    std::fs::write(
        &policy_path,
        "[[approve]]\nname = \"ci\"\nkind = \"key\"\nlabel_prefix = \"ci-\"\n\
         from_networks = [\"127.0.0.0/8\"]\ncapabilities = [\"session\"]\nmax_per_day = 2\n",
    )
    .expect("policy");
    let log_path = work.path().join("interactions.jsonl");
    let stderr = std::fs::File::create(work.path().join("stderr.log")).expect("stderr");
    let owner_kid = owner.key.public_key().thumbprint();
    let mut process = AgentProcess(Some(
        Command::new(BINARY)
            .args(["agent", "--node", &node.base_url, "--key"])
            .arg(&key_path)
            .arg("--policy")
            .arg(&policy_path)
            .arg("--interaction-log")
            .arg(&log_path)
            .args(["--log-format", "json", "--pin", &owner_kid])
            .arg("--known-nodes")
            .arg(work.path().join("known_nodes.json"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the agent starts"),
    ));
    let limit = Duration::from_secs(30);
    assert!(
        wait_until(limit, || count(&log_path, "connected") >= 1),
        "the agent connects: {:?}",
        interactions(&log_path)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log_path)
            .expect("log")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the interaction log is the agent's alone"
        );
    }
    // Approved: a key whose label and address the rule names, with the rule's capabilities.
    let first = request(&node, "key", "ci-1");
    assert!(wait_until(limit, || status(&node, &first) == "approved"));
    let (token, _) = node.login(&owner);
    let credentials = node
        .call("GET", "/api/v1/credentials", Some(&token), None, &[])
        .json();
    let approved = credentials["credentials"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["id"] == first.as_str())
        .expect("the approved credential")
        .clone();
    assert_eq!(approved["capabilities"], json!(["session"]));
    // Left to the owner: a device, and a label no rule names.
    let device = request(&node, "device", "Phone");
    let laptop = request(&node, "key", "laptop");
    assert!(wait_until(limit, || logged_for(
        &log_path,
        "forwarded",
        &device
    ) && logged_for(
        &log_path,
        "forwarded",
        &laptop
    )));
    assert_eq!(status(&node, &device), "pending");
    assert_eq!(status(&node, &laptop), "pending");

    // The socket dropped (its session revoked): the agent signs in again.
    let sessions = node
        .call("GET", "/api/v1/sessions", Some(&token), None, &[])
        .json();
    let agent_session = sessions["sessions"]
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["credential_id"] == agent.id.as_str())
        .and_then(|s| s["id"].as_str().or(s["session_id"].as_str()))
        .expect("the agent's session")
        .to_owned();
    let revoked = node.call(
        "DELETE",
        &format!("/api/v1/sessions/{agent_session}"),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert!(
        wait_until(limit, || count(&log_path, "connected") >= 2),
        "the agent reconnects after its socket is dropped: {:?}",
        interactions(&log_path)
    );

    // The node restarts on its port: the agent reconnects and goes on approving.
    let address = node.address;
    node.stop();
    node = start(dir.path(), Some(address));
    assert!(
        wait_until(Duration::from_secs(90), || count(&log_path, "connected")
            >= 3),
        "the agent reconnects after a restart: {:?}",
        interactions(&log_path)
    );
    let second = request(&node, "key", "ci-2");
    assert!(wait_until(limit, || status(&node, &second) == "approved"));
    // The rule's daily limit (two) is reached: the next one is left to the owner.
    let third = request(&node, "key", "ci-3");
    assert!(wait_until(limit, || logged_for(
        &log_path,
        "forwarded",
        &third
    )));
    assert_eq!(status(&node, &third), "pending");
    let (token, _) = node.login(&owner);
    let approvals: Vec<Value> = node
        .audit_entries(&token)
        .into_iter()
        .filter(|e| e["event"] == "enrollment.approved")
        .collect();
    assert_eq!(approvals.len(), 2);
    assert!(
        approvals
            .iter()
            .all(|e| e["detail"]["approved_by"] == agent.id.as_str())
    );

    // SIGTERM: the agent closes its socket and exits 0.
    let mut child = process.0.take().expect("running");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let mut exit = None;
    assert!(wait_until(limit, || {
        exit = child.try_wait().expect("wait");
        exit.is_some()
    }));
    assert!(exit.expect("exited").success());
    assert!(count(&log_path, "stopped") >= 1);
}

#[test]
fn the_agent_once_prints_the_verified_identity_and_refuses_a_wrong_pin() {
    let Setup {
        dir: _dir,
        work,
        node,
        owner,
        owner_token,
        node_kid,
        agent,
        key_path,
    } = setup(&["session"], false);
    let once = |pin: &str| {
        Command::new(BINARY)
            .args(["agent", "--once", "--node", &node.base_url, "--key"])
            .arg(&key_path)
            .args(["--pin", pin])
            .arg("--known-nodes")
            .arg(work.path().join("known_nodes.json"))
            .output()
            .expect("the agent runs")
    };
    let owner_kid = owner.key.public_key().thumbprint();
    // Unbound: the node cannot prove itself, so the agent refuses it.
    let unbound = once(&owner_kid);
    assert!(!unbound.status.success());
    assert!(
        String::from_utf8_lossy(&unbound.stderr).contains("bound"),
        "{}",
        String::from_utf8_lossy(&unbound.stderr)
    );
    // Nothing was signed for the node that could not prove itself: no session of the agent.
    let sessions = node
        .call("GET", "/api/v1/sessions", Some(&owner_token), None, &[])
        .json();
    assert!(
        !sessions["sessions"]
            .as_array()
            .expect("array")
            .iter()
            .any(|s| s["credential_id"] == agent.id.as_str()),
        "{sessions}"
    );
    bind_node_key(&node, &owner_token, &owner, &node_kid);
    let output = once(&owner_kid);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let identity: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(identity["owner_kid"], owner_kid.as_str());
    assert_eq!(identity["node_kid"], node_kid.as_str());
    assert_eq!(identity["credential_kid"], agent.kid().as_str());
    let other = TestOwner {
        key: siteid::jose::jwk::OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    let refused = once(&other.key.public_key().thumbprint());
    assert!(!refused.status.success());
    // A policy's daily limits need the interaction log that counts them across restarts.
    let policy_path = work.path().join("policy.toml");
    std::fs::write(
        &policy_path,
        "[[approve]]\nname = \"any\"\ncapabilities = [\"session\"]\nmax_per_day = 1\n",
    )
    .expect("policy");
    let without_log = Command::new(BINARY)
        .args(["agent", "--node", &node.base_url, "--key"])
        .arg(&key_path)
        .arg("--policy")
        .arg(&policy_path)
        .args(["--pin", &owner_kid])
        .output()
        .expect("the agent runs");
    assert!(!without_log.status.success());
    assert!(String::from_utf8_lossy(&without_log.stderr).contains("--interaction-log"));
}

#[test]
fn the_agent_refuses_a_node_whose_key_changed_and_signs_nothing_for_it() {
    let Setup {
        dir,
        work,
        node,
        owner,
        agent,
        key_path,
        ..
    } = setup(&["session", "credentials"], true);
    let log_path = work.path().join("interactions.jsonl");
    let _process = AgentProcess(Some(
        Command::new(BINARY)
            .args(["agent", "--node", &node.base_url, "--key"])
            .arg(&key_path)
            .arg("--interaction-log")
            .arg(&log_path)
            .arg("--known-nodes")
            .arg(work.path().join("known_nodes.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent starts"),
    ));
    let limit = Duration::from_secs(30);
    assert!(wait_until(limit, || count(&log_path, "connected") >= 1));
    // Same URL, same database, another node key (node.key replaced): it cannot prove itself.
    let address = node.address;
    node.stop();
    std::fs::remove_file(dir.path().join("node.key")).expect("remove");
    let node = start(dir.path(), Some(address));
    assert!(
        wait_until(limit, || interactions(&log_path).iter().any(|e| {
            e["event"] == "connect_failed"
                && e["error"]
                    .as_str()
                    .is_some_and(|m| m.contains("not bound") || m.contains("bound"))
        })),
        "{:?}",
        interactions(&log_path)
    );
    assert_eq!(count(&log_path, "connected"), 1);
    // No new sign-in happened: the agent's only session is the one from before.
    let (token, _) = node.login(&owner);
    let sessions = node
        .call("GET", "/api/v1/sessions", Some(&token), None, &[])
        .json();
    let agents = sessions["sessions"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["credential_id"] == agent.id.as_str())
        .count();
    assert!(agents <= 1, "{sessions}");
}
