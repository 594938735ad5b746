//! `FRONTENDS` / `EXT_FRONTENDS`: a service address → its backend set.
//!
//! `FRONTENDS` holds socket-scope frontends (what pods and host processes dial: ClusterIPs, and
//! whatever else userspace wants translated at `connect()`), read by the cgroup hooks only.
//! `EXT_FRONTENDS` holds packet-scope frontends (NodePort `nodeIP:nodePort`, externalIPs,
//! LoadBalancer IPs reached from outside the node), read by the tc programs only. Both share
//! the key and value types and point into the same `BACKENDS` sets.

use core::net::SocketAddr;

use crate::Backend;
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

/// [`Frontend::flags`] bit: ClientIP session affinity (kube-proxy semantics).
///
/// A client keeps getting the backend it got last from this backend set
/// ([`Frontend::service_id`]) while it comes back within [`Frontend::affinity_timeout_secs`] of
/// its last connection (socket LB) or new flow (tc) and that backend is still at the same slot
/// of the current revision; otherwise a backend is picked at random and remembered. The client
/// is its network namespace (netns cookie) for the socket LB and its source IP for tc. Keep a
/// backend at the same slot across revisions to keep its clients' affinity.
pub const FRONTEND_FLAG_AFFINITY: u32 = 1 << 0;

/// [`Frontend::flags`] bit: never masquerade flows to this frontend (externalTrafficPolicy
/// `Local`). Only meaningful in `EXT_FRONTENDS`. Without it (policy `Cluster`) the tc programs
/// SNAT a flow to the node address exactly when the chosen backend has
/// [`crate::BACKEND_FLAG_REMOTE`]. With it, userspace must publish local backends only: a
/// remote backend would answer the client directly and the reply would not be reverse-NATed.
pub const FRONTEND_FLAG_PRESERVE_CLIENT: u32 = 1 << 1;

/// Affinity timeout applied when [`FRONTEND_FLAG_AFFINITY`] is set with a zero
/// [`Frontend::affinity_timeout_secs`]: Kubernetes' default `timeoutSeconds`.
pub const AFFINITY_DEFAULT_TIMEOUT_SECS: u32 = 10_800;

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
    /// Number of backend slots; `0` means the service exists but has no ready endpoint:
    /// `connect()` / `sendmsg()` to it fail with `EPERM` and tc drops its packets.
    pub backend_count: u32,
    /// `FRONTEND_FLAG_*` bits.
    pub flags: u32,
    /// ClientIP affinity timeout (seconds); meaningful with [`FRONTEND_FLAG_AFFINITY`], `0`
    /// means [`AFFINITY_DEFAULT_TIMEOUT_SECS`].
    pub affinity_timeout_secs: u32,
}
const _: () = assert!(size_of::<Frontend>() == 20);

/// Backends a frontend's map value carries itself: slots `0..FRONTEND_INLINE_BACKENDS` of its
/// set. A pick among them needs no `BACKENDS` lookup (on these machines each map lookup that
/// misses the caches costs a few hundred ns, a large part of a `connect()`).
pub const FRONTEND_INLINE_BACKENDS: usize = 16;

/// Value of the `FRONTENDS` / `EXT_FRONTENDS` maps: the [`Frontend`] and copies of its set's
/// first slots.
///
/// `backends[i]` equals the `BACKENDS` entry of slot `i` of the same revision for
/// `i < min(backend_count, FRONTEND_INLINE_BACKENDS)`; the rest are zero. The maps are not
/// preallocated, so an update replaces the whole element and a program that holds a pointer
/// to the old one keeps reading the old value (freed after an RCU grace period): the frontend
/// and its inline slots are always one consistent revision.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrontendValue {
    pub frontend: Frontend,
    pub backends: [Backend; FRONTEND_INLINE_BACKENDS],
}
const _: () = assert!(size_of::<FrontendValue>() == 20 + 20 * FRONTEND_INLINE_BACKENDS);

impl FrontendValue {
    /// `frontend` with the first slots of its set, `backends` in slot order (extra ones are
    /// ignored).
    pub fn new(frontend: Frontend, backends: impl IntoIterator<Item = Backend>) -> Self {
        let mut value = Self {
            frontend,
            backends: [Backend::NONE; FRONTEND_INLINE_BACKENDS],
        };
        for (slot, backend) in value.backends.iter_mut().zip(backends) {
            *slot = backend;
        }
        value
    }
}
