//! Who is signed in: the session behind a bearer token or the session cookie, with the CSRF
//! rule for cookies (a state-changing request must come from the node's own origin) and the
//! step-up check for sensitive operations.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, HttpRequest, dev, web};

use super::AppState;
use super::client::Client;
use crate::audit::AuditEvent;
use crate::auth::credentials::Capability;
use crate::auth::sessions::SessionInfo;
use crate::config::PublicUrl;
use crate::error::Problem;

/// The session cookie's name: with the `__Host-` prefix when the node is served over https.
pub fn cookie_name(public_url: &PublicUrl) -> &'static str {
    if public_url.is_https() {
        "__Host-siteid-session"
    } else {
        "siteid-session"
    }
}

/// A session cookie holding `token`, or an expired one when `token` is `None` (sign-out).
pub fn session_cookie(public_url: &PublicUrl, token: Option<&str>) -> Cookie<'static> {
    let mut cookie = Cookie::build(cookie_name(public_url), token.unwrap_or("").to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(public_url.is_https())
        .finish();
    if token.is_none() {
        cookie.make_removal();
    }
    cookie
}

/// The signed-in session of a request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: SessionInfo,
    pub via_cookie: bool,
}

impl SignedIn {
    /// Refuses unless the session's credential has `capability`: 403 `insufficient-capability`.
    pub fn require(&self, capability: Capability) -> Result<(), Problem> {
        if self.session.capabilities.contains(capability) {
            return Ok(());
        }
        Err(Problem::insufficient_capability(capability.as_str()))
    }

    /// Refuses unless the session stepped up (or signed in) within the last five minutes.
    pub fn require_step_up(&self, now: i64) -> Result<(), Problem> {
        if self.session.is_fresh(now) {
            return Ok(());
        }
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "step-up-required",
            "Fresh authentication required",
            "This operation needs a fresh sign-in: POST a new assertion to /api/v1/auth/reauth \
             (a passkey's session: /api/v1/auth/passkey/reauth) and retry.",
        ))
    }
}

/// 401 for a request without a live session.
pub fn unauthenticated() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "Not signed in",
        "This needs a session: send `Authorization: Bearer <access_token>` or the session cookie. \
         The session may have ended, been revoked, or never existed.",
    )
}

/// The bearer token or session cookie of a request, and whether it came from the cookie.
pub fn presented_token(request: &HttpRequest, public_url: &PublicUrl) -> Option<(String, bool)> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return None;
        }
        return Some((token.trim().to_owned(), false));
    }
    request
        .cookie(cookie_name(public_url))
        .map(|cookie| (cookie.value().to_owned(), true))
        .filter(|(token, _)| !token.is_empty())
}

/// Whether a cookie-authenticated request may change state: safe methods always, others only
/// with an `Origin` equal to the node's own.
fn origin_allowed(request: &HttpRequest, public_url: &PublicUrl) -> bool {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return true;
    }
    request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|origin| origin == public_url.as_str())
}

/// The signed-in session of a request that only ends it: signing out is allowed from outside
/// the credential's networks, since it can only take power away.
#[derive(Debug, Clone)]
pub struct SigningOut(pub SignedIn);

impl FromRequest for SigningOut {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        ready(signed_in(request, NetworkCheck::Skip).map(SigningOut))
    }
}

/// Whether a request must come from inside its credential's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NetworkCheck {
    Enforce,
    Skip,
}

impl FromRequest for SignedIn {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        ready(signed_in(request, NetworkCheck::Enforce))
    }
}

/// A session with the `owner` capability that stepped up within the last five minutes, checked
/// before the body is read (a rotation's body may be large; the TOTP changes need no body first).
pub struct SteppedUpOwner(pub SignedIn);

impl FromRequest for SteppedUpOwner {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        let checked = signed_in(request, NetworkCheck::Enforce).and_then(|signed_in| {
            let now = request
                .app_data::<web::Data<AppState>>()
                .map(|state| state.clock.now())
                .ok_or_else(|| Problem::internal(&"application state missing"))?;
            signed_in.require(Capability::Owner)?;
            signed_in.require_step_up(now)?;
            Ok(SteppedUpOwner(signed_in))
        });
        ready(checked)
    }
}

/// Authenticates a request's session: its token, origin, credential and (unless skipped) the
/// credential's networks.
fn signed_in(request: &HttpRequest, network_check: NetworkCheck) -> Result<SignedIn, Problem> {
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return Err(Problem::internal(&"application state missing"));
    };
    let Some((token, via_cookie)) = presented_token(request, &state.public_url) else {
        return Err(unauthenticated());
    };
    session_of(request, state, &token, via_cookie, network_check)
}

/// The signed-in session of a form the page filled with its access token (the IndieAuth
/// consent form, whose answer is a navigation to the client): checked as a bearer token.
pub fn signed_in_by_form(request: &HttpRequest, token: &str) -> Result<SignedIn, Problem> {
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return Err(Problem::internal(&"application state missing"));
    };
    session_of(request, state, token, false, NetworkCheck::Enforce)
}

/// The session behind `token`, used while its credential lives and from where it may be used.
fn session_of(
    request: &HttpRequest,
    state: &AppState,
    token: &str,
    via_cookie: bool,
    network_check: NetworkCheck,
) -> Result<SignedIn, Problem> {
    if via_cookie && !origin_allowed(request, &state.public_url) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "cross-origin-request",
            "Cross-origin request refused",
            "A request that changes state with the session cookie must come from this node's own origin.",
        ));
    }
    let now = state.clock.now();
    let client = Client::of(request)?;
    let actor = client.actor();
    // An unknown token is not counted as a failed sign-in: 256 random bits cannot be
    // guessed, and counting would let a browser's stale tabs throttle its owner's sign-in.
    let Some((mut session, persist)) = state.sessions.authenticate(token, now) else {
        return Err(unauthenticated());
    };
    // A session may be used only while its credential lives, and only from where it may be
    // used.
    let Some(credential) = state
        .credentials
        .get(&session.credential_id)
        .filter(|credential| !credential.has_expired(now))
    else {
        return Err(unauthenticated());
    };
    if network_check == NetworkCheck::Enforce && !credential.allows_address(Some(client.ip)) {
        let network = crate::auth::throttle::network_key(Some(&client.ip.to_string()));
        let key = format!("network:{}:{network}", session.credential_id);
        let event = AuditEvent::CredentialNetworkRefused {
            credential_id: session.credential_id.clone(),
            session_id: Some(session.id.clone()),
        };
        state.attempts.record_limited(&key, event, &actor, now);
        return Err(Problem::network_not_allowed());
    }
    if persist && let Some(state) = request.app_data::<web::Data<AppState>>().cloned() {
        let id = session.id.clone();
        actix_web::rt::spawn(async move {
            state
                .sessions
                .persist_last_seen(&state.store, &id, now)
                .await;
        });
    }
    // A session may do no more than its credential may now, whatever its row says.
    session.capabilities = session.capabilities.intersection(credential.capabilities);
    Ok(SignedIn {
        session,
        via_cookie,
    })
}
