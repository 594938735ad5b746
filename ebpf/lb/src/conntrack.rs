//! The tc path's flow table (`CT_FWD` / `CT_REV`); see `ferry_ebpf_common::conntrack`.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_NOEXIST},
    helpers::bpf_get_prandom_u32,
};
use ferry_ebpf_common::{
    Backend, CT_FLAG_SNAT, CtForward, CtKey, CtReverse,
    conntrack::{SNAT_PORT_MAX, SNAT_PORT_MIN},
    stats,
};

use crate::{
    maps::{CT_FWD, CT_REV},
    packet::Packet,
    stats::count,
};

/// Random SNAT ports tried before a new masqueraded flow is given up (and dropped).
const SNAT_PORT_TRIES: u32 = 16;
const SNAT_PORT_SPAN: u32 = (SNAT_PORT_MAX - SNAT_PORT_MIN) as u32 + 1;

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

/// The flow a client's packet belongs to.
#[inline(always)]
pub fn forward(key: &CtKey) -> Option<CtForward> {
    // SAFETY: copied out immediately, before any map update could recycle the value.
    (unsafe { CT_FWD.get(key) }).copied()
}

/// The flow a backend's reply belongs to.
#[inline(always)]
pub fn reverse(key: &CtKey) -> Option<CtReverse> {
    // SAFETY: as in `forward`.
    (unsafe { CT_REV.get(key) }).copied()
}

/// Creates the flow of the client's packet `pkt` (forward key `fwd_key`) to `backend`,
/// masqueraded to `snat_addr` if given (a free source port is picked). Returns the forward
/// entry to apply, which is another CPU's if it created the same flow first; `None` if no SNAT
/// port was free or the maps failed.
#[inline(always)]
pub fn create(
    pkt: &Packet,
    fwd_key: &CtKey,
    backend: &Backend,
    snat_addr: Option<[u32; 4]>,
) -> Option<CtForward> {
    let mut rev_key = CtKey {
        src_addr: backend.addr,
        dst_addr: pkt.src,
        src_port: backend.port,
        dst_port: pkt.sport,
        family: pkt.family,
        proto: pkt.proto,
        _pad: [0; 2],
    };
    let mut reverse = CtReverse {
        client_addr: pkt.src,
        frontend_addr: pkt.dst,
        client_port: pkt.sport,
        frontend_port: pkt.dport,
        flags: 0,
        _pad: [0; 3],
    };
    let mut forward_entry = CtForward {
        backend_addr: backend.addr,
        snat_addr: [0; 4],
        backend_port: backend.port,
        snat_port: 0,
        flags: 0,
        _pad: [0; 3],
    };
    match snat_addr {
        // A reused client port replaces the old flow's reply entry.
        None => CT_REV.insert(&rev_key, &reverse, u64::from(BPF_ANY)).ok()?,
        Some(addr) => {
            rev_key.dst_addr = addr;
            reverse.flags = CT_FLAG_SNAT;
            forward_entry.snat_port = reserve_snat_port(&mut rev_key, &reverse)?;
            forward_entry.snat_addr = addr;
            forward_entry.flags = CT_FLAG_SNAT;
        }
    }
    if CT_FWD
        .insert(fwd_key, &forward_entry, u64::from(BPF_NOEXIST))
        .is_err()
    {
        // Another CPU created this flow first (a retransmitted first packet): follow it.
        if snat_addr.is_some() {
            let _ = CT_REV.remove(&rev_key);
        }
        return forward(fwd_key);
    }
    count(stats::CT_CREATED);
    Some(forward_entry)
}

/// Claims a random SNAT port for the reply key `rev_key` (its `dst_port` is set to it) by
/// inserting `reverse` only where no flow holds that port yet. Returns the port (network
/// byte order).
#[inline(always)]
fn reserve_snat_port(rev_key: &mut CtKey, reverse: &CtReverse) -> Option<u16> {
    for _ in 0..SNAT_PORT_TRIES {
        // SAFETY: a helper without arguments or preconditions.
        let offset = unsafe { bpf_get_prandom_u32() } % SNAT_PORT_SPAN;
        // `offset < SNAT_PORT_SPAN`, so this stays within SNAT_PORT_MIN..=SNAT_PORT_MAX.
        rev_key.dst_port = SNAT_PORT_MIN.wrapping_add(offset as u16).to_be();
        if CT_REV
            .insert(&*rev_key, reverse, u64::from(BPF_NOEXIST))
            .is_ok()
        {
            return Some(rev_key.dst_port);
        }
    }
    None
}
