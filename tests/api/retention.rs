//! Client address retention on a node with a hand-driven clock: past `ip_retention_days` the
//! addresses in audit entries and sessions are cut to their /24 and the audit salts are gone,
//! failure rows do not outlive their windows, newer addresses stay whole, and the audit chain
//! still verifies.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use siteid::clock::{Clock, ManualClock, SystemClock};
use siteid::config::{DEFAULT_IP_RETENTION_DAYS, SessionPolicy};
use siteid::jose::jwk::OwnerPrivateKey;
use siteid::store::DATABASE_FILE_NAME;

use crate::helpers::{NodeOptions, TestNode, TestOwner, wait_until};

const DAY: i64 = 86_400;

/// An audit entry's time, event, address and whether it still has its salt.
type StoredEntry = (i64, String, Option<String>, bool);

/// Reads the node's database through a plain second connection, as another process would.
fn with_database<T>(data_dir: &Path, read: impl FnOnce(&rusqlite::Connection) -> T) -> T {
    let connection =
        rusqlite::Connection::open(data_dir.join(DATABASE_FILE_NAME)).expect("open the database");
    read(&connection)
}

fn audit_entries(data_dir: &Path) -> Vec<StoredEntry> {
    with_database(data_dir, |c| {
        let mut statement = c
            .prepare("SELECT at, event, ip, ip_salt IS NOT NULL FROM audit_log ORDER BY seq")
            .expect("prepare");
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows")
    })
}

fn session_ip(data_dir: &Path, id: &str) -> String {
    with_database(data_dir, |c| {
        c.query_row("SELECT ip FROM session WHERE id = ?1", [id], |r| r.get(0))
            .expect("the session is stored")
    })
}

fn count(data_dir: &Path, table: &str) -> i64 {
    with_database(data_dir, |c| {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    })
}

/// Signs `owner` in from the loopback address `source`; returns the token and session id.
fn sign_in_from(node: &TestNode, owner: &TestOwner, source: &str, at: i64) -> (String, String) {
    let assertion = owner.login_assertion_at(node, &node.challenge(), at);
    let answer = node.request_from(
        source,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "assertion": assertion })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    (
        body["access_token"].as_str().expect("token").to_owned(),
        body["session_id"].as_str().expect("session").to_owned(),
    )
}

#[test]
fn addresses_past_their_retention_are_cut_to_their_network_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(SystemClock.now());
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            clock: Arc::new(clock.clone()),
            // Sessions that outlive the retention, so that theirs is cut while they live.
            session_policy: Some(SessionPolicy {
                idle_seconds: 40 * DAY,
                absolute_seconds: 40 * DAY,
            }),
            ..NodeOptions::default()
        },
    );
    let retention = i64::from(DEFAULT_IP_RETENTION_DAYS) * DAY;
    let start = clock.now();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (_, old_session) = sign_in_from(&node, &owner, "127.0.0.7", start);
    let wrong = json!({"unlock_verifier": "A".repeat(43)});
    let unlock = node.request_from("127.0.0.8", "POST", "/api/v1/unlock", None, Some(&wrong));
    unlock.problem(401);
    let stranger = TestOwner {
        key: OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    // Failed sign-ins are stored once they throttle their client, after ten.
    for _ in 0..10 {
        let assertion = stranger.login_assertion_at(&node, &node.challenge(), start);
        let login = node.request_from(
            "127.0.0.9",
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "assertion": assertion })),
        );
        login.problem(401);
    }
    let rows_written = wait_until(Duration::from_secs(20), || {
        count(dir.path(), "unlock_failure") == 1 && count(dir.path(), "login_throttle") == 1
    });
    assert!(rows_written, "each failure leaves a throttle row");
    // The failure summaries are written once their minute has ended.
    clock.advance(60);
    let summarised = wait_until(Duration::from_secs(20), || {
        let events: Vec<String> = audit_entries(dir.path())
            .into_iter()
            .map(|(_, event, _, _)| event)
            .collect();
        events.iter().any(|e| e == "unlock.failed") && events.iter().any(|e| e == "login.failed")
    });
    assert!(summarised, "the failures are summed up in the audit log");
    let old = audit_entries(dir.path());
    assert!(
        old.iter()
            .any(|(_, event, ip, salted)| event == "session.created"
                && ip.as_deref() == Some("127.0.0.7")
                && *salted),
        "the sign-in is audited with its whole address: {old:?}"
    );

    // Twenty days later nothing has failed since, and the throttle rows are gone anyway.
    clock.advance(20 * DAY);
    let forgotten = wait_until(Duration::from_secs(20), || {
        count(dir.path(), "unlock_failure") == 0 && count(dir.path(), "login_throttle") == 0
    });
    assert!(forgotten, "failure rows do not outlive their windows");
    assert_eq!(session_ip(dir.path(), &old_session), "127.0.0.7");
    let newer_at = clock.now();
    let (token, new_session) = sign_in_from(&node, &owner, "127.0.0.6", newer_at);

    // Past the retention of the first addresses, not of the newer ones.
    clock.advance(retention - 20 * DAY + 3_600);
    let cutoff = clock.now() - retention;
    assert!(start + 60 < cutoff && cutoff < newer_at);
    let cut = wait_until(Duration::from_secs(20), || {
        session_ip(dir.path(), &old_session) == "127.0.0.0/24"
            && audit_entries(dir.path())
                .iter()
                .filter(|(at, _, ip, _)| *at < cutoff && ip.is_some())
                .all(|(_, _, ip, salted)| ip.as_deref() == Some("127.0.0.0/24") && !salted)
    });
    assert!(
        cut,
        "old addresses are cut: {:?}",
        audit_entries(dir.path())
    );
    let entries = audit_entries(dir.path());
    let old_with_address: Vec<&str> = entries
        .iter()
        .filter(|(at, _, ip, _)| *at < cutoff && ip.is_some())
        .map(|(_, event, _, _)| event.as_str())
        .collect();
    for event in [
        "owner.claimed",
        "session.created",
        "unlock.failed",
        "login.failed",
    ] {
        assert!(old_with_address.contains(&event), "{old_with_address:?}");
    }
    let newer: Vec<&StoredEntry> = entries
        .iter()
        .filter(|(at, _, ip, _)| *at >= newer_at && ip.is_some())
        .collect();
    assert!(!newer.is_empty());
    assert!(
        newer
            .iter()
            .all(|(_, _, ip, salted)| ip.as_deref() == Some("127.0.0.6") && *salted),
        "newer entries keep their whole address: {newer:?}"
    );
    assert_eq!(session_ip(dir.path(), &new_session), "127.0.0.6");
    let listed = node
        .call("GET", "/api/v1/sessions", Some(&token), None, &[])
        .json();
    let listed_ip = |id: &str| -> Value {
        listed["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["ip"].clone())
            .unwrap_or_default()
    };
    assert_eq!(listed_ip(&old_session), "127.0.0.0/24");
    assert_eq!(listed_ip(&new_session), "127.0.0.6");
    node.stop();

    let verified = Command::new(env!("CARGO_BIN_EXE_siteid"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run siteid");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}
