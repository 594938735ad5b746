//! The bench's output: a progress line per run, then `dns.md` (medians, targets, memory, how
//! it was measured, every run) in the output folder.

use super::{Memory, Options, Server, Trial, fixture};
use crate::benchkit::{command_line, median as median_of, opt, thousands};
use crate::shell;
use std::fmt::Write;
use std::path::PathBuf;

pub use crate::benchkit::Meta;

/// The facts at the start of the run: the machine's, and NSD's and dnsperf's versions.
pub fn capture_meta(binary: &std::path::Path) -> Meta {
    let nsd = super::servers::which("nsd")
        .map(|p| command_line(&p.to_string_lossy(), &["-v"]))
        .unwrap_or_default();
    let dnsperf = shell::command("dnsperf", &["-h"])
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            text.lines()
                .find(|l| l.starts_with("Version"))
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    Meta::capture(binary, format!("{nsd}; dnsperf {dnsperf}"))
}

fn mb(kb: f64) -> String {
    format!("{:.1} MB", kb / 1024.0)
}

fn us(x: f64) -> String {
    format!("{x:.2} µs")
}

fn ms(x: f64) -> String {
    format!("{x:.3} ms")
}

/// One line per finished run.
pub fn progress(t: &Trial) -> String {
    let mut line = format!(
        "round {} {:<5} {:<13}",
        t.round + 1,
        t.server.name(),
        match t.rate {
            None => "peak".to_string(),
            Some(q) => format!("at {} qps", thousands(q as f64)),
        }
    );
    if let Some(r) = &t.run {
        let _ = write!(line, " {} qps avg {}", thousands(r.qps), ms(r.avg_ms));
        if let Some(p99) = r.p99_ms {
            let _ = write!(line, " p99 {}", ms(p99));
        }
        let _ = write!(line, " lost {}", r.lost);
    }
    let _ = write!(
        line,
        " | server CPU {:.0}% ({}/query) RSS {} | busy {:.0}%/{:.0}%",
        t.server_cpu,
        opt(t.cpu_per_query_us, us),
        mb(t.rss_kb as f64),
        t.busy_before,
        t.busy_during
    );
    if let Some(e) = &t.error {
        let _ = write!(line, " | ERROR {e}");
    }
    line
}

/// The median of what `f` picks from the successful peak (`half == false`) or half-rate
/// runs of `server`.
pub fn median(
    trials: &[Trial],
    server: Server,
    half: bool,
    f: impl Fn(&Trial) -> Option<f64>,
) -> Option<f64> {
    median_of(
        trials
            .iter()
            .filter(|t| t.server == server && t.rate.is_some() == half && t.error.is_none())
            .filter_map(f),
    )
}

/// Medians of one server.
#[derive(Debug, Clone, Copy, Default)]
struct Row {
    peak: Option<f64>,
    peak_avg: Option<f64>,
    peak_cpu: Option<f64>,
    cpu_per_query: Option<f64>,
    peak_lost: Option<f64>,
    half_offered: Option<f64>,
    half_qps: Option<f64>,
    half_avg: Option<f64>,
    half_p50: Option<f64>,
    half_p99: Option<f64>,
    half_lost: Option<f64>,
    rss: Option<f64>,
    pss: Option<f64>,
}

fn row(trials: &[Trial], server: Server) -> Row {
    let peak = |f: &dyn Fn(&Trial) -> Option<f64>| median(trials, server, false, f);
    let half = |f: &dyn Fn(&Trial) -> Option<f64>| median(trials, server, true, f);
    Row {
        peak: peak(&|t| t.run.map(|r| r.qps)),
        peak_avg: peak(&|t| t.run.map(|r| r.avg_ms)),
        peak_cpu: peak(&|t| Some(t.server_cpu)),
        cpu_per_query: peak(&|t| t.cpu_per_query_us),
        peak_lost: peak(&|t| t.run.map(|r| r.lost as f64)),
        half_offered: half(&|t| t.rate.map(|q| q as f64)),
        half_qps: half(&|t| t.run.map(|r| r.qps)),
        half_avg: half(&|t| t.run.map(|r| r.avg_ms)),
        half_p50: half(&|t| t.run.and_then(|r| r.p50_ms)),
        half_p99: half(&|t| t.run.and_then(|r| r.p99_ms)),
        half_lost: half(&|t| t.run.map(|r| r.lost as f64)),
        rss: peak(&|t| Some(t.rss_kb as f64)),
        pss: peak(&|t| Some(t.pss_kb as f64)),
    }
}

/// Writes `dns.md` under `options.out`.
pub fn write(
    options: &Options,
    meta: &Meta,
    mix: [f64; 3],
    trials: &[Trial],
    memory: Option<&Memory>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&options.out)?;
    let ferry = row(trials, Server::Ferry);
    let nsd = row(trials, Server::Nsd);
    let mut md = String::new();
    header(&mut md, options, meta);
    results(&mut md, &ferry, &nsd);
    targets(&mut md, &ferry, &nsd, memory);
    if let Some(memory) = memory {
        memory_table(&mut md, memory);
    }
    method(&mut md, options, mix);
    every_run(&mut md, trials);
    let path = options.out.join("dns.md");
    std::fs::write(&path, md)?;
    Ok(path)
}

fn header(md: &mut String, options: &Options, meta: &Meta) {
    let _ = write!(
        md,
        "# Cluster DNS: ferry against NSD\n\n\
         Written by `cargo xtask bench dns` on {date} (tree at {rev}; ferry binary {path}, built {built}). \
         Machine: {machine}; {tools}. Medians of {rounds} round(s), servers alternating; \
         {secs} s of load per run. Machine load average (1/5/15 min) {start} at the start, \
         {end} at the end; the run took {took:.0} min; the CPU load around every run is in the last table.\n\n",
        date = meta.date,
        rev = meta.revision,
        path = meta.binary_path,
        built = meta.binary,
        machine = meta.machine,
        tools = meta.tools,
        rounds = options.rounds,
        secs = options.duration.as_secs_f64(),
        start = meta.load_start,
        end = meta.load_end,
        took = meta.took.as_secs_f64() / 60.0,
    );
}

fn results(md: &mut String, ferry: &Row, nsd: &Row) {
    md.push_str(
        "## Results\n\n\
         | server | peak qps | of NSD | avg latency at peak | server CPU at peak | CPU per query | lost at peak | half-peak rate: offered / achieved qps | avg | p50 | p99 | lost | RSS (PSS) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (server, r) in [(Server::Ferry, ferry), (Server::Nsd, nsd)] {
        let share = match (r.peak, nsd.peak) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.0} %", a * 100.0 / b),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {share} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} ({}) |",
            server.name(),
            opt(r.peak, thousands),
            opt(r.peak_avg, ms),
            opt(r.peak_cpu, |x| format!("{x:.0} %")),
            opt(r.cpu_per_query, us),
            opt(r.peak_lost, thousands),
            opt(r.half_offered, thousands),
            opt(r.half_qps, thousands),
            opt(r.half_avg, ms),
            opt(r.half_p50, ms),
            opt(r.half_p99, ms),
            opt(r.half_lost, thousands),
            opt(r.rss, mb),
            opt(r.pss, mb),
        );
    }
}

fn targets(md: &mut String, ferry: &Row, nsd: &Row, memory: Option<&Memory>) {
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let share = ferry.peak.zip(nsd.peak).map(|(a, b)| a / b);
    let per_object = memory.map(Memory::per_object);
    let _ = write!(
        md,
        "\n## Targets\n\n| target | measured | |\n|---|---|---|\n\
         | at least 100,000 qps on one core for cluster names (CoreDNS: about 17,000 per core) | {peak} qps | {v1} |\n\
         | at least 75 % of NSD's qps, side by side | {share} | {v2} |\n\
         | p99 under 1 ms at half the peak rate | {p99} | {v3} |\n\
         | RSS growth at most 1 KB per Service + endpoint at 10,000 Services with 100,000 endpoints | {mem} | {v4} |\n",
        peak = opt(ferry.peak, thousands),
        v1 = verdict(ferry.peak.map(|q| q >= 100_000.0)),
        share = opt(share, |x| format!("{:.0} %", x * 100.0)),
        v2 = verdict(share.map(|x| x >= 0.75)),
        p99 = opt(ferry.half_p99, ms),
        v3 = verdict(ferry.half_p99.map(|p| p < 1.0)),
        mem = opt(per_object, |b| format!("{b:.0} bytes per object")),
        v4 = verdict(
            memory
                .filter(|m| m.services >= 10_000)
                .map(|m| m.per_object() <= 1024.0)
        ),
    );
    if ferry
        .peak_cpu
        .zip(nsd.peak_cpu)
        .is_some_and(|(a, b)| a.min(b) < 80.0)
    {
        md.push_str(
            "\n**The servers did not get core 0 to themselves** (server CPU at peak well under \
             100 %: other processes ran there too). The qps are what each got of a shared core, \
             and the latency percentiles mostly measure how long a server waited for the CPU.\n",
        );
    }
    if let (Some(a), Some(b)) = (ferry.cpu_per_query, nsd.cpu_per_query) {
        let _ = write!(
            md,
            "\nThe qps figures depend on how much of core 0 each server got (other processes \
             share the machine). Per query answered at peak, ferry used {} of CPU and NSD {} \
             ({:.0} %): with a whole core that is about {} and {} qps, if dnsperf kept up.\n",
            us(a),
            us(b),
            a * 100.0 / b,
            thousands(1e6 / a),
            thousands(1e6 / b),
        );
    }
}

fn memory_table(md: &mut String, m: &Memory) {
    let _ = write!(
        md,
        "\n## Memory (ferry)\n\n\
         | manifests | RSS once ready | ready in |\n|---|---:|---:|\n\
         | none | {empty} | – |\n\
         | {svc} ClusterIP Services, an EndpointSlice of {e} endpoints each ({eps} endpoints) | {full} (peak {hwm}) | {ready:.2} s |\n\n\
         Growth: {growth} for {objects} Services + endpoints = **{per:.0} bytes per object** \
         (CoreDNS's published figure: about 850 bytes per object).\n",
        empty = mb(m.empty_rss_kb as f64),
        svc = thousands(f64::from(m.services)),
        e = fixture::ENDPOINTS,
        eps = thousands(f64::from(m.services * fixture::ENDPOINTS)),
        full = mb(m.full_rss_kb as f64),
        hwm = mb(m.full_hwm_kb as f64),
        ready = m.ready.as_secs_f64(),
        growth = mb(m.full_rss_kb as f64 - m.empty_rss_kb as f64),
        objects = thousands(m.objects as f64),
        per = m.per_object(),
    );
}

/// `mix`: shares of positive, NODATA and NXDOMAIN queries in the query file (%).
fn method(md: &mut String, options: &Options, mix: [f64; 3]) {
    let _ = write!(
        md,
        "\n## How it was measured\n\n\
         **Zone** (`xtask/src/dnsbench/fixture.rs`): namespace `bench` with 1,000 ClusterIP \
         Services `svc-<i>` (one named port `http` 80/TCP), 50 headless Services `hl-<h>` with \
         an EndpointSlice of 10 ready endpoints without hostnames (port `http` 8080/TCP), and 50 \
         ExternalNames `ext-<x>` aimed at `svc-<x>.bench.svc.cluster.local` (inside the zone, \
         so both servers complete the CNAME from their own data and nothing is forwarded). \
         ferry reads them as manifests; NSD serves the zone file the bench writes with the same \
         names and records as ferry's model compiles (A, SRV per named port and on the bare \
         name with CoreDNS's weights, endpoint names, CNAMEs, `dns-version` TXT, ferry's SOA \
         and NS; TTL 30). Before any load the bench asks both servers the apex SOA, \
         `dns-version` and 120 queries of the mix with `dig` and stops unless rcode and the \
         answer and authority sections agree (records sorted, SOA serial aside).\n\n\
         **Queries**: a file of 20,000 lines that dnsperf loops over: {pos:.0} % positive A/SRV \
         (ClusterIP A, `_http._tcp` SRV and bare-name SRV; headless A (10 records) and SRV \
         (10 records, 10 additional A); endpoint A; ExternalName A, answered CNAME + A), \
         {nodata:.0} % NODATA (AAAA of a ClusterIP Service, TXT of a headless one), {nx:.0} % \
         NXDOMAIN (unknown Services, and search-path expansions such as \
         `svc-1.bench.svc.cluster.local.bench.svc.cluster.local`). No EDNS (dnsperf's default).\n\n\
         **Servers**, both started once and kept running, each pinned to CPU 0 with `taskset -c 0` \
         (every thread and process): ferry is the release binary, `ferry run --manifests DIR \
         --no-lb --no-ingress --dns-listen 127.0.0.1:PORT --dns-upstream 127.0.0.1:9 \
         --admin-listen 127.0.0.1:PORT`, ready when `/readyz` answers 200. NSD runs in the \
         foreground (`nsd -d -c nsd.conf`) from its own config: `server-count: 1`, \
         `rrl-ratelimit: 0` and `rrl-whitelist-ratelimit: 0` (Debian builds NSD with response \
         rate limiting, which would drop most of a loopback benchmark), no chroot, no user \
         switch, its pid file and state in the bench's temporary folder.\n\n\
         **Load**: `taskset -c 1 dnsperf -s 127.0.0.1 -p PORT -d queries.txt -l {secs} -c {clients} \
         -T 1 -q {outstanding} -t 2`, one untimed {warm} s run per server first. *Peak*: no rate \
         limit; dnsperf keeps {outstanding} queries outstanding, so the server's core is the \
         bottleneck when *server CPU* is near 100 %. *Half-peak*: `-Q` at half that server's median \
         peak, with `-v`: dnsperf prints every response's latency (µs resolution) and the \
         bench takes p50/p99 over all of them (nearest rank; timed-out queries count as lost, \
         not in the percentiles). dnsperf itself reports only average, min, max and standard \
         deviation. Latency includes dnsperf's own queueing on its core. Rounds alternate which \
         server goes first. *Server CPU*: user + system time of the server's processes during \
         the run over its wall time; *CPU per query* divides that time by the queries answered \
         (from 10 ms clock ticks), a cost per query that holds even when other processes \
         share the server's core (the machine is shared: see the load figures). *RSS (PSS)*: after each peak run, `VmRSS` summed over the \
         server's processes (NSD runs a main, an xfrd and a server process) and the PSS from \
         `smaps_rollup` (shared pages split between processes, so it adds up).\n\n\
         **Memory**: ferry alone, started on an empty manifest folder, then on {msvc} ClusterIP \
         Services (one named port) each with an EndpointSlice of 10 ready endpoints \
         (100,000 endpoints at 10,000), 1 s after `/readyz` and after one query for the last \
         Service; *per object* is the RSS growth over Services + endpoints. DNS names come from \
         the Services; the endpoints are held by the model (ferry keeps no per-endpoint DNS \
         names for ClusterIP Services, as CoreDNS does).\n",
        pos = mix[0],
        nodata = mix[1],
        nx = mix[2],
        secs = options.duration.as_secs_f64(),
        clients = options.clients,
        outstanding = options.outstanding,
        warm = super::WARMUP.as_secs(),
        msvc = thousands(f64::from(options.memory_services)),
    );
}

fn every_run(md: &mut String, trials: &[Trial]) {
    md.push_str(
        "\n## Every run\n\n\
         | round | server | run | qps | avg | p50 / p99 | sent / lost | other rcodes | server CPU (per query) | RSS | CPU busy before / during |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for t in trials {
        let kind = match t.rate {
            None => "peak".to_string(),
            Some(q) => format!("-Q {}", thousands(q as f64)),
        };
        let (qps, avg, pct, lost, other) = match (&t.run, &t.error) {
            (_, Some(e)) => (
                format!("ERROR: {}", e.replace('|', "/")),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
            ),
            (Some(r), None) => (
                thousands(r.qps),
                ms(r.avg_ms),
                match (r.p50_ms, r.p99_ms) {
                    (Some(a), Some(b)) => format!("{a:.3} / {b:.3} ms"),
                    _ => "–".into(),
                },
                format!("{} / {}", thousands(r.sent as f64), r.lost),
                r.other_rcodes.to_string(),
            ),
            (None, None) => ("–".into(), "–".into(), "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {kind} | {qps} | {avg} | {pct} | {lost} | {other} | {:.0} % ({}) | {} | {:.0} % / {:.0} % |",
            t.round + 1,
            t.server.name(),
            t.server_cpu,
            opt(t.cpu_per_query_us, us),
            mb(t.rss_kb as f64),
            t.busy_before,
            t.busy_during
        );
    }
}
