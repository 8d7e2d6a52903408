//! Reading IndieAuth and OAuth 2.0 requests: form-encoded parameters (each at most once, an
//! empty value read as absent, RFC 6749 §3.1), scopes (RFC 6749 §3.3), PKCE S256 (RFC 7636),
//! and the authorization request in two steps: what must hold before the node may redirect to
//! the client (§4.2.2), and the rest, whose failures are redirected back as OAuth errors.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use super::urls::{self, MAX_URL_LEN};

/// The most scopes a request may name.
pub const MAX_SCOPES: usize = 32;
/// The longest scope name, in bytes.
pub const MAX_SCOPE_LEN: usize = 64;
/// The longest `state`, in bytes.
pub const MAX_STATE_LEN: usize = 512;

/// Form or query parameters, each named at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    /// Reads `application/x-www-form-urlencoded` text (`+` is a space). A parameter without a
    /// value is absent; one named twice is remembered as repeated.
    pub fn parse(text: &str) -> Params {
        let mut params = Params::default();
        for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            if params.values.contains_key(name.as_ref()) {
                if !params.repeated.iter().any(|r| r == name.as_ref()) {
                    params.repeated.push(name.into_owned());
                }
                continue;
            }
            params.values.insert(name.into_owned(), value.into_owned());
        }
        params
    }

    /// The value of `name`: `Ok(None)` when absent, an error naming it when repeated.
    pub fn get(&self, name: &str) -> Result<Option<&str>, String> {
        if self.repeated.iter().any(|r| r == name) {
            return Err(format!("the parameter {name} appears more than once"));
        }
        Ok(self.values.get(name).map(String::as_str))
    }

    /// The value of `name`, which must be present once.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)?
            .ok_or_else(|| format!("the parameter {name} is missing"))
    }

    /// The first repeated parameter, if any.
    pub fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }
}

/// Space-separated scope names (RFC 6749 §3.3), in the order first named, without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Reads a scope parameter. Each name is one or more of `%x21 / %x23-5B / %x5D-7E`.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut names: Vec<String> = Vec::new();
        for name in text.split(' ').filter(|name| !name.is_empty()) {
            if name.len() > MAX_SCOPE_LEN {
                return Err(format!("a scope is longer than {MAX_SCOPE_LEN} bytes"));
            }
            if !name
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err("a scope holds a character RFC 6749 does not allow".into());
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
            if names.len() > MAX_SCOPES {
                return Err(format!("more than {MAX_SCOPES} scopes are asked for"));
            }
        }
        Ok(Scopes(names))
    }

    /// Whether no scope is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `name` is among the scopes.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    /// Whether every scope here is also in `other`.
    pub fn is_within(&self, other: &Scopes) -> bool {
        self.0.iter().all(|n| other.contains(n))
    }

    /// The scope names, in order.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The scopes of `self` the owner kept (`kept` names them), in the order asked for;
    /// `email` goes when `profile` does (it cannot be granted on its own).
    pub fn narrowed_to<'a>(&self, kept: impl IntoIterator<Item = &'a str> + Clone) -> Scopes {
        let mut narrowed: Vec<String> = self
            .0
            .iter()
            .filter(|n| kept.clone().into_iter().any(|k| k == n.as_str()))
            .cloned()
            .collect();
        if !narrowed.iter().any(|n| n == "profile") {
            narrowed.retain(|n| n != "email");
        }
        Scopes(narrowed)
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// Whether `challenge` is an S256 code challenge: 43 base64url characters, no padding.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` is a PKCE code verifier: 43 to 128 of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `BASE64URL(SHA256(verifier))` equals `challenge`, compared in constant time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// The client and redirect URL of an authorization request, checked far enough that the node
/// may look the client up; errors here are shown on a page, never redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAndRedirect {
    /// The client identifier as sent.
    pub client_id: String,
    pub client_url: Url,
    /// The redirect URL as sent (compared byte for byte at redemption).
    pub redirect_uri: String,
    pub redirect_url: Url,
}

/// Reads `client_id` and `redirect_uri`; the message completes "The request ...".
pub fn client_and_redirect(params: &Params) -> Result<ClientAndRedirect, String> {
    let client_id = params
        .get("client_id")?
        .ok_or("has no client_id: the application that sent you here is not saying who it is")?;
    let client_url =
        urls::check_client_id(client_id).map_err(|e| format!("names a client_id that {e}"))?;
    let redirect_uri = params.get("redirect_uri")?.ok_or("has no redirect_uri")?;
    let redirect_url = check_redirect_uri(redirect_uri)?;
    Ok(ClientAndRedirect {
        client_id: client_id.to_owned(),
        client_url,
        redirect_uri: redirect_uri.to_owned(),
        redirect_url,
    })
}

/// A redirect URL: absolute, at most 2048 bytes, without a fragment (RFC 6749 §3.1.2). Other
/// schemes than http(s) pass here, to be allowed only when the client lists them.
fn check_redirect_uri(text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!(
            "has a redirect_uri longer than {MAX_URL_LEN} bytes"
        ));
    }
    if text.contains('#') {
        return Err("has a redirect_uri with a fragment".into());
    }
    let url = Url::parse(text).map_err(|_| "has a redirect_uri that is not an absolute URL")?;
    if url.cannot_be_a_base() && matches!(url.scheme(), "http" | "https") {
        return Err("has a redirect_uri that is not an absolute URL".into());
    }
    if matches!(url.scheme(), "http" | "https") && !urls::has_sound_host(&url) {
        return Err("has a redirect_uri whose host is not a DNS name or an address".into());
    }
    if matches!(
        url.scheme(),
        "javascript" | "data" | "vbscript" | "file" | "blob"
    ) {
        return Err(format!(
            "has a redirect_uri with the {} scheme, which is never redirected to",
            url.scheme()
        ));
    }
    Ok(url)
}

/// Whether the node may redirect to `redirect`: on the client's own scheme, host and port, or
/// listed by the client exactly as sent (§4.2.2).
pub fn redirect_allowed(request: &ClientAndRedirect, listed: &[String]) -> bool {
    urls::same_origin(&request.client_url, &request.redirect_url)
        || listed.iter().any(|url| url == &request.redirect_uri)
}

/// An OAuth 2.0 error (RFC 6749 §4.1.2.1, §5.2): its code and a description for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
        }
    }

    /// `invalid_request`: a parameter is missing, repeated or malformed.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new("invalid_request", description)
    }
}

/// The rest of an authorization request, after the client and redirect URL checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client: ClientAndRedirect,
    pub state: String,
    pub code_challenge: String,
    pub scopes: Scopes,
    /// The profile URL the client said the user typed; never trusted.
    pub me: Option<String>,
}

/// Checks the rest of an authorization request; errors are redirected to the client, with its
/// `state` when it sent one.
pub fn authorization_request(
    params: &Params,
    client: ClientAndRedirect,
) -> Result<AuthorizationRequest, OAuthError> {
    let invalid = |text: String| OAuthError::invalid_request(text);
    if let Some(name) = params.first_repeated() {
        return Err(invalid(format!(
            "the parameter {name} appears more than once"
        )));
    }
    match params.get("response_type").map_err(invalid)? {
        None => return Err(invalid("the parameter response_type is missing".into())),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    let state = params.require("state").map_err(invalid)?;
    if state.len() > MAX_STATE_LEN || !state.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(invalid(format!(
            "state must be at most {MAX_STATE_LEN} printable ASCII characters"
        )));
    }
    let code_challenge = params
        .get("code_challenge")
        .map_err(invalid)?
        .ok_or_else(|| {
            invalid("PKCE is required: the parameter code_challenge is missing".into())
        })?;
    match params.get("code_challenge_method").map_err(invalid)? {
        Some("S256") => {}
        Some(_) | None => {
            return Err(invalid(
                "transform algorithm not supported: code_challenge_method must be S256".into(),
            ));
        }
    }
    if !is_s256_challenge(code_challenge) {
        return Err(invalid(
            "code_challenge must be 43 base64url characters (an S256 challenge without padding)"
                .into(),
        ));
    }
    let scopes = match params.get("scope").map_err(invalid)? {
        None => Scopes::default(),
        Some(text) => Scopes::parse(text).map_err(|e| OAuthError::new("invalid_scope", e))?,
    };
    if scopes.contains("email") && !scopes.contains("profile") {
        return Err(OAuthError::new(
            "invalid_scope",
            "the email scope cannot be requested without the profile scope",
        ));
    }
    let me = params.get("me").map_err(invalid)?.map(str::to_owned);
    Ok(AuthorizationRequest {
        client,
        state: state.to_owned(),
        code_challenge: code_challenge.to_owned(),
        scopes,
        me,
    })
}

/// The URL that sends the answer back to the client: `redirect_uri` with its own query kept and
/// `extra` added, then `iss` (RFC 9207).
pub fn redirect_with(redirect: &Url, extra: &[(&str, &str)], issuer: &str) -> String {
    let mut url = redirect.clone();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in extra {
            query.append_pair(name, value);
        }
        query.append_pair("iss", issuer);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> Params {
        Params::parse(text)
    }

    fn client() -> ClientAndRedirect {
        client_and_redirect(&params(
            "client_id=https://app.example/&redirect_uri=https://app.example/cb",
        ))
        .expect("valid")
    }

    const GOOD: &str = "response_type=code&state=abc&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

    #[test]
    fn a_repeated_parameter_is_named_and_an_empty_one_is_absent() {
        let p = params("a=1&a=2&b=&c=3");
        assert!(p.get("a").is_err());
        assert_eq!(p.get("b"), Ok(None));
        assert_eq!(p.get("c"), Ok(Some("3")));
        assert_eq!(p.first_repeated(), Some("a"));
    }

    #[test]
    fn scopes_are_read_as_rfc_6749_says() {
        let scopes = Scopes::parse("profile  create profile").expect("valid");
        assert_eq!(scopes.to_string(), "profile create");
        assert!(Scopes::parse("pro\"file").is_err());
        assert!(Scopes::parse("pro\\file").is_err());
        assert!(Scopes::parse(&"a".repeat(65)).is_err());
        let many = (0..33)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(Scopes::parse(&many).is_err());
    }

    #[test]
    fn narrowing_drops_email_with_profile() {
        let asked = Scopes::parse("profile email create").expect("valid");
        assert_eq!(asked.narrowed_to(["email", "create"]).to_string(), "create");
        assert_eq!(
            asked.narrowed_to(["email", "profile", "other"]).to_string(),
            "profile email"
        );
    }

    #[test]
    fn the_rfc_7636_example_verifier_matches_its_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_code_verifier(verifier));
        assert!(is_s256_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(&verifier.replace('d', "e"), challenge));
        assert!(!is_s256_challenge(&format!("{challenge}=")));
        assert!(!is_code_verifier("short"));
    }

    #[test]
    fn a_good_request_is_read() {
        let request =
            authorization_request(&params(&format!("{GOOD}&scope=profile+create")), client())
                .expect("valid");
        assert_eq!(request.state, "abc");
        assert_eq!(request.scopes.to_string(), "profile create");
    }

    #[test]
    fn pkce_must_be_s256() {
        for bad in [
            "response_type=code&state=a&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "response_type=code&state=a&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
            "response_type=code&state=a&code_challenge_method=S256",
            "response_type=code&state=a&code_challenge=abc&code_challenge_method=S256",
        ] {
            let error = authorization_request(&params(bad), client()).expect_err(bad);
            assert_eq!(error.error, "invalid_request", "{bad}");
        }
    }

    #[test]
    fn other_refusals_carry_their_oauth_codes() {
        let cases = [
            (
                GOOD.replace("response_type=code", "response_type=id"),
                "unsupported_response_type",
            ),
            (GOOD.replace("response_type=code&", ""), "invalid_request"),
            (GOOD.replace("state=abc&", ""), "invalid_request"),
            (format!("{GOOD}&state=again"), "invalid_request"),
            (format!("{GOOD}&scope=email"), "invalid_scope"),
            (format!("{GOOD}&scope=a%22b"), "invalid_scope"),
        ];
        for (query, expected) in cases {
            let error = authorization_request(&params(&query), client()).expect_err(&query);
            assert_eq!(error.error, expected, "{query}");
        }
    }

    #[test]
    fn redirect_urls_are_checked_before_anything_is_redirected() {
        for bad in [
            "client_id=https://app.example/",
            "redirect_uri=https://app.example/cb",
            "client_id=https://app.example/&redirect_uri=https://app.example/cb%23x&redirect_uri=https://app.example/",
            "client_id=https://app.example/&redirect_uri=https://app.example/cb%23frag",
            "client_id=https://app.example/&redirect_uri=javascript:alert(1)",
            "client_id=https://app.example/&redirect_uri=/relative",
            "client_id=https://10.0.0.1/&redirect_uri=https://10.0.0.1/cb",
            "client_id=https://app.example/&redirect_uri=http://a;sandbox/cb",
            "client_id=https://app.example/&redirect_uri=http://*/cb",
        ] {
            assert!(client_and_redirect(&params(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_redirect_elsewhere_must_be_listed_exactly() {
        let mut request = client();
        request.redirect_uri = "https://other.example/cb".into();
        request.redirect_url = Url::parse(&request.redirect_uri).expect("valid");
        assert!(!redirect_allowed(&request, &[]));
        assert!(!redirect_allowed(
            &request,
            &["https://other.example/cb/".into()]
        ));
        assert!(redirect_allowed(
            &request,
            &["https://other.example/cb".into()]
        ));
        assert!(redirect_allowed(&client(), &[]));
    }

    #[test]
    fn the_answer_keeps_the_redirect_query_and_adds_iss() {
        let redirect = Url::parse("https://app.example/cb?x=1").expect("valid");
        let url = redirect_with(
            &redirect,
            &[("code", "c"), ("state", "a b&%")],
            "https://id.example/",
        );
        assert_eq!(
            url,
            "https://app.example/cb?x=1&code=c&state=a+b%26%25&iss=https%3A%2F%2Fid.example%2F"
        );
    }
}
