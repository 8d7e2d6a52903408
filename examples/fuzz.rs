//! Property-based fuzzing of every parser that reads untrusted input: compact JWS, the wrapped-key
//! JWE, JWKs, the recovery share text, the strict JSON body extractor, WebSocket messages and
//! base64url. Each target must accept or refuse without panicking and keep its round-trip
//! properties. Run with `scripts/fuzz [SECONDS]`; docs/fuzzing.md explains the driver.
//!
//! Usage: `fuzz [--seconds N] [--seed S] [TARGET...]`, `fuzz --seed S --replay FILE TARGET`,
//! `fuzz --self-check`, `fuzz --list`.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use p384::ecdsa::signature::{Signer, Verifier};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use siteid::auth::claim::PROOF_TYPE;
use siteid::auth::login::LOGIN_TYPE;
use siteid::http::auth::ProofBody;
use siteid::http::owner::{ClaimBody, ReplaceWrappedKeyBody};
use siteid::http::recovery::NewSetBody;
use siteid::http::unlock::UnlockBody;
use siteid::jose::b64;
use siteid::jose::jwe::{self, Kek, WrappedKey};
use siteid::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use siteid::jose::jws::{self, CompactJws, NonceClaims, PROOF_LIFETIME, VerifyingKey};
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
/// The password of the fixture's wrapped key.
const PASSWORD: &[u8] = b"correct horse fuzzing staple";
/// The audience of the fixture tokens.
const AUDIENCE: &str = "https://id.example";

#[derive(Parser)]
#[command(
    about = "Fuzzes siteid's parsers of untrusted input",
    after_help = "Targets: jws, jwe, jwk, share, json, ws, b64 (all by default)."
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
    ]
    .iter()
    .map(|m| m.to_string().into_bytes())
    .collect()
}

/// A client message as a client would write it, for the round trip.
fn ws_text(message: &ClientMessage) -> String {
    match message {
        ClientMessage::Ping { id } => json!({"type": "ping", "id": id}).to_string(),
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
        "{:<6} {:>9} executions in {seconds} s: {} accepted, {} refused; seed {seed:#x}; {verdict}",
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
