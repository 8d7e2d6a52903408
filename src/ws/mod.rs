//! The WebSocket at `/api/v1/ws`: the handshake checks (origin, per-client connection cap) and
//! the per-socket loop in [`socket`]. Message schema in [`protocol`].

pub mod frame_guard;
pub mod protocol;
pub mod socket;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::app::AppState;
use crate::app::client::Client;
use crate::error::Problem;
use crate::limits::{SocketRefusal, SocketTicket};

/// The largest frame (and reassembled message) accepted, in bytes.
pub const MAX_FRAME_SIZE: usize = 64 * 1024;
/// Holds one open-socket slot; gives it back when the socket ends.
pub struct Slot {
    state: web::Data<AppState>,
    client: String,
    network: String,
    ticket: SocketTicket,
    authenticated: Arc<AtomicBool>,
}

impl Slot {
    /// The socket has a session: it stops waiting, and its frames may be larger.
    pub fn authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::AcqRel) {
            self.state.websockets.authenticated(self.ticket.id);
        }
    }

    /// Completes when the socket, still waiting to authenticate, must give way to a new one.
    pub async fn give_way(&self) {
        self.ticket.give_way.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state
            .websockets
            .release(&self.client, &self.network, self.ticket.id);
    }
}

/// `GET /api/v1/ws`: upgrades to a WebSocket. A browser `Origin` other than the node's own is
/// 403; clients without `Origin` (not browsers) are allowed.
pub async fn handshake(
    state: web::Data<AppState>,
    client: Client,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && origin.to_str().ok() != Some(state.public_url.as_str())
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "cross-origin-websocket",
            "Cross-origin WebSocket refused",
            "WebSockets from browsers are accepted only from this node's own origin.",
        ));
    }
    let address = client.ip.to_string();
    let client_key = crate::auth::throttle::client_key(Some(&address));
    let network_key = crate::auth::throttle::network_key(Some(&address));
    let ticket = match state.websockets.acquire(&client_key, &network_key) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            let detail = match refusal {
                SocketRefusal::Client => {
                    "This address or its network has too many open WebSockets; close one and retry."
                }
                SocketRefusal::Node => "The node has too many open WebSockets; retry shortly.",
            };
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-websockets",
                "Too many open WebSockets",
                detail,
            ));
        }
    };
    let authenticated = Arc::new(AtomicBool::new(false));
    let slot = Slot {
        state: state.clone(),
        client: client_key,
        network: network_key,
        ticket,
        authenticated: authenticated.clone(),
    };
    let guarded: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>,
                >,
        >,
    > = Box::pin(frame_guard::GuardedPayload::new(
        body.into_inner(),
        MAX_FRAME_SIZE,
        authenticated,
    ));
    let mut payload = actix_web::dev::Payload::from(guarded);
    let body = <web::Payload as actix_web::FromRequest>::from_request(&request, &mut payload)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let (response, session, stream) = actix_ws::handle(&request, body).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "websocket-upgrade-required",
            "Not a WebSocket handshake",
            "This address speaks WebSocket only (RFC 6455 upgrade with version 13).",
        )
    })?;
    let stream = stream
        .max_frame_size(MAX_FRAME_SIZE)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_SIZE);
    actix_web::rt::spawn(socket::run(state, client, session, stream, slot));
    Ok(response)
}
