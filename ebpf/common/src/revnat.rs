//! `REVNAT`: what a socket dialled, so `getpeername()` / `recvmsg()` can report it back.

/// Key of the `REVNAT` LRU map, written by `connect*` / `sendmsg*` when they translate.
///
/// The address is the backend *as the socket sees it*: for an IPv6 socket that reached an IPv4
/// service through a v4-mapped address (`::ffff:a.b.c.d`) it is the v4-mapped backend with
/// family [`crate::AF_INET6`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevNatKey {
    /// `bpf_get_socket_cookie()` of the socket.
    pub cookie: u64,
    /// Backend address, raw network-order words.
    pub addr: [u32; 4],
    /// Backend port in network byte order.
    pub port: u16,
    /// [`crate::AF_INET`] or [`crate::AF_INET6`].
    pub family: u8,
    /// Must be zero.
    pub _pad: [u8; 5],
}
const _: () = assert!(size_of::<RevNatKey>() == 32);

/// Value of the `REVNAT` map: the frontend the socket originally addressed, in the same
/// socket-visible form as the key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevNatValue {
    /// Frontend address, raw network-order words.
    pub addr: [u32; 4],
    /// Frontend port in network byte order.
    pub port: u16,
    /// [`crate::AF_INET`] or [`crate::AF_INET6`].
    pub family: u8,
    /// Must be zero.
    pub _pad: u8,
}
const _: () = assert!(size_of::<RevNatValue>() == 20);

/// The reverse-NAT record of a connected TCP socket: the backend it was sent to and the
/// frontend it dialled. Kept in the socket's `REVNAT_SLOTS` slot ([`RevNatSlot`]), or as the
/// value of the `SOCK_REVNAT` map when another socket holds that slot; gone when the socket is
/// released.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SockRevNat {
    /// The backend as the socket sees it (the `REVNAT` key's address part).
    pub backend: RevNatValue,
    /// The frontend the socket dialled.
    pub frontend: RevNatValue,
}
const _: () = assert!(size_of::<SockRevNat>() == 40);

/// Value of the `REVNAT_SLOTS` array: a [`SockRevNat`] held for the TCP socket whose cookie is
/// `cookie`, in the slot `cookie % REVNAT_SLOTS_ENTRIES`. `cookie` 0 marks a free slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevNatSlot {
    /// The owning socket's cookie, claimed with a compare-and-swap from 0.
    pub cookie: u64,
    pub record: SockRevNat,
}
const _: () = assert!(size_of::<RevNatSlot>() == 48);
