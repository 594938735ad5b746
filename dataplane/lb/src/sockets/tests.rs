//! Against the kernel, in a network namespace of the test's own (`ip netns add`). Needs root:
//! skipped without it, failing under `CI=true`.

use super::*;
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;

const P1: u16 = 5301;
const P2: u16 = 5302;

fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: needs root, and CI=true forbids skipping"
    );
    eprintln!("SKIPPED {test}: needs root");
    false
}

/// A named network namespace with `lo` up, deleted on drop.
struct TestNetns(String);

impl TestNetns {
    fn create(tag: &str) -> Self {
        let name = format!("ferry-lb-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Self(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    fn netns(&self) -> Netns {
        Netns::at(&Path::new("/run/netns").join(&self.0)).expect("netns file")
    }

    /// Runs `f` on a thread inside the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = std::fs::File::open(Path::new("/run/netns").join(&self.0)).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip");
    assert!(status.success(), "ip {args:?}: {status}");
}

fn connected(bind: &str, to: &str) -> UdpSocket {
    let socket = UdpSocket::bind(bind).unwrap();
    socket.connect(to).unwrap();
    socket
}

/// `ECONNABORTED` pending and no peer any more: destroyed.
fn destroyed(socket: &UdpSocket) -> bool {
    let aborted = socket
        .take_error()
        .unwrap()
        .is_some_and(|e| e.raw_os_error() == Some(Errno::ECONNABORTED as i32));
    aborted && socket.peer_addr().is_err()
}

fn set(addrs: &[&str]) -> BTreeSet<SocketAddr> {
    addrs.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn connected_udp_sockets_to_the_backends_are_destroyed_and_no_others() {
    if !require_root("sockets: destroy") {
        return;
    }
    let lab = TestNetns::create("sockets");
    let ns = [lab.netns()];
    let v4_p1 = format!("127.0.0.1:{P1}");
    let [a, b, c, d, e] = lab.run(|| {
        [
            connected("127.0.0.1:0", &v4_p1),
            connected("127.0.0.1:0", &format!("127.0.0.1:{P2}")),
            // A dual-stack IPv6 socket reaching the IPv4 backend through a v4-mapped address.
            connected("[::]:0", &format!("[::ffff:127.0.0.1]:{P1}")),
            connected("[::1]:0", &format!("[::1]:{P1}")),
            // Unconnected, on the backend's port: not a client of it.
            UdpSocket::bind(format!("127.0.0.2:{P1}")).unwrap(),
        ]
    });

    // The selector sees every candidate and can spare them.
    let seen = std::sync::Mutex::new(Vec::new());
    let spare_all = |s: &ConnectedUdp| {
        seen.lock().unwrap().push((s.family, s.remote));
        false
    };
    assert_eq!(destroy_in_namespaces(&ns, &set(&[&v4_p1]), &spare_all), 0);
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    let v4_p1: SocketAddr = v4_p1.parse().unwrap();
    assert_eq!(
        seen,
        vec![
            (AF_INET, v4_p1),
            (
                AF_INET6,
                format!("[::ffff:127.0.0.1]:{P1}").parse().unwrap()
            ),
        ]
    );
    assert!(![&a, &b, &c, &d].into_iter().any(destroyed));

    let all = |_: &ConnectedUdp| true;
    let backends = BTreeSet::from([v4_p1]);
    assert_eq!(destroy_in_namespaces(&ns, &backends, &all), 2);
    assert!(destroyed(&a) && destroyed(&c));
    assert!(!destroyed(&b) && !destroyed(&d));
    // The owner's next send fails, and the socket can connect again.
    assert!(a.send(b"x").is_err());
    a.connect(format!("127.0.0.1:{P2}")).unwrap();

    // Several backends, both families, different ports: one bytecode OR chain per family.
    let backends = set(&[&format!("127.0.0.1:{P2}"), &format!("[::1]:{P1}")]);
    assert_eq!(
        destroy_in_namespaces(&ns, &backends, &all),
        3,
        "b, d, and a again"
    );
    assert!(destroyed(&b) && destroyed(&d));
    assert_eq!(destroy_in_namespaces(&ns, &backends, &all), 0);
    assert!(e.take_error().unwrap().is_none());
    assert_eq!(e.local_addr().unwrap().port(), P1);
}

#[test]
fn every_namespace_of_the_host_is_visited() {
    if !require_root("sockets: every namespace") {
        return;
    }
    let labs = [TestNetns::create("ns0"), TestNetns::create("ns1")];
    let target = format!("127.0.0.1:{P1}");
    let sockets: Vec<UdpSocket> = labs
        .iter()
        .map(|lab| lab.run(|| connected("127.0.0.1:0", &target)))
        .collect();
    // Only these two sockets: other processes of the host may have their own.
    let ours: BTreeSet<u64> = labs.iter().map(|lab| lab.netns().inode).collect();
    let found = std::sync::Mutex::new(BTreeSet::new());
    let in_ours = |s: &ConnectedUdp| {
        let inode = std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap_or(0);
        found.lock().unwrap().insert(inode);
        ours.contains(&inode) && s.remote.port() == P1
    };
    let started = Instant::now();
    let namespaces = NetnsSources::default().list().len();
    let destroyed_count =
        destroy_connected_udp(&NetnsSources::default(), &set(&[&target]), &in_ours);
    eprintln!(
        "one pass over {namespaces} namespaces (listing included): {:?}",
        started.elapsed()
    );
    assert_eq!(destroyed_count, 2);
    assert!(sockets.iter().all(destroyed));
    assert!(ours.is_subset(&found.into_inner().unwrap()));
}

#[test]
fn the_kernel_filters_the_dump_by_remote() {
    if !require_root("sockets: kernel filter") {
        return;
    }
    let lab = TestNetns::create("filter");
    let remotes = lab.run(|| {
        let sockets = [
            connected("127.0.0.1:0", &format!("127.0.0.1:{P1}")),
            connected("127.0.0.1:0", &format!("127.0.0.1:{P2}")),
            connected("[::]:0", &format!("[::ffff:127.0.0.1]:{P1}")),
            connected("[::1]:0", &format!("[::1]:{P1}")),
        ];
        let mut diag = DiagSocket::open().unwrap();
        let mut dump = |family, dport, remotes: &[&str]| {
            let remotes: Vec<SocketAddr> = remotes.iter().map(|r| r.parse().unwrap()).collect();
            let bytecode = wire::remote_filter(&remotes);
            let mut found: Vec<String> = diag
                .connected_udp(family, dport, bytecode.as_deref())
                .unwrap()
                .iter()
                .map(|s| s.remote().unwrap().to_string())
                .collect();
            found.sort();
            found
        };
        let result = [
            dump(AF_INET, None, &[]),
            dump(AF_INET, None, &["127.0.0.1:5302"]),
            dump(AF_INET, Some(P1), &[]),
            dump(AF_INET6, None, &[]),
            dump(AF_INET6, None, &["127.0.0.1:5301"]),
            dump(AF_INET6, None, &["[::1]:5301", "127.0.0.9:5301"]),
            dump(AF_INET6, None, &["127.0.0.1:5302"]),
        ];
        drop(sockets);
        result
    });
    assert_eq!(remotes[0], ["127.0.0.1:5301", "127.0.0.1:5302"]);
    assert_eq!(remotes[1], ["127.0.0.1:5302"]);
    assert_eq!(remotes[2], ["127.0.0.1:5301"]);
    assert_eq!(remotes[3], ["[::1]:5301", "[::ffff:127.0.0.1]:5301"]);
    assert_eq!(remotes[4], ["[::ffff:127.0.0.1]:5301"]);
    assert_eq!(remotes[5], ["[::1]:5301"]);
    assert!(remotes[6].is_empty());
}
