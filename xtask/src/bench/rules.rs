//! Loading the kube-proxy rule shapes into the client namespace's own netfilter tables, one
//! tool run per sync, as kube-proxy does, timed and measured.

use super::topology::{self, Topology};
use super::{exec, iptables, nftables};
use crate::procfs;
use std::path::Path;
use std::time::Duration;

const FULL_TIMEOUT: Duration = Duration::from_secs(900);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Which rule shape, and with which tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `iptables-restore` of the given binary (`iptables-legacy-restore` by default).
    Iptables(&'static str),
    /// `nft -f`.
    Nftables,
}

/// What one full sync and one endpoint change cost.
#[derive(Debug, Clone, Default)]
pub struct RulesSync {
    pub full: Duration,
    pub change: Duration,
    /// Peak RSS of the tool (iptables-restore / nft) during the full sync and the change.
    pub tool_rss_full_kb: u64,
    pub tool_rss_change_kb: u64,
    /// Approximate kernel memory added by the full sync (rules, sets): see [`procfs::kernel_kb`].
    pub kernel_delta_kb: i64,
    /// Lines of the full-sync input (rules, chains, elements).
    pub lines: usize,
}

/// Applies the full sync for N Services, then the one endpoint change (Service `changed`).
pub fn program(shape: Shape, topo: &Topology, n: u32, changed: u32) -> anyhow::Result<RulesSync> {
    let (full, change) = match shape {
        Shape::Iptables(_) => (iptables::full(n), iptables::change(n, changed)),
        Shape::Nftables => (nftables::full(n), nftables::change(changed)),
    };
    let mut sync = RulesSync {
        lines: full.lines().count(),
        ..RulesSync::default()
    };
    let kernel_before = procfs::kernel_kb();
    (sync.full, sync.tool_rss_full_kb) = load(shape, topo, "rules-full", &full, FULL_TIMEOUT)?;
    sync.kernel_delta_kb = procfs::kernel_kb() as i64 - kernel_before as i64;
    (sync.change, sync.tool_rss_change_kb) =
        load(shape, topo, "rules-change", &change, CHANGE_TIMEOUT)?;
    Ok(sync)
}

/// One tool run on `text` in the client namespace: its wall time and peak RSS.
fn load(
    shape: Shape,
    topo: &Topology,
    name: &str,
    text: &str,
    timeout: Duration,
) -> anyhow::Result<(Duration, u64)> {
    let file = topo.work.join(format!("{name}.txt"));
    std::fs::write(&file, text)?;
    let path = file.to_string_lossy();
    let (program, args): (&str, Vec<&str>) = match shape {
        // --noflush: chains not named in the input are left alone (kube-proxy's mode).
        Shape::Iptables(restore) => (restore, vec!["--noflush", &path]),
        Shape::Nftables => ("nft", vec!["-f", &path]),
    };
    let argv = exec::with_peak_rss(&topo.work, name, program, &args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let command = topology::nsenter(&topo.client, argv[0], &argv[1..]);
    let timed = exec::timed(command, None, &topo.work, name, timeout)?;
    let rss = exec::peak_rss_kb(&topo.work, name).unwrap_or(0);
    Ok((timed.wall, rss))
}

/// Whether `program` can be run (for a clear message before a long run).
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| Path::new(&dir).join(program).is_file())
    })
}
