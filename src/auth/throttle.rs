//! The password-unlock throttle: sliding windows over failed attempts, per client and for the
//! whole node. Failures are rows in the database, so the throttle survives a restart.

/// The throttle bucket of a client address: an IPv4 address as is, an IPv6 address by its /64
/// (one customer's network), since an IPv6 client can change its low bits at will.
pub fn client_key(ip: Option<&str>) -> String {
    let Some(ip) = ip else {
        return "local".into();
    };
    match ip.parse::<std::net::IpAddr>().map(|a| a.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// A limit of `limit` failures within `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: usize,
    pub seconds: i64,
}

/// At most 10 failures per 15 minutes from one client.
pub const PER_CLIENT: Window = Window {
    limit: 10,
    seconds: 15 * 60,
};

/// At most 100 failures per 24 hours in all, after which password unlock pauses for everyone.
pub const NODE_WIDE: Window = Window {
    limit: 100,
    seconds: 24 * 60 * 60,
};

/// Which window is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Client,
    Node,
}

impl Scope {
    /// The name used in audit details and problem details.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Client => "client",
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
}
