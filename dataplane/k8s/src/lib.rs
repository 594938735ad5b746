//! Kubernetes objects to Ferry model inputs.
//!
//! [`convert`] turns typed k8s-openapi objects into validated [`ferry_model::Object`]s, with an
//! [`InvalidObject`] error that names the object and the reason. [`manifest`] is the
//! manifest-directory source: it reads a folder of YAML/JSON manifests, watches it, and emits
//! [`SourceEvent`]s. Nothing here knows of BPF, DNS or HTTP.

pub mod convert;
mod error;
pub mod manifest;
mod metrics;
mod source;
mod validate;

pub use error::InvalidObject;
pub use metrics::K8sMetrics;
pub use source::{Change, SourceEvent};
