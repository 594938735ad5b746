//! The load generator and the backend it dials, both run as hidden modes of the xtask binary
//! inside the bench's namespaces (`cargo xtask bench lb --client|--server ...`).
//!
//! The client: `threads` blocking `connect()` + `close()` loops (SO_LINGER 0, so a close is
//! an RST and leaves no TIME_WAIT), each connect timed; after a warm-up, for a fixed time or
//! count. Targets are spread over all N Services (each thread walks its own shuffled order),
//! so a rule walk that depends on a Service's position costs its average. It joins the LB
//! cgroup before opening any socket.
//!
//! The server: one listener on 0.0.0.0:port serving every endpoint address (they are all
//! local in its namespace) that accepts and closes. On `count` from stdin it starts counting
//! accepts per local address; on `dump` it prints them and stops.

use super::topology::{self, SERVICE_PORT, TARGET_PORT};
use anyhow::{Context, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, sockopt};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_millis(500);
/// How long a driven process may take beyond its own work to answer a command.
const ANSWER_MARGIN: Duration = Duration::from_secs(60);
/// Samples kept per thread (bounds memory whatever the rate).
const MAX_SAMPLES: usize = 20_000_000;

/// What the client dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// The ClusterIPs of all N Services.
    Vips,
    /// The endpoint addresses of all N Services, straight (no translation needed).
    Direct,
    /// Only the ClusterIP of Service `i`.
    One(u32),
}

impl Targets {
    fn arg(self) -> String {
        match self {
            Self::Vips => "vips".into(),
            Self::Direct => "direct".into(),
            Self::One(i) => format!("one:{i}"),
        }
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "vips" => Self::Vips,
            "direct" => Self::Direct,
            _ => Self::One(text.strip_prefix("one:").context("bad targets")?.parse()?),
        })
    }
}

/// One client run's result.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadResult {
    pub connects: u64,
    pub errors: u64,
    pub secs: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.connects as f64 / self.secs
        } else {
            0.0
        }
    }

    fn line(&self) -> String {
        format!(
            "connects={} errors={} secs={:.4} p50_us={:.2} p90_us={:.2} p99_us={:.2}",
            self.connects, self.errors, self.secs, self.p50_us, self.p90_us, self.p99_us
        )
    }

    fn parse(line: &str) -> anyhow::Result<Self> {
        let mut r = Self::default();
        for field in line.split_whitespace() {
            let (key, value) = field.split_once('=').context("bad client output")?;
            match key {
                "connects" => r.connects = value.parse()?,
                "errors" => r.errors = value.parse()?,
                "secs" => r.secs = value.parse()?,
                "p50_us" => r.p50_us = value.parse()?,
                "p90_us" => r.p90_us = value.parse()?,
                "p99_us" => r.p99_us = value.parse()?,
                _ => {}
            }
        }
        Ok(r)
    }
}

/// How a client run is bounded and where it runs.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub services: u32,
    pub targets: Targets,
    /// Measured time after the warm-up (`None`: `count` connects, no warm-up).
    pub duration: Option<Duration>,
    pub count: u64,
    pub threads: usize,
    pub cpu: Option<usize>,
    pub cgroup: Option<std::path::PathBuf>,
}

impl ClientSpec {
    /// The hidden-mode arguments after `bench lb`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--client".to_string(),
            format!("--services={}", self.services),
            format!("--targets={}", self.targets.arg()),
            format!("--count={}", self.count),
            format!("--threads={}", self.threads),
        ];
        if let Some(d) = self.duration {
            args.push(format!("--duration-ms={}", d.as_millis()));
        }
        if let Some(cpu) = self.cpu {
            args.push(format!("--cpu={cpu}"));
        }
        if let Some(cg) = &self.cgroup {
            args.push(format!("--cgroup={}", cg.display()));
        }
        args
    }

    fn parse(args: &[&str]) -> anyhow::Result<Self> {
        let get = |name: &str| super::flag(args, name);
        Ok(Self {
            services: get("--services").context("--services")?.parse()?,
            targets: Targets::parse(get("--targets").context("--targets")?)?,
            duration: get("--duration-ms")
                .map(|ms| ms.parse().map(Duration::from_millis))
                .transpose()?,
            count: get("--count").unwrap_or("0").parse()?,
            threads: get("--threads").unwrap_or("1").parse()?,
            cpu: get("--cpu").map(str::parse).transpose()?,
            cgroup: get("--cgroup").map(Into::into),
        })
    }
}

/// Runs the client in `netns` and returns its result; bounded by its own timer plus a margin.
pub fn run_client(
    netns: &str,
    spec: &ClientSpec,
    work: &std::path::Path,
    name: &str,
) -> anyhow::Result<LoadResult> {
    let exe = std::env::current_exe()?;
    let mut args = vec!["bench".to_string(), "lb".into()];
    args.extend(spec.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = topology::nsenter(netns, &exe.to_string_lossy(), &args);
    let limit = spec.duration.unwrap_or_default() + WARMUP + Duration::from_secs(60);
    let out = super::exec::timed(command, None, work, name, limit)?;
    let line = out
        .stdout
        .lines()
        .last()
        .context("client printed nothing")?;
    LoadResult::parse(line)
}

/// A client kept running between load slices of the caller's choosing: the hidden
/// `--client --slices` mode. Stopped on drop.
#[derive(Debug)]
pub struct SliceClient(Driven);

impl SliceClient {
    /// Starts the client of `spec` (its duration is ignored) in `netns`; it joins its cgroup,
    /// pins itself and waits for [`SliceClient::slice`].
    pub fn start(netns: &str, spec: &ClientSpec) -> anyhow::Result<Self> {
        let mut args = spec.args();
        args.push("--slices".into());
        let client = Driven::start(netns, &args, "the slice client")?;
        Ok(Self(client))
    }

    /// Runs the load for `duration` and returns what it measured.
    pub fn slice(&mut self, duration: Duration) -> anyhow::Result<LoadResult> {
        self.0.send(&format!("run {}", duration.as_millis()))?;
        LoadResult::parse(&self.0.read_line(duration + ANSWER_MARGIN)?)
    }
}

/// The hidden `--client` mode.
pub fn client_main(args: &[&str]) -> anyhow::Result<()> {
    let spec = ClientSpec::parse(args)?;
    if let Some(cgroup) = &spec.cgroup {
        // Before any socket exists: socket-LB programs act on sockets of the cgroup's tasks.
        std::fs::write(cgroup.join("cgroup.procs"), std::process::id().to_string())
            .context("joining the LB cgroup")?;
    }
    pin_to(spec.cpu)?;
    if !args.contains(&"--slices") {
        println!(
            "{}",
            measure(&spec, spec.duration.map(|d| (WARMUP, d)))?.line()
        );
        return Ok(());
    }
    println!("ready");
    std::io::stdout().flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let ms: u64 = line
            .trim()
            .strip_prefix("run ")
            .with_context(|| format!("slice client: bad command {line:?}"))?
            .parse()?;
        let result = measure(&spec, Some((Duration::ZERO, Duration::from_millis(ms))))?;
        println!("{}", result.line());
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// Runs `spec`'s connect loops: for the measured time after a warm-up when `timed` gives them,
/// else until `spec.count` connects.
fn measure(spec: &ClientSpec, timed: Option<(Duration, Duration)>) -> anyhow::Result<LoadResult> {
    let recording = Arc::new(AtomicBool::new(timed.is_none()));
    let stop = Arc::new(AtomicBool::new(false));
    // Timed runs stop on `stop`; counted ones after `per_thread` connects each.
    let per_thread = match timed {
        Some(_) => None,
        None => Some(spec.count.div_ceil(spec.threads.max(1) as u64)),
    };
    let workers: Vec<_> = (0..spec.threads.max(1))
        .map(|t| {
            let (recording, stop) = (recording.clone(), stop.clone());
            let spec = spec.clone();
            std::thread::spawn(move || worker(&spec, t as u64, per_thread, &recording, &stop))
        })
        .collect();
    let secs = match timed {
        Some((warmup, duration)) => {
            std::thread::sleep(warmup);
            let started = Instant::now();
            recording.store(true, Ordering::SeqCst);
            std::thread::sleep(duration);
            stop.store(true, Ordering::SeqCst);
            started.elapsed().as_secs_f64()
        }
        None => 0.0,
    };
    let started = Instant::now();
    let mut samples: Vec<u32> = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (s, e) = w
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))?;
        samples.extend(s);
        errors += e;
    }
    let secs = if timed.is_some() {
        secs
    } else {
        started.elapsed().as_secs_f64()
    };
    samples.sort_unstable();
    let pct = |p: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 * p) as usize).min(samples.len() - 1);
        f64::from(samples[i]) / 1000.0
    };
    Ok(LoadResult {
        connects: samples.len() as u64,
        errors,
        secs,
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
    })
}

/// One connect loop, until `stop` or `count` connects: returns the connect latencies (ns)
/// recorded and the failures.
fn worker(
    spec: &ClientSpec,
    thread: u64,
    count: Option<u64>,
    recording: &AtomicBool,
    stop: &AtomicBool,
) -> (Vec<u32>, u64) {
    let n = spec.services.max(1);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (thread + 1).wrapping_mul(0x2545_F491));
    let mut order: Vec<u32> = (0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let mut samples = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed)
        && count.is_none_or(|count| (samples.len() as u64) < count)
        && samples.len() < MAX_SAMPLES
    {
        let service = order[k % order.len()];
        k += 1;
        let addr = match spec.targets {
            Targets::Vips => topology::target(topology::vip(service), SERVICE_PORT),
            Targets::One(i) => topology::target(topology::vip(i), SERVICE_PORT),
            Targets::Direct => {
                let j = (rng.next() % u64::from(topology::ENDPOINTS)) as u32;
                topology::target(topology::endpoint(service, j), TARGET_PORT)
            }
        };
        let started = Instant::now();
        let connected = TcpStream::connect(SocketAddr::V4(addr));
        let took = started.elapsed();
        let record = recording.load(Ordering::Relaxed);
        match connected {
            Ok(stream) => {
                let _ = socket::setsockopt(&stream, sockopt::Linger, &linger);
                drop(stream);
                if record {
                    samples.push(u32::try_from(took.as_nanos()).unwrap_or(u32::MAX));
                }
            }
            Err(_) if record => errors += 1,
            Err(_) => {}
        }
        // Count mode stops on failures too, so a broken datapath cannot spin forever.
        if count.is_some_and(|count| errors >= count) {
            break;
        }
    }
    (samples, errors)
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn pin_to(cpu: Option<usize>) -> anyhow::Result<()> {
    let Some(cpu) = cpu else { return Ok(()) };
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning to CPU {cpu}"))
}

/// The hidden `--server` mode.
pub fn server_main(args: &[&str]) -> anyhow::Result<()> {
    let port: u16 = super::flag(args, "--port").unwrap_or("8080").parse()?;
    pin_to(super::flag(args, "--cpu").map(str::parse).transpose()?)?;
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
    )?;
    socket::listen(&fd, Backlog::new(4096)?)?;
    let listener = TcpListener::from(fd);
    let counts: Arc<Mutex<Option<BTreeMap<Ipv4Addr, u32>>>> = Arc::default();
    let control = counts.clone();
    std::thread::spawn(move || control_loop(&control));
    println!("listening");
    std::io::stdout().flush()?;
    loop {
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        let mut guard = counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = guard.as_mut()
            && let Ok(SocketAddr::V4(local)) = stream.local_addr()
        {
            *map.entry(*local.ip()).or_default() += 1;
        }
    }
}

/// Reads `count` / `dump` lines; exits the process when stdin closes.
fn control_loop(counts: &Mutex<Option<BTreeMap<Ipv4Addr, u32>>>) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let mut guard = counts.lock().unwrap_or_else(|e| e.into_inner());
        match line.trim() {
            "count" => *guard = Some(BTreeMap::new()),
            "dump" => {
                let map = guard.take().unwrap_or_default();
                let fields: Vec<String> = map.iter().map(|(ip, n)| format!("{ip}={n}")).collect();
                println!("dump {}", fields.join(" "));
                let _ = std::io::stdout().flush();
            }
            _ => {}
        }
    }
    std::process::exit(0);
}

/// The backend server process, stopped on drop.
#[derive(Debug)]
pub struct Server(Driven);

impl Server {
    pub fn start(netns: &str, cpu: Option<usize>) -> anyhow::Result<Self> {
        let mut args = vec!["--server".to_string(), format!("--port={TARGET_PORT}")];
        if let Some(cpu) = cpu {
            args.push(format!("--cpu={cpu}"));
        }
        Ok(Self(Driven::start(netns, &args, "the backend server")?))
    }

    /// Starts counting accepts per endpoint address.
    pub fn count(&mut self) -> anyhow::Result<()> {
        self.0.send("count")
    }

    /// Accepts per endpoint address since [`Server::count`].
    pub fn dump(&mut self) -> anyhow::Result<BTreeMap<Ipv4Addr, u32>> {
        self.0.send("dump")?;
        let line = self.0.read_line(ANSWER_MARGIN)?;
        let rest = line.trim().strip_prefix("dump").context("bad dump")?;
        rest.split_whitespace()
            .map(|f| {
                let (ip, n) = f.split_once('=').context("bad dump field")?;
                Ok((ip.parse()?, n.parse()?))
            })
            .collect()
    }
}

/// A hidden mode of this binary (`bench lb <args>`) run in a namespace and driven by lines on
/// its stdin; it says it is ready with its first line. Killed on drop.
#[derive(Debug)]
struct Driven {
    what: &'static str,
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Driven {
    fn start(netns: &str, args: &[String], what: &'static str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut all = vec!["bench", "lb"];
        all.extend(args.iter().map(String::as_str));
        let mut child = topology::nsenter(netns, &exe.to_string_lossy(), &all)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut driven = Self {
            what,
            child,
            stdin,
            stdout,
        };
        let first = driven.read_line(ANSWER_MARGIN)?;
        if !matches!(first.trim(), "listening" | "ready") {
            bail!("{what} did not start: {first:?}");
        }
        Ok(driven)
    }

    /// The next line, which must come within `limit`: a client whose `connect()` hangs on a
    /// broken datapath stops the bench instead of stalling it.
    fn read_line(&mut self, limit: Duration) -> anyhow::Result<String> {
        // Lines are written whole and flushed, so a line has arrived once anything has.
        if self.stdout.buffer().is_empty() {
            let mut fds = [PollFd::new(
                self.stdout.get_ref().as_fd(),
                PollFlags::POLLIN,
            )];
            let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, timeout).with_context(|| format!("waiting for {}", self.what))? == 0 {
                bail!("{} said nothing within {limit:?}", self.what);
            }
        }
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("{} exited", self.what);
        }
        Ok(line)
    }

    fn send(&mut self, command: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        Ok(())
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
