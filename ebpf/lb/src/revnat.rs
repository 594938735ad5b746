//! The reverse-translation record: which frontend a socket dialled before it was redirected.
//!
//! A connected TCP socket has one record in `SOCK_REVNAT`, keyed by its cookie: made by
//! `connect()`, deleted by `sock_release` when the socket goes, never evicted. UDP sockets use
//! the `REVNAT` LRU map keyed by (socket cookie, backend): an unconnected socket talks to many
//! backends, and the daemon reads the map to find the connected UDP sockets it must destroy
//! when a backend goes away.

use aya_ebpf::bindings::BPF_ANY;
use ferry_ebpf_common::{IPPROTO_TCP, RevNatKey, RevNatValue, SockRevNat, stats};

use crate::maps::{REVNAT, SOCK_REVNAT};
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
        // Fails only when the map is full: the connection still goes to the backend, and only
        // getpeername() shows it, so there is nothing to undo.
        if SOCK_REVNAT
            .insert(sa.cookie(), value, u64::from(BPF_ANY))
            .is_err()
        {
            count(stats::SOCK_REVNAT_FULL);
        }
        return;
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
        // SAFETY: the value is copied out immediately, before any map update could recycle it.
        let stored = (unsafe { SOCK_REVNAT.get(sa.cookie()) }).copied()?;
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
    // Most released sockets were never translated: nothing to delete is the common case.
    let _ = SOCK_REVNAT.remove(cookie);
}
