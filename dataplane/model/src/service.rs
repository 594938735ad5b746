//! Services, normalized: only what the engines need, validated by the source.

use crate::ObjectKey;
use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
    ExternalName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum AddressFamily {
    IPv4,
    IPv6,
}

impl AddressFamily {
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressFamily::IPv4,
            IpAddr::V6(_) => AddressFamily::IPv6,
        }
    }
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

/// `trafficDistribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TrafficDistribution {
    /// `PreferClose` (and its newer alias `PreferSameZone`).
    PreferSameZone,
    PreferSameNode,
}

/// `sessionAffinity: ClientIP` with its timeout (kube default 10800 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SessionAffinity {
    pub timeout: Duration,
}

impl SessionAffinity {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10800);
}

/// `targetPort`: a number, or the name of a container port resolved per endpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServicePort {
    /// Empty for a single unnamed port.
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub target_port: TargetPort,
    pub node_port: Option<u16>,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Service {
    pub key: ObjectKey,
    pub service_type: ServiceType,
    /// `spec.clusterIPs` (dual stack, primary first); empty for headless and ExternalName.
    pub cluster_ips: Vec<IpAddr>,
    /// `clusterIP: None`.
    pub headless: bool,
    pub ports: Vec<ServicePort>,
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`.
    pub load_balancer_ips: Vec<IpAddr>,
    pub external_name: Option<String>,
    pub session_affinity: Option<SessionAffinity>,
    pub external_traffic_policy: TrafficPolicy,
    pub internal_traffic_policy: TrafficPolicy,
    pub publish_not_ready_addresses: bool,
    pub traffic_distribution: Option<TrafficDistribution>,
    pub health_check_node_port: Option<u16>,
    /// `service.kubernetes.io/service-proxy-name`: another proxy owns this Service's datapath.
    pub service_proxy_name: Option<String>,
}

impl Service {
    /// A minimal ClusterIP Service, for tests and builders.
    pub fn cluster_ip(key: ObjectKey, ip: IpAddr, ports: Vec<ServicePort>) -> Self {
        Self {
            key,
            service_type: ServiceType::ClusterIP,
            cluster_ips: vec![ip],
            headless: false,
            ports,
            external_ips: Vec::new(),
            load_balancer_ips: Vec::new(),
            external_name: None,
            session_affinity: None,
            external_traffic_policy: TrafficPolicy::Cluster,
            internal_traffic_policy: TrafficPolicy::Cluster,
            publish_not_ready_addresses: false,
            traffic_distribution: None,
            health_check_node_port: None,
            service_proxy_name: None,
        }
    }

    /// A minimal headless Service (`clusterIP: None`), for tests and builders.
    pub fn headless(key: ObjectKey, ports: Vec<ServicePort>) -> Self {
        Self {
            cluster_ips: Vec::new(),
            headless: true,
            ..Self::cluster_ip(key, IpAddr::from([0, 0, 0, 0]), ports)
        }
    }

    /// A minimal ExternalName Service aimed at `target`, for tests and builders.
    pub fn external_name(key: ObjectKey, target: impl Into<String>) -> Self {
        Self {
            service_type: ServiceType::ExternalName,
            cluster_ips: Vec::new(),
            external_name: Some(target.into()),
            ..Self::cluster_ip(key, IpAddr::from([0, 0, 0, 0]), Vec::new())
        }
    }
}

impl ServicePort {
    /// A TCP port whose target is the same number, for tests and builders.
    pub fn tcp(name: impl Into<String>, port: u16) -> Self {
        Self {
            name: name.into(),
            protocol: Protocol::Tcp,
            port,
            target_port: TargetPort::Number(port),
            node_port: None,
            app_protocol: None,
        }
    }
}
