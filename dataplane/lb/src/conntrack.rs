//! Flushing the tc path's flow table (`CT_FWD` / `CT_REV`, written by BPF).
//!
//! Every packet of a tracked flow keeps going to the flow's backend, also after the backend
//! left the service. For TCP that only prolongs a doomed connection, but a UDP "flow" (a client
//! address and port) never ends by itself, so when a UDP backend goes away its flows must be
//! forgotten, as kube-proxy deletes their kernel conntrack entries: the next datagram is then
//! a new flow and picks a current backend.

use std::net::SocketAddr;

use aya::{
    Ebpf,
    maps::{HashMap, MapError},
};

use crate::{
    LbError,
    common::{
        Backend, CT_FLAG_SNAT, CtForward, CtKey, CtReverse,
        maps::{CT_FWD, CT_REV},
    },
};

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
                reverse_keys.push(reverse_key(&key, &flow));
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

/// The `CT_REV` key of the flow `key` → `flow`: the backend's reply to the client, or to the
/// SNAT address and port for a masqueraded flow.
fn reverse_key(key: &CtKey, flow: &CtForward) -> CtKey {
    let (dst_addr, dst_port) = if flow.flags & CT_FLAG_SNAT != 0 {
        (flow.snat_addr, flow.snat_port)
    } else {
        (key.src_addr, key.src_port)
    };
    CtKey {
        src_addr: flow.backend_addr,
        dst_addr,
        src_port: flow.backend_port,
        dst_port,
        family: key.family,
        proto: key.proto,
        _pad: [0; 2],
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{AF_INET, IPPROTO_UDP};

    fn words(ip: &str) -> [u32; 4] {
        crate::common::addr::ip_words(ip.parse().unwrap()).1
    }

    #[test]
    fn reverse_keys_answer_the_client_or_the_snat_source() {
        let key = CtKey {
            src_addr: words("192.0.2.7"),
            dst_addr: words("192.0.2.1"),
            src_port: 40_000_u16.to_be(),
            dst_port: 30_080_u16.to_be(),
            family: AF_INET,
            proto: IPPROTO_UDP,
            _pad: [0; 2],
        };
        let mut flow = CtForward {
            backend_addr: words("10.0.0.5"),
            snat_addr: [0; 4],
            backend_port: 8080_u16.to_be(),
            snat_port: 0,
            flags: 0,
            _pad: [0; 3],
        };
        let direct = reverse_key(&key, &flow);
        assert_eq!(
            (direct.src_addr, direct.src_port),
            (flow.backend_addr, flow.backend_port)
        );
        assert_eq!(
            (direct.dst_addr, direct.dst_port),
            (key.src_addr, key.src_port)
        );

        flow.flags = CT_FLAG_SNAT;
        flow.snat_addr = words("192.0.2.1");
        flow.snat_port = 61_234_u16.to_be();
        let masqueraded = reverse_key(&key, &flow);
        assert_eq!(
            (masqueraded.dst_addr, masqueraded.dst_port),
            (flow.snat_addr, flow.snat_port)
        );
        assert_eq!(
            (masqueraded.family, masqueraded.proto),
            (AF_INET, IPPROTO_UDP)
        );
    }
}
