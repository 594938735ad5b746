//! Ferry programmed the real way: the release binary on a manifest directory of N Services
//! (one EndpointSlice file each), inside the client namespace, its socket LB on the bench's
//! cgroup, read back through its admin server.

use super::topology::{self, ENDPOINTS, NAMESPACE, SERVICE_PORT, TARGET_PORT, Topology};
use crate::procfs;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

const ADMIN: &str = "127.0.0.1:10290";
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Services per Service manifest file.
const SERVICES_PER_FILE: u32 = 500;

/// What one ferry cold start and one endpoint change cost.
#[derive(Debug, Clone, Default)]
pub struct FerrySync {
    /// The LB's first sync (`ferry_lb_sync_duration_seconds`, first observation).
    pub full_sync: Duration,
    /// Process start to `/readyz` 200 (reads and parses the manifests, loads and verifies
    /// the BPF programs, attaches, syncs).
    pub start_to_ready: Duration,
    pub full_ops: f64,
    /// The LB sync of the one change (histogram delta).
    pub change: Duration,
    /// File written to LB sync observed (includes the watcher's 25 ms debounce and the
    /// directory rescan).
    pub change_e2e: Duration,
    pub change_ops: f64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
    /// Approximate kernel memory added while starting (BPF maps): see [`procfs::kernel_kb`].
    pub kernel_delta_kb: i64,
    /// The daemon's CPU time during the connection load (it has nothing to do then).
    pub idle_cpu_ms: u64,
    /// Kernel time per run of the `connect4` program (bpf_stats), in ns.
    pub connect4_ns: Option<f64>,
    /// Ferry's connection rate over direct's, from pairs of alternating slices.
    pub paired: Option<Paired>,
}

/// Ratios of ferry's connection rate to direct's, one per pair of slices.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paired {
    pub median: f64,
    /// The first and third quartiles: how far the pairs spread.
    pub quartiles: (f64, f64),
    pub pairs: usize,
}

impl Paired {
    /// `None` without any ratio.
    pub fn of(mut ratios: Vec<f64>) -> Option<Self> {
        ratios.retain(|r| r.is_finite());
        ratios.sort_by(f64::total_cmp);
        let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            median: crate::benchkit::median(ratios.iter().copied())?,
            quartiles: (at(0.25), at(0.75)),
            pairs: ratios.len(),
        })
    }
}

/// The running daemon; stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Ferry {
    child: Child,
    netns: String,
    manifests: PathBuf,
}

/// Writes N Services (ClusterIP, port 80 -> 8080) and one EndpointSlice file per Service.
pub fn write_manifests(dir: &Path, n: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("endpointslices"))?;
    for chunk in 0..n.div_ceil(SERVICES_PER_FILE) {
        let mut file =
            std::io::BufWriter::new(File::create(dir.join(format!("services-{chunk:03}.yaml")))?);
        let first = chunk * SERVICES_PER_FILE;
        for i in first..(first + SERVICES_PER_FILE).min(n) {
            write!(
                file,
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NAMESPACE}}}\n\
                 spec:\n  clusterIP: {vip}\n  ports: [{{name: http, port: {SERVICE_PORT}, protocol: TCP, targetPort: {TARGET_PORT}}}]\n",
                name = topology::service_name(i),
                vip = topology::vip(i),
            )?;
        }
        file.flush()?;
    }
    for i in 0..n {
        write_slice(dir, i, false)?;
    }
    Ok(())
}

fn slice_path(dir: &Path, i: u32) -> PathBuf {
    dir.join("endpointslices")
        .join(format!("{}.yaml", topology::service_name(i)))
}

fn write_slice(dir: &Path, i: u32, changed: bool) -> anyhow::Result<()> {
    let name = topology::service_name(i);
    let mut text = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata:\n  name: {name}-x7k2p\n  namespace: {NAMESPACE}\n  labels: {{kubernetes.io/service-name: {name}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {TARGET_PORT}, protocol: TCP}}]\nendpoints:\n"
    );
    for ip in topology::endpoints(i, changed) {
        text.push_str(&format!(
            "- {{addresses: [\"{ip}\"], conditions: {{ready: true}}, nodeName: bench}}\n"
        ));
    }
    debug_assert_eq!(topology::endpoints(i, changed).len(), ENDPOINTS as usize);
    std::fs::write(slice_path(dir, i), text)?;
    Ok(())
}

impl Ferry {
    /// Starts `ferry` on `manifests` in the client namespace and waits for `/readyz`; returns
    /// it with its cold-start figures.
    pub fn start(
        binary: &Path,
        topo: &Topology,
        manifests: &Path,
        n: u32,
    ) -> anyhow::Result<(Self, FerrySync)> {
        let log = File::create(topo.work.join("ferry.log"))?;
        let kernel_before = procfs::kernel_kb();
        let started = Instant::now();
        let child = topology::nsenter(
            &topo.client,
            &binary.to_string_lossy(),
            &[
                "run",
                "--manifests",
                &manifests.to_string_lossy(),
                "--no-dns",
                "--no-ingress",
                "--node-name",
                "bench",
                "--lb-cgroup",
                &topo.cgroup.to_string_lossy(),
                "--lb-pin-path",
                &topo.pin_root().to_string_lossy(),
                "--admin-listen",
                ADMIN,
                "--lb-cleanup",
            ],
        )
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting ferry")?;
        let mut ferry = Self {
            child,
            netns: topo.client.clone(),
            manifests: manifests.to_path_buf(),
        };
        if let Err(error) = ferry.wait_ready(started) {
            let log = std::fs::read_to_string(topo.work.join("ferry.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            bail!(
                "{error:#}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            );
        }
        let start_to_ready = started.elapsed();
        let metrics = ferry.metrics()?;
        let get = |name: &str| metrics.get(name).copied().unwrap_or(f64::NAN);
        if get("ferry_lb_frontends") != f64::from(n)
            || get("ferry_lb_backends") != f64::from(n * ENDPOINTS)
        {
            bail!(
                "ferry programmed {} frontends / {} backends, expected {n} / {}",
                get("ferry_lb_frontends"),
                get("ferry_lb_backends"),
                n * ENDPOINTS
            );
        }
        if get("ferry_lb_sync_duration_seconds_count") != 1.0 {
            eprintln!(
                "bench: ferry ran {} LB syncs before ready; the full-sync figure is their sum",
                get("ferry_lb_sync_duration_seconds_count")
            );
        }
        let pid = ferry.child.id();
        let sync = FerrySync {
            full_sync: Duration::from_secs_f64(get("ferry_lb_sync_duration_seconds_sum")),
            start_to_ready,
            full_ops: get("ferry_lb_map_operations_total"),
            rss_kb: procfs::status_kb(pid, "VmRSS").unwrap_or(0),
            hwm_kb: procfs::status_kb(pid, "VmHWM").unwrap_or(0),
            kernel_delta_kb: procfs::kernel_kb() as i64 - kernel_before as i64,
            ..FerrySync::default()
        };
        Ok((ferry, sync))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, started: Instant) -> anyhow::Result<()> {
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                bail!("ferry exited before it was ready ({status})");
            }
            if self.get("/readyz").is_ok_and(|(code, _)| code == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        bail!("ferry was not ready within {} s", READY_TIMEOUT.as_secs())
    }

    /// Replaces endpoint 0 of Service `i` in its EndpointSlice file and waits for the LB
    /// sync that follows; fills in the change figures of `sync`.
    pub fn change_one(&mut self, i: u32, sync: &mut FerrySync) -> anyhow::Result<()> {
        let before = self.metrics()?;
        let count =
            |m: &BTreeMap<String, f64>| m.get("ferry_lb_sync_duration_seconds_count").copied();
        let started = Instant::now();
        write_slice(&self.manifests, i, true)?;
        while started.elapsed() < CHANGE_TIMEOUT {
            let now = self.metrics()?;
            if count(&now) > count(&before) {
                sync.change_e2e = started.elapsed();
                let delta = |name: &str| now[name] - before[name];
                if delta("ferry_lb_sync_duration_seconds_count") != 1.0 {
                    eprintln!("bench: the change took more than one LB sync");
                }
                sync.change = Duration::from_secs_f64(delta("ferry_lb_sync_duration_seconds_sum"));
                sync.change_ops = self.ops_since(&before)?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        bail!(
            "ferry did not sync the endpoint change within {} s",
            CHANGE_TIMEOUT.as_secs()
        )
    }

    /// Map operations since `before`. The daemon bumps the counter a little after the sync
    /// histogram (after an O(N) gauge update at 10 000 Services), so a scrape can fall in
    /// between: wait briefly for it to move.
    fn ops_since(&self, before: &BTreeMap<String, f64>) -> anyhow::Result<f64> {
        let name = "ferry_lb_map_operations_total";
        let started = Instant::now();
        loop {
            let ops = self.metrics()?.get(name).copied().unwrap_or(0.0) - before[name];
            if ops > 0.0 || started.elapsed() > Duration::from_millis(200) {
                return Ok(ops);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `/metrics` as `name{labels}` -> value.
    pub fn metrics(&self) -> anyhow::Result<BTreeMap<String, f64>> {
        let (code, body) = self.get("/metrics")?;
        if code != 200 {
            bail!("/metrics answered {code}");
        }
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_string(), value.parse().ok()?))
            })
            .collect())
    }

    /// One HTTP/1.1 GET to the admin server, on a socket made in the client namespace.
    fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        crate::benchkit::http_get(super::connect_in(&self.netns, ADMIN)?, ADMIN, path)
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        // SIGTERM: with --lb-cleanup ferry detaches and unpins what it made.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
