//! EndpointSlices and their merge into one endpoint list per Service.

use crate::{AddressFamily, ObjectKey, Protocol};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Endpoint conditions with the API defaults applied (ready/serving nil = true, terminating nil = false).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EndpointConditions {
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

impl Default for EndpointConditions {
    fn default() -> Self {
        Self {
            ready: true,
            serving: true,
            terminating: false,
        }
    }
}

impl EndpointConditions {
    /// Ranking used when one address appears in several slices: ready beats serving beats neither.
    fn rank(self) -> (bool, bool, bool) {
        (self.ready, self.serving, !self.terminating)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EndpointPort {
    /// Matches the Service port's name; empty for an unnamed port.
    pub name: String,
    pub protocol: Protocol,
    /// The resolved target port; `None` means "all ports" and is unusable for load balancing.
    pub port: Option<u16>,
}

/// What an endpoint says about itself besides its addresses and conditions. Shared, not
/// copied: by the endpoint's merged entries, and by the endpoints of a slice that say the
/// same (typically every hostname-less endpoint on one node), so a large cluster keeps one
/// copy per distinct value.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EndpointInfo {
    pub hostname: Option<String>,
    /// `targetRef.name` when `targetRef.kind` is `Pod`: the name DNS gives a hostname-less
    /// endpoint under `endpoint_pod_names`.
    pub pod_name: Option<String>,
    pub node_name: Option<String>,
    pub zone: Option<String>,
    /// `hints.forZones[].name`.
    pub zone_hints: Vec<String>,
    /// `hints.forNodes[].name`.
    pub node_hints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Endpoint {
    pub addresses: Vec<IpAddr>,
    pub conditions: EndpointConditions,
    #[serde(flatten)]
    pub info: Arc<EndpointInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EndpointSlice {
    pub key: ObjectKey,
    /// Label `kubernetes.io/service-name`: the Service (same namespace) this slice belongs to.
    pub service_name: String,
    pub address_type: AddressFamily,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

impl EndpointSlice {
    pub fn service_key(&self) -> ObjectKey {
        ObjectKey::new(self.key.namespace.clone(), self.service_name.clone())
    }
}

/// One endpoint address of a Service after merging all of its slices.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MergedEndpoint {
    pub address: IpAddr,
    /// Port name -> (protocol, port): the slice's resolved target ports for this address,
    /// shared by every endpoint of the slice.
    pub ports: Arc<BTreeMap<String, (Protocol, u16)>>,
    pub conditions: EndpointConditions,
    #[serde(flatten)]
    pub info: Arc<EndpointInfo>,
}

impl MergedEndpoint {
    /// An endpoint at `address` with the TCP `ports` (name, number), ready and serving or
    /// neither, for tests and builders.
    pub fn tcp(address: IpAddr, ports: &[(&str, u16)], ready: bool, info: EndpointInfo) -> Self {
        Self {
            address,
            ports: Arc::new(
                ports
                    .iter()
                    .map(|(name, port)| (name.to_string(), (Protocol::Tcp, *port)))
                    .collect(),
            ),
            conditions: EndpointConditions {
                ready,
                serving: ready,
                terminating: false,
            },
            info: Arc::new(info),
        }
    }
}

/// Merges every slice of one Service into one list, one entry per address, sorted by address.
///
/// An address in several slices (a pod moving between slices) keeps the best conditions; its
/// ports are the union, the first slice by name winning a name clash. The result depends only on
/// the set of slices, never on the order they arrived in.
pub fn merge_slices<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<MergedEndpoint> {
    let mut sorted: Vec<&EndpointSlice> = slices.into_iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut merged: BTreeMap<IpAddr, MergedEndpoint> = BTreeMap::new();
    for slice in sorted {
        let ports: Arc<BTreeMap<String, (Protocol, u16)>> = Arc::new(
            slice
                .ports
                .iter()
                .filter_map(|p| p.port.map(|port| (p.name.clone(), (p.protocol, port))))
                .collect(),
        );
        for endpoint in &slice.endpoints {
            for &address in &endpoint.addresses {
                if AddressFamily::of(&address) != slice.address_type {
                    continue;
                }
                let candidate = MergedEndpoint {
                    address,
                    ports: ports.clone(),
                    conditions: endpoint.conditions,
                    info: endpoint.info.clone(),
                };
                match merged.get_mut(&address) {
                    None => {
                        merged.insert(address, candidate);
                    }
                    Some(existing) => merge_into(existing, candidate),
                }
            }
        }
    }
    merged.into_values().collect()
}

fn merge_into(existing: &mut MergedEndpoint, candidate: MergedEndpoint) {
    let first = existing.ports.clone();
    let second = candidate.ports.clone();
    if candidate.conditions.rank() > existing.conditions.rank() {
        *existing = candidate;
    }
    // Ports seen first (lower slice name) still win a name clash.
    if !Arc::ptr_eq(&first, &second) && !second.keys().all(|k| first.contains_key(k)) {
        let mut ports = (*first).clone();
        for (name, port) in second.iter() {
            ports.entry(name.clone()).or_insert(*port);
        }
        existing.ports = Arc::new(ports);
    } else {
        existing.ports = first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(name: &str, ip: &str, port: u16, ready: bool) -> EndpointSlice {
        EndpointSlice {
            key: ObjectKey::new("ns", name),
            service_name: "svc".into(),
            address_type: AddressFamily::IPv4,
            ports: vec![EndpointPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: Some(port),
            }],
            endpoints: vec![Endpoint {
                addresses: vec![ip.parse().unwrap()],
                conditions: EndpointConditions {
                    ready,
                    serving: ready,
                    terminating: false,
                },
                info: std::sync::Arc::new(crate::EndpointInfo {
                    hostname: None,
                    pod_name: None,
                    node_name: None,
                    zone: None,
                    zone_hints: vec![],
                    node_hints: vec![],
                }),
            }],
        }
    }

    #[test]
    fn an_address_in_two_slices_keeps_the_ready_copy_whatever_the_order() {
        let a = slice("a", "10.0.0.1", 80, false);
        let b = slice("b", "10.0.0.1", 8080, true);
        let one = merge_slices([&a, &b]);
        let two = merge_slices([&b, &a]);
        assert_eq!(one, two);
        assert_eq!(one.len(), 1);
        assert!(one[0].conditions.ready);
        // Slice "a" sorts first, so its port wins the name clash.
        assert_eq!(one[0].ports["http"], (Protocol::Tcp, 80));
    }

    #[test]
    fn addresses_of_the_wrong_family_are_ignored() {
        let mut s = slice("a", "10.0.0.1", 80, true);
        s.endpoints[0].addresses.push("fd00::1".parse().unwrap());
        let merged = merge_slices([&s]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].address, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ports_without_a_number_are_dropped() {
        let mut s = slice("a", "10.0.0.1", 80, true);
        s.ports[0].port = None;
        assert!(merge_slices([&s])[0].ports.is_empty());
    }
}
