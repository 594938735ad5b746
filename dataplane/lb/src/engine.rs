//! The LB engine: loads the object over the pinned maps, attaches the programs with pinned
//! links (replacing a previous daemon's without a gap), and keeps the maps in sync with each
//! snapshot.

mod layouts;

use crate::common::{
    Backend, BackendSlotKey, CtConfig, Frontend, FrontendKey, FrontendValue, IPPROTO_UDP,
    MaglevKey, MaglevTable, NodeAddrs, conntrack::SNAT_PORT_MIN, maps, programs,
};
use crate::metrics::LbMetrics;
use crate::pin::PinLayout;
use crate::sync::{Algorithm, LbState, MapOp, SyncReport, error_chain};
use crate::{
    AyaMaps, CtSweeper, EBPF_OBJECT, LbError, MapWriter, attach_cgroup, load_all_programs, tc,
};
use aya::maps::{HashMap as BpfHashMap, PerCpuArray};
use aya::programs::links::FdLink;
use aya::{Ebpf, EbpfLoader};
use ferry_model::DesiredState;
use ferry_model::lb::{NodeContext, Scope};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Settings of the LB engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbConfig {
    /// cgroup2 directory the socket-LB programs attach to.
    pub cgroup: PathBuf,
    /// Where programs' links and maps are pinned.
    pub pin_root: PathBuf,
    /// Interfaces for per-packet NodePort/external IP translation.
    pub nodeport_interfaces: Vec<String>,
    /// Capacity of `FRONTENDS` and of `EXT_FRONTENDS`.
    pub max_frontends: u32,
    /// Capacity of `BACKENDS`.
    pub max_backends: u32,
    /// How the tc path picks backends for new flows.
    pub algorithm: Algorithm,
    /// Source ports of masqueraded NodePort/external flows.
    pub snat_ports: RangeInclusive<u16>,
}

impl LbConfig {
    pub const DEFAULT_MAX_FRONTENDS: u32 = maps::FRONTENDS_MAX_ENTRIES;
    pub const DEFAULT_MAX_BACKENDS: u32 = maps::BACKENDS_MAX_ENTRIES;
    pub const DEFAULT_SNAT_PORTS: RangeInclusive<u16> = SNAT_PORT_MIN..=u16::MAX;
}

/// A running LB: the loaded object, its maps, and what was written to them.
#[derive(Debug)]
pub struct LbEngine {
    ebpf: Ebpf,
    maps: AyaMaps,
    state: LbState,
    node_ips: Vec<IpAddr>,
    capacity: [(&'static str, u32); 3],
    sweeper: CtSweeper,
}

impl LbEngine {
    /// Loads the object, reusing pinned maps (a restart adopts what the previous daemon
    /// wrote), verifies every program, and attaches the socket-LB programs to the cgroup and
    /// the NodePort programs to the interfaces. Links are pinned: the datapath keeps working
    /// if this process dies.
    pub fn start(
        config: &LbConfig,
        node: NodeContext,
        metrics: &LbMetrics,
    ) -> Result<Self, LbError> {
        if EBPF_OBJECT.is_empty() {
            return Err(LbError::ObjectMissing);
        }
        let pins = PinLayout::new(&config.pin_root);
        pins.create()?;
        layouts::retire_incompatible_pins(&pins);
        let map_paths: Vec<(&str, PathBuf)> = maps::ALL.iter().map(|m| (*m, pins.map(m))).collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &map_paths {
            loader.map_pin_path(name, path.as_path());
        }
        loader
            .map_max_entries(maps::FRONTENDS, config.max_frontends)
            .map_max_entries(maps::EXT_FRONTENDS, config.max_frontends)
            .map_max_entries(maps::BACKENDS, config.max_backends);
        let mut ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|e| LbError::Object(Box::new(e)))?;
        load_all_programs(&mut ebpf)?;

        let (state, garbage, stale_tables) = adopt(&ebpf, node.clone())?;
        let state = state.with_algorithm(config.algorithm);
        let mut maps = AyaMaps::take(&mut ebpf)?;
        let stats = ebpf
            .take_map(maps::STATS)
            .ok_or(LbError::MapMissing { map: maps::STATS })?;
        let stats = PerCpuArray::try_from(stats)
            .map_err(|e| crate::map_writer::map_error(maps::STATS, "open", e))?;
        metrics.attach_stats(stats);
        for slot in &garbage {
            maps.delete_backend(slot)?;
        }
        for table in &stale_tables {
            maps.delete_maglev(table)?;
        }
        maps.put_node_addrs(&node_addrs(&node.ips))?;
        // The production lifetimes (zero: the defaults) and the configured SNAT pool.
        let snat = CtConfig {
            snat_port_first: u32::from(*config.snat_ports.start()),
            snat_ports: u32::from(*config.snat_ports.end())
                .saturating_sub(u32::from(*config.snat_ports.start()))
                + 1,
            ..CtConfig::default()
        };
        crate::configure_conntrack(&mut ebpf, &snat)?;

        let cgroup = std::fs::File::open(&config.cgroup).map_err(|e| LbError::PinPath {
            path: config.cgroup.clone(),
            reason: format!("cannot open the cgroup: {e}"),
        })?;
        for program in programs::SOCKET_LB {
            let link = attach_cgroup(&mut ebpf, program, &cgroup)?;
            pin_replacing(link, &pins.link(program))?;
        }
        for interface in &config.nodeport_interfaces {
            let links = tc::attach_nodeport(&mut ebpf, interface)?;
            let (ingress, egress) = tc::take_nodeport_links(&mut ebpf, links)?;
            for (link, program) in [
                (ingress, programs::NODEPORT_INGRESS),
                (egress, programs::NODEPORT_EGRESS),
            ] {
                let link = FdLink::try_from(link).map_err(|e| LbError::PinPath {
                    path: pins.link(program),
                    reason: format!("tc link is not a bpf_link: {e}"),
                })?;
                pin_replacing(link, &pins.link(&format!("{program}@{interface}")))?;
            }
        }
        tracing::info!(
            cgroup = %config.cgroup.display(),
            interfaces = ?config.nodeport_interfaces,
            pins = %pins.root().display(),
            adopted_frontends = state.frontends(),
            adopted_backend_slots = state.backend_slots(),
            "lb: programs attached"
        );
        Ok(Self {
            ebpf,
            maps,
            state,
            node_ips: node.ips,
            capacity: [
                (maps::FRONTENDS, config.max_frontends),
                (maps::EXT_FRONTENDS, config.max_frontends),
                (maps::BACKENDS, config.max_backends),
            ],
            sweeper: CtSweeper::default(),
        })
    }

    /// Programs the maps for `state`; only changed Services are touched.
    pub fn sync(
        &mut self,
        state: &DesiredState,
        node: &NodeContext,
        metrics: &LbMetrics,
    ) -> SyncReport {
        let started = Instant::now();
        if node.ips != self.node_ips {
            match self.maps.put_node_addrs(&node_addrs(&node.ips)) {
                Ok(()) => self.node_ips.clone_from(&node.ips),
                Err(error) => tracing::error!(%error, "lb: cannot write the node addresses"),
            }
        }
        let maps = &mut self.maps;
        let report = self.state.sync(state, node, |op| apply(maps, op));
        // kube-proxy flushes the conntrack entries of UDP flows to removed endpoints; the tc
        // flows pinned to them are forgotten the same way, so their next packet picks again.
        for backend in &report.stale_udp_backends {
            if let Err(error) = crate::forget_flows_to(&mut self.ebpf, *backend, IPPROTO_UDP) {
                tracing::warn!(%backend, %error, "lb: cannot forget UDP flows");
            }
        }
        metrics.observe_sync(started.elapsed(), &report, &self.state, &self.capacity);
        // Connected UDP sockets were pointed at those backends by the socket LB at connect():
        // abort them in every namespace, so their owners reconnect to a current backend.
        let destroyed = crate::destroy_translated_udp(&self.ebpf, &report.stale_udp_backends);
        metrics.observe_udp_sockets_destroyed(destroyed);
        report
    }

    pub fn state(&self) -> &LbState {
        &self.state
    }

    /// How often the caller should run [`Self::maintain`].
    pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);

    /// Periodic housekeeping, between syncs: one bounded sweep of the tc flow table (expired
    /// flows are removed). Returns how many entries were removed.
    pub fn maintain(&mut self) -> usize {
        match self.sweeper.sweep(&mut self.ebpf, crate::conntrack_now()) {
            Ok(removed) => {
                if removed > 0 {
                    tracing::debug!(removed, "lb: expired flows swept");
                }
                removed
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "lb: sweeping expired flows failed");
                0
            }
        }
    }
}

/// Removes everything Ferry pinned under `pin_root`: unpinning the links detaches the
/// programs, unpinning the maps frees them. Returns what was removed.
pub fn cleanup(pin_root: &Path) -> Result<Vec<PathBuf>, LbError> {
    PinLayout::new(pin_root).remove_all()
}

fn apply(maps: &mut AyaMaps, op: &MapOp) -> Result<(), LbError> {
    match op {
        MapOp::PutBackend(k, v) => maps.put_backend(k, v),
        MapOp::DeleteBackend(k) => maps.delete_backend(k),
        MapOp::PutFrontend(Scope::Socket, k, v) => maps.put_frontend(k, v),
        MapOp::DeleteFrontend(Scope::Socket, k) => maps.delete_frontend(k),
        MapOp::PutFrontend(Scope::Packet, k, v) => maps.put_ext_frontend(k, v),
        MapOp::DeleteFrontend(Scope::Packet, k) => maps.delete_ext_frontend(k),
        MapOp::PutMaglev(k, v) => maps.put_maglev(k, v),
        MapOp::DeleteMaglev(k) => maps.delete_maglev(k),
    }
}

/// The masquerade source per family: the first node IP of each.
fn node_addrs(ips: &[IpAddr]) -> NodeAddrs {
    let v4 = ips.iter().find_map(|ip| match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    });
    let v6 = ips.iter().find_map(|ip| match ip {
        IpAddr::V6(v6) => Some(*v6),
        IpAddr::V4(_) => None,
    });
    NodeAddrs::new(v4, v6)
}

/// Rebuilds the engine's record from the (pinned) maps, so the first sync is a diff.
fn adopt(ebpf: &Ebpf, node: NodeContext) -> Result<Adopted, LbError> {
    let mut frontends: Vec<(Scope, FrontendKey, Frontend)> = Vec::new();
    for (scope, name) in [
        (Scope::Socket, maps::FRONTENDS),
        (Scope::Packet, maps::EXT_FRONTENDS),
    ] {
        for (key, value) in read_map::<FrontendKey, FrontendValue>(ebpf, name)? {
            frontends.push((scope, key, value.frontend));
        }
    }
    let backends = read_map::<BackendSlotKey, Backend>(ebpf, maps::BACKENDS)?;
    let tables = read_keys::<MaglevKey, MaglevTable>(ebpf, maps::MAGLEV)?;
    Ok(LbState::adopt(node, frontends, backends, &tables))
}

/// The record, and the backend slots and Maglev tables no adopted frontend uses.
type Adopted = (LbState, Vec<BackendSlotKey>, Vec<MaglevKey>);

fn read_keys<K: aya::Pod, V: aya::Pod>(ebpf: &Ebpf, name: &'static str) -> Result<Vec<K>, LbError> {
    let map = ebpf.map(name).ok_or(LbError::MapMissing { map: name })?;
    let map = BpfHashMap::<_, K, V>::try_from(map)
        .map_err(|e| crate::map_writer::map_error(name, "open", e))?;
    map.keys()
        .collect::<Result<_, _>>()
        .map_err(|e| crate::map_writer::map_error(name, "read", e))
}

fn read_map<K: aya::Pod, V: aya::Pod>(
    ebpf: &Ebpf,
    name: &'static str,
) -> Result<Vec<(K, V)>, LbError> {
    let map = ebpf.map(name).ok_or(LbError::MapMissing { map: name })?;
    let map = BpfHashMap::<_, K, V>::try_from(map)
        .map_err(|e| crate::map_writer::map_error(name, "open", e))?;
    map.iter()
        .collect::<Result<_, _>>()
        .map_err(|e| crate::map_writer::map_error(name, "read", e))
}

/// Pins `link` at `pin`. A link already pinned there (a previous daemon's) is replaced without
/// a gap: the new one is already attached next to it; renaming over the old pin drops the last
/// reference to the old link, which detaches it.
fn pin_replacing(link: FdLink, pin: &Path) -> Result<(), LbError> {
    // bpffs refuses dots in names.
    let mut staged = pin.as_os_str().to_owned();
    staged.push("_new");
    let staged = PathBuf::from(staged);
    let _ = std::fs::remove_file(&staged);
    let pinned = link.pin(&staged).map_err(|e| LbError::PinPath {
        path: staged.clone(),
        reason: error_chain(&e),
    })?;
    std::fs::rename(&staged, pin).map_err(|e| LbError::PinPath {
        path: pin.to_path_buf(),
        reason: e.to_string(),
    })?;
    drop(pinned);
    Ok(())
}
