//! The model task: source events in, one `DesiredState` snapshot out per batch.

use crate::readiness::Readiness;
use ferry_k8s::{Change, SourceEvent};
use ferry_model::{Cluster, DesiredState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// Latest snapshot; `None` until the source's first sync, so nothing acts on half a state.
pub type Snapshot = Option<Arc<DesiredState>>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone)]
pub struct ModelMetrics {
    objects: Family<KindLabel, Gauge>,
    endpoints: Gauge,
    apply_duration: Histogram,
    snapshots: Counter,
}

impl ModelMetrics {
    /// Registers under `registry`; pass a sub-registry with prefix `ferry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            objects: Family::default(),
            endpoints: Gauge::default(),
            apply_duration: Histogram::new(exponential_buckets(0.00001, 4.0, 12)),
            snapshots: Counter::default(),
        };
        registry.register(
            "objects",
            "Objects in the served state, by kind",
            metrics.objects.clone(),
        );
        registry.register(
            "endpoints",
            "Endpoint addresses across all Services",
            metrics.endpoints.clone(),
        );
        registry.register(
            "apply_duration_seconds",
            "Time to apply one source batch to the model and compile the snapshot",
            metrics.apply_duration.clone(),
        );
        registry.register(
            "snapshots_published",
            "DesiredState snapshots published to the engines",
            metrics.snapshots.clone(),
        );
        metrics
    }

    fn observe(&self, cluster: &Cluster) {
        let state = cluster.state();
        for (kind, count) in state.counts() {
            self.objects
                .get_or_create(&KindLabel {
                    kind: kind.as_str(),
                })
                .set(gauge_value(count));
        }
        self.objects
            .get_or_create(&KindLabel {
                kind: "EndpointSlice",
            })
            .set(gauge_value(cluster.slice_count()));
        let endpoints: usize = state.services.values().map(|s| s.endpoints.len()).sum();
        self.endpoints.set(gauge_value(endpoints));
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Applies source events until the source goes away, publishing a snapshot after each batch
/// that changed something, and marking `source` ready after the first sync.
pub async fn run(
    mut events: mpsc::Receiver<SourceEvent>,
    snapshots: watch::Sender<Snapshot>,
    readiness: Readiness,
    source: &'static str,
    metrics: ModelMetrics,
) {
    let mut cluster = Cluster::new();
    while let Some(event) = events.recv().await {
        let started = Instant::now();
        let (synced, changed) = match event {
            SourceEvent::Synced(objects) => (true, !cluster.reset(objects).is_empty()),
            SourceEvent::Changed(changes) => {
                let mut changed = false;
                for change in changes {
                    let delta = match change {
                        Change::Apply(object) => cluster.apply(object),
                        Change::Delete(object_ref) => cluster.delete(&object_ref),
                    };
                    changed |= !delta.is_empty();
                }
                (false, changed)
            }
        };
        let first = snapshots.borrow().is_none();
        if changed || first {
            snapshots.send_replace(Some(Arc::new(cluster.snapshot())));
            metrics.snapshots.inc();
        }
        metrics
            .apply_duration
            .observe(started.elapsed().as_secs_f64());
        metrics.observe(&cluster);
        if synced {
            readiness.set_ready(source);
        }
        tracing::debug!(
            services = cluster.state().services.len(),
            "snapshot published"
        );
    }
}
