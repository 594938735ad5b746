//! Forwarding end to end: names outside the cluster zone go to a fake upstream on loopback
//! (`--dns-upstream`), over UDP with TCP on TC, cached, with SERVFAIL on failure; ExternalName
//! targets are chased through it; clients outside `--dns-allow` are refused.

#[path = "dns/support.rs"]
mod support;

use ferry_tests::require_tool;
use std::time::{Duration, Instant};
use support::{Upstream, dig, start};

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: search, namespace: shop}
spec: {type: ExternalName, externalName: ext.example}
---
apiVersion: v1
kind: Service
metadata: {name: gone, namespace: shop}
spec: {type: ExternalName, externalName: missing.example}
---
apiVersion: v1
kind: Service
metadata: {name: stuck, namespace: shop}
spec: {type: ExternalName, externalName: slow.example}
"#;

fn setup(extra: &[&str]) -> (tempfile::TempDir, Upstream, ferry_tests::Ferry, u16) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("services.yaml"), SERVICES).unwrap();
    let upstream = Upstream::start();
    let addr = upstream.addr.to_string();
    let mut args = vec!["--dns-upstream", addr.as_str()];
    args.extend(extra);
    let (ferry, port) = start(dir.path(), &args);
    (dir, upstream, ferry, port)
}

#[test]
fn other_names_are_forwarded_and_cached() {
    if !require_tool("other_names_are_forwarded_and_cached", "dig") {
        return;
    }
    let (_dir, upstream, ferry, port) = setup(&[]);
    let first = dig(port, &["www.example", "A"]);
    assert_eq!(first.status, "NOERROR", "{}", first.raw);
    assert_eq!(first.answer, ["www.example. 300 IN A 192.0.2.10"]);
    assert!(
        !first.has_flag("aa") && first.has_flag("ra"),
        "{}",
        first.raw
    );
    let again = dig(port, &["+tcp", "WWW.example", "A"]);
    assert_eq!(again.data(), ["192.0.2.10"]);
    assert_eq!(
        upstream.queries("www.example", "udp"),
        1,
        "the second came from the cache"
    );
    assert!(ferry.metric("ferry_dns_forward_cache_hits_total").unwrap() >= 1.0);

    let missing = dig(port, &["missing.example", "A"]);
    assert_eq!(missing.status, "NXDOMAIN", "{}", missing.raw);
    assert_eq!(missing.authority.len(), 1, "{}", missing.raw);
    dig(port, &["missing.example", "A"]);
    assert_eq!(
        upstream.queries("missing.example", "udp"),
        1,
        "negative answers are cached too"
    );

    // Reverse names of addresses that are not the cluster's fall through to the upstream.
    let ptr = dig(port, &["-x", "192.0.2.99"]);
    assert_eq!(ptr.status, "NOERROR", "{}", ptr.raw);
    assert_eq!(upstream.queries("99.2.0.192.in-addr.arpa", "udp"), 1);
    // The cluster's own are answered here.
    let own = dig(port, &["-x", "10.96.0.10"]);
    assert_eq!(own.data(), ["web.shop.svc.cluster.local."]);
    assert_eq!(upstream.queries("10.0.96.10.in-addr.arpa", "udp"), 0);
}

#[test]
fn a_truncated_upstream_answer_is_fetched_again_over_tcp() {
    if !require_tool(
        "a_truncated_upstream_answer_is_fetched_again_over_tcp",
        "dig",
    ) {
        return;
    }
    let (_dir, upstream, _ferry, port) = setup(&[]);
    let big = dig(port, &["+tcp", "big.example", "A"]);
    assert_eq!(big.answer.len(), 40, "{}", big.raw);
    assert_eq!(upstream.queries("big.example", "udp"), 1);
    assert_eq!(upstream.queries("big.example", "tcp"), 1);
    // Passed on over UDP, it is truncated to the client's buffer again.
    let udp = dig(port, &["+noedns", "+ignore", "big.example", "A"]);
    assert!(udp.has_flag("tc"), "{}", udp.raw);
}

#[test]
fn an_upstream_that_does_not_answer_gives_servfail_and_others_still_flow() {
    if !require_tool(
        "an_upstream_that_does_not_answer_gives_servfail_and_others_still_flow",
        "dig",
    ) {
        return;
    }
    let (_dir, upstream, _ferry, port) = setup(&[]);
    let started = Instant::now();
    let handle = std::thread::spawn(move || dig(port, &["+time=8", "slow.example", "A"]));
    // Meanwhile cluster names and other forwarded names are answered at once.
    std::thread::sleep(Duration::from_millis(100));
    let during = Instant::now();
    let web = dig(port, &["web.shop.svc.cluster.local", "A"]);
    assert_eq!(web.data(), ["10.96.0.10"]);
    assert!(during.elapsed() < Duration::from_millis(500));
    let slow = handle.join().unwrap();
    let took = started.elapsed();
    eprintln!("SERVFAIL for an unanswered upstream after {took:?}");
    assert_eq!(slow.status, "SERVFAIL", "{}", slow.raw);
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(upstream.queries("slow.example", "udp") >= 1);

    // No upstream listening at all: SERVFAIL.
    drop(upstream);
    let refused = dig(port, &["nowhere.example", "A"]);
    assert_eq!(refused.status, "SERVFAIL", "{}", refused.raw);
}

#[test]
fn an_external_name_is_chased_through_the_upstream() {
    if !require_tool("an_external_name_is_chased_through_the_upstream", "dig") {
        return;
    }
    let (_dir, _upstream, _ferry, port) = setup(&[]);
    let a = dig(port, &["search.shop.svc.cluster.local", "A"]);
    assert_eq!(a.status, "NOERROR");
    assert_eq!(
        a.answer,
        [
            "search.shop.svc.cluster.local. 30 IN CNAME ext.example.",
            "ext.example. 300 IN A 192.0.2.10"
        ],
        "{}",
        a.raw
    );
    // A target that does not resolve, or whose upstream fails: the CNAME alone, NOERROR.
    for name in [
        "gone.shop.svc.cluster.local",
        "stuck.shop.svc.cluster.local",
    ] {
        let alone = dig(port, &["+time=8", name, "A"]);
        assert_eq!(alone.status, "NOERROR", "{}", alone.raw);
        assert_eq!(alone.answer.len(), 1, "{}", alone.raw);
        assert!(alone.answer[0].contains(" CNAME "), "{}", alone.raw);
    }
}

#[test]
fn clients_outside_dns_allow_are_refused_forwarding_but_get_cluster_names() {
    if !require_tool(
        "clients_outside_dns_allow_are_refused_forwarding_but_get_cluster_names",
        "dig",
    ) {
        return;
    }
    let (_dir, upstream, _ferry, port) = setup(&["--dns-allow", "10.0.0.0/8"]);
    let other = dig(port, &["www.example", "A"]);
    assert_eq!(other.status, "REFUSED", "{}", other.raw);
    assert_eq!(upstream.queries("www.example", "udp"), 0);
    let web = dig(port, &["web.shop.svc.cluster.local", "A"]);
    assert_eq!(web.data(), ["10.96.0.10"]);
}
