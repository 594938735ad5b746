//! Connected UDP sockets when their backend leaves, end to end: the real `ferry run` in a
//! sandbox namespace, backends in namespaces of their own, and long-lived `udpwatch` clients in
//! a "pod" namespace of their own (not ferry's), moved into the socket-LB cgroup. Needs root.
//!
//! kube-proxy flushes the conntrack entries of UDP flows to a removed endpoint; with socket LB
//! the connected socket itself points at the backend, so ferry destroys it (`SOCK_DESTROY`) and
//! the client's reconnect picks a current backend. TCP connections to a terminating endpoint
//! are left to finish.

use ferry_tests::lab::LbLab;
use ferry_tests::netns::{Backend, UDP_PORT, in_netns, run};
use ferry_tests::{Ferry, require_root};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const UDP_SERVICE: &str = "10.96.0.53:53";
const UDP_SERVICE_MAPPED: &str = "[::ffff:10.96.0.53]:53";
const TCP_SERVICE: &str = "10.96.0.90:90";
const ECHO_PORT: u16 = 9000;
/// How long a watcher runs at most; the test stops it long before.
const WATCH_SECS: &str = "60";
/// Backend indexes (addresses 10.250.<i>.2) unlike those of the other suites.
const FIRST_INDEX: u8 = 160;

/// One test's world. Fields drop in order: watchers' servers, the LB frame (daemon, pins,
/// cgroup sandbox, manifests), the hosts.
struct Lab {
    _echo: Vec<EchoServer>,
    lab: LbLab,
    backends: Vec<Backend>,
    pod: Backend,
}

impl Lab {
    fn new(tag: &str) -> Self {
        let lab = LbLab::new(tag).expect("lab");
        let sandbox = lab.sandbox();
        let backends: Vec<Backend> = (0..2)
            .map(|i| {
                sandbox
                    .add_backend(FIRST_INDEX + i, &format!("b{i}"))
                    .expect("backend")
            })
            .collect();
        // The clients' namespace: a host like the backends, routed through the sandbox.
        let pod = sandbox.add_backend(FIRST_INDEX + 2, "pod").expect("pod");
        run(
            "ip",
            &[
                "netns",
                "exec",
                sandbox.netns(),
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        )
        .expect("forwarding");
        let echo = backends
            .iter()
            .map(|b| EchoServer::start(b).expect("echo server"))
            .collect();
        Self {
            _echo: echo,
            lab,
            backends,
            pod,
        }
    }

    fn write(&self, yaml: &str) {
        self.lab.write("svc.yaml", yaml);
    }

    fn start(&mut self) {
        self.lab.start(None, &[]);
    }

    fn ferry(&self) -> &Ferry {
        self.lab.ferry()
    }

    fn log(&self) -> String {
        self.lab.log()
    }

    /// `udpwatch MODE ADDR` in the pod namespace and the LB cgroup.
    fn watch(&self, mode: &str, addr: &str) -> Watcher {
        let spawned = Instant::now();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.pod.netns])
            .arg(env!("CARGO_BIN_EXE_udpwatch"))
            .arg("--cgroup")
            .arg(self.lab.sandbox().cgroup_dir())
            .args([mode, addr, WATCH_SECS])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("udpwatch");
        Watcher::new(child, spawned, format!("{mode} {addr}"))
    }

    /// A UDP watcher of `addr` whose first reply came from `name`: watchers are started until
    /// one is (each connect picks a backend at random).
    fn watch_udp_on(&self, addr: &str, name: &str) -> Watcher {
        for _ in 0..30 {
            let mut watcher = self.watch("udp", addr);
            if watcher.first_reply(&self.log()) == name {
                return watcher;
            }
        }
        panic!("no udp watcher of {addr} reached {name} in 30 tries");
    }

    fn names(&self) -> Vec<String> {
        self.backends.iter().map(|b| b.name.clone()).collect()
    }

    fn backend(&self, name: &str) -> &Backend {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .expect("a backend")
    }
}

/// The manifest: a UDP Service over `udp` endpoints (all ready) and a TCP Service over `tcp`
/// endpoints as `(backend, terminating)`.
fn manifest(udp: &[&Backend], tcp: &[(&Backend, bool)]) -> String {
    let mut text = String::new();
    text.push_str(&service("dns", "10.96.0.53", 53, "UDP", UDP_PORT));
    let udp: Vec<_> = udp.iter().map(|b| (b.ipv4, false)).collect();
    text.push_str(&slice("dns", "UDP", UDP_PORT, &udp));
    text.push_str(&service("echo", "10.96.0.90", 90, "TCP", ECHO_PORT));
    let tcp: Vec<_> = tcp.iter().map(|(b, t)| (b.ipv4, *t)).collect();
    text.push_str(&slice("echo", "TCP", ECHO_PORT, &tcp));
    text
}

fn service(name: &str, cluster_ip: &str, port: u16, protocol: &str, target: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: demo}}\n\
         spec:\n  clusterIP: {cluster_ip}\n  ports: [{{name: p, port: {port}, protocol: {protocol}, targetPort: {target}}}]\n---\n"
    )
}

/// An EndpointSlice; a terminating endpoint is `ready: false, serving: true`.
fn slice(service: &str, protocol: &str, port: u16, endpoints: &[(IpAddr, bool)]) -> String {
    let mut text = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {service}-x, namespace: demo, labels: {{kubernetes.io/service-name: {service}}}}}\n\
         addressType: IPv4\nports: [{{name: p, port: {port}, protocol: {protocol}}}]\nendpoints:\n"
    );
    for (address, terminating) in endpoints {
        text.push_str(&format!(
            "- addresses: [\"{address}\"]\n  nodeName: node-a\n  conditions: {{ready: {}, serving: true, terminating: {terminating}}}\n",
            !terminating
        ));
    }
    text.push_str("---\n");
    text
}

/// A running `udpwatch`, killed on drop; its events, each with the instant it was read.
struct Watcher {
    child: Child,
    spawned: Instant,
    what: String,
    events: Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Watcher {
    fn new(mut child: Child, spawned: Instant, what: String) -> Self {
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            spawned,
            what,
            events,
            seen: Vec::new(),
        }
    }

    /// The first event whose kind is `kind` (the first word) and that came at or after
    /// `since`, waiting up to `timeout` for it.
    fn wait(&mut self, kind: &str, since: Instant, timeout: Duration) -> Option<(Instant, String)> {
        let matches = |(at, line): &(Instant, String)| {
            *at >= since && line.split_whitespace().next() == Some(kind)
        };
        if let Some(found) = self.drain().iter().find(|e| matches(e)) {
            return Some(found.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if matches(&event) {
                        return Some(event);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The events so far (without waiting).
    fn drain(&mut self) -> &[(Instant, String)] {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        &self.seen
    }

    /// The backend name of the first reply.
    fn first_reply(&mut self, log: &str) -> String {
        let Some((_, line)) = self.wait("reply", self.started(), Duration::from_secs(5)) else {
            panic!(
                "{}: no reply: {:?}; ferry log:\n{log}",
                self.what, self.seen
            );
        };
        last_word(&line)
    }

    fn started(&self) -> Instant {
        self.spawned
    }

    fn history(&mut self) -> String {
        self.drain()
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_word(line: &str) -> String {
    line.split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// A TCP server on `<backend ipv4>:9000` that greets each connection with the backend's name
/// and then echoes every line. Stopped and joined on drop.
struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start(backend: &Backend) -> anyhow::Result<Self> {
        let addr = (backend.ipv4, ECHO_PORT);
        let listener = in_netns(&backend.netns, || TcpListener::bind(addr))??;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let name = backend.name.clone();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut connections = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (flag, name) = (Arc::clone(&flag), name.clone());
                        connections.push(std::thread::spawn(move || echo(stream, &name, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for connection in connections {
                let _ = connection.join();
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

fn echo(stream: TcpStream, name: &str, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    if writeln!(writer, "{name}").is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with('\n') => {
                if writer.write_all(line.as_bytes()).is_err() {
                    return;
                }
                line.clear();
            }
            // A partial line, or the read timeout: keep what was read and go on.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_removed_udp_backend_loses_its_connected_sockets_and_tcp_to_a_terminating_one_lives() {
    if !require_root("lb udp socket destroy") {
        return;
    }
    let mut lab = Lab::new("udpd");
    let both: Vec<&Backend> = lab.backends.iter().collect();
    let tcp_ready: Vec<(&Backend, bool)> = both.iter().map(|b| (*b, false)).collect();
    lab.write(&manifest(&both, &tcp_ready));
    lab.start();

    // One TCP connection held open, echoing a line every 100 ms.
    let mut tcp = lab.watch("tcp-hold", TCP_SERVICE);
    let Some((_, line)) = tcp.wait("connected", tcp.started(), Duration::from_secs(5)) else {
        panic!("tcp-hold never connected: {}\n{}", tcp.history(), lab.log());
    };
    let tcp_backend = last_word(&line);

    // Connected UDP clients: one IPv4 and one v4-mapped IPv6 socket on the backend about to
    // leave, and one on the backend that stays.
    let mut gone = lab.watch("udp", UDP_SERVICE);
    let leaving = gone.first_reply(&lab.log());
    let staying = lab
        .names()
        .into_iter()
        .find(|n| *n != leaving)
        .expect("two backends");
    let mut mapped = lab.watch_udp_on(UDP_SERVICE_MAPPED, &leaving);
    let mut kept = lab.watch_udp_on(UDP_SERVICE, &staying);

    // The change: the UDP Service loses `leaving`, the TCP connection's backend terminates.
    let udp_left = [lab.backend(&staying)];
    let tcp_now: Vec<(&Backend, bool)> = lab
        .backends
        .iter()
        .map(|b| (b, b.name == tcp_backend))
        .collect();
    let changed = Instant::now();
    lab.write(&manifest(&udp_left, &tcp_now));

    for watcher in [&mut gone, &mut mapped] {
        let Some((at, line)) = watcher.wait("destroyed", changed, Duration::from_secs(5)) else {
            let history = watcher.history();
            panic!(
                "{}: socket never destroyed:\n{history}\nferry log:\n{}",
                watcher.what,
                lab.log()
            );
        };
        let latency = at - changed;
        eprintln!(
            "{}: destroyed {latency:?} after the change ({line})",
            watcher.what
        );
        assert!(
            latency < Duration::from_secs(1),
            "{}: destroyed only after {latency:?}",
            watcher.what
        );
        let Some((_, line)) = watcher.wait("reply", at, Duration::from_secs(3)) else {
            let history = watcher.history();
            panic!("{}: no reply after reconnecting:\n{history}", watcher.what);
        };
        assert_eq!(last_word(&line), staying, "{}", watcher.history());
    }
    let started = Instant::now();
    let metric = "ferry_lb_udp_sockets_destroyed_total";
    while lab.ferry().metric(metric).unwrap_or(0.0) < 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{metric} = {:?}",
            lab.ferry().metric(metric)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A while later: the socket on the staying backend and the TCP connection are untouched,
    // and the TCP connection still echoes.
    std::thread::sleep(Duration::from_millis(1500));
    let since = changed;
    assert!(
        kept.wait("destroyed", since, Duration::ZERO).is_none()
            && kept.wait("error", since, Duration::ZERO).is_none(),
        "the socket on {staying} was disturbed:\n{}",
        kept.history()
    );
    assert!(
        kept.wait("reply", since, Duration::ZERO).is_none(),
        "it kept its backend"
    );
    assert!(
        tcp.wait("destroyed", since, Duration::ZERO).is_none()
            && tcp.wait("error", since, Duration::ZERO).is_none(),
        "the TCP connection to the terminating {tcp_backend} was cut:\n{}",
        tcp.history()
    );
    let echoes_after = tcp.wait(
        "echoes",
        changed + Duration::from_millis(1000),
        Duration::from_secs(3),
    );
    assert!(
        echoes_after.is_some(),
        "the TCP connection stopped echoing:\n{}",
        tcp.history()
    );
    assert!(tcp.child.try_wait().unwrap().is_none(), "tcp-hold exited");
}
