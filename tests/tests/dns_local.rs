//! Node-local DNS end to end: with DNS and the LB both on, the socket LB sends the cluster DNS
//! Service's port 53 (UDP and TCP) to this node's own DNS server, and hands it back to the
//! Service's endpoints when that server stops. The real `ferry run` in a sandbox namespace;
//! `dig` runs there too, inside the socket-LB cgroup, and dials the ClusterIP; the Service's
//! endpoint is a fake DNS server in a backend namespace that answers every name with
//! 192.0.2.10, so each answer tells who gave it. Needs root and dig.

#[path = "dns/support.rs"]
mod support;

use ferry_tests::lab::LbLab;
use ferry_tests::netns::in_netns;
use ferry_tests::{free_port, require_root, require_tool};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Dig, Upstream, parse_dig};

const DNS_VIP: &str = "10.96.0.10";
/// What the fake endpoint answers for any name.
const FROM_ENDPOINT: &str = "192.0.2.10";
/// What ferry answers for `web.shop.svc.cluster.local`.
const FROM_FERRY: &str = "10.96.0.20";
const NAME: &str = "web.shop.svc.cluster.local";

fn manifests(endpoint: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: kube-dns, namespace: kube-system}}
spec:
  clusterIP: {DNS_VIP}
  ports:
  - {{name: dns, port: 53, protocol: UDP}}
  - {{name: dns-tcp, port: 53, protocol: TCP}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-1
  namespace: kube-system
  labels: {{kubernetes.io/service-name: kube-dns}}
addressType: IPv4
ports: [{{name: dns, port: 53, protocol: UDP}}, {{name: dns-tcp, port: 53, protocol: TCP}}]
endpoints: [{{addresses: ["{endpoint}"], nodeName: node-b}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{clusterIP: {FROM_FERRY}, ports: [{{name: http, port: 80}}]}}
"#
    )
}

/// `dig @10.96.0.10 NAME` from the sandbox namespace, in the socket-LB cgroup.
fn dig_vip(lab: &LbLab, transport: &str) -> Dig {
    let procs = lab.sandbox().cgroup_dir().join("cgroup.procs");
    let script = format!("echo $$ > {} && exec dig \"$@\"", procs.display());
    let output = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", lab.sandbox().netns()))
        .args(["--", "sh", "-c", &script, "sh"])
        .args([&format!("@{DNS_VIP}"), "+time=2", "+tries=1", transport])
        .args([NAME, "A"])
        .output()
        .expect("running dig");
    parse_dig(&String::from_utf8_lossy(&output.stdout))
}

/// Asserts that `want` answers `NAME` over `transport` within 10 s.
fn assert_answer(lab: &LbLab, transport: &str, want: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dig = dig_vip(lab, transport);
        if dig.data() == [want] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{transport}: {what}: want {want}, dig said:\n{}\nferry:\n{}",
            dig.raw,
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_cluster_dns_service_is_answered_on_the_node_and_handed_back_on_shutdown() {
    const TEST: &str = "dns_local";
    if !require_root(TEST) || !require_tool(TEST, "dig") || !require_tool(TEST, "nsenter") {
        return;
    }
    let mut lab = LbLab::new("dnsloc").expect("lab");
    let endpoint = lab.sandbox().add_backend(170, "dns").expect("backend");
    let endpoint_addr = SocketAddr::new(endpoint.ipv4, 53);
    let _endpoint_server =
        in_netns(&endpoint.netns, || Upstream::start_on(endpoint_addr)).expect("fake endpoint");
    lab.write("dns.yaml", &manifests(&endpoint.ipv4.to_string()));

    // DNS off: the endpoint answers through the LB, as with kube-proxy.
    lab.start(None, &[]);
    for transport in ["+notcp", "+tcp"] {
        assert_answer(&lab, transport, FROM_ENDPOINT, "no local DNS: the endpoint");
    }

    // DNS on: the node's own server answers the Service's ClusterIP, over UDP and TCP.
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    lab.start(None, &["--dns-listen", &listen]);
    for transport in ["+notcp", "+tcp"] {
        assert_answer(&lab, transport, FROM_FERRY, "steered to the local DNS");
    }

    // A graceful stop leaves the datapath pinned, pointed back at the endpoints.
    let mut ferry = lab.take_ferry();
    ferry
        .signal(nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    ferry.wait_exit(Duration::from_secs(10)).expect("exit");
    assert_eq!(
        dig_vip(&lab, "+notcp").data(),
        [FROM_ENDPOINT],
        "after the daemon stopped, the endpoints answer again\n{}",
        ferry.log()
    );

    // `--dns-service none`: never steered.
    lab.start(None, &["--dns-listen", &listen, "--dns-service", "none"]);
    assert_eq!(dig_vip(&lab, "+tcp").data(), [FROM_ENDPOINT]);
}
