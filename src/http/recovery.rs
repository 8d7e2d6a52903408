//! `/api/v1/recovery/sets`: the metadata of the owner's recovery share sets. Listing needs a
//! session; recording a new set needs one within its step-up window. Shares never come here.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::SignedIn;
use crate::auth::credentials::Capability;
use crate::error::Problem;
use crate::recovery::sets;

/// The metadata of a set the browser has just made.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSetBody {
    set_id: String,
    threshold: u8,
    shares: u8,
    labels: Vec<String>,
}

/// `GET /api/v1/recovery/sets` (capability `recovery`) → `{"sets":[...]}`, newest first.
pub async fn list(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Recovery)?;
    let sets = sets::list(&state.store)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sets": sets })))
}

/// `POST /api/v1/recovery/sets` (capability `recovery`) → 201 with the recorded set; 409 when the id is taken or the
/// node keeps the most sets it will; 422 naming the field at fault.
pub async fn create(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<NewSetBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Recovery)?;
    signed_in.require_step_up(now)?;
    let set = sets::check(&body.set_id, body.threshold, body.shares, body.labels)?;
    let actor = client.actor();
    let recorded = state
        .store
        .run(move |c| sets::record(c, set, &actor, now))
        .await?;
    Ok(HttpResponse::Created().json(recorded))
}
