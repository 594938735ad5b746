//! `NODE_ADDRS`: this node's own addresses, the source of masqueraded NodePort flows.

use core::net::{Ipv4Addr, Ipv6Addr};

/// The only entry (index 0) of the `NODE_ADDRS` array map, written by userspace.
///
/// A zero address means "none": a flow that would have to be masqueraded in that family is
/// dropped (and counted as `snat_failed`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddrs {
    /// IPv6 address, raw network-order words.
    pub ipv6: [u32; 4],
    /// IPv4 address, network-order bytes read as a native `u32`.
    pub ipv4: u32,
    /// Must be zero.
    pub _pad: u32,
}
const _: () = assert!(size_of::<NodeAddrs>() == 24);

impl NodeAddrs {
    /// The entry for these addresses; `None` leaves that family without a masquerade source.
    pub const fn new(ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> Self {
        let ipv4 = match ipv4 {
            Some(v4) => u32::from_ne_bytes(v4.octets()),
            None => 0,
        };
        let ipv6 = match ipv6 {
            Some(v6) => crate::addr::ip_words(core::net::IpAddr::V6(v6)).1,
            None => [0; 4],
        };
        Self {
            ipv6,
            ipv4,
            _pad: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_raw_network_order_and_none_is_zero() {
        let both = NodeAddrs::new(
            Some(Ipv4Addr::new(192, 0, 2, 1)),
            Some("2001:db8::1".parse().unwrap()),
        );
        assert_eq!(both.ipv4.to_ne_bytes(), [192, 0, 2, 1]);
        assert_eq!(both.ipv6[0].to_ne_bytes(), [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(both.ipv6[3].to_ne_bytes(), [0, 0, 0, 1]);
        assert_eq!(NodeAddrs::new(None, None), NodeAddrs::default());
    }
}
