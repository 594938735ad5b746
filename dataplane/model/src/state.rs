//! The compiled snapshot the engines consume.

use crate::{Ingress, IngressClass, MergedEndpoint, Node, ObjectKey, Service, TlsSecret};
use imbl::ordmap::DiffItem;
use imbl::{OrdMap, OrdSet};
use serde::{Serialize, Serializer};
use std::sync::Arc;

/// One Service with the merged endpoints of all its slices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceState {
    pub service: Arc<Service>,
    pub endpoints: Vec<MergedEndpoint>,
}

/// Everything the engines serve, keyed deterministically.
///
/// Built on persistent maps: cloning a snapshot is O(1) and an update shares every unchanged
/// entry with the previous snapshot, so publishing one per change costs O(change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DesiredState {
    #[serde(serialize_with = "members")]
    pub namespaces: OrdSet<String>,
    #[serde(serialize_with = "values")]
    pub services: OrdMap<ObjectKey, Arc<ServiceState>>,
    #[serde(serialize_with = "values")]
    pub ingresses: OrdMap<ObjectKey, Arc<Ingress>>,
    #[serde(serialize_with = "values")]
    pub ingress_classes: OrdMap<String, Arc<IngressClass>>,
    #[serde(serialize_with = "values")]
    pub tls_secrets: OrdMap<ObjectKey, Arc<TlsSecret>>,
    #[serde(serialize_with = "values")]
    pub nodes: OrdMap<String, Arc<Node>>,
}

impl DesiredState {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
            && self.services.is_empty()
            && self.ingresses.is_empty()
            && self.ingress_classes.is_empty()
            && self.tls_secrets.is_empty()
            && self.nodes.is_empty()
    }

    /// Number of objects of each kind, for metrics.
    pub fn counts(&self) -> [(crate::Kind, usize); 6] {
        use crate::Kind;
        [
            (Kind::Namespace, self.namespaces.len()),
            (Kind::Service, self.services.len()),
            (Kind::Ingress, self.ingresses.len()),
            (Kind::IngressClass, self.ingress_classes.len()),
            (Kind::Secret, self.tls_secrets.len()),
            (Kind::Node, self.nodes.len()),
        ]
    }

    pub fn service(&self, key: &ObjectKey) -> Option<&Service> {
        self.services.get(key).map(|s| &*s.service)
    }

    /// The Services that differ from `previous`: each with its new entry, or `None` when it
    /// was removed. Only the parts of the two maps that are not shared are visited, so for a
    /// snapshot derived from `previous` this costs O(change · log n), not O(n).
    pub fn service_changes<'a>(
        &'a self,
        previous: &'a DesiredState,
    ) -> impl Iterator<Item = (&'a ObjectKey, Option<&'a Arc<ServiceState>>)> + 'a {
        previous
            .services
            .diff(&self.services)
            .map(|item| match item {
                DiffItem::Add(key, entry) => (key, Some(entry)),
                DiffItem::Update {
                    new: (key, entry), ..
                } => (key, Some(entry)),
                DiffItem::Remove(key, _) => (key, None),
            })
    }
}

fn members<S: Serializer>(set: &OrdSet<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(set.iter())
}

/// Serializes a map as the sequence of its values (the keys are inside the values), so that
/// JSON output has no non-string keys.
fn values<K: Ord + Clone, V: Serialize + Clone, S: Serializer>(
    map: &OrdMap<K, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(map.values())
}
