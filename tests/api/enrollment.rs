//! Pairing: the enrollment modes (open, approval, window) over HTTP and the WebSocket, requests
//! approved, denied or left to expire, the comparison code, and approvals that may not grant
//! more than the approver holds.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use siteid::auth::enrollment::comparison_code;
use siteid::clock::{Clock, ManualClock, SystemClock};
use siteid::config::EnrollmentMode;
use tungstenite::Message;

use crate::credentials::{Device, binding_at, register, signed_in_socket_with};
use crate::helpers::{NodeOptions, TestNode, TestOwner, now, spawn_node, wait_until};

const ENROLLMENT: &str = "/api/v1/enrollment";
const REQUESTS: &str = "/api/v1/enrollment/requests";
const UNLOCK: &str = "/api/v1/unlock";

type Socket = tungstenite::protocol::WebSocket<std::net::TcpStream>;

/// A claimed node in `mode`, on a hand-driven clock, with a stepped-up owner session.
fn node_in(mode: EnrollmentMode) -> (tempfile::TempDir, TestNode, ManualClock, TestOwner, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(SystemClock.now());
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            clock: std::sync::Arc::new(clock.clone()),
            enrollment: mode,
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    (dir, node, clock, owner, token)
}

/// A stepped-up session of `owner` on a node whose clock reads `at`.
fn stepped_up_at(node: &TestNode, owner: &TestOwner, at: i64) -> String {
    let (token, _) = node.login_at(owner, at);
    node.step_up_at(owner, &token, at);
    token
}

/// A new device's key and request fields.
fn new_device() -> Device {
    let mut device = Device::new(&["session"]);
    device.kind = "device";
    device.label = "Phone".into();
    device
}

fn request_body(device: &Device) -> Value {
    json!({
        "id": device.id,
        "kind": device.kind,
        "label": device.label,
        "public_key": serde_json::to_value(device.signer.key.public_key().to_jwk()).expect("jwk"),
    })
}

/// Sends `device`'s request; returns the node's answer (201 expected).
fn send_request(node: &TestNode, device: &Device) -> Value {
    let answer = node.post_json(REQUESTS, &request_body(device));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

/// The approval body granting `device.capabilities`, bound by the owner at `iat`.
fn approval(owner: &TestOwner, device: &Device, iat: i64) -> Value {
    json!({
        "capabilities": device.capabilities,
        "networks": device.networks,
        "expires_at": device.expires_at,
        "binding": binding_at(&owner.key, owner, device, iat),
    })
}

fn approve(node: &TestNode, token: &str, body: &Value, id: &str) -> crate::helpers::Answer {
    node.call(
        "POST",
        &format!("{REQUESTS}/{id}/approve"),
        Some(token),
        Some(body),
        &[],
    )
}

fn status(node: &TestNode, id: &str) -> String {
    let answer = node.get(&format!("{REQUESTS}/{id}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["status"].as_str().expect("status").to_owned()
}

fn set_mode(node: &TestNode, token: &str, mode: &str) -> Value {
    let answer = node.call(
        "PUT",
        ENROLLMENT,
        Some(token),
        Some(&json!({"mode": mode})),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// Reads frames until an event named `name` arrives (the socket's read timeout bounds it).
fn next_event(socket: &mut Socket, name: &str) -> Value {
    for _ in 0..100 {
        match socket.read().expect("a frame") {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if frame["type"] == "event" && frame["event"] == name {
                    return frame;
                }
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
    panic!("no {name} event in 100 frames");
}

/// Signs in over the WebSocket with `signer`; returns the first answer to the assertion.
fn websocket_sign_in(node: &TestNode, signer: &TestOwner, at: i64) -> Result<Value, u16> {
    use tungstenite::client::IntoClientRequest;
    let stream = std::net::TcpStream::connect(node.address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let request = format!("ws://{}/api/v1/ws", node.address)
        .into_client_request()
        .expect("request");
    let (mut socket, _) = tungstenite::client::client(request, stream).expect("handshake");
    let mut nonce = None;
    for _ in 0..20 {
        match socket.read().expect("a frame") {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
                match (&nonce, frame["type"].as_str()) {
                    (None, Some("challenge")) => {
                        let n = frame["nonce"].as_str().expect("nonce").to_owned();
                        let assertion = signer.login_assertion_at(node, &n, at);
                        socket
                            .send(Message::text(
                                json!({"type": "auth", "assertion": assertion}).to_string(),
                            ))
                            .expect("send");
                        nonce = Some(n);
                    }
                    (Some(_), _) => return Ok(frame),
                    _ => panic!("unexpected first frame {frame}"),
                }
            }
            Message::Close(Some(frame)) => return Err(u16::from(frame.code)),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
    panic!("no answer to the assertion");
}

#[test]
fn open_mode_is_the_default_and_unlocks_with_the_password_as_before() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let settings = node.get(ENROLLMENT).json();
    assert_eq!(settings["mode"], "open");
    assert_eq!(settings["window"], Value::Null);
    let answer = node.post_json(UNLOCK, &json!({"unlock_verifier": owner.unlock_verifier}));
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn approval_mode_refuses_password_unlock_without_counting_it_but_not_an_enrolled_device() {
    let (_dir, node, clock, owner, token) = node_in(EnrollmentMode::Open);
    // Changing the mode needs step-up (a sign-in counts for five minutes).
    clock.advance(301);
    let unstepped = node.call(
        "PUT",
        ENROLLMENT,
        Some(&token),
        Some(&json!({"mode": "approval"})),
        &[],
    );
    assert_eq!(
        unstepped.problem(403)["type"],
        "urn:siteid:problem:step-up-required"
    );
    let token = stepped_up_at(&node, &owner, clock.now());
    let bad = node.call(
        "PUT",
        ENROLLMENT,
        Some(&token),
        Some(&json!({"mode": "closed"})),
        &[],
    );
    assert_eq!(bad.problem(422)["field"], "mode");
    assert_eq!(set_mode(&node, &token, "approval")["mode"], "approval");
    // More refusals than the client window's ten failures: none is counted.
    for _ in 0..12 {
        let refused = node.post_json(UNLOCK, &json!({"unlock_verifier": owner.unlock_verifier}));
        let problem = refused.problem(403);
        assert_eq!(
            problem["type"],
            "urn:siteid:problem:enrollment-approval-required"
        );
    }
    // A signed-in device still unlocks (it needs the owner key for bindings).
    let enrolled = node.call(
        "POST",
        UNLOCK,
        Some(&token),
        Some(&json!({"unlock_verifier": owner.unlock_verifier})),
        &[],
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    let events = node.audit_events(&token);
    assert!(events.contains(&"enrollment.mode_changed".to_owned()));
    assert!(!events.contains(&"unlock.failed".to_owned()));
}

#[test]
fn an_approved_request_signs_in_with_its_own_key_over_http_and_the_websocket() {
    let (_dir, node, _clock, owner, token) = node_in(EnrollmentMode::Approval);
    let mut approver = signed_in_socket_with(&node, &|nonce| owner.login_assertion(&node, nonce));
    let mut device = new_device();
    device.capabilities = vec!["session", "inbox"];
    let sent = send_request(&node, &device);
    assert_eq!(sent["status"], "pending");
    assert_eq!(sent["kid"], device.kid());
    // The approving device is shown the request over its socket, and both sides compute the
    // same comparison code from what each received.
    let event = next_event(&mut approver, "enrollment.requested");
    assert_eq!(event["request_id"], device.id);
    assert_eq!(event["label"], "Phone");
    assert_eq!(event["kid"], device.kid());
    let on_new_device = comparison_code(
        &node.audience,
        &device.id,
        &device.kid(),
        sent["node_nonce"].as_str().expect("nonce"),
    );
    let on_approver = comparison_code(
        &node.audience,
        event["request_id"].as_str().expect("id"),
        event["kid"].as_str().expect("kid"),
        event["node_nonce"].as_str().expect("nonce"),
    );
    assert_eq!(on_new_device, on_approver);
    assert_eq!(on_new_device.len(), 6);
    let listed = node.call("GET", REQUESTS, Some(&token), None, &[]).json();
    assert_eq!(listed["requests"][0]["request_id"], device.id);
    // Before the approval the new key cannot sign in, over either transport.
    let challenge = node.challenge();
    let refused = node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": device.signer.login_assertion(&node, &challenge)}),
    );
    assert_eq!(refused.status, 401);
    assert_eq!(websocket_sign_in(&node, &device.signer, now()), Err(4401));
    let approved = approve(&node, &token, &approval(&owner, &device, now()), &device.id);
    assert_eq!(approved.status, 201, "{}", approved.body);
    assert_eq!(approved.json()["id"], device.id);
    assert_eq!(approved.json()["capabilities"], json!(["session", "inbox"]));
    let answered = next_event(&mut approver, "enrollment.answered");
    assert_eq!(answered["request_id"], device.id);
    assert_eq!(answered["status"], "approved");
    assert_eq!(status(&node, &device.id), "approved");
    // The new device signs in with its own key, with what it was granted.
    let (device_token, _) = node.login(&device.signer);
    let session = node
        .call("GET", "/api/v1/session", Some(&device_token), None, &[])
        .json();
    assert_eq!(session["capabilities"], json!(["session", "inbox"]));
    let ready = websocket_sign_in(&node, &device.signer, now()).expect("signed in");
    assert_eq!(ready["type"], "ready");
    // Answered once: a second approval or a denial is refused.
    let again = approve(&node, &token, &approval(&owner, &device, now()), &device.id);
    assert_eq!(
        again.problem(409)["type"],
        "urn:siteid:problem:enrollment-request-closed"
    );
    let events = node.audit_events(&token);
    for event in [
        "enrollment.requested",
        "credential.added",
        "enrollment.approved",
    ] {
        assert!(events.contains(&event.to_owned()), "{event} in {events:?}");
    }
}

#[test]
fn an_approval_cannot_grant_more_than_the_approver_holds() {
    let (_dir, node, _clock, owner, owner_token) = node_in(EnrollmentMode::Approval);
    // A device that may manage credentials but not act for the owner.
    let approver = Device::new(&["session", "credentials"]);
    register(&node, &owner_token, &owner, &approver);
    let (approver_token, _) = node.login_stepped_up(&approver.signer);
    let mut device = new_device();
    device.capabilities = vec!["session", "owner"];
    send_request(&node, &device);
    let refused = approve(
        &node,
        &approver_token,
        &approval(&owner, &device, now()),
        &device.id,
    );
    let problem = refused.problem(403);
    assert_eq!(
        problem["type"],
        "urn:siteid:problem:capabilities-exceed-approver"
    );
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("owner")
    );
    assert_eq!(status(&node, &device.id), "pending");
    device.capabilities = vec!["session"];
    let approved = approve(
        &node,
        &approver_token,
        &approval(&owner, &device, now()),
        &device.id,
    );
    assert_eq!(approved.status, 201, "{}", approved.body);
    assert_eq!(approved.json()["capabilities"], json!(["session"]));
    // The binding must agree with what is granted, as for any credential.
    let other = new_device();
    send_request(&node, &other);
    let mut body = approval(&owner, &other, now());
    body["capabilities"] = json!([]);
    let mismatch = approve(&node, &approver_token, &body, &other.id);
    assert_eq!(mismatch.problem(422)["field"], "capabilities");
    // A session without `credentials` cannot approve at all.
    let (plain_token, _) = node.login_stepped_up(&device.signer);
    let forbidden = approve(
        &node,
        &plain_token,
        &approval(&owner, &other, now()),
        &other.id,
    );
    assert_eq!(
        forbidden.problem(403)["type"],
        "urn:siteid:problem:insufficient-capability"
    );
}

#[test]
fn an_unanswered_request_expires_after_five_minutes_and_a_denied_one_is_refused() {
    let (_dir, node, clock, owner, token) = node_in(EnrollmentMode::Approval);
    let late = new_device();
    send_request(&node, &late);
    clock.advance(299);
    assert_eq!(status(&node, &late.id), "pending");
    clock.advance(2);
    assert_eq!(status(&node, &late.id), "expired");
    assert!(
        wait_until(Duration::from_secs(10), || node
            .audit_events(&token)
            .contains(&"enrollment.expired".to_owned())),
        "the sweeper records the expiry"
    );
    let token = stepped_up_at(&node, &owner, clock.now());
    let closed = approve(
        &node,
        &token,
        &approval(&owner, &late, clock.now()),
        &late.id,
    );
    assert_eq!(
        closed.problem(409)["type"],
        "urn:siteid:problem:enrollment-request-closed"
    );
    let denied = new_device();
    send_request(&node, &denied);
    let answer = node.call(
        "POST",
        &format!("{REQUESTS}/{}/deny", denied.id),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(status(&node, &denied.id), "denied");
    let after = approve(
        &node,
        &token,
        &approval(&owner, &denied, clock.now()),
        &denied.id,
    );
    assert_eq!(after.status, 409);
    assert!(
        node.audit_events(&token)
            .contains(&"enrollment.denied".to_owned())
    );
    // Neither key was registered, and neither may send another request.
    let challenge = node.challenge();
    let refused = node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": denied.signer.login_assertion_at(&node, &challenge, clock.now())}),
    );
    assert_eq!(refused.status, 401);
}

#[test]
fn window_mode_admits_unlock_and_new_credentials_only_while_a_window_is_open() {
    let (_dir, node, clock, owner, _) = node_in(EnrollmentMode::Window);
    let verifier = json!({"unlock_verifier": owner.unlock_verifier});
    // The claim opened a short window, so the claiming browser can enroll its own key.
    let settings = node.get(ENROLLMENT).json();
    assert_eq!(settings["mode"], "window");
    assert!(settings["window"]["closes_at"].as_i64().is_some());
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 200);
    clock.advance(601);
    let token = stepped_up_at(&node, &owner, clock.now());
    assert_eq!(node.get(ENROLLMENT).json()["window"], Value::Null);
    let closed = node.post_json(UNLOCK, &verifier);
    assert_eq!(
        closed.problem(403)["type"],
        "urn:siteid:problem:enrollment-window-closed"
    );
    // New credentials wait for a window too, even from a signed-in device.
    let device = Device::new(&["session"]);
    let body = json!({
        "id": device.id, "kind": "key", "label": device.label,
        "public_key": serde_json::to_value(device.signer.key.public_key().to_jwk()).expect("jwk"),
        "capabilities": ["session"], "networks": [], "expires_at": null,
        "binding": binding_at(&owner.key, &owner, &device, clock.now()),
    });
    let refused = node.call(
        "POST",
        "/api/v1/credentials",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let request = node.post_json(REQUESTS, &request_body(&new_device()));
    assert_eq!(request.status, 403, "{}", request.body);
    // At most 60 minutes; opening needs the `credentials` capability and step-up.
    let too_long = node.call(
        "POST",
        "/api/v1/enrollment/window",
        Some(&token),
        Some(&json!({"minutes": 61})),
        &[],
    );
    assert_eq!(too_long.problem(422)["field"], "minutes");
    let opened = node.call(
        "POST",
        "/api/v1/enrollment/window",
        Some(&token),
        Some(&json!({"minutes": 5})),
        &[],
    );
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(
        opened.json()["window"]["closes_at"].as_i64(),
        Some(clock.now() + 300)
    );
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 200);
    let added = node.call(
        "POST",
        "/api/v1/credentials",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(added.status, 201, "{}", added.body);
    // Closed early with one call; the window also closes by itself.
    let closed = node.call(
        "DELETE",
        "/api/v1/enrollment/window",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.json()["window"], Value::Null);
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 403);
    let reopened = node.call(
        "POST",
        "/api/v1/enrollment/window",
        Some(&token),
        Some(&json!({"minutes": 1})),
        &[],
    );
    assert_eq!(reopened.status, 200);
    clock.advance(61);
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 403);
    let token = stepped_up_at(&node, &owner, clock.now());
    assert!(
        wait_until(Duration::from_secs(10), || {
            let entries = node.audit_entries(&token);
            entries.iter().any(|e| {
                e["event"] == "enrollment.window_closed" && e["detail"]["reason"] == "expired"
            }) && entries.iter().any(|e| {
                e["event"] == "enrollment.window_closed" && e["detail"]["reason"] == "owner"
            })
        }),
        "both closings are audited"
    );
}

#[test]
fn the_command_line_opens_and_closes_the_window_of_a_running_node() {
    // The node's clock is the system's, as the command line's is.
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    set_mode(&node, &token, "window");
    let verifier = json!({"unlock_verifier": owner.unlock_verifier});
    let enroll = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_siteid"))
            .arg("enroll")
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(args)
            .env_remove("SITEID_ENROLLMENT")
            .output()
            .expect("siteid runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // The claim's window was opened in `open` mode, so there is none.
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 403);
    let printed = enroll(&["--minutes", "10"]);
    assert!(printed.contains("mode: window"), "{printed}");
    assert!(printed.contains("window: open until"), "{printed}");
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 200);
    let printed = enroll(&["--close"]);
    assert!(printed.contains("window: closed"), "{printed}");
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 403);
    let printed = enroll(&["--mode", "open"]);
    assert!(printed.contains("mode: open"), "{printed}");
    assert_eq!(node.post_json(UNLOCK, &verifier).status, 200);
}

#[test]
fn requests_are_parsed_strictly_and_bounded() {
    let (_dir, node, _clock, owner, token) = node_in(EnrollmentMode::Approval);
    let device = new_device();
    let good = request_body(&device);
    for (member, value) in [
        ("id", json!("short")),
        ("kind", json!("owner")),
        ("kind", json!("passkey")),
        ("label", json!("")),
        ("label", json!(" padded ")),
        ("public_key", json!({"kty": "EC", "crv": "P-384"})),
    ] {
        let mut body = good.clone();
        body[member] = value;
        let answer = node.post_json(REQUESTS, &body);
        assert_eq!(answer.problem(422)["field"], member, "{body}");
    }
    let mut extra = good.clone();
    extra["capabilities"] = json!(["owner"]);
    assert_eq!(node.post_json(REQUESTS, &extra).status, 422);
    // The owner key, and a key or id already asked for, are refused.
    let mut owners = good.clone();
    owners["public_key"] = owner.public_jwk.clone();
    assert_eq!(node.post_json(REQUESTS, &owners).status, 409);
    send_request(&node, &device);
    assert_eq!(node.post_json(REQUESTS, &good).status, 409);
    let unknown = node.get(&format!("{REQUESTS}/{}", new_device().id));
    assert_eq!(
        unknown.problem(404)["type"],
        "urn:siteid:problem:enrollment-request-not-found"
    );
    // Listing needs the `credentials` capability.
    assert_eq!(node.get(REQUESTS).status, 401);
    // Two wait at once from one address (eight in all), with the time until the oldest runs out.
    let second = node.post_json(REQUESTS, &request_body(&new_device()));
    assert_eq!(second.status, 201, "{}", second.body);
    let refused = node.post_json(REQUESTS, &request_body(&new_device()));
    assert_eq!(
        refused.problem(429)["type"],
        "urn:siteid:problem:enrollment-queue-full"
    );
    let retry_after: i64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let pending = node.call("GET", REQUESTS, Some(&token), None, &[]).json();
    assert!(pending["requests"].as_array().expect("array").len() <= 8);
}

/// The binding of `device` as granted, signed by `approver`'s own key (an approval by a device
/// or service that does not hold the owner key).
/// It names the address the approver judged (`from`): these tests' requests come from
/// 127.0.0.1.
fn binding_by_approver(approver: &Device, device: &Device, iat: i64) -> String {
    let mut claims = json!({
        "sub": device.kid(), "kind": device.kind, "label": device.label,
        "cap": device.capabilities, "net": device.networks, "iat": iat, "jti": device.id,
        "from": "127.0.0.1",
    });
    if let Some(exp) = device.expires_at {
        claims["exp"] = json!(exp);
    }
    siteid::jose::jws::sign_es384(
        &approver.signer.key,
        &json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": approver.kid()}),
        &claims,
    )
}

#[test]
fn a_credential_approves_with_its_own_key_within_what_it_holds_and_takes_them_along_when_revoked() {
    let (_dir, node, _clock, owner, owner_token) = node_in(EnrollmentMode::Approval);
    let approver = Device::new(&["session", "credentials", "inbox"]);
    register(&node, &owner_token, &owner, &approver);
    let (approver_token, _) = node.login_stepped_up(&approver.signer);
    let mut device = new_device();
    device.capabilities = vec!["session", "credentials"];
    send_request(&node, &device);
    let body = |device: &Device| {
        json!({
            "capabilities": device.capabilities,
            "networks": device.networks,
            "expires_at": device.expires_at,
            "binding": binding_by_approver(&approver, device, now()),
        })
    };
    let approved = approve(&node, &approver_token, &body(&device), &device.id);
    assert_eq!(approved.status, 201, "{}", approved.body);
    let (device_token, _) = node.login_stepped_up(&device.signer);
    assert_eq!(
        node.call("GET", "/api/v1/session", Some(&device_token), None, &[])
            .json()["capabilities"],
        json!(["session", "credentials"])
    );
    // A binding by another credential than the approving session's is refused.
    let third = new_device();
    send_request(&node, &third);
    let by_other = approve(&node, &device_token, &body(&third), &third.id);
    assert_eq!(by_other.problem(422)["field"], "binding");
    // An approved credential cannot approve others with its own key in turn.
    let mut chained = body(&third);
    chained["binding"] = json!(binding_by_approver(&device, &third, now()));
    let refused = approve(&node, &device_token, &chained, &third.id);
    assert_eq!(refused.problem(422)["field"], "binding", "{}", refused.body);
    // Revoking the approver revokes what it approved.
    let revoked = node.call(
        "DELETE",
        &format!("/api/v1/credentials/{}", approver.id),
        Some(&owner_token),
        None,
        &[],
    );
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let challenge = node.challenge();
    let refused = node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": device.signer.login_assertion(&node, &challenge)}),
    );
    assert_eq!(refused.status, 401);
    let listed = node
        .call("GET", "/api/v1/credentials", Some(&owner_token), None, &[])
        .json();
    let ids: Vec<&str> = listed["credentials"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(!ids.contains(&device.id.as_str()) && !ids.contains(&approver.id.as_str()));
    assert!(
        !listed["credentials"]
            .as_array()
            .expect("array")
            .iter()
            .any(|c| c["tampered"] == true),
        "nothing is left failing its check: {listed}"
    );
}

#[test]
fn an_approved_credential_loads_after_a_restart_and_falls_with_an_edited_approver() {
    let (dir, node, _clock, owner, owner_token) = node_in(EnrollmentMode::Approval);
    let approver = Device::new(&["session", "credentials"]);
    register(&node, &owner_token, &owner, &approver);
    let (approver_token, _) = node.login_stepped_up(&approver.signer);
    let device = new_device();
    send_request(&node, &device);
    assert_eq!(
        approve_by(&node, &approver, &approver_token, &device).status,
        201
    );
    node.stop();
    let restart = || {
        TestNode::start(
            dir.path(),
            NodeOptions {
                enrollment: EnrollmentMode::Approval,
                ..NodeOptions::default()
            },
        )
    };
    let node = restart();
    node.login(&device.signer);
    node.stop();
    // The approver's row widened in the database: it fails its own check, and what it approved
    // falls with it.
    crate::helpers::with_store(dir.path(), |c| {
        c.execute(
            "UPDATE credential SET capabilities = '[\"session\",\"credentials\",\"owner\"]' \
             WHERE id = ?1",
            [&approver.id],
        )
        .map(|_| ())
        .map_err(siteid::store::StoreError::from)
    });
    let node = restart();
    let assertion = device.signer.login_assertion(&node, &node.challenge());
    let refused = node.post_json("/api/v1/auth/login", &json!({"assertion": assertion}));
    assert_eq!(refused.status, 401, "{}", refused.body);
    let (owner_token, _) = node.login(&owner);
    let listed = node
        .call("GET", "/api/v1/credentials", Some(&owner_token), None, &[])
        .json();
    let tampered: Vec<&str> = listed["credentials"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|c| c["tampered"] == true)
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(tampered.contains(&approver.id.as_str()), "{listed}");
    assert!(tampered.contains(&device.id.as_str()), "{listed}");
}

#[test]
fn open_mode_takes_requests_too_and_window_mode_credentials_sign_in_over_the_websocket() {
    // Pairing works in `open` mode as well: the password is not the only way in.
    let (_dir, node, _clock, owner, token) = node_in(EnrollmentMode::Open);
    let mut approver = signed_in_socket_with(&node, &|nonce| owner.login_assertion(&node, nonce));
    let device = new_device();
    send_request(&node, &device);
    let event = next_event(&mut approver, "enrollment.requested");
    assert_eq!(event["request_id"], device.id);
    let approved = approve(&node, &token, &approval(&owner, &device, now()), &device.id);
    assert_eq!(approved.status, 201, "{}", approved.body);
    assert_eq!(
        websocket_sign_in(&node, &device.signer, now()).expect("ready")["type"],
        "ready"
    );
    // In `window` mode a credential added while the window was open keeps signing in, over the
    // WebSocket too, after the window closed.
    set_mode(&node, &token, "window");
    let opened = node.call(
        "POST",
        "/api/v1/enrollment/window",
        Some(&token),
        Some(&json!({"minutes": 1})),
        &[],
    );
    assert_eq!(opened.status, 200, "{}", opened.body);
    let key = Device::new(&["session"]);
    register(&node, &token, &owner, &key);
    let closed = node.call(
        "DELETE",
        "/api/v1/enrollment/window",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(closed.status, 200);
    assert_eq!(
        websocket_sign_in(&node, &key.signer, now()).expect("ready")["type"],
        "ready"
    );
    // A socket whose credential lacks `credentials` is not shown requests.
    let mut plain = signed_in_socket_with(&node, &|nonce| key.signer.login_assertion(&node, nonce));
    let opened = node.call(
        "POST",
        "/api/v1/enrollment/window",
        Some(&token),
        Some(&json!({"minutes": 1})),
        &[],
    );
    assert_eq!(opened.status, 200);
    let other = new_device();
    send_request(&node, &other);
    assert_eq!(
        next_event(&mut approver, "enrollment.requested")["request_id"],
        other.id
    );
    plain
        .send(Message::text(json!({"type": "ping", "id": 7}).to_string()))
        .expect("send");
    loop {
        match plain.read().expect("a frame") {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
                assert_ne!(frame["type"], "event", "no event for this socket: {frame}");
                if frame["type"] == "pong" {
                    break;
                }
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[test]
fn a_rotation_keeps_what_a_credential_approved_bound_by_that_credential() {
    let (_dir, node, _clock, owner, owner_token) = node_in(EnrollmentMode::Approval);
    let approver = Device::new(&["session", "credentials"]);
    register(&node, &owner_token, &owner, &approver);
    let (approver_token, _) = node.login_stepped_up(&approver.signer);
    let mut device = new_device();
    device.capabilities = vec!["session", "credentials"];
    send_request(&node, &device);
    assert_eq!(
        approve_by(&node, &approver, &approver_token, &device).status,
        201
    );
    let listed = node
        .call("GET", "/api/v1/credentials", Some(&owner_token), None, &[])
        .json();
    let entry = |listed: &Value, id: &str| {
        listed["credentials"]
            .as_array()
            .expect("array")
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    };
    assert_eq!(
        entry(&listed, &device.id).expect("listed")["approved_by"],
        approver.id.as_str()
    );
    assert_eq!(
        entry(&listed, &approver.id).expect("listed")["approved_by"],
        Value::Null
    );
    // The owner key may not take the approved credential over in a rotation...
    let laundering = crate::owner_key::Rotation::new(
        &node,
        &owner.key,
        1,
        &[approver.id.as_str(), device.id.as_str()],
    );
    let refused = node.call(
        "POST",
        "/api/v1/owner/rotate",
        Some(&owner_token),
        Some(&laundering.body),
        &[],
    );
    assert_eq!(
        refused.problem(422)["field"],
        "bindings",
        "{}",
        refused.body
    );
    // ...and a rotation that binds the approver again keeps what it approved as it was.
    let rotation = crate::owner_key::Rotation::new(&node, &owner.key, 1, &[approver.id.as_str()]);
    let rotated = node.call(
        "POST",
        "/api/v1/owner/rotate",
        Some(&owner_token),
        Some(&rotation.body),
        &[],
    );
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.json()["revoked"], json!([]));
    let (device_token, _) = node.login(&device.signer);
    assert_eq!(
        node.call("GET", "/api/v1/session", Some(&device_token), None, &[])
            .status,
        200
    );
    // It still cannot approve others, and it still falls with its approver.
    let third = new_device();
    send_request(&node, &third);
    node.step_up(&device.signer, &device_token);
    let mut chained = approval(&owner, &third, now());
    chained["binding"] = json!(binding_by_approver(&device, &third, now()));
    assert_eq!(
        approve(&node, &device_token, &chained, &third.id).problem(422)["field"],
        "binding"
    );
    let new_owner = TestOwner {
        key: rotation.next,
        ..TestOwner::from_vector()
    };
    let (new_owner_token, _) = node.login_stepped_up(&new_owner);
    let revoked = node.call(
        "DELETE",
        &format!("/api/v1/credentials/{}", approver.id),
        Some(&new_owner_token),
        None,
        &[],
    );
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let challenge = node.challenge();
    let after = node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": device.signer.login_assertion(&node, &challenge)}),
    );
    assert_eq!(after.status, 401);
}

#[test]
fn one_address_cannot_fill_the_queue_and_only_the_owner_capability_weakens_pairing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            enrollment: EnrollmentMode::Approval,
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (owner_token, _) = node.login_stepped_up(&owner);
    let from = |ip: &str| {
        node.post_json_with(
            REQUESTS,
            &request_body(&new_device()),
            &[("x-forwarded-for", ip)],
        )
        .status
    };
    // Two waiting requests per address, four per network, eight in all.
    assert_eq!(from("198.51.100.7"), 201);
    assert_eq!(from("198.51.100.7"), 201);
    assert_eq!(from("198.51.100.7"), 429);
    assert_eq!(from("198.51.100.8"), 201);
    assert_eq!(from("198.51.100.9"), 201);
    assert_eq!(from("198.51.100.10"), 429);
    assert_eq!(from("203.0.113.5"), 201);
    // A session that may manage credentials but not act for the owner can close a window, not
    // open one or change the mode.
    let manager = Device::new(&["session", "credentials"]);
    register(&node, &owner_token, &owner, &manager);
    let (token, _) = node.login_stepped_up(&manager.signer);
    let put = node.call(
        "PUT",
        ENROLLMENT,
        Some(&token),
        Some(&json!({"mode": "open"})),
        &[],
    );
    assert_eq!(
        put.problem(403)["type"],
        "urn:siteid:problem:insufficient-capability"
    );
    let open = node.call(
        "POST",
        "/api/v1/enrollment/window",
        Some(&token),
        Some(&json!({"minutes": 5})),
        &[],
    );
    assert_eq!(open.status, 403);
    let close = node.call(
        "DELETE",
        "/api/v1/enrollment/window",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(close.status, 200, "{}", close.body);
}

#[test]
fn an_approval_naming_another_requester_address_is_refused() {
    let (_dir, node, _clock, owner, owner_token) = node_in(EnrollmentMode::Approval);
    let approver = Device::new(&["session", "credentials"]);
    register(&node, &owner_token, &owner, &approver);
    let (approver_token, _) = node.login_stepped_up(&approver.signer);
    let device = new_device();
    let sent = send_request(&node, &device);
    let with_from = |from: &str| {
        let claims = json!({
            "sub": device.kid(), "kind": device.kind, "label": device.label,
            "cap": device.capabilities, "net": device.networks, "iat": now(),
            "jti": device.id, "from": from,
        });
        let binding = siteid::jose::jws::sign_es384(
            &approver.signer.key,
            &json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": approver.kid()}),
            &claims,
        );
        json!({"capabilities": device.capabilities, "networks": [], "expires_at": null, "binding": binding})
    };
    // An approver other than the owner key must say which address it judged.
    let without_from = json!({
        "capabilities": device.capabilities, "networks": [], "expires_at": null,
        "binding": binding_at(&approver.signer.key, &approver.signer, &device, now()),
    });
    let refused = approve(&node, &approver_token, &without_from, &device.id);
    assert_eq!(refused.problem(422)["field"], "binding");
    // What a relay that rewrote the event's address would make the approver sign.
    let rewritten = approve(&node, &approver_token, &with_from("10.0.0.55"), &device.id);
    assert_eq!(rewritten.problem(422)["field"], "binding");
    let seen = sent["ip"].as_str().expect("ip");
    let approved = approve(&node, &approver_token, &with_from(seen), &device.id);
    assert_eq!(approved.status, 201, "{}", approved.body);
}

#[test]
fn the_command_line_shows_the_mode_the_running_node_was_started_with() {
    let (_dir, node, _clock, _owner, _token) = node_in(EnrollmentMode::Window);
    let output = Command::new(env!("CARGO_BIN_EXE_siteid"))
        .args(["enroll", "--data-dir"])
        .arg(&node.data_dir)
        .env_remove("SITEID_ENROLLMENT")
        .output()
        .expect("siteid runs");
    assert!(output.status.success());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("mode: window"), "{printed}");
}

/// Approves `device` with `approver`'s own key; returns the answer.
fn approve_by(
    node: &TestNode,
    approver: &Device,
    approver_token: &str,
    device: &Device,
) -> crate::helpers::Answer {
    let body = json!({
        "capabilities": device.capabilities,
        "networks": device.networks,
        "expires_at": device.expires_at,
        "binding": binding_by_approver(approver, device, now()),
    });
    approve(node, approver_token, &body, &device.id)
}

fn signs_in(node: &TestNode, device: &Device) -> bool {
    let challenge = node.challenge();
    node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": device.signer.login_assertion(node, &challenge)}),
    )
    .status
        == 200
}

#[test]
fn an_approver_limited_to_networks_or_a_lifetime_passes_its_limits_on_and_its_changes_revoke() {
    let (_dir, node, _clock, owner, owner_token) = node_in(EnrollmentMode::Approval);
    // An approver limited to loopback and to a month.
    let mut approver = Device::new(&["session", "credentials"]);
    approver.networks = vec!["127.0.0.0/8"];
    approver.expires_at = Some(now() + 30 * 86_400);
    register(&node, &owner_token, &owner, &approver);
    let (approver_token, _) = node.login_stepped_up(&approver.signer);
    let mut device = new_device();
    send_request(&node, &device);
    // From anywhere, or for longer than the approver: refused.
    let anywhere = approve_by(&node, &approver, &approver_token, &device);
    assert_eq!(anywhere.problem(422)["field"], "binding");
    device.networks = vec!["127.0.0.0/16"];
    device.expires_at = Some(now() + 60 * 86_400);
    let outlives = approve_by(&node, &approver, &approver_token, &device);
    assert_eq!(outlives.problem(422)["field"], "binding");
    assert!(outlives.body.contains("outlives"), "{}", outlives.body);
    device.networks = vec!["10.0.0.0/8"];
    device.expires_at = Some(now() + 86_400);
    let elsewhere = approve_by(&node, &approver, &approver_token, &device);
    assert_eq!(elsewhere.problem(422)["field"], "binding");
    // Within both: approved.
    device.networks = vec!["127.0.0.0/16"];
    assert_eq!(
        approve_by(&node, &approver, &approver_token, &device).status,
        201
    );
    assert!(signs_in(&node, &device));
    // The owner narrows the approver: what it approved is revoked with the change.
    approver.capabilities = vec!["session", "credentials", "audit"];
    let path = format!("/api/v1/credentials/{}", approver.id);
    let changed = node.call(
        "PATCH",
        &path,
        Some(&owner_token),
        Some(&json!({
            "capabilities": ["session", "credentials", "audit"],
            "binding": binding_at(&owner.key, &owner, &approver, now() + 1),
        })),
        &[],
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(!signs_in(&node, &device));
    // A reset of the approver's key revokes what it approved too.
    let (approver_token, _) = node.login_stepped_up(&approver.signer);
    let second = new_device();
    let mut second = second;
    second.networks = vec!["127.0.0.1/32"];
    second.expires_at = Some(now() + 86_400);
    send_request(&node, &second);
    assert_eq!(
        approve_by(&node, &approver, &approver_token, &second).status,
        201
    );
    assert!(signs_in(&node, &second));
    approver.signer = TestOwner {
        key: siteid::jose::jwk::OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    let reset = node.call(
        "PUT",
        &format!("{path}/key"),
        Some(&owner_token),
        Some(&json!({
            "public_key": serde_json::to_value(approver.signer.key.public_key().to_jwk()).expect("jwk"),
            "binding": binding_at(&owner.key, &owner, &approver, now() + 2),
        })),
        &[],
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert!(!signs_in(&node, &second));
}
