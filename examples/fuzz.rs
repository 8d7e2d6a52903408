//! Property-based fuzzing of every parser that reads untrusted input: compact JWS, the wrapped-key
//! JWE and a passkey's PRF copy, the inbox's encrypted messages, JWKs, the recovery share text, the strict JSON body extractor, WebSocket messages,
//! base64url, and the credential keys and signatures people bring (public keys as JWK, PEM, DER
//! and OpenSSH lines; SSH signatures; pasted openssl signatures; private key files), and what an
//! IndieAuth client publishes at its client_id URL (JSON metadata or an HTML h-app). Each target
//! must accept or refuse without panicking and keep its round-trip properties. Run with
//! `scripts/fuzz [SECONDS]`; docs/fuzzing.md explains the driver.
//!
//! Usage: `fuzz [--seconds N] [--seed S] [TARGET...]`, `fuzz --seed S --replay FILE TARGET`,
//! `fuzz --self-check`, `fuzz --list`.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::cipher::{AES_256, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::signature::{self as lc, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Parser;
use p256::elliptic_curve::PrimeField;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p384::ecdsa::signature::{Signer, Verifier};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use siteid::auth::claim::PROOF_TYPE;
use siteid::auth::login::{LOGIN_TYPE, paste_message};
use siteid::http::auth::ProofBody;
use siteid::http::owner::{ClaimBody, ReplaceWrappedKeyBody};
use siteid::http::recovery::NewSetBody;
use siteid::http::unlock::UnlockBody;
use siteid::indieauth::client_page::{
    ClientInfo, ClientPageError, MAX_NAME_CHARS, MAX_REDIRECT_URIS, read_client_page,
};
use siteid::jose::b64;
use siteid::jose::ecdh::{self, DecryptError, EncryptOptions, Envelope};
use siteid::jose::jwe::{self, Kek, KwWrappedKey, WrappedKey};
use siteid::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use siteid::jose::jws::{self, CompactJws, NonceClaims, PROOF_LIFETIME, VerifyingKey};
use siteid::jose::message::{
    self, CheckedMessage, MessageAlg, MessageError, Serialization, check_message,
};
use siteid::keys::paste::{self, PasteError, PasteFormat};
use siteid::keys::private::{PrivateKey, PrivateKeyError};
use siteid::keys::public::{MAX_PUBLIC_KEY_LEN, MAX_RSA_BITS, MIN_RSA_BITS, RsaKey};
use siteid::keys::ssh::{self, SshSigError};
use siteid::keys::{CredentialKey, JwsAlgorithm, KeyError, PublicKey};
use siteid::recovery::share::{self, Share};
use siteid::recovery::{rebuild_key, shamir};
use siteid::ws::protocol::{self, ClientMessage};

/// The largest input any target is given.
const MAX_INPUT: usize = 64 * 1024;
/// The most failing inputs saved per target and run.
const MAX_SAVED_PER_TARGET: usize = 10;
/// The largest pool of inputs to mutate (the seeds plus inputs that showed a rare outcome).
const MAX_POOL: usize = 512;
/// The first this many inputs of each outcome join the pool.
const RARE_OUTCOME: u64 = 4;
/// The most shares the share target reads from one input (separated by `;`).
const MAX_SHARES_PER_INPUT: usize = 20;
/// The password of the fixture's wrapped key, and the passphrase of its encrypted OpenSSH keys.
const PASSWORD: &[u8] = b"correct horse fuzzing staple";
/// The audience of the fixture tokens.
const AUDIENCE: &str = "https://id.example";

#[derive(Parser)]
#[command(
    about = "Fuzzes siteid's parsers of untrusted input",
    after_help = "Targets: jws, jwe, prf_jwe, inbox_message, jwk, share, json, ws, b64, \
                  public_key, spki, sshsig, paste, private_key, client_page (all by default)."
)]
struct Args {
    /// Seconds to run each target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The random seed (decimal or 0x-hex); a fresh one by default. Keys and shares of the
    /// fixtures derive from it, so a replay needs the seed of the run that failed.
    #[arg(long, value_parser = parse_seed)]
    seed: Option<u64>,
    /// Runs one saved input through TARGET and reports the outcome.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Checks that the driver catches a planted panic and a planted property failure.
    #[arg(long)]
    self_check: bool,
    /// Lists the targets.
    #[arg(long)]
    list: bool,
    /// Where failing inputs are saved.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The targets to run.
    targets: Vec<String>,
}

fn parse_seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("not a seed: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

/// What a target did with an input that broke no property.
enum Verdict {
    Accepted,
    /// Accepted, but with a leniency a stricter reader would refuse; the label says which.
    Lenient(String),
    /// Refused, with a short label of where and why (an error variant, a status).
    Refused(String),
}

/// A broken property: the sentence says which.
type Broken = String;

type Check = fn(&Fixtures, &[u8]) -> Result<Verdict, Broken>;
type Finish = fn(&Fixtures, &mut StdRng, Vec<u8>) -> Vec<u8>;

/// What a target's inputs look like, which weighs the structure-aware mutations.
#[derive(Clone, Copy)]
enum Shape {
    /// Dot-separated base64url segments (JOSE compact serialization).
    Compact,
    /// A JSON document.
    Json,
    /// Plain text.
    Text,
}

/// One fuzz target: a parser, its seeds, its vocabulary and its properties.
struct Target {
    name: &'static str,
    shape: Shape,
    /// Hidden targets (the self-test) are not run by default.
    hidden: bool,
    seeds: fn(&Fixtures) -> Vec<Vec<u8>>,
    /// Characters random text for this target is drawn from.
    alphabet: &'static str,
    /// A target-specific last step after the generic mutations (re-signing, re-checksumming).
    finish: Option<Finish>,
    check: Check,
}

const TARGETS: &[Target] = &[
    Target {
        name: "jws",
        shape: Shape::Compact,
        hidden: false,
        seeds: jws_seeds,
        alphabet: B64_ALPHABET,
        finish: Some(jws_finish),
        check: jws_check,
    },
    Target {
        name: "jwe",
        shape: Shape::Compact,
        hidden: false,
        seeds: jwe_seeds,
        alphabet: B64_ALPHABET,
        finish: None,
        check: jwe_check,
    },
    Target {
        name: "prf_jwe",
        shape: Shape::Compact,
        hidden: false,
        seeds: prf_jwe_seeds,
        alphabet: B64_ALPHABET,
        finish: None,
        check: prf_jwe_check,
    },
    Target {
        name: "inbox_message",
        shape: Shape::Json,
        hidden: false,
        seeds: inbox_seeds,
        alphabet: JSON_ALPHABET,
        finish: Some(inbox_finish),
        check: inbox_check,
    },
    Target {
        name: "jwk",
        shape: Shape::Json,
        hidden: false,
        seeds: jwk_seeds,
        alphabet: JSON_ALPHABET,
        finish: None,
        check: jwk_check,
    },
    Target {
        name: "share",
        shape: Shape::Text,
        hidden: false,
        seeds: share_seeds,
        alphabet: SHARE_ALPHABET,
        finish: Some(share_finish),
        check: share_check,
    },
    Target {
        name: "json",
        shape: Shape::Json,
        hidden: false,
        seeds: json_seeds,
        alphabet: JSON_ALPHABET,
        finish: None,
        check: json_check,
    },
    Target {
        name: "ws",
        shape: Shape::Json,
        hidden: false,
        seeds: ws_seeds,
        alphabet: JSON_ALPHABET,
        finish: None,
        check: ws_check,
    },
    Target {
        name: "b64",
        shape: Shape::Compact,
        hidden: false,
        seeds: b64_seeds,
        alphabet: B64_ALPHABET,
        finish: None,
        check: b64_check,
    },
    Target {
        name: "public_key",
        shape: Shape::Json,
        hidden: false,
        seeds: public_key_seeds,
        alphabet: KEY_ALPHABET,
        finish: Some(public_key_finish),
        check: public_key_check,
    },
    Target {
        name: "spki",
        shape: Shape::Text,
        hidden: false,
        seeds: spki_seeds,
        alphabet: DER_ALPHABET,
        finish: Some(spki_finish),
        check: spki_check,
    },
    Target {
        name: "sshsig",
        shape: Shape::Text,
        hidden: false,
        seeds: sshsig_seeds,
        alphabet: KEY_ALPHABET,
        finish: Some(sshsig_finish),
        check: sshsig_check,
    },
    Target {
        name: "paste",
        shape: Shape::Text,
        hidden: false,
        seeds: paste_seeds,
        alphabet: KEY_ALPHABET,
        finish: Some(paste_finish),
        check: paste_check,
    },
    Target {
        name: "private_key",
        shape: Shape::Text,
        hidden: false,
        seeds: private_key_seeds,
        alphabet: KEY_ALPHABET,
        finish: Some(private_key_finish),
        check: private_key_check,
    },
    Target {
        name: "client_page",
        shape: Shape::Json,
        hidden: false,
        seeds: client_page_seeds,
        alphabet: CLIENT_PAGE_ALPHABET,
        finish: Some(client_page_finish),
        check: client_page_check,
    },
    Target {
        name: SELFTEST,
        shape: Shape::Json,
        hidden: true,
        seeds: selftest_seeds,
        alphabet: JSON_ALPHABET,
        finish: None,
        check: selftest_check,
    },
];

const SELFTEST: &str = "selftest-panic";
const B64_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/";
const SHARE_ALPHABET: &str =
    "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyzOoIiLlUu- \t\r\n;";
const JSON_ALPHABET: &str = "{}[]\":,.0123456789-+eEtruefalsn \\u";

/// The label of an error: its enum variant, or its code.
fn variant(error: &impl std::fmt::Debug) -> String {
    let text = format!("{error:?}");
    let end = text.find(['(', ' ', '{']).unwrap_or(text.len());
    text[..end].to_owned()
}

fn text_of(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

// --- jws -------------------------------------------------------------------------------------

fn jws_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let now = 1_700_000_000i64;
    let claims = json!({"aud": AUDIENCE, "nonce": "bm9uY2U", "iat": now, "exp": now + 300});
    let fractional = json!({"aud": AUDIENCE, "nonce": "n", "iat": 1.5e9, "exp": 1.5e9 + 0.25});
    let kid = fx.owner_verifier.kid.clone();
    let tokens = [
        jws::sign_es384(
            &fx.owner,
            &json!({"alg": "ES384", "typ": PROOF_TYPE}),
            &claims,
        ),
        jws::sign_es384(
            &fx.owner,
            &json!({"alg": "ES384", "typ": LOGIN_TYPE, "kid": kid}),
            &claims,
        ),
        jws::sign_es384(
            &fx.owner,
            &json!({"alg": "ES384", "typ": LOGIN_TYPE, "kid": kid}),
            &fractional,
        ),
        jws::sign_es384(
            &fx.owner,
            &json!({"alg": "ES384", "typ": PROOF_TYPE}),
            &json!({"aud": AUDIENCE, "nonce": "n", "iat": now, "exp": now + 300, "extra": 1}),
        ),
        jws::sign_es384(
            &fx.owner,
            &json!({"alg": "ES384", "typ": PROOF_TYPE, "crit": ["exp"]}),
            &claims,
        ),
        jws::sign_es384(
            &fx.stranger,
            &json!({"alg": "ES384", "typ": PROOF_TYPE}),
            &claims,
        ),
    ];
    tokens.into_iter().map(String::into_bytes).collect()
}

/// Re-signs half of the mutated tokens that parse with the owner's key (sometimes another key,
/// sometimes with s replaced by n - s), so that mutated headers and claims reach the signature
/// check and the claims.
fn jws_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    if !rng.gen_bool(0.5) {
        return input;
    }
    let Ok(text) = std::str::from_utf8(&input) else {
        return input;
    };
    let mut parts = text.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return input;
    };
    let signing_input = format!("{header}.{payload}");
    // Signing is slow: skip tokens that the parser refuses before the signature matters.
    let placeholder = format!(
        "{signing_input}.{}",
        b64::encode(&[1u8; jws::SIGNATURE_LEN])
    );
    if [PROOF_TYPE, LOGIN_TYPE]
        .iter()
        .all(|typ| CompactJws::parse(&placeholder, typ).is_err())
    {
        return input;
    }
    let key = if rng.gen_bool(0.85) {
        &fx.owner_signer
    } else {
        &fx.stranger_signer
    };
    let mut signature: p384::ecdsa::Signature = key.sign(signing_input.as_bytes());
    if rng.gen_bool(0.2) {
        let (r, s) = signature.split_scalars();
        if let Ok(flipped) = p384::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()) {
            signature = flipped;
        }
    }
    format!("{signing_input}.{}", b64::encode(&signature.to_bytes())).into_bytes()
}

fn jws_check(fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let mut refusal = None;
    for typ in [PROOF_TYPE, LOGIN_TYPE] {
        let jws = match CompactJws::parse(&text, typ) {
            Ok(jws) => jws,
            Err(error) => {
                let _ = error.to_string();
                if refusal.is_none() || !matches!(error, jws::JwsError::WrongType { .. }) {
                    refusal = Some(format!("parse:{}", variant(&error)));
                }
                continue;
            }
        };
        if jws.header.alg != jws::ALG || jws.header.typ != typ {
            return Err("parse accepted another alg or typ".into());
        }
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != 3 || text.len() > jws::MAX_TOKEN_LEN {
            return Err("parse accepted a token that is not three parts within the limit".into());
        }
        let header: Value = b64::decode(parts[0])
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or("parse accepted a header that is not JSON")?;
        if header.get("kid").map(Value::as_str) != jws.header.kid.as_deref().map(Some) {
            return Err("the parsed kid is not the header's kid member".into());
        }
        let signing_input = &text[..parts[0].len() + 1 + parts[1].len()];
        let signature = b64::decode(parts[2]).map_err(|_| "accepted a bad signature encoding")?;
        // The node's verifier (aws-lc through jsonwebtoken) must agree with p384's.
        let verified = jws.verify_with::<NonceClaims>(&fx.owner_verifier);
        let node_valid = !matches!(verified, Err(jws::JwsError::BadSignature));
        let reference = p384::ecdsa::Signature::from_slice(&signature)
            .is_ok_and(|s| fx.owner_p384.verify(signing_input.as_bytes(), &s).is_ok());
        if node_valid != reference {
            return Err(format!(
                "the node's signature check says {node_valid}, p384 says {reference}"
            ));
        }
        let by_stranger = !matches!(
            jws.verify::<Value>(&fx.stranger_public),
            Err(jws::JwsError::BadSignature)
        );
        if by_stranger && node_valid {
            return Err("one signature verified under two keys".into());
        }
        let claims = match verified {
            Ok(claims) => claims,
            Err(error) => {
                let _ = error.to_string();
                refusal = Some(format!("verify:{}", variant(&error)));
                continue;
            }
        };
        check_claims(parts[1], &claims)?;
        return Ok(Verdict::Accepted);
    }
    Ok(Verdict::Refused(refusal.unwrap_or_default()))
}

/// Decoded claims hold exactly the four members, finite dates in range, and the lifetime rules
/// mean what they say.
fn check_claims(payload_b64: &str, claims: &NonceClaims) -> Result<(), Broken> {
    let payload = b64::decode(payload_b64).map_err(|_| "claims from a bad payload encoding")?;
    let value: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("claims decoded from a payload that is not JSON: {e}"))?;
    let mut names: Vec<&str> = value
        .as_object()
        .ok_or("claims decoded from a payload that is not an object")?
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    if names != ["aud", "exp", "iat", "nonce"] {
        return Err("claims decoded from other members than aud, exp, iat, nonce".into());
    }
    for date in [claims.iat.0, claims.exp.0] {
        if !date.is_finite() || date.abs() > 1e15 {
            return Err("a date out of range was accepted".into());
        }
    }
    let base = claims.iat.0 as i64;
    for now in [
        base - 1,
        base,
        base + 59,
        base + 299,
        base + 300,
        0,
        i64::MAX,
    ] {
        if PROOF_LIFETIME.check(claims.iat, claims.exp, now).is_ok() {
            let (iat, exp, now) = (claims.iat.0, claims.exp.0, now as f64);
            if exp <= now || iat > now + 60.0 || exp <= iat || exp - iat > 300.0 {
                return Err(format!(
                    "the lifetime rules accepted iat {iat} exp {exp} at {now}"
                ));
            }
        }
    }
    Ok(())
}

// --- jwe -------------------------------------------------------------------------------------

fn jwe_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let compact = fx.wrapped.compact();
    let mut parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
    let mut seeds = vec![compact.as_bytes().to_vec()];
    // The same JWE with a kid in its protected header.
    let header = json!({
        "alg": jwe::KEY_ALG, "enc": jwe::CONTENT_ENC, "cty": jwe::CONTENT_TYPE,
        "p2s": fx.wrapped.p2s(), "p2c": fx.wrapped.p2c(), "kid": fx.owner_verifier.kid,
    });
    parts[0] = b64::encode(header.to_string().as_bytes());
    seeds.push(parts.join(".").into_bytes());
    seeds
}

fn jwe_check(fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let wrapped = match WrappedKey::parse(&text) {
        Ok(wrapped) => wrapped,
        Err(error) => {
            let _ = error.to_string();
            return Ok(Verdict::Refused(variant(&error)));
        }
    };
    if wrapped.compact() != text {
        return Err("the accepted JWE does not re-serialise to the same compact".into());
    }
    if WrappedKey::parse(wrapped.compact()).as_ref() != Ok(&wrapped) {
        return Err("the re-serialised JWE does not parse to the same value".into());
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 5 {
        return Err("accepted a JWE that is not five parts".into());
    }
    let header: Value = b64::decode(parts[0])
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("accepted a protected header that is not JSON")?;
    if header["p2s"].as_str() != Some(wrapped.p2s().as_str()) {
        return Err("p2s does not re-encode to the header's p2s".into());
    }
    let salt_len = b64::decode(&wrapped.p2s()).map_or(0, |salt| salt.len());
    if !(jwe::MIN_P2S_LEN..=jwe::MAX_P2S_LEN).contains(&salt_len) {
        return Err("accepted a salt of the wrong length".into());
    }
    if header["p2c"].as_u64() != Some(u64::from(wrapped.p2c()))
        || !(jwe::MIN_P2C..=jwe::MAX_P2C).contains(&wrapped.p2c())
    {
        return Err("p2c differs from the header's p2c or is out of range".into());
    }
    if header.get("kid").map(Value::as_str) != wrapped.kid().map(Some) {
        return Err("the parsed kid is not the header's kid member".into());
    }
    // With the fixture's salt and count the KEK is known: unwrapping must not panic, and can
    // only ever yield the owner's key.
    if wrapped.p2s() == fx.wrapped.p2s()
        && wrapped.p2c() == fx.wrapped.p2c()
        && let Ok(key) = wrapped.unwrap_with_kek(&fx.kek)
        && key.public_key() != fx.owner_public
    {
        return Err("unwrapping yielded a key other than the owner's".into());
    }
    Ok(Verdict::Accepted)
}

// --- prf_jwe ---------------------------------------------------------------------------------

fn prf_jwe_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut parts: Vec<String> = fx.wrapped.compact().split('.').map(str::to_owned).collect();
    let header = json!({
        "alg": jwe::PRF_KEY_ALG, "enc": jwe::CONTENT_ENC, "cty": jwe::CONTENT_TYPE,
        "kid": fx.owner_verifier.kid,
    });
    parts[0] = b64::encode(header.to_string().as_bytes());
    vec![parts.join(".").into_bytes()]
}

fn prf_jwe_check(_fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let copy = match KwWrappedKey::parse(&text) {
        Ok(copy) => copy,
        Err(error) => {
            let _ = error.to_string();
            return Ok(Verdict::Refused(variant(&error)));
        }
    };
    if copy.compact() != text {
        return Err("the accepted PRF copy does not re-serialise to the same compact".into());
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 5 || text.len() > jwe::MAX_COMPACT_LEN {
        return Err("accepted a PRF copy that is not five parts within the size limit".into());
    }
    let lengths: Vec<usize> = parts[1..]
        .iter()
        .map(|part| b64::decode(part).map_or(0, |bytes| bytes.len()))
        .collect();
    if lengths[0] != 40 || lengths[1] != 12 || lengths[3] != 16 || lengths[2] == 0 {
        return Err(format!("accepted part lengths {lengths:?}"));
    }
    let header: Value = b64::decode(parts[0])
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("accepted a protected header that is not JSON")?;
    let members: Vec<&String> = header
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    if members.len() != 4
        || header["alg"] != jwe::PRF_KEY_ALG
        || header["enc"] != jwe::CONTENT_ENC
        || header["cty"] != jwe::CONTENT_TYPE
        || header["kid"].as_str() != Some(copy.kid())
    {
        return Err(format!("accepted the header {header}"));
    }
    Ok(Verdict::Accepted)
}

// --- inbox_message ---------------------------------------------------------------------------

/// The kid of the fixture's inbox key: the only kid the target's node knows.
const INBOX_KID: &str = "inbox-enc-1";
/// Every plaintext the seeds encrypt to the fixture's inbox key.
const INBOX_PLAINTEXTS: &[&[u8]] = &[b"{\"text\":\"hello from example.org\"}", b"a plain message"];
/// The members a JWE in general JSON serialization may have, once each.
const GENERAL_MEMBERS: &[&str] = &[
    "protected",
    "unprotected",
    "recipients",
    "iv",
    "ciphertext",
    "tag",
    "aad",
];
/// The members a message's headers may have, once each across all of them.
const INBOX_HEADER_MEMBERS: &[&str] = &["alg", "enc", "kid", "epk", "apu", "apv", "typ", "cty"];

/// A stored message as the `message` member of a request holds it: a compact one as a string.
fn inbox_member(stored: String) -> Vec<u8> {
    if stored.starts_with('{') {
        stored.into_bytes()
    } else {
        format!("\"{stored}\"").into_bytes()
    }
}

fn inbox_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    fx.inbox_samples.clone()
}

/// Messages to the fixture's inbox key, made with `jose::ecdh`: both algorithms, compact and
/// general (with and without aad), one to another kid, one with members in all three headers.
fn inbox_samples(key: &p384::SecretKey) -> Vec<Vec<u8>> {
    let public = key.public_key();
    let mut seeds = Vec::new();
    for alg in [MessageAlg::EcdhEsA256kw, MessageAlg::EcdhEs] {
        for envelope in [
            Envelope::Compact,
            Envelope::General { aad: None },
            Envelope::General {
                aad: Some(b"context"),
            },
        ] {
            let options = EncryptOptions {
                alg,
                envelope,
                cty: Some("siteid-message+jwt"),
                apu: Some(b"Alice"),
                apv: Some(b"Bob"),
            };
            let stored = ecdh::encrypt(&public, INBOX_KID, INBOX_PLAINTEXTS[0], &options);
            seeds.push(inbox_member(stored));
        }
    }
    let plain = ecdh::encrypt_compact(&public, INBOX_KID, INBOX_PLAINTEXTS[1], None);
    seeds.push(inbox_member(plain));
    let unknown = ecdh::encrypt_compact(&public, "another-kid", INBOX_PLAINTEXTS[1], None);
    seeds.push(inbox_member(unknown));
    // A general message with members in all three headers, pretty-printed.
    let options = EncryptOptions {
        envelope: Envelope::General { aad: None },
        ..EncryptOptions::default()
    };
    let general = ecdh::encrypt(&public, INBOX_KID, INBOX_PLAINTEXTS[1], &options);
    if let Ok(mut value) = serde_json::from_str::<Value>(&general) {
        let kid = value["recipients"][0]["header"]["kid"].take();
        if let Some(header) = value["recipients"][0]["header"].as_object_mut() {
            header.remove("kid");
        }
        value["unprotected"] = json!({"kid": kid, "typ": "JWE"});
        if let Ok(text) = serde_json::to_string_pretty(&value) {
            seeds.push(text.into_bytes());
        }
    }
    seeds
}

/// The last step of the inbox target, mostly structure-aware: mutates the JSON inside a general
/// message's base64url protected header (which the generic mutations only change byte by byte),
/// moves or copies a header member into another header, or turns a compact message into a
/// general one (which still decrypts) and back. Half the time an input these do not fit is
/// replaced by a sample first, so that many inputs stay close to a good message.
fn inbox_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    let roll = rng.gen_range(0..10);
    if roll >= 6 {
        return input;
    }
    let parsed = std::str::from_utf8(&input)
        .ok()
        .and_then(|text| Some((text.to_owned(), serde_json::from_str::<Value>(text).ok()?)));
    let (text, value) = match parsed {
        Some(parsed) => parsed,
        None if rng.r#gen() => {
            let sample: &Vec<u8> = pick(rng, &fx.inbox_samples);
            let sample = text_of(sample);
            match serde_json::from_str::<Value>(&sample) {
                Ok(value) => (sample, value),
                Err(_) => return input,
            }
        }
        None => return input,
    };
    let changed = match (roll, &value) {
        (0..=2, Value::Object(_)) => mutate_protected(rng, &text, &value),
        (3 | 4, Value::Object(_)) => move_header_member(fx, rng, value),
        (_, Value::Object(_)) => general_to_compact(&value),
        (_, Value::String(compact)) => compact_to_general(compact),
        _ => None,
    };
    changed.unwrap_or(input)
}

fn mutate_protected(rng: &mut StdRng, text: &str, message: &Value) -> Option<Vec<u8>> {
    let protected = message.get("protected")?.as_str()?;
    let mutated = mutate_json_bytes(rng, &b64::decode(protected).ok()?)?;
    let replaced = text.replacen(
        &format!("\"{protected}\""),
        &format!("\"{}\"", b64::encode(&mutated)),
        1,
    );
    Some(replaced.into_bytes())
}

/// The three headers of a general message as objects (empty when absent).
fn general_headers(message: &Value) -> Option<[serde_json::Map<String, Value>; 3]> {
    let protected = b64::decode(message.get("protected")?.as_str()?).ok()?;
    let object = |value: Option<&Value>| match value {
        Some(Value::Object(members)) => Some(members.clone()),
        None => Some(serde_json::Map::new()),
        Some(_) => None,
    };
    Some([
        object(Some(&serde_json::from_slice(&protected).ok()?))?,
        object(message.get("unprotected"))?,
        object(message.get("recipients")?.get(0)?.get("header"))?,
    ])
}

fn set_general_headers(message: &mut Value, headers: [serde_json::Map<String, Value>; 3]) {
    let [protected, unprotected, recipient] = headers;
    message["protected"] = b64::encode(Value::Object(protected).to_string().as_bytes()).into();
    set_or_remove(message, "unprotected", unprotected);
    set_or_remove(&mut message["recipients"][0], "header", recipient);
}

/// Sets an object's member to a header, or removes it when the header is empty.
fn set_or_remove(object: &mut Value, name: &str, header: serde_json::Map<String, Value>) {
    if let Some(object) = object.as_object_mut() {
        if header.is_empty() {
            object.remove(name);
        } else {
            object.insert(name.to_owned(), Value::Object(header));
        }
    }
}

/// Moves (or copies) one header member into another header, or gives the epk another point of
/// the curve.
fn move_header_member(fx: &Fixtures, rng: &mut StdRng, mut message: Value) -> Option<Vec<u8>> {
    let mut headers = general_headers(&message)?;
    let from = rng.gen_range(0..3);
    let to = (from + rng.gen_range(1..3)) % 3;
    let names: Vec<String> = headers[from].keys().cloned().collect();
    if names.is_empty() {
        return None;
    }
    let name = pick(rng, names.as_slice()).clone();
    if rng.gen_bool(0.2) {
        let epk = headers
            .iter_mut()
            .find_map(|h| h.get_mut("epk").and_then(Value::as_object_mut))?;
        if rng.r#gen() {
            // Another point on the curve: well formed, but not the one the content key used.
            let point = fx.stranger.public_key().to_jwk();
            epk.insert("x".into(), point.x.into());
            epk.insert("y".into(), point.y.into());
        } else {
            // A private scalar or another JWK member.
            let name = *pick(rng, &["d", "kid", "alg", "use", "ext", "crv"]);
            epk.insert(name.into(), b64::encode(&[1u8; 48]).into());
        }
    } else if let Some(member) = if rng.gen_bool(0.7) {
        headers[from].remove(&name)
    } else {
        headers[from].get(&name).cloned()
    } {
        headers[to].insert(name, member);
    }
    set_general_headers(&mut message, headers);
    Some(message.to_string().into_bytes())
}

/// A compact message in general JSON serialization: the same protected header (so the same AAD)
/// and parts, one recipient with the encrypted key when there is one.
fn compact_to_general(compact: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = compact.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
        return None;
    };
    let recipient = if encrypted_key.is_empty() {
        json!({})
    } else {
        json!({"encrypted_key": encrypted_key})
    };
    let message = json!({
        "protected": protected, "recipients": [recipient],
        "iv": iv, "ciphertext": ciphertext, "tag": tag,
    });
    Some(message.to_string().into_bytes())
}

/// A general message in compact serialization: every header member moved into the protected
/// header (the AAD changes, so it no longer decrypts), the `aad` dropped.
fn general_to_compact(message: &Value) -> Option<Vec<u8>> {
    let [mut protected, unprotected, recipient] = general_headers(message)?;
    protected.extend(unprotected);
    protected.extend(recipient);
    let part = |name: &str| message.get(name).and_then(Value::as_str).map(str::to_owned);
    let encrypted_key = message["recipients"][0]["encrypted_key"]
        .as_str()
        .unwrap_or_default();
    let compact = format!(
        "\"{}.{encrypted_key}.{}.{}.{}\"",
        b64::encode(Value::Object(protected).to_string().as_bytes()),
        part("iv")?,
        part("ciphertext")?,
        part("tag")?
    );
    Some(compact.into_bytes())
}

fn inbox_check(fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(Verdict::Refused("not UTF-8".into()));
    };
    let raw: Box<RawValue> = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(_) => return Ok(Verdict::Refused("not JSON".into())),
    };
    let result = check_message(&raw, |kid| kid == INBOX_KID);
    // Whether the kid is known changes nothing but the unknown-kid refusal.
    let any_kid = check_message(&raw, |_| true);
    match (&result, &any_kid) {
        (Err(MessageError::UnknownKid(kid)), Ok(checked))
            if *kid == checked.kid && kid != INBOX_KID => {}
        (Err(MessageError::UnknownKid(_)), _) => {
            return Err("refused as an unknown kid a message that is not otherwise good".into());
        }
        (Ok(known), Ok(any)) if known == any => {}
        (Err(known), Err(any)) if known == any => {}
        _ => return Err("the outcome depends on the kid other than by UnknownKid".into()),
    }
    let checked = match result {
        Ok(checked) => checked,
        Err(error) => {
            let _ = error.to_string();
            return Ok(Verdict::Refused(variant(&error)));
        }
    };
    let received = text.trim_matches([' ', '\t', '\n', '\r']);
    let as_received = match checked.serialization {
        Serialization::Compact => format!("\"{}\"", checked.stored),
        Serialization::General => checked.stored.clone(),
    };
    if as_received != received {
        return Err("the stored message is not the text as received".into());
    }
    if received.len() > message::MAX_MESSAGE_LEN || checked.kid != INBOX_KID {
        return Err("accepted a message over the size limit or to another kid".into());
    }
    let headers = match checked.serialization {
        Serialization::Compact => check_accepted_compact(&checked)?,
        Serialization::General => check_accepted_general(&checked)?,
    };
    check_accepted_headers(&checked, &headers)?;
    // Only the fixture key's messages decrypt, and only to what the seeds encrypted.
    match ecdh::decrypt(&fx.inbox_key, &checked.stored) {
        Ok(plaintext) if !INBOX_PLAINTEXTS.contains(&plaintext.as_slice()) => {
            Err("decrypted to a plaintext that no seed encrypted".into())
        }
        Err(DecryptError::Shape(error)) => Err(format!(
            "decryption refused the shape of an accepted message: {error}"
        )),
        Ok(_) | Err(DecryptError::Failed) => Ok(Verdict::Accepted),
    }
}

/// The names of a JSON object's members, which must be distinct.
fn distinct_members(text: &str, what: &str) -> Result<Vec<String>, Broken> {
    let names = serde_json::from_str::<MemberNames>(text)
        .map_err(|_| format!("accepted a {what} that is not a JSON object"))?
        .0;
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != names.len() {
        return Err(format!("accepted a {what} with a duplicated member"));
    }
    Ok(names)
}

/// An accepted compact message has five parts of the right lengths; returns its header's text.
fn check_accepted_compact(checked: &CheckedMessage) -> Result<Vec<String>, Broken> {
    let parts: Vec<&str> = checked.stored.split('.').collect();
    let lengths: Vec<Option<usize>> = parts
        .iter()
        .map(|part| b64::decode(part).ok().map(|bytes| bytes.len()))
        .collect();
    let key_len = match checked.alg {
        MessageAlg::EcdhEs => 0,
        MessageAlg::EcdhEsA256kw => 40,
    };
    if lengths.len() != 5
        || lengths[1] != Some(key_len)
        || lengths[2] != Some(12)
        || lengths[3].is_none_or(|len| len == 0)
        || lengths[4] != Some(16)
    {
        return Err(format!("accepted compact part lengths {lengths:?}"));
    }
    let header = b64::decode(parts[0]).map_err(|_| "accepted a header that is not base64url")?;
    Ok(vec![String::from_utf8_lossy(&header).into_owned()])
}

/// An accepted general message has only its members, once each, and one recipient of the right
/// shape; returns the text of its headers.
fn check_accepted_general(checked: &CheckedMessage) -> Result<Vec<String>, Broken> {
    let names = distinct_members(&checked.stored, "general message")?;
    if names.iter().any(|n| !GENERAL_MEMBERS.contains(&n.as_str())) {
        return Err(format!("accepted the general members {names:?}"));
    }
    let members = raw_members(&checked.stored)?;
    let recipients: Vec<Box<RawValue>> = members
        .get("recipients")
        .and_then(|raw| serde_json::from_str(raw).ok())
        .unwrap_or_default();
    let [recipient] = recipients.as_slice() else {
        return Err("accepted a general message without exactly one recipient".into());
    };
    let recipient_names = distinct_members(recipient.get(), "recipient")?;
    if recipient_names
        .iter()
        .any(|n| n != "header" && n != "encrypted_key")
    {
        return Err(format!(
            "accepted the recipient members {recipient_names:?}"
        ));
    }
    let recipient_members = raw_members(recipient.get())?;
    let decoded = |members: &BTreeMap<String, String>, name: &str| {
        members
            .get(name)
            .and_then(|raw| serde_json::from_str::<String>(raw).ok())
            .and_then(|text| b64::decode(&text).ok())
    };
    let key_len = recipient_members
        .get("encrypted_key")
        .map(|_| decoded(&recipient_members, "encrypted_key").map_or(0, |key| key.len()));
    let expected = match checked.alg {
        MessageAlg::EcdhEs => None,
        MessageAlg::EcdhEsA256kw => Some(40),
    };
    let length = |name: &str| decoded(&members, name).map(|bytes| bytes.len());
    if key_len != expected
        || length("iv") != Some(12)
        || length("tag") != Some(16)
        || length("ciphertext").is_none_or(|len| len == 0)
        || (members.contains_key("aad") && length("aad").is_none_or(|len| len == 0))
    {
        return Err("accepted a general message with a part of the wrong length".into());
    }
    let protected = decoded(&members, "protected")
        .ok_or("accepted a protected header that is not base64url")?;
    // The unprotected headers are taken from the text as received, where duplicates would show.
    let mut headers = vec![String::from_utf8_lossy(&protected).into_owned()];
    headers.extend(members.get("unprotected").cloned());
    headers.extend(recipient_members.get("header").cloned());
    Ok(headers)
}

/// The members of a JSON object with their values' text as written (the object's members are
/// already known to be distinct).
fn raw_members(text: &str) -> Result<BTreeMap<String, String>, Broken> {
    let members: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(members
        .into_iter()
        .map(|(name, raw)| (name, raw.get().to_owned()))
        .collect())
}

/// The headers of an accepted message are non-empty objects of allowed members, disjoint, and
/// hold the alg, enc and kid it was accepted with and a bare P-384 epk.
fn check_accepted_headers(checked: &CheckedMessage, headers: &[String]) -> Result<(), Broken> {
    let mut all = Vec::new();
    let mut merged = serde_json::Map::new();
    for header in headers {
        let names = distinct_members(header, "header")?;
        if names.is_empty() {
            return Err("accepted an empty header".into());
        }
        all.extend(names);
        if let Ok(Value::Object(members)) = serde_json::from_str(header) {
            merged.extend(members);
        }
    }
    let count = all.len();
    all.sort();
    all.dedup();
    if all.len() != count {
        return Err("accepted a header member in two headers".into());
    }
    if all
        .iter()
        .any(|n| !INBOX_HEADER_MEMBERS.contains(&n.as_str()))
    {
        return Err(format!("accepted the header members {all:?}"));
    }
    if merged.get("alg").and_then(Value::as_str) != Some(checked.alg.as_str())
        || merged.get("enc").and_then(Value::as_str) != Some(message::CONTENT_ENC)
        || merged.get("kid").and_then(Value::as_str) != Some(checked.kid.as_str())
    {
        return Err("the accepted alg, enc or kid is not the header's".into());
    }
    let epk = merged.get("epk").map(Value::to_string).unwrap_or_default();
    let mut epk_names = distinct_members(&epk, "epk")?;
    epk_names.sort();
    if epk_names != ["crv", "kty", "x", "y"] || merged["epk"]["crv"] != "P-384" {
        return Err(format!("accepted the epk {epk}"));
    }
    Ok(())
}

// --- jwk -------------------------------------------------------------------------------------

fn jwk_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let public = fx.owner_public.to_jwk();
    let kid = fx.owner_verifier.kid.clone();
    let full = json!({
        "kty": "EC", "crv": "P-384", "x": public.x, "y": public.y,
        "alg": "ES384", "use": "sig", "key_ops": ["verify"], "ext": true, "kid": kid,
    });
    vec![
        fx.owner_public.to_json().into_bytes(),
        full.to_string().into_bytes(),
        fx.owner.to_json().to_vec(),
        fx.stranger.to_json().to_vec(),
    ]
}

fn jwk_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let public = OwnerPublicKey::from_json(&text);
    let private = OwnerPrivateKey::from_json(input);
    if let Ok(key) = &public {
        let again = OwnerPublicKey::from_json(&key.to_json())
            .map_err(|e| format!("a public key's own JSON is refused: {e}"))?;
        if &again != key || again.thumbprint() != key.thumbprint() {
            return Err("a public key does not round-trip through its JSON".into());
        }
        let members: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let jwk = key.to_jwk();
        if members["x"].as_str() != Some(jwk.x.as_str())
            || members["y"].as_str() != Some(jwk.y.as_str())
        {
            return Err("accepted coordinates that do not re-encode to themselves".into());
        }
        check_optional_members(&members, key)?;
    }
    if let Ok(key) = &private {
        if public.is_ok() {
            return Err("both the public and the private parser accepted the same JSON".into());
        }
        let again = OwnerPrivateKey::from_json(&key.to_json())
            .map_err(|e| format!("a private key's own JSON is refused: {e}"))?;
        if again.public_key() != key.public_key()
            || again.scalar_bytes() != key.scalar_bytes()
            || again.public_key().thumbprint() != key.public_key().thumbprint()
        {
            return Err("a private key does not round-trip through its JSON".into());
        }
        let members: Value = serde_json::from_slice(input).map_err(|e| e.to_string())?;
        if members["d"].as_str() != Some(b64::encode(key.scalar_bytes().as_slice()).as_str()) {
            return Err("accepted a d that does not re-encode to itself".into());
        }
    }
    match (public, private) {
        (Ok(_), _) | (_, Ok(_)) => Ok(Verdict::Accepted),
        (Err(public), Err(private)) => {
            let _ = (public.to_string(), private.to_string());
            Ok(Verdict::Refused(format!(
                "{}/{}",
                variant(&public),
                variant(&private)
            )))
        }
    }
}

/// Optional members, when present, hold exactly what docs/protocol.md allows.
fn check_optional_members(members: &Value, key: &OwnerPublicKey) -> Result<(), Broken> {
    let allowed = [
        ("kid", Some(json!(key.thumbprint()))),
        ("alg", Some(json!("ES384"))),
        ("use", Some(json!("sig"))),
    ];
    for (name, value) in allowed {
        if let Some(member) = members.get(name)
            && Some(member) != value.as_ref()
        {
            return Err(format!("accepted a {name} member that is not allowed"));
        }
    }
    if let Some(ops) = members.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().all(|op| op == "verify"))
    {
        return Err("accepted key_ops other than a list of verify".into());
    }
    if members.get("ext").is_some_and(|ext| !ext.is_boolean()) {
        return Err("accepted an ext that is not a boolean".into());
    }
    Ok(())
}

// --- share -----------------------------------------------------------------------------------

fn share_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for set in &fx.share_sets {
        for text in &set.texts {
            seeds.push(text.clone().into_bytes());
        }
        let k = usize::from(set.threshold);
        seeds.push(set.texts[..k].join(";").into_bytes());
        seeds.push(set.texts.join(" ; ").into_bytes());
        let mut reversed = set.texts.clone();
        reversed.reverse();
        seeds.push(reversed.join(";").to_lowercase().into_bytes());
    }
    let (a, b) = (&fx.share_sets[0], &fx.share_sets[2]);
    seeds.push(format!("{};{}", a.texts[0], b.texts[1]).into_bytes());
    seeds.push(format!("{};{};{}", a.texts[0], a.texts[1], a.texts[0]).into_bytes());
    seeds.push(fx.random_split.join(";").into_bytes());
    seeds.push(b"0a1B2c3D".to_vec());
    seeds
}

/// Replaces or adds a share with altered fields under a valid checksum (to reach the checks
/// after the checksum), or retypes one share with the noise a person adds.
fn share_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    let choice = rng.gen_range(0..10);
    if choice >= 4 {
        return input;
    }
    let text = text_of(&input);
    let mut pieces: Vec<String> = text.split(';').map(str::to_owned).collect();
    let at = rng.gen_range(0..pieces.len());
    if choice < 2 {
        let set = &fx.share_sets[rng.gen_range(0..fx.share_sets.len())];
        let original = &set.shares[rng.gen_range(0..set.shares.len())];
        let (mut version, mut set_id, mut threshold, mut index) = (
            share::VERSION,
            original.set_id,
            original.threshold,
            original.index,
        );
        let (mut key_check, mut data) = (original.key_check, share::share_data(original));
        match rng.gen_range(0..6) {
            0 => version = [0, 2, 255][rng.gen_range(0..3)],
            1 => threshold = [0, 1, 2, 3, 5, 16, 17, 255][rng.gen_range(0..8)],
            2 => index = [0, 1, 2, 3, 4, 5, 6, 16, 17, 255][rng.gen_range(0..10)],
            3 => set_id[rng.gen_range(0..4)] ^= 1 << rng.gen_range(0..8),
            4 => key_check[rng.gen_range(0..4)] ^= 1 << rng.gen_range(0..8),
            _ => data[rng.gen_range(0..share::SECRET_LEN)] ^= 1 << rng.gen_range(0..8),
        }
        let forged = share::encode_raw_share(version, set_id, threshold, index, key_check, &data);
        if rng.gen_bool(0.5) {
            pieces[at] = forged;
        } else {
            pieces.insert(at, forged);
        }
    } else {
        pieces[at] = typing_noise(rng, &pieces[at]);
    }
    pieces.join(";").into_bytes()
}

/// Lower case, look-alike letters and separators, as a person types a share.
fn typing_noise(rng: &mut StdRng, text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        let roll = rng.gen_range(0..20);
        match (roll, c) {
            (0, '0') => out.push(if rng.gen_bool(0.5) { 'O' } else { 'o' }),
            (0, '1') => out.push(['I', 'i', 'L', 'l'][rng.gen_range(0..4)]),
            (1, _) => out.push(c.to_ascii_lowercase()),
            (2, _) => {
                out.push([' ', '\t', '\r', '\n', '-'][rng.gen_range(0..5)]);
                out.push(c);
            }
            (3, '-') => {}
            _ => out.push(c),
        }
    }
    out
}

/// The canonical text of an accepted share, computed from docs/shares.md independently of the
/// codec: separators dropped, upper case, O read as 0, I and L as 1, groups of four.
fn canonical_share_text(text: &str) -> String {
    let characters: Vec<char> = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n' | '-'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    characters
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn same_share(a: &Share, b: &Share) -> bool {
    a.set_id == b.set_id
        && a.threshold == b.threshold
        && a.index == b.index
        && a.key_check == b.key_check
        && share::share_data(a) == share::share_data(b)
}

fn share_check(fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let mut shares = Vec::new();
    for (i, piece) in text.split(';').take(MAX_SHARES_PER_INPUT).enumerate() {
        if let Some(id) = share::parse_set_id(piece)
            && share::hex(&id) != piece.to_ascii_lowercase()
        {
            return Err("a set id does not re-encode to itself".into());
        }
        let share = match Share::parse(piece, Some(i + 1)) {
            Ok(share) => share,
            Err(error) => {
                if error.position != Some(i + 1) {
                    return Err("a refused share is named by another position".into());
                }
                return Ok(Verdict::Refused(error.code.as_str().to_owned()));
            }
        };
        let canonical = share.to_text();
        if canonical.as_str() != canonical_share_text(piece) || canonical.len() != 129 {
            return Err("an accepted share does not re-encode to its canonical text".into());
        }
        let again = Share::parse(&canonical, None)
            .map_err(|e| format!("a share's own text is refused: {e}"))?;
        if !same_share(&again, &share) {
            return Err("a share does not round-trip through its text".into());
        }
        if !(share::MIN_THRESHOLD..=share::MAX_SHARES).contains(&share.threshold)
            || !(1..=share::MAX_SHARES).contains(&share.index)
        {
            return Err("accepted a threshold or index out of range".into());
        }
        shares.push(share);
    }
    if shares.len() < 2 {
        return Ok(Verdict::Accepted);
    }
    check_rebuild(fx, &shares)
}

fn check_rebuild(fx: &Fixtures, shares: &[Share]) -> Result<Verdict, Broken> {
    let checked = rebuild_key(shares, Some(&fx.owner_public));
    let unchecked = rebuild_key(shares, None);
    for error in [checked.as_ref().err(), unchecked.as_ref().err()]
        .into_iter()
        .flatten()
    {
        if error.position.is_some_and(|p| p == 0 || p > shares.len()) {
            return Err("a refusal names a share that was not given".into());
        }
    }
    if let Ok(key) = &checked
        && key.public_key() != fx.owner_public
    {
        return Err("rebuilding with the owner's key accepted another key".into());
    }
    if let Ok(key) = &unchecked {
        let first = &shares[0];
        let indexes_distinct = shares
            .iter()
            .enumerate()
            .all(|(i, s)| shares[..i].iter().all(|t| t.index != s.index));
        if share::key_check(&key.public_key()) != first.key_check
            || shares.len() < usize::from(first.threshold)
            || shares.iter().any(|s| s.set_id != first.set_id)
            || !indexes_distinct
        {
            return Err("rebuilt a key from shares that break the rules".into());
        }
        if (key.public_key() == fx.owner_public) != checked.is_ok() {
            return Err("the check against the owner's key disagrees with the rebuilt key".into());
        }
    }
    // Unaltered shares of one fixture set, enough and distinct, must rebuild its key.
    for set in &fx.share_sets {
        let all_from_set = shares
            .iter()
            .all(|s| set.shares.iter().any(|t| same_share(s, t)));
        let distinct = shares
            .iter()
            .enumerate()
            .all(|(i, s)| shares[..i].iter().all(|t| t.index != s.index));
        if all_from_set && distinct && shares.len() >= usize::from(set.threshold) {
            match &unchecked {
                Ok(key) if key.public_key() == set.public => {}
                Ok(_) => return Err("a genuine set rebuilt another key".into()),
                Err(error) => {
                    return Err(format!(
                        "a genuine set was refused ({})",
                        error.code.as_str()
                    ));
                }
            }
        }
    }
    match unchecked {
        Ok(_) => Ok(Verdict::Accepted),
        Err(error) => Ok(Verdict::Refused(format!("rebuild:{}", error.code.as_str()))),
    }
}

// --- json ------------------------------------------------------------------------------------

fn json_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let verifier = b64::encode(&[7u8; 32]);
    let proof = jws_seeds(fx).swap_remove(0);
    let proof = text_of(&proof);
    let public_key: Value = serde_json::from_str(&fx.owner_public.to_json()).unwrap_or_default();
    let bodies = [
        json!({
            "claim_token": "Y2xhaW0tdG9rZW4", "public_key": public_key,
            "wrapped_key": fx.wrapped.compact(), "unlock_verifier": verifier, "proof": proof,
        }),
        json!({
            "claim_token": "Y2xhaW0tdG9rZW4", "public_key": public_key,
            "wrapped_key": fx.wrapped.compact(), "unlock_verifier": verifier, "proof": proof,
            "recovery_set": "0a1b2c3d",
        }),
        json!({"wrapped_key": fx.wrapped.compact(), "unlock_verifier": verifier}),
        json!({"wrapped_key": fx.wrapped.compact(), "unlock_verifier": verifier,
               "recovery_set": "0a1b2c3d"}),
        json!({"set_id": "0a1b2c3d", "threshold": 3, "shares": 5,
               "labels": ["Alice", "Bob", "Carol", "Dave", "Eve"]}),
        json!({"unlock_verifier": verifier}),
        json!({"assertion": proof, "cookie": true}),
        json!({"assertion": proof}),
    ];
    bodies.iter().map(|b| b.to_string().into_bytes()).collect()
}

fn json_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let outcomes = [
        json_body::<ClaimBody>(input)?,
        json_body::<ReplaceWrappedKeyBody>(input)?,
        json_body::<NewSetBody>(input)?,
        json_body::<UnlockBody>(input)?,
        json_body::<ProofBody>(input)?,
    ];
    if outcomes.iter().any(Option::is_none) {
        return Ok(Verdict::Accepted);
    }
    Ok(Verdict::Refused(outcomes[0].clone().unwrap_or_default()))
}

/// Parses `input` as body `T`: `None` when accepted, else the refusal's status and slug. A
/// refusal is always 400 or 422: 400 exactly when the body is not JSON at all, 422 whenever it
/// is JSON that even a generic parse reads.
fn json_body<T: DeserializeOwned>(input: &[u8]) -> Result<Option<String>, Broken> {
    let type_name = std::any::type_name::<T>().rsplit("::").next().unwrap_or("");
    let syntax_ok = serde_json::from_slice::<serde::de::IgnoredAny>(input).is_ok();
    let generic_ok = serde_json::from_slice::<Value>(input).is_ok();
    let problem = match siteid::http::json::parse::<T>(input) {
        Ok(_) if !syntax_ok || !siteid::jose::is_json_object(input) => {
            return Err(format!(
                "{type_name} accepted a body that is not a JSON object"
            ));
        }
        Ok(_) => return Ok(None),
        Err(problem) => problem,
    };
    let status = problem.status.as_u16();
    let known = matches!(
        (status, problem.slug),
        (400, "malformed-json") | (422, "invalid-body") | (422, "invalid-field")
    );
    if !known {
        return Err(format!(
            "{type_name}: a refusal answered {status} {}",
            problem.slug
        ));
    }
    if problem.slug == "invalid-field" && problem.field.is_none() {
        return Err(format!(
            "{type_name}: an invalid-field refusal names no field"
        ));
    }
    if !syntax_ok && status != 400 {
        return Err(format!(
            "{type_name}: a body that is not JSON answered {status}"
        ));
    }
    if generic_ok && status != 422 {
        return Err(format!(
            "{type_name}: JSON that serde_json reads answered {status}"
        ));
    }
    let grey = if syntax_ok && !generic_ok {
        " (JSON beyond a generic parse)"
    } else {
        ""
    };
    Ok(Some(format!("{status} {}{grey}", problem.slug)))
}

// --- ws --------------------------------------------------------------------------------------

fn ws_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let assertion = text_of(&jws_seeds(fx).swap_remove(1));
    [
        json!({"type": "ping", "id": 7}),
        json!({"type": "ping", "id": u64::MAX}),
        json!({"type": "auth", "assertion": assertion}),
        json!({"type": "auth", "access_token": "YWNjZXNzLXRva2Vu"}),
        json!({"type": "auth", "assertion": "a", "access_token": "b"}),
        json!({"type": "auth"}),
        json!({"type": "challenge", "client_nonce": "c2l0ZWlkLWNsaWVudC1ub25jZQ"}),
    ]
    .iter()
    .map(|m| m.to_string().into_bytes())
    .collect()
}

/// A client message as a client would write it, for the round trip.
fn ws_text(message: &ClientMessage) -> String {
    match message {
        ClientMessage::Ping { id } => json!({"type": "ping", "id": id}).to_string(),
        ClientMessage::Challenge { client_nonce } => {
            json!({"type": "challenge", "client_nonce": client_nonce}).to_string()
        }
        ClientMessage::Auth {
            assertion,
            access_token,
        } => {
            let mut object = serde_json::Map::new();
            object.insert("type".into(), json!("auth"));
            if let Some(assertion) = assertion {
                object.insert("assertion".into(), json!(assertion));
            }
            if let Some(token) = access_token {
                object.insert("access_token".into(), json!(token));
            }
            Value::Object(object).to_string()
        }
    }
}

fn ws_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    match protocol::parse(&text) {
        Err(reason) => Ok(Verdict::Refused(serde_label(&reason))),
        Ok(message) => {
            if !siteid::jose::is_json_object(text.as_bytes()) {
                return Err("accepted a frame that is not a JSON object".into());
            }
            let again = protocol::parse(&ws_text(&message))
                .map_err(|e| format!("a message's own text is refused: {e}"))?;
            if again != message {
                return Err("a message does not round-trip through its text".into());
            }
            Ok(Verdict::Accepted)
        }
    }
}

/// A serde_json message without its position and quoted parts, as an outcome label.
fn serde_label(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or("");
    message
        .split([':', ',', '`'])
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

// --- b64 -------------------------------------------------------------------------------------

fn b64_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = fx
        .wrapped
        .compact()
        .split('.')
        .map(|part| part.as_bytes().to_vec())
        .collect();
    seeds.push(fx.owner_public.to_jwk().x.into_bytes());
    seeds.push(fx.owner_verifier.kid.clone().into_bytes());
    for len in 0..4 {
        seeds.push(b64::encode(&vec![0xffu8; len]).into_bytes());
    }
    seeds
}

fn b64_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let encoded = b64::encode(input);
    if b64::decode(&encoded).as_deref() != Ok(input) {
        return Err("bytes do not survive encode then decode".into());
    }
    let text = text_of(input);
    let decoded = b64::decode(&text);
    let fixed = b64::decode_array::<48>(&text);
    match (&decoded, &fixed) {
        (Ok(bytes), Ok(array)) if bytes.as_slice() == array.as_slice() => {}
        (Ok(bytes), Err(b64::LengthError::WrongLength { expected, actual }))
            if bytes.len() != 48 && *expected == 48 && *actual == bytes.len() => {}
        (Err(_), Err(b64::LengthError::NotBase64)) => {}
        _ => return Err("decode and decode_array disagree".into()),
    }
    match decoded {
        Ok(bytes) if b64::encode(&bytes) == text => Ok(Verdict::Accepted),
        Ok(_) => Err("accepted text that does not re-encode to itself".into()),
        Err(error) => {
            let _ = error.to_string();
            Ok(Verdict::Refused("not base64url".into()))
        }
    }
}

// --- credential keys: what the targets share ----------------------------------------------------
//
// The five targets below fuzz the readers of the keys and signatures a person brings
// (src/keys). Their properties are checked against encodings this file builds itself from the
// key (DER, the SSH wire format, RFC 7638 JWKs), not against the writers in src/keys.

/// DER of the object identifiers the key formats name (tag and length included).
const DER_OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const DER_OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const DER_OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const DER_OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const DER_OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const DER_NULL: &[u8] = &[0x05, 0x00];

/// The namespace a sign-in's SSH signature must name, and one it must not verify under.
const OTHER_NAMESPACE: &str = "file";
/// What the private key target signs to check an accepted key, and a different input.
const SIGNING_INPUT: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJub25jZSI6Im4ifQ";
const OTHER_SIGNING_INPUT: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJub25jZSI6Im0ifQ";
/// OpenSSH keys in the seeds are encrypted with this many bcrypt rounds; a file that asks for
/// more than `MAX_FUZZ_BCRYPT_ROUNDS` is opened without the passphrase, so bcrypt stays cheap.
const SEED_BCRYPT_ROUNDS: u32 = 1;
const MAX_FUZZ_BCRYPT_ROUNDS: u32 = 2;
/// The group order of Ed25519, little-endian (RFC 8032 §5.1).
const ED25519_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// DER's tags and small lengths (random bytes come from anywhere else).
const DER_ALPHABET: &str = "\0\x01\x02\x03\x04\x05\x06\x07\x1f\x7f01";
const KEY_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\r\t{}\":,";
const SSH_NAMES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "nistp256",
    "nistp384",
    "nistp521",
    "sk-ssh-ed25519@openssh.com",
    "ssh-dss",
    "SSH-ED25519",
    "",
];
const PUBLIC_LABELS: &[&str] = &[
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "CERTIFICATE",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "public key",
];
const PRIVATE_LABELS: &[&str] = &[
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "RSA PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "DSA PRIVATE KEY",
    "PUBLIC KEY",
];

/// A DER TLV of `tag` around `content`.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_length(&mut out, content.len(), false);
    out.extend_from_slice(content);
    out
}

/// A DER length, or (`long`) the long form even where the short one fits.
fn der_length(out: &mut Vec<u8>, len: usize, long: bool) {
    if len < 0x80 && !long {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    out.push(0x80 | (8 - first) as u8);
    out.extend_from_slice(&bytes[first..]);
}

/// A DER INTEGER of a non-negative big-endian magnitude.
fn der_uint(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let magnitude = &magnitude[first..];
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    tlv(0x02, &content)
}

fn der_seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A BIT STRING of whole bytes.
fn der_bits(bytes: &[u8]) -> Vec<u8> {
    tlv(0x03, &[&[0u8][..], bytes].concat())
}

/// A DER tree that keeps every byte: re-encoding an unaltered tree gives the bytes it was read
/// from, because only minimal lengths are read.
#[derive(Clone)]
enum Der {
    Primitive(u8, Vec<u8>),
    Constructed(u8, Vec<Der>),
    /// A BIT STRING (after its unused-bits byte, the prefix) or OCTET STRING holding DER.
    Wrapped(u8, Vec<u8>, Vec<Der>),
    /// Bytes written as they are (a TLV with a mutated header).
    Raw(Vec<u8>),
}

impl Der {
    fn parse_all(bytes: &[u8], depth: usize) -> Option<Vec<Der>> {
        let mut rest = bytes;
        let mut nodes = Vec::new();
        while !rest.is_empty() {
            let (node, used) = Der::parse_one(rest, depth)?;
            nodes.push(node);
            rest = &rest[used..];
        }
        Some(nodes)
    }

    fn parse_one(bytes: &[u8], depth: usize) -> Option<(Der, usize)> {
        if depth > 12 {
            return None;
        }
        let (&tag, rest) = bytes.split_first()?;
        let (&first, rest) = rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            let digits = rest
                .get(..n)
                .filter(|d| (1..=3).contains(&n) && d[0] != 0)?;
            let len = digits
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return None;
            }
            (len, 2 + n)
        };
        let content = bytes.get(header..header.checked_add(len)?)?;
        let node = if tag & 0x20 != 0 {
            Der::Constructed(tag, Der::parse_all(content, depth + 1)?)
        } else if tag == 0x03 || tag == 0x04 {
            let prefix = usize::from(tag == 0x03);
            let inner = content
                .get(prefix..)
                .filter(|inner| {
                    (prefix == 0 || content[0] == 0)
                        && matches!(inner.first(), Some(0x30 | 0x04 | 0x02))
                })
                .and_then(|inner| Der::parse_all(inner, depth + 1));
            match inner {
                Some(inner) => Der::Wrapped(tag, content[..prefix].to_vec(), inner),
                None => Der::Primitive(tag, content.to_vec()),
            }
        } else {
            Der::Primitive(tag, content.to_vec())
        };
        Some((node, header + len))
    }

    fn tag(&self) -> Option<u8> {
        match self {
            Der::Primitive(tag, _) | Der::Constructed(tag, _) | Der::Wrapped(tag, _, _) => {
                Some(*tag)
            }
            Der::Raw(_) => None,
        }
    }

    /// The content octets.
    fn content(&self) -> Vec<u8> {
        match self {
            Der::Primitive(_, content) => content.clone(),
            Der::Constructed(_, children) => children.iter().flat_map(Der::encode).collect(),
            Der::Wrapped(_, prefix, children) => {
                let mut out = prefix.clone();
                out.extend(children.iter().flat_map(Der::encode));
                out
            }
            Der::Raw(bytes) => bytes.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        match (self, self.tag()) {
            (Der::Raw(bytes), _) => bytes.clone(),
            (_, Some(tag)) => tlv(tag, &self.content()),
            (_, None) => Vec::new(),
        }
    }

    fn children(&self) -> &[Der] {
        match self {
            Der::Constructed(_, children) | Der::Wrapped(_, _, children) => children,
            _ => &[],
        }
    }

    fn count(&self) -> usize {
        1 + self.children().iter().map(Der::count).sum::<usize>()
    }

    fn nth(&self, n: &mut usize) -> Option<&Der> {
        if *n == 0 {
            return Some(self);
        }
        *n -= 1;
        self.children().iter().find_map(|child| child.nth(n))
    }

    fn nth_mut(&mut self, n: &mut usize) -> Option<&mut Der> {
        if *n == 0 {
            return Some(self);
        }
        *n -= 1;
        match self {
            Der::Constructed(_, children) | Der::Wrapped(_, _, children) => {
                children.iter_mut().find_map(|child| child.nth_mut(n))
            }
            _ => None,
        }
    }
}

/// One change to a DER document's tree, with the lengths around it kept right: altered content,
/// INTEGER signs and padding, children dropped, doubled, swapped or added, another tag, another
/// node in its place, a long-form or indefinite length, a truncated element. `None` when the
/// bytes are not DER.
fn mutate_der(rng: &mut StdRng, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut root = Der::Constructed(0x30, Der::parse_all(bytes, 0)?);
    let count = root.count();
    if count < 2 {
        return None;
    }
    let donor = root.nth(&mut rng.gen_range(1..count))?.clone();
    let node = root.nth_mut(&mut rng.gen_range(1..count))?;
    match rng.gen_range(0..11) {
        0 => *node = Der::Primitive(node.tag()?, mutate_bytes(rng, node.content(), &[], "")),
        1 => {
            let mut content = node.content();
            match rng.gen_range(0..5) {
                0 => content.insert(0, 0),
                1 if !content.is_empty() => {
                    content.remove(0);
                }
                2 => content = vec![0],
                3 => content.clear(),
                _ => {
                    if let Some(first) = content.first_mut() {
                        *first ^= 0x80;
                    }
                }
            }
            *node = Der::Primitive(node.tag()?, content);
        }
        2 => match node {
            Der::Constructed(_, children) | Der::Wrapped(_, _, children)
                if !children.is_empty() =>
            {
                children.remove(rng.gen_range(0..children.len()));
            }
            _ => *node = Der::Primitive(node.tag()?, Vec::new()),
        },
        3 | 4 => match node {
            Der::Constructed(_, children) | Der::Wrapped(_, _, children)
                if !children.is_empty() =>
            {
                let at = rng.gen_range(0..children.len());
                if rng.r#gen() {
                    let copy = children[at].clone();
                    children.insert(at, copy);
                } else {
                    let other = rng.gen_range(0..children.len());
                    children.swap(at, other);
                }
            }
            _ => *node = donor,
        },
        5 => {
            let tag = node.tag()?;
            let tags = [
                0x02, 0x03, 0x04, 0x05, 0x06, 0x30, 0x31, 0xa0, 0xa1, 0x80, 0x81,
            ];
            let new_tag = if rng.gen_bool(0.2) {
                tag ^ 0x20
            } else {
                *pick(rng, &tags)
            };
            *node = match node.clone() {
                Der::Constructed(_, children) if new_tag & 0x20 != 0 => {
                    Der::Constructed(new_tag, children)
                }
                Der::Wrapped(_, prefix, children) if new_tag & 0x20 == 0 => {
                    Der::Wrapped(new_tag, prefix, children)
                }
                other => Der::Primitive(new_tag, other.content()),
            };
        }
        6 => *node = donor,
        7 => {
            let tag = node.tag()?;
            let content = node.content();
            let mut out = vec![tag];
            if tag & 0x20 != 0 && rng.gen_bool(0.3) {
                out.push(0x80);
                out.extend_from_slice(&content);
                out.extend_from_slice(&[0, 0]);
            } else {
                der_length(&mut out, content.len(), true);
                out.extend_from_slice(&content);
            }
            *node = Der::Raw(out);
        }
        8 => match node {
            Der::Constructed(_, children) | Der::Wrapped(_, _, children) => {
                let extra = match rng.gen_range(0..3) {
                    0 => Der::Primitive(0x05, Vec::new()),
                    1 => Der::Primitive(0x02, vec![0]),
                    _ => donor,
                };
                children.insert(rng.gen_range(0..=children.len()), extra);
            }
            _ => *node = donor,
        },
        9 => {
            let mut bytes = node.encode();
            let keep = rng.gen_range(0..bytes.len().max(1));
            bytes.truncate(keep);
            *node = Der::Raw(bytes);
        }
        _ => match node {
            Der::Wrapped(_, prefix, _) if !prefix.is_empty() => prefix[0] = rng.gen_range(1..8),
            _ => *node = Der::Primitive(node.tag()?, mutate_bytes(rng, node.content(), &[], "")),
        },
    }
    Some(root.content())
}

/// A reader of the SSH wire encoding (RFC 4251 §5), written here so that the properties do not
/// lean on src/keys/ssh.rs.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn raw(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes = self.raw(4)?;
        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.raw(len)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn wire_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An `mpint` of a non-negative big-endian magnitude.
fn wire_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let magnitude = &magnitude[first..];
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        wire_string(out, &[&[0u8][..], magnitude].concat());
    } else {
        wire_string(out, magnitude);
    }
}

/// The magnitude of an `mpint` that is non-negative and minimal (RFC 4251 §5).
fn minimal_mpint(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [first, ..] if first & 0x80 != 0 => None,
        [0] => None,
        [0, second, ..] if second & 0x80 == 0 => None,
        [0, rest @ ..] => Some(rest),
        _ => Some(bytes),
    }
}

/// A blob that is nothing but `string`s, as its strings.
fn wire_fields(blob: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut wire = Wire(blob);
    let mut fields = Vec::new();
    while !wire.is_empty() {
        fields.push(wire.string()?.to_vec());
    }
    Some(fields)
}

/// One change to an SSH wire blob: to one of its strings (altered bytes, another name, another
/// key's field, a leading zero added or dropped, a compressed point), or strings dropped or
/// doubled, or bytes after the end; plain byte mutations when it is not all strings.
fn mutate_wire(fx: &Fixtures, rng: &mut StdRng, blob: &[u8]) -> Vec<u8> {
    let Some(mut fields) = wire_fields(blob).filter(|f| !f.is_empty()) else {
        return mutate_bytes(rng, blob.to_vec(), &[], "");
    };
    let at = rng.gen_range(0..fields.len());
    match rng.gen_range(0..9) {
        0 | 1 => fields[at] = mutate_bytes(rng, fields[at].clone(), &[], ""),
        2 => fields[at] = pick(rng, SSH_NAMES).as_bytes().to_vec(),
        3 => {
            fields.remove(at);
        }
        4 => {
            let copy = fields[at].clone();
            fields.insert(at, copy);
        }
        5 => {
            if fields[at].first() == Some(&0) {
                fields[at].remove(0);
            } else {
                fields[at].insert(0, 0);
            }
        }
        6 => {
            let other = ssh_blob(&pick(rng, &fx.creds.keys).public);
            let others = wire_fields(&other).unwrap_or_default();
            if !others.is_empty() {
                fields[at] = pick(rng, &others).clone();
            }
        }
        7 => {
            let field = &fields[at];
            let compressed = p256::PublicKey::from_sec1_bytes(field)
                .map(|k| k.to_encoded_point(true).as_bytes().to_vec())
                .or_else(|_| {
                    p384::PublicKey::from_sec1_bytes(field)
                        .map(|k| k.to_encoded_point(true).as_bytes().to_vec())
                });
            if let Ok(compressed) = compressed {
                fields[at] = compressed;
            }
        }
        _ => {}
    }
    let mut out = Vec::new();
    for field in &fields {
        wire_string(&mut out, field);
    }
    if rng.gen_bool(0.1) {
        let tails: [&[u8]; 3] = [b"\0", b"\0\0\0\0", b"\0\0\0\x01x"];
        let tail = *pick::<&[u8]>(rng, &tails);
        out.extend_from_slice(tail);
    }
    out
}

/// Standard base64 with line breaks every `width` characters (none for 0).
fn wrap_base64(bytes: &[u8], width: usize) -> String {
    let encoded = STANDARD.encode(bytes);
    if width == 0 {
        return encoded;
    }
    encoded
        .as_bytes()
        .chunks(width)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn pem_text(label: &str, der: &[u8], width: usize) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        wrap_base64(der, width)
    )
}

/// The PEM blocks of `text` as (start, end, label), found as src/keys/private.rs finds them
/// (which block a key file means is that reader's definition; what is in it is checked here).
fn pem_spans(text: &str) -> Vec<(usize, usize, String)> {
    let mut spans = Vec::new();
    let mut offset = 0;
    while let Some(found) = text[offset..].find("-----BEGIN ") {
        let start = offset + found;
        let after = start + "-----BEGIN ".len();
        let Some(label_len) = text[after..].find("-----") else {
            break;
        };
        let label = &text[after..after + label_len];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = text[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        spans.push((start, stop, label.to_owned()));
        offset = stop;
    }
    spans
}

/// The bytes of one PEM block: the lines between its first and last, as standard base64. `None`
/// when there are header lines or it is not base64.
fn pem_inner(block: &str) -> Option<Vec<u8>> {
    let lines: Vec<&str> = block.trim().lines().map(str::trim).collect();
    let inner = lines.get(1..lines.len().checked_sub(1)?)?;
    if inner.iter().any(|line| line.contains(':')) {
        return None;
    }
    STANDARD.decode(inner.concat()).ok()
}

/// The first block whose label ends in PRIVATE KEY: its label and text.
fn first_private_block(text: &str) -> Option<(String, &str)> {
    pem_spans(text)
        .into_iter()
        .find(|(_, _, label)| label.ends_with("PRIVATE KEY"))
        .map(|(start, stop, label)| (label, &text[start..stop]))
}

/// A change to a PEM block's bytes, given its label.
type BodyMutation<'a> = dyn FnMut(&mut StdRng, &str, Vec<u8>) -> Vec<u8> + 'a;

/// Replaces one PEM block of `text` with its body mutated by `mutate` and, sometimes, another
/// label and line width.
fn mutate_pem_block(
    rng: &mut StdRng,
    text: &str,
    labels: &[&str],
    mutate: &mut BodyMutation<'_>,
) -> Option<Vec<u8>> {
    let spans = pem_spans(text);
    if spans.is_empty() {
        return None;
    }
    let (start, stop, label) = pick(rng, &spans).clone();
    let body = pem_inner(&text[start..stop])?;
    let body = mutate(rng, &label, body);
    let label = if rng.gen_bool(0.1) {
        (*pick(rng, labels)).to_owned()
    } else {
        label
    };
    let width = match rng.gen_range(0..10) {
        0 => rng.gen_range(0..100),
        1..=3 if label.starts_with("OPENSSH") => 70,
        _ => 64,
    };
    let block = pem_text(&label, &body, width);
    Some(format!("{}{}{}", &text[..start], block.trim_end(), &text[stop..]).into_bytes())
}

// Canonical encodings of an accepted key, built here from the key itself.

fn ec_point(key: &PublicKey, compressed: bool) -> Option<Vec<u8>> {
    match key {
        PublicKey::P256(k) => Some(k.to_encoded_point(compressed).as_bytes().to_vec()),
        PublicKey::P384(k) => Some(k.to_encoded_point(compressed).as_bytes().to_vec()),
        _ => None,
    }
}

fn curve_oid(key: &PublicKey) -> Option<&'static [u8]> {
    match key {
        PublicKey::P256(_) => Some(DER_OID_P256),
        PublicKey::P384(_) => Some(DER_OID_P384),
        _ => None,
    }
}

fn rsa_parts(key: &PublicKey) -> Option<(&[u8], &[u8])> {
    match key {
        PublicKey::Rsa(rsa) => Some((rsa.modulus(), rsa.exponent())),
        _ => None,
    }
}

/// The SubjectPublicKeyInfo DER of a key (RFC 5480, 8410, 3279), its EC point compressed or not.
fn spki_der(key: &PublicKey, compressed: bool) -> Vec<u8> {
    match key {
        PublicKey::P256(_) | PublicKey::P384(_) => der_seq(&[
            &der_seq(&[DER_OID_EC, curve_oid(key).unwrap_or_default()]),
            &der_bits(&ec_point(key, compressed).unwrap_or_default()),
        ]),
        PublicKey::Ed25519(x) => der_seq(&[&der_seq(&[DER_OID_ED25519]), &der_bits(x)]),
        PublicKey::Rsa(_) => {
            let (n, e) = rsa_parts(key).unwrap_or_default();
            der_seq(&[
                &der_seq(&[DER_OID_RSA, DER_NULL]),
                &der_bits(&der_seq(&[&der_uint(n), &der_uint(e)])),
            ])
        }
    }
}

fn ssh_type(key: &PublicKey) -> &'static str {
    match key {
        PublicKey::P256(_) => "ecdsa-sha2-nistp256",
        PublicKey::P384(_) => "ecdsa-sha2-nistp384",
        PublicKey::Ed25519(_) => "ssh-ed25519",
        PublicKey::Rsa(_) => "ssh-rsa",
    }
}

/// The SSH public key blob (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4).
fn ssh_blob(key: &PublicKey) -> Vec<u8> {
    let mut blob = Vec::new();
    wire_string(&mut blob, ssh_type(key).as_bytes());
    match key {
        PublicKey::P256(_) | PublicKey::P384(_) => {
            let curve = &ssh_type(key)["ecdsa-sha2-".len()..];
            wire_string(&mut blob, curve.as_bytes());
            wire_string(&mut blob, &ec_point(key, false).unwrap_or_default());
        }
        PublicKey::Ed25519(x) => wire_string(&mut blob, x),
        PublicKey::Rsa(_) => {
            let (n, e) = rsa_parts(key).unwrap_or_default();
            wire_mpint(&mut blob, e);
            wire_mpint(&mut blob, n);
        }
    }
    blob
}

fn ssh_line(key: &PublicKey) -> String {
    format!("{} {}", ssh_type(key), STANDARD.encode(ssh_blob(key)))
}

/// The RFC 7638 members of a key, in their order, as compact JSON.
fn canonical_jwk(key: &PublicKey) -> String {
    match key {
        PublicKey::P256(_) | PublicKey::P384(_) => {
            let point = ec_point(key, false).unwrap_or_default();
            let half = point.len() / 2;
            let curve = if matches!(key, PublicKey::P256(_)) {
                "P-256"
            } else {
                "P-384"
            };
            format!(
                r#"{{"crv":"{curve}","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(&point[1..=half]),
                b64::encode(&point[half + 1..])
            )
        }
        PublicKey::Ed25519(x) => {
            format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64::encode(x)
            )
        }
        PublicKey::Rsa(_) => {
            let (n, e) = rsa_parts(key).unwrap_or_default();
            format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(e),
                b64::encode(n)
            )
        }
    }
}

/// Whether an Ed25519 encoding's y is below p = 2^255 - 19.
fn ed25519_y_canonical(x: &[u8; 32]) -> bool {
    let mut y = *x;
    y[31] &= 0x7f;
    for i in (0..32).rev() {
        let p = match i {
            0 => 0xed,
            31 => 0x7f,
            _ => 0xff,
        };
        if y[i] != p {
            return y[i] < p;
        }
    }
    false
}

/// What every accepted public key must satisfy, whichever reader accepted it: the node's stored
/// form (its canonical JWK) and thumbprint are the RFC 7638 ones, the key reads back from that
/// JWK, from its OpenSSH line and from its SubjectPublicKeyInfo (DER and PEM) as the same key,
/// RSA keys keep to the size and exponent rules, Ed25519 points are canonical, and a credential
/// key can be made of it with its algorithm.
fn check_public_key(key: &PublicKey) -> Result<(), Broken> {
    let jwk = canonical_jwk(key);
    if key.to_jwk_json() != jwk {
        return Err("the stored JWK is not the key's RFC 7638 members".into());
    }
    let thumbprint = key.thumbprint();
    if thumbprint != b64::encode(&Sha256::digest(jwk.as_bytes())) {
        return Err("the thumbprint is not the RFC 7638 thumbprint".into());
    }
    match PublicKey::from_jwk_json(&jwk) {
        Ok((again, None)) if &again == key && again.thumbprint() == thumbprint => {}
        _ => return Err("the key does not round-trip through its stored JWK".into()),
    }
    let line = ssh_line(key);
    if ssh::public_key_line(key) != line {
        return Err("public_key_line is not the canonical OpenSSH line".into());
    }
    if ssh::parse_public_key_line(&format!("{line} me@host")).as_ref() != Ok(key) {
        return Err("the key does not round-trip through its OpenSSH line".into());
    }
    let der = spki_der(key, false);
    if PublicKey::from_spki_der(&der).as_ref() != Ok(key) {
        return Err("the key does not round-trip through its SubjectPublicKeyInfo".into());
    }
    if PublicKey::from_text(&pem_text("PUBLIC KEY", &der, 64)).as_ref() != Ok(key) {
        return Err("the key does not round-trip through its PEM".into());
    }
    match key {
        PublicKey::Rsa(rsa) => {
            let (n, e) = (rsa.modulus(), rsa.exponent());
            let bits = n
                .first()
                .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) || rsa.bits() != bits {
                return Err("accepted an RSA key outside the size bounds".into());
            }
            if n.last().is_none_or(|b| b & 1 == 0) {
                return Err("accepted an even RSA modulus".into());
            }
            let exponent = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            if e.first() == Some(&0)
                || e.len() > 4
                || exponent < 3
                || exponent % 2 == 0
                || n.first() == Some(&0)
            {
                return Err("accepted an RSA exponent out of range or a padded integer".into());
            }
        }
        PublicKey::Ed25519(x) => {
            let mut y = *x;
            y[31] &= 0x7f;
            let mut one = [0u8; 32];
            one[0] = 1;
            if !ed25519_y_canonical(x) || y == [0u8; 32] || y == one {
                return Err("accepted a non-canonical or small-order Ed25519 point".into());
            }
        }
        PublicKey::P256(_) | PublicKey::P384(_) => {}
    }
    let credential = CredentialKey::new(key.clone(), key.default_algorithm())
        .map_err(|_| "a key's own default algorithm is refused".to_owned())?;
    if credential.kid != thumbprint {
        return Err("a credential key's kid is not the thumbprint".into());
    }
    Ok(())
}

/// The label of a key refusal: its variant and the first lower-case words of its message.
fn key_error_label(error: &KeyError) -> String {
    let _ = error.to_string();
    let detail = match error {
        KeyError::Jwk(m)
        | KeyError::Pem(m)
        | KeyError::Der(m)
        | KeyError::Ssh(m)
        | KeyError::Unsupported(m) => first_words(m),
        _ => String::new(),
    };
    if detail.is_empty() {
        variant(error)
    } else {
        format!("{}: {detail}", variant(error))
    }
}

/// Up to three leading words of a message that are plain lower-case words (never the input's
/// text, so that outcome labels stay few).
fn first_words(message: &str) -> String {
    message
        .split(' ')
        .take_while(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The member names of a JSON object in order, duplicates included.
struct MemberNames(Vec<String>);

impl<'de> serde::Deserialize<'de> for MemberNames {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = MemberNames;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MemberNames, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    names.push(name);
                }
                Ok(MemberNames(names))
            }
        }
        deserializer.deserialize_map(Names)
    }
}

// --- public_key ----------------------------------------------------------------------------------

fn public_key_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for key in &fx.creds.keys {
        let public = &key.public;
        let jwk = canonical_jwk(public);
        seeds.push(format!("{} me@laptop\n", ssh_line(public)));
        seeds.push(jwk.clone());
        let mut full: Value = serde_json::from_str(&jwk).unwrap_or_default();
        let alg = if matches!(public, PublicKey::Rsa(_)) {
            "PS256"
        } else {
            public.default_algorithm().as_str()
        };
        full["alg"] = json!(alg);
        full["use"] = json!("sig");
        full["key_ops"] = json!(["verify"]);
        full["ext"] = json!(true);
        full["kid"] = json!(public.thumbprint());
        seeds.push(full.to_string());
        seeds.push(pem_text("PUBLIC KEY", &spki_der(public, false), 64));
        if curve_oid(public).is_some() {
            // As `openssl pkey -pubout -ec_conv_form compressed` writes it.
            seeds.push(pem_text("PUBLIC KEY", &spki_der(public, true), 64));
        }
    }
    if let Some((n, e)) = fx.creds.keys.iter().find_map(|k| rsa_parts(&k.public)) {
        let pkcs1 = der_seq(&[&der_uint(n), &der_uint(e)]);
        seeds.push(pem_text("RSA PUBLIC KEY", &pkcs1, 64));
    }
    for (name, text) in &fx.creds.vectors {
        if name.ends_with(".pub") || name.ends_with(".pem") {
            seeds.push(text.clone());
        }
    }
    // RFC 8037 §A.1: a private JWK, which must be refused as one.
    seeds.push(
        concat!(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","#,
            r#""d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#
        )
        .into(),
    );
    seeds.into_iter().map(String::into_bytes).collect()
}

/// Re-encodes a PEM block or an OpenSSH line after a change inside its base64 (to the DER tree
/// or the SSH strings), which byte mutations of the text rarely make.
fn public_key_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    if !rng.gen_bool(0.4) {
        return input;
    }
    let mut text = text_of(&input);
    // Byte mutations mostly break the base64; then start again from a valid key.
    let pem_decodes = pem_spans(&text)
        .iter()
        .any(|(start, stop, _)| pem_inner(&text[*start..*stop]).is_some());
    let line_decodes = text
        .split(' ')
        .nth(1)
        .is_some_and(|blob| STANDARD.decode(blob.trim()).is_ok());
    if !pem_decodes && !line_decodes && !text.trim_start().starts_with('{') && rng.r#gen() {
        let key = &pick(rng, &fx.creds.keys).public;
        text = if rng.r#gen() {
            pem_text("PUBLIC KEY", &spki_der(key, false), 64)
        } else {
            format!("{} me@laptop", ssh_line(key))
        };
    }
    if text.contains("-----BEGIN ") {
        let mut mutate = |rng: &mut StdRng, _: &str, body: Vec<u8>| {
            mutate_der(rng, &body).unwrap_or_else(|| mutate_bytes(rng, body, &[], ""))
        };
        return mutate_pem_block(rng, &text, PUBLIC_LABELS, &mut mutate).unwrap_or(input);
    }
    let mut tokens: Vec<String> = text.split(' ').map(str::to_owned).collect();
    if tokens.len() < 2 {
        return input;
    }
    let Ok(blob) = STANDARD.decode(tokens[1].trim()) else {
        return input;
    };
    if rng.gen_bool(0.2) {
        tokens[0] = (*pick(rng, SSH_NAMES)).to_owned();
    } else {
        tokens[1] = STANDARD.encode(mutate_wire(fx, rng, &blob));
    }
    tokens.join(" ").into_bytes()
}

fn public_key_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let long = text.len() > MAX_PUBLIC_KEY_LEN;
    let from_text = PublicKey::from_text(&text);
    let jwk = PublicKey::from_jwk_json(&text);
    for result in [from_text.as_ref().err(), jwk.as_ref().err()] {
        if long != matches!(result, Some(KeyError::TooLong)) {
            return Err("a text was refused as too long exactly when it was not".into());
        }
    }
    let pem = PublicKey::from_pem(&text);
    let line = ssh::parse_public_key_line(&text);
    if !long {
        let trimmed = text.trim();
        let routed = if trimmed.starts_with("-----BEGIN ") {
            pem.clone()
        } else if trimmed.starts_with('{') {
            PublicKey::from_jwk_json(trimmed).map(|(key, _)| key)
        } else {
            line.clone()
        };
        if routed != from_text {
            return Err("from_text disagrees with the reader of the format it names".into());
        }
    }
    if let Ok((key, alg)) = &jwk {
        check_public_key(key)?;
        check_jwk_text(&text, key, *alg)?;
    }
    if let Ok(key) = &pem {
        check_public_key(key)?;
        check_pem_text(&text, key)?;
    }
    if let Ok(key) = &line {
        check_public_key(key)?;
        check_line_text(&text, key)?;
    }
    for error in [&jwk.err(), &pem.err(), &line.err()].into_iter().flatten() {
        let _ = error.to_string();
    }
    match from_text {
        Ok(_) => Ok(Verdict::Accepted),
        Err(error) => Ok(Verdict::Refused(key_error_label(&error))),
    }
}

/// An accepted JWK holds each member once, only the members of its key type and the optional
/// ones docs/protocol.md allows, key members that re-encode to themselves, and optional
/// members with the allowed values; the algorithm it names fits the key.
fn check_jwk_text(text: &str, key: &PublicKey, alg: Option<JwsAlgorithm>) -> Result<(), Broken> {
    const OPTIONAL: [&str; 5] = ["alg", "use", "key_ops", "ext", "kid"];
    let names = serde_json::from_str::<MemberNames>(text)
        .map_err(|_| "accepted a JWK that is not a JSON object".to_owned())?
        .0;
    if names
        .iter()
        .enumerate()
        .any(|(i, n)| names[..i].contains(n))
    {
        return Err("accepted a JWK with a duplicated member".into());
    }
    let canonical: Value = serde_json::from_str(&canonical_jwk(key)).map_err(|e| e.to_string())?;
    let members: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if names
        .iter()
        .any(|n| canonical.get(n).is_none() && !OPTIONAL.contains(&n.as_str()))
    {
        return Err("accepted a JWK with a member its key type does not have".into());
    }
    if let Some(expected) = canonical.as_object()
        && expected
            .iter()
            .any(|(name, value)| members.get(name) != Some(value))
    {
        return Err("accepted key members that do not re-encode to themselves".into());
    }
    if members
        .get("kid")
        .is_some_and(|kid| kid.as_str() != Some(&key.thumbprint()))
        || members.get("use").is_some_and(|u| u != "sig")
        || members.get("ext").is_some_and(|e| !e.is_boolean())
        || members.get("key_ops").is_some_and(|ops| {
            !ops.as_array()
                .is_some_and(|ops| ops.iter().all(|op| op == "verify"))
        })
    {
        return Err("accepted an optional member with a value docs/protocol.md refuses".into());
    }
    let named = members.get("alg").map(|a| a.as_str().unwrap_or("\u{0}"));
    match (named, alg) {
        (None, None) => {}
        (Some(name), Some(alg))
            if key.allows(alg)
                && (name == alg.as_str() || (name == "Ed25519" && alg == JwsAlgorithm::EdDsa)) => {}
        _ => return Err("the algorithm returned is not the one the alg member names".into()),
    }
    Ok(())
}

/// An accepted PEM is a PUBLIC KEY block holding exactly the canonical DER of its key.
fn check_pem_text(text: &str, key: &PublicKey) -> Result<(), Broken> {
    let trimmed = text.trim();
    if !trimmed.starts_with("-----BEGIN PUBLIC KEY-----")
        || !trimmed.ends_with("-----END PUBLIC KEY-----")
    {
        return Err("accepted a PEM that is not one PUBLIC KEY block".into());
    }
    match pem_inner(trimmed) {
        Some(der) => check_spki_bytes(&der, key),
        None => Ok(()),
    }
}

fn check_spki_bytes(der: &[u8], key: &PublicKey) -> Result<(), Broken> {
    if der == spki_der(key, false) {
        Ok(())
    } else if curve_oid(key).is_some() && der == spki_der(key, true) {
        Err("accepted a compressed EC point, which docs/protocol.md says is refused".into())
    } else {
        Err("accepted a SubjectPublicKeyInfo that is not the canonical DER of its key".into())
    }
}

/// An accepted OpenSSH line is one line whose type and blob are exactly the canonical ones.
fn check_line_text(text: &str, key: &PublicKey) -> Result<(), Broken> {
    let trimmed = text.trim();
    let mut tokens = trimmed.split_ascii_whitespace();
    let canonical = ssh_line(key);
    if trimmed.contains(['\n', '\r'])
        || tokens.next() != canonical.split(' ').next()
        || tokens.next() != canonical.split(' ').nth(1)
    {
        return Err("accepted an OpenSSH line that is not the canonical one of its key".into());
    }
    Ok(())
}

// --- spki ----------------------------------------------------------------------------------------

fn spki_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for key in &fx.creds.keys {
        seeds.push(spki_der(&key.public, false));
        if curve_oid(&key.public).is_some() {
            seeds.push(spki_der(&key.public, true));
        }
    }
    seeds
}

fn spki_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    if !rng.gen_bool(0.6) {
        return input;
    }
    // Byte mutations mostly break the DER; then start again from a valid key.
    if Der::parse_all(&input, 0).is_none() && rng.r#gen() {
        let key = &pick(rng, &fx.creds.keys).public;
        return mutate_der(rng, &spki_der(key, false)).unwrap_or(input);
    }
    mutate_der(rng, &input).unwrap_or(input)
}

fn spki_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let result = PublicKey::from_spki_der(input);
    let pem = pem_text("PUBLIC KEY", input, 64);
    let via_pem = PublicKey::from_pem(&pem);
    if via_pem.is_ok() != result.is_ok() || (result.is_ok() && via_pem != result) {
        return Err("the DER and the same DER in a PEM read differently".into());
    }
    if pem.len() <= MAX_PUBLIC_KEY_LEN && PublicKey::from_text(&pem) != via_pem {
        return Err("from_text reads a PEM differently from from_pem".into());
    }
    match result {
        Ok(key) => {
            check_public_key(&key)?;
            check_spki_bytes(input, &key)?;
            Ok(Verdict::Accepted)
        }
        Err(error) => Ok(Verdict::Refused(key_error_label(&error))),
    }
}

// --- sshsig --------------------------------------------------------------------------------------

/// The fields of an SSHSIG blob (OpenSSH PROTOCOL.sshsig) after its magic preamble.
#[derive(Clone)]
struct SshSig {
    version: u32,
    signer: Vec<u8>,
    namespace: Vec<u8>,
    reserved: Vec<u8>,
    hash: Vec<u8>,
    signature: Vec<u8>,
    /// Bytes after the last field (none in a signature that reads).
    trailing: Vec<u8>,
}

impl SshSig {
    fn parse(blob: &[u8]) -> Option<SshSig> {
        let mut wire = Wire(blob);
        if wire.raw(6)? != b"SSHSIG" {
            return None;
        }
        let sig = SshSig {
            version: wire.u32()?,
            signer: wire.string()?.to_vec(),
            namespace: wire.string()?.to_vec(),
            reserved: wire.string()?.to_vec(),
            hash: wire.string()?.to_vec(),
            signature: wire.string()?.to_vec(),
            trailing: Vec::new(),
        };
        wire.is_empty().then_some(sig)
    }

    fn write(&self) -> Vec<u8> {
        let mut out = b"SSHSIG".to_vec();
        out.extend_from_slice(&self.version.to_be_bytes());
        for field in [
            &self.signer,
            &self.namespace,
            &self.reserved,
            &self.hash,
            &self.signature,
        ] {
            wire_string(&mut out, field);
        }
        out.extend_from_slice(&self.trailing);
        out
    }
}

fn dearmor_sshsig(text: &str) -> Option<Vec<u8>> {
    let body = text
        .trim()
        .strip_prefix("-----BEGIN SSH SIGNATURE-----")?
        .strip_suffix("-----END SSH SIGNATURE-----")?;
    STANDARD
        .decode(body.split_ascii_whitespace().collect::<String>())
        .ok()
}

/// The armor ssh-keygen writes (70 columns).
fn armor_sshsig(blob: &[u8], width: usize) -> String {
    format!(
        "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----\n",
        wrap_base64(blob, width)
    )
}

/// What an SSH signature signs: the magic, the namespace, the reserved field, the hash name and
/// the message's hash (PROTOCOL.sshsig §"Signed Data"). `None` for a hash that is not ours.
fn sshsig_signed_data(
    namespace: &[u8],
    reserved: &[u8],
    hash: &[u8],
    message: &[u8],
) -> Option<Vec<u8>> {
    let digest = match hash {
        b"sha256" => Sha256::digest(message).to_vec(),
        b"sha512" => Sha512::digest(message).to_vec(),
        _ => return None,
    };
    let mut data = b"SSHSIG".to_vec();
    wire_string(&mut data, namespace);
    wire_string(&mut data, reserved);
    wire_string(&mut data, hash);
    wire_string(&mut data, &digest);
    Some(data)
}

/// The signature algorithm ssh-keygen uses with a key.
fn ssh_signature_algorithm(key: &PublicKey) -> &'static str {
    match key {
        PublicKey::Rsa(_) => "rsa-sha2-512",
        other => ssh_type(other),
    }
}

/// An SSH signature blob (`string` algorithm, `string` signature) by `key` over `data`, labelled
/// `algorithm`. A label that does not fit the key gets the key's own kind of signature.
fn ssh_signature_blob(creds: &Credentials, key: &CredKey, algorithm: &str, data: &[u8]) -> Vec<u8> {
    let raw = match (&key.public, algorithm) {
        (PublicKey::Rsa(_), "rsa-sha2-512") => {
            let mut signature = vec![0u8; creds.rsa_pair.public_modulus_len()];
            let rng = aws_lc_rs::rand::SystemRandom::new();
            if creds
                .rsa_pair
                .sign(&lc::RSA_PKCS1_SHA512, &rng, data, &mut signature)
                .is_err()
            {
                signature.clear();
            }
            signature
        }
        (PublicKey::P256(_) | PublicKey::P384(_), _) => {
            let fixed = key.private.sign_jws(data);
            let (r, s) = fixed.split_at(fixed.len() / 2);
            let mut inner = Vec::new();
            wire_mpint(&mut inner, r);
            wire_mpint(&mut inner, s);
            inner
        }
        _ => key.private.sign_jws(data),
    };
    let mut blob = Vec::new();
    wire_string(&mut blob, algorithm.as_bytes());
    wire_string(&mut blob, &raw);
    blob
}

fn make_sshsig(creds: &Credentials, key: &CredKey, hash: &str, algorithm: &str) -> String {
    let data = sshsig_signed_data(
        paste::SSHSIG_NAMESPACE.as_bytes(),
        b"",
        hash.as_bytes(),
        &creds.message,
    )
    .unwrap_or_default();
    let sig = SshSig {
        version: 1,
        signer: ssh_blob(&key.public),
        namespace: paste::SSHSIG_NAMESPACE.as_bytes().to_vec(),
        reserved: Vec::new(),
        hash: hash.as_bytes().to_vec(),
        signature: ssh_signature_blob(creds, key, algorithm, &data),
        trailing: Vec::new(),
    };
    armor_sshsig(&sig.write(), 70)
}

fn sshsig_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for key in &fx.creds.keys {
        let algorithm = ssh_signature_algorithm(&key.public);
        seeds.push(make_sshsig(&fx.creds, key, "sha512", algorithm));
        seeds.push(make_sshsig(&fx.creds, key, "sha256", algorithm));
        if matches!(key.public, PublicKey::Rsa(_)) {
            seeds.push(make_sshsig(&fx.creds, key, "sha512", "rsa-sha2-256"));
            seeds.push(make_sshsig(&fx.creds, key, "sha256", "ssh-rsa"));
        }
    }
    seeds.into_iter().map(String::into_bytes).collect()
}

fn sshsig_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    if !rng.gen_bool(0.6) {
        return input;
    }
    let mut text = text_of(&input);
    // Byte mutations mostly break the base64; then start again from a valid signature.
    if dearmor_sshsig(&text).is_none() && rng.r#gen() {
        text = pick(rng, &fx.creds.sshsigs).clone();
    }
    remake_sshsig(fx, rng, &text).unwrap_or(input)
}

/// Changes one field of an armored SSH signature and, mostly, signs it again with the fixture
/// key it names. Signing only ever covers the sign-in message in the siteid-login namespace,
/// whatever the namespace field says, so no other message or namespace may ever verify.
fn remake_sshsig(fx: &Fixtures, rng: &mut StdRng, text: &str) -> Option<Vec<u8>> {
    let blob = dearmor_sshsig(text)?;
    let width = *pick(rng, &[70usize, 70, 70, 64, 76, 0, 1]);
    let Some(mut sig) = SshSig::parse(&blob) else {
        return Some(armor_sshsig(&mutate_bytes(rng, blob, &[], ""), width).into_bytes());
    };
    let mut resign = rng.gen_bool(0.7);
    match rng.gen_range(0..10) {
        0 => {
            let names: [&[u8]; 8] = [
                b"siteid-login",
                OTHER_NAMESPACE.as_bytes(),
                b"",
                b"siteid-login\0",
                b"siteid-login ",
                b"SITEID-LOGIN",
                b"siteid-logi",
                b"siteid-loginx",
            ];
            sig.namespace = pick(rng, &names).to_vec();
        }
        1 => sig.reserved = pick(rng, &[&b""[..], b"x", b"\0"]).to_vec(),
        2 => {
            let hashes: [&[u8]; 7] = [
                b"sha256",
                b"sha512",
                b"sha384",
                b"sha1",
                b"SHA256",
                b"",
                b"sha512\0",
            ];
            sig.hash = pick(rng, &hashes).to_vec();
        }
        3 => {
            sig.signer = if rng.gen_bool(0.6) {
                ssh_blob(&pick(rng, &fx.creds.keys).public)
            } else {
                mutate_wire(fx, rng, &sig.signer)
            };
        }
        4 => {
            sig.signature = mutate_wire(fx, rng, &sig.signature);
            resign = false;
        }
        5 => {
            sig.signature = mutate_ecdsa_blob(rng, &sig.signature).unwrap_or(sig.signature);
            resign = false;
        }
        6 => sig.version = *pick(rng, &[0, 2, u32::MAX, 0x0100_0000]),
        7 => {
            sig.trailing = pick(rng, &[&b"\0"[..], b"\0\0\0\0", b"SSHSIG"]).to_vec();
        }
        8 => {
            let algorithms = [
                "ssh-ed25519",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp384",
                "rsa-sha2-256",
                "rsa-sha2-512",
                "ssh-rsa",
                "RSA-SHA2-512",
            ];
            let algorithm = *pick(rng, &algorithms);
            let mut fields = wire_fields(&sig.signature).unwrap_or_default();
            if fields.len() == 2 {
                fields[0] = algorithm.as_bytes().to_vec();
                sig.signature.clear();
                for field in &fields {
                    wire_string(&mut sig.signature, field);
                }
            }
        }
        _ => {}
    }
    if resign
        && let Some(key) = fx
            .creds
            .keys
            .iter()
            .find(|k| ssh_blob(&k.public) == sig.signer)
        && let Some(data) = sshsig_signed_data(
            paste::SSHSIG_NAMESPACE.as_bytes(),
            &sig.reserved,
            &sig.hash,
            &fx.creds.message,
        )
    {
        let named = wire_fields(&sig.signature)
            .and_then(|f| f.first().and_then(|a| String::from_utf8(a.clone()).ok()))
            .unwrap_or_else(|| ssh_signature_algorithm(&key.public).to_owned());
        sig.signature = ssh_signature_blob(&fx.creds, key, &named, &data);
    }
    let mut out = armor_sshsig(&sig.write(), width);
    if rng.gen_bool(0.1) {
        out = out.replace('\n', "\r\n");
    }
    Some(out.into_bytes())
}

/// Malleates an ECDSA signature blob: s replaced by n - s (still valid), r and s swapped, a
/// zero byte added to r or s (no longer minimal), or r set to zero.
fn mutate_ecdsa_blob(rng: &mut StdRng, blob: &[u8]) -> Option<Vec<u8>> {
    let fields = wire_fields(blob)?;
    let [algorithm, inner] = fields.as_slice() else {
        return None;
    };
    let mut wire = Wire(inner);
    let (mut r, mut s) = (wire.string()?.to_vec(), wire.string()?.to_vec());
    match rng.gen_range(0..4) {
        0 => s = negate_scalar(algorithm, &s)?,
        1 => std::mem::swap(&mut r, &mut s),
        2 => {
            let target = if rng.r#gen() { &mut r } else { &mut s };
            target.insert(0, 0);
        }
        _ => r.clear(),
    }
    let mut inner = Vec::new();
    wire_string(&mut inner, &r);
    wire_string(&mut inner, &s);
    let mut out = Vec::new();
    wire_string(&mut out, algorithm);
    wire_string(&mut out, &inner);
    Some(out)
}

/// n - s for the curve an SSH algorithm names, as an mpint body.
fn negate_scalar(algorithm: &[u8], s: &[u8]) -> Option<Vec<u8>> {
    let s = minimal_mpint(s)?;
    let negated = match algorithm {
        b"ecdsa-sha2-nistp256" => {
            let mut fixed = [0u8; 32];
            fixed
                .get_mut(32usize.checked_sub(s.len())?..)?
                .copy_from_slice(s);
            let scalar = Option::<p256::Scalar>::from(p256::Scalar::from_repr(fixed.into()))?;
            (-scalar).to_bytes().to_vec()
        }
        b"ecdsa-sha2-nistp384" => {
            let mut fixed = [0u8; 48];
            fixed
                .get_mut(48usize.checked_sub(s.len())?..)?
                .copy_from_slice(s);
            let scalar = Option::<p384::Scalar>::from(p384::Scalar::from_repr(fixed.into()))?;
            (-scalar).to_bytes().to_vec()
        }
        _ => return None,
    };
    let mut out = Vec::new();
    wire_mpint(&mut out, &negated);
    Some(out[4..].to_vec())
}

/// Whether p256 or p384 (the RustCrypto implementations, not aws-lc) verify an ECDSA signature.
fn ecdsa_reference(key: &PublicKey, data: &[u8], r: &[u8], s: &[u8]) -> bool {
    let width = match key {
        PublicKey::P256(_) => 32,
        PublicKey::P384(_) => 48,
        _ => return false,
    };
    if r.len() > width || s.len() > width {
        return false;
    }
    let mut fixed = vec![0u8; 2 * width];
    fixed[width - r.len()..width].copy_from_slice(r);
    fixed[2 * width - s.len()..].copy_from_slice(s);
    match key {
        PublicKey::P256(public) => p256::ecdsa::Signature::from_slice(&fixed).is_ok_and(|sig| {
            p256::ecdsa::VerifyingKey::from(public)
                .verify(data, &sig)
                .is_ok()
        }),
        PublicKey::P384(public) => p384::ecdsa::Signature::from_slice(&fixed).is_ok_and(|sig| {
            p384::ecdsa::VerifyingKey::from(public)
                .verify(data, &sig)
                .is_ok()
        }),
        _ => false,
    }
}

fn sshsig_label(error: &SshSigError) -> String {
    let _ = error.to_string();
    match error {
        SshSigError::Malformed(message) => format!("Malformed: {}", first_words(message)),
        other => variant(other),
    }
}

fn sshsig_check(fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let namespace = paste::SSHSIG_NAMESPACE;
    let (message, other_message) = (&fx.creds.message, &fx.creds.other_message);
    let mut verified = Vec::new();
    let mut label = None;
    for key in &fx.creds.keys {
        let result = ssh::verify_sshsig(&text, namespace, message, &key.public);
        if (text.len() > ssh::MAX_SSHSIG_LEN) != matches!(result, Err(SshSigError::TooLong)) {
            return Err("a signature was refused as too long exactly when it was not".into());
        }
        if ssh::verify_sshsig(&text, OTHER_NAMESPACE, message, &key.public).is_ok() {
            return Err("a signature verified in another namespace".into());
        }
        if ssh::verify_sshsig(&text, namespace, other_message, &key.public).is_ok() {
            return Err("a signature verified for another message".into());
        }
        match result {
            Ok(()) => verified.push(key),
            Err(error) => {
                if label.is_none() || !matches!(error, SshSigError::OtherKey) {
                    label = Some(sshsig_label(&error));
                }
            }
        }
    }
    match verified.as_slice() {
        [] => Ok(Verdict::Refused(label.unwrap_or_default())),
        [key] => {
            check_verified_sshsig(&fx.creds, key, &text, message)?;
            Ok(Verdict::Accepted)
        }
        _ => Err("one SSH signature verified under two keys".into()),
    }
}

/// A verified SSH signature is, read independently here, the magic, version 1, the key's
/// canonical blob, the siteid-login namespace, an empty reserved field, sha256 or sha512, and
/// the signature algorithm that fits the key, with nothing after. For Ed25519 and RSA (whose
/// signatures are deterministic) it is exactly the signature the key makes; for ECDSA, r and s
/// are minimal mpints and p256/p384 verify them too.
fn check_verified_sshsig(
    creds: &Credentials,
    key: &CredKey,
    text: &str,
    message: &[u8],
) -> Result<(), Broken> {
    let blob = dearmor_sshsig(text).ok_or("verified a signature whose armor does not read")?;
    let sig = SshSig::parse(&blob).ok_or("verified a blob that is not the SSHSIG fields")?;
    if sig.version != 1
        || sig.signer != ssh_blob(&key.public)
        || sig.namespace != paste::SSHSIG_NAMESPACE.as_bytes()
        || !sig.reserved.is_empty()
    {
        return Err(
            "verified a signature with another version, signer, namespace or reserved field".into(),
        );
    }
    let data = sshsig_signed_data(&sig.namespace, &sig.reserved, &sig.hash, message)
        .ok_or("verified a signature with a hash other than sha256 or sha512")?;
    let fields = wire_fields(&sig.signature).unwrap_or_default();
    let [algorithm, raw] = fields.as_slice() else {
        return Err("verified a signature blob that is not two strings".into());
    };
    let expected = match &key.public {
        PublicKey::Rsa(_) => matches!(algorithm.as_slice(), b"rsa-sha2-256" | b"rsa-sha2-512"),
        other => algorithm.as_slice() == ssh_type(other).as_bytes(),
    };
    if !expected {
        return Err("verified a signature algorithm that does not fit the key".into());
    }
    match &key.public {
        PublicKey::Ed25519(_) | PublicKey::Rsa(_) => {
            let name = String::from_utf8_lossy(algorithm);
            if sig.signature != ssh_signature_blob(creds, key, &name, &data) {
                return Err("verified an Ed25519 or RSA signature other than the key's".into());
            }
        }
        PublicKey::P256(_) | PublicKey::P384(_) => {
            let mut wire = Wire(raw);
            let (r, s) = (wire.string(), wire.string());
            let (Some(r), Some(s)) = (r.and_then(minimal_mpint), s.and_then(minimal_mpint)) else {
                return Err("verified ECDSA values that are not minimal mpints".into());
            };
            if !wire.is_empty() {
                return Err("verified an ECDSA signature with bytes after s".into());
            }
            if !ecdsa_reference(&key.public, &data, r, s) {
                return Err("aws-lc verified an ECDSA signature that p256/p384 refuse".into());
            }
        }
    }
    Ok(())
}

// --- paste ---------------------------------------------------------------------------------------

/// The base64 `openssl dgst -sign` or `openssl pkeyutl -sign -rawin` output of a key, over the
/// sign-in message, as `openssl base64` wraps it.
fn openssl_signature(key: &CredKey, message: &[u8]) -> String {
    let fixed = key.private.sign_jws(message);
    let bytes = match &key.public {
        PublicKey::P256(_) => p256::ecdsa::Signature::from_slice(&fixed)
            .map(|s| s.to_der().as_bytes().to_vec())
            .unwrap_or_default(),
        PublicKey::P384(_) => p384::ecdsa::Signature::from_slice(&fixed)
            .map(|s| s.to_der().as_bytes().to_vec())
            .unwrap_or_default(),
        _ => fixed,
    };
    format!("{}\n", wrap_base64(&bytes, 64))
}

fn paste_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for key in &fx.creds.keys {
        seeds.push(openssl_signature(key, &fx.creds.message));
        seeds.push(make_sshsig(
            &fx.creds,
            key,
            "sha512",
            ssh_signature_algorithm(&key.public),
        ));
    }
    seeds.into_iter().map(String::into_bytes).collect()
}

/// Changes the bytes inside the base64 (the DER tree of an ECDSA signature, s replaced by
/// n - s, S + L for Ed25519, or plain bytes) and re-wraps it; SSH signatures as `sshsig`.
fn paste_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    if !rng.gen_bool(0.5) {
        return input;
    }
    let text = text_of(&input);
    if text.contains("SSH SIGNATURE") {
        return remake_sshsig(fx, rng, &text).unwrap_or(input);
    }
    let decode = |text: &str| STANDARD.decode(text.split_ascii_whitespace().collect::<String>());
    let bytes = match decode(&text) {
        Ok(bytes) => bytes,
        // Byte mutations mostly break the base64; then start again from a valid signature.
        Err(_) if rng.r#gen() => {
            let sample = pick(rng, &fx.creds.pastes);
            if sample.contains("SSH SIGNATURE") {
                return remake_sshsig(fx, rng, sample).unwrap_or(input);
            }
            decode(sample).unwrap_or_default()
        }
        Err(_) => return input,
    };
    let bytes = match rng.gen_range(0..5) {
        0 => negate_der_s(&bytes).unwrap_or(bytes),
        1 => ed25519_add_order(&bytes).unwrap_or(bytes),
        2 | 3 => mutate_der(rng, &bytes).unwrap_or_else(|| mutate_bytes(rng, bytes, &[], "")),
        _ => mutate_bytes(rng, bytes, &[], ""),
    };
    let width = *pick(rng, &[64usize, 64, 76, 0]);
    let mut out = format!("{}\n", wrap_base64(&bytes, width));
    if rng.gen_bool(0.1) {
        out = out.replace('\n', "\r\n");
    }
    out.into_bytes()
}

/// A DER ECDSA signature with s replaced by n - s (it verifies just as well).
fn negate_der_s(der: &[u8]) -> Option<Vec<u8>> {
    if let Ok(sig) = p256::ecdsa::Signature::from_der(der) {
        let (r, s) = sig.split_scalars();
        let flipped = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).ok()?;
        return Some(flipped.to_der().as_bytes().to_vec());
    }
    let sig = p384::ecdsa::Signature::from_der(der).ok()?;
    let (r, s) = sig.split_scalars();
    let flipped = p384::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).ok()?;
    Some(flipped.to_der().as_bytes().to_vec())
}

/// A 64-byte Ed25519 signature with L added to S (the classic malleation; the sum stays below
/// 2^256 for any S that was reduced).
fn ed25519_add_order(signature: &[u8]) -> Option<Vec<u8>> {
    if signature.len() != 64 {
        return None;
    }
    let mut out = signature.to_vec();
    let mut carry = 0u16;
    for (i, byte) in out[32..].iter_mut().enumerate() {
        let sum = u16::from(*byte) + u16::from(ED25519_ORDER[i]) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    (carry == 0).then_some(out)
}

fn paste_check(fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    let long = text.len() > paste::MAX_PASTED_LEN;
    let (message, other_message) = (&fx.creds.message, &fx.creds.other_message);
    let formats = [PasteFormat::Openssl, PasteFormat::Raw, PasteFormat::Sshsig];
    let mut verified = Vec::new();
    let mut label = None;
    for key in &fx.creds.keys {
        for format in formats {
            let result = paste::verify_pasted(&key.public, format, message, &text);
            if long != matches!(result, Err(PasteError::TooLong)) {
                return Err("a paste was refused as too long exactly when it was not".into());
            }
            let wrong_format = match format {
                PasteFormat::Openssl => matches!(key.public, PublicKey::Ed25519(_)),
                PasteFormat::Raw => !matches!(key.public, PublicKey::Ed25519(_)),
                PasteFormat::Sshsig => false,
            };
            if !long && wrong_format != matches!(result, Err(PasteError::WrongFormat(..))) {
                return Err("a format that does not fit the key was not refused as such".into());
            }
            // (Past the length limit, verify_pasted says TooLong itself.)
            if format == PasteFormat::Sshsig
                && !long
                && result
                    != ssh::verify_sshsig(&text, paste::SSHSIG_NAMESPACE, message, &key.public)
                        .map_err(PasteError::Ssh)
            {
                return Err("an sshsig paste and verify_sshsig disagree".into());
            }
            if paste::verify_pasted(&key.public, format, other_message, &text).is_ok() {
                return Err("a pasted signature verified for another message".into());
            }
            match result {
                Ok(()) => verified.push((key, format)),
                Err(PasteError::WrongFormat(..)) => {}
                Err(PasteError::Ssh(SshSigError::OtherKey)) if label.is_some() => {}
                Err(error) => {
                    let _ = error.to_string();
                    label = Some(match &error {
                        PasteError::Ssh(ssh) => format!("sshsig {}", sshsig_label(ssh)),
                        other => format!("{format:?} {}", variant(other)),
                    });
                }
            }
        }
    }
    match verified.as_slice() {
        [] => Ok(Verdict::Refused(label.unwrap_or_default())),
        [(key, format)] => {
            check_verified_paste(&fx.creds, key, *format, &text, message)?;
            Ok(Verdict::Accepted)
        }
        _ => Err("one paste verified under two keys or formats".into()),
    }
}

/// A verified paste is, for RSA and Ed25519 (deterministic), exactly the key's signature; for
/// ECDSA, canonical DER that p256/p384 verify too; for sshsig, what `check_verified_sshsig` says.
fn check_verified_paste(
    creds: &Credentials,
    key: &CredKey,
    format: PasteFormat,
    text: &str,
    message: &[u8],
) -> Result<(), Broken> {
    if format == PasteFormat::Sshsig {
        return check_verified_sshsig(creds, key, text, message);
    }
    let bytes = STANDARD
        .decode(text.split_ascii_whitespace().collect::<String>())
        .map_err(|_| "verified a paste that is not base64".to_owned())?;
    match &key.public {
        PublicKey::P256(_) | PublicKey::P384(_) => {
            let (canonical, r, s) = match &key.public {
                PublicKey::P256(_) => p256::ecdsa::Signature::from_der(&bytes)
                    .map(|sig| {
                        let (r, s) = sig.split_bytes();
                        (sig.to_der().as_bytes().to_vec(), r.to_vec(), s.to_vec())
                    })
                    .map_err(|_| "aws-lc verified DER that p256 does not read".to_owned())?,
                _ => p384::ecdsa::Signature::from_der(&bytes)
                    .map(|sig| {
                        let (r, s) = sig.split_bytes();
                        (sig.to_der().as_bytes().to_vec(), r.to_vec(), s.to_vec())
                    })
                    .map_err(|_| "aws-lc verified DER that p384 does not read".to_owned())?,
            };
            if canonical != bytes {
                return Err("verified an ECDSA signature that is not canonical DER".into());
            }
            if !ecdsa_reference(&key.public, message, &r, &s) {
                return Err("aws-lc verified an ECDSA signature that p256/p384 refuse".into());
            }
        }
        _ => {
            if bytes != key.private.sign_jws(message) {
                return Err("verified an RSA or Ed25519 signature other than the key's".into());
            }
        }
    }
    Ok(())
}

// --- private_key ---------------------------------------------------------------------------------

fn private_key_seeds(fx: &Fixtures) -> Vec<Vec<u8>> {
    let mut seeds: Vec<String> = fx
        .creds
        .keys
        .iter()
        .flat_map(|key| key.files.iter().cloned())
        .collect();
    for (name, text) in &fx.creds.vectors {
        if !name.ends_with(".pub") {
            seeds.push(text.clone());
        }
    }
    seeds.into_iter().map(String::into_bytes).collect()
}

/// Changes the inside of one PEM block: the fields of an OpenSSH key (cipher, KDF, rounds, key
/// count, the header's public key, another key's private section, the section's strings), or
/// the DER tree of the others; sometimes relabels it.
fn private_key_finish(fx: &Fixtures, rng: &mut StdRng, input: Vec<u8>) -> Vec<u8> {
    if !rng.gen_bool(0.5) {
        return input;
    }
    let mut text = text_of(&input);
    // Byte mutations mostly break the base64; then start again from a valid file.
    let decodes = pem_spans(&text)
        .iter()
        .any(|(start, stop, _)| pem_inner(&text[*start..*stop]).is_some());
    if !decodes && rng.r#gen() {
        let key = pick(rng, &fx.creds.keys);
        text = pick(rng, &key.files).clone();
    }
    let mut mutate = |rng: &mut StdRng, label: &str, body: Vec<u8>| {
        if label == "OPENSSH PRIVATE KEY" {
            mutate_openssh(fx, rng, &body)
        } else {
            mutate_der(rng, &body).unwrap_or_else(|| mutate_bytes(rng, body, &[], ""))
        }
    };
    mutate_pem_block(rng, &text, PRIVATE_LABELS, &mut mutate).unwrap_or(input)
}

/// An `openssh-key-v1` file (OpenSSH PROTOCOL.key), its fields after the magic.
#[derive(Clone)]
struct OpensshFile {
    cipher: Vec<u8>,
    kdf: Vec<u8>,
    kdf_options: Vec<u8>,
    count: u32,
    public: Vec<u8>,
    section: Vec<u8>,
    trailing: Vec<u8>,
}

const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";

impl OpensshFile {
    fn parse(bytes: &[u8]) -> Option<OpensshFile> {
        let mut wire = Wire(bytes.strip_prefix(OPENSSH_MAGIC)?);
        Some(OpensshFile {
            cipher: wire.string()?.to_vec(),
            kdf: wire.string()?.to_vec(),
            kdf_options: wire.string()?.to_vec(),
            count: wire.u32()?,
            public: wire.string()?.to_vec(),
            section: wire.string()?.to_vec(),
            trailing: wire.0.to_vec(),
        })
    }

    fn write(&self) -> Vec<u8> {
        let mut out = OPENSSH_MAGIC.to_vec();
        wire_string(&mut out, &self.cipher);
        wire_string(&mut out, &self.kdf);
        wire_string(&mut out, &self.kdf_options);
        out.extend_from_slice(&self.count.to_be_bytes());
        wire_string(&mut out, &self.public);
        wire_string(&mut out, &self.section);
        out.extend_from_slice(&self.trailing);
        out
    }

    /// The bcrypt rounds its KDF options name, if they read.
    fn rounds(&self) -> Option<u32> {
        let mut options = Wire(&self.kdf_options);
        options.string()?;
        options.u32()
    }
}

fn mutate_openssh(fx: &Fixtures, rng: &mut StdRng, body: &[u8]) -> Vec<u8> {
    let Some(mut file) = OpensshFile::parse(body) else {
        return mutate_bytes(rng, body.to_vec(), &[], "");
    };
    match rng.gen_range(0..10) {
        0 => {
            let ciphers: [&[u8]; 6] = [
                b"none",
                b"aes256-ctr",
                b"aes128-ctr",
                b"aes256-gcm@openssh.com",
                b"chacha20-poly1305@openssh.com",
                b"",
            ];
            file.cipher = pick(rng, &ciphers).to_vec();
        }
        1 => file.kdf = pick(rng, &[&b"none"[..], b"bcrypt", b""]).to_vec(),
        2 => {
            let mut salt = vec![0u8; *pick(rng, &[0usize, 1, 16, 16, 64])];
            rng.fill_bytes(&mut salt);
            let rounds = *pick(rng, &[0u32, 1, 2, 3, 16, 1024, 1025, u32::MAX]);
            file.kdf_options.clear();
            wire_string(&mut file.kdf_options, &salt);
            file.kdf_options.extend_from_slice(&rounds.to_be_bytes());
        }
        3 => file.count = *pick(rng, &[0u32, 2, u32::MAX]),
        4 => {
            file.public = if rng.r#gen() {
                ssh_blob(&pick(rng, &fx.creds.keys).public)
            } else {
                mutate_wire(fx, rng, &file.public)
            };
        }
        5 => file.section = pick(rng, &fx.creds.keys).openssh_section.clone(),
        6 | 7 => file.section = mutate_section(fx, rng, &file.section),
        8 => {
            if let Some(first) = file.section.first_mut() {
                *first ^= 1;
            }
        }
        _ => file.trailing = pick(rng, &[&b"\0"[..], b"\0\0\0\x01A"]).to_vec(),
    }
    file.write()
}

/// One change to a private section (check integers, then the key's strings and mpints, the
/// comment and padding): one string altered, given or stripped a leading zero, or taken from
/// another key's section; or the padding changed.
fn mutate_section(fx: &Fixtures, rng: &mut StdRng, section: &[u8]) -> Vec<u8> {
    let Some(checks) = section.get(..8) else {
        return mutate_bytes(rng, section.to_vec(), &[], "");
    };
    let mut wire = Wire(&section[8..]);
    let mut fields = Vec::new();
    while let Some(field) = wire.string() {
        fields.push(field.to_vec());
    }
    let mut rest = wire.0.to_vec();
    if fields.is_empty() {
        return mutate_bytes(rng, section.to_vec(), &[], "");
    }
    let at = rng.gen_range(0..fields.len());
    match rng.gen_range(0..5) {
        0 => fields[at] = mutate_bytes(rng, fields[at].clone(), &[], ""),
        1 => {
            if fields[at].first() == Some(&0) {
                fields[at].remove(0);
            } else {
                fields[at].insert(0, 0);
            }
        }
        2 => {
            let other = &pick(rng, &fx.creds.keys).openssh_section;
            let mut other_wire = Wire(other.get(8..).unwrap_or_default());
            let mut others = Vec::new();
            while let Some(field) = other_wire.string() {
                others.push(field.to_vec());
            }
            if let Some(field) = others.get(at) {
                fields[at] = field.clone();
            }
        }
        3 => fields[at] = pick(rng, SSH_NAMES).as_bytes().to_vec(),
        _ => rest = mutate_bytes(rng, rest, &[], ""),
    }
    let mut out = checks.to_vec();
    for field in &fields {
        wire_string(&mut out, field);
    }
    out.extend_from_slice(&rest);
    out
}

fn private_key_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let text = text_of(input);
    // The passphrase only for files whose bcrypt rounds are known to be few.
    let rounds = first_private_block(&text)
        .filter(|(label, _)| label == "OPENSSH PRIVATE KEY")
        .and_then(|(_, block)| pem_inner(block))
        .and_then(|body| OpensshFile::parse(&body))
        .and_then(|file| file.rounds());
    let passphrase = rounds
        .filter(|r| *r <= MAX_FUZZ_BCRYPT_ROUNDS)
        .map(|_| PASSWORD);
    let key = match PrivateKey::from_pem(&text, passphrase) {
        Ok(key) => key,
        Err(error) => {
            let _ = error.to_string();
            return Ok(Verdict::Refused(match &error {
                PrivateKeyError::Unsupported(m) | PrivateKeyError::Malformed(m) => {
                    format!("{}: {}", variant(&error), first_words(m))
                }
                other => variant(other),
            }));
        }
    };
    let public = key.public_key();
    check_public_key(public)?;
    let alg = key.algorithm();
    if alg != public.default_algorithm() {
        return Err("a private key signs with another algorithm than its public half's".into());
    }
    let credential = CredentialKey::new(public.clone(), alg)
        .map_err(|_| "a private key's public half refuses its algorithm".to_owned())?;
    let signature = key.sign_jws(SIGNING_INPUT);
    if !credential.verify_jws(alg, SIGNING_INPUT, &signature) {
        return Err("a private key's signature does not verify with its public half".into());
    }
    if credential.verify_jws(alg, OTHER_SIGNING_INPUT, &signature) {
        return Err("a private key's signature verifies for another input".into());
    }
    match check_private_file(&text, public)? {
        Some(note) => Ok(Verdict::Lenient(note.into())),
        None => Ok(Verdict::Accepted),
    }
}

/// The key read from a file is the one the file describes: of the curve its parameters or
/// algorithm name, with the public key it holds, and (without parameters) of the curve its
/// scalar's length implies. Returns a note for leniencies that are not bugs.
fn check_private_file(text: &str, public: &PublicKey) -> Result<Option<&'static str>, Broken> {
    let (label, block) =
        first_private_block(text).ok_or("accepted a file without a private key block")?;
    let Some(body) = pem_inner(block) else {
        return Ok(None);
    };
    let node = |bytes: &[u8]| -> Option<Vec<Der>> {
        match Der::parse_all(bytes, 0)?.as_slice() {
            [Der::Constructed(0x30, children)] => Some(children.clone()),
            _ => None,
        }
    };
    match label.as_str() {
        "EC PRIVATE KEY" => {
            let Some(fields) = node(&body) else {
                return Ok(None);
            };
            check_sec1(&fields, public)
        }
        "PRIVATE KEY" => {
            let Some(fields) = node(&body) else {
                return Ok(None);
            };
            let Some(algorithm) = fields.get(1).map(|a| a.children().to_vec()) else {
                return Ok(None);
            };
            let oid = algorithm.first().map(Der::encode).unwrap_or_default();
            let parameters = algorithm.get(1).map(Der::encode);
            let fits = match public {
                PublicKey::P256(_) | PublicKey::P384(_) => {
                    oid == DER_OID_EC && parameters.as_deref() == curve_oid(public)
                }
                PublicKey::Ed25519(_) => oid == DER_OID_ED25519,
                PublicKey::Rsa(_) => oid == DER_OID_RSA,
            };
            if !fits {
                return Err("read a PKCS#8 key as another algorithm or curve than it names".into());
            }
            Ok(None)
        }
        "RSA PRIVATE KEY" => {
            let n = node(&body).and_then(|f| f.get(1).map(Der::content));
            let modulus = rsa_parts(public).map(|(n, _)| n);
            match (n, modulus) {
                (Some(n), Some(modulus)) if n.strip_prefix(&[0u8][..]).unwrap_or(&n) == modulus => {
                    Ok(None)
                }
                (None, Some(_)) => Ok(None),
                _ => Err("read a PKCS#1 key as another key".into()),
            }
        }
        "OPENSSH PRIVATE KEY" => {
            let Some(file) = OpensshFile::parse(&body) else {
                return Ok(None);
            };
            if file.public != ssh_blob(public) {
                return Ok(Some("the OpenSSH header holds another public key"));
            }
            Ok(None)
        }
        _ => Err("accepted a private key block with a label it does not read".into()),
    }
}

/// A SEC1 ECPrivateKey (RFC 5915 §3): version, privateKey, [0] parameters, [1] publicKey.
fn check_sec1(fields: &[Der], public: &PublicKey) -> Result<Option<&'static str>, Broken> {
    let Some(curve) = curve_oid(public) else {
        return Err("read an EC PRIVATE KEY as a key that is not EC".into());
    };
    let Some(scalar) = fields
        .get(1)
        .filter(|f| f.tag() == Some(0x04))
        .map(Der::content)
    else {
        return Ok(None);
    };
    let size = if curve == DER_OID_P256 { 32 } else { 48 };
    let mut parameters = None;
    let mut embedded = None;
    for field in &fields[2..] {
        match (field.tag(), field.children()) {
            (Some(0xa0), [oid]) => parameters = Some(oid.encode()),
            (Some(0xa1), [bits]) => embedded = Some(bits.content()),
            _ => return Ok(None),
        }
    }
    if parameters.as_deref().is_some_and(|p| p != curve) {
        return Err("read a SEC1 key as another curve than its parameters name".into());
    }
    if let Some(bits) = embedded {
        let point = bits.get(1..).unwrap_or_default();
        if bits.first() != Some(&0)
            || (Some(point) != ec_point(public, false).as_deref()
                && Some(point) != ec_point(public, true).as_deref())
        {
            return Err("read a SEC1 key whose public half is not the public key it holds".into());
        }
    }
    if scalar.len() != size {
        if parameters.is_none() {
            return Err(
                "read a SEC1 key without parameters as the curve its scalar does not fit".into(),
            );
        }
        return Ok(Some("a SEC1 scalar shorter than its curve's size"));
    }
    Ok(None)
}

// --- client_page ---------------------------------------------------------------------------

/// The client identifier the client_page target asks for, and the URL its pages come from.
const CLIENT_PAGE_ID: &str = "https://app.example/";
const CLIENT_PAGE_URL: &str = "https://app.example/about/page";
const CLIENT_PAGE_ALPHABET: &str = "<>/=\"' !-&#;:.?abcdehilmnprstuxy0123456789{}[],";
/// Markup that the client_page finish step splices in.
const CLIENT_PAGE_TOKENS: &[&str] = &[
    "<div class=\"h-app\">",
    "<div class=h-x-app>",
    "</div>",
    "<div>",
    "<span class=\"p-name\">",
    "</span>",
    "<a class=\"u-url\" href=\"/\">",
    "<a class=\"p-name u-url h-card\" href=\"//other.example/x\">",
    "</a>",
    "<img class=\"u-logo\" src=\"../logo.png\" alt=\"Logo\">",
    "<img class=u-logo src=data:x alt=x>",
    "<link rel=\"redirect_uri\" href=\"/cb\">",
    "<link rel=redirect_uri href=javascript:alert(1)>",
    "<a rel=\"me redirect_uri\" href='cb#frag'>",
    "<!--",
    "-->",
    "--!>",
    "<!-->",
    "<script>",
    "</script>",
    "</scrip",
    "<style>",
    "<title>",
    "</title>",
    "<textarea>",
    "<br/>",
    "<!doctype html>",
    "<?xml?>",
    "</>",
    "&amp;",
    "&#39;",
    "&#x110000;",
    "&#0;",
    "&#",
    "&quot;",
    "\u{202e}",
    "\"client_id\":\"https://app.example/\",",
    "\"client_uri\":\"https://app.example\",",
    "\"redirect_uris\":[\"https://app.example/cb\"],",
    "\"token_endpoint_auth_method\":\"client_secret_basic\",",
];

fn client_page_seeds(_: &Fixtures) -> Vec<Vec<u8>> {
    let documents = [
        json!({
            "client_id": CLIENT_PAGE_ID, "client_name": "Example App",
            "client_uri": CLIENT_PAGE_ID, "logo_uri": "https://cdn.example/logo.png",
            "redirect_uris": ["https://app.example/callback", "com.example.app:/cb"],
            "token_endpoint_auth_method": "none",
        }),
        json!({"client_id": CLIENT_PAGE_ID}),
        json!({"client_id": CLIENT_PAGE_ID, "redirect_uris": [], "scope": "create"}),
    ];
    let mut seeds: Vec<Vec<u8>> = documents
        .iter()
        .map(|d| d.to_string().into_bytes())
        .collect();
    for page in [
        "<!doctype html><html><head><title>App</title>\
         <link rel=\"redirect_uri\" href=\"/callback\"></head><body>\
         <div class=\"h-app\"><img class=\"u-logo\" src=\"/logo.png\" alt=\"Logo\">\
         <a class=\"p-name u-url\" href=\"/\">Example &amp; App</a></div></body></html>",
        "<div class=h-x-app><div><span class=p-name>Nested <b>name</b></span></div>\
         <div class=\"p-author h-card\"><a class=u-url href=https://author.example/>me</a></div>\
         <img class=u-logo src=icon.svg alt='Icon'></div>",
        "<!-- <div class=h-app> --><script>'<div class=h-app>'</script>\
         <a rel=redirect_uri href='https://app.example/cb?x=1&amp;y=2'>cb</a>",
    ] {
        seeds.push(page.as_bytes().to_vec());
    }
    seeds
}

/// Splices markup or JSON members into the input now and then, so that mutated pages keep
/// reaching the h-app and link readers.
fn client_page_finish(_: &Fixtures, rng: &mut StdRng, mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.gen_range(0..3) {
        let at = rng.gen_range(0..=input.len());
        let token = pick(rng, CLIENT_PAGE_TOKENS).as_bytes();
        input.splice(at..at, token.iter().copied());
    }
    input
}

/// What any read page must satisfy: web URLs only, a clean short name, distinct usable
/// redirect URIs within the limit.
fn check_client_info(info: &ClientInfo, how: &str) -> Result<(), Broken> {
    for url in [&info.url, &info.logo].into_iter().flatten() {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{how}: a URL is not http or https"));
        }
    }
    if let Some(name) = &info.name {
        let clean = name.chars().count() <= MAX_NAME_CHARS
            && !name.is_empty()
            && name.trim() == name
            && !name.contains("  ")
            && !name
                .chars()
                .any(|c| c.is_control() || (c.is_whitespace() && c != ' '));
        if !clean {
            return Err(format!("{how}: the name is not cleaned"));
        }
    }
    if info.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "{how}: more than {MAX_REDIRECT_URIS} redirect URIs"
        ));
    }
    for (i, uri) in info.redirect_uris.iter().enumerate() {
        if info.redirect_uris[..i].contains(uri) {
            return Err(format!("{how}: a redirect URI is listed twice"));
        }
        let usable = url::Url::parse(uri).is_ok_and(|url| {
            url.fragment().is_none() && !matches!(url.scheme(), "javascript" | "data")
        });
        if !usable {
            return Err(format!(
                "{how}: a redirect URI is not a usable absolute URL"
            ));
        }
    }
    Ok(())
}

/// The members of a client metadata document the client_page target checks on its own.
#[derive(serde::Deserialize)]
struct MetadataCore {
    client_id: String,
    token_endpoint_auth_method: Option<String>,
}

fn client_page_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    let base = url::Url::parse(CLIENT_PAGE_URL).map_err(|e| e.to_string())?;
    // As HTML (with the input also as a Link header), never refused below the size limit.
    let links = [text_of(input)];
    let page = read_client_page(CLIENT_PAGE_ID, &base, Some("text/html"), &links, input)
        .map_err(|e| format!("an HTML page was refused: {e}"))?;
    check_client_info(&page, "html")?;
    // Without a content type, the body is HTML exactly when it starts with `<`.
    let sniffed = read_client_page(CLIENT_PAGE_ID, &base, None, &[], input);
    let starts_with_tag = input
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(input)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'<');
    match &sniffed {
        Ok(info) if starts_with_tag => check_client_info(info, "sniffed")?,
        Err(ClientPageError::UnsupportedType) if !starts_with_tag => {}
        _ => return Err("sniffing disagrees with the body's first character".into()),
    }
    // As a JSON client metadata document.
    let html_label = if page.name.is_some() || page.url.is_some() || page.logo.is_some() {
        "h-app"
    } else {
        "no h-app"
    };
    match read_client_page(CLIENT_PAGE_ID, &base, Some("application/json"), &[], input) {
        Ok(info) => {
            check_client_info(&info, "json")?;
            // A reader independent of the module's: serde's derive (unknown members skipped
            // without a depth limit, as the module skips them).
            let unmarked = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
            let core: MetadataCore = serde_json::from_slice(unmarked)
                .map_err(|_| "accepted a document serde_json cannot read")?;
            // The same client_id, or one that §3.4's canonicalization makes the same.
            let canonical = |id: &str| {
                siteid::indieauth::urls::check_client_id(id)
                    .ok()
                    .map(|url| url.to_string())
            };
            if core.client_id != CLIENT_PAGE_ID
                && canonical(&core.client_id) != canonical(CLIENT_PAGE_ID)
            {
                return Err("accepted a document for another client_id".into());
            }
            if core
                .token_endpoint_auth_method
                .is_some_and(|method| method.starts_with("client_secret"))
            {
                return Err("accepted a client that authenticates with a secret".into());
            }
            Ok(Verdict::Accepted)
        }
        Err(error) => {
            let message = error.to_string();
            if message.len() > 300 {
                return Err("an error message is long enough to repeat the body".into());
            }
            Ok(Verdict::Refused(format!(
                "json {}; html {html_label}",
                variant(&error)
            )))
        }
    }
}

// --- selftest-panic --------------------------------------------------------------------------

const PLANTED_PROPERTY: &str = "planted property failure";

fn selftest_seeds(_: &Fixtures) -> Vec<Vec<u8>> {
    vec![br#"{"selftest": "harmless"}"#.to_vec()]
}

/// Fails on purpose: an arithmetic overflow (a panic only where overflow checks are on, as in
/// the dev profile) when the input holds `null`, and a broken property when it holds a NUL byte.
fn selftest_check(_: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    if input.windows(4).any(|w| w == b"null") {
        let top: u8 = std::hint::black_box(u8::MAX);
        let _ = std::hint::black_box(top + 1);
    }
    if input.contains(&0) {
        return Err(PLANTED_PROPERTY.into());
    }
    Ok(Verdict::Refused("harmless".into()))
}

// ---------------------------------------------------------------------------------------------
// Fixtures: real keys, tokens, a wrapped key and share sets, derived from the seed
// ---------------------------------------------------------------------------------------------

/// A share set made with the recovery module's own splitting and encoding.
struct ShareSet {
    threshold: u8,
    public: OwnerPublicKey,
    texts: Vec<String>,
    shares: Vec<Share>,
}

struct Fixtures {
    owner: OwnerPrivateKey,
    owner_public: OwnerPublicKey,
    owner_verifier: VerifyingKey,
    owner_signer: p384::ecdsa::SigningKey,
    owner_p384: p384::ecdsa::VerifyingKey,
    stranger: OwnerPrivateKey,
    stranger_public: OwnerPublicKey,
    stranger_signer: p384::ecdsa::SigningKey,
    wrapped: WrappedKey,
    kek: Kek,
    share_sets: Vec<ShareSet>,
    /// The canonical texts of a set made by `split_key` (fresh randomness, not from the seed).
    random_split: Vec<String>,
    creds: Credentials,
    /// The owner's inbox key, which the inbox seeds are encrypted to.
    inbox_key: p384::SecretKey,
    /// Messages to the inbox key (fresh ephemeral keys and IVs, so they differ between runs).
    inbox_samples: Vec<Vec<u8>>,
}

/// A credential key of one type, with the files people keep its private half in.
struct CredKey {
    private: PrivateKey,
    public: PublicKey,
    /// PEM files of the private key: SEC1 (with and without its public key, after EC
    /// PARAMETERS), PKCS#8 (v1 and v2), PKCS#1, and OpenSSH unencrypted and encrypted.
    files: Vec<String>,
    /// The private section of its unencrypted OpenSSH file.
    openssh_section: Vec<u8>,
}

/// Credential keys of every accepted type (Ed25519, P-256, P-384, RSA), the sign-in messages
/// pasted and SSH signatures are made over, and the test vectors.
struct Credentials {
    keys: Vec<CredKey>,
    /// The RSA key again, for rsa-sha2-512 signatures.
    rsa_pair: aws_lc_rs::rsa::KeyPair,
    message: Vec<u8>,
    other_message: Vec<u8>,
    /// A valid SSH signature by each key, and a valid paste of each key in each format that
    /// fits it, for the finish steps to start again from.
    sshsigs: Vec<String>,
    pastes: Vec<String>,
    /// tests/vectors/keys, as (file name, text).
    vectors: Vec<(String, String)>,
}

/// The private material of a key, as the file formats need it.
enum Material {
    Ed25519 {
        seed: [u8; 32],
        public: [u8; 32],
    },
    Ec {
        curve: &'static [u8],
        scalar: Vec<u8>,
        point: Vec<u8>,
    },
    Rsa {
        /// n, e, d, p, q, d mod (p - 1), d mod (q - 1), q^-1 mod p.
        parts: [Vec<u8>; 8],
    },
}

fn vector(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/keys")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the test vector {} does not read: {e}", path.display()))
}

/// `d mod (prime - 1)`, which OpenSSH files leave out.
fn crt_exponent(d: &[u8], prime: &[u8]) -> Vec<u8> {
    use crypto_bigint::{Encoding, NonZero, U4096};
    let widen = |bytes: &[u8]| {
        let mut padded = [0u8; 512];
        padded[512 - bytes.len()..].copy_from_slice(bytes);
        U4096::from_be_slice(&padded)
    };
    let modulus = NonZero::new(widen(prime).wrapping_sub(&U4096::ONE)).expect("an RSA prime");
    let bytes = widen(d).rem(&modulus).to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    bytes[first..].to_vec()
}

/// The RSA key of tests/vectors/keys/openssh-rsa (an unencrypted OpenSSH file).
fn rsa_material() -> Material {
    let text = vector("openssh-rsa");
    let file = first_private_block(&text)
        .and_then(|(_, block)| pem_inner(block))
        .and_then(|body| OpensshFile::parse(&body))
        .expect("openssh-rsa is an OpenSSH key");
    let mut wire = Wire(file.section.get(8..).unwrap_or_default());
    assert_eq!(wire.string(), Some(&b"ssh-rsa"[..]), "openssh-rsa is RSA");
    let mut read = || {
        wire.string()
            .and_then(minimal_mpint)
            .expect("an mpint of openssh-rsa")
            .to_vec()
    };
    let (n, e, d, qi, p, q) = (read(), read(), read(), read(), read(), read());
    let (dp, dq) = (crt_exponent(&d, &p), crt_exponent(&d, &q));
    Material::Rsa {
        parts: [n, e, d, p, q, dp, dq, qi],
    }
}

impl Material {
    fn public_key(&self) -> PublicKey {
        match self {
            Material::Ed25519 { public, .. } => PublicKey::ed25519(public),
            Material::Ec { curve, point, .. } => {
                let name = if *curve == DER_OID_P256 {
                    "P-256"
                } else {
                    "P-384"
                };
                PublicKey::from_sec1(name, point)
            }
            Material::Rsa { parts } => RsaKey::new(&parts[0], &parts[1]).map(PublicKey::Rsa),
        }
        .expect("a fixture key is accepted")
    }

    /// The key-specific part of an OpenSSH private section (PROTOCOL.key, and the
    /// `sshkey_private_serialize` order for each type).
    fn openssh_fields(&self, public: &PublicKey) -> Vec<u8> {
        let mut out = Vec::new();
        wire_string(&mut out, ssh_type(public).as_bytes());
        match self {
            Material::Ed25519 { seed, public } => {
                wire_string(&mut out, public);
                wire_string(&mut out, &[&seed[..], &public[..]].concat());
            }
            Material::Ec { scalar, point, .. } => {
                wire_string(
                    &mut out,
                    &ssh_type(public).as_bytes()["ecdsa-sha2-".len()..],
                );
                wire_string(&mut out, point);
                wire_mpint(&mut out, scalar);
            }
            Material::Rsa { parts } => {
                for at in [0, 1, 2, 7, 3, 4] {
                    wire_mpint(&mut out, &parts[at]);
                }
            }
        }
        out
    }

    /// The DER files of the key, as (label, DER).
    fn der_files(&self) -> Vec<(&'static str, Vec<u8>)> {
        match self {
            Material::Ed25519 { seed, .. } => {
                let pkcs8_v1 = der_seq(&[
                    &der_uint(&[0]),
                    &der_seq(&[DER_OID_ED25519]),
                    &tlv(0x04, &tlv(0x04, seed)),
                ]);
                let pkcs8_v2 = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                    .ok()
                    .and_then(|pair| pair.to_pkcs8().ok())
                    .map(|document| document.as_ref().to_vec())
                    .expect("an Ed25519 PKCS#8 v2 document");
                vec![("PRIVATE KEY", pkcs8_v1), ("PRIVATE KEY", pkcs8_v2)]
            }
            Material::Ec {
                curve,
                scalar,
                point,
            } => {
                let version = der_uint(&[1]);
                let private = tlv(0x04, scalar);
                let parameters = tlv(0xa0, curve);
                let public = tlv(0xa1, &der_bits(point));
                let sec1 = der_seq(&[&version, &private, &parameters, &public]);
                // As `openssl ec -no_public` writes it.
                let sec1_no_public = der_seq(&[&version, &private, &parameters]);
                let pkcs8 = der_seq(&[
                    &der_uint(&[0]),
                    &der_seq(&[DER_OID_EC, curve]),
                    &tlv(0x04, &der_seq(&[&version, &private, &public])),
                ]);
                vec![
                    ("EC PRIVATE KEY", sec1),
                    ("EC PRIVATE KEY", sec1_no_public),
                    ("PRIVATE KEY", pkcs8),
                ]
            }
            Material::Rsa { parts } => {
                let integers: Vec<Vec<u8>> = std::iter::once(der_uint(&[0]))
                    .chain(parts.iter().map(|p| der_uint(p)))
                    .collect();
                let pkcs1 = tlv(0x30, &integers.concat());
                let pkcs8 = der_seq(&[
                    &der_uint(&[0]),
                    &der_seq(&[DER_OID_RSA, DER_NULL]),
                    &tlv(0x04, &pkcs1),
                ]);
                vec![("RSA PRIVATE KEY", pkcs1), ("PRIVATE KEY", pkcs8)]
            }
        }
    }
}

/// An OpenSSH private section: the check integers, the key, the comment, then 1, 2, 3, … up to
/// the cipher's block size.
fn openssh_section(check: u32, fields: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&check.to_be_bytes());
    out.extend_from_slice(&check.to_be_bytes());
    out.extend_from_slice(fields);
    wire_string(&mut out, b"fuzz@siteid");
    let mut pad = 1u8;
    while out.len() % block != 0 {
        out.push(pad);
        pad += 1;
    }
    out
}

/// An `openssh-key-v1` file, unencrypted or (`salt`) aes256-ctr under bcrypt with the
/// fixture passphrase, as ssh-keygen writes it.
fn openssh_file(public: &PublicKey, section: &[u8], salt: Option<[u8; 16]>) -> Vec<u8> {
    let mut file = OpensshFile {
        cipher: b"none".to_vec(),
        kdf: b"none".to_vec(),
        kdf_options: Vec::new(),
        count: 1,
        public: ssh_blob(public),
        section: section.to_vec(),
        trailing: Vec::new(),
    };
    if let Some(salt) = salt {
        file.cipher = b"aes256-ctr".to_vec();
        file.kdf = b"bcrypt".to_vec();
        wire_string(&mut file.kdf_options, &salt);
        file.kdf_options
            .extend_from_slice(&SEED_BCRYPT_ROUNDS.to_be_bytes());
        let mut key_iv = [0u8; 48];
        bcrypt_pbkdf::bcrypt_pbkdf(PASSWORD, &salt, SEED_BCRYPT_ROUNDS, &mut key_iv)
            .expect("bcrypt-pbkdf");
        let iv: [u8; 16] = key_iv[32..].try_into().expect("16 bytes");
        // CTR mode: decrypting the plain section encrypts it.
        let cipher = UnboundCipherKey::new(&AES_256, &key_iv[..32])
            .and_then(DecryptingKey::ctr)
            .expect("an AES-256-CTR key");
        cipher
            .decrypt(
                &mut file.section,
                DecryptionContext::Iv128(FixedLength::from(iv)),
            )
            .expect("AES-256-CTR");
    }
    file.write()
}

impl Credentials {
    fn new(rng: &mut StdRng, owner: &OwnerPrivateKey) -> Credentials {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .expect("an Ed25519 seed");
        let ed25519 = Material::Ed25519 {
            seed,
            public: pair.public_key().as_ref().try_into().expect("32 bytes"),
        };
        let p256_secret = p256::SecretKey::random(&mut *rng);
        let p256 = Material::Ec {
            curve: DER_OID_P256,
            scalar: p256_secret.to_bytes().to_vec(),
            point: p256_secret
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        };
        let p384_secret =
            p384::SecretKey::from_slice(owner.scalar_bytes().as_slice()).expect("the owner key");
        let p384 = Material::Ec {
            curve: DER_OID_P384,
            scalar: p384_secret.to_bytes().to_vec(),
            point: p384_secret
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        };
        let rsa = rsa_material();
        let mut rsa_pair = None;
        let keys = [ed25519, p256, p384, rsa]
            .into_iter()
            .map(|material| {
                let public = material.public_key();
                let mut files: Vec<String> = material
                    .der_files()
                    .iter()
                    .map(|(label, der)| pem_text(label, der, 64))
                    .collect();
                if let Material::Ec { curve, .. } = &material {
                    files.push(format!(
                        "{}{}",
                        pem_text("EC PARAMETERS", curve, 64),
                        files[0]
                    ));
                }
                if let Material::Rsa { .. } = &material {
                    let (_, pkcs8) = &material.der_files()[1];
                    rsa_pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).ok();
                }
                let fields = material.openssh_fields(&public);
                let check = rng.next_u32();
                let section = openssh_section(check, &fields, 8);
                files.push(pem_text(
                    "OPENSSH PRIVATE KEY",
                    &openssh_file(&public, &section, None),
                    70,
                ));
                let mut salt = [0u8; 16];
                rng.fill_bytes(&mut salt);
                let encrypted = openssh_section(check, &fields, 16);
                files.push(pem_text(
                    "OPENSSH PRIVATE KEY",
                    &openssh_file(&public, &encrypted, Some(salt)),
                    70,
                ));
                let private = PrivateKey::from_pem(&files[0], None)
                    .unwrap_or_else(|e| panic!("a fixture key file is refused: {e}"));
                assert_eq!(
                    private.public_key(),
                    &public,
                    "a fixture key file reads back"
                );
                CredKey {
                    private,
                    public,
                    files,
                    openssh_section: section,
                }
            })
            .collect();
        let vectors = [
            "openssh-ec256",
            "openssh-ec256.pub",
            "openssh-ed25519-passphrase-secret",
            "openssh-ed25519-passphrase-secret.pub",
            "openssh-rsa",
            "openssh-rsa.pub",
            "p384-sec1.pem",
        ]
        .into_iter()
        .map(|name| (name.to_owned(), vector(name)))
        .collect();
        let mut creds = Credentials {
            keys,
            rsa_pair: rsa_pair.expect("the RSA fixture key's PKCS#8 reads in aws-lc"),
            message: paste_message(AUDIENCE, "bm9uY2U").into_bytes(),
            other_message: paste_message(AUDIENCE, "b3RoZXI").into_bytes(),
            sshsigs: Vec::new(),
            pastes: Vec::new(),
            vectors,
        };
        for key in &creds.keys {
            let algorithm = ssh_signature_algorithm(&key.public);
            let sshsig = make_sshsig(&creds, key, "sha512", algorithm);
            creds.pastes.push(openssl_signature(key, &creds.message));
            creds.pastes.push(sshsig.clone());
            creds.sshsigs.push(sshsig);
        }
        creds
    }
}

fn key_from(rng: &mut StdRng) -> OwnerPrivateKey {
    (0..64)
        .find_map(|_| {
            let mut scalar = [0u8; 48];
            rng.fill_bytes(&mut scalar);
            OwnerPrivateKey::from_scalar_bytes(&scalar).ok()
        })
        .expect("a random scalar below the group order")
}

fn share_set(rng: &mut StdRng, key: &OwnerPrivateKey, threshold: u8, count: u8) -> ShareSet {
    let public = key.public_key();
    let mut set_id = [0u8; 4];
    rng.fill_bytes(&mut set_id);
    let key_check = share::key_check(&public);
    let scalar = key.scalar_bytes();
    let texts: Vec<String> = shamir::split(scalar.as_slice(), threshold, count, rng)
        .iter()
        .enumerate()
        .map(|(i, values)| {
            let data: [u8; share::SECRET_LEN] = values.as_slice().try_into().expect("48 bytes");
            share::encode_raw_share(1, set_id, threshold, (i + 1) as u8, key_check, &data)
        })
        .collect();
    let shares: Vec<Share> = texts
        .iter()
        .map(|t| Share::parse(t, None).expect("a fixture share parses"))
        .collect();
    let texts = shares
        .iter()
        .map(|s| s.to_text().as_str().to_owned())
        .collect();
    ShareSet {
        threshold,
        public,
        texts,
        shares,
    }
}

impl Fixtures {
    fn new(seed: u64) -> Fixtures {
        let mut rng = StdRng::seed_from_u64(seed);
        let owner = key_from(&mut rng);
        let stranger = key_from(&mut rng);
        let (wrapped, _verifier) =
            jwe::wrap_private_key(&owner, PASSWORD, jwe::MIN_P2C).expect("the fixture key wraps");
        let kek = wrapped.derive_kek(PASSWORD);
        let share_sets = vec![
            share_set(&mut rng, &owner, 3, 5),
            share_set(&mut rng, &owner, 2, 3),
            share_set(&mut rng, &stranger, 2, 2),
        ];
        let creds = Credentials::new(&mut rng, &owner);
        // Drawn last, so that the other fixtures of a seed stay what they were.
        let inbox_key = p384::SecretKey::from_slice(key_from(&mut rng).scalar_bytes().as_slice())
            .expect("a valid scalar is a valid P-384 secret key");
        let split = siteid::recovery::split_key(&owner, 2, 4).expect("a 2-of-4 split");
        let random_split = split
            .shares
            .iter()
            .map(|s| s.to_text().as_str().to_owned())
            .collect();
        let owner_signer = owner.signing_key();
        let stranger_signer = stranger.signing_key();
        Fixtures {
            owner_public: owner.public_key(),
            owner_verifier: VerifyingKey::new(owner.public_key()),
            owner_p384: *owner_signer.verifying_key(),
            owner_signer,
            stranger_public: stranger.public_key(),
            stranger_signer,
            owner,
            stranger,
            wrapped,
            kek,
            share_sets,
            random_split,
            creds,
            inbox_samples: inbox_samples(&inbox_key),
            inbox_key,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs: structure-aware mutation of the pool, and plain random bytes and text
// ---------------------------------------------------------------------------------------------

/// Tokens that parsers tend to trip on.
const TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ".",
    "..",
    "=",
    "==",
    ":",
    ",",
    "\\",
    "\\\"",
    "\\u0000",
    "\0",
    "\\ud800",
    "\\udc00\\ud800",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-1",
    "1e400",
    "-1e400",
    "1e15",
    "1.5",
    "NaN",
    "Infinity",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "4294967296",
    "é",
    "\u{202e}",
    "\u{fffd}",
    "\u{feff}",
    "İ",
    "ſ",
    "\u{ff10}",
    "😀",
    "\r\n",
    " ",
    "\t",
    "-",
    "_",
    "+",
    "/",
    ";",
    "U",
    "\"alg\":\"none\",",
    "\"typ\":\"JWT\",",
    "\"kid\":\"\",",
    "\"crit\":[],",
    "\"d\":null,",
    "\"type\":\"ping\",",
    "\"id\":1,",
    "\"extra\":{},",
];

/// Member names the targets know, for adding and renaming members.
const MEMBER_NAMES: &[&str] = &[
    "alg",
    "typ",
    "kid",
    "crit",
    "jwk",
    "jku",
    "x5c",
    "b64",
    "zip",
    "enc",
    "cty",
    "p2s",
    "p2c",
    "kty",
    "crv",
    "x",
    "y",
    "d",
    "use",
    "key_ops",
    "ext",
    "aud",
    "nonce",
    "iat",
    "exp",
    "type",
    "id",
    "assertion",
    "access_token",
    "claim_token",
    "public_key",
    "wrapped_key",
    "unlock_verifier",
    "proof",
    "recovery_set",
    "set_id",
    "threshold",
    "shares",
    "labels",
    "cookie",
    "extra",
    "epk",
    "apu",
    "apv",
    "protected",
    "unprotected",
    "recipients",
    "header",
    "encrypted_key",
    "iv",
    "ciphertext",
    "tag",
    "aad",
    "",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "16",
    "17",
    "255",
    "256",
    "65535",
    "209999",
    "210000",
    "10000000",
    "10000001",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e15",
    "1000000000000001",
    "-1e15",
    "1.0",
    "0.5",
    "1e-400",
    "1e400",
    "-1e400",
    "1E+2",
    "1700000000.5",
];

const STRINGS: &[&str] = &[
    "",
    "ES384",
    "ES256",
    "none",
    "EC",
    "P-384",
    "sig",
    "verify",
    "ping",
    "auth",
    "PBES2-HS512+A256KW",
    "A256GCM",
    "jwk+json",
    "siteid-claim+jwt",
    "siteid-login+jwt",
    "0a1b2c3d",
    "AAAA",
    "AQ",
    "AR",
    "\u{0}",
    "\u{202e}",
    "https://id.example",
    "ECDH-ES",
    "ECDH-ES+A256KW",
    "ECDH-ES+A128KW",
    "P-256",
    "inbox-enc-1",
];

/// A JSON value that keeps member order and duplicates, and numbers as written.
#[derive(Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn from_value(value: &Value) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.to_string()),
            Value::String(s) => Json::Text(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from_value).collect()),
            Value::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::from_value(v)))
                    .collect(),
            ),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Text(s) => out.push_str(&Value::String(s.clone()).to_string()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(name.clone()).to_string());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    fn count(&self) -> usize {
        1 + match self {
            Json::Array(items) => items.iter().map(Json::count).sum(),
            Json::Object(members) => members.iter().map(|(_, v)| v.count()).sum(),
            _ => 0,
        }
    }

    /// The `n`th node in pre-order.
    fn nth_mut(&mut self, n: &mut usize) -> Option<&mut Json> {
        if *n == 0 {
            return Some(self);
        }
        *n -= 1;
        match self {
            Json::Array(items) => items.iter_mut().find_map(|item| item.nth_mut(n)),
            Json::Object(members) => members.iter_mut().find_map(|(_, v)| v.nth_mut(n)),
            _ => None,
        }
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn random_scalar(rng: &mut StdRng) -> Json {
    match rng.gen_range(0..8) {
        0 => Json::Null,
        1 => Json::Bool(rng.r#gen()),
        2 | 3 => Json::Number((*pick(rng, NUMBERS)).to_owned()),
        4 | 5 => Json::Text((*pick(rng, STRINGS)).to_owned()),
        6 => Json::Array(Vec::new()),
        _ => Json::Object(Vec::new()),
    }
}

fn mutate_string(rng: &mut StdRng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    match rng.gen_range(0..6) {
        0 => chars.truncate(rng.gen_range(0..=chars.len())),
        1 => {
            let at = rng.gen_range(0..=chars.len());
            let token: Vec<char> = pick(rng, TOKENS).chars().collect();
            chars.splice(at..at, token);
        }
        2 => {
            let copy = chars.clone();
            for _ in 0..rng.gen_range(1..64) {
                chars.extend_from_slice(&copy);
            }
        }
        3 => chars = pick(rng, STRINGS).chars().collect(),
        4 if !chars.is_empty() => {
            let at = rng.gen_range(0..chars.len());
            chars[at] = char::from_u32(rng.gen_range(0..0x11000)).unwrap_or('\u{fffd}');
        }
        _ => chars.iter_mut().for_each(|c| *c = c.to_ascii_lowercase()),
    }
    chars.into_iter().collect()
}

/// Mutates a JSON string: as a compact JOSE value, as base64url bytes, or as text.
fn mutate_text_value(rng: &mut StdRng, text: &str) -> String {
    match rng.gen_range(0..4) {
        0 => {
            if let Some(mutated) = mutate_segments(rng, text.as_bytes()) {
                return text_of(&mutated);
            }
        }
        1 => {
            if let Ok(bytes) = b64::decode(text) {
                return b64::encode(&mutate_bytes(rng, bytes, &[], ""));
            }
        }
        _ => {}
    }
    mutate_string(rng, text)
}

/// One change to the JSON tree: another type, a removed, duplicated, added or renamed member,
/// an object turned into an array of its values (or the reverse), deep nesting.
fn mutate_json(rng: &mut StdRng, root: &mut Json) {
    let mut n = rng.gen_range(0..root.count());
    let Some(node) = root.nth_mut(&mut n) else {
        return;
    };
    match (rng.gen_range(0..12), &mut *node) {
        (0, _) => *node = random_scalar(rng),
        (1, _) => {
            let inner = node.clone();
            *node = if rng.r#gen() {
                Json::Array(vec![inner])
            } else {
                Json::Object(vec![((*pick(rng, MEMBER_NAMES)).to_owned(), inner)])
            };
        }
        (2, _) => {
            let mut nested = node.clone();
            for _ in 0..rng.gen_range(100..260) {
                nested = Json::Array(vec![nested]);
            }
            *node = nested;
        }
        (3, Json::Object(members)) if !members.is_empty() => {
            members.remove(rng.gen_range(0..members.len()));
        }
        (4, Json::Object(members)) if !members.is_empty() => {
            let (name, value) = members[rng.gen_range(0..members.len())].clone();
            let value = if rng.r#gen() {
                value
            } else {
                random_scalar(rng)
            };
            members.insert(rng.gen_range(0..=members.len()), (name, value));
        }
        (5, Json::Object(members)) => {
            let value = random_scalar(rng);
            let at = rng.gen_range(0..=members.len());
            members.insert(at, ((*pick(rng, MEMBER_NAMES)).to_owned(), value));
        }
        (6, Json::Object(members)) => {
            let values = members.iter().map(|(_, v)| v.clone()).collect();
            *node = Json::Array(values);
        }
        (7, Json::Object(members)) if !members.is_empty() => {
            let at = rng.gen_range(0..members.len());
            members[at].0 = if rng.r#gen() {
                (*pick(rng, MEMBER_NAMES)).to_owned()
            } else {
                mutate_string(rng, &members[at].0)
            };
        }
        (8, Json::Array(items)) if !items.is_empty() => {
            let at = rng.gen_range(0..items.len());
            if rng.r#gen() {
                items.remove(at);
            } else {
                let copy = items[at].clone();
                items.insert(at, copy);
            }
        }
        (9, Json::Array(items)) => {
            let members = items
                .iter()
                .map(|v| ((*pick(rng, MEMBER_NAMES)).to_owned(), v.clone()))
                .collect();
            *node = Json::Object(members);
        }
        (10, Json::Text(text)) => *text = mutate_text_value(rng, text),
        (11, Json::Number(number)) => *number = (*pick(rng, NUMBERS)).to_owned(),
        _ => *node = random_scalar(rng),
    }
}

/// Applies a JSON-level mutation when `bytes` are JSON.
fn mutate_json_bytes(rng: &mut StdRng, bytes: &[u8]) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let mut tree = Json::from_value(&value);
    for _ in 0..rng.gen_range(1..=3) {
        mutate_json(rng, &mut tree);
    }
    let mut out = String::new();
    tree.write(&mut out);
    Some(out.into_bytes())
}

/// Base64url-decodes one dot-separated segment, mutates it (as JSON when it is), re-encodes it;
/// or drops, duplicates, swaps or non-canonically re-encodes segments.
fn mutate_segments(rng: &mut StdRng, input: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(input).ok()?;
    if !text.contains('.') {
        return None;
    }
    let mut parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    let at = rng.gen_range(0..parts.len());
    match rng.gen_range(0..8) {
        0..=3 => {
            let decoded = b64::decode(&parts[at]).ok()?;
            let mutated = match mutate_json_bytes(rng, &decoded) {
                Some(json) if rng.gen_bool(0.8) => json,
                _ => mutate_bytes(rng, decoded, &[], ""),
            };
            parts[at] = b64::encode(&mutated);
        }
        4 => {
            parts.remove(at);
        }
        5 => {
            let copy = if rng.r#gen() {
                parts[at].clone()
            } else {
                String::new()
            };
            parts.insert(at, copy);
        }
        6 => {
            let other = rng.gen_range(0..parts.len());
            parts.swap(at, other);
        }
        _ => {
            let part = &mut parts[at];
            match rng.gen_range(0..3) {
                0 => part.push_str(&"=".repeat(rng.gen_range(1..3))),
                1 => *part = part.replace('-', "+").replace('_', "/"),
                _ => {
                    // Changes the last character, often only in its unused low bits.
                    if let Some(last) = part.pop() {
                        let index = B64_ALPHABET[..64].find(last).unwrap_or(0);
                        part.push(B64_ALPHABET.as_bytes()[(index + 1) % 64] as char);
                    }
                }
            }
        }
    }
    Some(parts.join(".").into_bytes())
}

/// Byte-level mutations: flips, insertions of interesting tokens and digit runs, deletions,
/// duplications, truncation, splicing with another pool entry. Replacement bytes come from
/// `alphabet`, or are any byte when it is empty.
fn mutate_bytes(rng: &mut StdRng, mut input: Vec<u8>, pool: &[Vec<u8>], alphabet: &str) -> Vec<u8> {
    let len = input.len();
    match rng.gen_range(0..10) {
        0 if len > 0 => {
            let at = rng.gen_range(0..len);
            input[at] ^= 1 << rng.gen_range(0..8);
        }
        1 if len > 0 => {
            let at = rng.gen_range(0..len);
            input[at] = if alphabet.is_empty() || rng.gen_bool(0.3) {
                rng.r#gen()
            } else {
                *pick(rng, alphabet.as_bytes())
            };
        }
        2 | 3 => {
            let at = rng.gen_range(0..=len);
            let token = pick(rng, TOKENS).as_bytes();
            input.splice(at..at, token.iter().copied());
        }
        4 => {
            let at = rng.gen_range(0..=len);
            let digit = *pick(rng, b"019");
            let run = vec![digit; rng.gen_range(16..400)];
            input.splice(at..at, run);
        }
        5 if len > 0 => {
            let start = rng.gen_range(0..len);
            let end = rng.gen_range(start..=len.min(start + 64));
            input.drain(start..end);
        }
        6 if len > 0 => {
            let start = rng.gen_range(0..len);
            let end = rng.gen_range(start..=len.min(start + 64));
            let chunk = input[start..end].to_vec();
            let copies = if rng.gen_bool(0.1) {
                rng.gen_range(1..2000)
            } else {
                1
            };
            for _ in 0..copies {
                input.splice(start..start, chunk.iter().copied());
            }
        }
        7 => input.truncate(rng.gen_range(0..=len)),
        8 if !pool.is_empty() => {
            let other = pick(rng, pool);
            let cut = rng.gen_range(0..=len);
            let from = rng.gen_range(0..=other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        _ => {
            let at = rng.gen_range(0..=len);
            input.insert(at, rng.r#gen());
        }
    }
    input
}

fn random_input(rng: &mut StdRng, alphabet: &str) -> Vec<u8> {
    let len = match rng.gen_range(0..20) {
        0 => rng.gen_range(0..MAX_INPUT),
        1..=3 => rng.gen_range(0..4096),
        _ => rng.gen_range(0..160),
    };
    if rng.r#gen() {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        return bytes;
    }
    let mut text = String::with_capacity(len);
    while text.len() < len {
        if rng.gen_bool(0.1) {
            text.push_str(pick::<&str>(rng, TOKENS));
        } else {
            text.push(*pick(rng, alphabet.as_bytes()) as char);
        }
    }
    text.into_bytes()
}

/// The next input: mostly a pool entry with a few stacked mutations, sometimes random.
fn next_input(rng: &mut StdRng, target: &Target, fx: &Fixtures, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut input = if pool.is_empty() || rng.gen_range(0..100) < 12 {
        random_input(rng, target.alphabet)
    } else {
        let mut input = pick(rng, pool).clone();
        let rounds = 1 + rng.gen_range(0..8u32).min(rng.gen_range(0..8u32));
        // Half the inputs get structure-aware mutations only, so that they stay well-formed
        // enough to reach the deeper checks.
        let structured = rng.r#gen::<bool>();
        let (segments, json) = match (target.shape, structured) {
            (Shape::Compact, true) => (10, 0),
            (Shape::Compact, false) => (4, 1),
            (Shape::Json, true) => (0, 10),
            (Shape::Json, false) => (1, 6),
            (Shape::Text, _) => (0, 0),
        };
        for _ in 0..rounds {
            let roll = rng.gen_range(0..10);
            input = if roll < segments {
                mutate_segments(rng, &input)
            } else if roll < segments + json {
                mutate_json_bytes(rng, &input)
            } else {
                None
            }
            .unwrap_or_else(|| mutate_bytes(rng, input, pool, target.alphabet));
            input.truncate(MAX_INPUT);
        }
        input
    };
    if let Some(finish) = target.finish {
        input = finish(fx, rng, input);
    }
    input.truncate(MAX_INPUT);
    input
}

// ---------------------------------------------------------------------------------------------
// Running, recording and replaying
// ---------------------------------------------------------------------------------------------

/// The message and place of the last panic, recorded by the quiet hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook with one that only records the panic, so that thousands of caught
/// panics do not flood the output.
fn install_quiet_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let place = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("panic at {place}: {message}"));
        }
    }));
}

/// Runs one input, turning a panic into a failure.
fn run_one(target: &Target, fx: &Fixtures, input: &[u8]) -> Result<Verdict, Broken> {
    match panic::catch_unwind(AssertUnwindSafe(|| (target.check)(fx, input))) {
        Ok(outcome) => outcome,
        Err(_) => Err(LAST_PANIC
            .lock()
            .ok()
            .and_then(|mut last| last.take())
            .unwrap_or_else(|| "panic".into())),
    }
}

/// What one target's run found.
#[derive(Default)]
struct Report {
    executions: u64,
    accepted: u64,
    refused: u64,
    outcomes: BTreeMap<String, u64>,
    /// Distinct failures, each with the file its input was saved to.
    failures: Vec<(String, PathBuf)>,
}

fn target_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a, so that a target's stream does not depend on which other targets run.
    name.bytes()
        .fold(seed ^ 0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn save_failure(out: &Path, name: &str, input: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(out);
    let path = (1..)
        .map(|n| out.join(format!("{name}-{n}.bin")))
        .find(|path| !path.exists())
        .unwrap_or_else(|| out.join(format!("{name}.bin")));
    if let Err(error) = std::fs::write(&path, input) {
        eprintln!("fuzz: could not save {}: {error}", path.display());
    }
    path
}

/// Fuzzes one target for `budget` (or until `stop` says the failures found are enough).
fn run_target(
    target: &Target,
    fx: &Fixtures,
    seed: u64,
    budget: Duration,
    out: &Path,
    announce: bool,
    stop: impl Fn(&Report) -> bool,
) -> Report {
    let mut rng = StdRng::seed_from_u64(target_seed(seed, target.name));
    let originals = (target.seeds)(fx);
    let mut pool = originals.clone();
    let mut report = Report::default();
    let start = Instant::now();
    while start.elapsed() < budget && !stop(&report) {
        let input = next_input(&mut rng, target, fx, &pool);
        report.executions += 1;
        let outcome = match run_one(target, fx, &input) {
            Ok(Verdict::Accepted) => {
                report.accepted += 1;
                "accepted".to_owned()
            }
            Ok(Verdict::Lenient(note)) => {
                report.accepted += 1;
                format!("accepted, lenient: {note}")
            }
            Ok(Verdict::Refused(label)) => {
                report.refused += 1;
                label
            }
            Err(failure) => {
                let known = report.failures.iter().any(|(f, _)| *f == failure);
                if !known && report.failures.len() < MAX_SAVED_PER_TARGET {
                    let path = save_failure(out, target.name, &input);
                    if announce {
                        println!("{}: FAILURE: {failure}", target.name);
                        println!("  input saved to {}", path.display());
                        println!(
                            "  reproduce: target/debug/examples/fuzz --seed {seed:#x} --replay {} {}",
                            path.display(),
                            target.name
                        );
                    }
                    report.failures.push((failure.clone(), path));
                }
                format!("FAILURE {failure}")
            }
        };
        let seen = report.outcomes.entry(outcome).or_insert(0);
        *seen += 1;
        if *seen <= RARE_OUTCOME {
            if pool.len() < MAX_POOL {
                pool.push(input);
            } else {
                let at = rng.gen_range(originals.len()..MAX_POOL);
                pool[at] = input;
            }
        }
    }
    report
}

fn print_report(target: &Target, report: &Report, seed: u64, seconds: u64) {
    let verdict = if report.failures.is_empty() {
        "ok".to_owned()
    } else {
        format!("{} FAILURE(S)", report.failures.len())
    };
    println!(
        "{:<11} {:>9} executions in {seconds} s: {} accepted, {} refused; seed {seed:#x}; {verdict}",
        target.name, report.executions, report.accepted, report.refused
    );
    let mut outcomes: Vec<(&String, &u64)> = report.outcomes.iter().collect();
    outcomes.sort_by(|a, b| b.1.cmp(a.1));
    let top: Vec<String> = outcomes
        .iter()
        .take(12)
        .map(|(label, count)| format!("{label} {count}"))
        .collect();
    println!("       outcomes: {}", top.join(", "));
}

fn find_target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn replay(fx: &Fixtures, file: &Path, name: &str) -> ExitCode {
    let Some(target) = find_target(name) else {
        eprintln!("fuzz: no target {name:?}");
        return ExitCode::from(2);
    };
    let input = match std::fs::read(file) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("fuzz: cannot read {}: {error}", file.display());
            return ExitCode::from(2);
        }
    };
    // The default hook stays, so a panic prints in full (with RUST_BACKTRACE=1, its trace).
    match panic::catch_unwind(AssertUnwindSafe(|| (target.check)(fx, &input))) {
        Ok(Ok(Verdict::Accepted)) => {
            println!("{name}: accepted, no property broken");
            ExitCode::SUCCESS
        }
        Ok(Ok(Verdict::Lenient(note))) => {
            println!("{name}: accepted leniently ({note}), no property broken");
            ExitCode::SUCCESS
        }
        Ok(Ok(Verdict::Refused(label))) => {
            println!("{name}: refused ({label}), no property broken");
            ExitCode::SUCCESS
        }
        Ok(Err(broken)) => {
            println!("{name}: FAILURE: {broken}");
            ExitCode::FAILURE
        }
        Err(_) => {
            println!("{name}: FAILURE: the target panicked");
            ExitCode::FAILURE
        }
    }
}

/// Runs the self-test target until the driver has caught both planted failures, then replays
/// the saved inputs. Succeeds only if the driver reported, saved and reproduced both.
fn self_check(fx: &Fixtures, seed: u64, out: &Path) -> ExitCode {
    let Some(target) = find_target(SELFTEST) else {
        return ExitCode::FAILURE;
    };
    let out = out.join("self-check");
    let _ = std::fs::remove_dir_all(&out);
    install_quiet_panic_hook();
    let caught = |report: &Report| {
        let panicked = report
            .failures
            .iter()
            .any(|(f, _)| f.contains("attempt to add with overflow"));
        let broken = report.failures.iter().any(|(f, _)| f == PLANTED_PROPERTY);
        (panicked, broken)
    };
    let report = run_target(
        target,
        fx,
        seed,
        Duration::from_secs(30),
        &out,
        false,
        |r| caught(r) == (true, true),
    );
    let (panicked, broken) = caught(&report);
    let reproduced = report.failures.iter().all(|(_, path)| {
        std::fs::read(path).is_ok_and(|input| run_one(target, fx, &input).is_err())
    });
    let _ = panic::take_hook();
    let _ = std::fs::remove_dir_all(&out);
    if panicked && broken && reproduced {
        println!(
            "self-check passed: after {} executions the driver had caught the planted overflow \
             panic and the planted property failure, saved both inputs and reproduced them",
            report.executions
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "self-check FAILED: planted panic caught: {panicked}, planted property failure \
             caught: {broken}, saved inputs reproduced: {reproduced} ({} executions)",
            report.executions
        );
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for target in TARGETS.iter().filter(|t| !t.hidden) {
            println!("{}", target.name);
        }
        return ExitCode::SUCCESS;
    }
    let seed = args.seed.unwrap_or_else(|| rand::rngs::OsRng.next_u64());
    let out = args
        .out
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures"));
    let selected: Vec<&Target> = if args.targets.is_empty() {
        TARGETS.iter().filter(|t| !t.hidden).collect()
    } else {
        let mut selected = Vec::new();
        for name in &args.targets {
            match find_target(name) {
                Some(target) => selected.push(target),
                None => {
                    eprintln!("fuzz: no target {name:?} (see --list)");
                    return ExitCode::from(2);
                }
            }
        }
        selected
    };
    let fx = Fixtures::new(seed);
    if args.self_check {
        return self_check(&fx, seed, &out);
    }
    if let Some(file) = &args.replay {
        let [target] = selected.as_slice() else {
            eprintln!("fuzz: --replay FILE needs exactly one TARGET");
            return ExitCode::from(2);
        };
        return replay(&fx, file, target.name);
    }
    install_quiet_panic_hook();
    println!(
        "fuzz: {} target(s), {} s each, seed {seed:#x}",
        selected.len(),
        args.seconds
    );
    let mut failed = false;
    for target in selected {
        let report = run_target(
            target,
            &fx,
            seed,
            Duration::from_secs(args.seconds),
            &out,
            true,
            |_| false,
        );
        print_report(target, &report, seed, args.seconds);
        failed |= !report.failures.is_empty();
    }
    if failed {
        println!("fuzz: FAILED; the inputs are under {}", out.display());
        ExitCode::FAILURE
    } else {
        println!("fuzz: ok");
        ExitCode::SUCCESS
    }
}
