//! The sock_diag wire format, for the two requests Ferry makes: dump the connected UDP sockets
//! of one family (optionally narrowed by a bytecode filter on the remote address), and destroy
//! one socket (`SOCK_DESTROY`).
//!
//! The layouts are the kernel's UAPI (`linux/netlink.h`, `linux/sock_diag.h`,
//! `linux/inet_diag.h`). Each struct below mirrors its C counterpart field for field, with a
//! size assertion, and is encoded and decoded field by field in native byte order, so no
//! `unsafe` is needed. Addresses and ports follow [`crate::common`]'s convention: an address is
//! `[u32; 4]` of raw network-order bytes (IPv4 in word 0), a port is a `u16` in network byte
//! order; [`addr::ip_words`] / [`addr::ip_from_words`] convert.
//!
//! (The rust-netlink crates were considered: `netlink-packet-sock-diag` has no `SOCK_DESTROY`
//! message type and no request bytecode, which are the two things needed here.)

use crate::common::{AF_INET, AF_INET6, IPPROTO_UDP, addr};
use std::net::{IpAddr, SocketAddr};

/// `SOCK_DIAG_BY_FAMILY`: dump (or get) sockets; also the type of each dumped socket.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `SOCK_DESTROY`: abort one socket (`CONFIG_INET_DIAG_DESTROY`).
pub const SOCK_DESTROY: u16 = 21;
/// `NLMSG_ERROR`: an error, or with error 0 an acknowledgement.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
/// `INET_DIAG_REQ_BYTECODE`: the request attribute carrying a filter program.
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// `INET_DIAG_BC_JMP`: always takes its "no" branch.
const INET_DIAG_BC_JMP: u8 = 1;
/// `INET_DIAG_BC_D_COND`: remote address prefix and port.
const INET_DIAG_BC_D_COND: u8 = 8;
/// `TCP_ESTABLISHED`: the state of a connected UDP socket (an unconnected one is `TCP_CLOSE`).
const TCP_ESTABLISHED: u32 = 1;
/// Largest filter program: `inet_diag_bc_op.no` is a `u16`, and so is the attribute length.
const MAX_BYTECODE: usize = 60_000;

/// `struct nlmsghdr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsgHdr {
    /// Length of the message, header included.
    pub len: u32,
    /// Message type (`nlmsg_type`).
    pub kind: u16,
    /// `NLM_F_*`.
    pub flags: u16,
    /// Sequence number, echoed in the replies.
    pub seq: u32,
    /// Sender port id; 0 for the kernel.
    pub pid: u32,
}
const _: () = assert!(size_of::<NlMsgHdr>() == NlMsgHdr::LEN);

impl NlMsgHdr {
    pub const LEN: usize = 16;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_ne_bytes());
        out.extend_from_slice(&self.kind.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&self.pid.to_ne_bytes());
    }

    fn read(b: &[u8]) -> Option<Self> {
        Some(Self {
            len: u32_at(b, 0)?,
            kind: u16_at(b, 4)?,
            flags: u16_at(b, 6)?,
            seq: u32_at(b, 8)?,
            pid: u32_at(b, 12)?,
        })
    }
}

/// `struct inet_diag_sockid`: one socket's identity, as dumped and as echoed to destroy it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SockId {
    /// Local port, network byte order.
    pub sport: u16,
    /// Remote port, network byte order.
    pub dport: u16,
    /// Local address words.
    pub src: [u32; 4],
    /// Remote address words.
    pub dst: [u32; 4],
    /// Bound interface index, 0 if none.
    pub ifindex: u32,
    /// Socket cookie, low word first (`INET_DIAG_NOCOOKIE` twice for "any").
    pub cookie: [u32; 2],
}
const _: () = assert!(size_of::<SockId>() == SockId::LEN);

impl SockId {
    pub const LEN: usize = 48;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sport.to_ne_bytes());
        out.extend_from_slice(&self.dport.to_ne_bytes());
        for word in self.src.iter().chain(&self.dst) {
            out.extend_from_slice(&word.to_ne_bytes());
        }
        out.extend_from_slice(&self.ifindex.to_ne_bytes());
        out.extend_from_slice(&self.cookie[0].to_ne_bytes());
        out.extend_from_slice(&self.cookie[1].to_ne_bytes());
    }

    fn read(b: &[u8]) -> Option<Self> {
        let words = |at: usize| -> Option<[u32; 4]> {
            Some([
                u32_at(b, at)?,
                u32_at(b, at + 4)?,
                u32_at(b, at + 8)?,
                u32_at(b, at + 12)?,
            ])
        };
        Some(Self {
            sport: u16_at(b, 0)?,
            dport: u16_at(b, 2)?,
            src: words(4)?,
            dst: words(20)?,
            ifindex: u32_at(b, 36)?,
            cookie: [u32_at(b, 40)?, u32_at(b, 44)?],
        })
    }

    pub fn cookie(&self) -> u64 {
        u64::from(self.cookie[0]) | (u64::from(self.cookie[1]) << 32)
    }
}

/// `struct inet_diag_req_v2`: a dump or destroy request.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetDiagReqV2 {
    /// `AF_INET` or `AF_INET6`: the family of the sockets (a v4-mapped socket is `AF_INET6`).
    pub family: u8,
    /// `IPPROTO_UDP`.
    pub protocol: u8,
    /// Extensions to report (`1 << (INET_DIAG_* - 1)`); none here.
    pub ext: u8,
    /// Zero.
    pub pad: u8,
    /// Socket states to dump, `1 << TCP_*`.
    pub states: u32,
    /// For a dump, a non-zero port here filters on it; for a destroy, the socket.
    pub id: SockId,
}
const _: () = assert!(size_of::<InetDiagReqV2>() == InetDiagReqV2::LEN);

impl InetDiagReqV2 {
    pub const LEN: usize = 56;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.family, self.protocol, self.ext, self.pad]);
        out.extend_from_slice(&self.states.to_ne_bytes());
        self.id.write(out);
    }
}

/// The fixed part of `struct inet_diag_msg` (one dumped socket) that Ferry reads; the rest
/// (`idiag_expires` .. `idiag_inode`, 20 bytes, then attributes) is skipped.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetDiagMsg {
    pub family: u8,
    /// `TCP_*` state; `TCP_ESTABLISHED` for a connected UDP socket.
    pub state: u8,
    pub timer: u8,
    pub retrans: u8,
    pub id: SockId,
}
const _: () = assert!(size_of::<InetDiagMsg>() == InetDiagMsg::LEN);

impl InetDiagMsg {
    pub const LEN: usize = 52;
    /// The whole `struct inet_diag_msg`.
    const FULL_LEN: usize = 72;

    fn read(b: &[u8]) -> Option<Self> {
        if b.len() < Self::FULL_LEN {
            return None;
        }
        Some(Self {
            family: b[0],
            state: b[1],
            timer: b[2],
            retrans: b[3],
            id: SockId::read(b.get(4..)?)?,
        })
    }

    /// The remote address as the socket sees it (v4-mapped stays IPv6).
    pub fn remote(&self) -> Option<SocketAddr> {
        let ip = addr::ip_from_words(self.family, self.id.dst)?;
        Some(SocketAddr::new(ip, u16::from_be(self.id.dport)))
    }

    /// The local address.
    pub fn local(&self) -> Option<SocketAddr> {
        let ip = addr::ip_from_words(self.family, self.id.src)?;
        Some(SocketAddr::new(ip, u16::from_be(self.id.sport)))
    }
}

/// One message of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A dumped socket.
    Socket(InetDiagMsg),
    /// The end of a dump: 0, or the dump's negative errno.
    Done(i32),
    /// An acknowledgement (0) or a request's failure (a negative errno).
    Error(i32),
    /// A message of another type, or too short to read.
    Other(u16),
}

/// `NLM_F_REQUEST | NLM_F_DUMP` of the connected (`TCP_ESTABLISHED`) UDP sockets of `family`,
/// only those with remote port `dport` when it is `Some`, filtered by `bytecode` if any.
pub fn dump_request(seq: u32, family: u8, dport: Option<u16>, bytecode: Option<&[u8]>) -> Vec<u8> {
    let attr_len = bytecode.map_or(0, |bc| 4 + bc.len());
    let len = NlMsgHdr::LEN + InetDiagReqV2::LEN + attr_len;
    let mut out = Vec::with_capacity(len);
    NlMsgHdr {
        len: u32::try_from(len).unwrap_or(u32::MAX),
        kind: SOCK_DIAG_BY_FAMILY,
        flags: NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        pid: 0,
    }
    .write(&mut out);
    InetDiagReqV2 {
        family,
        protocol: IPPROTO_UDP,
        ext: 0,
        pad: 0,
        states: 1 << TCP_ESTABLISHED,
        id: SockId {
            dport: dport.unwrap_or(0).to_be(),
            ..SockId::default()
        },
    }
    .write(&mut out);
    if let Some(bc) = bytecode {
        // `struct nlattr`; the program's length is a multiple of 4, so no padding follows.
        out.extend_from_slice(&u16::try_from(attr_len).unwrap_or(u16::MAX).to_ne_bytes());
        out.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        out.extend_from_slice(bc);
    }
    out
}

/// `SOCK_DESTROY` of the socket `socket` (as dumped: its family and whole id, cookie included,
/// so a socket that was closed and replaced meanwhile is not hit), acknowledged.
pub fn destroy_request(seq: u32, socket: &InetDiagMsg) -> Vec<u8> {
    let len = NlMsgHdr::LEN + InetDiagReqV2::LEN;
    let mut out = Vec::with_capacity(len);
    NlMsgHdr {
        len: u32::try_from(len).unwrap_or(u32::MAX),
        kind: SOCK_DESTROY,
        flags: NLM_F_REQUEST | NLM_F_ACK,
        seq,
        pid: 0,
    }
    .write(&mut out);
    InetDiagReqV2 {
        family: socket.family,
        protocol: IPPROTO_UDP,
        ext: 0,
        pad: 0,
        states: 1 << TCP_ESTABLISHED,
        id: socket.id,
    }
    .write(&mut out);
    out
}

/// The messages of one received datagram, each with its header.
pub fn replies(mut buf: &[u8]) -> Vec<(NlMsgHdr, Reply)> {
    let mut out = Vec::new();
    while let Some(header) = NlMsgHdr::read(buf) {
        let len = header.len as usize;
        if len < NlMsgHdr::LEN || len > buf.len() {
            break;
        }
        let payload = &buf[NlMsgHdr::LEN..len];
        let reply = match header.kind {
            SOCK_DIAG_BY_FAMILY => {
                InetDiagMsg::read(payload).map_or(Reply::Other(header.kind), Reply::Socket)
            }
            NLMSG_DONE => Reply::Done(i32_at(payload, 0).unwrap_or(0)),
            NLMSG_ERROR => i32_at(payload, 0).map_or(Reply::Other(header.kind), Reply::Error),
            other => Reply::Other(other),
        };
        out.push((header, reply));
        // NLMSG_ALIGN: messages start on 4-byte boundaries.
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    out
}

/// An `inet_diag` filter program accepting a socket whose remote address and port equal one
/// of `remotes` (an IPv4 remote also matches a v4-mapped IPv6 socket: the kernel compares
/// those as IPv4). `None` when there are none or too many: the dump is then unfiltered.
///
/// The program is an OR chain, as `ss` compiles one: each condition jumps on a match to a
/// `JMP` whose "no" branch lands exactly on the end (accept), and on a mismatch over that
/// `JMP` to the next condition; the last condition's mismatch lands 4 bytes past the end
/// (reject). The kernel's audit walks the "yes" branches, which visit every operation in order.
pub fn remote_filter(remotes: &[SocketAddr]) -> Option<Vec<u8>> {
    let conds: Vec<Vec<u8>> = remotes.iter().map(d_cond).collect();
    let total: usize = conds
        .iter()
        .map(|c| c.len() + 4)
        .sum::<usize>()
        .checked_sub(4)?;
    if total > MAX_BYTECODE {
        return None;
    }
    let mut out = Vec::with_capacity(total);
    let last = conds.len() - 1;
    for (i, cond) in conds.iter().enumerate() {
        let len = cond.len();
        // yes: the next operation (the JMP, or the end for the last); no: skip the JMP.
        out.push(INET_DIAG_BC_D_COND);
        out.push(u8::try_from(len).unwrap_or(u8::MAX));
        out.extend_from_slice(&u16::try_from(len + 4).unwrap_or(u16::MAX).to_ne_bytes());
        out.extend_from_slice(&cond[4..]);
        if i < last {
            let to_end = total - out.len();
            out.extend_from_slice(&[INET_DIAG_BC_JMP, 4]);
            out.extend_from_slice(&u16::try_from(to_end).unwrap_or(u16::MAX).to_ne_bytes());
        }
    }
    Some(out)
}

/// One `INET_DIAG_BC_D_COND` operation (its op header left zero): `struct inet_diag_hostcond`
/// (family, prefix length, 2 bytes of padding, the port as a host-order `int`) and the address.
fn d_cond(remote: &SocketAddr) -> Vec<u8> {
    let (family, words) = addr::ip_words(remote.ip());
    let (prefix, count) = match remote.ip() {
        IpAddr::V4(_) => (32u8, 1),
        IpAddr::V6(_) => (128u8, 4),
    };
    debug_assert!(family == AF_INET || family == AF_INET6);
    let mut out = vec![0u8; 4];
    out.extend_from_slice(&[family, prefix, 0, 0]);
    out.extend_from_slice(&i32::from(remote.port()).to_ne_bytes());
    for word in &words[..count] {
        out.extend_from_slice(&word.to_ne_bytes());
    }
    out
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests;
