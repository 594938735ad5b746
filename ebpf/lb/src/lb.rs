//! Backend selection, shared by the socket hooks (both families) and the tc programs.

use aya_ebpf::helpers::bpf_get_prandom_u32;
use ferry_ebpf_common::{
    Backend, BackendSlotKey, FRONTEND_FLAG_AFFINITY, FRONTEND_FLAG_MAGLEV, Frontend, FrontendKey,
    FrontendValue, MaglevKey,
    maglev::{MAGLEV_TABLE_CAPACITY, MAGLEV_TABLE_SIZE},
    stats,
};

use crate::{
    affinity::{self, Client},
    maps::{BACKENDS, Frontends, MAGLEV},
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
/// ClientIP affinity; otherwise by the set's Maglev table for `flow_hash` when the frontend
/// asks for it and has one; otherwise uniformly at random (and remembered under affinity).
#[inline(always)]
pub fn pick(
    frontends: &Frontends,
    key: &FrontendKey,
    client: Client,
    flow_hash: Option<u32>,
) -> Pick {
    let Some(entry) = frontends.get_ptr(key) else {
        return Pick::Pass;
    };
    let entry = Entry(entry);
    let frontend = entry.frontend();
    if frontend.backend_count == 0 {
        return Pick::Reject;
    }
    let sticky = frontend.flags & FRONTEND_FLAG_AFFINITY != 0;
    let affinity_key = affinity::key(client, frontend.service_id);
    if sticky && let Some(backend) = affinity::lookup(&affinity_key, &entry, &frontend) {
        count(stats::AFFINITY_HITS);
        return Pick::To {
            backend,
            flags: frontend.flags,
        };
    }
    let slot = match flow_hash.and_then(|hash| maglev_slot(&frontend, hash)) {
        Some(slot) => slot,
        // SAFETY: a helper without arguments or preconditions.
        None => (unsafe { bpf_get_prandom_u32() }) % frontend.backend_count,
    };
    let Some(backend) = entry.backend(&frontend, slot) else {
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

/// A frontend map entry, read in place: the maps are not preallocated, so the element a
/// lookup returned stays valid and unchanged for the program's run (an update replaces it and
/// frees the old one after an RCU grace period).
pub struct Entry(*const FrontendValue);

impl Entry {
    #[inline(always)]
    pub fn frontend(&self) -> Frontend {
        // SAFETY: see the type: a valid, unchanging map value for this run.
        unsafe { (*self.0).frontend }
    }

    /// The backend at `slot` of `frontend`'s set (this entry's frontend): from the entry's
    /// inline copies when it has them, else from `BACKENDS`.
    #[inline(always)]
    pub fn backend(&self, frontend: &Frontend, slot: u32) -> Option<Backend> {
        // SAFETY: see the type.
        if let Some(inline) = unsafe { (*self.0).backends.get(slot as usize) } {
            return Some(*inline);
        }
        let key = BackendSlotKey {
            service_id: frontend.service_id,
            revision: frontend.revision,
            slot,
        };
        // SAFETY: copied out immediately, before any map update could recycle it.
        (unsafe { BACKENDS.get(&key) }).copied()
    }
}

/// The slot the set's Maglev table gives `hash`, if the frontend uses Maglev and the table
/// exists and is in range.
#[inline(always)]
fn maglev_slot(frontend: &Frontend, hash: u32) -> Option<u32> {
    if frontend.flags & FRONTEND_FLAG_MAGLEV == 0 {
        return None;
    }
    let key = MaglevKey {
        service_id: frontend.service_id,
        revision: frontend.revision,
    };
    let table = MAGLEV.get_ptr(&key)?;
    let index = hash % MAGLEV_TABLE_SIZE as u32;
    // LLVM knows the remainder's range and would drop a plain mask, but the verifier needs to
    // see one: a volatile read hides the range, so the mask stays in the program.
    // SAFETY: reading a local variable.
    let index = unsafe { core::ptr::read_volatile(&index) } as usize & (MAGLEV_TABLE_CAPACITY - 1);
    // SAFETY: the value stays valid for the program's run (RCU); `index` is masked below the
    // array's capacity.
    let slot = u32::from(unsafe { (*table).slots[index] });
    (slot < frontend.backend_count).then_some(slot)
}
