//! Cross-implementation fixtures: a wrapped key made by the browser module must unwrap in Rust
//! with the same verifier, and the Rust-made fixture the browser tests read must stay valid.
//! `SITEID_WRITE_FIXTURES=1` rewrites the Rust-made fixture.

use std::path::PathBuf;

use serde_json::{Value, json};
use siteid::jose::b64;
use siteid::jose::jwe::{self, WrappedKey};
use siteid::jose::jwk::{OwnerPrivateKey, OwnerPublicKey};

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
