//! Recovery: the share-set metadata API (step-up, strict fields, 409s, audit), recovery and
//! restore audited as such, and the `siteid shares` command line against real nodes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sha2::Digest;
use siteid::clock::Clock;

use crate::helpers::{TestNode, TestOwner, spawn_node, spawn_node_with_clock};

const BINARY: &str = env!("CARGO_BIN_EXE_siteid");
const SETS: &str = "/api/v1/recovery/sets";

fn new_set(set_id: &str) -> Value {
    json!({
        "set_id": set_id,
        "threshold": 3,
        "shares": 5,
        "labels": ["Alice", "Bob", "Carol", "Dan", "Zoë 🌻"],
    })
}

/// A claimed node and a session stepped up for sensitive operations.
fn signed_in_node() -> (tempfile::TempDir, TestNode, TestOwner, String) {
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    (dir, node, owner, token)
}

#[test]
fn a_recorded_set_is_listed_and_audited_without_any_share() {
    let (_dir, node, owner, token) = signed_in_node();
    let created = node.call("POST", SETS, Some(&token), Some(&new_set("0A1B2C3D")), &[]);
    assert_eq!(created.status, 201, "{}", created.body);
    let set = created.json();
    assert_eq!(set["set_id"], "0a1b2c3d");
    assert_eq!(set["kid"], owner.key.public_key().thumbprint());
    assert_eq!(set["labels"][4], "Zoë 🌻");
    node.call("POST", SETS, Some(&token), Some(&new_set("ffffffff")), &[]);
    let list = node.call("GET", SETS, Some(&token), None, &[]).json();
    let ids: Vec<&str> = list["sets"]
        .as_array()
        .expect("sets")
        .iter()
        .map(|s| s["set_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["ffffffff", "0a1b2c3d"], "newest first");
    assert_eq!(list["sets"][1], set);
    let entry = node.audit_entry(&token, "recovery.set_created");
    assert_eq!(entry["detail"]["set_id"], "ffffffff");
    assert_eq!(entry["detail"]["threshold"], 3);
}

#[test]
fn listing_and_recording_sets_need_a_session() {
    let (_dir, node, _owner, _token) = signed_in_node();
    node.call("GET", SETS, None, None, &[]).problem(401);
    node.call("POST", SETS, None, Some(&new_set("0a1b2c3d")), &[])
        .problem(401);
    node.call(
        "POST",
        SETS,
        Some("not-a-token"),
        Some(&new_set("0a1b2c3d")),
        &[],
    )
    .problem(401);
}

#[test]
fn recording_a_set_needs_step_up() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login(&owner);
    let new_session = node.call("POST", SETS, Some(&token), Some(&new_set("0a1b2c3d")), &[]);
    assert_eq!(
        new_session.problem(403)["type"],
        "urn:siteid:problem:step-up-required",
        "a new session is not stepped up"
    );
    node.step_up_at(&owner, &token, clock.now());
    clock.advance(6 * 60);
    let stale = node.call("POST", SETS, Some(&token), Some(&new_set("0a1b2c3d")), &[]);
    assert_eq!(
        stale.problem(403)["type"],
        "urn:siteid:problem:step-up-required"
    );
    let list = node.call("GET", SETS, Some(&token), None, &[]).json();
    assert_eq!(list["sets"], json!([]));
}

#[test]
fn bad_set_metadata_is_a_422_naming_the_field_and_records_nothing() {
    let (_dir, node, _owner, token) = signed_in_node();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let with = |member: &str, value: Value| {
        let mut body = new_set("0a1b2c3d");
        body[member] = value;
        body
    };
    cases.push((with("set_id", json!("0a1b2c3")), "set_id"));
    cases.push((with("set_id", json!("0a1b2c3g")), "set_id"));
    cases.push((with("threshold", json!(1)), "threshold"));
    cases.push((with("threshold", json!(6)), "threshold"));
    cases.push((with("threshold", json!(300)), "threshold"));
    cases.push((with("shares", json!(17)), "shares"));
    cases.push((with("labels", json!(["a", "b"])), "labels"));
    cases.push((
        with("labels", json!(["a", "b", "c", "d", "x".repeat(65)])),
        "labels",
    ));
    cases.push((with("labels", json!(["a", "b", "c", "d", ""])), "labels"));
    cases.push((
        with("labels", json!(["a", "b", "c", "d", "tab\there"])),
        "labels",
    ));
    cases.push((
        with("labels", json!(["a", "b", "c", "d", " padded"])),
        "labels",
    ));
    cases.push((
        with("labels", json!(["a", "b", "c", "d", "evil\u{202e}gpj.exe"])),
        "labels",
    ));
    // Shares themselves are never accepted: the API has no member that could carry one.
    cases.push((with("shares", json!(["06GM-N33R-0C0M"])), "shares"));
    for (body, field) in cases {
        let answer = node.call("POST", SETS, Some(&token), Some(&body), &[]);
        let problem = answer.problem(422);
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let mut extra = new_set("0a1b2c3d");
    extra["share_texts"] = json!(["06GM"]);
    node.call("POST", SETS, Some(&token), Some(&extra), &[])
        .problem(422);
    node.call(
        "POST",
        SETS,
        Some(&token),
        Some(&json!([new_set("0a1b2c3d")])),
        &[],
    )
    .problem(422);
    let list = node.call("GET", SETS, Some(&token), None, &[]).json();
    assert_eq!(list["sets"], json!([]));
}

#[test]
fn a_set_id_is_recorded_once() {
    let (_dir, node, _owner, token) = signed_in_node();
    let first = node.call("POST", SETS, Some(&token), Some(&new_set("0a1b2c3d")), &[]);
    assert_eq!(first.status, 201);
    let again = node.call("POST", SETS, Some(&token), Some(&new_set("0A1B2C3D")), &[]);
    assert_eq!(
        again.problem(409)["type"],
        "urn:siteid:problem:recovery-set-exists"
    );
}

#[test]
fn a_password_set_after_recovery_is_audited_as_a_recovery() {
    let (_dir, node, owner, token) = signed_in_node();
    let new = owner.rewrapped("a new password after recovery");
    let mut body = node.rewrap_body(&owner, &new, None);
    body["recovery_set"] = json!("nothex!!");
    let bad = node.call(
        "PUT",
        "/api/v1/owner/wrapped-key",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(bad.problem(422)["field"], "recovery_set");
    let mut body = node.rewrap_body(&owner, &new, None);
    body["recovery_set"] = json!("a14a8c78");
    let answer = node.call(
        "PUT",
        "/api/v1/owner/wrapped-key",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
    let recovered = node.audit_entry(&token, "owner.recovered");
    assert_eq!(recovered["detail"]["recovery_set"], "a14a8c78");
    assert_eq!(
        recovered["detail"]["kid"],
        owner.key.public_key().thumbprint()
    );
    assert!(
        !node
            .audit_events(&token)
            .contains(&"wrapped_key.replaced".to_owned())
    );
}

#[test]
fn a_claim_from_shares_is_audited_as_a_restore() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let mut body = owner.claim_body(&node, &node.claim_token());
    body["recovery_set"] = json!("A14A8C78");
    let answer = node.post_json("/api/v1/owner", &body);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let (token, _) = node.login(&owner);
    let claimed = node.audit_entry(&token, "owner.claimed");
    assert_eq!(claimed["detail"]["recovery_set"], "a14a8c78");
}

/// Runs the binary with `stdin` as its input.
fn siteid(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run siteid");
    let mut input = child.stdin.take().expect("stdin");
    match input.write_all(stdin.as_bytes()) {
        Ok(()) => {}
        // The command may exit before it reads its input (a refused option or URL); its exit
        // code and stderr say why, and the test checks those.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => panic!("writing stdin failed: {error}"),
    }
    drop(input);
    child.wait_with_output().expect("siteid finishes")
}

/// Runs the binary with its stdout on `/dev/full`, where every write fails.
fn siteid_to_full_disk(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .expect("run siteid")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout {} stderr {}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn the_command_line_splits_checks_and_restores_a_node_identity() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let key_file = write(work.path(), "private.jwk", &text(&owner.key.to_json()));
    let split = siteid(
        &[
            "shares",
            "split",
            "--threshold",
            "3",
            "--shares",
            "5",
            "--private-jwk",
            &key_file,
        ],
        "",
    );
    assert_exit(&split, 0, "split");
    let shares: Vec<String> = text(&split.stdout).lines().map(str::to_owned).collect();
    assert_eq!(shares.len(), 5);

    let node_url = node.base_url.clone();
    let check = siteid(
        &[
            "shares", "check", "--node", &node_url, &shares[4], &shares[0], &shares[2],
        ],
        "",
    );
    assert_exit(&check, 0, "check against the node");
    assert!(text(&check.stdout).contains(&format!("rebuild the key {kid}")));
    let one = siteid(&["shares", "check", &shares[1]], "");
    assert_exit(&one, 0, "one share alone");
    // Which --node URLs are accepted (plain http only to this machine) is the unit test
    // cli::node_client::tests::https_anywhere_and_plain_http_only_to_this_machine; here only
    // that the rule is applied, with a loopback URL that has a path.
    let with_path = siteid(
        &["shares", "check", "--node", &format!("{node_url}/jwks")],
        &shares[0],
    );
    assert_exit(&with_path, 1, "a --node URL that is not an origin");
    assert!(
        text(&with_path.stderr).contains("origin only"),
        "{}",
        text(&with_path.stderr)
    );

    let mut typo = shares[3].clone().into_bytes();
    typo[20] = if typo[20] == b'Z' { b'Y' } else { b'Z' };
    let typo = String::from_utf8(typo).expect("ascii");
    let mistyped = siteid(&["shares", "check", &shares[0], &typo], "");
    assert_exit(&mistyped, 4, "a typo");
    assert!(text(&mistyped.stderr).contains("Share 2 has a typo"));
    let too_few = siteid(
        &["shares", "combine"],
        &format!("{}\n\n{}\n", shares[0], shares[1]),
    );
    assert_exit(&too_few, 5, "two of three");
    assert!(text(&too_few.stdout).is_empty());
    let other = tempfile::tempdir().expect("tempdir");
    let other_owner = OwnerPrivateKeyFile::new(other.path());
    let wrong = siteid(
        &[
            "shares",
            "combine",
            "--public-jwk",
            &other_owner.public_path,
            &shares[0],
            &shares[1],
            &shares[2],
        ],
        "",
    );
    assert_exit(&wrong, 6, "another owner's key");
    let mixed = siteid(&["shares", "check", &shares[0], &other_owner.shares[0]], "");
    assert_exit(&mixed, 5, "shares of two sets");
    assert!(text(&mixed.stderr).contains("Share 2 is from another set"));

    let jwk = siteid(&["shares", "combine"], &shares[2..].join("\n"));
    assert_exit(&jwk, 0, "combine to a JWK");
    let printed: Value = serde_json::from_slice(&jwk.stdout).expect("a JWK");
    assert_eq!(printed["d"], owner.d);

    // Total loss: the node and its data are gone; a new data dir gets the same identity.
    node.stop();
    let password = write(
        work.path(),
        "password",
        "a new passphrase for the restored node\n",
    );
    let restored_dir = work.path().join("restored");
    let restored_dir = restored_dir.to_str().expect("utf-8");
    let restore = combine_into(
        restored_dir,
        &password,
        &[&shares[1], &shares[3], &shares[4]],
    );
    assert_exit(&restore, 0, "restore into a new data dir");
    assert_eq!(text(&restore.stdout).trim(), kid);
    let check_wrapped = siteid(
        &[
            "wrapped-key",
            "check",
            "--data-dir",
            restored_dir,
            "--password-file",
            &password,
        ],
        "",
    );
    assert_exit(
        &check_wrapped,
        0,
        "the new password unwraps the restored key",
    );
    let restored = TestNode::start(Path::new(restored_dir), Default::default());
    let jwks = restored.get("/.well-known/jwks.json").json();
    assert_eq!(jwks["keys"][0]["kid"], kid);
    assert_eq!(jwks["keys"][0]["x"], owner.public_jwk["x"]);
    restored.stop();
    let again = combine_into(
        restored_dir,
        &password,
        &[&shares[0], &shares[1], &shares[2]],
    );
    assert_exit(&again, 0, "a new password for the same key");
    let foreign_shares: Vec<&String> = other_owner.shares.iter().collect();
    let foreign = combine_into(restored_dir, &password, &foreign_shares);
    assert_exit(&foreign, 3, "a node that has another owner");
}

/// The arguments of `siteid shares split` 2 of 3 of a node's key.
fn split_2_of_3<'a>(data_dir: &'a str, password_file: &'a str) -> Vec<&'a str> {
    vec![
        "shares",
        "split",
        "-k",
        "2",
        "-n",
        "3",
        "--data-dir",
        data_dir,
        "--password-file",
        password_file,
    ]
}

/// `siteid shares combine` into a data dir, the shares on stdin.
fn combine_into(data_dir: &str, password_file: &str, shares: &[&String]) -> Output {
    let lines: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
    siteid(
        &[
            "shares",
            "combine",
            "--data-dir",
            data_dir,
            "--password-file",
            password_file,
            "--p2c",
            "210000",
        ],
        &lines.join("\n"),
    )
}

/// Another owner's key, as files and 2-of-2 shares.
struct OwnerPrivateKeyFile {
    public_path: String,
    shares: Vec<String>,
}

impl OwnerPrivateKeyFile {
    fn new(dir: &Path) -> Self {
        let key = siteid::jose::jwk::OwnerPrivateKey::generate();
        let public_path = write(dir, "other.jwk", &key.public_key().to_json());
        let split = siteid::recovery::split_key(&key, 2, 2).expect("split");
        OwnerPrivateKeyFile {
            public_path,
            shares: split
                .shares
                .iter()
                .map(|s| s.to_text().to_string())
                .collect(),
        }
    }
}

#[test]
fn splitting_the_node_key_needs_its_password_and_records_the_set() {
    let work = tempfile::tempdir().expect("tempdir");
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let vector = crate::helpers::vector("project_pbes2_hs512_a256kw_a256gcm_p384.json");
    let password = write(
        work.path(),
        "password",
        vector["password_utf8"].as_str().expect("password"),
    );
    let wrong = write(work.path(), "wrong", "not the password at all");
    let data_dir = dir.path().to_str().expect("utf-8");
    let refused = siteid(&split_2_of_3(data_dir, &wrong), "");
    assert_exit(&refused, 1, "a wrong password");
    assert!(text(&refused.stdout).is_empty());
    let bad_range = siteid(
        &[
            "shares",
            "split",
            "-k",
            "1",
            "-n",
            "3",
            "--data-dir",
            data_dir,
        ],
        "",
    );
    assert_exit(&bad_range, 2, "threshold 1");
    let split = siteid(
        &[
            split_2_of_3(data_dir, &password),
            vec!["--label", "Alice", "--label", "Bob", "--label", "Carol"],
        ]
        .concat(),
        "",
    );
    assert_exit(&split, 0, "split the node key");
    let (token, _) = node.login(&owner);
    let sets = node.call("GET", SETS, Some(&token), None, &[]).json();
    assert_eq!(sets["sets"][0]["labels"], json!(["Alice", "Bob", "Carol"]));
    assert_eq!(sets["sets"][0]["threshold"], 2);
    let shares: Vec<&str> = std::str::from_utf8(&split.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    let first = siteid::recovery::Share::parse(shares[0], None).expect("a share");
    assert_eq!(sets["sets"][0]["set_id"], first.set_id_hex());
    let from_stdin = siteid(&["shares", "check"], &shares.join("\n"));
    assert_exit(&from_stdin, 0, "check reads stdin");
    assert!(text(&from_stdin.stdout).contains("the shares rebuild the key"));

    // Shares that cannot be written are not recorded as a set either.
    let lost = siteid_to_full_disk(&split_2_of_3(data_dir, &password));
    assert_exit(&lost, 1, "stdout on a full disk");
    assert!(text(&lost.stderr).contains("cannot write to stdout"));
    let sets = node.call("GET", SETS, Some(&token), None, &[]).json();
    assert_eq!(sets["sets"].as_array().expect("sets").len(), 1);

    // A wrapped key that holds another key than the node publishes is not split.
    let other = crate::helpers::vector("rust-wrapped-key.json");
    let other_password = write(
        work.path(),
        "other",
        other["password"].as_str().expect("password"),
    );
    let verifier = siteid::jose::b64::decode(other["unlock_verifier"].as_str().expect("verifier"))
        .expect("base64url");
    let verifier_hash: [u8; 32] = sha2::Sha256::digest(&verifier).into();
    crate::helpers::with_store(dir.path(), |c| {
        siteid::store::owner::replace_wrapped_key(
            c,
            other["wrapped_key"].as_str().expect("wrapped key"),
            &verifier_hash,
            None,
            crate::helpers::now(),
        )
    });
    let mismatched = siteid(&split_2_of_3(data_dir, &other_password), "");
    assert_exit(&mismatched, 1, "a wrapped key of another key");
    assert!(text(&mismatched.stderr).contains("another key than the node publishes"));
    assert!(mismatched.stdout.is_empty());
}
