//! `/api/v1/inbox` and `/api/v1/owner/encryption-key(s)`: receiving messages from anyone,
//! reading, marking and deleting them (capability `inbox`), and the owner's encryption keys.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::owner::EncryptionKeyBody;
use super::session_auth::{SignedIn, SteppedUpOwner};
use crate::auth::credentials::Capability;
use crate::auth::encryption_keys::{self, AddError};
use crate::error::Problem;
use crate::inbox::{self, ReceiveError, SenderKeysError};
use crate::jose::message::{MAX_MESSAGE_LEN, MessageError};
use crate::store::StoreError;
use crate::store::inbox::{self as rows, MessageRow};

/// The largest `POST /api/v1/inbox` body: a message at its limit and the JSON around it.
pub const MAX_INBOX_BODY: usize = MAX_MESSAGE_LEN + 1024;
/// Messages a page lists when `limit` is absent.
const DEFAULT_PAGE: u32 = 20;

/// A message as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// A compact JWE (a JSON string) or a general JSON serialization (a JSON object).
    message: Box<RawValue>,
}

fn store_problem(error: StoreError) -> Problem {
    Problem::internal(&error)
}

/// The problem for a message that was not stored.
fn receive_problem(error: ReceiveError) -> Problem {
    match error {
        ReceiveError::RateLimited { scope, retry_after } => {
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "inbox-rate-limited",
                "Too many messages",
                format!(
                    "The inbox takes a limited number of messages per minute ({}); retry after \
                     {retry_after} seconds.",
                    if scope == "client" {
                        "from this address"
                    } else {
                        "from everyone"
                    }
                ),
            );
            problem.retry_after = Some(retry_after);
            problem.scope = Some(scope);
            problem
        }
        ReceiveError::NoKey => Problem::new(
            StatusCode::NOT_FOUND,
            "no-encryption-key",
            "The owner has no encryption key",
            "This node publishes no encryption key yet, so it cannot take messages.",
        ),
        ReceiveError::Refused(MessageError::TooLong(_)) => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The request body is too large",
            format!("A message may be at most {MAX_MESSAGE_LEN} bytes."),
        ),
        ReceiveError::Refused(error @ MessageError::UnknownKid(_)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-encryption-key",
            "The message is not for a key of this node",
            format!(
                "The message {error}; fetch the current key from /.well-known/jwks.json \
                 (the key with \"use\":\"enc\")."
            ),
        ),
        ReceiveError::Refused(error) => {
            Problem::invalid_field("message", format!("The message {error}."))
        }
        ReceiveError::Full => Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "inbox-full",
            "The inbox is full",
            "The owner's inbox holds as much as it may; it takes new messages once the owner \
             deletes some.",
        ),
        ReceiveError::Store(error) => store_problem(error),
    }
}

/// `POST /api/v1/inbox` `{"message"}` (no session) → 201 `{"id"}`. Its answers are readable
/// by other origins (the route adds the CORS header), so that sites can send from a browser.
pub async fn send(
    state: web::Data<AppState>,
    client: Client,
    StrictJson(body): StrictJson<SendBody, MAX_INBOX_BODY>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    state
        .credentials
        .owner(&state.store, now)
        .await
        .map_err(store_problem)?;
    let keys = state.credentials.encryption_keys();
    let id = state
        .inbox
        .receive(&state.store, &keys, &body.message, client.ip, now)
        .await
        .map_err(receive_problem)?;
    state.sessions.announce_inbox_message(&id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/inbox/{id}")))
        .json(serde_json::json!({ "id": id })))
}

/// `OPTIONS /api/v1/inbox`: the CORS preflight of a cross-origin send.
pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

/// A stored message as the API shows it.
#[derive(Debug, Serialize)]
struct MessageEntry {
    id: String,
    kid: String,
    received_at: i64,
    size: i64,
    read_at: Option<i64>,
    /// The JWE as received: a JSON string (compact) or object (general JSON).
    message: Box<RawValue>,
}

impl MessageEntry {
    fn from_row(row: MessageRow) -> Result<Self, Problem> {
        let message = if row.jwe.starts_with('{') {
            RawValue::from_string(row.jwe)
        } else {
            serde_json::to_string(&row.jwe).and_then(RawValue::from_string)
        }
        .map_err(|e| Problem::internal(&format!("a stored message is not JSON: {e}")))?;
        Ok(MessageEntry {
            id: row.id,
            kid: row.kid,
            received_at: row.received_at,
            size: row.size,
            read_at: row.read_at,
            message,
        })
    }
}

/// A page of the listing.
#[derive(Debug, Serialize)]
struct MessagePage {
    messages: Vec<MessageEntry>,
    next_before: Option<String>,
}

/// The listing's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    /// The id of the last message of the previous page.
    before: Option<String>,
}

/// `GET /api/v1/inbox?limit=&before=` (capability `inbox`) → `{"messages":[...],"next_before"}`,
/// newest first.
pub async fn list(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Inbox)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=inbox::MAX_PAGE).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit",
            format!("limit must be from 1 to {}.", inbox::MAX_PAGE),
        ));
    }
    let before = query.before.clone();
    let page = state
        .store
        .run(move |c| rows::page(c, limit, before.as_deref()))
        .await
        .map_err(store_problem)?
        .ok_or_else(|| Problem::invalid_field("before", "before names no stored message."))?;
    let next_before = (page.len() == limit as usize)
        .then(|| page.last().map(|row| row.id.clone()))
        .flatten();
    let messages = page
        .into_iter()
        .map(MessageEntry::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    // Serialized as a struct, so each message's JSON stays exactly as it was received.
    Ok(HttpResponse::Ok().json(MessagePage {
        messages,
        next_before,
    }))
}

/// `GET /api/v1/inbox/{id}` (capability `inbox`) → the message; 404 for an unknown id.
pub async fn fetch(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Inbox)?;
    let id = id.into_inner();
    let row = state
        .store
        .run(move |c| rows::get(c, &id))
        .await
        .map_err(store_problem)?
        .ok_or_else(Problem::not_found)?;
    Ok(HttpResponse::Ok().json(MessageEntry::from_row(row)?))
}

/// `DELETE /api/v1/inbox/{id}` (capability `inbox`) → 204; 404 for an unknown id.
pub async fn delete(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Inbox)?;
    let now = state.clock.now();
    if !inbox::delete(&state.store, &id, client.actor(), now)
        .await
        .map_err(store_problem)?
    {
        return Err(Problem::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/inbox/{id}/read` (capability `inbox`) → 204; 404 for an unknown id.
pub async fn mark_read(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Inbox)?;
    let now = state.clock.now();
    let id = id.into_inner();
    if !state
        .store
        .run(move |c| rows::mark_read(c, &id, now))
        .await
        .map_err(store_problem)?
    {
        return Err(Problem::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/owner/encryption-key` (capability `owner`, step-up) `{"public_key",
/// "wrapped_key","binding"}` → 201 `{"kid","retired"}`: the key becomes the current one.
pub async fn add_encryption_key(
    state: web::Data<AppState>,
    client: Client,
    SteppedUpOwner(_signed_in): SteppedUpOwner,
    StrictJson(body): StrictJson<EncryptionKeyBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let owner_key = state
        .credentials
        .owner_key(&state.store, now)
        .await
        .map_err(store_problem)?
        .ok_or_else(Problem::not_claimed)?;
    let new = body.as_new();
    let row = encryption_keys::check_new(
        new.public_key_json,
        new.wrapped_key,
        new.binding,
        &owner_key,
        now,
    )
    .map_err(|e| Problem::invalid_field(e.field, format!("{} {}.", e.field, e.message)))?;
    let kid = row.kid.clone();
    let actor = client.actor();
    let owner_kid = owner_key.kid.clone();
    let retired = state
        .store
        .run(move |c| encryption_keys::add(c, &row, &owner_kid, &actor, now))
        .await
        .map_err(|e| match e {
            AddError::Exists => Problem::new(
                StatusCode::CONFLICT,
                "encryption-key-exists",
                "The encryption key is stored already",
                "An encryption key with this kid is stored already; make a new key pair.",
            ),
            AddError::OwnerChanged => Problem::new(
                StatusCode::CONFLICT,
                "owner-key-changed",
                "The owner key changed",
                "A rotation replaced the owner key while this request's binding (by the old key) \
                 was checked; bind the key again with the new owner key.",
            ),
            AddError::Store(error) => store_problem(error),
        })?;
    state
        .credentials
        .reload(&state.store, now)
        .await
        .map_err(store_problem)?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "kid": kid, "retired": retired })))
}

/// An encryption key as its owner's clients fetch it.
#[derive(Debug, Serialize)]
struct EncryptionKeyEntry {
    kid: String,
    public_key: crate::jose::jwk::PublicJwk,
    wrapped_key: String,
    created_at: i64,
    retired_at: Option<i64>,
}

/// `GET /api/v1/owner/encryption-keys` (capability `inbox`, or `owner`, which a rotation needs)
/// → `{"keys":[...]}`, the current key first, each with its wrapped private key.
pub async fn encryption_keys(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in
        .require(Capability::Inbox)
        .or_else(|_| signed_in.require(Capability::Owner))?;
    let keys: Vec<EncryptionKeyEntry> = state
        .credentials
        .encryption_keys()
        .all()
        .iter()
        .map(|key| EncryptionKeyEntry {
            kid: key.kid.clone(),
            public_key: key.public.to_jwk(),
            wrapped_key: key.wrapped_key.clone(),
            created_at: key.created_at,
            retired_at: key.retired_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": keys })))
}

/// The sender-keys query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderKeysQuery {
    /// The sender site's URL, as its message's `iss` names it.
    iss: String,
}

/// `GET /api/v1/inbox/sender-keys?iss=URL` (capability `inbox`) → `{"iss","keys","inbox"}`: the
/// sender site's JWKS, fetched by the node (the page cannot fetch other origins), for the page
/// to check a message's signature. 422 for an `iss` the node does not fetch; 502 when the site
/// does not answer with a JWKS.
pub async fn sender_keys(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<SenderKeysQuery>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Inbox)?;
    let now = state.clock.now();
    let iss = query.into_inner().iss;
    let fetcher = state.clone();
    let keys = web::block(move || fetcher.sender_keys.keys(&iss, now))
        .await
        .map_err(|e| Problem::internal(&e))?
        .map_err(|e| match e {
            SenderKeysError::BadIss(_) => {
                Problem::invalid_field("iss", format!("The sender's keys {e}."))
            }
            SenderKeysError::Unavailable(_) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "sender-keys-unavailable",
                "The sender's keys could not be fetched",
                format!("The sender's keys {e}."),
            ),
        })?;
    Ok(HttpResponse::Ok().json(keys))
}
