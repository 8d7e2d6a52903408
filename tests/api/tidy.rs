//! Project hygiene: every Rust module starts with a `//!` line saying what it owns, every
//! browser module with a `//` line, and no node code runs SQLite on the calling thread.

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
