//! The tc path's flow table (`CT_FWD` / `CT_REV`) and its lifetimes; see
//! `ferry_ebpf_common::conntrack`.
//!
//! Entries are updated in place (`get_ptr_mut`): a refresh stores the state byte and the
//! `expires` word of both entries of a flow, racing only with refreshes of the same flow on
//! other CPUs, which write the same or a newer value.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_NOEXIST},
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
};
use ferry_ebpf_common::{
    Backend, CT_FLAG_SNAT, CtConfig, CtForward, CtKey, CtReverse,
    conntrack::{CT_STATE_MASK, advance, is_dead, reopens},
    stats,
};

use crate::{
    maps::{CT_CONFIG, CT_FWD, CT_REV},
    packet::Packet,
    stats::count,
};

/// Random SNAT ports tried before a new masqueraded flow is given up (and dropped).
const SNAT_PORT_TRIES: u32 = 16;

/// The packet's own direction as a key: `CT_FWD` for a client's packet, `CT_REV` for a
/// backend's reply.
#[inline(always)]
pub fn key_of(pkt: &Packet) -> CtKey {
    CtKey {
        src_addr: pkt.src,
        dst_addr: pkt.dst,
        src_port: pkt.sport,
        dst_port: pkt.dport,
        family: pkt.family,
        proto: pkt.proto,
        _pad: [0; 2],
    }
}

/// Whole seconds of `CLOCK_MONOTONIC`, the clock of `expires`.
#[inline(always)]
fn now() -> u32 {
    // SAFETY: a helper without arguments or preconditions.
    (unsafe { bpf_ktime_get_ns() } / 1_000_000_000) as u32
}

/// Userspace's settings (all defaults until it writes some).
#[inline(always)]
fn config() -> CtConfig {
    CT_CONFIG.get(0).copied().unwrap_or_default()
}

/// Whether `port` (host byte order) is one of the SNAT pool's, read in place from the settings.
#[inline(always)]
pub fn is_snat_port(port: u16) -> bool {
    match CT_CONFIG.get(0) {
        Some(config) => config.is_snat_port(port),
        None => CtConfig::default().is_snat_port(port),
    }
}

/// The lifetime of a flow of `proto` with state `flags`, read in place from the settings.
#[inline(always)]
fn lifetime(proto: u8, flags: u8) -> u32 {
    match CT_CONFIG.get(0) {
        Some(config) => config.lifetime(proto, flags),
        None => CtConfig::default().lifetime(proto, flags),
    }
}

/// Writes to `flow` the live flow the client's packet `pkt` belongs to and returns 1; the
/// packet extends its lifetime. Returns 0 if there is none: a dead flow (past its lifetime, or
/// closing and reopened by a SYN) is removed (both entries), and the packet starts a new flow.
/// Not inlined (see `nodeport_ingress`).
#[inline(never)]
pub fn forward(pkt: &Packet, flow: &mut CtForward) -> u32 {
    let key = key_of(pkt);
    let Some(entry) = CT_FWD.get_ptr_mut(&key) else {
        return 0;
    };
    // SAFETY: the value stays valid for the program's run (RCU); it is copied before use.
    *flow = unsafe { *entry };
    let now = now();
    if is_dead(flow.expires, now) || reopens(flow.flags, pkt.proto, pkt.tcp_flags) {
        forget_forward(&key, flow);
        return 0;
    }
    let flags = advance(flow.flags, pkt.proto, pkt.tcp_flags);
    let expires = now.wrapping_add(lifetime(pkt.proto, flags));
    if flags != flow.flags || expires > flow.expires {
        // SAFETY: as above; plain stores into the entry (see the module docs).
        unsafe {
            (*entry).flags = flags;
            (*entry).expires = expires;
        }
        refresh_reply(&key, flow, flags, expires);
    }
    1
}

/// The live flow a backend's reply `pkt` (key `key`) belongs to, if it is `masqueraded` (or
/// not); the packet extends its lifetime. `None` for a dead flow: the reply is not translated.
#[inline(always)]
pub fn reverse(key: &CtKey, pkt: &Packet, masqueraded: bool) -> Option<CtReverse> {
    let entry = CT_REV.get_ptr_mut(key)?;
    // SAFETY: the value stays valid for the program's run (RCU); it is copied before use.
    let flow = unsafe { *entry };
    let now = now();
    if (flow.flags & CT_FLAG_SNAT != 0) != masqueraded || is_dead(flow.expires, now) {
        return None;
    }
    let flags = advance(flow.flags, pkt.proto, pkt.tcp_flags);
    let expires = now.wrapping_add(lifetime(pkt.proto, flags));
    if flags != flow.flags || expires > flow.expires {
        // SAFETY: as above; plain stores into the entry (see the module docs).
        unsafe {
            (*entry).flags = flags;
            (*entry).expires = expires;
        }
        refresh_forward(key, &flow, flags, expires);
    }
    Some(flow)
}

/// Creates the flow of the client's packet `pkt` to `backend`, masqueraded to `snat_addr` if
/// given (a free source port is picked, or a dead flow's taken over), and writes its forward
/// entry to `flow` (another CPU's, if it created the same flow first). Returns 1, or 0 if no
/// SNAT port was free or the maps failed. Not inlined (see `nodeport_ingress`).
#[inline(never)]
pub fn create(
    pkt: &Packet,
    backend: &Backend,
    snat_addr: Option<&[u32; 4]>,
    flow: &mut CtForward,
) -> u32 {
    let now = now();
    let config = config();
    let mut flags = advance(0, pkt.proto, pkt.tcp_flags);
    if snat_addr.is_some() {
        flags |= CT_FLAG_SNAT;
    }
    let expires = now.wrapping_add(config.lifetime(pkt.proto, flags));
    let mut rev_key = CtKey {
        src_addr: backend.addr,
        dst_addr: pkt.src,
        src_port: backend.port,
        dst_port: pkt.sport,
        family: pkt.family,
        proto: pkt.proto,
        _pad: [0; 2],
    };
    let reverse = CtReverse {
        client_addr: pkt.src,
        frontend_addr: pkt.dst,
        client_port: pkt.sport,
        frontend_port: pkt.dport,
        flags,
        _pad: [0; 3],
        expires,
    };
    *flow = CtForward {
        backend_addr: backend.addr,
        snat_addr: [0; 4],
        backend_port: backend.port,
        snat_port: 0,
        flags,
        _pad: [0; 3],
        expires,
    };
    match snat_addr {
        // A reused client port replaces the old flow's reply entry.
        None => {
            if CT_REV
                .insert(&rev_key, &reverse, u64::from(BPF_ANY))
                .is_err()
            {
                return 0;
            }
        }
        Some(addr) => {
            rev_key.dst_addr = *addr;
            let Some(port) = reserve_snat_port(&mut rev_key, &reverse, &config, now) else {
                return 0;
            };
            flow.snat_port = port;
            flow.snat_addr = *addr;
        }
    }
    let fwd_key = key_of(pkt);
    if CT_FWD
        .insert(&fwd_key, &*flow, u64::from(BPF_NOEXIST))
        .is_err()
    {
        // Another CPU created this flow first (a retransmitted first packet): follow it.
        if snat_addr.is_some() {
            let _ = CT_REV.remove(&rev_key);
        }
        // SAFETY: copied out immediately.
        let Some(theirs) = (unsafe { CT_FWD.get(&fwd_key) }).copied() else {
            return 0;
        };
        *flow = theirs;
        return 1;
    }
    count(stats::CT_CREATED);
    1
}

/// Claims a SNAT port for the reply key `rev_key` (its `dst_port` is set to it) by inserting
/// `reverse` where no live flow holds the port. Of [`SNAT_PORT_TRIES`] random ports it takes
/// the first free one; failing that, the one whose flow died longest ago (its entries are
/// removed first). Returns the port (network byte order).
///
/// Why not any dead port: a backend that closed a connection first keeps it in TIME_WAIT
/// (60 s on Linux) and answers a SYN reusing its ports with an ACK unless the SYN's timestamp
/// is newer (clients randomise timestamp offsets per connection), which costs the new client
/// a SYN retransmission (1 s). The longer a port's flow has been dead, the less likely that is.
#[inline(always)]
fn reserve_snat_port(
    rev_key: &mut CtKey,
    reverse: &CtReverse,
    config: &CtConfig,
    now: u32,
) -> Option<u16> {
    // Never zero (the `max` lets the compiler see it, so no division check remains).
    let span = config.snat_port_span().max(1);
    let first = config.snat_port_first();
    let (mut oldest_port, mut oldest_death) = (0, u32::MAX);
    for _ in 0..SNAT_PORT_TRIES {
        // SAFETY: a helper without arguments or preconditions.
        let offset = unsafe { bpf_get_prandom_u32() } % span;
        // `offset < span`, and `first + span - 1 <= 65535`: the port stays in the pool.
        rev_key.dst_port = first.wrapping_add(offset as u16).to_be();
        if CT_REV
            .insert(&*rev_key, reverse, u64::from(BPF_NOEXIST))
            .is_ok()
        {
            return Some(rev_key.dst_port);
        }
        if let Some(holder) = CT_REV.get_ptr(&*rev_key) {
            // SAFETY: the value stays valid for the program's run (RCU); a plain load.
            let death = unsafe { (*holder).expires };
            if is_dead(death, now) && death < oldest_death {
                (oldest_port, oldest_death) = (rev_key.dst_port, death);
            }
        }
    }
    if oldest_death == u32::MAX {
        return None;
    }
    rev_key.dst_port = oldest_port;
    if reclaim(rev_key, now) != 0
        && CT_REV
            .insert(&*rev_key, reverse, u64::from(BPF_NOEXIST))
            .is_ok()
    {
        return Some(oldest_port);
    }
    None
}

// The functions below are not inlined (BPF-to-BPF calls): they build keys of their own, and
// in frames of their own those stay off `nodeport_ingress`'s stack, which is near the 512-byte
// limit. Each returns a scalar (a subprogram must set R0).

/// Extends the reply entry of the flow `key` → `flow` to `flags` and `expires`, unless the
/// entry now belongs to another flow. Returns 1 if it did.
#[inline(never)]
fn refresh_reply(key: &CtKey, flow: &CtForward, flags: u8, expires: u32) -> u32 {
    let reply_key = key.reply_key(flow);
    let Some(entry) = CT_REV.get_ptr_mut(&reply_key) else {
        return 0;
    };
    // SAFETY: the value stays valid for the program's run (RCU); plain loads and stores.
    unsafe {
        if !(*entry).tracks(key) {
            return 0;
        }
        (*entry).flags |= flags & CT_STATE_MASK;
        (*entry).expires = expires;
    }
    1
}

/// Extends the forward entry of the flow `reply_key` → `flow` to `flags` and `expires`,
/// unless the client's tuple now belongs to another flow. Returns 1 if it did.
#[inline(never)]
fn refresh_forward(reply_key: &CtKey, flow: &CtReverse, flags: u8, expires: u32) -> u32 {
    let forward_key = flow.forward_key(reply_key);
    let Some(entry) = CT_FWD.get_ptr_mut(&forward_key) else {
        return 0;
    };
    // SAFETY: as in `refresh_reply`.
    unsafe {
        if !(*entry).replies_at(&forward_key, reply_key) {
            return 0;
        }
        (*entry).flags |= flags & CT_STATE_MASK;
        (*entry).expires = expires;
    }
    1
}

/// Removes the dead flow `key` → `flow`: its forward entry, and its reply entry unless that
/// now belongs to another flow. Returns 1.
#[inline(never)]
fn forget_forward(key: &CtKey, flow: &CtForward) -> u32 {
    let reply_key = key.reply_key(flow);
    // SAFETY: the value stays valid for the program's run (RCU); plain loads.
    if let Some(entry) = CT_REV.get_ptr(&reply_key)
        && unsafe { (*entry).tracks(key) }
    {
        let _ = CT_REV.remove(&reply_key);
    }
    let _ = CT_FWD.remove(key);
    count(stats::CT_EXPIRED);
    1
}

/// Removes the flow holding the reply key `rev_key` if it is dead at `now`: its reply entry,
/// and its forward entry unless the client's tuple now belongs to another flow. Returns 1 if
/// it did, freeing the key's SNAT port.
///
/// Two CPUs reclaiming the same port at the same instant may both succeed (one removing the
/// other's fresh entry between its check and its removal); that takes two new flows to one
/// backend drawing the same dead port within a few instructions of each other.
#[inline(never)]
fn reclaim(rev_key: &CtKey, now: u32) -> u32 {
    let Some(holder) = CT_REV.get_ptr(rev_key) else {
        return 0;
    };
    // SAFETY: the value stays valid for the program's run (RCU); plain loads.
    let (expires, forward_key) = unsafe { ((*holder).expires, (*holder).forward_key(rev_key)) };
    if !is_dead(expires, now) {
        return 0;
    }
    // SAFETY: as above.
    if let Some(entry) = CT_FWD.get_ptr(&forward_key)
        && unsafe { (*entry).replies_at(&forward_key, rev_key) }
    {
        let _ = CT_FWD.remove(&forward_key);
    }
    let _ = CT_REV.remove(rev_key);
    count(stats::CT_EXPIRED);
    1
}
