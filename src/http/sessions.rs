//! `/api/v1/session`, `/api/v1/sessions` and `/api/v1/audit`: the signed-in owner's sessions
//! and audit log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::client::Client;
use super::session_auth::{SignedIn, SigningOut, session_cookie};
use crate::auth::credentials::{Capabilities, Capability};
use crate::auth::sessions::EndReason;
use crate::error::Problem;
use crate::store::StoreError;
use crate::store::audit_rows;

/// `GET /api/v1/session` (capability `session`) →
/// `{"session_id","kid","credential_id","capabilities","created_at","expires_at"}`.
pub async fn current(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Session)?;
    let session = signed_in.session;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "session_id": session.id,
        "kid": session.kid,
        "credential_id": session.credential_id,
        "capabilities": session.capabilities,
        "created_at": session.created_at,
        "expires_at": session.ends_at(&state.sessions.policy),
    })))
}

/// `DELETE /api/v1/session` → 204: signs out and clears the cookie, also from outside the
/// credential's networks.
pub async fn sign_out(
    state: web::Data<AppState>,
    client: Client,
    SigningOut(signed_in): SigningOut,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    state
        .sessions
        .end(
            &state.store,
            vec![signed_in.session.id],
            EndReason::SignedOut,
            &client.actor(),
            now,
        )
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut response = HttpResponse::NoContent();
    if signed_in.via_cookie {
        response.cookie(session_cookie(&state.public_url, None));
    }
    Ok(response.finish())
}

/// One entry of the session list.
#[derive(Debug, Serialize)]
struct SessionEntry {
    id: String,
    kid: String,
    credential_id: String,
    capabilities: Capabilities,
    created_at: i64,
    last_seen_at: i64,
    ip: String,
    user_agent: Option<String>,
    current: bool,
}

/// `GET /api/v1/sessions` (capability `sessions`) → `{"sessions":[...]}`, newest first.
pub async fn list(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Sessions)?;
    let sessions: Vec<SessionEntry> = state
        .sessions
        .list(state.clock.now())
        .into_iter()
        .map(|s| SessionEntry {
            current: s.id == signed_in.session.id,
            id: s.id,
            kid: s.kid,
            credential_id: s.credential_id,
            capabilities: s.capabilities,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions": sessions })))
}

/// `DELETE /api/v1/sessions/{id}` (capability `sessions`) → 204; 404 for an unknown id.
pub async fn revoke(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Sessions)?;
    let now = state.clock.now();
    let ended = state
        .sessions
        .end(
            &state.store,
            vec![id.into_inner()],
            EndReason::Revoked,
            &client.actor(),
            now,
        )
        .await
        .map_err(|e| Problem::internal(&e))?;
    if ended == 0 {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "session-not-found",
            "No such session",
            "There is no live session with this id.",
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/sessions/revoke-others` (capability `sessions`) → `{"revoked": n}`.
pub async fn revoke_others(
    state: web::Data<AppState>,
    client: Client,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Sessions)?;
    let now = state.clock.now();
    let others: Vec<String> = state
        .sessions
        .list(now)
        .into_iter()
        .map(|s| s.id)
        .filter(|id| *id != signed_in.session.id)
        .collect();
    let revoked = state
        .sessions
        .end(
            &state.store,
            others,
            EndReason::Revoked,
            &client.actor(),
            now,
        )
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "revoked": revoked })))
}

/// The audit page query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

/// The default and largest page of audit entries.
pub const AUDIT_PAGE: u32 = 50;
pub const MAX_AUDIT_PAGE: u32 = 500;

/// An audit page's `limit`, `default` when absent: 1 to [`MAX_AUDIT_PAGE`] or a 422.
fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, Problem> {
    let limit = limit.unwrap_or(default);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit",
            format!("limit must be from 1 to {MAX_AUDIT_PAGE}"),
        ));
    }
    Ok(limit)
}

/// `GET /api/v1/audit?limit=&before=` (capability `audit`) →
/// `{"entries":[...],"next_before"}`, newest first.
pub async fn audit(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Audit)?;
    let limit = page_limit(query.limit, AUDIT_PAGE)?;
    let before = query.before;
    let rows = state
        .store
        .run(move |c| audit_rows::page(c, limit, before))
        .await
        .map_err(|e: StoreError| Problem::internal(&e))?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let entries: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|row| {
            serde_json::json!({
                "seq": row.seq,
                "at": row.at,
                "event": row.event,
                "ip": row.ip,
                "user_agent": row.user_agent,
                "detail": serde_json::from_str::<serde_json::Value>(&row.detail)
                    .unwrap_or(serde_json::Value::Null),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "entries": entries,
        "next_before": next_before,
    })))
}

/// The audit chain query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditChainQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// The default page of the audit chain.
pub const AUDIT_CHAIN_PAGE: u32 = 100;

/// A chain position as devices remember it.
fn position(found: Option<(i64, Vec<u8>)>) -> serde_json::Value {
    match found {
        Some((seq, hash)) => serde_json::json!({ "seq": seq, "hash": crate::audit::hex(&hash) }),
        None => serde_json::Value::Null,
    }
}

/// `GET /api/v1/audit/chain?after=&limit=` (capability `audit`) → 200 `{"base","head",
/// "entries","more"}`: the entries after `after`, oldest first, with everything their hashes
/// cover, so that a device can check that the chain it saw before still leads to the head.
pub async fn audit_chain(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<AuditChainQuery>,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Audit)?;
    let limit = page_limit(query.limit, AUDIT_CHAIN_PAGE)?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(Problem::invalid_field(
            "after",
            "after must not be negative",
        ));
    }
    let (rows, base, head) = state
        .store
        .run(move |c| {
            // One read transaction, so that the head belongs to the same state as the rows.
            let tx = c.transaction()?;
            let found = (
                audit_rows::after(&tx, after, limit + 1)?,
                audit_rows::base(&tx)?,
                audit_rows::head(&tx)?,
            );
            tx.finish()?;
            Ok::<_, StoreError>(found)
        })
        .await
        .map_err(|e| Problem::internal(&e))?;
    let more = rows.len() > limit as usize;
    let entries: Vec<serde_json::Value> = rows
        .into_iter()
        .take(limit as usize)
        .map(|row| {
            serde_json::json!({
                "seq": row.seq,
                "at": row.at,
                "event": row.event,
                "ip": row.ip,
                "ip_digest": row.ip_digest.as_deref().map(crate::audit::hex),
                "user_agent": row.user_agent,
                "detail": row.detail,
                "hash": crate::audit::hex(&row.hash),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "base": position(base),
        "head": position(head),
        "entries": entries,
        "more": more,
    })))
}
