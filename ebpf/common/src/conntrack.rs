//! `CT_FWD` / `CT_REV`: the tc NodePort path's connection tracking, written and read by BPF
//! (userspace deletes entries: the flows of a removed UDP backend, and expired flows).
//!
//! A flow `client → frontend` that tc translated to `backend` has two entries:
//!
//! * `CT_FWD[client:port → frontend:port]` = the backend (and the SNAT source if masqueraded),
//!   so every packet of the flow goes to the same backend;
//! * `CT_REV[backend:port → reply-dst:port]` = the client and the frontend, where the reply
//!   destination is the client itself (not masqueraded: the reply is rewritten on the external
//!   interface's egress) or the SNAT address and port (masqueraded: the reply comes back to the
//!   node on the external interface's ingress and is rewritten and redirected there).
//!
//! # Lifetimes
//!
//! Both entries carry `expires`, in whole seconds of `CLOCK_MONOTONIC` (`bpf_ktime_get_ns`),
//! and the flow's TCP state bits. A packet of the flow (either direction) pushes `expires` to
//! `now + lifetime(state)` in both entries: that is a write at most once per second per flow
//! (when `now` ticks), or at once when the state changes (which may shorten it). The lifetimes
//! ([`CtConfig::lifetime`], defaults after Cilium and kube-proxy):
//!
//! | flow | lifetime | default | anchor |
//! |---|---|---|---|
//! | TCP, only SYNs seen | [`CT_TCP_SYN_SECS`] | 60 s | Cilium `CT_SYN_TIMEOUT` |
//! | TCP, past the handshake | [`CT_TCP_ESTABLISHED_SECS`] | 6 h | Cilium `CT_CONNECTION_LIFETIME_TCP` (kube-proxy's `tcpEstablishedTimeout` is 24 h) |
//! | TCP, a FIN or RST seen either way | [`CT_TCP_CLOSING_SECS`] | 10 s | Cilium `CT_CLOSE_TIMEOUT` |
//! | UDP | [`CT_UDP_SECS`] | 30 s | `nf_conntrack_udp_timeout`, as kube-proxy leaves it |
//!
//! A flow past `expires` is dead: its packets no longer follow it (a client's packet starts a
//! new flow, as a client's bare SYN on a closing flow does; a reply is left untranslated), a
//! new masqueraded flow may take over its SNAT port (removing both of its entries), and
//! userspace sweeps it a minute later (`ferry_lb::CtSweeper`). The LRU maps still recycle the
//! least recently used entries when full.
//!
//! # SNAT ports
//!
//! A masqueraded flow takes one of the SNAT ports per node address, backend and protocol
//! ([`SNAT_PORT_MIN`]..=65535 unless [`CtConfig::snat_port_first`] and
//! [`CtConfig::snat_ports`] say otherwise): of 16 random ones, the first free, else
//! the one whose flow died longest ago. Reusing a port soon after its flow closed can cost the
//! new connection a SYN retransmission (1 s): a backend that closed first keeps the old
//! connection in TIME_WAIT (60 s on Linux) and rejects the new SYN if its timestamp is older
//! (clients randomise timestamp offsets per connection). Ports recycle that fast only above
//! about 70 new connections per second to one backend from one node.

use crate::IPPROTO_TCP;

/// Key of `CT_FWD` and `CT_REV`: one direction of a flow, as the packet carries it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtKey {
    /// Source address, raw network-order words (IPv4 in word 0).
    pub src_addr: [u32; 4],
    /// Destination address, same encoding.
    pub dst_addr: [u32; 4],
    /// Source port, network byte order.
    pub src_port: u16,
    /// Destination port, network byte order.
    pub dst_port: u16,
    /// [`crate::AF_INET`] or [`crate::AF_INET6`].
    pub family: u8,
    /// [`crate::IPPROTO_TCP`] or [`crate::IPPROTO_UDP`].
    pub proto: u8,
    /// Must be zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<CtKey>() == 40);

/// `CtForward::flags` / `CtReverse::flags` bit: the flow is masqueraded (SNAT to the node).
pub const CT_FLAG_SNAT: u8 = 1 << 0;
/// Flags bit: a TCP packet without SYN was seen, the handshake is over.
pub const CT_FLAG_ESTABLISHED: u8 = 1 << 1;
/// Flags bit: a TCP FIN or RST was seen, in either direction.
pub const CT_FLAG_CLOSING: u8 = 1 << 2;
/// The TCP state bits.
pub const CT_STATE_MASK: u8 = CT_FLAG_ESTABLISHED | CT_FLAG_CLOSING;

/// Lifetime of a TCP flow that has seen only SYNs.
pub const CT_TCP_SYN_SECS: u32 = 60;
/// Lifetime of an idle TCP flow past its handshake.
pub const CT_TCP_ESTABLISHED_SECS: u32 = 6 * 3600;
/// Lifetime of a TCP flow after a FIN or RST.
pub const CT_TCP_CLOSING_SECS: u32 = 10;
/// Lifetime of an idle UDP flow.
pub const CT_UDP_SECS: u32 = 30;

/// TCP header flag bits (byte 13 of the header).
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Default lowest source port the tc path uses to masquerade: above Linux's default ephemeral
/// range (`ip_local_port_range` 32768–60999), so it does not collide with the node's own
/// sockets. The pool runs from there to 65535 by default.
pub const SNAT_PORT_MIN: u16 = 61_000;

/// Value of `CT_FWD` (key: `client → frontend`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtForward {
    /// The backend's address.
    pub backend_addr: [u32; 4],
    /// With [`CT_FLAG_SNAT`], the source address the flow is masqueraded to; zero otherwise.
    pub snat_addr: [u32; 4],
    /// The backend's port, network byte order.
    pub backend_port: u16,
    /// With [`CT_FLAG_SNAT`], the source port (network byte order); zero otherwise.
    pub snat_port: u16,
    /// `CT_FLAG_*`.
    pub flags: u8,
    /// Must be zero.
    pub _pad: [u8; 3],
    /// End of life, in seconds of `CLOCK_MONOTONIC` (see the module docs).
    pub expires: u32,
}
const _: () = assert!(size_of::<CtForward>() == 44);

/// Value of `CT_REV` (key: `backend → reply destination`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtReverse {
    /// The original client's address.
    pub client_addr: [u32; 4],
    /// The frontend address the client dialled.
    pub frontend_addr: [u32; 4],
    /// The client's port, network byte order.
    pub client_port: u16,
    /// The frontend's port, network byte order.
    pub frontend_port: u16,
    /// `CT_FLAG_*`.
    pub flags: u8,
    /// Must be zero.
    pub _pad: [u8; 3],
    /// End of life, as in [`CtForward::expires`].
    pub expires: u32,
}
const _: () = assert!(size_of::<CtReverse>() == 44);

/// Value of `CT_CONFIG` (an array of one), written by userspace. A zero field takes its
/// default: an object nobody configured runs with the production values.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtConfig {
    /// Overrides [`CT_TCP_SYN_SECS`].
    pub tcp_syn_secs: u32,
    /// Overrides [`CT_TCP_ESTABLISHED_SECS`].
    pub tcp_established_secs: u32,
    /// Overrides [`CT_TCP_CLOSING_SECS`].
    pub tcp_closing_secs: u32,
    /// Overrides [`CT_UDP_SECS`].
    pub udp_secs: u32,
    /// Number of SNAT ports from the first one on (zero, or more than fit below 65536: up to
    /// 65535).
    pub snat_ports: u32,
    /// First SNAT port (zero: [`SNAT_PORT_MIN`]).
    pub snat_port_first: u32,
}
const _: () = assert!(size_of::<CtConfig>() == 24);

impl CtConfig {
    /// Seconds an idle flow of protocol `proto` with state bits `flags` stays alive.
    #[inline(always)]
    pub const fn lifetime(&self, proto: u8, flags: u8) -> u32 {
        let (set, default) = if proto != IPPROTO_TCP {
            (self.udp_secs, CT_UDP_SECS)
        } else if flags & CT_FLAG_CLOSING != 0 {
            (self.tcp_closing_secs, CT_TCP_CLOSING_SECS)
        } else if flags & CT_FLAG_ESTABLISHED != 0 {
            (self.tcp_established_secs, CT_TCP_ESTABLISHED_SECS)
        } else {
            (self.tcp_syn_secs, CT_TCP_SYN_SECS)
        };
        if set == 0 { default } else { set }
    }

    /// First port of the SNAT pool (host byte order).
    #[inline(always)]
    pub const fn snat_port_first(&self) -> u16 {
        if self.snat_port_first == 0 || self.snat_port_first > u16::MAX as u32 {
            SNAT_PORT_MIN
        } else {
            self.snat_port_first as u16
        }
    }

    /// Size of the SNAT port pool: at least 1, and its last port at most 65535.
    #[inline(always)]
    pub const fn snat_port_span(&self) -> u32 {
        let room = 65_536 - self.snat_port_first() as u32;
        if self.snat_ports == 0 || self.snat_ports > room {
            room
        } else {
            self.snat_ports
        }
    }

    /// Whether `port` (host byte order) is in the SNAT pool.
    #[inline(always)]
    pub const fn is_snat_port(&self, port: u16) -> bool {
        (port as u32).wrapping_sub(self.snat_port_first() as u32) < self.snat_port_span()
    }
}

/// The state bits `flags` after a packet with TCP flags `tcp_flags` (ignored unless `proto` is
/// TCP). Bits are only ever added.
#[inline(always)]
pub const fn advance(flags: u8, proto: u8, tcp_flags: u8) -> u8 {
    if proto != IPPROTO_TCP {
        return flags;
    }
    let mut next = flags;
    if tcp_flags & TCP_SYN == 0 {
        next |= CT_FLAG_ESTABLISHED;
    }
    if tcp_flags & (TCP_FIN | TCP_RST) != 0 {
        next |= CT_FLAG_CLOSING;
    }
    next
}

/// Whether a client's packet with `tcp_flags` opens a new connection over a closing flow of
/// the same 5-tuple (a bare SYN): that flow is over, the packet starts a new one.
#[inline(always)]
pub const fn reopens(flags: u8, proto: u8, tcp_flags: u8) -> bool {
    proto == IPPROTO_TCP
        && flags & CT_FLAG_CLOSING != 0
        && tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

/// Whether an entry with end of life `expires` is dead at `now`.
#[inline(always)]
pub const fn is_dead(expires: u32, now: u32) -> bool {
    now >= expires
}

impl CtKey {
    /// The `CT_REV` key of the flow tracked under this `CT_FWD` key as `flow`: the backend's
    /// reply to the client, or to the SNAT address and port if masqueraded.
    #[inline(always)]
    pub const fn reply_key(&self, flow: &CtForward) -> Self {
        let (dst_addr, dst_port) = if flow.flags & CT_FLAG_SNAT != 0 {
            (flow.snat_addr, flow.snat_port)
        } else {
            (self.src_addr, self.src_port)
        };
        Self {
            src_addr: flow.backend_addr,
            dst_addr,
            src_port: flow.backend_port,
            dst_port,
            family: self.family,
            proto: self.proto,
            _pad: [0; 2],
        }
    }

    /// Field-wise equality written out, so BPF code compares without a `memcmp` call.
    #[inline(always)]
    pub const fn same_as(&self, other: &Self) -> bool {
        same_addr(&self.src_addr, &other.src_addr)
            && same_addr(&self.dst_addr, &other.dst_addr)
            && self.src_port == other.src_port
            && self.dst_port == other.dst_port
            && self.family == other.family
            && self.proto == other.proto
    }
}

impl CtForward {
    /// Whether `reply_key` is the `CT_REV` key of this flow (tracked under `forward_key`),
    /// i.e. `forward_key.reply_key(self) == reply_key`, without building a key (BPF stack).
    #[inline(always)]
    pub const fn replies_at(&self, forward_key: &CtKey, reply_key: &CtKey) -> bool {
        let (dst_addr, dst_port) = if self.flags & CT_FLAG_SNAT != 0 {
            (&self.snat_addr, self.snat_port)
        } else {
            (&forward_key.src_addr, forward_key.src_port)
        };
        same_addr(&self.backend_addr, &reply_key.src_addr)
            && self.backend_port == reply_key.src_port
            && same_addr(dst_addr, &reply_key.dst_addr)
            && dst_port == reply_key.dst_port
            && forward_key.family == reply_key.family
            && forward_key.proto == reply_key.proto
    }
}

impl CtReverse {
    /// Whether this reply entry belongs to the flow tracked under `forward_key`, i.e.
    /// `self.forward_key(..) == forward_key` up to family and protocol (which the reply key
    /// carries), without building a key.
    #[inline(always)]
    pub const fn tracks(&self, forward_key: &CtKey) -> bool {
        same_addr(&self.client_addr, &forward_key.src_addr)
            && same_addr(&self.frontend_addr, &forward_key.dst_addr)
            && self.client_port == forward_key.src_port
            && self.frontend_port == forward_key.dst_port
    }

    /// The `CT_FWD` key of the flow stored under `reply_key` as `self`.
    #[inline(always)]
    pub const fn forward_key(&self, reply_key: &CtKey) -> CtKey {
        CtKey {
            src_addr: self.client_addr,
            dst_addr: self.frontend_addr,
            src_port: self.client_port,
            dst_port: self.frontend_port,
            family: reply_key.family,
            proto: reply_key.proto,
            _pad: [0; 2],
        }
    }
}

#[inline(always)]
const fn same_addr(a: &[u32; 4], b: &[u32; 4]) -> bool {
    a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AF_INET, IPPROTO_UDP};

    #[test]
    fn tcp_lifetimes_follow_the_handshake_and_the_close() {
        let defaults = CtConfig::default();
        let syn = advance(0, IPPROTO_TCP, TCP_SYN);
        assert_eq!(defaults.lifetime(IPPROTO_TCP, syn), CT_TCP_SYN_SECS);
        let syn_ack = advance(syn, IPPROTO_TCP, TCP_SYN | TCP_ACK);
        assert_eq!(syn_ack, syn, "a SYN-ACK is still the handshake");
        let established = advance(syn_ack, IPPROTO_TCP, TCP_ACK);
        assert_eq!(
            defaults.lifetime(IPPROTO_TCP, established),
            CT_TCP_ESTABLISHED_SECS
        );
        for closer in [TCP_FIN | TCP_ACK, TCP_RST] {
            let closing = advance(established, IPPROTO_TCP, closer);
            assert_eq!(defaults.lifetime(IPPROTO_TCP, closing), CT_TCP_CLOSING_SECS);
            assert_eq!(
                advance(closing, IPPROTO_TCP, TCP_ACK),
                closing,
                "closing is for good"
            );
            assert!(reopens(closing, IPPROTO_TCP, TCP_SYN));
            assert!(!reopens(closing, IPPROTO_TCP, TCP_SYN | TCP_ACK));
        }
        assert!(!reopens(established, IPPROTO_TCP, TCP_SYN));
    }

    #[test]
    fn udp_has_one_lifetime_and_zero_fields_take_the_defaults() {
        let defaults = CtConfig::default();
        assert_eq!(advance(CT_FLAG_SNAT, IPPROTO_UDP, 0xff), CT_FLAG_SNAT);
        assert_eq!(defaults.lifetime(IPPROTO_UDP, 0), CT_UDP_SECS);
        assert!(!reopens(CT_FLAG_CLOSING, IPPROTO_UDP, TCP_SYN));
        let short = CtConfig {
            udp_secs: 2,
            tcp_closing_secs: 1,
            ..CtConfig::default()
        };
        assert_eq!(short.lifetime(IPPROTO_UDP, 0), 2);
        assert_eq!(short.lifetime(IPPROTO_TCP, CT_FLAG_CLOSING), 1);
        assert_eq!(short.lifetime(IPPROTO_TCP, 0), CT_TCP_SYN_SECS);
    }

    #[test]
    fn the_snat_pool_is_bounded_by_the_default_range() {
        let pool = |snat_ports| {
            CtConfig {
                snat_ports,
                ..CtConfig::default()
            }
            .snat_port_span()
        };
        assert_eq!(pool(0), 4536);
        assert_eq!(pool(64), 64);
        assert_eq!(pool(100_000), 4536);
        assert!(is_dead(10, 10) && !is_dead(11, 10));
    }

    #[test]
    fn a_configured_snat_range_bounds_the_pool() {
        let range = |snat_port_first, snat_ports| CtConfig {
            snat_port_first,
            snat_ports,
            ..CtConfig::default()
        };
        let low = range(40_000, 100);
        assert_eq!((low.snat_port_first(), low.snat_port_span()), (40_000, 100));
        assert!(low.is_snat_port(40_000) && low.is_snat_port(40_099));
        assert!(!low.is_snat_port(39_999) && !low.is_snat_port(40_100));
        let to_the_end = range(65_000, 0);
        assert_eq!(to_the_end.snat_port_span(), 536);
        assert!(to_the_end.is_snat_port(65_535));
        assert_eq!(range(65_535, 10).snat_port_span(), 1, "clamped below 65536");
        let default = CtConfig::default();
        assert!(default.is_snat_port(61_000) && !default.is_snat_port(60_999));
        assert!(default.is_snat_port(65_535));
    }

    #[test]
    fn reply_and_forward_keys_point_at_each_other() {
        let fwd_key = CtKey {
            src_addr: [7, 0, 0, 0],
            dst_addr: [1, 0, 0, 0],
            src_port: 40_000_u16.to_be(),
            dst_port: 30_080_u16.to_be(),
            family: AF_INET,
            proto: IPPROTO_UDP,
            _pad: [0; 2],
        };
        let mut flow = CtForward {
            backend_addr: [5, 0, 0, 0],
            backend_port: 8080_u16.to_be(),
            ..CtForward::default()
        };
        let reverse = CtReverse {
            client_addr: fwd_key.src_addr,
            frontend_addr: fwd_key.dst_addr,
            client_port: fwd_key.src_port,
            frontend_port: fwd_key.dst_port,
            ..CtReverse::default()
        };
        let direct = fwd_key.reply_key(&flow);
        assert_eq!(
            (direct.src_addr, direct.src_port),
            (flow.backend_addr, flow.backend_port)
        );
        assert_eq!(
            (direct.dst_addr, direct.dst_port),
            (fwd_key.src_addr, fwd_key.src_port)
        );
        assert!(reverse.forward_key(&direct).same_as(&fwd_key));
        assert!(reverse.tracks(&fwd_key));
        assert!(flow.replies_at(&fwd_key, &direct));

        flow.flags = CT_FLAG_SNAT;
        flow.snat_addr = [1, 0, 0, 0];
        flow.snat_port = 61_234_u16.to_be();
        let masqueraded = fwd_key.reply_key(&flow);
        assert_eq!(
            (masqueraded.dst_addr, masqueraded.dst_port),
            (flow.snat_addr, flow.snat_port)
        );
        assert!(!masqueraded.same_as(&direct));
        assert!(reverse.forward_key(&masqueraded).same_as(&fwd_key));
        assert!(flow.replies_at(&fwd_key, &masqueraded));
        assert!(!flow.replies_at(&fwd_key, &direct));
        let other_client = CtKey {
            src_port: 40_001_u16.to_be(),
            ..fwd_key
        };
        assert!(!reverse.tracks(&other_client));
    }
}
