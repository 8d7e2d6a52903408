//! ECDH-ES on P-384 for inbox messages (RFC 7518 §4.6): the sender's encryption (the CLI's
//! `siteid inbox send`, tests) and the recipient's decryption (tests). The node never decrypts.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use p384::elliptic_curve::sec1::ToEncodedPoint;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::message::{self, CONTENT_ENC, IV_LEN, MessageAlg, MessageError};
use super::{b64, keywrap};

/// The AES-256-GCM content key length, and the length of every key the Concat KDF derives here.
const KEY_LEN: usize = 32;

/// Why a message could not be decrypted. Messages complete the sentence "the message ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error(transparent)]
    Shape(#[from] MessageError),
    #[error("could not be decrypted: it is not for this key, or it was altered")]
    Failed,
}

/// How a message is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// Compact serialization, every header member protected.
    Compact,
    /// General JSON serialization with one recipient: `enc` (and `cty`) in the protected header,
    /// `alg`, `kid`, `epk`, `apu` and `apv` in the recipient's header, and the optional JWE AAD.
    General { aad: Option<&'a [u8]> },
}

/// The choices of [`encrypt`]. `apu` and `apv` go into the Concat KDF's PartyUInfo and
/// PartyVInfo; a recipient refuses them beyond [`message::MAX_PARTY_INFO_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptOptions<'a> {
    pub alg: MessageAlg,
    pub envelope: Envelope<'a>,
    pub cty: Option<&'a str>,
    pub apu: Option<&'a [u8]>,
    pub apv: Option<&'a [u8]>,
}

impl Default for EncryptOptions<'_> {
    fn default() -> Self {
        EncryptOptions {
            alg: MessageAlg::EcdhEsA256kw,
            envelope: Envelope::Compact,
            cty: None,
            apu: None,
            apv: None,
        }
    }
}

/// An ephemeral public key as a bare JWK.
#[derive(Serialize)]
struct EpkJwk {
    kty: &'static str,
    crv: &'static str,
    x: String,
    y: String,
}

/// Header members in the order they are written: alg, enc, kid, epk, apu, apv, cty.
#[derive(Serialize, Default)]
struct HeaderOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enc: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epk: Option<EpkJwk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cty: Option<&'a str>,
}

#[derive(Serialize)]
struct RecipientOut<'a> {
    header: HeaderOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_key: Option<String>,
}

/// A JWE in general JSON serialization, members in the order of RFC 7516 §7.2.1.
#[derive(Serialize)]
struct GeneralOut<'a> {
    protected: String,
    recipients: [RecipientOut<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    aad: Option<String>,
    iv: String,
    ciphertext: String,
    tag: String,
}

/// Encrypts `plaintext` to `recipient` as a compact `ECDH-ES+A256KW` / `A256GCM` JWE with a fresh
/// ephemeral key, addressed to `kid`. Header members: alg, enc, kid, epk, then cty if given.
pub fn encrypt_compact(
    recipient: &p384::PublicKey,
    kid: &str,
    plaintext: &[u8],
    cty: Option<&str>,
) -> String {
    let options = EncryptOptions {
        cty,
        ..EncryptOptions::default()
    };
    encrypt(recipient, kid, plaintext, &options)
}

/// Encrypts `plaintext` to `recipient` with a fresh ephemeral key, as `options` say.
pub fn encrypt(
    recipient: &p384::PublicKey,
    kid: &str,
    plaintext: &[u8],
    options: &EncryptOptions<'_>,
) -> String {
    let mut rng = rand::rngs::OsRng;
    let ephemeral = p384::ecdh::EphemeralSecret::random(&mut rng);
    let shared = ephemeral.diffie_hellman(recipient);
    let apu = options.apu.unwrap_or_default();
    let apv = options.apv.unwrap_or_default();
    let agreed = concat_kdf::<KEY_LEN>(
        shared.raw_secret_bytes(),
        algorithm_id(options.alg),
        apu,
        apv,
    );
    let (cek, encrypted_key) = match options.alg {
        MessageAlg::EcdhEs => (agreed, None),
        MessageAlg::EcdhEsA256kw => {
            let mut cek = Zeroizing::new([0u8; KEY_LEN]);
            rng.fill_bytes(cek.as_mut_slice());
            let wrapped = keywrap::wrap(agreed.as_slice(), cek.as_slice())
                .unwrap_or_else(|_| unreachable!("a 32-byte key wraps under a 32-byte KEK"));
            (cek, Some(b64::encode(&wrapped)))
        }
    };
    let point = ephemeral.public_key().to_encoded_point(false);
    let epk = EpkJwk {
        kty: "EC",
        crv: "P-384",
        x: point.x().map(|c| b64::encode(c)).unwrap_or_default(),
        y: point.y().map(|c| b64::encode(c)).unwrap_or_default(),
    };
    let mut key_header = HeaderOut {
        alg: Some(options.alg.as_str()),
        kid: Some(kid),
        epk: Some(epk),
        apu: options.apu.map(b64::encode),
        apv: options.apv.map(b64::encode),
        ..HeaderOut::default()
    };
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    match options.envelope {
        Envelope::Compact => {
            key_header.enc = Some(CONTENT_ENC);
            key_header.cty = options.cty;
            let protected = b64::encode(json_text(&key_header).as_bytes());
            let (ciphertext, tag) = seal(&cek, &iv, protected.as_bytes(), plaintext);
            format!(
                "{protected}.{}.{}.{ciphertext}.{tag}",
                encrypted_key.unwrap_or_default(),
                b64::encode(&iv)
            )
        }
        Envelope::General { aad } => {
            let content_header = HeaderOut {
                enc: Some(CONTENT_ENC),
                cty: options.cty,
                ..HeaderOut::default()
            };
            let protected = b64::encode(json_text(&content_header).as_bytes());
            let aad = aad.map(b64::encode);
            let mut additional_data = protected.clone();
            if let Some(aad) = &aad {
                additional_data.push('.');
                additional_data.push_str(aad);
            }
            let (ciphertext, tag) = seal(&cek, &iv, additional_data.as_bytes(), plaintext);
            json_text(&GeneralOut {
                protected,
                recipients: [RecipientOut {
                    header: key_header,
                    encrypted_key,
                }],
                aad,
                iv: b64::encode(&iv),
                ciphertext,
                tag,
            })
        }
    }
}

/// The content key of a stored message, derived with the recipient's private key: for
/// [`decrypt`], and for the tests that prove the node never holds it.
pub fn content_key(
    recipient: &p384::SecretKey,
    stored: &str,
) -> Result<Zeroizing<[u8; KEY_LEN]>, DecryptError> {
    let parsed = message::parse_stored(stored)?;
    content_key_of(recipient, &parsed)
}

fn content_key_of(
    recipient: &p384::SecretKey,
    parsed: &message::ParsedMessage,
) -> Result<Zeroizing<[u8; KEY_LEN]>, DecryptError> {
    let header = &parsed.header;
    let scalar = Zeroizing::new(recipient.to_nonzero_scalar());
    let shared = p384::ecdh::diffie_hellman(&*scalar, header.epk.as_affine());
    let agreed = concat_kdf::<KEY_LEN>(
        shared.raw_secret_bytes(),
        algorithm_id(header.alg),
        &header.apu,
        &header.apv,
    );
    match header.alg {
        MessageAlg::EcdhEs => Ok(agreed),
        MessageAlg::EcdhEsA256kw => {
            let unwrapped = Zeroizing::new(
                keywrap::unwrap(agreed.as_slice(), &parsed.encrypted_key)
                    .map_err(|_| DecryptError::Failed)?,
            );
            // aes-kw unwraps any multiple of 8 bytes: the content key must be exactly 32.
            if unwrapped.len() != KEY_LEN {
                return Err(DecryptError::Failed);
            }
            let mut cek = Zeroizing::new([0u8; KEY_LEN]);
            cek.copy_from_slice(&unwrapped);
            Ok(cek)
        }
    }
}

/// Decrypts a stored message (compact, or the text of a general JSON one) with the recipient's
/// private key, after the shape checks of [`message::check_message`].
pub fn decrypt(
    recipient: &p384::SecretKey,
    stored: &str,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let parsed = message::parse_stored(stored)?;
    let cek = content_key_of(recipient, &parsed)?;
    let cipher = Aes256Gcm::new_from_slice(cek.as_slice()).map_err(|_| DecryptError::Failed)?;
    let mut plaintext = Zeroizing::new(parsed.ciphertext);
    cipher
        .decrypt_in_place_detached(
            &Nonce::from(parsed.iv),
            &parsed.additional_data,
            &mut plaintext,
            &Tag::from(parsed.tag),
        )
        .map_err(|_| DecryptError::Failed)?;
    Ok(plaintext)
}

/// The Concat KDF's AlgorithmID (RFC 7518 §4.6.2): the `enc` value for direct key agreement,
/// the `alg` value with key wrapping.
fn algorithm_id(alg: MessageAlg) -> &'static str {
    match alg {
        MessageAlg::EcdhEs => CONTENT_ENC,
        MessageAlg::EcdhEsA256kw => alg.as_str(),
    }
}

/// The Concat KDF of NIST SP 800-56A with SHA-256 as RFC 7518 §4.6.2 uses it: `N` bytes from the
/// shared secret `z`, with AlgorithmID, PartyUInfo and PartyVInfo each prefixed by its 32-bit
/// big-endian length, SuppPubInfo the key length in bits and SuppPrivInfo empty.
fn concat_kdf<const N: usize>(
    z: &[u8],
    algorithm_id: &str,
    apu: &[u8],
    apv: &[u8],
) -> Zeroizing<[u8; N]> {
    let key_bits = u32::try_from(N * 8).unwrap_or(u32::MAX);
    let mut key = Zeroizing::new([0u8; N]);
    let mut block = Zeroizing::new([0u8; 32]);
    for (round, chunk) in key.chunks_mut(32).enumerate() {
        let counter = u32::try_from(round + 1).unwrap_or(u32::MAX);
        let mut hasher = Sha256::new();
        hasher.update(counter.to_be_bytes());
        hasher.update(z);
        for field in [algorithm_id.as_bytes(), apu, apv] {
            hasher.update(u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            hasher.update(field);
        }
        hasher.update(key_bits.to_be_bytes());
        hasher.finalize_into(block.as_mut_slice().into());
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    key
}

/// AES-256-GCM over a copy of `plaintext` that is zeroized; returns the ciphertext and the tag,
/// base64url.
fn seal(
    cek: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    additional_data: &[u8],
    plaintext: &[u8],
) -> (String, String) {
    let cipher = Aes256Gcm::new(cek.into());
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    // AES-GCM refuses only plaintexts beyond 2^36 bytes, which no message comes near.
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::from(*iv), additional_data, &mut buffer)
        .unwrap_or_else(|_| unreachable!("a message is far below AES-GCM's 64 GiB limit"));
    (b64::encode(&buffer), b64::encode(&tag))
}

/// JSON text of a header or message built here: strings and objects only, so it always
/// serializes.
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| unreachable!("a struct of strings always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::message::{Serialization, check_message};
    use serde_json::Value;
    use serde_json::value::RawValue;

    const KID: &str = "enc-key-1";

    fn key() -> p384::SecretKey {
        p384::SecretKey::random(&mut rand::rngs::OsRng)
    }

    fn options(alg: MessageAlg, envelope: Envelope<'static>) -> EncryptOptions<'static> {
        EncryptOptions {
            alg,
            envelope,
            ..EncryptOptions::default()
        }
    }

    /// The message as the node would check it: a compact one arrives as a JSON string.
    fn as_received(stored: &str) -> Box<RawValue> {
        let text = if stored.starts_with('{') {
            stored.to_owned()
        } else {
            format!("\"{stored}\"")
        };
        RawValue::from_string(text).unwrap()
    }

    #[test]
    fn the_concat_kdf_derives_the_key_of_rfc_7518_appendix_c() {
        // RFC 7518 Appendix C: ECDH-ES with A128GCM, apu "Alice", apv "Bob" (P-256, but the KDF
        // does not depend on the curve).
        let z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf::<16>(&z, "A128GCM", b"Alice", b"Bob");
        assert_eq!(
            *key,
            [
                86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26
            ]
        );
        assert_eq!(b64::encode(key.as_slice()), "VqqN6vgjbSBcIijNcacQGg");
        // Another AlgorithmID or key length derives another key.
        assert_ne!(
            concat_kdf::<16>(&z, "A256GCM", b"Alice", b"Bob").as_slice(),
            key.as_slice()
        );
        assert_ne!(
            &concat_kdf::<32>(&z, "A128GCM", b"Alice", b"Bob")[..16],
            key.as_slice()
        );
    }

    #[test]
    fn a_key_longer_than_one_hash_takes_a_second_round_of_the_kdf() {
        let z = [7u8; 48];
        let long = concat_kdf::<48>(&z, "X", b"", b"");
        let mut second = Sha256::new();
        second.update(2u32.to_be_bytes());
        second.update(z);
        second.update([0, 0, 0, 1, b'X', 0, 0, 0, 0, 0, 0, 0, 0]);
        second.update(384u32.to_be_bytes());
        assert_eq!(&long[32..], &second.finalize()[..16]);
    }

    #[test]
    fn every_alg_and_serialization_round_trips() {
        let recipient = key();
        let plaintext = b"{\"text\":\"hello from example.org\"}";
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
                let stored = encrypt(&recipient.public_key(), KID, plaintext, &options);
                let checked = check_message(&as_received(&stored), |kid| kid == KID).unwrap();
                assert_eq!(checked.alg, alg);
                assert_eq!(checked.stored, stored);
                let expected = match envelope {
                    Envelope::Compact => Serialization::Compact,
                    Envelope::General { .. } => Serialization::General,
                };
                assert_eq!(checked.serialization, expected);
                assert_eq!(
                    decrypt(&recipient, &stored).unwrap().as_slice(),
                    plaintext,
                    "{alg:?} {envelope:?}"
                );
            }
        }
    }

    #[test]
    fn encrypt_compact_writes_alg_enc_kid_epk_and_cty_in_that_order() {
        let recipient = key();
        let compact = encrypt_compact(&recipient.public_key(), KID, b"hi", Some("text/plain"));
        let parts: Vec<&str> = compact.split('.').collect();
        assert_eq!(parts.len(), 5);
        let header = String::from_utf8(b64::decode(parts[0]).unwrap()).unwrap();
        assert!(
            header.starts_with(&format!(
                "{{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"kid\":\"{KID}\",\
                 \"epk\":{{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\""
            )),
            "{header}"
        );
        assert!(header.ends_with("\"},\"cty\":\"text/plain\"}"), "{header}");
        assert_eq!(b64::decode(parts[1]).unwrap().len(), 40);
        assert_eq!(decrypt(&recipient, &compact).unwrap().as_slice(), b"hi");
        let without = encrypt_compact(&recipient.public_key(), KID, b"hi", None);
        let header = b64::decode(without.split('.').next().unwrap()).unwrap();
        assert!(!String::from_utf8(header).unwrap().contains("cty"));
    }

    #[test]
    fn every_message_has_a_fresh_ephemeral_key_and_content_key() {
        let recipient = key().public_key();
        let first = encrypt_compact(&recipient, KID, b"same", None);
        let second = encrypt_compact(&recipient, KID, b"same", None);
        let parts = |c: &str| c.split('.').map(str::to_owned).collect::<Vec<_>>();
        let (a, b) = (parts(&first), parts(&second));
        for index in 0..5 {
            assert_ne!(a[index], b[index], "part {index}");
        }
    }

    #[test]
    fn another_recipient_key_cannot_decrypt() {
        for alg in [MessageAlg::EcdhEsA256kw, MessageAlg::EcdhEs] {
            let stored = encrypt(
                &key().public_key(),
                KID,
                b"secret",
                &options(alg, Envelope::Compact),
            );
            assert_eq!(decrypt(&key(), &stored), Err(DecryptError::Failed));
        }
    }

    #[test]
    fn a_tampered_tag_ciphertext_or_protected_header_fails_to_decrypt() {
        let recipient = key();
        for alg in [MessageAlg::EcdhEsA256kw, MessageAlg::EcdhEs] {
            let compact = encrypt(
                &recipient.public_key(),
                KID,
                b"secret",
                &options(alg, Envelope::Compact),
            );
            let parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
            let mut tag = b64::decode(&parts[4]).unwrap();
            tag[0] ^= 1;
            let mut ciphertext = b64::decode(&parts[3]).unwrap();
            ciphertext[0] ^= 1;
            let mut header: Value =
                serde_json::from_slice(&b64::decode(&parts[0]).unwrap()).unwrap();
            header["typ"] = "JWE".into();
            let tampered = [
                (4, b64::encode(&tag)),
                (3, b64::encode(&ciphertext)),
                (0, b64::encode(header.to_string().as_bytes())),
            ];
            for (index, part) in tampered {
                let mut changed = parts.clone();
                changed[index] = part;
                let changed = changed.join(".");
                // Still well formed: only decryption notices.
                assert!(check_message(&as_received(&changed), |_| true).is_ok());
                assert_eq!(
                    decrypt(&recipient, &changed),
                    Err(DecryptError::Failed),
                    "{alg:?} part {index}"
                );
            }
        }
    }

    #[test]
    fn a_tampered_general_message_fails_to_decrypt() {
        let recipient = key();
        for alg in [MessageAlg::EcdhEsA256kw, MessageAlg::EcdhEs] {
            let envelope = Envelope::General { aad: Some(b"ctx") };
            let options = EncryptOptions {
                apu: Some(b"Alice"),
                ..options(alg, envelope)
            };
            let stored = encrypt(&recipient.public_key(), KID, b"secret", &options);
            let message: Value = serde_json::from_str(&stored).unwrap();
            let changes: [fn(&mut Value); 4] = [
                |m| m["aad"] = b64::encode(b"ctX").into(),
                |m| m["recipients"][0]["header"]["apu"] = b64::encode(b"Alicf").into(),
                |m| {
                    // Another point on the curve as the ephemeral key.
                    let other = key().public_key().to_encoded_point(false);
                    let epk = &mut m["recipients"][0]["header"]["epk"];
                    epk["x"] = b64::encode(other.x().unwrap()).into();
                    epk["y"] = b64::encode(other.y().unwrap()).into();
                },
                |m| m["protected"] = b64::encode(b"{\"enc\":\"A256GCM\" }").into(),
            ];
            for (index, change) in changes.into_iter().enumerate() {
                let mut changed = message.clone();
                change(&mut changed);
                let changed = changed.to_string();
                assert!(check_message(&as_received(&changed), |_| true).is_ok());
                assert_eq!(
                    decrypt(&recipient, &changed),
                    Err(DecryptError::Failed),
                    "{alg:?} change {index}"
                );
            }
        }
    }

    #[test]
    fn decryption_applies_the_shape_rules_first() {
        let recipient = key();
        let compact = encrypt_compact(&recipient.public_key(), KID, b"secret", None);
        let parts: Vec<&str> = compact.split('.').collect();
        // A wrapped key of 32 bytes would unwrap to 24 with aes-kw: refused as a shape error.
        let short = format!(
            "{}.{}.{}.{}.{}",
            parts[0],
            b64::encode(&[1u8; 32]),
            parts[2],
            parts[3],
            parts[4]
        );
        assert!(matches!(
            decrypt(&recipient, &short),
            Err(DecryptError::Shape(MessageError::BadPart { .. }))
        ));
        assert!(matches!(
            decrypt(&recipient, "{\"protected\":\"e30\"}"),
            Err(DecryptError::Shape(_))
        ));
        let error = decrypt(&recipient, "a.b").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("is not a JWE in compact serialization")
        );
    }
}
