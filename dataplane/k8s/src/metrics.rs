//! `ferry_k8s_*` metrics, registered on the Registry the binary passes down.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone)]
pub struct K8sMetrics {
    /// Invalid objects and unreadable files seen, counted each time they are read.
    pub invalid_objects: Counter,
    /// Problems standing now (invalid objects, unreadable files, duplicates).
    pub current_problems: Gauge,
    /// Time to read and convert the manifests of one sync or rescan.
    pub sync_duration: Histogram,
}

impl K8sMetrics {
    /// Registers under `registry`; pass a sub-registry with prefix `ferry_k8s`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            invalid_objects: Counter::default(),
            current_problems: Gauge::default(),
            sync_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        };
        registry.register(
            "invalid_objects",
            "Invalid objects and unreadable manifest files seen",
            metrics.invalid_objects.clone(),
        );
        registry.register(
            "problems",
            "Manifest problems standing now",
            metrics.current_problems.clone(),
        );
        registry.register(
            "sync_duration_seconds",
            "Time to read and convert manifests for one sync or rescan",
            metrics.sync_duration.clone(),
        );
        metrics
    }
}
