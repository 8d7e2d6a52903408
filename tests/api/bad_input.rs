//! Hostile input on every endpoint: malformed JSON, wrong types, unknown and missing members,
//! oversized bodies and wrong content types all get a 4xx problem+json and change nothing.

use serde_json::json;

use crate::helpers::{TestNode, TestOwner, spawn_node};

/// Sends every kind of bad body to `path` and checks the answers.
fn assert_bad_bodies_refused(node: &TestNode, path: &str, valid_member: &str) {
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "malformed JSON",
            "application/json",
            b"{\"a\":".to_vec(),
            400,
        ),
        (
            "trailing garbage",
            "application/json",
            b"{} {}".to_vec(),
            400,
        ),
        ("an empty body", "application/json", Vec::new(), 400),
        (
            "invalid UTF-8",
            "application/json",
            b"{\"\xff\":1}".to_vec(),
            400,
        ),
        ("a top-level array", "application/json", b"[]".to_vec(), 422),
        (
            "a non-empty array",
            "application/json",
            b"[\"AAAA\", 1]".to_vec(),
            422,
        ),
        ("a string", "application/json", b"\"x\"".to_vec(), 422),
        ("text/plain", "text/plain", b"{}".to_vec(), 415),
        (
            "form encoding",
            "application/x-www-form-urlencoded",
            b"a=1".to_vec(),
            415,
        ),
        ("no content type", "", b"{}".to_vec(), 415),
        (
            "a wrong charset",
            "application/json; charset=latin1",
            b"{}".to_vec(),
            415,
        ),
        (
            "an oversized body",
            "application/json",
            vec![b' '; 64 * 1024],
            413,
        ),
    ];
    for (why, content_type, body, status) in cases {
        let answer = node.post_raw(path, content_type, &body);
        let problem = answer.problem(status);
        assert!(
            !problem["detail"].as_str().unwrap_or("").is_empty(),
            "{why}"
        );
    }
    let shape_cases = [
        ("a wrong type", json!({ valid_member: 42 }), valid_member),
        ("an unknown member", json!({ "surprise": true }), "surprise"),
        ("a null member", json!({ valid_member: null }), valid_member),
    ];
    for (why, body, field) in shape_cases {
        let answer = node.post_json(path, &body);
        let problem = answer.problem(422);
        assert_eq!(problem["field"], field, "{why}: {problem}");
    }
    let missing = node.post_json(path, &json!({}));
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert!(
        missing.json()["field"].is_string(),
        "a missing member is named"
    );
}

#[test]
fn the_claim_endpoint_refuses_bad_bodies_and_stays_unclaimed() {
    let (_dir, node) = spawn_node();
    assert_bad_bodies_refused(&node, "/api/v1/owner", "claim_token");
    assert!(!node.is_claimed());
    // The node can still be claimed afterwards.
    node.claim(&TestOwner::from_vector());
}

#[test]
fn the_unlock_endpoint_refuses_bad_bodies_without_counting_failures() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    for _ in 0..2 {
        assert_bad_bodies_refused(&node, "/api/v1/unlock", "unlock_verifier");
    }
    let answer = node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": owner.unlock_verifier}),
    );
    assert_eq!(
        answer.status, 200,
        "bad bodies are not failed unlocks: {}",
        answer.body
    );
}

#[test]
fn unknown_paths_and_methods_are_problems() {
    let (_dir, node) = spawn_node();
    node.get("/api/v1/nothing").problem(404);
    node.get("/nothing").problem(404);
    // A 405 names the methods the resource does serve (RFC 9110 §15.5.6).
    let cases: [(&str, &str, &str); 6] = [
        ("GET", "/api/v1/owner", "POST"),
        ("POST", "/.well-known/jwks.json", "GET, HEAD"),
        ("POST", "/.well-known/security.txt", "GET, HEAD"),
        ("DELETE", "/api/v1/recovery/sets", "GET, POST"),
        ("PUT", "/api/v1/session", "GET, DELETE"),
        ("POST", "/recover", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let answer = node.call(method, path, None, Some(&json!({})), &[]);
        answer.problem(405);
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
    }
}

#[test]
fn problems_are_not_cached_and_answers_carry_a_request_id() {
    let (_dir, node) = spawn_node();
    let answer = node.get("/api/v1/unlock");
    answer.problem(404);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert!(
        answer
            .header("x-request-id")
            .is_some_and(|id| id.len() == 16)
    );
}

#[test]
fn an_array_in_place_of_the_unlock_object_is_refused_even_with_the_right_verifier() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let body = format!("[\"{}\"]", owner.unlock_verifier);
    let answer = node.post_raw("/api/v1/unlock", "application/json", body.as_bytes());
    assert_eq!(
        answer.problem(422)["type"],
        "urn:siteid:problem:invalid-body"
    );
}

/// Sends raw bytes on a fresh connection and returns the status of the answer, if any.
fn raw_status(node: &TestNode, request: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(node.address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    // The node may answer and close before it has read everything.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
}

#[test]
fn requests_the_http_parser_refuses_get_a_4xx_and_the_node_serves_on() {
    // actix-web answers these itself, before any routing, with an empty body; the node cannot
    // give them a problem body (docs/protocol.md says so), but they are never 5xx.
    let (_dir, node) = spawn_node();
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let cases: [(&str, &[u8], u16); 4] = [
        (
            "a malformed request line",
            b"GET\x01/ HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        ("a bad header", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400),
        ("a bad version", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        ("a head over the limit", huge_header.as_bytes(), 431),
    ];
    for (why, request, expected) in cases {
        assert_eq!(raw_status(&node, request), Some(expected), "{why}");
    }
    assert_eq!(node.get("/api/v1/health").status, 204);
}
