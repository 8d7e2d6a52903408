//! Throttle arithmetic: who a client is for throttling (an address, an IPv6 /64) and which
//! network it belongs to (an IPv4 /24, an IPv6 /48), the sliding windows of failed attempts
//! and their limits.

use std::collections::VecDeque;
use std::net::IpAddr;

/// The throttle bucket of a client address: an IPv4 address as is, an IPv6 address by its /64
/// (one customer's network), since an IPv6 client can change its low bits at will.
pub fn client_key(ip: Option<&str>) -> String {
    match parse(ip) {
        None => ip.map_or_else(|| LOCAL.to_owned(), str::to_owned),
        Some(ip) => crate::net::client_bucket(ip),
    }
}

/// The network of a client address: an IPv4 /24 or an IPv6 /48, the most one small network
/// (an office, a hosting customer) usually holds.
pub fn network_key(ip: Option<&str>) -> String {
    match parse(ip) {
        None => ip.map_or_else(|| LOCAL.to_owned(), str::to_owned),
        Some(ip) => crate::net::network_bucket(ip),
    }
}

/// The network of a client key as [`client_key`] writes it, for failures read back from the
/// database.
pub fn network_of_client_key(key: &str) -> String {
    let address = key.strip_suffix("/64").unwrap_or(key);
    match address.parse::<IpAddr>() {
        Ok(ip) => network_key(Some(&ip.to_string())),
        Err(_) => key.to_owned(),
    }
}

/// The key of requests without a client address (the command line).
const LOCAL: &str = "local";

fn parse(ip: Option<&str>) -> Option<IpAddr> {
    ip?.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

/// A limit of `limit` failures within `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: usize,
    pub seconds: i64,
}

/// Unlock: at most 10 failures per 15 minutes from one client.
pub const PER_CLIENT: Window = Window {
    limit: 10,
    seconds: 15 * 60,
};

/// Unlock: at most 30 failures per 24 hours from one network (an IPv4 /24, an IPv6 /48), so
/// that one small network cannot fill the node-wide window alone.
pub const PER_NETWORK: Window = Window {
    limit: 30,
    seconds: 24 * 60 * 60,
};

/// Unlock: at most 100 failures per 24 hours in all, after which password unlock pauses for
/// everyone who has no one-time unlock code.
pub const NODE_WIDE: Window = Window {
    limit: 100,
    seconds: 24 * 60 * 60,
};

/// Which window is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Client,
    Network,
    Node,
}

impl Scope {
    /// The name used in audit details and problem details.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Client => "client",
            Scope::Network => "network",
            Scope::Node => "node",
        }
    }
}

impl Window {
    /// The earliest failure time that still counts at `now`.
    pub fn start(&self, now: i64) -> i64 {
        now - self.seconds + 1
    }

    /// Seconds until another attempt is allowed, or `None` when one is allowed now.
    /// `failure_times` are the failures inside the window, oldest first.
    pub fn retry_after(&self, failure_times: &[i64], now: i64) -> Option<i64> {
        let count = failure_times.len();
        if count < self.limit {
            return None;
        }
        // The window has room again once the failure `limit` places before the end leaves it.
        let leaving = failure_times[count - self.limit];
        Some((leaving + self.seconds - now).max(1))
    }
}

/// The newest failures of one bucket: no more than the window's limit are kept, since only
/// those decide when the window has room again. Attempts still being judged are counted as
/// failures until they end, so that concurrent attempts cannot all pass one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentFailures {
    times: VecDeque<i64>,
    /// Whether the start of the current throttling was recorded.
    announced: bool,
}

impl RecentFailures {
    /// Forgets failures that left `window` by `now`; returns whether none are left.
    pub fn expire(&mut self, window: &Window, now: i64) -> bool {
        let start = window.start(now);
        while self.times.front().is_some_and(|at| *at < start) {
            self.times.pop_front();
        }
        if self.times.len() < window.limit {
            self.announced = false;
        }
        self.times.is_empty()
    }

    /// Seconds until another attempt is allowed under `window`, if it is full.
    pub fn retry_after(&mut self, window: &Window, now: i64) -> Option<i64> {
        self.expire(window, now);
        window.retry_after(self.times.make_contiguous(), now)
    }

    /// Adds a failure (or an attempt being judged) at `at`.
    pub fn push(&mut self, window: &Window, at: i64) {
        self.expire(window, at);
        // Failures arrive in time order, except for rows read back out of order.
        let position = self.times.partition_point(|t| *t <= at);
        self.times.insert(position, at);
        while self.times.len() > window.limit {
            self.times.pop_front();
        }
    }

    /// Takes back one attempt at `at` that turned out not to be a failure. It may already
    /// have been pushed out by newer ones.
    pub fn remove_one(&mut self, at: i64) {
        if let Some(position) = self.times.iter().rposition(|t| *t == at) {
            self.times.remove(position);
        }
    }

    /// Whether the window is full and its throttling not yet recorded; marks it recorded.
    pub fn throttling_starts(&mut self, window: &Window, now: i64) -> bool {
        if self.retry_after(window, now).is_none() || self.announced {
            return false;
        }
        self.announced = true;
        true
    }

    /// The failures kept, oldest first.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        self.times.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        assert_eq!(
            client_key(Some("2001:db8:1:2:aaaa::1")),
            client_key(Some("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            client_key(Some("2001:db8:1:2::1")),
            client_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(Some("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(client_key(Some("192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn networks_are_ipv4_24s_and_ipv6_48s() {
        assert_eq!(network_key(Some("192.0.2.77")), "192.0.2.0/24");
        assert_eq!(network_key(Some("::ffff:192.0.2.1")), "192.0.2.0/24");
        assert_eq!(
            network_key(Some("2001:db8:1:2:aaaa::1")),
            network_key(Some("2001:db8:1:ffff::2"))
        );
        assert_eq!(network_key(Some("2001:db8:1:2::1")), "2001:db8:1::/48");
        assert_ne!(
            network_key(Some("2001:db8:1::1")),
            network_key(Some("2001:db8:2::1"))
        );
        assert_eq!(network_key(None), "local");
    }

    #[test]
    fn the_network_of_a_stored_client_key_is_the_network_of_its_address() {
        for ip in ["192.0.2.9", "2001:db8:5:6:7::1"] {
            assert_eq!(
                network_of_client_key(&client_key(Some(ip))),
                network_key(Some(ip))
            );
        }
        assert_eq!(network_of_client_key("local"), "local");
    }

    #[test]
    fn fewer_failures_than_the_limit_are_allowed() {
        let times: Vec<i64> = (0..9).collect();
        assert_eq!(PER_CLIENT.retry_after(&times, 10), None);
    }

    #[test]
    fn a_full_window_waits_for_its_oldest_failure_to_leave() {
        let times: Vec<i64> = (100..110).collect();
        assert_eq!(PER_CLIENT.retry_after(&times, 110), Some(100 + 900 - 110));
    }

    #[test]
    fn an_overfull_window_waits_for_enough_failures_to_leave() {
        let times: Vec<i64> = (100..112).collect();
        assert_eq!(PER_CLIENT.retry_after(&times, 112), Some(102 + 900 - 112));
    }

    #[test]
    fn the_window_start_excludes_failures_exactly_one_window_old() {
        assert_eq!(PER_CLIENT.start(1000), 101);
    }

    #[test]
    fn recent_failures_keep_only_what_decides_the_wait() {
        let mut recent = RecentFailures::default();
        let mut starts = 0;
        for at in 100..112 {
            recent.push(&PER_CLIENT, at);
            starts += usize::from(recent.throttling_starts(&PER_CLIENT, at));
        }
        assert_eq!(starts, 1, "throttling starts once");
        assert_eq!(recent.times.len(), 10);
        let all: Vec<i64> = (100..112).collect();
        assert_eq!(
            recent.retry_after(&PER_CLIENT, 112),
            PER_CLIENT.retry_after(&all, 112)
        );
        assert_eq!(recent.retry_after(&PER_CLIENT, 112 + 900), None);
        recent.push(&PER_CLIENT, 2_000);
        recent.remove_one(2_000);
        assert_eq!(
            recent.times().count(),
            0,
            "an attempt taken back leaves nothing"
        );
    }
}
