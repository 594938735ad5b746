//! Properties of `Cluster`: order independence, reset equivalence, clean deletion, exact deltas.

use ferry_model::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

const NAMESPACES: [&str; 2] = ["a", "b"];
const SERVICES: [&str; 3] = ["web", "db", "dns"];

fn key() -> impl Strategy<Value = ObjectKey> {
    (0..NAMESPACES.len(), 0..SERVICES.len())
        .prop_map(|(n, s)| ObjectKey::new(NAMESPACES[n], SERVICES[s]))
}

fn service() -> impl Strategy<Value = Object> {
    (key(), 1u8..4, any::<bool>()).prop_map(|(key, ip, named)| {
        let name = if named { "http" } else { "" };
        Object::Service(
            Service::cluster_ip(
                key,
                IpAddr::V4(Ipv4Addr::new(10, 96, 0, ip)),
                vec![ServicePort::tcp(name, 80)],
            )
            .into(),
        )
    })
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    (
        1u8..6,
        any::<bool>(),
        any::<bool>(),
        prop::option::of("n[12]"),
    )
        .prop_map(|(ip, ready, terminating, node)| Endpoint {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, ip))],
            conditions: EndpointConditions {
                ready,
                serving: ready || terminating,
                terminating,
            },
            info: std::sync::Arc::new(ferry_model::EndpointInfo {
                hostname: None,
                pod_name: None,
                node_name: node,
                zone: None,
                zone_hints: vec![],
                node_hints: vec![],
            }),
        })
}

fn slice() -> impl Strategy<Value = Object> {
    (
        key(),
        0u8..3,
        8000u16..8003,
        prop::collection::vec(endpoint(), 0..4),
    )
        .prop_map(|(svc, n, port, endpoints)| {
            Object::EndpointSlice(
                EndpointSlice {
                    key: ObjectKey::new(svc.namespace.clone(), format!("{}-{n}", svc.name)),
                    // Slices of one name may point at different Services across generations.
                    service_name: SERVICES[usize::from(n) % SERVICES.len()].to_string(),
                    address_type: AddressFamily::IPv4,
                    ports: vec![EndpointPort {
                        name: "http".into(),
                        protocol: Protocol::Tcp,
                        port: Some(port),
                    }],
                    endpoints,
                }
                .into(),
            )
        })
}

fn other() -> impl Strategy<Value = Object> {
    prop_oneof![
        (0..NAMESPACES.len()).prop_map(|n| Object::Namespace(NAMESPACES[n].into())),
        ("n[12]", prop::option::of("z[ab]")).prop_map(|(name, zone)| Object::Node(
            Node {
                name,
                addresses: vec![],
                zone,
            }
            .into()
        )),
    ]
}

fn object() -> impl Strategy<Value = Object> {
    prop_oneof![3 => service(), 4 => slice(), 1 => other()]
}

/// A set of objects with distinct identities (the last one of each ref wins).
fn distinct(objects: Vec<Object>) -> Vec<Object> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Object> = objects
        .into_iter()
        .rev()
        .filter(|o| seen.insert(o.object_ref()))
        .collect();
    out.reverse();
    out
}

fn apply_all(objects: impl IntoIterator<Item = Object>) -> Cluster {
    let mut cluster = Cluster::new();
    for o in objects {
        cluster.apply(o);
    }
    cluster
}

/// The refs whose snapshot entry differs between two states, computed from scratch.
fn changed_refs(a: &DesiredState, b: &DesiredState) -> BTreeSet<ObjectRef> {
    let mut out = BTreeSet::new();
    for ns in a.namespaces.iter().chain(b.namespaces.iter()) {
        if a.namespaces.contains(ns) != b.namespaces.contains(ns) {
            out.insert(ObjectRef::new(
                Kind::Namespace,
                ObjectKey::cluster(ns.clone()),
            ));
        }
    }
    for k in a.services.keys().chain(b.services.keys()) {
        if a.services.get(k) != b.services.get(k) {
            out.insert(ObjectRef::new(Kind::Service, k.clone()));
        }
    }
    for k in a.nodes.keys().chain(b.nodes.keys()) {
        if a.nodes.get(k) != b.nodes.get(k) {
            out.insert(ObjectRef::new(Kind::Node, ObjectKey::cluster(k.clone())));
        }
    }
    out
}

proptest! {
    #[test]
    fn event_order_does_not_change_the_result(
        objects in prop::collection::vec(object(), 0..24),
        seed in any::<u64>(),
    ) {
        let objects = distinct(objects);
        let mut shuffled = objects.clone();
        // A deterministic permutation from the seed.
        let n = shuffled.len();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(apply_all(objects).snapshot(), apply_all(shuffled).snapshot());
    }

    #[test]
    fn reset_equals_applying_the_list_from_empty(
        before in prop::collection::vec(object(), 0..16),
        list in prop::collection::vec(object(), 0..24),
    ) {
        let mut cluster = apply_all(before);
        cluster.reset(list.clone());
        prop_assert_eq!(cluster.snapshot(), apply_all(list).snapshot());
    }

    #[test]
    fn apply_then_delete_leaves_nothing(objects in prop::collection::vec(object(), 0..24)) {
        let objects = distinct(objects);
        let mut cluster = apply_all(objects.clone());
        for o in objects.iter().rev() {
            cluster.delete(&o.object_ref());
        }
        prop_assert!(cluster.snapshot().is_empty());
        // Re-applying after a full delete behaves like a fresh cluster.
        let again = apply_all(objects.clone());
        for o in objects {
            cluster.apply(o);
        }
        prop_assert_eq!(cluster.snapshot(), again.snapshot());
    }

    #[test]
    fn every_delta_names_exactly_what_changed(
        ops in prop::collection::vec((object(), any::<bool>()), 0..40),
        reset_list in prop::collection::vec(object(), 0..12),
    ) {
        let mut cluster = Cluster::new();
        for (object, delete) in ops {
            let before = cluster.snapshot();
            let delta = if delete {
                cluster.delete(&object.object_ref())
            } else {
                cluster.apply(object)
            };
            prop_assert_eq!(&delta.changed, &changed_refs(&before, &cluster.snapshot()));
        }
        let before = cluster.snapshot();
        let delta = cluster.reset(reset_list);
        prop_assert_eq!(&delta.changed, &changed_refs(&before, &cluster.snapshot()));
    }
}
