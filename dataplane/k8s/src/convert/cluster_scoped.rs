//! Namespace, Node, IngressClass and TLS Secret.

use super::Meta;
use crate::{InvalidObject, validate};
use ferry_model::{IngressClass, Node, Object, TlsSecret};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use std::sync::Arc;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

pub fn namespace(ns: &core::Namespace) -> Result<Object, InvalidObject> {
    let key = Meta::cluster("Namespace", &ns.metadata).key(validate::dns_label)?;
    Ok(Object::Namespace(key.name))
}

pub fn node(node: &core::Node) -> Result<Object, InvalidObject> {
    let meta = Meta::cluster("Node", &node.metadata);
    let key = meta.key(validate::dns_subdomain)?;
    let mut addresses = Vec::new();
    let listed = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    for address in listed.into_iter().flatten() {
        if matches!(address.type_.as_str(), "InternalIP" | "ExternalIP") {
            let ip =
                validate::ip(&address.address, "status.addresses").map_err(|e| meta.invalid(e))?;
            addresses.push(ip);
        }
    }
    let zone = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ZONE_LABEL))
        .cloned();
    Ok(Object::Node(Arc::new(Node {
        name: key.name,
        addresses,
        zone,
    })))
}

pub fn ingress_class(class: &net::IngressClass) -> Result<Object, InvalidObject> {
    let meta = Meta::cluster("IngressClass", &class.metadata);
    let key = meta.key(validate::dns_subdomain)?;
    let controller = class
        .spec
        .as_ref()
        .and_then(|s| s.controller.clone())
        .ok_or_else(|| meta.invalid("missing spec.controller"))?;
    let is_default = class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true");
    Ok(Object::IngressClass(Arc::new(IngressClass {
        name: key.name,
        controller,
        is_default,
    })))
}

/// A TLS Secret, or `None` for any other type of Secret.
pub fn secret(secret: &core::Secret) -> Result<Option<Object>, InvalidObject> {
    if secret.type_.as_deref() != Some("kubernetes.io/tls") {
        return Ok(None);
    }
    let meta = Meta::namespaced("Secret", &secret.metadata);
    let key = meta.key(validate::dns_subdomain)?;
    // stringData wins over data, as the API server merges them.
    let field = |name: &str| -> Option<Vec<u8>> {
        let string = secret.string_data.as_ref().and_then(|d| d.get(name));
        let data = secret.data.as_ref().and_then(|d| d.get(name));
        string
            .map(|s| s.as_bytes().to_vec())
            .or_else(|| data.map(|b| b.0.clone()))
    };
    let (Some(cert_pem), Some(key_pem)) = (field("tls.crt"), field("tls.key")) else {
        return Err(meta.invalid("a kubernetes.io/tls Secret needs both tls.crt and tls.key"));
    };
    Ok(Some(Object::Secret(Arc::new(TlsSecret {
        key,
        cert_pem,
        key_pem,
    }))))
}
