//! The HTTP layer: shared state, routes and one module per resource. Handlers turn requests
//! into calls on `auth`, `store` and `jose`, and domain errors into problem+json; they never
//! run SQL themselves.

pub mod client;
pub mod json;
pub mod owner;
pub mod unlock;
pub mod well_known;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};

use crate::auth::AuditLimiter;
use crate::clock::Clock;
use crate::config::PublicUrl;
use crate::error::Problem;
use crate::store::Store;
use crate::well_known_dir::WellKnownDir;

/// Everything a handler may use. One per node; nothing here is global.
pub struct AppState {
    pub store: Store,
    pub public_url: PublicUrl,
    pub clock: Arc<dyn Clock>,
    pub trusted_proxies: Vec<IpAddr>,
    pub audit_limiter: AuditLimiter,
    pub well_known_dir: WellKnownDir,
    pub published_key: well_known::PublishedKeyCache,
}

/// Registers every route. Unknown paths and unsupported methods answer with problem+json.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::scope("/api/v1")
                .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
                .service(
                    web::resource("/owner")
                        .route(web::post().to(owner::claim))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/unlock")
                        .route(web::get().to(unlock::parameters))
                        .route(web::post().to(unlock::unlock))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/.well-known")
                .service(
                    web::resource("/jwks.json")
                        .route(web::get().to(well_known::jwks))
                        .route(web::head().to(well_known::jwks))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/did.json")
                        .route(web::get().to(well_known::did_document))
                        .route(web::head().to(well_known::did_document))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{name:.*}")
                        .route(web::get().to(well_known::directory_file))
                        .route(web::head().to(well_known::directory_file))
                        .default_service(web::to(method_not_allowed)),
                ),
        )
        .default_service(web::to(not_found));
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

async fn method_not_allowed() -> Result<HttpResponse, Problem> {
    Err(Problem::method_not_allowed())
}
