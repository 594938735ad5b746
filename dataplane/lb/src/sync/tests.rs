//! The sync engine against an in-memory map: contents, minimal updates, and the invariant that
//! no intermediate state points a frontend at a half-written backend set.

use super::*;
use crate::common::{FRONTEND_FLAG_MAGLEV, FRONTEND_INLINE_BACKENDS};
use ferry_model::{
    AddressFamily, Cluster, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Object,
    Service, ServicePort,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Default)]
struct Maps {
    frontends: BTreeMap<(Scope, FrontendKey), Frontend>,
    /// The inline slots each frontend was written with.
    inline: BTreeMap<(Scope, FrontendKey), [Backend; FRONTEND_INLINE_BACKENDS]>,
    backends: BTreeMap<BackendSlotKey, Backend>,
    maglev: BTreeMap<MaglevKey, Box<MaglevTable>>,
}

impl Maps {
    fn apply(&mut self, op: &MapOp) {
        match op {
            MapOp::PutBackend(k, v) => {
                self.backends.insert(*k, *v);
            }
            MapOp::PutFrontend(s, k, v) => {
                self.frontends.insert((*s, *k), v.frontend);
                self.inline.insert((*s, *k), v.backends);
            }
            MapOp::DeleteFrontend(s, k) => {
                self.frontends.remove(&(*s, *k));
                self.inline.remove(&(*s, *k));
            }
            MapOp::DeleteBackend(k) => {
                self.backends.remove(k);
            }
            MapOp::PutMaglev(k, v) => {
                self.maglev.insert(*k, v.clone());
            }
            MapOp::DeleteMaglev(k) => {
                self.maglev.remove(k);
            }
        }
    }

    /// Every frontend's slots `0..count` exist under its `(set, revision)`, its inline slots
    /// equal them (and are zero past the set), and a Maglev frontend's table exists and points
    /// inside the set.
    fn consistent(&self) -> bool {
        self.frontends.iter().all(|(key, f)| {
            let inline_ok = self.inline[key].iter().zip(0u32..).all(|(inline, slot)| {
                let key = BackendSlotKey {
                    service_id: f.service_id,
                    revision: f.revision,
                    slot,
                };
                match slot < f.backend_count {
                    true => self.backends.get(&key) == Some(inline),
                    false => *inline == Backend::NONE,
                }
            });
            let table = MaglevKey {
                service_id: f.service_id,
                revision: f.revision,
            };
            let maglev_ok = f.flags & FRONTEND_FLAG_MAGLEV == 0
                || self.maglev.get(&table).is_some_and(|t| {
                    f.backend_count == 0 || t.slots.iter().all(|s| u32::from(*s) < f.backend_count)
                });
            inline_ok
                && maglev_ok
                && (0..f.backend_count).all(|slot| {
                    self.backends.contains_key(&BackendSlotKey {
                        service_id: f.service_id,
                        revision: f.revision,
                        slot,
                    })
                })
        })
    }

    /// Frontend address -> its backend addresses: what a client can reach, ids aside.
    fn reachable(&self) -> BTreeMap<(Scope, FrontendKey), Vec<SocketAddr>> {
        self.frontends
            .iter()
            .map(|(k, f)| {
                let mut addrs: Vec<SocketAddr> = (0..f.backend_count)
                    .map(|slot| {
                        let key = BackendSlotKey {
                            service_id: f.service_id,
                            revision: f.revision,
                            slot,
                        };
                        self.backends[&key].socket_addr().unwrap()
                    })
                    .collect();
                addrs.sort();
                (*k, addrs)
            })
            .collect()
    }
}

fn node() -> NodeContext {
    NodeContext {
        name: "node-a".into(),
        ips: vec!["192.0.2.10".parse().unwrap()],
        zone: None,
        local_dns: None,
    }
}

fn service(name: &str, ip: u8) -> Object {
    Object::Service(Arc::new(Service::cluster_ip(
        ObjectKey::new("ns", name),
        IpAddr::V4(Ipv4Addr::new(10, 96, 0, ip)),
        vec![ServicePort::tcp("http", 80)],
    )))
}

fn slice(service: &str, name: &str, ips: &[u8]) -> Object {
    Object::EndpointSlice(Arc::new(EndpointSlice {
        key: ObjectKey::new("ns", name),
        service_name: service.into(),
        address_type: AddressFamily::IPv4,
        ports: vec![EndpointPort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: Some(8080),
        }],
        endpoints: ips
            .iter()
            .map(|ip| Endpoint {
                addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, *ip))],
                conditions: EndpointConditions::default(),
                info: std::sync::Arc::new(ferry_model::EndpointInfo {
                    hostname: None,
                    pod_name: None,
                    node_name: Some("node-a".into()),
                    zone: None,
                    zone_hints: vec![],
                    node_hints: vec![],
                }),
            })
            .collect(),
    }))
}

/// Syncs and applies, checking consistency after every single operation.
fn sync(lb: &mut LbState, maps: &mut Maps, cluster: &Cluster) -> SyncReport {
    let report = lb.sync(cluster.state(), &node(), |op| {
        maps.apply(op);
        assert!(maps.consistent(), "inconsistent after {op:?}");
        Ok(())
    });
    assert!(report.failed.is_empty());
    report
}

fn reachable_from_scratch(cluster: &Cluster) -> BTreeMap<(Scope, FrontendKey), Vec<SocketAddr>> {
    let mut maps = Maps::default();
    LbState::new(node()).sync(cluster.state(), &node(), |op| {
        maps.apply(op);
        Ok(())
    });
    maps.reachable()
}

fn key(ip: &str) -> (Scope, FrontendKey) {
    (
        Scope::Socket,
        FrontendKey::new(ip.parse().unwrap(), IPPROTO_TCP),
    )
}

#[test]
fn programs_a_service_then_does_nothing_while_it_is_unchanged() {
    let mut cluster = Cluster::new();
    cluster.apply(service("web", 10));
    cluster.apply(slice("web", "web-1", &[1, 2]));
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    let report = sync(&mut lb, &mut maps, &cluster);
    assert_eq!(report.ops, 3, "two slots, then the frontend");
    assert_eq!(
        maps.reachable()[&key("10.96.0.10:80")],
        [
            "10.0.0.1:8080".parse().unwrap(),
            "10.0.0.2:8080".parse().unwrap()
        ] as [SocketAddr; 2]
    );
    let again = sync(&mut lb, &mut maps, &cluster);
    assert_eq!((again.services_changed, again.ops), (0, 0));

    // Another Service changing leaves this one alone.
    cluster.apply(service("db", 11));
    let report = sync(&mut lb, &mut maps, &cluster);
    assert_eq!(report.services_changed, 1);
}

#[test]
fn an_endpoint_change_swaps_the_set_atomically_and_deletes_the_old_one() {
    let mut cluster = Cluster::new();
    cluster.apply(service("web", 10));
    cluster.apply(slice("web", "web-1", &[1, 2]));
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    sync(&mut lb, &mut maps, &cluster);
    cluster.apply(slice("web", "web-1", &[2, 3]));
    let report = sync(&mut lb, &mut maps, &cluster);
    assert_eq!(
        report.ops,
        2 + 1 + 2,
        "new slots, the frontend switch, old slots deleted"
    );
    assert_eq!(maps.backends.len(), 2);
    assert_eq!(maps.reachable(), reachable_from_scratch(&cluster));
}

#[test]
fn deleting_the_service_empties_the_maps() {
    let mut cluster = Cluster::new();
    cluster.apply(service("web", 10));
    cluster.apply(slice("web", "web-1", &[1]));
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    sync(&mut lb, &mut maps, &cluster);
    cluster.delete(&ObjectRef::new(Kind::Service, ObjectKey::new("ns", "web")));
    sync(&mut lb, &mut maps, &cluster);
    assert!(maps.frontends.is_empty() && maps.backends.is_empty());
    assert_eq!(
        (lb.services(), lb.frontends(), lb.backend_slots()),
        (0, 0, 0)
    );
}

#[test]
fn a_second_claim_on_a_frontend_is_reported_not_programmed() {
    let mut cluster = Cluster::new();
    cluster.apply(service("a", 10));
    cluster.apply(service("b", 10));
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    let report = sync(&mut lb, &mut maps, &cluster);
    assert_eq!(
        report.conflicts,
        [(ObjectKey::new("ns", "b"), "10.96.0.10:80".parse().unwrap())]
    );
    assert_eq!(maps.frontends.len(), 1);
}

#[test]
fn a_failed_update_is_retried_on_the_next_sync() {
    let mut cluster = Cluster::new();
    cluster.apply(service("web", 10));
    cluster.apply(slice("web", "web-1", &[1]));
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    let report = lb.sync(cluster.state(), &node(), |_| {
        Err(LbError::MapMissing { map: "FRONTENDS" })
    });
    assert_eq!(report.failed.len(), 1);
    sync(&mut lb, &mut maps, &cluster);
    assert_eq!(maps.reachable(), reachable_from_scratch(&cluster));
}

#[test]
fn udp_backends_leaving_a_frontend_are_reported_stale() {
    let mut svc = Service::cluster_ip(
        ObjectKey::new("ns", "dns"),
        "10.96.0.53".parse().unwrap(),
        vec![ServicePort {
            protocol: Protocol::Udp,
            ..ServicePort::tcp("dns", 53)
        }],
    );
    svc.ports[0].target_port = ferry_model::TargetPort::Number(53);
    let mut cluster = Cluster::new();
    cluster.apply(Object::Service(svc.into()));
    fn dns_slice(cluster: &mut Cluster, ips: &[u8]) {
        let Object::EndpointSlice(mut s) = slice("dns", "dns-1", ips) else {
            unreachable!()
        };
        Arc::make_mut(&mut s).ports = vec![EndpointPort {
            name: "dns".into(),
            protocol: Protocol::Udp,
            port: Some(53),
        }];
        cluster.apply(Object::EndpointSlice(s));
    }
    dns_slice(&mut cluster, &[1, 2]);
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    sync(&mut lb, &mut maps, &cluster);
    dns_slice(&mut cluster, &[2]);
    let report = sync(&mut lb, &mut maps, &cluster);
    assert_eq!(
        report.stale_udp_backends,
        BTreeSet::from(["10.0.0.1:53".parse().unwrap()])
    );
}

proptest! {
    #[test]
    fn any_sequence_of_changes_stays_consistent_and_matches_a_fresh_sync(
        steps in prop::collection::vec((0u8..4, 0u8..3, prop::collection::vec(1u8..6, 0..4), any::<bool>()), 1..30)
    ) {
        let mut cluster = Cluster::new();
        let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
        for (svc, ip, endpoints, delete) in steps {
            let name = format!("svc-{svc}");
            match (delete, endpoints.is_empty()) {
                (true, true) => { cluster.delete(&ObjectRef::new(Kind::Service, ObjectKey::new("ns", &name))); }
                (true, false) => { cluster.delete(&ObjectRef::new(Kind::EndpointSlice, ObjectKey::new("ns", format!("{name}-1")))); }
                (false, true) => { cluster.apply(service(&name, 10 + ip)); }
                (false, false) => { cluster.apply(slice(&name, &format!("{name}-1"), &endpoints)); }
            }
            sync(&mut lb, &mut maps, &cluster);
            prop_assert_eq!(maps.reachable(), reachable_from_scratch(&cluster));
            prop_assert_eq!(maps.frontends.len(), lb.frontends());
            prop_assert_eq!(maps.backends.len(), lb.backend_slots());
        }
    }
}

#[test]
fn a_restart_adopts_the_maps_and_changes_nothing_that_is_still_wanted() {
    let mut cluster = Cluster::new();
    cluster.apply(service("web", 10));
    cluster.apply(slice("web", "web-1", &[1, 2]));
    cluster.apply(service("old", 11));
    cluster.apply(slice("old", "old-1", &[3]));
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    sync(&mut lb, &mut maps, &cluster);
    // Garbage a crash could leave: a slot no frontend points at.
    let orphan = BackendSlotKey {
        service_id: 999,
        revision: 7,
        slot: 0,
    };
    maps.backends
        .insert(orphan, Backend::new("10.0.0.9:1".parse().unwrap()));

    // The new daemon sees a cluster where "old" is gone.
    cluster.delete(&ObjectRef::new(Kind::Service, ObjectKey::new("ns", "old")));
    let frontends = maps
        .frontends
        .iter()
        .map(|((s, k), v)| (*s, *k, *v))
        .collect();
    let backends = maps.backends.iter().map(|(k, v)| (*k, *v)).collect();
    let (mut adopted, garbage, tables) = LbState::adopt(node(), frontends, backends, &[]);
    assert!(tables.is_empty());
    assert_eq!(garbage, [orphan]);
    maps.backends.remove(&orphan);
    let mut ops = Vec::new();
    let report = adopted.sync(cluster.state(), &node(), |op| {
        ops.push(op.clone());
        maps.apply(op);
        assert!(maps.consistent());
        Ok(())
    });
    assert!(report.failed.is_empty());
    assert!(
        ops.iter()
            .all(|op| matches!(op, MapOp::DeleteFrontend(..) | MapOp::DeleteBackend(..))),
        "only the deleted Service's entries change: {ops:?}"
    );
    assert_eq!(ops.len(), 2, "its frontend and its one slot: {ops:?}");
    assert_eq!(maps.reachable(), reachable_from_scratch(&cluster));
    // And afterwards it is an ordinary state: nothing more to do.
    let again = adopted.sync(cluster.state(), &node(), |_| panic!("no op expected"));
    assert_eq!(again.ops, 0);
}

#[test]
fn a_backend_that_stays_keeps_its_set_id_and_slot_for_affinity() {
    let mut cluster = Cluster::new();
    cluster.apply(service("web", 10));
    cluster.apply(slice("web", "web-1", &[1, 2, 3]));
    let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
    sync(&mut lb, &mut maps, &cluster);
    let placement = |maps: &Maps, ip: &str| -> (u32, u32) {
        let frontend = maps.frontends[&key("10.96.0.10:80")];
        let target: SocketAddr = ip.parse().unwrap();
        let slot = (0..frontend.backend_count)
            .find(|slot| {
                let k = BackendSlotKey {
                    service_id: frontend.service_id,
                    revision: frontend.revision,
                    slot: *slot,
                };
                maps.backends[&k].socket_addr() == Some(target)
            })
            .expect("backend in the set");
        (frontend.service_id, slot)
    };
    let before = placement(&maps, "10.0.0.3:8080");
    cluster.apply(slice("web", "web-1", &[1, 3, 4]));
    sync(&mut lb, &mut maps, &cluster);
    assert_eq!(placement(&maps, "10.0.0.3:8080"), before);
    assert_eq!(maps.reachable(), reachable_from_scratch(&cluster));
}

fn nodeport(name: &str, ip: u8, node_port: u16) -> Object {
    let Object::Service(mut svc) = service(name, ip) else {
        unreachable!()
    };
    let spec = Arc::make_mut(&mut svc);
    spec.service_type = ferry_model::ServiceType::NodePort;
    spec.ports[0].node_port = Some(node_port);
    Object::Service(svc)
}

#[test]
fn maglev_tables_follow_their_sets_and_agree_across_nodes() {
    let mut cluster = Cluster::new();
    cluster.apply(nodeport("web", 10, 30080));
    cluster.apply(slice("web", "web-1", &[1, 2, 3]));
    let (mut lb, mut maps) = (
        LbState::new(node()).with_algorithm(Algorithm::Maglev),
        Maps::default(),
    );
    sync(&mut lb, &mut maps, &cluster);
    let packet: Vec<&Frontend> = maps
        .frontends
        .iter()
        .filter(|((scope, _), _)| *scope == Scope::Packet)
        .map(|(_, f)| f)
        .collect();
    assert_eq!(packet.len(), 1);
    assert!(packet[0].flags & FRONTEND_FLAG_MAGLEV != 0);
    assert_eq!(
        maps.maglev.len(),
        1,
        "only the packet-scope set has a table"
    );
    let socket_flags: Vec<u32> = maps
        .frontends
        .iter()
        .filter(|((scope, _), _)| *scope == Scope::Socket)
        .map(|(_, f)| f.flags)
        .collect();
    assert!(socket_flags.iter().all(|f| f & FRONTEND_FLAG_MAGLEV == 0));

    // Another node got here through another history: its slots differ, its choices do not.
    let resolve = |maps: &Maps| -> Vec<SocketAddr> {
        let (_, f) = maps
            .frontends
            .iter()
            .find(|((scope, _), _)| *scope == Scope::Packet)
            .unwrap();
        let table = &maps.maglev[&MaglevKey {
            service_id: f.service_id,
            revision: f.revision,
        }];
        table.slots[..crate::common::maglev::MAGLEV_TABLE_SIZE]
            .iter()
            .map(|slot| {
                let key = BackendSlotKey {
                    service_id: f.service_id,
                    revision: f.revision,
                    slot: u32::from(*slot),
                };
                maps.backends[&key].socket_addr().unwrap()
            })
            .collect()
    };
    let mut other_cluster = Cluster::new();
    other_cluster.apply(nodeport("web", 10, 30080));
    other_cluster.apply(slice("web", "web-1", &[3, 4]));
    let (mut other, mut other_maps) = (
        LbState::new(node()).with_algorithm(Algorithm::Maglev),
        Maps::default(),
    );
    sync(&mut other, &mut other_maps, &other_cluster);
    other_cluster.apply(slice("web", "web-1", &[3, 2, 1]));
    sync(&mut other, &mut other_maps, &other_cluster);
    assert_eq!(resolve(&maps), resolve(&other_maps));

    // A change replaces the table with the set; the old one goes.
    cluster.apply(slice("web", "web-1", &[1, 2]));
    sync(&mut lb, &mut maps, &cluster);
    assert_eq!(maps.maglev.len(), 1);
    cluster.delete(&ObjectRef::new(Kind::Service, ObjectKey::new("ns", "web")));
    sync(&mut lb, &mut maps, &cluster);
    assert!(maps.maglev.is_empty() && maps.backends.is_empty());
}

#[test]
fn node_local_dns_steering_after_a_restart_keeps_every_set_whole() {
    // The adopted state holds an empty set (web has no endpoints): its id and revision must
    // not be handed out again while its frontend points at them.
    let dns = ObjectKey::new("kube-system", "kube-dns");
    let mut spec = Service::cluster_ip(
        dns.clone(),
        "10.96.0.10".parse().unwrap(),
        vec![
            ServicePort {
                protocol: Protocol::Udp,
                ..ServicePort::tcp("dns", 53)
            },
            ServicePort::tcp("dns-tcp", 53),
        ],
    );
    spec.ports[0].target_port = ferry_model::TargetPort::Number(53);
    let mut cluster = Cluster::new();
    cluster.apply(Object::Service(spec.into()));
    let Object::EndpointSlice(mut s) = slice("kube-dns", "kube-dns-1", &[1]) else {
        unreachable!()
    };
    let s_mut = Arc::make_mut(&mut s);
    s_mut.key = ObjectKey::new("kube-system", "kube-dns-1");
    s_mut.ports = vec![
        EndpointPort {
            name: "dns".into(),
            protocol: Protocol::Udp,
            port: Some(53),
        },
        EndpointPort {
            name: "dns-tcp".into(),
            protocol: Protocol::Tcp,
            port: Some(53),
        },
    ];
    cluster.apply(Object::EndpointSlice(s));
    cluster.apply(service("web", 20));
    let local: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let steered = node().with_local_dns(Some(ferry_model::lb::LocalDns {
        service: dns,
        listen: vec![local],
    }));
    for _ in 0..50 {
        let (mut lb, mut maps) = (LbState::new(node()), Maps::default());
        sync(&mut lb, &mut maps, &cluster);
        let frontends = maps
            .frontends
            .iter()
            .map(|((s, k), v)| (*s, *k, *v))
            .collect();
        let backends = maps.backends.iter().map(|(k, v)| (*k, *v)).collect();
        let (mut adopted, _, _) = LbState::adopt(node(), frontends, backends, &[]);
        let report = adopted.sync(cluster.state(), &steered, |op| {
            maps.apply(op);
            assert!(maps.consistent(), "after {op:?}: {maps:?}");
            Ok(())
        });
        assert!(report.failed.is_empty());
        let reachable = maps.reachable();
        assert_eq!(
            reachable.values().filter(|b| *b == &[local]).count(),
            2,
            "{reachable:?}"
        );
        let report = adopted.sync(cluster.state(), &node(), |op| {
            maps.apply(op);
            assert!(maps.consistent(), "after {op:?}: {maps:?}");
            Ok(())
        });
        assert!(report.failed.is_empty());
        assert_eq!(maps.reachable(), reachable_from_scratch(&cluster));
    }
}
