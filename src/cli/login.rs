//! `siteid login`: signs in to a node with a private key file (PEM or OpenSSH) and prints an
//! access token, or with `--ws` keeps a WebSocket open and prints what the node sends.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::node_client::{self, node_origin, post_json, problem_detail};
use super::node_trust::{self, KnownNodes, NodeTrustError, TrustArgs, TrustSource, TrustedNode};
use super::{Failure, read_password_file};
use crate::clock::{Clock, SystemClock};
use crate::keys::JwsAlgorithm;
use crate::keys::private::{MAX_PRIVATE_KEY_LEN, PrivateKey, PrivateKeyError};

/// How long an assertion made here lives, in seconds (the node accepts up to 300).
const ASSERTION_LIFETIME: i64 = 120;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The node, by its public URL: https, or plain http to this machine only.
    #[arg(long)]
    pub node: String,
    /// The credential's private key: PEM (SEC1, PKCS#8 or PKCS#1) or an OpenSSH private key.
    #[arg(long)]
    pub key: PathBuf,
    /// File holding the key's passphrase (one trailing newline is removed) [default: ask when
    /// the key has one].
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// The algorithm the credential was registered for, when it is not the key type's own:
    /// PS256 for an RSA key registered with a JWK that names it.
    #[arg(long)]
    pub alg: Option<String>,
    /// Keep a WebSocket open instead, and print every message the node sends, one JSON object
    /// per line, until it closes.
    #[arg(long)]
    pub ws: bool,
    /// Which owner key the node is checked from before anything is signed for it.
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Runs `siteid login`.
pub fn run(args: &LoginArgs) -> Result<(), Failure> {
    let origin = node_origin(&args.node).map_err(|e| Failure::new(format!("--node: {e}")))?;
    let mut key = load_key(&args.key, args.passphrase_file.as_deref())?;
    if let Some(name) = &args.alg {
        let alg = JwsAlgorithm::parse(name).ok_or_else(|| {
            Failure::new(format!(
                "--alg: {name} is not ES256, ES384, EdDSA, RS256 or PS256"
            ))
        })?;
        key = key
            .with_algorithm(alg)
            .map_err(|e| Failure::new(format!("--alg: {e}")))?;
    }
    // A REST challenge first, also with --ws: its message says which URL the node signs for.
    let (nonce, trusted) = verified_challenge(&origin, &args.trust)?;
    if args.ws {
        return watch(&origin, &key, &trusted);
    }
    let assertion = sign_assertion(&key, &origin, &nonce);
    let (status, body) = post_json(
        &format!("{origin}/api/v1/auth/login"),
        Some(&json!({ "assertion": assertion })),
    )
    .map_err(|e| Failure::new(format!("cannot reach {origin}: {e}")))?;
    if status != 200 {
        return Err(Failure::new(format!(
            "sign-in refused: {}",
            problem_detail(status, &body)
        )));
    }
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| Failure::new("the node's answer has no access_token"))?;
    println!("{token}");
    Ok(())
}

/// Reads a private key file, asking for its passphrase (or reading `passphrase_file`) when it
/// has one.
pub fn load_key(path: &Path, passphrase_file: Option<&Path>) -> Result<PrivateKey, Failure> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Failure::new(format!("cannot read the key {}: {e}", path.display()))
    };
    let metadata = std::fs::metadata(path).map_err(|e| unreadable(&e))?;
    if metadata.len() > MAX_PRIVATE_KEY_LEN as u64 {
        return Err(unreadable(&"it is larger than any key file"));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| unreadable(&e))?);
    let refused = |e: PrivateKeyError| Failure::new(format!("the key {}: {e}", path.display()));
    match PrivateKey::from_pem(&text, None) {
        Err(PrivateKeyError::NeedsPassphrase) => {}
        other => return other.map_err(refused),
    }
    let passphrase = match passphrase_file {
        Some(file) => read_password_file(file)?,
        None => Zeroizing::new(
            rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
                .map_err(|e| Failure::new(format!("cannot read the passphrase: {e}")))?,
        ),
    };
    PrivateKey::from_pem(&text, Some(passphrase.as_bytes())).map_err(refused)
}

/// Checks the node before anything is signed for it (see [`node_trust`]): the owner key it is
/// trusted from bound its node key for `origin`, and the node signs a fresh nonce of ours with
/// that key. Keeps what was verified in the known-nodes file; returns the challenge's nonce.
fn verified_challenge(origin: &str, trust: &TrustArgs) -> Result<(String, TrustedNode), Failure> {
    let refused = |message: String| Failure {
        message,
        code: super::owner_key::EXIT_BROKEN,
    };
    // With --pin the file is not needed to trust the node: one that cannot be found or read is
    // left alone. Without it, the file is the trust, and must be usable.
    let known = match trust
        .known_nodes_path()
        .and_then(|path| KnownNodes::load(&path))
    {
        Ok(known) => Some(known),
        Err(message) if trust.pin.is_some() => {
            eprintln!("siteid: not keeping this node: {message}");
            None
        }
        Err(message) => return Err(Failure::new(message)),
    };
    let client_nonce = crate::jose::b64::encode(&rand::random::<[u8; 32]>());
    let (nonce, _, proof) = challenge(origin, Some(&client_nonce))?;
    let trusted = node_trust::trusted_node_key(
        &node_client::fetch,
        origin,
        trust.pin.as_deref(),
        known.as_ref(),
    )
    .map_err(|e| match e {
        NodeTrustError::Unreachable(message) => Failure::new(message),
        NodeTrustError::Refused(message) => refused(message),
    })?;
    let proof = proof.ok_or_else(|| {
        refused(format!(
            "{origin} is not the node the owner key {} vouches for: it did not sign our nonce",
            trusted.trusted_kid
        ))
    })?;
    let now = SystemClock.now();
    trusted
        .check_proof(&proof, &nonce, &client_nonce, now)
        .map_err(|why| {
            refused(format!(
                "{origin} is not the node the owner key {} vouches for: the node {why}",
                trusted.trusted_kid
            ))
        })?;
    report(
        origin,
        &trusted,
        known.as_ref().and_then(|known| known.get(origin)),
    );
    if let Some(mut known) = known {
        known.remember(origin, &trusted, now);
        known.save().map_err(Failure::new)?;
    }
    Ok((nonce, trusted))
}

/// Says on stderr what was verified, and what changed since the node was last seen.
fn report(origin: &str, trusted: &TrustedNode, kept: Option<&node_trust::KnownNode>) {
    match trusted.source {
        TrustSource::FirstContact => eprintln!(
            "siteid: first contact with {origin}: trusting the owner key {} it publishes from \
             now on (node key {})",
            trusted.owner_kid, trusted.node_kid
        ),
        TrustSource::Known | TrustSource::Pinned => eprintln!(
            "siteid: {origin} is the node the owner key {} bound (node key {})",
            trusted.owner_kid, trusted.node_kid
        ),
    }
    if trusted.owner_kid != trusted.trusted_kid {
        eprintln!(
            "siteid: the owner key changed from {} to {} through signed statements",
            trusted.trusted_kid, trusted.owner_kid
        );
    }
    if let Some(kept) = kept.filter(|kept| kept.node_kid != trusted.node_kid) {
        eprintln!(
            "siteid: the node key changed from {} to {}, bound by the owner key",
            kept.node_kid, trusted.node_kid
        );
    }
}

/// Asks `origin` for a REST challenge, with our own nonce when given; checks that the node
/// names itself by `origin`. Returns the nonce, the message and the node's proof, if any.
pub(super) fn challenge(
    origin: &str,
    client_nonce: Option<&str>,
) -> Result<(String, String, Option<String>), Failure> {
    let body = client_nonce.map(|client_nonce| json!({ "client_nonce": client_nonce }));
    let (status, body) = post_json(&format!("{origin}/api/v1/auth/challenge"), body.as_ref())
        .map_err(|e| Failure::new(format!("cannot reach {origin}: {e}")))?;
    if status != 200 {
        return Err(Failure::new(format!(
            "no challenge from {origin}: {}",
            problem_detail(status, &body)
        )));
    }
    let (Some(nonce), Some(message)) = (body["nonce"].as_str(), body["message"].as_str()) else {
        return Err(Failure::new(format!(
            "{origin} did not answer like a siteid node"
        )));
    };
    let expected = format!("siteid login {origin} {nonce}");
    if message != expected {
        let named = message
            .strip_prefix("siteid login ")
            .and_then(|rest| rest.strip_suffix(nonce))
            .map(str::trim_end)
            .unwrap_or("another URL");
        return Err(Failure::new(format!(
            "the node at {origin} signs in for {named}; use --node {named}"
        )));
    }
    let proof = body["node_signature"].as_str().map(str::to_owned);
    Ok((nonce.to_owned(), message.to_owned(), proof))
}

/// A login assertion by `key` for `origin` over `nonce`.
pub(super) fn sign_assertion(key: &PrivateKey, origin: &str, nonce: &str) -> String {
    let now = SystemClock.now();
    key.sign_compact(
        &json!({"alg": key.algorithm().as_str(), "typ": "siteid-login+jwt", "kid": key.public_key().thumbprint()}),
        &json!({"aud": origin, "nonce": nonce, "iat": now, "exp": now + ASSERTION_LIFETIME}),
    )
}

/// Signs in on a WebSocket, after checking the node's proof over the socket's own challenge
/// with the node key `trusted` names, and prints each text message until the node closes it.
fn watch(origin: &str, key: &PrivateKey, trusted: &TrustedNode) -> Result<(), Failure> {
    use std::io::Write;
    use tungstenite::Message;
    let mut socket = node_client::websocket(origin, "/api/v1/ws").map_err(Failure::new)?;
    let mut read_text = |socket: &mut tungstenite::WebSocket<node_client::NodeStream>| loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                return serde_json::from_str::<Value>(text.as_str())
                    .map_err(|e| format!("the node sent a message that is not JSON: {e}"));
            }
            Ok(Message::Close(_)) => return Err("the node closed the socket".to_owned()),
            Ok(_) => continue,
            Err(e) => return Err(format!("the WebSocket failed: {e}")),
        }
    };
    socket.get_mut().set_deadline(Some(
        std::time::Instant::now() + std::time::Duration::from_secs(10),
    ));
    let nonce = node_trust::checked_socket_challenge(
        &mut socket,
        trusted,
        &mut read_text,
        SystemClock.now(),
    )
    .map_err(|why| Failure {
        message: format!("{origin} is not the node the owner key vouches for: {why}"),
        code: super::owner_key::EXIT_BROKEN,
    })?;
    let auth = json!({"type": "auth", "assertion": sign_assertion(key, origin, &nonce)});
    socket
        .send(Message::text(auth.to_string()))
        .map_err(|e| Failure::new(format!("the WebSocket failed: {e}")))?;
    socket.get_mut().set_deadline(None);
    let mut out = std::io::stdout().lock();
    loop {
        let message = socket
            .read()
            .map_err(|e| Failure::new(format!("the WebSocket failed: {e}")))?;
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(text.as_str()).map_err(|e| {
                    Failure::new(format!("the node sent a message that is not JSON: {e}"))
                })?;
                writeln!(out, "{value}")
                    .and_then(|()| out.flush())
                    .map_err(|e| Failure::new(format!("cannot write: {e}")))?;
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                return match code {
                    1000 | 1001 => Ok(()),
                    4401 if reason.is_empty() => Err(Failure::new(
                        "the node closed the socket: sign-in refused or session ended (4401)",
                    )),
                    _ => Err(Failure::new(format!(
                        "the node closed the socket: {reason} ({code})"
                    ))),
                };
            }
            // Pongs to the node's pings are sent by the library on the next read.
            _ => {}
        }
    }
}
