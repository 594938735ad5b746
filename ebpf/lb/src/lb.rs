//! Backend selection, shared by the IPv4 and IPv6 hooks.

use aya_ebpf::helpers::bpf_get_prandom_u32;
use ferry_ebpf_common::{Backend, BackendSlotKey, FrontendKey};

use crate::maps::{BACKENDS, FRONTENDS};

/// What to do with a socket operation addressed to `FrontendKey`.
pub enum Pick {
    /// Not a service address: leave the operation alone.
    Pass,
    /// A service without a usable backend: fail the operation (`EPERM`).
    Reject,
    /// Send it to this backend.
    To(Backend),
}

/// Returns value for hooks that may fail the operation: the kernel returns `EPERM` on 0.
pub const VERDICT_REJECT: i32 = 0;
/// Returns value that lets the operation proceed (the only value recvmsg/getpeername allow).
pub const VERDICT_PROCEED: i32 = 1;

/// Picks a backend of the frontend uniformly at random.
#[inline(always)]
pub fn pick(key: &FrontendKey) -> Pick {
    // SAFETY: the value is copied out immediately, before any map update could recycle it.
    let Some(frontend) = (unsafe { FRONTENDS.get(key) }).copied() else {
        return Pick::Pass;
    };
    if frontend.backend_count == 0 {
        return Pick::Reject;
    }
    // SAFETY: a helper without arguments or preconditions.
    let slot = unsafe { bpf_get_prandom_u32() } % frontend.backend_count;
    let slot_key = BackendSlotKey {
        service_id: frontend.service_id,
        revision: frontend.revision,
        slot,
    };
    // SAFETY: copied out immediately, as above.
    match (unsafe { BACKENDS.get(&slot_key) }).copied() {
        // The family check is the hook's; a missing slot means a half-written set.
        Some(backend) => Pick::To(backend),
        None => Pick::Reject,
    }
}
