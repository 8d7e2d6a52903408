//! IP networks (CIDR blocks): parsing one strictly into its canonical form, and checking whether
//! a client address lies inside it. Credentials restrict where they may be used with these; the
//! special-purpose blocks an outbound fetch must never reach are checked with them too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network in canonical form: the address has no bits set past the prefix,
/// and an IPv4-mapped IPv6 network is written as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

/// Why a network was refused. Messages complete "the network ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("is not an IP address or an address/prefix such as 192.0.2.0/24")]
    Malformed,
    #[error("has a prefix longer than its address ({0} bits)")]
    PrefixTooLong(u8),
}

/// The longest network text read, in bytes: an IPv6 address with a prefix fits easily.
const MAX_TEXT_LEN: usize = 64;

impl IpNetwork {
    /// The network an address is kept as once its retention ends: its /24 for IPv4 (and
    /// IPv4-mapped IPv6), its /48 for IPv6.
    pub fn retention_form(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        let prefix = if ip.is_ipv4() { 24 } else { 48 };
        IpNetwork::parse(&format!("{ip}/{prefix}")).unwrap_or(IpNetwork {
            address: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        })
    }

    /// Reads `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a /32 or /128). Bits past the
    /// prefix are cleared, so `192.0.2.7/24` reads as `192.0.2.0/24`; leading zeros, spaces and
    /// zone ids are refused.
    pub fn parse(text: &str) -> Result<Self, NetworkError> {
        if text.len() > MAX_TEXT_LEN || text.trim() != text {
            return Err(NetworkError::Malformed);
        }
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address_text.parse().map_err(|_| NetworkError::Malformed)?;
        let (address, mapped) = match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), true),
                None => (address, false),
            },
            IpAddr::V4(_) => (address, false),
        };
        let bits: u8 = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => bits,
            Some(digits) => {
                let canonical_digits = !digits.is_empty()
                    && digits.len() <= 3
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'));
                if !canonical_digits {
                    return Err(NetworkError::Malformed);
                }
                let value: u8 = digits.parse().map_err(|_| NetworkError::Malformed)?;
                // An IPv4-mapped network counts its prefix over the IPv6 form.
                let value = if mapped {
                    value
                        .checked_sub(96)
                        .ok_or(NetworkError::PrefixTooLong(value))?
                } else {
                    value
                };
                if value > bits {
                    return Err(NetworkError::PrefixTooLong(value));
                }
                value
            }
        };
        Ok(IpNetwork {
            address: mask(address, prefix),
            prefix,
        })
    }

    /// Whether `ip` (read canonically: an IPv4-mapped IPv6 address as IPv4) is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.address.is_ipv4() && mask(ip, self.prefix) == self.address
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether every address of this network is inside `other`.
    pub fn within(&self, other: &IpNetwork) -> bool {
        self.prefix >= other.prefix && other.contains(self.address)
    }
}

impl std::fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// `ip` with every bit past `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - u32::from(prefix)))
            };
            IpAddr::V4(Ipv4Addr::from(kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - u32::from(prefix)))
            };
            IpAddr::V6(Ipv6Addr::from(kept))
        }
    }
}

/// The special-purpose address blocks (RFC 6890 and its IANA registries) that an outbound fetch
/// made for someone else's input (a sender's JWKS, a client's metadata) must never reach, with
/// what each is. Everything else is public unicast.
const NOT_PUBLIC: [(&str, &str); 32] = [
    ("0.0.0.0/8", "\"this network\""),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved for IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    (
        "::/96",
        "IPv4-compatible (deprecated; it reaches IPv4 addresses)",
    ),
    (
        "::ffff:0:0:0/96",
        "IPv4-translated (it reaches IPv4 addresses)",
    ),
    ("64:ff9b::/96", "NAT64 (it reaches IPv4 addresses)"),
    ("64:ff9b:1::/48", "local NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "reserved for IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4 (it reaches IPv4 addresses)"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) identifiers"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

/// Why an outbound fetch may not go to `ip`, or `None` when it may: every special-purpose block
/// is refused, an IPv4-mapped address is judged as its IPv4 address, and loopback is allowed
/// only when `loopback_allowed` (a node that itself runs on loopback, in tests).
pub fn outbound_refusal(ip: IpAddr, loopback_allowed: bool) -> Option<&'static str> {
    static BLOCKS: std::sync::OnceLock<Vec<(IpNetwork, &'static str)>> = std::sync::OnceLock::new();
    let blocks = BLOCKS.get_or_init(|| {
        NOT_PUBLIC
            .iter()
            .filter_map(|(text, what)| IpNetwork::parse(text).ok().map(|n| (n, *what)))
            .collect()
    });
    let ip = ip.to_canonical();
    if loopback_allowed && ip.is_loopback() {
        return None;
    }
    blocks
        .iter()
        .find(|(network, _)| network.contains(ip))
        .map(|(_, what)| *what)
}

/// The bucket a client address counts in for throttling and rates: an IPv4 address as is, an
/// IPv6 address by its /64 (one customer's network), since an IPv6 client can change its low
/// bits at will.
pub fn client_bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The network a client address belongs to: an IPv4 /24 or an IPv6 /48, the most one small
/// network (an office, a hosting customer) usually holds.
pub fn network_bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        IpNetwork::parse(text).expect(text).to_string()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn networks_read_into_their_canonical_form() {
        assert_eq!(canonical("127.0.9.0/24"), "127.0.9.0/24");
        assert_eq!(canonical("127.0.9.77/24"), "127.0.9.0/24");
        assert_eq!(canonical("192.0.2.7"), "192.0.2.7/32");
        assert_eq!(canonical("0.0.0.0/0"), "0.0.0.0/0");
        assert_eq!(canonical("2001:DB8:0:0::1/32"), "2001:db8::/32");
        assert_eq!(canonical("::1"), "::1/128");
        assert_eq!(canonical("::ffff:192.0.2.9/120"), "192.0.2.0/24");
    }

    #[test]
    fn malformed_networks_are_refused() {
        for bad in [
            "",
            "/24",
            "192.0.2.0/",
            "192.0.2.0/33",
            "192.0.2.0/024",
            "192.0.2.0/+4",
            "192.0.2.0/24/1",
            " 192.0.2.0/24",
            "192.0.2.0 /24",
            "192.0.2.256/24",
            "fe80::1%eth0",
            "2001:db8::/129",
            "::ffff:192.0.2.9/95",
            "example.com/24",
            "192.0.2.0/2x",
        ] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IpNetwork::parse(&"1".repeat(65)).is_err());
    }

    #[test]
    fn containment_follows_the_prefix_and_reads_mapped_addresses_as_ipv4() {
        let net = IpNetwork::parse("127.0.9.0/24").expect("valid");
        assert!(net.contains(ip("127.0.9.200")));
        assert!(net.contains(ip("::ffff:127.0.9.1")));
        assert!(!net.contains(ip("127.0.10.1")));
        assert!(!net.contains(ip("::1")));
        let v6 = IpNetwork::parse("2001:db8:1::/48").expect("valid");
        assert!(v6.contains(ip("2001:db8:1:ffff::7")));
        assert!(!v6.contains(ip("2001:db8:2::1")));
        assert!(
            IpNetwork::parse("0.0.0.0/0")
                .expect("valid")
                .contains(ip("203.0.113.1"))
        );
        assert!(
            !IpNetwork::parse("0.0.0.0/0")
                .expect("valid")
                .contains(ip("::2"))
        );
    }

    #[test]
    fn every_special_purpose_block_parses() {
        for (text, _) in NOT_PUBLIC {
            assert!(IpNetwork::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn outbound_fetches_refuse_every_address_that_is_not_public_unicast() {
        let refused = [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.9.9.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a00:1",
            "3fff::1",
            "5f00::1",
            "64:ff9b::a00:1",
            "100::1",
            "2001:db8::1",
            "2002:a00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ];
        for text in refused {
            let ip: IpAddr = text.parse().expect("address");
            assert!(
                outbound_refusal(ip, false).is_some(),
                "{text} is not public"
            );
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "::ffff:8.8.8.8",
        ];
        for text in public {
            let ip: IpAddr = text.parse().expect("address");
            assert_eq!(outbound_refusal(ip, false), None, "{text} is public");
        }
    }

    #[test]
    fn loopback_is_reachable_only_when_the_node_itself_runs_on_loopback() {
        let loopback: IpAddr = "127.0.0.1".parse().expect("address");
        assert_eq!(outbound_refusal(loopback, false), Some("loopback"));
        assert_eq!(outbound_refusal(loopback, true), None);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("address");
        assert_eq!(outbound_refusal(mapped, true), None);
        // Only loopback: private and link-local addresses stay refused.
        for text in ["10.0.0.1", "169.254.169.254", "fe80::1"] {
            let ip: IpAddr = text.parse().expect("address");
            assert!(outbound_refusal(ip, true).is_some(), "{text}");
        }
    }
}
