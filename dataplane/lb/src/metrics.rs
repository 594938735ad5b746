//! `ferry_lb_*` metrics: sync cost, what is programmed, map capacity, and the BPF counters.

use crate::LbState;
use crate::common::maps;
use crate::stats::Counters;
use crate::sync::SyncReport;
use aya::maps::{MapData, PerCpuArray};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapLabel {
    map: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterLabel {
    counter: &'static str,
}

#[derive(Debug, Clone)]
pub struct LbMetrics {
    sync_duration: Histogram,
    services: Gauge,
    frontends: Gauge,
    backend_slots: Gauge,
    map_capacity: Family<MapLabel, Gauge>,
    map_entries: Family<MapLabel, Gauge>,
    sync_errors: Counter,
    map_operations: Counter,
    conflicts: Gauge,
    udp_sockets_destroyed: Counter,
    /// The BPF `STATS` map, read at every scrape once the engine has loaded it.
    stats: Arc<OnceLock<StatsMap>>,
}

impl LbMetrics {
    /// Registers under `registry`; pass a sub-registry with prefix `ferry_lb`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            // 1 ms x 2^k, as kube-proxy's sync histograms.
            sync_duration: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            services: Gauge::default(),
            frontends: Gauge::default(),
            backend_slots: Gauge::default(),
            map_capacity: Family::default(),
            map_entries: Family::default(),
            sync_errors: Counter::default(),
            map_operations: Counter::default(),
            conflicts: Gauge::default(),
            udp_sockets_destroyed: Counter::default(),
            stats: Arc::default(),
        };
        registry.register(
            "sync_duration_seconds",
            "Time to program the BPF maps for one snapshot",
            metrics.sync_duration.clone(),
        );
        registry.register(
            "services",
            "Services with programmed frontends",
            metrics.services.clone(),
        );
        registry.register(
            "frontends",
            "Frontends in the BPF maps",
            metrics.frontends.clone(),
        );
        registry.register(
            "backends",
            "Backend slots in the BPF maps",
            metrics.backend_slots.clone(),
        );
        registry.register(
            "map_capacity_entries",
            "Capacity of each userspace-written BPF map",
            metrics.map_capacity.clone(),
        );
        registry.register(
            "map_entries",
            "Entries of each userspace-written BPF map",
            metrics.map_entries.clone(),
        );
        registry.register(
            "sync_errors",
            "Frontend updates that failed (e.g. a full map); retried on the next sync",
            metrics.sync_errors.clone(),
        );
        registry.register(
            "map_operations",
            "BPF map updates and deletions written by the sync",
            metrics.map_operations.clone(),
        );
        registry.register(
            "frontend_conflicts",
            "Frontends claimed by more than one Service",
            metrics.conflicts.clone(),
        );
        registry.register(
            "udp_sockets_destroyed",
            "Connected UDP sockets destroyed because their backend left the Service",
            metrics.udp_sockets_destroyed.clone(),
        );
        registry.register_collector(Box::new(DatapathCollector {
            stats: metrics.stats.clone(),
        }));
        metrics
    }

    /// Records one sync and the state it left.
    pub fn observe_sync(
        &self,
        took: Duration,
        report: &SyncReport,
        state: &LbState,
        capacity: &[(&'static str, u32)],
    ) {
        self.services.set(gauge(state.services()));
        self.frontends.set(gauge(state.frontends()));
        self.backend_slots.set(gauge(state.backend_slots()));
        self.sync_errors.inc_by(report.failed.len() as u64);
        self.map_operations.inc_by(report.ops as u64);
        self.conflicts.set(gauge(state.conflicts()));
        let (socket, packet) = state.frontends_by_scope();
        for (map, entries) in [
            (maps::FRONTENDS, socket),
            (maps::EXT_FRONTENDS, packet),
            (maps::BACKENDS, state.backend_slots()),
        ] {
            self.map_entries
                .get_or_create(&MapLabel { map })
                .set(gauge(entries));
        }
        for (map, size) in capacity {
            self.map_capacity
                .get_or_create(&MapLabel { map })
                .set(i64::from(*size));
        }
        // Last: a scrape that sees this sync also sees its effects above.
        self.sync_duration.observe(took.as_secs_f64());
    }

    /// Counts connected UDP sockets destroyed after their backend left.
    pub fn observe_udp_sockets_destroyed(&self, destroyed: usize) {
        self.udp_sockets_destroyed.inc_by(destroyed as u64);
    }

    /// Hands over the loaded `STATS` map; `ferry_lb_datapath_total` reads it at each scrape.
    pub fn attach_stats(&self, stats: PerCpuArray<MapData, u64>) {
        let _ = self.stats.set(StatsMap(stats));
    }
}

/// The `STATS` map (aya's map types have no `Debug`).
struct StatsMap(PerCpuArray<MapData, u64>);

impl std::fmt::Debug for StatsMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsMap")
    }
}

/// `ferry_lb_datapath_total{counter}`: the BPF per-CPU counters, summed when scraped.
#[derive(Debug)]
struct DatapathCollector {
    stats: Arc<OnceLock<StatsMap>>,
}

impl Collector for DatapathCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(counters) = self
            .stats
            .get()
            .and_then(|m| Counters::read_array(&m.0).ok())
        else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "datapath",
            "BPF datapath counters, summed over CPUs",
            None,
            MetricType::Counter,
        )?;
        for (counter, total) in counters.iter() {
            let labels = CounterLabel { counter };
            ConstCounter::new(total).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
