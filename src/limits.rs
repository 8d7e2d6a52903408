//! The process's resource limits: the open-file limit, raised at start-up as far as the system
//! allows, the connection and WebSocket caps sized from it (so that open sockets can never use
//! up the descriptors the database and health checks need), and the open-WebSocket counters.

use std::collections::HashMap;
use std::sync::Mutex;

/// Descriptors kept back from connections: the database and its journal files, the watcher,
/// the log, the listener, and files served from the well-known directory.
pub const RESERVED_DESCRIPTORS: u64 = 64;
/// The most WebSockets a node serves, whatever its limits.
pub const MAX_WEBSOCKETS: usize = 20_000;
/// The soft limit asked for when the hard limit is unlimited.
const UNLIMITED_TARGET: u64 = 1 << 20;

/// The caps a node applies, derived from its open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// The soft open-file limit in force.
    pub open_files: u64,
    /// Concurrent connections in all (WebSockets included).
    pub connections: usize,
    /// Concurrent connections per worker thread (the HTTP server counts per worker).
    pub per_worker: usize,
    /// Open WebSockets in all; a quarter of the connections stay free for plain requests.
    pub websockets: usize,
}

impl ConnectionCaps {
    /// The caps for `open_files` descriptors shared by `workers` worker threads.
    pub fn for_open_files(open_files: u64, workers: usize) -> Self {
        let usable = open_files.saturating_sub(RESERVED_DESCRIPTORS).max(16);
        let connections = usize::try_from(usable).unwrap_or(usize::MAX);
        let workers = workers.max(1);
        ConnectionCaps {
            open_files,
            connections,
            per_worker: (connections / workers).max(1),
            websockets: (connections / 4 * 3).clamp(1, MAX_WEBSOCKETS),
        }
    }
}

/// Raises the soft open-file limit to the hard limit; returns the soft limit in force after.
/// Where the limit cannot be read, returns the common default of 1024.
pub fn raise_open_file_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return 1024;
        }
        let wanted = if limit.rlim_max == libc::RLIM_INFINITY {
            UNLIMITED_TARGET.max(limit.rlim_cur)
        } else {
            limit.rlim_max
        };
        if wanted > limit.rlim_cur {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit reads the struct we pass; failure leaves the limit unchanged.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                return wanted;
            }
        }
        limit.rlim_cur
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Open WebSocket counts per client and in all.
#[derive(Debug)]
pub struct OpenSockets {
    max_per_client: usize,
    max_total: usize,
    open: Mutex<(HashMap<String, usize>, usize)>,
}

impl OpenSockets {
    /// At most `max_per_client` sockets per client and `max_total` in all (sized from the
    /// open-file limit).
    pub fn new(max_per_client: usize, max_total: usize) -> Self {
        OpenSockets {
            max_per_client,
            max_total,
            open: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Takes a slot for `client`, if it and the node are under their caps.
    pub fn acquire(&self, client: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (per_client, total) = &mut *open;
        if *total >= self.max_total {
            return false;
        }
        let count = per_client.entry(client.to_owned()).or_insert(0);
        if *count >= self.max_per_client {
            return false;
        }
        *count += 1;
        *total += 1;
        true
    }

    /// Gives back a slot `client` took.
    pub fn release(&self, client: &str) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (per_client, total) = &mut *open;
        if let Some(count) = per_client.get_mut(client) {
            *count = count.saturating_sub(1);
            *total = total.saturating_sub(1);
            if *count == 0 {
                per_client.remove(client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_descriptors_for_the_node_and_connections_for_requests() {
        let caps = ConnectionCaps::for_open_files(1024, 2);
        assert_eq!(caps.connections, 960);
        assert_eq!(caps.per_worker, 480);
        assert_eq!(caps.websockets, 720);
        let large = ConnectionCaps::for_open_files(1 << 20, 2);
        assert_eq!(large.websockets, MAX_WEBSOCKETS);
        let tiny = ConnectionCaps::for_open_files(10, 4);
        assert!(tiny.connections >= 16 && tiny.per_worker >= 1 && tiny.websockets >= 1);
    }

    #[test]
    fn raising_the_limit_never_lowers_it() {
        let before = raise_open_file_limit();
        assert!(raise_open_file_limit() >= before);
    }
}
