//! Nodes: name, addresses and zone (for topology-aware routing).

use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Node {
    pub name: String,
    /// `status.addresses` of type InternalIP / ExternalIP.
    pub addresses: Vec<IpAddr>,
    /// Label `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
}
