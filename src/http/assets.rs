//! Static assets (ES modules, CSS) embedded in the binary with rust-embed and served under a
//! versioned path, `/assets/<version>/<file>`, where the version is a hash of every asset: a
//! new build gets new URLs, so the files can be cached for a year.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::error::Problem;
use crate::jose::b64;

/// The files under `static/`.
#[derive(RustEmbed)]
#[folder = "static/"]
struct Embedded;

/// How long browsers may keep a versioned asset.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The version of the embedded assets: 12 base64url characters of a hash over every file's
/// name and contents.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names: Vec<String> = Embedded::iter().map(|n| n.into_owned()).collect();
        names.sort();
        let mut hasher = Sha256::new();
        for name in names {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            if let Some(file) = Embedded::get(&name) {
                hasher.update(file.metadata.sha256_hash());
            }
        }
        b64::encode(&hasher.finalize()[..9])
    })
}

/// The URL of an asset, for templates.
pub fn url(path: &str) -> String {
    format!("/assets/{}/{path}", version())
}

/// Every embedded asset's path and size, for the size budget test.
pub fn sizes() -> Vec<(String, usize)> {
    Embedded::iter()
        .filter_map(|name| Embedded::get(&name).map(|f| (name.into_owned(), f.data.len())))
        .collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("mjs" | "js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// `GET /assets/{version}/{path}`: the asset, if the version is current.
pub async fn asset(
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (asked_version, file) = path.into_inner();
    if asked_version != version() {
        return Err(Problem::not_found());
    }
    let embedded = Embedded::get(&file).ok_or_else(Problem::not_found)?;
    let etag = format!(
        "\"{}\"",
        b64::encode(&embedded.metadata.sha256_hash()[..16])
    );
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, IMMUTABLE));
    if matches {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((header::CONTENT_TYPE, content_type(&file)))
        .body(embedded.data.into_owned()))
}
