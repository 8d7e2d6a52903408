//! Project hygiene: every Rust module starts with a `//!` line saying what it owns, every
//! browser module with a `//` line, no node code runs SQLite on the calling thread, and modules
//! use only the layers below them (the layering of ARCHITECTURE.md).

use std::path::{Path, PathBuf};

fn files_with_extension(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_with_extension(&path, extension, found);
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
}

fn first_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("read file")
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn every_rust_module_starts_with_a_module_doc_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_with_extension(&root.join("src"), "rs", &mut files);
    files_with_extension(&root.join("tests/api"), "rs", &mut files);
    assert!(files.len() > 20);
    let missing: Vec<_> = files
        .iter()
        .filter(|path| !first_line(path).starts_with("//! "))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! line: {missing:?}"
    );
}

#[test]
fn every_browser_module_starts_with_a_comment_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_with_extension(&root.join("static/js"), "mjs", &mut files);
    assert!(!files.is_empty());
    let missing: Vec<_> = files
        .iter()
        .filter(|path| !first_line(path).starts_with("// "))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a leading comment: {missing:?}"
    );
}

/// The part of a source file before its `#[cfg(test)]` module.
fn production_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read file");
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[test]
fn only_the_command_line_runs_database_work_on_the_calling_thread() {
    // ARCHITECTURE.md: no database call on an executor thread. The node goes through
    // `Store::run` (a blocking thread); only the CLI, which has no executor, calls
    // `run_blocking`, and `Store::run` itself is built on it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_with_extension(&root.join("src"), "rs", &mut files);
    let offenders: Vec<_> = files
        .iter()
        .filter(|path| !path.starts_with(root.join("src/cli")))
        .filter(|path| !path.ends_with("src/store/mod.rs"))
        .filter(|path| production_code(path).contains("run_blocking("))
        .collect();
    assert!(
        offenders.is_empty(),
        "run_blocking outside the CLI: {offenders:?}"
    );
    let store = production_code(&root.join("src/store/mod.rs"));
    assert_eq!(
        store.matches("run_blocking(").count(),
        1,
        "src/store/mod.rs calls run_blocking only inside Store::run"
    );
}

/// The top-level modules each module may use (`crate::<name>`), from ARCHITECTURE.md's
/// layering: lower layers never reach up, and `http`, `ws` and `app` reach down only.
/// `cli`, `startup`, `lib` and `main` wire everything and may use anything.
const ALLOWED_DEPENDENCIES: [(&str, &[&str]); 19] = [
    (
        "app",
        &[
            "audit",
            "auth",
            "clock",
            "config",
            "error",
            "inbox",
            "indieauth",
            "jose",
            "limits",
            "store",
            "well_known_dir",
        ],
    ),
    ("audit", &["net", "store"]),
    (
        "auth",
        &[
            "audit", "config", "jose", "keys", "limits", "net", "recovery", "store",
        ],
    ),
    ("clock", &[]),
    ("config", &[]),
    ("error", &["auth", "recovery", "telemetry"]),
    (
        "http",
        &[
            "app",
            "audit",
            "auth",
            "clock",
            "config",
            "error",
            "inbox",
            "indieauth",
            "jose",
            "outbound",
            "recovery",
            "store",
            "well_known_dir",
            "ws",
        ],
    ),
    (
        "inbox",
        &[
            "audit", "auth", "config", "jose", "limits", "net", "outbound", "store",
        ],
    ),
    (
        "indieauth",
        &["audit", "config", "jose", "limits", "outbound", "store"],
    ),
    ("jose", &[]),
    ("keys", &["jose"]),
    ("limits", &["net"]),
    ("net", &[]),
    ("outbound", &["clock", "net"]),
    ("recovery", &["audit", "jose", "store"]),
    ("store", &[]),
    ("telemetry", &[]),
    ("well_known_dir", &["jose"]),
    ("ws", &["app", "auth", "error", "jose", "limits"]),
];

/// Modules that hold no HTTP types.
const WITHOUT_ACTIX: [&str; 13] = [
    "audit",
    "auth",
    "clock",
    "config",
    "inbox",
    "indieauth",
    "jose",
    "keys",
    "limits",
    "net",
    "outbound",
    "recovery",
    "store",
];

/// The top-level module a source file belongs to.
fn top_module(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root.join("src")).expect("under src");
    let first = relative
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules a source text names as `crate::<name>`.
fn used_modules(text: &str) -> std::collections::BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(at, _)| {
            text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_with_extension(&root.join("src"), "rs", &mut files);
    let mut violations = Vec::new();
    for path in &files {
        let module = top_module(root, path);
        if ["cli", "startup", "lib", "main"].contains(&module.as_str()) {
            continue;
        }
        let Some((_, allowed)) = ALLOWED_DEPENDENCIES.iter().find(|(m, _)| *m == module) else {
            violations.push(format!(
                "{module} ({path:?}) is missing from the layering table"
            ));
            continue;
        };
        let text = std::fs::read_to_string(path).expect("read");
        for used in used_modules(&text) {
            if used != module && !allowed.contains(&used.as_str()) {
                violations.push(format!("{path:?}: {module} uses crate::{used}"));
            }
        }
        if WITHOUT_ACTIX.contains(&module.as_str()) && text.contains("actix") {
            violations.push(format!("{path:?}: {module} names actix"));
        }
        if ["http", "ws", "app"].contains(&module.as_str()) && text.contains("rusqlite") {
            violations.push(format!(
                "{path:?}: {module} names rusqlite (SQL lives in store/)"
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn only_jose_and_keys_touch_the_signature_and_encryption_crates() {
    // ARCHITECTURE.md: strict parsing before cryptography holds because every use of these
    // crates sits behind the parsers in `jose` and `keys`. (rustls names its own aws-lc-rs
    // provider, `rustls::crypto::aws_lc_rs`, which is a TLS setting, not a use.)
    const CRATES: [&str; 12] = [
        "p256",
        "p384",
        "jsonwebtoken",
        "aws_lc_rs",
        "aes_kw",
        "aes_gcm",
        "pbkdf2",
        "bcrypt_pbkdf",
        "crypto_bigint",
        "webauthn_rs",
        "serde_cbor_2",
        "rsa",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_with_extension(&root.join("src"), "rs", &mut files);
    let mut offenders = Vec::new();
    for path in &files {
        let module = top_module(root, path);
        if module == "jose" || module == "keys" {
            continue;
        }
        let text = production_code(path);
        for name in CRATES {
            let pattern = format!("{name}::");
            let uses = text.match_indices(&pattern).any(|(at, _)| {
                let before = &text[..at];
                !before.ends_with("::") && !before.ends_with('_')
            });
            if uses {
                offenders.push(format!("{path:?} uses {name}"));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// The problem types the code answers with: the slug that follows a `StatusCode::...,` line.
fn problem_slugs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].starts_with("StatusCode::") && pair[0].ends_with(','))
        .filter_map(|pair| {
            let slug = pair[1].strip_prefix('"')?.strip_suffix("\",")?;
            slug.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
                .then(|| slug.to_owned())
        })
        .collect()
}

#[test]
fn every_problem_type_the_code_answers_is_in_the_protocol_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let protocol = std::fs::read_to_string(root.join("docs/protocol.md")).expect("protocol.md");
    let mut files = Vec::new();
    files_with_extension(&root.join("src"), "rs", &mut files);
    let mut slugs: Vec<String> = files
        .iter()
        .flat_map(|path| problem_slugs(&std::fs::read_to_string(path).expect("read")))
        .collect();
    slugs.sort();
    slugs.dedup();
    assert!(slugs.len() > 30, "found only {slugs:?}");
    let missing: Vec<&String> = slugs
        .iter()
        .filter(|slug| !protocol.contains(&format!("`{slug}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/protocol.md: {missing:?}");
}
