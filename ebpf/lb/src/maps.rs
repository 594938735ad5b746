//! The maps. Names must equal `ferry_ebpf_common::maps::*` (checked by ferry-lb's verifier test).

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    macros::btf_map,
};
use ferry_ebpf_common::{
    AffinityKey, AffinityValue, Backend, BackendSlotKey, CtConfig, CtForward, CtKey, CtReverse,
    FrontendKey, FrontendValue, MaglevKey, MaglevTable, NodeAddrs, RevNatKey, RevNatSlot,
    RevNatValue, SockRevNat,
    maps::{
        AFFINITY_MAX_ENTRIES, BACKENDS_MAX_ENTRIES, CT_MAX_ENTRIES, EXT_FRONTENDS_MAX_ENTRIES,
        FRONTENDS_MAX_ENTRIES, MAGLEV_MAX_ENTRIES, REVNAT_MAX_ENTRIES, REVNAT_SLOTS_ENTRIES,
        SOCK_REVNAT_MAX_ENTRIES,
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

/// Connected TCP socket (cookie) → the backend it was sent to and the frontend it dialled, in
/// the slot of its cookie. Claimed by `connect*`, freed by `sock_release`. A slot costs a few
/// instructions and, cookies being sequential, touches memory next to the last one; an insert
/// into a hash map costs 0.3-0.5 µs (a random bucket of a large table, a lock), socket-local
/// storage 0.4 µs more (allocation and memory charge per socket).
#[btf_map]
pub static REVNAT_SLOTS: Array<RevNatSlot, { REVNAT_SLOTS_ENTRIES as usize }> = Array::new();

/// The records of connected TCP sockets whose slot in `REVNAT_SLOTS` another live socket holds.
/// Written by `connect*`, deleted by `sock_release`. LRU, so a record that outlived its socket
/// goes when room is needed: a socket that spilled here, failed to connect and then got its
/// slot on a second `connect()` is released from the slot only.
#[btf_map]
pub static SOCK_REVNAT: LruHashMap<u64, SockRevNat, { SOCK_REVNAT_MAX_ENTRIES as usize }> =
    LruHashMap::new();

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
