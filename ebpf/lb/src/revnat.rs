//! The reverse-translation record: which frontend a socket dialled before it was redirected.
//!
//! A connected TCP socket keeps its record in the `REVNAT_SLOTS` slot of its cookie, claimed
//! by `connect()` and freed by `sock_release` when the socket goes; when another live socket
//! holds that slot, in `SOCK_REVNAT` under its cookie. UDP sockets use the `REVNAT` LRU map
//! keyed by (socket cookie, backend): an unconnected socket talks to many backends, and the
//! daemon reads the map to find the connected UDP sockets it must destroy when a backend goes
//! away.

use core::{
    intrinsics::{AtomicOrdering, atomic_cxchg},
    ptr::{addr_of, addr_of_mut, read_volatile, write_volatile},
};

use aya_ebpf::bindings::BPF_ANY;
use ferry_ebpf_common::{
    IPPROTO_TCP, RevNatKey, RevNatSlot, RevNatValue, SockRevNat, maps::REVNAT_SLOTS_ENTRIES, stats,
};

use crate::maps::{REVNAT, REVNAT_SLOTS, SOCK_REVNAT};
use crate::sock_addr::SockAddr;
use crate::stats::count;

/// An address as the socket sees it: words, network-order port, family.
#[derive(Clone, Copy)]
pub struct Seen {
    pub addr: [u32; 4],
    pub port: u16,
    pub family: u8,
}

impl Seen {
    #[inline(always)]
    fn value(self) -> RevNatValue {
        RevNatValue {
            addr: self.addr,
            port: self.port,
            family: self.family,
            _pad: 0,
        }
    }

    #[inline(always)]
    fn from_value(value: &RevNatValue) -> Self {
        Self {
            addr: value.addr,
            port: value.port,
            family: value.family,
        }
    }
}

#[inline(always)]
fn key(cookie: u64, backend: Seen) -> RevNatKey {
    RevNatKey {
        cookie,
        addr: backend.addr,
        port: backend.port,
        family: backend.family,
        _pad: [0; 5],
    }
}

/// Remembers that the socket of `sa` was sent to `backend` instead of `frontend`.
#[inline(always)]
pub fn record(sa: &SockAddr<'_>, backend: Seen, frontend: Seen) {
    if sa.protocol() == IPPROTO_TCP {
        let value = SockRevNat {
            backend: backend.value(),
            frontend: frontend.value(),
        };
        let cookie = sa.cookie();
        if let Some(slot) = slot(cookie) {
            // SAFETY: an array element, valid for the run and 8-byte aligned; its cookie word is
            // only ever changed atomically from 0 (claim) or by its owner (free). The target has
            // no `AtomicU64::compare_exchange` (rustc lists no CAS for BPF), but the kernel
            // has the instruction (BPF_CMPXCHG), which the intrinsic lowers to.
            let (held, claimed) = unsafe {
                atomic_cxchg::<u64, { AtomicOrdering::Acquire }, { AtomicOrdering::Relaxed }>(
                    addr_of_mut!((*slot).cookie),
                    0,
                    cookie,
                )
            };
            // A socket connecting again keeps its slot.
            if !claimed && held != cookie {
                return spill(cookie, value);
            }
            // SAFETY: as above; the slot is this socket's until its release.
            unsafe { (*slot).record = value };
            return;
        }
        return spill(cookie, value);
    }
    // A full LRU map evicts, so this only fails on kernel errors; translation still happened
    // and only getpeername()/recvmsg() would show the backend, so there is nothing to undo.
    let _ = REVNAT.insert(
        key(sa.cookie(), backend),
        frontend.value(),
        u64::from(BPF_ANY),
    );
}

/// The frontend the socket of `sa` dialled when it reached `backend`, if it was translated.
#[inline(always)]
pub fn lookup(sa: &SockAddr<'_>, backend: Seen) -> Option<Seen> {
    if sa.protocol() == IPPROTO_TCP {
        let cookie = sa.cookie();
        let stored = match slot(cookie) {
            // SAFETY: an array element, valid for the run; a slot holding this socket's cookie
            // is this socket's, and nothing else writes it meanwhile.
            Some(slot) if unsafe { read_volatile(addr_of!((*slot).cookie)) } == cookie => unsafe {
                (*slot).record
            },
            // SAFETY: the value is copied out immediately, before any update could recycle it.
            _ => (unsafe { SOCK_REVNAT.get(cookie) }).copied()?,
        };
        let seen = Seen::from_value(&stored.backend);
        if seen.addr != backend.addr || seen.port != backend.port || seen.family != backend.family {
            return None;
        }
        return Some(Seen::from_value(&stored.frontend));
    }
    // SAFETY: the value is copied out immediately, before any map update could recycle it.
    let value = (unsafe { REVNAT.get(key(sa.cookie(), backend)) }).copied()?;
    Some(Seen::from_value(&value))
}

/// Forgets the record of the TCP socket with `cookie`, which is being released.
#[inline(always)]
pub fn forget(cookie: u64) {
    if let Some(slot) = slot(cookie) {
        // SAFETY: as in `record`: only the owner frees its slot, with one aligned 8-byte store
        // (single-copy atomic; the owner writes nothing after it, so it needs no ordering).
        unsafe {
            let owner = addr_of_mut!((*slot).cookie);
            if read_volatile(owner) == cookie {
                write_volatile(owner, 0);
                return;
            }
        }
    }
    // Most released sockets were never translated: nothing to delete is the common case.
    let _ = SOCK_REVNAT.remove(cookie);
}

/// The `REVNAT_SLOTS` slot of the socket with `cookie`.
#[inline(always)]
fn slot(cookie: u64) -> Option<*mut RevNatSlot> {
    // The entry count is a power of two: the mask is the remainder.
    REVNAT_SLOTS.get_ptr_mut((cookie as u32) & (REVNAT_SLOTS_ENTRIES - 1))
}

/// Keeps the record of a socket whose slot another live socket holds in `SOCK_REVNAT`.
#[inline(always)]
fn spill(cookie: u64, value: SockRevNat) {
    // An LRU map makes room, so this fails only on kernel errors: the connection still goes to
    // the backend, and only getpeername() shows it, so there is nothing to undo.
    if SOCK_REVNAT
        .insert(cookie, value, u64::from(BPF_ANY))
        .is_err()
    {
        count(stats::SOCK_REVNAT_FAILED);
    }
}
