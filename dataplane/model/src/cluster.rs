//! `Cluster`: applies objects and re-derives only what they touch.

use crate::endpoints::merge_slices;
use crate::{DesiredState, EndpointSlice, Kind, Object, ObjectKey, ObjectRef, ServiceState};
use imbl::OrdMap;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What one call changed in the snapshot: Service refs name Services whose derived state
/// (spec or merged endpoints) changed; other refs name objects added, changed or removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub changed: BTreeSet<ObjectRef>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }

    pub fn services(&self) -> impl Iterator<Item = &ObjectKey> {
        self.changed
            .iter()
            .filter(|r| r.kind == Kind::Service)
            .map(|r| &r.key)
    }

    fn mark(&mut self, kind: Kind, key: ObjectKey) {
        self.changed.insert(ObjectRef::new(kind, key));
    }
}

/// The cluster as the sources last reported it, plus the snapshot compiled from it.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    state: DesiredState,
    slices: HashMap<ObjectKey, Arc<EndpointSlice>>,
    /// Service key -> keys of the slices labelled with it (the Service may not exist yet).
    slices_by_service: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
}

impl Cluster {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current snapshot; O(1).
    pub fn snapshot(&self) -> DesiredState {
        self.state.clone()
    }

    pub fn state(&self) -> &DesiredState {
        &self.state
    }

    /// EndpointSlices held, including those whose Service does not exist (yet).
    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    /// Adds or replaces one object.
    pub fn apply(&mut self, object: Object) -> Delta {
        let mut delta = Delta::default();
        match object {
            Object::Namespace(name) => {
                if self.state.namespaces.insert(name.clone()).is_none() {
                    delta.mark(Kind::Namespace, ObjectKey::cluster(name));
                }
            }
            Object::Service(service) => {
                let key = service.key.clone();
                let endpoints = self.merged_endpoints(&key);
                let derived = ServiceState { service, endpoints };
                put(
                    &mut self.state.services,
                    key,
                    Arc::new(derived),
                    Kind::Service,
                    &mut delta,
                );
            }
            Object::EndpointSlice(slice) => {
                let key = slice.key.clone();
                let service = slice.service_key();
                if let Some(old) = self.slices.insert(key.clone(), slice) {
                    let old_service = old.service_key();
                    if old_service != service {
                        self.unlink(&old_service, &key);
                        self.rederive(&old_service, &mut delta);
                    }
                }
                self.slices_by_service
                    .entry(service.clone())
                    .or_default()
                    .insert(key);
                self.rederive(&service, &mut delta);
            }
            Object::Ingress(ingress) => {
                let key = ingress.key.clone();
                put(
                    &mut self.state.ingresses,
                    key.clone(),
                    ingress,
                    Kind::Ingress,
                    &mut delta,
                );
            }
            Object::IngressClass(class) => {
                let name = class.name.clone();
                put(
                    &mut self.state.ingress_classes,
                    name,
                    class,
                    Kind::IngressClass,
                    &mut delta,
                );
            }
            Object::Secret(secret) => {
                let key = secret.key.clone();
                put(
                    &mut self.state.tls_secrets,
                    key,
                    secret,
                    Kind::Secret,
                    &mut delta,
                );
            }
            Object::Node(node) => {
                let name = node.name.clone();
                put(&mut self.state.nodes, name, node, Kind::Node, &mut delta);
            }
        }
        delta
    }

    /// Removes one object; removing an absent object changes nothing.
    pub fn delete(&mut self, object: &ObjectRef) -> Delta {
        let mut delta = Delta::default();
        let key = &object.key;
        let removed = match object.kind {
            Kind::Namespace => self.state.namespaces.remove(&key.name).is_some(),
            Kind::Service => self.state.services.remove(key).is_some(),
            Kind::EndpointSlice => {
                if let Some(old) = self.slices.remove(key) {
                    let service = old.service_key();
                    self.unlink(&service, key);
                    self.rederive(&service, &mut delta);
                }
                false
            }
            Kind::Ingress => self.state.ingresses.remove(key).is_some(),
            Kind::IngressClass => self.state.ingress_classes.remove(&key.name).is_some(),
            Kind::Secret => self.state.tls_secrets.remove(key).is_some(),
            Kind::Node => self.state.nodes.remove(&key.name).is_some(),
        };
        if removed {
            delta.mark(object.kind, key.clone());
        }
        delta
    }

    /// Replaces everything with `objects` (a relist or a rescan), as one atomic step.
    pub fn reset(&mut self, objects: impl IntoIterator<Item = Object>) -> Delta {
        let mut fresh = Cluster::new();
        for object in objects {
            fresh.apply(object);
        }
        let old = std::mem::replace(self, fresh);
        let mut delta = Delta::default();
        let (a, b) = (&old.state, &self.state);
        for name in a.namespaces.iter().filter(|n| !b.namespaces.contains(*n)) {
            delta.mark(Kind::Namespace, ObjectKey::cluster(name.clone()));
        }
        for name in b.namespaces.iter().filter(|n| !a.namespaces.contains(*n)) {
            delta.mark(Kind::Namespace, ObjectKey::cluster(name.clone()));
        }
        diff_keys(
            &a.services,
            &b.services,
            Kind::Service,
            &mut delta,
            Clone::clone,
        );
        diff_keys(
            &a.ingresses,
            &b.ingresses,
            Kind::Ingress,
            &mut delta,
            Clone::clone,
        );
        diff_keys(
            &a.tls_secrets,
            &b.tls_secrets,
            Kind::Secret,
            &mut delta,
            Clone::clone,
        );
        diff_keys(
            &a.ingress_classes,
            &b.ingress_classes,
            Kind::IngressClass,
            &mut delta,
            |n| ObjectKey::cluster(n.clone()),
        );
        diff_keys(&a.nodes, &b.nodes, Kind::Node, &mut delta, |n| {
            ObjectKey::cluster(n.clone())
        });
        delta
    }

    fn merged_endpoints(&self, service: &ObjectKey) -> Vec<crate::MergedEndpoint> {
        match self.slices_by_service.get(service) {
            Some(keys) => {
                merge_slices(keys.iter().filter_map(|k| self.slices.get(k).map(|s| &**s)))
            }
            None => Vec::new(),
        }
    }

    /// Recomputes one Service's endpoints after its slices changed.
    fn rederive(&mut self, service: &ObjectKey, delta: &mut Delta) {
        let Some(current) = self.state.services.get(service) else {
            return;
        };
        let endpoints = self.merged_endpoints(service);
        if current.endpoints != endpoints {
            let service_spec = current.service.clone();
            let derived = ServiceState {
                service: service_spec,
                endpoints,
            };
            self.state
                .services
                .insert(service.clone(), Arc::new(derived));
            delta.mark(Kind::Service, service.clone());
        }
    }

    fn unlink(&mut self, service: &ObjectKey, slice: &ObjectKey) {
        if let Some(keys) = self.slices_by_service.get_mut(service) {
            keys.remove(slice);
            if keys.is_empty() {
                self.slices_by_service.remove(service);
            }
        }
    }
}

/// Inserts `value` unless an equal value is already there, recording the change.
fn put<K: Ord + Clone, V: PartialEq>(
    map: &mut OrdMap<K, Arc<V>>,
    key: K,
    value: Arc<V>,
    kind: Kind,
    delta: &mut Delta,
) where
    ObjectKey: for<'a> From<&'a K>,
{
    if map.get(&key).is_some_and(|old| **old == *value) {
        return;
    }
    delta.mark(kind, ObjectKey::from(&key));
    map.insert(key, value);
}

fn diff_keys<K: Ord + Clone, V: PartialEq>(
    old: &OrdMap<K, Arc<V>>,
    new: &OrdMap<K, Arc<V>>,
    kind: Kind,
    delta: &mut Delta,
    to_key: impl Fn(&K) -> ObjectKey,
) {
    for (key, value) in old {
        if new.get(key) != Some(value) {
            delta.mark(kind, to_key(key));
        }
    }
    for key in new.keys() {
        if !old.contains_key(key) {
            delta.mark(kind, to_key(key));
        }
    }
}
