//! Ferry's cluster DNS engine (CoreDNS replacement).
//!
//! Thin for now: it holds its configuration and the latest snapshot. The hickory-server zone
//! handler, forwarding and the `DnsTable` compilation come with the DNS issue.

use ferry_model::DesiredState;
use std::net::SocketAddr;
use std::sync::Arc;

/// Settings of the DNS engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// UDP and TCP addresses to serve on.
    pub listen: Vec<SocketAddr>,
    /// The cluster zone, without a trailing dot (e.g. `cluster.local`).
    pub cluster_domain: String,
}

/// The DNS engine; it serves the snapshot it was last given.
#[derive(Debug)]
pub struct DnsEngine {
    config: DnsConfig,
    snapshot: Option<Arc<DesiredState>>,
}

impl DnsEngine {
    pub fn new(config: DnsConfig) -> Self {
        Self {
            config,
            snapshot: None,
        }
    }

    pub fn config(&self) -> &DnsConfig {
        &self.config
    }

    /// Takes a new snapshot; answers come from it from now on.
    pub fn update(&mut self, state: Arc<DesiredState>) {
        self.snapshot = Some(state);
    }

    /// Whether a snapshot has been received (the engine answers only after the first sync).
    pub fn is_serving(&self) -> bool {
        self.snapshot.is_some()
    }
}
