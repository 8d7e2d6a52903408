//! `POST /api/v1/unlock-codes`: a signed-in device makes a one-time unlock code for a new
//! device, which lets that device's password unlock past the node-wide throttle.

use actix_web::{HttpResponse, web};

use super::AppState;
use super::client::Client;
use super::session_auth::SignedIn;
use crate::auth::credentials::Capability;
use crate::auth::unlock_codes::{self, CODE_LIFETIME};
use crate::error::Problem;

/// 201 `{"code","expires_in"}`. Needs a session within its step-up window. Takes no body.
pub async fn create(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Owner)?;
    signed_in.require_step_up(now)?;
    let session_id = signed_in.session.id.clone();
    let actor = client.actor();
    let minted = state
        .store
        .run(move |c| unlock_codes::mint(c, Some(&session_id), &actor, now))
        .await
        .map_err(|e| Problem::internal(&e))?;
    state.live_codes.add(&minted);
    Ok(HttpResponse::Created().json(serde_json::json!({
        "code": minted.code.display(),
        "expires_in": CODE_LIFETIME,
    })))
}
