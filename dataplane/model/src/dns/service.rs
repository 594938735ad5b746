//! One Service's names and records.

use super::names::{dashed_ip, reverse_name};
use super::{Records, Srv};
use crate::{MergedEndpoint, Protocol, ServiceState, ServiceType};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The names a Service contributes to `zone`, with their records:
/// * `<svc>.<ns>.svc.<zone>`: A/AAAA of the ClusterIPs, or of the ready endpoints of a headless
///   Service (none ready: no name at all, so NXDOMAIN), or the CNAME of an ExternalName; and, as
///   CoreDNS answers a bare-name SRV query, the SRV records of every named port;
/// * `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV per named port, aimed at the Service name, or
///   at each endpoint's name for a headless Service;
/// * headless endpoints: `<label>.<svc>.<ns>.svc.<zone>` A/AAAA, the label from
///   `endpoint_label`;
/// * PTR from the reverse name of each ClusterIP and headless endpoint address.
pub fn compile(state: &ServiceState, zone: &str, pod_names: bool) -> Vec<(String, Records)> {
    let svc = &state.service;
    let name = format!("{}.{}.svc.{zone}", svc.key.name, svc.key.namespace).to_ascii_lowercase();
    let mut out: BTreeMap<String, Records> = BTreeMap::new();
    match svc.service_type {
        ServiceType::ExternalName => {
            if let Some(target) = &svc.external_name {
                out.entry(name.clone()).or_default().cname = Some(target.to_ascii_lowercase());
            }
        }
        _ if svc.headless => headless(state, &name, pod_names, &mut out),
        _ => {
            if svc.cluster_ips.is_empty() {
                return Vec::new();
            }
            let records = out.entry(name.clone()).or_default();
            for ip in &svc.cluster_ips {
                push_address(records, *ip);
            }
            for ip in &svc.cluster_ips {
                out.entry(reverse_name(*ip))
                    .or_default()
                    .ptr
                    .push(name.clone());
            }
            for port in svc.ports.iter().filter(|p| !p.name.is_empty()) {
                let srv = srv_name(&port.name, port.protocol, &name);
                out.entry(srv).or_default().srv.push(Srv {
                    priority: 0,
                    weight: 100,
                    port: port.port,
                    target: name.clone(),
                });
            }
        }
    }
    finish(out, &name)
}

fn headless(
    state: &ServiceState,
    name: &str,
    pod_names: bool,
    out: &mut BTreeMap<String, Records>,
) {
    let svc = &state.service;
    let ready: Vec<&MergedEndpoint> = state
        .endpoints
        .iter()
        .filter(|e| e.conditions.ready || svc.publish_not_ready_addresses)
        .collect();
    if ready.is_empty() {
        return;
    }
    for endpoint in &ready {
        let host_name = format!("{}.{name}", endpoint_label(endpoint, pod_names));
        push_address(out.entry(name.to_string()).or_default(), endpoint.address);
        push_address(out.entry(host_name.clone()).or_default(), endpoint.address);
        out.entry(reverse_name(endpoint.address))
            .or_default()
            .ptr
            .push(host_name.clone());
        for port in svc.ports.iter().filter(|p| !p.name.is_empty()) {
            let Some((protocol, number)) = endpoint.ports.get(&port.name) else {
                continue;
            };
            if *protocol != port.protocol {
                continue;
            }
            out.entry(srv_name(&port.name, port.protocol, name))
                .or_default()
                .srv
                .push(Srv {
                    priority: 0,
                    weight: 0,
                    port: *number,
                    target: host_name.clone(),
                });
        }
    }
}

/// The label of a headless Service's endpoint, as CoreDNS's `endpointHostname`: its hostname;
/// else, with `endpoint_pod_names`, its pod's name (lowercase) when that is one valid label
/// (CoreDNS skips names of 64 characters or more; a dotted name would be several labels);
/// else its dashed IP.
fn endpoint_label(endpoint: &MergedEndpoint, pod_names: bool) -> String {
    if let Some(hostname) = &endpoint.info.hostname {
        return hostname.to_ascii_lowercase();
    }
    match &endpoint.info.pod_name {
        Some(pod) if pod_names && is_label(pod) => pod.to_ascii_lowercase(),
        _ => dashed_ip(endpoint.address),
    }
}

/// A DNS label of letters, digits and hyphens, 1 to 63 characters.
fn is_label(text: &str) -> bool {
    (1..=63).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Copies every port's SRV records to the Service name (bare-name SRV queries), sets weights
/// as CoreDNS does (`100 / records of the name`), and normalizes.
fn finish(mut out: BTreeMap<String, Records>, name: &str) -> Vec<(String, Records)> {
    let all_srv: Vec<Srv> = out
        .iter()
        .filter(|(n, _)| n.starts_with('_') && n.ends_with(name))
        .flat_map(|(_, r)| r.srv.iter().cloned())
        .collect();
    if !all_srv.is_empty() {
        out.entry(name.to_string()).or_default().srv = all_srv;
    }
    out.into_iter()
        .map(|(n, mut records)| {
            records.normalize();
            let weight = u16::try_from(100 / records.srv.len().max(1)).unwrap_or(100);
            for srv in &mut records.srv {
                srv.weight = weight;
            }
            (n, records)
        })
        .collect()
}

fn push_address(records: &mut Records, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => records.a.push(v4),
        IpAddr::V6(v6) => records.aaaa.push(v6),
    }
}

fn srv_name(port: &str, protocol: Protocol, service: &str) -> String {
    let proto = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    format!("_{}._{proto}.{service}", port.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EndpointConditions, ObjectKey, Service, ServicePort};
    use std::collections::BTreeMap;

    fn endpoint(ip: &str, hostname: Option<&str>, pod: Option<&str>) -> MergedEndpoint {
        MergedEndpoint {
            address: ip.parse().unwrap(),
            ports: BTreeMap::from([("http".to_string(), (Protocol::Tcp, 8080))]).into(),
            conditions: EndpointConditions::default(),
            info: std::sync::Arc::new(crate::EndpointInfo {
                hostname: hostname.map(str::to_string),
                pod_name: pod.map(str::to_string),
                node_name: None,
                zone: None,
                zone_hints: vec![],
                node_hints: vec![],
            }),
        }
    }

    fn pg(headless: bool, endpoints: Vec<MergedEndpoint>) -> ServiceState {
        let mut service = Service::cluster_ip(
            ObjectKey::new("db", "pg"),
            "10.96.0.7".parse().unwrap(),
            vec![ServicePort::tcp("http", 80)],
        );
        if headless {
            service.cluster_ips.clear();
            service.headless = true;
        }
        ServiceState {
            service: service.into(),
            endpoints,
        }
    }

    fn names(state: &ServiceState, pod_names: bool) -> Vec<String> {
        compile(state, "cluster.local", pod_names)
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.ends_with(".pg.db.svc.cluster.local") && !name.starts_with('_'))
            .collect()
    }

    #[test]
    fn endpoint_pod_names_name_hostless_endpoints_after_their_pod() {
        let long = "p".repeat(64);
        let state = pg(
            true,
            vec![
                endpoint("10.0.0.1", Some("Primary"), Some("pg-0")),
                endpoint("10.0.0.2", None, Some("PG-Replica-1")),
                endpoint("10.0.0.3", None, None),
                endpoint("10.0.0.4", None, Some(&long)),
                endpoint("10.0.0.5", None, Some("pg.5")),
                endpoint("fd00::6", None, Some("pg-6")),
            ],
        );
        assert_eq!(
            names(&state, true),
            [
                "10-0-0-3.pg.db.svc.cluster.local",
                "10-0-0-4.pg.db.svc.cluster.local",
                "10-0-0-5.pg.db.svc.cluster.local",
                "pg-6.pg.db.svc.cluster.local",
                "pg-replica-1.pg.db.svc.cluster.local",
                "primary.pg.db.svc.cluster.local",
            ],
            "hostname first, then a valid pod name (lowercase), else the dashed IP"
        );
        assert_eq!(
            names(&state, false),
            [
                "10-0-0-2.pg.db.svc.cluster.local",
                "10-0-0-3.pg.db.svc.cluster.local",
                "10-0-0-4.pg.db.svc.cluster.local",
                "10-0-0-5.pg.db.svc.cluster.local",
                "fd00--6.pg.db.svc.cluster.local",
                "primary.pg.db.svc.cluster.local",
            ],
            "off by default: pod names are ignored"
        );
        let compiled: BTreeMap<String, Records> =
            compile(&state, "cluster.local", true).into_iter().collect();
        assert_eq!(
            compiled["2.0.0.10.in-addr.arpa"].ptr,
            ["pg-replica-1.pg.db.svc.cluster.local"]
        );
        assert!(
            compiled["_http._tcp.pg.db.svc.cluster.local"]
                .srv
                .iter()
                .any(|srv| srv.target == "pg-replica-1.pg.db.svc.cluster.local")
        );
    }

    #[test]
    fn pod_names_do_not_touch_cluster_ip_services() {
        let state = pg(false, vec![endpoint("10.0.0.2", None, Some("pg-1"))]);
        assert!(names(&state, true).is_empty());
    }
}
