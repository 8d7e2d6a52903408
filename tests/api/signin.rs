//! Sign-in over REST: every rule a login assertion must pass, replay protection keyed on the
//! nonce, the per-client throttle without a node-wide cap, and the access token's separation
//! from assertions.

use std::net::TcpListener;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use siteid::clock::{Clock, ManualClock, SystemClock};
use siteid::jose::b64;
use siteid::jose::jwk::OwnerPrivateKey;

use crate::helpers::{NodeOptions, TestNode, TestOwner, now, spawn_node, spawn_node_with_clock};

const P384_ORDER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

fn claimed_node() -> (tempfile::TempDir, TestNode, TestOwner) {
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    (dir, node, owner)
}

fn login_with(node: &TestNode, assertion: &str) -> crate::helpers::Answer {
    node.post_json("/api/v1/auth/login", &json!({ "assertion": assertion }))
}

fn encode_json(value: &Value) -> String {
    b64::encode(value.to_string().as_bytes())
}

fn with(mut value: Value, member: &str, new: Value) -> Value {
    value[member] = new;
    value
}

/// Replaces the signature of `token` with `signature`.
fn resign(token: &str, signature: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').expect("three parts");
    format!("{input}.{}", b64::encode(signature))
}

/// The same ECDSA signature with s replaced by n - s: just as valid, different bytes.
fn malleate(token: &str) -> String {
    let (_, signature) = token.rsplit_once('.').expect("three parts");
    let bytes = b64::decode(signature).expect("b64");
    let signature = p384::ecdsa::Signature::from_slice(&bytes).expect("signature");
    let (r, s) = signature.split_scalars();
    let negated = -*s.as_ref();
    let flipped = p384::ecdsa::Signature::from_scalars(r.to_bytes(), negated.to_bytes())
        .expect("n - s is in range");
    assert_ne!(flipped.to_bytes().to_vec(), bytes);
    resign(token, &flipped.to_bytes())
}

#[test]
fn a_valid_assertion_signs_in_and_the_session_answers() {
    let (_dir, node, owner) = claimed_node();
    let assertion = owner.login_assertion(&node, &node.challenge());
    let answer = login_with(&node, &assertion);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1800);
    let token = body["access_token"].as_str().expect("token");
    let session = node.call("GET", "/api/v1/session", Some(token), None, &[]);
    assert_eq!(session.status, 200, "{}", session.body);
    let session = session.json();
    assert_eq!(session["session_id"], body["session_id"]);
    assert_eq!(session["kid"], owner.key.public_key().thumbprint().as_str());
    assert!(session["expires_at"].as_i64() > session["created_at"].as_i64());
}

/// Every way a login assertion can break the rules, each over a nonce from `next_nonce`.
/// `jku` is a URL that no request may ever reach.
pub fn bad_assertions(
    node: &TestNode,
    owner: &TestOwner,
    jku: &str,
    mut next_nonce: impl FnMut() -> String,
) -> Vec<(String, String)> {
    let jku = jku.to_owned();
    let kid = owner.key.public_key().thumbprint();
    let t = now();
    let header = json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": kid});
    let stranger = TestOwner {
        key: OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut case = |why: &str, make: &dyn Fn(&str) -> String| {
        let nonce = next_nonce();
        cases.push((why.to_owned(), make(&nonce)));
    };
    let claims =
        |nonce: &str| json!({"aud": node.base_url, "nonce": nonce, "iat": t, "exp": t + 300});
    let hs256 = |nonce: &str, secret: &[u8]| {
        let input = format!(
            "{}.{}",
            encode_json(&with(header.clone(), "alg", json!("HS256"))),
            encode_json(&claims(nonce))
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("key");
        mac.update(input.as_bytes());
        format!("{input}.{}", b64::encode(&mac.finalize().into_bytes()))
    };
    let public_json = owner.public_jwk.to_string();
    let sec1 = owner.key.public_key().sec1_uncompressed();
    case("alg none", &|n| {
        format!(
            "{}.{}.",
            encode_json(&with(header.clone(), "alg", json!("none"))),
            encode_json(&claims(n))
        )
    });
    case("HS256 keyed with the public JWK", &|n| {
        hs256(n, public_json.as_bytes())
    });
    case("HS256 keyed with the SEC1 point", &|n| hs256(n, &sec1));
    for alg in [
        "HS384", "ES256", "ES512", "RS256", "PS384", "es384", "Es384", "ES384 ", "EdDSA",
    ] {
        let alg = alg.to_owned();
        case(&format!("alg {alg:?}"), &|n| {
            owner.sign(with(header.clone(), "alg", json!(alg)), claims(n))
        });
    }
    case("typ JWT", &|n| {
        owner.sign(with(header.clone(), "typ", json!("JWT")), claims(n))
    });
    case("typ of a claim proof", &|n| {
        owner.sign(
            with(header.clone(), "typ", json!("siteid-claim+jwt")),
            claims(n),
        )
    });
    case("no typ", &|n| {
        owner.sign(json!({"alg": "ES384", "kid": kid}), claims(n))
    });
    case("no kid", &|n| {
        owner.sign(
            json!({"alg": "ES384", "typ": "siteid-login+jwt"}),
            claims(n),
        )
    });
    case("an unknown kid", &|n| {
        owner.sign(with(header.clone(), "kid", json!("AAAA")), claims(n))
    });
    case("a kid that is a path", &|n| {
        owner.sign(
            with(header.clone(), "kid", json!("../../../etc/passwd")),
            claims(n),
        )
    });
    case("a kid that is a URL", &|n| {
        owner.sign(with(header.clone(), "kid", json!(jku.clone())), claims(n))
    });
    case("a jwk header", &|n| {
        stranger.sign(
            with(header.clone(), "jwk", stranger.public_jwk.clone()),
            claims(n),
        )
    });
    case("a jku header", &|n| {
        owner.sign(with(header.clone(), "jku", json!(jku.clone())), claims(n))
    });
    case("an x5u header", &|n| {
        owner.sign(with(header.clone(), "x5u", json!(jku.clone())), claims(n))
    });
    case("an x5c header", &|n| {
        owner.sign(with(header.clone(), "x5c", json!(["MIIB"])), claims(n))
    });
    case("a crit header", &|n| {
        owner.sign(with(header.clone(), "crit", json!(["exp"])), claims(n))
    });
    case("an empty crit header", &|n| {
        owner.sign(with(header.clone(), "crit", json!([])), claims(n))
    });
    case("signed by another key", &|n| {
        stranger.sign(header.clone(), claims(n))
    });
    case("a DER signature", &|n| {
        let token = owner.sign(header.clone(), claims(n));
        let raw = b64::decode(token.rsplit_once('.').expect("sig").1).expect("b64");
        let der = p384::ecdsa::Signature::from_slice(&raw)
            .expect("sig")
            .to_der();
        resign(&token, der.as_bytes())
    });
    case("a 95-byte signature", &|n| {
        let token = owner.sign(header.clone(), claims(n));
        let raw = b64::decode(token.rsplit_once('.').expect("sig").1).expect("b64");
        resign(&token, &raw[..95])
    });
    case("r = 0", &|n| {
        let token = owner.sign(header.clone(), claims(n));
        let mut raw = b64::decode(token.rsplit_once('.').expect("sig").1).expect("b64");
        raw[..48].fill(0);
        resign(&token, &raw)
    });
    case("s = 0", &|n| {
        let token = owner.sign(header.clone(), claims(n));
        let mut raw = b64::decode(token.rsplit_once('.').expect("sig").1).expect("b64");
        raw[48..].fill(0);
        resign(&token, &raw)
    });
    case("r = n", &|n| {
        let token = owner.sign(header.clone(), claims(n));
        let mut raw = b64::decode(token.rsplit_once('.').expect("sig").1).expect("b64");
        raw[..48].copy_from_slice(&crate::helpers::hex(P384_ORDER));
        resign(&token, &raw)
    });
    case("another audience", &|n| {
        owner.sign(
            header.clone(),
            with(claims(n), "aud", json!("https://other.example")),
        )
    });
    case("an audience list", &|n| {
        owner.sign(
            header.clone(),
            with(claims(n), "aud", json!([node.base_url])),
        )
    });
    case("no exp", &|n| {
        owner.sign(
            header.clone(),
            json!({"aud": node.base_url, "nonce": n, "iat": t}),
        )
    });
    case("exp as a string", &|n| {
        owner.sign(
            header.clone(),
            with(claims(n), "exp", json!((t + 300).to_string())),
        )
    });
    case("expired", &|n| {
        owner.sign(
            header.clone(),
            json!({"aud": node.base_url, "nonce": n, "iat": t - 400, "exp": t - 1}),
        )
    });
    case("exp - iat over 300", &|n| {
        owner.sign(header.clone(), with(claims(n), "exp", json!(t + 301)))
    });
    case("iat more than 60 s ahead", &|n| {
        owner.sign(
            header.clone(),
            json!({"aud": node.base_url, "nonce": n, "iat": t + 90, "exp": t + 200}),
        )
    });
    case("an unknown nonce", &|_| {
        owner.sign(header.clone(), claims(&b64::encode(&[9; 56])))
    });
    case("a duplicate claim", &|n| {
        let payload = format!(
            r#"{{"aud":"{}","aud":"{}","nonce":"{n}","iat":{t},"exp":{}}}"#,
            node.base_url,
            node.base_url,
            t + 300
        );
        let input = format!(
            "{}.{}",
            encode_json(&header),
            b64::encode(payload.as_bytes())
        );
        let signature: p384::ecdsa::Signature =
            p384::ecdsa::signature::Signer::sign(&owner.key.signing_key(), input.as_bytes());
        format!("{input}.{}", b64::encode(&signature.to_bytes()))
    });
    case("a duplicate header member", &|n| {
        let header_text =
            format!(r#"{{"alg":"ES384","alg":"ES384","typ":"siteid-login+jwt","kid":"{kid}"}}"#);
        let input = format!(
            "{}.{}",
            b64::encode(header_text.as_bytes()),
            encode_json(&claims(n))
        );
        let signature: p384::ecdsa::Signature =
            p384::ecdsa::signature::Signer::sign(&owner.key.signing_key(), input.as_bytes());
        format!("{input}.{}", b64::encode(&signature.to_bytes()))
    });
    case("JSON serialization", &|n| {
        json!({"payload": encode_json(&claims(n)), "signatures": []}).to_string()
    });
    case("four parts", &|n| {
        format!("{}.x", owner.sign(header.clone(), claims(n)))
    });
    case("over 8 KiB", &|n| {
        owner.sign(
            header.clone(),
            with(claims(n), "pad", json!("x".repeat(9000))),
        )
    });
    cases
}

#[test]
fn every_bad_assertion_is_401_and_never_signs_in() {
    // Each case comes from its own address (through a trusted proxy) so the throttle stays out
    // of the way.
    let (_dir, node) = crate::helpers::spawn_node_behind_proxy();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let jku_listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    jku_listener.set_nonblocking(true).expect("nonblocking");
    let jku = format!(
        "http://{}/jwks.json",
        jku_listener.local_addr().expect("addr")
    );
    let cases = bad_assertions(&node, &owner, &jku, || node.challenge());
    for (index, (why, assertion)) in cases.into_iter().enumerate() {
        let ip = format!("198.18.0.{index}");
        let answer = node.post_json_with(
            "/api/v1/auth/login",
            &json!({ "assertion": assertion }),
            &[("x-forwarded-for", &ip)],
        );
        assert_eq!(answer.status, 401, "{why}: {}", answer.body);
        answer.problem(401);
    }
    assert!(
        jku_listener.accept().is_err(),
        "no header made the node fetch anything"
    );
    let sessions = node.login(&owner);
    let list = node
        .call("GET", "/api/v1/sessions", Some(&sessions.0), None, &[])
        .json();
    assert_eq!(
        list["sessions"].as_array().map(Vec::len),
        Some(1),
        "only the good sign-in made a session"
    );
}

#[test]
fn a_nonce_signs_in_once_even_with_a_malleated_signature() {
    let (_dir, node, owner) = claimed_node();
    let assertion = owner.login_assertion(&node, &node.challenge());
    assert_eq!(login_with(&node, &assertion).status, 200);
    assert_eq!(
        login_with(&node, &assertion).problem(401)["type"],
        "urn:siteid:problem:invalid-assertion"
    );
    let replayed = login_with(&node, &malleate(&assertion));
    assert_eq!(
        replayed.status, 401,
        "high-S copy of a used assertion: {}",
        replayed.body
    );
    // The malleated form itself is a valid signature: on a fresh nonce it signs in.
    let fresh = owner.login_assertion(&node, &node.challenge());
    assert_eq!(login_with(&node, &malleate(&fresh)).status, 200);
}

#[test]
fn an_expired_challenge_is_refused() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let nonce = node.challenge();
    clock.advance(121);
    let t = clock.now();
    let assertion = owner.sign(
        json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": owner.key.public_key().thumbprint()}),
        json!({"aud": node.base_url, "nonce": nonce, "iat": t, "exp": t + 60}),
    );
    login_with(&node, &assertion).problem(401);
}

#[test]
fn assertions_and_access_tokens_cannot_stand_in_for_each_other() {
    let (_dir, node, owner) = claimed_node();
    let (token, _) = node.login(&owner);
    let assertion = owner.login_assertion(&node, &node.challenge());
    node.call("GET", "/api/v1/session", Some(&assertion), None, &[])
        .problem(401);
    login_with(&node, &token).problem(401);
    assert_eq!(
        node.call("GET", "/api/v1/session", Some(&token), None, &[])
            .status,
        200
    );
}

#[test]
fn failed_sign_ins_are_throttled_per_client_without_locking_out_others() {
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
    let stranger = TestOwner {
        key: OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    for client in 0..12 {
        let ip = format!("198.51.100.{client}");
        for attempt in 0..10 {
            let bad = stranger.login_assertion(&node, &node.challenge());
            let answer = node.post_json_with(
                "/api/v1/auth/login",
                &json!({"assertion": bad}),
                &[("x-forwarded-for", &ip)],
            );
            assert_eq!(answer.status, 401, "client {client} attempt {attempt}");
        }
        let good = owner.login_assertion(&node, &node.challenge());
        let throttled = node.post_json_with(
            "/api/v1/auth/login",
            &json!({"assertion": good}),
            &[("x-forwarded-for", &ip)],
        );
        throttled.problem(429);
        assert!(
            throttled
                .header("retry-after")
                .is_some_and(|v| v.parse::<i64>().is_ok_and(|s| s > 0 && s <= 900))
        );
    }
    let good = owner.login_assertion(&node, &node.challenge());
    let owner_device = node.post_json_with(
        "/api/v1/auth/login",
        &json!({"assertion": good}),
        &[("x-forwarded-for", "192.0.2.10")],
    );
    assert_eq!(
        owner_device.status, 200,
        "120 failures elsewhere do not lock the owner out: {}",
        owner_device.body
    );
    // Failures are summed up per network and minute, written once the minute has ended.
    let token = owner_device.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    clock.advance(60);
    let failed = node.wait_for_audit_entry(&token, "login.failed");
    assert_eq!(failed["ip"], "198.51.100.0/24");
    assert_eq!(failed["detail"]["count"], 120);
    assert_eq!(failed["detail"]["clients"], 12);
    let throttled = node.wait_for_audit_entry(&token, "login.throttled");
    assert_eq!(
        throttled["detail"]["clients"], 12,
        "each client's start, once"
    );
    let events = node.audit_events(&token);
    assert_eq!(events.iter().filter(|e| *e == "login.failed").count(), 1);
}
