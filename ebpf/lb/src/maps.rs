//! The maps. Names must equal `ferry_ebpf_common::maps::*` (checked by ferry-lb's verifier test).

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    macros::btf_map,
};
use ferry_ebpf_common::{
    AffinityKey, AffinityValue, Backend, BackendSlotKey, CtConfig, CtForward, CtKey, CtReverse,
    FrontendKey, FrontendValue, MaglevKey, MaglevTable, NodeAddrs, RevNatKey, RevNatValue,
    SockRevNat,
    maps::{
        AFFINITY_MAX_ENTRIES, BACKENDS_MAX_ENTRIES, CT_MAX_ENTRIES, EXT_FRONTENDS_MAX_ENTRIES,
        FRONTENDS_MAX_ENTRIES, MAGLEV_MAX_ENTRIES, REVNAT_MAX_ENTRIES, SOCK_REVNAT_MAX_ENTRIES,
    },
    stats,
};

/// Userspace-written hash maps allocate entries on update rather than all up front: 1M
/// preallocated backend slots would pin ~90 MiB of kernel memory on every node.
const NO_PREALLOC: usize = BPF_F_NO_PREALLOC as usize;

/// A frontend map: `FRONTENDS` and `EXT_FRONTENDS` share the type so one lookup path serves
/// both (their capacities are equal).
pub type Frontends =
    HashMap<FrontendKey, FrontendValue, { FRONTENDS_MAX_ENTRIES as usize }, NO_PREALLOC>;
const _: () = assert!(FRONTENDS_MAX_ENTRIES == EXT_FRONTENDS_MAX_ENTRIES);

/// Socket-scope service address → backend set. Written by userspace; read by the cgroup hooks.
#[btf_map]
pub static FRONTENDS: Frontends = HashMap::new();

/// Packet-scope service address → backend set. Written by userspace; read by tc.
#[btf_map]
pub static EXT_FRONTENDS: Frontends = HashMap::new();

/// Backend set slot → endpoint. Written by userspace.
#[btf_map]
pub static BACKENDS: HashMap<
    BackendSlotKey,
    Backend,
    { BACKENDS_MAX_ENTRIES as usize },
    NO_PREALLOC,
> = HashMap::new();

/// The node's own addresses (index 0), the source of masqueraded flows. Written by userspace.
#[btf_map]
pub static NODE_ADDRS: Array<NodeAddrs, 1> = Array::new();

/// (socket, backend) → frontend the socket dialled. Written by `connect*` / `sendmsg*`.
#[btf_map]
pub static REVNAT: LruHashMap<RevNatKey, RevNatValue, { REVNAT_MAX_ENTRIES as usize }> =
    LruHashMap::new();

/// Connected TCP socket (cookie) → the backend it was sent to and the frontend it dialled.
/// Written by `connect*`, deleted by `sock_release`. Not socket-local storage, which allocates
/// and charges memory per socket: it made `connect()` about 0.4 µs slower than a hash element
/// from the map's own per-CPU cache. Not preallocated either, which measured no faster.
#[btf_map]
pub static SOCK_REVNAT: HashMap<
    u64,
    SockRevNat,
    { SOCK_REVNAT_MAX_ENTRIES as usize },
    NO_PREALLOC,
> = HashMap::new();

/// (client, backend set) → the backend it got last. Written by the socket LB and tc.
#[btf_map]
pub static AFFINITY: LruHashMap<AffinityKey, AffinityValue, { AFFINITY_MAX_ENTRIES as usize }> =
    LruHashMap::new();

/// tc flow `client → frontend` → backend (+ SNAT source).
#[btf_map]
pub static CT_FWD: LruHashMap<CtKey, CtForward, { CT_MAX_ENTRIES as usize }> = LruHashMap::new();

/// tc flow `backend → reply destination` → client and frontend.
#[btf_map]
pub static CT_REV: LruHashMap<CtKey, CtReverse, { CT_MAX_ENTRIES as usize }> = LruHashMap::new();

/// Conntrack lifetimes and SNAT pool size (index 0; zero fields: defaults). Written by
/// userspace.
#[btf_map]
pub static CT_CONFIG: Array<CtConfig, 1> = Array::new();

/// Backend set revision → Maglev lookup table. Written by userspace; read by tc.
#[btf_map]
pub static MAGLEV: HashMap<MaglevKey, MaglevTable, { MAGLEV_MAX_ENTRIES as usize }, NO_PREALLOC> =
    HashMap::new();

/// Per-CPU counters, indexed by `ferry_ebpf_common::stats`.
#[btf_map]
pub static STATS: PerCpuArray<u64, { stats::COUNT as usize }> = PerCpuArray::new();
