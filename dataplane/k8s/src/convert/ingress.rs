//! Ingress (networking.k8s.io/v1).

use super::Meta;
use crate::{InvalidObject, validate};
use ferry_model::{
    BackendPort, HttpPath, Ingress, IngressBackend, IngressRule, IngressTls, Object, PathType,
};
use k8s_openapi::api::networking::v1 as net;
use std::sync::Arc;

const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

pub fn ingress(ing: &net::Ingress) -> Result<Object, InvalidObject> {
    let meta = Meta::namespaced("Ingress", &ing.metadata);
    let key = meta.key(validate::dns_subdomain)?;
    let invalid = |reason: String| meta.invalid(reason);
    let spec = ing.spec.clone().unwrap_or_default();
    let class_name = spec.ingress_class_name.clone().or_else(|| {
        ing.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
            .cloned()
    });
    let default_backend = spec
        .default_backend
        .as_ref()
        .map(|b| backend(b, "spec.defaultBackend"))
        .transpose()
        .map_err(invalid)?;
    let mut rules = Vec::new();
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        let host = rule.host.clone().filter(|h| !h.is_empty());
        if let Some(h) = &host {
            host_name(h).map_err(|e| invalid(format!("spec.rules[{i}].host: {e}")))?;
        }
        let mut paths = Vec::new();
        for (j, p) in rule.http.iter().flat_map(|h| &h.paths).enumerate() {
            let what = format!("spec.rules[{i}].http.paths[{j}]");
            let path_type = match p.path_type.as_str() {
                "Exact" => PathType::Exact,
                "Prefix" => PathType::Prefix,
                "ImplementationSpecific" => PathType::ImplementationSpecific,
                other => {
                    return Err(invalid(format!(
                        "{what}.pathType {other:?} is not Exact, Prefix or ImplementationSpecific"
                    )));
                }
            };
            let path = p.path.clone().unwrap_or_else(|| "/".into());
            if path_type != PathType::ImplementationSpecific && !path.starts_with('/') {
                return Err(invalid(format!("{what}.path {path:?} must start with '/'")));
            }
            paths.push(HttpPath {
                path,
                path_type,
                backend: backend(&p.backend, &format!("{what}.backend")).map_err(invalid)?,
            });
        }
        rules.push(IngressRule { host, paths });
    }
    if default_backend.is_none() && rules.iter().all(|r| r.paths.is_empty()) {
        return Err(invalid(
            "neither spec.defaultBackend nor any spec.rules[].http.paths".into(),
        ));
    }
    let tls = spec
        .tls
        .iter()
        .flatten()
        .map(|t| IngressTls {
            hosts: t.hosts.clone().unwrap_or_default(),
            secret_name: t.secret_name.clone().filter(|s| !s.is_empty()),
        })
        .collect();
    Ok(Object::Ingress(Arc::new(Ingress {
        key,
        class_name,
        default_backend,
        tls,
        rules,
    })))
}

fn backend(b: &net::IngressBackend, what: &str) -> Result<IngressBackend, String> {
    match (&b.service, &b.resource) {
        (Some(svc), None) => {
            validate::dns1035_label(&svc.name).map_err(|e| format!("{what}.service.name: {e}"))?;
            let port = svc.port.as_ref();
            let port = match (
                port.and_then(|p| p.number),
                port.and_then(|p| p.name.clone()),
            ) {
                (Some(n), None) => BackendPort::Number(
                    validate::port(n, "port.number").map_err(|e| format!("{what}.service: {e}"))?,
                ),
                (None, Some(name)) => BackendPort::Name(name),
                _ => {
                    return Err(format!(
                        "{what}.service.port needs exactly one of name or number"
                    ));
                }
            };
            Ok(IngressBackend::Service {
                name: svc.name.clone(),
                port,
            })
        }
        (None, Some(r)) => Ok(IngressBackend::Resource {
            api_group: r.api_group.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
        }),
        _ => Err(format!("{what} needs exactly one of service or resource")),
    }
}

/// A rule host: a DNS subdomain, optionally with a leading `*.` wildcard label.
fn host_name(host: &str) -> Result<(), String> {
    validate::dns_subdomain(host.strip_prefix("*.").unwrap_or(host))
}
