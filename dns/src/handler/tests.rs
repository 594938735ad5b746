//! The answer logic end to end in memory: query bytes in, response bytes out, parsed and
//! checked section by section.

use super::*;
use crate::config::{PodMode, default_allow};
use ferry_model::dns::DnsBuilder;
use ferry_model::{
    DesiredState, MergedEndpoint, ObjectKey, Protocol, Service, ServicePort, ServiceState,
};
use hickory_proto::op::{Edns, MessageType, Query};
use hickory_proto::rr::{RData, Record, RecordType};
use std::net::IpAddr;
use std::time::Duration;

const CLIENT: &str = "10.0.0.99:5353";
const OUTSIDER: &str = "203.0.113.9:5353";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn endpoint(addr: &str, ready: bool, hostname: Option<&str>, port: u16) -> MergedEndpoint {
    let info = ferry_model::EndpointInfo {
        hostname: hostname.map(str::to_string),
        ..Default::default()
    };
    MergedEndpoint::tcp(ip(addr), &[("http", port)], ready, info)
}

fn cluster_ip(ns: &str, name: &str, ips: &[&str]) -> ServiceState {
    let mut svc = Service::cluster_ip(
        ObjectKey::new(ns, name),
        ip(ips[0]),
        vec![
            ServicePort::tcp("http", 80),
            ServicePort {
                protocol: Protocol::Udp,
                ..ServicePort::tcp("dns", 53)
            },
        ],
    );
    svc.cluster_ips = ips.iter().map(|i| ip(i)).collect();
    ServiceState {
        service: svc.into(),
        endpoints: vec![endpoint("10.1.0.1", true, None, 8080)],
    }
}

fn headless(ns: &str, name: &str, endpoints: Vec<MergedEndpoint>) -> ServiceState {
    let key = ObjectKey::new(ns, name);
    ServiceState {
        service: Service::headless(key, vec![ServicePort::tcp("http", 80)]).into(),
        endpoints,
    }
}

fn external(ns: &str, name: &str, target: &str) -> ServiceState {
    ServiceState {
        service: Service::external_name(ObjectKey::new(ns, name), target).into(),
        endpoints: vec![],
    }
}

fn fixture() -> Vec<ServiceState> {
    let mut pods = Vec::new();
    for i in 1..=3 {
        let host = (i == 1).then_some("pg-0");
        pods.push(endpoint(&format!("10.2.0.{i}"), true, host, 5432));
    }
    pods.push(endpoint("fd00::2:4", true, None, 5432));
    pods.push(endpoint("10.2.0.9", false, None, 5432));
    vec![
        cluster_ip("shop", "web", &["10.96.0.10", "fd00::10"]),
        cluster_ip("kube-system", "kube-dns", &["10.96.0.53"]),
        headless("db", "pg", pods),
        external("shop", "search", "search.example.com"),
        external("shop", "alias", "web.shop.svc.cluster.local"),
        external("shop", "literal", "192.0.2.1"),
    ]
}

fn handler_with(services: Vec<ServiceState>, pods: PodMode) -> Handler {
    let mut state = DesiredState::default();
    for s in services {
        state.services.insert(s.service.key.clone(), Arc::new(s));
    }
    state.namespaces.insert("empty".into());
    let mut builder = DnsBuilder::new("cluster.local", 1000);
    builder.update(&state);
    let handler = unpublished(pods);
    handler.publish(Snapshot::new(builder.table(), 30));
    handler
}

fn unpublished(pods: PodMode) -> Handler {
    Handler::new(
        Zone::new("cluster.local", 30, pods),
        Forwarder::new(vec![], Duration::from_secs(1), 100),
        default_allow(),
        DnsMetrics::default(),
    )
}

fn handler() -> Handler {
    handler_with(fixture(), PodMode::Insecure)
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(4321, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        message.set_edns(e);
    }
    message.to_vec().unwrap()
}

fn reply(handler: &Handler, bytes: &[u8], transport: Transport, from: &str) -> Message {
    match handler.handle(bytes, from.parse().unwrap(), transport) {
        Step::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn ask(handler: &Handler, name: &str, qtype: RecordType) -> Message {
    reply(
        handler,
        &query(name, qtype, Some(1232)),
        Transport::Udp,
        CLIENT,
    )
}

fn data(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.data.to_string()).collect()
}

fn assert_negative(response: &Message, rcode: ResponseCode) {
    assert_eq!(response.metadata.response_code, rcode, "{response}");
    assert!(response.answers.is_empty(), "{response}");
    assert_eq!(response.authorities.len(), 1, "{response}");
    let soa = &response.authorities[0];
    assert_eq!(soa.name.to_string(), "cluster.local.");
    let RData::SOA(data) = &soa.data else {
        panic!("not a SOA: {soa}")
    };
    assert_eq!(soa.ttl, 30);
    assert_eq!(data.minimum, 30, "negative TTL = SOA minimum = the TTL");
}

#[test]
fn a_cluster_ip_service_has_both_families_with_the_configured_ttl() {
    let h = handler();
    let a = ask(&h, "web.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert_eq!(a.metadata.id, 4321);
    assert!(a.metadata.recursion_desired);
    assert_eq!(data(&a.answers), ["10.96.0.10"]);
    assert_eq!(a.answers[0].ttl, 30);
    let aaaa = ask(&h, "web.shop.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(data(&aaaa.answers), ["fd00::10"]);
}

#[test]
fn owner_names_echo_the_query_case() {
    let h = handler();
    let a = ask(&h, "WeB.ShOp.SVC.Cluster.Local.", RecordType::A);
    assert_eq!(a.answers[0].name.to_string(), "WeB.ShOp.SVC.Cluster.Local.");
    assert_eq!(
        a.queries[0].name().to_string(),
        "WeB.ShOp.SVC.Cluster.Local."
    );
    assert_eq!(data(&a.answers), ["10.96.0.10"]);
}

#[test]
fn srv_names_a_port_and_carries_the_targets_addresses() {
    let h = handler();
    let srv = ask(
        &h,
        "_http._tcp.web.shop.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(data(&srv.answers), ["0 100 80 web.shop.svc.cluster.local."]);
    let mut extra = data(&srv.additionals);
    extra.sort();
    assert_eq!(extra, ["10.96.0.10", "fd00::10"]);
    assert_eq!(
        srv.additionals[0].name.to_string(),
        "web.shop.svc.cluster.local."
    );
    // A bare-name SRV query returns every named port (CoreDNS).
    let bare = ask(&h, "web.shop.svc.cluster.local.", RecordType::SRV);
    assert_eq!(bare.answers.len(), 2);
    // The UDP port under _tcp does not exist; `_tcp` itself is an empty non-terminal.
    let wrong = ask(&h, "_dns._tcp.web.shop.svc.cluster.local.", RecordType::SRV);
    assert_negative(&wrong, ResponseCode::NXDomain);
    let ent = ask(&h, "_tcp.web.shop.svc.cluster.local.", RecordType::SRV);
    assert_negative(&ent, ResponseCode::NoError);
}

#[test]
fn ptr_answers_cluster_ips_and_headless_endpoints_in_both_families() {
    let h = handler();
    let v4 = ask(&h, "10.0.96.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(data(&v4.answers), ["web.shop.svc.cluster.local."]);
    assert!(v4.metadata.authoritative);
    let v6 = ask(
        &h,
        "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    );
    assert_eq!(data(&v6.answers), ["web.shop.svc.cluster.local."]);
    let endpoint = ask(&h, "1.0.2.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(data(&endpoint.answers), ["pg-0.pg.db.svc.cluster.local."]);
    // Another type on a known reverse name: NODATA, with the reverse zone's SOA.
    let other = ask(&h, "10.0.96.10.in-addr.arpa.", RecordType::A);
    assert_eq!(other.metadata.response_code, ResponseCode::NoError);
    assert!(other.answers.is_empty());
    assert_eq!(other.authorities[0].name.to_ascii(), "in-addr.arpa.");
}

#[test]
fn unknown_reverse_names_and_other_zones_go_upstream_for_allowed_clients_only() {
    let h = handler();
    for name in [
        "9.9.9.10.in-addr.arpa.",
        "example.com.",
        "cluster.local.example.",
    ] {
        let bytes = query(name, RecordType::PTR, None);
        let step = h.handle(&bytes, CLIENT.parse().unwrap(), Transport::Udp);
        assert!(matches!(step, Step::Pending(_)), "{name}: {step:?}");
        let refused = reply(&h, &bytes, Transport::Udp, OUTSIDER);
        assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    }
    // Cluster names are answered to anyone.
    let bytes = query("web.shop.svc.cluster.local.", RecordType::A, None);
    let answered = reply(&h, &bytes, Transport::Udp, OUTSIDER);
    assert_eq!(data(&answered.answers), ["10.96.0.10"]);
}

#[test]
fn a_headless_service_answers_its_ready_endpoints() {
    let h = handler();
    let a = ask(&h, "pg.db.svc.cluster.local.", RecordType::A);
    let mut ips = data(&a.answers);
    ips.sort();
    assert_eq!(
        ips,
        ["10.2.0.1", "10.2.0.2", "10.2.0.3"],
        "not the unready one"
    );
    let aaaa = ask(&h, "pg.db.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(data(&aaaa.answers), ["fd00::2:4"]);
    let host = ask(&h, "pg-0.pg.db.svc.cluster.local.", RecordType::A);
    assert_eq!(data(&host.answers), ["10.2.0.1"]);
    let dashed = ask(&h, "10-2-0-2.pg.db.svc.cluster.local.", RecordType::A);
    assert_eq!(data(&dashed.answers), ["10.2.0.2"]);
    let unready = ask(&h, "10-2-0-9.pg.db.svc.cluster.local.", RecordType::A);
    assert_negative(&unready, ResponseCode::NXDomain);
    let srv = ask(&h, "_http._tcp.pg.db.svc.cluster.local.", RecordType::SRV);
    assert_eq!(srv.answers.len(), 4);
    assert!(data(&srv.answers).contains(&"0 25 5432 pg-0.pg.db.svc.cluster.local.".to_string()));
    assert_eq!(srv.additionals.len(), 4, "each target's address");
}

#[test]
fn address_lists_rotate_with_the_query_id() {
    let h = handler();
    let mut firsts = std::collections::BTreeSet::new();
    for id in 0..6u16 {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii("pg.db.svc.cluster.local.").unwrap(),
            RecordType::A,
        ));
        let r = reply(&h, &message.to_vec().unwrap(), Transport::Udp, CLIENT);
        assert_eq!(r.answers.len(), 3);
        firsts.insert(r.answers[0].data.to_string());
    }
    assert_eq!(firsts.len(), 3, "every endpoint comes first for some query");
}

#[test]
fn an_external_name_is_a_cname_chased_inside_the_zone() {
    let h = handler();
    let cname = ask(&h, "search.shop.svc.cluster.local.", RecordType::CNAME);
    assert_eq!(data(&cname.answers), ["search.example.com."]);
    // Outside the zone, an address query waits for the upstream.
    let bytes = query("search.shop.svc.cluster.local.", RecordType::A, None);
    let step = h.handle(&bytes, CLIENT.parse().unwrap(), Transport::Udp);
    assert!(matches!(step, Step::Pending(_)), "{step:?}");
    // Other types get the CNAME alone.
    let txt = ask(&h, "search.shop.svc.cluster.local.", RecordType::TXT);
    assert_eq!(data(&txt.answers), ["search.example.com."]);
    // Inside the zone the target is followed here.
    let alias = ask(&h, "Alias.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(
        data(&alias.answers),
        ["web.shop.svc.cluster.local.", "10.96.0.10"]
    );
    assert_eq!(
        alias.answers[0].name.to_string(),
        "Alias.shop.svc.cluster.local."
    );
    assert_eq!(
        alias.answers[1].name.to_string(),
        "web.shop.svc.cluster.local."
    );
    // An IP as externalName is not resolved by DNS (CoreDNS: NXDOMAIN).
    assert_negative(
        &ask(&h, "literal.shop.svc.cluster.local.", RecordType::A),
        ResponseCode::NXDomain,
    );
}

#[test]
fn the_apex_has_soa_ns_and_dns_version() {
    let h = handler();
    let soa = ask(&h, "cluster.local.", RecordType::SOA);
    assert_eq!(
        data(&soa.answers),
        ["ns.dns.cluster.local. hostmaster.cluster.local. 1001 7200 1800 86400 30"]
    );
    let ns = ask(&h, "Cluster.Local.", RecordType::NS);
    assert_eq!(data(&ns.answers), ["ns.dns.cluster.local."]);
    assert_eq!(ns.answers[0].name.to_string(), "Cluster.Local.");
    assert_eq!(
        data(&ns.additionals),
        ["10.96.0.53"],
        "glue: the kube-dns Service"
    );
    let glue = ask(&h, "ns.dns.cluster.local.", RecordType::A);
    assert_eq!(data(&glue.answers), ["10.96.0.53"]);
    let txt = ask(&h, "dns-version.cluster.local.", RecordType::TXT);
    assert_eq!(data(&txt.answers), ["1.1.0"]);
    assert_eq!(txt.answers[0].ttl, 28800);
    // A name with a TXT asked for an A: NODATA (CoreDNS says NXDOMAIN, the RFCs NODATA).
    assert_negative(
        &ask(&h, "dns-version.cluster.local.", RecordType::A),
        ResponseCode::NoError,
    );
    assert_negative(
        &ask(&h, "cluster.local.", RecordType::A),
        ResponseCode::NoError,
    );
    // The SOA answers only at the apex.
    assert_negative(
        &ask(&h, "web.shop.svc.cluster.local.", RecordType::SOA),
        ResponseCode::NoError,
    );
}

#[test]
fn nodata_and_nxdomain_both_carry_the_soa() {
    let h = handler();
    let v4_only = ask(
        &h,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::AAAA,
    );
    assert_negative(&v4_only, ResponseCode::NoError);
    for existing in [
        "shop.svc.cluster.local.",
        "empty.svc.cluster.local.",
        "svc.cluster.local.",
        "pod.cluster.local.",
        "shop.pod.cluster.local.",
    ] {
        assert_negative(&ask(&h, existing, RecordType::A), ResponseCode::NoError);
    }
    for missing in [
        "nope.shop.svc.cluster.local.",
        "nope.svc.cluster.local.",
        "x.web.shop.svc.cluster.local.",
        "a.b.c.web.shop.svc.cluster.local.",
        "foo.cluster.local.",
        "10-0-0-1.web.shop.svc.cluster.local.",
    ] {
        assert_negative(&ask(&h, missing, RecordType::A), ResponseCode::NXDomain);
    }
}

#[test]
fn pod_names_answer_in_existing_namespaces_unless_disabled() {
    let h = handler();
    let pod = ask(&h, "10-244-1-7.shop.pod.cluster.local.", RecordType::A);
    assert_eq!(data(&pod.answers), ["10.244.1.7"]);
    let v6 = ask(&h, "fd00--7.empty.pod.cluster.local.", RecordType::AAAA);
    assert_eq!(data(&v6.answers), ["fd00::7"]);
    assert_negative(
        &ask(&h, "10-244-1-7.shop.pod.cluster.local.", RecordType::AAAA),
        ResponseCode::NoError,
    );
    for missing in [
        "10-244-1-7.nope.pod.cluster.local.",
        "10-244-1.shop.pod.cluster.local.",
        "x.10-244-1-7.shop.pod.cluster.local.",
    ] {
        assert_negative(&ask(&h, missing, RecordType::A), ResponseCode::NXDomain);
    }
    let off = handler_with(fixture(), PodMode::Disabled);
    assert_negative(
        &ask(&off, "10-244-1-7.shop.pod.cluster.local.", RecordType::A),
        ResponseCode::NXDomain,
    );
}

#[test]
fn wildcards_and_zone_transfers_are_not_served() {
    let h = handler();
    for name in [
        "*.shop.svc.cluster.local.",
        "*.*.svc.cluster.local.",
        "_http._tcp.*.shop.svc.cluster.local.",
    ] {
        for qtype in [RecordType::A, RecordType::SRV] {
            assert_negative(&ask(&h, name, qtype), ResponseCode::NXDomain);
        }
    }
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        for name in ["cluster.local.", "example.com."] {
            let r = reply(&h, &query(name, qtype, None), Transport::Tcp, CLIENT);
            assert_eq!(r.metadata.response_code, ResponseCode::Refused);
            assert!(r.answers.is_empty());
        }
    }
}

#[test]
fn before_the_first_table_cluster_names_get_servfail() {
    let h = unpublished(PodMode::Insecure);
    for name in [
        "web.shop.svc.cluster.local.",
        "nope.cluster.local.",
        "1.0.0.10.in-addr.arpa.",
    ] {
        let r = ask(&h, name, RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "{name}");
    }
    let bytes = query("example.com.", RecordType::A, None);
    let step = h.handle(&bytes, CLIENT.parse().unwrap(), Transport::Udp);
    assert!(
        matches!(step, Step::Pending(_)),
        "other names still forward"
    );
}

#[test]
fn edns_is_answered_with_our_buffer_size() {
    let h = handler();
    let with = ask(&h, "web.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(with.edns.as_ref().unwrap().max_payload(), 1232);
    let bytes = query("web.shop.svc.cluster.local.", RecordType::A, None);
    let without = reply(&h, &bytes, Transport::Udp, CLIENT);
    assert!(without.edns.is_none());
}

fn big_headless(endpoints: u8) -> Handler {
    let eps = (1..=endpoints)
        .map(|i| endpoint(&format!("10.3.0.{i}"), true, None, 8080))
        .collect();
    handler_with(vec![headless("big", "many", eps)], PodMode::Insecure)
}

#[test]
fn large_udp_answers_are_truncated_and_served_whole_over_tcp() {
    let h = big_headless(100);
    let name = "many.big.svc.cluster.local.";
    let bytes = query(name, RecordType::A, None);
    let classic = match h.handle(&bytes, CLIENT.parse().unwrap(), Transport::Udp) {
        Step::Reply(bytes) => bytes,
        other => panic!("{other:?}"),
    };
    assert!(classic.len() <= 512, "{} bytes", classic.len());
    let classic = Message::from_vec(&classic).unwrap();
    assert!(classic.metadata.truncation);
    assert!(!classic.answers.is_empty() && classic.answers.len() < 100);

    let edns = reply(
        &h,
        &query(name, RecordType::A, Some(4096)),
        Transport::Udp,
        CLIENT,
    );
    assert!(edns.metadata.truncation, "100 A records exceed 1232 bytes");
    assert!(edns.edns.is_some(), "the OPT record always has room");
    let small = reply(
        &h,
        &query(name, RecordType::A, Some(100)),
        Transport::Udp,
        CLIENT,
    );
    assert!(
        small.metadata.truncation,
        "a buffer below 512 counts as 512"
    );
    assert!(!small.answers.is_empty());

    let tcp = reply(&h, &bytes, Transport::Tcp, CLIENT);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 100);
}

#[test]
fn an_additional_section_that_does_not_fit_is_cut_without_tc() {
    // 20 SRV records fit in 1232 bytes; their 20 targets' addresses do not all.
    let h = big_headless(20);
    let srv = ask(
        &h,
        "_http._tcp.many.big.svc.cluster.local.",
        RecordType::SRV,
    );
    assert!(!srv.metadata.truncation, "{srv}");
    assert_eq!(srv.answers.len(), 20);
    assert!(srv.additionals.len() < 20, "{}", srv.additionals.len());
}

#[test]
fn malformed_packets_get_formerr_or_nothing() {
    let h = handler();
    let from = CLIENT.parse().unwrap();
    for runt in [&b""[..], b"\x12", b"\x12\x34\x01\x00\x00\x01"] {
        assert!(matches!(h.handle(runt, from, Transport::Udp), Step::Drop));
    }
    // A header announcing a question that is not there.
    let broken = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exam";
    let r = reply(&h, broken, Transport::Udp, CLIENT);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(r.metadata.id, 0x1234);
    assert_eq!(r.metadata.message_type, MessageType::Response);
    // Responses are never answered (no loops, no reflection).
    let mut response = Message::from_vec(&query("example.com.", RecordType::A, None)).unwrap();
    response.metadata.message_type = MessageType::Response;
    assert!(matches!(
        h.handle(&response.to_vec().unwrap(), from, Transport::Udp),
        Step::Drop
    ));
}

#[test]
fn unsupported_requests_get_formerr_notimp_or_badvers() {
    let h = handler();
    let name = Name::from_ascii("web.shop.svc.cluster.local.").unwrap();
    let mut two = Message::new(1, MessageType::Query, OpCode::Query);
    two.add_query(Query::query(name.clone(), RecordType::A));
    two.add_query(Query::query(name.clone(), RecordType::AAAA));
    let r = reply(&h, &two.to_vec().unwrap(), Transport::Udp, CLIENT);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    let mut none = Message::new(2, MessageType::Query, OpCode::Query);
    none.metadata.recursion_desired = true;
    let r = reply(&h, &none.to_vec().unwrap(), Transport::Udp, CLIENT);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);

    let mut notify = Message::new(3, MessageType::Query, OpCode::Notify);
    notify.add_query(Query::query(name.clone(), RecordType::SOA));
    let r = reply(&h, &notify.to_vec().unwrap(), Transport::Udp, CLIENT);
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);

    let mut chaos = Message::new(4, MessageType::Query, OpCode::Query);
    let mut q = Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    let r = reply(&h, &chaos.to_vec().unwrap(), Transport::Udp, CLIENT);
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);

    let mut future = Message::from_vec(&query(
        "web.shop.svc.cluster.local.",
        RecordType::A,
        Some(1232),
    ))
    .unwrap();
    future.edns.as_mut().unwrap().set_version(1);
    let r = reply(&h, &future.to_vec().unwrap(), Transport::Udp, CLIENT);
    // 16 is BADVERS in an OPT context (hickory reads it back as BADSIG, the same code).
    assert_eq!(u16::from(r.metadata.response_code), 16);
    assert!(r.answers.is_empty());
}

#[test]
fn unknown_types_on_existing_names_are_nodata() {
    let h = handler();
    for qtype in [RecordType::MX, RecordType::CAA, RecordType::Unknown(65000)] {
        assert_negative(
            &ask(&h, "web.shop.svc.cluster.local.", qtype),
            ResponseCode::NoError,
        );
    }
}

#[test]
fn names_with_odd_bytes_do_not_exist() {
    let h = handler();
    let name =
        Name::from_labels(vec![&b"we b"[..], b"shop", b"svc", b"cluster", b"local"]).unwrap();
    let mut message = Message::new(5, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name, RecordType::A));
    let r = reply(&h, &message.to_vec().unwrap(), Transport::Udp, CLIENT);
    assert_negative(&r, ResponseCode::NXDomain);
}

#[test]
fn a_new_table_is_answered_at_once() {
    let h = handler();
    assert_negative(
        &ask(&h, "new.shop.svc.cluster.local.", RecordType::A),
        ResponseCode::NXDomain,
    );
    let mut services = fixture();
    services.push(cluster_ip("shop", "new", &["10.96.7.7"]));
    let mut state = DesiredState::default();
    for s in services {
        state.services.insert(s.service.key.clone(), Arc::new(s));
    }
    let mut builder = DnsBuilder::new("cluster.local", 2000);
    builder.update(&state);
    h.publish(Snapshot::new(builder.table(), 30));
    let r = ask(&h, "new.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(data(&r.answers), ["10.96.7.7"]);
}

/// A deterministic stand-in for fuzzing: valid queries with random bytes flipped, cut short
/// or extended. Nothing panics, and every reply reads back, answers the same id and fits
/// the transport.
#[test]
fn mutated_queries_never_panic_and_replies_are_well_formed() {
    let h = handler();
    let seeds = [
        query("web.shop.svc.cluster.local.", RecordType::A, Some(1232)),
        query("_http._tcp.pg.db.svc.cluster.local.", RecordType::SRV, None),
        query("alias.shop.svc.cluster.local.", RecordType::A, Some(512)),
        query("10-1-2-3.shop.pod.cluster.local.", RecordType::ANY, None),
        query("1.0.2.10.in-addr.arpa.", RecordType::PTR, Some(4096)),
    ];
    let mut state = 0x9e37_79b9_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let from = CLIENT.parse().unwrap();
    for round in 0..20_000u32 {
        let mut packet = seeds[round as usize % seeds.len()].clone();
        for _ in 0..(next() % 4 + 1) {
            let at = next() as usize % packet.len();
            match next() % 4 {
                0 => packet.truncate(at.max(1)),
                1 => packet.push(next().to_le_bytes()[0]),
                _ => packet[at] = next().to_le_bytes()[0],
            }
        }
        let transport = if round % 3 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        if let Step::Reply(bytes) = h.handle(&packet, from, transport) {
            if transport == Transport::Udp {
                assert!(bytes.len() <= 1232, "{} bytes", bytes.len());
            }
            let response = Message::from_vec(&bytes)
                .unwrap_or_else(|e| panic!("unreadable reply to {packet:?}: {e}"));
            assert_eq!(response.metadata.id.to_be_bytes(), [packet[0], packet[1]]);
            assert_eq!(response.metadata.message_type, MessageType::Response);
        }
    }
}

mod cached;
