//! The audit log through the command line: `audit list` shows the events of a real run,
//! `audit verify` names the first changed, deleted or reordered entry, old entries are pruned
//! without breaking the chain, and a long log is verified without loading it whole.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use siteid::audit::{self, Actor, AuditEvent};
use siteid::clock::Clock;
use siteid::store::{DATABASE_FILE_NAME, Store, StoreError};

use crate::helpers::{
    NodeOptions, TestNode, TestOwner, spawn_node, spawn_node_with_clock, wait_until,
};

/// The default audit retention, in seconds.
const DEFAULT_RETENTION_SECONDS: i64 = 365 * 86_400;

fn siteid(args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = siteid_with_code(args);
    (code == Some(0), out, err)
}

fn siteid_with_code(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_siteid"))
        .args(args)
        .output()
        .expect("run siteid");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn verify(data_dir: &Path) -> (Option<i32>, String, String) {
    siteid_with_code(&[
        "audit",
        "verify",
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
    ])
}

/// Reads the node's database through a plain second connection, as another process would.
fn query<T>(
    data_dir: &Path,
    sql: &str,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> T {
    let connection =
        rusqlite::Connection::open(data_dir.join(DATABASE_FILE_NAME)).expect("open the database");
    connection.query_row(sql, [], read).expect("query")
}

/// A data directory with a claim, a failed and a successful unlock in its log.
fn audited_data_dir() -> tempfile::TempDir {
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": "A".repeat(43)}),
    );
    node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": owner.unlock_verifier}),
    );
    node.stop();
    dir
}

fn tampered_copy(source: &Path, sql: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        source.join(DATABASE_FILE_NAME),
        copy.path().join(DATABASE_FILE_NAME),
    )
    .expect("copy the database");
    let connection =
        rusqlite::Connection::open(copy.path().join(DATABASE_FILE_NAME)).expect("open copy");
    connection.execute_batch(sql).expect("tamper");
    copy
}

#[test]
fn the_log_lists_the_events_of_a_run_and_verifies() {
    let dir = audited_data_dir();
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let (ok, list, _) = siteid(&["audit", "list", "--data-dir", data_dir]);
    assert!(ok);
    let events: Vec<&str> = list
        .lines()
        .map(|line| line.split('\t').nth(2).expect("an event column"))
        .collect();
    // Failures are summed up per network and minute; the node writes the summary of the
    // last minute as it stops, after the entries that came later in that minute.
    assert_eq!(
        events,
        [
            "node.started",
            "owner.claimed",
            "unlock.succeeded",
            "wrapped_key.served",
            "unlock.failed"
        ]
    );
    assert!(list.contains("127.0.0.1"), "client addresses are recorded");
    let (ok, out, err) = siteid(&["audit", "verify", "--data-dir", data_dir]);
    assert!(ok, "{err}");
    assert!(out.starts_with("audit log intact: 5 entries"), "{out}");
}

#[test]
fn tampering_is_detected_and_the_first_bad_entry_named() {
    let dir = audited_data_dir();
    let cases = [
        (
            "a changed entry",
            "UPDATE audit_log SET ip = '10.9.9.9' WHERE seq = 3",
            "entry 3",
        ),
        (
            "a changed time",
            "UPDATE audit_log SET at = at + 1 WHERE seq = 2",
            "entry 2",
        ),
        (
            "a deleted entry",
            "DELETE FROM audit_log WHERE seq = 2",
            "entry 2",
        ),
        (
            "two swapped entries",
            "UPDATE audit_log SET seq = 100 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = 4;
             UPDATE audit_log SET seq = 4 WHERE seq = 100;",
            "entry 3",
        ),
        (
            "deleted newest entries",
            "DELETE FROM audit_log WHERE seq >= 4",
            "entries were deleted",
        ),
    ];
    for (why, sql, expected) in cases {
        let copy = tampered_copy(dir.path(), sql);
        let (ok, _, err) = siteid(&[
            "audit",
            "verify",
            "--data-dir",
            copy.path().to_str().expect("path"),
        ]);
        assert!(!ok, "{why} must fail verification");
        assert!(err.contains(expected), "{why}: {err}");
    }
}

#[test]
fn entries_past_the_retention_are_pruned_and_the_chain_still_verifies() {
    let (dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": "A".repeat(43)}),
    );
    node.stop();
    let old_entries: i64 = query(dir.path(), "SELECT count(*) FROM audit_log", |r| r.get(0));
    assert_eq!(old_entries, 3, "node.started, owner.claimed, unlock.failed");

    // A year and a day later the node starts again and prunes at once.
    clock.advance(DEFAULT_RETENTION_SECONDS + 86_400);
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            clock: Arc::new(clock.clone()),
            ..NodeOptions::default()
        },
    );
    let cutoff = clock.now() - DEFAULT_RETENTION_SECONDS;
    let pruned = wait_until(Duration::from_secs(20), || {
        query(
            dir.path(),
            &format!("SELECT count(*) FROM audit_log WHERE at < {cutoff}"),
            |r| r.get::<_, i64>(0),
        ) == 0
    });
    assert!(pruned, "the old entries are removed");
    node.stop();

    let (seq, detail): (i64, String) = query(
        dir.path(),
        "SELECT seq, detail FROM audit_log WHERE event = 'audit.pruned'",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    let detail: Value = serde_json::from_str(&detail).expect("JSON detail");
    assert_eq!(detail["through_seq"], 3);
    assert_eq!(detail["removed"], 3);
    assert!(seq > 3, "the checkpoint is a new entry");
    let through_hash = detail["through_hash"].as_str().expect("a hex hash");
    assert_eq!(through_hash.len(), 64);

    let (code, out, err) = verify(dir.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("audit log intact: 2 entries"), "{out}");
    let (ok, list, _) = siteid(&[
        "audit",
        "list",
        "--data-dir",
        dir.path().to_str().expect("path"),
    ]);
    assert!(ok);
    let events: Vec<&str> = list
        .lines()
        .map(|line| line.split('\t').nth(2).expect("an event column"))
        .collect();
    assert_eq!(events, ["node.started", "audit.pruned"]);

    let cases = [
        (
            "one more old entry deleted",
            "DELETE FROM audit_log WHERE seq = 4",
            "entry 4 is missing",
        ),
        (
            "the base moved past the checkpoint",
            "UPDATE meta SET value = (SELECT unhex('0000000000000004' || hex(hash)) FROM audit_log WHERE seq = 4)
               WHERE name = 'audit_base';
             DELETE FROM audit_log WHERE seq = 4;",
            "after entry 4",
        ),
    ];
    for (why, sql, expected) in cases {
        let copy = tampered_copy(dir.path(), sql);
        let (code, _, err) = verify(copy.path());
        assert_eq!(code, Some(1), "{why} must fail verification");
        assert!(err.contains(expected), "{why}: {err}");
    }
}

#[test]
fn a_long_log_is_verified_without_loading_it_whole() {
    const ENTRIES: usize = 200_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open");
    // A user agent at the longest kept length makes each entry about 400 bytes.
    let actor = Actor::client(
        "192.0.2.1".into(),
        Some(&"u".repeat(audit::MAX_USER_AGENT_LEN)),
    );
    store
        .run_blocking(|c| {
            let tx = c.transaction()?;
            for i in 0..ENTRIES {
                let event = AuditEvent::UnlockFailed {
                    count: i as u64,
                    clients: 1,
                    first_at: 1_000_000,
                    reason: "wrong_verifier".into(),
                };
                audit::append(&tx, 1_000_000 + i as i64, &event, &actor)?;
            }
            tx.commit()?;
            Ok::<_, StoreError>(())
        })
        .expect("append");
    store.close().expect("close");

    let (code, out, err) = verify(dir.path());
    assert_eq!(code, Some(0), "{err}");
    let expected = format!("audit log intact: {ENTRIES} entries");
    assert!(out.starts_with(&expected), "{out}");

    // Loaded whole, the rows take over 100 MiB; streamed, the check stays near 13 MiB.
    #[cfg(target_os = "linux")]
    {
        let peak_kib = largest_child_resident_kib();
        assert!(
            peak_kib < 48 * 1024,
            "audit verify held {peak_kib} KiB at its peak"
        );
    }
}

/// The largest peak resident size of any finished child process of this test, in KiB.
#[cfg(target_os = "linux")]
fn largest_child_resident_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the buffer it is given.
    let status = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(status, 0, "getrusage");
    // SAFETY: getrusage succeeded, so the buffer is initialised.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss
}

#[test]
fn junk_claims_do_not_crowd_out_a_throttled_unlock() {
    let clock = siteid::clock::ManualClock::new(siteid::clock::SystemClock.now());
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            clock: Arc::new(clock.clone()),
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            ..Default::default()
        },
    );
    let owner = TestOwner::from_vector();
    // A hundred wrong claims from a hundred addresses, before the owner claims the node.
    for client in 0..100 {
        let ip = format!("198.51.{}.{}", client / 50, client % 50 + 1);
        let mut body = owner.claim_body(&node, "not-the-token");
        body["claim_token"] = json!("not-the-token");
        let answer = node.post_json_with("/api/v1/owner", &body, &[("x-forwarded-for", &ip)]);
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    node.claim(&owner);
    for _ in 0..11 {
        node.post_json_with(
            "/api/v1/unlock",
            &json!({"unlock_verifier": "A".repeat(43)}),
            &[("x-forwarded-for", "203.0.113.9")],
        );
    }
    let (token, _) = node.login_at(&owner, clock.now());
    clock.advance(60);
    let throttled = node.wait_for_audit_entry(&token, "unlock.throttled");
    assert_eq!(throttled["detail"]["scope"], "client");
    let suppressed = node.wait_for_audit_entry(&token, "audit.suppressed");
    assert_eq!(suppressed["detail"]["counts"]["claim.rejected"], 70);
    let events = node.audit_events(&token);
    assert_eq!(
        events.iter().filter(|e| *e == "claim.rejected").count(),
        30,
        "claim rejections have their own budget"
    );
    assert_eq!(events.iter().filter(|e| *e == "unlock.failed").count(), 1);
}
