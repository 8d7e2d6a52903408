//! IP networks (CIDR blocks): parsing one strictly into its canonical form, and checking whether
//! a client address lies inside it. Credentials restrict where they may be used with these.

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
}
