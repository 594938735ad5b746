//! Serves a synthetic cluster zone on one core, for load tests (`dnsperf`, `resperf`):
//! 1,000 ClusterIP Services with a named port, 50 headless Services with 10 endpoints, and 50
//! ExternalNames, in namespace `bench`.
//!
//! `cargo run --release -p ferry-dns --example serve -- 127.0.0.1:5300`

use ferry_dns::{DnsConfig, DnsMetrics, DnsServer};
use ferry_model::dns::DnsBuilder;
use ferry_model::{
    DesiredState, EndpointConditions, MergedEndpoint, ObjectKey, Service, ServicePort,
    ServiceState, ServiceType,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

fn main() {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5300".into())
        .parse()
        .expect("usage: serve [IP:PORT]");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let mut config = DnsConfig::new(vec![listen], "cluster.local");
        // Nothing leaves the machine: an upstream nobody listens on.
        config.upstreams = vec!["127.0.0.1:9".parse().unwrap()];
        let server = DnsServer::start(config, DnsMetrics::default())
            .await
            .expect("binding");
        let mut builder = DnsBuilder::new("cluster.local", 1);
        builder.update(&zone());
        server.publish(builder.table());
        eprintln!("serving {} names on {listen}", builder.table().len());
        std::future::pending::<()>().await;
    });
}

fn zone() -> DesiredState {
    let mut state = DesiredState::default();
    let mut add = |svc: Service, endpoints: Vec<MergedEndpoint>| {
        let key = svc.key.clone();
        state.services.insert(
            key,
            Arc::new(ServiceState {
                service: svc.into(),
                endpoints,
            }),
        );
    };
    for i in 0..1000u32 {
        let ip = IpAddr::from([10, 96, (i / 256) as u8, (i % 256) as u8]);
        let svc = Service::cluster_ip(
            ObjectKey::new("bench", format!("svc-{i}")),
            ip,
            vec![ServicePort::tcp("http", 80)],
        );
        add(svc, Vec::new());
    }
    for i in 0..50u32 {
        let mut svc = Service::cluster_ip(
            ObjectKey::new("bench", format!("headless-{i}")),
            IpAddr::from([10, 96, 200, 1]),
            vec![ServicePort::tcp("http", 80)],
        );
        svc.cluster_ips.clear();
        svc.headless = true;
        let endpoints = (0..10u32)
            .map(|e| MergedEndpoint {
                address: IpAddr::from([10, 244, i as u8, e as u8 + 1]),
                ports: BTreeMap::from([("http".to_string(), (ferry_model::Protocol::Tcp, 8080))])
                    .into(),
                conditions: EndpointConditions {
                    ready: true,
                    serving: true,
                    terminating: false,
                },
                info: std::sync::Arc::new(ferry_model::EndpointInfo {
                    hostname: Some(format!("pod-{e}")),
                    pod_name: None,
                    node_name: None,
                    zone: None,
                    zone_hints: vec![],
                    node_hints: vec![],
                }),
            })
            .collect();
        add(svc, endpoints);
    }
    for i in 0..50u32 {
        let mut svc = Service::cluster_ip(
            ObjectKey::new("bench", format!("external-{i}")),
            IpAddr::from([10, 96, 201, 1]),
            vec![],
        );
        svc.cluster_ips.clear();
        svc.service_type = ServiceType::ExternalName;
        svc.external_name = Some(format!("host-{i}.example.com"));
        add(svc, Vec::new());
    }
    state
}
