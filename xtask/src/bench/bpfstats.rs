//! The kernel's own account of a BPF program's cost: with `kernel.bpf_stats_enabled` on, every
//! run adds its time to the program's `run_time_ns` and `run_cnt`, which bpftool reports. The
//! time per run is what the program costs each `connect()`, free of the noise of a shared
//! machine that the connection rate carries.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Statistics on while this lives; the previous setting comes back on drop.
pub struct Enabled {
    previous: String,
}

impl Enabled {
    pub fn new() -> anyhow::Result<Self> {
        let previous =
            std::fs::read_to_string(SYSCTL).with_context(|| format!("reading {SYSCTL}"))?;
        std::fs::write(SYSCTL, "1").with_context(|| format!("writing {SYSCTL}"))?;
        Ok(Self { previous })
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, self.previous.trim());
    }
}

/// `(run_time_ns, run_cnt)` of the program the pinned link `link` attaches.
pub fn run_stats(link: &Path) -> anyhow::Result<(u64, u64)> {
    let link_text = bpftool(&["link", "show", "pinned", &link.to_string_lossy()])?;
    let prog = value_after(&link_text, "prog")
        .with_context(|| format!("no program id in {link_text:?}"))?;
    let prog_text = bpftool(&["prog", "show", "id", &prog.to_string()])?;
    match (
        value_after(&prog_text, "run_time_ns"),
        value_after(&prog_text, "run_cnt"),
    ) {
        (Some(time), Some(count)) => Ok((time, count)),
        // The kernel prints neither while the statistics were never on for this program.
        _ => Ok((0, 0)),
    }
}

/// Nanoseconds per run between two [`run_stats`] readings; `None` without runs.
pub fn per_run(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let runs = after.1.checked_sub(before.1).filter(|runs| *runs > 0)?;
    Some(after.0.saturating_sub(before.0) as f64 / runs as f64)
}

fn bpftool(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .context("running bpftool")?;
    if !out.status.success() {
        bail!(
            "bpftool {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The number after the first whitespace-separated `word` of `text`.
fn value_after(text: &str, word: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == word)?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bpftool_text() {
        let link = "7: cgroup  prog 42  \n\tcgroup_id 1  attach_type cgroup_inet4_connect\n";
        assert_eq!(value_after(link, "prog"), Some(42));
        let prog =
            "42: cgroup_sock_addr  name connect4  tag 0011  gpl run_time_ns 5000 run_cnt 4\n";
        assert_eq!(value_after(prog, "run_time_ns"), Some(5000));
        assert_eq!(value_after(prog, "run_cnt"), Some(4));
        assert_eq!(value_after(prog, "missing"), None);
        assert_eq!(per_run((1000, 1), (5000, 5)), Some(1000.0));
        assert_eq!(per_run((1000, 5), (1000, 5)), None);
    }
}
