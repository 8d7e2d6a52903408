//! Claiming a node: success, a second claim, a wrong token, and every 422 case, each leaving
//! the node unclaimed.

use serde_json::{Value, json};
use siteid::jose::b64;
use siteid::jose::jwk::OwnerPrivateKey;

use crate::helpers::{TestNode, TestOwner, now, spawn_node};

/// Posts `body` to an unclaimed node and asserts a 422 naming `field`, with nothing stored.
fn assert_refused(node: &TestNode, body: &Value, field: &str) {
    let answer = node.post_json("/api/v1/owner", body);
    let problem = answer.problem(422);
    assert_eq!(problem["field"], field, "{problem}");
    assert!(!node.is_claimed(), "a refused claim stores nothing");
}

fn with(mut body: Value, member: &str, value: Value) -> Value {
    body[member] = value;
    body
}

fn jwe_parts(owner: &TestOwner) -> Vec<String> {
    owner.wrapped_key.split('.').map(str::to_owned).collect()
}

fn jwe_with_header(owner: &TestOwner, header: Value) -> String {
    let mut parts = jwe_parts(owner);
    parts[0] = b64::encode(header.to_string().as_bytes());
    parts.join(".")
}

fn jwe_with_part(owner: &TestOwner, index: usize, bytes: &[u8]) -> String {
    let mut parts = jwe_parts(owner);
    parts[index] = b64::encode(bytes);
    parts.join(".")
}

fn good_header() -> Value {
    json!({
        "alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "cty": "jwk+json",
        "p2s": "AAECAwQFBgcICQoLDA0ODw", "p2c": 210000
    })
}

#[test]
fn a_valid_claim_stores_the_owner_and_answers_with_the_kid() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    let answer = node.post_json("/api/v1/owner", &owner.claim_body(&node, &token));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let kid = answer.json()["kid"].as_str().expect("kid").to_owned();
    assert_eq!(kid, owner.key.public_key().thumbprint());
    assert!(node.is_claimed());
    let jwks = node.get("/.well-known/jwks.json").json();
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
}

#[test]
fn a_second_claim_is_forbidden_even_with_the_old_token() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    node.claim(&owner);
    let again = node.post_json("/api/v1/owner", &owner.claim_body(&node, &token));
    assert_eq!(
        again.problem(403)["type"],
        "urn:siteid:problem:already-claimed"
    );
    let other = TestOwner::from_vector();
    let fresh = node.post_json("/api/v1/owner", &other.claim_body(&node, "anything"));
    fresh.problem(403);
}

#[test]
fn a_wrong_claim_token_is_unauthorized() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let real = node.claim_token();
    let mut wrong = real.clone();
    wrong.replace_range(0..1, if real.starts_with('A') { "B" } else { "A" });
    for token in [wrong.as_str(), "", "short"] {
        let answer = node.post_json("/api/v1/owner", &owner.claim_body(&node, token));
        assert_eq!(
            answer.problem(401)["type"],
            "urn:siteid:problem:invalid-claim-token"
        );
    }
    assert!(!node.is_claimed());
}

#[test]
fn every_invalid_public_key_is_422_naming_public_key() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    let body = owner.claim_body(&node, &token);
    let jwk = owner.public_jwk.clone();
    let x = jwk["x"].as_str().expect("x").to_owned();
    let y = jwk["y"].as_str().expect("y").to_owned();
    let mut off_curve_y = b64::decode(&y).expect("y");
    off_curve_y[47] ^= 1;
    let p256 = json!({"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    let cases = [
        ("carries d", with(jwk.clone(), "d", json!(owner.d))),
        ("carries d: null", with(jwk.clone(), "d", Value::Null)),
        ("another curve", p256),
        ("another type", with(jwk.clone(), "kty", json!("RSA"))),
        (
            "a point off the curve",
            with(jwk.clone(), "y", json!(b64::encode(&off_curve_y))),
        ),
        (
            "a short coordinate",
            with(jwk.clone(), "x", json!(&x[..60])),
        ),
        ("an unknown member", with(jwk.clone(), "extra", json!(1))),
        ("a wrong alg", with(jwk.clone(), "alg", json!("ES256"))),
        ("not an object", json!("a string")),
    ];
    for (why, key) in cases {
        let answer = node.post_json("/api/v1/owner", &with(body.clone(), "public_key", key));
        let problem = answer.problem(422);
        assert_eq!(problem["field"], "public_key", "{why}: {problem}");
    }
    // A duplicated member, which a generic JSON parser would silently collapse.
    let duplicated = body.to_string().replacen(
        &format!("\"x\":\"{x}\""),
        &format!("\"x\":\"{x}\",\"x\":\"{x}\""),
        1,
    );
    let answer = node.post_raw("/api/v1/owner", "application/json", duplicated.as_bytes());
    assert_eq!(answer.problem(422)["field"], "public_key");
    assert!(!node.is_claimed());
}

#[test]
fn every_invalid_wrapped_key_is_422_naming_wrapped_key() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    let body = owner.claim_body(&node, &token);
    let header = good_header();
    let other_kid = OwnerPrivateKey::generate().public_key().thumbprint();
    let parts = jwe_parts(&owner);
    let cases: Vec<(&str, String)> = vec![
        (
            "alg PBES2-HS256+A128KW",
            jwe_with_header(
                &owner,
                with(header.clone(), "alg", json!("PBES2-HS256+A128KW")),
            ),
        ),
        (
            "alg dir",
            jwe_with_header(&owner, with(header.clone(), "alg", json!("dir"))),
        ),
        (
            "enc A128GCM",
            jwe_with_header(&owner, with(header.clone(), "enc", json!("A128GCM"))),
        ),
        (
            "cty jwk",
            jwe_with_header(&owner, with(header.clone(), "cty", json!("jwk"))),
        ),
        (
            "zip",
            jwe_with_header(&owner, with(header.clone(), "zip", json!("DEF"))),
        ),
        (
            "crit",
            jwe_with_header(&owner, with(header.clone(), "crit", json!(["exp"]))),
        ),
        (
            "p2s of 15 bytes",
            jwe_with_header(
                &owner,
                with(header.clone(), "p2s", json!(b64::encode(&[7; 15]))),
            ),
        ),
        (
            "p2c 209999",
            jwe_with_header(&owner, with(header.clone(), "p2c", json!(209_999))),
        ),
        (
            "p2c 10000001",
            jwe_with_header(&owner, with(header.clone(), "p2c", json!(10_000_001))),
        ),
        (
            "p2c negative",
            jwe_with_header(&owner, with(header.clone(), "p2c", json!(-1))),
        ),
        (
            "p2c a string",
            jwe_with_header(&owner, with(header.clone(), "p2c", json!("600000"))),
        ),
        (
            "kid of another key",
            jwe_with_header(&owner, with(header.clone(), "kid", json!(other_kid))),
        ),
        (
            "encrypted key of 32 bytes",
            jwe_with_part(&owner, 1, &[1; 32]),
        ),
        (
            "encrypted key of 48 bytes",
            jwe_with_part(&owner, 1, &[1; 48]),
        ),
        ("IV of 16 bytes", jwe_with_part(&owner, 2, &[1; 16])),
        ("empty ciphertext", jwe_with_part(&owner, 3, &[])),
        ("tag of 12 bytes", jwe_with_part(&owner, 4, &[1; 12])),
        ("four parts", parts[..4].join(".")),
        ("six parts", format!("{}.x", owner.wrapped_key)),
        ("padding", format!("{}=", owner.wrapped_key)),
        (
            "JSON serialization",
            json!({"protected": parts[0]}).to_string(),
        ),
        (
            "too long",
            format!("{}.{}", parts[..3].join("."), "A".repeat(5000)) + "." + &parts[4],
        ),
        (
            "a header that is not JSON",
            format!("{}.{}", b64::encode(b"not json"), parts[1..].join(".")),
        ),
    ];
    for (why, wrapped_key) in cases {
        let answer = node.post_json(
            "/api/v1/owner",
            &with(body.clone(), "wrapped_key", json!(wrapped_key)),
        );
        let problem = answer.problem(422);
        assert_eq!(problem["field"], "wrapped_key", "{why}: {problem}");
    }
    assert!(!node.is_claimed());
}

#[test]
fn every_invalid_unlock_verifier_is_422_naming_it() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    let body = owner.claim_body(&node, &token);
    for verifier in [
        b64::encode(&[1; 31]),
        b64::encode(&[1; 33]),
        format!("{}=", b64::encode(&[1; 32])),
        "+/+/".repeat(11),
        String::new(),
    ] {
        assert_refused(
            &node,
            &with(body.clone(), "unlock_verifier", json!(verifier)),
            "unlock_verifier",
        );
    }
}

#[test]
fn every_invalid_proof_is_422_naming_proof() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let stranger = TestOwner {
        key: OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    let token = node.claim_token();
    let body = owner.claim_body(&node, &token);
    let t = now();
    let header = json!({"alg": "ES384", "typ": "siteid-claim+jwt"});
    let claims = json!({"aud": node.base_url, "nonce": token, "iat": t, "exp": t + 300});
    let good = owner.sign(header.clone(), claims.clone());
    let (signing_input, signature) = good.rsplit_once('.').expect("three parts");
    let unsigned = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none","typ":"siteid-claim+jwt"}"#),
        signing_input.split_once('.').expect("parts").1
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "signed by another key",
            stranger.sign(header.clone(), claims.clone()),
        ),
        ("alg none", unsigned),
        (
            "typ JWT",
            owner.sign(with(header.clone(), "typ", json!("JWT")), claims.clone()),
        ),
        (
            "a login typ",
            owner.sign(
                with(header.clone(), "typ", json!("siteid-login+jwt")),
                claims.clone(),
            ),
        ),
        (
            "a kid header",
            owner.sign(with(header.clone(), "kid", json!("x")), claims.clone()),
        ),
        (
            "a jwk header",
            owner.sign(
                with(header.clone(), "jwk", owner.public_jwk.clone()),
                claims.clone(),
            ),
        ),
        (
            "a crit header",
            owner.sign(with(header.clone(), "crit", json!(["x"])), claims.clone()),
        ),
        (
            "another audience",
            owner.sign(
                header.clone(),
                with(claims.clone(), "aud", json!("https://elsewhere.example")),
            ),
        ),
        (
            "another nonce",
            owner.sign(
                header.clone(),
                with(claims.clone(), "nonce", json!("not-the-token")),
            ),
        ),
        (
            "a lifetime over 300 s",
            owner.sign(header.clone(), with(claims.clone(), "exp", json!(t + 301))),
        ),
        (
            "expired",
            owner.sign(
                header.clone(),
                json!({"aud": node.base_url, "nonce": token, "iat": t - 400, "exp": t - 100}),
            ),
        ),
        (
            "issued in the future",
            owner.sign(
                header.clone(),
                json!({"aud": node.base_url, "nonce": token, "iat": t + 120, "exp": t + 300}),
            ),
        ),
        (
            "without exp",
            owner.sign(
                header.clone(),
                json!({"aud": node.base_url, "nonce": token, "iat": t}),
            ),
        ),
        (
            "exp as a string",
            owner.sign(
                header.clone(),
                with(claims.clone(), "exp", json!((t + 300).to_string())),
            ),
        ),
        (
            "an unknown claim",
            owner.sign(header.clone(), with(claims.clone(), "sub", json!("me"))),
        ),
        (
            "a truncated signature",
            format!("{signing_input}.{}", &signature[..100]),
        ),
        (
            "a DER signature",
            format!("{signing_input}.{}", b64::encode(&[0x30; 104])),
        ),
        (
            "a zero signature",
            format!("{signing_input}.{}", b64::encode(&[0; 96])),
        ),
        (
            "JSON serialization",
            json!({"payload": signing_input}).to_string(),
        ),
        (
            "over 8 KiB",
            format!("{signing_input}{}.{signature}", "A".repeat(9000)),
        ),
    ];
    for (why, proof) in cases {
        let answer = node.post_json("/api/v1/owner", &with(body.clone(), "proof", json!(proof)));
        let problem = answer.problem(422);
        assert_eq!(problem["field"], "proof", "{why}: {problem}");
    }
    assert!(!node.is_claimed());
}
