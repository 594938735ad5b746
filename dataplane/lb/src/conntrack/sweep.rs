//! Removing dead flows from `CT_FWD` / `CT_REV` in bounded steps.

use std::os::fd::{AsFd as _, OwnedFd};

use aya::{
    Ebpf,
    maps::{HashMap, Map, MapError},
    sys::SyscallError,
};

use super::{absent_is_ok, map_error, next_key::next_key};
use crate::{
    LbError,
    common::{
        CtForward, CtKey, CtReverse,
        conntrack::is_dead,
        maps::{CT_FWD, CT_REV},
    },
};

/// Sweeps the tc flow table: each [`CtSweeper::sweep`] examines a bounded number of entries
/// of each map, resuming where the previous sweep stopped (and starting over after the end),
/// and removes those dead for longer than a grace period.
///
/// The datapath already ignores dead flows and takes over their SNAT ports; sweeping frees
/// their memory, so the LRU maps do not evict live flows while dead ones sit in them. The
/// grace keeps a recently dead masqueraded flow's port looking taken rather than free: new
/// flows prefer free ports, then the ports dead longest (see the BPF `reserve_snat_port`),
/// because a backend may still hold the old connection in TIME_WAIT for a minute.
#[derive(Debug, Clone)]
pub struct CtSweeper {
    budget: usize,
    grace_secs: u32,
    /// Per map (`CT_FWD`, `CT_REV`): where the next sweep resumes, the last live key seen;
    /// `None` for the start.
    cursors: [Option<CtKey>; 2],
}

impl CtSweeper {
    /// The engine's budget: with a sweep every 10 s, a pass over full maps (262,144 entries
    /// each) takes 80 s, and a sweep costs at most about 130k cheap syscalls.
    pub const DEFAULT_BUDGET: usize = 32_768;
    /// The engine's grace: Linux's TIME_WAIT.
    pub const DEFAULT_GRACE_SECS: u32 = 60;

    /// A sweeper examining at most `budget` entries of each map per sweep and removing those
    /// dead for at least `grace_secs`.
    pub fn new(budget: usize, grace_secs: u32) -> Self {
        Self {
            budget: budget.max(1),
            grace_secs,
            cursors: [None, None],
        }
    }

    /// One step: removes the entries of `ebpf`'s `CT_FWD` and `CT_REV` among the next ones
    /// examined that are dead, past the grace, at `now` ([`crate::conntrack_now`]). Returns
    /// how many were removed.
    ///
    /// A dead entry is checked again right before its removal, since the datapath may have
    /// replaced its flow by a new one of the same tuple meanwhile; the new flow is lost only if
    /// that happens between the check and the removal (microseconds).
    pub fn sweep(&mut self, ebpf: &mut Ebpf, now: u32) -> Result<usize, LbError> {
        // Dead at `now` for `grace_secs` = dead at `now - grace_secs`.
        let now = now.saturating_sub(self.grace_secs);
        let [forward, reverse] = &mut self.cursors;
        let removed = sweep_map::<CtForward>(ebpf, CT_FWD, forward, self.budget, now)?;
        Ok(removed + sweep_map::<CtReverse>(ebpf, CT_REV, reverse, self.budget, now)?)
    }
}

impl Default for CtSweeper {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BUDGET, Self::DEFAULT_GRACE_SECS)
    }
}

/// A conntrack value, which carries its end of life.
trait Expiring: aya::Pod {
    fn expires(&self) -> u32;
}

impl Expiring for CtForward {
    fn expires(&self) -> u32 {
        self.expires
    }
}

impl Expiring for CtReverse {
    fn expires(&self) -> u32 {
        self.expires
    }
}

fn sweep_map<V: Expiring>(
    ebpf: &mut Ebpf,
    name: &'static str,
    cursor: &mut Option<CtKey>,
    budget: usize,
    now: u32,
) -> Result<usize, LbError> {
    let map = ebpf
        .map_mut(name)
        .ok_or(LbError::MapMissing { map: name })?;
    let fd = dup_fd(map).map_err(|e| map_error(name, "open", e))?;
    // Checks the map's key size, which `next_key` relies on.
    let mut table: HashMap<_, CtKey, V> =
        HashMap::try_from(map).map_err(|e| map_error(name, "open", e))?;
    let (mut at, mut resume) = (*cursor, *cursor);
    let mut dead = Vec::new();
    let mut finished = false;
    for _ in 0..budget {
        let next = next_key(fd.as_fd(), at.as_ref()).map_err(|io_error| {
            let call = "bpf_map_get_next_key";
            map_error(name, "iterate", SyscallError { call, io_error }.into())
        })?;
        let Some(key) = next else {
            finished = true;
            break;
        };
        at = Some(key);
        match table.get(&key, 0) {
            Ok(value) if is_dead(value.expires(), now) => dead.push(key),
            Ok(_) => resume = Some(key),
            // Gone meanwhile (the datapath, or an LRU eviction).
            Err(MapError::KeyNotFound) => {}
            Err(e) => return Err(map_error(name, "lookup", e)),
        }
    }
    *cursor = if finished { None } else { resume };
    let mut removed = 0;
    for key in &dead {
        if table.get(key, 0).is_ok_and(|v| is_dead(v.expires(), now)) {
            absent_is_ok(table.remove(key)).map_err(|e| map_error(name, "remove", e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A descriptor of the hash map `map` of its own, for the raw iteration next to aya's handle.
fn dup_fd(map: &Map) -> Result<OwnedFd, MapError> {
    let (Map::HashMap(data) | Map::LruHashMap(data)) = map else {
        return Err(MapError::InvalidMapType { map_type: 0 });
    };
    data.fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|io_error| SyscallError {
            call: "dup",
            io_error,
        })
        .map_err(MapError::from)
}
