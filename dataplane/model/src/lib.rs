//! Ferry's pure core.
//!
//! Sources turn Kubernetes objects into the normalized [`Object`]s of this crate; a [`Cluster`]
//! applies them and compiles a [`DesiredState`] snapshot that the engines (LB, DNS, ingress)
//! consume. Nothing here does I/O or needs a runtime: tests build objects by hand.

mod cluster;
pub mod dns;
mod endpoints;
mod ingress;
mod key;
pub mod lb;
mod node;
mod object;
mod secret;
mod service;
mod state;

pub use cluster::{Cluster, Delta};
pub use endpoints::{
    Endpoint, EndpointConditions, EndpointInfo, EndpointPort, EndpointSlice, MergedEndpoint,
};
pub use ingress::{
    BackendPort, HttpPath, Ingress, IngressBackend, IngressClass, IngressRule, IngressTls, PathType,
};
pub use key::{Kind, ObjectKey, ObjectRef};
pub use node::Node;
pub use object::Object;
pub use secret::TlsSecret;
pub use service::{
    AddressFamily, Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort,
    TrafficDistribution, TrafficPolicy,
};
pub use state::{DesiredState, ServiceState};
