//! Table tests in the shape of kube-proxy's `TestCategorizeEndpoints`, and frontend compilation.

use super::*;
use crate::{
    EndpointConditions, MergedEndpoint, Service, ServicePort, SessionAffinity, TrafficDistribution,
};
use std::collections::BTreeMap;

const NODE: &str = "node-a";

fn node() -> NodeContext {
    NodeContext {
        name: NODE.into(),
        ips: vec!["192.0.2.10".parse().unwrap()],
        zone: Some("zone-a".into()),
        local_dns: None,
    }
}

/// An endpoint `10.0.0.<n>` serving port `http` on 8080.
struct Ep {
    n: u8,
    ready: bool,
    serving: bool,
    terminating: bool,
    node: &'static str,
    zone: &'static str,
    hints: &'static [&'static str],
}

const fn ep(n: u8, node: &'static str) -> Ep {
    Ep {
        n,
        ready: true,
        serving: true,
        terminating: false,
        node,
        zone: "zone-a",
        hints: &[],
    }
}

impl Ep {
    const fn terminating(mut self, serving: bool) -> Self {
        self.ready = false;
        self.serving = serving;
        self.terminating = true;
        self
    }
    const fn not_ready(mut self) -> Self {
        self.ready = false;
        self.serving = false;
        self
    }
    const fn zone(mut self, zone: &'static str, hints: &'static [&'static str]) -> Self {
        self.zone = zone;
        self.hints = hints;
        self
    }
    fn merged(&self) -> MergedEndpoint {
        MergedEndpoint {
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, self.n)),
            ports: BTreeMap::from([("http".into(), (Protocol::Tcp, 8080))]).into(),
            conditions: EndpointConditions {
                ready: self.ready,
                serving: self.serving,
                terminating: self.terminating,
            },
            info: std::sync::Arc::new(crate::EndpointInfo {
                hostname: None,
                pod_name: None,
                node_name: Some(self.node.into()),
                zone: Some(self.zone.into()),
                zone_hints: self.hints.iter().map(|h| h.to_string()).collect(),
                node_hints: vec![],
            }),
        }
    }
}

fn addrs(ns: &[u8]) -> Vec<SocketAddr> {
    ns.iter()
        .map(|n| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, *n)), 8080))
        .collect()
}

fn only_addrs(pairs: &[(SocketAddr, bool)]) -> Vec<SocketAddr> {
    pairs.iter().map(|(a, _)| *a).collect()
}

fn service() -> Service {
    Service::cluster_ip(
        ObjectKey::new("ns", "svc"),
        "10.96.0.10".parse().unwrap(),
        vec![ServicePort::tcp("http", 80)],
    )
}

fn categorize_eps(svc: &Service, eps: &[Ep]) -> Category {
    let merged: Vec<MergedEndpoint> = eps.iter().map(Ep::merged).collect();
    categorize(&merged, svc, &svc.ports[0], AddressFamily::IPv4, &node())
}

#[test]
fn categorize_endpoints_like_kube_proxy() {
    let plain = service();
    let mut prefer_close = service();
    prefer_close.traffic_distribution = Some(TrafficDistribution::PreferSameZone);
    let mut prefer_node = service();
    prefer_node.traffic_distribution = Some(TrafficDistribution::PreferSameNode);

    struct Case {
        name: &'static str,
        svc: Service,
        eps: Vec<Ep>,
        cluster: &'static [u8],
        local: &'static [u8],
    }
    let cases = vec![
        Case {
            name: "ready endpoints everywhere",
            svc: plain.clone(),
            eps: vec![ep(1, NODE), ep(2, "node-b"), ep(3, "node-b")],
            cluster: &[1, 2, 3],
            local: &[1],
        },
        Case {
            name: "not-ready endpoints are never used",
            svc: plain.clone(),
            eps: vec![ep(1, NODE).not_ready(), ep(2, "node-b")],
            cluster: &[2],
            local: &[],
        },
        Case {
            name: "no ready endpoint: serving terminating ones, not non-serving ones",
            svc: plain.clone(),
            eps: vec![
                ep(1, NODE).terminating(true),
                ep(2, "node-b").terminating(false),
                ep(3, "node-b").terminating(true),
            ],
            cluster: &[1, 3],
            local: &[1],
        },
        Case {
            name: "terminating endpoints are not used while one is ready",
            svc: plain.clone(),
            eps: vec![ep(1, NODE).terminating(true), ep(2, "node-b")],
            cluster: &[2],
            local: &[1],
        },
        Case {
            name: "zone hints narrow the cluster set when every ready endpoint has them",
            svc: plain.clone(),
            eps: vec![
                ep(1, "node-b").zone("zone-a", &["zone-a"]),
                ep(2, "node-c").zone("zone-b", &["zone-b"]),
            ],
            cluster: &[1],
            local: &[],
        },
        Case {
            name: "zone hints are ignored when one ready endpoint lacks them",
            svc: plain.clone(),
            eps: vec![
                ep(1, "node-b").zone("zone-a", &["zone-a"]),
                ep(2, "node-c").zone("zone-b", &[]),
            ],
            cluster: &[1, 2],
            local: &[],
        },
        Case {
            name: "PreferClose keeps this zone's endpoints",
            svc: prefer_close.clone(),
            eps: vec![ep(1, "node-b"), ep(2, "node-c").zone("zone-b", &[])],
            cluster: &[1],
            local: &[],
        },
        Case {
            name: "PreferClose falls back to all when the zone has none",
            svc: prefer_close,
            eps: vec![
                ep(1, "node-b").zone("zone-c", &[]),
                ep(2, "node-c").zone("zone-b", &[]),
            ],
            cluster: &[1, 2],
            local: &[],
        },
        Case {
            name: "PreferSameNode keeps this node's endpoints",
            svc: prefer_node,
            eps: vec![ep(1, NODE), ep(2, "node-b")],
            cluster: &[1],
            local: &[1],
        },
    ];
    for case in cases {
        let got = categorize_eps(&case.svc, &case.eps);
        assert_eq!(
            only_addrs(&got.cluster),
            addrs(case.cluster),
            "{}: cluster",
            case.name
        );
        assert_eq!(
            only_addrs(&got.local),
            addrs(case.local),
            "{}: local",
            case.name
        );
    }
}

#[test]
fn named_target_ports_resolve_per_endpoint() {
    let svc = service();
    let mut a = ep(1, NODE).merged();
    a.ports = BTreeMap::from([("http".into(), (Protocol::Tcp, 9001))]).into();
    let mut b = ep(2, NODE).merged();
    b.ports = BTreeMap::from([("http".into(), (Protocol::Tcp, 9002))]).into();
    let mut other = ep(3, NODE).merged();
    other.ports = BTreeMap::from([("metrics".into(), (Protocol::Tcp, 9100))]).into();
    let got = categorize(
        &[a, b, other],
        &svc,
        &svc.ports[0],
        AddressFamily::IPv4,
        &node(),
    );
    let expected: Vec<SocketAddr> = vec![
        "10.0.0.1:9001".parse().unwrap(),
        "10.0.0.2:9002".parse().unwrap(),
    ];
    assert_eq!(only_addrs(&got.cluster), expected);
    assert!(got.cluster.iter().all(|(_, local)| *local));
}

fn state(svc: Service, eps: &[Ep]) -> ServiceState {
    ServiceState {
        service: svc.into(),
        endpoints: eps.iter().map(Ep::merged).collect(),
    }
}

fn frontends(lb: &LbService) -> Vec<(String, Scope, Vec<SocketAddr>)> {
    lb.frontends
        .iter()
        .map(|f| {
            (
                f.addr.to_string(),
                f.scope,
                f.backends.iter().map(|b| b.addr).collect(),
            )
        })
        .collect()
}

#[test]
fn a_cluster_ip_service_has_one_socket_frontend_per_port() {
    let lb = compile_service(&state(service(), &[ep(1, NODE), ep(2, "node-b")]), &node()).unwrap();
    assert_eq!(
        frontends(&lb),
        [("10.96.0.10:80".into(), Scope::Socket, addrs(&[1, 2]))]
    );
    assert_eq!(lb.health_check, None);
}

#[test]
fn internal_traffic_policy_local_uses_this_node_only() {
    let mut svc = service();
    svc.internal_traffic_policy = TrafficPolicy::Local;
    let lb = compile_service(
        &state(svc.clone(), &[ep(1, NODE), ep(2, "node-b")]),
        &node(),
    )
    .unwrap();
    let backends = &*lb.frontends[0].backends;
    assert_eq!(
        backends,
        &[LbBackend {
            addr: addrs(&[1])[0],
            node_local: true
        }]
    );
    let lb = compile_service(&state(svc, &[ep(2, "node-b")]), &node()).unwrap();
    assert!(
        lb.frontends[0].backends.is_empty(),
        "no local endpoint: reject"
    );
}

#[test]
fn node_ports_external_ips_and_local_policy() {
    let mut svc = service();
    svc.service_type = ServiceType::LoadBalancer;
    svc.ports[0].node_port = Some(30080);
    svc.external_ips = vec!["198.51.100.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    svc.load_balancer_ips = vec!["203.0.113.5".parse().unwrap()];
    svc.external_traffic_policy = TrafficPolicy::Local;
    svc.health_check_node_port = Some(32000);
    svc.session_affinity = Some(SessionAffinity {
        timeout: Duration::from_secs(30),
    });
    let lb = compile_service(&state(svc, &[ep(1, NODE), ep(2, "node-b")]), &node()).unwrap();
    let all = addrs(&[1, 2]);
    let local = addrs(&[1]);
    assert_eq!(
        frontends(&lb),
        [
            ("10.96.0.10:80".into(), Scope::Socket, all.clone()),
            ("127.0.0.1:30080".into(), Scope::Socket, all.clone()),
            ("192.0.2.10:30080".into(), Scope::Socket, all.clone()),
            ("192.0.2.10:30080".into(), Scope::Packet, local.clone()),
            ("198.51.100.1:80".into(), Scope::Socket, all.clone()),
            ("198.51.100.1:80".into(), Scope::Packet, local.clone()),
            ("203.0.113.5:80".into(), Scope::Socket, all),
            ("203.0.113.5:80".into(), Scope::Packet, local),
        ],
        "the IPv6 external IP has no IPv6 ClusterIP family and is skipped"
    );
    assert!(lb.preserve_client_ip);
    assert_eq!(lb.affinity, Some(Duration::from_secs(30)));
    assert_eq!(
        lb.health_check,
        Some(HealthCheck {
            node_port: 32000,
            local_endpoints: 1
        })
    );
}

#[test]
fn dual_stack_services_get_a_frontend_per_family() {
    let mut svc = service();
    svc.cluster_ips.push("fd00:96::10".parse().unwrap());
    let mut v6 = ep(9, NODE).merged();
    v6.address = "fd00::9".parse().unwrap();
    let st = ServiceState {
        service: svc.into(),
        endpoints: vec![ep(1, NODE).merged(), v6],
    };
    let lb = compile_service(&st, &node()).unwrap();
    let got: Vec<(String, Vec<String>)> = lb
        .frontends
        .iter()
        .map(|f| {
            (
                f.addr.to_string(),
                f.backends.iter().map(|b| b.addr.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "10.96.0.10:80".to_string(),
                vec!["10.0.0.1:8080".to_string()]
            ),
            (
                "[fd00:96::10]:80".to_string(),
                vec!["[fd00::9]:8080".to_string()]
            ),
        ]
    );
}

#[test]
fn services_the_lb_leaves_alone() {
    let mut headless = service();
    headless.headless = true;
    headless.cluster_ips.clear();
    let mut external_name = service();
    external_name.service_type = ServiceType::ExternalName;
    let mut other_proxy = service();
    other_proxy.service_proxy_name = Some("other".into());
    let mut sctp = service();
    sctp.ports[0].protocol = Protocol::Sctp;
    for svc in [headless, external_name, other_proxy] {
        assert_eq!(compile_service(&state(svc, &[]), &node()), None);
    }
    assert!(
        compile_service(&state(sctp, &[]), &node())
            .unwrap()
            .frontends
            .is_empty()
    );
}

#[test]
fn node_local_dns_takes_the_dns_port_of_the_dns_service_only() {
    let dns_service = ObjectKey::new("kube-system", "kube-dns");
    let mut svc = service();
    svc.key = dns_service.clone();
    let mut udp = ServicePort::tcp("dns", 53);
    udp.protocol = Protocol::Udp;
    svc.ports = vec![
        udp,
        ServicePort::tcp("dns-tcp", 53),
        ServicePort::tcp("metrics", 9153),
    ];
    let listen: SocketAddr = "10.0.0.99:5353".parse().unwrap();
    let steered = node().with_local_dns(Some(LocalDns {
        service: dns_service,
        listen: vec!["[fd00::1]:53".parse().unwrap(), listen],
    }));
    let lb = compile_service(&state(svc.clone(), &[ep(1, "node-b")]), &steered).unwrap();
    let backends = |lb: &LbService, port: u16, protocol: Protocol| {
        let f = lb
            .frontends
            .iter()
            .find(|f| f.addr.port() == port && f.protocol == protocol);
        f.unwrap()
            .backends
            .iter()
            .map(|b| b.addr)
            .collect::<Vec<_>>()
    };
    assert_eq!(backends(&lb, 53, Protocol::Udp), [listen]);
    assert_eq!(backends(&lb, 53, Protocol::Tcp), [listen]);
    let plain = compile_service(&state(svc.clone(), &[ep(1, "node-b")]), &node()).unwrap();
    assert_eq!(
        backends(&lb, 9153, Protocol::Tcp),
        backends(&plain, 9153, Protocol::Tcp),
        "other ports untouched"
    );

    // Another Service on port 53, or no local server of the family: the endpoints.
    let mut other = svc.clone();
    other.key = ObjectKey::new("kube-system", "other-dns");
    let lb = compile_service(&state(other, &[ep(1, "node-b")]), &steered).unwrap();
    assert_ne!(backends(&lb, 53, Protocol::Tcp), [listen]);
    let v6_only = node().with_local_dns(Some(LocalDns {
        service: svc.key.clone(),
        listen: vec!["[fd00::1]:53".parse().unwrap()],
    }));
    let lb = compile_service(&state(svc, &[ep(1, "node-b")]), &v6_only).unwrap();
    assert_ne!(backends(&lb, 53, Protocol::Tcp), [listen]);
}
