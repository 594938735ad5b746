//! Backend sets in `BACKENDS`: one per Service port, address family and view, whose id stays
//! the same across endpoint changes and whose surviving members keep their slot, so that
//! ClientIP affinity (which remembers `(set id, slot)`) survives unrelated changes.
//!
//! A change writes the set under a new revision `(id, revision, 0..len)` (and its `MAGLEV`
//! table when asked); frontends are then switched to it one map update each, and a revision is
//! deleted once no frontend points at it.

use super::{MapOp, SyncReport, slot_key};
use crate::LbError;
use crate::common::{
    BACKEND_FLAG_REMOTE, Backend, BackendSlotKey, FRONTEND_INLINE_BACKENDS, MaglevKey,
};
use crate::maglev;
use ferry_model::lb::{BackendView, LbBackend};
use ferry_model::{AddressFamily, ObjectKey, Protocol};
use std::collections::HashMap;

/// What identifies a set: its Service, port name, protocol, family and view.
pub(super) type SetKey = (ObjectKey, String, Protocol, AddressFamily, BackendView);

/// A set as written: `(id, revision)`.
pub(super) type SetRef = (u32, u32);

#[derive(Debug, Clone)]
struct Revision {
    /// Slot `i` holds `layout[i]`.
    layout: Vec<LbBackend>,
    /// Frontends in the maps pointing at this revision.
    refs: usize,
    /// A `MAGLEV` table was written for it.
    maglev: bool,
}

#[derive(Debug)]
pub(super) struct BackendSets {
    revisions: HashMap<SetRef, Revision>,
    current: HashMap<SetKey, SetRef>,
    free_ids: Vec<u32>,
    next_id: u32,
    /// Last revision number handed out (global, so a recycled id never meets stale slots).
    revision: u32,
    /// Slots over all revisions, kept as they change.
    slot_count: usize,
}

impl Default for BackendSets {
    fn default() -> Self {
        Self {
            revisions: HashMap::new(),
            current: HashMap::new(),
            free_ids: Vec::new(),
            next_id: 1,
            revision: 0,
            slot_count: 0,
        }
    }
}

impl BackendSets {
    /// Rebuilds the sets that adopted frontends point at (`(set, backend count)` each) from
    /// the map's slots and Maglev tables. Returns the slots and the tables that no complete,
    /// pointed-at set owns, for deletion.
    pub fn adopt(
        pointed: &[(SetRef, u32)],
        slots: HashMap<SetRef, HashMap<u32, Backend>>,
        tables: &[MaglevKey],
    ) -> (Self, Vec<BackendSlotKey>, Vec<MaglevKey>) {
        let mut sets = Self::default();
        let none = HashMap::new();
        for &(set, count) in pointed {
            // Whatever a frontend points at, whole or not, is never handed out again: a new
            // set must not write its slots under a key an adopted frontend still reads.
            sets.next_id = sets.next_id.max(set.0.saturating_add(1));
            sets.revision = sets.revision.max(set.1);
            // An empty set (a Service without endpoints) has no slots at all.
            let members = slots.get(&set).unwrap_or(&none);
            if !(0..count).all(|slot| members.contains_key(&slot)) {
                continue;
            }
            let entry = sets.revisions.entry(set).or_insert_with(|| Revision {
                layout: (0..count)
                    .filter_map(|slot| {
                        let b = members[&slot];
                        Some(LbBackend {
                            addr: b.socket_addr()?,
                            node_local: b.flags & BACKEND_FLAG_REMOTE == 0,
                        })
                    })
                    .collect(),
                refs: 0,
                maglev: tables.contains(&table_key(set)),
            });
            entry.refs += 1;
            if entry.refs == 1 {
                sets.slot_count += entry.layout.len();
            }
        }
        let garbage = slots
            .into_iter()
            .filter(|(set, _)| !sets.revisions.contains_key(set))
            .flat_map(|((id, revision), members)| {
                members.into_keys().map(move |slot| BackendSlotKey {
                    service_id: id,
                    revision,
                    slot,
                })
            })
            .collect();
        let stale_tables = tables
            .iter()
            .filter(|t| {
                let set = (t.service_id, t.revision);
                !sets.revisions.get(&set).is_some_and(|r| r.maglev)
            })
            .copied()
            .collect();
        (sets, garbage, stale_tables)
    }

    pub fn backends(&self, set: SetRef) -> &[LbBackend] {
        self.revisions.get(&set).map_or(&[], |r| &r.layout)
    }

    /// The map values of the set's first slots, in slot order: what its frontends carry
    /// inline.
    pub fn inline(&self, set: SetRef) -> impl Iterator<Item = Backend> + '_ {
        self.backends(set)
            .iter()
            .take(FRONTEND_INLINE_BACKENDS)
            .map(backend_value)
    }

    pub fn slots(&self) -> usize {
        self.slot_count
    }

    /// The set `key` serves `backends` with (with a Maglev table if `maglev`): its current
    /// revision if equal, else the set the frontend already points at (`pointed`, after a
    /// restart) if equal, else a new revision written now through `apply`.
    pub fn intern(
        &mut self,
        key: &SetKey,
        backends: &[LbBackend],
        maglev: bool,
        pointed: Option<SetRef>,
        apply: &mut impl FnMut(&MapOp) -> Result<(), LbError>,
        report: &mut SyncReport,
    ) -> Result<SetRef, LbError> {
        let same = |set: &SetRef, revisions: &HashMap<SetRef, Revision>| {
            revisions
                .get(set)
                .is_some_and(|r| r.maglev == maglev && same_members(&r.layout, backends))
        };
        if let Some(set) = self.current.get(key).copied() {
            if same(&set, &self.revisions) {
                return Ok(set);
            }
        } else if let Some(set) = pointed.filter(|s| same(s, &self.revisions)) {
            self.current.insert(key.clone(), set);
            return Ok(set);
        }
        let previous = self.current.get(key).copied();
        let id = match previous {
            Some((id, _)) => id,
            None => self.free_ids.pop().unwrap_or_else(|| {
                self.next_id += 1;
                self.next_id - 1
            }),
        };
        let layout = stable_layout(previous.map_or(&[][..], |p| self.backends(p)), backends);
        let revision = self.revision.wrapping_add(1);
        if let Err(error) = write(id, revision, &layout, maglev, apply, report) {
            if previous.is_none() {
                self.free_ids.push(id);
            }
            return Err(error);
        }
        self.revision = revision;
        self.slot_count += layout.len();
        let written = Revision {
            layout,
            refs: 0,
            maglev,
        };
        self.revisions.insert((id, revision), written);
        self.current.insert(key.clone(), (id, revision));
        // A previous revision nobody points at (a put that failed) goes now.
        if let Some(previous) = previous {
            self.delete_if_unused(previous, apply, report)?;
        }
        Ok((id, revision))
    }

    /// A frontend now points at `set`.
    pub fn retain(&mut self, set: SetRef) {
        if let Some(revision) = self.revisions.get_mut(&set) {
            revision.refs += 1;
        }
    }

    /// A frontend no longer points at `set`; the set goes when none does.
    pub fn release(
        &mut self,
        set: SetRef,
        apply: &mut impl FnMut(&MapOp) -> Result<(), LbError>,
        report: &mut SyncReport,
    ) -> Result<(), LbError> {
        if let Some(revision) = self.revisions.get_mut(&set) {
            revision.refs = revision.refs.saturating_sub(1);
        }
        self.delete_if_unused(set, apply, report)
    }

    /// Deletes `set` if no frontend points at it; its id is freed when no revision of it and
    /// no set key is left.
    fn delete_if_unused(
        &mut self,
        set: SetRef,
        apply: &mut impl FnMut(&MapOp) -> Result<(), LbError>,
        report: &mut SyncReport,
    ) -> Result<(), LbError> {
        let Some(revision) = self.revisions.get(&set).filter(|r| r.refs == 0) else {
            return Ok(());
        };
        if revision.maglev {
            apply(&MapOp::DeleteMaglev(table_key(set)))?;
            report.ops += 1;
        }
        for slot in (0..revision.layout.len()).rev() {
            apply(&MapOp::DeleteBackend(slot_key(set.0, set.1, slot)))?;
            report.ops += 1;
        }
        if let Some(removed) = self.revisions.remove(&set) {
            self.slot_count -= removed.layout.len();
        }
        self.current.retain(|_, current| *current != set);
        let id_in_use = self.revisions.keys().any(|(id, _)| *id == set.0)
            || self.current.values().any(|(id, _)| *id == set.0);
        if !id_in_use {
            self.free_ids.push(set.0);
        }
        Ok(())
    }
}

/// Writes a revision's slots, then its Maglev table; on failure removes what it wrote.
fn write(
    id: u32,
    revision: u32,
    layout: &[LbBackend],
    maglev: bool,
    apply: &mut impl FnMut(&MapOp) -> Result<(), LbError>,
    report: &mut SyncReport,
) -> Result<(), LbError> {
    let undo = |apply: &mut dyn FnMut(&MapOp) -> Result<(), LbError>, written: usize| {
        for slot in 0..written {
            let _ = apply(&MapOp::DeleteBackend(slot_key(id, revision, slot)));
        }
    };
    for (slot, backend) in layout.iter().enumerate() {
        let value = backend_value(backend);
        if let Err(error) = apply(&MapOp::PutBackend(slot_key(id, revision, slot), value)) {
            undo(apply, slot);
            return Err(error);
        }
        report.ops += 1;
    }
    if maglev {
        let table = MapOp::PutMaglev(table_key((id, revision)), maglev::table(layout));
        if let Err(error) = apply(&table) {
            undo(apply, layout.len());
            return Err(error);
        }
        report.ops += 1;
    }
    Ok(())
}

fn table_key(set: SetRef) -> MaglevKey {
    MaglevKey {
        service_id: set.0,
        revision: set.1,
    }
}

fn same_members(layout: &[LbBackend], sorted: &[LbBackend]) -> bool {
    if layout.len() != sorted.len() {
        return false;
    }
    let mut members = layout.to_vec();
    members.sort_unstable();
    members == sorted
}

/// The slots of a set changing from `previous` to `backends`: a member that stays keeps its
/// slot when it still fits; new members fill the free slots in order.
fn stable_layout(previous: &[LbBackend], backends: &[LbBackend]) -> Vec<LbBackend> {
    let mut layout: Vec<Option<LbBackend>> = vec![None; backends.len()];
    for (slot, old) in previous.iter().enumerate().take(backends.len()) {
        if let Some(now) = backends.iter().find(|b| b.addr == old.addr) {
            layout[slot] = Some(*now);
        }
    }
    let placed: Vec<LbBackend> = layout.iter().flatten().copied().collect();
    let mut rest = backends
        .iter()
        .filter(|b| !placed.iter().any(|p| p.addr == b.addr));
    layout
        .into_iter()
        .map(|slot| slot.or_else(|| rest.next().copied()))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_else(|| backends.to_vec())
}

fn backend_value(backend: &LbBackend) -> Backend {
    let flags = if backend.node_local {
        0
    } else {
        BACKEND_FLAG_REMOTE
    };
    Backend::new(backend.addr).with_flags(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: u8) -> LbBackend {
        LbBackend {
            addr: std::net::SocketAddr::from(([10, 0, 0, n], 80)),
            node_local: true,
        }
    }

    #[test]
    fn survivors_keep_their_slots_and_newcomers_fill_holes() {
        assert_eq!(
            stable_layout(&[b(1), b(2), b(3)], &[b(1), b(3), b(4)]),
            [b(1), b(4), b(3)]
        );
        assert_eq!(
            stable_layout(&[b(3), b(1)], &[b(1), b(2), b(3)]),
            [b(3), b(1), b(2)]
        );
        // Shrinking: a survivor beyond the new length moves into a hole.
        assert_eq!(
            stable_layout(&[b(1), b(2), b(3)], &[b(1), b(3)]),
            [b(1), b(3)]
        );
        assert_eq!(stable_layout(&[], &[b(2), b(1)]), [b(2), b(1)]);
    }
}
