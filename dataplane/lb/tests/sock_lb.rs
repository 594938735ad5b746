//! Socket-level load balancing end to end, in a namespace and cgroup of the test's own: clients
//! in the cgroup dial service addresses and reach servers on the namespace's loopback, while
//! `getpeername()` / `recvfrom()` still report the service address. Needs root (see
//! `ferry_tests::privileged`).
//!
//! The clients are this test binary again, re-run with [`CLIENT_ENV`] set (so the test body
//! acts as the client), under `ip netns exec`, moving itself into the cgroup before `exec`.

use std::{
    env,
    fs::File,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    process::Command,
    thread,
    time::Duration,
};

use ferry_lb::{
    AyaMaps, Counters, MapWriter as _,
    common::{
        Backend, BackendSlotKey, FRONTEND_FLAG_AFFINITY, FRONTEND_INLINE_BACKENDS, Frontend,
        FrontendKey, FrontendValue, IPPROTO_TCP, IPPROTO_UDP, RevNatSlot, SockRevNat, maps,
        programs, stats,
    },
};
use ferry_tests::{
    netns::Sandbox,
    privileged::{chain, require_bpf},
};

const TEST_NAME: &str = "socket_lb_translates_and_restores_addresses";
const AFFINITY_TEST_NAME: &str = "socket_lb_affinity_keeps_a_netns_on_one_backend";
/// Set in a client process: `<tcp|udp> <service address>`.
const CLIENT_ENV: &str = "FERRY_SOCK_LB_CLIENT";
/// Prefix of the client's one result line on stdout.
const RESULT: &str = "FERRY-CLIENT-RESULT ";
const GREETING: &str = "ferry";
const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn socket_lb_translates_and_restores_addresses() {
    if let Ok(job) = env::var(CLIENT_ENV) {
        println!("{RESULT}{}", client(&job));
        return;
    }
    if !require_bpf(TEST_NAME, ferry_lb::EBPF_OBJECT) {
        return;
    }
    // Declared first, dropped last: the programs detach before the cgroup is removed.
    let sandbox = Sandbox::create("lb").unwrap_or_else(|e| panic!("sandbox: {e:#}"));
    let mut ebpf = ferry_lb::load().unwrap_or_else(|e| panic!("{}", chain(&e)));
    ferry_lb::load_all_programs(&mut ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
    let cgroup = File::open(sandbox.cgroup_dir()).expect("open cgroup dir");
    // Held to the end: dropping a link detaches its program.
    let _links: Vec<_> = programs::SOCKET_LB
        .iter()
        .map(|program| {
            ferry_lb::attach_cgroup(&mut ebpf, program, &cgroup)
                .unwrap_or_else(|e| panic!("{}", chain(&e)))
        })
        .collect();

    let (tcp4, tcp6, udp4) = sandbox
        .in_netns(|| {
            (
                TcpListener::bind("127.0.0.1:0").expect("bind tcp4"),
                TcpListener::bind("[::1]:0").expect("bind tcp6"),
                UdpSocket::bind("127.0.0.1:0").expect("bind udp4"),
            )
        })
        .unwrap_or_else(|e| panic!("{e:#}"));
    let backend_tcp4 = tcp4.local_addr().unwrap();
    let backend_tcp6 = tcp6.local_addr().unwrap();
    let backend_udp4 = udp4.local_addr().unwrap();
    serve_tcp(tcp4);
    serve_tcp(tcp6);
    serve_udp(udp4);

    let mut maps = AyaMaps::take(&mut ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
    let mut service = |id: u32, frontend: &str, proto: u8, backends: &[SocketAddr]| {
        let key = FrontendKey::new(frontend.parse().unwrap(), proto);
        for (slot, backend) in (0..).zip(backends) {
            let slot_key = BackendSlotKey {
                service_id: id,
                revision: 1,
                slot,
            };
            maps.put_backend(&slot_key, &Backend::new(*backend))
                .unwrap();
        }
        let value = Frontend {
            service_id: id,
            revision: 1,
            backend_count: u32::try_from(backends.len()).unwrap(),
            flags: 0,
            affinity_timeout_secs: 0,
        };
        let inline = backends.iter().map(|b| Backend::new(*b));
        maps.put_frontend(&key, &FrontendValue::new(value, inline))
            .unwrap();
    };
    service(1, "10.96.0.10:80", IPPROTO_TCP, &[backend_tcp4]);
    service(2, "10.96.0.11:80", IPPROTO_TCP, &[]);
    service(3, "[fd00:96::10]:80", IPPROTO_TCP, &[backend_tcp6]);
    service(4, "10.96.0.10:53", IPPROTO_UDP, &[backend_udp4]);

    // A set larger than a frontend's inline slots, with the inline copies of slots 0..16 at the
    // "ferry" server and every BACKENDS slot at the "far" one (never so in the daemon: here it
    // shows which copy a pick read): picks of slots 0..16 must use the inline copies, slots
    // 16..20 the map.
    let far = sandbox
        .in_netns(|| TcpListener::bind("127.0.0.1:0").expect("bind far"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let far_addr = far.local_addr().unwrap();
    serve_tcp_as(far, "far");
    let slots = u32::try_from(FRONTEND_INLINE_BACKENDS).unwrap() + 4;
    for slot in 0..slots {
        let key = BackendSlotKey {
            service_id: 5,
            revision: 1,
            slot,
        };
        maps.put_backend(&key, &Backend::new(far_addr)).unwrap();
    }
    let large = Frontend {
        service_id: 5,
        revision: 1,
        backend_count: slots,
        flags: 0,
        affinity_timeout_secs: 0,
    };
    let inline = std::iter::repeat_n(Backend::new(backend_tcp4), FRONTEND_INLINE_BACKENDS);
    maps.put_frontend(
        &FrontendKey::new("10.96.0.12:80".parse().unwrap(), IPPROTO_TCP),
        &FrontendValue::new(large, inline),
    )
    .unwrap();

    let in_cgroup = |job: &str| run_client(&sandbox, TEST_NAME, job, true);
    let mut answers = std::collections::BTreeSet::new();
    for _ in 0..100 {
        answers.insert(in_cgroup("tcp 10.96.0.12:80"));
        if answers.len() == 2 {
            break;
        }
    }
    assert_eq!(
        answers,
        std::collections::BTreeSet::from([
            "ok peer=10.96.0.12:80 data=far".to_string(),
            "ok peer=10.96.0.12:80 data=ferry".to_string(),
        ]),
        "slots 0..16 from the frontend's inline copies, 16..20 from BACKENDS"
    );
    assert_eq!(
        in_cgroup("tcp 10.96.0.10:80"),
        "ok peer=10.96.0.10:80 data=ferry"
    );
    assert_eq!(
        in_cgroup("tcp [::ffff:10.96.0.10]:80"),
        "ok peer=[::ffff:10.96.0.10]:80 data=ferry",
        "an IPv6 socket dialling a v4-mapped service address"
    );
    assert_eq!(
        in_cgroup("tcp [fd00:96::10]:80"),
        "ok peer=[fd00:96::10]:80 data=ferry"
    );
    assert_eq!(
        in_cgroup("udp 10.96.0.10:53"),
        "ok peer=10.96.0.10:53 data=ferry"
    );
    assert_eq!(
        in_cgroup("tcp 10.96.0.11:80"),
        "err errno=1",
        "a service without backends rejects connect() with EPERM"
    );
    assert_eq!(
        run_client(&sandbox, TEST_NAME, "tcp 10.96.0.10:80", false),
        "err errno=101",
        "outside the cgroup nothing is translated: ENETUNREACH in a lo-only namespace"
    );
    // Every client has exited: their TCP sockets' records went with them.
    assert_eq!(held_slots(&mut ebpf), 0, "slots of released sockets");
    assert_eq!(spilled_records(&ebpf), 0, "records of released sockets");

    // With every slot held by some other socket, records go to SOCK_REVNAT, and still away.
    set_all_slots(&mut ebpf, OTHER_SOCKET);
    assert_eq!(
        in_cgroup("tcp 10.96.0.10:80"),
        "ok peer=10.96.0.10:80 data=ferry"
    );
    assert_eq!(
        spilled_records(&ebpf),
        0,
        "spilled records of released sockets"
    );
    assert_eq!(
        held_slots(&mut ebpf),
        ferry_lb::common::maps::REVNAT_SLOTS_ENTRIES as usize,
        "slots another socket holds are left alone"
    );
}

/// A cookie no socket of the test has (they count up from 1).
const OTHER_SOCKET: u64 = u64::MAX;

fn slots(ebpf: &mut aya::Ebpf) -> aya::maps::Array<&mut aya::maps::MapData, RevNatSlot> {
    aya::maps::Array::try_from(ebpf.map_mut(maps::REVNAT_SLOTS).expect("REVNAT_SLOTS"))
        .unwrap_or_else(|e| panic!("REVNAT_SLOTS: {e}"))
}

/// `REVNAT_SLOTS` slots with an owner.
fn held_slots(ebpf: &mut aya::Ebpf) -> usize {
    slots(ebpf)
        .iter()
        .filter(|slot| slot.as_ref().expect("read a slot").cookie != 0)
        .count()
}

fn set_all_slots(ebpf: &mut aya::Ebpf, cookie: u64) {
    let mut slots = slots(ebpf);
    let slot = RevNatSlot {
        cookie,
        ..RevNatSlot::default()
    };
    for index in 0..slots.len() {
        slots.set(index, slot, 0).expect("write a slot");
    }
}

/// `SOCK_REVNAT` records.
fn spilled_records(ebpf: &aya::Ebpf) -> usize {
    let records: aya::maps::HashMap<_, u64, SockRevNat> =
        aya::maps::HashMap::try_from(ebpf.map(maps::SOCK_REVNAT).expect("SOCK_REVNAT"))
            .unwrap_or_else(|e| panic!("SOCK_REVNAT: {e}"));
    records.keys().count()
}

/// ClientIP affinity in the socket LB: every client process of one network namespace gets the
/// same backend of two (each process is a new socket; the netns cookie is the client), while
/// the same backends without affinity are both picked.
#[test]
fn socket_lb_affinity_keeps_a_netns_on_one_backend() {
    if let Ok(job) = env::var(CLIENT_ENV) {
        println!("{RESULT}{}", client(&job));
        return;
    }
    if !require_bpf(AFFINITY_TEST_NAME, ferry_lb::EBPF_OBJECT) {
        return;
    }
    let sandbox = Sandbox::create("affinity").unwrap_or_else(|e| panic!("sandbox: {e:#}"));
    let mut ebpf = ferry_lb::load().unwrap_or_else(|e| panic!("{}", chain(&e)));
    ferry_lb::load_all_programs(&mut ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
    let cgroup = File::open(sandbox.cgroup_dir()).expect("open cgroup dir");
    // Held to the end: dropping a link detaches its program.
    let _links: Vec<_> = programs::SOCKET_LB
        .iter()
        .map(|program| {
            ferry_lb::attach_cgroup(&mut ebpf, program, &cgroup)
                .unwrap_or_else(|e| panic!("{}", chain(&e)))
        })
        .collect();
    let (a, b) = sandbox
        .in_netns(|| {
            (
                TcpListener::bind("127.0.0.1:0").expect("bind a"),
                TcpListener::bind("127.0.0.1:0").expect("bind b"),
            )
        })
        .unwrap_or_else(|e| panic!("{e:#}"));
    let backends = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    serve_tcp_as(a, "a");
    serve_tcp_as(b, "b");

    let mut maps = AyaMaps::take(&mut ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
    for (id, frontend, flags) in [
        (1, "10.96.0.20:80", FRONTEND_FLAG_AFFINITY),
        (2, "10.96.0.21:80", 0),
    ] {
        for (slot, backend) in (0..).zip(&backends) {
            let key = BackendSlotKey {
                service_id: id,
                revision: 1,
                slot,
            };
            maps.put_backend(&key, &Backend::new(*backend)).unwrap();
        }
        let value = Frontend {
            service_id: id,
            revision: 1,
            backend_count: 2,
            flags,
            affinity_timeout_secs: 0,
        };
        let key = FrontendKey::new(frontend.parse().unwrap(), IPPROTO_TCP);
        let inline = backends.iter().map(|b| Backend::new(*b));
        maps.put_frontend(&key, &FrontendValue::new(value, inline))
            .unwrap();
    }

    let dial = |job: &str| run_client(&sandbox, AFFINITY_TEST_NAME, job, true);
    let first = dial("tcp 10.96.0.20:80");
    assert!(first.starts_with("ok peer=10.96.0.20:80 data="), "{first}");
    for _ in 0..6 {
        assert_eq!(dial("tcp 10.96.0.20:80"), first, "same netns, same backend");
    }
    let counters = Counters::read(&ebpf).unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(counters.get(stats::AFFINITY_HITS), 6);

    // Without affinity both backends turn up: 2^-15 odds of a false alarm.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..16 {
        seen.insert(dial("tcp 10.96.0.21:80"));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "random picks without affinity: {seen:?}");
}

/// Runs one client job (as test `test`) in the sandbox's namespace, inside its cgroup or not;
/// returns the client's result line.
fn run_client(sandbox: &Sandbox, test: &str, job: &str, in_cgroup: bool) -> String {
    let me = env::current_exe().expect("current_exe");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", sandbox.netns()]);
    if in_cgroup {
        // The shell moves itself into the cgroup, then becomes the client (same pid).
        let procs = sandbox.cgroup_dir().join("cgroup.procs");
        cmd.args(["sh", "-c", r#"echo $$ > "$0" && exec "$@""#])
            .arg(procs);
    }
    cmd.arg(me)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CLIENT_ENV, job);
    let out = cmd.output().expect("spawn client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        // libtest prints "test <name> ... " on the same line first.
        .find_map(|line| line.split_once(RESULT).map(|(_, result)| result))
        .unwrap_or_else(|| {
            panic!(
                "client {job:?} printed no result ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

/// The client side: dial, then report what the socket says the peer is and what it received.
fn client(job: &str) -> String {
    let (proto, target) = job.split_once(' ').expect("job: <proto> <addr>");
    let target: SocketAddr = target.parse().expect("job address");
    let result = match proto {
        "tcp" => tcp_client(target),
        "udp" => udp_client(target),
        other => panic!("unknown protocol {other}"),
    };
    match result {
        Ok((peer, data)) => format!("ok peer={peer} data={data}"),
        Err(e) => format!("err errno={}", e.raw_os_error().unwrap_or(-1)),
    }
}

fn tcp_client(target: SocketAddr) -> std::io::Result<(SocketAddr, String)> {
    let mut stream = TcpStream::connect(target)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let peer = stream.peer_addr()?;
    let mut data = String::new();
    stream.read_to_string(&mut data)?;
    Ok((peer, data))
}

fn udp_client(target: SocketAddr) -> std::io::Result<(SocketAddr, String)> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.send_to(b"hello", target)?;
    let mut buf = [0; 64];
    let (len, from) = socket.recv_from(&mut buf)?;
    Ok((from, String::from_utf8_lossy(&buf[..len]).into_owned()))
}

/// Greets every connection, then closes it. Runs until the test process exits.
fn serve_tcp(listener: TcpListener) {
    serve_tcp_as(listener, GREETING);
}

/// Like [`serve_tcp`] with another greeting.
fn serve_tcp_as(listener: TcpListener, greeting: &'static str) {
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(greeting.as_bytes());
        }
    });
}

/// Answers every datagram with the greeting. Runs until the test process exits.
fn serve_udp(socket: UdpSocket) {
    thread::spawn(move || {
        let mut buf = [0; 64];
        while let Ok((_, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(GREETING.as_bytes(), from);
        }
    });
}
