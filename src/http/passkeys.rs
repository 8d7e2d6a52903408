//! `/api/v1/passkeys*` and `/api/v1/auth/passkey*`: registering a passkey from a signed-in
//! browser, signing in with one (and receiving its PRF copy of the owner key), and stepping a
//! session up with the passkey it signed in with.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::{SignedIn, session_cookie};
use crate::auth::credential_changes::CredentialFields;
use crate::auth::credentials::Capability;
use crate::auth::login::{self, Proof};
use crate::auth::passkeys::{NewPasskey, PasskeyAssertion};
use crate::error::Problem;

/// The largest passkey request: a registration answer may carry an attestation certificate
/// chain.
const MAX_PASSKEY_BODY: usize = 64 * 1024;

/// `POST /api/v1/passkeys/registration-options` (capability `credentials`, step-up) → 200
/// `{"registration_id","options"}`; `options` is what `parseCreationOptionsFromJSON` reads.
pub async fn registration_options(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    signed_in.require_step_up(now)?;
    let (registration_id, options) = state
        .passkeys
        .start_registration(&state.store, &signed_in.session.id, now)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "registration_id": registration_id,
        "options": options,
    })))
}

/// A passkey registration: the WebAuthn answer, the credential's fields, the owner key's
/// binding and the optional PRF copy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPasskeyBody {
    registration_id: String,
    credential: Value,
    label: String,
    capabilities: Vec<String>,
    networks: Vec<String>,
    expires_at: Option<i64>,
    binding: String,
    #[serde(default, deserialize_with = "crate::jose::present")]
    prf_wrapped_key: Option<String>,
}

/// Whether `value` holds, anywhere, a `prf` object with `results`.
fn holds_prf_results(value: &Value) -> bool {
    match value {
        Value::Object(members) => members.iter().any(|(name, member)| {
            (name == "prf" && member.get("results").is_some()) || holds_prf_results(member)
        }),
        Value::Array(items) => items.iter().any(holds_prf_results),
        _ => false,
    }
}

/// Refuses an answer that carries a PRF output anywhere: it must never leave the browser.
fn refuse_prf_output(credential: &Value) -> Result<(), Problem> {
    if holds_prf_results(credential) {
        return Err(Problem::invalid_field(
            "credential",
            "credential carries a PRF output (clientExtensionResults.prf.results): it must stay \
             in the browser; send the answer without it.",
        ));
    }
    Ok(())
}

/// The proof a passkey sign-in or step-up carries, once the node can use passkeys and the
/// answer holds no PRF output.
fn passkey_proof<'a>(
    state: &AppState,
    sign_in_id: &'a str,
    answer: &'a Value,
) -> Result<Proof<'a>, Problem> {
    state.passkeys.require_available()?;
    refuse_prf_output(answer)?;
    Ok(Proof::Passkey(PasskeyAssertion { sign_in_id, answer }))
}

/// `POST /api/v1/passkeys` (capability `credentials`, step-up) → 201 the credential.
pub async fn register(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<NewPasskeyBody, MAX_PASSKEY_BODY>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    signed_in.require_step_up(now)?;
    refuse_prf_output(&body.credential)?;
    let input = NewPasskey {
        registration_id: body.registration_id,
        answer: body.credential,
        fields: CredentialFields {
            label: body.label,
            capabilities: body.capabilities,
            networks: body.networks,
            expires_at: body.expires_at,
        },
        binding: body.binding,
        prf_wrapped_key: body.prf_wrapped_key,
    };
    let row = state
        .passkeys
        .register(
            &state.store,
            &state.credentials,
            &signed_in.session.id,
            input,
            &client.actor(),
            now,
        )
        .await?;
    let view =
        super::credentials::view_with_passkeys(&state, vec![row], &signed_in.session.credential_id)
            .await?
            .into_iter()
            .next();
    Ok(HttpResponse::Created().json(view))
}

/// `POST /api/v1/passkeys/sign-in-options` → 200 `{"sign_in_id","options"}`; `options` is
/// what `parseRequestOptionsFromJSON` reads (no credential named: the browser offers its own).
pub async fn sign_in_options(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let (sign_in_id, options) = state.passkeys.start_sign_in(state.clock.now())?;
    Ok(HttpResponse::Ok().json(json!({
        "sign_in_id": sign_in_id,
        "options": options,
    })))
}

/// A passkey sign-in: the ceremony's id and the assertion; `unlock: true` asks for the
/// passkey's PRF copy of the owner key, `cookie: true` for an HttpOnly session cookie.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeySignInBody {
    sign_in_id: String,
    credential: Value,
    #[serde(default, deserialize_with = "crate::jose::present")]
    unlock: Option<bool>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    cookie: Option<bool>,
}

/// `POST /api/v1/auth/passkey` → 200 `{"access_token","token_type","expires_in","session_id",
/// "credential_id"}`, plus `"prf":{"wrapped_key","kid"}` or `"prf":null` when `unlock` was asked.
pub async fn sign_in(
    state: web::Data<AppState>,
    client: Client,
    StrictJson(body): StrictJson<PasskeySignInBody, MAX_PASSKEY_BODY>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let actor = client.actor();
    let proof = passkey_proof(&state, &body.sign_in_id, &body.credential)?;
    let principal = login::sign_in(&state.login_context(), proof, None, &actor, now).await?;
    let (session, token) = state
        .sessions
        .create(&state.store, &principal, &actor, "passkey", now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let expires_in = session.ends_at(&state.sessions.policy) - now;
    let mut answer = json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "session_id": session.id,
        "credential_id": principal.credential_id,
    });
    if body.unlock == Some(true) {
        let copy = state
            .passkeys
            .release_copy(&state.store, &principal, &actor, now)
            .await?;
        answer["prf"] = serde_json::to_value(copy).unwrap_or(Value::Null);
    }
    if body.cookie == Some(true) {
        answer["token_type"] = "cookie".into();
        return Ok(HttpResponse::Ok()
            .cookie(session_cookie(&state.public_url, Some(&token)))
            .json(answer));
    }
    answer["access_token"] = token.into();
    Ok(HttpResponse::Ok().json(answer))
}

/// A step-up with a passkey: the ceremony's id and the assertion.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyReauthBody {
    sign_in_id: String,
    credential: Value,
}

/// `POST /api/v1/auth/passkey/reauth` → 204: the session, which a passkey signed in, is freshly
/// authenticated for five minutes by a new assertion of that passkey.
pub async fn reauth(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<PasskeyReauthBody, MAX_PASSKEY_BODY>,
) -> Result<HttpResponse, Problem> {
    let proof = passkey_proof(&state, &body.sign_in_id, &body.credential)?;
    super::auth::step_up_with(
        &state,
        &signed_in,
        proof,
        &client.actor(),
        state.clock.now(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prf_output_is_found_wherever_the_answer_carries_it() {
        let top = json!({"clientExtensionResults": {"prf": {"results": {"first": "AA"}}}});
        let nested = json!({"response": {"clientExtensionResults": {"prf": {"results": {}}}}});
        let in_array = json!({"x": [{"prf": {"results": null}}]});
        for answer in [top, nested, in_array] {
            assert!(holds_prf_results(&answer), "{answer}");
            assert!(refuse_prf_output(&answer).is_err());
        }
        let enabled_only = json!({"clientExtensionResults": {"prf": {"enabled": true}}});
        assert!(!holds_prf_results(&enabled_only));
        assert!(refuse_prf_output(&enabled_only).is_ok());
    }
}
