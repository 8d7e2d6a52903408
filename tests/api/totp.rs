//! TOTP as the second factor of password unlock: setup and confirmation, unlock with a code,
//! without one and with a wrong, replayed or drifted one, recovery codes, turning it off, the
//! step-up every change needs, the throttle, and a database that never holds the secret. Codes
//! are computed with the `totp-lite` crate from the secret the setup returned, independently
//! of the node's own code, on the node's hand-driven clock.

use serde_json::{Value, json};
use siteid::clock::{Clock, ManualClock};
use siteid::jose::b64;
use totp_lite::{Sha1, totp_custom};

use crate::helpers::{Answer, TestNode, TestOwner, spawn_node, spawn_node_with_clock};

const STEP: i64 = 30;

/// RFC 4648 base32 without padding, as the setup returns the secret.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base32") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// The 6-digit code of `secret` at `at` (seconds since the epoch).
fn code_at(secret: &[u8], at: i64) -> String {
    totp_custom::<Sha1>(
        STEP as u64,
        6,
        secret,
        u64::try_from(at).expect("after 1970"),
    )
}

/// A claimed node on a hand-driven clock with a stepped-up owner session.
struct Fixture {
    _dir: tempfile::TempDir,
    node: TestNode,
    clock: ManualClock,
    owner: TestOwner,
    token: String,
}

fn fixture() -> Fixture {
    let (dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_at(&owner, clock.now());
    node.step_up_at(&owner, &token, clock.now());
    Fixture {
        _dir: dir,
        node,
        clock,
        owner,
        token,
    }
}

impl Fixture {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.node.call(method, path, Some(&self.token), body, &[])
    }

    /// DELETE with a JSON body (the HTTP client sends none with DELETE).
    fn delete_totp(&self, body: &Value) -> Answer {
        self.node.request_from(
            "127.0.0.1",
            "DELETE",
            "/api/v1/totp",
            Some(&self.token),
            Some(body),
        )
    }

    fn step_up(&self) {
        self.node
            .step_up_at(&self.owner, &self.token, self.clock.now());
    }

    /// Starts a setup; returns the secret's bytes and the answer's body.
    fn setup(&self) -> (Vec<u8>, Value) {
        let answer = self.call("POST", "/api/v1/totp/setup", None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.json();
        let secret = body["secret"].as_str().expect("secret");
        (base32_decode(secret), body)
    }

    /// Turns TOTP on; returns the secret and the ten recovery codes. The confirming code is of
    /// the current step, so that step is used.
    fn enable(&self) -> (Vec<u8>, Vec<String>) {
        let (secret, _) = self.setup();
        let answer = self.call(
            "POST",
            "/api/v1/totp/confirm",
            Some(&json!({ "totp": code_at(&secret, self.clock.now()) })),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let codes = answer.json()["recovery_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("a code").to_owned())
            .collect();
        (secret, codes)
    }

    /// Unlocks without a session, with `extra` members beside the right verifier.
    fn unlock(&self, extra: Value) -> Answer {
        let mut body = json!({ "unlock_verifier": self.owner.unlock_verifier });
        for (name, value) in extra.as_object().expect("members") {
            body[name] = value.clone();
        }
        self.node.post_json("/api/v1/unlock", &body)
    }

    fn status(&self) -> Value {
        let answer = self.call("GET", "/api/v1/totp", None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    }
}

fn problem_type(answer: &Answer, status: u16) -> String {
    answer.problem(status)["type"]
        .as_str()
        .expect("type")
        .trim_start_matches("urn:siteid:problem:")
        .to_owned()
}

#[test]
fn turning_totp_on_takes_a_setup_and_a_confirming_code_and_then_unlock_needs_a_code() {
    let f = fixture();
    assert_eq!(
        f.status(),
        json!({"enabled": false, "enabled_at": null, "recovery_codes_left": 0})
    );
    let (secret, setup) = f.setup();
    assert_eq!(secret.len(), 20, "a 160-bit secret");
    let uri = setup["otpauth_uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/127.0.0.1%3A"), "{uri}");
    assert!(
        uri.contains(&format!(
            "secret={}&",
            setup["secret"].as_str().expect("secret")
        )) && uri.ends_with("&algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );
    let svg = setup["qr_svg"].as_str().expect("svg");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "));
    assert_eq!(svg.matches('<').count(), 3, "one path and nothing else");
    assert_eq!(
        f.status()["enabled"],
        false,
        "a setup alone does not turn it on"
    );
    assert_eq!(
        f.unlock(json!({})).status,
        200,
        "a pending setup asks for nothing"
    );

    let wrong = f.call(
        "POST",
        "/api/v1/totp/confirm",
        Some(&json!({"totp": "000000"})),
    );
    if code_at(&secret, f.clock.now()) != "000000" {
        assert_eq!(problem_type(&wrong, 401), "totp-invalid");
    }
    let confirmed = f.call(
        "POST",
        "/api/v1/totp/confirm",
        Some(&json!({ "totp": code_at(&secret, f.clock.now()) })),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let codes = confirmed.json()["recovery_codes"].clone();
    let codes: Vec<&str> = codes
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code"))
        .collect();
    assert_eq!(codes.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 19, "{code}");
        assert!(
            code.split('-').all(|group| group.len() == 4
                && group
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())),
            "{code}"
        );
    }
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    let status = f.status();
    assert_eq!(status["enabled"], true);
    assert_eq!(status["enabled_at"], f.clock.now());
    assert_eq!(status["recovery_codes_left"], 10);
    assert_eq!(
        f.node.audit_entry(&f.token, "totp.enabled")["detail"]["secret_id"]
            .as_str()
            .map(str::len),
        Some(43),
        "the salted SHA-256 of the secret names it"
    );
    assert_eq!(
        problem_type(
            &f.call(
                "POST",
                "/api/v1/totp/confirm",
                Some(&json!({ "totp": code_at(&secret, f.clock.now()) }))
            ),
            409
        ),
        "totp-enabled"
    );
    assert_eq!(
        problem_type(&f.call("POST", "/api/v1/totp/setup", None), 409),
        "totp-enabled"
    );

    let missing = f.unlock(json!({}));
    assert_eq!(problem_type(&missing, 401), "totp-required");
    // The confirming code's step is used; the next step's code unlocks.
    f.clock.advance(STEP);
    let right = f.unlock(json!({ "totp": code_at(&secret, f.clock.now()) }));
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(right.json()["wrapped_key"], f.owner.wrapped_key.as_str());
    assert!(right.json().get("recovery_codes_left").is_none());
    assert_eq!(
        f.node.audit_entry(&f.token, "unlock.succeeded")["detail"]["second_factor"],
        "totp"
    );
}

#[test]
fn with_totp_off_a_totp_member_is_ignored() {
    let f = fixture();
    let answer = f.unlock(json!({"totp": "000000"}));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = f.unlock(json!({"recovery_code": "not a code"}));
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn a_used_code_is_refused_and_one_step_either_side_is_accepted() {
    let f = fixture();
    let (secret, _) = f.enable();
    let confirmed_at = f.clock.now();
    assert_eq!(
        problem_type(
            &f.unlock(json!({ "totp": code_at(&secret, confirmed_at) })),
            401
        ),
        "totp-invalid",
        "the confirming code was used"
    );
    f.clock.advance(2 * STEP);
    let now = f.clock.now();
    let earlier = code_at(&secret, now - STEP);
    assert_eq!(
        f.unlock(json!({ "totp": earlier })).status,
        200,
        "one step back"
    );
    assert_eq!(
        problem_type(&f.unlock(json!({ "totp": earlier })), 401),
        "totp-invalid",
        "a replay"
    );
    let later = code_at(&secret, now + STEP);
    let two_ahead = code_at(&secret, now + 2 * STEP);
    if two_ahead != later {
        assert_eq!(
            problem_type(&f.unlock(json!({ "totp": two_ahead })), 401),
            "totp-invalid",
            "two steps ahead"
        );
    }
    let spaced = format!("{} {}", &later[..3], &later[3..]);
    assert_eq!(
        f.unlock(json!({ "totp": spaced })).status,
        200,
        "one step ahead"
    );
    assert_eq!(
        problem_type(&f.unlock(json!({ "totp": code_at(&secret, now) })), 401),
        "totp-invalid",
        "a code older than the last one used"
    );
    f.clock.advance(4 * STEP);
    let three_back = code_at(&secret, f.clock.now() - 3 * STEP);
    if three_back != code_at(&secret, f.clock.now()) {
        assert_eq!(
            problem_type(&f.unlock(json!({ "totp": three_back })), 401),
            "totp-invalid",
            "two steps back and more"
        );
    }
}

#[test]
fn concurrent_unlocks_with_one_code_release_the_key_once() {
    let f = fixture();
    let (secret, _) = f.enable();
    f.clock.advance(STEP);
    let body = json!({
        "unlock_verifier": f.owner.unlock_verifier,
        "totp": code_at(&secret, f.clock.now()),
    });
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| f.node.post_json("/api/v1/unlock", &body).status))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

#[test]
fn wrong_and_missing_codes_count_in_the_throttle_and_are_audited() {
    let f = fixture();
    let (secret, _) = f.enable();
    f.clock.advance(STEP);
    let right = code_at(&secret, f.clock.now());
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    assert_eq!(problem_type(&f.unlock(json!({})), 401), "totp-required");
    for attempt in 0..9 {
        let answer = f.unlock(json!({ "totp": wrong }));
        assert_eq!(
            problem_type(&answer, 401),
            "totp-invalid",
            "attempt {attempt}"
        );
    }
    let throttled = f.unlock(json!({ "totp": right }));
    assert_eq!(problem_type(&throttled, 429), "too-many-attempts");
    assert_eq!(throttled.problem(429)["scope"], "client");
    // The summaries are written once their minute has ended.
    f.clock.advance(60);
    let failed = f.node.wait_for_audit_entry(&f.token, "unlock.failed");
    assert_eq!(failed["detail"]["count"], 10);
    assert_eq!(failed["detail"]["reason"], "totp_invalid");
}

#[test]
fn a_wrong_verifier_is_answered_first_and_does_not_use_the_code() {
    let f = fixture();
    let (secret, codes) = f.enable();
    f.clock.advance(STEP);
    let code = code_at(&secret, f.clock.now());
    let wrong_verifier = json!({
        "unlock_verifier": b64::encode(&[7u8; 32]),
        "totp": code,
    });
    assert_eq!(
        problem_type(&f.node.post_json("/api/v1/unlock", &wrong_verifier), 401),
        "wrong-unlock-verifier"
    );
    let with_recovery = json!({
        "unlock_verifier": b64::encode(&[7u8; 32]),
        "recovery_code": codes[0],
    });
    assert_eq!(
        problem_type(&f.node.post_json("/api/v1/unlock", &with_recovery), 401),
        "wrong-unlock-verifier"
    );
    assert_eq!(f.unlock(json!({ "totp": code })).status, 200);
    assert_eq!(f.status()["recovery_codes_left"], 10);
}

#[test]
fn a_recovery_code_unlocks_once_in_place_of_a_code() {
    let f = fixture();
    let (secret, codes) = f.enable();
    let first = f.unlock(json!({ "recovery_code": codes[0] }));
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["recovery_codes_left"], 9);
    assert_eq!(
        problem_type(&f.unlock(json!({ "recovery_code": codes[0] })), 401),
        "totp-invalid",
        "used up"
    );
    let typed = codes[1].replace('-', " ").to_uppercase();
    let second = f.unlock(json!({ "recovery_code": typed }));
    assert_eq!(second.status, 200, "any case and spaces: {}", second.body);
    assert_eq!(second.json()["recovery_codes_left"], 8);
    assert_eq!(f.status()["recovery_codes_left"], 8);
    let used = f.node.audit_entry(&f.token, "totp.recovery_code_used");
    assert_eq!(used["detail"]["left"], 8);
    assert_eq!(
        f.node.audit_entry(&f.token, "unlock.succeeded")["detail"]["second_factor"],
        "recovery_code"
    );
    let both = f.unlock(json!({
        "totp": code_at(&secret, f.clock.now() + STEP),
        "recovery_code": codes[2],
    }));
    assert_eq!(problem_type(&both, 400), "ambiguous-second-factor");
    assert_eq!(f.status()["recovery_codes_left"], 8, "nothing was used");
}

#[test]
fn new_recovery_codes_need_a_code_and_void_the_old_ones() {
    let f = fixture();
    let (secret, old) = f.enable();
    let wrong = f.call(
        "POST",
        "/api/v1/totp/recovery-codes",
        Some(&json!({"totp": "abcdef"})),
    );
    assert_eq!(problem_type(&wrong, 401), "totp-invalid");
    f.clock.advance(STEP);
    let answer = f.call(
        "POST",
        "/api/v1/totp/recovery-codes",
        Some(&json!({ "totp": code_at(&secret, f.clock.now()) })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let new = answer.json()["recovery_codes"].clone();
    assert_eq!(new.as_array().map(Vec::len), Some(10));
    assert_eq!(
        problem_type(&f.unlock(json!({ "recovery_code": old[0] })), 401),
        "totp-invalid"
    );
    assert_eq!(f.unlock(json!({ "recovery_code": new[0] })).status, 200);
    assert!(
        f.node
            .audit_events(&f.token)
            .contains(&"totp.recovery_codes_replaced".to_owned())
    );
}

#[test]
fn every_change_needs_a_stepped_up_owner_session() {
    let f = fixture();
    let (secret, codes) = f.enable();
    // Without a session.
    assert_eq!(
        problem_type(&f.node.get("/api/v1/totp"), 401),
        "unauthenticated"
    );
    assert_eq!(
        problem_type(
            &f.node.call("POST", "/api/v1/totp/setup", None, None, &[]),
            401
        ),
        "unauthenticated"
    );
    // A session past its step-up window reads the status but changes nothing.
    f.clock.advance(301);
    assert_eq!(f.status()["enabled"], true);
    let code = json!({ "totp": code_at(&secret, f.clock.now()) });
    for answer in [
        f.call("POST", "/api/v1/totp/setup", None),
        f.call("POST", "/api/v1/totp/confirm", Some(&code)),
        f.call("POST", "/api/v1/totp/recovery-codes", Some(&code)),
        f.delete_totp(&code),
    ] {
        assert_eq!(problem_type(&answer, 403), "step-up-required");
    }
    assert_eq!(f.status()["enabled"], true);
    // Stepped up, turning it off still needs a right code.
    f.step_up();
    assert_eq!(
        problem_type(&f.delete_totp(&json!({"totp": "12345x"})), 401),
        "totp-invalid"
    );
    assert_eq!(
        problem_type(
            &f.delete_totp(&json!({"recovery_code": "0000-0000-0000-0000"})),
            401
        ),
        "totp-invalid"
    );
    assert_eq!(f.delete_totp(&json!({})).problem(422)["field"], "totp");
    assert_eq!(f.status()["enabled"], true);
    let off = f.delete_totp(&json!({ "recovery_code": codes[3] }));
    assert_eq!(off.status, 204, "{}", off.body);
    assert_eq!(
        f.status(),
        json!({"enabled": false, "enabled_at": null, "recovery_codes_left": 0})
    );
    assert_eq!(
        f.node.audit_entry(&f.token, "totp.disabled")["detail"]["with"],
        "recovery_code"
    );
    assert_eq!(f.unlock(json!({})).status, 200, "the password alone again");
    assert_eq!(problem_type(&f.delete_totp(&code), 409), "totp-not-enabled");
}

#[test]
fn turning_totp_off_with_a_current_code_works() {
    let f = fixture();
    let (secret, _) = f.enable();
    f.clock.advance(STEP);
    let off = f.delete_totp(&json!({ "totp": code_at(&secret, f.clock.now()) }));
    assert_eq!(off.status, 204, "{}", off.body);
    assert_eq!(f.status()["enabled"], false);
}

#[test]
fn a_freshly_stepped_up_owner_session_stands_in_for_the_code() {
    let f = fixture();
    f.enable();
    let body = json!({ "unlock_verifier": f.owner.unlock_verifier });
    let answer = f
        .node
        .call("POST", "/api/v1/unlock", Some(&f.token), Some(&body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        f.node.audit_entry(&f.token, "unlock.succeeded")["detail"]["second_factor"],
        "session"
    );
    assert_eq!(
        problem_type(&f.node.post_json("/api/v1/unlock", &body), 401),
        "totp-required",
        "without the session"
    );
    // A session whose step-up is over is a token alone: it does not stand in.
    f.clock.advance(301);
    let stale = f
        .node
        .call("POST", "/api/v1/unlock", Some(&f.token), Some(&body), &[]);
    assert_eq!(
        problem_type(&stale, 401),
        "totp-required",
        "a stale session"
    );
}

#[test]
fn the_database_never_holds_the_secret() {
    let f = fixture();
    let (_, setup) = f.setup();
    let secret_text = setup["secret"].as_str().expect("secret").to_owned();
    let secret = base32_decode(&secret_text);
    f.call(
        "POST",
        "/api/v1/totp/confirm",
        Some(&json!({ "totp": code_at(&secret, f.clock.now()) })),
    );
    assert_eq!(f.status()["enabled"], true);
    let data_dir = f.node.data_dir.clone();
    let key = std::fs::read(data_dir.join("sealing.key")).expect("the sealing key file");
    assert_eq!(key.len(), 32);
    let mut searched = 0;
    for entry in std::fs::read_dir(&data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("siteid.sqlite3") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        searched += 1;
        for needle in [
            secret.as_slice(),
            secret_text.as_bytes(),
            secret_text.to_lowercase().as_bytes(),
            b64::encode(&secret).as_bytes(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{name} holds the secret"
            );
        }
    }
    assert!(searched >= 1, "the database files were searched");
}

#[test]
fn bad_input_is_a_problem() {
    let f = fixture();
    assert_eq!(
        problem_type(
            &f.call(
                "POST",
                "/api/v1/totp/confirm",
                Some(&json!({"totp": "123456"}))
            ),
            409
        ),
        "totp-not-pending"
    );
    f.setup();
    for (body, field) in [
        (json!({"totp": 123456}), "totp"),
        (json!({"code": "123456"}), "code"),
        (json!({}), "totp"),
        (json!({"totp": "123456", "extra": 1}), "extra"),
    ] {
        let answer = f.call("POST", "/api/v1/totp/confirm", Some(&body));
        assert_eq!(answer.problem(422)["field"], field, "{body}");
    }
    let text = f.node.call(
        "POST",
        "/api/v1/totp/confirm",
        Some(&f.token),
        None,
        &[("content-type", "text/plain")],
    );
    assert_eq!(problem_type(&text, 415), "unsupported-media-type");
    assert_eq!(
        problem_type(&f.call("PUT", "/api/v1/totp", Some(&json!({}))), 405),
        "method-not-allowed"
    );
    let unlock = f.node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": f.owner.unlock_verifier, "totp": 123456}),
    );
    assert_eq!(unlock.problem(422)["field"], "totp");
    let (secret, _) = {
        let confirmed = f.call(
            "POST",
            "/api/v1/totp/confirm",
            Some(&json!({ "totp": "１２３４５６" })),
        );
        assert_eq!(problem_type(&confirmed, 401), "totp-invalid");
        f.setup()
    };
    let ok = f.call(
        "POST",
        "/api/v1/totp/confirm",
        Some(&json!({ "totp": code_at(&secret, f.clock.now()) })),
    );
    assert_eq!(
        ok.status, 200,
        "a new setup replaced the old one: {}",
        ok.body
    );
    for member in [json!("x".repeat(10_000)), json!(""), json!("12 34 56 78")] {
        let answer = f.unlock(json!({ "totp": member }));
        assert_eq!(problem_type(&answer, 401), "totp-invalid");
    }
}

#[test]
fn a_setup_not_confirmed_in_fifteen_minutes_lapses() {
    let f = fixture();
    let (secret, _) = f.setup();
    f.clock.advance(15 * 60);
    f.step_up();
    let late = f.call(
        "POST",
        "/api/v1/totp/confirm",
        Some(&json!({ "totp": code_at(&secret, f.clock.now()) })),
    );
    assert_eq!(problem_type(&late, 409), "totp-not-pending");
}

#[test]
fn an_unclaimed_node_has_no_totp_to_change() {
    let (_dir, node) = spawn_node();
    assert_eq!(
        problem_type(&node.get("/api/v1/totp"), 401),
        "unauthenticated"
    );
}

#[test]
fn a_database_restored_without_its_sealing_key_takes_only_recovery_codes() {
    let f = fixture();
    let (secret, codes) = f.enable();
    let Fixture {
        _dir: dir,
        node,
        clock,
        owner,
        ..
    } = f;
    node.stop();
    std::fs::remove_file(dir.path().join("sealing.key")).expect("remove the key");
    let node = TestNode::start(
        dir.path(),
        crate::helpers::NodeOptions {
            clock: std::sync::Arc::new(clock.clone()),
            ..Default::default()
        },
    );
    clock.advance(STEP);
    let body = |extra: Value| {
        let mut body = json!({ "unlock_verifier": owner.unlock_verifier });
        for (name, value) in extra.as_object().expect("members") {
            body[name] = value.clone();
        }
        body
    };
    let code = json!({ "totp": code_at(&secret, clock.now()) });
    let refused = node.post_json("/api/v1/unlock", &body(code.clone()));
    assert_eq!(problem_type(&refused, 503), "totp-unavailable");
    let recovered = node.post_json(
        "/api/v1/unlock",
        &body(json!({ "recovery_code": codes[0] })),
    );
    assert_eq!(recovered.status, 200, "{}", recovered.body);
    let (token, _) = node.login_at(&owner, clock.now());
    node.step_up_at(&owner, &token, clock.now());
    let off = node.request_from(
        "127.0.0.1",
        "DELETE",
        "/api/v1/totp",
        Some(&token),
        Some(&json!({ "recovery_code": codes[1] })),
    );
    assert_eq!(off.status, 204, "{}", off.body);
    assert_eq!(node.post_json("/api/v1/unlock", &body(code)).status, 200);
}

#[test]
fn the_server_can_turn_totp_off_for_an_owner_who_lost_every_code() {
    let f = fixture();
    f.enable();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_siteid"))
            .args(["totp-disable", "--data-dir"])
            .arg(&f.node.data_dir)
            .output()
            .expect("the binary runs")
    };
    let output = run();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("Two-step unlock is off"));
    assert_eq!(f.status()["enabled"], false);
    let entry = f.node.audit_entry(&f.token, "totp.disabled");
    assert_eq!(entry["detail"]["with"], "command_line");
    assert_eq!(entry["detail"]["session_id"], Value::Null);
    // The password alone unlocks again.
    let body = json!({ "unlock_verifier": f.owner.unlock_verifier });
    assert_eq!(f.node.post_json("/api/v1/unlock", &body).status, 200);
    let again = run();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("was not on"));
}
