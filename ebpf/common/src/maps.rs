//! Map names (the `static` symbol names in `ferry-ebpf`, which aya looks maps up by) and
//! capacities. The BPF crate uses the same capacities; the names must match its statics (the
//! verifier test in `ferry-lb` checks they do). Names stay under 16 bytes, the kernel's limit.

/// [`crate::FrontendKey`] → [`crate::Frontend`], hash map.
pub const FRONTENDS: &str = "FRONTENDS";
/// [`crate::BackendSlotKey`] → [`crate::Backend`], hash map.
pub const BACKENDS: &str = "BACKENDS";
/// [`crate::RevNatKey`] → [`crate::RevNatValue`], LRU hash map.
pub const REVNAT: &str = "REVNAT";

/// Every map the object defines.
pub const ALL: [&str; 3] = [FRONTENDS, BACKENDS, REVNAT];

/// Capacity of `FRONTENDS` (service address + port + protocol triples).
pub const FRONTENDS_MAX_ENTRIES: u32 = 65_536;
/// Capacity of `BACKENDS` (backend slots over all services and in-flight revisions).
pub const BACKENDS_MAX_ENTRIES: u32 = 262_144;
/// Capacity of `REVNAT` (translated sockets; least recently used entries are evicted).
pub const REVNAT_MAX_ENTRIES: u32 = 262_144;
