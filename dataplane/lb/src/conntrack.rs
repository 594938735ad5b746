//! The tc path's flow table (`CT_FWD` / `CT_REV`, written by BPF) from userspace: its settings,
//! flushing the flows of a removed backend, and sweeping expired flows ([`CtSweeper`]).
//!
//! Every packet of a tracked flow keeps going to the flow's backend, also after the backend
//! left the service. For TCP that only prolongs a doomed connection, but a UDP "flow" (a client
//! address and port) lives as long as it keeps sending, so when a UDP backend goes away its
//! flows must be forgotten, as kube-proxy deletes their kernel conntrack entries: the next
//! datagram is then a new flow and picks a current backend.
//!
//! Flows die by themselves once idle past their lifetime (see
//! [`ferry_ebpf_common::conntrack`]); the datapath then ignores them and reuses their SNAT
//! ports, and the sweeper removes what is left so the LRU maps never evict a live flow for a
//! dead one.

mod next_key;
mod sweep;

pub use sweep::CtSweeper;

use std::net::SocketAddr;

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapError},
};
use nix::time::{ClockId, clock_gettime};

use crate::{
    LbError,
    common::{
        Backend, CtConfig, CtForward, CtKey, CtReverse,
        maps::{CT_CONFIG, CT_FWD, CT_REV},
    },
};

/// Now on the datapath's clock: whole seconds of `CLOCK_MONOTONIC` (`bpf_ktime_get_ns`), the
/// unit of `CtForward::expires` / `CtReverse::expires`.
pub fn conntrack_now() -> u32 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| u32::try_from(t.tv_sec()).unwrap_or(u32::MAX))
}

/// Writes the conntrack settings (`CT_CONFIG`) of `ebpf`: lifetimes and SNAT pool size; zero
/// fields take the defaults.
pub fn configure_conntrack(ebpf: &mut Ebpf, config: &CtConfig) -> Result<(), LbError> {
    let map = ebpf
        .map_mut(CT_CONFIG)
        .ok_or(LbError::MapMissing { map: CT_CONFIG })?;
    let mut array: Array<_, CtConfig> =
        Array::try_from(map).map_err(|e| map_error(CT_CONFIG, "open", e))?;
    array
        .set(0, config, 0)
        .map_err(|e| map_error(CT_CONFIG, "insert", e))
}

/// Deletes every tc flow of L4 protocol `proto` to `backend` (both entries of each) from the
/// maps of `ebpf`; returns how many flows there were.
pub fn forget_flows_to(ebpf: &mut Ebpf, backend: SocketAddr, proto: u8) -> Result<usize, LbError> {
    let target = Backend::new(backend);
    let mut reverse_keys = Vec::new();
    {
        let map = ebpf
            .map_mut(CT_FWD)
            .ok_or(LbError::MapMissing { map: CT_FWD })?;
        let mut forward: HashMap<_, CtKey, CtForward> =
            HashMap::try_from(map).map_err(|e| map_error(CT_FWD, "open", e))?;
        let mut stale = Vec::new();
        for entry in forward.iter() {
            // An entry deleted under the iteration (LRU eviction) ends it early at worst.
            let Ok((key, flow)) = entry else { break };
            if key.proto == proto
                && key.family == target.family
                && flow.backend_addr == target.addr
                && flow.backend_port == target.port
            {
                stale.push(key);
                reverse_keys.push(key.reply_key(&flow));
            }
        }
        for key in &stale {
            absent_is_ok(forward.remove(key)).map_err(|e| map_error(CT_FWD, "remove", e))?;
        }
    }
    let map = ebpf
        .map_mut(CT_REV)
        .ok_or(LbError::MapMissing { map: CT_REV })?;
    let mut reverse: HashMap<_, CtKey, CtReverse> =
        HashMap::try_from(map).map_err(|e| map_error(CT_REV, "open", e))?;
    for key in &reverse_keys {
        absent_is_ok(reverse.remove(key)).map_err(|e| map_error(CT_REV, "remove", e))?;
    }
    Ok(reverse_keys.len())
}

fn absent_is_ok(result: Result<(), MapError>) -> Result<(), MapError> {
    match result {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.kind() == std::io::ErrorKind::NotFound => {
            Ok(())
        }
        other => other,
    }
}

fn map_error(map: &'static str, action: &'static str, source: MapError) -> LbError {
    LbError::Map {
        map,
        action,
        source: Box::new(source),
    }
}
