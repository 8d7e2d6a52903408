//! Logging: the tracing subscriber and the per-request span with its request id. Request
//! logs carry the method, the path without its query, the status and the time taken, and
//! never a body, a query string, a cookie or an authorization header.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use rand::RngCore;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The default log filter.
const DEFAULT_FILTER: &str = "info,actix_server=warn";

/// Targets whose lines are off unless RUST_LOG names them: webauthn-rs logs a refused
/// ceremony's input bytes (as decimal lists, several times their size), which an
/// unauthenticated client controls; the node reports refusals itself.
const QUIET_TARGETS: [&str; 2] = ["webauthn_rs_core=off", "webauthn_rs=off"];

/// Installs the global subscriber: human-readable lines on stderr, filtered by `RUST_LOG`
/// (default `info`). Stdout is left to the few lines meant for scripts.
pub fn init() {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Whatever RUST_LOG says, webauthn-rs stays quiet unless it is named there.
    let names_webauthn = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("webauthn"));
    if !names_webauthn {
        for directive in QUIET_TARGETS {
            if let Ok(directive) = directive.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware: gives each request an id, a span, one log line (at debug for 4xx answers) and
/// an `X-Request-Id` header.
pub async fn request_span(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = new_request_id();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.path(),
    );
    let started = Instant::now();
    let result = REQUEST_ID
        .scope(id.clone(), next.call(request))
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let millis = started.elapsed().as_millis() as u64;
            // Refusals (a wrong password, a bad token, a throttled client) are what a flood is
            // made of: at the default level they would fill the log, and the audit log already
            // sums them up.
            if status >= 500 {
                tracing::warn!(status, millis, "answered");
            } else if status >= 400 {
                tracing::debug!(status, millis, "answered");
            } else {
                tracing::info!(status, millis, "answered");
            }
            if let Ok(value) = HeaderValue::from_str(&id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
            }
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(error = %error, "request failed");
            Err(error)
        }
    }
}
