//! Counter increments (`STATS`, per-CPU, so a plain add is race-free).

use crate::maps::STATS;

/// Adds one to counter `index` (a `ferry_ebpf_common::stats` constant) on this CPU.
#[inline(always)]
pub fn count(index: u32) {
    if let Some(counter) = STATS.get_ptr_mut(index) {
        // SAFETY: the pointer is this CPU's slot, valid for the program's run, and only
        // programs on this CPU touch it. A tc run in softirq may interrupt a cgroup hook's
        // read-modify-write on the same CPU; that loses at most one count, never memory safety.
        unsafe { *counter += 1 };
    }
}
