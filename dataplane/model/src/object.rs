//! The normalized objects a source feeds into a [`crate::Cluster`].

use crate::{
    EndpointSlice, Ingress, IngressClass, Kind, Node, ObjectKey, ObjectRef, Service, TlsSecret,
};
use std::sync::Arc;

/// One object. Payloads are shared, not copied: the source that read an object, the
/// [`crate::Cluster`] and the snapshots all hold the same allocation, so a cluster's objects
/// are in memory once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Namespace(String),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Ingress(Arc<Ingress>),
    IngressClass(Arc<IngressClass>),
    Secret(Arc<TlsSecret>),
    Node(Arc<Node>),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Service(_) => Kind::Service,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::Ingress(_) => Kind::Ingress,
            Object::IngressClass(_) => Kind::IngressClass,
            Object::Secret(_) => Kind::Secret,
            Object::Node(_) => Kind::Node,
        }
    }

    pub fn key(&self) -> ObjectKey {
        match self {
            Object::Namespace(name) => ObjectKey::cluster(name.clone()),
            Object::Service(s) => s.key.clone(),
            Object::EndpointSlice(s) => s.key.clone(),
            Object::Ingress(i) => i.key.clone(),
            Object::IngressClass(c) => ObjectKey::cluster(c.name.clone()),
            Object::Secret(s) => s.key.clone(),
            Object::Node(n) => ObjectKey::cluster(n.name.clone()),
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(self.kind(), self.key())
    }
}
