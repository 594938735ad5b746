//! The eBPF load balancer end to end: the real `ferry run` in a network namespace of the test's
//! own, socket-LB programs on a child cgroup of the test's own, backends in namespaces of their
//! own, and `lbprobe` clients moved into that cgroup. Needs root.

use ferry_tests::lab::LbLab;
use ferry_tests::netns::{Backend, TCP_PORT, UDP_PORT};
use ferry_tests::{Ferry, require_root};
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

/// One test's world: the common LB frame, and backends in namespaces of their own.
struct Lab {
    lab: LbLab,
    backends: Vec<Backend>,
}

impl std::ops::Deref for Lab {
    type Target = LbLab;
    fn deref(&self) -> &LbLab {
        &self.lab
    }
}

impl Lab {
    fn new(tag: &str, backends: u8) -> Self {
        let lab = LbLab::new(tag).expect("lab");
        let backends = (0..backends)
            .map(|i| {
                lab.sandbox()
                    .add_backend(i, &format!("b{i}"))
                    .expect("backend")
            })
            .collect();
        Self { lab, backends }
    }

    fn start(&mut self, extra: &[&str]) -> &mut Ferry {
        self.lab.start(None, extra)
    }

    /// One `lbprobe` run from inside the sandbox and its cgroup: its output line.
    fn probe(&self, mode: &str, addr: &str) -> String {
        self.probe_args(&[mode, addr])
    }

    fn probe_args(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                self.sandbox().netns(),
                env!("CARGO_BIN_EXE_lbprobe"),
            ])
            .arg("--cgroup")
            .arg(self.sandbox().cgroup_dir())
            .args(args)
            .output()
            .expect("lbprobe");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The backend names `n` probes reached (the first word of each reply), with the peer
    /// address each reported.
    fn spread(&self, mode: &str, addr: &str, n: usize) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut names, mut peers) = (BTreeSet::new(), BTreeSet::new());
        for _ in 0..n {
            let line = self.probe(mode, addr);
            let mut words = line.split_whitespace();
            names.insert(words.next().unwrap_or_default().to_string());
            peers.insert(words.collect::<Vec<_>>().join(" "));
        }
        (names, peers)
    }

    /// Probes until ten replies in a row come from `name` alone.
    fn wait_for_only(&self, mode: &str, addr: &str, name: &str) -> Duration {
        let started = Instant::now();
        let mut streak = 0;
        while started.elapsed() < Duration::from_secs(5) {
            if self.probe(mode, addr).starts_with(&format!("{name} ")) {
                streak += 1;
                if streak == 10 {
                    return started.elapsed();
                }
            } else {
                streak = 0;
            }
        }
        panic!(
            "{addr} never reached {name} alone; log:\n{}",
            self.ferry().log()
        );
    }

    /// Probes until the reply's backend is `name`; returns how long that took.
    fn wait_for_backend(&self, mode: &str, addr: &str, name: &str) -> Duration {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if self.probe(mode, addr).starts_with(&format!("{name} ")) {
                return started.elapsed();
            }
        }
        panic!("{addr} never reached {name}; log:\n{}", self.ferry().log());
    }
}

fn service(
    name: &str,
    cluster_ip: &str,
    port: u16,
    protocol: &str,
    target: u16,
    extra: &str,
) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: demo}}\n\
         spec:\n  clusterIP: {cluster_ip}\n  ports: [{{name: p, port: {port}, protocol: {protocol}, targetPort: {target}}}]\n{extra}---\n"
    )
}

/// An EndpointSlice of `service` with `(address, ready, serving, terminating, node)` endpoints.
fn slice(
    service: &str,
    family: &str,
    protocol: &str,
    port: u16,
    endpoints: &[(String, bool, bool, bool, &str)],
) -> String {
    let mut text = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {service}-x, namespace: demo, labels: {{kubernetes.io/service-name: {service}}}}}\n\
         addressType: {family}\nports: [{{name: p, port: {port}, protocol: {protocol}}}]\nendpoints:\n"
    );
    for (address, ready, serving, terminating, node) in endpoints {
        text.push_str(&format!(
            "- addresses: [\"{address}\"]\n  nodeName: {node}\n  conditions: {{ready: {ready}, serving: {serving}, terminating: {terminating}}}\n"
        ));
    }
    text.push_str("---\n");
    text
}

fn ready(b: &Backend) -> (String, bool, bool, bool, &'static str) {
    (b.ipv4.to_string(), true, true, false, "node-a")
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn tcp_and_udp_cluster_ips_use_every_backend_and_keep_the_service_address() {
    if !require_root("lb tcp/udp") {
        return;
    }
    let mut lab = Lab::new("spread", 3);
    let eps: Vec<_> = lab.backends.iter().map(ready).collect();
    lab.write(
        "svc.yaml",
        &[
            service("web", "10.96.0.10", 80, "TCP", TCP_PORT, ""),
            slice("web", "IPv4", "TCP", TCP_PORT, &eps),
            service("dns", "10.96.0.53", 53, "UDP", UDP_PORT, ""),
            slice("dns", "IPv4", "UDP", UDP_PORT, &eps),
        ]
        .concat(),
    );
    lab.start(&[]);
    let all = names(&["b0", "b1", "b2"]);
    let (seen, peers) = lab.spread("tcp", "10.96.0.10:80", 30);
    assert_eq!(seen, all, "TCP reached {seen:?}");
    assert_eq!(
        peers,
        names(&["10.96.0.10:80"]),
        "getpeername shows the ClusterIP"
    );
    let (seen, sources) = lab.spread("udp", "10.96.0.53:53", 30);
    assert_eq!(seen, all, "UDP reached {seen:?}");
    assert_eq!(
        sources,
        names(&["10.96.0.53:53"]),
        "replies come from the ClusterIP"
    );
    let (seen, peers) = lab.spread("udp-connected", "10.96.0.53:53", 30);
    assert_eq!(seen, all, "connected UDP reached {seen:?}");
    assert_eq!(peers, names(&["10.96.0.53:53"]));
    // A port the Service does not have, and an address that is no Service: left alone.
    assert!(
        lab.probe("tcp", "10.96.0.10:81")
            .starts_with("error: NetworkUnreachable")
    );
    assert!(
        lab.probe("tcp", "10.96.9.9:80")
            .starts_with("error: NetworkUnreachable")
    );
    let translated = "ferry_lb_datapath_total{counter=\"sock_translated\"}";
    assert!(lab.ferry().metric(translated).unwrap() >= 90.0);
}

#[test]
fn no_endpoints_fail_at_once_and_live_edits_are_followed() {
    if !require_root("lb live edits") {
        return;
    }
    let mut lab = Lab::new("live", 2);
    lab.write(
        "svc.yaml",
        &service("web", "10.96.0.10", 80, "TCP", TCP_PORT, ""),
    );
    lab.start(&[]);
    let started = Instant::now();
    let failed = lab.probe("tcp", "10.96.0.10:80");
    assert!(failed.starts_with("error: PermissionDenied"), "{failed}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "connect must fail at once"
    );

    let b0 = ready(&lab.backends[0]);
    lab.write("eps.yaml", &slice("web", "IPv4", "TCP", TCP_PORT, &[b0]));
    let added = lab.wait_for_backend("tcp", "10.96.0.10:80", "b0");
    eprintln!("endpoint added: followed after {added:?}");
    let b1 = ready(&lab.backends[1]);
    lab.write("eps.yaml", &slice("web", "IPv4", "TCP", TCP_PORT, &[b1]));
    let replaced = lab.wait_for_backend("tcp", "10.96.0.10:80", "b1");
    eprintln!("endpoint replaced: followed after {replaced:?}");
    // The bound; about 30 ms here (the watcher's 25 ms debounce, a sync, the probes).
    for took in [added, replaced] {
        assert!(took < Duration::from_millis(100), "took {took:?}");
    }
    let (seen, _) = lab.spread("tcp", "10.96.0.10:80", 10);
    assert_eq!(seen, names(&["b1"]));
}

#[test]
fn session_affinity_keeps_a_client_on_its_backend_until_the_timeout() {
    if !require_root("lb affinity") {
        return;
    }
    let mut lab = Lab::new("affinity", 3);
    let eps: Vec<_> = lab.backends.iter().map(ready).collect();
    let affinity =
        "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 1}}\n";
    lab.write(
        "svc.yaml",
        &[
            service("web", "10.96.0.10", 80, "TCP", TCP_PORT, affinity),
            slice("web", "IPv4", "TCP", TCP_PORT, &eps),
        ]
        .concat(),
    );
    lab.start(&[]);
    let (seen, _) = lab.spread("tcp", "10.96.0.10:80", 20);
    assert_eq!(seen.len(), 1, "one client, one backend: {seen:?}");
    let mut after_timeout = BTreeSet::new();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(1300));
        after_timeout.insert(lab.probe("tcp", "10.96.0.10:80"));
        if after_timeout.len() > 1 {
            break;
        }
    }
    assert!(
        after_timeout.len() > 1,
        "after the timeout the choice is random again: {after_timeout:?}"
    );
}

#[test]
fn terminating_fallback_and_internal_traffic_policy_local() {
    if !require_root("lb endpoint conditions") {
        return;
    }
    let mut lab = Lab::new("conditions", 3);
    let ip = |i: usize| lab.backends[i].ipv4.to_string();
    let local = "  internalTrafficPolicy: Local\n";
    lab.write(
        "svc.yaml",
        &[
            service("web", "10.96.0.10", 80, "TCP", TCP_PORT, ""),
            slice(
                "web",
                "IPv4",
                "TCP",
                TCP_PORT,
                &[
                    (ip(0), false, true, true, "node-a"),
                    (ip(1), false, false, true, "node-a"),
                    (ip(2), false, false, false, "node-a"),
                ],
            ),
            service("loc", "10.96.0.11", 80, "TCP", TCP_PORT, local),
            slice(
                "loc",
                "IPv4",
                "TCP",
                TCP_PORT,
                &[
                    (ip(0), true, true, false, "node-a"),
                    (ip(1), true, true, false, "node-b"),
                ],
            ),
            service("far", "10.96.0.12", 80, "TCP", TCP_PORT, local),
            slice(
                "far",
                "IPv4",
                "TCP",
                TCP_PORT,
                &[(ip(1), true, true, false, "node-b")],
            ),
        ]
        .concat(),
    );
    lab.start(&[]);
    let (seen, _) = lab.spread("tcp", "10.96.0.10:80", 10);
    assert_eq!(
        seen,
        names(&["b0"]),
        "only the serving terminating endpoint"
    );
    let (seen, _) = lab.spread("tcp", "10.96.0.11:80", 10);
    assert_eq!(seen, names(&["b0"]), "only this node's endpoint");
    assert!(
        lab.probe("tcp", "10.96.0.12:80")
            .starts_with("error: PermissionDenied")
    );
}

#[test]
fn ipv6_cluster_ips_and_node_ports_from_the_node() {
    if !require_root("lb ipv6 and nodeport") {
        return;
    }
    let mut lab = Lab::new("v6np", 2);
    let v6: Vec<_> = lab
        .backends
        .iter()
        .map(|b| (b.ipv6.to_string(), true, true, false, "node-a"))
        .collect();
    let v4: Vec<_> = lab.backends.iter().map(ready).collect();
    let nodeport = "  type: NodePort\n";
    lab.write(
        "svc.yaml",
        &[
            service("six", "fd00:96::10", 80, "TCP", TCP_PORT, ""),
            slice("six", "IPv6", "TCP", TCP_PORT, &v6),
            service("np", "10.96.0.20", 80, "TCP", TCP_PORT, nodeport)
                .replace("targetPort: 8080}", "targetPort: 8080, nodePort: 30080}"),
            slice("np", "IPv4", "TCP", TCP_PORT, &v4),
        ]
        .concat(),
    );
    // The sandbox's own address towards backend 0 stands for the node IP.
    lab.start(&["--node-ip", "10.250.0.1"]);
    let (seen, peers) = lab.spread("tcp", "[fd00:96::10]:80", 20);
    assert_eq!(seen, names(&["b0", "b1"]));
    assert_eq!(peers, names(&["[fd00:96::10]:80"]));
    for addr in ["127.0.0.1:30080", "10.250.0.1:30080"] {
        let (seen, peers) = lab.spread("tcp", addr, 20);
        assert_eq!(seen, names(&["b0", "b1"]), "{addr}");
        assert_eq!(peers, names(&[addr]));
    }
}

#[test]
fn sigkill_keeps_traffic_flowing_and_a_restart_adopts_without_flushing() {
    if !require_root("lb restart") {
        return;
    }
    let mut lab = Lab::new("restart", 2);
    let eps: Vec<_> = lab.backends.iter().map(ready).collect();
    lab.write(
        "svc.yaml",
        &[
            service("web", "10.96.0.10", 80, "TCP", TCP_PORT, ""),
            slice("web", "IPv4", "TCP", TCP_PORT, &eps),
        ]
        .concat(),
    );
    lab.start(&[]);
    std::thread::scope(|scope| {
        let traffic = scope.spawn(|| lab.probe_args(&["tcp-loop", "10.96.0.10:80", "3"]));
        std::thread::sleep(Duration::from_millis(500));
        lab.ferry().signal(Signal::SIGKILL).unwrap();
        let line = traffic.join().unwrap();
        let counts: Vec<u64> = line
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            counts[0] > 10 && counts[1] == 0,
            "ok/failed during SIGKILL: {line}"
        );
    });
    // A new daemon over the same pins: nothing to write, nothing flushed.
    lab.start(&[]);
    assert_eq!(
        lab.ferry().metric("ferry_lb_map_operations_total").unwrap(),
        0.0,
        "{}",
        lab.ferry().log()
    );
    assert_eq!(lab.ferry().metric("ferry_lb_frontends").unwrap(), 1.0);
    let (seen, _) = lab.spread("tcp", "10.96.0.10:80", 20);
    assert_eq!(seen, names(&["b0", "b1"]));
    lab.write(
        "svc.yaml",
        &[
            service("web", "10.96.0.10", 80, "TCP", TCP_PORT, ""),
            slice("web", "IPv4", "TCP", TCP_PORT, &eps[..1]),
        ]
        .concat(),
    );
    lab.wait_for_only("tcp", "10.96.0.10:80", "b0");
}

#[test]
fn lb_cleanup_leaves_nothing_behind() {
    if !require_root("lb cleanup") {
        return;
    }
    let mut lab = Lab::new("cleanup", 1);
    let eps: Vec<_> = lab.backends.iter().map(ready).collect();
    lab.write(
        "svc.yaml",
        &[
            service("web", "10.96.0.10", 80, "TCP", TCP_PORT, ""),
            slice("web", "IPv4", "TCP", TCP_PORT, &eps),
        ]
        .concat(),
    );
    lab.start(&["--lb-cleanup"]);
    assert!(lab.probe("tcp", "10.96.0.10:80").starts_with("b0 "));
    assert!(lab.pins().join("maps").is_dir());
    let mut ferry = lab.lab.take_ferry();
    ferry.signal(Signal::SIGTERM).unwrap();
    assert!(
        ferry.wait_exit(Duration::from_secs(10)).unwrap().success(),
        "{}",
        ferry.log()
    );
    assert!(
        !lab.pins().exists(),
        "pins left in {}",
        lab.pins().display()
    );
    assert!(
        lab.probe("tcp", "10.96.0.10:80")
            .starts_with("error: NetworkUnreachable"),
        "programs still attached"
    );
    let attached = Command::new("bpftool")
        .args(["cgroup", "show"])
        .arg(lab.sandbox().cgroup_dir())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&attached.stdout).trim().is_empty(),
        "{attached:?}"
    );
}

#[test]
fn health_check_node_port_reports_local_endpoints() {
    if !require_root("lb health check") {
        return;
    }
    let mut lab = Lab::new("health", 2);
    let (a, b) = (
        lab.backends[0].ipv4.to_string(),
        lab.backends[1].ipv4.to_string(),
    );
    let spec =
        "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32100\n";
    let manifest = |eps: &[(String, bool, bool, bool, &str)]| {
        [
            service("web", "10.96.0.10", 80, "TCP", TCP_PORT, spec),
            slice("web", "IPv4", "TCP", TCP_PORT, eps),
        ]
        .concat()
    };
    lab.write(
        "svc.yaml",
        &manifest(&[
            (a.clone(), true, true, false, "node-a"),
            (b.clone(), true, true, false, "node-b"),
        ]),
    );
    lab.start(&[]);
    let get = |lab: &Lab| {
        ferry_tests::netns::in_netns(lab.sandbox().netns(), || {
            ferry_tests::http_get("http://127.0.0.1:32100/")
        })
        .unwrap()
    };
    let started = Instant::now();
    let (status, body) = loop {
        if let Ok(answer) = get(&lab) {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "health check port never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["localEndpoints"], 1);
    assert_eq!(json["service"]["name"], "web");
    lab.write("svc.yaml", &manifest(&[(b, true, true, false, "node-b")]));
    let started = Instant::now();
    while get(&lab).map(|(s, _)| s).unwrap_or(0) != 503 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never 503 without local endpoints"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_map_is_a_clear_error_and_keeps_what_is_programmed() {
    if !require_root("lb full map") {
        return;
    }
    let mut lab = Lab::new("full", 1);
    let eps: Vec<_> = lab.backends.iter().map(ready).collect();
    let two = [
        service("a", "10.96.0.10", 80, "TCP", TCP_PORT, ""),
        slice("a", "IPv4", "TCP", TCP_PORT, &eps),
        service("b", "10.96.0.11", 80, "TCP", TCP_PORT, ""),
        slice("b", "IPv4", "TCP", TCP_PORT, &eps),
    ]
    .concat();
    lab.write("svc.yaml", &two);
    lab.start(&["--lb-max-frontends", "2"]);
    lab.write(
        "more.yaml",
        &service("c", "10.96.0.12", 80, "TCP", TCP_PORT, ""),
    );
    let started = Instant::now();
    while lab.ferry().metric("ferry_lb_sync_errors_total").unwrap() < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}",
            lab.ferry().log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = lab.ferry().log();
    assert!(
        log.contains("service=demo/c") && log.contains("10.96.0.12:80"),
        "the error names the Service and the frontend:\n{log}"
    );
    assert_eq!(lab.ferry().metric("ferry_lb_frontends").unwrap(), 2.0);
    for vip in ["10.96.0.10:80", "10.96.0.11:80"] {
        assert!(
            lab.probe("tcp", vip).starts_with("b0 "),
            "{vip} still served"
        );
    }
}
