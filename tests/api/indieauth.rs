//! IndieAuth black-box tests against a real node: discovery, the authorization request's
//! refusals (error pages before the redirect URL checked out, OAuth errors redirected after),
//! consent, code redemption, refresh rotation and reuse, introspection, revocation, userinfo,
//! the profile, grants bound to the approving credential, and the client metadata fetch that
//! never reaches loopback from a node on a public URL. Clients are loopback listeners only.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use siteid::clock::Clock;

use crate::credentials::{Device, register};
use crate::helpers::{Answer, TestNode, TestOwner, spawn_node, spawn_node_with_clock, wait_until};

const AUTHORIZE: &str = "/indieauth/authorize";
const TOKEN: &str = "/indieauth/token";
const INTROSPECT: &str = "/indieauth/introspect";
const REVOKE: &str = "/indieauth/revoke";

/// A client's web site on a loopback port: answers every request with `response` and counts
/// connections, until dropped (and at most a minute, so a broken test cannot leave it running).
struct ClientSite {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClientSite {
    fn serving(response: String) -> ClientSite {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
        ClientSite::serving_on(listener, |_| response)
    }

    /// A client serving its metadata document, naming `extra_redirects` besides its own.
    fn with_metadata(name: &str, extra_redirects: &[&str]) -> ClientSite {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
        let name = name.to_owned();
        let extra: Vec<String> = extra_redirects.iter().map(|r| (*r).to_owned()).collect();
        ClientSite::serving_on(listener, move |port| {
            let client_id = format!("http://127.0.0.1:{port}/");
            let mut redirects = vec![format!("{client_id}callback")];
            redirects.extend(extra);
            let document = json!({
                "client_id": client_id,
                "client_name": name,
                "client_uri": client_id,
                "redirect_uris": redirects,
            })
            .to_string();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{document}",
                document.len()
            )
        })
    }

    /// Serves on `listener` the response `respond` makes from the port, one connection at a
    /// time, until dropped.
    fn serving_on(listener: TcpListener, respond: impl FnOnce(u16) -> String) -> ClientSite {
        let port = listener.local_addr().expect("address").port();
        let response = respond(port);
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopping) = (connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        ClientSite {
            port,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    fn client_id(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn callback(&self) -> String {
        format!("{}callback", self.client_id())
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ClientSite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // One more connection wakes the accepting thread, which then sees the stop.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An HTTP agent that shows redirects instead of following them.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get(node: &TestNode, path_and_query: &str) -> Answer {
    Answer::from(
        agent()
            .get(&node.url(path_and_query))
            .call()
            .expect("GET reaches the node"),
    )
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn post_form(
    node: &TestNode,
    path: &str,
    pairs: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = agent().post(&node.url(path)).header(
        "content-type",
        "application/x-www-form-urlencoded;charset=UTF-8",
    );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Answer::from(
        request
            .send(form(pairs).as_bytes())
            .expect("POST reaches the node"),
    )
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization request's query string.
fn request_query(client_id: &str, redirect_uri: &str, challenge: &str, scope: &str) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", "st+ate &%"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if !scope.is_empty() {
        pairs.push(("scope", scope));
    }
    form(&pairs)
}

/// The query parameters of a redirect's Location.
fn location_params(answer: &Answer) -> Vec<(String, String)> {
    let location = answer.header("location").expect("a Location");
    url::Url::parse(location)
        .expect("an absolute Location")
        .query_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Answers a consent page as the page's form does; returns the answer (a redirect).
fn answer_consent(
    node: &TestNode,
    session: &str,
    query: &str,
    decision: &str,
    kept: &[&str],
) -> Answer {
    let names: Vec<String> = kept.iter().map(|scope| format!("scope.{scope}")).collect();
    let mut pairs = vec![
        ("request", query),
        ("session", session),
        ("decision", decision),
        ("lifetime", "604800"),
    ];
    pairs.extend(names.iter().map(|name| (name.as_str(), "1")));
    post_form(node, "/indieauth/consent", &pairs, &[])
}

/// A code the owner approved for `client` with `scope`, keeping `kept`.
fn approved_code(
    node: &TestNode,
    session: &str,
    client: &ClientSite,
    challenge: &str,
    scope: &str,
    kept: &[&str],
) -> String {
    let query = request_query(&client.client_id(), &client.callback(), challenge, scope);
    let page = get(node, &format!("{AUTHORIZE}?{query}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let answer = answer_consent(node, session, &query, "approve", kept);
    assert_eq!(answer.status, 302, "{}", answer.body);
    let params = location_params(&answer);
    assert_eq!(param(&params, "state"), Some("st+ate &%"));
    assert_eq!(
        param(&params, "iss"),
        Some(format!("{}/", node.audience).as_str())
    );
    param(&params, "code").expect("a code").to_owned()
}

/// The token answer for a fresh approval of `scope` by `session`, keeping `kept`.
fn granted(
    node: &TestNode,
    session: &str,
    client: &ClientSite,
    scope: &str,
    kept: &[&str],
) -> Value {
    let (verifier, challenge) = pkce();
    let code = approved_code(node, session, client, &challenge, scope, kept);
    let answer = redeem(node, &code, client, &verifier);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn redeem(node: &TestNode, code: &str, client: &ClientSite, verifier: &str) -> Answer {
    post_form(
        node,
        TOKEN,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &client.client_id()),
            ("redirect_uri", &client.callback()),
            ("code_verifier", verifier),
        ],
        &[],
    )
}

fn oauth_error(answer: &Answer) -> String {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        answer.headers
    );
    assert!(answer.header("www-authenticate").is_none());
    answer.json()["error"]
        .as_str()
        .expect("an error code")
        .to_owned()
}

/// Asserts that `token` no longer authorizes anything: introspection refuses it as a bearer.
fn assert_no_longer_authorizes(node: &TestNode, token: &str) {
    let answer = post_form(
        node,
        INTROSPECT,
        &[("token", token)],
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(
        answer
            .header("www-authenticate")
            .is_some_and(|v| v.contains("invalid_token"))
    );
}

fn introspect(node: &TestNode, bearer: &str, token: &str) -> Value {
    let answer = post_form(
        node,
        INTROSPECT,
        &[("token", token)],
        &[("authorization", &format!("Bearer {bearer}"))],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn claimed_node() -> (tempfile::TempDir, TestNode, TestOwner, String) {
    let (dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (token, _) = node.login(&owner);
    (dir, node, owner, token)
}

#[test]
fn the_home_page_and_the_metadata_let_clients_discover_the_endpoints() {
    let (_dir, node, _owner, _token) = claimed_node();
    let base = node.audience.clone();
    for method in ["GET", "HEAD"] {
        let answer = Answer::from(
            agent()
                .run(
                    ureq::http::Request::builder()
                        .method(method)
                        .uri(node.url("/"))
                        .body(())
                        .expect("request"),
                )
                .expect("the home page answers"),
        );
        assert_eq!(answer.status, 200);
        let link = answer.header("link").expect("a Link header");
        assert!(link.contains(&format!(
            "<{base}/.well-known/oauth-authorization-server>; rel=\"indieauth-metadata\""
        )));
        assert!(link.contains(&format!(
            "<{base}/indieauth/authorize>; rel=\"authorization_endpoint\""
        )));
        assert!(link.contains(&format!("<{base}/indieauth/token>; rel=\"token_endpoint\"")));
    }
    let home = node.get("/");
    assert!(home.body.contains(&format!(
        "<link rel=\"indieauth-metadata\" href=\"{base}/.well-known/oauth-authorization-server\">"
    )));
    assert!(
        home.body
            .contains(&format!("class=\"p-name u-url u-uid\" href=\"{base}/\""))
    );
    let metadata = node.get("/.well-known/oauth-authorization-server");
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.header("access-control-allow-origin"), Some("*"));
    let document = metadata.json();
    assert_eq!(document["issuer"], format!("{base}/"));
    assert_eq!(
        document["authorization_endpoint"],
        format!("{base}{AUTHORIZE}")
    );
    assert_eq!(document["token_endpoint"], format!("{base}{TOKEN}"));
    assert_eq!(
        document["introspection_endpoint"],
        format!("{base}{INTROSPECT}")
    );
    assert_eq!(document["revocation_endpoint"], format!("{base}{REVOKE}"));
    assert_eq!(
        document["userinfo_endpoint"],
        format!("{base}/indieauth/userinfo")
    );
    assert_eq!(
        document["revocation_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(
        document["introspection_endpoint_auth_methods_supported"],
        json!(["Bearer"])
    );
    assert_eq!(document["response_types_supported"], json!(["code"]));
    assert_eq!(
        document["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        true
    );
    assert!(
        document["scopes_supported"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("profile")))
    );
}

#[test]
fn webfinger_answers_for_the_owner_and_an_operator_file_wins() {
    let (_dir, node, _owner, _token) = claimed_node();
    let base = node.audience.clone();
    let host = base.trim_start_matches("http://");
    for resource in [format!("acct:me@{host}"), format!("{base}/"), base.clone()] {
        let answer = node.get(&format!(
            "/.well-known/webfinger?resource={}",
            form(&[("r", &resource)]).trim_start_matches("r=")
        ));
        assert_eq!(answer.status, 200, "{resource}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/jrd+json"));
        let jrd = answer.json();
        assert_eq!(jrd["subject"], resource);
        let rels: Vec<&str> = jrd["links"]
            .as_array()
            .expect("links")
            .iter()
            .filter_map(|l| l["rel"].as_str())
            .collect();
        for rel in [
            "http://openid.net/specs/connect/1.0/issuer",
            "me",
            "indieauth-metadata",
        ] {
            assert!(rels.contains(&rel), "{rels:?}");
        }
    }
    assert_eq!(
        node.get("/.well-known/webfinger?resource=acct:me@elsewhere.example")
            .status,
        404
    );
    node.get("/.well-known/webfinger").problem(400);
    node.get("/.well-known/webfinger?resource=").problem(400);
    let file = node.data_dir.join("well-known").join("webfinger");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("dir");
    std::fs::write(&file, r#"{"subject":"operator"}"#).expect("write");
    assert!(wait_until(Duration::from_secs(10), || {
        node.get("/.well-known/webfinger?resource=acct:me@x")
            .body
            .contains("operator")
    }));
}

#[test]
fn a_complete_flow_redeems_refreshes_introspects_and_revokes() {
    let (_dir, node, _owner, session) = claimed_node();
    let client = ClientSite::with_metadata("Test Reader", &[]);
    let (verifier, challenge) = pkce();
    let query = request_query(
        &client.client_id(),
        &client.callback(),
        &challenge,
        "profile create",
    );
    let page = get(&node, &format!("{AUTHORIZE}?{query}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Test Reader"),
        "the client's metadata was read"
    );
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(
        policy.contains(&format!(
            "form-action 'self' http://127.0.0.1:{};",
            client.port
        )),
        "{policy}"
    );
    assert!(client.connections() >= 1);
    let approved = answer_consent(&node, &session, &query, "approve", &["profile", "create"]);
    assert_eq!(approved.status, 302, "{}", approved.body);
    let location = approved.header("location").expect("location");
    assert!(location.starts_with(&client.callback()), "{location}");
    let code = param(&location_params(&approved), "code")
        .expect("code")
        .to_owned();

    let tokens = redeem(&node, &code, &client, &verifier);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    let tokens = tokens.json();
    let me = format!("{}/", node.audience);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["me"], me.as_str());
    assert_eq!(tokens["scope"], "profile create");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["profile"]["url"], me.as_str());
    assert!(tokens["profile"].get("email").is_none());
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    let active = introspect(&node, &access, &access);
    assert_eq!(active["active"], true);
    assert_eq!(active["me"], me.as_str());
    assert_eq!(active["client_id"], client.client_id());
    assert_eq!(active["scope"], "profile create");
    assert!(active["exp"].is_i64() && active["iat"].is_i64());
    assert_eq!(
        introspect(&node, &access, &refresh),
        json!({"active": false})
    );
    assert_eq!(
        introspect(&node, &access, "garbage"),
        json!({"active": false})
    );

    // Refresh with a narrower scope: the access token narrows, the grant does not.
    let refreshed = post_form(
        &node,
        TOKEN,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client.client_id()),
            ("scope", "create"),
        ],
        &[],
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let refreshed = refreshed.json();
    assert_eq!(refreshed["scope"], "create");
    let access2 = refreshed["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh2 = refreshed["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(refresh2, refresh);
    let wider = post_form(
        &node,
        TOKEN,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
            ("client_id", &client.client_id()),
            ("scope", "create delete"),
        ],
        &[],
    );
    assert_eq!(oauth_error(&wider), "invalid_scope");
    // The next refresh without a scope gets the grant's scopes back.
    let again = post_form(
        &node,
        TOKEN,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
            ("client_id", &client.client_id()),
        ],
        &[],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["scope"], "profile create");
    let access3 = again.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();

    // The first refresh token again: the whole grant goes.
    let reused = post_form(
        &node,
        TOKEN,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client.client_id()),
        ],
        &[],
    );
    assert_eq!(oauth_error(&reused), "invalid_grant");
    for token in [&access, &access2, &access3] {
        assert_no_longer_authorizes(&node, token);
    }
    let events = node.audit_events(&session);
    for event in [
        "indieauth.approved",
        "indieauth.code_redeemed",
        "indieauth.refresh_reused",
        "indieauth.token_revoked",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }

    // A new grant, revoked by the client with RFC 7009.
    let tokens = granted(&node, &session, &client, "create", &["create"]);
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let grants = node.call("GET", "/api/v1/indieauth/grants", Some(&session), None, &[]);
    assert_eq!(grants.json()["grants"].as_array().map(Vec::len), Some(1));
    let revoked = post_form(&node, REVOKE, &[("token", &refresh)], &[]);
    assert_eq!(revoked.status, 200);
    assert_eq!(
        post_form(&node, REVOKE, &[("token", "garbage")], &[]).status,
        200
    );
    assert_no_longer_authorizes(&node, &access);
    let grants = node.call("GET", "/api/v1/indieauth/grants", Some(&session), None, &[]);
    assert_eq!(grants.json()["grants"], json!([]));
}

#[test]
fn introspection_and_userinfo_need_a_bearer_token() {
    let (_dir, node, _owner, session) = claimed_node();
    let client = ClientSite::with_metadata("Reader", &[]);
    let put = node.call(
        "PUT",
        "/api/v1/profile",
        Some(&session),
        Some(&json!({"name": "Ada", "email": "ada@ada.example", "photo": "https://photos.example/ada.jpg"})),
        &[],
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let unauthenticated = post_form(&node, INTROSPECT, &[("token", "x")], &[]);
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(
        unauthenticated.header("www-authenticate"),
        Some("Bearer realm=\"siteid\"")
    );
    let userinfo = node.get("/indieauth/userinfo");
    assert_eq!(userinfo.status, 401);

    let (verifier, challenge) = pkce();
    let code = approved_code(
        &node,
        &session,
        &client,
        &challenge,
        "profile email create",
        &["profile", "email", "create"],
    );
    let tokens = redeem(&node, &code, &client, &verifier).json();
    assert_eq!(tokens["profile"]["name"], "Ada");
    assert_eq!(tokens["profile"]["email"], "ada@ada.example");
    assert_eq!(tokens["profile"]["photo"], "https://photos.example/ada.jpg");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let info = node.call("GET", "/indieauth/userinfo", Some(&access), None, &[]);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["sub"], format!("{}/", node.audience));
    assert_eq!(info.json()["email"], "ada@ada.example");

    let tokens = granted(
        &node,
        &session,
        &client,
        "profile email create",
        &["email", "create"],
    );
    assert_eq!(tokens["scope"], "create", "email goes with profile");
    assert!(tokens.get("profile").is_none());
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let info = node.call("GET", "/indieauth/userinfo", Some(&access), None, &[]);
    assert_eq!(info.status, 403);
    assert!(
        info.header("www-authenticate")
            .is_some_and(|v| v.contains("insufficient_scope"))
    );

    // The home page's h-card shows the profile, and its CSP lets the photo's origin show.
    let home = node.get("/");
    assert!(
        home.body
            .contains("class=\"u-photo\" src=\"https://photos.example/ada.jpg\"")
    );
    assert!(home.body.contains("class=\"u-email\""));
    assert!(
        home.header("content-security-policy")
            .is_some_and(|p| p.contains("img-src 'self' data: https://photos.example;"))
    );
    let bad = node.call(
        "PUT",
        "/api/v1/profile",
        Some(&session),
        Some(&json!({"photo": "javascript:alert(1)"})),
        &[],
    );
    assert_eq!(bad.problem(422)["field"], "photo");
    assert!(
        node.audit_events(&session)
            .iter()
            .any(|e| e == "profile.changed")
    );
}

#[test]
fn a_profile_only_code_is_redeemed_at_the_authorization_endpoint() {
    let (_dir, node, _owner, session) = claimed_node();
    let client = ClientSite::with_metadata("Wiki", &[]);
    let (verifier, challenge) = pkce();
    let code = approved_code(&node, &session, &client, &challenge, "", &[]);
    let at_token = redeem(&node, &code, &client, &verifier);
    assert_eq!(oauth_error(&at_token), "invalid_grant");
    let answer = post_form(
        &node,
        AUTHORIZE,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client.client_id()),
            ("redirect_uri", &client.callback()),
            ("code_verifier", &verifier),
        ],
        &[],
    );
    assert_eq!(
        answer.status, 200,
        "the token endpoint did not spend the code: {}",
        answer.body
    );
    assert_eq!(answer.json(), json!({"me": format!("{}/", node.audience)}));
}

#[test]
fn refusals_before_the_redirect_url_checked_out_are_pages_and_after_it_redirects() {
    let (_dir, node, _owner, _session) = claimed_node();
    let client = ClientSite::with_metadata("Reader", &[]);
    let (_verifier, challenge) = pkce();
    let good = request_query(
        &client.client_id(),
        &client.callback(),
        &challenge,
        "create",
    );
    let elsewhere = format!("http://127.0.0.1:{}/callback", client.port.wrapping_add(1));
    // Never redirected: the page says why.
    for query in [
        request_query(&client.client_id(), &elsewhere, &challenge, "create"),
        request_query(
            &client.client_id(),
            &format!("{}#frag", client.callback()),
            &challenge,
            "",
        ),
        request_query(&client.client_id(), "javascript:alert(1)", &challenge, ""),
        request_query("http://2130706433/", "http://2130706433/cb", &challenge, ""),
        request_query(
            "https://app.example/../x",
            "https://app.example/cb",
            &challenge,
            "",
        ),
        format!("{good}&client_id=http://127.0.0.1:1/"),
        good.replace("client_id=", "x="),
    ] {
        let answer = get(&node, &format!("{AUTHORIZE}?{query}"));
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert!(answer.header("location").is_none(), "{query}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html"))
        );
        assert!(answer.body.contains("id=\"indieauth-error\""));
    }
    // Redirected with an OAuth error, the state and iss.
    let iss = format!("{}/", node.audience);
    for (query, error) in [
        (
            good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            good.replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            good.replace(
                &format!("code_challenge={challenge}"),
                "code_challenge=short",
            ),
            "invalid_request",
        ),
        (
            good.replace("response_type=code", "response_type=id"),
            "unsupported_response_type",
        ),
        (format!("{good}&state=twice"), "invalid_request"),
        (good.replace("scope=create", "scope=email"), "invalid_scope"),
    ] {
        let answer = get(&node, &format!("{AUTHORIZE}?{query}"));
        assert_eq!(answer.status, 302, "{query}: {}", answer.body);
        let params = location_params(&answer);
        assert_eq!(param(&params, "error"), Some(error), "{query}");
        assert_eq!(param(&params, "iss"), Some(iss.as_str()));
        assert!(
            answer
                .header("location")
                .is_some_and(|l| l.starts_with(&client.callback()))
        );
    }
    let no_state = good.replace("state=st%2Bate+%26%25&", "");
    let answer = get(&node, &format!("{AUTHORIZE}?{no_state}"));
    let params = location_params(&answer);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert_eq!(param(&params, "state"), None);
}

#[test]
fn a_redirect_url_elsewhere_is_allowed_only_when_the_client_lists_it() {
    let (_dir, node, _owner, session) = claimed_node();
    let elsewhere = "http://127.0.0.1:9/listed";
    let client = ClientSite::with_metadata("Reader", &[elsewhere]);
    let (_verifier, challenge) = pkce();
    let query = request_query(&client.client_id(), elsewhere, &challenge, "create");
    let page = get(&node, &format!("{AUTHORIZE}?{query}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let answer = answer_consent(&node, &session, &query, "deny", &[]);
    assert_eq!(answer.status, 302);
    assert!(
        answer
            .header("location")
            .is_some_and(|l| l.starts_with(elsewhere))
    );
    let params = location_params(&answer);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st+ate &%"));
    assert!(
        node.audit_events(&session)
            .iter()
            .any(|e| e == "indieauth.denied")
    );
}

#[test]
fn codes_are_single_use_bound_and_checked_before_they_are_spent() {
    let (_dir, node, _owner, session) = claimed_node();
    let client = ClientSite::with_metadata("Reader", &[]);
    let (verifier, challenge) = pkce();
    let code = approved_code(&node, &session, &client, &challenge, "create", &["create"]);
    // Malformed requests do not reach the code.
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", ""),
        ("redirect_uri", ""),
        ("code_verifier", verifier.as_str()),
    ];
    let client_id = client.client_id();
    let callback = client.callback();
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        base.iter()
            .map(|(n, v)| {
                let v = match *n {
                    "client_id" => client_id.as_str(),
                    "redirect_uri" => callback.as_str(),
                    _ => v,
                };
                (
                    (*n).to_owned(),
                    if *n == name {
                        value.to_owned()
                    } else {
                        v.to_owned()
                    },
                )
            })
            .collect()
    };
    for (pairs, error) in [
        (with("grant_type", "password"), "unsupported_grant_type"),
        (with("code_verifier", "short"), "invalid_request"),
        (with("client_id", ""), "invalid_request"),
        (with("redirect_uri", ""), "invalid_request"),
    ] {
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            oauth_error(&post_form(&node, TOKEN, &borrowed, &[])),
            error,
            "{pairs:?}"
        );
    }
    let json_body = node.post_json(TOKEN, &json!({"grant_type": "authorization_code"}));
    assert_eq!(oauth_error(&json_body), "invalid_request");
    // A client secret is refused; a Basic client_id with no password is accepted (below).
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:secret"))
    );
    let borrowed = with("client_id", "");
    let pairs: Vec<(&str, &str)> = borrowed
        .iter()
        .filter(|(n, _)| n != "client_id")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        oauth_error(&post_form(
            &node,
            TOKEN,
            &pairs,
            &[("authorization", &basic)]
        )),
        "invalid_request"
    );
    // The code still works, with the client_id as a Basic user name.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:",
            form(&[("u", &client_id)]).trim_start_matches("u=")
        ))
    );
    let first = post_form(&node, TOKEN, &pairs, &[("authorization", &basic)]);
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    // A second redemption fails and revokes what the first gave.
    assert_eq!(
        oauth_error(&redeem(&node, &code, &client, &verifier)),
        "invalid_grant"
    );
    assert_no_longer_authorizes(&node, &access);
    assert!(
        node.audit_events(&session)
            .iter()
            .any(|e| e == "indieauth.code_reused")
    );

    // A wrong verifier, client or redirect URL spends the code.
    for mistake in ["verifier", "client", "redirect"] {
        let (verifier, challenge) = pkce();
        let code = approved_code(&node, &session, &client, &challenge, "create", &["create"]);
        let other_verifier = pkce().0;
        let other_client = format!("http://127.0.0.1:{}/", client.port.wrapping_add(1));
        let (v, c, r) = match mistake {
            "verifier" => (
                other_verifier.as_str(),
                client_id.as_str(),
                callback.as_str(),
            ),
            "client" => (verifier.as_str(), other_client.as_str(), callback.as_str()),
            _ => (
                verifier.as_str(),
                client_id.as_str(),
                "http://127.0.0.1:1/cb",
            ),
        };
        let wrong = post_form(
            &node,
            TOKEN,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", c),
                ("redirect_uri", r),
                ("code_verifier", v),
            ],
            &[],
        );
        assert_eq!(oauth_error(&wrong), "invalid_grant", "{mistake}");
        assert_eq!(
            oauth_error(&redeem(&node, &code, &client, &verifier)),
            "invalid_grant",
            "{mistake}"
        );
    }
}

#[test]
fn an_expired_code_is_refused() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (session, _) = node.login_at(&owner, clock.now());
    let client = ClientSite::with_metadata("Reader", &[]);
    let (verifier, challenge) = pkce();
    let code = approved_code(&node, &session, &client, &challenge, "create", &["create"]);
    clock.advance(601);
    assert_eq!(
        oauth_error(&redeem(&node, &code, &client, &verifier)),
        "invalid_grant"
    );
}

#[test]
fn approving_needs_a_session_with_indieauth_from_this_origin() {
    let (_dir, node, owner, owner_session) = claimed_node();
    let client = ClientSite::with_metadata("Reader", &[]);
    let (_verifier, challenge) = pkce();
    let query = request_query(
        &client.client_id(),
        &client.callback(),
        &challenge,
        "create",
    );
    let no_session = answer_consent(&node, "not-a-session", &query, "approve", &["create"]);
    assert_eq!(no_session.status, 401);
    assert!(no_session.header("location").is_none());
    let foreign = post_form(
        &node,
        "/indieauth/consent",
        &[
            ("request", &query),
            ("session", &owner_session),
            ("decision", "approve"),
        ],
        &[
            ("origin", "https://attacker.example"),
            ("sec-fetch-site", "cross-site"),
        ],
    );
    assert_eq!(foreign.status, 403);
    assert!(foreign.header("location").is_none());
    // Chromium sends `Origin: null` with a same-origin form under `no-referrer`: that passes only
    // with `Sec-Fetch-Site: same-origin`.
    let sandboxed = post_form(
        &node,
        "/indieauth/consent",
        &[
            ("request", &query),
            ("session", &owner_session),
            ("decision", "approve"),
        ],
        &[("origin", "null"), ("sec-fetch-site", "cross-site")],
    );
    assert_eq!(sandboxed.status, 403);
    let same_origin = post_form(
        &node,
        "/indieauth/consent",
        &[
            ("request", &query),
            ("session", &owner_session),
            ("decision", "deny"),
        ],
        &[("origin", "null"), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(same_origin.status, 302, "{}", same_origin.body);
    // A browser navigating gets a page that moves on at once instead, so that Chromium does not
    // hold the consent form's form-action against the client's own later redirects.
    let navigating = post_form(
        &node,
        "/indieauth/consent",
        &[
            ("request", &query),
            ("session", &owner_session),
            ("decision", "deny"),
        ],
        &[
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-site", "same-origin"),
        ],
    );
    assert_eq!(navigating.status, 200, "{}", navigating.body);
    assert_eq!(navigating.header("cache-control"), Some("no-store"));
    let expected = format!(
        "<meta http-equiv=\"refresh\" content=\"0; url={}?error=access_denied&#38;",
        client.callback()
    );
    assert!(navigating.body.contains(&expected), "{}", navigating.body);
    let device = Device::new(&["session"]);
    let (stepped, _) = node.login_stepped_up(&owner);
    register(&node, &stepped, &owner, &device);
    let (device_session, _) = node.login(&device.signer);
    let refused = answer_consent(&node, &device_session, &query, "approve", &["create"]);
    assert_eq!(refused.status, 403);
    assert!(refused.header("location").is_none());
}

#[test]
fn revoking_the_approving_credential_revokes_its_grants() {
    let (_dir, node, owner, owner_session) = claimed_node();
    let (stepped, _) = node.login_stepped_up(&owner);
    let device = Device::new(&["session", "indieauth"]);
    register(&node, &stepped, &owner, &device);
    let (device_session, _) = node.login(&device.signer);
    let client = ClientSite::with_metadata("Reader", &[]);
    let tokens = granted(&node, &device_session, &client, "create", &["create"]);
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    assert_eq!(introspect(&node, &access, &access)["active"], true);
    let revoked = node.call(
        "DELETE",
        &format!("/api/v1/credentials/{}", device.id),
        Some(&stepped),
        None,
        &[],
    );
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_no_longer_authorizes(&node, &access);
    let entry = node.audit_entry(&owner_session, "indieauth.token_revoked");
    assert_eq!(entry["detail"]["reason"], "credential_revoked");
}

#[test]
fn the_owner_lists_and_revokes_grants() {
    let (_dir, node, _owner, session) = claimed_node();
    let client = ClientSite::with_metadata("Reader", &[]);
    let tokens = granted(&node, &session, &client, "create", &["create"]);
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let grants = node
        .call("GET", "/api/v1/indieauth/grants", Some(&session), None, &[])
        .json();
    let grant = &grants["grants"][0];
    assert_eq!(grant["client_name"], "Reader");
    assert_eq!(grant["scope"], "create");
    let id = grant["id"].as_str().expect("id");
    let expires = grant["expires_at"].as_i64().expect("expiry");
    let created = grant["created_at"].as_i64().expect("created");
    assert_eq!(
        expires - created,
        604_800,
        "the lifetime chosen on the consent page"
    );
    let path = format!("/api/v1/indieauth/grants/{id}");
    assert_eq!(
        node.call("DELETE", &path, Some(&session), None, &[]).status,
        204
    );
    assert_eq!(
        node.call("DELETE", &path, Some(&session), None, &[])
            .problem(404)["status"],
        404
    );
    assert_no_longer_authorizes(&node, &access);
    assert_eq!(
        node.audit_entry(&session, "indieauth.token_revoked")["detail"]["reason"],
        "owner"
    );
}

#[test]
fn a_node_on_a_public_url_never_fetches_a_loopback_client() {
    let (_dir, node) = crate::helpers::spawn_public_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let site = ClientSite::with_metadata("Should never be read", &["http://127.0.0.1:9/listed"]);
    let (_verifier, challenge) = pkce();
    let port = site.port;
    // A loopback client with a redirect on its own origin: shown by its client_id alone.
    for client_id in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
    ] {
        let redirect = format!("{client_id}callback");
        let query = request_query(&client_id, &redirect, &challenge, "create");
        let page = get(&node, &format!("{AUTHORIZE}?{query}"));
        assert_eq!(page.status, 200, "{client_id}: {}", page.body);
        assert!(!page.body.contains("Should never be read"));
        assert!(page.body.contains("publishes nothing about itself"));
    }
    // Its listed redirect elsewhere cannot be learnt, so it is refused; so are IP shorthands.
    for (client_id, redirect) in [
        (
            format!("http://127.0.0.1:{port}/"),
            "http://127.0.0.1:9/listed".to_owned(),
        ),
        (
            format!("http://2130706433:{port}/"),
            format!("http://2130706433:{port}/cb"),
        ),
        (
            format!("http://127.1:{port}/"),
            format!("http://127.1:{port}/cb"),
        ),
        (
            format!("http://0x7f.1:{port}/"),
            format!("http://0x7f.1:{port}/cb"),
        ),
    ] {
        let query = request_query(&client_id, &redirect, &challenge, "create");
        let answer = get(&node, &format!("{AUTHORIZE}?{query}"));
        assert_eq!(answer.status, 400, "{client_id}: {}", answer.body);
        assert!(answer.header("location").is_none());
    }
    assert_eq!(
        site.connections(),
        0,
        "the node connected to a loopback client"
    );
}

#[test]
fn an_unreachable_or_invalid_client_is_an_error_page() {
    let (_dir, node, _owner, _session) = claimed_node();
    let (_verifier, challenge) = pkce();
    // Nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("listener")
        .local_addr()
        .expect("addr")
        .port();
    let client_id = format!("http://127.0.0.1:{port}/");
    let query = request_query(&client_id, &format!("{client_id}cb"), &challenge, "create");
    let answer = get(&node, &format!("{AUTHORIZE}?{query}"));
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.header("location").is_none());
    assert!(answer.body.contains("could not be verified"));
    // A document naming another client_id.
    let body = r#"{"client_id":"https://someone-else.example/"}"#;
    let site = ClientSite::serving(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    let client_id = site.client_id();
    let query = request_query(&client_id, &format!("{client_id}cb"), &challenge, "create");
    let answer = get(&node, &format!("{AUTHORIZE}?{query}"));
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.header("location").is_none());
}

#[test]
fn narrowing_or_rotating_away_the_approving_credential_revokes_its_grants() {
    let (_dir, node, owner, owner_session) = claimed_node();
    let (stepped, _) = node.login_stepped_up(&owner);
    let mut device = Device::new(&["session", "indieauth"]);
    register(&node, &stepped, &owner, &device);
    let (device_session, _) = node.login(&device.signer);
    let client = ClientSite::with_metadata("Reader", &[]);
    let (verifier, challenge) = pkce();
    let code = approved_code(
        &node,
        &device_session,
        &client,
        &challenge,
        "create",
        &["create"],
    );
    let device_access = redeem(&node, &code, &client, &verifier).json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let owner_access =
        granted(&node, &owner_session, &client, "create", &["create"])["access_token"]
            .as_str()
            .expect("access")
            .to_owned();
    assert_eq!(
        introspect(&node, &owner_access, &device_access)["active"],
        true
    );

    // The device loses `indieauth`: its grant is revoked, not merely idle.
    device.capabilities = vec!["session"];
    let binding =
        crate::credentials::binding_at(&owner.key, &owner, &device, crate::helpers::now() + 1);
    let changed = node.call(
        "PATCH",
        &format!("/api/v1/credentials/{}", device.id),
        Some(&stepped),
        Some(&json!({"capabilities": ["session"], "binding": binding})),
        &[],
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        introspect(&node, &owner_access, &device_access),
        json!({"active": false})
    );
    let grants = node
        .call(
            "GET",
            "/api/v1/indieauth/grants",
            Some(&owner_session),
            None,
            &[],
        )
        .json();
    assert_eq!(grants["grants"].as_array().map(Vec::len), Some(1));

    // A rotation revokes the old owner key's credential, and with it the owner's grants.
    let rotation = crate::owner_key::Rotation::new(&node, &owner.key, 1, &[]);
    let (stepped, _) = node.login_stepped_up(&owner);
    let rotated = node.call(
        "POST",
        "/api/v1/owner/rotate",
        Some(&stepped),
        Some(&rotation.body),
        &[],
    );
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_no_longer_authorizes(&node, &owner_access);
    let next = TestOwner {
        key: siteid::jose::jwk::OwnerPrivateKey::from_scalar_bytes(
            rotation.next.scalar_bytes().as_slice(),
        )
        .expect("key"),
        ..TestOwner::from_vector()
    };
    let (session, _) = node.login(&next);
    let revoked: Vec<Value> = node
        .audit_entries(&session)
        .into_iter()
        .filter(|entry| entry["event"] == "indieauth.token_revoked")
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert!(
        revoked
            .iter()
            .all(|entry| entry["detail"]["reason"] == "credential_revoked")
    );
}

#[test]
fn access_tokens_expire_and_a_used_code_is_audited_once() {
    let (_dir, node, clock) = spawn_node_with_clock();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let (session, _) = node.login_at(&owner, clock.now());
    let client = ClientSite::with_metadata("Reader", &[]);
    let (verifier, challenge) = pkce();
    let code = approved_code(&node, &session, &client, &challenge, "create", &["create"]);
    let tokens = redeem(&node, &code, &client, &verifier).json();
    for _ in 0..3 {
        assert_eq!(
            oauth_error(&redeem(&node, &code, &client, &verifier)),
            "invalid_grant"
        );
    }
    let reused = node
        .audit_events(&session)
        .into_iter()
        .filter(|event| event == "indieauth.code_reused")
        .count();
    assert_eq!(reused, 1, "only the first reuse is written");

    let tokens2 = granted(&node, &session, &client, "create", &["create"]);
    let access = tokens2["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens2["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert!(tokens["access_token"].is_string());
    clock.advance(3601);
    assert_no_longer_authorizes(&node, &access);
    let renewed = post_form(
        &node,
        TOKEN,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client.client_id()),
        ],
        &[],
    );
    assert_eq!(
        renewed.status, 200,
        "the refresh token outlives it: {}",
        renewed.body
    );
    let fresh = renewed.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_eq!(introspect(&node, &fresh, &access), json!({"active": false}));
    assert_eq!(introspect(&node, &fresh, &fresh)["active"], true);
}

#[test]
fn browser_clients_can_read_the_endpoints_across_origins() {
    let (_dir, node, _owner, _session) = claimed_node();
    let head = Answer::from(
        agent()
            .run(
                ureq::http::Request::builder()
                    .method("HEAD")
                    .uri(node.url("/.well-known/oauth-authorization-server"))
                    .body(())
                    .expect("request"),
            )
            .expect("HEAD reaches the node"),
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("access-control-allow-origin"), Some("*"));
    for path in [TOKEN, INTROSPECT, REVOKE, "/indieauth/userinfo", AUTHORIZE] {
        let answer = Answer::from(
            agent()
                .run(
                    ureq::http::Request::builder()
                        .method("OPTIONS")
                        .uri(node.url(path))
                        .header("origin", "https://app.example")
                        .header("access-control-request-method", "POST")
                        .header("access-control-request-headers", "authorization")
                        .body(())
                        .expect("request"),
                )
                .expect("OPTIONS reaches the node"),
        );
        assert_eq!(answer.status, 204, "{path}");
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        assert!(
            answer
                .header("access-control-allow-headers")
                .is_some_and(|h| h.contains("authorization"))
        );
    }
    let refused = node.get("/indieauth/userinfo");
    assert_eq!(
        refused.header("access-control-expose-headers"),
        Some("WWW-Authenticate")
    );
    assert_eq!(
        node.get("/.well-known/webfinger").problem(400)["status"],
        400
    );
}

#[test]
fn metadata_served_from_another_origin_after_a_redirect_is_refused() {
    let (_dir, node, _owner, _session) = claimed_node();
    let elsewhere = ClientSite::with_metadata("Bank Online", &[]);
    let redirecting = ClientSite::serving(format!(
        "HTTP/1.1 302 Found\r\nlocation: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        elsewhere.client_id()
    ));
    let (_verifier, challenge) = pkce();
    let client_id = redirecting.client_id();
    let query = request_query(&client_id, &format!("{client_id}cb"), &challenge, "create");
    let answer = get(&node, &format!("{AUTHORIZE}?{query}"));
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("another origin"), "{}", answer.body);
    assert!(!answer.body.contains("Bank Online"));
}

#[test]
fn resetting_a_key_revokes_what_the_old_key_approved_and_spends_its_pending_codes() {
    let (_dir, node, owner, owner_session) = claimed_node();
    let (stepped, _) = node.login_stepped_up(&owner);
    let mut device = Device::new(&["session", "indieauth"]);
    register(&node, &stepped, &owner, &device);
    let (device_session, _) = node.login(&device.signer);
    let client = ClientSite::with_metadata("Reader", &[]);
    let access = granted(&node, &device_session, &client, "create", &["create"])["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let (pending_verifier, challenge) = pkce();
    let pending = approved_code(
        &node,
        &device_session,
        &client,
        &challenge,
        "create",
        &["create"],
    );

    device.signer = TestOwner {
        key: siteid::jose::jwk::OwnerPrivateKey::generate(),
        ..TestOwner::from_vector()
    };
    let reset = node.call(
        "PUT",
        &format!("/api/v1/credentials/{}/key", device.id),
        Some(&stepped),
        Some(&json!({
            "public_key": serde_json::to_value(device.signer.key.public_key().to_jwk()).expect("jwk"),
            "binding": device.binding(&owner),
        })),
        &[],
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_no_longer_authorizes(&node, &access);
    assert_eq!(
        oauth_error(&redeem(&node, &pending, &client, &pending_verifier)),
        "invalid_grant",
        "a code the old key approved is spent"
    );
    let entry = node.audit_entry(&owner_session, "indieauth.token_revoked");
    assert_eq!(entry["detail"]["reason"], "credential_revoked");
}
