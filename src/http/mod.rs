//! The HTTP layer: shared state, routes and one module per resource. Handlers turn requests
//! into calls on `auth`, `store` and `jose`, and domain errors into problem+json; they never
//! run SQL themselves.

pub mod assets;
pub mod auth;
pub mod credentials;
pub mod enrollment;
pub mod inbox;
pub mod indieauth;
pub mod json;
pub mod owner;
pub mod pages;
pub mod passkeys;
pub mod recovery;
pub mod session_auth;
pub mod sessions;
pub mod totp;
pub mod unlock;
pub mod unlock_codes;
pub mod well_known;

pub use crate::app::{AppState, client};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{HttpResponse, web};

use crate::error::Problem;

/// Registers every route. Unknown paths and unsupported methods answer with problem+json.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(refuse_while_record_invalid))
                .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
                .service(
                    web::resource("/owner")
                        .route(web::post().to(owner::claim))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/unlock")
                        .route(web::get().to(unlock::parameters))
                        .route(web::post().to(unlock::unlock))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(post_only("/unlock-codes", unlock_codes::create))
                .service(
                    web::resource("/enrollment")
                        .route(web::get().to(enrollment::settings))
                        .route(web::put().to(enrollment::set_mode))
                        .default_service(not_allowed("GET, PUT")),
                )
                .service(
                    web::resource("/enrollment/window")
                        .route(web::post().to(enrollment::open_window))
                        .route(web::delete().to(enrollment::close_window))
                        .default_service(not_allowed("POST, DELETE")),
                )
                .service(
                    web::resource("/enrollment/requests")
                        .route(web::get().to(enrollment::pending))
                        .route(web::post().to(enrollment::request))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/enrollment/requests/{id}")
                        .route(web::get().to(enrollment::status))
                        .default_service(not_allowed("GET")),
                )
                .service(post_only(
                    "/enrollment/requests/{id}/approve",
                    enrollment::approve,
                ))
                .service(post_only(
                    "/enrollment/requests/{id}/deny",
                    enrollment::deny,
                ))
                .service(
                    web::resource("/totp")
                        .route(web::get().to(totp::status))
                        .route(web::delete().to(totp::disable))
                        .default_service(not_allowed("GET, DELETE")),
                )
                .service(post_only("/totp/setup", totp::setup))
                .service(post_only("/totp/confirm", totp::confirm))
                .service(post_only(
                    "/totp/recovery-codes",
                    totp::replace_recovery_codes,
                ))
                .service(
                    web::resource("/owner/wrapped-key")
                        .route(web::put().to(owner::replace_wrapped_key))
                        .default_service(not_allowed("PUT")),
                )
                .service(post_only("/owner/rotate", owner::rotate))
                .service(
                    web::resource("/node-key/binding")
                        .route(web::put().to(owner::bind_node_key))
                        .default_service(not_allowed("PUT")),
                )
                .service(
                    web::resource("/owner/encryption-key")
                        .route(web::put().to(inbox::add_encryption_key))
                        .default_service(not_allowed("PUT")),
                )
                .service(
                    web::resource("/owner/encryption-keys")
                        .route(web::get().to(inbox::encryption_keys))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/inbox")
                        .wrap(from_fn(open_sending_to_other_origins))
                        .route(web::post().to(inbox::send))
                        .route(web::get().to(inbox::list))
                        .route(web::method(Method::OPTIONS).to(inbox::preflight))
                        .default_service(not_allowed("GET, POST, OPTIONS")),
                )
                .service(
                    web::resource("/inbox/sender-keys")
                        .route(web::get().to(inbox::sender_keys))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/inbox/{id}")
                        .route(web::get().to(inbox::fetch))
                        .route(web::delete().to(inbox::delete))
                        .default_service(not_allowed("GET, DELETE")),
                )
                .service(post_only("/inbox/{id}/read", inbox::mark_read))
                .service(post_only("/auth/challenge", auth::challenge))
                .service(post_only("/auth/login", auth::login))
                .service(post_only("/auth/reauth", auth::reauth))
                .service(post_only("/auth/passkey", passkeys::sign_in))
                .service(post_only("/auth/passkey/reauth", passkeys::reauth))
                .service(post_only("/passkeys", passkeys::register))
                .service(post_only(
                    "/passkeys/registration-options",
                    passkeys::registration_options,
                ))
                .service(post_only(
                    "/passkeys/sign-in-options",
                    passkeys::sign_in_options,
                ))
                .service(
                    web::resource("/session")
                        .route(web::get().to(sessions::current))
                        .route(web::delete().to(sessions::sign_out))
                        .default_service(not_allowed("GET, DELETE")),
                )
                .service(
                    web::resource("/sessions")
                        .route(web::get().to(sessions::list))
                        .default_service(not_allowed("GET")),
                )
                .service(post_only(
                    "/sessions/revoke-others",
                    sessions::revoke_others,
                ))
                .service(
                    web::resource("/sessions/{id}")
                        .route(web::delete().to(sessions::revoke))
                        .default_service(not_allowed("DELETE")),
                )
                .service(
                    web::resource("/credentials")
                        .route(web::get().to(credentials::list))
                        .route(web::post().to(credentials::create))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/credentials/{id}")
                        .route(web::patch().to(credentials::change))
                        .route(web::delete().to(credentials::revoke))
                        .default_service(not_allowed("PATCH, DELETE")),
                )
                .service(
                    web::resource("/credentials/{id}/key")
                        .route(web::put().to(credentials::reset))
                        .default_service(not_allowed("PUT")),
                )
                .service(
                    web::resource("/recovery/sets")
                        .route(web::get().to(recovery::list))
                        .route(web::post().to(recovery::create))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/audit")
                        .route(web::get().to(sessions::audit))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/audit/chain")
                        .route(web::get().to(sessions::audit_chain))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/ws")
                        .route(web::get().to(crate::ws::handshake))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/indieauth/grants")
                        .route(web::get().to(indieauth::list_grants))
                        .default_service(not_allowed("GET")),
                )
                .service(
                    web::resource("/indieauth/grants/{id}")
                        .route(web::delete().to(indieauth::revoke_grant))
                        .default_service(not_allowed("DELETE")),
                )
                .service(
                    web::resource("/profile")
                        .route(web::get().to(indieauth::profile))
                        .route(web::put().to(indieauth::set_profile))
                        .default_service(not_allowed("GET, PUT")),
                )
                .service(
                    web::resource("/health")
                        .route(web::get().to(health))
                        .default_service(not_allowed("GET")),
                )
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/.well-known")
                .service(
                    web::resource("/jwks.json")
                        .route(web::get().to(well_known::jwks))
                        .route(web::head().to(well_known::jwks))
                        .default_service(not_allowed("GET, HEAD")),
                )
                .service(
                    web::resource("/siteid/keys.json")
                        .route(web::get().to(well_known::key_history))
                        .route(web::head().to(well_known::key_history))
                        .default_service(not_allowed("GET, HEAD")),
                )
                .service(
                    web::resource("/siteid/node-key.json")
                        .route(web::get().to(well_known::node_key))
                        .route(web::head().to(well_known::node_key))
                        .default_service(not_allowed("GET, HEAD")),
                )
                .service(
                    web::resource("/did.json")
                        .route(web::get().to(well_known::did_document))
                        .route(web::head().to(well_known::did_document))
                        .default_service(not_allowed("GET, HEAD")),
                )
                .service(
                    web::resource("/oauth-authorization-server")
                        .route(web::get().to(indieauth::metadata))
                        .route(web::head().to(indieauth::metadata))
                        .route(web::method(Method::OPTIONS).to(indieauth::preflight))
                        .default_service(not_allowed("GET, HEAD, OPTIONS")),
                )
                .service(
                    web::resource("/webfinger")
                        .route(web::get().to(indieauth::webfinger))
                        .route(web::head().to(indieauth::webfinger))
                        .default_service(not_allowed("GET, HEAD")),
                )
                .service(
                    web::resource("/{name:.*}")
                        .route(web::get().to(well_known::directory_file))
                        .route(web::head().to(well_known::directory_file))
                        .default_service(not_allowed("GET, HEAD")),
                ),
        )
        .service(
            web::scope("/indieauth")
                .wrap(from_fn(refuse_while_record_invalid))
                .service(
                    web::resource("/authorize")
                        .route(web::get().to(indieauth::authorize))
                        .route(web::head().to(indieauth::authorize))
                        .route(web::post().to(indieauth::redeem_for_profile))
                        .route(web::method(Method::OPTIONS).to(indieauth::preflight))
                        .default_service(not_allowed("GET, HEAD, POST, OPTIONS")),
                )
                .service(post_only("/consent", indieauth::consent))
                .service(oauth_post("/token", indieauth::token))
                .service(oauth_post("/introspect", indieauth::introspect))
                .service(oauth_post("/revoke", indieauth::revoke))
                .service(
                    web::resource("/userinfo")
                        .route(web::get().to(indieauth::userinfo))
                        .route(web::method(Method::OPTIONS).to(indieauth::preflight))
                        .default_service(not_allowed("GET, OPTIONS")),
                )
                .default_service(web::to(not_found)),
        )
        .service(page("/", pages::home))
        .service(page("/setup", pages::setup))
        .service(page("/login", pages::login))
        .service(page("/account", pages::account))
        .service(page("/account/recovery", pages::recovery))
        .service(page("/account/credentials", pages::credentials))
        .service(page("/account/totp", pages::totp))
        .service(page("/account/inbox", pages::inbox))
        .service(page("/account/apps", pages::apps))
        .service(page("/recover", pages::recover))
        .service(
            web::resource("/assets/{version}/{path:.+}")
                .route(web::get().to(assets::asset))
                .route(web::head().to(assets::asset))
                .default_service(not_allowed("GET, HEAD")),
        )
        .default_service(web::to(not_found));
}

/// A page: GET and HEAD.
fn page<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(not_allowed("GET, HEAD"))
}

/// A resource that answers POST only.
fn post_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(not_allowed("POST"))
}

/// An OAuth endpoint browsers may call from other origins: POST and its preflight.
fn oauth_post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .route(web::method(Method::OPTIONS).to(indieauth::preflight))
        .default_service(not_allowed("POST, OPTIONS"))
}

/// Query strings that do not parse are 422 problems naming the parameter when serde does.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _| {
        let message = error.to_string();
        let field = message
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| "query".into());
        Problem::invalid_field(field, format!("The query string is not valid: {message}.")).into()
    })
}

/// Path segments that do not parse are 404s.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| Problem::not_found().into())
}

/// `GET /api/v1/health` → 204; 503 `degraded` while the owner record fails its check. Does
/// almost nothing, so it doubles as the benchmarks' baseline.
async fn health(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    if state.credentials.has_record_problem() {
        return Err(Problem::degraded());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Refuses every API and IndieAuth request but the health check with 503 `owner-record-invalid` while the
/// owner record fails its check.
async fn refuse_while_record_invalid(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let invalid = request
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.credentials.has_record_problem());
    if invalid && request.path() != "/api/v1/health" {
        let response = request.error_response(Problem::owner_record_invalid());
        return Ok(response.map_into_right_body());
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Lets other origins read the answers to sending a message (`POST` and its `OPTIONS`
/// preflight), and nothing else: reading the inbox stays same-origin.
async fn open_sending_to_other_origins(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let sending = matches!(*request.method(), Method::POST | Method::OPTIONS);
    let mut response = next.call(request).await?;
    if sending {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::HeaderValue::from_static("Location, Retry-After"),
        );
    }
    Ok(response)
}

/// Headers every response carries.
pub fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

async fn not_found() -> Result<HttpResponse, Problem> {
    Err(Problem::not_found())
}

/// The 405 answer of a resource that serves the methods in `allow` (its `Allow` header).
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, Problem>(Problem::method_not_allowed(allow)) })
}
