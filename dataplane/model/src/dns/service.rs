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
/// * headless endpoints: `<hostname or dashed IP>.<svc>.<ns>.svc.<zone>` A/AAAA;
/// * PTR from the reverse name of each ClusterIP and headless endpoint address.
pub fn compile(state: &ServiceState, zone: &str) -> Vec<(String, Records)> {
    let svc = &state.service;
    let name = format!("{}.{}.svc.{zone}", svc.key.name, svc.key.namespace).to_ascii_lowercase();
    let mut out: BTreeMap<String, Records> = BTreeMap::new();
    match svc.service_type {
        ServiceType::ExternalName => {
            if let Some(target) = &svc.external_name {
                out.entry(name.clone()).or_default().cname = Some(target.to_ascii_lowercase());
            }
        }
        _ if svc.headless => headless(state, &name, &mut out),
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

fn headless(state: &ServiceState, name: &str, out: &mut BTreeMap<String, Records>) {
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
        let host = endpoint
            .hostname
            .as_ref()
            .map_or_else(|| dashed_ip(endpoint.address), |h| h.to_ascii_lowercase());
        let host_name = format!("{host}.{name}");
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
