//! A network namespace (only `lo`, up) and a child cgroup under a private cgroup2 mount, both
//! created for one test and removed on drop, also when the test panics; backend hosts in
//! namespaces of their own, linked to it by veth pairs; a private bpffs; and [`Servers`] that
//! tell each client which address they saw it come from.
//!
//! Nothing is attached to the root cgroup or to a real interface: socket-LB programs go on
//! [`Sandbox::cgroup_dir`], and traffic stays on the namespace's loopback (a translation that
//! fails makes `connect` to a service address fail with `ENETUNREACH`, since `lo` is the only
//! route there).

use std::{
    fs::{self, File},
    io::ErrorKind,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, bail};
use nix::sched::{CloneFlags, setns};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use tempfile::TempDir;

/// The namespace and cgroup of one test. See the module docs.
#[derive(Debug)]
pub struct Sandbox {
    netns: String,
    netns_created: bool,
    /// `None` once deliberately leaked (it could not be unmounted).
    mount: Option<TempDir>,
    mounted: bool,
    cgroup: PathBuf,
}

impl Sandbox {
    /// Creates `ferrytest-<tag>-<pid>` (netns) and `<tmp>/ferrytest-<tag>-<pid>` (cgroup).
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let name = format!("ferrytest-{tag}-{}", std::process::id());
        let mount = tempfile::Builder::new()
            .prefix("ferrytest-cgroup2-")
            .tempdir()?;
        let cgroup_root = mount.path().to_owned();
        let cgroup = cgroup_root.join(&name);
        let mut sandbox = Self {
            netns: name,
            netns_created: false,
            mount: Some(mount),
            mounted: false,
            cgroup,
        };
        run("ip", &["netns", "add", &sandbox.netns])?;
        sandbox.netns_created = true;
        run("ip", &["-n", &sandbox.netns, "link", "set", "lo", "up"])?;
        let dir = cgroup_root
            .to_str()
            .context("non-UTF-8 temp dir")?
            .to_owned();
        run("mount", &["-t", "cgroup2", "none", &dir])?;
        sandbox.mounted = true;
        fs::create_dir(&sandbox.cgroup)
            .with_context(|| format!("mkdir {}", sandbox.cgroup.display()))?;
        Ok(sandbox)
    }

    /// The network namespace's name, for `ip netns exec`.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The child cgroup (a cgroup v2 directory) to attach programs to.
    pub fn cgroup_dir(&self) -> &Path {
        &self.cgroup
    }

    /// Runs `f` on a fresh thread that has joined the namespace.
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        in_netns(&self.netns, f)
    }
}

/// Runs `f` on a fresh thread that has joined network namespace `netns`; sockets it creates
/// stay in the namespace wherever they are used afterwards. The calling thread is not moved.
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    let ns = File::open(Path::new("/run/netns").join(netns))?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                setns(&ns, CloneFlags::CLONE_NEWNET).context("setns")?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A private bpffs instance mounted on a temp dir, unmounted on drop: pins made under it
/// vanish with it, whatever the test left.
#[derive(Debug)]
pub struct Bpffs {
    dir: Option<TempDir>,
}

impl Bpffs {
    pub fn mount() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("ferrytest-bpffs-")
            .tempdir()?;
        let path = dir
            .path()
            .to_str()
            .context("non-UTF-8 temp dir")?
            .to_owned();
        run("mount", &["-t", "bpf", "bpf", &path])?;
        Ok(Self { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && let Err(e) = run("umount", &[&dir.path().to_string_lossy()])
        {
            eprintln!("sandbox: {e:#}; leaving {} in place", dir.path().display());
            let _ = dir.keep();
        }
    }
}

/// Port of every backend's TCP server (writes its name and closes).
pub const TCP_PORT: u16 = 8080;
/// Port of every backend's UDP server (answers each datagram with its name).
pub const UDP_PORT: u16 = 5353;

/// A backend host: a network namespace of its own, linked to the sandbox by a veth pair,
/// running a TCP and a UDP server on IPv4 and IPv6 that answer with `name`.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub netns: String,
    pub ipv4: IpAddr,
    pub ipv6: IpAddr,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.netns]) {
            eprintln!("sandbox: {e:#}");
        }
    }
}

impl Sandbox {
    /// Adds backend `index` (0..250): netns `<sandbox>-b<index>`, addresses 10.250.<index>.2
    /// and fd00:250:<index>::2 behind the sandbox's 10.250.<index>.1 / fd00:250:<index>::1.
    pub fn add_backend(&self, index: u8, name: &str) -> anyhow::Result<Backend> {
        let netns = format!("{}-b{index}", self.netns);
        run("ip", &["netns", "add", &netns])?;
        let backend = Backend {
            name: name.to_string(),
            netns: netns.clone(),
            ipv4: format!("10.250.{index}.2").parse()?,
            ipv6: format!("fd00:250:{index}::2").parse()?,
        };
        let here = format!("veth{index}");
        let ip = |ns: &str, args: &[&str]| {
            let mut full = vec!["-n", ns];
            full.extend_from_slice(args);
            run("ip", &full)
        };
        run(
            "ip",
            &[
                "link",
                "add",
                &here,
                "netns",
                &self.netns,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &netns,
            ],
        )?;
        ip(
            &self.netns,
            &["addr", "add", &format!("10.250.{index}.1/24"), "dev", &here],
        )?;
        ip(
            &self.netns,
            &[
                "addr",
                "add",
                &format!("fd00:250:{index}::1/64"),
                "dev",
                &here,
                "nodad",
            ],
        )?;
        ip(&self.netns, &["link", "set", &here, "up"])?;
        ip(
            &netns,
            &[
                "addr",
                "add",
                &format!("10.250.{index}.2/24"),
                "dev",
                "eth0",
            ],
        )?;
        ip(
            &netns,
            &[
                "addr",
                "add",
                &format!("fd00:250:{index}::2/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        )?;
        ip(&netns, &["link", "set", "eth0", "up"])?;
        ip(&netns, &["link", "set", "lo", "up"])?;
        ip(
            &netns,
            &[
                "route",
                "add",
                "default",
                "via",
                &format!("10.250.{index}.1"),
            ],
        )?;
        ip(
            &netns,
            &[
                "-6",
                "route",
                "add",
                "default",
                "via",
                &format!("fd00:250:{index}::1"),
            ],
        )?;
        for addr in [backend.ipv4, backend.ipv6] {
            serve(&netns, name, addr)?;
        }
        Ok(backend)
    }
}

/// Starts the TCP and UDP servers of one backend address, on threads that live as long as the
/// test process (their sockets stay in `netns`).
fn serve(netns: &str, name: &str, addr: IpAddr) -> anyhow::Result<()> {
    let (tcp, udp) = in_netns(netns, || -> anyhow::Result<_> {
        Ok((
            TcpListener::bind(SocketAddr::new(addr, TCP_PORT))?,
            UdpSocket::bind(SocketAddr::new(addr, UDP_PORT))?,
        ))
    })??;
    let reply = name.to_string();
    std::thread::spawn(move || {
        for stream in tcp.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.write_all(reply.as_bytes());
            // Drain until the client closes, so the client sees the reply then EOF.
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.read(&mut [0u8; 64]);
        }
    });
    let reply = name.to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((_, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(reply.as_bytes(), from);
        }
    });
    Ok(())
}

/// TCP and UDP servers that answer every connection or datagram with `<name> <client ip>`
/// (the source address they saw), for tests that check whether a client was masqueraded.
/// Stopped and joined on drop.
#[derive(Debug, Default)]
pub struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Binds a TCP and a UDP server to `addr` in network namespace `netns` and starts both.
    pub fn serve(&mut self, netns: &str, addr: SocketAddr, name: &str) -> anyhow::Result<()> {
        let (tcp, udp) = in_netns(netns, || -> anyhow::Result<_> {
            Ok((TcpListener::bind(addr)?, UdpSocket::bind(addr)?))
        })?
        .with_context(|| format!("binding {addr} in {netns}"))?;
        self.tcp(tcp, name);
        self.udp(udp, name);
        Ok(())
    }

    /// Serves TCP on `listener`: writes the line, then closes the connection.
    fn tcp(&mut self, listener: TcpListener, name: &str) {
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, name) = (Arc::clone(&self.stop), name.to_owned());
        self.threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = write!(stream, "{name} {}", peer.ip());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    /// Serves UDP on `socket`: answers each datagram.
    fn udp(&mut self, socket: UdpSocket, name: &str) {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let (stop, name) = (Arc::clone(&self.stop), name.to_owned());
        self.threads.push(std::thread::spawn(move || {
            let mut buf = [0; 64];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let ip: IpAddr = from.ip();
                    let _ = socket.send_to(format!("{name} {ip}").as_bytes(), from);
                }
            }
        }));
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Processes moved into the cgroup have exited by now (their output was awaited), but
        // the kernel may take a moment to release the cgroup (EBUSY meanwhile).
        if self.cgroup.exists() {
            for attempt in 0.. {
                match fs::remove_dir(&self.cgroup) {
                    Ok(()) => break,
                    Err(e) if attempt < 50 && e.kind() == ErrorKind::ResourceBusy => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        eprintln!("sandbox: rmdir {}: {e}", self.cgroup.display());
                        break;
                    }
                }
            }
        }
        if self.mounted
            && let Some(dir) = self.mount.take()
            && let Err(e) = run("umount", &[&dir.path().to_string_lossy()])
        {
            eprintln!("sandbox: {e:#}; leaving {} in place", dir.path().display());
            // Removing the temp dir would recurse into the still-mounted cgroup tree.
            let _ = dir.keep();
        }
        if self.netns_created
            && let Err(e) = run("ip", &["netns", "del", &self.netns])
        {
            eprintln!("sandbox: {e:#}");
        }
        // `self.mount`, if still here, is an unmounted (or never mounted) temp dir: removed next.
    }
}

/// Runs a setup command, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("spawning {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
