//! The audit log through the command line: `audit list` shows the events of a real run, and
//! `audit verify` names the first changed, deleted or reordered entry.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use siteid::store::DATABASE_FILE_NAME;

use crate::helpers::{TestOwner, spawn_node};

fn siteid(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_siteid"))
        .args(args)
        .output()
        .expect("run siteid");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
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
