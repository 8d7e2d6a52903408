//! `/api/v1/enrollment`: the enrollment mode and window, and the requests of new devices that
//! a signed-in device approves or denies (pairing).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::SignedIn;
use crate::auth::credentials::{Capability, Principal};
use crate::auth::enrollment::{Approval, Mode, NewRequest, RequestView};
use crate::error::Problem;

/// `GET /api/v1/enrollment` → `{"mode","configured_mode","window"}`; open to anyone, so that a
/// new device knows whether to ask for approval.
pub async fn settings(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let current = state
        .enrollment
        .state(&state.store, now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(current))
}

/// The request to change the mode.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    mode: String,
}

/// `PUT /api/v1/enrollment` (capability `owner`, step-up) → 200 the settings. Only a session
/// that may act for the owner may weaken pairing, which lets the password alone unlock.
pub async fn set_mode(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<ModeBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Owner)?;
    signed_in.require_step_up(now)?;
    let mode = Mode::parse(&body.mode).ok_or_else(|| {
        Problem::invalid_field("mode", "mode must be \"open\", \"approval\" or \"window\".")
    })?;
    let current = state
        .enrollment
        .set_mode(&state.store, mode, &client.actor(), now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(current))
}

/// The request to open the window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    minutes: u32,
}

/// `POST /api/v1/enrollment/window` (capability `owner`, step-up) → 200 the settings.
pub async fn open_window(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<WindowBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Owner)?;
    signed_in.require_step_up(now)?;
    let current = state
        .enrollment
        .open_window(&state.store, body.minutes, &client.actor(), now)
        .await?;
    Ok(HttpResponse::Ok().json(current))
}

/// `DELETE /api/v1/enrollment/window` (capability `credentials`) → 200 the settings. Closing
/// only takes power away, so it needs no step-up.
pub async fn close_window(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    let current = state
        .enrollment
        .close_window(&state.store, &client.actor(), now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(current))
}

/// A new device's request. `public_key` is kept as raw JSON so that the JWK parser sees (and
/// refuses) duplicate members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    id: String,
    kind: String,
    label: String,
    public_key: Box<RawValue>,
}

/// `POST /api/v1/enrollment/requests` → 201 the request (with the node's nonce for the
/// comparison code); every socket that may manage credentials is shown it.
pub async fn request(
    state: web::Data<AppState>,
    client: Client,
    StrictJson(body): StrictJson<RequestBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let input = NewRequest {
        id: body.id,
        kind: body.kind,
        label: body.label,
        public_key_json: body.public_key.get().to_owned(),
    };
    let row = state
        .enrollment
        .request(
            &state.store,
            &state.credentials,
            input,
            &client.actor(),
            now,
        )
        .await?;
    let view = RequestView::of(&row, now);
    state.sessions.announce_enrollment_request(view.clone());
    Ok(HttpResponse::Created().json(view))
}

/// `GET /api/v1/enrollment/requests` (capability `credentials`) → `{"requests":[...]}`: those
/// waiting for an answer, oldest first.
pub async fn pending(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Credentials)?;
    let requests = state
        .enrollment
        .pending(&state.store, state.clock.now())
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "requests": requests })))
}

/// `GET /api/v1/enrollment/requests/{id}` → 200 the request and its status. The id is the new
/// device's secret (128 random bits or more), so it needs no session.
pub async fn status(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let view = state
        .enrollment
        .get(&state.store, &id, state.clock.now())
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The approving device's answer: what the new credential may do, and the owner key's binding
/// over it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    capabilities: Vec<String>,
    networks: Vec<String>,
    expires_at: Option<i64>,
    binding: String,
}

fn principal(signed_in: &SignedIn) -> Principal {
    Principal {
        credential_id: signed_in.session.credential_id.clone(),
        kid: signed_in.session.kid.clone(),
        capabilities: signed_in.session.capabilities,
    }
}

/// `POST /api/v1/enrollment/requests/{id}/approve` (capability `credentials`, step-up) → 201
/// the credential; 403 when it grants a capability the approving session lacks.
pub async fn approve(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
    StrictJson(body): StrictJson<ApprovalBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    signed_in.require_step_up(now)?;
    let approval = Approval {
        request_id: id.into_inner(),
        capabilities: body.capabilities,
        networks: body.networks,
        expires_at: body.expires_at,
        binding: body.binding,
    };
    let request_id = approval.request_id.clone();
    let row = state
        .enrollment
        .approve(
            &state.store,
            &state.credentials,
            approval,
            &principal(&signed_in),
            &client.actor(),
            now,
        )
        .await?;
    state
        .sessions
        .announce_enrollment_answer(&request_id, "approved");
    let view = super::credentials::CredentialView::of(row, &signed_in.session.credential_id);
    Ok(HttpResponse::Created().json(view))
}

/// `POST /api/v1/enrollment/requests/{id}/deny` (capability `credentials`) → 204.
pub async fn deny(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    signed_in.require(Capability::Credentials)?;
    state
        .enrollment
        .deny(
            &state.store,
            &id,
            &principal(&signed_in),
            &client.actor(),
            now,
        )
        .await?;
    state.sessions.announce_enrollment_answer(&id, "denied");
    Ok(HttpResponse::NoContent().finish())
}
