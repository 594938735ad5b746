//! `cargo xtask bench dns`: ferry's cluster DNS against NSD on the same zone (1,000 ClusterIP
//! Services with a named port, 50 headless Services of 10 endpoints, 50 ExternalNames), each
//! server pinned to core 0 and dnsperf pinned to core 1, over loopback.
//!
//! Steps: write the manifests, the equivalent zone file and the query file ([`fixture`]);
//! start both servers ([`servers`]); compare their answers with `dig` ([`check`], fails the
//! bench on any difference); then, per round and alternating which server goes first, a peak
//! run (no rate limit) of each; then per round a run of each at half its median peak with
//! per-response latencies for p99 ([`load`]); then ferry's memory with an empty manifest
//! folder and with 10,000 Services of 10 endpoints. [`report`] writes `dns.md`.
//!
//! Options: `--rounds 3 --duration 10 --clients 4 --outstanding 200 --memory-services 10000
//! --out docs/bench --ferry PATH` (`--ferry`: a prebuilt binary instead of `cargo build
//! --release -p ferry`).

mod check;
mod fixture;
mod load;
mod report;
mod servers;

use crate::bench::flag;
use crate::procfs;
use crate::shell;
use anyhow::{Context, bail};
use fixture::Shape;
use servers::Process;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

/// The core the servers run on, and the load generator's.
const SERVER_CPU: usize = 0;
const LOAD_CPU: usize = 1;
/// An untimed run before the measured ones (page faults, caches, socket buffers).
const WARMUP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Server {
    Ferry,
    Nsd,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ferry => "ferry",
            Self::Nsd => "nsd",
        }
    }
}

/// The run's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub rounds: u32,
    pub duration: Duration,
    pub clients: u32,
    pub outstanding: u32,
    /// ClusterIP Services (of 10 endpoints each) in the memory measurement; 0 skips it.
    pub memory_services: u32,
    pub out: PathBuf,
    pub ferry: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[&str]) -> anyhow::Result<Self> {
        let number = |name: &str, default: &str| -> anyhow::Result<f64> {
            flag(args, name)
                .unwrap_or(default)
                .replace('_', "")
                .parse::<f64>()
                .with_context(|| name.to_string())
        };
        let duration = number("--duration", "10")?;
        let rounds = number("--rounds", "3")? as u32;
        let clients = number("--clients", "4")? as u32;
        let outstanding = number("--outstanding", "200")? as u32;
        let memory_services = number("--memory-services", "10000")? as u32;
        if !(1.0..=120.0).contains(&duration)
            || !(1..=20).contains(&rounds)
            || !(1..=256).contains(&clients)
            || !(1..=10_000).contains(&outstanding)
            || memory_services > 50_000
        {
            bail!(
                "--duration 1..=120 s, --rounds 1..=20, --clients 1..=256, --outstanding \
                 1..=10000, --memory-services 0..=50000"
            );
        }
        Ok(Self {
            rounds,
            duration: Duration::from_secs_f64(duration),
            clients,
            outstanding,
            memory_services,
            out: flag(args, "--out")
                .map_or_else(|| shell::root().join("docs/bench"), PathBuf::from),
            ferry: flag(args, "--ferry").map(PathBuf::from),
        })
    }
}

/// One measured dnsperf run.
#[derive(Debug, Clone)]
pub struct Trial {
    pub round: u32,
    pub server: Server,
    /// `None`: the peak run; `Some(qps)`: the latency run at that rate.
    pub rate: Option<u64>,
    pub run: Option<load::Run>,
    /// The server's CPU time over the run, as a share of the run's wall time (%).
    pub server_cpu: f64,
    /// The server's CPU time per answered query, µs (10 ms clock ticks: about ±1 %).
    pub cpu_per_query_us: Option<f64>,
    /// Machine CPU busy (%) in the second before the run, and during it.
    pub busy_before: f64,
    pub busy_during: f64,
    /// After the run: RSS and PSS of the server's processes, kB.
    pub rss_kb: u64,
    pub pss_kb: u64,
    pub error: Option<String>,
}

/// Ferry's memory with no objects and with the big fixture.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub services: u32,
    pub objects: u64,
    pub empty_rss_kb: u64,
    pub full_rss_kb: u64,
    pub full_hwm_kb: u64,
    pub ready: Duration,
}

impl Memory {
    /// RSS growth per Service + endpoint, in bytes.
    pub fn per_object(&self) -> f64 {
        (self.full_rss_kb as f64 - self.empty_rss_kb as f64) * 1024.0 / self.objects as f64
    }
}

/// The work folder, removed on drop.
#[derive(Debug)]
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("ferry-bench-dns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cargo xtask bench dns [options]`.
pub fn dns(args: &[&str]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    if ["nsd", "dnsperf", "dig", "taskset"]
        .iter()
        .any(|tool| servers::which(tool).is_none())
    {
        crate::setup()?;
    }
    let binary = match &options.ferry {
        Some(binary) => binary.clone(),
        None => crate::benchkit::build_ferry()?,
    };
    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))?;
    let two_cpus = std::thread::available_parallelism().is_ok_and(|c| c.get() >= 2);
    if !two_cpus {
        eprintln!("bench: one CPU only; servers and dnsperf are not pinned apart");
    }
    let (server_cpu, load_cpu) = if two_cpus {
        (Some(SERVER_CPU), Some(LOAD_CPU))
    } else {
        (None, None)
    };

    let meta = report::capture_meta(&binary);
    let started = Instant::now();
    let work = WorkDir::create()?;
    let shape = Shape::SERVE;
    let manifests = work.0.join("manifests");
    fixture::write_manifests(&manifests, shape)?;
    let zone_file = work.0.join("cluster.local.zone");
    std::fs::write(&zone_file, fixture::zone_file(shape))?;
    let queries = work.0.join("queries.txt");
    let mix = fixture::write_queries(&queries, shape)?;

    let ferry_port = servers::free_port()?;
    let (ferry, _) = servers::start_ferry(
        &binary, &manifests, &work.0, ferry_port, server_cpu, "serve",
    )?;
    let nsd_port = servers::free_port()?;
    let nsd = servers::start_nsd(&work.0, &zone_file, nsd_port, server_cpu)?;
    let compared = check::same_answers(ferry_port, nsd_port, shape)?;
    println!("bench: ferry and NSD give the same answers to {compared} sample queries");

    let bench = Bench {
        options: &options,
        queries: &queries,
        work: &work.0,
        load_cpu,
    };
    let targets = [
        (Server::Ferry, &ferry, ferry_port),
        (Server::Nsd, &nsd, nsd_port),
    ];
    for (_, _, port) in &targets {
        bench.warm_up(*port)?;
    }
    let mut trials = Vec::new();
    for round in 0..options.rounds {
        for step in 0..targets.len() {
            let (server, process, port) = targets[(step + round as usize) % targets.len()];
            let trial = bench.trial(round, server, process, port, None)?;
            println!("{}", report::progress(&trial));
            trials.push(trial);
        }
    }
    let half: Vec<Option<u64>> = targets
        .iter()
        .map(|(server, _, _)| {
            report::median(&trials, *server, false, |t| t.run.map(|r| r.qps))
                .map(|qps| (qps / 2.0) as u64)
        })
        .collect();
    for round in 0..options.rounds {
        for step in 0..targets.len() {
            let k = (step + round as usize) % targets.len();
            let (server, process, port) = targets[k];
            let Some(rate) = half[k] else {
                continue;
            };
            let trial = bench.trial(round, server, process, port, Some(rate))?;
            println!("{}", report::progress(&trial));
            trials.push(trial);
        }
    }
    drop(nsd);
    drop(ferry);

    let memory = if options.memory_services > 0 {
        Some(memory(
            &binary,
            &work.0,
            options.memory_services,
            server_cpu,
        )?)
    } else {
        None
    };
    let meta = meta.finish(started.elapsed());
    let path = report::write(&options, &meta, mix, &trials, memory.as_ref())?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// What every run shares.
struct Bench<'a> {
    options: &'a Options,
    queries: &'a Path,
    work: &'a Path,
    load_cpu: Option<usize>,
}

impl Bench<'_> {
    fn spec(&self, port: u16, duration: Duration, max_qps: Option<u64>) -> load::Spec {
        load::Spec {
            port,
            duration,
            clients: self.options.clients,
            outstanding: self.options.outstanding,
            max_qps,
            cpu: self.load_cpu,
        }
    }

    fn warm_up(&self, port: u16) -> anyhow::Result<()> {
        load::run(&self.spec(port, WARMUP, None), self.queries, None)?;
        Ok(())
    }

    fn trial(
        &self,
        round: u32,
        server: Server,
        process: &Process,
        port: u16,
        rate: Option<u64>,
    ) -> anyhow::Result<Trial> {
        if STOP.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let before = procfs::cpu_jiffies();
        std::thread::sleep(Duration::from_secs(1));
        let mid = procfs::cpu_jiffies();
        let spec = self.spec(port, self.options.duration, rate);
        let latencies = self.work.join("latencies.txt");
        let cpu_before = group_cpu_ms(process);
        let wall = Instant::now();
        let result = load::run(&spec, self.queries, rate.map(|_| latencies.as_path()));
        let wall = wall.elapsed();
        let cpu = group_cpu_ms(process).saturating_sub(cpu_before);
        let (rss_kb, pss_kb) = servers::memory_kb(process);
        let (run, error) = match result {
            Ok(run) => (Some(run), None),
            Err(error) => (None, Some(format!("{error:#}"))),
        };
        let answered = run.map_or(0, |r| r.sent.saturating_sub(r.lost));
        Ok(Trial {
            round,
            server,
            rate,
            run,
            cpu_per_query_us: (answered > 0).then(|| cpu as f64 * 1000.0 / answered as f64),
            server_cpu: cpu as f64 * 100.0 / (wall.as_secs_f64() * 1000.0),
            busy_before: procfs::busy_percent(before, mid),
            busy_during: procfs::busy_percent(mid, procfs::cpu_jiffies()),
            rss_kb,
            pss_kb,
            error,
        })
    }
}

/// Ferry's RSS once ready on an empty manifest folder, then on `services` ClusterIP Services
/// with an EndpointSlice of 10 endpoints each.
fn memory(binary: &Path, work: &Path, services: u32, cpu: Option<usize>) -> anyhow::Result<Memory> {
    let settle = Duration::from_secs(1);
    let empty = work.join("empty");
    std::fs::create_dir_all(&empty)?;
    let (ferry, _) =
        servers::start_ferry(binary, &empty, work, servers::free_port()?, cpu, "empty")?;
    std::thread::sleep(settle);
    let empty_rss_kb = procfs::status_kb(ferry.pid(), "VmRSS").unwrap_or(0);
    drop(ferry);

    let shape = Shape {
        cluster_ip: services,
        headless: 0,
        external: 0,
        cluster_ip_endpoints: true,
    };
    let big = work.join("big");
    fixture::write_manifests(&big, shape)?;
    let port = servers::free_port()?;
    let (ferry, ready) = servers::start_ferry(binary, &big, work, port, cpu, "big")?;
    let probe = check::dig(
        port,
        &format!("svc-{}.bench.svc.cluster.local", services - 1),
        "A",
    )?;
    if probe.rcode != "NOERROR" || probe.records.is_empty() {
        bail!("ferry on {services} Services does not answer for the last one: {probe:?}");
    }
    std::thread::sleep(settle);
    let memory = Memory {
        services,
        objects: shape.objects(),
        empty_rss_kb,
        full_rss_kb: procfs::status_kb(ferry.pid(), "VmRSS").unwrap_or(0),
        full_hwm_kb: procfs::status_kb(ferry.pid(), "VmHWM").unwrap_or(0),
        ready,
    };
    println!(
        "memory: empty {} kB, {services} Services + {} endpoints {} kB (peak {} kB): {:.0} B per object",
        memory.empty_rss_kb,
        services * fixture::ENDPOINTS,
        memory.full_rss_kb,
        memory.full_hwm_kb,
        memory.per_object()
    );
    Ok(memory)
}

/// User + system CPU time of a process group so far, in ms (clock ticks of 10 ms).
fn group_cpu_ms(process: &Process) -> u64 {
    process
        .group_pids()
        .iter()
        .filter_map(|pid| procfs::cpu_ms(*pid))
        .sum()
}
