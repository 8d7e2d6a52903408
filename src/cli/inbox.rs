//! `siteid inbox send`: a signed, end-to-end encrypted message from this site's owner to
//! another site's inbox, for site-to-site messages from the command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use rand::RngCore;
use serde_json::{Value, json};

use super::login::load_key;
use super::node_client::{self, node_origin};
use super::{Failure, NodeArgs, known_public_url, open_store};
use crate::clock::{Clock, SystemClock};
use crate::jose::b64;
use crate::jose::ecdh;
use crate::jose::jwk::OwnerPublicKey;
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
    /// The private key that signs (PEM or OpenSSH): the owner key, which this site's JWKS
    /// publishes, so that the recipient sees the message as verified.
    #[arg(long)]
    pub from_key: PathBuf,
    /// File holding the key's passphrase [default: ask when the key has one].
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
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
/// the Linked Data Notifications inbox relation, or `/api/v1/inbox` on its origin).
fn recipient(origin: &str) -> Result<Recipient, Failure> {
    let policy = OutboundPolicy {
        loopback_allowed: true,
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
    let bare = json!({"kty": key["kty"], "crv": key["crv"], "x": key["x"], "y": key["y"]});
    let public = OwnerPublicKey::from_json(&bare.to_string())
        .map_err(|e| Failure::new(format!("the encryption key of {origin} {e}")))?;
    let kid = key["kid"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| public.thumbprint());
    let inbox =
        outbound::parse_link_header(&fetched.links, crate::inbox::INBOX_REL, &fetched.final_url)
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

fn send(args: &SendArgs) -> Result<(), Failure> {
    if args.text.len() > MAX_TEXT_LEN {
        return Err(Failure::new(format!(
            "--text: at most {MAX_TEXT_LEN} bytes"
        )));
    }
    let to = node_origin(&args.to).map_err(|e| Failure::new(format!("--to: {e}")))?;
    let iss = sender(args)?;
    let key = load_key(&args.from_key, args.passphrase_file.as_deref())?;
    let recipient = recipient(&to)?;
    let inbox = node_origin(&recipient.inbox)
        .map(|_| recipient.inbox.clone())
        .or_else(|_| {
            // An inbox with a path: the same rule for its scheme and host as any node URL.
            let url = url::Url::parse(&recipient.inbox).map_err(|e| e.to_string())?;
            node_origin(&url.origin().ascii_serialization()).map(|_| recipient.inbox.clone())
        })
        .map_err(|e: String| Failure::new(format!("the recipient's inbox: {e}")))?;
    let now = SystemClock.now();
    let mut jti = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut jti);
    let mut body = json!({ "text": args.text });
    if let Some(subject) = &args.subject {
        body["subject"] = json!(subject);
    }
    let signed = key.sign_compact(
        &json!({"alg": key.algorithm().as_str(), "typ": MESSAGE_TYPE, "kid": key.public_key().thumbprint()}),
        &json!({"iss": iss, "aud": to, "iat": now, "jti": b64::encode(&jti), "body": body}),
    );
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
            node_client::problem_detail(status, &answer)
        )));
    }
    println!("{}", answer["id"].as_str().unwrap_or_default());
    Ok(())
}
