//! Upstream servers from `/etc/resolv.conf`, without our own addresses (a query sent to
//! ourselves would loop until it times out: CoreDNS's most reported crash loop).

use std::net::{IpAddr, SocketAddr};

pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The `nameserver` addresses of a resolv.conf text (port 53), minus `ours` (our listen
/// addresses; an unspecified one stands for every loopback address on its port).
pub fn from_resolv_conf(text: &str, ours: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut upstreams = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(address) = words.next() else {
            continue;
        };
        // A scoped IPv6 address (fe80::1%eth0) cannot be told apart without its interface.
        let Ok(ip) = address.parse::<IpAddr>() else {
            continue;
        };
        let upstream = SocketAddr::new(ip, 53);
        if !is_ours(upstream, ours) && !upstreams.contains(&upstream) {
            upstreams.push(upstream);
        }
    }
    upstreams
}

fn is_ours(upstream: SocketAddr, ours: &[SocketAddr]) -> bool {
    ours.iter().any(|own| {
        own.port() == upstream.port()
            && (own.ip() == upstream.ip()
                || (own.ip().is_unspecified() && upstream.ip().is_loopback()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_and_our_own_addresses_skipped() {
        let text = "# generated\nsearch svc.cluster.local\nnameserver 10.0.0.2\n\
                    nameserver 127.0.0.1\nnameserver fe80::1%eth0\nnameserver  fd00::53 \n\
                    options ndots:5\nnameserver 10.0.0.2\n";
        let ours: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap()];
        let upstreams = from_resolv_conf(text, &ours);
        let expected: Vec<SocketAddr> = vec![
            "10.0.0.2:53".parse().unwrap(),
            "[fd00::53]:53".parse().unwrap(),
        ];
        assert_eq!(upstreams, expected);
        let other_port: Vec<SocketAddr> = vec!["127.0.0.1:1053".parse().unwrap()];
        assert_eq!(from_resolv_conf(text, &other_port).len(), 3);
    }
}
