//! Sessions: listing, revocation, sign-out, expiry, cookies with their CSRF rule, step-up and
//! the audit endpoint.

use std::sync::Arc;

use serde_json::json;
use siteid::clock::{Clock, ManualClock, SystemClock};

use crate::helpers::{NodeOptions, TestNode, TestOwner, spawn_node, spawn_node_with_clock};

fn claimed_node() -> (tempfile::TempDir, TestNode, TestOwner) {
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    (dir, node, owner)
}

#[test]
fn without_a_session_every_session_endpoint_is_401() {
    let (_dir, node, _owner) = claimed_node();
    for (method, path) in [
        ("GET", "/api/v1/session"),
        ("DELETE", "/api/v1/session"),
        ("GET", "/api/v1/sessions"),
        ("DELETE", "/api/v1/sessions/abc"),
        ("POST", "/api/v1/sessions/revoke-others"),
        ("GET", "/api/v1/audit"),
    ] {
        let answer = node.call(method, path, None, None, &[]);
        assert_eq!(
            answer.problem(401)["type"],
            "urn:siteid:problem:unauthenticated",
            "{method} {path}"
        );
        node.call(method, path, Some("not-a-token"), None, &[])
            .problem(401);
    }
}

#[test]
fn sessions_are_listed_revoked_at_once_and_signed_out() {
    let (_dir, node, owner) = claimed_node();
    let (a, a_id) = node.login(&owner);
    let (b, b_id) = node.login(&owner);
    let (c, _) = node.login(&owner);
    let list = node
        .call("GET", "/api/v1/sessions", Some(&a), None, &[])
        .json();
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 3);
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], a_id.as_str());
    for member in [
        "id",
        "kid",
        "created_at",
        "last_seen_at",
        "ip",
        "user_agent",
        "current",
    ] {
        assert!(sessions[0].get(member).is_some(), "{member}");
    }
    assert_eq!(
        node.call(
            "DELETE",
            &format!("/api/v1/sessions/{b_id}"),
            Some(&a),
            None,
            &[]
        )
        .status,
        204
    );
    node.call("GET", "/api/v1/session", Some(&b), None, &[])
        .problem(401);
    node.call(
        "DELETE",
        &format!("/api/v1/sessions/{b_id}"),
        Some(&a),
        None,
        &[],
    )
    .problem(404);
    let revoked = node.call(
        "POST",
        "/api/v1/sessions/revoke-others",
        Some(&a),
        None,
        &[],
    );
    assert_eq!(revoked.json(), json!({"revoked": 1}));
    node.call("GET", "/api/v1/session", Some(&c), None, &[])
        .problem(401);
    assert_eq!(
        node.call("DELETE", "/api/v1/session", Some(&a), None, &[])
            .status,
        204
    );
    node.call("GET", "/api/v1/session", Some(&a), None, &[])
        .problem(401);
    let (d, _) = node.login(&owner);
    let events = node.audit_events(&d);
    assert_eq!(events[0], "session.created", "newest first");
    assert_eq!(events.iter().filter(|e| *e == "session.ended").count(), 3);
}

#[test]
fn sessions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let owner = TestOwner::from_vector();
    let node = TestNode::start(dir.path(), NodeOptions::default());
    node.claim(&owner);
    let (token, id) = node.login(&owner);
    node.stop();
    let node = TestNode::start(dir.path(), NodeOptions::default());
    let session = node.call("GET", "/api/v1/session", Some(&token), None, &[]);
    assert_eq!(session.json()["session_id"], id.as_str());
}

#[test]
fn idle_and_absolute_expiry_end_a_session() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (idle, _) = node.login(&owner);
    clock.advance(30 * 60 + 1);
    node.call("GET", "/api/v1/session", Some(&idle), None, &[])
        .problem(401);

    let (busy, _) = node.login_at(&owner, clock.now());
    // Used every 25 minutes, the session stays alive until its 12-hour limit.
    for step in 1..=28 {
        clock.advance(25 * 60);
        let answer = node.call("GET", "/api/v1/session", Some(&busy), None, &[]);
        assert_eq!(answer.status, 200, "after {} minutes", step * 25);
    }
    clock.advance(21 * 60);
    node.call("GET", "/api/v1/session", Some(&busy), None, &[])
        .problem(401);
}

#[test]
fn the_session_reports_when_it_ends() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login(&owner);
    let session = node
        .call("GET", "/api/v1/session", Some(&token), None, &[])
        .json();
    let created = session["created_at"].as_i64().expect("created_at");
    assert_eq!(session["expires_at"].as_i64(), Some(created + 1800));
    clock.advance(600);
    let later = node
        .call("GET", "/api/v1/session", Some(&token), None, &[])
        .json();
    assert_eq!(
        later["expires_at"].as_i64(),
        Some(clock.now() + 1800),
        "use extends the idle limit"
    );
}

#[test]
fn a_cookie_session_refuses_cross_origin_changes() {
    let (_dir, node, owner) = claimed_node();
    let assertion = owner.login_assertion(&node, &node.challenge());
    let answer = node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": assertion, "cookie": true}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.json().get("access_token").is_none(),
        "the token stays out of reach of scripts"
    );
    let set_cookie = answer.header("set-cookie").expect("a cookie").to_owned();
    assert!(set_cookie.starts_with("siteid-session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    let read = node.call("GET", "/api/v1/session", None, None, &[("cookie", &cookie)]);
    assert_eq!(read.status, 200, "a cookie reads without Origin");
    for origin in [None, Some("https://evil.example"), Some("null")] {
        let mut headers = vec![("cookie", cookie.as_str())];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let body = json!({"assertion": "x"});
        for (method, path, body) in [
            ("POST", "/api/v1/sessions/revoke-others", None),
            ("DELETE", "/api/v1/sessions/someone", None),
            ("POST", "/api/v1/auth/reauth", Some(&body)),
            ("PUT", "/api/v1/owner/wrapped-key", Some(&body)),
        ] {
            let answer = node.call(method, path, None, body, &headers);
            assert_eq!(
                answer.problem(403)["type"],
                "urn:siteid:problem:cross-origin-request",
                "{method} {path} {origin:?}"
            );
        }
    }
    let own = node.base_url.clone();
    let signed_out = node.call(
        "DELETE",
        "/api/v1/session",
        None,
        None,
        &[("cookie", &cookie), ("origin", &own)],
    );
    assert_eq!(signed_out.status, 204);
    assert!(
        signed_out
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the cookie is cleared"
    );
    node.call("GET", "/api/v1/session", None, None, &[("cookie", &cookie)])
        .problem(401);
}

#[test]
fn an_https_node_uses_a_host_prefixed_secure_cookie() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            public_url: Some("https://id.example.org".into()),
            clock: Arc::new(ManualClock::new(SystemClock.now())),
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    let t = crate::helpers::now();
    let mut body = owner.claim_body(&node, &token);
    body["proof"] = json!(owner.sign(
        json!({"alg": "ES384", "typ": "siteid-claim+jwt"}),
        json!({"aud": "https://id.example.org", "nonce": token, "iat": t, "exp": t + 300}),
    ));
    assert_eq!(node.post_json("/api/v1/owner", &body).status, 201);
    let nonce = node.challenge();
    let assertion = owner.sign(
        json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": owner.key.public_key().thumbprint()}),
        json!({"aud": "https://id.example.org", "nonce": nonce, "iat": t, "exp": t + 300}),
    );
    let answer = node.post_json(
        "/api/v1/auth/login",
        &json!({"assertion": assertion, "cookie": true}),
    );
    let cookie = answer.header("set-cookie").expect("cookie");
    assert!(cookie.starts_with("__Host-siteid-session="), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[test]
fn step_up_needs_a_fresh_assertion_from_the_session_key() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_at(&owner, clock.now());
    let new = owner.rewrapped("another long password");
    let change = |at: i64| {
        node.call(
            "PUT",
            "/api/v1/owner/wrapped-key",
            Some(&token),
            Some(&node.rewrap_body_at(&owner, &new, Some(&owner.unlock_verifier), at)),
            &[],
        )
    };
    let new_session = change(clock.now());
    assert_eq!(
        new_session.problem(403)["type"],
        "urn:siteid:problem:step-up-required",
        "a new session does not start stepped up"
    );
    node.step_up_at(&owner, &token, clock.now());
    clock.advance(6 * 60);
    let stale = change(clock.now());
    assert_eq!(
        stale.problem(403)["type"],
        "urn:siteid:problem:step-up-required"
    );
    let nonce = node.challenge();
    let t = clock.now();
    let assertion = owner.sign(
        json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": owner.key.public_key().thumbprint()}),
        json!({"aud": node.base_url, "nonce": nonce, "iat": t, "exp": t + 300}),
    );
    let reauth = node.call(
        "POST",
        "/api/v1/auth/reauth",
        Some(&token),
        Some(&json!({"assertion": assertion})),
        &[],
    );
    assert_eq!(reauth.status, 204, "{}", reauth.body);
    let fresh = change(clock.now());
    assert_eq!(fresh.status, 204, "{}", fresh.body);
    let events = node.audit_events(&token);
    assert!(
        events.iter().any(|e| e == "session.stepped_up"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "wrapped_key.replaced"),
        "{events:?}"
    );
}

#[test]
fn the_audit_log_pages_backwards_and_checks_its_query() {
    let (_dir, node, owner) = claimed_node();
    let (token, _) = node.login(&owner);
    let first = node
        .call("GET", "/api/v1/audit?limit=2", Some(&token), None, &[])
        .json();
    let entries = first["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    let before = first["next_before"].as_i64().expect("more pages");
    assert_eq!(entries[1]["seq"].as_i64(), Some(before));
    let second = node
        .call(
            "GET",
            &format!("/api/v1/audit?limit=2&before={before}"),
            Some(&token),
            None,
            &[],
        )
        .json();
    assert!(second["entries"][0]["seq"].as_i64() < Some(before));
    assert!(entries[0]["detail"].is_object());
    for bad in [
        "limit=0",
        "limit=100000",
        "limit=abc",
        "before=x",
        "surprise=1",
    ] {
        let answer = node.call(
            "GET",
            &format!("/api/v1/audit?{bad}"),
            Some(&token),
            None,
            &[],
        );
        assert_eq!(answer.status, 422, "{bad}: {}", answer.body);
        answer.problem(422);
    }
}

#[test]
fn a_session_end_whose_write_failed_is_written_when_the_node_stops() {
    let (dir, node, owner) = claimed_node();
    let (token, session_id) = node.login(&owner);
    // Another process makes the session table refuse deletes while a flag is set, as a full
    // disk would.
    crate::helpers::with_store(dir.path(), |c| {
        c.execute_batch(
            "CREATE TRIGGER refuse_session_delete BEFORE DELETE ON session
             WHEN EXISTS (SELECT 1 FROM meta WHERE name = 'test.refuse')
             BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;
             INSERT INTO meta (name, value) VALUES ('test.refuse', x'01');",
        )
        .map_err(siteid::store::StoreError::from)
    });
    let signed_out = node.call("DELETE", "/api/v1/session", Some(&token), None, &[]);
    assert_eq!(
        signed_out.status, 500,
        "the database refused: {}",
        signed_out.body
    );
    node.call("GET", "/api/v1/session", Some(&token), None, &[])
        .problem(401);
    // The disk has room again, and the node stops before its sweeper runs again.
    crate::helpers::with_store(dir.path(), |c| {
        c.execute_batch("DELETE FROM meta WHERE name = 'test.refuse'")
            .map_err(siteid::store::StoreError::from)
    });
    node.stop();
    let stored: i64 = crate::helpers::with_store(dir.path(), |c| {
        c.query_row(
            "SELECT count(*) FROM session WHERE id = ?1",
            [&session_id],
            |row| row.get(0),
        )
        .map_err(siteid::store::StoreError::from)
    });
    assert_eq!(stored, 0, "the queued end was written at shutdown");
    let node = TestNode::start(dir.path(), NodeOptions::default());
    node.call("GET", "/api/v1/session", Some(&token), None, &[])
        .problem(401);
}
