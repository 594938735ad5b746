//! EndpointSlice (discovery.k8s.io/v1).

use super::Meta;
use super::service::protocol;
use crate::{InvalidObject, validate};
use ferry_model::{
    AddressFamily, Endpoint, EndpointConditions, EndpointInfo, EndpointPort, EndpointSlice, Object,
};
use k8s_openapi::api::discovery::v1 as discovery;
use std::collections::HashSet;
use std::sync::Arc;

/// The label that ties a slice to its Service (same namespace).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Converts a slice. FQDN slices (deprecated, unused by kube-proxy and DNS) are an error here
/// so that a manifest author learns they are not served.
pub fn endpoint_slice(slice: &discovery::EndpointSlice) -> Result<Object, InvalidObject> {
    let meta = Meta::namespaced("EndpointSlice", &slice.metadata);
    let key = meta.key(validate::dns_subdomain)?;
    let invalid = |reason: String| meta.invalid(reason);
    let service_name = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .cloned()
        .ok_or_else(|| invalid(format!("missing label {SERVICE_NAME_LABEL}")))?;
    let address_type = match slice.address_type.as_str() {
        "IPv4" => AddressFamily::IPv4,
        "IPv6" => AddressFamily::IPv6,
        other => {
            return Err(invalid(format!(
                "addressType {other:?} is not served (IPv4 or IPv6)"
            )));
        }
    };
    let mut ports = Vec::new();
    for (i, p) in slice.ports.iter().flatten().enumerate() {
        let what = format!("ports[{i}]");
        let port = p
            .port
            .map(|n| validate::port(n, "port"))
            .transpose()
            .map_err(|e| invalid(format!("{what}: {e}")))?;
        ports.push(EndpointPort {
            name: p.name.clone().unwrap_or_default(),
            protocol: protocol(p.protocol.as_deref())
                .map_err(|e| invalid(format!("{what}: {e}")))?,
            port,
        });
    }
    let mut endpoints = Vec::with_capacity(slice.endpoints.len());
    let mut infos: HashSet<Arc<EndpointInfo>> = HashSet::new();
    for (i, e) in slice.endpoints.iter().enumerate() {
        let what = format!("endpoints[{i}]");
        if e.addresses.is_empty() {
            return Err(invalid(format!("{what}: no addresses")));
        }
        let mut addresses = Vec::with_capacity(e.addresses.len());
        for a in &e.addresses {
            let ip = validate::ip(a, "address").map_err(|r| invalid(format!("{what}: {r}")))?;
            if AddressFamily::of(&ip) != address_type {
                return Err(invalid(format!(
                    "{what}: address {a} does not match addressType {}",
                    slice.address_type
                )));
            }
            addresses.push(ip);
        }
        let c = e.conditions.clone().unwrap_or_default();
        let hints = e.hints.clone().unwrap_or_default();
        let info = EndpointInfo {
            hostname: e.hostname.clone(),
            pod_name: e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone()),
            node_name: e.node_name.clone(),
            zone: e.zone.clone(),
            zone_hints: hints
                .for_zones
                .into_iter()
                .flatten()
                .map(|z| z.name)
                .collect(),
            node_hints: hints
                .for_nodes
                .into_iter()
                .flatten()
                .map(|n| n.name)
                .collect(),
        };
        // Endpoints that say the same share one copy.
        let info = match infos.get(&info) {
            Some(shared) => Arc::clone(shared),
            None => {
                let info = Arc::new(info);
                infos.insert(Arc::clone(&info));
                info
            }
        };
        endpoints.push(Endpoint {
            addresses,
            conditions: EndpointConditions {
                ready: c.ready.unwrap_or(true),
                serving: c.serving.unwrap_or(true),
                terminating: c.terminating.unwrap_or(false),
            },
            info,
        });
    }
    Ok(Object::EndpointSlice(Arc::new(EndpointSlice {
        key,
        service_name,
        address_type,
        ports,
        endpoints,
    })))
}

#[cfg(test)]
mod tests {
    use crate::convert::{Converted, from_value};
    use ferry_model::Object;
    use serde_json::json;

    #[test]
    fn a_pod_target_ref_names_the_endpoint_and_other_kinds_do_not() {
        let value = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "db-7f9c", "namespace": "shop"}},
            {"addresses": ["10.0.0.2"], "targetRef": {"kind": "Node", "name": "n1"}},
            {"addresses": ["10.0.0.3"]}
        ]});
        let Ok(Converted::Object(Object::EndpointSlice(slice))) = from_value(value) else {
            panic!("expected an EndpointSlice")
        };
        let pods: Vec<Option<&str>> = slice
            .endpoints
            .iter()
            .map(|e| e.info.pod_name.as_deref())
            .collect();
        assert_eq!(pods, [Some("db-7f9c"), None, None]);
    }
}
