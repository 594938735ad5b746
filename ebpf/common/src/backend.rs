//! `BACKENDS`: one slot of a service's backend set → an endpoint address.

use core::net::SocketAddr;

use crate::addr::{ip_from_words, ip_words};

/// Key of the `BACKENDS` map: slot `slot` (in `0..Frontend::backend_count`) of the set
/// `(service_id, revision)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendSlotKey {
    /// [`crate::Frontend::service_id`].
    pub service_id: u32,
    /// [`crate::Frontend::revision`] the slot belongs to.
    pub revision: u32,
    /// Slot index, `0..backend_count`.
    pub slot: u32,
}
const _: () = assert!(size_of::<BackendSlotKey>() == 12);

/// [`Backend::flags`] bit: the endpoint runs on another node.
///
/// The tc NodePort path masquerades (SNATs to the node address in `NODE_ADDRS`) a flow sent to
/// such a backend, unless the frontend has [`crate::FRONTEND_FLAG_PRESERVE_CLIENT`]; the socket
/// LB ignores the bit.
pub const BACKEND_FLAG_REMOTE: u8 = 1 << 0;

/// Value of the `BACKENDS` map: where a connection to the frontend is sent.
///
/// Its family must match the frontend's: an IPv4 socket cannot be redirected to an IPv6
/// backend (the programs reject such a connection with `EPERM`, the tc programs drop it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    /// Raw network-order address words; IPv4 in word 0.
    pub addr: [u32; 4],
    /// Port in network byte order.
    pub port: u16,
    /// [`crate::AF_INET`] or [`crate::AF_INET6`].
    pub family: u8,
    /// `BACKEND_FLAG_*` bits; unknown bits must be zero.
    pub flags: u8,
}
const _: () = assert!(size_of::<Backend>() == 20);

impl Backend {
    /// All zero: no backend (an unused inline slot of a [`crate::FrontendValue`]).
    pub const NONE: Self = Self {
        addr: [0; 4],
        port: 0,
        family: 0,
        flags: 0,
    };

    /// The backend value for an endpoint address, without flags.
    pub const fn new(addr: SocketAddr) -> Self {
        let (family, words) = ip_words(addr.ip());
        Self {
            addr: words,
            port: addr.port().to_be(),
            family,
            flags: 0,
        }
    }

    /// The same backend with `flags` (`BACKEND_FLAG_*`) set.
    #[must_use]
    pub const fn with_flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self
    }

    /// The endpoint address; `None` if `family` is unknown.
    pub const fn socket_addr(&self) -> Option<SocketAddr> {
        match ip_from_words(self.family, self.addr) {
            Some(ip) => Some(SocketAddr::new(ip, u16::from_be(self.port))),
            None => None,
        }
    }
}
