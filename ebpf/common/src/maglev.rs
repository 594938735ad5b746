//! `MAGLEV`: Maglev lookup tables of backend sets, for consistent hashing of NodePort flows
//! (`--lb-algorithm maglev`).
//!
//! Every node builds the same table for the same backends (the table is computed from backend
//! identities, not from node-local state), so every node sends a flow with a given 5-tuple to
//! the same backend, and a change of one backend out of N moves about 1/N of the flows. The
//! table holds slot indices into the set's current revision in `BACKENDS`.

/// Entries of a table: a prime well above any backend count served (Cilium's default).
pub const MAGLEV_TABLE_SIZE: usize = 16_381;

/// Entries stored: the next power of two, so that BPF can bound an index with a mask the
/// verifier understands (`% MAGLEV_TABLE_SIZE` alone loses the bound in codegen). Entries
/// from `MAGLEV_TABLE_SIZE` on are never used.
pub const MAGLEV_TABLE_CAPACITY: usize = 16_384;
const _: () = assert!(MAGLEV_TABLE_CAPACITY.is_power_of_two());
const _: () = assert!(MAGLEV_TABLE_SIZE <= MAGLEV_TABLE_CAPACITY);

/// [`crate::Frontend::flags`] bit: pick by the flow hash in the set's `MAGLEV` table (packet
/// scope only); without a table the pick is random.
pub const FRONTEND_FLAG_MAGLEV: u32 = 1 << 2;

/// Key of `MAGLEV`: the backend set revision the table indexes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaglevKey {
    /// [`crate::Frontend::service_id`].
    pub service_id: u32,
    /// [`crate::Frontend::revision`].
    pub revision: u32,
}
const _: () = assert!(size_of::<MaglevKey>() == 8);

/// Value of `MAGLEV`: `slots[flow_hash % MAGLEV_TABLE_SIZE]` is the backend slot of a flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    /// The first [`MAGLEV_TABLE_SIZE`] entries are the table; the rest stay zero.
    pub slots: [u16; MAGLEV_TABLE_CAPACITY],
}
const _: () = assert!(size_of::<MaglevTable>() == 2 * MAGLEV_TABLE_CAPACITY);

/// FNV-1a over a flow's 5-tuple (addresses as raw words): the same on every node.
#[inline(always)]
pub fn flow_hash(src: [u32; 4], dst: [u32; 4], sport: u16, dport: u16, proto: u8) -> u32 {
    const PRIME: u32 = 16_777_619;
    let mut hash: u32 = 2_166_136_261;
    let words = [
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
        (u32::from(sport) << 16) | u32::from(dport),
        u32::from(proto),
    ];
    let mut i = 0;
    while i < words.len() {
        let bytes = words[i].to_ne_bytes();
        let mut j = 0;
        while j < 4 {
            hash = (hash ^ u32::from(bytes[j])).wrapping_mul(PRIME);
            j += 1;
        }
        i += 1;
    }
    hash
}
