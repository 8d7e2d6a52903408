//! `/.well-known/`: the owner's public key as a JWKS and as a did:web DID document, and the
//! operator's extra files from the well-known directory.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::AppState;
use crate::auth::encryption_keys::{self, EncryptionKey};
use crate::config::PublicUrl;
use crate::error::Problem;
use crate::jose::jwk::{OwnerPublicKey, PublicJwk};
use crate::jose::jws::VerifyingKey;
use crate::well_known_dir::etag;

/// The media type of the JWKS (RFC 7517 §8.5).
pub const JWK_SET_JSON: &str = "application/jwk-set+json";
/// The media type of a DID document in JSON.
pub const DID_JSON: &str = "application/did+json";
/// How long caches may keep the public documents.
pub const PUBLIC_CACHE_CONTROL: &str = "public, max-age=300";

/// A key as published in the JWKS.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JwksKey {
    #[serde(flatten)]
    pub jwk: PublicJwk,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub key_use: &'static str,
}

/// The JWKS document: the owner signing key (whose kid, its thumbprint, the caller has computed
/// once), the current encryption key when there is one, and the node's own key once the owner
/// key has bound it.
pub fn jwks_body(
    key: &OwnerPublicKey,
    kid: &str,
    encryption_key: Option<&EncryptionKey>,
    node_key: Option<&VerifyingKey>,
) -> String {
    let signing = JwksKey {
        jwk: key.to_jwk(),
        kid: kid.to_owned(),
        alg: "ES384",
        key_use: "sig",
    };
    let encryption = encryption_key.map(|enc| JwksKey {
        jwk: enc.public.to_jwk(),
        kid: enc.kid.clone(),
        alg: encryption_keys::KEY_ALG,
        key_use: "enc",
    });
    let node = node_key.map(|node| JwksKey {
        jwk: node.public.to_jwk(),
        kid: node.kid.clone(),
        alg: "ES384",
        key_use: "sig",
    });
    let keys: Vec<JwksKey> = std::iter::once(signing)
        .chain(encryption)
        .chain(node)
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// The did:web DID document for `key` at `public_url`, with the current encryption key under
/// `keyAgreement` when there is one.
pub fn did_document_body(
    key: &OwnerPublicKey,
    encryption_key: Option<&EncryptionKey>,
    public_url: &PublicUrl,
) -> String {
    let did = public_url.did_web();
    let method = |kid: &str, jwk: PublicJwk| {
        serde_json::json!({
            "id": format!("{did}#{kid}"),
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": jwk,
        })
    };
    let method_id = format!("{did}#{}", key.thumbprint());
    let mut methods = vec![method(&key.thumbprint(), key.to_jwk())];
    let mut document = serde_json::json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/jws-2020/v1"
        ],
        "id": did,
        "authentication": [method_id],
        "assertionMethod": [method_id],
    });
    if let Some(enc) = encryption_key {
        methods.push(method(&enc.kid, enc.public.to_jwk()));
        document["keyAgreement"] = serde_json::json!([format!("{did}#{}", enc.kid)]);
    }
    document["verificationMethod"] = serde_json::Value::Array(methods);
    document.to_string()
}

/// Whether `If-None-Match` names `tag` (or is `*`). Weak comparison, as RFC 9110 §13.1.2 asks.
fn matches_if_none_match(request: &HttpRequest, tag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == "*" || candidate == tag)
}

/// A public, cacheable, cross-origin readable document with ETag revalidation.
fn public_document(
    request: &HttpRequest,
    content_type: &'static str,
    body: String,
) -> HttpResponse {
    let tag = etag(body.as_bytes());
    let not_modified = matches_if_none_match(request, &tag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, PUBLIC_CACHE_CONTROL))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    if not_modified {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(body)
}

/// The owner key to publish; 404 `not-claimed` before a claim, 503 while the owner record
/// fails its check.
async fn owner_key(state: &AppState) -> Result<std::sync::Arc<VerifyingKey>, Problem> {
    if state.credentials.has_record_problem() {
        return Err(Problem::owner_record_invalid());
    }
    state
        .credentials
        .owner_key(&state.store, state.clock.now())
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(Problem::not_claimed)
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let key = owner_key(&state).await?;
    let node_key = state.node_key.get();
    let encryption_keys = state.credentials.encryption_keys();
    let current = encryption_keys.current();
    let mut response = public_document(
        &request,
        JWK_SET_JSON,
        jwks_body(
            &key.public,
            &key.kid,
            current,
            Some(&node_key)
                .filter(|node| state.node_binding.is_bound(&key.kid, node.kid()))
                .map(|node| node.verifying_key()),
        ),
    );
    if current.is_some() {
        // Where messages to the encryption key go (Linked Data Notifications' inbox relation).
        let link = format!(
            "<{}/api/v1/inbox>; rel=\"{}\"",
            state.public_url.as_str().trim_end_matches('/'),
            crate::inbox::INBOX_REL
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
            response.headers_mut().insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Link"),
            );
        }
    }
    Ok(response)
}

/// `GET /.well-known/siteid/node-key.json`: the node's own key and the owner key's binding of
/// it (`null` until the current owner key has bound it), CORS `*`.
pub async fn node_key(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let owner = state
        .credentials
        .owner_key(&state.store, state.clock.now())
        .await
        .map_err(|e| Problem::internal(&e))?;
    let node_key = state.node_key.get();
    let binding = owner.and_then(|owner| state.node_binding.current(&owner.kid, node_key.kid()));
    let node = node_key.verifying_key();
    let body = serde_json::json!({
        "kid": node.kid,
        "jwk": JwksKey {
            jwk: node.public.to_jwk(),
            kid: node.kid.clone(),
            alg: "ES384",
            key_use: "sig",
        },
        "binding": binding,
    });
    Ok(public_document(
        &request,
        "application/json",
        body.to_string(),
    ))
}

/// The media type of the key history.
pub const KEY_HISTORY_JSON: &str = "application/json";

/// A key of the history as published.
#[derive(Debug, Serialize)]
struct HistoryKey {
    kid: String,
    jwk: PublicJwk,
    since: i64,
    statement: String,
}

/// `GET /.well-known/siteid/keys.json`: every key the owner has had, oldest first, each with
/// the statement that introduced it. Empty on a node claimed before key histories.
pub async fn key_history(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, Problem> {
    // The history checked together with the key the JWKS serves, never rows read since.
    owner_key(&state).await?;
    let keys = state
        .credentials
        .history()
        .iter()
        .map(|row| {
            let jwk = OwnerPublicKey::from_json(&row.public_jwk)
                .map_err(|e| Problem::internal(&format!("a checked history key {e}")))?
                .to_jwk();
            Ok(HistoryKey {
                kid: row.kid.clone(),
                jwk,
                since: row.since,
                statement: row.statement.clone(),
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let mut body = serde_json::json!({ "keys": keys });
    // The current encryption key with the owner key's binding of it: a device that trusts the
    // owner key can tell the published encryption key is the owner's.
    if let Some(enc) = state.credentials.encryption_keys().current() {
        body["encryption_key"] = serde_json::json!({
            "kid": enc.kid,
            "jwk": enc.public.to_jwk(),
            "binding": enc.binding,
        });
    }
    Ok(public_document(
        &request,
        KEY_HISTORY_JSON,
        body.to_string(),
    ))
}

/// `GET /.well-known/did.json`.
pub async fn did_document(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let key = owner_key(&state).await?;
    let encryption_keys = state.credentials.encryption_keys();
    let body = did_document_body(&key.public, encryption_keys.current(), &state.public_url);
    Ok(public_document(&request, DID_JSON, body))
}

/// `GET /.well-known/<name>`: a file from the well-known directory, or 404.
pub async fn directory_file(
    state: web::Data<AppState>,
    request: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let file = state
        .well_known_dir
        .lookup(&name)
        .ok_or_else(Problem::not_found)?;
    let not_modified = matches_if_none_match(&request, &file.etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, file.etag.clone()))
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        ));
    if not_modified {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((header::CONTENT_TYPE, file.content_type))
        .body(file.body.clone()))
}
