//! The tc NodePort datapath end to end, in namespaces of the test's own (see
//! `ferry_tests::topology`): a client on the "lan" dials NodePorts and externalIPs of the node,
//! whose external interface `n0` carries the programs, and reaches a local pod or a remote
//! node. Checksum offload is off everywhere, so a wrong checksum fix-up shows up as a dropped
//! packet (a timeout) and as `InCsumErrors`. Needs root (see `ferry_tests::privileged`).
//!
//! Flow lifetimes and SNAT port reuse are in [`conntrack`], Maglev picks in [`maglev`].

use std::{
    io::{self, Read as _},
    net::{SocketAddr, TcpStream, UdpSocket},
    thread,
    time::Duration,
};

use aya::Ebpf;
use ferry_lb::{
    AyaMaps, Counters, MapWriter as _,
    common::{
        BACKEND_FLAG_REMOTE, Backend, BackendSlotKey, FRONTEND_FLAG_AFFINITY,
        FRONTEND_FLAG_PRESERVE_CLIENT, Frontend, FrontendKey, FrontendValue, IPPROTO_TCP,
        IPPROTO_UDP, NodeAddrs, stats,
    },
};
use ferry_tests::{
    netns::Servers,
    privileged::{chain, require_bpf},
    topology::{CLIENT_V4, CLIENT_V6, NODE_V4, NODE_V6, Ns, Offload, Topology},
};

#[path = "nodeport/conntrack.rs"]
mod conntrack;
#[path = "nodeport/maglev.rs"]
mod maglev;

/// How long a client waits for an answer that should come.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A TCP NodePort (and a Cluster-policy one) to a pod on the node: not masqueraded, so the pod
/// sees the client's own address, and the client sees the NodePort as its peer. UDP as well.
#[test]
fn nodeport_to_a_local_backend_keeps_the_client_address() {
    let Some(mut lab) = Lab::start("local") else {
        return;
    };
    lab.serve(Ns::Pod, "10.201.2.2:8080", "pod");
    let pod = addr("10.201.2.2:8080");
    lab.frontend(
        1,
        "10.201.1.1:30080",
        IPPROTO_TCP,
        FRONTEND_FLAG_PRESERVE_CLIENT,
        &[(pod, 0)],
    );
    lab.frontend(
        2,
        "10.201.1.1:30080",
        IPPROTO_UDP,
        FRONTEND_FLAG_PRESERVE_CLIENT,
        &[(pod, 0)],
    );
    lab.frontend(3, "10.201.1.1:30081", IPPROTO_TCP, 0, &[(pod, 0)]);

    for _ in 0..3 {
        assert_eq!(
            lab.tcp("10.201.1.1:30080"),
            ok("10.201.1.1:30080", "pod", CLIENT_V4)
        );
    }
    assert_eq!(
        lab.udp("10.201.1.1:30080"),
        ok("10.201.1.1:30080", "pod", CLIENT_V4)
    );
    assert_eq!(
        lab.tcp("10.201.1.1:30081"),
        ok("10.201.1.1:30081", "pod", CLIENT_V4),
        "Cluster policy with a local backend is not masqueraded either"
    );
    let counters = lab.counters();
    assert_eq!(
        counters.get(stats::CT_CREATED),
        5,
        "one flow per connection"
    );
    assert!(counters.get(stats::NODEPORT_NAT_PACKETS) >= 10);
    lab.assert_checksums_clean();
}

/// Cluster policy to an endpoint on another node: masqueraded to the node address, the
/// remote backend sees the node, the client still sees the NodePort as its peer.
#[test]
fn nodeport_to_a_remote_backend_is_masqueraded() {
    let Some(mut lab) = Lab::start("remote") else {
        return;
    };
    lab.serve(Ns::Remote, "10.201.1.3:8080", "remote");
    let remote = addr("10.201.1.3:8080");
    lab.frontend(
        1,
        "10.201.1.1:30080",
        IPPROTO_TCP,
        0,
        &[(remote, BACKEND_FLAG_REMOTE)],
    );
    lab.frontend(
        2,
        "10.201.1.1:30080",
        IPPROTO_UDP,
        0,
        &[(remote, BACKEND_FLAG_REMOTE)],
    );

    for _ in 0..3 {
        assert_eq!(
            lab.tcp("10.201.1.1:30080"),
            ok("10.201.1.1:30080", "remote", NODE_V4)
        );
    }
    assert_eq!(
        lab.udp("10.201.1.1:30080"),
        ok("10.201.1.1:30080", "remote", NODE_V4)
    );
    let counters = lab.counters();
    assert_eq!(counters.get(stats::CT_CREATED), 4);
    assert_eq!(counters.get(stats::SNAT_FAILED), 0);
    assert_eq!(counters.get(stats::REDIRECT_FAILED), 0);
    lab.assert_checksums_clean();
}

/// An externalIP (not an address of the node) routed to the node: to a local and to a remote
/// backend.
#[test]
fn external_ip_frontends_are_served() {
    let Some(mut lab) = Lab::start("extip") else {
        return;
    };
    lab.serve(Ns::Pod, "10.201.2.2:8080", "pod");
    lab.serve(Ns::Remote, "10.201.1.3:8080", "remote");
    lab.frontend(
        1,
        "10.201.9.9:80",
        IPPROTO_TCP,
        0,
        &[(addr("10.201.2.2:8080"), 0)],
    );
    lab.frontend(
        2,
        "10.201.9.10:80",
        IPPROTO_UDP,
        0,
        &[(addr("10.201.1.3:8080"), BACKEND_FLAG_REMOTE)],
    );

    assert_eq!(
        lab.tcp("10.201.9.9:80"),
        ok("10.201.9.9:80", "pod", CLIENT_V4)
    );
    assert_eq!(
        lab.udp("10.201.9.10:80"),
        ok("10.201.9.10:80", "remote", NODE_V4)
    );
    lab.assert_checksums_clean();
}

/// A frontend without endpoints drops: the client hears nothing (no reset), where a port
/// without a frontend is refused by the node's stack.
#[test]
fn a_frontend_without_backends_drops() {
    let Some(mut lab) = Lab::start("empty") else {
        return;
    };
    lab.frontend(1, "10.201.1.1:30099", IPPROTO_TCP, 0, &[]);

    let dropped = lab.tcp_with_timeout("10.201.1.1:30099", Duration::from_secs(1));
    assert_eq!(dropped, "err TimedOut", "dropped SYNs time out");
    assert_eq!(
        lab.tcp_with_timeout("10.201.1.1:30098", Duration::from_secs(1)),
        "err ConnectionRefused",
        "a port that is no frontend is left to the stack"
    );
    assert!(lab.counters().get(stats::NODEPORT_NO_BACKEND) >= 1);
}

/// ClientIP affinity: one client keeps its backend out of two; after the timeout (1 s) the
/// pick is random again, so the other backend shows up within a bounded number of tries.
#[test]
fn client_ip_affinity_sticks_until_it_times_out() {
    let Some(mut lab) = Lab::start("affinity") else {
        return;
    };
    lab.serve(Ns::Pod, "10.201.2.2:8081", "a");
    lab.serve(Ns::Pod, "10.201.2.2:8082", "b");
    let backends = [(addr("10.201.2.2:8081"), 0), (addr("10.201.2.2:8082"), 0)];
    lab.frontend_with(
        1,
        "10.201.1.1:30080",
        IPPROTO_TCP,
        FRONTEND_FLAG_AFFINITY,
        1,
        &backends,
    );

    let name = |reply: &str| {
        reply
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned()
    };
    let first = name(&lab.tcp("10.201.1.1:30080"));
    assert!(first == "data=a" || first == "data=b", "got {first:?}");
    for _ in 0..8 {
        assert_eq!(
            name(&lab.tcp("10.201.1.1:30080")),
            first,
            "sticky within the timeout"
        );
    }
    assert!(lab.counters().get(stats::AFFINITY_HITS) >= 8);

    // Each try waits out the timeout, so each pick is a fair coin: 2^-15 odds of a false alarm.
    let switched = (0..16).any(|_| {
        thread::sleep(Duration::from_millis(1100));
        name(&lab.tcp("10.201.1.1:30080")) != first
    });
    assert!(switched, "after the timeout the pick is random again");
}

/// IPv6 NodePorts: to a pod (client address kept) and to a remote node (masqueraded).
#[test]
fn ipv6_nodeports_are_served() {
    let Some(mut lab) = Lab::start("v6") else {
        return;
    };
    lab.serve(Ns::Pod, "[fd00:201:2::2]:8080", "pod");
    lab.serve(Ns::Remote, "[fd00:201:1::3]:8080", "remote");
    let pod = addr("[fd00:201:2::2]:8080");
    let remote = addr("[fd00:201:1::3]:8080");
    lab.frontend(
        1,
        "[fd00:201:1::1]:30080",
        IPPROTO_TCP,
        FRONTEND_FLAG_PRESERVE_CLIENT,
        &[(pod, 0)],
    );
    lab.frontend(2, "[fd00:201:1::1]:30080", IPPROTO_UDP, 0, &[(pod, 0)]);
    lab.frontend(
        3,
        "[fd00:201:1::1]:30081",
        IPPROTO_TCP,
        0,
        &[(remote, BACKEND_FLAG_REMOTE)],
    );
    lab.frontend(
        4,
        "[fd00:201:1::1]:30081",
        IPPROTO_UDP,
        0,
        &[(remote, BACKEND_FLAG_REMOTE)],
    );

    let v6 = |port: u16| format!("[{NODE_V6}]:{port}");
    assert_eq!(lab.tcp(&v6(30080)), ok(&v6(30080), "pod", CLIENT_V6));
    assert_eq!(lab.udp(&v6(30080)), ok(&v6(30080), "pod", CLIENT_V6));
    assert_eq!(lab.tcp(&v6(30081)), ok(&v6(30081), "remote", NODE_V6));
    assert_eq!(lab.udp(&v6(30081)), ok(&v6(30081), "remote", NODE_V6));
    lab.assert_checksums_clean();
}

/// Packets that reach the programs with a partial (offloaded) checksum come out right once
/// the node's stack completes them: local and remote backends, TCP and UDP, both families.
#[test]
fn offloaded_checksums_are_fixed_up_too() {
    let Some(mut lab) = Lab::start_with("offload", Offload::Partial) else {
        return;
    };
    for (ns, addr, name) in [
        (Ns::Pod, "10.201.2.2:8080", "pod"),
        (Ns::Remote, "10.201.1.3:8080", "remote"),
        (Ns::Pod, "[fd00:201:2::2]:8080", "pod"),
        (Ns::Remote, "[fd00:201:1::3]:8080", "remote"),
    ] {
        lab.serve(ns, addr, name);
    }
    let mut id = 0;
    for (frontend, backend, flags, sees) in [
        ("10.201.1.1:30080", "10.201.2.2:8080", 0, CLIENT_V4),
        (
            "10.201.1.1:30081",
            "10.201.1.3:8080",
            BACKEND_FLAG_REMOTE,
            NODE_V4,
        ),
        (
            "[fd00:201:1::1]:30080",
            "[fd00:201:2::2]:8080",
            0,
            CLIENT_V6,
        ),
        (
            "[fd00:201:1::1]:30081",
            "[fd00:201:1::3]:8080",
            BACKEND_FLAG_REMOTE,
            NODE_V6,
        ),
    ] {
        let name = if flags == 0 { "pod" } else { "remote" };
        for proto in [IPPROTO_TCP, IPPROTO_UDP] {
            id += 1;
            lab.frontend(id, frontend, proto, 0, &[(addr(backend), flags)]);
        }
        assert_eq!(
            lab.tcp(frontend),
            ok(frontend, name, sees),
            "tcp {frontend}"
        );
        assert_eq!(
            lab.udp(frontend),
            ok(frontend, name, sees),
            "udp {frontend}"
        );
    }
    lab.assert_checksums_clean();
}

/// A UDP flow (client address and port) stays on its backend when the service's backends
/// change, until userspace forgets the flows of the removed backend; the next datagram is then
/// a new flow to a current backend.
#[test]
fn udp_flows_stick_to_their_backend_until_forgotten() {
    let Some(mut lab) = Lab::start("udpflow") else {
        return;
    };
    lab.serve(Ns::Pod, "10.201.2.2:8080", "pod");
    lab.serve(Ns::Remote, "10.201.1.3:8080", "remote");
    let pod = addr("10.201.2.2:8080");
    lab.frontend(1, "10.201.1.1:30080", IPPROTO_UDP, 0, &[(pod, 0)]);
    let socket = lab.udp_socket();
    let frontend = "10.201.1.1:30080";
    assert_eq!(
        lab.udp_on(&socket, frontend),
        ok(frontend, "pod", CLIENT_V4)
    );

    // The pod leaves the service (slot 0 now holds the remote endpoint).
    let remote = (addr("10.201.1.3:8080"), BACKEND_FLAG_REMOTE);
    lab.frontend(1, frontend, IPPROTO_UDP, 0, &[remote]);
    assert_eq!(
        lab.udp_on(&socket, frontend),
        ok(frontend, "pod", CLIENT_V4),
        "the tracked flow keeps its backend"
    );
    let forgotten = ferry_lb::forget_flows_to(&mut lab.ebpf, pod, IPPROTO_UDP)
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(forgotten, 1);
    assert_eq!(
        lab.udp_on(&socket, frontend),
        ok(frontend, "remote", NODE_V4)
    );
    assert_eq!(
        ferry_lb::forget_flows_to(&mut lab.ebpf, pod, IPPROTO_UDP).unwrap(),
        0,
        "nothing left to forget"
    );
}

/// Detaching takes the programs off the interface: the NodePort is the stack's again.
#[test]
fn detached_programs_translate_nothing() {
    let Some(mut lab) = Lab::start("detach") else {
        return;
    };
    lab.serve(Ns::Pod, "10.201.2.2:8080", "pod");
    lab.frontend(
        1,
        "10.201.1.1:30080",
        IPPROTO_TCP,
        0,
        &[(addr("10.201.2.2:8080"), 0)],
    );
    assert_eq!(
        lab.tcp("10.201.1.1:30080"),
        ok("10.201.1.1:30080", "pod", CLIENT_V4)
    );

    let links = lab.links.take().expect("attached");
    ferry_lb::detach_nodeport(&mut lab.ebpf, links).unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(
        lab.tcp_with_timeout("10.201.1.1:30080", Duration::from_secs(1)),
        "err ConnectionRefused"
    );
}

/// One test's world. Fields drop in order: servers stop, programs detach, namespaces go.
struct Lab {
    servers: Servers,
    maps: AyaMaps,
    links: Option<ferry_lb::NodePortLinks>,
    ebpf: Ebpf,
    topology: Topology,
}

impl Lab {
    /// Builds the topology, loads the object and attaches the NodePort programs to the node's
    /// `n0`, sets the node addresses. `None` (after a loud skip) without root or object.
    fn start(tag: &str) -> Option<Self> {
        Self::start_with(tag, Offload::Off)
    }

    fn start_with(tag: &str, offload: Offload) -> Option<Self> {
        let test = format!("nodeport/{tag}");
        if !require_bpf(&test, ferry_lb::EBPF_OBJECT) {
            return None;
        }
        let topology = Topology::create(tag, offload).unwrap_or_else(|e| panic!("topology: {e:#}"));
        let mut ebpf = ferry_lb::load().unwrap_or_else(|e| panic!("{}", chain(&e)));
        ferry_lb::load_all_programs(&mut ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
        let links = topology
            .in_ns(Ns::Node, || ferry_lb::attach_nodeport(&mut ebpf, "n0"))
            .unwrap_or_else(|e| panic!("{e:#}"))
            .unwrap_or_else(|e| panic!("{}", chain(&e)));
        let mut maps = AyaMaps::take(&mut ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
        let node = NodeAddrs::new(
            Some(NODE_V4.parse().unwrap()),
            Some(NODE_V6.parse().unwrap()),
        );
        maps.put_node_addrs(&node)
            .unwrap_or_else(|e| panic!("{}", chain(&e)));
        Some(Self {
            servers: Servers::default(),
            maps,
            links: Some(links),
            ebpf,
            topology,
        })
    }

    /// Starts a TCP and a UDP server on `addr` in `ns`, answering `<name> <client ip>`.
    fn serve(&mut self, ns: Ns, addr: &str, name: &str) {
        self.servers
            .serve(&self.topology.name(ns), self::addr(addr), name)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Publishes an `EXT_FRONTENDS` entry over `backends` (address, `BACKEND_FLAG_*`).
    fn frontend(
        &mut self,
        id: u32,
        frontend: &str,
        proto: u8,
        flags: u32,
        backends: &[(SocketAddr, u8)],
    ) {
        self.frontend_with(id, frontend, proto, flags, 0, backends);
    }

    fn frontend_with(
        &mut self,
        id: u32,
        frontend: &str,
        proto: u8,
        flags: u32,
        affinity_timeout_secs: u32,
        backends: &[(SocketAddr, u8)],
    ) {
        for (slot, (backend, backend_flags)) in (0..).zip(backends) {
            let key = BackendSlotKey {
                service_id: id,
                revision: 1,
                slot,
            };
            self.maps
                .put_backend(&key, &Backend::new(*backend).with_flags(*backend_flags))
                .unwrap_or_else(|e| panic!("{}", chain(&e)));
        }
        let value = Frontend {
            service_id: id,
            revision: 1,
            backend_count: u32::try_from(backends.len()).unwrap(),
            flags,
            affinity_timeout_secs,
        };
        let inline = backends
            .iter()
            .map(|(backend, flags)| Backend::new(*backend).with_flags(*flags));
        self.maps
            .put_ext_frontend(
                &FrontendKey::new(addr(frontend), proto),
                &FrontendValue::new(value, inline),
            )
            .unwrap_or_else(|e| panic!("{}", chain(&e)));
    }

    /// A TCP exchange from the client: `ok peer=<peer> data=<server's line>` or `err <kind>`.
    fn tcp(&self, target: &str) -> String {
        self.tcp_with_timeout(target, TIMEOUT)
    }

    fn tcp_with_timeout(&self, target: &str, timeout: Duration) -> String {
        let target = addr(target);
        self.client(move || {
            let mut stream = TcpStream::connect_timeout(&target, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            let peer = stream.peer_addr()?;
            let mut data = String::new();
            stream.read_to_string(&mut data)?;
            Ok((peer, data))
        })
    }

    /// A UDP exchange from the client with a fresh unconnected socket; the peer is the reply's
    /// source.
    fn udp(&self, target: &str) -> String {
        let target = addr(target);
        self.client(move || {
            let any: SocketAddr = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            }
            .parse()
            .unwrap();
            udp_exchange(&UdpSocket::bind(any)?, target)
        })
    }

    /// An unconnected IPv4 UDP socket in the client namespace, for several exchanges as one
    /// flow.
    fn udp_socket(&self) -> UdpSocket {
        self.topology
            .in_ns(Ns::Client, || UdpSocket::bind("0.0.0.0:0"))
            .unwrap_or_else(|e| panic!("{e:#}"))
            .expect("bind client udp")
    }

    /// A UDP exchange over `socket` (see [`Self::udp_socket`]).
    fn udp_on(&self, socket: &UdpSocket, target: &str) -> String {
        let target = addr(target);
        self.client(|| udp_exchange(socket, target))
    }

    fn client(&self, exchange: impl FnOnce() -> io::Result<(SocketAddr, String)> + Send) -> String {
        match self
            .topology
            .in_ns(Ns::Client, exchange)
            .unwrap_or_else(|e| panic!("{e:#}"))
        {
            Ok((peer, data)) => format!("ok peer={peer} data={data}"),
            // TCP connect timeouts surface as TimedOut, read timeouts as WouldBlock.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => "err TimedOut".to_owned(),
            Err(e) => format!("err {:?}", e.kind()),
        }
    }

    fn counters(&self) -> Counters {
        Counters::read(&self.ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)))
    }

    /// No stack in the test network rejected a packet for its checksum.
    fn assert_checksums_clean(&self) {
        for ns in [Ns::Client, Ns::Node, Ns::Remote, Ns::Pod] {
            let errors = self
                .topology
                .checksum_errors(ns)
                .unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(errors, 0, "checksum errors in {ns:?}");
        }
    }
}

fn udp_exchange(socket: &UdpSocket, target: SocketAddr) -> io::Result<(SocketAddr, String)> {
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.send_to(b"hello", target)?;
    let mut buf = [0; 128];
    let (len, from) = socket.recv_from(&mut buf)?;
    Ok((from, String::from_utf8_lossy(&buf[..len]).into_owned()))
}

/// What a client should report: its peer, and the server's `<name> <client ip>` line.
fn ok(peer: &str, server: &str, seen_client: &str) -> String {
    format!("ok peer={} data={server} {seen_client}", addr(peer))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}
