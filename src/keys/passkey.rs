//! WebAuthn ceremonies for passkeys on webauthn-rs: the relying party, creation and request
//! options, checking an attestation and an assertion, and a passkey's COSE key as a JWK. The
//! only module that uses webauthn-rs.

use serde_json::Value;
use webauthn_rs::prelude::{
    COSEAlgorithm, COSEKeyType, CreationChallengeResponse, Credential, DiscoverableAuthentication,
    ECDSACurve, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::{JwsAlgorithm, PublicKey};
use crate::jose::b64;

/// The most bytes a WebAuthn credential id may have (WebAuthn Level 3, 5.8.3).
pub const MAX_CREDENTIAL_ID_BYTES: usize = 1023;

/// The relying party: the public URL's host is its id and the public URL its only origin.
pub struct RelyingParty {
    id: String,
    webauthn: Webauthn,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelyingParty")
    }
}

/// A ceremony in progress, as webauthn-rs keeps it: the challenge and policy the answer must meet.
pub struct Pending<T>(T);

/// A registration in progress.
pub type PendingRegistration = Pending<PasskeyRegistration>;

/// A sign-in in progress: the challenge a discoverable passkey must answer.
pub type PendingAuthentication = Pending<DiscoverableAuthentication>;

impl<T: serde::Serialize + serde::de::DeserializeOwned> Pending<T> {
    /// The state as JSON, to travel sealed.
    pub fn to_json(&self) -> Result<Value, String> {
        serde_json::to_value(&self.0).map_err(|e| e.to_string())
    }

    /// The state from [`Pending::to_json`].
    pub fn from_json(value: Value) -> Result<Self, String> {
        serde_json::from_value(value)
            .map(Pending)
            .map_err(|e| e.to_string())
    }
}

/// A passkey that passed its registration ceremony.
#[derive(Debug)]
pub struct RegisteredPasskey {
    pub credential_id: Vec<u8>,
    pub public_key: PublicKey,
    pub alg: JwsAlgorithm,
    /// The passkey as webauthn-rs keeps it (JSON), for later assertions.
    pub state: String,
    /// The authenticator's AAGUID (lowercase, hyphenated), unless it is all zeros.
    pub aaguid: Option<String>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub sign_count: u32,
}

/// What a verified assertion says about its passkey.
#[derive(Debug)]
pub struct Asserted {
    /// The passkey state with its counter and backup flag brought up to date.
    pub state: String,
    pub sign_count: u32,
    pub backed_up: bool,
}

/// Why an assertion was refused.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    /// The signature counter did not move forward: the authenticator may have been cloned.
    #[error("has a signature counter that did not move forward (the passkey may be cloned)")]
    CounterWentBack,
    #[error("{0}")]
    Refused(String),
}

fn describe(error: &WebauthnError) -> String {
    match error {
        WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash => {
            "was made for another site (origin or relying party id)".into()
        }
        WebauthnError::UserNotVerified => {
            "was made without user verification (a PIN or biometric is required)".into()
        }
        WebauthnError::MismatchedChallenge => "answers another challenge".into(),
        WebauthnError::InvalidClientDataType => "is of the wrong ceremony type".into(),
        WebauthnError::COSEKeyInvalidType | WebauthnError::COSEKeyInvalidAlgorithm => {
            "uses a key algorithm this node does not accept (ES256, ES384 or RS256)".into()
        }
        WebauthnError::AuthenticationFailure => "has a signature that does not verify".into(),
        WebauthnError::ParseNOMFailure
        | WebauthnError::ParseCBORFailure(_)
        | WebauthnError::ParseJSONFailure(_) => "is malformed".into(),
        WebauthnError::CredentialExcludedFromRequest
        | WebauthnError::CredentialAlteredAlgFromRequest => {
            "is a passkey registered already, or uses a key algorithm this node does not accept \
             (ES256, ES384 or RS256)"
                .into()
        }
        other => format!("was refused ({other})"),
    }
}

impl RelyingParty {
    /// The relying party of a node at `public_url`; none where WebAuthn cannot work (a public
    /// URL whose host is an IP address: browsers refuse those as relying party ids).
    pub fn for_public_url(public_url: &str) -> Option<Self> {
        let origin = Url::parse(public_url).ok()?;
        let host = origin.domain()?.to_owned();
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .ok()?
            .rp_name(&host)
            .build()
            .ok()?;
        Some(RelyingParty { id: host, webauthn })
    }

    /// The relying party id: the public URL's host.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Creation options for a discoverable passkey with user verification: the JSON the
    /// browser's `PublicKeyCredential.parseCreationOptionsFromJSON` reads (`{"publicKey"}`).
    pub fn start_registration(
        &self,
        user_handle: &str,
        user_name: &str,
        exclude: Vec<Vec<u8>>,
    ) -> Result<(Value, PendingRegistration), String> {
        let user_handle = Uuid::parse_str(user_handle)
            .map_err(|e| format!("the stored WebAuthn user handle is damaged: {e}"))?;
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (options, pending): (CreationChallengeResponse, _) = self
            .webauthn
            .start_passkey_registration(user_handle, user_name, user_name, exclude)
            .map_err(|e| e.to_string())?;
        let mut json = serde_json::to_value(&options).map_err(|e| e.to_string())?;
        // A passkey is discoverable: sign-in starts without a user name.
        json["publicKey"]["authenticatorSelection"] = serde_json::json!({
            "residentKey": "required",
            "requireResidentKey": true,
            "userVerification": "required",
        });
        Ok((json, Pending(pending)))
    }

    /// Checks a registration answer (`PublicKeyCredential.toJSON()` of the new credential)
    /// against its pending registration. The message completes "the passkey ...".
    pub fn finish_registration(
        &self,
        answer: &Value,
        pending: &PendingRegistration,
    ) -> Result<RegisteredPasskey, String> {
        let answer: RegisterPublicKeyCredential = serde_json::from_value(answer.clone())
            .map_err(|e| format!("is not a registration answer: {e}"))?;
        let attestation_object = answer.response.attestation_object.clone();
        let passkey = self
            .webauthn
            .finish_passkey_registration(&answer, &pending.0)
            .map_err(|e| describe(&e))?;
        let credential: Credential = passkey.clone().into();
        if credential.cred_id.is_empty() || credential.cred_id.len() > MAX_CREDENTIAL_ID_BYTES {
            return Err(format!(
                "has a credential id of {} bytes (1 to {MAX_CREDENTIAL_ID_BYTES} are allowed)",
                credential.cred_id.len()
            ));
        }
        let (public_key, alg) = public_key_of(&credential)?;
        let state = serde_json::to_string(&passkey).map_err(|e| e.to_string())?;
        Ok(RegisteredPasskey {
            credential_id: credential.cred_id.clone(),
            public_key,
            alg,
            state,
            aaguid: aaguid_of(&attestation_object),
            backup_eligible: credential.backup_eligible,
            backed_up: credential.backup_state,
            sign_count: credential.counter,
        })
    }

    /// Request options for a discoverable passkey with user verification (empty
    /// `allowCredentials`): `{"publicKey","mediation"}` as `parseRequestOptionsFromJSON` reads.
    pub fn start_authentication(&self) -> Result<(Value, PendingAuthentication), String> {
        let (options, pending): (RequestChallengeResponse, _) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| e.to_string())?;
        let json = serde_json::to_value(&options).map_err(|e| e.to_string())?;
        Ok((json, Pending(pending)))
    }

    /// Reads an assertion (`PublicKeyCredential.toJSON()`) and returns it with the credential
    /// id it names. The message completes "the passkey ...".
    pub fn read_assertion(&self, answer: &Value) -> Result<(Assertion, Vec<u8>), String> {
        // The whole answer is bounded by the request size; a user handle is at most 64 bytes.
        let assertion: PublicKeyCredential = serde_json::from_value(answer.clone())
            .map_err(|e| format!("answer that is not an assertion: {e}"))?;
        let id = assertion.get_credential_id().to_vec();
        if id.is_empty() || id.len() > MAX_CREDENTIAL_ID_BYTES {
            return Err("answer without a credential id of an allowed length".into());
        }
        if assertion.get_user_unique_id().is_some_and(|h| h.len() > 64) {
            return Err("answer with a user handle longer than 64 bytes".into());
        }
        Ok((Assertion(assertion), id))
    }

    /// Checks an assertion against its pending sign-in and the stored passkey `state`.
    pub fn finish_authentication(
        &self,
        assertion: &Assertion,
        pending: PendingAuthentication,
        state: &str,
    ) -> Result<Asserted, AssertionError> {
        let mut passkey: Passkey = serde_json::from_str(state)
            .map_err(|e| AssertionError::Refused(format!("is stored damaged: {e}")))?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&assertion.0, pending.0, &passkey)
            .map_err(|e| match e {
                WebauthnError::CredentialPossibleCompromise => AssertionError::CounterWentBack,
                other => AssertionError::Refused(describe(&other)),
            })?;
        passkey.update_credential(&result);
        let state = serde_json::to_string(&passkey)
            .map_err(|e| AssertionError::Refused(format!("could not be stored: {e}")))?;
        Ok(Asserted {
            state,
            sign_count: result.counter(),
            backed_up: result.backup_state(),
        })
    }
}

/// A new WebAuthn user handle for the owner: a random UUID, as text.
pub fn new_user_handle() -> String {
    Uuid::new_v4().to_string()
}

/// An assertion as read from a request.
pub struct Assertion(PublicKeyCredential);

impl Assertion {
    /// The user handle the authenticator returned, if any (a discoverable passkey returns it).
    pub fn user_handle(&self) -> Option<&[u8]> {
        self.0.get_user_unique_id()
    }
}

/// The bytes of a user handle as [`new_user_handle`] wrote it (a UUID's 16 bytes).
pub fn user_handle_bytes(handle: &str) -> Option<Vec<u8>> {
    Uuid::parse_str(handle).ok().map(|u| u.as_bytes().to_vec())
}

/// The credential id a registration answer names, read before its ceremony is checked.
pub fn registration_credential_id(answer: &Value) -> Option<Vec<u8>> {
    let raw = answer.get("rawId")?.as_str()?;
    crate::jose::b64::decode(raw).ok()
}

/// The credential id and public key (as a JWK-backed key) a stored passkey state holds, for
/// checking it against its credential row.
pub fn stored_key(state: &str) -> Result<(Vec<u8>, PublicKey, JwsAlgorithm), String> {
    let passkey: Passkey =
        serde_json::from_str(state).map_err(|e| format!("is not a passkey state: {e}"))?;
    let credential: Credential = passkey.into();
    let (public, alg) = public_key_of(&credential)?;
    Ok((credential.cred_id.clone(), public, alg))
}

/// The credential's COSE key as a [`PublicKey`] (through its JWK form, RFC 9053 to RFC 7518)
/// and the algorithm it signs with.
fn public_key_of(credential: &Credential) -> Result<(PublicKey, JwsAlgorithm), String> {
    let (jwk, alg) = match (&credential.cred.type_, &credential.cred.key) {
        (COSEAlgorithm::ES256, COSEKeyType::EC_EC2(ec)) if ec.curve == ECDSACurve::SECP256R1 => (
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64::encode(&ec.x), "y": b64::encode(&ec.y)}),
            JwsAlgorithm::Es256,
        ),
        (COSEAlgorithm::ES384, COSEKeyType::EC_EC2(ec)) if ec.curve == ECDSACurve::SECP384R1 => (
            serde_json::json!({"kty": "EC", "crv": "P-384", "x": b64::encode(&ec.x), "y": b64::encode(&ec.y)}),
            JwsAlgorithm::Es384,
        ),
        (COSEAlgorithm::RS256, COSEKeyType::RSA(rsa)) => (
            serde_json::json!({"kty": "RSA", "n": b64::encode(&rsa.n), "e": b64::encode(&rsa.e)}),
            JwsAlgorithm::Rs256,
        ),
        _ => {
            return Err(
                "uses a key algorithm this node does not accept (ES256, ES384 or RS256)".into(),
            );
        }
    };
    let (public, _) = PublicKey::from_jwk_json(&jwk.to_string())
        .map_err(|e| format!("has a public key that {e}"))?;
    Ok((public, alg))
}

/// The AAGUID in a registration's authenticator data (bytes 37 to 53 of `authData`, present
/// because registration always carries attested credential data), unless all zeros.
fn aaguid_of(attestation_object: &[u8]) -> Option<String> {
    let value: serde_cbor_2::Value = serde_cbor_2::from_slice(attestation_object).ok()?;
    let serde_cbor_2::Value::Map(map) = value else {
        return None;
    };
    let auth_data = map.iter().find_map(|(key, value)| match (key, value) {
        (serde_cbor_2::Value::Text(key), serde_cbor_2::Value::Bytes(bytes))
            if key == "authData" =>
        {
            Some(bytes)
        }
        _ => None,
    })?;
    let aaguid = auth_data.get(37..53)?;
    if aaguid.iter().all(|b| *b == 0) {
        return None;
    }
    Uuid::from_slice(aaguid)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_on_an_ip_address_has_no_relying_party() {
        assert!(RelyingParty::for_public_url("http://127.0.0.1:8080").is_none());
        assert!(RelyingParty::for_public_url("http://[::1]:8080").is_none());
        assert!(RelyingParty::for_public_url("http://localhost:8080").is_some());
        assert!(RelyingParty::for_public_url("https://example.org").is_some());
    }

    #[test]
    fn creation_options_ask_for_a_discoverable_passkey_with_user_verification() {
        let party = RelyingParty::for_public_url("https://example.org").expect("party");
        let (options, _) = party
            .start_registration(&new_user_handle(), "example.org", vec![])
            .expect("options");
        let selection = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "example.org");
    }

    #[test]
    fn request_options_name_no_credential_and_require_user_verification() {
        let party = RelyingParty::for_public_url("https://example.org").expect("party");
        let (options, _) = party.start_authentication().expect("options");
        assert_eq!(options["publicKey"]["userVerification"], "required");
        assert_eq!(options["publicKey"]["rpId"], "example.org");
        let allowed = &options["publicKey"]["allowCredentials"];
        assert!(allowed.is_null() || allowed.as_array().is_some_and(Vec::is_empty));
    }

    #[test]
    fn an_attestation_object_that_is_not_cbor_has_no_aaguid() {
        assert_eq!(aaguid_of(b"not cbor"), None);
        assert_eq!(aaguid_of(&[0xa0]), None);
    }
}
