//! The browser app's pages and assets: security headers on every page, no inline script,
//! the h-card home page, versioned immutable assets, and the per-page size budget.

use std::path::Path;

use crate::helpers::{Answer, TestNode, TestOwner, spawn_node};

const PAGES: [&str; 7] = [
    "/",
    "/setup",
    "/login",
    "/account",
    "/account/totp",
    "/account/inbox",
    "/account/apps",
];

fn assert_page_headers(answer: &Answer) {
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = answer.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(
        answer.header("cross-origin-opener-policy"),
        Some("same-origin")
    );
}

/// Every `<script` tag has a `src`, and no tag has an `on...=` handler or a `style=` attribute.
fn assert_no_inline_code(html: &str) {
    let lower = html.to_ascii_lowercase();
    for (index, _) in lower.match_indices("<script") {
        let tag_end = lower[index..]
            .find('>')
            .map(|e| index + e)
            .expect("closed tag");
        assert!(
            lower[index..tag_end].contains(" src="),
            "inline script: {}",
            &html[index..tag_end]
        );
    }
    for tag in lower.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or("");
        for attribute in tag.split_whitespace().skip(1) {
            assert!(!attribute.starts_with("on"), "inline handler in <{tag}>");
            assert!(!attribute.starts_with("style="), "inline style in <{tag}>");
        }
    }
}

#[test]
fn every_page_has_the_security_headers_and_no_inline_code() {
    let (_dir, node) = spawn_node();
    for page in PAGES {
        let answer = node.get(page);
        assert_page_headers(&answer);
        assert_no_inline_code(&answer.body);
    }
    node.claim(&TestOwner::from_vector());
    for page in PAGES {
        assert_page_headers(&node.get(page));
    }
    // The IndieAuth error page, and the consent page (on a node with a public URL, which shows
    // a loopback client without fetching anything).
    let request = "/indieauth/authorize?response_type=code&client_id=http://127.0.0.1:1/\
         &redirect_uri=http://127.0.0.1:1/cb&state=s\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let refused = node.get(&request.replace(
        "redirect_uri=http://127.0.0.1:1/cb",
        "redirect_uri=https://elsewhere.example/cb",
    ));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("id=\"indieauth-error\""));
    assert_no_inline_code(&refused.body);
    let (_public_dir, public) = crate::helpers::spawn_public_node();
    public.claim(&TestOwner::from_vector());
    let consent = public.get(request);
    assert_page_headers(&consent);
    assert_no_inline_code(&consent.body);
    assert!(consent.body.contains("id=\"consent-form\""));
}

#[test]
fn an_https_node_sends_hsts_on_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = TestNode::start(
        dir.path(),
        crate::helpers::NodeOptions {
            public_url: Some("https://id.example.org".into()),
            ..Default::default()
        },
    );
    let answer = node.get("/");
    assert!(
        answer
            .header("strict-transport-security")
            .is_some_and(|v| v.contains("max-age="))
    );
    assert!(
        spawn_node()
            .1
            .get("/")
            .header("strict-transport-security")
            .is_none()
    );
}

#[test]
fn the_home_page_is_an_h_card_with_the_profile_and_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[profile]\nname = \"Ada <Lovelace>\"\nnote = \"Engines & notes\"\nlinks = [{ name = \"Code\", url = \"https://code.example/ada\" }]\n",
    )
    .expect("config");
    let settings_dir = dir.path().to_owned();
    let node = TestNode::start(&settings_dir, Default::default());
    let unclaimed = node.get("/").body;
    assert!(
        unclaimed.contains("no owner yet") && unclaimed.contains("claim-url"),
        "{unclaimed}"
    );
    let owner = TestOwner::from_vector();
    let kid = node.claim(&owner);
    let page = node.get("/").body;
    assert!(page.contains("class=\"h-card\""));
    assert!(
        page.contains("Lovelace") && !page.contains("<Lovelace>"),
        "names are escaped: {page}"
    );
    assert!(page.contains("Engines &#38; notes") || page.contains("Engines &amp; notes"));
    assert!(
        page.contains("rel=\"me\" class=\"u-url\" href=\"https://code.example/ada\""),
        "{page}"
    );
    assert!(page.contains(&kid));
    assert!(page.contains("/.well-known/jwks.json") && page.contains("/.well-known/did.json"));
}

#[test]
fn assets_are_versioned_cached_for_a_year_and_revalidate() {
    let (_dir, node) = spawn_node();
    let page = node.get("/login").body;
    let start = page.find("/assets/").expect("an asset URL");
    let css = &page[start..start + page[start..].find('"').expect("end of URL")];
    assert!(css.ends_with("css/app.css"), "{css}");
    let answer = node.get(css);
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        answer.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = answer.header("etag").expect("etag").to_owned();
    assert_eq!(node.get_with(css, &[("if-none-match", &etag)]).status, 304);
    node.get("/assets/old-version/css/app.css").problem(404);
    let version = css.split('/').nth(2).expect("version");
    node.get(&format!("/assets/{version}/../Cargo.toml"))
        .problem(404);
    assert!(node.raw_get_status(&format!("/assets/{version}/%2e%2e/%2e%2e/Cargo.toml")) == 404);
}

/// The modules a browser module imports, by file name: `(static imports, dynamic imports)`.
fn imported_modules(source: &str) -> (Vec<String>, Vec<String>) {
    let mut static_imports = Vec::new();
    let mut dynamic_imports = Vec::new();
    for (at, _) in source.match_indices("'./") {
        let Some(name) = source[at + 3..].split('\'').next() else {
            continue;
        };
        if !name.ends_with(".mjs") {
            continue;
        }
        if source[..at].ends_with("import(") {
            dynamic_imports.push(name.to_owned());
        } else {
            static_imports.push(name.to_owned());
        }
    }
    (static_imports, dynamic_imports)
}

/// The modules a page loads from `entries`: with `on_demand`, also those they import only when
/// used.
fn page_modules_from(entries: &[&str], on_demand: bool) -> std::collections::BTreeSet<String> {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("static/js");
    let mut seen = std::collections::BTreeSet::new();
    let mut queue: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
    while let Some(module) = queue.pop() {
        if seen.insert(module.clone()) {
            let source = std::fs::read_to_string(js.join(&module))
                .unwrap_or_else(|e| panic!("{entries:?} import {module}: {e}"));
            let (static_imports, dynamic_imports) = imported_modules(&source);
            queue.extend(static_imports);
            if on_demand {
                queue.extend(dynamic_imports);
            }
        }
    }
    seen
}

/// The modules a page loads from `entry`: with `on_demand`, also those it imports only when used.
fn page_modules(entry: &str, on_demand: bool) -> std::collections::BTreeSet<String> {
    page_modules_from(&[entry], on_demand)
}

/// The modules some module of `modules` imports on demand.
fn on_demand_imports(modules: &std::collections::BTreeSet<String>) -> Vec<String> {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("static/js");
    let mut found: Vec<String> = modules
        .iter()
        .flat_map(|m| imported_modules(&std::fs::read_to_string(js.join(m)).expect("module")).1)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Each page loads its entry module, everything it imports and the stylesheet: together under
/// 60 KB uncompressed before the owner does anything. A feature loaded on demand (restoring from
/// shares on /setup, passkeys or a pasted signature on /login, replacing the owner key on
/// /account) stays under 90 KB with that first load and the node check (alarm.mjs and what it
/// imports, about 16 KB) that every write runs: one feature at a time, as the owner uses them.
/// Modules shared between pages are cached across them (immutable assets).
#[test]
fn each_page_loads_under_sixty_kilobytes_of_scripts_and_styles() {
    let sizes: std::collections::HashMap<String, usize> =
        siteid::http::assets::sizes().into_iter().collect();
    let weigh = |modules: &std::collections::BTreeSet<String>| {
        modules
            .iter()
            .map(|m| sizes.get(&format!("js/{m}")).copied().expect("embedded"))
            .sum::<usize>()
            + sizes.get("css/app.css").copied().expect("stylesheet")
    };
    for page in [
        "setup",
        "login",
        "account",
        "recovery",
        "recover",
        "credentials",
        "totp",
        "inbox",
        "apps",
        "consent",
    ] {
        let entry = format!("{page}.mjs");
        let first = page_modules(&entry, false);
        let total = weigh(&first);
        assert!(total < 60 * 1024, "/{page} loads {total} bytes: {first:?}");
        let reachable = page_modules(&entry, true);
        for feature in on_demand_imports(&reachable) {
            let mut entries = vec![entry.as_str(), feature.as_str()];
            if reachable.contains("alarm.mjs") {
                entries.push("alarm.mjs");
            }
            let path = page_modules_from(&entries, false);
            let total = weigh(&path);
            assert!(
                total < 90 * 1024,
                "/{page} with {feature} on demand loads {total} bytes: {path:?}"
            );
        }
    }
    assert!(
        page_modules("setup.mjs", true).contains("shares.mjs"),
        "dynamic imports are followed"
    );
}
