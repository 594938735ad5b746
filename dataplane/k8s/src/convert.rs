//! Typed Kubernetes objects to validated model objects.
//!
//! Each converter takes a k8s-openapi object (as a watch or a manifest gives it) and returns a
//! model [`Object`] or an [`InvalidObject`] that names the object and the first reason it cannot
//! be served. [`from_value`] dispatches untyped JSON by `apiVersion` and `kind`.

mod cluster_scoped;
mod endpoint_slice;
mod ingress;
mod service;

pub use cluster_scoped::{ingress_class, namespace, node, secret};
pub use endpoint_slice::endpoint_slice;
pub use ingress::ingress;
pub use service::service;

use crate::InvalidObject;
use crate::validate;
use ferry_model::{Object, ObjectKey};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The namespace a manifest without one lands in, as with `kubectl apply`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What a valid document becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converted {
    Object(Object),
    /// Valid, but not something Ferry serves (an unknown kind, a non-TLS Secret, ...).
    Ignored(Ignored),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// `Kind ns/name` as far as known.
    pub object: String,
    pub reason: String,
    /// Whether this deserves a warning (an unknown kind) or is routine (a non-TLS Secret).
    pub warn: bool,
}

/// Converts one untyped object (a YAML/JSON document, not a `List`).
pub fn from_value(value: Value) -> Result<Converted, InvalidObject> {
    let api_version = str_field(&value, &["apiVersion"])
        .unwrap_or_default()
        .to_string();
    let kind = kind_of(&value).to_string();
    let namespaced = matches!(
        kind_of(&value),
        "Service" | "EndpointSlice" | "Ingress" | "Secret"
    );
    let object_namespace = str_field(&value, &["metadata", "namespace"])
        .or(namespaced.then_some(DEFAULT_NAMESPACE))
        .map(str::to_string);
    let name = str_field(&value, &["metadata", "name"]).map(str::to_string);
    let invalid = |reason: String| {
        InvalidObject::new(&kind, object_namespace.as_deref(), name.as_deref(), reason)
    };
    if kind.is_empty() {
        return Err(invalid("missing field `kind`".into()));
    }
    if api_version.is_empty() {
        return Err(invalid("missing field `apiVersion`".into()));
    }
    let expected = match kind.as_str() {
        "Namespace" | "Service" | "Secret" | "Node" => "v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        "Ingress" | "IngressClass" => "networking.k8s.io/v1",
        _ => {
            return Ok(Converted::Ignored(Ignored {
                object: invalid(String::new()).object(),
                reason: format!("kind {kind} ({api_version}) is not served by ferry"),
                warn: true,
            }));
        }
    };
    if api_version != expected {
        return Err(invalid(format!(
            "apiVersion {api_version} is not supported for {kind} (want {expected})"
        )));
    }
    let object = match kind.as_str() {
        "Namespace" => namespace(&typed(value).map_err(invalid)?)?,
        "Service" => service(&typed(value).map_err(invalid)?)?,
        "EndpointSlice" => endpoint_slice(&typed(value).map_err(invalid)?)?,
        "Ingress" => ingress(&typed(value).map_err(invalid)?)?,
        "IngressClass" => ingress_class(&typed(value).map_err(invalid)?)?,
        "Node" => node(&typed(value).map_err(invalid)?)?,
        "Secret" => match secret(&typed(value).map_err(invalid)?)? {
            Some(object) => object,
            None => {
                return Ok(Converted::Ignored(Ignored {
                    object: invalid(String::new()).object(),
                    reason: "not a kubernetes.io/tls Secret".into(),
                    warn: false,
                }));
            }
        },
        _ => unreachable!("kinds are matched above"),
    };
    Ok(Converted::Object(object))
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

fn kind_of(value: &Value) -> &str {
    str_field(value, &["kind"]).unwrap_or_default()
}

fn str_field<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// Identifies and checks an object's metadata; namespaced kinds default to [`DEFAULT_NAMESPACE`].
pub(crate) struct Meta<'a> {
    kind: &'static str,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

impl<'a> Meta<'a> {
    pub(crate) fn namespaced(kind: &'static str, meta: &'a ObjectMeta) -> Self {
        Self {
            kind,
            namespace: Some(meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)),
            name: meta.name.as_deref(),
        }
    }

    pub(crate) fn cluster(kind: &'static str, meta: &'a ObjectMeta) -> Self {
        Self {
            kind,
            namespace: None,
            name: meta.name.as_deref(),
        }
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> InvalidObject {
        InvalidObject::new(self.kind, self.namespace, self.name, reason.into())
    }

    /// The key, after checking the name with `check` and the namespace as a DNS label.
    pub(crate) fn key(
        &self,
        check: fn(&str) -> Result<(), String>,
    ) -> Result<ObjectKey, InvalidObject> {
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| self.invalid("missing metadata.name"))?;
        check(name).map_err(|e| self.invalid(format!("metadata.name: {e}")))?;
        let namespace = self.namespace.unwrap_or_default();
        if self.namespace.is_some() {
            validate::dns_label(namespace)
                .map_err(|e| self.invalid(format!("metadata.namespace: {e}")))?;
        }
        Ok(ObjectKey::new(namespace, name))
    }
}
