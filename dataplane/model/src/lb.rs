//! What the load balancer must program on this node, compiled per Service with kube-proxy's
//! semantics: which frontends a Service has, and which endpoints are eligible behind each.
//!
//! Socket-level frontends (ClusterIPs, and NodePorts/external IPs dialled from the node itself)
//! use the Service's internal view; packet-level frontends (NodePorts, external and
//! LoadBalancer IPs reached from outside) use its external view, where
//! `externalTrafficPolicy: Local` applies.

mod eligible;

pub use eligible::{Category, categorize};

use crate::{AddressFamily, ObjectKey, Protocol, ServiceState, ServiceType, TrafficPolicy};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// This node, as the load balancer needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeContext {
    pub name: String,
    /// Addresses NodePorts are served on (the node IPs).
    pub ips: Vec<IpAddr>,
    /// Label `topology.kubernetes.io/zone` of this node's Node object, if known.
    pub zone: Option<String>,
    /// This node's own DNS server, while it answers.
    pub local_dns: Option<LocalDns>,
}

impl NodeContext {
    /// This node's context, with its zone from its Node object in `state` when there is one.
    pub fn from_state(name: &str, ips: &[IpAddr], state: &crate::DesiredState) -> Self {
        Self {
            name: name.to_string(),
            ips: ips.to_vec(),
            zone: state.nodes.get(name).and_then(|n| n.zone.clone()),
            local_dns: None,
        }
    }

    pub fn with_local_dns(mut self, local_dns: Option<LocalDns>) -> Self {
        self.local_dns = local_dns;
        self
    }
}

/// Node-local DNS: the DNS port (53, UDP and TCP) of the cluster DNS Service's ClusterIPs goes
/// to this node's own DNS server instead of the Service's endpoints, so every pod is answered
/// on its node. Only while that server answers: otherwise the endpoints serve as usual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDns {
    /// The cluster DNS Service (`--dns-service`, kube-system/kube-dns by default).
    pub service: ObjectKey,
    /// Where this node's DNS server listens; the first of a ClusterIP's family is used.
    pub listen: Vec<SocketAddr>,
}

impl LocalDns {
    /// The port clients dial on the cluster DNS Service.
    pub const PORT: u16 = 53;

    /// The local server for `port` of `svc` in `family`, if this steers it.
    fn backend(&self, svc: &ObjectKey, port: u16, family: AddressFamily) -> Option<LbBackend> {
        if *svc != self.service || port != Self::PORT {
            return None;
        }
        let addr = *self
            .listen
            .iter()
            .find(|a| AddressFamily::of(&a.ip()) == family)?;
        Some(LbBackend {
            addr,
            node_local: true,
        })
    }
}

/// Where a frontend is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    /// At `connect()`/`sendmsg()` by the cgroup hooks: clients on this node.
    Socket,
    /// Per packet by the tc programs: clients outside the node.
    Packet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FrontendKind {
    ClusterIp,
    NodePort,
    ExternalIp,
    LoadBalancerIp,
}

/// Which of a Service port's endpoint sets a frontend uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum BackendView {
    /// ClusterIPs: `internalTrafficPolicy` applies.
    Internal,
    /// External addresses dialled from the node itself: every eligible endpoint.
    FromNode,
    /// External addresses reached from outside: `externalTrafficPolicy` applies.
    External,
}

/// One eligible endpoint behind a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LbBackend {
    pub addr: SocketAddr,
    /// The endpoint runs on this node (no masquerade needed to get its replies back).
    pub node_local: bool,
}

/// One address:port:protocol a client may dial, and the backends behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LbFrontend {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub scope: Scope,
    pub kind: FrontendKind,
    /// Eligible backends, sorted and deduplicated; empty means "reject". Shared by the
    /// frontends of one port, family and view.
    pub backends: Arc<[LbBackend]>,
    /// The Service port's name, for logs and metrics.
    pub port_name: String,
    /// Frontends of one Service port, family and view always have the same backends.
    pub view: BackendView,
}

/// `externalTrafficPolicy: Local` health check: what the daemon answers on the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub node_port: u16,
    /// Ready endpoints of the Service on this node.
    pub local_endpoints: usize,
}

/// Everything one Service asks of the load balancer on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbService {
    pub key: ObjectKey,
    pub frontends: Vec<LbFrontend>,
    /// `sessionAffinity: ClientIP` timeout.
    pub affinity: Option<Duration>,
    /// Packet-level frontends keep the client's source address (no masquerade).
    pub preserve_client_ip: bool,
    pub health_check: Option<HealthCheck>,
}

/// Compiles one Service, or `None` when the load balancer has nothing to do for it: headless
/// and ExternalName Services, Services owned by another proxy, Services without a ClusterIP.
pub fn compile_service(state: &ServiceState, node: &NodeContext) -> Option<LbService> {
    let svc = &state.service;
    if svc.headless
        || svc.service_type == ServiceType::ExternalName
        || svc.service_proxy_name.is_some()
        || svc.cluster_ips.is_empty()
    {
        return None;
    }
    let external_local = svc.external_traffic_policy == TrafficPolicy::Local;
    let mut frontends = Vec::new();
    for port in svc.ports.iter().filter(|p| p.protocol != Protocol::Sctp) {
        let families = svc.cluster_ips.iter().map(AddressFamily::of);
        for family in families {
            let category = categorize(&state.endpoints, svc, port, family, node);
            let view = |local| {
                let chosen = if local {
                    &category.local
                } else {
                    &category.cluster
                };
                let mut backends: Vec<LbBackend> = chosen
                    .iter()
                    .map(|&(addr, node_local)| LbBackend { addr, node_local })
                    .collect();
                backends.sort_unstable();
                backends.dedup_by_key(|b| b.addr);
                Arc::<[LbBackend]>::from(backends)
            };
            let local_dns = node.local_dns.as_ref();
            let internal = match local_dns.and_then(|d| d.backend(&svc.key, port.port, family)) {
                Some(local) => Arc::from([local]),
                None => view(svc.internal_traffic_policy == TrafficPolicy::Local),
            };
            // Clients on the node reaching external addresses get the cluster-wide set, as with
            // kube-proxy's short-circuit of pod traffic to external IPs.
            let from_node = view(false);
            let external = view(external_local);
            let mut push = |ip: IpAddr, port_no: u16, scope, kind, view| {
                let backends = match view {
                    BackendView::Internal => &internal,
                    BackendView::FromNode => &from_node,
                    BackendView::External => &external,
                };
                frontends.push(LbFrontend {
                    addr: SocketAddr::new(ip, port_no),
                    protocol: port.protocol,
                    scope,
                    kind,
                    backends: backends.clone(),
                    port_name: port.name.clone(),
                    view,
                });
            };
            let same_family = |ip: &&IpAddr| AddressFamily::of(ip) == family;
            for ip in svc.cluster_ips.iter().filter(same_family) {
                push(
                    *ip,
                    port.port,
                    Scope::Socket,
                    FrontendKind::ClusterIp,
                    BackendView::Internal,
                );
            }
            if let Some(node_port) = port.node_port {
                for ip in node.ips.iter().filter(same_family) {
                    push(
                        *ip,
                        node_port,
                        Scope::Socket,
                        FrontendKind::NodePort,
                        BackendView::FromNode,
                    );
                    push(
                        *ip,
                        node_port,
                        Scope::Packet,
                        FrontendKind::NodePort,
                        BackendView::External,
                    );
                }
                let loopback = match family {
                    AddressFamily::IPv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    AddressFamily::IPv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
                };
                push(
                    loopback,
                    node_port,
                    Scope::Socket,
                    FrontendKind::NodePort,
                    BackendView::FromNode,
                );
            }
            let externals = svc
                .external_ips
                .iter()
                .map(|ip| (ip, FrontendKind::ExternalIp))
                .chain(
                    svc.load_balancer_ips
                        .iter()
                        .map(|ip| (ip, FrontendKind::LoadBalancerIp)),
                );
            for (ip, kind) in externals.filter(|(ip, _)| AddressFamily::of(ip) == family) {
                push(*ip, port.port, Scope::Socket, kind, BackendView::FromNode);
                push(*ip, port.port, Scope::Packet, kind, BackendView::External);
            }
        }
    }
    frontends.sort();
    frontends.dedup_by(|a, b| (a.addr, a.protocol, a.scope) == (b.addr, b.protocol, b.scope));
    let health_check = match (svc.health_check_node_port, external_local) {
        (Some(node_port), true) => Some(HealthCheck {
            node_port,
            local_endpoints: state
                .endpoints
                .iter()
                .filter(|e| e.conditions.ready && e.info.node_name.as_deref() == Some(&node.name))
                .count(),
        }),
        _ => None,
    };
    Some(LbService {
        key: svc.key.clone(),
        frontends,
        affinity: svc.session_affinity.map(|a| a.timeout),
        preserve_client_ip: external_local,
        health_check,
    })
}

#[cfg(test)]
mod tests;
