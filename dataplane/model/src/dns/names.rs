//! Name forms: dashed IPs (`10-1-2-3`) and reverse names (`in-addr.arpa`, `ip6.arpa`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The label CoreDNS gives an endpoint without a hostname: `10-1-2-3` for IPv4, the address
/// with `:` as `-` for IPv6 (`fd00--1`), with a `0` appended when it would end in `-`.
pub fn dashed_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let mut label = v6.to_string().replace(':', "-");
            if label.ends_with('-') {
                label.push('0');
            }
            if label.starts_with('-') {
                label.insert(0, '0');
            }
            label
        }
    }
}

/// The address a dashed label names (`a-b-c-d`, or an IPv6 with `-` for `:`), if any.
pub fn parse_dashed_ip(label: &str) -> Option<IpAddr> {
    if label.contains("--") || label.matches('-').count() > 3 {
        let text = label.replace('-', ":");
        return text.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let text = label.replace('-', ".");
    text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// `d.c.b.a.in-addr.arpa` or the full 32-nibble `….ip6.arpa` name of an address.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashed_ips_round_trip() {
        for (ip, label) in [
            ("10.1.2.3", "10-1-2-3"),
            ("fd00::1", "fd00--1"),
            ("fd00:1::", "fd00-1--0"),
            ("::1", "0--1"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(dashed_ip(ip), label);
            assert_eq!(parse_dashed_ip(label), Some(ip), "{label}");
        }
        assert_eq!(parse_dashed_ip("web"), None);
        assert_eq!(parse_dashed_ip("10-1-2"), None);
        assert_eq!(parse_dashed_ip("10-1-2-300"), None);
    }

    #[test]
    fn reverse_names_are_written_in_full() {
        assert_eq!(
            reverse_name("10.96.0.10".parse().unwrap()),
            "10.0.96.10.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("fd00::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"
        );
    }
}
