//! Map keys and values shared by Ferry's BPF programs (`ferry-ebpf`) and its userspace loader
//! (`ferry-lb`).
//!
//! Every type here is `#[repr(C)]`, has no implicit padding (pad bytes are explicit fields that
//! must be zero, because BPF hash maps compare keys bytewise), uses no `bool`, and carries a
//! compile-time size assertion so a layout change cannot slip through on one side only.
//!
//! # Addresses
//!
//! IPv4 and IPv6 share one layout: an address is `[u32; 4]` holding the raw network-order bytes
//! exactly as the kernel stores them in `bpf_sock_addr.user_ip6` (word `i` = bytes `4i..4i+4`,
//! read as a native-endian `u32`). An IPv4 address occupies word 0 and words 1..4 are zero; a
//! separate `family` byte ([`AF_INET`] / [`AF_INET6`]) says which one it is. One key type for both
//! families keeps the map count, the userspace encoder and the BPF lookups single-path. Ports are
//! `u16` in network byte order, as in `sockaddr_in`. Use [`addr::ip_words`] / [`addr::ip_from_words`]
//! and `u16::to_be` / `u16::from_be` to convert; never hand-roll the byte order.
//!
//! # Maps
//!
//! | map ([`maps`]) | key | value | written by |
//! |---|---|---|---|
//! | `FRONTENDS` | [`FrontendKey`] | [`Frontend`] | userspace (socket-scope: cgroup hooks) |
//! | `EXT_FRONTENDS` | [`FrontendKey`] | [`Frontend`] | userspace (packet-scope: tc) |
//! | `BACKENDS` | [`BackendSlotKey`] | [`Backend`] | userspace |
//! | `NODE_ADDRS` (array, 1) | `u32` index 0 | [`NodeAddrs`] | userspace |
//! | `REVNAT` (LRU) | [`RevNatKey`] | [`RevNatValue`] | BPF (`connect*` of UDP sockets, `sendmsg*`) |
//! | `REVNAT_SLOTS` (array) | socket cookie % entries | [`RevNatSlot`] | BPF (`connect*` of TCP sockets; freed by `sock_release`) |
//! | `SOCK_REVNAT` (LRU) | socket cookie | [`SockRevNat`] | BPF (TCP sockets whose slot was taken; deleted by `sock_release`) |
//! | `AFFINITY` (LRU) | [`AffinityKey`] | [`AffinityValue`] | BPF (socket LB and tc) |
//! | `CT_FWD` (LRU) | [`CtKey`] | [`CtForward`] | BPF (tc) |
//! | `CT_REV` (LRU) | [`CtKey`] | [`CtReverse`] | BPF (tc) |
//! | `CT_CONFIG` (array, 1) | `u32` index 0 | [`CtConfig`] | userspace (zero: defaults) |
//! | `MAGLEV` | [`MaglevKey`] | [`MaglevTable`] | userspace (`--lb-algorithm maglev`) |
//! | `STATS` (per-CPU array) | `u32` index ([`stats`]) | `u64` | BPF |
#![cfg_attr(not(test), no_std)]

pub mod addr;
mod affinity;
mod backend;
pub mod conntrack;
mod frontend;
pub mod maglev;
pub mod maps;
mod node;
#[cfg(feature = "user")]
mod pod;
pub mod programs;
mod revnat;
pub mod stats;

pub use addr::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
pub use affinity::{AFFINITY_SCOPE_PACKET, AFFINITY_SCOPE_SOCKET, AffinityKey, AffinityValue};
pub use backend::{BACKEND_FLAG_REMOTE, Backend, BackendSlotKey};
pub use conntrack::{CT_FLAG_SNAT, CtConfig, CtForward, CtKey, CtReverse};
pub use frontend::{
    AFFINITY_DEFAULT_TIMEOUT_SECS, FRONTEND_FLAG_AFFINITY, FRONTEND_FLAG_PRESERVE_CLIENT,
    FRONTEND_INLINE_BACKENDS, Frontend, FrontendKey, FrontendValue,
};
pub use maglev::{FRONTEND_FLAG_MAGLEV, MaglevKey, MaglevTable};
pub use node::NodeAddrs;
pub use revnat::{RevNatKey, RevNatSlot, RevNatValue, SockRevNat};
