//! The WebSocket: origin check at the handshake, challenge and authentication, schema checks,
//! pings, the per-client cap, and sockets closing when their session is revoked or expires.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use siteid::clock::Clock;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::{Error, Message};

use crate::helpers::{NodeOptions, TestNode, TestOwner, spawn_node, spawn_node_with_clock};

type Socket = WebSocket<TcpStream>;

fn connect(node: &TestNode, origin: Option<&str>) -> Result<Socket, Error> {
    let mut request = format!("ws://{}/api/v1/ws", node.address)
        .into_client_request()
        .expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header value"));
    }
    let stream = TcpStream::connect(node.address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    tungstenite::client::client(request, stream)
        .map(|(socket, _)| socket)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(error) => error,
            tungstenite::HandshakeError::Interrupted(_) => Error::ConnectionClosed,
        })
}

fn read_json(socket: &mut Socket) -> Value {
    loop {
        match socket.read().expect("a frame") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the server closes; returns the close code. Fails after 30 seconds, so that a
/// socket the server keeps open (answering with pings) cannot hang the test.
fn close_code(socket: &mut Socket) -> u16 {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not close the socket within 30 seconds"
        );
        match socket.read() {
            Ok(Message::Close(Some(frame))) => return u16::from(frame.code),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => continue,
            Err(error) => panic!("the socket ended without a close frame: {error}"),
        }
    }
}

fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::text(value.to_string())).expect("send");
}

fn claimed_node() -> (tempfile::TempDir, TestNode, TestOwner) {
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    (dir, node, owner)
}

/// Opens a socket and signs in on it with a fresh assertion; returns it with its session id.
fn signed_in_socket(node: &TestNode, owner: &TestOwner) -> (Socket, String) {
    let mut socket = connect(node, None).expect("handshake");
    let challenge = read_json(&mut socket);
    let nonce = challenge["nonce"].as_str().expect("nonce");
    send(
        &mut socket,
        json!({"type": "auth", "assertion": owner.login_assertion(node, nonce)}),
    );
    let ready = read_json(&mut socket);
    assert_eq!(ready["type"], "ready", "{ready}");
    (
        socket,
        ready["session_id"].as_str().expect("session").to_owned(),
    )
}

#[test]
fn a_foreign_origin_is_refused_at_the_handshake() {
    let (_dir, node, _owner) = claimed_node();
    match connect(&node, Some("https://evil.example")) {
        Err(Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| "a socket")),
    }
    let own = node.base_url.clone();
    assert!(
        connect(&node, Some(&own)).is_ok(),
        "the node's own origin is accepted"
    );
    assert!(
        connect(&node, None).is_ok(),
        "non-browser clients send no Origin"
    );
}

#[test]
fn a_socket_signs_in_over_its_challenge_and_answers_pings() {
    let (_dir, node, owner) = claimed_node();
    let mut socket = connect(&node, None).expect("handshake");
    let challenge = read_json(&mut socket);
    assert_eq!(challenge["type"], "challenge");
    assert_eq!(challenge["expires_in"], 120);
    let nonce = challenge["nonce"].as_str().expect("nonce").to_owned();
    send(
        &mut socket,
        json!({"type": "auth", "assertion": owner.login_assertion(&node, &nonce)}),
    );
    let ready = read_json(&mut socket);
    assert_eq!(ready["type"], "ready");
    let session_id = ready["session_id"].as_str().expect("session id");
    send(&mut socket, json!({"type": "ping", "id": 42}));
    assert_eq!(read_json(&mut socket), json!({"type": "pong", "id": 42}));
    let (token, _) = node.login(&owner);
    let sessions = node
        .call("GET", "/api/v1/sessions", Some(&token), None, &[])
        .json();
    assert!(
        sessions["sessions"]
            .as_array()
            .expect("list")
            .iter()
            .any(|s| s["id"] == session_id),
        "the socket's sign-in made a session"
    );
}

#[test]
fn an_assertion_over_another_challenge_closes_with_4401() {
    let (_dir, node, owner) = claimed_node();
    let mut socket = connect(&node, None).expect("handshake");
    read_json(&mut socket);
    let other_nonce = node.challenge();
    send(
        &mut socket,
        json!({"type": "auth", "assertion": owner.login_assertion(&node, &other_nonce)}),
    );
    assert_eq!(close_code(&mut socket), 4401);
}

#[test]
fn an_access_token_attaches_the_socket_to_its_session() {
    let (_dir, node, owner) = claimed_node();
    let (token, session_id) = node.login(&owner);
    let mut socket = connect(&node, None).expect("handshake");
    read_json(&mut socket);
    send(&mut socket, json!({"type": "auth", "access_token": token}));
    assert_eq!(
        read_json(&mut socket),
        json!({"type": "ready", "session_id": session_id})
    );
    let mut bad = connect(&node, None).expect("handshake");
    read_json(&mut bad);
    send(&mut bad, json!({"type": "auth", "access_token": "nope"}));
    assert_eq!(close_code(&mut bad), 4401);
}

#[test]
fn a_socket_that_never_authenticates_is_closed_with_4401() {
    let (_dir, node, clock) = spawn_node_with_clock();
    node.claim(&TestOwner::from_vector());
    let mut socket = connect(&node, None).expect("handshake");
    read_json(&mut socket);
    send(&mut socket, json!({"type": "ping", "id": 1}));
    assert_eq!(
        read_json(&mut socket)["type"],
        "pong",
        "open before the deadline"
    );
    // The ten-second deadline runs on the node's clock.
    clock.advance(10);
    assert_eq!(close_code(&mut socket), 4401);
}

#[test]
fn messages_outside_the_schema_close_with_4400() {
    let (_dir, node, owner) = claimed_node();
    let cases: Vec<Message> = vec![
        Message::text(r#"{"type":"shout"}"#),
        Message::text(r#"{"type":"ping","id":1,"extra":true}"#),
        Message::text(r#"{"type":"ping","id":"1"}"#),
        Message::text("not json"),
        Message::binary(vec![1, 2, 3]),
        Message::text(format!(
            r#"{{"type":"ping","id":1,"pad":"{}"}}"#,
            "x".repeat(70 * 1024)
        )),
    ];
    for message in cases {
        let (mut socket, _) = signed_in_socket(&node, &owner);
        let description = format!("{message:?}").chars().take(60).collect::<String>();
        socket.send(message).expect("send");
        assert_eq!(close_code(&mut socket), 4400, "{description}");
    }
    let mut unauthenticated = connect(&node, None).expect("handshake");
    read_json(&mut unauthenticated);
    send(&mut unauthenticated, json!({"type": "auth"}));
    assert_eq!(
        close_code(&mut unauthenticated),
        4400,
        "auth needs a credential"
    );
}

#[test]
fn revoking_a_session_closes_its_sockets_and_tells_the_others() {
    let (_dir, node, owner) = claimed_node();
    let (watcher, watcher_id) = signed_in_socket(&node, &owner);
    let mut watcher = watcher;
    let (mut doomed, doomed_id) = signed_in_socket(&node, &owner);
    assert_eq!(
        read_json(&mut watcher)["event"],
        "session.created",
        "the watcher sees the new sign-in"
    );
    let (token, _) = node.login(&owner);
    let created = read_json(&mut watcher);
    assert_eq!(created["event"], "session.created");
    let answer = node.call(
        "DELETE",
        &format!("/api/v1/sessions/{doomed_id}"),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(answer.status, 204);
    assert_eq!(close_code(&mut doomed), 4401);
    let event = read_json(&mut watcher);
    assert_eq!(
        event,
        json!({"type": "event", "event": "session.revoked", "session_id": doomed_id})
    );
    let others = node.call(
        "POST",
        "/api/v1/sessions/revoke-others",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(
        others.json()["revoked"],
        1,
        "the watcher's session, not the caller's"
    );
    assert_eq!(close_code(&mut watcher), 4401);
    let _ = watcher_id;
}

#[test]
fn an_expired_session_closes_its_socket() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login(&owner);
    let mut socket = connect(&node, None).expect("handshake");
    read_json(&mut socket);
    send(&mut socket, json!({"type": "auth", "access_token": token}));
    assert_eq!(read_json(&mut socket)["type"], "ready");
    clock.advance(13 * 60 * 60);
    assert_eq!(close_code(&mut socket), 4401);
    let _ = clock.now();
}

#[test]
fn open_sockets_per_client_are_capped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            websocket_max_per_client: Some(2),
            ..NodeOptions::default()
        },
    );
    let first = connect(&node, None).expect("first");
    let _second = connect(&node, None).expect("second");
    match connect(&node, None) {
        Err(Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| "a socket")),
    }
    drop(first);
    assert!(
        crate::helpers::wait_until(Duration::from_secs(10), || connect(&node, None).is_ok()),
        "a closed socket frees its slot"
    );
}

#[test]
fn a_frame_declaring_a_huge_payload_closes_at_its_header() {
    use std::io::Write;
    let (_dir, node, owner) = claimed_node();
    let (mut socket, _) = signed_in_socket(&node, &owner);
    // A masked text frame declaring 2^40 bytes, then a little of it: the server must not wait
    // for (and buffer) the rest.
    let mut frame = vec![0x81, 0xff];
    frame.extend_from_slice(&(1u64 << 40).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[0u8; 4096]);
    socket.get_mut().write_all(&frame).expect("write");
    assert_eq!(close_code(&mut socket), 4400);
}

#[test]
fn a_socket_challenge_cannot_sign_in_over_rest() {
    let (_dir, node, owner) = claimed_node();
    let mut socket = connect(&node, None).expect("handshake");
    let nonce = read_json(&mut socket)["nonce"]
        .as_str()
        .expect("nonce")
        .to_owned();
    let answer = node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": owner.login_assertion(&node, &nonce)}),
    );
    answer.problem(401);
}

#[test]
fn a_session_signed_in_on_a_socket_ends_with_the_socket() {
    let (_dir, node, owner) = claimed_node();
    let (token, _) = node.login(&owner);
    let (mut socket, socket_session) = signed_in_socket(&node, &owner);
    socket.close(None).expect("close");
    let _ = socket.read();
    let gone = crate::helpers::wait_until(Duration::from_secs(10), || {
        let list = node
            .call("GET", "/api/v1/sessions", Some(&token), None, &[])
            .json();
        !list["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .any(|s| s["id"] == socket_session.as_str())
    });
    assert!(gone, "the socket's own session ended when it closed");
}

#[test]
fn ipv6_clients_share_the_socket_cap_per_64() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            websocket_max_per_client: Some(2),
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            ..NodeOptions::default()
        },
    );
    let open = |address: &str| {
        let mut request = format!("ws://{}/api/v1/ws", node.address)
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("x-forwarded-for", address.parse().expect("header"));
        let stream = TcpStream::connect(node.address).expect("connect");
        tungstenite::client::client(request, stream)
            .ok()
            .map(|(socket, _)| socket)
    };
    let _first = open("2001:db8:1:2::1").expect("first");
    let _second = open("2001:db8:1:2::2").expect("second");
    assert!(open("2001:db8:1:2::3").is_none(), "the /64 is full");
    assert!(open("2001:db8:1:3::1").is_some(), "another /64 is not");
}

#[test]
fn stopping_the_node_closes_sockets_with_1001() {
    let (_dir, node, owner) = claimed_node();
    let (mut socket, _) = signed_in_socket(&node, &owner);
    let stopping = std::thread::spawn(move || node.stop());
    assert_eq!(close_code(&mut socket), 1001);
    stopping.join().expect("the node stops");
}

#[test]
fn every_bad_assertion_over_a_socket_closes_it_with_4401() {
    // Each socket comes from its own address (through a trusted proxy) so the throttle stays
    // out of the way.
    let (_dir, node) = crate::helpers::spawn_node_behind_proxy();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let jku = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let mut sockets = Vec::new();
    let cases = crate::signin::bad_assertions(&node, &owner, &jku, || {
        let mut request = format!("ws://{}/api/v1/ws", node.address)
            .into_client_request()
            .expect("request");
        let ip = format!("198.19.0.{}", sockets.len());
        request
            .headers_mut()
            .insert("x-forwarded-for", ip.parse().expect("header"));
        let stream = TcpStream::connect(node.address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let (mut socket, _) = tungstenite::client::client(request, stream).expect("handshake");
        let nonce = read_json(&mut socket)["nonce"]
            .as_str()
            .expect("nonce")
            .to_owned();
        sockets.push(socket);
        nonce
    });
    assert_eq!(cases.len(), sockets.len());
    for ((why, assertion), mut socket) in cases.into_iter().zip(sockets) {
        send(&mut socket, json!({"type": "auth", "assertion": assertion}));
        assert_eq!(close_code(&mut socket), 4401, "{why}");
    }
    assert!(
        listener.accept().is_err(),
        "no header made the node fetch anything"
    );
}

#[test]
fn a_second_auth_on_a_socket_closes_it_with_4400() {
    let (_dir, node, owner) = claimed_node();
    let (token, _) = node.login(&owner);
    let (mut socket, _) = signed_in_socket(&node, &owner);
    send(&mut socket, json!({"type": "auth", "access_token": token}));
    assert_eq!(close_code(&mut socket), 4400);
}

#[test]
fn failed_sign_ins_on_sockets_are_throttled_with_4429() {
    let (_dir, node, owner) = claimed_node();
    let stranger = TestOwner {
        key: siteid::jose::jwk::OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    let attempt = |signer: &TestOwner| {
        let mut socket = connect(&node, None).expect("handshake");
        let nonce = read_json(&mut socket)["nonce"]
            .as_str()
            .expect("nonce")
            .to_owned();
        send(
            &mut socket,
            json!({"type": "auth", "assertion": signer.login_assertion(&node, &nonce)}),
        );
        close_code(&mut socket)
    };
    for _ in 0..10 {
        assert_eq!(attempt(&stranger), 4401);
    }
    assert_eq!(
        attempt(&owner),
        4429,
        "even the right key waits out the throttle"
    );
}

#[test]
fn access_token_guesses_on_sockets_are_throttled_like_failed_sign_ins() {
    let (_dir, node, owner) = claimed_node();
    let (token, _) = node.login(&owner);
    let attach = |access_token: &str| {
        let mut socket = connect(&node, None).expect("handshake");
        read_json(&mut socket);
        send(
            &mut socket,
            json!({"type": "auth", "access_token": access_token}),
        );
        socket
    };
    for guess in 0..10 {
        assert_eq!(close_code(&mut attach(&format!("guess-{guess}"))), 4401);
    }
    assert_eq!(
        close_code(&mut attach("guess-10")),
        4429,
        "after ten wrong tokens the address waits"
    );
    let mut valid = attach(&token);
    assert_eq!(
        read_json(&mut valid)["type"],
        "ready",
        "a valid token still attaches: it proves the session"
    );
    let assertion = owner.login_assertion(&node, &node.challenge());
    let rest = node.post_json("/api/v1/auth/login", &json!({"assertion": assertion}));
    assert_eq!(
        rest.problem(429)["scope"],
        "client",
        "the same throttle as sign-ins"
    );
}

#[test]
fn a_socket_that_has_not_authenticated_may_send_only_a_small_budget() {
    let (_dir, node, owner) = claimed_node();
    let mut socket = connect(&node, None).expect("handshake");
    read_json(&mut socket);
    let padding = "x".repeat(17 * 1024);
    socket
        .send(Message::text(format!(
            r#"{{"type":"ping","id":1,"pad":"{padding}"}}"#
        )))
        .expect("send");
    assert_eq!(
        close_code(&mut socket),
        4400,
        "17 KiB before authenticating"
    );
    // After authenticating, a socket may send frames up to 64 KiB (refused here only for the
    // unknown member, after it was read whole).
    let (mut signed_in, _) = signed_in_socket(&node, &owner);
    let padding = "x".repeat(60 * 1024);
    signed_in
        .send(Message::text(format!(
            r#"{{"type":"ping","id":1,"pad":"{padding}"}}"#
        )))
        .expect("send");
    assert_eq!(close_code(&mut signed_in), 4400);
    let (mut fine, _) = signed_in_socket(&node, &owner);
    send(&mut fine, json!({"type": "ping", "id": 7}));
    assert_eq!(read_json(&mut fine)["id"], 7);
}

#[test]
fn open_sockets_are_capped_per_network_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            websocket_max_per_client: Some(2),
            ..NodeOptions::default()
        },
    );
    node.claim(&TestOwner::from_vector());
    let mut open = Vec::new();
    for host in 1..=4 {
        for _ in 0..2 {
            let stream = node.connect_from(&format!("127.0.90.{host}"));
            open.push(
                tungstenite::client::client(
                    format!("ws://{}/api/v1/ws", node.address)
                        .into_client_request()
                        .expect("request"),
                    stream,
                )
                .expect("handshake")
                .0,
            );
        }
    }
    let stream = node.connect_from("127.0.90.5");
    let refused = tungstenite::client::client(
        format!("ws://{}/api/v1/ws", node.address)
            .into_client_request()
            .expect("request"),
        stream,
    );
    match refused {
        Err(tungstenite::HandshakeError::Failure(Error::Http(response))) => {
            assert_eq!(response.status(), 429, "a ninth socket from one /24");
        }
        other => panic!("expected a 429, got {:?}", other.map(|(_, r)| r.status())),
    }
    let stream = node.connect_from("127.0.91.1");
    tungstenite::client::client(
        format!("ws://{}/api/v1/ws", node.address)
            .into_client_request()
            .expect("request"),
        stream,
    )
    .expect("another network still gets one");
    drop(open);
}

#[test]
fn a_client_nonce_over_the_socket_brings_the_node_s_proof_over_the_socket_s_challenge() {
    let (_dir, node, owner) = claimed_node();
    let mut socket = connect(&node, None).expect("handshake");
    let first = read_json(&mut socket);
    assert!(first.get("node_signature").is_none());
    let nonce = first["nonce"].as_str().expect("nonce").to_owned();
    let client_nonce = "c29ja2V0LWNsaWVudC1ub25jZQ";
    send(
        &mut socket,
        json!({"type": "challenge", "client_nonce": client_nonce}),
    );
    let again = read_json(&mut socket);
    assert_eq!(again["type"], "challenge");
    assert_eq!(
        again["nonce"],
        nonce.as_str(),
        "the same challenge, now with the proof"
    );
    let proof = again["node_signature"].as_str().expect("a node signature");
    let jws = siteid::jose::jws::CompactJws::parse(proof, siteid::jose::node_key::PROOF_TYPE)
        .expect("a node proof");
    let published = node.get("/.well-known/siteid/node-key.json").json();
    assert_eq!(jws.header.kid.as_deref(), published["kid"].as_str());
    let claims: Value = serde_json::from_slice(
        &siteid::jose::b64::decode(proof.split('.').nth(1).expect("claims")).expect("base64url"),
    )
    .expect("json");
    assert_eq!(claims["nonce"], nonce.as_str());
    assert_eq!(claims["client_nonce"], client_nonce);
    assert_eq!(claims["aud"], node.audience.as_str());
    // The socket still signs in over its challenge.
    send(
        &mut socket,
        json!({"type": "auth", "assertion": owner.login_assertion(&node, &nonce)}),
    );
    assert_eq!(read_json(&mut socket)["type"], "ready");
    // After signing in, or with a bad nonce, it is a message out of place.
    send(
        &mut socket,
        json!({"type": "challenge", "client_nonce": client_nonce}),
    );
    assert_eq!(close_code(&mut socket), 4400);
    let mut bad = connect(&node, None).expect("handshake");
    read_json(&mut bad);
    send(
        &mut bad,
        json!({"type": "challenge", "client_nonce": "short"}),
    );
    assert_eq!(close_code(&mut bad), 4400);
}
