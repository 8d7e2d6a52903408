//! Unlocking from a new device: the PBES2 parameters, the verifier check, and the throttle
//! with its persistence across a restart.

use std::sync::Arc;

use serde_json::json;
use siteid::clock::{Clock, ManualClock, SystemClock};
use siteid::jose::b64;

use crate::helpers::{NodeOptions, TestNode, TestOwner, spawn_node, spawn_node_with_clock};

fn wrong_verifier() -> serde_json::Value {
    json!({"unlock_verifier": b64::encode(&[7u8; 32])})
}

#[test]
fn before_a_claim_unlock_is_not_found() {
    let (_dir, node) = spawn_node();
    assert_eq!(
        node.get("/api/v1/unlock").problem(404)["type"],
        "urn:siteid:problem:not-claimed"
    );
    node.post_json("/api/v1/unlock", &wrong_verifier())
        .problem(404);
}

#[test]
fn the_parameters_come_from_the_stored_jwe_header() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let answer = node.get("/api/v1/unlock");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(
        answer.json(),
        json!({"alg": "PBES2-HS512+A256KW", "p2s": "AAECAwQFBgcICQoLDA0ODw", "p2c": 210000, "kid": kid})
    );
}

#[test]
fn the_right_verifier_gets_the_wrapped_key_and_a_wrong_one_is_401() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let wrong = node.post_json("/api/v1/unlock", &wrong_verifier());
    assert_eq!(
        wrong.problem(401)["type"],
        "urn:siteid:problem:wrong-unlock-verifier"
    );
    let right = node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": owner.unlock_verifier}),
    );
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(
        right.json(),
        json!({"wrapped_key": owner.wrapped_key, "kid": kid})
    );
    assert_eq!(right.header("cache-control"), Some("no-store"));
}

#[test]
fn a_malformed_verifier_is_422() {
    let (_dir, node) = spawn_node();
    node.claim(&TestOwner::from_vector());
    let answer = node.post_json("/api/v1/unlock", &json!({"unlock_verifier": "short"}));
    assert_eq!(answer.problem(422)["field"], "unlock_verifier");
}

fn fail_times(node: &TestNode, times: usize, headers: &[(&str, &str)]) {
    for attempt in 0..times {
        let answer = node.post_json_with("/api/v1/unlock", &wrong_verifier(), headers);
        assert_eq!(answer.status, 401, "attempt {attempt}: {}", answer.body);
    }
}

fn retry_after(answer: &crate::helpers::Answer) -> i64 {
    answer
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After")
}

#[test]
fn ten_failures_throttle_the_client_even_with_the_right_password_and_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(SystemClock.now());
    let options = NodeOptions {
        clock: Arc::new(clock.clone()),
        ..NodeOptions::default()
    };
    let owner = TestOwner::from_vector();
    let node = TestNode::start(dir.path(), options.clone());
    node.claim(&owner);
    fail_times(&node, 10, &[]);
    let right = json!({"unlock_verifier": owner.unlock_verifier});
    let throttled = node.post_json("/api/v1/unlock", &right);
    let problem = throttled.problem(429);
    assert_eq!(problem["type"], "urn:siteid:problem:too-many-attempts");
    let wait = retry_after(&throttled);
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let events = crate::helpers::with_store(dir.path(), siteid::store::audit_rows::all);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.iter().filter(|e| **e == "unlock.failed").count(), 10);
    assert_eq!(
        names.last(),
        Some(&"unlock.throttled"),
        "the first 429 is audited"
    );
    node.stop();

    let node = TestNode::start(dir.path(), options);
    let after_restart = node.post_json("/api/v1/unlock", &right);
    after_restart.problem(429);
    clock.advance(retry_after(&after_restart));
    let later = node.post_json("/api/v1/unlock", &right);
    assert_eq!(later.status, 200, "the window passed: {}", later.body);
}

#[test]
fn a_spoofed_forwarded_for_does_not_escape_the_throttle() {
    let (_dir, node, _clock) = spawn_node_with_clock();
    node.claim(&TestOwner::from_vector());
    fail_times(&node, 10, &[("x-forwarded-for", "203.0.113.1")]);
    let answer = node.post_json_with(
        "/api/v1/unlock",
        &wrong_verifier(),
        &[("x-forwarded-for", "203.0.113.2")],
    );
    answer.problem(429);
}

#[test]
fn a_hundred_failures_pause_password_unlock_for_everyone_until_the_day_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(SystemClock.now());
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            clock: Arc::new(clock.clone()),
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    for client in 0..10 {
        let ip = format!("198.51.100.{client}");
        fail_times(&node, 10, &[("x-forwarded-for", &ip)]);
        clock.advance(60);
    }
    let right = json!({"unlock_verifier": owner.unlock_verifier});
    let fresh_client = node.post_json_with(
        "/api/v1/unlock",
        &right,
        &[("x-forwarded-for", "192.0.2.200")],
    );
    let problem = fresh_client.problem(429);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("everyone"),
        "{problem}"
    );
    let wait = retry_after(&fresh_client);
    assert!(wait > 900 && wait <= 86_400, "Retry-After {wait}");
    clock.advance(wait);
    let next_day = node.post_json_with(
        "/api/v1/unlock",
        &right,
        &[("x-forwarded-for", "192.0.2.200")],
    );
    assert_eq!(next_day.status, 200, "{}", next_day.body);
}
