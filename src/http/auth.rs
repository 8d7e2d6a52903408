//! `/api/v1/auth/*`: challenges, sign-in with a login assertion or a pasted signature, and
//! step-up.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::{SignedIn, session_cookie};
use crate::auth::challenge::CHALLENGE_LIFETIME;
use crate::auth::login;
use crate::error::Problem;

/// A challenge to sign: the nonce for an assertion, and the message a pasted signature signs;
/// with the node's proof over it when the client sent a nonce of its own.
#[derive(Debug, Serialize)]
pub struct ChallengeBody {
    pub nonce: String,
    pub message: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_signature: Option<String>,
}

/// What a client may send when asking for a challenge: its own nonce, for the node's proof.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    client_nonce: String,
}

/// The largest challenge request body, in bytes.
const MAX_CHALLENGE_BODY: usize = 1024;

/// `POST /api/v1/auth/challenge` → 200 `{"nonce","message","expires_in"}`. With a JSON body
/// `{"client_nonce"}` (16 to 128 base64url characters) the answer also carries
/// `node_signature`, the node key's proof over both nonces (mutual authentication).
pub async fn challenge(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let client_nonce = read_client_nonce(&request, payload).await?;
    let now = state.clock.now();
    if client_nonce.is_some() {
        // Each proof is a signature anyone can ask for: they are counted (the client address
        // is read only then, so a plain challenge costs what it did).
        let client = Client::of(&request)?;
        state.node_proofs.admit(client.ip, now).map_err(|limited| {
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "node-proofs-rate-limited",
                "Too many challenges with a client nonce",
                format!(
                    "The node signs a limited number of proofs per minute; retry after {} \
                     seconds, or ask for a challenge without a client nonce.",
                    limited.retry_after
                ),
            );
            problem.retry_after = Some(limited.retry_after);
            problem.scope = Some(limited.scope);
            problem
        })?;
    }
    let nonce = state
        .challenges
        .issue(now, crate::auth::challenge::Purpose::Rest);
    let message = login::paste_message(state.public_url.as_str(), &nonce);
    let node_signature = client_nonce.map(|client_nonce| {
        state
            .node_key
            .sign_proof(state.public_url.as_str(), &nonce, &client_nonce, now)
    });
    Ok(HttpResponse::Ok().json(ChallengeBody {
        nonce,
        message,
        expires_in: CHALLENGE_LIFETIME,
        node_signature,
    }))
}

/// The client nonce of a challenge request: none for an empty body (what every client sent
/// before mutual authentication), else a strict JSON `{"client_nonce"}`.
async fn read_client_nonce(
    request: &actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<Option<String>, Problem> {
    let declared = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared == Some(0) {
        return Ok(None);
    }
    let body = super::json::read_body(payload, MAX_CHALLENGE_BODY).await?;
    if body.is_empty() {
        return Ok(None);
    }
    let content_type = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The body must be JSON",
            "A challenge request with a body must be application/json: {\"client_nonce\"}.",
        ));
    }
    let parsed: ChallengeRequest = super::json::parse(&body)?;
    if !crate::jose::node_key::is_client_nonce(&parsed.client_nonce) {
        return Err(Problem::invalid_field(
            "client_nonce",
            "The client_nonce must be 16 to 128 base64url characters.",
        ));
    }
    Ok(Some(parsed.client_nonce))
}

/// A sign-in or step-up request: `{"assertion"}`, or a pasted signature
/// `{"kid","nonce","signature","format"}`, never both nor part of one. At sign-in,
/// `cookie: true` asks for the session as an HttpOnly cookie instead of a bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBody {
    #[serde(default, deserialize_with = "crate::jose::present")]
    cookie: Option<bool>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    assertion: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    kid: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    nonce: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    signature: Option<String>,
    #[serde(default, deserialize_with = "crate::jose::present")]
    format: Option<String>,
}

impl ProofBody {
    fn proof(&self) -> Result<login::Proof<'_>, Problem> {
        match (
            &self.assertion,
            &self.kid,
            &self.nonce,
            &self.signature,
            &self.format,
        ) {
            (Some(assertion), None, None, None, None) => Ok(login::Proof::Assertion(assertion)),
            (None, Some(kid), Some(nonce), Some(signature), Some(format)) => {
                Ok(login::Proof::Pasted(login::PastedSignature {
                    kid,
                    nonce,
                    signature,
                    format,
                }))
            }
            (Some(_), ..) => Err(Problem::invalid_field(
                "assertion",
                "An assertion comes alone, without kid, nonce, signature or format.",
            )),
            _ => Err(Problem::invalid_field(
                "assertion",
                "Send an assertion, or a pasted signature with kid, nonce, signature and format.",
            )),
        }
    }
}

/// `POST /api/v1/auth/login` → 200 `{"access_token","token_type","expires_in","session_id"}`.
pub async fn login(
    state: web::Data<AppState>,
    client: Client,
    StrictJson(body): StrictJson<ProofBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let actor = client.actor();
    let proof = body.proof()?;
    let principal = login::sign_in(&state.login_context(), proof, None, &actor, now).await?;
    let (session, token) = state
        .sessions
        .create(&state.store, &principal, &actor, "http", now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let expires_in = session.ends_at(&state.sessions.policy) - now;
    if body.cookie == Some(true) {
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
    StrictJson(body): StrictJson<ProofBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let actor = client.actor();
    if body.cookie.is_some() {
        return Err(Problem::invalid_field(
            "cookie",
            "A step-up keeps the session it has; cookie belongs to sign-in.",
        ));
    }
    let proof = body.proof()?;
    step_up_with(&state, &signed_in, proof, &actor, now).await
}

/// Steps the session up with `proof`, which must come from the session's own credential:
/// **204**, or **401** `invalid-assertion`.
pub(super) async fn step_up_with(
    state: &AppState,
    signed_in: &SignedIn,
    proof: login::Proof<'_>,
    actor: &crate::audit::Actor,
    now: i64,
) -> Result<HttpResponse, Problem> {
    let principal = login::sign_in(&state.login_context(), proof, None, actor, now).await?;
    if principal.credential_id != signed_in.session.credential_id {
        return Err(login::LoginError::Rejected(
            "is signed by another credential than the session's".into(),
        )
        .into());
    }
    state
        .sessions
        .step_up(&state.store, &signed_in.session.id, actor, now)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::NoContent().finish())
}
