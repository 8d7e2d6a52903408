//! The browser app's HTML pages, rendered with askama: the public home page (an h-card that
//! works without JavaScript), and the shells of the setup, login, account, recovery-shares,
//! credentials, two-step unlock, inbox and recover pages, whose scripts are ES modules under
//! `/assets/`. Every page carries the security headers.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::AppState;
use super::assets;
use crate::error::Problem;
use crate::indieauth::profile::Link;

/// The Content-Security-Policy of every page: scripts, styles and connections from this origin
/// only; no inline code, no plugins, no framing, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    title: String,
    css: String,
    name: Option<&'a str>,
    note: Option<&'a str>,
    photo: Option<&'a str>,
    email: Option<&'a str>,
    links: &'a [Link],
    /// The profile URL `me`: the public URL with a trailing slash.
    me: String,
    metadata_url: String,
    authorization_endpoint: String,
    token_endpoint: String,
    kid: Option<String>,
}

/// The pages' CSP with `source` added to `directive` (which must be one of its directives).
pub fn policy_with(directive: &str, source: &str) -> String {
    CONTENT_SECURITY_POLICY
        .split("; ")
        .map(|part| {
            if part.split(' ').next() == Some(directive) {
                format!("{part} {source}")
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The fields every app page shares.
pub struct AppFields {
    pub title: &'static str,
    pub css: String,
    pub script: String,
    pub page: &'static str,
    pub public_url: String,
    pub assets: String,
    /// Whether this node can use passkeys (its public URL's host is a domain name).
    pub passkeys: bool,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "credentials.html")]
struct CredentialsPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    app: AppFields,
}

#[derive(Template)]
#[template(path = "recover.html")]
struct RecoverPage {
    app: AppFields,
}

/// An HTML answer with the page security headers.
pub fn html(state: &AppState, body: String) -> HttpResponse {
    html_with_policy(state, body, None)
}

/// An HTML answer with the page security headers and `policy` as its CSP (the common one when
/// `None`).
pub fn html_with_policy(state: &AppState, body: String, policy: Option<&str>) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            policy.unwrap_or(CONTENT_SECURITY_POLICY).to_owned(),
        ))
        .insert_header(("cross-origin-opener-policy", "same-origin"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if state.public_url.is_https() {
        response.insert_header((header::STRICT_TRANSPORT_SECURITY, "max-age=63072000"));
    }
    response.body(body)
}

pub fn render(template: &impl Template) -> Result<String, Problem> {
    template
        .render()
        .map_err(|e| Problem::internal(&format!("rendering a page failed: {e}")))
}

/// `GET /`: the owner's public page.
pub async fn home(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let kid = state
        .credentials
        .owner_key(&state.store, state.clock.now())
        .await
        .map_err(|e| Problem::internal(&e))?
        .map(|key| key.kid.clone());
    let profile = state.profile.get();
    let base = state.public_url.as_str();
    let page = HomePage {
        title: profile
            .name
            .clone()
            .unwrap_or_else(|| state.public_url.as_str().to_owned()),
        css: assets::url("css/app.css"),
        name: profile.name.as_deref(),
        note: profile.note.as_deref(),
        photo: profile.photo.as_deref(),
        email: profile.email.as_deref(),
        links: &profile.links,
        me: crate::indieauth::issuer(&state.public_url),
        metadata_url: crate::indieauth::metadata_url(&state.public_url),
        authorization_endpoint: format!("{base}{}", super::indieauth::AUTHORIZATION_PATH),
        token_endpoint: format!("{base}{}", super::indieauth::TOKEN_PATH),
        kid,
    };
    // The owner's photo may live elsewhere: the home page alone may show images from its origin.
    let policy = profile
        .photo
        .as_deref()
        .and_then(|photo| url::Url::parse(photo).ok())
        .map(|photo| photo.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .map(|origin| policy_with("img-src", &origin));
    let mut response = html_with_policy(&state, render(&page)?, policy.as_deref());
    if let Ok(value) = header::HeaderValue::from_str(&super::indieauth::home_link_header(&state)) {
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}

pub fn app_fields(state: &AppState, title: &'static str, page: &'static str) -> AppFields {
    AppFields {
        title,
        css: assets::url("css/app.css"),
        script: assets::url(&format!("js/{page}.mjs")),
        page,
        public_url: state.public_url.as_str().to_owned(),
        assets: assets::url(""),
        passkeys: state.passkeys.available(),
    }
}

/// `GET /setup`: the claim wizard (the claim token travels in the URL fragment).
pub async fn setup(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = SetupPage {
        app: app_fields(&state, "Set up your identity", "setup"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /login`: sign in on this device.
pub async fn login(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = LoginPage {
        app: app_fields(&state, "Sign in", "login"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /account`: sessions, audit log, password, this device.
pub async fn account(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = AccountPage {
        app: app_fields(&state, "Your account", "account"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /account/recovery`: split the key into recovery shares for friends.
pub async fn recovery(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = RecoveryPage {
        app: app_fields(&state, "Recovery shares", "recovery"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /account/credentials`: the devices and keys that may sign in; add, rename, reset, revoke.
pub async fn credentials(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = CredentialsPage {
        app: app_fields(&state, "Devices and keys", "credentials"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /account/totp`: turn the TOTP second factor of password unlock on or off, and make new
/// recovery codes.
pub async fn totp(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = TotpPage {
        app: app_fields(&state, "Two-step unlock", "totp"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /account/inbox`: the private messages, decrypted in the page with the encryption keys
/// this browser keeps; setting the inbox up, and unlocking it on a new device.
pub async fn inbox(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = InboxPage {
        app: app_fields(&state, "Inbox", "inbox"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /account/apps`: the sites and apps signed in with this identity (IndieAuth grants), with
/// revoke, and the profile they may see.
pub async fn apps(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = AppsPage {
        app: app_fields(&state, "Apps and sites", "apps"),
    };
    Ok(html(&state, render(&page)?))
}

/// `GET /recover`: rebuild the key from friends' shares and choose a new password.
pub async fn recover(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let page = RecoverPage {
        app: app_fields(&state, "Recover your identity", "recover"),
    };
    Ok(html(&state, render(&page)?))
}
