//! `/api/v1/auth/*`: challenges, sign-in with a login assertion, and step-up.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::{SignedIn, session_cookie};
use crate::auth::challenge::CHALLENGE_LIFETIME;
use crate::auth::login;
use crate::error::Problem;

/// A challenge to sign.
#[derive(Debug, Serialize)]
pub struct ChallengeBody {
    pub nonce: String,
    pub expires_in: i64,
}

/// `POST /api/v1/auth/challenge` → 200 `{"nonce","expires_in"}`.
pub async fn challenge(state: web::Data<AppState>) -> HttpResponse {
    let nonce = state
        .challenges
        .issue(state.clock.now(), crate::auth::challenge::Purpose::Rest);
    HttpResponse::Ok().json(ChallengeBody {
        nonce,
        expires_in: CHALLENGE_LIFETIME,
    })
}

/// The sign-in request. `cookie: true` asks for the session as an HttpOnly cookie instead of a
/// bearer token in the body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    assertion: String,
    #[serde(default)]
    cookie: bool,
}

/// The step-up request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReauthBody {
    assertion: String,
}

/// `POST /api/v1/auth/login` → 200 `{"access_token","token_type","expires_in","session_id"}`.
pub async fn login(
    state: web::Data<AppState>,
    client: Client,
    StrictJson(body): StrictJson<LoginBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let actor = client.actor();
    let principal =
        login::sign_in(&state.login_context(), &body.assertion, None, &actor, now).await?;
    let (session, token) = state
        .sessions
        .create(&state.store, &principal, &actor, "http", now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let expires_in = session.ends_at(&state.sessions.policy) - now;
    if body.cookie {
        return Ok(HttpResponse::Ok()
            .cookie(session_cookie(&state.public_url, Some(&token)))
            .json(serde_json::json!({
                "token_type": "cookie",
                "expires_in": expires_in,
                "session_id": session.id,
            })));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "session_id": session.id,
    })))
}

/// `POST /api/v1/auth/reauth` → 204: the session is freshly authenticated for five minutes.
pub async fn reauth(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<ReauthBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let actor = client.actor();
    let principal =
        login::sign_in(&state.login_context(), &body.assertion, None, &actor, now).await?;
    if principal.credential_id != signed_in.session.credential_id {
        return Err(login::LoginError::Rejected(
            "is signed by another key than the session's".into(),
        )
        .into());
    }
    state
        .sessions
        .step_up(&state.store, &signed_in.session.id, &actor, now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::NoContent().finish())
}
