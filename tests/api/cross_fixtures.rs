//! Cross-implementation fixtures: a wrapped key and recovery shares made by the browser modules
//! must read in Rust, and the Rust-made fixtures the browser tests read (wrapped key, shares,
//! refused share sets) must stay valid. `SITEID_WRITE_FIXTURES=1` rewrites the Rust-made ones.

use std::path::PathBuf;

use serde_json::{Value, json};
use siteid::jose::b64;
use siteid::jose::jwe::{self, WrappedKey};
use siteid::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};
use siteid::recovery::share::{self, SECRET_LEN, Share, ShareError};
use siteid::recovery::{rebuild_key, split_key};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

/// Checks a fixture against the Rust implementation.
fn assert_fixture_holds(fixture: &Value) {
    let password = fixture["password"].as_str().expect("password");
    let wrapped = WrappedKey::parse(fixture["wrapped_key"].as_str().expect("wrapped_key"))
        .expect("the fixture has the exact wrapped-key format");
    assert_eq!(
        u64::from(wrapped.p2c()),
        fixture["p2c"].as_u64().expect("p2c")
    );
    let kek = wrapped.derive_kek(password.as_bytes());
    assert_eq!(
        b64::encode(&kek.unlock_verifier()),
        fixture["unlock_verifier"].as_str().expect("verifier"),
        "both implementations derive the same verifier"
    );
    let key = wrapped.unwrap_with_kek(&kek).expect("decrypts");
    assert_eq!(
        b64::encode(key.scalar_bytes().as_slice()),
        fixture["d"].as_str().expect("d")
    );
    let public = OwnerPublicKey::from_json(&fixture["public_jwk"].to_string()).expect("public jwk");
    assert_eq!(key.public_key(), public);
    assert_eq!(public.thumbprint(), fixture["kid"].as_str().expect("kid"));
}

#[test]
fn a_wrapped_key_made_by_the_browser_module_unwraps_in_rust() {
    let path = fixture_path("js-wrapped-key.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}); `npm test` writes it", path.display()));
    assert_fixture_holds(&serde_json::from_str(&text).expect("JSON"));
}

#[test]
fn the_rust_made_fixture_for_the_browser_module_is_valid() {
    let path = fixture_path("rust-wrapped-key.json");
    if std::env::var_os("SITEID_WRITE_FIXTURES").is_some() {
        let password = "Rust fixture: Grüße, ключ, 鍵 🔑";
        let key = OwnerPrivateKey::generate();
        let (wrapped, verifier) =
            jwe::wrap_private_key(&key, password.as_bytes(), jwe::MIN_P2C).expect("wrap");
        let public = key.public_key();
        let fixture = json!({
            "description": "A wrapped key made by the Rust implementation (src/jose/jwe.rs), read by tests/js. Test data only.",
            "password": password,
            "p2c": jwe::MIN_P2C,
            "wrapped_key": wrapped.compact(),
            "unlock_verifier": b64::encode(&verifier),
            "kid": public.thumbprint(),
            "public_jwk": public.to_jwk(),
            "d": b64::encode(key.scalar_bytes().as_slice()),
        });
        let text = serde_json::to_string_pretty(&fixture).expect("JSON") + "\n";
        std::fs::write(&path, text).expect("write fixture");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); run `SITEID_WRITE_FIXTURES=1 cargo test cross_fixtures`",
            path.display()
        )
    });
    assert_fixture_holds(&serde_json::from_str(&text).expect("JSON"));
}

fn read_fixture(name: &str, how_to_make: &str) -> Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}); {how_to_make}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

fn write_fixture(name: &str, fixture: &Value) {
    let text = serde_json::to_string_pretty(fixture).expect("JSON") + "\n";
    std::fs::write(fixture_path(name), text).expect("write fixture");
}

/// The key of the Rust wrapped-key fixture, which the share fixtures split.
fn fixture_key() -> OwnerPrivateKey {
    let fixture = read_fixture("rust-wrapped-key.json", "see above");
    let d = b64::decode(fixture["d"].as_str().expect("d")).expect("base64url");
    OwnerPrivateKey::from_scalar_bytes(&d).expect("scalar")
}

/// Reads share texts in entry order and rebuilds, as the CLI and the pages do.
fn rebuild_texts(
    texts: &[&str],
    expected: Option<&OwnerPublicKey>,
) -> Result<OwnerPrivateKey, ShareError> {
    let shares = texts
        .iter()
        .enumerate()
        .map(|(i, text)| Share::parse(text, Some(i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    rebuild_key(&shares, expected)
}

fn texts(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("array of shares")
        .iter()
        .map(|s| s.as_str().expect("share text"))
        .collect()
}

/// Every subset of `threshold` shares of a share fixture rebuilds its key.
fn assert_share_fixture_holds(fixture: &Value) {
    let owner = OwnerPrivateKey::from_json(fixture["private_jwk"].to_string().as_bytes())
        .expect("private jwk");
    let public = owner.public_key();
    assert_eq!(public.thumbprint(), fixture["kid"].as_str().expect("kid"));
    let shares = texts(&fixture["shares"]);
    let threshold = fixture["threshold"].as_u64().expect("threshold") as usize;
    assert_eq!(threshold, 3, "the fixtures are 3 of 5");
    for a in 0..shares.len() {
        for b in a + 1..shares.len() {
            for c in b + 1..shares.len() {
                let key = rebuild_texts(&[shares[c], shares[a], shares[b]], Some(&public))
                    .expect("any three rebuild");
                assert_eq!(*key.scalar_bytes(), *owner.scalar_bytes());
            }
        }
    }
    let set_id = Share::parse(shares[0], None).expect("parse").set_id_hex();
    assert_eq!(set_id, fixture["set_id"].as_str().expect("set_id"));
}

#[test]
fn shares_made_by_the_browser_module_rebuild_in_rust() {
    assert_share_fixture_holds(&read_fixture(
        "js-shares.json",
        "`npm run fixtures` writes it",
    ));
}

#[test]
fn the_rust_made_shares_for_the_browser_module_are_valid() {
    if std::env::var_os("SITEID_WRITE_FIXTURES").is_some() {
        let key = fixture_key();
        let public = key.public_key();
        let split = split_key(&key, 3, 5).expect("split");
        let shares: Vec<String> = split
            .shares
            .iter()
            .map(|s| s.to_text().to_string())
            .collect();
        write_fixture(
            "rust-shares.json",
            &json!({
                "description": "Recovery shares (docs/shares.md) of the key of rust-wrapped-key.json, made by the Rust implementation (src/recovery/), read by tests/js. Any 3 rebuild the key. Test data only.",
                "kid": public.thumbprint(),
                "private_jwk": serde_json::from_slice::<Value>(&key.to_json()).expect("JSON"),
                "set_id": share::hex(&split.set_id),
                "threshold": 3,
                "shares": shares,
            }),
        );
        write_fixture("shares-invalid.json", &refused_share_cases(&key));
    }
    assert_share_fixture_holds(&read_fixture(
        "rust-shares.json",
        "run `SITEID_WRITE_FIXTURES=1 cargo test cross_fixtures`",
    ));
}

/// Sets of shares each implementation must refuse with the same code and position.
fn refused_share_cases(key: &OwnerPrivateKey) -> Value {
    let public = key.public_key();
    let other = OwnerPrivateKey::generate().public_key();
    let split = split_key(key, 3, 5).expect("split");
    let second = split_key(key, 3, 5).expect("split");
    let text = |i: usize| split.shares[i].to_text().to_string();
    let key_check = split.shares[0].key_check;
    let data = |i: usize| share::share_data(&split.shares[i]);
    let raw = |version, threshold, index| {
        share::encode_raw_share(version, split.set_id, threshold, index, key_check, &data(0))
    };
    let mut typo = text(1).into_bytes();
    typo[10] = if typo[10] == b'Z' { b'Y' } else { b'Z' };
    let typo = String::from_utf8(typo).expect("ascii");
    let mut altered = data(3);
    altered[17] ^= 0x40;
    let inconsistent = share::encode_raw_share(1, split.set_id, 3, 4, key_check, &altered);
    let unchecked: Vec<String> = (0..3)
        .map(|i| share::encode_raw_share(1, split.set_id, 3, (i + 1) as u8, [0; 4], &data(i)))
        .collect();
    let zero: Vec<String> = (1..=2)
        .map(|index| share::encode_raw_share(1, [9; 4], 2, index, key_check, &[0; SECRET_LEN]))
        .collect();
    let case = |description: &str, shares: Vec<String>, code: &str, position: Option<usize>| json!({ "description": description, "shares": shares, "code": code, "position": position });
    let mut cases = vec![
        case(
            "a U, which Crockford base32 leaves out",
            vec![text(0), format!("U{}", &text(1)[1..])],
            "alphabet",
            Some(2),
        ),
        case(
            "a U after all 104 good characters",
            vec![text(0), format!("{}00U", text(1))],
            "alphabet",
            Some(2),
        ),
        case(
            "a character missing",
            vec![text(0)[1..].to_owned()],
            "length",
            Some(1),
        ),
        case(
            "one character mistyped",
            vec![text(0), typo],
            "checksum",
            Some(2),
        ),
        case("format version 2", vec![raw(2, 3, 1)], "version", Some(1)),
        case(
            "threshold 1",
            vec![text(0), raw(1, 1, 2)],
            "threshold",
            Some(2),
        ),
        case("index 0", vec![raw(1, 3, 0)], "index", Some(1)),
        case("index 17", vec![raw(1, 3, 17)], "index", Some(1)),
        case(
            "a share of another set",
            vec![text(0), text(1), second.shares[2].to_text().to_string()],
            "mixed-sets",
            Some(3),
        ),
        case(
            "the same share twice",
            vec![text(0), text(1), text(0)],
            "duplicate-index",
            Some(3),
        ),
        case(
            "two shares of a 3-of-5 set",
            vec![text(0), text(1)],
            "too-few",
            None,
        ),
        case(
            "a fourth share that was altered (valid checksum)",
            vec![text(0), text(1), text(2), inconsistent],
            "inconsistent",
            Some(4),
        ),
        case("shares of the scalar 0", zero, "not-a-key", None),
        case(
            "shares whose key check is not their key's",
            unchecked,
            "key-check",
            None,
        ),
    ];
    let mut wrong_key = case(
        "a valid set checked against another public key",
        vec![text(0), text(2), text(4)],
        "wrong-key",
        None,
    );
    wrong_key["public_jwk"] = json!(other.to_jwk());
    cases.push(wrong_key);
    let mut right_key = case(
        "a valid set checked against its own public key",
        vec![text(4), text(3), text(1)],
        "",
        None,
    );
    right_key["public_jwk"] = json!(public.to_jwk());
    right_key["code"] = Value::Null;
    cases.push(right_key);
    json!({
        "description": "Share sets (docs/shares.md) every implementation must refuse, in entry order, with this code and 1-based position (null: no single share at fault). The last case is valid (code null). Made by the Rust implementation. Test data only.",
        "cases": cases,
    })
}

#[test]
fn refused_share_sets_give_the_documented_codes() {
    let fixture = read_fixture(
        "shares-invalid.json",
        "run `SITEID_WRITE_FIXTURES=1 cargo test cross_fixtures`",
    );
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 14);
    for case in cases {
        let description = case["description"].as_str().expect("description");
        let expected = case
            .get("public_jwk")
            .map(|jwk| OwnerPublicKey::from_json(&jwk.to_string()).expect("public jwk"));
        let outcome = rebuild_texts(&texts(&case["shares"]), expected.as_ref());
        match (case["code"].as_str(), outcome) {
            (None, Ok(_)) => {}
            (None, Err(error)) => panic!("{description}: refused with {error:?}"),
            (Some(_), Ok(_)) => panic!("{description}: accepted"),
            (Some(code), Err(error)) => {
                assert_eq!(
                    error.code.as_str(),
                    code,
                    "{description}: {}",
                    error.message
                );
                assert_eq!(
                    error.position,
                    case["position"].as_u64().map(|p| p as usize),
                    "{description}"
                );
            }
        }
    }
}
