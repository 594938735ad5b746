//! `CT_FWD` / `CT_REV`: the tc NodePort path's connection tracking, written and read by BPF
//! (userspace may delete entries, e.g. the flows of a removed UDP backend).
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
//! Entries are never expired by BPF; the LRU maps recycle the least recently used ones.

/// Key of `CT_FWD` and `CT_REV`: one direction of a flow, as the packet carries it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Lowest source port the tc path uses to masquerade: above Linux's default ephemeral range
/// (`ip_local_port_range` 32768–60999), so it does not collide with the node's own sockets.
pub const SNAT_PORT_MIN: u16 = 61_000;
/// Highest SNAT source port.
pub const SNAT_PORT_MAX: u16 = 65_535;

/// Value of `CT_FWD` (key: `client → frontend`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
}
const _: () = assert!(size_of::<CtForward>() == 40);

/// Value of `CT_REV` (key: `backend → reply destination`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
}
const _: () = assert!(size_of::<CtReverse>() == 40);
