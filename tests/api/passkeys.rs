//! Passkeys against the real node, with a software authenticator (P-256, "none" attestation):
//! registration bound by the owner key, sign-in, the PRF copy's release and refusals, counters,
//! replays, revocation and tampering.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use siteid::jose::b64;

use crate::helpers::{NodeOptions, TestNode, TestOwner, now, with_store};

/// The public URL of these nodes: WebAuthn needs a domain name, not an IP address.
const ORIGIN: &str = "http://localhost:8443";
const RP_ID: &str = "localhost";

/// A software authenticator holding one discoverable P-256 passkey.
struct Authenticator {
    key: SigningKey,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
    origin: String,
    user_verified: bool,
}

fn cbor_map(entries: Vec<(Cbor, Cbor)>) -> Cbor {
    Cbor::Map(entries.into_iter().collect())
}

impl Authenticator {
    fn new() -> Authenticator {
        let mut credential_id = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut credential_id);
        Authenticator {
            key: SigningKey::random(&mut rand::rngs::OsRng),
            credential_id,
            user_handle: Vec::new(),
            counter: 0,
            origin: ORIGIN.into(),
            user_verified: true,
        }
    }

    fn id(&self) -> String {
        b64::encode(&self.credential_id)
    }

    fn public_jwk(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64::encode(point.x().expect("x")),
            "y": b64::encode(point.y().expect("y")),
        })
    }

    /// The RFC 7638 thumbprint of the passkey's key: its kid on the node.
    fn kid(&self) -> String {
        let jwk = self.public_jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().expect("x"),
            jwk["y"].as_str().expect("y")
        );
        b64::encode(&Sha256::digest(canonical.as_bytes()))
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut flags = 0x01;
        if self.user_verified {
            flags |= 0x04;
        }
        if attested {
            flags |= 0x40;
        }
        flags
    }

    /// The answer to creation options, as `PublicKeyCredential.toJSON()` gives it.
    fn register(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        self.user_handle = b64::decode(public_key["user"]["id"].as_str().expect("user id"))
            .expect("a base64url user id");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let point = self.key.verifying_key().to_encoded_point(false);
        let cose = cbor_map(vec![
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (
                Cbor::Integer(-2),
                Cbor::Bytes(point.x().expect("x").to_vec()),
            ),
            (
                Cbor::Integer(-3),
                Cbor::Bytes(point.y().expect("y").to_vec()),
            ),
        ]);
        let mut auth_data = Sha256::digest(RP_ID.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]);
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&serde_cbor_2::to_vec(&cose).expect("cose"));
        let attestation = cbor_map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), cbor_map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "attestationObject": b64::encode(&serde_cbor_2::to_vec(&attestation).expect("cbor")),
                "clientDataJSON": b64::encode(&self.client_data("webauthn.create", challenge)),
            },
            "clientExtensionResults": {},
        })
    }

    /// An assertion over sign-in options' challenge, counting up first.
    fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assert_with_counter(options, self.counter)
    }

    fn assert_with_counter(&self, options: &Value, counter: u32) -> Value {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let mut auth_data = Sha256::digest(RP_ID.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "authenticatorData": b64::encode(&auth_data),
                "clientDataJSON": b64::encode(&client_data),
                "signature": b64::encode(signature.to_der().as_bytes()),
                "userHandle": b64::encode(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

/// A claimed node at [`ORIGIN`] and a stepped-up owner session.
fn passkey_node() -> (tempfile::TempDir, TestNode, TestOwner, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            public_url: Some(ORIGIN.into()),
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login_stepped_up(&owner);
    (dir, node, owner, token)
}

/// The owner key's binding over a passkey credential.
fn binding(owner: &TestOwner, authenticator: &Authenticator, capabilities: &[&str]) -> String {
    owner.sign(
        json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": owner.key.public_key().thumbprint()}),
        json!({
            "sub": authenticator.kid(),
            "kind": "passkey",
            "label": "Test passkey",
            "cap": capabilities,
            "net": [],
            "iat": now(),
            "jti": authenticator.id(),
        }),
    )
}

/// A structurally valid PRF copy naming `kid` (the node cannot open it, so random bytes do).
fn prf_copy(kid: &str) -> String {
    let header = b64::encode(
        json!({"alg": "A256KW", "enc": "A256GCM", "cty": "jwk+json", "kid": kid})
            .to_string()
            .as_bytes(),
    );
    [
        header,
        b64::encode(&[7u8; 40]),
        b64::encode(&[1u8; 12]),
        b64::encode(&[2u8; 200]),
        b64::encode(&[3u8; 16]),
    ]
    .join(".")
}

const ALL: [&str; 6] = [
    "session",
    "sessions",
    "audit",
    "credentials",
    "recovery",
    "owner",
];

/// The registration body for `authenticator`, answering fresh creation options.
fn registration(
    node: &TestNode,
    token: &str,
    owner: &TestOwner,
    authenticator: &mut Authenticator,
    capabilities: &[&str],
    copy: Option<String>,
) -> Value {
    let started = node.call(
        "POST",
        "/api/v1/passkeys/registration-options",
        Some(token),
        None,
        &[],
    );
    assert_eq!(started.status, 200, "{}", started.body);
    let started = started.json();
    let mut body = json!({
        "registration_id": started["registration_id"],
        "credential": authenticator.register(&started["options"]),
        "label": "Test passkey",
        "capabilities": capabilities,
        "networks": [],
        "expires_at": null,
        "binding": binding(owner, authenticator, capabilities),
    });
    if let Some(copy) = copy {
        body["prf_wrapped_key"] = json!(copy);
    }
    body
}

fn register(
    node: &TestNode,
    token: &str,
    owner: &TestOwner,
    authenticator: &mut Authenticator,
    copy: Option<String>,
) -> Value {
    let body = registration(node, token, owner, authenticator, &ALL, copy);
    let answer = node.call("POST", "/api/v1/passkeys", Some(token), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

/// Fresh sign-in options from the node.
fn sign_in_options(node: &TestNode) -> Value {
    let options = node.post_json("/api/v1/passkeys/sign-in-options", &json!({}));
    assert_eq!(options.status, 200, "{}", options.body);
    options.json()
}

/// A sign-in body: fresh options answered by the authenticator.
fn assertion_body(node: &TestNode, authenticator: &mut Authenticator) -> Value {
    let options = sign_in_options(node);
    json!({
        "sign_in_id": options["sign_in_id"],
        "credential": authenticator.assert(&options["options"]),
    })
}

/// Signs in with the authenticator's passkey; returns the node's answer.
fn sign_in(
    node: &TestNode,
    authenticator: &mut Authenticator,
    unlock: bool,
) -> crate::helpers::Answer {
    let mut body = assertion_body(node, authenticator);
    body["unlock"] = json!(unlock);
    node.post_json("/api/v1/auth/passkey", &body)
}

fn owner_kid(owner: &TestOwner) -> String {
    owner.key.public_key().thumbprint()
}

#[test]
fn a_passkey_registers_as_a_bound_credential_signs_in_and_releases_its_prf_copy() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    let copy = prf_copy(&owner_kid(&owner));
    let added = register(
        &node,
        &token,
        &owner,
        &mut authenticator,
        Some(copy.clone()),
    );
    assert_eq!(added["kind"], "passkey");
    assert_eq!(added["id"], authenticator.id());
    assert_eq!(added["kid"], authenticator.kid());
    assert_eq!(added["alg"], "ES256");
    assert_eq!(added["passkey"]["unlocks"], true);
    assert_eq!(added["passkey"]["aaguid"], Value::Null);

    let signed_in = sign_in(&node, &mut authenticator, true);
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let signed_in = signed_in.json();
    assert_eq!(signed_in["credential_id"], authenticator.id());
    assert_eq!(signed_in["prf"]["wrapped_key"], copy);
    assert_eq!(signed_in["prf"]["kid"], owner_kid(&owner));
    let session_token = signed_in["access_token"].as_str().expect("token");
    let session = node.call("GET", "/api/v1/session", Some(session_token), None, &[]);
    assert_eq!(session.status, 200, "{}", session.body);

    // Without `unlock`, no copy is sent.
    let plain = sign_in(&node, &mut authenticator, false).json();
    assert!(plain.get("prf").is_none(), "{plain}");

    let listed = node
        .call("GET", "/api/v1/credentials", Some(&token), None, &[])
        .json();
    let passkey = listed["credentials"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["kind"] == "passkey")
        .expect("the passkey is listed")
        .clone();
    assert_eq!(passkey["passkey"]["sign_count"], 2);
    assert!(passkey["last_used_at"].is_i64());
    let events = node.audit_events(&token);
    assert!(
        events.contains(&"passkey.wrapped_key_served".to_owned()),
        "{events:?}"
    );
}

#[test]
fn a_sign_in_is_answered_once_and_a_counter_that_goes_back_is_refused_and_audited() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    register(&node, &token, &owner, &mut authenticator, None);
    let body = assertion_body(&node, &mut authenticator);
    assert_eq!(node.post_json("/api/v1/auth/passkey", &body).status, 200);
    let replayed = node.post_json("/api/v1/auth/passkey", &body);
    let problem = replayed.problem(401);
    assert_eq!(
        problem["type"]
            .as_str()
            .map(|t| t.ends_with("invalid-assertion")),
        Some(true)
    );

    // The authenticator's counter is at 1 on the node; an assertion with 1 again is a clone.
    let options = sign_in_options(&node);
    let cloned = json!({
        "sign_in_id": options["sign_in_id"],
        "credential": authenticator.assert_with_counter(&options["options"], 1),
    });
    let refused = node.post_json("/api/v1/auth/passkey", &cloned);
    let problem = refused.problem(401);
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("counter"),
        "{problem}"
    );
    node.wait_for_audit_entry(&token, "passkey.counter_regressed");
}

#[test]
fn assertions_for_another_origin_without_user_verification_or_for_another_challenge_are_refused() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    register(&node, &token, &owner, &mut authenticator, None);
    let attempt = |authenticator: &mut Authenticator| sign_in(&node, authenticator, false).status;

    authenticator.origin = "http://localhost:9999".into();
    assert_eq!(attempt(&mut authenticator), 401);
    authenticator.origin = ORIGIN.into();
    authenticator.user_verified = false;
    assert_eq!(attempt(&mut authenticator), 401);
    authenticator.user_verified = true;

    // An assertion over one sign-in's challenge does not answer another.
    let first = sign_in_options(&node);
    let second = sign_in_options(&node);
    let crossed = json!({
        "sign_in_id": second["sign_in_id"],
        "credential": authenticator.assert(&first["options"]),
    });
    node.post_json("/api/v1/auth/passkey", &crossed)
        .problem(401);
    assert_eq!(attempt(&mut authenticator), 200);
}

#[test]
fn a_passkey_does_not_sign_in_with_a_jwt_and_an_answer_carrying_a_prf_output_is_refused() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    let mut body = registration(&node, &token, &owner, &mut authenticator, &ALL, None);
    body["credential"]["clientExtensionResults"] =
        json!({"prf": {"enabled": true, "results": {"first": b64::encode(&[9u8; 32])}}});
    let refused = node.call("POST", "/api/v1/passkeys", Some(&token), Some(&body), &[]);
    assert_eq!(refused.problem(422)["field"], "credential");
    register(&node, &token, &owner, &mut authenticator, None);

    // A JWT naming the passkey's kid, signed by anything, is refused before any signature check.
    let nonce = node.challenge();
    let forged = owner.sign(
        json!({"alg": "ES256", "typ": "siteid-login+jwt", "kid": authenticator.kid()}),
        json!({"aud": node.audience, "nonce": nonce, "iat": now(), "exp": now() + 300}),
    );
    let answer = node.post_json("/api/v1/auth/login", &json!({"assertion": forged}));
    let problem = answer.problem(401);
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("passkey"),
        "{problem}"
    );
}

#[test]
fn registration_needs_a_stepped_up_session_its_own_ceremony_and_a_matching_binding() {
    let (_dir, node, owner, token) = passkey_node();
    let options = node.post_json("/api/v1/passkeys/registration-options", &json!({}));
    options.problem(401);
    let (fresh, _) = node.login(&owner);
    node.call(
        "POST",
        "/api/v1/passkeys/registration-options",
        Some(&fresh),
        None,
        &[],
    )
    .problem(403);

    // Another session's registration id is refused.
    let mut authenticator = Authenticator::new();
    let body = registration(&node, &token, &owner, &mut authenticator, &ALL, None);
    let (other, _) = node.login_stepped_up(&owner);
    let refused = node.call("POST", "/api/v1/passkeys", Some(&other), Some(&body), &[]);
    assert_eq!(refused.problem(422)["field"], "registration_id");
    // The ceremony was used up by that attempt.
    let again = node.call("POST", "/api/v1/passkeys", Some(&token), Some(&body), &[]);
    assert_eq!(again.problem(422)["field"], "registration_id");

    // A binding over another kind, or another credential id, is refused.
    let mut body = registration(&node, &token, &owner, &mut authenticator, &ALL, None);
    body["binding"] = json!(owner.sign(
        json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": owner_kid(&owner)}),
        json!({"sub": authenticator.kid(), "kind": "device", "label": "Test passkey", "cap": ALL,
               "net": [], "iat": now(), "jti": authenticator.id()}),
    ));
    let refused = node.call("POST", "/api/v1/passkeys", Some(&token), Some(&body), &[]);
    assert_eq!(refused.problem(422)["field"], "kind");
    let mut body = registration(&node, &token, &owner, &mut authenticator, &ALL, None);
    body["binding"] = json!(owner.sign(
        json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": owner_kid(&owner)}),
        json!({"sub": authenticator.kid(), "kind": "passkey", "label": "Test passkey", "cap": ALL,
               "net": [], "iat": now(), "jti": b64::encode(&[1u8; 32])}),
    ));
    let refused = node.call("POST", "/api/v1/passkeys", Some(&token), Some(&body), &[]);
    assert_eq!(refused.problem(422)["field"], "id");
}

#[test]
fn a_prf_copy_must_be_well_formed_name_the_owner_key_and_come_with_the_owner_capability() {
    let (_dir, node, owner, token) = passkey_node();
    let kid = owner_kid(&owner);
    let short = {
        let mut parts: Vec<String> = prf_copy(&kid).split('.').map(str::to_owned).collect();
        parts[1] = b64::encode(&[7u8; 32]);
        parts.join(".")
    };
    let other_alg = prf_copy(&kid).replacen(
        &b64::encode(
            json!({"alg": "A256KW", "enc": "A256GCM", "cty": "jwk+json", "kid": kid})
                .to_string()
                .as_bytes(),
        ),
        &b64::encode(
            json!({"alg": "dir", "enc": "A256GCM", "cty": "jwk+json", "kid": kid})
                .to_string()
                .as_bytes(),
        ),
        1,
    );
    for (copy, capabilities) in [
        (short, ALL.to_vec()),
        (other_alg, ALL.to_vec()),
        ("x".repeat(5000), ALL.to_vec()),
        (prf_copy("another-kid"), ALL.to_vec()),
        (prf_copy(&kid), vec!["session", "audit"]),
    ] {
        let mut authenticator = Authenticator::new();
        let body = registration(
            &node,
            &token,
            &owner,
            &mut authenticator,
            &capabilities,
            Some(copy),
        );
        let refused = node.call("POST", "/api/v1/passkeys", Some(&token), Some(&body), &[]);
        assert_eq!(refused.problem(422)["field"], "prf_wrapped_key");
    }
}

#[test]
fn a_revoked_passkey_is_refused_loses_its_copy_and_cannot_be_registered_again() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    register(
        &node,
        &token,
        &owner,
        &mut authenticator,
        Some(prf_copy(&owner_kid(&owner))),
    );
    let revoked = node.call(
        "DELETE",
        &format!("/api/v1/credentials/{}", authenticator.id()),
        Some(&token),
        None,
        &[],
    );
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    sign_in(&node, &mut authenticator, true).problem(401);
    let copies: i64 = with_store(&node.data_dir, |c| {
        Ok(c.query_row(
            "SELECT count(*) FROM passkey WHERE prf_wrapped_key IS NOT NULL",
            [],
            |r| r.get(0),
        )?)
    });
    assert_eq!(copies, 0);
    let body = registration(&node, &token, &owner, &mut authenticator, &ALL, None);
    let again = node.call("POST", "/api/v1/passkeys", Some(&token), Some(&body), &[]);
    assert_eq!(again.status, 409, "{}", again.body);
}

#[test]
fn a_passkey_whose_stored_state_names_another_key_cannot_sign_in() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    register(&node, &token, &owner, &mut authenticator, None);
    let mut intruder = Authenticator::new();
    register(&node, &token, &owner, &mut intruder, None);
    // A database writer puts the intruder's WebAuthn state behind the bound passkey row.
    with_store(&node.data_dir, |c| {
        c.execute(
            "UPDATE passkey SET state = (SELECT state FROM passkey WHERE credential_id = ?2)
             WHERE credential_id = ?1",
            [authenticator.id(), intruder.id()],
        )?;
        Ok(())
    });
    intruder.credential_id = authenticator.credential_id.clone();
    sign_in(&node, &mut intruder, false).problem(401);
}

#[test]
fn a_node_whose_public_url_is_an_ip_address_has_no_passkeys() {
    let (_dir, node) = crate::helpers::spawn_node();
    let answer = node.post_json("/api/v1/passkeys/sign-in-options", &json!({}));
    let problem = answer.problem(404);
    assert_eq!(
        problem["type"]
            .as_str()
            .map(|t| t.ends_with("passkeys-unavailable")),
        Some(true)
    );
    let bad = node.post_raw(
        "/api/v1/auth/passkey",
        "application/json",
        b"{\"sign_in_id\":1}",
    );
    assert_eq!(bad.problem(422)["field"], "sign_in_id");
}

#[test]
fn a_flood_of_ceremonies_neither_ends_the_owners_sign_in_nor_blocks_a_registration() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    let registering = node
        .call(
            "POST",
            "/api/v1/passkeys/registration-options",
            Some(&token),
            None,
            &[],
        )
        .json();
    let options = sign_in_options(&node);
    // Anyone may ask for sign-in options, and a session for registration options, many times.
    for _ in 0..1500 {
        assert_eq!(
            node.post_json("/api/v1/passkeys/sign-in-options", &json!({}))
                .status,
            200
        );
    }
    for _ in 0..40 {
        let answer = node.call(
            "POST",
            "/api/v1/passkeys/registration-options",
            Some(&token),
            None,
            &[],
        );
        assert_eq!(answer.status, 200);
    }
    let body = json!({
        "registration_id": registering["registration_id"],
        "credential": authenticator.register(&registering["options"]),
        "label": "Test passkey",
        "capabilities": ALL,
        "networks": [],
        "expires_at": null,
        "binding": binding(&owner, &authenticator, &ALL),
    });
    let added = node.call("POST", "/api/v1/passkeys", Some(&token), Some(&body), &[]);
    assert_eq!(added.status, 201, "{}", added.body);
    let body = json!({
        "sign_in_id": options["sign_in_id"],
        "credential": authenticator.assert(&options["options"]),
    });
    let signed_in = node.post_json("/api/v1/auth/passkey", &body);
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
}

#[test]
fn a_passkey_session_steps_up_with_its_own_passkey_only() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    register(&node, &token, &owner, &mut authenticator, None);
    let mut other = Authenticator::new();
    register(&node, &token, &owner, &mut other, None);
    let signed_in = sign_in(&node, &mut authenticator, false).json();
    let session = signed_in["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let reauth = |authenticator: &mut Authenticator| {
        let body = assertion_body(&node, authenticator);
        node.call(
            "POST",
            "/api/v1/auth/passkey/reauth",
            Some(&session),
            Some(&body),
            &[],
        )
    };
    reauth(&mut other).problem(401);
    // Not stepped up yet: registering needs a fresh assertion.
    node.call(
        "POST",
        "/api/v1/passkeys/registration-options",
        Some(&session),
        None,
        &[],
    )
    .problem(403);
    assert_eq!(reauth(&mut authenticator).status, 204);
    let options = node.call(
        "POST",
        "/api/v1/passkeys/registration-options",
        Some(&session),
        None,
        &[],
    );
    assert_eq!(options.status, 200, "{}", options.body);
}

#[test]
fn a_password_change_leaves_the_prf_copy_as_it_is() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    let copy = prf_copy(&owner_kid(&owner));
    register(
        &node,
        &token,
        &owner,
        &mut authenticator,
        Some(copy.clone()),
    );
    let new = owner.rewrapped("a whole new password for the test 17");
    let body = node.rewrap_body(&owner, &new, Some(&owner.unlock_verifier));
    let changed = node.call(
        "PUT",
        "/api/v1/owner/wrapped-key",
        Some(&token),
        Some(&body),
        &[],
    );
    assert_eq!(changed.status, 204, "{}", changed.body);
    let signed_in = sign_in(&node, &mut authenticator, true).json();
    assert_eq!(signed_in["prf"]["wrapped_key"], copy);
}

#[test]
fn a_counter_is_recorded_only_when_it_moves_forward_from_what_is_stored() {
    let (_dir, node, owner, token) = passkey_node();
    let mut authenticator = Authenticator::new();
    register(&node, &token, &owner, &mut authenticator, None);
    assert_eq!(sign_in(&node, &mut authenticator, false).status, 200);
    let id = authenticator.id();
    // Another assertion recorded counter 1 meanwhile: recording 1 again (a clone checked
    // against the same stored value) changes nothing, a higher one does.
    let (again, forward) = with_store(&node.data_dir, |c| {
        let state: String = c.query_row(
            "SELECT state FROM passkey WHERE credential_id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        let again = siteid::store::passkeys::record_assertion(c, &id, &state, 1, false, now())?;
        let forward = siteid::store::passkeys::record_assertion(c, &id, &state, 2, false, now())?;
        Ok((again, forward))
    });
    assert!(!again);
    assert!(forward);
}
