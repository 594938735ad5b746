//! The server on real loopback sockets, in process: UDP and TCP on one port, pipelined TCP
//! queries, forwarding to an upstream that never answers without stalling anything else, and
//! shutdown.

use ferry_dns::{DnsConfig, DnsMetrics, DnsServer};
use ferry_model::dns::DnsBuilder;
use ferry_model::{DesiredState, ObjectKey, Service, ServicePort, ServiceState};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    message.to_vec().unwrap()
}

async fn udp_ask(server: SocketAddr, bytes: &[u8]) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buffer = vec![0; 65535];
    let len = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buffer))
        .await
        .expect("an answer in time")
        .unwrap();
    Message::from_vec(&buffer[..len]).unwrap()
}

/// A server for `cluster.local` with `web.shop` at 10.96.0.10, forwarding to `upstream`.
async fn server(upstream: SocketAddr) -> DnsServer {
    let mut config = DnsConfig::new(vec!["127.0.0.1:0".parse().unwrap()], "cluster.local");
    config.upstreams = vec![upstream];
    config.upstream_timeout = Duration::from_millis(300);
    let server = DnsServer::start(config, DnsMetrics::default())
        .await
        .unwrap();
    let mut state = DesiredState::default();
    let svc = Service::cluster_ip(
        ObjectKey::new("shop", "web"),
        "10.96.0.10".parse().unwrap(),
        vec![ServicePort::tcp("http", 80)],
    );
    state.services.insert(
        svc.key.clone(),
        Arc::new(ServiceState {
            service: svc.into(),
            endpoints: vec![],
        }),
    );
    let mut builder = DnsBuilder::new("cluster.local", 1);
    builder.update(&state);
    assert!(!server.is_serving());
    server.publish(builder.table());
    assert!(server.is_serving());
    server
}

#[tokio::test]
async fn udp_and_tcp_share_a_port_and_tcp_queries_can_be_pipelined() {
    // An upstream that takes queries and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = server(silent.local_addr().unwrap()).await;
    let addr = server.local_addrs()[0];
    assert_ne!(addr.port(), 0);

    let a = udp_ask(
        addr,
        &query(1, "web.shop.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(a.answers.len(), 1);

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut pipelined = Vec::new();
    for (id, name) in [
        (10u16, "web.shop.svc.cluster.local."),
        (11, "nope.cluster.local."),
    ] {
        let q = query(id, name, RecordType::A);
        pipelined.extend_from_slice(&u16::try_from(q.len()).unwrap().to_be_bytes());
        pipelined.extend_from_slice(&q);
    }
    stream.write_all(&pipelined).await.unwrap();
    for (id, rcode) in [(10, ResponseCode::NoError), (11, ResponseCode::NXDomain)] {
        let len = stream.read_u16().await.unwrap();
        let mut buffer = vec![0; usize::from(len)];
        stream.read_exact(&mut buffer).await.unwrap();
        let response = Message::from_vec(&buffer).unwrap();
        assert_eq!(response.metadata.id, id);
        assert_eq!(response.metadata.response_code, rcode);
    }
}

#[tokio::test]
async fn a_silent_upstream_gives_servfail_without_stalling_cluster_answers() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = server(silent.local_addr().unwrap()).await;
    let addr = server.local_addrs()[0];

    let started = Instant::now();
    let forwarded =
        tokio::spawn(async move { udp_ask(addr, &query(2, "example.com.", RecordType::A)).await });
    let mut buffer = [0; 512];
    let (len, _) = silent.recv_from(&mut buffer).await.unwrap();
    assert!(len > 12, "the upstream got the query");
    let cluster = udp_ask(
        addr,
        &query(3, "web.shop.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(cluster.answers.len(), 1, "answered while the forward waits");
    let forwarded = forwarded.await.unwrap();
    assert_eq!(forwarded.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shutdown_closes_the_listeners() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = server(silent.local_addr().unwrap()).await;
    let addr = server.local_addrs()[0];
    server.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the TCP listener is closed");
}

/// An upstream answering every A query with 192.0.2.1 (TTL 60).
async fn answering_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0; 4096];
        while let Ok((len, src)) = socket.recv_from(&mut buffer).await {
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let mut response = Message::response(request.metadata.id, OpCode::Query);
            response.metadata.recursion_available = true;
            for query in request.queries {
                let record = hickory_proto::rr::Record::from_rdata(
                    query.name().clone(),
                    60,
                    hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 1)),
                );
                response.add_query(query);
                response.add_answer(record);
            }
            let _ = socket.send_to(&response.to_vec().unwrap(), src).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_failing_upstream_is_skipped_for_the_next() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let good = answering_upstream().await;
    let mut config = DnsConfig::new(vec!["127.0.0.1:0".parse().unwrap()], "cluster.local");
    config.upstreams = vec![silent.local_addr().unwrap(), good];
    config.upstream_timeout = Duration::from_millis(200);
    let server = DnsServer::start(config, DnsMetrics::default())
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    // Whichever upstream a query starts at, it ends with the answering one.
    for (id, name) in [(20, "a.example."), (21, "b.example."), (22, "c.example.")] {
        let response = udp_ask(addr, &query(id, name, RecordType::A)).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert_eq!(response.answers.len(), 1, "{name}");
        assert!(response.metadata.recursion_available);
    }
}
