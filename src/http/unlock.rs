//! `GET` and `POST /api/v1/unlock`: a new device fetches the PBES2 parameters, proves it knows
//! the password with the unlock verifier, and receives the wrapped key.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use crate::auth::unlock;
use crate::error::Problem;

/// The unlock request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    unlock_verifier: String,
    /// A one-time unlock code: lets this unlock past the network and node-wide windows.
    #[serde(default)]
    unlock_code: Option<String>,
}

/// 200 `{"alg","p2s","p2c","kid"}`; 404 before a claim.
pub async fn parameters(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let parameters = unlock::parameters(&state.store).await?;
    Ok(HttpResponse::Ok().json(parameters))
}

/// 200 `{"wrapped_key","kid"}`; 401 for a wrong verifier or code; 429 with `Retry-After` when
/// throttled.
pub async fn unlock(
    state: web::Data<AppState>,
    client: Client,
    StrictJson(body): StrictJson<UnlockBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let unlocked = unlock::unlock(
        &state.store,
        &state.attempts,
        &state.live_codes,
        &body.unlock_verifier,
        body.unlock_code.as_deref(),
        client.actor(),
        now,
    )
    .await?;
    Ok(HttpResponse::Ok().json(unlocked))
}
