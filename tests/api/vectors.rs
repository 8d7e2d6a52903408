//! Known-answer tests for the wrapped-key format's building blocks: the project vector, RFC 7517
//! Appendix C, RFC 7520 §5.3, RFC 3394 and Project Wycheproof (AES-KW, PBKDF2-HMAC-SHA512).

use sha2::Sha512;
use siteid::jose::b64;
use siteid::jose::jwe::{Kek, WrappedKey, pbes2_salt};
use siteid::jose::keywrap;
use wycheproof::TestResult;

use crate::helpers::{hex, vector, verifier_for_kek};

#[test]
fn the_project_vector_derives_its_kek_and_unwraps_to_its_key() {
    let v = vector("project_pbes2_hs512_a256kw_a256gcm_p384.json");
    let password = v["password_utf8"].as_str().expect("password");
    assert_eq!(
        password.as_bytes(),
        hex(v["password_hex"].as_str().expect("hex"))
    );
    let wrapped = WrappedKey::parse(v["compact"].as_str().expect("compact")).expect("valid format");
    assert_eq!(wrapped.p2c(), 210_000);
    assert_eq!(
        pbes2_salt(
            "PBES2-HS512+A256KW",
            &b64::decode(&wrapped.p2s()).expect("p2s")
        ),
        hex(v["pbkdf2_salt_hex"].as_str().expect("salt"))
    );
    let kek = wrapped.derive_kek(password.as_bytes());
    assert_eq!(
        kek.bytes().to_vec(),
        hex(v["kek_hex"].as_str().expect("kek"))
    );
    assert_eq!(kek.unlock_verifier(), verifier_for_kek(kek.bytes()));
    let cek = keywrap::unwrap(
        kek.bytes(),
        &hex(v["encrypted_key_hex"].as_str().expect("ek")),
    )
    .expect("unwrap CEK");
    assert_eq!(cek, hex(v["cek_hex"].as_str().expect("cek")));
    let key = wrapped.unwrap_with_kek(&kek).expect("decrypt");
    assert_eq!(
        b64::encode(key.scalar_bytes().as_slice()),
        v["plaintext_jwk"]["d"].as_str().expect("d")
    );
}

#[test]
fn the_password_is_used_without_trimming_or_normalisation() {
    let v = vector("project_pbes2_hs512_a256kw_a256gcm_p384.json");
    let wrapped = WrappedKey::parse(v["compact"].as_str().expect("compact")).expect("valid");
    let password = v["password_utf8"].as_str().expect("password");
    for variant in [
        format!("{password} "),
        format!(" {password}"),
        password.to_uppercase(),
    ] {
        assert!(
            wrapped.unwrap_with_password(variant.as_bytes()).is_err(),
            "{variant:?}"
        );
    }
}

#[test]
fn rfc_7517_appendix_c_salt_and_key_wrap() {
    let v = vector("rfc/rfc7517_appendix_c.json");
    let header = &v["protected_header"];
    let p2s = b64::decode(header["p2s"].as_str().expect("p2s")).expect("b64");
    let mut derived = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        v["password_utf8"].as_str().expect("pw").as_bytes(),
        &pbes2_salt("PBES2-HS256+A128KW", &p2s),
        header["p2c"].as_u64().expect("p2c") as u32,
        &mut derived,
    );
    let expected: Vec<u8> =
        serde_json::from_value(v["pbkdf2_derived_key_bytes"].clone()).expect("bytes");
    assert_eq!(derived.to_vec(), expected);
    let cek: Vec<u8> = serde_json::from_value(v["cek_bytes"].clone()).expect("bytes");
    let encrypted = b64::decode(v["encrypted_key_b64u"].as_str().expect("ek")).expect("b64");
    assert_eq!(keywrap::unwrap(&derived, &encrypted).expect("unwrap"), cek);
    assert_eq!(keywrap::wrap(&derived, &cek).expect("wrap"), encrypted);
}

#[test]
fn rfc_7520_section_5_3_kek_and_key_wrap_keep_the_en_dashes() {
    let v =
        vector("jose-cookbook/5_3.key_wrap_using_pbes2-aes-keywrap_with-aes-cbc-hmac-sha2.json");
    let password = v["input"]["pwd"].as_str().expect("pwd");
    assert!(password.contains('\u{2013}'));
    let salt = b64::decode(v["encrypting_key"]["salt"].as_str().expect("salt")).expect("b64");
    let count = v["encrypting_key"]["iteration_count"]
        .as_u64()
        .expect("count") as u32;
    let kek = Kek::derive(password.as_bytes(), &salt, count);
    let cek = b64::decode(v["generated"]["cek"].as_str().expect("cek")).expect("b64");
    let encrypted =
        b64::decode(v["encrypting_key"]["encrypted_key"].as_str().expect("ek")).expect("b64");
    assert_eq!(keywrap::wrap(kek.bytes(), &cek).expect("wrap"), encrypted);
    let ascii = password.replace('\u{2013}', "-");
    let wrong = Kek::derive(ascii.as_bytes(), &salt, count);
    assert!(keywrap::unwrap(wrong.bytes(), &encrypted).is_err());
}

#[test]
fn rfc_3394_key_wrap_vectors() {
    let v = vector("rfc/rfc3394_aes_kw.json");
    for case in v["tests"].as_array().expect("tests") {
        let kek = hex(case["kek"].as_str().expect("kek"));
        let key = hex(case["key_data"].as_str().expect("key"));
        let wrapped = hex(case["ciphertext"].as_str().expect("ct"));
        assert_eq!(
            keywrap::wrap(&kek, &key).expect("wrap"),
            wrapped,
            "{}",
            case["section"]
        );
        assert_eq!(
            keywrap::unwrap(&kek, &wrapped).expect("unwrap"),
            key,
            "{}",
            case["section"]
        );
    }
}

#[test]
fn wycheproof_aes_key_wrap_including_inputs_too_short_for_rfc_3394() {
    let set = wycheproof::keywrap::TestSet::load(wycheproof::keywrap::TestName::AesKeyWrap)
        .expect("Wycheproof AES-KW set");
    let mut checked = 0;
    for group in &set.test_groups {
        for test in &group.tests {
            let unwrapped = keywrap::unwrap(&test.key, &test.ct);
            match test.result {
                TestResult::Valid => {
                    assert_eq!(
                        unwrapped.as_deref().ok(),
                        Some(test.pt.as_slice()),
                        "tc {}",
                        test.tc_id
                    );
                    assert_eq!(
                        keywrap::wrap(&test.key, &test.pt).ok(),
                        Some(test.ct.to_vec()),
                        "tc {}",
                        test.tc_id
                    );
                }
                TestResult::Invalid => {
                    assert!(
                        unwrapped.is_err(),
                        "tc {} ({}) must be refused",
                        test.tc_id,
                        test.comment
                    );
                    // Plaintexts too short for RFC 3394 are refused on the way in too.
                    if test.pt.len() < 16 || test.pt.len() % 8 != 0 {
                        assert!(
                            keywrap::wrap(&test.key, &test.pt).is_err(),
                            "tc {}",
                            test.tc_id
                        );
                    }
                }
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} Wycheproof cases ran");
}

#[test]
fn wycheproof_pbkdf2_hmac_sha512() {
    let set = wycheproof::pbkdf2::TestSet::load(wycheproof::pbkdf2::TestName::Pbkdf2HmacSha512)
        .expect("Wycheproof PBKDF2 set");
    let mut checked = 0;
    for group in &set.test_groups {
        for test in &group.tests {
            if test.iteration_count > 100_000 || test.dk_len > 1024 {
                continue;
            }
            let mut derived = vec![0u8; test.dk_len];
            pbkdf2::pbkdf2_hmac::<Sha512>(
                &test.password,
                &test.salt,
                test.iteration_count as u32,
                &mut derived,
            );
            assert_eq!(
                derived == test.dk.as_slice(),
                test.result == TestResult::Valid,
                "tc {}",
                test.tc_id
            );
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} Wycheproof cases ran");
}
