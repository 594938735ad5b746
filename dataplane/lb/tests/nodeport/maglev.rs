//! Maglev on the tc path: a frontend with `FRONTEND_FLAG_MAGLEV` sends each new flow to the
//! backend its set's table gives the flow's 5-tuple hash, the same whenever the flow starts
//! again; without the flag the pick stays random.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use ferry_lb::common::{
    FRONTEND_FLAG_MAGLEV, IPPROTO_UDP, MaglevKey, MaglevTable,
    addr::ip_words,
    maglev::{MAGLEV_TABLE_SIZE, flow_hash},
    stats,
};
use ferry_model::lb::LbBackend;
use ferry_tests::{
    privileged::chain,
    topology::{CLIENT_V4, NODE_V4, Ns},
};

use super::{Lab, addr};

/// Three pods (local backends: the answer names the pod and the client address is kept).
const PODS: [(&str, &str); 3] = [
    ("10.201.2.2:8081", "a"),
    ("10.201.2.2:8082", "b"),
    ("10.201.2.2:8083", "c"),
];

/// Client source ports of the flows (one flow each).
const PORTS: std::ops::Range<u16> = 40_000..40_024;

#[test]
fn maglev_frontends_send_each_flow_where_the_table_says() {
    let Some(mut lab) = Lab::start("maglev") else {
        return;
    };
    let layout = pods(&mut lab);
    let table = ferry_lb::maglev_table(&layout);
    let frontend = addr(&format!("{NODE_V4}:30090"));
    lab.maglev_frontend(1, frontend, FRONTEND_FLAG_MAGLEV, &layout, &table);

    let predicted: BTreeMap<u16, String> = PORTS
        .map(|port| (port, predict(&table, frontend, port)))
        .collect();
    let spread: BTreeSet<&String> = predicted.values().collect();
    assert_eq!(spread.len(), PODS.len(), "the flows cover every backend");

    let reached: BTreeMap<u16, String> = PORTS.map(|p| (p, lab.udp_from(p, frontend))).collect();
    assert_eq!(reached, predicted, "each flow goes where the table says");
    assert_eq!(lab.counters().get(stats::CT_CREATED), PORTS.len() as u64);

    // Forgotten and started again (new flows, not conntrack hits): the same backends.
    lab.forget_udp(&layout);
    let again: BTreeMap<u16, String> = PORTS.map(|p| (p, lab.udp_from(p, frontend))).collect();
    assert_eq!(again, predicted, "the pick is a function of the 5-tuple");
    assert_eq!(
        lab.counters().get(stats::CT_CREATED),
        2 * PORTS.len() as u64
    );
}

/// The same set and table behind a frontend without the flag: one 5-tuple, started again and
/// again, lands on different backends (all on one with odds 3 * 3^-12).
#[test]
fn frontends_without_the_maglev_flag_pick_at_random() {
    let Some(mut lab) = Lab::start("random") else {
        return;
    };
    let layout = pods(&mut lab);
    let table = ferry_lb::maglev_table(&layout);
    let frontend = addr(&format!("{NODE_V4}:30091"));
    lab.maglev_frontend(2, frontend, 0, &layout, &table);

    let mut reached = BTreeSet::new();
    for _ in 0..12 {
        reached.insert(lab.udp_from(PORTS.start, frontend));
        lab.forget_udp(&layout);
    }
    assert!(reached.len() > 1, "one 5-tuple always reached {reached:?}");
}

/// Serves the pods; their layout (slot `i` holds `layout[i]`).
fn pods(lab: &mut Lab) -> Vec<LbBackend> {
    for (at, name) in PODS {
        lab.serve(Ns::Pod, at, name);
    }
    PODS.iter()
        .map(|(at, _)| LbBackend {
            addr: addr(at),
            node_local: true,
        })
        .collect()
}

/// The name of the pod the table gives the flow `CLIENT_V4:port → frontend` (UDP), hashed as
/// the datapath hashes it.
fn predict(table: &MaglevTable, frontend: SocketAddr, port: u16) -> String {
    let client = ip_words(CLIENT_V4.parse().expect("client address")).1;
    let (_, dst) = ip_words(frontend.ip());
    let hash = flow_hash(
        client,
        dst,
        port.to_be(),
        frontend.port().to_be(),
        IPPROTO_UDP,
    );
    let slot = usize::from(table.slots[hash as usize % MAGLEV_TABLE_SIZE]);
    format!("{} {CLIENT_V4}", PODS[slot].1)
}

impl Lab {
    /// A UDP frontend over `layout` (slot order) with `flags`, and the set's Maglev table.
    fn maglev_frontend(
        &mut self,
        id: u32,
        frontend: SocketAddr,
        flags: u32,
        layout: &[LbBackend],
        table: &MaglevTable,
    ) {
        let backends: Vec<(SocketAddr, u8)> = layout.iter().map(|b| (b.addr, 0)).collect();
        self.frontend(id, &frontend.to_string(), IPPROTO_UDP, flags, &backends);
        let key = MaglevKey {
            service_id: id,
            revision: 1,
        };
        ferry_lb::MapWriter::put_maglev(&mut self.maps, &key, table)
            .unwrap_or_else(|e| panic!("{}", chain(&e)));
    }

    /// One exchange from `CLIENT_V4:port`; the answer (`<pod> <client ip>`).
    fn udp_from(&self, port: u16, target: SocketAddr) -> String {
        let socket = self
            .topology
            .in_ns(Ns::Client, || bind_again(port))
            .unwrap_or_else(|e| panic!("{e:#}"))
            .unwrap_or_else(|e| panic!("bind {port}: {e}"));
        let reply = self.udp_on(&socket, &target.to_string());
        let prefix = format!("ok peer={target} data=");
        reply
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("port {port}: {reply}"))
            .to_owned()
    }

    /// Forgets the UDP flows to every backend of `layout`.
    fn forget_udp(&mut self, layout: &[LbBackend]) {
        for backend in layout {
            ferry_lb::forget_flows_to(&mut self.ebpf, backend.addr, IPPROTO_UDP)
                .unwrap_or_else(|e| panic!("{}", chain(&e)));
        }
    }
}

/// Binds `CLIENT_V4:port`, which the previous flow's socket held a moment ago. Its close can
/// lag: a child that another test thread is spawning holds a copy of every descriptor from its
/// fork to its exec, so `EADDRINUSE` is retried for a bounded while.
fn bind_again(port: u16) -> io::Result<UdpSocket> {
    let mut tries = 0;
    loop {
        match UdpSocket::bind((CLIENT_V4, port)) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            bound => return bound,
        }
    }
}
