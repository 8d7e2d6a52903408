//! The owner key's lifecycle: the key history a claim starts, rotation over HTTP and from the
//! command line, the old key refused afterwards, the history checked by an independent JOSE
//! library and by `siteid verify`, a swapped owner row refused, and the audit chain as devices
//! check it.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use siteid::auth::key_history::{self, Reason};
use siteid::auth::rotation::sign_rebinding;
use siteid::jose::b64;
use siteid::jose::jwe;
use siteid::jose::jwk::OwnerPrivateKey;
use siteid::store::credentials as credential_rows;

use crate::helpers::{TestNode, TestOwner, now, spawn_node, with_store};
use crate::key_formats::register;
use crate::process::{RunningBinary, run};

const ROTATE: &str = "/api/v1/owner/rotate";
const KEYS: &str = "/.well-known/siteid/keys.json";

/// A key that signs in as a credential, shaped like the owner for the sign-in helpers.
fn device() -> TestOwner {
    TestOwner {
        key: OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    }
}

fn kid_of(key: &OwnerPrivateKey) -> String {
    key.public_key().thumbprint()
}

/// Registers `device` with `capabilities`; returns its credential id.
fn add_device(
    node: &TestNode,
    token: &str,
    owner: &TestOwner,
    device: &TestOwner,
    capabilities: &[&str],
) -> String {
    let public = serde_json::to_value(device.key.public_key().to_jwk()).expect("jwk");
    let answer = register(
        node,
        token,
        owner,
        public,
        &kid_of(&device.key),
        capabilities,
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_str().expect("id").to_owned()
}

/// A new owner key and everything a rotation sends, as a browser makes it.
pub struct Rotation {
    pub next: OwnerPrivateKey,
    pub body: Value,
}

impl Rotation {
    /// A rotation from `old` to a new key, binding again the credentials in `keep`.
    pub fn new(node: &TestNode, old: &OwnerPrivateKey, seq: u32, keep: &[&str]) -> Rotation {
        Rotation::with_reason(node, old, seq, keep, Reason::Rotation)
    }

    /// A rotation for `reason`: a reset's statement is signed by the new key.
    fn with_reason(
        node: &TestNode,
        old: &OwnerPrivateKey,
        seq: u32,
        keep: &[&str],
        reason: Reason,
    ) -> Rotation {
        Rotation::to_key(node, old, OwnerPrivateKey::generate(), seq, keep, reason)
    }

    /// A rotation to `next`.
    fn to_key(
        node: &TestNode,
        old: &OwnerPrivateKey,
        next: OwnerPrivateKey,
        seq: u32,
        keep: &[&str],
        reason: Reason,
    ) -> Rotation {
        let (wrapped, verifier) =
            jwe::wrap_private_key(&next, b"a new long passphrase", jwe::MIN_P2C).expect("wrap");
        let verifier_hash: [u8; 32] = Sha256::digest(verifier).into();
        let t = now();
        let next_kid = kid_of(&next);
        let bindings: Vec<String> = keep
            .iter()
            .map(|id| {
                let row = with_store(&node.data_dir, |c| credential_rows::find(c, id))
                    .expect("a live credential");
                sign_rebinding(&row, &next, t)
            })
            .collect();
        let proof = siteid::jose::jws::sign_es384(
            &next,
            &json!({"alg": "ES384", "typ": "siteid-rotate+jwt"}),
            &json!({"aud": node.base_url, "nonce": node.challenge(), "iat": t, "exp": t + 300}),
        );
        // Every encryption key, opened with the old key and wrapped and bound by the new one (a
        // reset cannot open them: the node drops them).
        let encryption_keys: Vec<Value> = if reason == Reason::Reset {
            Vec::new()
        } else {
            with_store(&node.data_dir, siteid::store::encryption_keys::all)
                .iter()
                .map(|row| {
                    let opened = jwe::KwWrappedKey::parse(&row.wrapped_key)
                        .and_then(|w| w.open(&jwe::encryption_kek(old)))
                        .expect("the old key opens its encryption keys");
                    let sealed =
                        jwe::seal_private_key(&opened, &jwe::encryption_kek(&next)).expect("wraps");
                    json!({
                        "kid": row.kid,
                        "wrapped_key": sealed.compact(),
                        "binding": siteid::auth::encryption_keys::sign_binding(&next, &row.kid, t),
                    })
                })
                .collect()
        };
        let mut body = json!({
            "public_key": serde_json::to_value(next.public_key().to_jwk()).expect("jwk"),
            "wrapped_key": wrapped.compact(),
            "unlock_verifier": b64::encode(&verifier),
            "proof": proof,
            "encryption_keys": encryption_keys,
            "statement": key_history::sign_statement(
                if reason == Reason::Reset { &next } else { old },
                &next_kid, Some(&kid_of(old)), seq, reason, t,
            ),
            "bindings": bindings,
            "record": key_history::sign_record(
                &next, &node.audience, wrapped.compact(), &verifier_hash, t,
            ),
        });
        // After a compromise or a reset the old key may open the encryption key: a new one
        // replaces it.
        if matches!(reason, Reason::Compromise | Reason::Reset) {
            let (row, _) = siteid::auth::encryption_keys::generate(&next, t).expect("a key");
            body["encryption_key"] = json!({
                "public_key": serde_json::from_str::<Value>(&row.public_jwk).expect("jwk"),
                "wrapped_key": row.wrapped_key,
                "binding": row.binding,
            });
        }
        Rotation { next, body }
    }
}

fn session_status(node: &TestNode, token: &str) -> u16 {
    node.call("GET", "/api/v1/session", Some(token), None, &[])
        .status
}

fn write_json(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

/// Runs the `jose`-based verifier of tests/api/verify-key-history.mjs; returns whether it
/// accepted, and its output.
fn jose_verifies(history: &str, jwks: &str) -> (bool, String) {
    let work = tempfile::tempdir().expect("temp dir");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/verify-key-history.mjs"
    );
    let output = Command::new("node")
        .arg(script)
        .arg(write_json(work.path(), "keys.json", history))
        .arg(write_json(work.path(), "jwks.json", jwks))
        .output()
        .expect("node runs (install Node.js 20+ and run npm ci)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn rotation_replaces_the_key_binds_kept_devices_again_and_refuses_the_old_key() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let old_kid = node.claim(&owner);
    let (owner_token, _) = node.login_stepped_up(&owner);
    let phone = device();
    let phone_id = add_device(
        &node,
        &owner_token,
        &owner,
        &phone,
        &["session", "recovery"],
    );
    let lost = device();
    let lost_id = add_device(&node, &owner_token, &owner, &lost, &["session"]);
    let (phone_token, _) = node.login(&phone);
    let set = node.call(
        "POST",
        "/api/v1/recovery/sets",
        Some(&owner_token),
        Some(&json!({"set_id": "0a1b2c3d", "threshold": 2, "shares": 3,
                     "labels": ["Ann", "Bo", "Cy"]})),
        &[],
    );
    assert_eq!(set.status, 201, "{}", set.body);

    let rotation = Rotation::new(&node, &owner.key, 1, &[&phone_id]);
    let answer = node.call(
        "POST",
        ROTATE,
        Some(&owner_token),
        Some(&rotation.body),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let new_kid = kid_of(&rotation.next);
    assert_eq!(
        answer.json(),
        json!({"kid": new_kid, "seq": 1, "revoked": [lost_id], "dropped_passkey_unlocks": [],
               "dropped_encryption_keys": []})
    );

    // The public documents show the new key only (beside the encryption key, kept).
    let jwks = node.get("/.well-known/jwks.json");
    assert_eq!(jwks.json()["keys"][0]["kid"], new_kid.as_str());
    let signing = jwks.json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|key| key["use"] == "sig")
        .count();
    assert_eq!(signing, 1);
    let did = node.get("/.well-known/did.json").json();
    assert!(
        did["verificationMethod"][0]["id"]
            .as_str()
            .expect("id")
            .ends_with(&new_kid)
    );
    let history = node.get(KEYS);
    assert_eq!(history.status, 200);
    assert_eq!(history.header("access-control-allow-origin"), Some("*"));
    let keys = history.json()["keys"].clone();
    assert_eq!(keys[0]["kid"], old_kid.as_str());
    assert_eq!(keys[1]["kid"], new_kid.as_str());

    // The old owner session ended; the phone's session goes on and it signs in again.
    assert_eq!(session_status(&node, &owner_token), 401);
    assert_eq!(session_status(&node, &phone_token), 200);
    let (phone_again, _) = node.login(&phone);
    assert_eq!(session_status(&node, &phone_again), 200);

    // The old key and the credential not bound again sign nothing in.
    for refused in [&owner, &lost] {
        let assertion = refused.login_assertion(&node, &node.challenge());
        let answer = node.post_json("/api/v1/auth/login", &json!({ "assertion": assertion }));
        assert_eq!(answer.status, 401, "{}", answer.body);
    }

    // A binding by the old key is refused; one by the new key is taken.
    let new_owner = TestOwner {
        key: rotation.next,
        ..TestOwner::from_vector()
    };
    let (new_token, _) = node.login_stepped_up(&new_owner);
    let extra = device();
    let by_old_key = register(
        &node,
        &new_token,
        &owner,
        serde_json::to_value(extra.key.public_key().to_jwk()).expect("jwk"),
        &kid_of(&extra.key),
        &["session"],
    );
    assert_eq!(by_old_key.problem(422)["field"], "binding");
    add_device(&node, &new_token, &new_owner, &extra, &["session"]);

    // The recovery set of the old key is void.
    let sets = node.call(
        "GET",
        "/api/v1/recovery/sets",
        Some(&phone_token),
        None,
        &[],
    );
    assert_eq!(sets.json()["sets"][0]["void"], true, "{}", sets.body);

    // Audited, and the history verifies with the jose npm package.
    let rotated = node.audit_entry(&new_token, "owner.rotated");
    assert_eq!(rotated["detail"]["old"], old_kid.as_str());
    assert_eq!(rotated["detail"]["new"], new_kid.as_str());
    assert_eq!(rotated["detail"]["revoked"], json!([lost_id]));
    let (accepted, output) = jose_verifies(&history.body, &jwks.body);
    assert!(accepted, "{output}");
    assert!(
        output.contains(&new_kid) && output.contains("rotation"),
        "{output}"
    );
}

#[test]
fn an_independent_verifier_refuses_a_tampered_history() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    let rotation = Rotation::new(&node, &owner.key, 1, &[]);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&rotation.body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let history: Value = node.get(KEYS).json();
    let jwks = node.get("/.well-known/jwks.json").body;
    let next_kid = kid_of(&rotation.next);

    let mut tampered = Vec::new();
    // The statement of the second key re-signed by the new key, as a database writer without
    // the old key would have to.
    let mut forged = history.clone();
    forged["keys"][1]["statement"] = json!(key_history::sign_statement(
        &rotation.next,
        &next_kid,
        Some(&kid_of(&owner.key)),
        1,
        Reason::Rotation,
        now()
    ));
    tampered.push(forged);
    // The history without its first key, and with the new key swapped for a stranger.
    let mut truncated = history.clone();
    truncated["keys"].as_array_mut().expect("keys").remove(0);
    tampered.push(truncated);
    let mut swapped = history.clone();
    let stranger = OwnerPrivateKey::generate();
    swapped["keys"][1]["jwk"] = serde_json::to_value(stranger.public_key().to_jwk()).expect("jwk");
    tampered.push(swapped);
    for bad in tampered {
        let (accepted, output) = jose_verifies(&bad.to_string(), &jwks);
        assert!(!accepted, "{output}");
    }
    let (accepted, output) = jose_verifies(&history.to_string(), &jwks);
    assert!(accepted, "{output}");
}

/// Spoils one member of a rotation body.
type Spoiler = dyn Fn(&mut Value, &Rotation);

#[test]
fn a_rotation_that_does_not_hold_changes_nothing() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    let phone = device();
    let phone_id = add_device(&node, &token, &owner, &phone, &["session"]);

    let cases: Vec<(&str, Box<Spoiler>)> = vec![
        (
            "statement",
            Box::new(|body, rotation| {
                // A rotation statement signed by the new key alone.
                body["statement"] = json!(key_history::sign_statement(
                    &rotation.next,
                    &kid_of(&rotation.next),
                    Some(&kid_of(&TestOwner::from_vector().key)),
                    1,
                    Reason::Rotation,
                    now()
                ));
            }),
        ),
        (
            "statement",
            Box::new(|body, rotation| {
                body["statement"] = json!(key_history::sign_statement(
                    &TestOwner::from_vector().key,
                    &kid_of(&rotation.next),
                    Some(&kid_of(&TestOwner::from_vector().key)),
                    2,
                    Reason::Rotation,
                    now()
                ));
            }),
        ),
        (
            "record",
            Box::new(|body, rotation| {
                body["record"] = json!(key_history::sign_record(
                    &rotation.next,
                    "https://elsewhere.example",
                    body["wrapped_key"].as_str().expect("wrapped"),
                    &[0u8; 32],
                    now()
                ));
            }),
        ),
        (
            "bindings",
            Box::new(|body, _| {
                let binding = body["bindings"][0].clone();
                body["bindings"] = json!([binding.clone(), binding]);
            }),
        ),
        (
            "wrapped_key",
            Box::new(|body, _| {
                body["wrapped_key"] = json!(TestOwner::from_vector().wrapped_key);
            }),
        ),
        (
            "record",
            Box::new(|body, _| {
                body.as_object_mut().expect("object").remove("record");
            }),
        ),
    ];
    for (field, spoil) in cases {
        let rotation = Rotation::new(&node, &owner.key, 1, &[&phone_id]);
        let mut body = rotation.body.clone();
        spoil(&mut body, &rotation);
        let answer = node.call("POST", ROTATE, Some(&token), Some(&body), &[]);
        let problem = answer.problem(422);
        assert_eq!(problem["field"], field, "{}", answer.body);
    }
    // A proof's nonce serves once.
    let rotation = Rotation::new(&node, &owner.key, 1, &[&phone_id]);
    let mut replay = rotation.body.clone();
    let proof = siteid::jose::jws::sign_es384(
        &rotation.next,
        &json!({"alg": "ES384", "typ": "siteid-rotate+jwt"}),
        &json!({"aud": node.base_url, "nonce": "not-a-challenge", "iat": now(), "exp": now() + 300}),
    );
    replay["proof"] = json!(proof);
    assert_eq!(
        node.call("POST", ROTATE, Some(&token), Some(&replay), &[])
            .problem(422)["field"],
        "proof"
    );
    // A device without the owner capability may not rotate.
    let (phone_token, _) = node.login(&phone);
    assert_eq!(
        node.call(
            "POST",
            ROTATE,
            Some(&phone_token),
            Some(&rotation.body),
            &[]
        )
        .status,
        403
    );
    assert_eq!(
        node.get("/.well-known/jwks.json").json()["keys"][0]["kid"],
        kid.as_str()
    );
    assert_eq!(
        node.get(KEYS).json()["keys"]
            .as_array()
            .expect("keys")
            .len(),
        1
    );
    assert_eq!(session_status(&node, &token), 200);
}

#[test]
fn a_node_claimed_without_signatures_is_served_but_cannot_rotate_until_signed() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let body = owner.unsigned_claim_body(&node, &node.claim_token());
    assert_eq!(node.post_json("/api/v1/owner", &body).status, 201);
    assert_eq!(node.get(KEYS).json(), json!({"keys": []}));
    assert_eq!(node.get("/api/v1/health").status, 204);
    let (token, _) = node.login_stepped_up(&owner);
    let rotation = Rotation::new(&node, &owner.key, 0, &[]);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&rotation.body), &[]);
    assert!(
        answer.problem(409)["type"]
            .as_str()
            .expect("type")
            .ends_with("no-key-history")
    );

    // A password change that brings a genesis statement signs the node.
    let new = owner.rewrapped("another long passphrase");
    let mut change = node.rewrap_body(&owner, &new, Some(&owner.unlock_verifier));
    change["statement"] = json!(key_history::sign_statement(
        &owner.key,
        &kid_of(&owner.key),
        None,
        0,
        Reason::Genesis,
        now()
    ));
    let answer = node.call(
        "PUT",
        "/api/v1/owner/wrapped-key",
        Some(&token),
        Some(&change),
        &[],
    );
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(
        node.get(KEYS).json()["keys"]
            .as_array()
            .expect("keys")
            .len(),
        1
    );
    // From now on a password change must sign the record.
    let newer = owner.rewrapped("a third long passphrase");
    let mut unsigned = node.rewrap_body(&owner, &newer, Some(&new.unlock_verifier));
    unsigned.as_object_mut().expect("object").remove("record");
    let answer = node.call(
        "PUT",
        "/api/v1/owner/wrapped-key",
        Some(&token),
        Some(&unsigned),
        &[],
    );
    assert_eq!(answer.problem(422)["field"], "record");
}

/// The hash rule of docs/protocol.md, as a device recomputes it.
fn entry_hash(prev: &[u8], entry: &Value) -> Vec<u8> {
    fn field(hasher: &mut Sha256, value: &Value) {
        match value.as_str() {
            None => hasher.update([0u8]),
            Some(text) => {
                hasher.update([1u8]);
                hasher.update((text.len() as u64).to_be_bytes());
                hasher.update(text.as_bytes());
            }
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(b"siteid audit entry v1");
    hasher.update(prev);
    hasher.update(entry["seq"].as_i64().expect("seq").to_be_bytes());
    hasher.update(entry["at"].as_i64().expect("at").to_be_bytes());
    field(&mut hasher, &entry["event"]);
    match entry["ip_digest"].as_str() {
        Some(digest) => {
            hasher.update([2u8]);
            hasher.update(32u64.to_be_bytes());
            hasher.update(crate::helpers::hex(digest));
        }
        None => field(&mut hasher, &entry["ip"]),
    }
    field(&mut hasher, &entry["user_agent"]);
    field(&mut hasher, &entry["detail"]);
    hasher.finalize().to_vec()
}

#[test]
fn a_device_recomputes_the_audit_chain_from_what_the_chain_endpoint_gives() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    let chain = |after: i64, limit: u32| {
        let answer = node.call(
            "GET",
            &format!("/api/v1/audit/chain?after={after}&limit={limit}"),
            Some(&token),
            None,
            &[],
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };
    // Page through from the start, two entries at a time, recomputing every hash.
    let mut prev = vec![0u8; 32];
    let mut after = 0;
    let mut seen = 0;
    loop {
        let page = chain(after, 2);
        for entry in page["entries"].as_array().expect("entries") {
            let hash = entry_hash(&prev, entry);
            assert_eq!(
                siteid::audit::hex(&hash),
                entry["hash"].as_str().expect("hash"),
                "{entry}"
            );
            prev = hash;
            after = entry["seq"].as_i64().expect("seq");
            seen += 1;
        }
        if page["more"] != true {
            assert_eq!(page["head"]["seq"], after);
            assert_eq!(page["head"]["hash"], siteid::audit::hex(&prev).as_str());
            break;
        }
        assert!(seen < 1000, "the chain ends");
    }
    assert!(seen >= 3, "claim, sign-in and step-up are audited");
    assert_eq!(chain(after, 10)["entries"], json!([]));
    for bad in ["after=-1", "limit=0", "limit=501", "before=3"] {
        let answer = node.call(
            "GET",
            &format!("/api/v1/audit/chain?{bad}"),
            Some(&token),
            None,
            &[],
        );
        assert_eq!(answer.status, 422, "{bad}: {}", answer.body);
    }
}

/// A data directory under `dir` claimed with `siteid init` and a password file: the data
/// directory, the password file's path and the kid.
fn claimed_from_the_command_line(dir: &Path) -> (std::path::PathBuf, String, String) {
    let password = dir.join("password");
    std::fs::write(&password, "a long enough passphrase\n").expect("write");
    let password = password.to_str().expect("utf-8").to_owned();
    let data_dir = dir.join("data");
    let (code, kid, stderr) = run(&[
        "init",
        "--data-dir",
        data_dir.to_str().expect("utf-8"),
        "--password-file",
        &password,
        "--p2c",
        "210000",
    ]);
    assert_eq!(code, 0, "{stderr}");
    (data_dir, password, kid.trim().to_owned())
}

/// Swaps the owner's key and wrapped key in the database for another key's, as someone with
/// write access to the file could.
fn swap_owner_row(data_dir: &Path) {
    let stranger = OwnerPrivateKey::generate();
    let (wrapped, verifier) =
        jwe::wrap_private_key(&stranger, b"the attacker's passphrase", jwe::MIN_P2C).expect("wrap");
    let hash: [u8; 32] = Sha256::digest(verifier).into();
    let kid = kid_of(&stranger);
    let jwk = stranger.public_key().to_json();
    let compact = wrapped.compact().to_owned();
    with_store(data_dir, move |c| {
        c.execute_batch("PRAGMA foreign_keys = OFF")?;
        c.execute(
            "UPDATE credential SET kid = ?1, id = ?1, public_key = ?2 WHERE kind = 'owner'",
            rusqlite::params![kid, jwk],
        )?;
        c.execute(
            "UPDATE key_wrapping SET kid = ?1, wrapped_key = ?2, verifier_hash = ?3",
            rusqlite::params![kid, compact, hash.as_slice()],
        )?;
        c.execute("UPDATE owner SET kid = ?1", rusqlite::params![kid])?;
        Ok(())
    });
}

#[test]
fn a_node_whose_owner_row_was_swapped_refuses_to_serve_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (data_dir, _, kid) = claimed_from_the_command_line(dir.path());

    let node = RunningBinary::start(&data_dir, &dir.path().join("first.log"));
    let agent = crate::process::agent();
    let get = |base: &str, path: &str| {
        let mut response = agent.get(format!("{base}{path}")).call().expect("GET");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (status, body)
    };
    assert_eq!(get(&node.base_url, "/api/v1/health").0, 204);
    let (status, jwks) = get(&node.base_url, "/.well-known/jwks.json");
    assert_eq!(status, 200);
    assert!(jwks.contains(&kid));
    assert!(node.terminate());

    swap_owner_row(&data_dir);
    let node = RunningBinary::start(&data_dir, &dir.path().join("second.log"));
    let (status, body) = get(&node.base_url, "/api/v1/health");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("degraded"), "{body}");
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/did.json",
        KEYS,
        "/api/v1/unlock",
    ] {
        let (status, body) = get(&node.base_url, path);
        assert_eq!(status, 503, "{path}: {body}");
        assert!(body.contains("owner-record-invalid"), "{path}: {body}");
    }
    let (status, _) = crate::process::post(
        &format!("{}/api/v1/auth/challenge", node.base_url),
        &json!({}),
    );
    assert_eq!(status, 503);
    assert!(node.log().contains("the owner record fails its check"));
    assert!(node.terminate());
}

#[test]
fn the_command_line_rotates_the_key_and_verify_follows_the_history_from_a_pin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (data_dir, password, first_kid) = claimed_from_the_command_line(dir.path());
    let password = password.as_str();
    let data = data_dir.to_str().expect("utf-8");
    // A script's key, added from the command line, is bound again by the new key.
    let script_key = OwnerPrivateKey::generate();
    let public_path = dir.path().join("script.jwk");
    std::fs::write(&public_path, script_key.public_key().to_json()).expect("write");
    let (code, _, stderr) = run(&[
        "credentials",
        "add",
        "--data-dir",
        data,
        "--password-file",
        password,
        "--public-key",
        public_path.to_str().expect("utf-8"),
        "--label",
        "backup script",
        "--capability",
        "session",
    ]);
    assert_eq!(code, 0, "{stderr}");

    let node = RunningBinary::start(&data_dir, &dir.path().join("node.log"));
    let (code, second_kid, stderr) = run(&[
        "owner",
        "rotate",
        "--data-dir",
        data,
        "--password-file",
        password,
        "--p2c",
        "210000",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let second_kid = second_kid.trim().to_owned();
    assert_ne!(second_kid, first_kid);
    assert!(stderr.contains("1 credentials bound again"), "{stderr}");

    // The running node serves the new key within a few seconds.
    let agent = crate::process::agent();
    let jwks_kid = || {
        let mut response = agent
            .get(format!("{}/.well-known/jwks.json", node.base_url))
            .call()
            .expect("GET");
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or(Value::Null);
        body["keys"][0]["kid"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(crate::helpers::wait_until(
        std::time::Duration::from_secs(10),
        || jwks_kid() == second_kid
    ));
    let (code, current, stderr) = run(&["verify", "--node", &node.base_url, "--pin", &first_kid]);
    assert_eq!((code, current.trim()), (0, second_kid.as_str()), "{stderr}");

    // A reset (the old key gone) is a break that a device pinned before it refuses.
    let (code, third_kid, stderr) = run(&[
        "owner",
        "rotate",
        "--data-dir",
        data,
        "--password-file",
        password,
        "--p2c",
        "210000",
        "--reason",
        "reset",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let third_kid = third_kid.trim().to_owned();
    assert!(crate::helpers::wait_until(
        std::time::Duration::from_secs(10),
        || jwks_kid() == third_kid
    ));
    let (code, _, stderr) = run(&["verify", "--node", &node.base_url, "--pin", &first_kid]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("reset"), "{stderr}");
    let (code, current, stderr) = run(&["verify", "--node", &node.base_url, "--pin", &third_kid]);
    assert_eq!((code, current.trim()), (0, third_kid.as_str()), "{stderr}");
    let (code, _, stderr) = run(&["verify", "--node", &node.base_url, "--pin", "not-a-kid"]);
    assert_eq!(code, 1, "{stderr}");
    // The script's key still signs in: its binding was renewed twice.
    let rows = with_store(&data_dir, credential_rows::live);
    assert_eq!(rows.len(), 2, "the owner key and the script's key");
    assert!(node.terminate());
}

#[test]
fn a_reset_over_http_needs_the_current_password() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    // A session alone (a stolen one, or a key given the owner capability) cannot reset.
    let reset = Rotation::with_reason(&node, &owner.key, 1, &[], Reason::Reset);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&reset.body), &[]);
    assert_eq!(answer.problem(422)["field"], "old_unlock_verifier");
    let mut wrong = Rotation::with_reason(&node, &owner.key, 1, &[], Reason::Reset).body;
    wrong["old_unlock_verifier"] = json!(b64::encode(&[7u8; 32]));
    let answer = node.call("POST", ROTATE, Some(&token), Some(&wrong), &[]);
    assert!(
        answer.problem(401)["type"]
            .as_str()
            .expect("type")
            .ends_with("wrong-unlock-verifier")
    );
    assert_eq!(
        node.get("/.well-known/jwks.json").json()["keys"][0]["kid"],
        kid.as_str()
    );
    // With the password's verifier the reset lands, and the history shows it.
    let reset = Rotation::with_reason(&node, &owner.key, 1, &[], Reason::Reset);
    let mut body = reset.body.clone();
    body["old_unlock_verifier"] = json!(owner.unlock_verifier);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let history = node.get(KEYS).json();
    assert_eq!(history["keys"][1]["kid"], kid_of(&reset.next).as_str());
    // Without the old key the encryption key cannot be opened again: the reset dropped it and
    // published the new one it brought.
    assert_eq!(
        answer.json()["dropped_encryption_keys"],
        json!([kid_of(&owner.encryption)])
    );
    let jwks = node.get("/.well-known/jwks.json").json();
    let enc = &jwks["keys"][1];
    assert_eq!(enc["use"], "enc");
    assert_eq!(
        enc["kid"],
        body["encryption_key"]["public_key"]["x"]
            .as_str()
            .map(|_| {
                siteid::jose::jwk::OwnerPublicKey::from_json(
                    &body["encryption_key"]["public_key"].to_string(),
                )
                .expect("jwk")
                .thumbprint()
            })
            .expect("a new key")
    );
    let mut without = Rotation::with_reason(&node, &reset.next, 2, &[], Reason::Reset).body;
    without
        .as_object_mut()
        .expect("body")
        .remove("encryption_key");
    without["old_unlock_verifier"] = json!(b64::encode(&[7u8; 32]));
    let (token, _) = node.login_stepped_up(&TestOwner {
        key: OwnerPrivateKey::from_scalar_bytes(reset.next.scalar_bytes().as_slice()).expect("key"),
        ..TestOwner::from_vector()
    });
    let answer = node.call("POST", ROTATE, Some(&token), Some(&without), &[]);
    assert_eq!(answer.problem(422)["field"], "encryption_key");
}

#[test]
fn a_rotation_wraps_and_binds_every_encryption_key_again() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    // Leaving a key out, or binding it by the old key, is refused and changes nothing.
    let mut left_out = Rotation::new(&node, &owner.key, 1, &[]).body;
    left_out["encryption_keys"] = json!([]);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&left_out), &[]);
    assert_eq!(answer.problem(422)["field"], "encryption_keys");
    let mut old_binding = Rotation::new(&node, &owner.key, 1, &[]).body;
    old_binding["encryption_keys"][0]["binding"] = json!(
        siteid::auth::encryption_keys::sign_binding(&owner.key, &kid_of(&owner.encryption), now())
    );
    let answer = node.call("POST", ROTATE, Some(&token), Some(&old_binding), &[]);
    assert_eq!(answer.problem(422)["field"], "encryption_keys");

    let rotation = Rotation::new(&node, &owner.key, 1, &[]);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&rotation.body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (token, _) = node.login(&TestOwner {
        key: OwnerPrivateKey::from_scalar_bytes(rotation.next.scalar_bytes().as_slice())
            .expect("key"),
        ..TestOwner::from_vector()
    });
    let keys = node.call(
        "GET",
        "/api/v1/owner/encryption-keys",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(keys.status, 200, "{}", keys.body);
    let wrapped = keys.json()["keys"][0]["wrapped_key"]
        .as_str()
        .expect("wrapped")
        .to_owned();
    let opened = jwe::KwWrappedKey::parse(&wrapped)
        .and_then(|w| w.open(&jwe::encryption_kek(&rotation.next)))
        .expect("the new owner key opens the encryption key");
    assert_eq!(opened.public_key(), owner.encryption.public_key());
    assert!(
        node.audit_events(&token)
            .contains(&"encryption_key.rewrapped".to_owned())
    );
    let jwks = node.get("/.well-known/jwks.json").json();
    assert_eq!(jwks["keys"][1]["kid"], kid_of(&owner.encryption).as_str());
}

#[test]
fn a_rotation_keeps_many_credentials_and_refuses_a_credentials_key_as_the_owner_key() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    let devices: Vec<TestOwner> = (0..40).map(|_| device()).collect();
    let ids: Vec<String> = devices
        .iter()
        .map(|d| add_device(&node, &token, &owner, d, &["session"]))
        .collect();
    // A credential's key (live or revoked) cannot become the owner key.
    let stolen = OwnerPrivateKey::from_scalar_bytes(devices[0].key.scalar_bytes().as_slice())
        .expect("a key");
    let taken = Rotation::to_key(&node, &owner.key, stolen, 1, &[], Reason::Rotation);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&taken.body), &[]);
    assert_eq!(answer.problem(422)["field"], "public_key");
    // Forty bindings are far beyond the ordinary body limit; a rotation takes them all.
    let keep: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rotation = Rotation::new(&node, &owner.key, 1, &keep);
    assert!(rotation.body.to_string().len() > 16 * 1024);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&rotation.body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["revoked"], json!([]));
    let (device_token, _) = node.login(&devices[39]);
    assert_eq!(session_status(&node, &device_token), 200);
}

#[test]
fn an_owner_credential_row_narrowed_in_the_database_makes_the_node_degraded() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    assert_eq!(node.get("/api/v1/health").status, 204);
    with_store(&node.data_dir, |c| {
        c.execute(
            "UPDATE credential SET networks = '[\"10.9.9.9/32\"]' WHERE kind = 'owner'",
            [],
        )?;
        Ok(())
    });
    assert!(crate::helpers::wait_until(
        std::time::Duration::from_secs(10),
        || node.get("/api/v1/health").status == 503
    ));
    let answer = node.get("/.well-known/jwks.json");
    assert!(
        answer.problem(503)["type"]
            .as_str()
            .expect("type")
            .ends_with("owner-record-invalid")
    );
}

#[test]
fn a_rotation_does_not_bind_again_a_credential_row_someone_wrote_into_the_database() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    // A database writer plants a credential for their own key, bound by that same key.
    let thief = device();
    let id = b64::encode(&[9u8; 16]);
    let planted = credential_rows::CredentialRow {
        id: id.clone(),
        kid: kid_of(&thief.key),
        kind: "key".into(),
        alg: "ES384".into(),
        public_key: thief.key.public_key().to_json(),
        label: "planted".into(),
        capabilities: r#"["session","owner","credentials"]"#.into(),
        networks: "[]".into(),
        expires_at: None,
        binding: None,
        created_at: now(),
        updated_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    let planted = credential_rows::CredentialRow {
        binding: Some(sign_rebinding(&planted, &thief.key, now())),
        ..planted
    };
    with_store(&node.data_dir, |c| credential_rows::insert(c, &planted));
    let listed = node.call("GET", "/api/v1/credentials", Some(&token), None, &[]);
    let row = listed.json()["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .find(|c| c["id"] == id.as_str())
        .cloned()
        .expect("the planted row is listed");
    assert_eq!(row["tampered"], true);

    // A rotation that binds it again with the new key is refused; one without it revokes it.
    let laundering = Rotation::new(&node, &owner.key, 1, &[&id]);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&laundering.body), &[]);
    assert_eq!(answer.problem(422)["field"], "bindings");
    let rotation = Rotation::new(&node, &owner.key, 1, &[]);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&rotation.body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["revoked"], json!([id]));
    let assertion = thief.login_assertion(&node, &node.challenge());
    let refused = node.post_json("/api/v1/auth/login", &json!({ "assertion": assertion }));
    assert_eq!(refused.status, 401);
}

#[test]
fn a_session_that_may_not_rotate_is_refused_before_its_body_is_read() {
    use std::io::{Read, Write};
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    // Signed in, but not stepped up: the large body is never waited for.
    let (token, _) = node.login(&owner);
    let mut stream = std::net::TcpStream::connect(node.address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "POST {ROTATE} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{{",
        node.address
    )
    .expect("write");
    let mut answer = [0u8; 64];
    let read = stream
        .read(&mut answer)
        .expect("an answer without the body");
    let status = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
}

#[test]
fn a_reset_waits_like_a_password_unlock_while_the_node_wide_window_is_full() {
    let (_dir, node, _clock, owner) = crate::unlock::node_with_a_full_node_window();
    let (token, _) = node.login_stepped_up(&owner);
    // The password is a reset's only proof: it must find room in every unlock window.
    let reset = Rotation::with_reason(&node, &owner.key, 1, &[], Reason::Reset);
    let mut body = reset.body.clone();
    body["old_unlock_verifier"] = json!(owner.unlock_verifier);
    let answer = node.request_from("127.0.98.1", "POST", ROTATE, Some(&token), Some(&body));
    assert_eq!(answer.problem(429)["scope"], "node", "{}", answer.body);
    // A rotation the old key signs is not held up by guesses elsewhere.
    let rotation = Rotation::new(&node, &owner.key, 1, &[]);
    let mut body = rotation.body.clone();
    body["old_unlock_verifier"] = json!(owner.unlock_verifier);
    let answer = node.request_from("127.0.97.1", "POST", ROTATE, Some(&token), Some(&body));
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn a_compromise_stops_every_older_encryption_key_receiving() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    // A second key retires the first, which keeps receiving for its grace.
    let second = OwnerPrivateKey::generate();
    let body = owner.encryption_key_body(&second, now());
    let answer = node.call(
        "PUT",
        "/api/v1/owner/encryption-key",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let message_to = |key: &OwnerPrivateKey| {
        let message =
            siteid::jose::ecdh::encrypt_compact(key.public_key().point(), &kid_of(key), b"x", None);
        node.post_json("/api/v1/inbox", &json!({ "message": message }))
    };
    assert_eq!(message_to(&owner.encryption).status, 201);
    // A compromise brings a third key: neither older key receives any more.
    let rotation = Rotation::with_reason(&node, &owner.key, 1, &[], Reason::Compromise);
    let answer = node.call("POST", ROTATE, Some(&token), Some(&rotation.body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    for old in [&owner.encryption, &second] {
        assert_eq!(
            message_to(old).problem(422)["type"],
            "urn:siteid:problem:unknown-encryption-key"
        );
    }
}
