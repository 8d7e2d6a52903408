//! `/.well-known/`: the JWKS and DID document with their headers, and the operator's
//! directory with path-escape refusals and hot reload.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{NodeOptions, TestNode, TestOwner, spawn_node, wait_until};

#[test]
fn the_public_documents_are_404_before_a_claim() {
    let (_dir, node) = spawn_node();
    node.get("/.well-known/jwks.json").problem(404);
    node.get("/.well-known/did.json").problem(404);
}

#[test]
fn the_jwks_publishes_the_owner_key_with_caching_headers() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let answer = node.get("/.well-known/jwks.json");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/jwk-set+json")
    );
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert!(
        answer
            .header("cache-control")
            .is_some_and(|c| c.contains("max-age"))
    );
    let jwk = &owner.public_jwk;
    let enc = owner.encryption.public_key().to_jwk();
    assert_eq!(
        answer.json(),
        json!({"keys": [{"kty": "EC", "crv": "P-384", "x": jwk["x"], "y": jwk["y"],
                         "kid": kid, "alg": "ES384", "use": "sig"},
                        {"kty": "EC", "crv": "P-384", "x": enc.x, "y": enc.y,
                         "kid": owner.encryption.public_key().thumbprint(),
                         "alg": "ECDH-ES+A256KW", "use": "enc"}]})
    );
    let etag = answer.header("etag").expect("an ETag").to_owned();
    let revalidated = node.get_with("/.well-known/jwks.json", &[("if-none-match", &etag)]);
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    let other = node.get_with("/.well-known/jwks.json", &[("if-none-match", "\"other\"")]);
    assert_eq!(other.status, 200);
}

#[test]
fn the_did_document_names_the_host_and_port_and_the_owner_key() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let answer = node.get("/.well-known/did.json");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/did+json"));
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert!(answer.header("etag").is_some());
    assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
    let etag = answer.header("etag").expect("etag").to_owned();
    assert_eq!(
        node.get_with("/.well-known/did.json", &[("if-none-match", &etag)])
            .status,
        304
    );
    let document = answer.json();
    let did = format!("did:web:127.0.0.1%3A{}", node.address.port());
    let method = format!("{did}#{kid}");
    assert_eq!(document["id"], did.as_str());
    assert_eq!(document["@context"][0], "https://www.w3.org/ns/did/v1");
    let vm = &document["verificationMethod"][0];
    assert_eq!(vm["id"], method.as_str());
    assert_eq!(vm["type"], "JsonWebKey2020");
    assert_eq!(vm["controller"], did.as_str());
    assert_eq!(vm["publicKeyJwk"], owner.public_jwk);
    assert_eq!(document["authentication"], json!([method]));
    assert_eq!(document["assertionMethod"], json!([method]));
}

#[test]
fn a_public_url_without_a_port_gives_a_plain_did() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            public_url: Some("https://id.example.org".into()),
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    // The proof's audience is the public URL, not the address the test connects to.
    let mut body = owner.claim_body(&node, &token);
    let now = crate::helpers::now();
    body["proof"] = json!(owner.sign(
        json!({"alg": "ES384", "typ": "siteid-claim+jwt"}),
        json!({"aud": "https://id.example.org", "nonce": token, "iat": now, "exp": now + 300}),
    ));
    assert_eq!(node.post_json("/api/v1/owner", &body).status, 201);
    assert_eq!(
        node.get("/.well-known/did.json").json()["id"],
        "did:web:id.example.org"
    );
}

#[test]
fn an_ipv6_public_url_gives_a_did_that_resolves_to_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let public_url = "http://[::1]:8080";
    let node = TestNode::start(
        dir.path(),
        NodeOptions {
            public_url: Some(public_url.into()),
            ..NodeOptions::default()
        },
    );
    let owner = TestOwner::from_vector();
    let token = node.claim_token();
    let mut body = owner.claim_body(&node, &token);
    let now = crate::helpers::now();
    body["proof"] = json!(owner.sign(
        json!({"alg": "ES384", "typ": "siteid-claim+jwt"}),
        json!({"aud": public_url, "nonce": token, "iat": now, "exp": now + 300}),
    ));
    assert_eq!(node.post_json("/api/v1/owner", &body).status, 201);
    let document = node.get("/.well-known/did.json").json();
    let did = document["id"].as_str().expect("id");
    // DID Core: method-specific-id = *( *idchar ":" ) 1*idchar, idchar = ALPHA / DIGIT / "." /
    // "-" / "_" / pct-encoded.
    let id = did.strip_prefix("did:web:").expect("did:web");
    let chars: Vec<char> = id.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c == '%' {
            assert!(
                chars
                    .get(at + 1..at + 3)
                    .is_some_and(|h| h.iter().all(char::is_ascii_hexdigit)),
                "{did}"
            );
            at += 3;
        } else {
            assert!(
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'),
                "{did}"
            );
            at += 1;
        }
    }
    // did:web resolution: percent-decode, then https:// + host + /.well-known/did.json.
    let decoded = id
        .replace("%3A", ":")
        .replace("%5B", "[")
        .replace("%5D", "]");
    assert_eq!(decoded, "[::1]:8080");
    assert!(url::Url::parse(&format!("https://{decoded}/.well-known/did.json")).is_ok());
}

fn well_known_dir(node: &TestNode) -> std::path::PathBuf {
    node.data_dir.join("well-known")
}

#[test]
fn operator_files_are_served_with_a_content_type_and_no_escape() {
    let (_dir, node) = spawn_node();
    let dir = well_known_dir(&node);
    std::fs::write(dir.join("security.txt"), "Contact: mailto:me@example.org\n").expect("write");
    std::fs::create_dir_all(dir.join("nested")).expect("mkdir");
    std::fs::write(dir.join("nested/info.json"), "{}").expect("write");
    let outside = node.data_dir.join("outside-secret.txt");
    std::fs::write(&outside, "secret").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, dir.join("leak.txt")).expect("symlink");
    assert!(wait_until(Duration::from_secs(10), || {
        node.get("/.well-known/nested/info.json").status == 200
    }));
    let security = node.get("/.well-known/security.txt");
    assert_eq!(security.status, 200);
    assert_eq!(security.body, "Contact: mailto:me@example.org\n");
    assert_eq!(
        security.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(security.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        node.get("/.well-known/nested/info.json")
            .header("content-type"),
        Some("application/json")
    );
    node.get("/.well-known/leak.txt").problem(404);
    node.get("/.well-known/nested").problem(404);
    node.get("/.well-known/").problem(404);
    for path in [
        "/.well-known/../outside-secret.txt",
        "/.well-known/%2e%2e/outside-secret.txt",
        "/.well-known/%2E%2E%2Foutside-secret.txt",
        "/.well-known/nested/../../outside-secret.txt",
        "/.well-known/..%2f..%2fsiteid.sqlite3",
        "/.well-known//etc/passwd",
        "/.well-known/%2fetc%2fpasswd",
    ] {
        let status = node.raw_get_status(path);
        assert!(status == 404 || status == 400, "{path} answered {status}");
    }
}

#[test]
fn changes_to_the_directory_take_effect_without_a_restart() {
    let (_dir, node) = spawn_node();
    let file = well_known_dir(&node).join("nodeinfo");
    node.get("/.well-known/nodeinfo").problem(404);
    std::fs::write(&file, "{\"v\":1}").expect("write");
    assert!(wait_until(Duration::from_secs(10), || node
        .get("/.well-known/nodeinfo")
        .body
        == "{\"v\":1}"));
    std::fs::write(&file, "{\"v\":2}").expect("write");
    assert!(wait_until(Duration::from_secs(10), || node
        .get("/.well-known/nodeinfo")
        .body
        == "{\"v\":2}"));
    std::fs::remove_file(&file).expect("delete");
    assert!(wait_until(Duration::from_secs(10), || node
        .get("/.well-known/nodeinfo")
        .status
        == 404));
}

#[test]
fn a_file_named_like_a_generated_document_is_ignored() {
    let (_dir, node) = spawn_node();
    let owner = TestOwner::from_vector();
    node.claim(&owner);
    let dir = well_known_dir(&node);
    std::fs::write(dir.join("jwks.json"), "{\"keys\":[]}").expect("write");
    std::fs::write(dir.join("marker.txt"), "x").expect("write");
    assert!(wait_until(Duration::from_secs(10), || node
        .get("/.well-known/marker.txt")
        .status
        == 200));
    let jwks = node.get("/.well-known/jwks.json").json();
    assert_eq!(jwks["keys"][0]["x"], owner.public_jwk["x"]);
}

/// Waits until `path` answers 200 with `body`.
fn wait_for_body(node: &TestNode, path: &str, body: &str) -> bool {
    wait_until(Duration::from_secs(10), || {
        let answer = node.get(path);
        answer.status == 200 && answer.body == body
    })
}

#[cfg(unix)]
#[test]
fn a_symlink_through_a_hidden_directory_is_not_served() {
    use std::os::unix::fs::symlink;
    let (_dir, node) = spawn_node();
    let dir = well_known_dir(&node);
    std::fs::create_dir(dir.join(".private")).expect("mkdir");
    std::fs::write(dir.join(".private/secret.txt"), "secret").expect("write");
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("sub/inner.txt"), "inner").expect("write");
    std::fs::write(dir.join("visible.txt"), "visible").expect("write");
    symlink(".private", dir.join("pubdir")).expect("symlink");
    symlink(".private/secret.txt", dir.join("peek.txt")).expect("symlink");
    symlink("../.private/secret.txt", dir.join("sub/up.txt")).expect("symlink");
    symlink("visible.txt", dir.join("alias.txt")).expect("symlink");
    symlink("sub", dir.join("subalias")).expect("symlink");
    // Written last: once it is served, the index holds everything above.
    std::fs::write(dir.join("marker.txt"), "m").expect("write");
    assert!(wait_for_body(&node, "/.well-known/marker.txt", "m"));
    node.get("/.well-known/pubdir/secret.txt").problem(404);
    node.get("/.well-known/peek.txt").problem(404);
    node.get("/.well-known/sub/up.txt").problem(404);
    node.get("/.well-known/.private/secret.txt").problem(404);
    assert_eq!(node.get("/.well-known/visible.txt").body, "visible");
    assert_eq!(node.get("/.well-known/alias.txt").body, "visible");
    assert_eq!(node.get("/.well-known/sub/inner.txt").body, "inner");
    assert_eq!(node.get("/.well-known/subalias/inner.txt").body, "inner");
}

#[test]
fn a_directory_replaced_by_a_deploy_is_served_and_watched() {
    let (_dir, node) = spawn_node();
    let dir = well_known_dir(&node);
    std::fs::write(dir.join("version.txt"), "1").expect("write");
    assert!(wait_for_body(&node, "/.well-known/version.txt", "1"));

    // Deploy by renaming: the old directory moves aside and a new one takes its place.
    let fresh = node.data_dir.join("well-known.new");
    std::fs::create_dir(&fresh).expect("mkdir");
    std::fs::write(fresh.join("version.txt"), "2").expect("write");
    std::fs::write(fresh.join("added.txt"), "added").expect("write");
    std::fs::rename(&dir, node.data_dir.join("well-known.old")).expect("move old aside");
    std::fs::rename(&fresh, &dir).expect("move new in");
    assert!(wait_for_body(&node, "/.well-known/version.txt", "2"));
    assert_eq!(node.get("/.well-known/added.txt").body, "added");
    std::fs::write(dir.join("later.txt"), "later").expect("write");
    assert!(wait_for_body(&node, "/.well-known/later.txt", "later"));

    // Deploy by deleting: nothing is served while the directory is missing.
    std::fs::remove_dir_all(&dir).expect("delete");
    assert!(wait_until(Duration::from_secs(10), || node
        .get("/.well-known/version.txt")
        .status
        == 404));
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("version.txt"), "3").expect("write");
    assert!(wait_for_body(&node, "/.well-known/version.txt", "3"));
    std::fs::write(dir.join("version.txt"), "4").expect("write");
    assert!(wait_for_body(&node, "/.well-known/version.txt", "4"));
}

#[cfg(unix)]
#[test]
fn a_swapped_symlink_to_a_release_directory_is_followed() {
    use std::os::unix::fs::symlink;
    let (_dir, node) = spawn_node();
    let dir = well_known_dir(&node);
    let releases = node.data_dir.join("releases");
    for release in ["1", "2"] {
        std::fs::create_dir_all(releases.join(release)).expect("mkdir");
        std::fs::write(releases.join(release).join("version.txt"), release).expect("write");
    }
    std::fs::remove_dir(&dir).expect("delete the empty directory");
    symlink("releases/1", &dir).expect("symlink");
    assert!(wait_for_body(&node, "/.well-known/version.txt", "1"));

    // Swap atomically: a new link renamed over the old one.
    let next = node.data_dir.join("well-known.next");
    symlink("releases/2", &next).expect("symlink");
    std::fs::rename(&next, &dir).expect("swap the link");
    assert!(wait_for_body(&node, "/.well-known/version.txt", "2"));
    std::fs::write(releases.join("2/later.txt"), "later").expect("write");
    assert!(wait_for_body(&node, "/.well-known/later.txt", "later"));
}
