//! A small routed network of namespaces for the tc NodePort tests, created for one test and
//! removed on drop (also when the test panics). Nothing touches the machine's own interfaces:
//! every veth is created directly inside the test's namespaces, and all addresses are private
//! ones that only exist there.
//!
//! ```text
//!   client ── c0 ┐                        ┌ n1 ── p0 ── pod
//!                ├ br0 (lan) ── n0 ── node┘
//!   remote ── r0 ┘
//! ```
//!
//! | ns | interface | IPv4 | IPv6 |
//! |---|---|---|---|
//! | client | c0 | 10.201.1.2/24 (+ 10.201.9.0/24 via node) | fd00:201:1::2/64 (+ fd00:201:9::/64 via node) |
//! | node | n0 (external) | 10.201.1.1/24 | fd00:201:1::1/64 |
//! | node | n1 | 10.201.2.1/24 | fd00:201:2::1/64 |
//! | remote ("another node") | r0 | 10.201.1.3/24 | fd00:201:1::3/64 |
//! | pod (a local endpoint) | p0 | 10.201.2.2/24, default via node | fd00:201:2::2/64, default via node |
//!
//! The node forwards (IPv4 and IPv6). Receive checksum offload is off on every veth, so the
//! receiving stacks verify every checksum the BPF programs rewrote; see [`Offload`] for the
//! sending side.

use std::fs;

use anyhow::{Context as _, bail};

use crate::netns::{in_netns, run};

/// The node's address on the lan (`n0`): where NodePorts are dialled.
pub const NODE_V4: &str = "10.201.1.1";
pub const NODE_V6: &str = "fd00:201:1::1";
/// The client's address (`c0`).
pub const CLIENT_V4: &str = "10.201.1.2";
pub const CLIENT_V6: &str = "fd00:201:1::2";
/// Another node on the lan (`r0`), hosting remote endpoints.
pub const REMOTE_V4: &str = "10.201.1.3";
pub const REMOTE_V6: &str = "fd00:201:1::3";
/// A pod on the node (`p0`), a local endpoint.
pub const POD_V4: &str = "10.201.2.2";
pub const POD_V6: &str = "fd00:201:2::2";

/// Transmit checksum offload of the veths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offload {
    /// Off everywhere: every packet carries a full checksum (`CHECKSUM_NONE`) when the node's
    /// programs rewrite it.
    Off,
    /// On for the endpoints and the lan bridge, off on the node's own veths: packets reach the
    /// programs as `CHECKSUM_PARTIAL` (only the pseudo-header sum in the checksum field), and
    /// the node's stack completes them in software when it sends them on, so a pseudo-header
    /// fix-up that `BPF_F_PSEUDO_HDR` should have made shows up at the receiver.
    Partial,
}

/// The namespaces of a [`Topology`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    Client,
    Lan,
    Node,
    Remote,
    Pod,
}

impl Ns {
    const ALL: [Self; 5] = [Self::Client, Self::Lan, Self::Node, Self::Remote, Self::Pod];

    fn role(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Lan => "lan",
            Self::Node => "node",
            Self::Remote => "remote",
            Self::Pod => "pod",
        }
    }
}

/// The namespaces of one test; see the module docs.
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    created: Vec<String>,
}

impl Topology {
    /// Creates `ferrynp-<tag>-<role>-<pid>` for every role and wires them up.
    pub fn create(tag: &str, offload: Offload) -> anyhow::Result<Self> {
        let mut topology = Self {
            prefix: format!("ferrynp-{tag}"),
            created: Vec::new(),
        };
        for ns in Ns::ALL {
            let name = topology.name(ns);
            run("ip", &["netns", "add", &name])?;
            topology.created.push(name);
            topology.ip(ns, &["link", "set", "lo", "up"])?;
        }
        topology.wire(offload).context("wiring the test network")?;
        topology.wait_for_ipv6()?;
        Ok(topology)
    }

    /// The namespace's name, for `ip netns exec`.
    pub fn name(&self, ns: Ns) -> String {
        format!("{}-{}-{}", self.prefix, ns.role(), std::process::id())
    }

    /// Runs `f` on a fresh thread that has joined namespace `ns`; sockets it creates stay in
    /// that namespace wherever they are used afterwards.
    pub fn in_ns<T: Send>(&self, ns: Ns, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        in_netns(&self.name(ns), f)
    }

    /// The sum of the `InCsumErrors` counters (TCP, UDP, UDP6) in namespace `ns`.
    pub fn checksum_errors(&self, ns: Ns) -> anyhow::Result<u64> {
        self.in_ns(ns, || -> anyhow::Result<u64> {
            // thread-self: /proc/self/net would show the main thread's namespace.
            let snmp = fs::read_to_string("/proc/thread-self/net/snmp")?;
            let snmp6 = fs::read_to_string("/proc/thread-self/net/snmp6")?;
            Ok(snmp_counter(&snmp, "Tcp:", "InCsumErrors")?
                + snmp_counter(&snmp, "Udp:", "InCsumErrors")?
                + snmp6
                    .lines()
                    .filter_map(|l| l.strip_prefix("Udp6InCsumErrors"))
                    .map(|v| v.trim().parse::<u64>().unwrap_or(0))
                    .sum::<u64>())
        })?
    }

    fn wire(&self, offload: Offload) -> anyhow::Result<()> {
        use Ns::{Client, Lan, Node, Pod, Remote};
        // veth pairs, each end created directly in its namespace.
        for (ns, dev, peer_ns, peer) in [
            (Client, "c0", Lan, "lc"),
            (Node, "n0", Lan, "ln"),
            (Remote, "r0", Lan, "lr"),
            (Node, "n1", Pod, "p0"),
        ] {
            let peer_name = self.name(peer_ns);
            self.ip(
                ns,
                &[
                    "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", &peer_name,
                ],
            )?;
        }
        self.ip(Lan, &["link", "add", "br0", "type", "bridge"])?;
        self.ip(Lan, &["link", "set", "br0", "up"])?;
        for port in ["lc", "ln", "lr"] {
            self.ip(Lan, &["link", "set", port, "master", "br0"])?;
        }
        for (ns, dev) in [
            (Client, "c0"),
            (Lan, "lc"),
            (Lan, "ln"),
            (Lan, "lr"),
            (Node, "n0"),
            (Node, "n1"),
            (Remote, "r0"),
            (Pod, "p0"),
        ] {
            let tx = if offload == Offload::Partial && ns != Node {
                "on"
            } else {
                "off"
            };
            self.exec(ns, &["ethtool", "-K", dev, "rx", "off", "tx", tx])?;
            self.ip(ns, &["link", "set", dev, "up"])?;
        }
        for (ns, dev, v4, v6) in [
            (Client, "c0", "10.201.1.2/24", "fd00:201:1::2/64"),
            (Node, "n0", "10.201.1.1/24", "fd00:201:1::1/64"),
            (Node, "n1", "10.201.2.1/24", "fd00:201:2::1/64"),
            (Remote, "r0", "10.201.1.3/24", "fd00:201:1::3/64"),
            (Pod, "p0", "10.201.2.2/24", "fd00:201:2::2/64"),
        ] {
            self.ip(ns, &["addr", "add", v4, "dev", dev])?;
            self.ip(ns, &["-6", "addr", "add", v6, "dev", dev, "nodad"])?;
        }
        self.ip(
            Client,
            &["route", "add", "10.201.9.0/24", "via", "10.201.1.1"],
        )?;
        self.ip(
            Client,
            &[
                "-6",
                "route",
                "add",
                "fd00:201:9::/64",
                "via",
                "fd00:201:1::1",
            ],
        )?;
        self.ip(Pod, &["route", "add", "default", "via", "10.201.2.1"])?;
        self.ip(
            Pod,
            &["-6", "route", "add", "default", "via", "fd00:201:2::1"],
        )?;
        self.exec(
            Node,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )?;
        Ok(())
    }

    /// Waits (at most 5 s) until no IPv6 address is tentative: until duplicate address
    /// detection has passed for the veths' link-local addresses, a router cannot solicit a
    /// neighbour, and the first IPv6 packets it forwards would wait or be lost.
    fn wait_for_ipv6(&self) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        for _ in 0..100 {
            let mut tentative = Vec::new();
            for ns in Ns::ALL {
                let out = std::process::Command::new("ip")
                    .args(["-n", &self.name(ns), "-6", "addr", "show", "tentative"])
                    .output()
                    .context("ip -6 addr show tentative")?;
                if !out.stdout.is_empty() {
                    tentative.push(ns);
                }
            }
            if tentative.is_empty() {
                return Ok(());
            }
            if started.elapsed() > std::time::Duration::from_secs(5) {
                bail!("IPv6 addresses still tentative after 5 s in {tentative:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bail!("IPv6 addresses still tentative")
    }

    fn ip(&self, ns: Ns, args: &[&str]) -> anyhow::Result<()> {
        let name = self.name(ns);
        let mut full = vec!["-n", &name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    fn exec(&self, ns: Ns, command: &[&str]) -> anyhow::Result<()> {
        let name = self.name(ns);
        let mut full = vec!["netns", "exec", &name];
        full.extend_from_slice(command);
        run("ip", &full)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and with them their peers.
        for name in self.created.drain(..).rev() {
            if let Err(e) = run("ip", &["netns", "del", &name]) {
                eprintln!("topology: {e:#}");
            }
        }
    }
}

/// The value of `field` on the `prefix` line pair of /proc/net/snmp.
fn snmp_counter(snmp: &str, prefix: &str, field: &str) -> anyhow::Result<u64> {
    let mut lines = snmp.lines().filter(|l| l.starts_with(prefix));
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        bail!("no {prefix} lines in /proc/net/snmp");
    };
    let index = header
        .split_whitespace()
        .position(|h| h == field)
        .with_context(|| format!("no {prefix} {field}"))?;
    let value = values
        .split_whitespace()
        .nth(index)
        .with_context(|| format!("short {prefix} line"))?;
    Ok(value.parse()?)
}
