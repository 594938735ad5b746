//! [`MapWriter`]: the seam between "what the maps should contain" and the kernel maps.

use std::{collections::BTreeMap, fmt, io};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, MapError},
};

use crate::{
    LbError,
    common::{
        Backend, BackendSlotKey, FrontendKey, FrontendValue, MaglevKey, MaglevTable, NodeAddrs,
        maps::{BACKENDS, EXT_FRONTENDS, FRONTENDS, MAGLEV, NODE_ADDRS},
    },
};

/// Writes the userspace-owned LB maps, one entry at a time.
///
/// Each call is one map update, which BPF sees atomically; ordering several calls into a
/// consistent change (backends of a new revision first, then the frontend, then deleting the
/// old revision) is the caller's job.
pub trait MapWriter {
    /// Inserts or replaces a socket-scope frontend (`FRONTENDS`, the cgroup hooks).
    fn put_frontend(&mut self, key: &FrontendKey, value: &FrontendValue) -> Result<(), LbError>;
    /// Removes a socket-scope frontend; removing an absent key is not an error.
    fn delete_frontend(&mut self, key: &FrontendKey) -> Result<(), LbError>;
    /// Inserts or replaces a packet-scope frontend (`EXT_FRONTENDS`, the tc programs): a
    /// NodePort on a node address, an externalIP or a LoadBalancer IP, as reached from outside.
    fn put_ext_frontend(&mut self, key: &FrontendKey, value: &FrontendValue)
    -> Result<(), LbError>;
    /// Removes a packet-scope frontend; removing an absent key is not an error.
    fn delete_ext_frontend(&mut self, key: &FrontendKey) -> Result<(), LbError>;
    /// Inserts or replaces a backend slot.
    fn put_backend(&mut self, key: &BackendSlotKey, value: &Backend) -> Result<(), LbError>;
    /// Removes a backend slot; removing an absent key is not an error.
    fn delete_backend(&mut self, key: &BackendSlotKey) -> Result<(), LbError>;
    /// Sets the node's own addresses (`NODE_ADDRS`), the source of masqueraded tc flows.
    fn put_node_addrs(&mut self, value: &NodeAddrs) -> Result<(), LbError>;
    /// Inserts or replaces the Maglev table of a backend set revision (`MAGLEV`).
    fn put_maglev(&mut self, key: &MaglevKey, value: &MaglevTable) -> Result<(), LbError>;
    /// Removes a Maglev table; removing an absent key is not an error.
    fn delete_maglev(&mut self, key: &MaglevKey) -> Result<(), LbError>;
}

/// [`MapWriter`] over the kernel maps of a loaded object.
pub struct AyaMaps {
    frontends: HashMap<MapData, FrontendKey, FrontendValue>,
    ext_frontends: HashMap<MapData, FrontendKey, FrontendValue>,
    backends: HashMap<MapData, BackendSlotKey, Backend>,
    node_addrs: Array<MapData, NodeAddrs>,
    maglev: HashMap<MapData, MaglevKey, MaglevTable>,
}

impl AyaMaps {
    /// Takes ownership of the userspace-written maps (`FRONTENDS`, `EXT_FRONTENDS`,
    /// `BACKENDS`, `NODE_ADDRS`) out of `ebpf`.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, LbError> {
        let node_addrs = ebpf
            .take_map(NODE_ADDRS)
            .ok_or(LbError::MapMissing { map: NODE_ADDRS })?;
        Ok(Self {
            frontends: take_hash_map(ebpf, FRONTENDS)?,
            ext_frontends: take_hash_map(ebpf, EXT_FRONTENDS)?,
            backends: take_hash_map(ebpf, BACKENDS)?,
            maglev: take_hash_map(ebpf, MAGLEV)?,
            node_addrs: Array::try_from(node_addrs)
                .map_err(|e| map_error(NODE_ADDRS, "open", e))?,
        })
    }
}

impl fmt::Debug for AyaMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // aya's `Array` has no `Debug`; the maps' identities are their names anyway.
        f.debug_struct("AyaMaps")
            .field("frontends", &self.frontends)
            .field("ext_frontends", &self.ext_frontends)
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

fn take_hash_map<K: aya::Pod, V: aya::Pod>(
    ebpf: &mut Ebpf,
    map: &'static str,
) -> Result<HashMap<MapData, K, V>, LbError> {
    let taken = ebpf.take_map(map).ok_or(LbError::MapMissing { map })?;
    HashMap::try_from(taken).map_err(|e| map_error(map, "open", e))
}

pub(crate) fn map_error(map: &'static str, action: &'static str, source: MapError) -> LbError {
    LbError::Map {
        map,
        action,
        source: Box::new(source),
    }
}

/// A delete of an absent key fails with `ENOENT`; for a "make it absent" operation that is done.
fn absent_is_ok(result: Result<(), MapError>) -> Result<(), MapError> {
    match result {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl MapWriter for AyaMaps {
    fn put_frontend(&mut self, key: &FrontendKey, value: &FrontendValue) -> Result<(), LbError> {
        self.frontends
            .insert(key, value, 0)
            .map_err(|e| map_error(FRONTENDS, "insert", e))
    }

    fn delete_frontend(&mut self, key: &FrontendKey) -> Result<(), LbError> {
        absent_is_ok(self.frontends.remove(key)).map_err(|e| map_error(FRONTENDS, "remove", e))
    }

    fn put_ext_frontend(
        &mut self,
        key: &FrontendKey,
        value: &FrontendValue,
    ) -> Result<(), LbError> {
        self.ext_frontends
            .insert(key, value, 0)
            .map_err(|e| map_error(EXT_FRONTENDS, "insert", e))
    }

    fn delete_ext_frontend(&mut self, key: &FrontendKey) -> Result<(), LbError> {
        absent_is_ok(self.ext_frontends.remove(key))
            .map_err(|e| map_error(EXT_FRONTENDS, "remove", e))
    }

    fn put_backend(&mut self, key: &BackendSlotKey, value: &Backend) -> Result<(), LbError> {
        self.backends
            .insert(key, value, 0)
            .map_err(|e| map_error(BACKENDS, "insert", e))
    }

    fn delete_backend(&mut self, key: &BackendSlotKey) -> Result<(), LbError> {
        absent_is_ok(self.backends.remove(key)).map_err(|e| map_error(BACKENDS, "remove", e))
    }

    fn put_node_addrs(&mut self, value: &NodeAddrs) -> Result<(), LbError> {
        self.node_addrs
            .set(0, value, 0)
            .map_err(|e| map_error(NODE_ADDRS, "insert", e))
    }

    fn put_maglev(&mut self, key: &MaglevKey, value: &MaglevTable) -> Result<(), LbError> {
        self.maglev
            .insert(key, value, 0)
            .map_err(|e| map_error(MAGLEV, "insert", e))
    }

    fn delete_maglev(&mut self, key: &MaglevKey) -> Result<(), LbError> {
        absent_is_ok(self.maglev.remove(key)).map_err(|e| map_error(MAGLEV, "remove", e))
    }
}

/// In-memory [`MapWriter`] for tests of the sync logic: the maps are plain fields to assert on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FakeMaps {
    /// Contents of `FRONTENDS`.
    pub frontends: BTreeMap<FrontendKey, FrontendValue>,
    /// Contents of `EXT_FRONTENDS`.
    pub ext_frontends: BTreeMap<FrontendKey, FrontendValue>,
    /// Contents of `BACKENDS`.
    pub backends: BTreeMap<BackendSlotKey, Backend>,
    /// Contents of `NODE_ADDRS` (all zero until set, like the kernel array).
    pub node_addrs: NodeAddrs,
    /// Contents of `MAGLEV`.
    pub maglev: BTreeMap<MaglevKey, Box<MaglevTable>>,
}

impl MapWriter for FakeMaps {
    fn put_frontend(&mut self, key: &FrontendKey, value: &FrontendValue) -> Result<(), LbError> {
        self.frontends.insert(*key, *value);
        Ok(())
    }

    fn delete_frontend(&mut self, key: &FrontendKey) -> Result<(), LbError> {
        self.frontends.remove(key);
        Ok(())
    }

    fn put_ext_frontend(
        &mut self,
        key: &FrontendKey,
        value: &FrontendValue,
    ) -> Result<(), LbError> {
        self.ext_frontends.insert(*key, *value);
        Ok(())
    }

    fn delete_ext_frontend(&mut self, key: &FrontendKey) -> Result<(), LbError> {
        self.ext_frontends.remove(key);
        Ok(())
    }

    fn put_backend(&mut self, key: &BackendSlotKey, value: &Backend) -> Result<(), LbError> {
        self.backends.insert(*key, *value);
        Ok(())
    }

    fn delete_backend(&mut self, key: &BackendSlotKey) -> Result<(), LbError> {
        self.backends.remove(key);
        Ok(())
    }

    fn put_node_addrs(&mut self, value: &NodeAddrs) -> Result<(), LbError> {
        self.node_addrs = *value;
        Ok(())
    }

    fn put_maglev(&mut self, key: &MaglevKey, value: &MaglevTable) -> Result<(), LbError> {
        self.maglev.insert(*key, Box::new(*value));
        Ok(())
    }

    fn delete_maglev(&mut self, key: &MaglevKey) -> Result<(), LbError> {
        self.maglev.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Frontend;

    #[test]
    fn fake_maps_record_puts_and_deletes() {
        let key = FrontendKey::new("10.96.0.10:80".parse().unwrap(), crate::common::IPPROTO_TCP);
        let frontend = Frontend {
            service_id: 7,
            revision: 1,
            backend_count: 1,
            flags: 0,
            affinity_timeout_secs: 0,
        };
        let slot = BackendSlotKey {
            service_id: 7,
            revision: 1,
            slot: 0,
        };
        let backend = Backend::new("10.0.0.5:8080".parse().unwrap());
        let frontend = FrontendValue::new(frontend, [backend]);
        let mut maps = FakeMaps::default();
        maps.put_backend(&slot, &backend).unwrap();
        maps.put_frontend(&key, &frontend).unwrap();
        assert_eq!(maps.frontends.get(&key), Some(&frontend));
        assert_eq!(maps.backends.get(&slot), Some(&backend));
        assert_eq!(
            backend.socket_addr(),
            Some("10.0.0.5:8080".parse().unwrap())
        );

        maps.delete_frontend(&key).unwrap();
        maps.delete_backend(&slot).unwrap();
        maps.delete_backend(&slot).unwrap();
        assert_eq!(maps, FakeMaps::default());
    }

    #[test]
    fn fake_maps_keep_packet_scope_frontends_and_node_addrs_apart() {
        let key = FrontendKey::new(
            "192.0.2.1:30080".parse().unwrap(),
            crate::common::IPPROTO_UDP,
        );
        let frontend = Frontend {
            service_id: 3,
            revision: 2,
            backend_count: 0,
            flags: crate::common::FRONTEND_FLAG_PRESERVE_CLIENT,
            affinity_timeout_secs: 0,
        };
        let frontend = FrontendValue::new(frontend, []);
        let node = NodeAddrs::new(Some("192.0.2.1".parse().unwrap()), None);
        let mut maps = FakeMaps::default();
        maps.put_ext_frontend(&key, &frontend).unwrap();
        maps.put_node_addrs(&node).unwrap();
        assert_eq!(maps.ext_frontends.get(&key), Some(&frontend));
        assert!(maps.frontends.is_empty(), "socket scope untouched");
        assert_eq!(maps.node_addrs.ipv4.to_ne_bytes(), [192, 0, 2, 1]);

        maps.delete_ext_frontend(&key).unwrap();
        maps.delete_ext_frontend(&key).unwrap();
        maps.put_node_addrs(&NodeAddrs::default()).unwrap();
        assert_eq!(maps, FakeMaps::default());
    }
}
