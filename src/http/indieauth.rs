//! The IndieAuth endpoints (living standard, revision of 11 July 2024): the metadata document,
//! the authorization endpoint (the consent page, and profile-only code redemption), the consent
//! form, the token, introspection, revocation and userinfo endpoints, WebFinger, and the owner's
//! grants and profile under /api/v1. The OAuth endpoints answer errors as RFC 6749 §5.2 JSON
//! (`application/json` with `error`), which OAuth clients read, not as problem+json; the pages
//! answer errors as HTML, never redirecting to a redirect URL that did not check out.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::assets;
use super::client::Client;
use super::json::{BODY_TIMEOUT, StrictJson};
use super::pages::{AppFields, app_fields, html_with_policy, render};
use super::session_auth::{SignedIn, signed_in_by_form};
use crate::auth::credentials::Capability;
use crate::error::Problem;
use crate::indieauth::client::{ClientDisplay, ClientError};
use crate::indieauth::grants::{
    self, CredentialCheck, DEFAULT_GRANT_LIFETIME, Endpoint, GRANT_LIFETIMES, GrantError,
    Redemption, Refresh,
};
use crate::indieauth::profile::OwnerProfile;
use crate::indieauth::request::{
    self, AuthorizationRequest, ClientAndRedirect, OAuthError, Params, Scopes,
};
use crate::indieauth::{SCOPES_SUPPORTED, issuer, metadata_url};
use crate::outbound::FetchError;
use crate::store::StoreError;
use crate::store::indieauth::GrantRow;

/// The authorization endpoint's path.
pub const AUTHORIZATION_PATH: &str = "/indieauth/authorize";
/// The consent form's path.
pub const CONSENT_PATH: &str = "/indieauth/consent";
/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/indieauth/token";
/// The introspection endpoint's path.
pub const INTROSPECTION_PATH: &str = "/indieauth/introspect";
/// The revocation endpoint's path.
pub const REVOCATION_PATH: &str = "/indieauth/revoke";
/// The userinfo endpoint's path.
pub const USERINFO_PATH: &str = "/indieauth/userinfo";
/// The largest form body read, in bytes.
const MAX_FORM_BODY: usize = 32 * 1024;
/// The longest authorization request query, in bytes.
const MAX_QUERY_LEN: usize = 8 * 1024;

// ----- Responses -------------------------------------------------------------------------------

/// A JSON answer of an OAuth endpoint: never cached, readable from any origin.
fn oauth_json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(body.to_string())
}

/// An RFC 6749 §5.2 error: 400 with `error` and `error_description`.
fn oauth_error(error: &OAuthError) -> HttpResponse {
    oauth_json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": error.error, "error_description": error.description }),
    )
}

/// An RFC 6750 §3 refusal of a bearer token: 401 (or 403 for `insufficient_scope`) with a
/// `WWW-Authenticate` challenge; without a token, no error code (§3.1).
fn bearer_refusal(error: Option<&'static str>, description: &str) -> HttpResponse {
    let status = if error == Some("insufficient_scope") {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    let challenge = match error {
        Some(code) => format!("Bearer realm=\"siteid\", error=\"{code}\""),
        None => "Bearer realm=\"siteid\"".to_owned(),
    };
    let body = match error {
        Some(code) => json!({ "error": code, "error_description": description }),
        None => json!({ "error_description": description }),
    };
    let mut response = oauth_json(status, &body);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        let headers = response.headers_mut();
        headers.insert(header::WWW_AUTHENTICATE, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
    response
}

/// A problem inside the node, as an OAuth error (`server_error`, 500).
fn oauth_server_error(cause: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %cause, "an IndieAuth request failed inside the node");
    oauth_json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({ "error": "server_error", "error_description": "the node failed; try again" }),
    )
}

#[derive(Template)]
#[template(path = "indieauth_error.html")]
struct ErrorPage {
    title: &'static str,
    css: String,
    heading: &'static str,
    message: String,
}

/// An HTML error page: what went wrong, and no redirect anywhere.
fn error_page(
    state: &AppState,
    status: StatusCode,
    heading: &'static str,
    message: String,
) -> HttpResponse {
    let page = ErrorPage {
        title: "Sign-in request refused",
        css: assets::url("css/app.css"),
        heading,
        message,
    };
    match render(&page) {
        Ok(body) => {
            let mut response = html_with_policy(state, body, None);
            *response.status_mut() = status;
            response
        }
        Err(problem) => HttpResponse::from_error(problem),
    }
}

/// CORS preflight of the endpoints browser clients call.
pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "authorization, content-type, accept",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

// ----- Discovery -------------------------------------------------------------------------------

/// The metadata document (§4.1.1, RFC 8414).
pub fn metadata_body(state: &AppState) -> serde_json::Value {
    let base = state.public_url.as_str();
    json!({
        "issuer": issuer(&state.public_url),
        "authorization_endpoint": format!("{base}{AUTHORIZATION_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "introspection_endpoint": format!("{base}{INTROSPECTION_PATH}"),
        "introspection_endpoint_auth_methods_supported": ["Bearer"],
        "revocation_endpoint": format!("{base}{REVOCATION_PATH}"),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "userinfo_endpoint": format!("{base}{USERINFO_PATH}"),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "service_documentation": "https://indieauth.spec.indieweb.org/20240711/",
    })
}

/// `GET /.well-known/oauth-authorization-server`: the metadata, CORS `*`.
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(metadata_body(&state).to_string())
}

/// The `Link` header of the home page: the metadata, and the legacy endpoint links.
pub fn home_link_header(state: &AppState) -> String {
    let base = state.public_url.as_str();
    format!(
        "<{}>; rel=\"indieauth-metadata\", <{base}{AUTHORIZATION_PATH}>; \
         rel=\"authorization_endpoint\", <{base}{TOKEN_PATH}>; rel=\"token_endpoint\"",
        metadata_url(&state.public_url)
    )
}

#[derive(Debug, Deserialize)]
pub struct WebfingerQuery {
    resource: Option<String>,
}

/// `GET /.well-known/webfinger?resource=`: a JRD (RFC 7033) for `acct:<anything>@<host>` or the
/// profile URL, linking the issuer, `me` and the metadata; an operator's `webfinger` file in the
/// well-known directory wins.
pub async fn webfinger(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<WebfingerQuery>,
) -> Result<HttpResponse, Problem> {
    if state.well_known_dir.lookup("webfinger").is_some() {
        let name = web::Path::from("webfinger".to_owned());
        return super::well_known::directory_file(state, request, name).await;
    }
    let resource = query
        .into_inner()
        .resource
        .filter(|resource| !resource.is_empty())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "webfinger-resource-missing",
                "No resource asked for",
                "WebFinger needs a resource parameter (RFC 7033 §4.2).",
            )
        })?;
    let me = issuer(&state.public_url);
    let host = state.public_url.host_with_port();
    let ours = resource
        .strip_prefix("acct:")
        .and_then(|account| account.rsplit_once('@'))
        .is_some_and(|(user, at)| !user.is_empty() && at.eq_ignore_ascii_case(&host))
        || resource == me
        || resource == state.public_url.as_str();
    if !ours {
        return Err(Problem::not_found());
    }
    let body = json!({
        "subject": resource,
        "aliases": [me],
        "links": [
            { "rel": "http://openid.net/specs/connect/1.0/issuer", "href": me },
            { "rel": "me", "href": me },
            { "rel": "indieauth-metadata", "href": metadata_url(&state.public_url) },
            { "rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": me },
        ],
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jrd+json"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body.to_string()))
}

// ----- The authorization endpoint and the consent page ------------------------------------------

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    app: AppFields,
    me: String,
    client_name: String,
    client_id: String,
    client_url: Option<String>,
    logo: Option<String>,
    fetched: bool,
    redirect_host: String,
    request: String,
    scopes: Vec<ScopeChoice>,
    lifetimes: Vec<(i64, &'static str)>,
    default_lifetime: i64,
}

struct ScopeChoice {
    name: String,
    description: &'static str,
}

/// What a scope lets a client do, in words.
fn scope_description(name: &str) -> &'static str {
    match name {
        "profile" => "see your name, photo and home page",
        "email" => "see your email address",
        "create" => "publish new posts (Micropub)",
        "update" => "change your posts",
        "delete" => "delete your posts",
        "undelete" => "restore deleted posts",
        "media" => "upload files to your media endpoint",
        "draft" => "create drafts only",
        "read" => "read your feeds or channels",
        "follow" => "follow and unfollow feeds",
        "mute" => "mute and unmute",
        "block" => "block and unblock",
        "channels" => "manage your reader channels",
        _ => "a permission this node does not know: the client explains it",
    }
}

/// Why an authorization request stopped before the node may redirect.
struct Stop {
    status: StatusCode,
    heading: &'static str,
    message: String,
}

impl Stop {
    fn bad(message: String) -> Self {
        Stop {
            status: StatusCode::BAD_REQUEST,
            heading: "This sign-in request is not valid",
            message,
        }
    }
}

/// A request that checked out as far as the client lookup.
struct CheckedClient {
    client: ClientAndRedirect,
    display: ClientDisplay,
}

/// The client and redirect URL checks, and the client lookup: failures are pages.
async fn check_client(
    state: &web::Data<AppState>,
    params: &Params,
    requester: Option<std::net::IpAddr>,
) -> Result<CheckedClient, Stop> {
    let client =
        request::client_and_redirect(params).map_err(|e| Stop::bad(format!("The request {e}.")))?;
    let now = state.clock.now();
    let fetcher = state.clone();
    let (client_id, client_url) = (client.client_id.clone(), client.client_url.clone());
    let display = web::block(move || {
        fetcher
            .indieauth_clients
            .display(&client_id, &client_url, requester, now)
    })
    .await
    .map_err(|e| Stop {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        heading: "The node failed",
        message: format!("Looking the application up failed inside the node: {e}."),
    })?
    .map_err(|e| match e {
        ClientError::Busy { .. } => Stop {
            status: StatusCode::TOO_MANY_REQUESTS,
            heading: "Too many sign-in requests",
            message: format!("The application {} {e}.", client.client_id),
        },
        ClientError::Fetch(FetchError::Refused { .. }) => {
            // The address stays in the log: the page must not tell strangers what the node's
            // resolver answers for internal names.
            tracing::info!(client_id = %client.client_id, error = %e, "a client lookup was refused");
            Stop::bad(format!(
                "The application {} could not be verified: its address is not one this node \
                 fetches from (a loopback, private or other special-purpose address).",
                client.client_id
            ))
        }
        _ => Stop::bad(format!(
            "The application {} could not be verified. The client's metadata {e}.",
            client.client_id
        )),
    })?;
    if !request::redirect_allowed(&client, &display.info.redirect_uris) {
        return Err(Stop::bad(format!(
            "The redirect_uri {} is not on the application's own host ({}), and the \
             application does not list it. You were not sent anywhere.",
            client.redirect_uri, client.client_id
        )));
    }
    Ok(CheckedClient { client, display })
}

/// The redirect that carries an OAuth error back to the client, with `state` when it sent a
/// usable one and `iss`.
fn error_redirect(
    state: &AppState,
    client: &ClientAndRedirect,
    params: &Params,
    error: &OAuthError,
) -> HttpResponse {
    let mut extra = vec![
        ("error", error.error),
        ("error_description", error.description.as_str()),
    ];
    let sent_state = params
        .get("state")
        .ok()
        .flatten()
        .filter(|s| s.len() <= request::MAX_STATE_LEN);
    if let Some(sent) = sent_state {
        extra.push(("state", sent));
    }
    redirect(&request::redirect_with(
        &client.redirect_url,
        &extra,
        &issuer(&state.public_url),
    ))
}

#[derive(Template)]
#[template(path = "indieauth_continue.html")]
struct ContinuePage {
    title: &'static str,
    css: String,
    location: String,
    destination: String,
}

/// The answer to the consent form: for a browser navigating (`Sec-Fetch-Mode: navigate`) a
/// page that moves on at once with a meta refresh, otherwise a 302. Chromium checks every
/// redirect that follows a form submission against the form page's `form-action`, so a 302
/// would let the client's own next redirect (to another of its hosts) be blocked; a refresh
/// from a new page is a new navigation.
fn hand_back(
    state: &AppState,
    request: &HttpRequest,
    location: &str,
    to: &url::Url,
) -> HttpResponse {
    let navigating = request
        .headers()
        .get("sec-fetch-mode")
        .is_some_and(|mode| mode.as_bytes() == b"navigate");
    if !navigating {
        return redirect(location);
    }
    let page = ContinuePage {
        title: "Signing you in",
        css: assets::url("css/app.css"),
        location: location.to_owned(),
        destination: redirect_display(to),
    };
    match render(&page) {
        Ok(body) => {
            let mut response = html_with_policy(state, body, None);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => redirect(location),
    }
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The whole authorization request: a page to show, or a redirect back with an error.
enum Checked {
    Request(Box<(AuthorizationRequest, ClientDisplay)>),
    Answer(HttpResponse),
}

async fn check_authorization(
    state: &web::Data<AppState>,
    query: &str,
    requester: Option<std::net::IpAddr>,
) -> Checked {
    if query.len() > MAX_QUERY_LEN {
        return Checked::Answer(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "This sign-in request is not valid",
            format!("The request is longer than {MAX_QUERY_LEN} bytes."),
        ));
    }
    let params = Params::parse(query);
    let CheckedClient { client, display } = match check_client(state, &params, requester).await {
        Ok(checked) => checked,
        Err(stop) => {
            return Checked::Answer(error_page(state, stop.status, stop.heading, stop.message));
        }
    };
    match request::authorization_request(&params, client.clone()) {
        Ok(request) => Checked::Request(Box::new((request, display))),
        Err(error) => Checked::Answer(error_redirect(state, &client, &params, &error)),
    }
}

/// Whether the node has an owner to sign in as.
async fn claimed(state: &AppState) -> Result<bool, Problem> {
    Ok(state
        .credentials
        .owner_key(&state.store, state.clock.now())
        .await
        .map_err(|e| Problem::internal(&e))?
        .is_some())
}

/// Where the answer goes, as the consent page shows it: an http(s) origin, or a custom scheme
/// with its host when it has one.
fn redirect_display(redirect: &url::Url) -> String {
    match (redirect.scheme(), redirect.host_str()) {
        ("http" | "https", _) => redirect.origin().ascii_serialization(),
        (scheme, Some(host)) => format!("{scheme}://{host}"),
        (scheme, None) => format!("{scheme}:"),
    }
}

/// The page's CSP: the node's own, with `form-action` also allowing the redirect's origin, since
/// the consent form's answer redirects there (Chromium checks redirects after a form POST).
fn consent_policy(redirect: &url::Url) -> String {
    let target = match redirect.scheme() {
        "http" | "https" => redirect.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    super::pages::policy_with("form-action", &target)
}

/// `GET /indieauth/authorize`: checks the request and shows the consent page; an invalid
/// client or redirect URL is an error page, other errors are redirected to the client.
pub async fn authorize(
    state: web::Data<AppState>,
    request: HttpRequest,
    client: Client,
) -> HttpResponse {
    match claimed(&state).await {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                &state,
                StatusCode::NOT_FOUND,
                "This node has no owner yet",
                "Nobody can sign in with it until its owner claims it.".into(),
            );
        }
        Err(problem) => return HttpResponse::from_error(problem),
    }
    let query = request.query_string().to_owned();
    let (authorization, display) = match check_authorization(&state, &query, Some(client.ip)).await
    {
        Checked::Request(checked) => *checked,
        Checked::Answer(response) => return response,
    };
    let client = &authorization.client;
    let page = ConsentPage {
        app: app_fields(&state, "Sign in to an application", "consent"),
        me: issuer(&state.public_url),
        client_name: display
            .info
            .name
            .clone()
            .unwrap_or_else(|| client.client_url.host_str().unwrap_or("").to_owned()),
        client_id: client.client_id.clone(),
        client_url: display.info.url.as_ref().map(ToString::to_string),
        logo: display.logo_data.clone(),
        fetched: display.fetched,
        redirect_host: redirect_display(&client.redirect_url),
        request: query,
        scopes: authorization
            .scopes
            .names()
            .iter()
            .map(|name| ScopeChoice {
                name: name.clone(),
                description: scope_description(name),
            })
            .collect(),
        lifetimes: GRANT_LIFETIMES.to_vec(),
        default_lifetime: DEFAULT_GRANT_LIFETIME,
    };
    match render(&page) {
        Ok(body) => html_with_policy(&state, body, Some(&consent_policy(&client.redirect_url))),
        Err(problem) => HttpResponse::from_error(problem),
    }
}

/// Whether a form POST came from the node's own pages: `Sec-Fetch-Site` and `Origin`, when the
/// browser sends them, must say so. Under the pages' `no-referrer` policy Chromium sends
/// `Origin: null` with a same-origin form, so `null` passes when `Sec-Fetch-Site` (which no
/// page can set) says `same-origin`.
fn same_origin_form(request: &HttpRequest, state: &AppState) -> bool {
    let header_text = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let site = header_text(header::HeaderName::from_static("sec-fetch-site"));
    let site_ok = site.as_deref().is_none_or(|site| site == "same-origin");
    let origin_ok = header_text(header::ORIGIN).is_none_or(|origin| {
        origin == state.public_url.as_str()
            || (origin == "null" && site.as_deref() == Some("same-origin"))
    });
    site_ok && origin_ok
}

/// `POST /indieauth/consent`: the owner's answer. The form carries the original request (checked
/// again from scratch), the page's access token (a session with `indieauth`; the token is what
/// protects the form against cross-site requests, with the origin checks), the scopes kept, the
/// lifetime and the decision. Approve redirects with `code`, `state` and `iss`; deny with
/// `error=access_denied`.
pub async fn consent(
    state: web::Data<AppState>,
    request: HttpRequest,
    client: Client,
    payload: web::Payload,
) -> HttpResponse {
    let refused = |status, message: &str| {
        error_page(
            &state,
            status,
            "Your answer was not accepted",
            message.to_owned(),
        )
    };
    if !same_origin_form(&request, &state) {
        return refused(
            StatusCode::FORBIDDEN,
            "The answer must come from this node's own consent page.",
        );
    }
    let form = match read_form(&request, payload).await {
        Ok(form) => form,
        Err(error) => return refused(StatusCode::BAD_REQUEST, &error.description),
    };
    let Ok(Some(token)) = form.get("session") else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "You are not signed in on this page any more: open the sign-in link again.",
        );
    };
    let signed_in = match signed_in_by_form(&request, token) {
        Ok(signed_in) => signed_in,
        Err(problem) => {
            return refused(
                actix_web::ResponseError::status_code(&problem),
                "Your session ended or is not valid here: open the sign-in link again.",
            );
        }
    };
    if signed_in.require(Capability::Indieauth).is_err() {
        return refused(
            StatusCode::FORBIDDEN,
            "This device may not approve sign-ins to other sites (it lacks the indieauth \
             capability).",
        );
    }
    let query = form.get("request").ok().flatten().unwrap_or("").to_owned();
    // A signed-in owner's answer is not counted against the lookup budget.
    let (authorization, display) = match check_authorization(&state, &query, None).await {
        Checked::Request(checked) => *checked,
        Checked::Answer(response) => return response,
    };
    let now = state.clock.now();
    let client_request = &authorization.client;
    let iss = issuer(&state.public_url);
    match form.get("decision") {
        Ok(Some("approve")) => {}
        Ok(Some("deny")) => {
            if let Err(e) = grants::deny(
                &state.store,
                client_request.client_id.clone(),
                signed_in.session.credential_id.clone(),
                client.actor(),
                now,
            )
            .await
            {
                return HttpResponse::from_error(store_problem(e));
            }
            let location = request::redirect_with(
                &client_request.redirect_url,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the owner denied the request"),
                    ("state", &authorization.state),
                ],
                &iss,
            );
            return hand_back(&state, &request, &location, &client_request.redirect_url);
        }
        _ => return refused(StatusCode::BAD_REQUEST, "Choose Approve or Deny."),
    }
    let lifetime = form
        .get("lifetime")
        .ok()
        .flatten()
        .and_then(|text| text.parse::<i64>().ok())
        .filter(|seconds| GRANT_LIFETIMES.iter().any(|(s, _)| s == seconds))
        .unwrap_or(DEFAULT_GRANT_LIFETIME);
    let kept: Vec<String> = authorization
        .scopes
        .names()
        .iter()
        .filter(|name| form.get(&format!("scope.{name}")).ok().flatten().is_some())
        .cloned()
        .collect();
    let scopes = authorization
        .scopes
        .narrowed_to(kept.iter().map(String::as_str));
    let approval = grants::Approval {
        client_id: client_request.client_id.clone(),
        redirect_uri: client_request.redirect_uri.clone(),
        code_challenge: authorization.code_challenge.clone(),
        scopes,
        credential_id: signed_in.session.credential_id.clone(),
        client_name: display.info.name.clone(),
        client_uri: display.info.url.as_ref().map(ToString::to_string),
        lifetime,
    };
    match grants::approve(&state.store, approval, client.actor(), now).await {
        Ok(code) => {
            let location = request::redirect_with(
                &client_request.redirect_url,
                &[("code", &code), ("state", &authorization.state)],
                &iss,
            );
            hand_back(&state, &request, &location, &client_request.redirect_url)
        }
        Err(e) => HttpResponse::from_error(store_problem(e)),
    }
}

fn store_problem(error: StoreError) -> Problem {
    Problem::internal(&error)
}

// ----- Forms and client authentication ----------------------------------------------------------

/// Reads a form-encoded body (`application/x-www-form-urlencoded`, any parameters), at most
/// [`MAX_FORM_BODY`] bytes.
async fn read_form(request: &HttpRequest, payload: web::Payload) -> Result<Params, OAuthError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let body = tokio::time::timeout(BODY_TIMEOUT, payload.to_bytes_limited(MAX_FORM_BODY))
        .await
        .map_err(|_| OAuthError::invalid_request("the body was too slow to arrive"))?
        .map_err(|_| {
            OAuthError::invalid_request(format!("the body is larger than {MAX_FORM_BODY} bytes"))
        })?
        .map_err(|_| OAuthError::invalid_request("the body could not be read"))?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
    Ok(Params::parse(text))
}

/// The client_id of a token request: from the body, or from HTTP Basic with an empty password
/// (the form some libraries try first); both must agree, and a password is refused (IndieAuth
/// clients have no secret).
fn client_id_of(request: &HttpRequest, form: &Params) -> Result<Option<String>, OAuthError> {
    let from_body = form
        .get("client_id")
        .map_err(OAuthError::invalid_request)?
        .map(str::to_owned);
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(from_body);
    };
    let text = value.to_str().unwrap_or("");
    let Some((scheme, credentials)) = text.split_once(' ') else {
        return Err(OAuthError::invalid_request(
            "the Authorization header is not valid",
        ));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(from_body);
    }
    let decoded = STANDARD
        .decode(credentials.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| OAuthError::invalid_request("the Basic credentials are not valid"))?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    if !password.is_empty() {
        return Err(OAuthError::invalid_request(
            "IndieAuth clients have no secret: send the client_id without a password",
        ));
    }
    let from_basic: String = url::form_urlencoded::parse(format!("u={user}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    match from_body {
        Some(body) if body != from_basic => Err(OAuthError::invalid_request(
            "the client_id in the body and in the Authorization header differ",
        )),
        _ if from_basic.is_empty() => Ok(None),
        _ => Ok(Some(from_basic)),
    }
}

/// The check every token use makes: the approving credential is live and holds `indieauth`.
fn credential_check(state: &web::Data<AppState>) -> CredentialCheck {
    let state = state.clone();
    let now = state.clock.now();
    Box::new(move |id| {
        state.credentials.get(id).is_some_and(|credential| {
            !credential.has_expired(now) && credential.capabilities.contains(Capability::Indieauth)
        })
    })
}

/// The `profile` member for `scope` (§5.3.4): `name`, `url`, `photo`, and `email` only with the
/// `email` scope.
fn profile_member(state: &AppState, scope: &Scopes) -> Option<serde_json::Value> {
    if !scope.contains("profile") {
        return None;
    }
    let profile: std::sync::Arc<OwnerProfile> = state.profile.get();
    let mut member = serde_json::Map::new();
    if let Some(name) = &profile.name {
        member.insert("name".into(), json!(name));
    }
    member.insert("url".into(), json!(issuer(&state.public_url)));
    if let Some(photo) = &profile.photo {
        member.insert("photo".into(), json!(photo));
    }
    if scope.contains("email")
        && let Some(email) = &profile.email
    {
        member.insert("email".into(), json!(email));
    }
    Some(serde_json::Value::Object(member))
}

/// The parameters of a code redemption, all checked before the code is looked up.
fn redemption_of(request: &HttpRequest, form: &Params) -> Result<Redemption, OAuthError> {
    let code = form.require("code").map_err(OAuthError::invalid_request)?;
    let client_id = client_id_of(request, form)?
        .ok_or_else(|| OAuthError::invalid_request("the parameter client_id is missing"))?;
    let redirect_uri = form
        .require("redirect_uri")
        .map_err(OAuthError::invalid_request)?;
    let code_verifier = form
        .require("code_verifier")
        .map_err(OAuthError::invalid_request)?;
    if !request::is_code_verifier(code_verifier) {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }
    if code.len() > 256 {
        return Err(OAuthError::new("invalid_grant", "the code is not known"));
    }
    Ok(Redemption {
        code: code.to_owned(),
        client_id,
        redirect_uri: redirect_uri.to_owned(),
        code_verifier: code_verifier.to_owned(),
    })
}

fn grant_error(error: GrantError) -> HttpResponse {
    match error {
        GrantError::Invalid(reason) => {
            oauth_error(&OAuthError::new("invalid_grant", format!("the {reason}")))
        }
        GrantError::NoScope => oauth_error(&OAuthError::new(
            "invalid_grant",
            format!("the code {}", GrantError::NoScope),
        )),
        GrantError::ScopeTooWide => oauth_error(&OAuthError::new(
            "invalid_scope",
            "the scope asked for is wider than the grant",
        )),
        GrantError::Store(e) => oauth_server_error(&e),
    }
}

/// The `grant_type` of a token request.
fn grant_type(form: &Params) -> Result<&str, OAuthError> {
    form.require("grant_type")
        .map_err(OAuthError::invalid_request)
}

// ----- Code redemption and tokens -----------------------------------------------------------------

/// `POST /indieauth/authorize`: redeems a code for the profile URL only (§5.3.2), with the
/// profile when granted; never a token.
pub async fn redeem_for_profile(
    state: web::Data<AppState>,
    request: HttpRequest,
    client: Client,
    payload: web::Payload,
) -> HttpResponse {
    let form = match read_form(&request, payload).await {
        Ok(form) => form,
        Err(error) => return oauth_error(&error),
    };
    match grant_type(&form) {
        Ok("authorization_code") => {}
        Ok(_) => {
            return oauth_error(&OAuthError::new(
                "unsupported_grant_type",
                "the authorization endpoint redeems grant_type=authorization_code only",
            ));
        }
        Err(error) => return oauth_error(&error),
    }
    let redemption = match redemption_of(&request, &form) {
        Ok(redemption) => redemption,
        Err(error) => return oauth_error(&error),
    };
    let now = state.clock.now();
    match grants::redeem(
        &state.store,
        credential_check(&state),
        redemption,
        Endpoint::Authorization,
        client.actor(),
        now,
    )
    .await
    {
        Ok(redeemed) => {
            let mut body = json!({ "me": issuer(&state.public_url) });
            if let Some(profile) = profile_member(&state, &redeemed.scope) {
                body["profile"] = profile;
            }
            oauth_json(StatusCode::OK, &body)
        }
        Err(error) => grant_error(error),
    }
}

/// `POST /indieauth/token`: redeems a code (§5.3.3) or a refresh token (§5.5).
pub async fn token(
    state: web::Data<AppState>,
    request: HttpRequest,
    client: Client,
    payload: web::Payload,
) -> HttpResponse {
    let form = match read_form(&request, payload).await {
        Ok(form) => form,
        Err(error) => return oauth_error(&error),
    };
    let now = state.clock.now();
    let issued = match grant_type(&form) {
        Ok("authorization_code") => {
            let redemption = match redemption_of(&request, &form) {
                Ok(redemption) => redemption,
                Err(error) => return oauth_error(&error),
            };
            grants::redeem(
                &state.store,
                credential_check(&state),
                redemption,
                Endpoint::Token,
                client.actor(),
                now,
            )
            .await
            .and_then(|redeemed| redeemed.tokens.ok_or(GrantError::NoScope))
        }
        Ok("refresh_token") => {
            let refresh = match refresh_of(&request, &form) {
                Ok(refresh) => refresh,
                Err(error) => return oauth_error(&error),
            };
            grants::refresh(
                &state.store,
                credential_check(&state),
                refresh,
                client.actor(),
                now,
            )
            .await
        }
        Ok(_) => {
            return oauth_error(&OAuthError::new(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ));
        }
        Err(error) => return oauth_error(&error),
    };
    let issued = match issued {
        Ok(issued) => issued,
        Err(error) => return grant_error(error),
    };
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "scope": issued.scope.to_string(),
        "me": issuer(&state.public_url),
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token,
    });
    if let Some(profile) = profile_member(&state, &issued.scope) {
        body["profile"] = profile;
    }
    oauth_json(StatusCode::OK, &body)
}

fn refresh_of(request: &HttpRequest, form: &Params) -> Result<Refresh, OAuthError> {
    let refresh_token = form
        .require("refresh_token")
        .map_err(OAuthError::invalid_request)?;
    let client_id = client_id_of(request, form)?
        .ok_or_else(|| OAuthError::invalid_request("the parameter client_id is missing"))?;
    let scope = match form.get("scope").map_err(OAuthError::invalid_request)? {
        Some(text) => Some(Scopes::parse(text).map_err(|e| OAuthError::new("invalid_scope", e))?),
        None => None,
    };
    if refresh_token.len() > 256 {
        return Err(OAuthError::new(
            "invalid_grant",
            "the refresh token is not known",
        ));
    }
    Ok(Refresh {
        refresh_token: refresh_token.to_owned(),
        client_id,
        scope,
    })
}

/// The bearer token of a request, if it sent one.
fn bearer_token(request: &HttpRequest) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then(|| token.to_owned())
}

/// `POST /indieauth/introspect` (§6, RFC 7662): authorized by `Authorization: Bearer` with any
/// active access token this node issued (the one asked about included). An active access token
/// → `active`, `me`, `client_id`, `scope`, `exp`, `iat`; anything else → `{"active":false}`.
pub async fn introspect(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(presented) = bearer_token(&request) else {
        return bearer_refusal(
            None,
            "introspection needs Authorization: Bearer with an access token this node issued",
        );
    };
    let now = state.clock.now();
    match grants::active_access_token(&state.store, credential_check(&state), &presented, now).await
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            return bearer_refusal(
                Some("invalid_token"),
                "the bearer token is not an active access token of this node",
            );
        }
        Err(e) => return oauth_server_error(&e),
    }
    let form = match read_form(&request, payload).await {
        Ok(form) => form,
        Err(error) => return oauth_error(&error),
    };
    let asked = match form.require("token") {
        Ok(token) => token.to_owned(),
        Err(message) => return oauth_error(&OAuthError::invalid_request(message)),
    };
    let active = if asked.len() > 256 {
        None
    } else {
        match grants::active_access_token(&state.store, credential_check(&state), &asked, now).await
        {
            Ok(active) => active,
            Err(e) => return oauth_server_error(&e),
        }
    };
    let body = match active {
        Some(token) => json!({
            "active": true,
            "me": issuer(&state.public_url),
            "client_id": token.client_id,
            "scope": token.scope.to_string(),
            "exp": token.expires_at,
            "iat": token.issued_at,
            "token_type": "Bearer",
        }),
        None => json!({ "active": false }),
    };
    oauth_json(StatusCode::OK, &body)
}

/// `POST /indieauth/revoke` (§7, RFC 7009): revokes the grant of an access or refresh token;
/// 200 whether or not the token was known.
pub async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    client: Client,
    payload: web::Payload,
) -> HttpResponse {
    let form = match read_form(&request, payload).await {
        Ok(form) => form,
        Err(error) => return oauth_error(&error),
    };
    let token = match form.require("token") {
        Ok(token) => token.to_owned(),
        Err(message) => return oauth_error(&OAuthError::invalid_request(message)),
    };
    let client_id = match client_id_of(&request, &form) {
        Ok(client_id) => client_id,
        Err(error) => return oauth_error(&error),
    };
    if token.len() <= 256
        && let Err(e) = grants::revoke_token(
            &state.store,
            &token,
            client_id,
            client.actor(),
            state.clock.now(),
        )
        .await
    {
        return oauth_server_error(&e);
    }
    HttpResponse::Ok()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `GET /indieauth/userinfo` (§9): the profile, for an access token with `profile`.
pub async fn userinfo(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let Some(presented) = bearer_token(&request) else {
        return bearer_refusal(
            None,
            "userinfo needs Authorization: Bearer with an access token",
        );
    };
    let now = state.clock.now();
    let active =
        match grants::active_access_token(&state.store, credential_check(&state), &presented, now)
            .await
        {
            Ok(Some(active)) => active,
            Ok(None) => {
                return bearer_refusal(
                    Some("invalid_token"),
                    "the access token is not active: expired, revoked or unknown",
                );
            }
            Err(e) => return oauth_server_error(&e),
        };
    let Some(mut profile) = profile_member(&state, &active.scope) else {
        return bearer_refusal(
            Some("insufficient_scope"),
            "the access token was not granted the profile scope",
        );
    };
    profile["sub"] = json!(issuer(&state.public_url));
    oauth_json(StatusCode::OK, &profile)
}

// ----- The owner's grants and profile -----------------------------------------------------------

/// A grant as the owner's pages show it.
#[derive(Debug, Serialize)]
struct GrantEntry {
    id: String,
    client_id: String,
    client_name: Option<String>,
    client_uri: Option<String>,
    redirect_uri: String,
    scope: String,
    credential_id: String,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: i64,
}

impl From<GrantRow> for GrantEntry {
    fn from(row: GrantRow) -> Self {
        GrantEntry {
            id: row.id,
            client_id: row.client_id,
            client_name: row.client_name,
            client_uri: row.client_uri,
            redirect_uri: row.redirect_uri,
            scope: row.scope,
            credential_id: row.credential_id,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
        }
    }
}

/// `GET /api/v1/indieauth/grants` (capability `indieauth`): the live grants, newest first.
pub async fn list_grants(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Indieauth)?;
    let grants = grants::live_grants(&state.store, credential_check(&state), state.clock.now())
        .await
        .map_err(store_problem)?;
    let entries: Vec<GrantEntry> = grants.into_iter().map(GrantEntry::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "grants": entries })))
}

/// `DELETE /api/v1/indieauth/grants/{id}` (capability `indieauth`) → 204; 404 for an unknown or
/// already revoked grant.
pub async fn revoke_grant(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Indieauth)?;
    let id = id.into_inner();
    if id.len() > 64 {
        return Err(Problem::not_found());
    }
    if !grants::revoke_grant(&state.store, id, client.actor(), state.clock.now())
        .await
        .map_err(store_problem)?
    {
        return Err(Problem::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/profile` (capability `session`): the owner's profile.
pub async fn profile(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Session)?;
    Ok(HttpResponse::Ok().json(&*state.profile.get()))
}

/// `PUT /api/v1/profile` (capability `owner`): replaces the profile, audited as
/// `profile.changed`.
pub async fn set_profile(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    StrictJson(body): StrictJson<OwnerProfile>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Owner)?;
    let profile = body.checked().map_err(|(field, message)| {
        Problem::invalid_field(field, format!("The {field} is not valid: {message}."))
    })?;
    state
        .profile
        .set(
            &state.store,
            profile.clone(),
            client.actor(),
            state.clock.now(),
        )
        .await
        .map_err(store_problem)?;
    Ok(HttpResponse::Ok().json(profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_page_names_where_the_answer_goes_exactly() {
        for (url, shown) in [
            ("https://nullsoft.example/cb", "https://nullsoft.example"),
            ("http://127.0.0.1:8080/cb?x=1", "http://127.0.0.1:8080"),
            ("com.example.app://callback/x", "com.example.app://callback"),
            ("com.example.app:/callback", "com.example.app:"),
        ] {
            let parsed = url::Url::parse(url).expect("valid");
            assert_eq!(redirect_display(&parsed), shown, "{url}");
        }
    }

    #[test]
    fn the_consent_policy_adds_the_redirect_to_form_action_only() {
        let policy = consent_policy(&url::Url::parse("https://app.example/cb").expect("valid"));
        assert_eq!(
            policy,
            super::super::pages::CONTENT_SECURITY_POLICY.replace(
                "form-action 'self'",
                "form-action 'self' https://app.example"
            )
        );
    }
}
