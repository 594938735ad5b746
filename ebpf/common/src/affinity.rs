//! `AFFINITY`: ClientIP session affinity, written and read by BPF only.

use crate::Backend;

/// [`AffinityKey::scope`]: the client is a network namespace (socket LB, cgroup hooks).
pub const AFFINITY_SCOPE_SOCKET: u8 = 1;
/// [`AffinityKey::scope`]: the client is a source address (tc NodePort path).
pub const AFFINITY_SCOPE_PACKET: u8 = 2;

/// Key of the `AFFINITY` LRU map: one client of one backend set.
///
/// Keyed by [`crate::Frontend::service_id`] rather than by frontend address, so that every
/// address of a service port (nodeIP:nodePort on each node IP, externalIPs, LB IPs) shares the
/// client's affinity, as kube-proxy's per-endpoint `recent` lists do.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AffinityKey {
    /// [`AFFINITY_SCOPE_SOCKET`]: the netns cookie (`bpf_get_netns_cookie`) as a native `u64`
    /// in words 0..2, words 2..4 zero. [`AFFINITY_SCOPE_PACKET`]: the client's source address
    /// as raw network-order words (IPv4 in word 0).
    pub client: [u32; 4],
    /// The backend set ([`crate::Frontend::service_id`]).
    pub service_id: u32,
    /// `AFFINITY_SCOPE_*`.
    pub scope: u8,
    /// Family of `client` for [`AFFINITY_SCOPE_PACKET`], `0` for [`AFFINITY_SCOPE_SOCKET`].
    pub family: u8,
    /// Must be zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<AffinityKey>() == 24);

impl AffinityKey {
    /// Splits a netns cookie into [`AffinityKey::client`] words.
    pub const fn cookie_words(cookie: u64) -> [u32; 4] {
        // Truncations intended: the low and the high half.
        [cookie as u32, (cookie >> 32) as u32, 0, 0]
    }
}

/// Value of the `AFFINITY` map: the backend the client got last, and when.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AffinityValue {
    /// The backend as it was in `BACKENDS`; reused only while `BACKENDS` holds the very same
    /// value at `slot` of the frontend's current revision.
    pub backend: Backend,
    /// Its slot.
    pub slot: u32,
    /// `bpf_ktime_get_ns()` of the last connection (socket LB) or new flow (tc) that used it.
    pub last_used_ns: u64,
}
const _: () = assert!(size_of::<AffinityValue>() == 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_fills_the_first_two_words() {
        let words = AffinityKey::cookie_words(0x1122_3344_5566_7788);
        assert_eq!(words, [0x5566_7788, 0x1122_3344, 0, 0]);
    }
}
