//! Unlocking from a new device: the PBES2 parameters, the verifier check, the throttle windows
//! (client, network, node) with their persistence across a restart, and one-time unlock codes.

use std::sync::Arc;

use serde_json::json;
use siteid::clock::{Clock, ManualClock, SystemClock};
use siteid::jose::b64;

use crate::helpers::{
    Answer, NodeOptions, TestNode, TestOwner, spawn_node, spawn_node_with_clock, with_store,
};

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

fn retry_after(answer: &Answer) -> i64 {
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
    assert_eq!(problem["scope"], "client");
    let wait = retry_after(&throttled);
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    node.stop();
    let entries = with_store(dir.path(), siteid::store::audit_rows::all);
    let failed: Vec<_> = entries
        .iter()
        .filter(|e| e.event == "unlock.failed")
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "one summary for the client's network and minute"
    );
    let detail: serde_json::Value = serde_json::from_str(&failed[0].detail).expect("JSON");
    assert_eq!(detail["count"], 10);
    assert_eq!(detail["reason"], "wrong_verifier");
    assert_eq!(failed[0].ip.as_deref(), Some("127.0.0.0/24"));
    let started: Vec<_> = entries
        .iter()
        .filter(|e| e.event == "unlock.throttled")
        .collect();
    assert_eq!(started.len(), 1, "the start of throttling is audited once");

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

/// Sends wrong passwords from `hosts` addresses of the loopback network `127.0.<net>.0/24`,
/// `per_host` each; returns how many were counted as failures (401) rather than refused (429).
fn flood_from_network(node: &TestNode, net: u8, hosts: u8, per_host: usize) -> usize {
    let mut counted = 0;
    for host in 1..=hosts {
        let source = format!("127.0.{net}.{host}");
        for _ in 0..per_host {
            let answer = node.request_from(
                &source,
                "POST",
                "/api/v1/unlock",
                None,
                Some(&wrong_verifier()),
            );
            match answer.status {
                401 => counted += 1,
                429 => {}
                other => panic!("unexpected {other} from {source}: {}", answer.body),
            }
        }
    }
    counted
}

#[test]
fn one_network_cannot_switch_off_password_unlock_for_everyone() {
    let (dir, node, _clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    // Ten addresses of one /24, ten wrong passwords each: the attack that used to fill the
    // node-wide window in under a second.
    let counted = flood_from_network(&node, 9, 10, 10);
    assert_eq!(
        counted, 30,
        "one network counts 30 failures a day, then waits"
    );
    let neighbour = node.request_from(
        "127.0.9.77",
        "POST",
        "/api/v1/unlock",
        None,
        Some(&wrong_verifier()),
    );
    assert_eq!(neighbour.problem(429)["scope"], "network");
    let right = json!({"unlock_verifier": owner.unlock_verifier});
    let elsewhere = node.request_from("127.0.1.5", "POST", "/api/v1/unlock", None, Some(&right));
    assert_eq!(
        elsewhere.status, 200,
        "the owner elsewhere unlocks: {}",
        elsewhere.body
    );
    node.stop();
    let node = TestNode::start(dir.path(), NodeOptions::default());
    let again = node.request_from("127.0.9.78", "POST", "/api/v1/unlock", None, Some(&right));
    assert_eq!(
        again.problem(429)["scope"],
        "network",
        "the window survives a restart"
    );
}

/// A node whose node-wide unlock window is full: four networks of three addresses sent ten
/// wrong passwords each.
pub(crate) fn node_with_a_full_node_window() -> (tempfile::TempDir, TestNode, ManualClock, TestOwner)
{
    let (dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let counted: usize = (10..14)
        .map(|net| flood_from_network(&node, net, 3, 10))
        .sum();
    assert_eq!(counted, 100, "the node-wide window holds 100 failures");
    (dir, node, clock, owner)
}

fn unlock_with_code(node: &TestNode, source: &str, verifier: &str, code: &str) -> Answer {
    let body = json!({"unlock_verifier": verifier, "unlock_code": code});
    node.request_from(source, "POST", "/api/v1/unlock", None, Some(&body))
}

#[test]
fn the_owner_gets_in_with_a_one_time_code_while_the_node_wide_window_is_full() {
    let (_dir, node, clock, owner) = node_with_a_full_node_window();
    let right = json!({"unlock_verifier": owner.unlock_verifier});
    let locked_out = node.request_from("127.0.99.1", "POST", "/api/v1/unlock", None, Some(&right));
    let problem = locked_out.problem(429);
    assert_eq!(problem["scope"], "node");
    assert!(retry_after(&locked_out) > 900);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("unlock code")
    );

    // The owner's signed-in device makes a code (it needs a fresh step-up).
    let (token, _) = node.login_at(&owner, clock.now());
    let not_fresh = node.call("POST", "/api/v1/unlock-codes", Some(&token), None, &[]);
    assert_eq!(
        not_fresh.problem(403)["type"],
        "urn:siteid:problem:step-up-required"
    );
    node.step_up_at(&owner, &token, clock.now());
    let minted = node.call("POST", "/api/v1/unlock-codes", Some(&token), None, &[]);
    assert_eq!(minted.status, 201, "{}", minted.body);
    assert_eq!(minted.header("cache-control"), Some("no-store"));
    let minted = minted.json();
    assert_eq!(minted["expires_in"], 600);
    let code = minted["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 19, "four groups of four: {code}");

    let typed = code.to_lowercase().replace('-', " ");
    let unlocked = unlock_with_code(&node, "127.0.99.1", &owner.unlock_verifier, &typed);
    assert_eq!(
        unlocked.status, 200,
        "the code lets the owner in: {}",
        unlocked.body
    );
    assert_eq!(unlocked.json()["wrapped_key"], owner.wrapped_key);
    let reused = unlock_with_code(&node, "127.0.99.2", &owner.unlock_verifier, &code);
    assert_eq!(
        reused.problem(401)["type"],
        "urn:siteid:problem:wrong-unlock-code",
        "a code works once"
    );
    let events = node.audit_events(&token);
    for event in [
        "unlock_code.created",
        "unlock_code.used",
        "unlock.succeeded",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
    let created = node.audit_entry(&token, "unlock_code.created");
    assert_eq!(
        created["detail"]["session_id"],
        node.call("GET", "/api/v1/session", Some(&token), None, &[])
            .json()["session_id"]
    );
    assert!(
        !created.to_string().contains(&code),
        "the code is never logged"
    );
}

/// Makes a code on the server with `siteid unlock-code`.
fn code_from_the_command_line(data_dir: &std::path::Path) -> String {
    let minted = std::process::Command::new(env!("CARGO_BIN_EXE_siteid"))
        .args(["unlock-code", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run siteid unlock-code");
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let code = String::from_utf8(minted.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_eq!(code.len(), 19, "{code}");
    code
}

#[test]
fn a_code_from_the_server_works_once_and_a_code_that_is_not_live_lifts_nothing() {
    let (dir, node, clock, owner) = node_with_a_full_node_window();
    let code = code_from_the_command_line(dir.path());
    let not_live = unlock_with_code(
        &node,
        "127.0.50.1",
        &owner.unlock_verifier,
        "0000-0000-0000-0000",
    );
    assert_eq!(
        not_live.problem(429)["scope"],
        "node",
        "only a live code gets past the node-wide window"
    );
    // The node sees a code made on the command line within a second.
    let mut answer = None;
    let seen = crate::helpers::wait_until(std::time::Duration::from_secs(10), || {
        let attempt = unlock_with_code(&node, "127.0.50.1", &owner.unlock_verifier, &code);
        let done = attempt.status != 429;
        answer = Some(attempt);
        done
    });
    assert!(seen, "the code from the command line was never accepted");
    let unlocked = answer.expect("an answer");
    assert_eq!(unlocked.status, 200, "{}", unlocked.body);
    let reused = unlock_with_code(&node, "127.0.50.2", &owner.unlock_verifier, &code);
    assert!(
        [401, 429].contains(&reused.status),
        "a used code lets nothing through: {}",
        reused.body
    );
    let malformed = unlock_with_code(&node, "127.0.50.3", &owner.unlock_verifier, "not a code!");
    assert_eq!(malformed.problem(422)["field"], "unlock_code");
    let expiring = code_from_the_command_line(dir.path());
    clock.advance(601);
    let expired = unlock_with_code(&node, "127.0.51.1", &owner.unlock_verifier, &expiring);
    assert_eq!(
        expired.problem(429)["scope"],
        "node",
        "an expired code is not live"
    );
}

#[test]
fn a_code_does_not_lift_the_client_window_and_a_wrong_code_counts_only_there() {
    let (dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    for _ in 0..10 {
        let wrong = node.request_from(
            "127.0.60.1",
            "POST",
            "/api/v1/unlock",
            None,
            Some(&wrong_verifier()),
        );
        wrong.problem(401);
    }
    let (token, _) = node.login_at(&owner, clock.now());
    node.step_up_at(&owner, &token, clock.now());
    let minted = node.call("POST", "/api/v1/unlock-codes", Some(&token), None, &[]);
    let code = minted.json()["code"].as_str().expect("code").to_owned();
    let throttled = unlock_with_code(&node, "127.0.60.1", &owner.unlock_verifier, &code);
    assert_eq!(
        throttled.problem(429)["scope"],
        "client",
        "the client's own window holds"
    );

    // Codes that are not live: counted in the client's window only, and never stored.
    for attempt in 0..10 {
        let wrong = unlock_with_code(
            &node,
            "127.0.61.1",
            &owner.unlock_verifier,
            "0000-0000-0000-0000",
        );
        assert_eq!(
            wrong.problem(401)["type"],
            "urn:siteid:problem:wrong-unlock-code",
            "attempt {attempt}"
        );
    }
    let next = unlock_with_code(
        &node,
        "127.0.61.1",
        &owner.unlock_verifier,
        "0000-0000-0000-0000",
    );
    assert_eq!(next.problem(429)["scope"], "client");
    let neighbour = node.request_from(
        "127.0.61.2",
        "POST",
        "/api/v1/unlock",
        None,
        Some(&json!({"unlock_verifier": owner.unlock_verifier})),
    );
    assert_eq!(
        neighbour.status, 200,
        "the network window was not charged: {}",
        neighbour.body
    );
    node.stop();
    let stored: Vec<String> = with_store(dir.path(), |c| {
        let mut statement = c.prepare("SELECT DISTINCT ip FROM unlock_failure")?;
        let rows = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok::<_, siteid::store::StoreError>(rows)
    });
    assert_eq!(stored, ["127.0.60.1"], "only password guesses are stored");
}

#[test]
fn unlock_codes_need_a_session() {
    let (_dir, node) = spawn_node();
    node.claim(&TestOwner::from_vector());
    let answer = node.post_raw("/api/v1/unlock-codes", "", b"");
    assert_eq!(
        answer.problem(401)["type"],
        "urn:siteid:problem:unauthenticated"
    );
    let unclaimed = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_siteid"))
        .args(["unlock-code", "--data-dir"])
        .arg(unclaimed.path())
        .output()
        .expect("run siteid unlock-code");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}

#[test]
fn concurrent_wrong_passwords_from_one_client_cannot_pass_its_window_together() {
    use std::io::{Read, Write};
    let (_dir, node, _clock) = spawn_node_with_clock();
    node.claim(&TestOwner::from_vector());
    // Fifty requests from one address arrive together: each is sent but its last byte, then
    // every last byte goes out at once.
    let request = node.raw_request("POST", "/api/v1/unlock", None, Some(&wrong_verifier()));
    let (head, last) = request.split_at(request.len() - 1);
    let mut streams: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut stream = node.connect_from("127.0.80.1");
            stream.write_all(head).expect("write");
            stream
        })
        .collect();
    for stream in &mut streams {
        stream.write_all(last).expect("write");
    }
    let statuses: Vec<u16> = streams
        .iter_mut()
        .map(|stream| {
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).expect("read");
            Answer::parse_raw(&raw).status
        })
        .collect();
    let judged = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(
        judged, 10,
        "only the client's window of attempts is judged: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 40);
}
