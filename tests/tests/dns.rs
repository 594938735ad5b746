//! Cluster DNS end to end: the real `ferry run` on a manifest directory, queried with `dig`
//! over UDP and TCP. Every test points `--dns-upstream` at a fake server on loopback, so no
//! query ever leaves the machine.

#[path = "dns/support.rs"]
mod support;

use ferry_tests::{Ferry, free_port, require_tool, write_atomic};
use std::time::{Duration, Instant};
use support::{Upstream, dig, dig_at, query_packet, rcode_and_answers, start, udp_exchange};

const ZONE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: empty}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00::10"]
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 10.96.0.53
  ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: pg, namespace: db}
spec:
  clusterIP: None
  ports: [{name: postgres, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pg-v4, namespace: db, labels: {kubernetes.io/service-name: pg}}
addressType: IPv4
ports: [{name: postgres, port: 5432}]
endpoints:
- {addresses: [10.244.1.1], hostname: pg-0, conditions: {ready: true}}
- {addresses: [10.244.1.2], conditions: {ready: true}, targetRef: {kind: Pod, name: pg-6b8f9, namespace: db}}
- {addresses: [10.244.1.3], conditions: {ready: false}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pg-v6, namespace: db, labels: {kubernetes.io/service-name: pg}}
addressType: IPv6
ports: [{name: postgres, port: 5432}]
endpoints:
- {addresses: ["fd00::244:4"], hostname: pg-1, conditions: {ready: true}}
---
apiVersion: v1
kind: Service
metadata: {name: search, namespace: shop}
spec: {type: ExternalName, externalName: ext.example}
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec: {type: ExternalName, externalName: web.shop.svc.cluster.local}
"#;

/// Ferry on the zone above, forwarding to a fake upstream on loopback.
fn zone() -> (tempfile::TempDir, Upstream, Ferry, u16) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zone.yaml"), ZONE).unwrap();
    let upstream = Upstream::start();
    let addr = upstream.addr.to_string();
    let (ferry, port) = start(dir.path(), &["--dns-upstream", &addr]);
    (dir, upstream, ferry, port)
}

#[test]
fn every_record_kind_is_served_over_udp_and_tcp() {
    if !require_tool("every_record_kind_is_served_over_udp_and_tcp", "dig") {
        return;
    }
    let (_dir, _upstream, _ferry, port) = zone();
    for transport in ["+notcp", "+tcp"] {
        let ask = |name: &str, qtype: &str| dig(port, &[transport, name, qtype]);
        let a = ask("web.shop.svc.cluster.local", "A");
        assert_eq!(a.status, "NOERROR", "{}", a.raw);
        assert!(a.has_flag("aa"), "{}", a.raw);
        assert_eq!(a.answer, ["web.shop.svc.cluster.local. 30 IN A 10.96.0.10"]);
        if transport == "+tcp" {
            assert!(a.raw.contains("(TCP)"), "{}", a.raw);
        }
        let aaaa = ask("web.shop.svc.cluster.local", "AAAA");
        assert_eq!(aaaa.data(), ["fd00::10"]);

        let srv = ask("_http._tcp.web.shop.svc.cluster.local", "SRV");
        assert_eq!(srv.data(), ["0 100 80 web.shop.svc.cluster.local."]);
        let mut glue = srv.additional.clone();
        glue.sort();
        assert_eq!(
            glue,
            [
                "web.shop.svc.cluster.local. 30 IN A 10.96.0.10",
                "web.shop.svc.cluster.local. 30 IN AAAA fd00::10"
            ],
            "{}",
            srv.raw
        );
        assert_eq!(
            ask("web.shop.svc.cluster.local", "SRV").answer.len(),
            2,
            "bare-name SRV: every port"
        );

        let mut headless = ask("pg.db.svc.cluster.local", "A").data();
        headless.sort();
        assert_eq!(
            headless,
            ["10.244.1.1", "10.244.1.2"],
            "ready endpoints only"
        );
        assert_eq!(
            ask("pg.db.svc.cluster.local", "AAAA").data(),
            ["fd00::244:4"]
        );
        assert_eq!(
            ask("pg-0.pg.db.svc.cluster.local", "A").data(),
            ["10.244.1.1"]
        );
        assert_eq!(
            ask("10-244-1-2.pg.db.svc.cluster.local", "A").data(),
            ["10.244.1.2"],
            "without --dns-endpoint-pod-names the pod's name is not used"
        );
        let srv = ask("_postgres._tcp.pg.db.svc.cluster.local", "SRV");
        assert_eq!(srv.answer.len(), 3, "{}", srv.raw);
        assert!(
            srv.data()
                .contains(&"0 33 5432 pg-0.pg.db.svc.cluster.local.".to_string()),
            "{}",
            srv.raw
        );
        assert_eq!(srv.additional.len(), 3, "{}", srv.raw);

        let ptr = ask("10.0.96.10.in-addr.arpa", "PTR");
        assert_eq!(ptr.data(), ["web.shop.svc.cluster.local."]);
        let ptr = dig(port, &[transport, "-x", "fd00::10"]);
        assert_eq!(ptr.data(), ["web.shop.svc.cluster.local."], "{}", ptr.raw);
        let ptr = dig(port, &[transport, "-x", "10.244.1.1"]);
        assert_eq!(ptr.data(), ["pg-0.pg.db.svc.cluster.local."]);
        let ptr = dig(port, &[transport, "-x", "fd00::244:4"]);
        assert_eq!(ptr.data(), ["pg-1.pg.db.svc.cluster.local."]);

        let cname = ask("search.shop.svc.cluster.local", "CNAME");
        assert_eq!(cname.data(), ["ext.example."]);
        let alias = ask("alias.shop.svc.cluster.local", "A");
        assert_eq!(
            alias.answer,
            [
                "alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.",
                "web.shop.svc.cluster.local. 30 IN A 10.96.0.10"
            ]
        );

        let txt = ask("dns-version.cluster.local", "TXT");
        assert_eq!(
            txt.answer,
            ["dns-version.cluster.local. 28800 IN TXT \"1.1.0\""]
        );
        let soa = ask("cluster.local", "SOA");
        assert_eq!(soa.answer.len(), 1);
        assert!(
            soa.answer[0].starts_with(
                "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. "
            ) && soa.answer[0].ends_with(" 7200 1800 86400 30"),
            "{}",
            soa.raw
        );
        let ns = ask("cluster.local", "NS");
        assert_eq!(ns.data(), ["ns.dns.cluster.local."]);
        assert_eq!(ns.additional, ["ns.dns.cluster.local. 30 IN A 10.96.0.53"]);

        let pod = ask("10-244-9-9.shop.pod.cluster.local", "A");
        assert_eq!(pod.data(), ["10.244.9.9"]);
    }
}

#[test]
fn negative_answers_are_nodata_or_nxdomain_with_the_soa() {
    if !require_tool(
        "negative_answers_are_nodata_or_nxdomain_with_the_soa",
        "dig",
    ) {
        return;
    }
    let (_dir, _upstream, _ferry, port) = zone();
    for transport in ["+notcp", "+tcp"] {
        for (name, qtype) in [
            ("kube-dns.kube-system.svc.cluster.local", "AAAA"),
            ("dns-version.cluster.local", "A"),
            ("shop.svc.cluster.local", "A"),
            ("empty.svc.cluster.local", "A"),
            ("svc.cluster.local", "A"),
            ("_tcp.web.shop.svc.cluster.local", "SRV"),
            ("web.shop.svc.cluster.local", "SOA"),
            ("10-244-9-9.shop.pod.cluster.local", "AAAA"),
        ] {
            dig(port, &[transport, name, qtype]).assert_negative("NOERROR");
        }
        for (name, qtype) in [
            ("nope.shop.svc.cluster.local", "A"),
            ("nope.svc.cluster.local", "A"),
            ("10-244-1-3.pg.db.svc.cluster.local", "A"),
            ("x.web.shop.svc.cluster.local", "A"),
            ("foo.cluster.local", "A"),
            ("*.shop.svc.cluster.local", "A"),
            ("*.svc.cluster.local", "SRV"),
            ("_http._tcp.*.shop.svc.cluster.local", "SRV"),
            ("10-244-9-9.nope.pod.cluster.local", "A"),
            ("pg-6b8f9.pg.db.svc.cluster.local", "A"),
        ] {
            dig(port, &[transport, name, qtype]).assert_negative("NXDOMAIN");
        }
        // A known reverse name asked for another type: NODATA with the reverse zone's SOA.
        let nodata = dig(port, &[transport, "10.0.96.10.in-addr.arpa", "A"]);
        assert_eq!(nodata.status, "NOERROR", "{}", nodata.raw);
        assert!(nodata.answer.is_empty(), "{}", nodata.raw);
        assert_eq!(nodata.authority.len(), 1, "{}", nodata.raw);
        assert!(
            nodata.authority[0].starts_with(
                "in-addr.arpa. 30 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. "
            ) && nodata.authority[0].ends_with(" 7200 1800 86400 30"),
            "{}",
            nodata.raw
        );
    }
}

#[test]
fn endpoint_pod_names_name_hostless_endpoints_after_their_pod() {
    if !require_tool(
        "endpoint_pod_names_name_hostless_endpoints_after_their_pod",
        "dig",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zone.yaml"), ZONE).unwrap();
    let upstream = Upstream::start();
    let addr = upstream.addr.to_string();
    let (_ferry, port) = start(
        dir.path(),
        &["--dns-upstream", &addr, "--dns-endpoint-pod-names"],
    );
    for transport in ["+notcp", "+tcp"] {
        let ask = |name: &str, qtype: &str| dig(port, &[transport, name, qtype]);
        assert_eq!(
            ask("pg-6b8f9.pg.db.svc.cluster.local", "A").data(),
            ["10.244.1.2"]
        );
        ask("10-244-1-2.pg.db.svc.cluster.local", "A").assert_negative("NXDOMAIN");
        // A hostname still wins.
        assert_eq!(
            ask("pg-0.pg.db.svc.cluster.local", "A").data(),
            ["10.244.1.1"]
        );
        let ptr = dig(port, &[transport, "-x", "10.244.1.2"]);
        assert_eq!(
            ptr.data(),
            ["pg-6b8f9.pg.db.svc.cluster.local."],
            "{}",
            ptr.raw
        );
        let srv = ask("_postgres._tcp.pg.db.svc.cluster.local", "SRV");
        assert!(
            srv.data()
                .contains(&"0 33 5432 pg-6b8f9.pg.db.svc.cluster.local.".to_string()),
            "{}",
            srv.raw
        );
    }
}

#[test]
fn the_ipv6_and_ipv4_wildcards_serve_side_by_side() {
    if !require_tool("the_ipv6_and_ipv4_wildcards_serve_side_by_side", "dig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zone.yaml"), ZONE).unwrap();
    let port = free_port();
    let v6 = format!("[::]:{port}");
    let v4 = format!("0.0.0.0:{port}");
    let mut ferry = Ferry::start(&[
        "--manifests",
        dir.path().to_str().unwrap(),
        "--no-lb",
        "--no-ingress",
        "--dns-listen",
        &v6,
        "--dns-listen",
        &v4,
    ])
    .unwrap();
    ferry.wait_ready(Duration::from_secs(30)).unwrap();
    for server in ["127.0.0.1", "::1"] {
        for transport in ["+notcp", "+tcp"] {
            let a = dig_at(
                server,
                port,
                &[transport, "web.shop.svc.cluster.local", "A"],
            );
            assert_eq!(a.data(), ["10.96.0.10"], "@{server} {transport}: {}", a.raw);
        }
    }
}

#[test]
fn owner_names_echo_the_query_case() {
    if !require_tool("owner_names_echo_the_query_case", "dig") {
        return;
    }
    let (_dir, _upstream, _ferry, port) = zone();
    let a = dig(port, &["WeB.sHoP.Svc.CLUSTER.local", "A"]);
    assert_eq!(a.answer, ["WeB.sHoP.Svc.CLUSTER.local. 30 IN A 10.96.0.10"]);
    let srv = dig(
        port,
        &["+tcp", "_HTTP._Tcp.web.shop.svc.cluster.local", "SRV"],
    );
    assert_eq!(
        srv.answer,
        ["_HTTP._Tcp.web.shop.svc.cluster.local. 30 IN SRV 0 100 80 web.shop.svc.cluster.local."]
    );
}

#[test]
fn zone_transfers_are_refused() {
    if !require_tool("zone_transfers_are_refused", "dig") {
        return;
    }
    let (_dir, _upstream, _ferry, port) = zone();
    let axfr = dig(port, &["cluster.local", "AXFR"]);
    assert!(
        axfr.raw.contains("Transfer failed") || axfr.raw.contains("REFUSED"),
        "{}",
        axfr.raw
    );
    // IXFR over UDP (dig prints transfers without a status line: a raw query instead).
    let ixfr = query_packet(9, "cluster.local", 251, false);
    let response = udp_exchange(port, &ixfr, Duration::from_secs(2)).expect("an answer");
    assert_eq!(rcode_and_answers(&response), (5, 0), "REFUSED");
}

#[test]
fn large_answers_are_truncated_over_udp_and_whole_over_tcp() {
    if !require_tool(
        "large_answers_are_truncated_over_udp_and_whole_over_tcp",
        "dig",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: many, namespace: big}\n\
         spec: {clusterIP: None, ports: [{name: http, port: 80}]}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {name: many-1, namespace: big, labels: {kubernetes.io/service-name: many}}\n\
         addressType: IPv4\nports: [{name: http, port: 80}]\nendpoints:\n",
    );
    for i in 1..=100 {
        yaml.push_str(&format!(
            "- {{addresses: [10.250.0.{i}], conditions: {{ready: true}}}}\n"
        ));
    }
    std::fs::write(dir.path().join("many.yaml"), yaml).unwrap();
    let upstream = Upstream::start();
    let addr = upstream.addr.to_string();
    let (_ferry, port) = start(dir.path(), &["--dns-upstream", &addr]);
    let name = "many.big.svc.cluster.local";

    // No EDNS: 512 bytes. `+ignore` keeps dig from retrying over TCP by itself.
    let classic = dig(port, &["+noedns", "+ignore", name, "A"]);
    assert!(classic.has_flag("tc"), "{}", classic.raw);
    assert!(!classic.answer.is_empty() && classic.answer.len() < 100);
    let edns = dig(port, &["+bufsize=4096", "+ignore", name, "A"]);
    assert!(edns.has_flag("tc"), "1232 bytes at most: {}", edns.raw);
    // dig's default: retry over TCP on TC, and get all of it.
    let retried = dig(port, &["+noedns", name, "A"]);
    assert_eq!(retried.answer.len(), 100, "{}", retried.raw);
    let tcp = dig(port, &["+tcp", name, "A"]);
    assert!(!tcp.has_flag("tc"));
    assert_eq!(tcp.answer.len(), 100);
}

#[test]
fn a_service_added_live_is_answered_within_100ms_and_a_deleted_one_disappears() {
    let (dir, _upstream, ferry, port) = zone();
    let name = "live.shop.svc.cluster.local";
    let lookup = |id| {
        let response = udp_exchange(
            port,
            &query_packet(id, name, 1, false),
            Duration::from_secs(1),
        )
        .expect("an answer");
        rcode_and_answers(&response)
    };
    assert_eq!(lookup(1), (3, 0), "NXDOMAIN before");

    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: live, namespace: shop}\n\
                   spec: {clusterIP: 10.96.5.5, ports: [{port: 80}]}\n";
    let started = Instant::now();
    write_atomic(dir.path(), "live.yaml", service).unwrap();
    let mut id = 2;
    while lookup(id) != (0, 1) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never answered; log:\n{}",
            ferry.log()
        );
        id += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let added = started.elapsed();
    eprintln!("a new Service was answered {added:?} after its file was written");

    let started = Instant::now();
    std::fs::remove_file(dir.path().join("live.yaml")).unwrap();
    while lookup(id) != (3, 0) {
        assert!(started.elapsed() < Duration::from_secs(5), "never gone");
        id += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let deleted = started.elapsed();
    eprintln!("a deleted Service was NXDOMAIN {deleted:?} after its file was removed");
    assert!(added < Duration::from_millis(100), "took {added:?}");
    assert!(deleted < Duration::from_millis(100), "took {deleted:?}");
}

#[test]
fn malformed_packets_neither_crash_nor_stall_the_server() {
    if !require_tool(
        "malformed_packets_neither_crash_nor_stall_the_server",
        "dig",
    ) {
        return;
    }
    let (_dir, _upstream, ferry, port) = zone();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff],
        b"\x12\x34\x01\x00\x00\x01".to_vec(),
        // A header promising 60000 questions.
        b"\x12\x34\x01\x00\xea\x60\x00\x00\x00\x00\x00\x00\x03abc".to_vec(),
        // A compression pointer loop.
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01".to_vec(),
        // A label longer than the packet.
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fweb".to_vec(),
        vec![0xa5; 65000],
    ];
    let mut seed = 0x2545_f491_u32;
    for len in [12, 30, 100, 512, 1500] {
        garbage.push(
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed.to_le_bytes()[0]
                })
                .collect(),
        );
    }
    for packet in &garbage {
        socket.send_to(packet, ("127.0.0.1", port)).unwrap();
    }
    // A query header followed by junk gets FORMERR with its id.
    let broken = b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exa";
    let response = udp_exchange(port, broken, Duration::from_secs(2)).expect("FORMERR");
    assert_eq!(&response[..2], b"\xbe\xef");
    assert_eq!(rcode_and_answers(&response), (1, 0));
    // Garbage over TCP: the connection closes, the server lives on.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut stream, b"\x00\x05hello\xff\xff").unwrap();
    drop(stream);

    let a = dig(port, &["web.shop.svc.cluster.local", "A"]);
    assert_eq!(a.data(), ["10.96.0.10"], "{}", a.raw);
    let tcp = dig(port, &["+tcp", "web.shop.svc.cluster.local", "A"]);
    assert_eq!(tcp.data(), ["10.96.0.10"]);
    assert!(ferry.get("/healthz").unwrap().0 == 200);
    let formerr = ferry
        .metric("ferry_dns_responses_total{rcode=\"FORMERR\"}")
        .unwrap();
    assert!(formerr >= 1.0, "{formerr}");
}

#[test]
fn several_questions_and_other_classes_are_refused_cleanly() {
    let (_dir, _upstream, _ferry, port) = zone();
    // Two questions: FORMERR.
    let mut two = query_packet(7, "web.shop.svc.cluster.local", 1, false);
    two[5] = 2;
    let question = two[12..].to_vec();
    two.extend_from_slice(&question);
    let response = udp_exchange(port, &two, Duration::from_secs(2)).expect("an answer");
    assert_eq!(rcode_and_answers(&response), (1, 0));
    // Class CHAOS: NOTIMP.
    let mut chaos = query_packet(8, "version.bind", 16, false);
    let len = chaos.len();
    chaos[len - 1] = 3;
    let response = udp_exchange(port, &chaos, Duration::from_secs(2)).expect("an answer");
    assert_eq!(rcode_and_answers(&response), (4, 0));
}

#[test]
fn dns_metrics_count_requests_and_responses() {
    if !require_tool("dns_metrics_count_requests_and_responses", "dig") {
        return;
    }
    let (_dir, _upstream, ferry, port) = zone();
    dig(port, &["web.shop.svc.cluster.local", "A"]);
    dig(port, &["+tcp", "nope.svc.cluster.local", "A"]);
    let udp_a = ferry
        .metric("ferry_dns_requests_total{transport=\"udp\",type=\"A\"}")
        .unwrap();
    assert!(udp_a >= 1.0);
    let nx = ferry
        .metric("ferry_dns_responses_total{rcode=\"NXDOMAIN\"}")
        .unwrap();
    assert!(nx >= 1.0);
    let (_, body) = ferry.get("/metrics").unwrap();
    assert!(
        body.contains("ferry_dns_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(body.contains("ferry_dns_zone_serial"), "{body}");
}

#[test]
fn invalid_dns_settings_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap();
    for bad in [
        ["--dns-ttl", "forever"],
        ["--dns-ttl", "3601"],
        ["--dns-pods", "verified"],
        ["--dns-upstream", "dns.example"],
        ["--dns-allow", "10.0.0.0/40"],
    ] {
        let mut ferry = Ferry::start(&[
            "--manifests",
            dir,
            "--no-lb",
            "--no-ingress",
            bad[0],
            bad[1],
        ])
        .unwrap();
        let status = ferry.wait_exit(Duration::from_secs(10)).unwrap();
        assert_eq!(status.code(), Some(64), "{bad:?}: {}", ferry.log());
        assert!(ferry.log().contains(bad[0]), "{}", ferry.log());
    }
}
