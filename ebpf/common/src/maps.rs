//! Map names (the `static` symbol names in `ferry-ebpf`, which aya looks maps up by) and
//! capacities. The BPF crate uses the same capacities; the names must match its statics (the
//! verifier test in `ferry-lb` checks they do). Names stay under 16 bytes, the kernel's limit.

/// [`crate::FrontendKey`] → [`crate::FrontendValue`], hash map (not preallocated): socket-scope
/// frontends, read by the cgroup hooks. Written by userspace.
pub const FRONTENDS: &str = "FRONTENDS";
/// [`crate::FrontendKey`] → [`crate::FrontendValue`], hash map (not preallocated): packet-scope
/// frontends (NodePort, externalIPs, LoadBalancer IPs from outside), read by the tc programs.
/// Written by userspace.
pub const EXT_FRONTENDS: &str = "EXT_FRONTENDS";
/// [`crate::BackendSlotKey`] → [`crate::Backend`], hash map (not preallocated). Written by
/// userspace.
pub const BACKENDS: &str = "BACKENDS";
/// Index 0 → [`crate::NodeAddrs`], array of one. Written by userspace.
pub const NODE_ADDRS: &str = "NODE_ADDRS";
/// [`crate::RevNatKey`] → [`crate::RevNatValue`], LRU hash map. Written by BPF.
pub const REVNAT: &str = "REVNAT";
/// `cookie % REVNAT_SLOTS_ENTRIES` → [`crate::RevNatSlot`], array: the reverse-NAT records of
/// connected TCP sockets, each in the slot of its socket cookie. Claimed by `connect*`, freed by
/// `sock_release`.
pub const REVNAT_SLOTS: &str = "REVNAT_SLOTS";
/// Socket cookie (`u64`) → [`crate::SockRevNat`], LRU hash map: the records of connected TCP
/// sockets whose `REVNAT_SLOTS` slot another live socket holds. Written by `connect*`, deleted
/// by `sock_release`.
pub const SOCK_REVNAT: &str = "SOCK_REVNAT";
/// [`crate::AffinityKey`] → [`crate::AffinityValue`], LRU hash map. Written by BPF.
pub const AFFINITY: &str = "AFFINITY";
/// [`crate::CtKey`] → [`crate::CtForward`], LRU hash map. Written by BPF.
pub const CT_FWD: &str = "CT_FWD";
/// [`crate::CtKey`] → [`crate::CtReverse`], LRU hash map. Written by BPF.
pub const CT_REV: &str = "CT_REV";
/// Index 0 → [`crate::CtConfig`], array of one: conntrack lifetimes and the SNAT port pool.
/// Written by userspace; all zero means the defaults.
pub const CT_CONFIG: &str = "CT_CONFIG";
/// [`crate::MaglevKey`] → [`crate::MaglevTable`], hash map (not preallocated). Written by
/// userspace for packet-scope backend sets under `--lb-algorithm maglev`.
pub const MAGLEV: &str = "MAGLEV";
/// Counter index ([`crate::stats`]) → `u64`, per-CPU array. Written by BPF.
pub const STATS: &str = "STATS";

/// Every map the object defines.
pub const ALL: [&str; 13] = [
    FRONTENDS,
    EXT_FRONTENDS,
    BACKENDS,
    NODE_ADDRS,
    REVNAT,
    REVNAT_SLOTS,
    SOCK_REVNAT,
    AFFINITY,
    CT_FWD,
    CT_REV,
    CT_CONFIG,
    MAGLEV,
    STATS,
];

/// Capacity of `FRONTENDS` (service address + port + protocol triples).
pub const FRONTENDS_MAX_ENTRIES: u32 = 65_536;
/// Capacity of `EXT_FRONTENDS`.
pub const EXT_FRONTENDS_MAX_ENTRIES: u32 = 65_536;
/// Capacity of `BACKENDS` (backend slots over all services and in-flight revisions).
pub const BACKENDS_MAX_ENTRIES: u32 = 1_048_576;
/// Capacity of `REVNAT` (translated sockets; least recently used entries are evicted).
pub const REVNAT_MAX_ENTRIES: u32 = 262_144;
/// Slots of `REVNAT_SLOTS` (a power of two). Sockets get cookies in sequence, so short-lived
/// ones take neighbouring slots and free them soon; a slot still held when its index comes
/// round again sends the newer socket to `SOCK_REVNAT`.
pub const REVNAT_SLOTS_ENTRIES: u32 = 65_536;
/// Capacity of `SOCK_REVNAT` (translated TCP sockets open at once beyond those in
/// `REVNAT_SLOTS`). When it is full the least recently used record goes: that socket keeps
/// working, only its `getpeername()` shows the backend.
pub const SOCK_REVNAT_MAX_ENTRIES: u32 = 131_072;
/// Capacity of `AFFINITY` (client × backend set pairs; LRU). LRU maps are preallocated, so
/// this costs 7.5 MiB of kernel memory on every node whether or not any Service asks for
/// affinity (262,144 cost 30 MiB); Cilium's affinity map has the same default, and kube-proxy's
/// iptables `recent` lists remember far fewer clients.
pub const AFFINITY_MAX_ENTRIES: u32 = 65_536;
/// Capacity of `CT_FWD` and of `CT_REV` (tc flows; LRU).
pub const CT_MAX_ENTRIES: u32 = 262_144;
/// Capacity of `MAGLEV` (packet-scope backend set revisions; 32 KiB each, allocated on use).
pub const MAGLEV_MAX_ENTRIES: u32 = 8_192;
