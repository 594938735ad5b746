//! Ingress and IngressClass, normalized (networking.k8s.io/v1).

use crate::ObjectKey;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PathType {
    Exact,
    Prefix,
    ImplementationSpecific,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum BackendPort {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum IngressBackend {
    /// A Service in the Ingress's namespace.
    Service { name: String, port: BackendPort },
    /// A non-Service backend (`resource`), kept so it can be reported, not routed.
    Resource {
        api_group: Option<String>,
        kind: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HttpPath {
    /// Defaults to "/" when the manifest omits it.
    pub path: String,
    pub path_type: PathType,
    pub backend: IngressBackend,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IngressRule {
    /// `None` matches every host; may be a wildcard such as `*.example.com`.
    pub host: Option<String>,
    pub paths: Vec<HttpPath>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IngressTls {
    pub hosts: Vec<String>,
    /// A Secret in the Ingress's namespace; `None` asks for the default certificate.
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Ingress {
    pub key: ObjectKey,
    /// `spec.ingressClassName`, else the legacy `kubernetes.io/ingress.class` annotation.
    pub class_name: Option<String>,
    pub default_backend: Option<IngressBackend>,
    pub tls: Vec<IngressTls>,
    pub rules: Vec<IngressRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IngressClass {
    pub name: String,
    pub controller: String,
    /// Annotation `ingressclass.kubernetes.io/is-default-class: "true"`.
    pub is_default: bool,
}
