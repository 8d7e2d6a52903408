//! The operator's well-known directory: an in-memory index of the files to serve under
//! `/.well-known/`, rebuilt when `notify` reports a change (debounced).
//!
//! Requests are answered from the index only, never by joining a request path onto the
//! file system, so `..`, encoded dots and absolute paths cannot reach outside the directory.
//! Symbolic links are followed only when they resolve inside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::web::Bytes;
use notify::{RecursiveMode, Watcher};

use crate::http::well_known::etag;

/// Names the node generates itself; files with these names are ignored.
pub const RESERVED_NAMES: [&str; 2] = ["jwks.json", "did.json"];
/// The largest file served, in bytes.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;
/// The most files indexed.
pub const MAX_FILES: usize = 1000;
/// How deep subdirectories are followed.
pub const MAX_DEPTH: usize = 4;
/// How long the directory must be quiet before it is indexed again.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// A file ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFile {
    pub content_type: &'static str,
    pub body: Bytes,
    pub etag: String,
}

type Index = HashMap<String, Arc<StaticFile>>;

/// The live index of the well-known directory. Dropping it stops the watcher.
pub struct WellKnownDir {
    index: Arc<RwLock<Arc<Index>>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for WellKnownDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WellKnownDir(..)")
    }
}

impl WellKnownDir {
    /// Indexes `root` (creating it when missing) and keeps the index current.
    pub fn watch(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let index = Arc::new(RwLock::new(Arc::new(scan(&root))));
        let (sender, receiver) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = sender.send(());
                }
            })
            .map_err(std::io::Error::other)?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(std::io::Error::other)?;
        let live = index.clone();
        std::thread::Builder::new()
            .name("well-known-watch".into())
            .spawn(move || reindex_on_change(&root, &receiver, &live))?;
        Ok(WellKnownDir {
            index,
            _watcher: Some(watcher),
        })
    }

    /// The file served at `/.well-known/<name>`, if any.
    pub fn lookup(&self, name: &str) -> Option<Arc<StaticFile>> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }
}

/// Waits for change events, lets a burst settle, then indexes again. Ends when the watcher
/// (the only sender) is dropped.
fn reindex_on_change(root: &Path, events: &mpsc::Receiver<()>, index: &RwLock<Arc<Index>>) {
    while events.recv().is_ok() {
        loop {
            match events.recv_timeout(DEBOUNCE) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        let fresh = Arc::new(scan(root));
        tracing::info!(files = fresh.len(), "well-known directory indexed");
        *index.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }
}

/// Builds the index of `root`, which must be canonical.
fn scan(root: &Path) -> Index {
    let mut index = Index::new();
    scan_dir(root, root, "", 0, &mut index);
    index
}

fn scan_dir(root: &Path, dir: &Path, prefix: &str, depth: usize, index: &mut Index) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read a well-known directory");
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let key = format!("{prefix}{name}");
        let Some(path) = resolve_inside(root, &entry.path()) else {
            tracing::warn!(file = %key, "ignoring a well-known entry that leads outside the directory");
            continue;
        };
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            if depth + 1 < MAX_DEPTH {
                scan_dir(root, &path, &format!("{key}/"), depth + 1, index);
            }
            continue;
        }
        if !metadata.is_file() {
            tracing::warn!(file = %key, "ignoring a well-known entry that is not a regular file");
            continue;
        }
        let hidden_target = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden_target {
            continue;
        }
        if depth == 0 && RESERVED_NAMES.contains(&name.as_str()) {
            tracing::warn!(file = %key, "ignoring a well-known file whose name the node generates itself");
            continue;
        }
        if metadata.len() > MAX_FILE_SIZE {
            tracing::warn!(file = %key, "ignoring a well-known file over 1 MiB");
            continue;
        }
        if index.len() >= MAX_FILES {
            tracing::warn!(
                "the well-known directory has more than {MAX_FILES} files; ignoring the rest"
            );
            return;
        }
        let Some(body) = read_bounded(&path) else {
            tracing::warn!(file = %key, "ignoring a well-known file that cannot be read or is over 1 MiB");
            continue;
        };
        let file = StaticFile {
            content_type: content_type(&name),
            etag: etag(&body),
            body: Bytes::from(body),
        };
        index.insert(key, Arc::new(file));
    }
}

/// Reads at most [`MAX_FILE_SIZE`] bytes; `None` if the file is larger (it may have grown
/// since its size was checked) or unreadable.
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut body = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut body)
        .ok()?;
    (body.len() as u64 <= MAX_FILE_SIZE).then_some(body)
}

/// The canonical path of `path` if it lies inside `root`.
fn resolve_inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let resolved = path.canonicalize().ok()?;
    resolved.starts_with(root).then_some(resolved)
}

/// The content type for a file name: well-known names first, then the extension.
pub fn content_type(name: &str) -> &'static str {
    match name {
        "security.txt" | "humans.txt" => return "text/plain; charset=utf-8",
        "host-meta" => return "application/xrd+xml; charset=utf-8",
        "webfinger" => return "application/jrd+json",
        "nodeinfo" | "apple-app-site-association" => return "application/json",
        _ => {}
    }
    let extension = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("txt" | "asc") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("jrd") => "application/jrd+json",
        Some("xrd" | "xml") => "application/xml",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("pem") => "application/x-pem-file",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_indexed_by_relative_path_and_reserved_names_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::write(root.join("security.txt"), "Contact: x").expect("write");
        std::fs::write(root.join("jwks.json"), "{}").expect("write");
        std::fs::write(root.join(".hidden"), "x").expect("write");
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/a.json"), "{}").expect("write");
        let index = scan(&root);
        let mut keys: Vec<_> = index.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["security.txt", "sub/a.json"]);
        assert_eq!(
            index["security.txt"].content_type,
            "text/plain; charset=utf-8"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_directory_is_not_served() {
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("secret"), "x").expect("write");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("leak"))
            .expect("symlink");
        std::fs::write(root.join("real.txt"), "y").expect("write");
        std::os::unix::fs::symlink(root.join("real.txt"), root.join("alias.txt")).expect("symlink");
        let index = scan(&root);
        assert!(!index.contains_key("leak"));
        assert!(index.contains_key("alias.txt"));
    }
}
