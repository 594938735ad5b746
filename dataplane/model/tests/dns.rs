//! The DNS table: every record the spec and CoreDNS give, and incremental updates that match a
//! fresh build.

use ferry_model::dns::{DnsBuilder, DnsTable, Srv};
use ferry_model::*;
use proptest::prelude::*;
use std::net::IpAddr;

const ZONE: &str = "cluster.local";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn port(name: &str, protocol: Protocol, number: u16) -> ServicePort {
    ServicePort {
        protocol,
        ..ServicePort::tcp(name, number)
    }
}

fn endpoint(
    addr: &str,
    ready: bool,
    hostname: Option<&str>,
    ports: &[(&str, u16)],
) -> MergedEndpoint {
    let info = ferry_model::EndpointInfo {
        hostname: hostname.map(str::to_string),
        ..Default::default()
    };
    MergedEndpoint::tcp(ip(addr), ports, ready, info)
}

fn table(services: Vec<ServiceState>) -> DnsTable {
    let mut state = DesiredState::default();
    for s in services {
        state
            .services
            .insert(s.service.key.clone(), std::sync::Arc::new(s));
    }
    let mut builder = DnsBuilder::new(ZONE, 1);
    builder.update(&state);
    builder.table()
}

fn cluster_ip_service() -> ServiceState {
    let mut svc = Service::cluster_ip(
        ObjectKey::new("shop", "web"),
        ip("10.96.0.10"),
        vec![
            port("http", Protocol::Tcp, 80),
            port("dns", Protocol::Udp, 53),
        ],
    );
    svc.cluster_ips.push(ip("fd00::10"));
    ServiceState {
        service: svc.into(),
        endpoints: vec![endpoint("10.0.0.1", true, None, &[("http", 8080)])],
    }
}

#[test]
fn a_cluster_ip_service_has_addresses_srv_and_ptr() {
    let t = table(vec![cluster_ip_service()]);
    let web = t.records("web.shop.svc.cluster.local").unwrap();
    assert_eq!(
        web.a,
        [ip("10.96.0.10")].map(|i| match i {
            IpAddr::V4(v) => v,
            _ => unreachable!(),
        })
    );
    assert_eq!(web.aaaa.len(), 1);
    assert_eq!(web.srv.len(), 2, "a bare-name SRV query returns every port");
    let http = t.records("_http._tcp.web.shop.svc.cluster.local").unwrap();
    assert_eq!(
        http.srv,
        [Srv {
            priority: 0,
            weight: 100,
            port: 80,
            target: "web.shop.svc.cluster.local".into()
        }]
    );
    assert!(t.records("_dns._udp.web.shop.svc.cluster.local").is_some());
    assert_eq!(
        t.records("10.0.96.10.in-addr.arpa").unwrap().ptr,
        ["web.shop.svc.cluster.local"]
    );
    let v6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
    assert_eq!(t.records(v6).unwrap().ptr, ["web.shop.svc.cluster.local"]);
    // Endpoint names are not served for ClusterIP Services.
    assert!(!t.exists("10-0-0-1.web.shop.svc.cluster.local"));
    // Empty non-terminals and the namespace exist (NODATA), other names do not (NXDOMAIN).
    for name in [
        "_tcp.web.shop.svc.cluster.local",
        "shop.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
        "shop.pod.cluster.local",
    ] {
        assert!(t.exists(name), "{name}");
    }
    for name in [
        "nope.shop.svc.cluster.local",
        "other.svc.cluster.local",
        "_udp._tcp.web.shop.svc.cluster.local",
    ] {
        assert!(!t.exists(name), "{name}");
    }
    assert_eq!(
        t.records("dns-version.cluster.local").unwrap().txt,
        ["1.1.0"]
    );
}

#[test]
fn a_headless_service_serves_its_ready_endpoints() {
    let mut svc = Service::cluster_ip(
        ObjectKey::new("db", "pg"),
        ip("10.96.0.1"),
        vec![port("sql", Protocol::Tcp, 5432)],
    );
    svc.cluster_ips.clear();
    svc.headless = true;
    let state = ServiceState {
        service: svc.clone().into(),
        endpoints: vec![
            endpoint("10.0.0.1", true, Some("pg-0"), &[("sql", 5432)]),
            endpoint("10.0.0.2", true, None, &[("sql", 5433)]),
            endpoint("10.0.0.3", false, Some("pg-2"), &[("sql", 5432)]),
        ],
    };
    let t = table(vec![state.clone()]);
    let pg = t.records("pg.db.svc.cluster.local").unwrap();
    assert_eq!(pg.a.len(), 2, "the unready endpoint is left out");
    assert!(t.records("pg-0.pg.db.svc.cluster.local").is_some());
    assert!(t.records("10-0-0-2.pg.db.svc.cluster.local").is_some());
    assert!(!t.exists("pg-2.pg.db.svc.cluster.local"));
    let srv = &t.records("_sql._tcp.pg.db.svc.cluster.local").unwrap().srv;
    let targets: Vec<(&str, u16, u16)> = srv
        .iter()
        .map(|s| (s.target.as_str(), s.port, s.weight))
        .collect();
    assert_eq!(
        targets,
        [
            ("pg-0.pg.db.svc.cluster.local", 5432, 50),
            ("10-0-0-2.pg.db.svc.cluster.local", 5433, 50)
        ]
    );
    assert_eq!(
        t.records("1.0.0.10.in-addr.arpa").unwrap().ptr,
        ["pg-0.pg.db.svc.cluster.local"]
    );

    // publishNotReadyAddresses counts every endpoint; no ready endpoint at all: no name.
    let mut all = state.clone();
    std::sync::Arc::make_mut(&mut all.service).publish_not_ready_addresses = true;
    assert_eq!(
        table(vec![all])
            .records("pg.db.svc.cluster.local")
            .unwrap()
            .a
            .len(),
        3
    );
    let mut none = state;
    none.endpoints.truncate(0);
    let t = table(vec![none]);
    assert!(!t.exists("pg.db.svc.cluster.local"));
    assert!(
        t.exists("db.svc.cluster.local"),
        "the namespace still exists"
    );
}

#[test]
fn an_external_name_is_a_cname() {
    let mut svc = Service::cluster_ip(ObjectKey::new("ns", "search"), ip("10.96.0.1"), vec![]);
    svc.cluster_ips.clear();
    svc.service_type = ServiceType::ExternalName;
    svc.external_name = Some("Search.Example.com".into());
    let t = table(vec![ServiceState {
        service: svc.into(),
        endpoints: vec![],
    }]);
    assert_eq!(
        t.records("search.ns.svc.cluster.local")
            .unwrap()
            .cname
            .as_deref(),
        Some("search.example.com")
    );
}

#[test]
fn the_serial_moves_only_on_change() {
    let mut state = DesiredState::default();
    let s = cluster_ip_service();
    state
        .services
        .insert(s.service.key.clone(), std::sync::Arc::new(s));
    let mut builder = DnsBuilder::new(ZONE, 100);
    assert!(builder.update(&state));
    let serial = builder.table().serial();
    assert!(serial > 100);
    assert!(!builder.update(&state));
    assert_eq!(builder.table().serial(), serial);
}

fn arb_service() -> impl Strategy<Value = Object> {
    (0u8..3, 0u8..2, any::<bool>(), 1u8..4).prop_map(|(n, ns, headless, ipb)| {
        let mut svc = Service::cluster_ip(
            ObjectKey::new(["a", "b"][usize::from(ns)], format!("s{n}")),
            IpAddr::from([10, 96, 0, ipb]),
            vec![ServicePort::tcp("http", 80)],
        );
        if headless {
            svc.headless = true;
            svc.cluster_ips.clear();
        }
        Object::Service(svc.into())
    })
}

fn arb_slice() -> impl Strategy<Value = Object> {
    (
        0u8..3,
        0u8..2,
        prop::collection::vec((1u8..5, any::<bool>()), 0..3),
    )
        .prop_map(|(n, ns, eps)| {
            Object::EndpointSlice(
                EndpointSlice {
                    key: ObjectKey::new(["a", "b"][usize::from(ns)], format!("s{n}-x")),
                    service_name: format!("s{n}"),
                    address_type: AddressFamily::IPv4,
                    ports: vec![EndpointPort {
                        name: "http".into(),
                        protocol: Protocol::Tcp,
                        port: Some(8080),
                    }],
                    endpoints: eps
                        .into_iter()
                        .map(|(i, ready)| Endpoint {
                            addresses: vec![IpAddr::from([10, 0, 0, i])],
                            conditions: EndpointConditions {
                                ready,
                                serving: ready,
                                terminating: false,
                            },
                            info: std::sync::Arc::new(ferry_model::EndpointInfo {
                                hostname: None,
                                pod_name: None,
                                node_name: None,
                                zone: None,
                                zone_hints: vec![],
                                node_hints: vec![],
                            }),
                        })
                        .collect(),
                }
                .into(),
            )
        })
}

proptest! {
    #[test]
    fn incremental_updates_match_a_fresh_build(
        steps in prop::collection::vec((prop_oneof![arb_service(), arb_slice()], any::<bool>()), 1..30)
    ) {
        let mut cluster = Cluster::new();
        let mut builder = DnsBuilder::new(ZONE, 1);
        for (object, delete) in steps {
            if delete {
                cluster.delete(&object.object_ref());
            } else {
                cluster.apply(object);
            }
            builder.update(cluster.state());
            let mut fresh = DnsBuilder::new(ZONE, 1);
            fresh.update(cluster.state());
            let (a, b) = (builder.table(), fresh.table());
            for name in ["a.svc.cluster.local", "b.svc.cluster.local", "s0.a.svc.cluster.local", "s1.b.svc.cluster.local", "2.0.96.10.in-addr.arpa", "_http._tcp.s2.a.svc.cluster.local"] {
                prop_assert_eq!(a.records(name), b.records(name), "{}", name);
                prop_assert_eq!(a.exists(name), b.exists(name), "{}", name);
            }
            prop_assert_eq!(a.len(), b.len());
        }
    }
}
