//! IndieAuth (the living standard, revision of 11 July 2024): the node as its owner's
//! authorization server. URL rules (`urls`), request parsing (`request`), client lookup
//! (`client`, `client_page`), codes, grants and tokens (`grants`) and the owner's profile
//! (`profile`); the HTTP endpoints are in `src/http/indieauth.rs`.

pub mod client;
pub mod client_page;
pub mod grants;
pub mod profile;
pub mod request;
pub mod urls;

use crate::config::PublicUrl;

/// The scopes listed in the metadata document. Clients may ask for others; the owner sees
/// each one asked for and decides.
pub const SCOPES_SUPPORTED: [&str; 12] = [
    "profile", "email", "create", "update", "delete", "undelete", "media", "draft", "read",
    "follow", "mute", "block",
];

/// The issuer identifier (§3.1, RFC 9207), which is also the owner's profile URL `me`: the
/// public URL with a trailing slash. The metadata's `issuer`, every `iss` and every `me` are
/// this exact string.
pub fn issuer(public_url: &PublicUrl) -> String {
    format!("{}/", public_url.as_str())
}

/// The URL of the metadata document (§4.1.1).
pub fn metadata_url(public_url: &PublicUrl) -> String {
    format!(
        "{}/.well-known/oauth-authorization-server",
        public_url.as_str()
    )
}
