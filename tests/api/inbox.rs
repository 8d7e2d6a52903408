//! The encrypted inbox: the owner's encryption key published and bound, messages received with
//! strict shape checks, rates and a storage cap, and read, marked and deleted by the owner.

use serde_json::{Value, json};
use siteid::config::InboxSettings;
use siteid::jose::b64;
use siteid::jose::ecdh::{self, EncryptOptions, Envelope};
use siteid::jose::jwk::OwnerPrivateKey;
use siteid::jose::message::MessageAlg;

use crate::helpers::{NodeOptions, TestNode, TestOwner, now};

const INBOX: &str = "/api/v1/inbox";

fn claimed_node_with(inbox: Option<InboxSettings>) -> (tempfile::TempDir, TestNode, TestOwner) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            inbox,
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    (dir, node, owner)
}

fn claimed_node() -> (tempfile::TempDir, TestNode, TestOwner) {
    claimed_node_with(None)
}

fn public_of(key: &OwnerPrivateKey) -> p384::PublicKey {
    p384::PublicKey::from_sec1_bytes(&key.public_key().sec1_uncompressed()).expect("a P-384 key")
}

fn secret_of(key: &OwnerPrivateKey) -> p384::SecretKey {
    p384::SecretKey::from_slice(key.scalar_bytes().as_slice()).expect("a P-384 scalar")
}

/// A compact message to `key` holding `text`.
fn message_to(key: &OwnerPrivateKey, text: &str) -> String {
    ecdh::encrypt_compact(
        &public_of(key),
        &key.public_key().thumbprint(),
        text.as_bytes(),
        None,
    )
}

fn send(node: &TestNode, message: Value) -> crate::helpers::Answer {
    node.post_json(INBOX, &json!({ "message": message }))
}

/// Rewrites a compact JWE's protected header with `edit` (the tag no longer matches, which the
/// node cannot see: it never decrypts).
fn with_header(compact: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
    let mut header: Value =
        serde_json::from_slice(&b64::decode(&parts[0]).expect("header")).expect("JSON header");
    edit(&mut header);
    parts[0] = b64::encode(header.to_string().as_bytes());
    parts.join(".")
}

#[test]
fn the_encryption_key_is_published_beside_the_signing_key() {
    let (_dir, node, owner) = claimed_node();
    let jwks = node.get("/.well-known/jwks.json").json();
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{jwks}");
    let enc_kid = owner.encryption.public_key().thumbprint();
    let enc = keys.iter().find(|k| k["use"] == "enc").expect("an enc key");
    assert_eq!(enc["alg"], "ECDH-ES+A256KW");
    assert_eq!(enc["kid"], enc_kid);
    assert_eq!(enc["crv"], "P-384");
    assert!(enc.get("d").is_none());
    let sig = keys.iter().find(|k| k["use"] == "sig").expect("a sig key");
    assert_ne!(sig["kid"], enc["kid"], "two separate keys");

    // The key history document carries the owner key's binding of it, for devices to check.
    let history = node.get("/.well-known/siteid/keys.json").json();
    assert_eq!(history["encryption_key"]["kid"], enc_kid);
    let binding = history["encryption_key"]["binding"]
        .as_str()
        .expect("binding");
    let jws = siteid::jose::jws::CompactJws::parse(binding, "siteid-enc-key+jwt").expect("a JWS");
    let claims: Value = jws
        .verify(&owner.key.public_key())
        .expect("signed by the owner key");
    assert_eq!(claims["sub"], enc_kid);
    assert_eq!(claims["use"], "enc");

    let did = node.get("/.well-known/did.json").json();
    let agreement = did["keyAgreement"][0].as_str().expect("keyAgreement");
    assert!(agreement.ends_with(&format!("#{enc_kid}")), "{did}");
    let methods = did["verificationMethod"].as_array().expect("methods");
    assert!(methods.iter().any(|m| m["id"] == agreement));
    assert!(
        did["assertionMethod"]
            .as_array()
            .is_some_and(|a| a.iter().all(|m| m != agreement)),
        "the encryption key does not sign"
    );
}

/// A change to a claim body.
type ClaimEdit<'a> = dyn Fn(&mut Value) + 'a;

#[test]
fn a_claim_refuses_an_encryption_key_the_owner_did_not_bind() {
    let node_dir = tempfile::tempdir().expect("dir");
    let node = TestNode::start(node_dir.path(), NodeOptions::default());
    let owner = TestOwner::from_vector();
    let stranger = OwnerPrivateKey::generate();
    let token = node.claim_token();
    let cases: Vec<(&str, Box<ClaimEdit<'_>>)> = vec![
        (
            "a binding by another key",
            Box::new(|body: &mut Value| {
                let kid = owner.encryption.public_key().thumbprint();
                body["encryption_key"]["binding"] = json!(siteid::jose::jws::sign_es384(
                    &stranger,
                    &json!({"alg": "ES384", "typ": "siteid-enc-key+jwt", "kid": owner.key.public_key().thumbprint()}),
                    &json!({"sub": kid, "use": "enc", "iat": now()}),
                ));
            }),
        ),
        (
            "the signing key as encryption key",
            Box::new(|body: &mut Value| {
                body["encryption_key"]["public_key"] = owner.public_jwk.clone();
            }),
        ),
        (
            "a wrapped key naming another key",
            Box::new(|body: &mut Value| {
                let other = owner.encryption_key_body(&OwnerPrivateKey::generate(), now());
                body["encryption_key"]["wrapped_key"] = other["wrapped_key"].clone();
            }),
        ),
        (
            "an unknown member",
            Box::new(|body: &mut Value| {
                body["encryption_key"]["d"] = json!("secret");
            }),
        ),
    ];
    for (case, edit) in cases {
        let mut body = owner.claim_body(&node, &token);
        edit(&mut body);
        let answer = node.post_json("/api/v1/owner", &body);
        let field = answer.problem(422)["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            field.starts_with("encryption_key"),
            "{case}: {}",
            answer.body
        );
        assert!(!node.is_claimed(), "{case}");
    }
}

#[test]
fn a_message_is_stored_as_sent_and_read_back_by_the_owner_who_alone_can_open_it() {
    let (_dir, node, owner) = claimed_node();
    let compact = message_to(&owner.encryption, "hello from a stranger");
    let answer = send(&node, json!(compact));
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("*"),
        "other origins may send"
    );
    let id = answer.json()["id"].as_str().expect("id").to_owned();

    let general = ecdh::encrypt(
        &public_of(&owner.encryption),
        &owner.encryption.public_key().thumbprint(),
        b"a general one",
        &EncryptOptions {
            alg: MessageAlg::EcdhEs,
            envelope: Envelope::General { aad: None },
            ..EncryptOptions::default()
        },
    );
    let general_value: Value = serde_json::from_str(&general).expect("JSON");
    // Sent as raw text, so that the member order is the sender's, not the test client's.
    let answer = node.post_raw(
        INBOX,
        "application/json",
        format!(r#"{{"message": {general}}}"#).as_bytes(),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);

    assert_eq!(node.get(INBOX).problem(401)["status"], 401);
    let (token, _) = node.login(&owner);
    let list = node.call("GET", INBOX, Some(&token), None, &[]);
    assert_eq!(list.status, 200, "{}", list.body);
    let messages = list.json()["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0]["message"], general_value,
        "newest first, as sent"
    );
    assert!(
        list.body.contains(&general),
        "a general JSON message is listed byte for byte as it was received"
    );
    assert_eq!(messages[1]["message"], json!(compact));
    assert_eq!(messages[1]["size"], compact.len());
    assert!(messages[1]["read_at"].is_null());

    let fetched = node.call("GET", &format!("{INBOX}/{id}"), Some(&token), None, &[]);
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    let stored = fetched.json()["message"]
        .as_str()
        .expect("compact")
        .to_owned();
    let opened = ecdh::decrypt(&secret_of(&owner.encryption), &stored).expect("decrypts");
    assert_eq!(opened.as_slice(), b"hello from a stranger");
    let opened = ecdh::decrypt(&secret_of(&owner.encryption), &general).expect("decrypts");
    assert_eq!(opened.as_slice(), b"a general one");

    let page = node.call("GET", &format!("{INBOX}?limit=1"), Some(&token), None, &[]);
    let next = page.json()["next_before"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = node.call(
        "GET",
        &format!("{INBOX}?limit=1&before={next}"),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(rest.json()["messages"][0]["id"], id);

    let read = node.call(
        "POST",
        &format!("{INBOX}/{id}/read"),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(read.status, 204, "{}", read.body);
    let fetched = node.call("GET", &format!("{INBOX}/{id}"), Some(&token), None, &[]);
    assert!(fetched.json()["read_at"].is_i64());

    let deleted = node.call("DELETE", &format!("{INBOX}/{id}"), Some(&token), None, &[]);
    assert_eq!(deleted.status, 204);
    node.call("GET", &format!("{INBOX}/{id}"), Some(&token), None, &[])
        .problem(404);
    node.call("DELETE", &format!("{INBOX}/{id}"), Some(&token), None, &[])
        .problem(404);
    assert_eq!(
        node.audit_entry(&token, "inbox.message_deleted")["detail"]["id"],
        id
    );
}

#[test]
fn malformed_and_misaddressed_messages_are_refused_with_a_problem() {
    let (_dir, node, owner) = claimed_node_with(Some(InboxSettings {
        per_client_per_minute: 1000,
        per_minute: 1000,
        ..InboxSettings::default()
    }));
    let good = message_to(&owner.encryption, "x");
    let stranger = OwnerPrivateKey::generate();
    let off_curve = {
        let mut y = b64::decode(
            with_header(&good, |_| {})
                .split('.')
                .next()
                .map(|h| {
                    serde_json::from_slice::<Value>(&b64::decode(h).expect("b64"))
                        .expect("JSON")["epk"]["y"]
                        .as_str()
                        .expect("y")
                        .to_owned()
                })
                .expect("header")
                .as_str(),
        )
        .expect("y");
        y[47] ^= 1;
        b64::encode(&y)
    };
    let parts: Vec<&str> = good.split('.').collect();
    let cases: Vec<(&str, Value, u16)> = vec![
        (
            "wrong alg",
            json!(with_header(&good, |h| h["alg"] = json!("RSA-OAEP"))),
            422,
        ),
        (
            "wrong enc",
            json!(with_header(&good, |h| h["enc"] = json!("A128GCM"))),
            422,
        ),
        (
            "zip",
            json!(with_header(&good, |h| h["zip"] = json!("DEF"))),
            422,
        ),
        (
            "crit",
            json!(with_header(&good, |h| h["crit"] = json!(["exp"]))),
            422,
        ),
        (
            "a private epk",
            json!(with_header(&good, |h| h["epk"]["d"] = json!("AAAA"))),
            422,
        ),
        (
            "an off-curve epk",
            json!(with_header(&good, |h| h["epk"]["y"] = json!(off_curve))),
            422,
        ),
        ("four parts", json!(parts[..4].join(".")), 422),
        (
            "a short encrypted key",
            json!(format!(
                "{}.{}.{}.{}.{}",
                parts[0],
                b64::encode(&[0u8; 32]),
                parts[2],
                parts[3],
                parts[4]
            )),
            422,
        ),
        ("a number", json!(7), 422),
        ("an array", json!([good.clone()]), 422),
        (
            "flattened JSON",
            json!({"protected": parts[0], "encrypted_key": parts[1], "iv": parts[2], "ciphertext": parts[3], "tag": parts[4]}),
            422,
        ),
        (
            "two recipients",
            json!({"protected": parts[0], "recipients": [{"encrypted_key": parts[1]}, {"encrypted_key": parts[1]}], "iv": parts[2], "ciphertext": parts[3], "tag": parts[4]}),
            422,
        ),
    ];
    for (case, message, status) in cases {
        let answer = send(&node, message);
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        answer.problem(status);
    }

    let unknown = send(&node, json!(message_to(&stranger, "x")));
    assert_eq!(
        unknown.problem(422)["type"],
        "urn:siteid:problem:unknown-encryption-key"
    );

    // Duplicate members, in the request and inside a general JWE, as raw text.
    let duplicate_request = format!(r#"{{"message":"{good}","message":"{good}"}}"#);
    let answer = node.post_raw(INBOX, "application/json", duplicate_request.as_bytes());
    assert!(
        answer.status == 400 || answer.status == 422,
        "{}",
        answer.body
    );
    let duplicate_general = format!(
        r#"{{"message":{{"protected":"{}","protected":"{}","recipients":[{{"encrypted_key":"{}"}}],"iv":"{}","ciphertext":"{}","tag":"{}"}}}}"#,
        parts[0], parts[0], parts[1], parts[2], parts[3], parts[4]
    );
    let answer = node.post_raw(INBOX, "application/json", duplicate_general.as_bytes());
    assert_eq!(answer.status, 422, "{}", answer.body);

    let oversize = message_to(&owner.encryption, &"x".repeat(256 * 1024));
    assert_eq!(
        send(&node, json!(oversize)).problem(413)["type"],
        "urn:siteid:problem:body-too-large"
    );

    let (token, _) = node.login(&owner);
    let list = node.call("GET", INBOX, Some(&token), None, &[]);
    assert_eq!(list.json()["messages"], json!([]), "nothing was stored");
}

#[test]
fn anonymous_senders_are_rate_limited_per_client_and_in_total() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A clock ten seconds into a minute, moved by hand.
    let start = siteid::clock::Clock::now(&siteid::clock::SystemClock) / 60 * 60 + 10;
    let clock = siteid::clock::ManualClock::new(start);
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            clock: std::sync::Arc::new(clock.clone()),
            inbox: Some(InboxSettings {
                per_client_per_minute: 2,
                per_minute: 3,
                ..InboxSettings::default()
            }),
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let body = json!({ "message": message_to(&owner.encryption, "x") });
    let from = |source: &str| node.request_from(source, "POST", INBOX, None, Some(&body));
    assert_eq!(from("127.0.0.2").status, 201);
    assert_eq!(from("127.0.0.2").status, 201);
    let limited = from("127.0.0.2");
    let problem = limited.problem(429);
    assert_eq!(problem["type"], "urn:siteid:problem:inbox-rate-limited");
    assert_eq!(problem["scope"], "client");
    assert_eq!(limited.header("retry-after"), Some("50"));
    assert_eq!(problem["retry_after"], 50);
    // The third message of the minute from anyone uses up the node-wide rate.
    assert_eq!(from("127.0.0.3").status, 201);
    assert_eq!(from("127.0.0.4").problem(429)["scope"], "node");
    // The next minute takes messages again.
    clock.advance(50);
    assert_eq!(from("127.0.0.2").status, 201);
}

#[test]
fn the_inbox_refuses_past_its_storage_cap_and_keeps_what_it_has() {
    let (_dir, node, owner) = claimed_node_with(Some(InboxSettings {
        max_bytes: 4000,
        ..InboxSettings::default()
    }));
    let message = message_to(&owner.encryption, &"x".repeat(1200));
    let mut stored = 0;
    for _ in 0..5 {
        let answer = send(&node, json!(message));
        if answer.status == 201 {
            stored += 1;
            continue;
        }
        assert_eq!(answer.problem(507)["type"], "urn:siteid:problem:inbox-full");
        break;
    }
    assert_eq!(stored, 4000 / message.len());
    let (token, _) = node.login(&owner);
    let list = node.call("GET", INBOX, Some(&token), None, &[]);
    assert_eq!(
        list.json()["messages"].as_array().map(Vec::len),
        Some(stored),
        "nothing old was dropped"
    );
}

#[test]
fn a_new_encryption_key_retires_the_old_one_which_still_receives_and_stays_readable() {
    let (_dir, node, owner) = claimed_node();
    let (token, _) = node.login(&owner);
    let next = OwnerPrivateKey::generate();
    let body = owner.encryption_key_body(&next, now());
    let answer = node.call(
        "PUT",
        "/api/v1/owner/encryption-key",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(
        answer.problem(403)["type"],
        "urn:siteid:problem:step-up-required"
    );
    node.step_up(&owner, &token);
    let answer = node.call(
        "PUT",
        "/api/v1/owner/encryption-key",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let old_kid = owner.encryption.public_key().thumbprint();
    assert_eq!(answer.json()["retired"], old_kid);
    let again = node.call(
        "PUT",
        "/api/v1/owner/encryption-key",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(
        again.problem(409)["type"],
        "urn:siteid:problem:encryption-key-exists"
    );

    let jwks = node.get("/.well-known/jwks.json").json();
    let enc: Vec<&Value> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["use"] == "enc")
        .collect();
    assert_eq!(enc.len(), 1);
    assert_eq!(enc[0]["kid"], next.public_key().thumbprint());
    assert_eq!(send(&node, json!(message_to(&next, "new"))).status, 201);
    assert_eq!(
        send(&node, json!(message_to(&owner.encryption, "old"))).status,
        201,
        "a sender with the old JWKS still gets through"
    );

    let keys = node.call(
        "GET",
        "/api/v1/owner/encryption-keys",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(keys.status, 200, "{}", keys.body);
    let keys = keys.json()["keys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["kid"], next.public_key().thumbprint());
    assert!(keys[0]["retired_at"].is_null());
    assert_eq!(keys[1]["kid"], old_kid);
    assert!(keys[1]["retired_at"].is_i64());
    // Both open with the owner key alone.
    let kek = siteid::jose::jwe::encryption_kek(&owner.key);
    for (entry, key) in keys.iter().zip([&next, &owner.encryption]) {
        let wrapped =
            siteid::jose::jwe::KwWrappedKey::parse(entry["wrapped_key"].as_str().expect("jwe"))
                .expect("a wrapped key");
        let opened = wrapped.open(&kek).expect("opens");
        assert_eq!(opened.public_key(), key.public_key());
    }
}

#[test]
fn a_new_message_is_announced_on_the_owners_socket() {
    let (_dir, node, owner) = claimed_node();
    let mut socket = crate::credentials::signed_in_socket_with(&node, &|nonce| {
        owner.login_assertion(&node, nonce)
    });
    let answer = send(&node, json!(message_to(&owner.encryption, "ping")));
    let id = answer.json()["id"].as_str().expect("id").to_owned();
    loop {
        match socket.read().expect("a frame") {
            tungstenite::Message::Text(text) => {
                let event: Value = serde_json::from_str(text.as_str()).expect("JSON");
                assert_eq!(
                    event,
                    json!({"type": "event", "event": "inbox.message", "id": id})
                );
                break;
            }
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => panic!("expected the event, got {other:?}"),
        }
    }
}

#[test]
fn a_node_without_an_encryption_key_takes_no_messages() {
    let dir = tempfile::tempdir().expect("dir");
    let node = TestNode::start(dir.path(), NodeOptions::default());
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    let mut body = owner.claim_body(&node, &token);
    body.as_object_mut()
        .expect("object")
        .remove("encryption_key");
    assert_eq!(node.post_json("/api/v1/owner", &body).status, 201);
    let keys = node.get("/.well-known/jwks.json").json();
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        send(&node, json!(message_to(&owner.encryption, "x"))).problem(404)["type"],
        "urn:siteid:problem:no-encryption-key"
    );
}

#[test]
fn sender_keys_come_from_the_senders_jwks_for_the_owner_only() {
    let (_dir, node, owner) = claimed_node();
    let (sender_dir, sender, _) = claimed_node();
    let (token, _) = node.login(&owner);
    let path = format!("{INBOX}/sender-keys?iss={}", sender.base_url);
    assert_eq!(node.get(&path).problem(401)["status"], 401);
    let answer = node.call("GET", &path, Some(&token), None, &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let keys = answer.json();
    assert_eq!(keys["iss"], sender.base_url.as_str());
    assert_eq!(
        keys["keys"],
        sender.get("/.well-known/jwks.json").json()["keys"]
    );
    assert_eq!(keys["inbox"], format!("{}/api/v1/inbox", sender.base_url));
    for bad in [
        "ftp://127.0.0.1/",
        "http://user:pw@127.0.0.1/",
        "http://127.0.0.1/blog",
        "not a url",
    ] {
        let answer = node.call(
            "GET",
            &format!("{INBOX}/sender-keys?iss={}", bad.replace(' ', "%20")),
            Some(&token),
            None,
            &[],
        );
        assert_eq!(answer.problem(422)["field"], "iss", "{bad}");
    }
    // A site that answers with no JWKS: 502.
    drop(sender_dir);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = silent.local_addr().expect("address").port();
    drop(silent);
    let answer = node.call(
        "GET",
        &format!("{INBOX}/sender-keys?iss=http://127.0.0.1:{port}"),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(
        answer.problem(502)["type"],
        "urn:siteid:problem:sender-keys-unavailable"
    );
}

#[test]
fn a_node_on_a_public_url_fetches_sender_keys_over_https_and_never_from_loopback() {
    let (_dir, node) = crate::helpers::spawn_public_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login(&owner);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();
    // Only loopback targets, which a listener here would see: private, link-local and other
    // addresses are refused by `net::outbound_refusal`, tested as a unit.
    for iss in [
        format!("http://127.0.0.1:{port}"),
        format!("https://127.0.0.1:{port}"),
        format!("https://[::ffff:127.0.0.1]:{port}"),
    ] {
        let answer = node.call(
            "GET",
            &format!("{INBOX}/sender-keys?iss={iss}"),
            Some(&token),
            None,
            &[],
        );
        assert_eq!(
            answer.problem(422)["field"],
            "iss",
            "{iss}: {}",
            answer.body
        );
    }
    assert!(
        listener.accept().is_err(),
        "the node connected to a loopback address"
    );
}

#[test]
fn a_sender_s_node_key_is_never_taken_for_its_owner_key() {
    let (_dir, node, owner) = claimed_node();
    let (_sender_dir, sender, sender_owner) = claimed_node();
    let node_kid = sender.get("/.well-known/siteid/node-key.json").json()["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let (sender_token, _) = sender.login(&sender_owner);
    crate::node_key::bind_node_key(&sender, &sender_token, &sender_owner, &node_kid);
    let published: Vec<Value> = sender.get("/.well-known/jwks.json").json()["keys"]
        .as_array()
        .expect("keys")
        .clone();
    assert!(published.iter().any(|key| key["kid"] == node_kid.as_str()));
    let (token, _) = node.login(&owner);
    let path = format!("{INBOX}/sender-keys?iss={}", sender.base_url);
    let keys = node.call("GET", &path, Some(&token), None, &[]).json();
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|key| key["kid"].as_str())
        .collect();
    assert!(!kids.contains(&node_kid.as_str()), "{kids:?}");
    assert!(kids.contains(&sender_owner.key.public_key().thumbprint().as_str()));
    assert_eq!(kids.len(), published.len() - 1);
}
