//! The maps. Names must equal `ferry_ebpf_common::maps::*` (checked by ferry-lb's verifier test).

use aya_ebpf::{
    btf_maps::{HashMap, LruHashMap},
    macros::btf_map,
};
use ferry_ebpf_common::{
    Backend, BackendSlotKey, Frontend, FrontendKey, RevNatKey, RevNatValue,
    maps::{BACKENDS_MAX_ENTRIES, FRONTENDS_MAX_ENTRIES, REVNAT_MAX_ENTRIES},
};

/// Service address → backend set. Written by userspace.
#[btf_map]
pub static FRONTENDS: HashMap<FrontendKey, Frontend, { FRONTENDS_MAX_ENTRIES as usize }> =
    HashMap::new();

/// Backend set slot → endpoint. Written by userspace.
#[btf_map]
pub static BACKENDS: HashMap<BackendSlotKey, Backend, { BACKENDS_MAX_ENTRIES as usize }> =
    HashMap::new();

/// (socket, backend) → frontend the socket dialled. Written by `connect*` / `sendmsg*`.
#[btf_map]
pub static REVNAT: LruHashMap<RevNatKey, RevNatValue, { REVNAT_MAX_ENTRIES as usize }> =
    LruHashMap::new();
