//! `siteid inbox send`: a signed, end-to-end encrypted message from this site's owner to
//! another site's inbox, for site-to-site messages from the command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use rand::RngCore;
use serde_json::{Value, json};

use super::login::load_key;
use super::node_client::{self, node_origin};
use super::owner_key::read_private_jwk;
use super::{Failure, NodeArgs, known_public_url, open_store, unwrap_node_key};
use crate::clock::{Clock, SystemClock};
use crate::jose::b64;
use crate::jose::ecdh;
use crate::jose::jwk::OwnerPrivateKey;
use crate::jose::jwk::OwnerPublicKey;
use crate::jose::jws::sign_es384;
use crate::keys::JwsAlgorithm;
use crate::outbound::{self, OutboundPolicy};
use crate::store::meta;

/// The `typ` of a signed message (the plaintext of a message from a site).
pub const MESSAGE_TYPE: &str = "siteid-message+jwt";
/// The longest message text accepted from the command line, in bytes.
const MAX_TEXT_LEN: usize = 64 * 1024;

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Sign a message as this site and send it, encrypted to the other site's published
    /// encryption key, to that site's inbox; prints the message id.
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient site, by its URL: https, or plain http to this machine only.
    #[arg(long)]
    pub to: String,
    /// A private key file that signs (PEM or OpenSSH; ES256 or ES384): the owner key, which
    /// this site's JWKS publishes, so that the recipient sees the message as verified.
    #[arg(long, group = "signer")]
    pub from_key: Option<PathBuf>,
    /// File holding the key file's passphrase [default: ask when the key has one].
    #[arg(long, requires = "from_key")]
    pub passphrase_file: Option<PathBuf>,
    /// The owner key as a private JWK file (as `shares combine` prints it).
    #[arg(long, group = "signer")]
    pub private_jwk: Option<PathBuf>,
    /// Sign with the owner key of the node in `--data-dir`, unwrapped with the password in
    /// this file.
    #[arg(long, group = "signer")]
    pub password_file: Option<PathBuf>,
    /// This site's URL, the message's `iss` [default: the node's public URL].
    #[arg(long)]
    pub from: Option<String>,
    /// The message's subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// The message's text.
    #[arg(long)]
    pub text: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Runs an `inbox` command.
pub fn run(command: &InboxCommand) -> Result<(), Failure> {
    match command {
        InboxCommand::Send(args) => send(args),
    }
}

/// The recipient's encryption key and inbox, read from its JWKS answer.
struct Recipient {
    key: OwnerPublicKey,
    kid: String,
    inbox: String,
}

/// Reads the recipient's JWKS: its P-384 `ECDH-ES+A256KW` key and its inbox (the `Link` with
/// the Linked Data Notifications inbox relation, on the recipient's own origin, or
/// `/api/v1/inbox` there). The fetch follows the node's outbound rules; loopback only for a
/// recipient on loopback.
fn recipient(origin: &str) -> Result<Recipient, Failure> {
    let on_loopback = url::Url::parse(origin)
        .ok()
        .and_then(|url| url.host().map(|host| host.to_owned()))
        .is_some_and(|host| match host {
            url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        });
    let policy = OutboundPolicy {
        loopback_allowed: on_loopback,
        ..OutboundPolicy::default()
    };
    let jwks_url = format!("{origin}/.well-known/jwks.json");
    let fetched = outbound::fetch(
        &jwks_url,
        "application/jwk-set+json, application/json",
        &policy,
    )
    .map_err(|e| Failure::new(format!("fetching {jwks_url}: the fetch {e}")))?;
    let jwks: Value = serde_json::from_slice(&fetched.body)
        .map_err(|e| Failure::new(format!("{jwks_url} is not JSON: {e}")))?;
    let key = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| {
            key["use"] == "enc"
                && key["kty"] == "EC"
                && key["crv"] == "P-384"
                && key["alg"] == crate::auth::encryption_keys::KEY_ALG
        })
        .ok_or_else(|| {
            Failure::new(format!(
                "{jwks_url} publishes no P-384 encryption key (use \"enc\", alg ECDH-ES+A256KW)"
            ))
        })?;
    if key.get("d").is_some() {
        return Err(Failure::new(format!(
            "{jwks_url} publishes the private half of its encryption key: it is not safe to use"
        )));
    }
    let bare = json!({"kty": key["kty"], "crv": key["crv"], "x": key["x"], "y": key["y"]});
    let public = OwnerPublicKey::from_json(&bare.to_string())
        .map_err(|e| Failure::new(format!("the encryption key of {origin} {e}")))?;
    // The JWKS's kid names the key for its recipient (a siteid node's is the thumbprint); a
    // kid that no JWE header should carry is refused.
    let kid = match key.get("kid") {
        None => public.thumbprint(),
        Some(Value::String(kid))
            if !kid.is_empty() && kid.len() <= 128 && printable(kid) == *kid =>
        {
            kid.clone()
        }
        Some(_) => {
            return Err(Failure::new(format!(
                "{jwks_url} names its encryption key with a kid that is not 1 to 128 printable \
                 characters"
            )));
        }
    };
    let inbox =
        outbound::parse_link_header(&fetched.links, crate::inbox::INBOX_REL, &fetched.final_url)
            .filter(|url| {
                url.origin().ascii_serialization() == origin
                    && url.username().is_empty()
                    && url.password().is_none()
            })
            .map(String::from)
            .unwrap_or_else(|| format!("{origin}/api/v1/inbox"));
    Ok(Recipient {
        key: public,
        kid,
        inbox,
    })
}

/// The `iss` of messages from this site: `--from`, or the node's known public URL.
fn sender(args: &SendArgs) -> Result<String, Failure> {
    if let Some(from) = &args.from {
        return crate::inbox::sender_origin(from)
            .map(|url| url.as_str().trim_end_matches('/').to_owned())
            .map_err(|e| Failure::new(format!("--from: {e}")));
    }
    let (settings, store) = open_store(&args.node)?;
    let served = store.run_blocking(|c| meta::get_text(c, meta::SERVED_PUBLIC_URL))?;
    store.close()?;
    Ok(known_public_url(&settings, served).as_str().to_owned())
}

/// The key that signs a message: a key file, or the owner key itself.
enum MessageSigner {
    KeyFile(Box<crate::keys::private::PrivateKey>),
    Owner(OwnerPrivateKey),
}

impl MessageSigner {
    /// The signer the arguments name: `--from-key`, `--private-jwk` or `--password-file`.
    fn from_args(args: &SendArgs) -> Result<Self, Failure> {
        if let Some(path) = &args.from_key {
            let key = load_key(path, args.passphrase_file.as_deref())?;
            if !matches!(key.algorithm(), JwsAlgorithm::Es256 | JwsAlgorithm::Es384) {
                return Err(Failure::new(format!(
                    "--from-key: a message is signed with ES256 or ES384 (a P-256 or P-384 key), \
                     which is what readers verify; this key signs with {}",
                    key.algorithm().as_str()
                )));
            }
            return Ok(MessageSigner::KeyFile(Box::new(key)));
        }
        if let Some(path) = &args.private_jwk {
            return read_private_jwk(path).map(MessageSigner::Owner);
        }
        if let Some(path) = &args.password_file {
            let (_, store) = open_store(&args.node)?;
            let key = unwrap_node_key(&store, Some(path))?;
            store.close()?;
            return Ok(MessageSigner::Owner(key));
        }
        Err(Failure::new(
            "name the key that signs: --from-key FILE, --private-jwk FILE or --password-file FILE",
        ))
    }

    /// A compact `siteid-message+jwt` of `claims`.
    fn sign(&self, claims: &Value) -> String {
        match self {
            MessageSigner::KeyFile(key) => key.sign_compact(
                &json!({"alg": key.algorithm().as_str(), "typ": MESSAGE_TYPE, "kid": key.public_key().thumbprint()}),
                claims,
            ),
            MessageSigner::Owner(key) => sign_es384(
                key,
                &json!({"alg": "ES384", "typ": MESSAGE_TYPE, "kid": key.public_key().thumbprint()}),
                claims,
            ),
        }
    }
}

fn send(args: &SendArgs) -> Result<(), Failure> {
    if args.text.len() > MAX_TEXT_LEN {
        return Err(Failure::new(format!(
            "--text: at most {MAX_TEXT_LEN} bytes"
        )));
    }
    let to = node_origin(&args.to).map_err(|e| Failure::new(format!("--to: {e}")))?;
    let iss = sender(args)?;
    let signer = MessageSigner::from_args(args)?;
    let recipient = recipient(&to)?;
    let inbox = recipient.inbox.clone();
    let now = SystemClock.now();
    let mut jti = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut jti);
    let mut body = json!({ "text": args.text });
    if let Some(subject) = &args.subject {
        body["subject"] = json!(subject);
    }
    let signed = signer
        .sign(&json!({"iss": iss, "aud": to, "iat": now, "jti": b64::encode(&jti), "body": body}));
    let message = ecdh::encrypt_compact(
        recipient.key.point(),
        &recipient.kid,
        signed.as_bytes(),
        Some("JWT"),
    );
    let (status, answer) = node_client::post_json(&inbox, Some(&json!({ "message": message })))
        .map_err(|e| Failure::new(format!("sending to {inbox}: {e}")))?;
    if status != 201 {
        return Err(Failure::new(format!(
            "{inbox} refused the message: {}",
            printable(&node_client::problem_detail(status, &answer))
        )));
    }
    println!("{}", printable(answer["id"].as_str().unwrap_or_default()));
    Ok(())
}

/// Text from another site as it may reach a terminal: control characters (escape sequences) and
/// bidirectional overrides shown as `?`, and at most 500 characters.
fn printable(text: &str) -> String {
    let reorders = |c: char| matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.chars()
        .take(500)
        .map(|c| {
            if c.is_control() || reorders(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_sites_text_reaches_the_terminal_without_escape_sequences() {
        assert_eq!(printable("id\u{1b}[2Jx\n"), "id?[2Jx?");
        assert_eq!(printable(&"a".repeat(600)).len(), 500);
        assert_eq!(printable("gnp.\u{202e}exe"), "gnp.?exe");
    }
}
