//! Backend selection, shared by the socket hooks (both families) and the tc programs.

use aya_ebpf::helpers::bpf_get_prandom_u32;
use ferry_ebpf_common::{Backend, BackendSlotKey, FRONTEND_FLAG_AFFINITY, FrontendKey, stats};

use crate::{
    affinity::{self, Client},
    maps::{BACKENDS, Frontends},
    stats::count,
};

/// What to do with an operation or packet addressed to a `FrontendKey`.
pub enum Pick {
    /// Not a service address: leave it alone.
    Pass,
    /// A service without a usable backend: fail the operation / drop the packet.
    Reject,
    /// Send it to `backend`; `flags` are the frontend's `FRONTEND_FLAG_*`.
    To { backend: Backend, flags: u32 },
}

/// Returns value for hooks that may fail the operation: the kernel returns `EPERM` on 0.
pub const VERDICT_REJECT: i32 = 0;
/// Returns value that lets the operation proceed (the only value recvmsg/getpeername allow).
pub const VERDICT_PROCEED: i32 = 1;

/// Picks a backend of the frontend `key` in `frontends`: the client's remembered one under
/// ClientIP affinity, otherwise uniformly at random (and remembered under affinity).
#[inline(always)]
pub fn pick(frontends: &Frontends, key: &FrontendKey, client: Client) -> Pick {
    // SAFETY: the value is copied out immediately, before any map update could recycle it.
    let Some(frontend) = (unsafe { frontends.get(key) }).copied() else {
        return Pick::Pass;
    };
    if frontend.backend_count == 0 {
        return Pick::Reject;
    }
    let sticky = frontend.flags & FRONTEND_FLAG_AFFINITY != 0;
    let affinity_key = affinity::key(client, frontend.service_id);
    if sticky && let Some(backend) = affinity::lookup(&affinity_key, &frontend) {
        count(stats::AFFINITY_HITS);
        return Pick::To {
            backend,
            flags: frontend.flags,
        };
    }
    // SAFETY: a helper without arguments or preconditions.
    let slot = unsafe { bpf_get_prandom_u32() } % frontend.backend_count;
    let slot_key = BackendSlotKey {
        service_id: frontend.service_id,
        revision: frontend.revision,
        slot,
    };
    // SAFETY: copied out immediately, as above.
    let Some(backend) = (unsafe { BACKENDS.get(&slot_key) }).copied() else {
        // A missing slot means a half-written set.
        return Pick::Reject;
    };
    if sticky {
        affinity::record(&affinity_key, backend, slot);
    }
    Pick::To {
        backend,
        flags: frontend.flags,
    }
}
