//! The reverse-translation record: which frontend a socket dialled before it was redirected.

use aya_ebpf::bindings::BPF_ANY;
use ferry_ebpf_common::{RevNatKey, RevNatValue};

use crate::maps::REVNAT;

/// An address as the socket sees it: words, network-order port, family.
#[derive(Clone, Copy)]
pub struct Seen {
    pub addr: [u32; 4],
    pub port: u16,
    pub family: u8,
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

/// Remembers that socket `cookie` was sent to `backend` instead of `frontend`.
#[inline(always)]
pub fn record(cookie: u64, backend: Seen, frontend: Seen) {
    let value = RevNatValue {
        addr: frontend.addr,
        port: frontend.port,
        family: frontend.family,
        _pad: 0,
    };
    // A full LRU map evicts, so this only fails on kernel errors; translation still happened
    // and only getpeername()/recvmsg() would show the backend, so there is nothing to undo.
    let _ = REVNAT.insert(key(cookie, backend), value, u64::from(BPF_ANY));
}

/// The frontend socket `cookie` dialled when it reached `backend`, if it was translated.
#[inline(always)]
pub fn lookup(cookie: u64, backend: Seen) -> Option<Seen> {
    // SAFETY: the value is copied out immediately, before any map update could recycle it.
    let value = (unsafe { REVNAT.get(key(cookie, backend)) }).copied()?;
    Some(Seen {
        addr: value.addr,
        port: value.port,
        family: value.family,
    })
}
