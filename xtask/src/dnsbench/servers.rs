//! The two servers as child processes, each in a process group of its own (NSD forks) and
//! stopped on drop: ferry (`--no-lb --no-ingress`, ready by its admin `/readyz`) and NSD
//! (its own config in the work folder, foreground, no chroot, no privilege drop).

use crate::procfs;
use anyhow::{Context, bail};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A free loopback port for both UDP and TCP (asked of the kernel, then released).
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no loopback port free for both UDP and TCP")
}

/// A child process group, killed on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Process {
    /// Starts `program args` pinned to `cpu` (taskset), output to `log`.
    fn spawn(
        name: &'static str,
        cpu: Option<usize>,
        program: &Path,
        args: &[&str],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self { child, name, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the log's tail when the process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(4).collect();
            bail!(
                "{} exited ({status}): {}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            );
        }
        Ok(())
    }

    /// Every process of the group: the leader and its children (NSD's xfrd and server).
    pub fn group_pids(&self) -> Vec<u32> {
        let pgid = self.child.id();
        let mut pids = vec![pgid];
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return pids;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the command name: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            if pid != pgid && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `ferry run --manifests DIR --no-lb --no-ingress --dns-listen 127.0.0.1:PORT`, ready when
/// its admin server answers `/readyz` with 200.
pub fn start_ferry(
    binary: &Path,
    manifests: &Path,
    work: &Path,
    dns_port: u16,
    cpu: Option<usize>,
    tag: &str,
) -> anyhow::Result<(Process, Duration)> {
    let admin: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let dns = format!("127.0.0.1:{dns_port}");
    let admin_text = admin.to_string();
    let manifests = manifests.to_string_lossy();
    let args = [
        "run",
        "--manifests",
        &manifests,
        "--no-lb",
        "--no-ingress",
        "--node-name",
        "bench",
        "--dns-listen",
        &dns,
        // Nothing leaves the machine: an upstream nobody listens on (the zone is complete).
        "--dns-upstream",
        "127.0.0.1:9",
        "--admin-listen",
        &admin_text,
    ];
    let started = Instant::now();
    let mut process = Process::spawn(
        "ferry",
        cpu,
        binary,
        &args,
        work.join(format!("ferry-{tag}.log")),
    )?;
    while started.elapsed() < READY_TIMEOUT {
        process.check_alive()?;
        if http_get(admin, "/readyz").is_ok_and(|(code, _)| code == 200) {
            return Ok((process, started.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("ferry was not ready within {} s", READY_TIMEOUT.as_secs())
}

/// `nsd -d -c <work>/nsd.conf` on 127.0.0.1:PORT with one server process, RRL off, ready when
/// it answers the zone's SOA.
pub fn start_nsd(
    work: &Path,
    zone_file: &Path,
    port: u16,
    cpu: Option<usize>,
) -> anyhow::Result<Process> {
    let dir = work.join("nsd");
    std::fs::create_dir_all(&dir)?;
    let d = dir.display();
    let config = format!(
        "server:\n\
         \x20 ip-address: 127.0.0.1@{port}\n\
         \x20 port: {port}\n\
         \x20 do-ip6: no\n\
         \x20 server-count: 1\n\
         \x20 username: \"\"\n\
         \x20 chroot: \"\"\n\
         \x20 zonesdir: \"{d}\"\n\
         \x20 database: \"\"\n\
         \x20 pidfile: \"{d}/nsd.pid\"\n\
         \x20 xfrdfile: \"{d}/xfrd.state\"\n\
         \x20 zonelistfile: \"{d}/zone.list\"\n\
         \x20 logfile: \"{d}/nsd.log\"\n\
         \x20 verbosity: 0\n\
         \x20 rrl-ratelimit: 0\n\
         \x20 rrl-whitelist-ratelimit: 0\n\
         \x20 minimal-responses: yes\n\
         remote-control:\n\
         \x20 control-enable: no\n\
         zone:\n\
         \x20 name: {zone}\n\
         \x20 zonefile: \"{zf}\"\n",
        zone = super::fixture::ZONE,
        zf = zone_file.display(),
    );
    let conf = dir.join("nsd.conf");
    std::fs::write(&conf, config)?;
    let nsd = which("nsd").context("nsd is missing (cargo xtask setup installs it)")?;
    let conf_text = conf.to_string_lossy();
    let mut process = Process::spawn(
        "nsd",
        cpu,
        &nsd,
        &["-d", "-c", &conf_text],
        work.join("nsd.log"),
    )?;
    let started = Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        process.check_alive()?;
        let soa = super::check::dig(port, super::fixture::ZONE, "SOA")?;
        if soa.rcode == "NOERROR" && !soa.records.is_empty() {
            return Ok(process);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nsd did not answer within {} s", READY_TIMEOUT.as_secs())
}

/// `program` on PATH or in the sbin folders (NSD lives in /usr/sbin).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// One HTTP/1.1 GET to a loopback admin server.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    crate::benchkit::http_get(stream, &addr.to_string(), path)
}

/// RSS and PSS summed over a process group, in kB.
pub fn memory_kb(process: &Process) -> (u64, u64) {
    process.group_pids().iter().fold((0, 0), |(rss, pss), pid| {
        (
            rss + procfs::status_kb(*pid, "VmRSS").unwrap_or(0),
            pss + procfs::pss_kb(*pid).unwrap_or(0),
        )
    })
}
