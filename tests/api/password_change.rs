//! Replacing the wrapped key (`PUT /api/v1/owner/wrapped-key`): a stolen session cannot swap
//! in another key or another password; the change needs the owner key's proof over a fresh
//! challenge and the exact new members, and the current password's verifier.

use serde_json::{Value, json};
use siteid::jose::b64;
use siteid::jose::jwk::OwnerPrivateKey;

use crate::helpers::{Answer, Rewrapped, TestNode, TestOwner, now, spawn_node};

const PATH: &str = "/api/v1/owner/wrapped-key";

fn put(node: &TestNode, token: &str, body: &Value) -> Answer {
    node.call("PUT", PATH, Some(token), Some(body), &[])
}

fn field_of(answer: &Answer) -> String {
    answer.problem(422)["field"]
        .as_str()
        .expect("field")
        .to_owned()
}

/// A thief's key wrapped under the thief's password, with the owner's kid written into its
/// header, as the attack in the issue did.
fn thief_rewrapped(owner: &TestOwner) -> (TestOwner, Rewrapped) {
    let thief = TestOwner {
        key: OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    let honest = thief.rewrapped("the thief's password");
    let owner_kid = owner.key.public_key().thumbprint();
    let thief_kid = thief.key.public_key().thumbprint();
    let mut parts: Vec<String> = honest.wrapped_key.split('.').map(str::to_owned).collect();
    let header = String::from_utf8(b64::decode(&parts[0]).expect("b64")).expect("utf-8");
    parts[0] = b64::encode(header.replace(&thief_kid, &owner_kid).as_bytes());
    let forged = Rewrapped {
        wrapped_key: parts.join("."),
        unlock_verifier: honest.unlock_verifier,
    };
    (thief, forged)
}

#[test]
fn a_stolen_stepped_up_session_cannot_replace_the_wrapped_key() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    // The owner stepped up a moment ago; the thief holds the session's token.
    let (token, _) = node.login_stepped_up(&owner);
    let (thief, forged) = thief_rewrapped(&owner);
    let thief_own = thief.rewrapped("the thief's password");

    // The old body, without proof or old verifier, is refused.
    let bare =
        json!({"wrapped_key": forged.wrapped_key, "unlock_verifier": forged.unlock_verifier});
    assert_eq!(field_of(&put(&node, &token, &bare)), "proof");
    // A proof signed by the thief's key, naming the owner's kid.
    let mut body = node.rewrap_body(&thief, &forged, Some(&owner.unlock_verifier));
    let owner_kid = owner.key.public_key().thumbprint();
    let header_kid = json!({"alg": "ES384", "typ": "siteid-rewrap+jwt", "kid": owner_kid});
    let t = now();
    body["proof"] = json!(thief.sign(
        header_kid,
        json!({
            "aud": node.base_url, "nonce": node.challenge(), "iat": t, "exp": t + 300,
            "wrapped_key_sha256": siteid::auth::unlock::member_digest(&forged.wrapped_key),
            "unlock_verifier_sha256": siteid::auth::unlock::member_digest(&forged.unlock_verifier),
        }),
    ));
    assert_eq!(field_of(&put(&node, &token, &body)), "proof");
    // The thief's JWE with its own honest kid.
    let honest_kid = node.rewrap_body(&thief, &thief_own, Some(&owner.unlock_verifier));
    assert_eq!(field_of(&put(&node, &token, &honest_kid)), "wrapped_key");

    // Nothing changed: the owner's password still unlocks the owner's wrapped key.
    let unlocked = node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": owner.unlock_verifier}),
    );
    assert_eq!(unlocked.status, 200);
    assert_eq!(unlocked.json()["wrapped_key"], owner.wrapped_key);
    assert!(
        !node
            .audit_events(&token)
            .iter()
            .any(|e| e == "wrapped_key.replaced")
    );
}

#[test]
fn the_proof_binds_the_exact_members_a_fresh_challenge_and_the_node() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    let new = owner.rewrapped("a new long password");
    let other = owner.rewrapped("yet another password");
    let old = Some(owner.unlock_verifier.as_str());

    let mut swapped = node.rewrap_body(&owner, &new, old);
    swapped["wrapped_key"] = json!(other.wrapped_key);
    assert_eq!(field_of(&put(&node, &token, &swapped)), "proof");
    let mut swapped = node.rewrap_body(&owner, &new, old);
    swapped["unlock_verifier"] = json!(other.unlock_verifier);
    assert_eq!(field_of(&put(&node, &token, &swapped)), "proof");

    let t = now();
    let digest = siteid::auth::unlock::member_digest;
    let kid = owner.key.public_key().thumbprint();
    let claims = |aud: &str, nonce: &str| {
        json!({
            "aud": aud, "nonce": nonce, "iat": t, "exp": t + 300,
            "wrapped_key_sha256": digest(&new.wrapped_key),
            "unlock_verifier_sha256": digest(&new.unlock_verifier),
        })
    };
    let header = json!({"alg": "ES384", "typ": "siteid-rewrap+jwt", "kid": kid});
    let cases = [
        (
            "another audience",
            owner.sign(
                header.clone(),
                claims("https://other.example", &node.challenge()),
            ),
        ),
        (
            "a nonce the node never issued",
            owner.sign(
                header.clone(),
                claims(&node.base_url, &b64::encode(&[9; 57])),
            ),
        ),
        (
            "a login typ",
            owner.sign(
                json!({"alg": "ES384", "typ": "siteid-login+jwt", "kid": kid}),
                claims(&node.base_url, &node.challenge()),
            ),
        ),
        (
            "no kid",
            owner.sign(
                json!({"alg": "ES384", "typ": "siteid-rewrap+jwt"}),
                claims(&node.base_url, &node.challenge()),
            ),
        ),
    ];
    for (why, proof) in cases {
        let mut body = node.rewrap_body(&owner, &new, old);
        body["proof"] = json!(proof);
        assert_eq!(field_of(&put(&node, &token, &body)), "proof", "{why}");
    }

    // A replayed proof: its nonce was used up by the first change.
    let body = node.rewrap_body(&owner, &new, old);
    assert_eq!(put(&node, &token, &body).status, 204);
    let mut replay = body.clone();
    replay["old_unlock_verifier"] = json!(new.unlock_verifier);
    assert_eq!(field_of(&put(&node, &token, &replay)), "proof", "a replay");
    let unlocked = node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": new.unlock_verifier}),
    );
    assert_eq!(unlocked.status, 200, "the new password works");
    assert_eq!(unlocked.json()["wrapped_key"], new.wrapped_key);
}

#[test]
fn the_old_verifier_is_required_and_a_wrong_one_counts_as_a_failed_unlock() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    let new = owner.rewrapped("a new long password");
    let without = node.rewrap_body(&owner, &new, None);
    assert_eq!(
        field_of(&put(&node, &token, &without)),
        "old_unlock_verifier"
    );
    let mut no_kid = node.rewrap_body(&owner, &new, Some(&owner.unlock_verifier));
    let vector_jwe = owner.wrapped_key.clone();
    no_kid["wrapped_key"] = json!(vector_jwe);
    assert_eq!(
        field_of(&put(&node, &token, &no_kid)),
        "wrapped_key",
        "a replacement must name the owner's kid"
    );
    let wrong = b64::encode(&[3u8; 32]);
    for attempt in 0..10 {
        let answer = put(&node, &token, &node.rewrap_body(&owner, &new, Some(&wrong)));
        assert_eq!(
            answer.problem(401)["type"],
            "urn:siteid:problem:wrong-unlock-verifier",
            "attempt {attempt}"
        );
    }
    let throttled = put(
        &node,
        &token,
        &node.rewrap_body(&owner, &new, Some(&owner.unlock_verifier)),
    );
    assert_eq!(throttled.problem(429)["scope"], "client");
    let unlock = node.post_json(
        "/api/v1/unlock",
        &json!({"unlock_verifier": owner.unlock_verifier}),
    );
    assert_eq!(
        unlock.problem(429)["scope"],
        "client",
        "wrong old verifiers count as failed unlocks"
    );
}
