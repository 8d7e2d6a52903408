//! The node key (issue 16, first part): kept in `node.key` (mode 0600, never in the database),
//! published with the owner key's binding, and signing its proof over a challenge and the
//! client's own nonce, so that a client can tell it reaches the node the owner bound.

use serde_json::{Value, json};
use siteid::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use siteid::jose::jws::{CompactJws, VerifyingKey};
use siteid::jose::node_key::{PROOF_TYPE, sign_binding};

use crate::helpers::{NodeOptions, TestNode, TestOwner, now, spawn_node};

const BIND: &str = "/api/v1/node-key/binding";
const NODE_KEY: &str = "/.well-known/siteid/node-key.json";

fn node_verifying_key(node: &TestNode) -> VerifyingKey {
    let document = node.get(NODE_KEY).json();
    let mut jwk = document["jwk"].clone();
    for member in ["kid", "alg", "use"] {
        jwk.as_object_mut().expect("object").remove(member);
    }
    let public = OwnerPublicKey::from_json(&jwk.to_string()).expect("a P-384 public JWK");
    let key = VerifyingKey::new(public);
    assert_eq!(
        document["kid"],
        key.kid.as_str(),
        "the kid is the key's thumbprint"
    );
    key
}

/// Binds `node`'s key `node_kid` with `owner`'s key over the owner session `token`.
pub fn bind_node_key(node: &TestNode, token: &str, owner: &TestOwner, node_kid: &str) {
    let binding = sign_binding(&owner.key, &node.audience, node_kid, now());
    let bound = node.call(
        "PUT",
        BIND,
        Some(token),
        Some(&json!({ "binding": binding })),
        &[],
    );
    assert_eq!(bound.status, 204, "{}", bound.body);
}

/// Binds `node`'s current key with `owner`'s key over the owner session `token`, so that
/// `siteid login`, which checks the binding by default, accepts the node.
pub fn bind_current_node_key(node: &TestNode, token: &str, owner: &TestOwner) {
    let node_kid = node.get(NODE_KEY).json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    bind_node_key(node, token, owner, &node_kid);
}

fn jwks_kids(node: &TestNode) -> Vec<String> {
    node.get("/.well-known/jwks.json").json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|key| key["kid"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_node_key_lives_in_its_own_file_and_never_in_the_database() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let path = node.data_dir.join("node.key");
    let pem = std::fs::read_to_string(&path).expect("node.key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    for file in ["siteid.sqlite3", "siteid.sqlite3-wal"] {
        let bytes = std::fs::read(node.data_dir.join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&body[..40]), "{file} holds the node key");
    }
}

#[test]
fn a_challenge_with_a_client_nonce_carries_the_node_s_proof() {
    let (_dir, node) = spawn_node();
    node.claim(&TestOwner::from_vector());
    let plain = node.post_raw("/api/v1/auth/challenge", "", b"");
    assert_eq!(plain.status, 200);
    assert!(plain.json().get("node_signature").is_none());

    let client_nonce = "c2l0ZWlkLWNsaWVudC1ub25jZQ";
    let answer = node.post_json(
        "/api/v1/auth/challenge",
        &json!({ "client_nonce": client_nonce }),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    let signature = body["node_signature"].as_str().expect("a node signature");
    let jws = CompactJws::parse(signature, PROOF_TYPE).expect("a node proof");
    let key = node_verifying_key(&node);
    assert_eq!(jws.header.kid.as_deref(), Some(key.kid.as_str()));
    let claims: Value = jws
        .verify_with(&key)
        .expect("signed by the published node key");
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((iat - now()).abs() < 60);
    assert_eq!(
        claims,
        json!({
            "aud": node.audience,
            "nonce": body["nonce"],
            "client_nonce": client_nonce,
            "iat": iat,
        })
    );
    let stranger = VerifyingKey::new(OwnerPrivateKey::generate().public_key());
    assert!(jws.verify_with::<Value>(&stranger).is_err());

    for (bad, status) in [
        (json!({ "client_nonce": "short" }), 422),
        (json!({ "client_nonce": "has spaces in it, 1234" }), 422),
        (json!({ "client_nonce": client_nonce, "extra": 1 }), 422),
        (json!({ "client_nonce": 7 }), 422),
    ] {
        let answer = node.post_json("/api/v1/auth/challenge", &bad);
        answer.problem(status);
    }
    node.post_raw("/api/v1/auth/challenge", "text/plain", b"nonce")
        .problem(415);
    node.post_raw("/api/v1/auth/challenge", "application/json", &[b'{'; 2048])
        .problem(413);
}

#[test]
fn the_owner_key_binds_the_node_key_and_the_binding_is_published() {
    // A fixed public URL: a restart binds another port, and a binding names the URL.
    let options = || NodeOptions {
        public_url: Some("https://id.example".into()),
        ..NodeOptions::default()
    };
    let dir = tempfile::tempdir().expect("dir");
    let node = TestNode::start(dir.path(), options());
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let node_kid = node.get(NODE_KEY).json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    assert_eq!(node.get(NODE_KEY).json()["binding"], Value::Null);
    assert!(
        !jwks_kids(&node).contains(&node_kid),
        "unbound, it is not published"
    );

    let (token, _) = node.login(&owner);
    let audience = node.audience.clone();
    let stranger = OwnerPrivateKey::generate();
    for (binding, why) in [
        (
            sign_binding(&owner.key, &audience, &node_kid, now() - 400),
            "stale",
        ),
        (
            sign_binding(&owner.key, "https://other.example", &node_kid, now()),
            "another node",
        ),
        (
            sign_binding(&owner.key, &audience, "another-kid", now()),
            "another key",
        ),
        (
            sign_binding(&stranger, &audience, &node_kid, now()),
            "not the owner's",
        ),
        ("not a jws".to_owned(), "malformed"),
    ] {
        let answer = node.call(
            "PUT",
            BIND,
            Some(&token),
            Some(&json!({ "binding": binding })),
            &[],
        );
        assert_eq!(answer.problem(422)["field"], "binding", "{why}");
    }
    let binding = sign_binding(&owner.key, &audience, &node_kid, now());
    node.call("PUT", BIND, None, Some(&json!({ "binding": binding })), &[])
        .problem(401);
    let bound = node.call(
        "PUT",
        BIND,
        Some(&token),
        Some(&json!({ "binding": binding })),
        &[],
    );
    assert_eq!(bound.status, 204, "{}", bound.body);
    assert_eq!(node.get(NODE_KEY).json()["binding"], binding.as_str());
    assert!(jwks_kids(&node).contains(&node_kid));
    let entry = node.audit_entry(&token, "node_key.bound");
    assert_eq!(entry["detail"]["node_kid"], node_kid.as_str());

    // The binding outlives a restart; the key is the same one.
    node.stop();
    let node = TestNode::start(dir.path(), options());
    assert_eq!(node.get(NODE_KEY).json()["kid"], node_kid.as_str());
    assert_eq!(node.get(NODE_KEY).json()["binding"], binding.as_str());
}

#[test]
fn a_new_owner_key_does_not_vouch_for_what_the_old_one_bound() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let node_kid = node.get(NODE_KEY).json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let (stepped, _) = node.login_stepped_up(&owner);
    bind_node_key(&node, &stepped, &owner, &node_kid);
    let rotation = crate::owner_key::Rotation::new(&node, &owner.key, 1, &[]);
    let rotated = node.call(
        "POST",
        "/api/v1/owner/rotate",
        Some(&stepped),
        Some(&rotation.body),
        &[],
    );
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(node.get(NODE_KEY).json()["binding"], Value::Null);
    assert!(!jwks_kids(&node).contains(&node_kid));
}

#[test]
fn a_session_without_owner_cannot_bind() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (stepped, _) = node.login_stepped_up(&owner);
    let device = crate::credentials::Device::new(&["session"]);
    crate::credentials::register(&node, &stepped, &owner, &device);
    let (token, _) = node.login(&device.signer);
    let node_kid = node.get(NODE_KEY).json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let binding = sign_binding(&owner.key, &node.audience, &node_kid, now());
    node.call(
        "PUT",
        BIND,
        Some(&token),
        Some(&json!({ "binding": binding })),
        &[],
    )
    .problem(403);
}

#[test]
fn siteid_init_binds_the_node_key_with_the_owner_key_it_makes() {
    let dir = tempfile::tempdir().expect("dir");
    let password = dir.path().join("password");
    std::fs::write(&password, "a long enough passphrase\n").expect("write");
    let data_dir = dir.path().join("data");
    let (code, kid, stderr) = crate::process::run(&[
        "init",
        "--data-dir",
        data_dir.to_str().expect("utf-8"),
        "--public-url",
        "https://id.example",
        "--password-file",
        password.to_str().expect("utf-8"),
        "--p2c",
        "210000",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let node = TestNode::start(
        &data_dir,
        NodeOptions {
            public_url: Some("https://id.example".into()),
            ..NodeOptions::default()
        },
    );
    let published = node.get(NODE_KEY).json();
    let binding = published["binding"].as_str().expect("bound at init");
    let jws = CompactJws::parse(binding, siteid::jose::node_key::BINDING_TYPE).expect("a binding");
    assert_eq!(jws.header.kid.as_deref(), Some(kid.trim()));
    let node_kid = published["kid"].as_str().expect("kid").to_owned();
    assert!(jwks_kids(&node).contains(&node_kid));
}

/// Writes `key` as a PKCS#8 PEM file in `dir`.
fn key_file(dir: &std::path::Path, key: &OwnerPrivateKey) -> String {
    use p384::pkcs8::EncodePrivateKey;
    let secret = p384::SecretKey::from_slice(key.scalar_bytes().as_slice()).expect("scalar");
    let pem = secret
        .to_pkcs8_pem(p384::pkcs8::LineEnding::LF)
        .expect("pem");
    let path = dir.join("owner.pem");
    std::fs::write(&path, pem.as_bytes()).expect("write");
    path.to_str().expect("utf-8").to_owned()
}

#[test]
fn siteid_login_with_a_pin_checks_the_node_before_signing_in() {
    let options = || NodeOptions {
        public_url: None,
        ..NodeOptions::default()
    };
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let node = TestNode::start(&data, options());
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let owner_kid = owner.key.public_key().thumbprint();
    let key = key_file(dir.path(), &owner.key);
    let known = dir.path().join("known_nodes.json");
    let login = |node: &TestNode, pin: &str| {
        crate::process::run(&[
            "login",
            "--node",
            &node.base_url,
            "--key",
            &key,
            "--pin",
            pin,
            "--known-nodes",
            known.to_str().expect("utf-8"),
        ])
    };
    // Unbound: refused before anything is signed.
    let (code, _, stderr) = login(&node, &owner_kid);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("has not bound the node's own key"),
        "{stderr}"
    );

    let node_kid = node.get(NODE_KEY).json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let (token, _) = node.login(&owner);
    bind_node_key(&node, &token, &owner, &node_kid);
    let (code, stdout, stderr) = login(&node, &owner_kid);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(&node_kid), "{stderr}");
    let session = node.call("GET", "/api/v1/session", Some(stdout.trim()), None, &[]);
    assert_eq!(session.status, 200);
    // `siteid verify` accepts the bound node key beside the owner key.
    let (code, current, stderr) =
        crate::process::run(&["verify", "--node", &node.base_url, "--pin", &owner_kid]);
    assert_eq!((code, current.trim()), (0, owner_kid.as_str()), "{stderr}");

    // A pin the history does not lead from.
    let stranger = OwnerPrivateKey::generate().public_key().thumbprint();
    let (code, _, stderr) = login(&node, &stranger);
    assert_ne!(code, 0, "{stderr}");

    // The node key swapped on the server (same URL, same database): its binding no longer names
    // the key the node signs with, and the command line refuses the node.
    let address = node.address;
    node.stop();
    std::fs::remove_file(data.join("node.key")).expect("remove");
    let node = TestNode::start(
        &data,
        NodeOptions {
            listen: Some(address),
            ..options()
        },
    );
    assert_ne!(
        node.get(NODE_KEY).json()["kid"],
        node_kid.as_str(),
        "a new node key"
    );
    let (code, _, stderr) = login(&node, &owner_kid);
    assert_ne!(code, 0);
    assert!(stderr.contains("is not the node the owner key"), "{stderr}");

    // The file's new key is the node's now: the owner binds it (as a browser does at its next
    // password sign-in), and the command line accepts the node again.
    let new_kid = node.get(NODE_KEY).json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let (token, _) = node.login(&owner);
    bind_node_key(&node, &token, &owner, &new_kid);
    assert!(jwks_kids(&node).contains(&new_kid));
    let (code, _, stderr) = login(&node, &owner_kid);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn proofs_are_counted_per_client_and_a_plain_challenge_is_not() {
    let (_dir, node) = spawn_node();
    node.claim(&TestOwner::from_vector());
    let body = json!({ "client_nonce": "c2l0ZWlkLWNsaWVudC1ub25jZQ" });
    for _ in 0..60 {
        let answer = node.post_json("/api/v1/auth/challenge", &body);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let limited = node.post_json("/api/v1/auth/challenge", &body);
    let problem = limited.problem(429);
    assert_eq!(
        problem["type"],
        "urn:siteid:problem:node-proofs-rate-limited"
    );
    assert_eq!(problem["scope"], "client");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(
        node.post_raw("/api/v1/auth/challenge", "", b"").status,
        200,
        "a challenge without a client nonce is never limited"
    );
}

#[test]
fn a_binding_written_by_siteid_init_while_the_node_runs_is_served_within_a_second() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let node = TestNode::start(&data, NodeOptions::default());
    let password = dir.path().join("password");
    std::fs::write(&password, "a long enough passphrase\n").expect("write");
    let (code, _, stderr) = crate::process::run(&[
        "init",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--public-url",
        &node.base_url,
        "--password-file",
        password.to_str().expect("utf-8"),
        "--p2c",
        "210000",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        crate::helpers::wait_until(std::time::Duration::from_secs(10), || {
            node.get(NODE_KEY).json()["binding"].is_string()
        }),
        "the running node reads the binding the command line wrote: {} / {}",
        node.get(NODE_KEY).body,
        node.get("/.well-known/jwks.json").body
    );
}

/// A node claimed with `siteid init` while it runs (which binds its node key), a credential
/// added from the command line for `siteid login`, and a known-nodes file of its own.
struct InitNode {
    data: std::path::PathBuf,
    node: TestNode,
    owner_kid: String,
    password: String,
    key: String,
    known: std::path::PathBuf,
}

impl InitNode {
    /// Starts a node in `root/name` (on `listen`, when given) and claims it.
    fn start(root: &std::path::Path, name: &str, listen: Option<std::net::SocketAddr>) -> Self {
        let work = root.join(name);
        std::fs::create_dir_all(&work).expect("dir");
        let data = work.join("data");
        let node = TestNode::start(
            &data,
            NodeOptions {
                listen,
                ..NodeOptions::default()
            },
        );
        let password = work.join("password");
        std::fs::write(&password, "a long enough passphrase\n").expect("write");
        let password = password.to_str().expect("utf-8").to_owned();
        let data_dir = data.to_str().expect("utf-8").to_owned();
        let (code, owner_kid, stderr) = crate::process::run(&[
            "init",
            "--data-dir",
            &data_dir,
            "--public-url",
            &node.base_url,
            "--password-file",
            &password,
            "--p2c",
            "210000",
        ]);
        assert_eq!(code, 0, "{stderr}");
        let credential = OwnerPrivateKey::generate();
        let key = key_file(&work, &credential);
        let public = work.join("credential.jwk");
        std::fs::write(&public, credential.public_key().to_json()).expect("write");
        let (code, _, stderr) = crate::process::run(&[
            "credentials",
            "add",
            "--data-dir",
            &data_dir,
            "--password-file",
            &password,
            "--public-key",
            public.to_str().expect("utf-8"),
            "--label",
            "script",
        ]);
        assert_eq!(code, 0, "{stderr}");
        let init = InitNode {
            data,
            node,
            owner_kid: owner_kid.trim().to_owned(),
            password,
            key,
            known: root.join("known_nodes.json"),
        };
        assert!(
            crate::helpers::wait_until(std::time::Duration::from_secs(10), || {
                init.node.get(NODE_KEY).json()["binding"].is_string()
            }),
            "the running node reads the binding init wrote"
        );
        init
    }

    /// Runs `siteid login` against the node with this node's credential and known-nodes file.
    fn login(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec![
            "login",
            "--node",
            self.node.base_url.as_str(),
            "--key",
            self.key.as_str(),
            "--known-nodes",
            self.known.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        crate::process::run(&args)
    }

    /// Signs in, waiting until the running node has read the credential the command line added.
    fn first_login(&self, extra: &[&str]) -> (String, String) {
        let mut answer = None;
        let signed_in = crate::helpers::wait_until(std::time::Duration::from_secs(10), || {
            let (code, stdout, stderr) = self.login(extra);
            let done = code == 0;
            answer = Some((stdout, stderr));
            done
        });
        let (stdout, stderr) = answer.expect("ran");
        assert!(signed_in, "{stderr}");
        (stdout, stderr)
    }

    fn node_kid(&self) -> String {
        self.node.get(NODE_KEY).json()["kid"]
            .as_str()
            .expect("kid")
            .to_owned()
    }

    fn known_entry(&self) -> Value {
        let text = std::fs::read_to_string(&self.known).expect("the known-nodes file");
        serde_json::from_str::<Value>(&text).expect("JSON")[self.node.base_url.as_str()].clone()
    }

    /// Stops the node and starts it again on the same address and data directory.
    fn restart(self, between: impl FnOnce(&std::path::Path)) -> Self {
        let address = self.node.address;
        let InitNode {
            data,
            node,
            owner_kid,
            password,
            key,
            known,
        } = self;
        node.stop();
        between(&data);
        let node = TestNode::start(
            &data,
            NodeOptions {
                listen: Some(address),
                ..NodeOptions::default()
            },
        );
        InitNode {
            data,
            node,
            owner_kid,
            password,
            key,
            known,
        }
    }
}

/// Writes a P-384 key of no one's (PKCS#8 PEM) over `data/node.key`.
fn swap_in_a_foreign_node_key(data: &std::path::Path) {
    use p384::pkcs8::EncodePrivateKey;
    let foreign = OwnerPrivateKey::generate();
    let secret = p384::SecretKey::from_slice(foreign.scalar_bytes().as_slice()).expect("scalar");
    let pem = secret
        .to_pkcs8_pem(p384::pkcs8::LineEnding::LF)
        .expect("pem");
    std::fs::write(data.join("node.key"), pem.as_bytes()).expect("write");
}

#[test]
fn siteid_login_verifies_a_node_bound_at_init_by_default_and_keeps_its_owner_kid() {
    let root = tempfile::tempdir().expect("dir");
    let init = InitNode::start(root.path(), "a", None);
    let node_kid = init.node_kid();
    assert!(!init.known.exists());
    let (token, stderr) = init.first_login(&[]);
    assert!(stderr.contains("first contact"), "{stderr}");
    let session = init
        .node
        .call("GET", "/api/v1/session", Some(token.trim()), None, &[]);
    assert_eq!(session.status, 200);
    let entry = init.known_entry();
    assert_eq!(entry["owner_kid"], init.owner_kid.as_str());
    assert_eq!(entry["node_kid"], node_kid.as_str());
    assert!(entry["first_seen"].is_i64() && entry["last_verified"].is_i64());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&init.known)
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The second contact checks from the kept kid.
    let (code, _, stderr) = init.login(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("first contact"), "{stderr}");
    assert!(stderr.contains(&node_kid), "{stderr}");
    // A pin of another kid is refused, and so is a pin that is not a kid at all.
    let stranger = OwnerPrivateKey::generate().public_key().thumbprint();
    let (code, _, stderr) = init.login(&["--pin", &stranger]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not the node the owner key"), "{stderr}");
    assert!(stderr.contains(&stranger), "{stderr}");
}

#[test]
fn siteid_login_refuses_a_node_whose_key_was_swapped_or_is_unbound() {
    let root = tempfile::tempdir().expect("dir");
    let init = InitNode::start(root.path(), "a", None);
    let (_, _) = init.first_login(&[]);
    let node_kid = init.node_kid();

    // A foreign key in node.key: what the node serves is not the key the owner key bound.
    let init = init.restart(swap_in_a_foreign_node_key);
    assert_ne!(init.node_kid(), node_kid);
    let (code, stdout, stderr) = init.login(&[]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.contains("is not the node the owner key"), "{stderr}");
    assert_eq!(
        init.known_entry()["node_kid"],
        node_kid.as_str(),
        "a refused node changes nothing that is kept"
    );
    // The same with a binding that is gone: the owner is told what binds it again.
    let init =
        init.restart(|data| {
            let deleted = crate::helpers::with_store(data, |c| {
                Ok(c.execute("DELETE FROM node_key_binding", [])?)
            });
            assert!(deleted >= 1);
        });
    let (code, _, stderr) = init.login(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("sign in once in the browser"), "{stderr}");
}

#[test]
fn a_second_node_at_a_known_origin_with_another_owner_key_is_refused() {
    let root = tempfile::tempdir().expect("dir");
    let first = InitNode::start(root.path(), "first", None);
    first.first_login(&[]);
    let address = first.node.address;
    let kept = first.known_entry();
    first.node.stop();
    let second = InitNode::start(root.path(), "second", Some(address));
    assert_ne!(second.owner_kid, kept["owner_kid"].as_str().expect("kid"));
    let (code, _, stderr) = second.login(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not in the history"), "{stderr}");
    assert!(stderr.contains("known_nodes.json"), "{stderr}");
    assert_eq!(second.known_entry(), kept, "the kept kid stays");
    // The owner's explicit word, a pin of the new kid, is accepted and kept.
    second.first_login(&["--pin", &second.owner_kid]);
    assert_eq!(second.known_entry()["owner_kid"], second.owner_kid.as_str());
}

#[test]
fn a_command_line_rotation_keeps_the_node_key_bound_and_login_follows_the_history() {
    let root = tempfile::tempdir().expect("dir");
    let init = InitNode::start(root.path(), "a", None);
    init.first_login(&[]);
    let node_kid = init.node_kid();
    let (code, new_kid, stderr) = crate::process::run(&[
        "owner",
        "rotate",
        "--data-dir",
        init.data.to_str().expect("utf-8"),
        "--password-file",
        &init.password,
        "--p2c",
        "210000",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let new_kid = new_kid.trim().to_owned();
    assert!(
        crate::helpers::wait_until(std::time::Duration::from_secs(10), || {
            let kids = jwks_kids(&init.node);
            kids.contains(&new_kid) && kids.contains(&node_kid) && !kids.contains(&init.owner_kid)
        }),
        "the running node publishes the new owner key and, beside it, the node key: {:?}",
        jwks_kids(&init.node)
    );
    let binding = init.node.get(NODE_KEY).json()["binding"]
        .as_str()
        .expect("bound by the new key")
        .to_owned();
    let jws = CompactJws::parse(&binding, siteid::jose::node_key::BINDING_TYPE).expect("binding");
    assert_eq!(jws.header.kid.as_deref(), Some(new_kid.as_str()));
    let (code, _, stderr) = init.login(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the owner key changed from {} to {new_kid}",
            init.owner_kid
        )),
        "{stderr}"
    );
    assert_eq!(init.known_entry()["owner_kid"], new_kid.as_str());
    // Audited in the rotation's transaction: the binding comes just before owner.rotated.
    let rows = crate::helpers::with_store(&init.data, siteid::store::audit_rows::all);
    let rotated = rows
        .iter()
        .position(|row| row.event == "owner.rotated")
        .expect("owner.rotated");
    let bound = &rows[rotated - 1];
    assert_eq!(bound.event, "node_key.bound");
    let detail: Value = serde_json::from_str(&bound.detail).expect("detail");
    assert_eq!(detail["owner_kid"], new_kid.as_str());
    assert_eq!(detail["node_kid"], node_kid.as_str());
}

#[test]
fn a_node_key_rotation_reaches_the_running_node_and_login_verifies_the_new_key() {
    let root = tempfile::tempdir().expect("dir");
    let init = InitNode::start(root.path(), "a", None);
    init.first_login(&[]);
    let old_key = node_verifying_key(&init.node);
    let (code, new_kid, stderr) = crate::process::run(&[
        "node-key",
        "rotate",
        "--data-dir",
        init.data.to_str().expect("utf-8"),
        "--password-file",
        &init.password,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let new_kid = new_kid.trim().to_owned();
    assert_ne!(new_kid, old_key.kid);
    assert!(
        crate::helpers::wait_until(std::time::Duration::from_secs(10), || {
            let published = init.node.get(NODE_KEY).json();
            published["kid"] == new_kid.as_str() && published["binding"].is_string()
        }),
        "the running node serves the new key with its binding: {}",
        init.node.get(NODE_KEY).body
    );
    let kids = jwks_kids(&init.node);
    assert!(
        kids.contains(&new_kid) && !kids.contains(&old_key.kid),
        "{kids:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(init.data.join("node.key"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The node signs with the new key only: a proof no longer verifies with the old one.
    let client_nonce = "c2l0ZWlkLWNsaWVudC1ub25jZQ";
    let answer = init.node.post_json(
        "/api/v1/auth/challenge",
        &json!({ "client_nonce": client_nonce }),
    );
    let signature = answer.json()["node_signature"]
        .as_str()
        .expect("a proof")
        .to_owned();
    let jws = CompactJws::parse(&signature, PROOF_TYPE).expect("a node proof");
    assert_eq!(jws.header.kid.as_deref(), Some(new_kid.as_str()));
    assert!(
        jws.verify_with::<Value>(&node_verifying_key(&init.node))
            .is_ok()
    );
    assert!(jws.verify_with::<Value>(&old_key).is_err());

    let (code, _, stderr) = init.login(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the node key changed from {} to {new_kid}",
            old_key.kid
        )),
        "{stderr}"
    );
    assert_eq!(init.known_entry()["node_kid"], new_kid.as_str());
    let rows = crate::helpers::with_store(&init.data, siteid::store::audit_rows::all);
    let rotated = rows
        .iter()
        .find(|row| row.event == "node_key.rotated")
        .expect("node_key.rotated");
    let detail: Value = serde_json::from_str(&rotated.detail).expect("detail");
    assert_eq!(detail, json!({ "old": old_key.kid, "new": new_kid }));
    // The old key's binding is gone with it.
    let old_kid = old_key.kid.clone();
    let old_binding = crate::helpers::with_store(&init.data, move |c| {
        siteid::store::node_key::binding(c, &old_kid)
    });
    assert_eq!(old_binding, None);
}

#[test]
fn a_rotation_over_http_binds_the_node_key_in_the_same_transaction() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    let node_kid = node.get(NODE_KEY).json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    bind_node_key(&node, &token, &owner, &node_kid);
    // A binding by the old key is refused, and the rotation with it changes nothing.
    let mut stale = crate::owner_key::Rotation::new(&node, &owner.key, 1, &[]);
    stale.body["node_key_binding"] =
        json!(sign_binding(&owner.key, &node.audience, &node_kid, now()));
    let refused = node.call(
        "POST",
        "/api/v1/owner/rotate",
        Some(&token),
        Some(&stale.body),
        &[],
    );
    assert_eq!(refused.problem(422)["field"], "node_key_binding");
    // With the new key's binding the JWKS lists the node key as soon as the rotation answers.
    let mut rotation = crate::owner_key::Rotation::new(&node, &owner.key, 1, &[]);
    rotation.body["node_key_binding"] = json!(sign_binding(
        &rotation.next,
        &node.audience,
        &node_kid,
        now()
    ));
    let rotated = node.call(
        "POST",
        "/api/v1/owner/rotate",
        Some(&token),
        Some(&rotation.body),
        &[],
    );
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_kid = rotation.next.public_key().thumbprint();
    let kids = jwks_kids(&node);
    assert!(
        kids.contains(&new_kid) && kids.contains(&node_kid),
        "{kids:?}"
    );
    let published = node.get(NODE_KEY).json();
    let binding = published["binding"].as_str().expect("bound");
    let jws = CompactJws::parse(binding, siteid::jose::node_key::BINDING_TYPE).expect("a JWS");
    assert_eq!(jws.header.kid.as_deref(), Some(new_kid.as_str()));
}
