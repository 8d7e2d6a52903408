//! One WebSocket's life: send a challenge, wait up to 10 s for authentication, then serve
//! pings and session events until the socket or its session ends. One `select!` loop per
//! socket; a one-second tick enforces deadlines, session expiry and the heartbeat.

use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use super::Slot;
use super::protocol::{
    self, CLOSE_BAD_MESSAGE, CLOSE_FORBIDDEN, CLOSE_HEARTBEAT_TIMEOUT, CLOSE_THROTTLED,
    CLOSE_UNAUTHORIZED, ClientMessage, Event, ServerMessage,
};
use crate::app::AppState;
use crate::app::client::Client;
use crate::auth::attempts::Windows;
use crate::auth::challenge::CHALLENGE_LIFETIME;
use crate::auth::credentials::{Capabilities, Capability};
use crate::auth::login::{self, LoginError};
use crate::auth::sessions::{EndReason, SessionEvent};

/// How long a client has to authenticate.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// How long the server waits for any frame before giving up on the client.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a socket knows of its session once it has authenticated.
#[derive(Debug, Default)]
struct Attachment {
    session_id: Option<String>,
    /// Events about other sessions go only to sockets whose credential may see sessions.
    capabilities: Capabilities,
    /// Whether this socket's own assertion started the session, which then ends with it.
    created_here: bool,
}

enum Next {
    Continue,
    Close(u16, &'static str),
}

/// Runs the socket until it closes.
pub async fn run(
    state: actix_web::web::Data<AppState>,
    client: Client,
    mut session: Session,
    mut stream: AggregatedMessageStream,
    slot: Slot,
) {
    let nonce = state.challenges.issue(
        state.clock.now(),
        crate::auth::challenge::Purpose::WebSocket,
    );
    let challenge = ServerMessage::Challenge {
        nonce: nonce.clone(),
        expires_in: CHALLENGE_LIFETIME,
        node_signature: None,
    };
    if send(&mut session, &challenge).await.is_err() {
        return;
    }
    let mut events = state.sessions.subscribe();
    // The authentication deadline runs on the node's clock, so tests can move it by hand.
    let started_at = state.clock.now();
    let mut last_heard = Instant::now();
    let mut last_ping = Instant::now();
    let mut attachment = Attachment::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let outcome = loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { break None };
                last_heard = Instant::now();
                let next = match message {
                    Ok(AggregatedMessage::Text(text)) => {
                        let next = handle_text(&state, &client, &mut session, &nonce, &mut attachment, &text).await;
                        if attachment.session_id.is_some() { slot.authenticated(); }
                        // Only application messages count as use of the session; the browser
                        // answers pings by itself, so an unattended tab still goes idle.
                        if let Some(id) = &attachment.session_id { state.sessions.touch(id, state.clock.now()); }
                        next
                    }
                    Ok(AggregatedMessage::Binary(_)) => Next::Close(CLOSE_BAD_MESSAGE, "binary frames are not part of the protocol"),
                    Ok(AggregatedMessage::Ping(bytes)) => {
                        if !within_deadline(session.pong(&bytes)).await { break None; }
                        Next::Continue
                    }
                    Ok(AggregatedMessage::Pong(_)) => Next::Continue,
                    Ok(AggregatedMessage::Close(_)) => break Some((1000, "goodbye")),
                    Err(_) => Next::Close(CLOSE_BAD_MESSAGE, "protocol error, or a frame over the limit (64 KiB; 16 KiB in all before authentication)"),
                };
                if let Next::Close(code, why) = next { break Some((code, why)); }
            }
            _ = slot.give_way(), if attachment.session_id.is_none() => {
                break Some((1013, "too many sockets are waiting to authenticate; retry"));
            }
            _ = tick.tick() => {
                let now = state.clock.now();
                match &attachment.session_id {
                    None if now - started_at >= AUTH_TIMEOUT.as_secs() as i64 => break Some((CLOSE_UNAUTHORIZED, "authentication timed out")),
                    Some(id) if !state.sessions.is_active(id, now) => break Some((CLOSE_UNAUTHORIZED, "the session has ended")),
                    _ => {}
                }
                if last_heard.elapsed() >= CLIENT_TIMEOUT {
                    break Some((CLOSE_HEARTBEAT_TIMEOUT, "no answer to pings"));
                }
                if last_ping.elapsed() >= HEARTBEAT_INTERVAL {
                    last_ping = Instant::now();
                    if !within_deadline(session.ping(b"")).await { break None; }
                }
            }
            event = events.recv() => {
                if matches!(event, Ok(SessionEvent::Stopping)) {
                    break Some((1001, "the node is stopping"));
                }
                let Some(current) = &attachment.session_id else { continue };
                let sees_sessions = attachment.capabilities.contains(Capability::Sessions);
                let frame = match event {
                    Ok(SessionEvent::Ended { id, .. }) if id == *current => {
                        break Some((CLOSE_UNAUTHORIZED, "the session has ended"));
                    }
                    Ok(SessionEvent::Ended { .. } | SessionEvent::Created(_)) if !sees_sessions => continue,
                    Ok(SessionEvent::Ended { id, reason: EndReason::Revoked }) => {
                        Event::SessionRevoked { session_id: id }
                    }
                    Ok(SessionEvent::Ended { id, reason }) => Event::SessionEnded {
                        session_id: id,
                        reason: serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                    },
                    Ok(SessionEvent::InboxMessage { id }) => {
                        if !attachment.capabilities.contains(Capability::Inbox) { continue; }
                        Event::InboxMessage { id }
                    }
                    Ok(SessionEvent::EnrollmentRequested(request)) => {
                        if !attachment.capabilities.contains(Capability::Credentials) { continue; }
                        Event::EnrollmentRequested(request)
                    }
                    Ok(SessionEvent::EnrollmentAnswered { request_id, status }) => {
                        if !attachment.capabilities.contains(Capability::Credentials) { continue; }
                        Event::EnrollmentAnswered { request_id, status }
                    }
                    Ok(SessionEvent::Created(info)) if info.id == *current => continue,
                    Ok(SessionEvent::Created(info)) => Event::SessionCreated {
                        session_id: info.id,
                        created_at: info.created_at,
                        ip: info.ip,
                        user_agent: info.user_agent,
                    },
                    Err(RecvError::Lagged(_)) => {
                        // Missed events may include this session's end; check directly.
                        if !state.sessions.is_active(current, state.clock.now()) {
                            break Some((CLOSE_UNAUTHORIZED, "the session has ended"));
                        }
                        continue;
                    }
                    Ok(SessionEvent::Stopping) | Err(RecvError::Closed) => {
                        break Some((1001, "the node is stopping"));
                    }
                };
                if send(&mut session, &ServerMessage::Event(frame)).await.is_err() { break None; }
            }
        }
    };
    if let Some((code, description)) = outcome {
        let close = session.close(Some(CloseReason {
            code: CloseCode::from(code),
            description: Some(description.into()),
        }));
        let _ = tokio::time::timeout(SEND_DEADLINE, close).await;
    }
    // A session this socket signed in has no token anyone holds: it ends with the socket.
    if attachment.created_here
        && let Some(id) = attachment.session_id
    {
        let now = state.clock.now();
        let _ = state
            .sessions
            .end(
                &state.store,
                vec![id],
                EndReason::SignedOut,
                &client.actor(),
                now,
            )
            .await;
    }
}

/// How long a send may wait for a client that does not read before the socket is dropped.
pub const SEND_DEADLINE: Duration = Duration::from_secs(5);

/// Whether `send` completed in time and without error.
async fn within_deadline<F>(send: F) -> bool
where
    F: std::future::Future<Output = Result<(), actix_ws::Closed>>,
{
    matches!(tokio::time::timeout(SEND_DEADLINE, send).await, Ok(Ok(())))
}

async fn send(session: &mut Session, message: &ServerMessage) -> Result<(), actix_ws::Closed> {
    let text = serde_json::to_string(message).unwrap_or_default();
    match tokio::time::timeout(SEND_DEADLINE, session.text(text)).await {
        Ok(result) => result,
        Err(_) => Err(actix_ws::Closed),
    }
}

async fn handle_text(
    state: &AppState,
    client: &Client,
    session: &mut Session,
    nonce: &str,
    attachment: &mut Attachment,
    text: &str,
) -> Next {
    let message = match protocol::parse(text) {
        Ok(message) => message,
        Err(_) => return Next::Close(CLOSE_BAD_MESSAGE, "not a valid message"),
    };
    match message {
        ClientMessage::Ping { id } => match send(session, &ServerMessage::Pong { id }).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::Close(1011, "send failed"),
        },
        ClientMessage::Challenge { .. } if attachment.session_id.is_some() => {
            Next::Close(CLOSE_BAD_MESSAGE, "already authenticated")
        }
        ClientMessage::Challenge { client_nonce } => {
            if !crate::jose::node_key::is_client_nonce(&client_nonce) {
                return Next::Close(
                    CLOSE_BAD_MESSAGE,
                    "client_nonce must be 16 to 128 base64url characters",
                );
            }
            if state
                .node_proofs
                .admit(client.ip, state.clock.now())
                .is_err()
            {
                return Next::Close(CLOSE_THROTTLED, "too many node proofs asked for");
            }
            let proof = state.node_key.sign_proof(
                state.public_url.as_str(),
                nonce,
                &client_nonce,
                state.clock.now(),
            );
            let answer = ServerMessage::Challenge {
                nonce: nonce.to_owned(),
                expires_in: CHALLENGE_LIFETIME,
                node_signature: Some(proof),
            };
            match send(session, &answer).await {
                Ok(()) => Next::Continue,
                Err(_) => Next::Close(1011, "send failed"),
            }
        }
        ClientMessage::Auth { .. } if attachment.session_id.is_some() => {
            Next::Close(CLOSE_BAD_MESSAGE, "already authenticated")
        }
        ClientMessage::Auth {
            assertion,
            access_token,
        } => {
            let now = state.clock.now();
            let (session_id, granted) = match (assertion, access_token) {
                (Some(assertion), None) => {
                    match sign_in(state, client, nonce, &assertion, now).await {
                        Ok(attached) => {
                            attachment.created_here = true;
                            attached
                        }
                        Err(close) => return close,
                    }
                }
                (None, Some(token)) => match attach(state, client, &token, now) {
                    Ok(attached) => attached,
                    Err(close) => return close,
                },
                _ => {
                    return Next::Close(
                        CLOSE_BAD_MESSAGE,
                        "auth needs exactly one of assertion and access_token",
                    );
                }
            };
            let frame = ServerMessage::Ready {
                session_id: session_id.clone(),
            };
            attachment.session_id = Some(session_id);
            attachment.capabilities = granted;
            match send(session, &frame).await {
                Ok(()) => Next::Continue,
                Err(_) => Next::Close(1011, "send failed"),
            }
        }
    }
}

/// Attaches the socket to the session of an access token, if the session's credential may
/// open sockets (`session`) from this address. A token that is not valid counts as a failed
/// sign-in of the client, so that guessing tokens over sockets is throttled like assertions; a
/// valid token always attaches.
fn attach(
    state: &AppState,
    client: &Client,
    token: &str,
    now: i64,
) -> Result<(String, Capabilities), Next> {
    if let Some((info, _)) = state.sessions.authenticate(token, now) {
        let Some(credential) = state
            .credentials
            .get(&info.credential_id)
            .filter(|credential| !credential.has_expired(now))
        else {
            return Err(Next::Close(
                CLOSE_UNAUTHORIZED,
                "the session's credential has ended",
            ));
        };
        if !credential.allows_address(Some(client.ip)) {
            return Err(Next::Close(
                CLOSE_FORBIDDEN,
                "the credential may not be used from this address",
            ));
        }
        // A session may do no more than its credential may now, whatever its row says.
        let capabilities = info.capabilities.intersection(credential.capabilities);
        if !capabilities.contains(Capability::Session) {
            return Err(Next::Close(
                CLOSE_FORBIDDEN,
                "the credential may not open sockets (capability session)",
            ));
        }
        return Ok((info.id, capabilities));
    }
    let actor = client.actor();
    match state.attempts.begin_login(&actor, now) {
        Ok(attempt) => {
            attempt.failed(
                &actor,
                "has an access token that is not valid (WebSocket)",
                Windows::Client,
            );
            Err(Next::Close(
                CLOSE_UNAUTHORIZED,
                "the access token is not valid",
            ))
        }
        Err(_) => Err(Next::Close(
            CLOSE_THROTTLED,
            "too many failed sign-ins from this address",
        )),
    }
}

async fn sign_in(
    state: &AppState,
    client: &Client,
    nonce: &str,
    assertion: &str,
    now: i64,
) -> Result<(String, Capabilities), Next> {
    let actor = client.actor();
    let context = state.login_context();
    match login::sign_in(
        &context,
        login::Proof::Assertion(assertion),
        Some(nonce),
        &actor,
        now,
    )
    .await
    {
        Ok(principal) if !principal.capabilities.contains(Capability::Session) => Err(Next::Close(
            CLOSE_FORBIDDEN,
            "the credential may not open sockets (capability session)",
        )),
        Ok(principal) => state
            .sessions
            .create(&state.store, &principal, &actor, "websocket", now)
            .await
            .map(|(info, _token)| (info.id, info.capabilities))
            .map_err(|_| Next::Close(1011, "the node could not store the session")),
        Err(LoginError::Throttled { .. }) => {
            Err(Next::Close(CLOSE_THROTTLED, "too many failed sign-ins"))
        }
        Err(LoginError::NetworkNotAllowed { .. }) => Err(Next::Close(
            CLOSE_FORBIDDEN,
            "the credential may not be used from this address",
        )),
        Err(_) => Err(Next::Close(CLOSE_UNAUTHORIZED, "sign-in refused")),
    }
}
