//! Endpoint eligibility, as kube-proxy's `CategorizeEndpoints` decides it.

use super::NodeContext;
use crate::{AddressFamily, MergedEndpoint, Service, ServicePort, TrafficDistribution};
use std::net::SocketAddr;

/// The endpoints a Service port may use on this node: address with the resolved target port,
/// and whether the endpoint runs on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Category {
    /// For `Cluster` policy: ready endpoints, narrowed by topology; if none is ready, the
    /// serving and terminating ones.
    pub cluster: Vec<(SocketAddr, bool)>,
    /// For `Local` policy: this node's ready endpoints; if none, its serving and terminating ones.
    pub local: Vec<(SocketAddr, bool)>,
}

/// Sorts one Service port's endpoints of one family into the cluster and local sets.
///
/// Named target ports are resolved per endpoint: an endpoint serves the port whose slice port
/// has the Service port's name and protocol; an endpoint without one is not a candidate.
pub fn categorize(
    endpoints: &[MergedEndpoint],
    service: &Service,
    port: &ServicePort,
    family: AddressFamily,
    node: &NodeContext,
) -> Category {
    let is_local = |e: &MergedEndpoint| e.info.node_name.as_deref() == Some(node.name.as_str());
    let candidates: Vec<(&MergedEndpoint, (SocketAddr, bool))> = endpoints
        .iter()
        .filter(|e| AddressFamily::of(&e.address) == family)
        .filter_map(|e| {
            let (protocol, number) = e.ports.get(&port.name)?;
            let addr = SocketAddr::new(e.address, *number);
            (*protocol == port.protocol).then(|| (e, (addr, is_local(e))))
        })
        .collect();

    let ready: Vec<&(&MergedEndpoint, (SocketAddr, bool))> = candidates
        .iter()
        .filter(|(e, _)| e.conditions.ready)
        .collect();
    let cluster = if ready.is_empty() {
        fallback(&candidates, |_| true)
    } else {
        prefer_close(&ready, service, node)
    };
    let local_ready: Vec<(SocketAddr, bool)> = ready
        .iter()
        .filter(|(e, _)| is_local(e))
        .map(|(_, a)| *a)
        .collect();
    let local = if local_ready.is_empty() {
        fallback(&candidates, is_local)
    } else {
        local_ready
    };
    Category { cluster, local }
}

/// Serving and terminating endpoints: the set used when nothing is ready.
fn fallback(
    candidates: &[(&MergedEndpoint, (SocketAddr, bool))],
    keep: impl Fn(&MergedEndpoint) -> bool,
) -> Vec<(SocketAddr, bool)> {
    candidates
        .iter()
        .filter(|(e, _)| e.conditions.serving && e.conditions.terminating && keep(e))
        .map(|(_, a)| *a)
        .collect()
}

/// Topology: zone hints when every ready endpoint carries them and one names this zone;
/// otherwise `trafficDistribution` (same node, then same zone) when any endpoint matches;
/// otherwise all ready endpoints.
fn prefer_close(
    ready: &[&(&MergedEndpoint, (SocketAddr, bool))],
    service: &Service,
    node: &NodeContext,
) -> Vec<(SocketAddr, bool)> {
    let pick = |keep: &dyn Fn(&MergedEndpoint) -> bool| -> Vec<(SocketAddr, bool)> {
        ready
            .iter()
            .filter(|(e, _)| keep(e))
            .map(|(_, a)| *a)
            .collect()
    };
    let zone = node.zone.as_deref();
    if let Some(zone) = zone
        && ready.iter().all(|(e, _)| !e.info.zone_hints.is_empty())
    {
        let hinted = pick(&|e| e.info.zone_hints.iter().any(|z| z == zone));
        if !hinted.is_empty() {
            return hinted;
        }
    }
    let same_node = |e: &MergedEndpoint| e.info.node_name.as_deref() == Some(node.name.as_str());
    let same_zone = |e: &MergedEndpoint| zone.is_some() && e.info.zone.as_deref() == zone;
    let preferences: &[&dyn Fn(&MergedEndpoint) -> bool] = match service.traffic_distribution {
        None => &[],
        Some(TrafficDistribution::PreferSameZone) => &[&same_zone],
        Some(TrafficDistribution::PreferSameNode) => &[&same_node, &same_zone],
    };
    for keep in preferences {
        let close = pick(*keep);
        if !close.is_empty() {
            return close;
        }
    }
    pick(&|_| true)
}
