//! Harness for the end-to-end suites: start the real `ferry` binary, talk to its admin server,
//! send it signals, and read its log.
//!
//! Tests that need root, an external tool or the BPF object call [`require_root`] /
//! [`require_tool`] / [`privileged::require_bpf`]: under `CI=true` a missing requirement fails
//! the test; elsewhere it is skipped loudly. The network namespaces, cgroups, bpffs mounts and
//! test networks the suites (here and in `ferry-lb`) build live in [`netns`] and [`topology`].

pub mod lab;
pub mod netns;
pub mod privileged;
pub mod topology;

pub use privileged::{in_ci, require_root, require_tool};

use anyhow::{Context, bail};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `ferry` binary next to this test executable (`target/<profile>/ferry`), or `$FERRY_BIN`.
pub fn ferry_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FERRY_BIN") {
        return PathBuf::from(path);
    }
    let path = built_ferry().expect("test executable has no target directory");
    assert!(
        path.is_file(),
        "{} not found: build it first (`cargo build -p ferry`; `cargo xtask test` does)",
        path.display()
    );
    path
}

/// `target/<profile>/ferry` for a test executable in `target/<profile>/deps/`.
fn built_ferry() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("ferry"))
}

/// A port free on loopback for both TCP and UDP, for a server the test starts next.
///
/// Taken below the kernel's ephemeral range, where no `connect()` or `bind(0)` on the machine
/// can take it between this check and the server's bind (an ephemeral port freed here was
/// soon another socket's: a DNS server binding UDP and TCP on one such port failed now and
/// then). Each port is handed out once per process: a suite's tests run on concurrent threads,
/// the suites one after another.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let (low, high) = (10_000, ephemeral_start.max(20_000));
    // Processes start at different offsets, so a port a previous suite left in TIME_WAIT is
    // not the first one tried.
    let offset = std::process::id().wrapping_mul(7919);
    for _ in 0..1_000 {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(low + offset.wrapping_add(k) % (high - low)).expect("below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {low}..{high} on 127.0.0.1 after 1,000 tries");
}

/// A running `ferry run`, killed on drop. Its stderr goes to a log file read by [`Ferry::log`].
#[derive(Debug)]
pub struct Ferry {
    child: Child,
    pub admin: SocketAddr,
    /// The network namespace it runs in, if not the test's own.
    netns: Option<String>,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Ferry {
    /// Starts `ferry run --admin-listen 127.0.0.1:<free> <args>`.
    pub fn start(args: &[&str]) -> anyhow::Result<Self> {
        Self::start_in(None, args)
    }

    /// Like [`Ferry::start`], inside network namespace `netns`. `nsenter` switches only the
    /// network namespace (`ip netns exec` would also remount `/sys`, hiding bpffs mounts).
    pub fn start_in(netns: Option<&str>, args: &[&str]) -> anyhow::Result<Self> {
        let admin: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log_dir = tempfile::tempdir()?;
        let log_path = log_dir.path().join("ferry.log");
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(ferry_binary());
                c
            }
            None => Command::new(ferry_binary()),
        };
        let child = command
            .arg("run")
            .args(["--admin-listen", &admin.to_string()])
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log_path)?)
            .spawn()
            .context("spawning ferry")?;
        Ok(Self {
            child,
            admin,
            netns: netns.map(str::to_string),
            log_path,
            _log_dir: log_dir,
        })
    }

    /// Polls `/readyz` until 200; returns how long it took.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "ferry exited with {status} before ready; log:\n{}",
                    self.log()
                );
            }
            if matches!(self.get("/readyz"), Ok((200, _))) {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!("ferry not ready after {timeout:?}; log:\n{}", self.log())
    }

    /// GET on the admin server: status and body.
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let url = format!("http://{}{path}", self.admin);
        match &self.netns {
            Some(ns) => netns::in_netns(ns, || http_get(&url))?,
            None => http_get(&url),
        }
    }

    /// The state JSON from `/debug/state`.
    pub fn state(&self) -> anyhow::Result<serde_json::Value> {
        let (status, body) = self.get("/debug/state")?;
        if status != 200 {
            bail!("/debug/state answered {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// One sample of a metric (exact name with labels) from `/metrics`.
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let (_, body) = self.get("/metrics")?;
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .with_context(|| format!("metric {name} not found in:\n{body}"))
    }

    /// Polls `check` on the state until it holds; returns how long it took.
    pub fn wait_for_state(
        &self,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.state().is_ok_and(|s| check(&s)) {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!(
            "state never matched within {timeout:?}; log:\n{}",
            self.log()
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        nix::sys::signal::kill(pid, signal)?;
        Ok(())
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("ferry still running after {timeout:?}")
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `--lb-pin-path` for `ferry run` on a bpffs of the test's own. On drop, `ferry cleanup`
/// removes the pinned links and maps (detaching the programs), then the bpffs is unmounted,
/// also when the test fails.
#[derive(Debug)]
pub struct LbPins {
    path: PathBuf,
    /// Unmounted once `drop` has run the cleanup.
    _bpffs: netns::Bpffs,
}

impl LbPins {
    pub fn mount() -> anyhow::Result<Self> {
        let bpffs = netns::Bpffs::mount()?;
        Ok(Self {
            path: bpffs.path().join("ferry"),
            _bpffs: bpffs,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LbPins {
    fn drop(&mut self) {
        // Not `ferry_binary()`: a panic while a failed test unwinds would abort the run.
        let Some(ferry) = std::env::var_os("FERRY_BIN")
            .map(PathBuf::from)
            .or_else(built_ferry)
        else {
            return;
        };
        let _ = Command::new(ferry)
            .args(["cleanup", "--lb-pin-path"])
            .arg(&self.path)
            .output();
    }
}

/// A plain HTTP GET that reports any status instead of failing on 4xx/5xx.
pub fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent.get(url).call()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    Ok((status, body))
}

/// Writes `text` to `dir/name` atomically (temp file + rename), as editors and kubectl do.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

/// `count` ClusterIP Services named `svc-<i>` in namespace `bench`, each with one
/// EndpointSlice of `endpoints` ready endpoints, spread over `files` YAML files.
pub fn write_services(
    dir: &Path,
    count: usize,
    endpoints: usize,
    files: usize,
) -> anyhow::Result<()> {
    let mut docs: Vec<String> = vec![String::new(); files.max(1)];
    for i in 0..count {
        let mut text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: bench}}\n\
             spec:\n  clusterIP: 10.{}.{}.{}\n  ports: [{{name: http, port: 80, targetPort: 8080}}]\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: svc-{i}-a, namespace: bench, labels: {{kubernetes.io/service-name: svc-{i}}}}}\n\
             addressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints:\n",
            96 + i / 65536,
            (i / 256) % 256,
            i % 256
        );
        for e in 0..endpoints {
            let n = i * endpoints + e;
            text.push_str(&format!(
                "- addresses: [10.{}.{}.{}]\n  conditions: {{ready: true}}\n  nodeName: node-{}\n",
                128 + n / 65536,
                (n / 256) % 256,
                n % 256,
                e % 3
            ));
        }
        text.push_str("---\n");
        let file = i % docs.len();
        docs[file].push_str(&text);
    }
    for (f, text) in docs.iter().enumerate() {
        std::fs::write(dir.join(format!("services-{f}.yaml")), text)?;
    }
    Ok(())
}

/// For the client binaries: takes a leading `--cgroup DIR` off `args` and moves this process
/// into that cgroup, so that the sockets it creates from now on are subject to the socket-LB
/// programs attached there. `Err` names the `cgroup.procs` file and the reason.
pub fn join_cgroup_arg(args: &mut Vec<String>) -> Result<(), String> {
    if args.first().map(String::as_str) != Some("--cgroup") || args.len() < 2 {
        return Ok(());
    }
    let dir = args.remove(1);
    args.remove(0);
    let procs = Path::new(&dir).join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .map_err(|e| format!("joining {}: {e}", procs.display()))
}
