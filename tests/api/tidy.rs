//! Project hygiene: every Rust module starts with a `//!` line saying what it owns, and every
//! browser module with a `//` line.

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
