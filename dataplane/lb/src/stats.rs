//! Reading the BPF counters (`STATS`, per CPU) as totals.

use aya::{Ebpf, maps::PerCpuArray};

use crate::{
    LbError,
    common::{maps::STATS, stats},
};

/// The BPF counters summed over all CPUs, indexed by [`crate::common::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters([u64; stats::COUNT as usize]);

impl Counters {
    /// Reads the counters of a loaded object.
    pub fn read(ebpf: &Ebpf) -> Result<Self, LbError> {
        let map = ebpf.map(STATS).ok_or(LbError::MapMissing { map: STATS })?;
        let array = PerCpuArray::<_, u64>::try_from(map).map_err(|e| map_error("open", e))?;
        Self::read_array(&array)
    }

    /// Reads the counters from the `STATS` map itself (taken out of its object).
    pub fn read_array<T: std::borrow::Borrow<aya::maps::MapData>>(
        array: &PerCpuArray<T, u64>,
    ) -> Result<Self, LbError> {
        let mut totals = [0; stats::COUNT as usize];
        for (index, total) in (0..).zip(&mut totals) {
            let per_cpu = array.get(&index, 0).map_err(|e| map_error("lookup", e))?;
            *total = per_cpu.iter().sum();
        }
        Ok(Self(totals))
    }

    /// The total of counter `index` (a [`crate::common::stats`] constant); 0 if out of range.
    pub fn get(&self, index: u32) -> u64 {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// `(name, total)` of every counter, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        stats::NAMES.into_iter().zip(self.0)
    }
}

fn map_error(action: &'static str, source: aya::maps::MapError) -> LbError {
    LbError::Map {
        map: STATS,
        action,
        source: Box::new(source),
    }
}
