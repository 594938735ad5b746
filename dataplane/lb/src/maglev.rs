//! Maglev lookup tables (Eisenbud et al., NSDI 2016) for `--lb-algorithm maglev`.
//!
//! A backend's preference list over the table is derived from its identity alone (address
//! and port, hashed with FNV-1a under two seeds), so every node computes the same table for
//! the same backends, whatever their slot order in this node's `BACKENDS`: the table is built
//! over backends sorted by address and then translated to this node's slots.

use crate::common::MaglevTable;
use crate::common::maglev::{MAGLEV_TABLE_CAPACITY, MAGLEV_TABLE_SIZE};
use ferry_model::lb::LbBackend;

const M: usize = MAGLEV_TABLE_SIZE;

/// The table for a set laid out as `layout` (slot `i` holds `layout[i]`).
pub fn table(layout: &[LbBackend]) -> Box<MaglevTable> {
    let mut by_identity: Vec<(usize, String)> = layout
        .iter()
        .enumerate()
        .map(|(slot, b)| (slot, b.addr.to_string()))
        .collect();
    by_identity.sort_by(|a, b| a.1.cmp(&b.1));
    let owners = populate(by_identity.iter().map(|(_, name)| name.as_bytes()));
    let mut table = Box::new(MaglevTable {
        slots: [0; MAGLEV_TABLE_CAPACITY],
    });
    for (entry, owner) in table.slots.iter_mut().zip(owners) {
        let slot = by_identity.get(owner).map_or(0, |(slot, _)| *slot);
        *entry = u16::try_from(slot).unwrap_or(u16::MAX);
    }
    table
}

/// Maglev's population: each backend in turn takes its next preferred free entry until the
/// table is full. Returns, per entry, the index of the backend owning it.
fn populate<'a>(names: impl Iterator<Item = &'a [u8]>) -> Vec<usize> {
    let prefs: Vec<(usize, usize)> = names
        .map(|name| {
            let offset = fnv1a(name, 0x811c_9dc5) as usize % M;
            let skip = fnv1a(name, 0x5bd1_e995) as usize % (M - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut owners = vec![usize::MAX; M];
    if prefs.is_empty() {
        return vec![0; M];
    }
    let mut next = vec![0usize; prefs.len()];
    let mut filled = 0;
    'fill: loop {
        for (i, (offset, skip)) in prefs.iter().enumerate() {
            let mut candidate = (offset + next[i] * skip) % M;
            while owners[candidate] != usize::MAX {
                next[i] += 1;
                candidate = (offset + next[i] * skip) % M;
            }
            owners[candidate] = i;
            next[i] += 1;
            filled += 1;
            if filled == M {
                break 'fill;
            }
        }
    }
    owners
}

fn fnv1a(bytes: &[u8], seed: u32) -> u32 {
    bytes.iter().fold(seed, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn backends(ns: &[u8]) -> Vec<LbBackend> {
        ns.iter()
            .map(|n| LbBackend {
                addr: SocketAddr::from(([10, 0, 0, *n], 8080)),
                node_local: true,
            })
            .collect()
    }

    /// Entry -> backend address: what a flow hashing to the entry reaches.
    fn resolve(layout: &[LbBackend]) -> Vec<SocketAddr> {
        let table = table(layout);
        table.slots[..M]
            .iter()
            .map(|s| layout[usize::from(*s)].addr)
            .collect()
    }

    #[test]
    fn every_node_resolves_every_entry_to_the_same_backend_whatever_its_slot_order() {
        let here = backends(&[1, 2, 3, 4]);
        let there = backends(&[3, 1, 4, 2]);
        assert_eq!(resolve(&here), resolve(&there));
    }

    #[test]
    fn entries_are_spread_evenly() {
        let layout = backends(&[1, 2, 3, 4, 5, 6, 7]);
        let resolved = resolve(&layout);
        for b in &layout {
            let share = resolved.iter().filter(|a| **a == b.addr).count();
            let even = M / layout.len();
            assert!(
                share.abs_diff(even) <= even / 10,
                "{} has {share} of {M}",
                b.addr
            );
        }
    }

    #[test]
    fn removing_one_of_n_backends_moves_about_one_nth_of_the_entries() {
        let before = resolve(&backends(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        let after = resolve(&backends(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        // The removed backend's tenth must move; Maglev keeps the rest nearly still.
        assert!(moved < M * 13 / 100, "{moved} of {M} entries moved");
        let gone: SocketAddr = SocketAddr::from(([10, 0, 0, 10], 8080));
        assert!(after.iter().all(|a| *a != gone));
    }

    #[test]
    fn an_empty_set_has_an_all_zero_table() {
        assert!(table(&[]).slots.iter().all(|s| *s == 0));
    }
}
