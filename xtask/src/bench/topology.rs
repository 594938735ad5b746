//! The bench's addresses and its sandbox: a client and a backend network namespace joined by
//! a veth pair, a child cgroup under a private cgroup2 mount, a private bpffs, and a work
//! folder. Everything is created per trial and removed on drop, also after an error.
//!
//! ```text
//!  [client netns] c0 10.140.0.2/30 ──veth── b0 10.140.0.1/30 [backend netns]
//!   ferry / netfilter rules,                  `local 10.128.0.0/14 dev lo`: every endpoint
//!   load generator (in the cgroup);           address is local; one listener on :8080
//!   routes: 10.96.0.0/16 and 10.128.0.0/14    serves them all
//!   via 10.140.0.1, nothing else
//! ```
//!
//! No namespace has a default route, so nothing dialled in the client namespace can leave
//! the machine: VIPs and endpoint addresses route only into the backend namespace, which
//! does not forward.

use crate::shell;
use anyhow::{Context, bail};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Endpoints per Service.
pub const ENDPOINTS: u32 = 10;
pub const SERVICE_PORT: u16 = 80;
pub const TARGET_PORT: u16 = 8080;
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The endpoint ("pod") addresses; all local in the backend namespace.
pub const ENDPOINT_CIDR: &str = "10.128.0.0/14";
/// The cluster ("pod") CIDR of the masquerade rules; the client's address is inside it.
pub const CLUSTER_CIDR: &str = "10.128.0.0/12";
pub const NAMESPACE: &str = "bench";
const CLIENT_IP: &str = "10.140.0.2/30";
const GATEWAY: &str = "10.140.0.1";
const NAME_PREFIX: &str = "ferry-bench-";
/// Where the private mounts live, `<RUN_DIR>/<pid>/{cgroup2,bpffs}`.
const RUN_DIR: &str = "/run/ferry-bench";

/// The ClusterIP of Service `i` (10.96.0.1 upwards).
pub fn vip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 1)) + i)
}

/// Endpoint `j` of Service `i`; `j = ENDPOINTS` is the replacement of the one-change step.
pub fn endpoint(i: u32, j: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 1)) + i * 16 + j)
}

/// The endpoints of Service `i`, before (`changed = false`) or after the one endpoint change
/// (endpoint 0 replaced by endpoint `ENDPOINTS`).
pub fn endpoints(i: u32, changed: bool) -> Vec<Ipv4Addr> {
    let first = u32::from(changed);
    (first..first + ENDPOINTS).map(|j| endpoint(i, j)).collect()
}

pub fn service_name(i: u32) -> String {
    format!("svc-{i:05}")
}

/// The Service whose endpoint the one-change step replaces.
pub fn changed_service(n: u32) -> u32 {
    n / 2
}

pub fn target(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// `nsenter --net=/run/netns/<netns> -- program args...` (nsenter, unlike `ip netns exec`,
/// leaves /sys alone).
pub fn nsenter(netns: &str, program: &str, args: &[&str]) -> Command {
    let mut command = shell::command("nsenter", &[&format!("--net=/run/netns/{netns}"), "--"]);
    command.arg(program).args(args);
    command
}

fn quiet(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = shell::command(program, args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// One trial's namespaces, cgroup, mounts and work folder. See the module docs.
#[derive(Debug)]
pub struct Topology {
    pub client: String,
    pub backend: String,
    run_dir: PathBuf,
    pub cgroup: PathBuf,
    /// A sibling of `cgroup` with no programs: the same client outside the LB.
    pub plain_cgroup: PathBuf,
    pub bpffs: PathBuf,
    pub work: PathBuf,
    netns_created: Vec<String>,
    mounts: Vec<PathBuf>,
}

impl Topology {
    /// Builds a fresh sandbox for trial `tag`.
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let pid = std::process::id();
        let run_dir = Path::new(RUN_DIR).join(pid.to_string());
        let mut topo = Self {
            client: format!("{NAME_PREFIX}{pid}-cli"),
            backend: format!("{NAME_PREFIX}{pid}-be"),
            cgroup: run_dir.join("cgroup2").join(format!("bench-{tag}")),
            plain_cgroup: run_dir.join("cgroup2").join(format!("bench-{tag}-plain")),
            bpffs: run_dir.join("bpffs"),
            work: std::env::temp_dir().join(format!("{NAME_PREFIX}{pid}-{tag}")),
            run_dir,
            netns_created: Vec::new(),
            mounts: Vec::new(),
        };
        topo.build().context("building the bench topology")?;
        Ok(topo)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        for ns in [self.client.clone(), self.backend.clone()] {
            quiet("ip", &["netns", "add", &ns])?;
            self.netns_created.push(ns.clone());
            quiet("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let (cli, be) = (self.client.as_str(), self.backend.as_str());
        quiet(
            "ip",
            &[
                "link", "add", "c0", "netns", cli, "type", "veth", "peer", "name", "b0", "netns",
                be,
            ],
        )?;
        quiet("ip", &["-n", cli, "addr", "add", CLIENT_IP, "dev", "c0"])?;
        quiet(
            "ip",
            &["-n", be, "addr", "add", "10.140.0.1/30", "dev", "b0"],
        )?;
        quiet("ip", &["-n", cli, "link", "set", "c0", "up"])?;
        quiet("ip", &["-n", be, "link", "set", "b0", "up"])?;
        for cidr in [SERVICE_CIDR, ENDPOINT_CIDR] {
            quiet("ip", &["-n", cli, "route", "add", cidr, "via", GATEWAY])?;
        }
        quiet(
            "ip",
            &[
                "-n",
                be,
                "route",
                "add",
                "local",
                ENDPOINT_CIDR,
                "dev",
                "lo",
            ],
        )?;
        // A lost SYN must not stall a client for two minutes; a deep accept queue.
        for (ns, key, value) in [
            (cli, "net.ipv4.tcp_syn_retries", "1"),
            (be, "net.core.somaxconn", "8192"),
            (be, "net.ipv4.tcp_max_syn_backlog", "8192"),
        ] {
            let status = nsenter(ns, "sysctl", &["-qw", &format!("{key}={value}")])
                .status()
                .context("sysctl")?;
            if !status.success() {
                bail!("sysctl {key}={value} in {ns} failed");
            }
        }

        let cgroup_mount = self.run_dir.join("cgroup2");
        for (dir, fstype) in [(&cgroup_mount, "cgroup2"), (&self.bpffs, "bpf")] {
            if self.mounts.contains(dir) {
                continue;
            }
            std::fs::create_dir_all(dir)?;
            quiet("mount", &["-t", fstype, fstype, &dir.to_string_lossy()])?;
            self.mounts.push(dir.clone());
        }
        for cgroup in [&self.cgroup, &self.plain_cgroup] {
            std::fs::create_dir(cgroup).with_context(|| format!("mkdir {}", cgroup.display()))?;
        }
        std::fs::create_dir_all(&self.work)?;
        Ok(())
    }

    /// Where ferry pins its links and maps.
    pub fn pin_root(&self) -> PathBuf {
        self.bpffs.join("ferry")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting a namespace also removes its veth end, its rules and its conntrack table.
        for ns in self.netns_created.drain(..) {
            if let Err(error) = quiet("ip", &["netns", "del", &ns]) {
                eprintln!("bench: {error:#}");
            }
        }
        for cgroup in [&self.cgroup, &self.plain_cgroup] {
            if cgroup.exists()
                && let Err(error) = std::fs::remove_dir(cgroup)
            {
                eprintln!("bench: rmdir {}: {error}", cgroup.display());
            }
        }
        for mount in self.mounts.drain(..).rev() {
            if let Err(error) = quiet("umount", &[&mount.to_string_lossy()]) {
                eprintln!("bench: {error:#}");
            }
            let _ = std::fs::remove_dir(&mount);
        }
        let _ = std::fs::remove_dir(&self.run_dir);
        let _ = std::fs::remove_dir(RUN_DIR);
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Removes what an earlier bench run that died without cleaning up left behind: namespaces,
/// mounts and folders named for a process that no longer exists.
pub fn sweep_leftovers() {
    let dead = |pid: &str| !Path::new("/proc").join(pid).exists();
    if let Ok(out) = shell::command("ip", &["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
                continue;
            };
            if rest.split('-').next().is_some_and(dead) {
                let _ = quiet("ip", &["netns", "del", name]);
            }
        }
    }
    let Ok(entries) = std::fs::read_dir(RUN_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !dead(&pid) {
            continue;
        }
        let cgroups = entry.path().join("cgroup2");
        if let Ok(children) = std::fs::read_dir(&cgroups) {
            for child in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = std::fs::remove_dir(child.path());
            }
        }
        for mount in [cgroups, entry.path().join("bpffs")] {
            let _ = quiet("umount", &[&mount.to_string_lossy()]);
            let _ = std::fs::remove_dir(&mount);
        }
        let _ = std::fs::remove_dir(entry.path());
    }
}
