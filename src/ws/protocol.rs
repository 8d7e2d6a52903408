//! The WebSocket message schema: JSON text frames, tagged by `type`, parsed strictly.

use serde::{Deserialize, Serialize};

/// Close code: authentication failed, timed out, or the session ended.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code: the credential may not do this (a capability it lacks, or a network it may not
/// be used from).
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// Close code: a frame that is not a valid client message.
pub const CLOSE_BAD_MESSAGE: u16 = 4400;
/// Close code: no answer to the server's pings.
pub const CLOSE_HEARTBEAT_TIMEOUT: u16 = 4408;
/// Close code: too many failed sign-ins from this client.
pub const CLOSE_THROTTLED: u16 = 4429;

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Sign in with a login assertion over this socket's challenge, or attach an access token.
    Auth {
        #[serde(default)]
        assertion: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
    },
    /// An application-level ping; answered with a pong carrying the same id.
    Ping { id: u64 },
    /// The client's own nonce, before it signs in: the node answers the socket's challenge
    /// again with its node key's proof over both nonces (mutual authentication).
    Challenge { client_nonce: String },
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Challenge {
        nonce: String,
        expires_in: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        node_signature: Option<String>,
    },
    Ready {
        session_id: String,
    },
    Pong {
        id: u64,
    },
    Event(Event),
}

/// Something that happened to the owner's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    #[serde(rename = "session.created")]
    SessionCreated {
        session_id: String,
        created_at: i64,
        ip: String,
        user_agent: Option<String>,
    },
    #[serde(rename = "session.revoked")]
    SessionRevoked { session_id: String },
    #[serde(rename = "session.ended")]
    SessionEnded { session_id: String, reason: String },
    #[serde(rename = "inbox.message")]
    InboxMessage { id: String },
    /// A new device asks to be enrolled (to sockets whose credential has `credentials`).
    #[serde(rename = "enrollment.requested")]
    EnrollmentRequested(Box<crate::auth::enrollment::RequestView>),
    /// An enrollment request was approved, denied or ran out.
    #[serde(rename = "enrollment.answered")]
    EnrollmentAnswered {
        request_id: String,
        status: &'static str,
    },
}

/// Parses a text frame, or says what is wrong with it. Only a JSON object is a message: the
/// derived parser alone would also read an array such as `["ping",7]`, tag first.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    if !crate::jose::is_json_object(text.as_bytes()) {
        return Err("a message must be a JSON object".into());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"ping","id":7}"#),
            Ok(ClientMessage::Ping { id: 7 })
        );
        assert_eq!(
            parse(r#"{"type":"auth","access_token":"t"}"#),
            Ok(ClientMessage::Auth {
                assertion: None,
                access_token: Some("t".into())
            })
        );
    }

    #[test]
    fn unknown_types_fields_and_duplicates_are_refused() {
        for bad in [
            r#"{"type":"shout"}"#,
            r#"{"type":"ping","id":7,"extra":1}"#,
            r#"{"type":"ping","id":"7"}"#,
            r#"{"type":"ping","id":7,"id":8}"#,
            r#"{"id":7}"#,
            r#"[]"#,
            "not json",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_array_is_not_a_message_even_with_the_tag_first() {
        for bad in [r#"["ping",7]"#, r#"["auth"]"#, r#" ["auth","assertion"]"#] {
            assert_eq!(
                parse(bad),
                Err("a message must be a JSON object".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn events_serialize_with_their_names() {
        let frame = serde_json::to_value(ServerMessage::Event(Event::SessionRevoked {
            session_id: "s".into(),
        }))
        .expect("serialize");
        assert_eq!(
            frame,
            serde_json::json!({"type": "event", "event": "session.revoked", "session_id": "s"})
        );
    }
}
