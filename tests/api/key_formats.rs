//! Credentials made with the real `openssl` and `ssh-keygen`: each algorithm and format
//! registers from its PEM or OpenSSH public key, signs in over REST and WebSocket with a JWT
//! (signed by jsonwebtoken or by the key files as the command line reads them), and signs in
//! by pasting the signature those tools print; hostile ES256 and EdDSA tokens are refused.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use siteid::jose::b64;
use siteid::keys::PublicKey;
use siteid::keys::private::PrivateKey;

use crate::helpers::{TestNode, TestOwner, now, spawn_node_behind_proxy};

const CREDENTIALS: &str = "/api/v1/credentials";

/// Runs a tool and returns its standard output; fails the test with the tool's own words, or
/// with how to install it.
pub fn run_tool(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{program} is needed for the key-format tests ({e}); scripts/test installs it, or \
                 run `apt-get install openssl openssh-client`"
            )
        });
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    let output = child.wait_with_output().expect("tool output");
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// How a key's pasted signature is made.
#[derive(Debug, Clone, Copy)]
enum PasteWith {
    /// `openssl dgst -<digest> -sign key.pem | openssl base64`.
    OpensslDgst(&'static str),
    /// `openssl pkeyutl -sign -rawin -inkey key.pem | openssl base64`.
    OpensslRaw,
    /// `ssh-keygen -Y sign -f key -n siteid-login`.
    Sshsig,
}

/// A key pair made by a real tool, in a directory of its own.
pub struct ToolKey {
    _dir: tempfile::TempDir,
    pub name: &'static str,
    /// The private key file as the tool wrote it.
    pub private_path: PathBuf,
    /// The public key as the owner would paste it: PEM SubjectPublicKeyInfo or an OpenSSH line.
    pub public_text: String,
    /// The JWS algorithm the node should record.
    pub alg: &'static str,
    paste: PasteWith,
}

impl ToolKey {
    fn openssl(name: &'static str, generate: &[&str], alg: &'static str, paste: PasteWith) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let private_path = dir.path().join("key.pem");
        let path = private_path.to_str().expect("path");
        let mut args = generate.to_vec();
        args.extend(["-out", path]);
        run_tool("openssl", &args, None);
        let public = run_tool("openssl", &["pkey", "-in", path, "-pubout"], None);
        ToolKey {
            _dir: dir,
            name,
            private_path,
            public_text: String::from_utf8(public).expect("PEM"),
            alg,
            paste,
        }
    }

    fn ssh_keygen(name: &'static str, key_type: &[&str], alg: &'static str) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let private_path = dir.path().join("id");
        let path = private_path.to_str().expect("path");
        let mut args = vec!["-q", "-N", "", "-C", "siteid test", "-f", path];
        args.extend(key_type);
        run_tool("ssh-keygen", &args, None);
        let public = std::fs::read_to_string(dir.path().join("id.pub")).expect("pub");
        ToolKey {
            _dir: dir,
            name,
            private_path,
            public_text: public,
            alg,
            paste: PasteWith::Sshsig,
        }
    }

    /// The key file as `siteid login --key` reads it.
    pub fn private_key(&self) -> PrivateKey {
        let text = std::fs::read_to_string(&self.private_path).expect("key file");
        PrivateKey::from_pem(&text, None).expect("the key file reads")
    }

    /// The key's kid, computed here from the tool's public key.
    pub fn kid(&self) -> String {
        PublicKey::from_text(&self.public_text)
            .expect("public key")
            .thumbprint()
    }

    /// The `format` and `signature` a person pastes after signing `message` with the tool.
    fn pasted_signature(&self, message: &str) -> (&'static str, String) {
        let dir = self.private_path.parent().expect("dir");
        let message_path = dir.join("message");
        std::fs::write(&message_path, message).expect("message");
        let key = self.private_path.to_str().expect("path");
        let message_file = message_path.to_str().expect("path");
        let signature_path = dir.join("signature");
        let signature_file = signature_path.to_str().expect("path");
        let wrapped_base64 = |args: &[&str]| {
            run_tool("openssl", args, None);
            let base64 = run_tool("openssl", &["base64", "-in", signature_file], None);
            String::from_utf8(base64).expect("base64")
        };
        match self.paste {
            PasteWith::OpensslDgst(digest) => (
                "openssl",
                wrapped_base64(&[
                    "dgst",
                    digest,
                    "-sign",
                    key,
                    "-out",
                    signature_file,
                    message_file,
                ]),
            ),
            PasteWith::OpensslRaw => (
                "raw",
                wrapped_base64(&[
                    "pkeyutl",
                    "-sign",
                    "-rawin",
                    "-inkey",
                    key,
                    "-in",
                    message_file,
                    "-out",
                    signature_file,
                ]),
            ),
            PasteWith::Sshsig => {
                let armored = run_tool(
                    "ssh-keygen",
                    &["-Y", "sign", "-f", key, "-n", "siteid-login"],
                    Some(message.as_bytes()),
                );
                ("sshsig", String::from_utf8(armored).expect("armored"))
            }
        }
    }
}

/// Every kind of key the node accepts, as the tools make them.
pub fn tool_keys() -> Vec<ToolKey> {
    vec![
        openssl_p384(),
        ToolKey::openssl(
            "openssl P-256 (SEC1)",
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            "ES256",
            PasteWith::OpensslDgst("-sha256"),
        ),
        ToolKey::openssl(
            "openssl Ed25519",
            &["genpkey", "-algorithm", "ed25519"],
            "EdDSA",
            PasteWith::OpensslRaw,
        ),
        openssl_rsa_2048("RS256"),
        ToolKey::ssh_keygen("ssh-keygen ed25519", &["-t", "ed25519"], "EdDSA"),
        ToolKey::ssh_keygen(
            "ssh-keygen ecdsa P-384",
            &["-t", "ecdsa", "-b", "384"],
            "ES384",
        ),
        ToolKey::ssh_keygen(
            "ssh-keygen ecdsa P-256",
            &["-t", "ecdsa", "-b", "256"],
            "ES256",
        ),
        ToolKey::ssh_keygen("ssh-keygen rsa 3072", &["-t", "rsa", "-b", "3072"], "RS256"),
    ]
}

/// The owner's binding over a credential's fields.
pub fn binding(owner: &TestOwner, id: &str, kid: &str, capabilities: &[&str]) -> String {
    siteid::jose::jws::sign_es384(
        &owner.key,
        &json!({"alg": "ES384", "typ": "siteid-credential+jwt", "kid": owner.key.public_key().thumbprint()}),
        &json!({
            "sub": kid, "kind": "key", "label": "a tool's key", "cap": capabilities, "net": [],
            "iat": now(), "jti": id,
        }),
    )
}

/// Registers `public_key` (a JWK object or a string) bound with `capabilities`; returns the
/// answer.
pub fn register(
    node: &TestNode,
    token: &str,
    owner: &TestOwner,
    public_key: Value,
    kid: &str,
    capabilities: &[&str],
) -> crate::helpers::Answer {
    let id = b64::encode(&rand::random::<[u8; 16]>());
    node.call(
        "POST",
        CREDENTIALS,
        Some(token),
        Some(&json!({
            "id": id,
            "kind": "key",
            "label": "a tool's key",
            "public_key": public_key,
            "capabilities": capabilities,
            "networks": [],
            "expires_at": null,
            "binding": binding(owner, &id, kid, capabilities),
        })),
        &[],
    )
}

/// A node behind a trusted proxy (so tests play many clients), claimed, with a stepped-up owner
/// session.
fn owner_node() -> (tempfile::TempDir, TestNode, TestOwner, String) {
    let (dir, node) = spawn_node_behind_proxy();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (owner_token, _) = node.login_stepped_up(&owner);
    (dir, node, owner, owner_token)
}

/// Registers a tool's public key as it prints it, with capability `session`; returns the
/// credential.
fn register_tool_key(node: &TestNode, token: &str, owner: &TestOwner, key: &ToolKey) -> Value {
    let answer = register(
        node,
        token,
        owner,
        json!(key.public_text),
        &key.kid(),
        &["session"],
    );
    assert_eq!(answer.status, 201, "{}: {}", key.name, answer.body);
    answer.json()
}

/// A login assertion by `key` for `node` over `nonce`.
pub fn assertion(node: &TestNode, key: &PrivateKey, nonce: &str) -> String {
    let t = now();
    key.sign_compact(&json!({"alg": key.algorithm().as_str(), "typ": "siteid-login+jwt", "kid": key.public_key().thumbprint()}),
        &json!({"aud": node.base_url, "nonce": nonce, "iat": t, "exp": t + 300}),
    )
}

/// An assertion in `alg` signed by jsonwebtoken (an independent JOSE library) from the PEM file.
fn assertion_by_jsonwebtoken(node: &TestNode, key: &ToolKey, alg: &str, nonce: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    // jsonwebtoken (without its PEM feature) reads PKCS#8 DER for EC and Ed25519 keys and
    // PKCS#1 DER for RSA keys; openssl writes both.
    let path = key.private_path.to_str().expect("path");
    let pkcs8 = run_tool(
        "openssl",
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", path, "-outform", "DER",
        ],
        None,
    );
    let pkcs1 = || {
        run_tool(
            "openssl",
            &["rsa", "-in", path, "-outform", "DER", "-traditional"],
            None,
        )
    };
    let (algorithm, encoding) = match alg {
        "ES256" => (Algorithm::ES256, EncodingKey::from_ec_der(&pkcs8)),
        "ES384" => (Algorithm::ES384, EncodingKey::from_ec_der(&pkcs8)),
        "EdDSA" => (Algorithm::EdDSA, EncodingKey::from_ed_der(&pkcs8)),
        "RS256" => (Algorithm::RS256, EncodingKey::from_rsa_der(&pkcs1())),
        "PS256" => (Algorithm::PS256, EncodingKey::from_rsa_der(&pkcs1())),
        other => panic!("no jsonwebtoken algorithm for {other}"),
    };
    let mut header = Header::new(algorithm);
    header.typ = Some("siteid-login+jwt".into());
    header.kid = Some(key.kid());
    let t = now();
    jsonwebtoken::encode(
        &header,
        &json!({"aud": node.base_url, "nonce": nonce, "iat": t, "exp": t + 300}),
        &encoding,
    )
    .unwrap_or_else(|e| panic!("jsonwebtoken signs with {} as {alg}: {e}", key.name))
}

fn login(node: &TestNode, body: &Value, client: &str) -> crate::helpers::Answer {
    node.post_json_with("/api/v1/auth/login", body, &[("x-forwarded-for", client)])
}

/// A fresh challenge: its nonce and the message a pasted signature signs.
fn challenge(node: &TestNode) -> (String, String) {
    let body = node.post_raw("/api/v1/auth/challenge", "", b"").json();
    (
        body["nonce"].as_str().expect("nonce").to_owned(),
        body["message"].as_str().expect("message").to_owned(),
    )
}

fn session_of(node: &TestNode, answer: &crate::helpers::Answer, client: &str) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    node.call(
        "GET",
        "/api/v1/session",
        Some(&token),
        None,
        &[("x-forwarded-for", client)],
    )
    .json()
}

#[test]
fn keys_from_openssl_and_ssh_keygen_sign_in_by_jwt_over_rest_and_websocket_and_by_pasting() {
    let (_dir, node, owner, owner_token) = owner_node();
    for (index, key) in tool_keys().iter().enumerate() {
        let client = format!("198.18.1.{index}");
        let name = key.name;
        let created = register_tool_key(&node, &owner_token, &owner, key);
        assert_eq!(created["alg"], key.alg, "{name}");
        assert_eq!(created["kid"], key.kid(), "{name}");
        let private = key.private_key();
        assert_eq!(private.public_key().thumbprint(), key.kid(), "{name}");

        // A JWT made from the key file as `siteid login` reads it.
        let (nonce, _) = challenge(&node);
        let signed = assertion(&node, &private, &nonce);
        let session = session_of(
            &node,
            &login(&node, &json!({"assertion": signed}), &client),
            &client,
        );
        assert_eq!(session["kid"], key.kid(), "{name}");
        assert_eq!(session["credential_id"], created["id"], "{name}");

        // A JWT signed by jsonwebtoken from the same file (the openssl keys are PEM).
        if key.private_path.extension().is_some_and(|e| e == "pem") {
            let (nonce, _) = challenge(&node);
            let signed = assertion_by_jsonwebtoken(&node, key, key.alg, &nonce);
            let answer = login(&node, &json!({"assertion": signed}), &client);
            assert_eq!(
                answer.status, 200,
                "{name} by jsonwebtoken: {}",
                answer.body
            );
        }

        // A signature pasted from the tool over the challenge's message.
        let (nonce, message) = challenge(&node);
        assert_eq!(message, format!("siteid login {} {nonce}", node.base_url));
        let (format, signature) = key.pasted_signature(&message);
        let body =
            json!({"kid": key.kid(), "nonce": nonce, "signature": signature, "format": format});
        let answer = login(&node, &body, &client);
        let session = session_of(&node, &answer, &client);
        assert_eq!(
            session["credential_id"], created["id"],
            "{name} pasted {format}"
        );
        // The nonce is used up: the same paste cannot sign in twice.
        let again = login(&node, &body, &client);
        assert_eq!(
            again.problem(401)["type"],
            "urn:siteid:problem:invalid-assertion",
            "{name}: a replayed paste"
        );
        assert!(again.body.contains("already been used"), "{}", again.body);

        // A WebSocket signs in with the key's JWT.
        let socket = crate::credentials::signed_in_socket_with(&node, &|nonce| {
            assertion(&node, &private, nonce)
        });
        drop(socket);
    }
}

#[test]
fn a_pasted_signature_must_be_over_this_message_by_this_key_in_its_format() {
    let (_dir, node, owner, owner_token) = owner_node();
    let keys = tool_keys();
    let (p384, ed25519, rsa, ssh_ed25519) = (&keys[0], &keys[2], &keys[3], &keys[4]);
    for key in [p384, ed25519, rsa, ssh_ed25519] {
        register_tool_key(&node, &owner_token, &owner, key);
    }
    let mut attempt = 0;
    let mut refused = |why: &str, body: Value| {
        attempt += 1;
        let answer = login(&node, &body, &format!("198.18.2.{attempt}"));
        assert_eq!(answer.status, 401, "{why}: {}", answer.body);
        assert_eq!(
            answer.problem(401)["type"],
            "urn:siteid:problem:invalid-assertion",
            "{why}"
        );
    };
    let (nonce, message) = challenge(&node);
    let (_, p384_signature) = p384.pasted_signature(&message);
    let with_kid = |kid: String, signature: &str, format: &str| json!({"kid": kid, "nonce": nonce, "signature": signature, "format": format});
    refused(
        "another key's kid",
        with_kid(rsa.kid(), &p384_signature, "openssl"),
    );
    refused(
        "an unknown kid",
        with_kid("AAAA".into(), &p384_signature, "openssl"),
    );
    refused(
        "a format that is not one of ours",
        with_kid(p384.kid(), &p384_signature, "pkcs7"),
    );
    refused(
        "raw for an EC key",
        with_kid(p384.kid(), &p384_signature, "raw"),
    );
    refused("not base64", with_kid(p384.kid(), "not base64!", "openssl"));
    refused(
        "over 8 KiB",
        with_kid(p384.kid(), &"A".repeat(9000), "openssl"),
    );
    let (_, other_message) = challenge(&node);
    let (_, signed_other) = p384.pasted_signature(&other_message);
    refused(
        "a signature over another challenge's message",
        with_kid(p384.kid(), &signed_other, "openssl"),
    );
    let (_, over_nonce_only) = p384.pasted_signature(&nonce);
    refused(
        "a signature over the bare nonce",
        with_kid(p384.kid(), &over_nonce_only, "openssl"),
    );
    let (_, ed_signature) = ed25519.pasted_signature(&message);
    refused(
        "an Ed25519 signature with a bit flipped",
        with_kid(ed25519.kid(), &flip_a_bit(&ed_signature), "raw"),
    );
    let (_, ssh_signature) = ssh_ed25519.pasted_signature(&message);
    let foreign_namespace = run_tool(
        "ssh-keygen",
        &[
            "-Y",
            "sign",
            "-f",
            ssh_ed25519.private_path.to_str().expect("path"),
            "-n",
            "file",
        ],
        Some(message.as_bytes()),
    );
    refused(
        "an SSH signature in namespace file",
        with_kid(
            ssh_ed25519.kid(),
            &String::from_utf8(foreign_namespace).expect("armored"),
            "sshsig",
        ),
    );
    refused(
        "an SSH signature under another kid",
        with_kid(ed25519.kid(), &ssh_signature, "sshsig"),
    );
    let both = login(
        &node,
        &json!({"assertion": "a.b.c", "kid": p384.kid(), "nonce": nonce, "signature": p384_signature, "format": "openssl"}),
        "198.18.2.199",
    );
    assert_eq!(
        both.problem(422)["field"],
        "assertion",
        "an assertion and a paste together"
    );
    let part = login(
        &node,
        &json!({"kid": p384.kid(), "nonce": nonce, "signature": p384_signature}),
        "198.18.2.199",
    );
    assert_eq!(
        part.problem(422)["field"],
        "assertion",
        "a paste without its format"
    );
    // None of the refusals used the nonce up: the right paste still signs in.
    let answer = login(
        &node,
        &with_kid(p384.kid(), &p384_signature, "openssl"),
        "198.18.2.200",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Flips one bit inside a base64 signature's bytes.
fn flip_a_bit(wrapped: &str) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let compact: String = wrapped.split_ascii_whitespace().collect();
    let mut bytes = engine.decode(compact).expect("base64");
    bytes[10] ^= 1;
    engine.encode(bytes)
}

#[test]
fn an_rsa_jwk_that_names_ps256_signs_in_only_with_ps256() {
    let (_dir, node, owner, owner_token) = owner_node();
    // `siteid login` below checks the node key's binding first.
    crate::node_key::bind_current_node_key(&node, &owner_token, &owner);
    let key = openssl_rsa_2048("PS256");
    let public = PublicKey::from_text(&key.public_text).expect("public");
    let mut jwk: Value = serde_json::from_str(&public.to_jwk_json()).expect("jwk");
    jwk["alg"] = json!("PS256");
    jwk["use"] = json!("sig");
    let answer = register(&node, &owner_token, &owner, jwk, &key.kid(), &["session"]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.json()["alg"], "PS256");
    let (nonce, _) = challenge(&node);
    let signed = assertion_by_jsonwebtoken(&node, &key, "RS256", &nonce);
    let answer = login(&node, &json!({"assertion": signed}), "198.18.3.1");
    assert!(
        answer.problem(401)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("signs with PS256")),
        "{}",
        answer.body
    );
    let (nonce, _) = challenge(&node);
    let signed = assertion_by_jsonwebtoken(&node, &key, "PS256", &nonce);
    let answer = login(&node, &json!({"assertion": signed}), "198.18.3.2");
    assert_eq!(answer.status, 200, "{}", answer.body);

    // openssl's RSA signatures are PKCS#1 v1.5, so a PS256 credential cannot sign in by paste.
    let (nonce, message) = challenge(&node);
    let (format, signature) = key.pasted_signature(&message);
    let body = json!({"kid": key.kid(), "nonce": nonce, "signature": signature, "format": format});
    let answer = login(&node, &body, "198.18.3.3");
    assert!(
        answer.problem(401)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PS256")),
        "{}",
        answer.body
    );

    // The command line signs PS256 when told to.
    let path = key.private_path.to_str().expect("path");
    let (ok, _, err) = siteid(&["login", "--node", &node.base_url, "--key", path]);
    assert!(!ok && err.contains("signs with PS256"), "{err}");
    let (ok, token, err) = siteid(&[
        "login",
        "--node",
        &node.base_url,
        "--key",
        path,
        "--alg",
        "PS256",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        node.call("GET", "/api/v1/session", Some(token.trim()), None, &[])
            .json()["kid"],
        key.kid()
    );
}

#[test]
fn a_compressed_ec_point_is_refused_in_every_format() {
    let (_dir, node, owner, owner_token) = owner_node();
    let key = ToolKey::openssl(
        "openssl P-256 (SEC1)",
        &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
        "ES256",
        PasteWith::OpensslDgst("-sha256"),
    );
    let compressed = run_tool(
        "openssl",
        &[
            "ec",
            "-in",
            key.private_path.to_str().expect("path"),
            "-pubout",
            "-conv_form",
            "compressed",
        ],
        None,
    );
    let compressed = String::from_utf8(compressed).expect("PEM");
    let answer = register(
        &node,
        &owner_token,
        &owner,
        json!(compressed),
        &key.kid(),
        &["session"],
    );
    assert_eq!(
        answer.problem(422)["field"],
        "public_key",
        "{}",
        answer.body
    );
    // The uncompressed form of the same key is accepted.
    register_tool_key(&node, &owner_token, &owner, &key);
}

#[test]
fn siteid_login_follows_no_redirect() {
    use std::io::{Read, Write};
    // Two loopback listeners: one that redirects every request to the other, which counts them.
    let target = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    target.set_nonblocking(true).expect("nonblocking");
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let location = format!(
        "http://{}/api/v1/auth/challenge",
        target.local_addr().expect("addr")
    );
    let origin = format!("http://{}", redirector.local_addr().expect("addr"));
    let serving = std::thread::spawn(move || {
        // At most a few connections: the command line makes one request and stops.
        for stream in redirector.incoming().take(1) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let key = openssl_p384();
    let path = key.private_path.to_str().expect("path");
    let (ok, _, err) = siteid(&["login", "--node", &origin, "--key", path]);
    assert!(!ok, "a redirect is not a challenge: {err}");
    assert!(err.contains("302") || err.contains("redirect"), "{err}");
    serving.join().expect("redirector");
    assert!(target.accept().is_err(), "the redirect was not followed");
}

/// Hostile tokens for a credential of another algorithm than the owner's: every one is 401.
fn hostile_tokens(
    node: &TestNode,
    key: &PrivateKey,
    stranger: &PrivateKey,
) -> Vec<(String, String)> {
    let kid = key.public_key().thumbprint();
    let alg = key.algorithm().as_str();
    let t = now();
    let header = json!({"alg": alg, "typ": "siteid-login+jwt", "kid": kid});
    let claims =
        |nonce: &str| json!({"aud": node.base_url, "nonce": nonce, "iat": t, "exp": t + 300});
    let with = |mut value: Value, member: &str, new: Value| {
        value[member] = new;
        value
    };
    let mut cases = Vec::new();
    let mut case = |why: &str, token: String| cases.push((why.to_owned(), token));
    let resign = |token: &str, signature: &[u8]| {
        let (input, _) = token.rsplit_once('.').expect("three parts");
        format!("{input}.{}", b64::encode(signature))
    };
    let signature_of =
        |token: &str| b64::decode(token.rsplit_once('.').expect("sig").1).expect("b64");
    let good = |nonce: &str| key.sign_compact(&header, &claims(nonce));

    case(
        "alg none",
        format!(
            "{}.{}.",
            b64::encode(
                with(header.clone(), "alg", json!("none"))
                    .to_string()
                    .as_bytes()
            ),
            b64::encode(claims(&node.challenge()).to_string().as_bytes())
        ),
    );
    for other in [
        "ES384", "ES256", "EdDSA", "RS256", "PS256", "HS256", "Ed25519", "eddsa", "es256",
    ] {
        if other == alg {
            continue;
        }
        case(
            &format!("alg {other} on a {alg} key"),
            key.sign_compact(
                &with(header.clone(), "alg", json!(other)),
                &claims(&node.challenge()),
            ),
        );
    }
    case(
        "typ JWT",
        key.sign_compact(
            &with(header.clone(), "typ", json!("JWT")),
            &claims(&node.challenge()),
        ),
    );
    case(
        "a crit header",
        key.sign_compact(
            &with(header.clone(), "crit", json!(["exp"])),
            &claims(&node.challenge()),
        ),
    );
    case(
        "a jwk header naming the stranger",
        stranger.sign_compact(
            &with(
                header.clone(),
                "jwk",
                serde_json::from_str(&stranger.public_key().to_jwk_json()).expect("jwk"),
            ),
            &claims(&node.challenge()),
        ),
    );
    case(
        "signed by another key of the same type",
        stranger.sign_compact(&header, &claims(&node.challenge())),
    );
    let token = good(&node.challenge());
    let signature = signature_of(&token);
    case(
        "a signature one byte short",
        resign(&token, &signature[..signature.len() - 1]),
    );
    let token = good(&node.challenge());
    case(
        "an all-zero signature",
        resign(&token, &vec![0; signature.len()]),
    );
    let token = good(&node.challenge());
    let mut flipped = signature_of(&token);
    flipped[5] ^= 0x40;
    case("a flipped signature bit", resign(&token, &flipped));
    if alg == "EdDSA" {
        // S + L: the same signature with a non-canonical S (RFC 8032 §5.1.7 refuses it).
        let token = good(&node.challenge());
        let mut raw = signature_of(&token);
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s, l) in raw[32..].iter_mut().zip(order) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        case("a non-canonical S", resign(&token, &raw));
    }
    if alg == "ES256" {
        let token = good(&node.challenge());
        let raw = signature_of(&token);
        let der = p256::ecdsa::Signature::from_slice(&raw)
            .expect("sig")
            .to_der();
        case("a DER signature", resign(&token, der.as_bytes()));
    }
    case(
        "another audience",
        key.sign_compact(
            &header,
            &with(
                claims(&node.challenge()),
                "aud",
                json!("https://other.example"),
            ),
        ),
    );
    case(
        "expired",
        key.sign_compact(
            &header,
            &json!({"aud": node.base_url, "nonce": node.challenge(), "iat": t - 400, "exp": t - 1}),
        ),
    );
    case(
        "exp - iat over 300",
        key.sign_compact(
            &header,
            &with(claims(&node.challenge()), "exp", json!(t + 301)),
        ),
    );
    case(
        "an unknown nonce",
        key.sign_compact(&header, &claims(&b64::encode(&[9; 57]))),
    );
    case(
        "over 8 KiB",
        key.sign_compact(
            &header,
            &with(claims(&node.challenge()), "pad", json!("x".repeat(9000))),
        ),
    );
    cases
}

#[test]
fn hostile_es256_and_eddsa_tokens_are_refused_and_never_sign_in() {
    let (_dir, node, owner, owner_token) = owner_node();
    let keys = tool_keys();
    let mut attempt = 0;
    for (key, stranger) in [(&keys[1], &keys[6]), (&keys[2], &keys[4])] {
        register_tool_key(&node, &owner_token, &owner, key);
        let private = key.private_key();
        let cases = hostile_tokens(&node, &private, &stranger.private_key());
        assert!(cases.len() > 15);
        for (why, token) in cases {
            attempt += 1;
            let answer = login(
                &node,
                &json!({"assertion": token}),
                &format!("198.18.4.{attempt}"),
            );
            assert_eq!(answer.status, 401, "{} {why}: {}", key.name, answer.body);
            answer.problem(401);
        }
        // The good token still signs in, once.
        let (nonce, _) = challenge(&node);
        let good = assertion(&node, &private, &nonce);
        assert_eq!(
            login(&node, &json!({"assertion": good}), "198.18.4.250").status,
            200
        );
        assert_eq!(
            login(&node, &json!({"assertion": good}), "198.18.4.251").status,
            401
        );
    }
    let sessions = node
        .call("GET", "/api/v1/sessions", Some(&owner_token), None, &[])
        .json();
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(3),
        "the owner's session and one good sign-in per key"
    );
}

const BINARY: &str = env!("CARGO_BIN_EXE_siteid");

/// Runs the siteid binary; returns whether it succeeded, its stdout and its stderr.
fn siteid(args: &[&str]) -> (bool, String, String) {
    // `siteid login` keeps the nodes it verified: in a file of this run's, never the real home.
    let known = tempfile::tempdir().expect("dir");
    let output = Command::new(BINARY)
        .args(args)
        .env("SITEID_KNOWN_NODES", known.path().join("known_nodes.json"))
        .stdin(Stdio::null())
        .output()
        .expect("run siteid");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_adds_a_key_signs_in_with_its_file_and_a_revocation_reaches_the_running_node() {
    use std::io::BufRead;
    let (dir, node) = crate::helpers::spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (owner_token, _) = node.login(&owner);
    // `siteid login` below checks the node key's binding first.
    crate::node_key::bind_current_node_key(&node, &owner_token, &owner);
    let data_dir = dir.path().to_str().expect("path").to_owned();
    let work = tempfile::tempdir().expect("dir");
    let password_file = work.path().join("password");
    let password =
        crate::helpers::vector("project_pbes2_hs512_a256kw_a256gcm_p384.json")["password_utf8"]
            .as_str()
            .expect("password")
            .to_owned();
    std::fs::write(&password_file, format!("{password}\n")).expect("password file");
    let password_file = password_file.to_str().expect("path").to_owned();

    // An OpenSSH key with a passphrase, and an openssl P-384 key.
    let ssh_key = work.path().join("id_ed25519");
    let ssh_key_path = ssh_key.to_str().expect("path").to_owned();
    run_tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "correct horse",
            "-f",
            &ssh_key_path,
        ],
        None,
    );
    let passphrase_file = work.path().join("passphrase");
    std::fs::write(&passphrase_file, "correct horse\n").expect("passphrase");
    let passphrase_file = passphrase_file.to_str().expect("path").to_owned();
    let pem_key = &openssl_p384();
    let pem_public = work.path().join("p384.pub.pem");
    std::fs::write(&pem_public, &pem_key.public_text).expect("pem");

    let add = |public: &str, label: &str| {
        let (ok, out, err) = siteid(&[
            "credentials",
            "add",
            "--data-dir",
            &data_dir,
            "--password-file",
            &password_file,
            "--public-key",
            public,
            "--label",
            label,
            "--capability",
            "session",
            "--capability",
            "audit",
        ]);
        assert!(ok, "credentials add: {err}");
        let (id, kid) = out.trim().split_once('\t').expect("id and kid");
        (id.to_owned(), kid.to_owned())
    };
    let (ssh_id, ssh_kid) = add(&format!("{ssh_key_path}.pub"), "laptop ssh key");
    let (pem_id, pem_kid) = add(pem_public.to_str().expect("path"), "openssl key");
    assert_eq!(pem_kid, pem_key.kid());
    let (ok, listed, _) = siteid(&["credentials", "list", "--data-dir", &data_dir]);
    assert!(ok);
    assert!(
        listed.contains(&format!(
            "{ssh_id}\tkey\tEdDSA\t{ssh_kid}\tlaptop ssh key\tsession,audit"
        )),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("{pem_id}\tkey\tES384\t{pem_kid}")),
        "{listed}"
    );

    // The running node accepts the new keys within a second; `siteid login` prints a token.
    let login = |key: &str, extra: &[&str]| {
        let mut args = vec!["login", "--node", node.base_url.as_str(), "--key", key];
        args.extend(extra);
        siteid(&args)
    };
    let mut signed_in = None;
    assert!(crate::helpers::wait_until(
        std::time::Duration::from_secs(10),
        || {
            let (ok, out, _) = login(&ssh_key_path, &["--passphrase-file", &passphrase_file]);
            if ok {
                signed_in = Some(out.trim().to_owned());
            }
            ok
        }
    ));
    let token = signed_in.expect("a token");
    let session = node
        .call("GET", "/api/v1/session", Some(&token), None, &[])
        .json();
    assert_eq!(session["credential_id"], ssh_id);
    assert_eq!(session["capabilities"], json!(["session", "audit"]));
    let (ok, _, err) = login(
        &ssh_key_path,
        &["--passphrase-file", pem_public.to_str().expect("path")],
    );
    assert!(!ok && err.contains("passphrase is wrong"), "{err}");
    let pem_path = pem_key.private_path.to_str().expect("path").to_owned();
    let (ok, _, err) = login(&pem_path, &[]);
    assert!(ok, "{err}");
    let localhost = node.base_url.replace("127.0.0.1", "localhost");
    let (ok, _, err) = siteid(&["login", "--node", &localhost, "--key", &pem_path]);
    assert!(
        !ok && err.contains(&format!("use --node {}", node.base_url)),
        "a node that signs for another URL: {err}"
    );

    // `--ws` prints what the node sends, one JSON object per line, until revocation ends it.
    let mut watcher = Command::new(BINARY)
        .args([
            "login",
            "--node",
            &node.base_url,
            "--key",
            &pem_path,
            "--ws",
            "--known-nodes",
            work.path().join("known_nodes.json").to_str().expect("path"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("siteid login --ws");
    let stdout = watcher.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let ready: Value = serde_json::from_str(
        &received
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a first line"),
    )
    .expect("JSON");
    assert_eq!(ready["type"], "ready", "{ready}");

    let (ok, _, err) = siteid(&["credentials", "revoke", "--data-dir", &data_dir, &pem_id]);
    assert!(ok, "{err}");
    let mut ended = None;
    assert!(
        crate::helpers::wait_until(std::time::Duration::from_secs(10), || {
            ended = watcher.try_wait().expect("wait");
            ended.is_some()
        }),
        "the socket of a key revoked on the command line closes"
    );
    assert!(!ended.expect("status").success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watcher.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert!(err.contains("4401"), "{err}");
    let (ok, _, err) = login(&pem_path, &[]);
    assert!(!ok && err.contains("sign-in refused"), "{err}");
    let (ok, listed, _) = siteid(&["credentials", "list", "--data-dir", &data_dir]);
    assert!(ok && !listed.contains(&pem_id) && listed.contains(&ssh_id));
}

/// An openssl RSA 2048 key (PKCS#8 PEM), to be registered for `alg`.
fn openssl_rsa_2048(alg: &'static str) -> ToolKey {
    ToolKey::openssl(
        "openssl RSA 2048",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        alg,
        PasteWith::OpensslDgst("-sha256"),
    )
}

/// An openssl P-384 key (PKCS#8 PEM).
fn openssl_p384() -> ToolKey {
    ToolKey::openssl(
        "openssl P-384 (PKCS#8)",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
        "ES384",
        PasteWith::OpensslDgst("-sha384"),
    )
}
