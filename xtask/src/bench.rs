//! `cargo xtask bench lb`: ferry against kube-proxy's iptables and nftables rule shapes, on
//! one topology of namespaces, for N = 100, 1 000 and 10 000 Services of 10 endpoints.
//!
//! Each trial (one N, one implementation, one round) builds a fresh sandbox
//! ([`topology`]), programs the N Services (ferry from manifests, or one `iptables-restore`
//! / `nft -f`), applies one endpoint change, checks that a Service's connections spread over
//! its endpoints, then runs the connection load ([`load`]) from the client namespace.
//! Implementations alternate within each round; the report ([`report`]) takes medians.
//!
//! Options: `--sizes 100,1000,10000 --rounds 3 --duration 5 --threads 1 --out docs/bench
//! --impls direct,ferry,iptables,nftables --iptables legacy|nft --ferry PATH` (`--ferry`: a
//! prebuilt binary instead of `cargo build --release -p ferry`).

mod bpfstats;
mod exec;
mod ferry;
mod iptables;
mod load;
mod names;
mod nftables;
mod report;
mod rules;
mod topology;

use crate::procfs;
use crate::shell;
use anyhow::{Context, bail};
use load::{ClientSpec, LoadResult, Server, Targets};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

/// Connects per Service in the spread check.
const SPREAD_CONNECTS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Impl {
    Direct,
    Ferry,
    Iptables,
    Nftables,
}

impl Impl {
    const ALL: [Impl; 4] = [Impl::Direct, Impl::Ferry, Impl::Iptables, Impl::Nftables];

    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Ferry => "ferry",
            Self::Iptables => "iptables",
            Self::Nftables => "nftables",
        }
    }
}

/// The run's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub sizes: Vec<u32>,
    pub rounds: u32,
    pub duration: Duration,
    pub threads: usize,
    pub out: PathBuf,
    pub impls: Vec<Impl>,
    pub iptables_restore: &'static str,
    /// A ferry binary to use instead of building `target/release/ferry`.
    pub ferry: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[&str]) -> anyhow::Result<Self> {
        let list = |name: &str, default: &str| -> Vec<String> {
            flag(args, name)
                .unwrap_or(default)
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let sizes = list("--sizes", "100,1000,10000")
            .iter()
            .map(|s| s.replace('_', "").parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .context("--sizes")?;
        if sizes.iter().any(|n| *n == 0 || *n > 16_000) {
            bail!("--sizes: each N must be 1..=16000 (the address plan's limit)");
        }
        let impls = list("--impls", "direct,ferry,iptables,nftables")
            .iter()
            .map(|name| {
                Impl::ALL
                    .into_iter()
                    .find(|i| i.name() == name)
                    .with_context(|| format!("--impls: unknown {name}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let iptables_restore = match flag(args, "--iptables").unwrap_or("legacy") {
            "legacy" => "iptables-legacy-restore",
            "nft" => "iptables-nft-restore",
            other => bail!("--iptables: legacy or nft, not {other}"),
        };
        let duration: f64 = flag(args, "--duration").unwrap_or("5").parse()?;
        let rounds: u32 = flag(args, "--rounds").unwrap_or("3").parse()?;
        let threads: usize = flag(args, "--threads").unwrap_or("1").parse()?;
        if !(0.1..=120.0).contains(&duration)
            || !(1..=20).contains(&rounds)
            || !(1..=64).contains(&threads)
        {
            bail!("--duration 0.1..=120 s, --rounds 1..=20, --threads 1..=64");
        }
        let out =
            flag(args, "--out").map_or_else(|| shell::root().join("docs/bench"), PathBuf::from);
        Ok(Self {
            sizes,
            rounds,
            duration: Duration::from_secs_f64(duration),
            threads,
            out,
            impls,
            iptables_restore,
            ferry: flag(args, "--ferry").map(PathBuf::from),
        })
    }
}

/// One trial's figures.
#[derive(Debug, Clone)]
pub struct Trial {
    pub round: u32,
    pub n: u32,
    pub imp: Impl,
    pub load: Option<LoadResult>,
    pub ferry: Option<ferry::FerrySync>,
    pub rules: Option<rules::RulesSync>,
    /// The spread check: endpoints hit / expected, and whether it passed.
    pub spread: Option<(String, bool)>,
    /// Machine CPU busy (%) in the second before the load run, and during it.
    pub busy_before: f64,
    pub busy_during: f64,
    pub error: Option<String>,
}

/// The value of `--name value` or `--name=value`.
pub fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(k, arg)| {
        if *arg == name {
            args.get(k + 1).copied()
        } else {
            arg.strip_prefix(name)?.strip_prefix('=')
        }
    })
}

/// A TCP connection to `addr` from inside network namespace `netns` (the socket is made on
/// a thread that joined it; it stays there).
pub fn connect_in(netns: &str, addr: &str) -> anyhow::Result<TcpStream> {
    crate::shell::in_netns(netns, || {
        Ok(TcpStream::connect_timeout(
            &addr.parse()?,
            Duration::from_secs(2),
        )?)
    })
}

/// `cargo xtask bench lb [options]` (and its hidden `--client` / `--server` modes).
pub fn lb(args: &[&str]) -> anyhow::Result<()> {
    if args.contains(&"--client") {
        return load::client_main(args);
    }
    if args.contains(&"--server") {
        return load::server_main(args);
    }
    let options = Options::parse(args)?;
    if !nix::unistd::Uid::effective().is_root() {
        bail!("the bench needs root: it creates network namespaces, cgroups and BPF programs");
    }
    crate::setup()?;
    let binary = match &options.ferry {
        Some(binary) => binary.clone(),
        None => crate::benchkit::build_ferry()?,
    };
    for tool in [options.iptables_restore, "nft", "nsenter"] {
        if !rules::have(tool) {
            bail!("{tool} is missing (cargo xtask setup installs it)");
        }
    }
    topology::sweep_leftovers();
    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))?;

    let meta = report::capture_meta(&options, &binary);
    let started = Instant::now();
    let mut trials = Vec::new();
    for round in 0..options.rounds {
        for &n in &options.sizes {
            // Alternate: each round starts the rotation one implementation later.
            let k = options.impls.len();
            for step in 0..k {
                let imp = options.impls[(step + round as usize) % k];
                if STOP.load(Ordering::SeqCst) {
                    bail!("interrupted");
                }
                let trial = run_trial(&options, &binary, imp, n, round);
                println!("{}", report::progress(&trial));
                trials.push(trial);
            }
        }
    }
    let meta = meta.finish(started.elapsed());
    let (markdown, plot) = report::write(&options, &meta, &trials)?;
    println!("\nwrote {}", markdown.display());
    match plot {
        Some(plot) => println!("wrote {}", plot.display()),
        None => println!("no plot: gnuplot failed or is missing"),
    }
    Ok(())
}

/// Pairs of load slices alternated between ferry and a client outside its cgroup.
const PAIRED_SLICES: u32 = 24;
const PAIRED_SLICE: Duration = Duration::from_millis(250);
/// Each client's first slice, not counted: threads, caches and the connect paths warm up.
const WARM_SLICE: Duration = Duration::from_millis(500);

/// Ferry's connection rate over the physical limit's, from pairs of slices in ferry's own
/// sandbox (ABBA order): the "direct" client runs outside the LB cgroup, so no program sees its
/// sockets, and dials the endpoint addresses straight. Both clients stay up and take turns in
/// short slices, so the host's slow spells (hypervisor steal comes and goes over seconds) fall
/// on both alike; the median of the pairs' ratios leaves out a pair the machine stalled in.
fn paired_slices(
    topo: &topology::Topology,
    spec: &dyn Fn(Targets, Option<Duration>, u64) -> ClientSpec,
) -> anyhow::Result<ferry::Paired> {
    let mut direct = spec(Targets::Direct, Some(PAIRED_SLICE), 0);
    direct.cgroup = Some(topo.plain_cgroup.clone());
    // Side 0 dials the ClusterIPs through ferry, side 1 the endpoints straight.
    let mut clients = [
        load::SliceClient::start(&topo.client, &spec(Targets::Vips, Some(PAIRED_SLICE), 0))?,
        load::SliceClient::start(&topo.client, &direct)?,
    ];
    for client in &mut clients {
        client.slice(WARM_SLICE)?;
    }
    let mut ratios = Vec::new();
    for k in 0..PAIRED_SLICES {
        let order = if k % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut rates = [0.0; 2];
        for side in order {
            let slice = clients[side].slice(PAIRED_SLICE)?;
            if slice.errors > 0 {
                bail!("paired slices: {} failed connects", slice.errors);
            }
            rates[side] = slice.rate();
        }
        if rates[1] > 0.0 {
            ratios.push(rates[0] / rates[1]);
        }
    }
    ferry::Paired::of(ratios).context("paired slices: no direct connections")
}

/// Load run with BPF statistics on after ferry's timed one: the kernel time per `connect4`.
const STATS_LOAD: Duration = Duration::from_secs(2);

fn run_trial(options: &Options, binary: &Path, imp: Impl, n: u32, round: u32) -> Trial {
    let mut trial = Trial {
        round,
        n,
        imp,
        load: None,
        ferry: None,
        rules: None,
        spread: None,
        busy_before: 0.0,
        busy_during: 0.0,
        error: None,
    };
    if let Err(error) = trial_steps(options, binary, &mut trial) {
        trial.error = Some(format!("{error:#}"));
    }
    trial
}

fn trial_steps(options: &Options, binary: &Path, trial: &mut Trial) -> anyhow::Result<()> {
    let (n, imp) = (trial.n, trial.imp);
    let topo = topology::Topology::create(&format!("{}-{n}-{}", imp.name(), trial.round))?;
    let two_cpus = std::thread::available_parallelism().is_ok_and(|c| c.get() >= 2);
    let mut server = Server::start(&topo.backend, two_cpus.then_some(0))?;
    let changed = topology::changed_service(n);
    // Declared after `topo` and `server`, so it stops first.
    let mut daemon = None;
    match imp {
        Impl::Direct => {}
        Impl::Ferry => {
            let manifests = topo.work.join("manifests");
            ferry::write_manifests(&manifests, n)?;
            let (mut running, mut sync) = ferry::Ferry::start(binary, &topo, &manifests, n)?;
            running.change_one(changed, &mut sync)?;
            trial.ferry = Some(sync);
            daemon = Some(running);
        }
        Impl::Iptables => {
            let shape = rules::Shape::Iptables(options.iptables_restore);
            trial.rules = Some(rules::program(shape, &topo, n, changed)?);
        }
        Impl::Nftables => {
            trial.rules = Some(rules::program(rules::Shape::Nftables, &topo, n, changed)?);
        }
    }
    let spec = |targets, duration, count| ClientSpec {
        services: n,
        targets,
        duration,
        count,
        threads: if duration.is_some() {
            options.threads
        } else {
            1
        },
        cpu: two_cpus.then_some(1),
        cgroup: Some(topo.cgroup.clone()),
    };
    if imp != Impl::Direct {
        server.count()?;
        let probe = spec(Targets::One(changed), None, SPREAD_CONNECTS);
        let result = load::run_client(&topo.client, &probe, &topo.work, "spread")?;
        let hits = server.dump()?;
        trial.spread = Some(report::spread(
            &hits,
            &topology::endpoints(changed, true),
            result,
        ));
    }
    let before = procfs::cpu_jiffies();
    std::thread::sleep(Duration::from_secs(1));
    let mid = procfs::cpu_jiffies();
    trial.busy_before = procfs::busy_percent(before, mid);
    let targets = if imp == Impl::Direct {
        Targets::Direct
    } else {
        Targets::Vips
    };
    let run = spec(targets, Some(options.duration), 0);
    let daemon_cpu = |d: &Option<ferry::Ferry>| d.as_ref().and_then(|f| procfs::cpu_ms(f.pid()));
    let cpu_before = daemon_cpu(&daemon);
    trial.load = Some(load::run_client(&topo.client, &run, &topo.work, "load")?);
    trial.busy_during = procfs::busy_percent(mid, procfs::cpu_jiffies());
    if let (Some(sync), Some(before), Some(after)) =
        (trial.ferry.as_mut(), cpu_before, daemon_cpu(&daemon))
    {
        sync.idle_cpu_ms = after.saturating_sub(before);
    }
    if let Some(sync) = trial.ferry.as_mut() {
        sync.paired = Some(paired_slices(&topo, &spec)?);
        // A run of its own, so the statistics' own cost stays out of the rate above.
        let link = topo.pin_root().join("links").join("connect4");
        let _stats = bpfstats::Enabled::new()?;
        let before = bpfstats::run_stats(&link)?;
        let run = spec(Targets::Vips, Some(STATS_LOAD.min(options.duration)), 0);
        load::run_client(&topo.client, &run, &topo.work, "bpfstats")?;
        sync.connect4_ns = bpfstats::per_run(before, bpfstats::run_stats(&link)?);
    }
    drop(daemon);
    Ok(())
}
