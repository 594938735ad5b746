//! Address encoding shared by every map type: `[u32; 4]` raw network-order words plus a family.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `AF_INET` as the kernel numbers it (Linux).
pub const AF_INET: u8 = 2;
/// `AF_INET6` as the kernel numbers it (Linux).
pub const AF_INET6: u8 = 10;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u8 = 17;

/// Encodes an address as `(family, words)`; IPv4 goes in word 0, the other words stay zero.
pub const fn ip_words(ip: IpAddr) -> (u8, [u32; 4]) {
    match ip {
        IpAddr::V4(v4) => (AF_INET, [u32::from_ne_bytes(v4.octets()), 0, 0, 0]),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (
                AF_INET6,
                [
                    u32::from_ne_bytes([o[0], o[1], o[2], o[3]]),
                    u32::from_ne_bytes([o[4], o[5], o[6], o[7]]),
                    u32::from_ne_bytes([o[8], o[9], o[10], o[11]]),
                    u32::from_ne_bytes([o[12], o[13], o[14], o[15]]),
                ],
            )
        }
    }
}

/// Decodes `(family, words)`; `None` for an unknown family.
pub const fn ip_from_words(family: u8, words: [u32; 4]) -> Option<IpAddr> {
    match family {
        AF_INET => {
            let [a, b, c, d] = words[0].to_ne_bytes();
            Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }
        AF_INET6 => {
            let [a0, a1, a2, a3] = words[0].to_ne_bytes();
            let [b0, b1, b2, b3] = words[1].to_ne_bytes();
            let [c0, c1, c2, c3] = words[2].to_ne_bytes();
            let [d0, d1, d2, d3] = words[3].to_ne_bytes();
            Some(IpAddr::V6(Ipv6Addr::from_octets([
                a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3,
            ])))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_word_zero_in_network_order() {
        let (family, words) = ip_words(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10)));
        assert_eq!(family, AF_INET);
        assert_eq!(words[0].to_ne_bytes(), [10, 96, 0, 10]);
        assert_eq!(&words[1..], &[0, 0, 0]);
    }

    #[test]
    fn round_trips_both_families() {
        for ip in [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0x96, 0x10)),
        ] {
            let (family, words) = ip_words(ip);
            assert_eq!(ip_from_words(family, words), Some(ip));
        }
        assert_eq!(ip_from_words(0, [0; 4]), None);
    }
}
