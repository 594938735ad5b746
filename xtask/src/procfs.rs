//! Readings from /proc for the benches: a process's memory and CPU time, the kernel's own
//! allocations (where rules and BPF maps live), and how busy the machine is.

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kb_field(&status, field)
}

/// Proportional set size of a process (`/proc/<pid>/smaps_rollup`): shared pages split
/// between the processes that map them, so a group's PSS adds up.
pub fn pss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kb_field(&text, "Pss")
}

/// User + system CPU time of a process so far, in ms (from clock ticks of 10 ms).
pub fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

/// Slab + VmallocUsed + Percpu, machine-wide: what netfilter rules, conntrack and BPF maps
/// are allocated from. Other processes move it too, so a delta is approximate.
pub fn kernel_kb() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    ["Slab", "VmallocUsed", "Percpu"]
        .iter()
        .filter_map(|f| kb_field(&meminfo, f))
        .sum()
}

/// Machine CPU time as (busy, total) jiffies from /proc/stat; busy excludes idle and iowait.
pub fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Busy share of the machine between two [`cpu_jiffies`] readings, in percent.
pub fn busy_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return 0.0;
    }
    after.0.saturating_sub(before.0) as f64 * 100.0 / total as f64
}

fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kb_fields() {
        let text = "VmPeak:\t  123 kB\nVmRSS:\t   4567 kB\nVmRSSx: 1 kB\n";
        assert_eq!(kb_field(text, "VmRSS"), Some(4567));
        assert_eq!(kb_field(text, "VmHWM"), None);
    }
}
