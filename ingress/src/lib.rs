//! Ferry's ingress router.
//!
//! Thin for now: it holds its configuration and the latest snapshot. The hyper + rustls router
//! over a `RouteTable` comes with the ingress issue.

use ferry_model::DesiredState;
use std::net::SocketAddr;
use std::sync::Arc;

/// Settings of the ingress router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressConfig {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
}

/// The ingress router; it routes by the snapshot it was last given.
#[derive(Debug)]
pub struct IngressEngine {
    config: IngressConfig,
    snapshot: Option<Arc<DesiredState>>,
}

impl IngressEngine {
    pub fn new(config: IngressConfig) -> Self {
        Self {
            config,
            snapshot: None,
        }
    }

    pub fn config(&self) -> &IngressConfig {
        &self.config
    }

    pub fn update(&mut self, state: Arc<DesiredState>) {
        self.snapshot = Some(state);
    }

    pub fn is_serving(&self) -> bool {
        self.snapshot.is_some()
    }
}
