//! The credential registry: keys bound by the owner key sign in with only their capabilities
//! and only from their networks; revoking, resetting and expiry end their sessions and
//! sockets; a binding must agree with every field; a row edited in the database is caught.

use serde_json::{Value, json};
use siteid::clock::Clock;
use siteid::jose::b64;
use siteid::jose::jwk::OwnerPrivateKey;

use crate::helpers::{
    NodeOptions, TestNode, TestOwner, now, spawn_node, spawn_node_with_clock, with_store,
};

const CREDENTIALS: &str = "/api/v1/credentials";

/// A key to register: its own private key, and the credential's fields.
pub struct Device {
    pub signer: TestOwner,
    pub id: String,
    pub kind: &'static str,
    pub label: String,
    pub capabilities: Vec<&'static str>,
    pub networks: Vec<&'static str>,
    pub expires_at: Option<i64>,
}

impl Device {
    pub fn new(capabilities: &[&'static str]) -> Device {
        let id_bytes: [u8; 16] = rand::random();
        Device {
            signer: TestOwner {
                key: OwnerPrivateKey::generate(),
                ..TestOwner::from_vector()
            },
            id: b64::encode(&id_bytes),
            kind: "key",
            label: "A script's key".into(),
            capabilities: capabilities.to_vec(),
            networks: Vec::new(),
            expires_at: None,
        }
    }

    pub fn kid(&self) -> String {
        self.signer.key.public_key().thumbprint()
    }

    /// The binding the owner signs over this credential's fields.
    pub fn binding(&self, owner: &TestOwner) -> String {
        binding_by(&owner.key, owner, self)
    }

    /// The `POST /api/v1/credentials` body.
    fn body(&self, owner: &TestOwner) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "public_key": serde_json::to_value(self.signer.key.public_key().to_jwk()).expect("jwk"),
            "capabilities": self.capabilities,
            "networks": self.networks,
            "expires_at": self.expires_at,
            "binding": self.binding(owner),
        })
    }
}

/// A binding over `device`'s fields, signed by `signer` but naming `owner`'s kid.
pub fn binding_by(signer: &OwnerPrivateKey, owner: &TestOwner, device: &Device) -> String {
    binding_at(signer, owner, device, now())
}

/// A binding made at `iat`.
pub fn binding_at(
    signer: &OwnerPrivateKey,
    owner: &TestOwner,
    device: &Device,
    iat: i64,
) -> String {
    let mut claims = json!({
        "sub": device.kid(),
        "kind": device.kind,
        "label": device.label,
        "cap": device.capabilities,
        "net": device.networks,
        "iat": iat,
        "jti": device.id,
    });
    if let Some(exp) = device.expires_at {
        claims["exp"] = json!(exp);
    }
    siteid::jose::jws::sign_es384(
        signer,
        &json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": owner.key.public_key().thumbprint()}),
        &claims,
    )
}

/// A claimed node and a stepped-up owner session.
fn owner_node() -> (tempfile::TempDir, TestNode, TestOwner, String) {
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    (dir, node, owner, token)
}

pub fn register(node: &TestNode, token: &str, owner: &TestOwner, device: &Device) -> Value {
    let answer = node.call(
        "POST",
        CREDENTIALS,
        Some(token),
        Some(&device.body(owner)),
        &[],
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

#[test]
fn a_bound_key_signs_in_with_only_its_capabilities() {
    let (_dir, node, owner, owner_token) = owner_node();
    let device = Device::new(&["session", "audit"]);
    let created = register(&node, &owner_token, &owner, &device);
    assert_eq!(created["id"], device.id);
    assert_eq!(created["kid"], device.kid());
    assert_eq!(created["alg"], "ES384");
    assert_eq!(created["capabilities"], json!(["session", "audit"]));
    assert_eq!(created["current"], false);

    let (token, _) = node.login(&device.signer);
    let session = node
        .call("GET", "/api/v1/session", Some(&token), None, &[])
        .json();
    assert_eq!(session["credential_id"], device.id);
    assert_eq!(session["capabilities"], json!(["session", "audit"]));
    assert_eq!(
        node.call("GET", "/api/v1/audit", Some(&token), None, &[])
            .status,
        200
    );
    node.step_up(&device.signer, &token);
    let new = owner.rewrapped("another password");
    let refused: [(&str, &str, Option<Value>); 7] = [
        ("GET", "/api/v1/sessions", None),
        ("POST", "/api/v1/sessions/revoke-others", None),
        ("GET", CREDENTIALS, None),
        ("GET", "/api/v1/recovery/sets", None),
        ("POST", "/api/v1/unlock-codes", None),
        (
            "PUT",
            "/api/v1/owner/wrapped-key",
            Some(node.rewrap_body(&owner, &new, Some(&owner.unlock_verifier))),
        ),
        ("DELETE", "/api/v1/sessions/whatever", None),
    ];
    for (method, path, body) in refused {
        let answer = node.call(method, path, Some(&token), body.as_ref(), &[]);
        assert_eq!(
            answer.problem(403)["type"],
            "urn:siteid:problem:insufficient-capability",
            "{method} {path}"
        );
    }
    let listed = node
        .call("GET", CREDENTIALS, Some(&owner_token), None, &[])
        .json();
    let listed = listed["credentials"].as_array().expect("list").clone();
    assert_eq!(listed.len(), 2, "the owner key and the new key");
    assert_eq!(listed[0]["kind"], "owner");
    assert_eq!(listed[0]["current"], true);
    assert!(listed[1]["last_used_at"].is_i64(), "{}", listed[1]);
}

#[test]
fn each_capability_opens_exactly_its_endpoints() {
    let (_dir, node, owner, owner_token) = owner_node();
    let all = [
        "session",
        "sessions",
        "audit",
        "credentials",
        "recovery",
        "owner",
        "inbox",
        "indieauth",
    ];
    let probes: [(&str, &str, &str); 8] = [
        ("session", "GET", "/api/v1/session"),
        ("sessions", "GET", "/api/v1/sessions"),
        ("audit", "GET", "/api/v1/audit"),
        ("credentials", "GET", CREDENTIALS),
        ("recovery", "GET", "/api/v1/recovery/sets"),
        ("owner", "POST", "/api/v1/unlock-codes"),
        ("inbox", "GET", "/api/v1/inbox"),
        ("indieauth", "GET", "/api/v1/indieauth/grants"),
    ];
    for (missing, method, path) in probes {
        let granted: Vec<&'static str> = all.iter().copied().filter(|c| *c != missing).collect();
        let device = Device::new(&granted);
        register(&node, &owner_token, &owner, &device);
        let (token, _) = node.login(&device.signer);
        node.step_up(&device.signer, &token);
        for (capability, probe_method, probe_path) in probes {
            let answer = node.call(probe_method, probe_path, Some(&token), None, &[]);
            if capability == missing {
                assert_eq!(
                    answer.problem(403)["type"],
                    "urn:siteid:problem:insufficient-capability",
                    "{method} {path} without {missing}"
                );
            } else {
                assert!(
                    answer.status < 300,
                    "{probe_method} {probe_path} with {capability}: {}",
                    answer.body
                );
            }
        }
    }
}

#[test]
fn a_credential_with_networks_is_refused_outside_them() {
    let (dir, node, owner, owner_token) = owner_node();
    let mut device = Device::new(&["session"]);
    device.networks = vec!["127.0.9.0/24"];
    register(&node, &owner_token, &owner, &device);
    let login_from = |source: &str| {
        let challenge = node
            .request_from(source, "POST", "/api/v1/auth/challenge", None, None)
            .json();
        let nonce = challenge["nonce"].as_str().expect("nonce").to_owned();
        let assertion = device.signer.login_assertion(&node, &nonce);
        node.request_from(
            source,
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"assertion": assertion})),
        )
    };
    let outside = login_from("127.0.10.1");
    assert_eq!(
        outside.problem(403)["type"],
        "urn:siteid:problem:network-not-allowed"
    );
    let inside = login_from("127.0.9.5");
    assert_eq!(inside.status, 200, "{}", inside.body);
    let token = inside.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let used_inside = node.request_from("127.0.9.7", "GET", "/api/v1/session", Some(&token), None);
    assert_eq!(used_inside.status, 200);
    let used_outside =
        node.request_from("127.0.11.1", "GET", "/api/v1/session", Some(&token), None);
    assert_eq!(
        used_outside.problem(403)["type"],
        "urn:siteid:problem:network-not-allowed"
    );
    // Signing out only takes power away, so it works from anywhere.
    let signed_out = node.request_from(
        "127.0.11.1",
        "DELETE",
        "/api/v1/session",
        Some(&token),
        None,
    );
    assert_eq!(signed_out.status, 204, "{}", signed_out.body);
    let after = node.request_from("127.0.9.7", "GET", "/api/v1/session", Some(&token), None);
    assert_eq!(after.status, 401);
    node.stop();
    let refused: i64 = with_store(dir.path(), |c| {
        c.query_row(
            "SELECT count(*) FROM audit_log WHERE event = 'credential.network_refused'",
            [],
            |row| row.get(0),
        )
        .map_err(siteid::store::StoreError::from)
    });
    assert_eq!(refused, 2, "the sign-in and the use outside were audited");
}

#[test]
fn revoking_a_credential_ends_its_sessions_and_its_key_never_signs_in_again() {
    let (_dir, node, owner, owner_token) = owner_node();
    let device = Device::new(&["session"]);
    register(&node, &owner_token, &owner, &device);
    let (token, _) = node.login(&device.signer);
    assert_eq!(
        node.call("GET", "/api/v1/session", Some(&token), None, &[])
            .status,
        200
    );
    let path = format!("{CREDENTIALS}/{}", device.id);
    let revoked = node.call("DELETE", &path, Some(&owner_token), None, &[]);
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    node.call("GET", "/api/v1/session", Some(&token), None, &[])
        .problem(401);
    let again = device.signer.login_assertion(&node, &node.challenge());
    node.post_json("/api/v1/auth/login", &json!({"assertion": again}))
        .problem(401);
    let readd = node.call(
        "POST",
        CREDENTIALS,
        Some(&owner_token),
        Some(&device.body(&owner)),
        &[],
    );
    assert_eq!(
        readd.problem(409)["type"],
        "urn:siteid:problem:credential-exists"
    );
    let owner_path = format!("{CREDENTIALS}/{}", owner.key.public_key().thumbprint());
    assert_eq!(
        node.call("DELETE", &owner_path, Some(&owner_token), None, &[])
            .problem(409)["type"],
        "urn:siteid:problem:owner-credential"
    );
    let events = node.audit_events(&owner_token);
    assert!(
        events.iter().any(|e| e == "credential.revoked"),
        "{events:?}"
    );
}

#[test]
fn resetting_a_credential_gives_it_a_new_key_and_ends_the_old_keys_sessions() {
    let (_dir, node, owner, owner_token) = owner_node();
    let mut device = Device::new(&["session", "audit"]);
    register(&node, &owner_token, &owner, &device);
    let (old_token, _) = node.login(&device.signer);
    let old_signer = std::mem::replace(
        &mut device.signer,
        TestOwner {
            key: OwnerPrivateKey::generate(),
            ..TestOwner::from_vector()
        },
    );
    let reset = node.call(
        "PUT",
        &format!("{CREDENTIALS}/{}/key", device.id),
        Some(&owner_token),
        Some(&json!({
            "public_key": serde_json::to_value(device.signer.key.public_key().to_jwk()).expect("jwk"),
            "binding": device.binding(&owner),
        })),
        &[],
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.json()["kid"], device.kid());
    assert_eq!(reset.json()["capabilities"], json!(["session", "audit"]));
    node.call("GET", "/api/v1/session", Some(&old_token), None, &[])
        .problem(401);
    let old = old_signer.login_assertion(&node, &node.challenge());
    node.post_json("/api/v1/auth/login", &json!({"assertion": old}))
        .problem(401);
    let (new_token, _) = node.login(&device.signer);
    let session = node
        .call("GET", "/api/v1/session", Some(&new_token), None, &[])
        .json();
    assert_eq!(session["credential_id"], device.id, "the same credential");
}

#[test]
fn a_binding_must_be_the_owners_and_agree_with_every_field() {
    let (_dir, node, owner, owner_token) = owner_node();
    let device = Device::new(&["session"]);
    let post = |body: &Value| node.call("POST", CREDENTIALS, Some(&owner_token), Some(body), &[]);
    let stranger = OwnerPrivateKey::generate();
    let mut body = device.body(&owner);
    body["binding"] = json!(binding_by(&stranger, &owner, &device));
    assert_eq!(
        post(&body).problem(422)["field"],
        "binding",
        "another key signed it"
    );
    for (member, value, field) in [
        ("label", json!("Another label"), "label"),
        ("capabilities", json!(["session", "owner"]), "capabilities"),
        ("networks", json!(["127.0.0.0/8"]), "networks"),
        ("expires_at", json!(now() + 3_600), "expires_at"),
        ("kind", json!("device"), "kind"),
        ("id", json!(b64::encode(&[5u8; 16])), "id"),
        (
            "public_key",
            serde_json::to_value(OwnerPrivateKey::generate().public_key().to_jwk()).expect("jwk"),
            "public_key",
        ),
    ] {
        let mut body = device.body(&owner);
        body[member] = value;
        assert_eq!(post(&body).problem(422)["field"], field, "{member}");
    }
    for (member, value) in [
        ("id", json!("short")),
        ("capabilities", json!(["session", "root"])),
        ("networks", json!(["300.0.0.0/8"])),
        ("expires_at", json!(now() - 10)),
        ("label", json!("")),
        ("public_key", json!("ssh-ed25519 AAAA")),
    ] {
        let mut body = device.body(&owner);
        body[member] = value;
        assert_eq!(post(&body).problem(422)["field"], member, "{member}");
    }
    assert_eq!(post(&device.body(&owner)).status, 201);
}

#[test]
fn a_binding_must_be_fresh_and_an_old_one_cannot_undo_a_later_change() {
    let (_dir, node, owner, owner_token) = owner_node();
    let call = |method: &str, path: &str, body: &Value| {
        node.call(method, path, Some(&owner_token), Some(body), &[])
    };
    let mut device = Device::new(&["session", "audit"]);
    for (iat, why) in [
        (now() - 301, "made over 300 s ago"),
        (now() + 120, "made in the future"),
    ] {
        let mut body = device.body(&owner);
        body["binding"] = json!(binding_at(&owner.key, &owner, &device, iat));
        let refused = call("POST", CREDENTIALS, &body);
        assert_eq!(refused.problem(422)["field"], "binding", "{why}");
    }
    let wide = device.binding(&owner);
    register(&node, &owner_token, &owner, &device);

    // The owner narrows the credential with a newer binding; sending the wider one again fails.
    device.capabilities = vec!["session"];
    let path = format!("{CREDENTIALS}/{}", device.id);
    let narrow = binding_at(&owner.key, &owner, &device, now() + 1);
    let answer = call(
        "PATCH",
        &path,
        &json!({"capabilities": ["session"], "binding": narrow}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let replayed = call(
        "PATCH",
        &path,
        &json!({"capabilities": ["session", "audit"], "binding": wide}),
    );
    assert_eq!(replayed.problem(422)["field"], "binding");
    assert!(replayed.body.contains("older than"), "{}", replayed.body);

    // A reset cannot bring back the old key with its old binding either.
    let old_key = serde_json::to_value(device.signer.key.public_key().to_jwk()).expect("jwk");
    let old_binding = binding_at(&owner.key, &owner, &device, now());
    let mut replacement = Device::new(&["session"]);
    replacement.id = device.id.clone();
    let new_binding = binding_at(&owner.key, &owner, &replacement, now() + 2);
    let reset_path = format!("{path}/key");
    let answer = call(
        "PUT",
        &reset_path,
        &json!({"public_key": serde_json::to_value(replacement.signer.key.public_key().to_jwk()).expect("jwk"), "binding": new_binding}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let back = call(
        "PUT",
        &reset_path,
        &json!({"public_key": old_key, "binding": old_binding}),
    );
    assert_eq!(back.problem(422)["field"], "binding");
    let listed = node
        .call("GET", CREDENTIALS, Some(&owner_token), None, &[])
        .json();
    let row = listed["credentials"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["id"] == json!(device.id))
        .expect("listed")
        .clone();
    assert_eq!(row["capabilities"], json!(["session"]));
    assert_eq!(row["kid"], replacement.kid());
}

#[test]
fn a_session_row_edited_in_the_database_gains_nothing_after_a_restart() {
    let (dir, node, owner, owner_token) = owner_node();
    let device = Device::new(&["session"]);
    register(&node, &owner_token, &owner, &device);
    let (device_token, _) = node.login(&device.signer);
    node.stop();
    let later = now() + 3_600;
    with_store(dir.path(), |c| {
        c.execute(
            "UPDATE session SET capabilities = '[\"session\",\"sessions\",\"audit\",\"credentials\",\"recovery\",\"owner\"]', fresh_until = ?1",
            [later],
        )
        .map(|_| ())
        .map_err(siteid::store::StoreError::from)
    });
    let node = TestNode::start(dir.path(), NodeOptions::default());
    let session = node
        .call("GET", "/api/v1/session", Some(&device_token), None, &[])
        .json();
    assert_eq!(session["capabilities"], json!(["session"]));
    let audit = node.call("GET", "/api/v1/audit", Some(&device_token), None, &[]);
    assert_eq!(
        audit.problem(403)["type"],
        "urn:siteid:problem:insufficient-capability"
    );
    // A step-up written into the row does not count either.
    let code = node.call(
        "POST",
        "/api/v1/unlock-codes",
        Some(&owner_token),
        None,
        &[],
    );
    assert_eq!(
        code.problem(403)["type"],
        "urn:siteid:problem:step-up-required"
    );
}

#[test]
fn a_revocation_or_an_old_binding_put_back_in_the_database_is_caught() {
    let (dir, node, owner, owner_token) = owner_node();
    let revoked = Device::new(&["session"]);
    register(&node, &owner_token, &owner, &revoked);
    let path = format!("{CREDENTIALS}/{}", revoked.id);
    assert_eq!(
        node.call("DELETE", &path, Some(&owner_token), None, &[])
            .status,
        204
    );
    let mut narrowed = Device::new(&["session", "audit"]);
    let wide_binding = narrowed.binding(&owner);
    register(&node, &owner_token, &owner, &narrowed);
    narrowed.capabilities = vec!["session"];
    let narrow_binding = binding_at(&owner.key, &owner, &narrowed, now() + 1);
    let answer = node.call(
        "PATCH",
        &format!("{CREDENTIALS}/{}", narrowed.id),
        Some(&owner_token),
        Some(&json!({"capabilities": ["session"], "binding": narrow_binding})),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    node.stop();
    with_store(dir.path(), |c| {
        c.execute(
            "UPDATE credential SET revoked_at = NULL WHERE id = ?1",
            [&revoked.id],
        )?;
        c.execute(
            "UPDATE credential SET capabilities = '[\"session\",\"audit\"]', binding = ?2 WHERE id = ?1",
            [&narrowed.id, &wide_binding],
        )
        .map(|_| ())
        .map_err(siteid::store::StoreError::from)
    });
    let node = TestNode::start(dir.path(), NodeOptions::default());
    for device in [&revoked, &narrowed] {
        let assertion = device.signer.login_assertion(&node, &node.challenge());
        let refused = node.post_json("/api/v1/auth/login", &json!({"assertion": assertion}));
        refused.problem(401);
    }
    let (owner_token, _) = node.login(&owner);
    let log = node
        .call(
            "GET",
            "/api/v1/audit?limit=50",
            Some(&owner_token),
            None,
            &[],
        )
        .json();
    let tampered: Vec<&Value> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["event"] == "credential.tampered")
        .collect();
    for device in [&revoked, &narrowed] {
        assert!(
            tampered
                .iter()
                .any(|e| e["detail"]["credential_id"] == json!(device.id)),
            "{tampered:?}"
        );
    }
}

#[test]
fn a_credential_row_edited_in_the_database_cannot_sign_in() {
    let (dir, node, owner, owner_token) = owner_node();
    let device = Device::new(&["session"]);
    register(&node, &owner_token, &owner, &device);
    node.stop();
    with_store(dir.path(), |c| {
        c.execute(
            "UPDATE credential SET capabilities = '[\"session\",\"owner\"]' WHERE id = ?1",
            [&device.id],
        )
        .map(|_| ())
        .map_err(siteid::store::StoreError::from)
    });
    let node = TestNode::start(dir.path(), NodeOptions::default());
    let assertion = device.signer.login_assertion(&node, &node.challenge());
    let refused = node.post_json("/api/v1/auth/login", &json!({"assertion": assertion}));
    assert_eq!(
        refused.problem(401)["type"],
        "urn:siteid:problem:invalid-assertion",
        "refused like an unknown kid"
    );
    let (owner_token, _) = node.login(&owner);
    let tampered = node.audit_entry(&owner_token, "credential.tampered");
    assert_eq!(tampered["detail"]["credential_id"], device.id);
}

#[test]
fn an_expired_credential_cannot_sign_in_and_its_sessions_end() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (owner_token, _) = node.login_at(&owner, clock.now());
    node.step_up_at(&owner, &owner_token, clock.now());
    let mut device = Device::new(&["session"]);
    device.expires_at = Some(clock.now() + 60);
    let body = device.body(&owner);
    let created = node.call("POST", CREDENTIALS, Some(&owner_token), Some(&body), &[]);
    assert_eq!(created.status, 201, "{}", created.body);
    let (token, _) = node.login_at(&device.signer, clock.now());
    clock.advance(61);
    node.call("GET", "/api/v1/session", Some(&token), None, &[])
        .problem(401);
    let late = device
        .signer
        .login_assertion_at(&node, &node.challenge(), clock.now());
    node.post_json("/api/v1/auth/login", &json!({"assertion": late}))
        .problem(401);
}

/// Opens a socket and signs in on it with `signer`'s key; returns it once ready.
fn signed_in_socket(
    node: &TestNode,
    signer: &TestOwner,
) -> tungstenite::protocol::WebSocket<std::net::TcpStream> {
    signed_in_socket_with(node, &|nonce| signer.login_assertion(node, nonce))
}

/// Opens a socket and signs in on it with the assertion `sign` makes over its nonce.
pub fn signed_in_socket_with(
    node: &TestNode,
    sign: &dyn Fn(&str) -> String,
) -> tungstenite::protocol::WebSocket<std::net::TcpStream> {
    use tungstenite::Message;
    use tungstenite::client::IntoClientRequest;
    let stream = std::net::TcpStream::connect(node.address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let request = format!("ws://{}/api/v1/ws", node.address)
        .into_client_request()
        .expect("request");
    let (mut socket, _) = tungstenite::client::client(request, stream).expect("handshake");
    let read_json = |socket: &mut tungstenite::protocol::WebSocket<std::net::TcpStream>| loop {
        match socket.read().expect("a frame") {
            Message::Text(text) => {
                return serde_json::from_str::<Value>(text.as_str()).expect("JSON");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    };
    let nonce = read_json(&mut socket)["nonce"]
        .as_str()
        .expect("nonce")
        .to_owned();
    let assertion = sign(&nonce);
    socket
        .send(Message::text(
            json!({"type": "auth", "assertion": assertion}).to_string(),
        ))
        .expect("send");
    assert_eq!(read_json(&mut socket)["type"], "ready");
    socket
}

#[test]
fn revoking_a_credential_closes_its_sockets_and_others_do_not_see_sessions_without_the_capability()
{
    let (_dir, node, owner, owner_token) = owner_node();
    let device = Device::new(&["session"]);
    register(&node, &owner_token, &owner, &device);
    let mut device_socket = signed_in_socket(&node, &device.signer);
    let mut owner_socket = signed_in_socket(&node, &owner);
    // A new sign-in elsewhere: the owner's socket hears of it, the device's (no `sessions`) not.
    node.login(&owner);
    let event = loop {
        match owner_socket.read().expect("a frame") {
            tungstenite::Message::Text(text) => {
                break serde_json::from_str::<Value>(text.as_str()).expect("JSON");
            }
            _ => continue,
        }
    };
    assert_eq!(event["event"], "session.created");
    let revoked = node.call(
        "DELETE",
        &format!("{CREDENTIALS}/{}", device.id),
        Some(&owner_token),
        None,
        &[],
    );
    assert_eq!(revoked.status, 204);
    // The first message the device's socket gets is its close: no session event came before it.
    let code = loop {
        match device_socket.read().expect("a frame") {
            tungstenite::Message::Text(text) => panic!("the device saw an event: {text}"),
            tungstenite::Message::Close(Some(frame)) => break u16::from(frame.code),
            _ => continue,
        }
    };
    assert_eq!(code, 4401);
}
