//! `FRONTENDS`: a service address (ClusterIP, and later NodePort/external IPs) → its backend set.

use core::net::SocketAddr;

use crate::addr::ip_words;

/// Key of the `FRONTENDS` map: the address a client dials.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrontendKey {
    /// Raw network-order address words (see the crate docs); IPv4 in word 0.
    pub addr: [u32; 4],
    /// Port in network byte order.
    pub port: u16,
    /// [`crate::AF_INET`] or [`crate::AF_INET6`].
    pub family: u8,
    /// [`crate::IPPROTO_TCP`] or [`crate::IPPROTO_UDP`].
    pub proto: u8,
}
const _: () = assert!(size_of::<FrontendKey>() == 20);

impl FrontendKey {
    /// The key for a service address and L4 protocol.
    pub const fn new(addr: SocketAddr, proto: u8) -> Self {
        let (family, words) = ip_words(addr.ip());
        Self {
            addr: words,
            port: addr.port().to_be(),
            family,
            proto,
        }
    }
}

/// [`Frontend::flags`] bit: ClientIP session affinity is requested for this service.
///
/// Reserved: userspace records it (with [`Frontend::affinity_timeout_secs`]) but the socket-LB
/// programs do not act on it yet; every connection picks a backend at random.
pub const FRONTEND_FLAG_AFFINITY: u32 = 1 << 0;

/// Value of the `FRONTENDS` map: which backend set serves this frontend.
///
/// The backends live in `BACKENDS` under `(service_id, revision, 0..backend_count)`. To replace
/// a set atomically, userspace writes the new slots under a new `revision`, then overwrites this
/// value in a single map update (BPF sees either the old or the new set, never a mix), then
/// deletes the old revision's slots.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frontend {
    /// Identifies the service's backend set; chosen by userspace, unique per service.
    pub service_id: u32,
    /// Generation of the backend set currently published for `service_id`.
    pub revision: u32,
    /// Number of backend slots; `0` means the service exists but has no ready endpoint, and
    /// `connect()` / `sendmsg()` to it fail with `EPERM`.
    pub backend_count: u32,
    /// `FRONTEND_FLAG_*` bits.
    pub flags: u32,
    /// ClientIP affinity timeout (seconds); meaningful with [`FRONTEND_FLAG_AFFINITY`].
    pub affinity_timeout_secs: u32,
}
const _: () = assert!(size_of::<Frontend>() == 20);
