//! Who is asking: the client's IP address (the socket peer, or `X-Forwarded-For` when the peer
//! is a configured trusted proxy) and its user agent.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev, web};

use super::AppState;
use crate::audit::Actor;
use crate::error::Problem;

/// The client of the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Client {
    /// The client as an audit actor.
    pub fn actor(&self) -> Actor {
        Actor::client(self.ip.to_string(), self.user_agent.as_deref())
    }
}

impl FromRequest for Client {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        ready(Client::of(request))
    }
}

impl Client {
    /// The client of `request`.
    pub fn of(request: &HttpRequest) -> Result<Client, Problem> {
        let trusted: &[IpAddr] = request
            .app_data::<web::Data<AppState>>()
            .map(|state| state.trusted_proxies.as_slice())
            .unwrap_or(&[]);
        let Some(peer) = request
            .peer_addr()
            .map(|address| address.ip().to_canonical())
        else {
            return Err(Problem::internal(&"request without a peer address"));
        };
        let forwarded: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .collect();
        let ip = client_ip(peer, &forwarded, trusted);
        let user_agent = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(Client { ip, user_agent })
    }
}

/// The client address: walking `X-Forwarded-For` from the right, the first address that is
/// not a trusted proxy, as long as every hop so far was trusted. Without a trusted peer the
/// header is ignored, since anyone can send it.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer;
    if !trusted.contains(&peer) {
        return client;
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Some(address) = parse_hop(hop) else {
            return client;
        };
        client = address;
        if !trusted.contains(&address) {
            return client;
        }
    }
    client
}

/// An `X-Forwarded-For` hop: an address, `ip:port` or `[v6]:port` (some proxies add the
/// port), read canonically (an IPv4-mapped address as IPv4).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let address = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse::<IpAddr>().ok())
        })?;
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_with_a_port_name_their_address() {
        let trusted = [ip("127.0.0.1")];
        for (hop, expected) in [
            ("198.51.100.7:5555", "198.51.100.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::8]", "2001:db8::8"),
            ("::ffff:198.51.100.9", "198.51.100.9"),
        ] {
            assert_eq!(
                client_ip(ip("127.0.0.1"), &[hop], &trusted),
                ip(expected),
                "{hop}"
            );
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        assert_eq!(
            client_ip(ip("198.51.100.7"), &["203.0.113.1"], &[ip("127.0.0.1")]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                &["203.0.113.66, 198.51.100.7", "10.0.0.2"],
                &[ip("127.0.0.1"), ip("10.0.0.2")]
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_malformed_hop_stops_the_walk() {
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["203.0.113.66, junk"], &[ip("127.0.0.1")]),
            ip("127.0.0.1")
        );
    }
}
