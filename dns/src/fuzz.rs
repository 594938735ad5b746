//! The whole query path, from bytes to bytes, over a small fixed zone, with the invariants
//! every response must keep. The cargo-fuzz target in `dns/fuzz` drives [`query`]; a unit test
//! runs the checked-in seed corpus through it, so CI exercises the same path without
//! cargo-fuzz. Not an API: hidden from the docs, used by nothing else.

use crate::config::{PodMode, default_allow};
use crate::forward::Forwarder;
use crate::handler::{Handler, Outcome, Pending, ResponseCache, Step};
use crate::metrics::DnsMetrics;
use crate::wire::Transport;
use crate::zone::{Snapshot, Zone};
use ferry_model::dns::DnsBuilder;
use ferry_model::{
    DesiredState, EndpointInfo, MergedEndpoint, ObjectKey, Protocol, Service, ServicePort,
    ServiceState,
};
use hickory_proto::op::{Message, MessageType};
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A client whose other names are forwarded, and one whose are refused.
const CLIENT: &str = "10.0.0.99:5353";
const OUTSIDER: &str = "203.0.113.9:5353";
/// Without EDNS a UDP response holds 512 bytes; with it, at most what we advertise.
const CLASSIC: usize = 512;
const OUR_EDNS: usize = 1232;

/// Runs `bytes`, as a query received over UDP and over TCP, through the handler of a small
/// zone (built once) and checks the response: no panic; a packet is dropped only when it is
/// not a query; any response parses back, carries the query's ID and question, and fits the
/// client's buffer over UDP (truncated, with TC, when the answer does not). Over UDP it also
/// goes the receive loop's way, through a response cache shared by every input (once to fill
/// it, once to hit it), which must give the very bytes of the full path.
pub fn query(bytes: &[u8]) {
    let handler = HANDLER.get_or_init(handler);
    // The ID's low bit picks the client, so refused forwarding is covered too.
    let client = if bytes.first().is_some_and(|b| b & 1 == 1) {
        OUTSIDER
    } else {
        CLIENT
    };
    let src: SocketAddr = client.parse().expect("a valid address");
    for transport in [Transport::Udp, Transport::Tcp] {
        let response = match handler.handle(bytes, src, transport) {
            Step::Reply(response) => Some(response),
            Step::Drop => None,
            Step::Pending(pending) => Some(resolve_now(*pending, handler)),
        };
        match &response {
            Some(response) => check(bytes, response, transport),
            None => assert!(
                bytes.len() < 12 || bytes[2] & 0x80 != 0,
                "only runts and responses are dropped"
            ),
        }
        if transport == Transport::Udp {
            let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
            for _ in 0..2 {
                let mut out = Vec::new();
                let cached =
                    match handler.handle_cached(bytes, src, transport, &mut cache, &mut out) {
                        Outcome::Reply => Some(out),
                        Outcome::Drop => None,
                        Outcome::Pending(pending) => Some(resolve_now(*pending, handler)),
                    };
                assert_eq!(
                    cached, response,
                    "the response cache answers as the full path"
                );
            }
        }
    }
}

/// No upstream is configured: forwarding and ExternalName chasing fail at once (SERVFAIL, or
/// the CNAME alone) without any I/O.
fn resolve_now(pending: Pending, handler: &Handler) -> Vec<u8> {
    let mut resolving = pin!(pending.resolve(handler));
    match resolving
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(response) => response,
        Poll::Pending => panic!("without upstreams a query resolves at once"),
    }
}

fn check(query: &[u8], response: &[u8], transport: Transport) {
    let parsed = Message::from_vec(response)
        .unwrap_or_else(|error| panic!("the response does not parse back: {error}"));
    assert_eq!(parsed.metadata.message_type, MessageType::Response);
    assert_eq!(
        parsed.metadata.id,
        u16::from_be_bytes([query[0], query[1]]),
        "the response carries the query's ID"
    );
    let request = Message::from_vec(query).ok();
    if let Some(request) = &request
        && !parsed.queries.is_empty()
    {
        assert_eq!(
            parsed.queries, request.queries,
            "the question is echoed as asked"
        );
    }
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => match request.as_ref().and_then(|r| r.edns.as_ref()) {
            Some(edns) => usize::from(edns.max_payload()).clamp(CLASSIC, OUR_EDNS),
            None => CLASSIC,
        },
    };
    assert!(
        response.len() <= limit,
        "{} bytes over {transport:?} exceed the client's {limit}",
        response.len()
    );
}

static HANDLER: OnceLock<Handler> = OnceLock::new();
static CACHE: LazyLock<Mutex<ResponseCache>> = LazyLock::new(Mutex::default);

/// A handler over a zone with one of each kind of name, published, without upstreams.
fn handler() -> Handler {
    let mut state = DesiredState::default();
    for service in services() {
        state
            .services
            .insert(service.service.key.clone(), Arc::new(service));
    }
    state.namespaces.insert("empty".into());
    let mut builder = DnsBuilder::new("cluster.local", 1).with_endpoint_pod_names(true);
    builder.update(&state);
    let handler = Handler::new(
        Zone::new("cluster.local", 30, PodMode::Insecure),
        Forwarder::new(Vec::new(), Duration::from_secs(1), 100),
        default_allow(),
        DnsMetrics::default(),
    );
    handler.publish(Snapshot::new(builder.table(), 30));
    handler
}

fn services() -> Vec<ServiceState> {
    let mut web = Service::cluster_ip(
        ObjectKey::new("shop", "web"),
        ip("10.96.0.10"),
        vec![
            ServicePort::tcp("http", 80),
            ServicePort {
                protocol: Protocol::Udp,
                ..ServicePort::tcp("dns", 53)
            },
            ServicePort::tcp("", 8080),
        ],
    );
    web.cluster_ips.push(ip("fd00::10"));
    let dns = Service::cluster_ip(
        ObjectKey::new("kube-system", "kube-dns"),
        ip("10.96.0.53"),
        vec![ServicePort::tcp("dns-tcp", 53)],
    );
    let pods = vec![
        endpoint("10.2.0.1", true, Some("pg-0"), None),
        endpoint("10.2.0.2", true, None, Some("pg-7f9c")),
        endpoint("10.2.0.3", true, None, None),
        endpoint("10.2.0.9", false, None, None),
        endpoint("fd00::2:4", true, None, None),
    ];
    // Enough addresses for an answer that only fits over TCP.
    let many = (1..=120u8)
        .map(|i| endpoint(&format!("10.3.0.{i}"), true, None, None))
        .collect();
    vec![
        ServiceState {
            service: web.into(),
            endpoints: vec![endpoint("10.1.0.1", true, None, None)],
        },
        ServiceState {
            service: dns.into(),
            endpoints: vec![],
        },
        headless("db", "pg", pods),
        headless("db", "many", many),
        external("shop", "search", "search.example.com"),
        external("shop", "alias", "web.shop.svc.cluster.local"),
        external("shop", "literal", "192.0.2.1"),
        external("shop", "loop-a", "loop-b.shop.svc.cluster.local"),
        external("shop", "loop-b", "loop-a.shop.svc.cluster.local"),
    ]
}

fn headless(namespace: &str, name: &str, endpoints: Vec<MergedEndpoint>) -> ServiceState {
    let key = ObjectKey::new(namespace, name);
    ServiceState {
        service: Service::headless(key, vec![ServicePort::tcp("http", 80)]).into(),
        endpoints,
    }
}

fn external(namespace: &str, name: &str, target: &str) -> ServiceState {
    ServiceState {
        service: Service::external_name(ObjectKey::new(namespace, name), target).into(),
        endpoints: vec![],
    }
}

fn endpoint(
    address: &str,
    ready: bool,
    hostname: Option<&str>,
    pod: Option<&str>,
) -> MergedEndpoint {
    let info = EndpointInfo {
        hostname: hostname.map(str::to_string),
        pod_name: pod.map(str::to_string),
        ..EndpointInfo::default()
    };
    MergedEndpoint::tcp(ip(address), &[("http", 8080)], ready, info)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a valid address")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every checked-in seed (and every crash the fuzzer found) through the fuzzed path.
    #[test]
    fn the_seed_corpus_keeps_every_invariant() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/query");
        let mut count = 0;
        for entry in std::fs::read_dir(&seeds).expect("the seed corpus") {
            let path = entry.expect("a seed").path();
            let bytes = std::fs::read(&path).expect("a readable seed");
            eprintln!("{}", path.display());
            super::query(&bytes);
            count += 1;
        }
        assert!(count >= 12, "{count} seeds in {}", seeds.display());
    }
}
