//! Ethernet + IPv4/IPv6 + TCP/UDP headers: parsing, and rewriting addresses and ports with the
//! checksum fix-ups, all through skb helpers (no direct packet pointers to re-validate after a
//! store).
//!
//! Checksums: the IPv4 header checksum follows the address change; the L4 checksum follows the
//! address change as a pseudo-header change (`BPF_F_PSEUDO_HDR`, which also keeps
//! `CHECKSUM_PARTIAL` and `CHECKSUM_COMPLETE` skbs right) and the port change as a plain one.
//! UDP uses `BPF_F_MARK_MANGLED_0`: an IPv4 datagram without a checksum (0) keeps none, and a
//! computed 0 is written as `0xffff`.

use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR},
    programs::TcContext,
};
use ferry_ebpf_common::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};

/// Ethernet header length (no VLAN tags: those are handled by the kernel before tc on a VLAN
/// device, and an outer tag on the physical device is not parsed).
pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
/// Offset of the IPv4 header checksum.
const IPV4_CSUM_OFF: usize = ETH_HLEN + 10;
const IPV6_HLEN: usize = 40;

/// A helper failed; the packet may be half rewritten and must be dropped.
pub struct Mangled;

/// Which end of the packet to rewrite.
#[derive(Clone, Copy)]
pub enum End {
    Source,
    Destination,
}

/// The L3/L4 facts of one TCP or UDP packet.
#[derive(Default)]
pub struct Packet {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub proto: u8,
    /// Offset of the L4 header.
    pub l4_off: usize,
    /// Source address, raw network-order words (IPv4 in word 0).
    pub src: [u32; 4],
    /// Destination address, same encoding.
    pub dst: [u32; 4],
    /// Source port, network byte order.
    pub sport: u16,
    /// Destination port, network byte order.
    pub dport: u16,
    /// TCP header flags (`ferry_ebpf_common::conntrack::TCP_*`); zero for UDP.
    pub tcp_flags: u8,
}

impl Packet {
    /// Parses a TCP or UDP packet over IPv4 or IPv6 (without extension headers); `None` for
    /// anything else, including IPv4 fragments (the tc path leaves them to the stack).
    #[inline(always)]
    pub fn parse(ctx: &TcContext) -> Option<Self> {
        let ether_type: u16 = ctx.load(12).ok()?;
        let (family, proto, l4_off, src, dst) = if ether_type == ETH_P_IP.to_be() {
            let version_ihl: u8 = ctx.load(ETH_HLEN).ok()?;
            let ihl = usize::from(version_ihl & 0x0f) * 4;
            if version_ihl >> 4 != 4 || ihl < 20 {
                return None;
            }
            // More-fragments flag or a fragment offset.
            let frag: u16 = ctx.load(ETH_HLEN + 6).ok()?;
            if frag & 0x3fff_u16.to_be() != 0 {
                return None;
            }
            let proto: u8 = ctx.load(ETH_HLEN + 9).ok()?;
            let src: u32 = ctx.load(ETH_HLEN + 12).ok()?;
            let dst: u32 = ctx.load(ETH_HLEN + 16).ok()?;
            (
                AF_INET,
                proto,
                ETH_HLEN + ihl,
                [src, 0, 0, 0],
                [dst, 0, 0, 0],
            )
        } else if ether_type == ETH_P_IPV6.to_be() {
            let proto: u8 = ctx.load(ETH_HLEN + 6).ok()?;
            let src: [u32; 4] = ctx.load(ETH_HLEN + 8).ok()?;
            let dst: [u32; 4] = ctx.load(ETH_HLEN + 24).ok()?;
            (AF_INET6, proto, ETH_HLEN + IPV6_HLEN, src, dst)
        } else {
            return None;
        };
        if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
            return None;
        }
        let sport: u16 = ctx.load(l4_off).ok()?;
        let dport: u16 = ctx.load(l4_off + 2).ok()?;
        let tcp_flags: u8 = if proto == IPPROTO_TCP {
            ctx.load(l4_off + 13).ok()?
        } else {
            0
        };
        Some(Self {
            family,
            proto,
            l4_off,
            src,
            dst,
            sport,
            dport,
            tcp_flags,
        })
    }

    /// [`Self::parse`] into `pkt`, returning 1, or 0 for a packet it refuses. Not inlined: the
    /// parse's temporaries stay in a frame of its own, off the callers' (`nodeport_ingress`
    /// is near the verifier's 512-byte stack limit).
    #[inline(never)]
    pub fn parse_into(ctx: &TcContext, pkt: &mut Self) -> u32 {
        match Self::parse(ctx) {
            Some(parsed) => {
                *pkt = parsed;
                1
            }
            None => 0,
        }
    }

    /// Rewrites the address and port of one end, fixing the checksums.
    #[inline(always)]
    pub fn rewrite(
        &mut self,
        ctx: &TcContext,
        end: End,
        addr: [u32; 4],
        port: u16,
    ) -> Result<(), Mangled> {
        let (old_addr, old_port) = match end {
            End::Source => (self.src, self.sport),
            End::Destination => (self.dst, self.dport),
        };
        let (csum_off, mangled) = if self.proto == IPPROTO_TCP {
            (self.l4_off + 16, 0)
        } else {
            (self.l4_off + 6, u64::from(BPF_F_MARK_MANGLED_0))
        };
        let pseudo = u64::from(BPF_F_PSEUDO_HDR) | mangled;
        if old_addr != addr {
            if self.family == AF_INET {
                let off = match end {
                    End::Source => ETH_HLEN + 12,
                    End::Destination => ETH_HLEN + 16,
                };
                let (from, to) = (u64::from(old_addr[0]), u64::from(addr[0]));
                ctx.store(off, &addr[0], 0).map_err(|_| Mangled)?;
                ctx.l3_csum_replace(IPV4_CSUM_OFF, from, to, 4)
                    .map_err(|_| Mangled)?;
                ctx.l4_csum_replace(csum_off, from, to, pseudo | 4)
                    .map_err(|_| Mangled)?;
            } else {
                let off = match end {
                    End::Source => ETH_HLEN + 8,
                    End::Destination => ETH_HLEN + 24,
                };
                ctx.store(off, &addr, 0).map_err(|_| Mangled)?;
                for i in 0..4 {
                    let (from, to) = (u64::from(old_addr[i]), u64::from(addr[i]));
                    ctx.l4_csum_replace(csum_off, from, to, pseudo | 4)
                        .map_err(|_| Mangled)?;
                }
            }
        }
        if old_port != port {
            let off = match end {
                End::Source => self.l4_off,
                End::Destination => self.l4_off + 2,
            };
            ctx.store(off, &port, 0).map_err(|_| Mangled)?;
            ctx.l4_csum_replace(csum_off, u64::from(old_port), u64::from(port), mangled | 2)
                .map_err(|_| Mangled)?;
        }
        match end {
            End::Source => (self.src, self.sport) = (addr, port),
            End::Destination => (self.dst, self.dport) = (addr, port),
        }
        Ok(())
    }
}
