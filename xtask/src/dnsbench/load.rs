//! One dnsperf run, pinned to the load core, and what it reports. Latency percentiles come
//! from dnsperf's verbose mode (`-v`), which prints every response's latency in µs
//! resolution; dnsperf itself only summarizes average, min, max and standard deviation.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// dnsperf's settings for a run.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub port: u16,
    pub duration: Duration,
    pub clients: u32,
    pub outstanding: u32,
    /// `-Q`: at most this many queries per second.
    pub max_qps: Option<u64>,
    /// The core dnsperf runs on.
    pub cpu: Option<usize>,
}

/// What a run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    pub qps: f64,
    pub sent: u64,
    pub lost: u64,
    pub avg_ms: f64,
    /// From the per-response latencies (`-v` runs only).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Responses with rcodes other than NOERROR / NXDOMAIN.
    pub other_rcodes: u64,
}

impl Spec {
    fn command(&self, queries: &Path, verbose: bool) -> Command {
        let mut command = match self.cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string(), "dnsperf"]);
                c
            }
            None => Command::new("dnsperf"),
        };
        command.args([
            "-s",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-d",
            &queries.to_string_lossy(),
            "-l",
            &format!("{:.1}", self.duration.as_secs_f64()),
            "-c",
            &self.clients.to_string(),
            "-T",
            "1",
            "-q",
            &self.outstanding.to_string(),
            "-t",
            "2",
        ]);
        if let Some(qps) = self.max_qps {
            command.args(["-Q", &qps.to_string()]);
        }
        if verbose {
            command.arg("-v");
        }
        command
    }
}

/// Runs dnsperf with `spec` over `queries`; with `verbose`, per-response latencies go to
/// `latencies` (a file: at 100k qps they are millions of lines) and give the percentiles.
pub fn run(spec: &Spec, queries: &Path, latencies: Option<&Path>) -> anyhow::Result<Run> {
    let mut command = spec.command(queries, latencies.is_some());
    let output = match latencies {
        Some(path) => {
            let file = std::fs::File::create(path)?;
            let summary = command
                .stdout(file)
                .stderr(Stdio::piped())
                .output()
                .context("running dnsperf (cargo xtask setup installs it)")?;
            if !summary.status.success() {
                bail!(
                    "dnsperf failed: {}",
                    String::from_utf8_lossy(&summary.stderr)
                );
            }
            std::fs::read_to_string(path)?
        }
        None => {
            let output = command
                .output()
                .context("running dnsperf (cargo xtask setup installs it)")?;
            if !output.status.success() {
                bail!(
                    "dnsperf failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };
    let mut run = summary(&output)?;
    if latencies.is_some() {
        let mut us = response_latencies_us(&output);
        if us.is_empty() {
            bail!("dnsperf -v printed no response latencies");
        }
        us.sort_unstable();
        run.p50_ms = Some(percentile(&us, 0.50) as f64 / 1000.0);
        run.p99_ms = Some(percentile(&us, 0.99) as f64 / 1000.0);
    }
    if let Some(path) = latencies {
        let _ = std::fs::remove_file(path);
    }
    Ok(run)
}

/// dnsperf's `Statistics:` block.
fn summary(text: &str) -> anyhow::Result<Run> {
    let field = |name: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .map(str::trim)
    };
    let first_number = |name: &str| -> anyhow::Result<f64> {
        field(name)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("dnsperf printed no {name:?}"))
    };
    let rcodes = field("Response codes:").unwrap_or_default();
    let other_rcodes = rcodes
        .split(", ")
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let code = words.next()?;
            let count: u64 = words.next()?.parse().ok()?;
            (code != "NOERROR" && code != "NXDOMAIN").then_some(count)
        })
        .sum();
    Ok(Run {
        qps: first_number("Queries per second:")?,
        sent: first_number("Queries sent:")? as u64,
        lost: first_number("Queries lost:")? as u64,
        avg_ms: first_number("Average Latency (s):")? * 1000.0,
        p50_ms: None,
        p99_ms: None,
        other_rcodes,
    })
}

/// Latencies of the `> RCODE name type seconds` lines, in µs. Timed-out queries (`> T`) are
/// not responses; they show as lost.
fn response_latencies_us(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("> "))
        .filter(|l| !l.starts_with("T ") && !l.starts_with("I "))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .map(|s| (s * 1_000_000.0).round() as u64)
        .collect()
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_and_latencies() {
        let text = "> NOERROR svc-1.bench.svc.cluster.local A 0.000101\n\
                    > NXDOMAIN x.cluster.local A 0.000300\n\
                    > T svc-2.bench.svc.cluster.local A\n\
                    Statistics:\n\n  Queries sent:         446016\n\
                    \x20 Queries completed:    446000 (100.00%)\n\
                    \x20 Queries lost:         16 (0.00%)\n\n\
                    \x20 Response codes:       NOERROR 423724 (95.00%), NXDOMAIN 22276 (5.00%), SERVFAIL 3 (0.00%)\n\
                    \x20 Run time (s):         5.000290\n\
                    \x20 Queries per second:   89198.026892\n\n\
                    \x20 Average Latency (s):  0.001101 (min 0.000019, max 0.003788)\n";
        let run = summary(text).unwrap();
        assert_eq!(run.sent, 446016);
        assert_eq!(run.lost, 16);
        assert_eq!(run.other_rcodes, 3);
        assert!((run.qps - 89198.03).abs() < 0.01);
        assert!((run.avg_ms - 1.101).abs() < 1e-9);
        let mut us = response_latencies_us(text);
        us.sort_unstable();
        assert_eq!(us, [101, 300]);
        assert_eq!(percentile(&us, 0.99), 300);
        assert_eq!(percentile(&us, 0.50), 101);
    }
}
