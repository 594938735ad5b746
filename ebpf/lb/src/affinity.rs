//! ClientIP session affinity (`AFFINITY`): the backend a client got last from a backend set.

use aya_ebpf::{bindings::BPF_ANY, helpers::bpf_ktime_get_ns};
use ferry_ebpf_common::{
    AFFINITY_DEFAULT_TIMEOUT_SECS, AFFINITY_SCOPE_PACKET, AFFINITY_SCOPE_SOCKET, AffinityKey,
    AffinityValue, Backend, Frontend,
};

use crate::lb::Entry;
use crate::maps::AFFINITY;

/// Who "the client" is for affinity.
#[derive(Clone, Copy)]
pub enum Client {
    /// Socket LB: the caller's network namespace cookie.
    Netns(u64),
    /// tc: the packet's source address (words, family).
    Addr([u32; 4], u8),
}

/// The `AFFINITY` key of `client` for backend set `service_id`.
#[inline(always)]
pub fn key(client: Client, service_id: u32) -> AffinityKey {
    let (client, scope, family) = match client {
        Client::Netns(cookie) => (AffinityKey::cookie_words(cookie), AFFINITY_SCOPE_SOCKET, 0),
        Client::Addr(addr, family) => (addr, AFFINITY_SCOPE_PACKET, family),
    };
    AffinityKey {
        client,
        service_id,
        scope,
        family,
        _pad: [0; 2],
    }
}

/// The backend remembered for `key`, if it was used within the frontend's timeout and is still
/// at its slot of the current revision; refreshes its timestamp.
#[inline(always)]
pub fn lookup(key: &AffinityKey, set: &Entry, frontend: &Frontend) -> Option<Backend> {
    let entry = AFFINITY.get_ptr_mut(key)?;
    // SAFETY: the map value stays valid for the program's run (RCU); copied out at once.
    let remembered = unsafe { *entry };
    // SAFETY: a helper without arguments or preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let secs = match frontend.affinity_timeout_secs {
        0 => AFFINITY_DEFAULT_TIMEOUT_SECS,
        secs => secs,
    };
    if now.wrapping_sub(remembered.last_used_ns) > u64::from(secs) * 1_000_000_000 {
        return None;
    }
    if remembered.slot >= frontend.backend_count {
        return None;
    }
    let current = set.backend(frontend, remembered.slot)?;
    if current != remembered.backend {
        return None;
    }
    // SAFETY: as above; a racing update of the same entry only loses a timestamp refresh.
    unsafe { (*entry).last_used_ns = now };
    Some(current)
}

/// Remembers that the client of `key` got `backend` (at `slot`) now.
#[inline(always)]
pub fn record(key: &AffinityKey, backend: Backend, slot: u32) {
    let value = AffinityValue {
        backend,
        slot,
        // SAFETY: a helper without arguments or preconditions.
        last_used_ns: unsafe { bpf_ktime_get_ns() },
    };
    // A full LRU map evicts, so this fails only on kernel errors; the pick stands either way,
    // only the next one may differ.
    let _ = AFFINITY.insert(key, value, u64::from(BPF_ANY));
}
