//! The operator's well-known directory: an in-memory index of the files to serve under
//! `/.well-known/`, rebuilt when `notify` reports a change (debounced).
//!
//! Requests are answered from the index only, never by joining a request path onto the
//! file system, so `..`, encoded dots and absolute paths cannot reach outside the directory.
//! Only regular files are indexed whose resolved path stays inside the directory and passes
//! through no hidden entry. The directory's parent is watched too, so a directory replaced
//! by a deploy (renamed, deleted and re-created, or a swapped symbolic link) is followed.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};

use crate::jose::b64;

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
type LiveIndex = Arc<RwLock<Arc<Index>>>;

/// The live index of the well-known directory. Dropping it stops the watcher.
pub struct WellKnownDir {
    index: LiveIndex,
    signals: mpsc::Sender<Signal>,
}

impl std::fmt::Debug for WellKnownDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WellKnownDir(..)")
    }
}

impl Drop for WellKnownDir {
    fn drop(&mut self) {
        // The thread may already have ended; then there is nothing to stop.
        let _ = self.signals.send(Signal::Stop);
    }
}

impl WellKnownDir {
    /// Indexes `configured` (creating it when missing) and keeps the index current, also
    /// when the directory is later replaced.
    pub fn watch(configured: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(configured)?;
        let location = Location::new(configured)?;
        let (signals, receiver) = mpsc::channel::<Signal>();
        let events = signals.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) => {
                    let _ = events.send(Signal::Event(event));
                }
                Err(error) => tracing::warn!(%error, "watching the well-known directory failed"),
            })
            .map_err(std::io::Error::other)?;
        watcher
            .watch(&location.parent, RecursiveMode::NonRecursive)
            .map_err(std::io::Error::other)?;
        let root = location.resolve();
        if let Some(root) = &root {
            watcher
                .watch(root, RecursiveMode::Recursive)
                .map_err(std::io::Error::other)?;
        }
        let index = Arc::new(RwLock::new(Arc::new(scan_root(root.as_deref()))));
        let follower = Follower {
            watcher,
            location,
            root,
            index: index.clone(),
        };
        std::thread::Builder::new()
            .name("well-known-watch".into())
            .spawn(move || follower.follow(&receiver))?;
        Ok(WellKnownDir { index, signals })
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

/// What the watcher thread receives.
enum Signal {
    /// `notify` saw something happen in the parent or inside the directory.
    Event(notify::Event),
    /// The [`WellKnownDir`] was dropped.
    Stop,
}

/// Where the configured directory is found: its canonical parent, which is watched, and
/// its entry in that parent, named as `notify` names it.
struct Location {
    parent: PathBuf,
    entry: PathBuf,
}

impl Location {
    fn new(configured: &Path) -> std::io::Result<Self> {
        let absolute = std::path::absolute(configured)?;
        let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the well-known directory must be a named entry in a parent directory",
            ));
        };
        let parent = parent.canonicalize()?;
        let entry = parent.join(name);
        Ok(Location { parent, entry })
    }

    /// The canonical directory the entry leads to now, if it leads to one.
    fn resolve(&self) -> Option<PathBuf> {
        let root = self.entry.canonicalize().ok()?;
        root.is_dir().then_some(root)
    }
}

/// What an event means for the index, from least to most work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// Nothing served can have changed (an unrelated entry of the parent, or a read).
    Unrelated,
    /// Something inside the directory changed: index again.
    Content,
    /// The directory itself may have been replaced: resolve it, move the watch, index again.
    Root,
}

/// Classifies `event` for the directory whose entry is `entry` and which currently
/// resolves to `root`.
fn classify(event: &notify::Event, entry: &Path, root: Option<&Path>) -> Change {
    // The indexer's own reads open files; only a close after writing is a change.
    if let EventKind::Access(kind) = event.kind
        && kind != AccessKind::Close(AccessMode::Write)
    {
        return Change::Unrelated;
    }
    if event.need_rescan() || event.paths.is_empty() {
        return Change::Root;
    }
    event
        .paths
        .iter()
        .map(|path| {
            if path == entry || root.is_some_and(|root| path == root) {
                Change::Root
            } else if root.is_some_and(|root| path.starts_with(root)) {
                Change::Content
            } else {
                Change::Unrelated
            }
        })
        .max()
        .unwrap_or(Change::Unrelated)
}

/// The watcher thread's state: the `notify` watcher, where the directory is configured,
/// and the canonical directory currently watched and indexed (`None` while it is missing).
struct Follower {
    watcher: notify::RecommendedWatcher,
    location: Location,
    root: Option<PathBuf>,
    index: LiveIndex,
}

impl Follower {
    /// Waits for changes, lets a burst settle, then follows a replaced directory and indexes
    /// again. Ends when the [`WellKnownDir`] is dropped.
    fn follow(mut self, signals: &mpsc::Receiver<Signal>) {
        while let Some(change) = self.next_burst(signals) {
            let current = self.location.resolve();
            if change == Change::Root || current != self.root {
                self.move_watch(current);
            }
            let fresh = Arc::new(scan_root(self.root.as_deref()));
            tracing::info!(files = fresh.len(), "well-known directory indexed");
            *self.index.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        }
    }

    /// The largest change in the next burst of related events, once [`DEBOUNCE`] has
    /// passed without one; `None` when it is time to stop. Unrelated events neither start
    /// a burst nor prolong it.
    fn next_burst(&self, signals: &mpsc::Receiver<Signal>) -> Option<Change> {
        let mut change = Change::Unrelated;
        while change == Change::Unrelated {
            change = self.related(signals.recv().ok()?)?;
        }
        let mut quiet_from = Instant::now() + DEBOUNCE;
        loop {
            let signal =
                match signals.recv_timeout(quiet_from.saturating_duration_since(Instant::now())) {
                    Ok(signal) => signal,
                    Err(mpsc::RecvTimeoutError::Timeout) => return Some(change),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                };
            let next = self.related(signal)?;
            if next != Change::Unrelated {
                change = change.max(next);
                quiet_from = Instant::now() + DEBOUNCE;
            }
        }
    }

    /// What `signal` means; `None` for the signal to stop.
    fn related(&self, signal: Signal) -> Option<Change> {
        match signal {
            Signal::Event(event) => {
                Some(classify(&event, &self.location.entry, self.root.as_deref()))
            }
            Signal::Stop => None,
        }
    }

    /// Moves the recursive watch from the previous directory to `root`.
    fn move_watch(&mut self, root: Option<PathBuf>) {
        if let Some(previous) = self.root.take() {
            // `notify` has already dropped the watch when the directory left the parent.
            let _ = self.watcher.unwatch(&previous);
        }
        match &root {
            Some(root) => {
                if let Err(error) = self.watcher.watch(root, RecursiveMode::Recursive) {
                    tracing::warn!(%error, dir = %root.display(), "cannot watch the well-known directory");
                }
            }
            None => tracing::warn!(
                entry = %self.location.entry.display(),
                "the well-known directory is missing; serving none of its files"
            ),
        }
        self.root = root;
    }
}

/// The index of `root`, or an empty one while the directory is missing.
fn scan_root(root: Option<&Path>) -> Index {
    root.map(scan).unwrap_or_default()
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
        let Some(path) = resolve_visible(root, &entry.path()) else {
            tracing::warn!(file = %key, "ignoring a well-known entry that leads outside the directory or into a hidden entry");
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

/// A strong ETag over a body: the first 16 bytes of its SHA-256, base64url, quoted.
pub fn etag(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("\"{}\"", b64::encode(&Sha256::digest(body)[..16]))
}

/// Reads at most [`MAX_FILE_SIZE`] bytes of a regular file; `None` if it is larger (it may have
/// grown since its size was checked), unreadable or no longer a regular file.
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // A file swapped for a named pipe after it was checked must not block the watcher: open
    // without waiting, then check what was opened.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut body = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut body).ok()?;
    (body.len() as u64 <= MAX_FILE_SIZE).then_some(body)
}

/// The canonical path of `path` if it lies inside `root` and no component between `root`
/// and it is hidden.
fn resolve_visible(root: &Path, path: &Path) -> Option<PathBuf> {
    let resolved = path.canonicalize().ok()?;
    let inside = resolved.strip_prefix(root).ok()?;
    (!has_hidden_component(inside)).then_some(resolved)
}

/// Whether any component of `relative` is hidden (starts with `.`) or is not a plain name.
fn has_hidden_component(relative: &Path) -> bool {
    relative.components().any(|component| match component {
        Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
        _ => true,
    })
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
    fn a_named_pipe_is_not_read_and_does_not_block() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pipe = dir.path().join("pipe.txt");
        let path = std::ffi::CString::new(pipe.to_str().expect("utf-8")).expect("no NUL");
        // SAFETY: mkfifo reads the NUL-terminated path we pass.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
        assert_eq!(read_bounded(&pipe), None);
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

    #[test]
    fn a_path_with_a_hidden_component_anywhere_is_hidden() {
        for hidden in [".a", "a/.b", "a/b/.c", "..", "a/../b", "./a"] {
            assert!(has_hidden_component(Path::new(hidden)), "{hidden}");
        }
        for visible in ["", "a", "a/b.c", "a.b/c", "a..b"] {
            assert!(!has_hidden_component(Path::new(visible)), "{visible}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_through_a_hidden_entry_are_not_served_and_visible_ones_are() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir(root.join(".private")).expect("mkdir");
        std::fs::write(root.join(".private/secret.txt"), "s").expect("write");
        std::fs::write(root.join(".hidden.txt"), "h").expect("write");
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/inner.txt"), "i").expect("write");
        symlink(".private", root.join("pubdir")).expect("symlink");
        symlink(".private/secret.txt", root.join("peek.txt")).expect("symlink");
        symlink(".hidden.txt", root.join("shown.txt")).expect("symlink");
        symlink("../.private/secret.txt", root.join("sub/up.txt")).expect("symlink");
        symlink("sub", root.join("subalias")).expect("symlink");
        symlink("sub/inner.txt", root.join("alias.txt")).expect("symlink");
        let index = scan(&root);
        let mut keys: Vec<_> = index.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["alias.txt", "sub/inner.txt", "subalias/inner.txt"]);
    }

    #[test]
    fn a_root_under_a_hidden_directory_is_served() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical").join(".site");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(root.join("a.txt"), "a").expect("write");
        assert!(scan(&root).contains_key("a.txt"));
    }

    /// How many threads of this process have a name starting with `prefix`.
    #[cfg(target_os = "linux")]
    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .expect("task list")
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    }

    /// Whether `condition` holds within ten seconds, polled.
    #[cfg(target_os = "linux")]
    fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dropping_the_directory_stops_its_watcher_threads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("well-known");
        let watched = WellKnownDir::watch(&root).expect("watch");
        std::fs::write(root.join("a.txt"), "a").expect("write");
        // Thread names are cut to 15 bytes, and a thread names itself once it runs.
        let running = || threads_named("well-known-watc") + threads_named("notify-rs inoti");
        assert!(eventually(|| running() == 2));
        drop(watched);
        assert!(eventually(|| running() == 0));
    }

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_and_unrelated_entries_of_the_parent_are_not_changes() {
        use notify::event::{CreateKind, ModifyKind};
        let (entry, root) = (Path::new("/p/wk"), Some(Path::new("/p/wk")));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let closed_after_read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let closed_after_write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let created = EventKind::Create(CreateKind::File);
        let written = EventKind::Modify(ModifyKind::Any);
        assert_eq!(
            classify(&event(open, "/p/wk/a"), entry, root),
            Change::Unrelated
        );
        assert_eq!(
            classify(&event(closed_after_read, "/p/wk/a"), entry, root),
            Change::Unrelated
        );
        assert_eq!(
            classify(&event(written, "/p/db.sqlite3-wal"), entry, root),
            Change::Unrelated
        );
        assert_eq!(
            classify(&event(written, "/p/wk-other"), entry, root),
            Change::Unrelated
        );
        assert_eq!(
            classify(&event(closed_after_write, "/p/wk/a"), entry, root),
            Change::Content
        );
        assert_eq!(
            classify(&event(created, "/p/wk/sub/b"), entry, root),
            Change::Content
        );
    }

    #[test]
    fn an_event_on_the_entry_or_the_resolved_directory_is_a_root_change() {
        use notify::event::{ModifyKind, RemoveKind, RenameMode};
        let entry = Path::new("/p/wk");
        let root = Some(Path::new("/p/releases/1"));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let removed = EventKind::Remove(RemoveKind::Folder);
        assert_eq!(
            classify(&event(renamed, "/p/wk"), entry, root),
            Change::Root
        );
        assert_eq!(
            classify(&event(renamed, "/p/wk"), entry, None),
            Change::Root
        );
        assert_eq!(
            classify(&event(removed, "/p/releases/1"), entry, root),
            Change::Root
        );
        assert_eq!(
            classify(&event(removed, "/p/releases/1/a"), entry, root),
            Change::Content
        );
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(classify(&overflow, entry, root), Change::Root);
    }
}
