//! Service (core/v1).

use super::Meta;
use crate::{InvalidObject, validate};
use ferry_model::{
    Object, Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort,
    TrafficDistribution, TrafficPolicy,
};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";

pub fn service(svc: &core::Service) -> Result<Object, InvalidObject> {
    let meta = Meta::namespaced("Service", &svc.metadata);
    let key = meta.key(validate::dns1035_label)?;
    let invalid = |reason: String| meta.invalid(reason);
    let spec = svc.spec.clone().unwrap_or_default();

    let service_type = match spec.type_.as_deref().unwrap_or("ClusterIP") {
        "ClusterIP" => ServiceType::ClusterIP,
        "NodePort" => ServiceType::NodePort,
        "LoadBalancer" => ServiceType::LoadBalancer,
        "ExternalName" => ServiceType::ExternalName,
        other => {
            return Err(invalid(format!(
                "spec.type {other:?} is not a Service type"
            )));
        }
    };
    let (cluster_ips, headless) = cluster_ips(&spec).map_err(invalid)?;
    let external_name = match service_type {
        ServiceType::ExternalName => {
            let name = spec
                .external_name
                .as_deref()
                .map(|n| n.trim_end_matches('.'))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid("type ExternalName needs spec.externalName".into()))?;
            validate::dns_subdomain(&name.to_ascii_lowercase())
                .map_err(|e| invalid(format!("spec.externalName: {e}")))?;
            Some(name.to_string())
        }
        _ => None,
    };
    let ports = ports(&spec, service_type).map_err(invalid)?;
    let external_ips =
        ip_list(spec.external_ips.iter().flatten(), "spec.externalIPs").map_err(invalid)?;
    let lb_ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let load_balancer_ips = ip_list(
        lb_ingress
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_ref()),
        "status.loadBalancer.ingress[].ip",
    )
    .map_err(invalid)?;
    let session_affinity = match spec.session_affinity.as_deref().unwrap_or("None") {
        "None" => None,
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            let timeout = match timeout {
                None => SessionAffinity::DEFAULT_TIMEOUT,
                Some(t @ 1..=86400) => Duration::from_secs(t.unsigned_abs().into()),
                Some(t) => {
                    return Err(invalid(format!(
                        "sessionAffinityConfig.clientIP.timeoutSeconds {t} is out of range 1-86400"
                    )));
                }
            };
            Some(SessionAffinity { timeout })
        }
        other => {
            return Err(invalid(format!(
                "spec.sessionAffinity {other:?} is not None or ClientIP"
            )));
        }
    };
    let external_traffic_policy = policy(
        spec.external_traffic_policy.as_deref(),
        "externalTrafficPolicy",
    )
    .map_err(invalid)?;
    let internal_traffic_policy = policy(
        spec.internal_traffic_policy.as_deref(),
        "internalTrafficPolicy",
    )
    .map_err(invalid)?;
    let traffic_distribution = match spec.traffic_distribution.as_deref() {
        None => None,
        Some("PreferClose" | "PreferSameZone") => Some(TrafficDistribution::PreferSameZone),
        Some("PreferSameNode") => Some(TrafficDistribution::PreferSameNode),
        Some(other) => {
            return Err(invalid(format!(
                "spec.trafficDistribution {other:?} is not PreferClose, PreferSameZone or PreferSameNode"
            )));
        }
    };
    let health_check_node_port = spec
        .health_check_node_port
        .filter(|&p| p != 0)
        .map(|p| validate::port(p, "spec.healthCheckNodePort"))
        .transpose()
        .map_err(invalid)?;
    let service_proxy_name = svc
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_PROXY_NAME_LABEL))
        .cloned();

    Ok(Object::Service(Arc::new(Service {
        key,
        service_type,
        cluster_ips,
        headless,
        ports,
        external_ips,
        load_balancer_ips,
        external_name,
        session_affinity,
        external_traffic_policy,
        internal_traffic_policy,
        publish_not_ready_addresses: spec.publish_not_ready_addresses.unwrap_or(false),
        traffic_distribution,
        health_check_node_port,
        service_proxy_name,
    })))
}

/// `clusterIPs` (or the older single `clusterIP`): addresses, or headless for "None".
fn cluster_ips(spec: &core::ServiceSpec) -> Result<(Vec<IpAddr>, bool), String> {
    let listed: Vec<&str> = match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), single) if !ips.is_empty() => {
            if let Some(single) = single.as_deref().filter(|s| !s.is_empty())
                && single != ips[0]
            {
                return Err(format!(
                    "spec.clusterIP {single:?} must equal spec.clusterIPs[0] {:?}",
                    ips[0]
                ));
            }
            ips.iter().map(String::as_str).collect()
        }
        (_, Some(single)) if !single.is_empty() => vec![single.as_str()],
        _ => return Ok((Vec::new(), false)),
    };
    if listed == ["None"] {
        return Ok((Vec::new(), true));
    }
    let ips = ip_list(listed, "spec.clusterIPs")?;
    if ips.len() > 2 || (ips.len() == 2 && ips[0].is_ipv4() == ips[1].is_ipv4()) {
        return Err("spec.clusterIPs holds at most one IPv4 and one IPv6 address".into());
    }
    Ok((ips, false))
}

fn ip_list<'a>(
    values: impl IntoIterator<Item = &'a (impl AsRef<str> + 'a + ?Sized)>,
    what: &str,
) -> Result<Vec<IpAddr>, String> {
    values
        .into_iter()
        .map(|v| validate::ip(v.as_ref(), what))
        .collect()
}

fn ports(spec: &core::ServiceSpec, service_type: ServiceType) -> Result<Vec<ServicePort>, String> {
    let listed = spec.ports.as_deref().unwrap_or_default();
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    let mut out = Vec::with_capacity(listed.len());
    for p in listed {
        let name = p.name.clone().unwrap_or_default();
        let what = if name.is_empty() {
            format!("spec.ports[port {}]", p.port)
        } else {
            format!("spec.ports[{name}]")
        };
        if name.is_empty() {
            if listed.len() > 1 {
                return Err(format!(
                    "{what}: every port needs a name when there are several"
                ));
            }
        } else {
            validate::port_name(&name).map_err(|e| format!("{what}: {e}"))?;
        }
        if !names.insert(name.clone()) {
            return Err(format!("{what}: duplicate port name"));
        }
        let protocol = protocol(p.protocol.as_deref()).map_err(|e| format!("{what}: {e}"))?;
        let port = validate::port(p.port, "port").map_err(|e| format!("{what}: {e}"))?;
        if !numbers.insert((port, protocol)) {
            return Err(format!(
                "{what}: duplicate port {port}/{}",
                protocol.as_str()
            ));
        }
        let target_port = match &p.target_port {
            None => TargetPort::Number(port),
            Some(IntOrString::Int(0)) => TargetPort::Number(port),
            Some(IntOrString::Int(n)) => TargetPort::Number(
                validate::port(*n, "targetPort").map_err(|e| format!("{what}: {e}"))?,
            ),
            Some(IntOrString::String(s)) => match s.parse::<i32>() {
                Ok(n) => TargetPort::Number(
                    validate::port(n, "targetPort").map_err(|e| format!("{what}: {e}"))?,
                ),
                Err(_) => {
                    validate::port_name(s).map_err(|e| format!("{what}: targetPort: {e}"))?;
                    TargetPort::Name(s.clone())
                }
            },
        };
        let node_port = match p.node_port.filter(|&n| n != 0) {
            None => None,
            Some(_)
                if !matches!(
                    service_type,
                    ServiceType::NodePort | ServiceType::LoadBalancer
                ) =>
            {
                return Err(format!(
                    "{what}: nodePort is only valid for NodePort and LoadBalancer Services"
                ));
            }
            Some(n) => Some(validate::port(n, "nodePort").map_err(|e| format!("{what}: {e}"))?),
        };
        out.push(ServicePort {
            name,
            protocol,
            port,
            target_port,
            node_port,
            app_protocol: p.app_protocol.clone(),
        });
    }
    Ok(out)
}

pub(crate) fn protocol(value: Option<&str>) -> Result<Protocol, String> {
    match value.unwrap_or("TCP") {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Ok(Protocol::Sctp),
        other => Err(format!("protocol {other:?} is not TCP, UDP or SCTP")),
    }
}

fn policy(value: Option<&str>, field: &str) -> Result<TrafficPolicy, String> {
    match value.unwrap_or("Cluster") {
        // "Global" is the pre-1.22 spelling of Cluster.
        "Cluster" | "Global" => Ok(TrafficPolicy::Cluster),
        "Local" => Ok(TrafficPolicy::Local),
        other => Err(format!("spec.{field} {other:?} is not Cluster or Local")),
    }
}
