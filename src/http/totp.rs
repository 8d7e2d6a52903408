//! `/api/v1/totp`: the TOTP second factor of password unlock. Reading its status, setting it
//! up (a secret, its `otpauth://` URI and a QR code as one SVG path), confirming it with a
//! code, turning it off and replacing the recovery codes. Every change needs a session with the
//! `owner` capability that stepped up.

use actix_web::{HttpResponse, web};
use qrcodegen::{QrCode, QrCodeEcc};
use serde::Deserialize;

use super::AppState;
use super::client::Client;
use super::json::StrictJson;
use super::session_auth::{SignedIn, SteppedUpOwner};
use crate::auth::credentials::Capability;
use crate::auth::totp::{self, CodeChange, SecondFactor};
use crate::error::Problem;

/// The account name in the `otpauth://` URI; the issuer is the node's host.
const ACCOUNT: &str = "owner";
/// Light modules around the code, as the QR specification asks.
const QUIET_ZONE: i32 = 4;

/// `GET /api/v1/totp` (capability `owner`) → `{"enabled","enabled_at","recovery_codes_left"}`.
pub async fn status(
    state: web::Data<AppState>,
    signed_in: SignedIn,
) -> Result<HttpResponse, Problem> {
    signed_in.require(Capability::Owner)?;
    let status = totp::status(&state.store).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// `POST /api/v1/totp/setup` (owner, step-up; no body) → `{"secret","otpauth_uri","qr_svg"}`;
/// 409 `totp-enabled` while TOTP is on.
pub async fn setup(
    state: web::Data<AppState>,
    _owner: SteppedUpOwner,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let issuer = issuer(state.public_url.as_str());
    let setup = totp::start_setup(&state.store, &state.totp, issuer, ACCOUNT, now).await?;
    let qr_svg = qr_svg(&setup.otpauth_uri)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "secret": setup.secret.as_str(),
        "otpauth_uri": setup.otpauth_uri.as_str(),
        "qr_svg": qr_svg,
    })))
}

/// A body that carries one current code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    totp: String,
}

/// `POST /api/v1/totp/confirm` `{"totp"}` (owner, step-up) → `{"recovery_codes":[...]}`: TOTP
/// is on. 401 `totp-invalid` for a wrong code; 409 when no setup waits or TOTP is on already.
pub async fn confirm(
    state: web::Data<AppState>,
    client: Client,
    SteppedUpOwner(signed_in): SteppedUpOwner,
    StrictJson(body): StrictJson<CodeBody>,
) -> Result<HttpResponse, Problem> {
    let now = state.clock.now();
    let codes = totp::confirm(
        &state.store,
        &state.totp,
        &body.totp,
        &signed_in.session.id,
        client.actor(),
        now,
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "recovery_codes": codes })))
}

/// The body that turns TOTP off: a current code or a recovery code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    #[serde(default)]
    totp: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

/// `DELETE /api/v1/totp` `{"totp"}` or `{"recovery_code"}` (owner, step-up) → 204. 401
/// `totp-invalid` for a wrong code (counted in the client's unlock window).
pub async fn disable(
    state: web::Data<AppState>,
    client: Client,
    SteppedUpOwner(signed_in): SteppedUpOwner,
    StrictJson(body): StrictJson<DisableBody>,
) -> Result<HttpResponse, Problem> {
    let factor = match SecondFactor::from_members(body.totp, body.recovery_code) {
        Ok(Some(factor)) => factor,
        Ok(None) => {
            return Err(Problem::invalid_field(
                "totp",
                "Send totp (the 6 digits of the authenticator app) or recovery_code.",
            ));
        }
        Err(both) => return Err(Problem::invalid_field("recovery_code", both.to_string())),
    };
    totp::disable(code_change(&state, &client, &signed_in), factor).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/totp/recovery-codes` `{"totp"}` (owner, step-up) → `{"recovery_codes":[...]}`:
/// ten new codes; the old ones stop working.
pub async fn replace_recovery_codes(
    state: web::Data<AppState>,
    client: Client,
    SteppedUpOwner(signed_in): SteppedUpOwner,
    StrictJson(body): StrictJson<CodeBody>,
) -> Result<HttpResponse, Problem> {
    let codes =
        totp::replace_recovery_codes(code_change(&state, &client, &signed_in), &body.totp).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "recovery_codes": codes })))
}

fn code_change<'a>(
    state: &'a AppState,
    client: &Client,
    signed_in: &'a SignedIn,
) -> CodeChange<'a> {
    CodeChange {
        store: &state.store,
        vault: &state.totp,
        attempts: &state.attempts,
        session_id: &signed_in.session.id,
        actor: client.actor(),
        now: state.clock.now(),
    }
}

/// The issuer an authenticator app shows: the public URL's host (and port).
fn issuer(public_url: &str) -> &str {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// The QR code of `text` as an SVG of one `<path>` (a square per run of dark modules) in a
/// `viewBox` with the quiet zone: no script, no style, no reference to anything outside.
fn qr_svg(text: &str) -> Result<String, Problem> {
    let code = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|e| Problem::internal(&format!("the otpauth URI does not fit a QR code: {e}")))?;
    let size = code.size();
    let mut path = String::new();
    for y in 0..size {
        let mut x = 0;
        while x < size {
            if !code.get_module(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < size && code.get_module(x, y) {
                x += 1;
            }
            let run = x - start;
            path.push_str(&format!(
                "M{} {}h{run}v1h-{run}z",
                start + QUIET_ZONE,
                y + QUIET_ZONE
            ));
        }
    }
    let side = size + 2 * QUIET_ZONE;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" \
         shape-rendering=\"crispEdges\"><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_the_public_url_host_and_port() {
        assert_eq!(issuer("https://id.example.org"), "id.example.org");
        assert_eq!(issuer("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(issuer("https://id.example.org/"), "id.example.org");
    }

    #[test]
    fn the_qr_svg_is_one_path_in_a_view_box_and_nothing_else() {
        let text = "otpauth://totp/id.example:owner?secret=GEZDGNBVGY3TQOJQ";
        let svg = qr_svg(text).expect("fits");
        let side = QrCode::encode_text(text, QrCodeEcc::Medium)
            .expect("fits")
            .size()
            + 2 * QUIET_ZONE;
        let head = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" \
             shape-rendering=\"crispEdges\"><path fill=\"#000\" d=\""
        );
        assert!(svg.starts_with(&head), "{svg}");
        assert!(svg.ends_with("\"/></svg>"));
        let data = &svg[head.len()..svg.len() - "\"/></svg>".len()];
        assert!(data.starts_with('M'));
        assert!(
            data.chars().all(|c| "Mhvz- 0123456789".contains(c)),
            "only moves and lines: {data}"
        );
    }
}
