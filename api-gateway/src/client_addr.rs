//! Which address a request comes from, for the rate limiter.
//!
//! Behind a load balancer or a reverse proxy, the TCP peer is the proxy, and every client would
//! share its bucket. A proxy says who it forwards for (`Forwarded: for=…` or `X-Forwarded-For`),
//! but anyone can send those headers, so they are believed only from a peer in
//! `TRUSTED_PROXIES`, and only up to the first address that is not itself a trusted proxy: the
//! client is the right-most untrusted address of the chain. From any other peer the headers are
//! ignored and the peer is the client.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The address of the client a request comes from, as the rate limiter judged it; it goes
/// with the request to what else is counted per client (subscriptions, failed logins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client's address: `peer`, or when `peer` is a trusted proxy, the right-most address of
/// its forwarding chain that is not a trusted proxy.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |addr: &IpAddr| trusted.iter().any(|net| net.contains(addr));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    // From the nearest hop outwards; a hop that cannot be read ends the trust (the proxy
    // before it is then the best we know).
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(addr) = hop else { break };
        client = *addr;
        if !is_trusted(addr) {
            break;
        }
    }
    client
}

/// The forwarding chain, client first: from `Forwarded` when present (RFC 7239), else from
/// `X-Forwarded-For`. An entry that is not an address (`unknown`, an obfuscated name) is `None`.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect::<Vec<_>>();
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| parse_node(value.trim().trim_matches('"')))?
                })
            })
            .collect();
    }
    values("x-forwarded-for").iter().flat_map(|value| value.split(',')).map(|entry| parse_node(entry.trim())).collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(addr) = node.parse() {
        return Some(addr);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().expect("CIDR")).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let forged = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.8")]);
        assert_eq!(client_addr(ip("198.51.100.7"), &forged, &nets(&["10.0.0.0/8"])), ip("198.51.100.7"));
        assert_eq!(client_addr(ip("10.0.0.2"), &forged, &[]), ip("10.0.0.2"), "no proxy is trusted by default");
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxies appended the rest.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.5, 10.0.0.9")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &chain, &trusted), ip("203.0.113.5"));
        // Several headers are one list, in order.
        let split = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &split, &trusted), ip("203.0.113.5"));
        // Only proxies in the chain: the left-most is as far as it goes.
        let proxies = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &proxies, &trusted), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(client_addr(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_is_read_with_ports_quotes_and_ipv6() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let forwarded = headers(&[(
            "forwarded",
            r#"for=192.0.2.43:4711;proto=https, for="[2001:db8:cafe::17]:4711", For=10.0.0.5;by=10.0.0.1"#,
        )]);
        assert_eq!(client_addr(ip("fd00::1"), &forwarded, &trusted), ip("2001:db8:cafe::17"));
        // Forwarded wins over X-Forwarded-For when both are there.
        let both = headers(&[("forwarded", "for=192.0.2.1"), ("x-forwarded-for", "192.0.2.2")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &both, &trusted), ip("192.0.2.1"));
        // An obfuscated hop ends the chain at the proxy that reported it.
        let hidden = headers(&[("forwarded", "for=192.0.2.1, for=_hidden, for=10.0.0.7")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &hidden, &trusted), ip("10.0.0.7"));
    }
}
