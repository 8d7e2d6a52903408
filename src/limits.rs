//! The process's resource limits: the open-file limit, raised at start-up as far as the system
//! allows, the connection and WebSocket caps sized from it (so that open sockets can never use
//! up the descriptors the database and health checks need), the open-WebSocket counters, and
//! per-minute rates by client, network and node for what anyone may ask of the node.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

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

/// Open WebSockets per network (an IPv4 /24, an IPv6 /48), as a multiple of the per-client cap.
pub const WEBSOCKETS_PER_NETWORK_FACTOR: usize = 4;
/// The most sockets that may wait for authentication at once, whatever the total cap.
pub const MAX_UNAUTHENTICATED_WEBSOCKETS: usize = 1024;

/// Why a WebSocket was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRefusal {
    /// The client (an address, an IPv6 /64) or its network has too many.
    Client,
    /// The node has too many.
    Node,
}

/// Open WebSocket counts per client, per network, in all, and of those not yet authenticated.
#[derive(Debug)]
pub struct OpenSockets {
    max_per_client: usize,
    max_per_network: usize,
    max_total: usize,
    max_unauthenticated: usize,
    open: Mutex<SocketCounts>,
}

#[derive(Debug, Default)]
struct SocketCounts {
    per_client: HashMap<String, usize>,
    per_network: HashMap<String, usize>,
    total: usize,
    /// Sockets waiting to authenticate, oldest first, with the signal that closes each.
    waiting: VecDeque<(u64, Arc<Notify>)>,
    next_ticket: u64,
}

/// A slot's identity and the signal that tells its socket to give way: when too many sockets
/// wait to authenticate, the oldest waiting one is closed to make room for a new one, so that
/// sockets opened and left waiting cannot keep others out.
#[derive(Debug, Clone)]
pub struct SocketTicket {
    pub id: u64,
    pub give_way: Arc<Notify>,
}

fn decrement(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

impl OpenSockets {
    /// At most `max_per_client` sockets per client, four times that per network, `max_total`
    /// in all (sized from the open-file limit), and a quarter of the total (at most
    /// [`MAX_UNAUTHENTICATED_WEBSOCKETS`]) waiting to authenticate before the oldest waiting
    /// one gives way.
    pub fn new(max_per_client: usize, max_total: usize) -> Self {
        OpenSockets {
            max_per_client,
            max_per_network: max_per_client.saturating_mul(WEBSOCKETS_PER_NETWORK_FACTOR),
            max_total,
            max_unauthenticated: (max_total / 4).clamp(1, MAX_UNAUTHENTICATED_WEBSOCKETS),
            open: Mutex::new(SocketCounts::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SocketCounts> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot, not yet authenticated, for `client` of `network`, if the client, network
    /// and total caps allow. When too many sockets are waiting to authenticate, the oldest
    /// waiting one is told to give way.
    pub fn acquire(&self, client: &str, network: &str) -> Result<SocketTicket, SocketRefusal> {
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(SocketRefusal::Node);
        }
        let per_client = open.per_client.get(client).copied().unwrap_or(0);
        let per_network = open.per_network.get(network).copied().unwrap_or(0);
        if per_client >= self.max_per_client || per_network >= self.max_per_network {
            return Err(SocketRefusal::Client);
        }
        if open.waiting.len() >= self.max_unauthenticated
            && let Some((_, oldest)) = open.waiting.pop_front()
        {
            oldest.notify_one();
        }
        *open.per_client.entry(client.to_owned()).or_insert(0) += 1;
        *open.per_network.entry(network.to_owned()).or_insert(0) += 1;
        open.total += 1;
        open.next_ticket += 1;
        let ticket = SocketTicket {
            id: open.next_ticket,
            give_way: Arc::new(Notify::new()),
        };
        open.waiting.push_back((ticket.id, ticket.give_way.clone()));
        Ok(ticket)
    }

    /// The socket of a slot authenticated: it no longer waits, and never has to give way.
    pub fn authenticated(&self, ticket: u64) {
        let mut open = self.lock();
        open.waiting.retain(|(id, _)| *id != ticket);
    }

    /// Gives back a slot.
    pub fn release(&self, client: &str, network: &str, ticket: u64) {
        let mut open = self.lock();
        decrement(&mut open.per_client, client);
        decrement(&mut open.per_network, network);
        open.total = open.total.saturating_sub(1);
        open.waiting.retain(|(id, _)| *id != ticket);
    }
}

/// The length of a rate window, in seconds.
pub const RATE_WINDOW: i64 = 60;
/// The most clients (and networks) one rate window tracks. Past it, a new client is not tracked
/// (the map cannot grow without bound) and only the node-wide rate applies to it.
pub const MAX_TRACKED_CLIENTS: usize = 65_536;

/// A request over one of its rates: which (`client`, `network` or `node`), and when the window
/// ends, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub scope: &'static str,
    pub retry_after: i64,
}

/// Counts in the current fixed rate window: by client (an IPv4 address, an IPv6 /64), by
/// network (an IPv4 /24, an IPv6 /48) and in all.
#[derive(Debug, Default)]
struct RateWindow {
    started_at: i64,
    total: u32,
    by_client: HashMap<String, u32>,
    by_network: HashMap<String, u32>,
}

/// Fixed one-minute windows of requests per client, per network and per node.
#[derive(Debug)]
pub struct MinuteRates {
    per_client: u32,
    per_network: u32,
    per_node: u32,
    window: Mutex<RateWindow>,
}

impl MinuteRates {
    /// At most `per_client` requests a minute from a client, `per_network` from a network and
    /// `per_node` in all.
    pub fn new(per_client: u32, per_network: u32, per_node: u32) -> Self {
        MinuteRates {
            per_client,
            per_network,
            per_node,
            window: Mutex::new(RateWindow::default()),
        }
    }

    /// Counts one request from `client` at `now`, or says which rate it is over.
    pub fn admit(&self, client: IpAddr, now: i64) -> Result<(), RateLimited> {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let started_at = now - now.rem_euclid(RATE_WINDOW);
        if window.started_at != started_at {
            *window = RateWindow {
                started_at,
                ..RateWindow::default()
            };
        }
        let retry_after = (started_at + RATE_WINDOW - now).max(1);
        let limited = |scope| RateLimited { scope, retry_after };
        let client_key = crate::net::client_bucket(client);
        let network_key = crate::net::network_bucket(client);
        if window.by_client.get(&client_key).copied().unwrap_or(0) >= self.per_client {
            return Err(limited("client"));
        }
        if window.by_network.get(&network_key).copied().unwrap_or(0) >= self.per_network {
            return Err(limited("network"));
        }
        if window.total >= self.per_node {
            return Err(limited("node"));
        }
        window.total += 1;
        let window = &mut *window;
        for (map, key) in [
            (&mut window.by_client, client_key),
            (&mut window.by_network, network_key),
        ] {
            if map.len() < MAX_TRACKED_CLIENTS || map.contains_key(&key) {
                *map.entry(key).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    /// Gives back the node-wide count of a request admitted at `now` (its client and network
    /// keep theirs).
    pub fn refund_node(&self, now: i64) {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if window.started_at == now - now.rem_euclid(RATE_WINDOW) {
            window.total = window.total.saturating_sub(1);
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
    fn sockets_are_capped_per_client_network_and_node() {
        let sockets = OpenSockets::new(2, 16);
        let take = |client: &str, network: &str| {
            sockets
                .acquire(client, network)
                .map(|ticket| sockets.authenticated(ticket.id))
        };
        assert_eq!(take("a1", "a"), Ok(()));
        assert_eq!(take("a1", "a"), Ok(()));
        assert_eq!(take("a1", "a"), Err(SocketRefusal::Client), "2 per client");
        for client in ["a2", "a2", "a3", "a3", "a4", "a4"] {
            assert_eq!(take(client, "a"), Ok(()));
        }
        assert_eq!(take("a5", "a"), Err(SocketRefusal::Client), "8 per network");
        assert_eq!(take("b1", "b"), Ok(()));
    }

    #[test]
    fn the_oldest_waiting_socket_gives_way_to_a_new_one() {
        let sockets = OpenSockets::new(32, 8);
        let first = sockets.acquire("b1", "b").expect("room");
        let second = sockets.acquire("c1", "c").expect("room");
        let third = sockets
            .acquire("d1", "d")
            .expect("a new socket is never refused for waiting");
        let told = |ticket: &SocketTicket| {
            let waiting = ticket.give_way.notified();
            futures_util::pin_mut!(waiting);
            waiting.as_mut().enable()
        };
        assert!(told(&first), "two may wait; the oldest gives way");
        assert!(!told(&second));
        sockets.authenticated(second.id);
        sockets.release("b1", "b", first.id);
        let _fourth = sockets.acquire("e1", "e").expect("room");
        let _fifth = sockets.acquire("f1", "f").expect("room");
        assert!(!told(&second), "an authenticated socket never gives way");
        assert!(told(&third), "the oldest still waiting gives way");
    }

    #[test]
    fn raising_the_limit_never_lowers_it() {
        let before = raise_open_file_limit();
        assert!(raise_open_file_limit() >= before);
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn a_client_over_its_rate_waits_for_the_next_window() {
        let rates = MinuteRates::new(2, 8, 100);
        let now = 1_800_000_010;
        assert!(rates.admit(ip("127.0.0.1"), now).is_ok());
        assert!(rates.admit(ip("127.0.0.1"), now).is_ok());
        assert_eq!(
            rates.admit(ip("127.0.0.1"), now),
            Err(RateLimited {
                scope: "client",
                retry_after: 50
            })
        );
        assert!(rates.admit(ip("127.0.0.2"), now).is_ok());
        assert!(rates.admit(ip("127.0.0.1"), now + 50).is_ok());
    }

    #[test]
    fn the_node_wide_rate_holds_across_clients_and_a_refund_gives_one_back() {
        let rates = MinuteRates::new(10, 40, 3);
        let now = 1_800_000_000;
        for last in 1..=3 {
            assert!(rates.admit(ip(&format!("127.0.{last}.1")), now).is_ok());
        }
        assert_eq!(
            rates.admit(ip("127.0.9.1"), now).map_err(|e| e.scope),
            Err("node")
        );
        rates.refund_node(now);
        assert!(rates.admit(ip("127.0.9.1"), now).is_ok());
    }

    #[test]
    fn a_network_cannot_take_the_node_wide_rate_alone() {
        let rates = MinuteRates::new(1, 4, 100);
        let now = 1_800_000_000;
        for host in 1..=4 {
            assert!(
                rates
                    .admit(ip(&format!("2001:db8:1:{host}::1")), now)
                    .is_ok()
            );
        }
        assert_eq!(
            rates
                .admit(ip("2001:db8:1:99::1"), now)
                .map_err(|e| e.scope),
            Err("network")
        );
        assert!(rates.admit(ip("2001:db8:2::1"), now).is_ok());
        assert_eq!(
            rates
                .admit(ip("2001:db8:2::ffff"), now)
                .map_err(|e| e.scope),
            Err("client"),
            "an IPv6 client counts by its /64"
        );
    }

    #[test]
    fn past_the_tracked_clients_only_the_node_wide_rate_applies() {
        let rates = MinuteRates::new(1, 4, 10);
        let now = 1_800_000_000;
        {
            let mut window = rates.window.lock().expect("lock");
            window.started_at = now;
            for n in 0..MAX_TRACKED_CLIENTS {
                window.by_client.insert(format!("junk-{n}"), 1);
            }
        }
        assert!(rates.admit(ip("127.0.0.1"), now).is_ok());
        assert!(rates.admit(ip("127.0.0.1"), now).is_ok(), "untracked");
        assert_eq!(rates.window.lock().expect("lock").total, 2);
    }
}
