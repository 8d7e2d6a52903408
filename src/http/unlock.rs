//! `GET` and `POST /api/v1/unlock`: a new device fetches the PBES2 parameters, proves it knows
//! the password with the unlock verifier, and receives the wrapped key.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::SignedIn;
use crate::auth::credentials::Capability;
use crate::auth::unlock::{self, UnlockRequest};
use crate::error::Problem;

/// The unlock request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    unlock_verifier: String,
    /// A one-time unlock code: lets this unlock past the network and node-wide windows.
    #[serde(default)]
    unlock_code: Option<String>,
    /// The authenticator app's code, when TOTP is on (ignored when it is off).
    #[serde(default)]
    totp: Option<String>,
    /// A TOTP recovery code, instead of `totp`.
    #[serde(default)]
    recovery_code: Option<String>,
}

/// 200 `{"alg","p2s","p2c","kid"}`; 404 before a claim.
pub async fn parameters(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let parameters = unlock::parameters(&state.store).await?;
    Ok(HttpResponse::Ok().json(parameters))
}

/// 200 `{"wrapped_key","kid"}` (and `recovery_codes_left` after a recovery code); 401 for a
/// wrong verifier or code, or a missing or wrong TOTP code; 429 with `Retry-After` when
/// throttled. A session with the `owner` capability, stepped up in the last five minutes, stands
/// in for the TOTP code.
pub async fn unlock(
    state: web::Data<AppState>,
    client: Client,
    signed_in: Option<SignedIn>,
    StrictJson(body): StrictJson<UnlockBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    // Pairing: outside `open` mode only an enrolled device (a session that may act for the
    // owner) or an open window gets the wrapped key. The refusal counts as no failure.
    let enrolled = signed_in
        .as_ref()
        .is_some_and(|s| s.require(Capability::Owner).is_ok());
    if !enrolled {
        state
            .enrollment
            .state(&state.store, now)
            .await
            .map_err(|e| Problem::internal(&e))?
            .admits_password_unlock()?;
    }
    // Only a session stepped up in the last five minutes stands in for the code: a token
    // alone (taken from a device) and the password must not open the owner key.
    let owner_session =
        signed_in.is_some_and(|s| s.require(Capability::Owner).is_ok() && s.session.is_fresh(now));
    let request = UnlockRequest {
        verifier: &body.unlock_verifier,
        unlock_code: body.unlock_code.as_deref(),
        totp: body.totp,
        recovery_code: body.recovery_code,
        owner_session,
    };
    let unlocked = unlock::unlock(&state.unlock_context(), request, client.actor(), now).await?;
    Ok(HttpResponse::Ok().json(unlocked))
}
