//! NodePorts, externalIPs and the health check node port end to end through the real `ferry`
//! binary, in a test network of namespaces of the test's own (`ferry_tests::topology`):
//!
//! ```text
//!   client ── lan ── n0 [node: ferry run, NodePort programs on n0] n1 ── pod (node-a)
//!   remote (node-b) ── lan
//! ```
//!
//! Ferry runs in the node namespace with `--nodeport-interface n0` and the node's IPv4 and IPv6
//! addresses as `--node-ip 10.201.1.1,fd00:201:1::1`, pins
//! on a bpffs of the test's own and its socket-LB programs on a child cgroup of the test's own.
//! The client dials the node over the lan; the pod and the remote node answer
//! `<name> <client ip as they saw it>`, which `lbprobe` prints followed by the peer address the
//! client saw. Needs root.

use ferry_tests::lab::LbLab;
use ferry_tests::netns::Servers;
use ferry_tests::topology::{
    CLIENT_V4, CLIENT_V6, NODE_V4, NODE_V6, Ns, Offload, POD_V4, POD_V6, REMOTE_V4, REMOTE_V6,
    Topology,
};
use ferry_tests::{Ferry, require_root, require_tool};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// Port of the backends' TCP and UDP servers.
const TARGET_PORT: u16 = 8080;
const NODE_PORT: u16 = 30080;
const HEALTH_PORT: u16 = 32100;
/// An externalIP: no interface holds it, the client routes it via the node.
const EXTERNAL_IP: &str = "10.201.9.9";
/// Most probes one search may send, and how long it may take.
const MAX_PROBES: usize = 40;
const DEADLINE: Duration = Duration::from_secs(20);

/// One test's world. Fields drop in order: the LB frame (daemon, pins, cgroup, manifests),
/// the backend servers, the test network.
struct Lab {
    /// Its sandbox's namespace stays empty: only its cgroup is used.
    lab: LbLab,
    #[expect(
        dead_code,
        reason = "held for its drop: the servers stop before the network goes"
    )]
    servers: Servers,
    topology: Topology,
}

impl Lab {
    /// The network with a pod (`pod`, on node-a) and a remote endpoint (`remote`, on node-b)
    /// serving TCP and UDP; `None` after a loud skip without root or tools.
    fn new(tag: &str) -> Option<Self> {
        let test = format!("nodeport e2e {tag}");
        if !require_root(&test)
            || !["ip", "ethtool", "nsenter"]
                .iter()
                .all(|t| require_tool(&test, t))
        {
            return None;
        }
        let lab = LbLab::new(&format!("np-{tag}")).expect("lab");
        let topology = Topology::create(&format!("e2e-{tag}"), Offload::Off).expect("topology");
        let mut servers = Servers::default();
        for (ns, ip, name) in [
            (Ns::Pod, POD_V4, "pod"),
            (Ns::Pod, POD_V6, "pod"),
            (Ns::Remote, REMOTE_V4, "remote"),
            (Ns::Remote, REMOTE_V6, "remote"),
        ] {
            let addr = SocketAddr::new(ip.parse().unwrap(), TARGET_PORT);
            servers
                .serve(&topology.name(ns), addr, name)
                .expect("backend servers");
        }
        Some(Self {
            lab,
            servers,
            topology,
        })
    }

    fn write(&self, file: &str, yaml: &str) {
        self.lab.write(file, yaml);
    }

    /// Starts `ferry run` in the node namespace, NodePorts on `n0`, and waits until it is
    /// ready (maps programmed).
    fn start(&mut self) -> &Ferry {
        let node = self.topology.name(Ns::Node);
        let node_ips = format!("{NODE_V4},{NODE_V6}");
        let extra = ["--node-ip", &node_ips, "--nodeport-interface", "n0"];
        self.lab.start(Some(&node), &extra)
    }

    fn ferry(&self) -> &Ferry {
        self.lab.ferry()
    }

    /// One `lbprobe` run in the client namespace: `<name> <client ip seen> <peer>` or
    /// `error: <kind>: ...`.
    fn probe(&self, mode: &str, addr: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.topology.name(Ns::Client)])
            .arg(env!("CARGO_BIN_EXE_lbprobe"))
            .args([mode, addr])
            .output()
            .expect("lbprobe");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Probes until every answer in `expected` was seen (at most [`MAX_PROBES`] probes and
    /// [`DEADLINE`]); every answer must be one of them.
    fn expect_answers(&self, mode: &str, addr: &str, expected: &[String]) {
        let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        let mut seen = BTreeSet::new();
        let started = Instant::now();
        for _ in 0..MAX_PROBES {
            let line = self.probe(mode, addr);
            assert!(
                expected.contains(line.as_str()),
                "{mode} {addr}: unexpected answer {line:?}, expected one of {expected:?}; log:\n{}",
                self.ferry().log()
            );
            seen.insert(line);
            if seen.len() == expected.len() || started.elapsed() > DEADLINE {
                break;
            }
        }
        let seen: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
        assert_eq!(seen, expected, "{mode} {addr}: answers seen");
    }

    /// A GET on the health check node port from the client namespace.
    fn health(&self) -> anyhow::Result<(u16, String)> {
        let url = format!("http://{NODE_V4}:{HEALTH_PORT}/");
        ferry_tests::netns::in_netns(&self.topology.name(Ns::Client), || {
            ferry_tests::http_get(&url)
        })?
    }

    /// Polls the health check port until it answers `status`; returns the body.
    fn wait_for_health(&self, status: u16) -> String {
        let started = Instant::now();
        let mut last = None;
        for _ in 0..250 {
            match self.health() {
                Ok((s, body)) if s == status => return body,
                other => last = Some(other),
            }
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "health check port never answered {status}; last: {last:?}; log:\n{}",
            self.ferry().log()
        );
    }

    /// A datapath counter from ferry's metrics.
    fn counter(&self, name: &str) -> f64 {
        let metric = format!("ferry_lb_datapath_total{{counter=\"{name}\"}}");
        self.ferry().metric(&metric).expect("metric")
    }

    /// No namespace of the network rejected a packet for its checksum.
    fn assert_checksums_clean(&self) {
        for ns in [Ns::Client, Ns::Node, Ns::Remote, Ns::Pod] {
            let errors = self.topology.checksum_errors(ns).expect("snmp counters");
            assert_eq!(errors, 0, "checksum errors in {ns:?}");
        }
    }
}

/// A Service `web` in namespace `demo` with a TCP and a UDP port 80 to [`TARGET_PORT`]
/// (NodePort [`NODE_PORT`] unless the type is ClusterIP); `extra` lines go under `spec`.
fn service(service_type: &str, extra: &str) -> String {
    let node_port = if service_type == "ClusterIP" {
        String::new()
    } else {
        format!(", nodePort: {NODE_PORT}")
    };
    let port = |proto: &str| {
        format!(
            "{{name: {}, port: 80, protocol: {proto}, targetPort: {TARGET_PORT}{node_port}}}",
            proto.to_lowercase()
        )
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: demo}}\n\
         spec:\n  type: {service_type}\n  clusterIP: 10.96.0.10\n  ports: [{}, {}]\n{extra}---\n",
        port("TCP"),
        port("UDP")
    )
}

/// The EndpointSlice of `web`: ready endpoints `(address, node name)`.
fn slice(endpoints: &[(&str, &str)]) -> String {
    slice_of("web-x", "IPv4", endpoints)
}

/// EndpointSlice `name` of `web` for `address_type` addresses.
fn slice_of(name: &str, address_type: &str, endpoints: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}, namespace: demo, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: {address_type}\n\
         ports: [{{name: tcp, port: {TARGET_PORT}, protocol: TCP}}, {{name: udp, port: {TARGET_PORT}, protocol: UDP}}]\n\
         endpoints:\n"
    );
    for (address, node) in endpoints {
        text.push_str(&format!(
            "- addresses: [\"{address}\"]\n  nodeName: {node}\n  conditions: {{ready: true, serving: true, terminating: false}}\n"
        ));
    }
    text.push_str("---\n");
    text
}

/// Both endpoints: the pod on this node, the remote one on node-b.
fn both_endpoints() -> String {
    slice(&[(POD_V4, "node-a"), (REMOTE_V4, "node-b")])
}

/// What `lbprobe` prints when `backend` answered, having seen the client as `seen`, and the
/// client saw `peer` as the other end.
fn answer(backend: &str, seen: &str, peer: &str) -> String {
    format!("{backend} {seen} {peer}")
}

#[test]
fn cluster_policy_node_ports_masquerade_only_remote_backends() {
    let Some(mut lab) = Lab::new("cluster") else {
        return;
    };
    lab.write(
        "web.yaml",
        &[service("NodePort", ""), both_endpoints()].concat(),
    );
    lab.start();
    let frontend = format!("{NODE_V4}:{NODE_PORT}");
    let expected = [
        answer("pod", CLIENT_V4, &frontend),
        answer("remote", NODE_V4, &frontend),
    ];
    lab.expect_answers("tcp", &frontend, &expected);
    lab.expect_answers("udp", &frontend, &expected);
    assert!(lab.counter("ct_created") >= 4.0);
    assert_eq!(lab.counter("snat_failed"), 0.0);
    assert_eq!(lab.counter("redirect_failed"), 0.0);
    lab.assert_checksums_clean();
}

#[test]
fn dual_stack_node_ports_are_served_on_both_node_addresses() {
    let Some(mut lab) = Lab::new("dual") else {
        return;
    };
    let dual = "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n  \
                clusterIPs: [10.96.0.10, \"fd00:96::10\"]\n";
    let v6_endpoints = slice_of(
        "web-6",
        "IPv6",
        &[(POD_V6, "node-a"), (REMOTE_V6, "node-b")],
    );
    lab.write(
        "web.yaml",
        &[service("NodePort", dual), both_endpoints(), v6_endpoints].concat(),
    );
    lab.start();
    let frontend = format!("[{NODE_V6}]:{NODE_PORT}");
    let expected = [
        answer("pod", CLIENT_V6, &frontend),
        answer("remote", NODE_V6, &frontend),
    ];
    lab.expect_answers("tcp", &frontend, &expected);
    lab.expect_answers("udp", &frontend, &expected);
    let frontend = format!("{NODE_V4}:{NODE_PORT}");
    let expected = [
        answer("pod", CLIENT_V4, &frontend),
        answer("remote", NODE_V4, &frontend),
    ];
    lab.expect_answers("tcp", &frontend, &expected);
    assert_eq!(lab.counter("snat_failed"), 0.0);
    lab.assert_checksums_clean();
}

#[test]
fn local_policy_node_ports_reach_only_the_local_pod_with_the_client_address() {
    let Some(mut lab) = Lab::new("local") else {
        return;
    };
    lab.write(
        "web.yaml",
        &[
            service("NodePort", "  externalTrafficPolicy: Local\n"),
            both_endpoints(),
        ]
        .concat(),
    );
    lab.start();
    let frontend = format!("{NODE_V4}:{NODE_PORT}");
    for mode in ["tcp", "udp"] {
        let answers: BTreeSet<String> = (0..20).map(|_| lab.probe(mode, &frontend)).collect();
        assert_eq!(
            answers,
            BTreeSet::from([answer("pod", CLIENT_V4, &frontend)]),
            "{mode}: only the local pod, seeing the client; log:\n{}",
            lab.ferry().log()
        );
    }
    lab.assert_checksums_clean();
}

#[test]
fn external_ips_are_served_to_clients_outside_the_node() {
    let Some(mut lab) = Lab::new("extip") else {
        return;
    };
    let external = format!("  externalIPs: [\"{EXTERNAL_IP}\"]\n");
    lab.write(
        "web.yaml",
        &[service("ClusterIP", &external), both_endpoints()].concat(),
    );
    lab.start();
    let frontend = format!("{EXTERNAL_IP}:80");
    let expected = [
        answer("pod", CLIENT_V4, &frontend),
        answer("remote", NODE_V4, &frontend),
    ];
    lab.expect_answers("tcp", &frontend, &expected);
    lab.expect_answers("udp", &frontend, &expected);
    lab.assert_checksums_clean();
}

#[test]
fn health_check_node_port_follows_the_local_endpoints() {
    let Some(mut lab) = Lab::new("health") else {
        return;
    };
    let spec = format!("  externalTrafficPolicy: Local\n  healthCheckNodePort: {HEALTH_PORT}\n");
    lab.write(
        "web.yaml",
        &[service("LoadBalancer", &spec), both_endpoints()].concat(),
    );
    lab.start();
    let body = lab.wait_for_health(200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(json["localEndpoints"], 1, "{body}");
    assert_eq!(json["service"]["namespace"], "demo", "{body}");
    assert_eq!(json["service"]["name"], "web", "{body}");
    let frontend = format!("{NODE_V4}:{NODE_PORT}");
    assert_eq!(
        lab.probe("tcp", &frontend),
        answer("pod", CLIENT_V4, &frontend)
    );

    // The pod leaves: this node has no endpoint of the Service any more.
    lab.write(
        "web.yaml",
        &[
            service("LoadBalancer", &spec),
            slice(&[(REMOTE_V4, "node-b")]),
        ]
        .concat(),
    );
    let body = lab.wait_for_health(503);
    let json: serde_json::Value = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(json["localEndpoints"], 0, "{body}");
    let dropped = lab.probe("tcp", &frontend);
    assert!(
        dropped.starts_with("error: TimedOut"),
        "a Local NodePort without a local endpoint drops: {dropped}"
    );
    assert!(lab.counter("nodeport_no_backend") >= 1.0);
}
