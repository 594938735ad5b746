//! The bench's output: a progress line per trial, then `lb.md` (medians, targets, every
//! trial) and `lb.png` (gnuplot) in the output folder.

mod method;
mod plot;

use super::load::LoadResult;
use super::{Impl, Options, Trial};
use crate::benchkit::{command_line, median as median_of, opt, thousands};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::benchkit::Meta;

/// The facts at the start of the run: the machine's, and the rule tools' versions.
pub fn capture_meta(options: &Options, binary: &std::path::Path) -> Meta {
    let tools = format!(
        "{}, {}",
        command_line(
            options.iptables_restore.trim_end_matches("-restore"),
            &["--version"]
        ),
        command_line("nft", &["--version"])
    );
    Meta::capture(binary, tools)
}

/// The spread check's verdict: every hit on an expected endpoint, each within ±50 % of fair.
pub fn spread(
    hits: &BTreeMap<Ipv4Addr, u32>,
    expected: &[Ipv4Addr],
    run: LoadResult,
) -> (String, bool) {
    let stray: u32 = hits
        .iter()
        .filter(|(ip, _)| !expected.contains(ip))
        .map(|(_, n)| n)
        .sum();
    let counts: Vec<u32> = expected
        .iter()
        .map(|ip| hits.get(ip).copied().unwrap_or(0))
        .collect();
    let total: u32 = counts.iter().sum();
    let fair = f64::from(total) / expected.len() as f64;
    let (min, max) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    let ok = stray == 0
        && run.errors == 0
        && total > 0
        && counts
            .iter()
            .all(|c| (f64::from(*c) - fair).abs() <= fair * 0.5);
    let used = counts.iter().filter(|c| **c > 0).count();
    let text = format!(
        "{used}/{} endpoints, {min}..{max} each{}{}",
        expected.len(),
        if stray > 0 {
            format!(", {stray} to removed/unknown")
        } else {
            String::new()
        },
        if run.errors > 0 {
            format!(", {} failed", run.errors)
        } else {
            String::new()
        },
    );
    (text, ok)
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else if ms >= 0.1 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.0} µs", ms * 1000.0)
    }
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// One line per finished trial.
pub fn progress(t: &Trial) -> String {
    let mut line = format!("round {} N={} {:<8}", t.round + 1, t.n, t.imp.name());
    if let Some(f) = &t.ferry {
        let _ = write!(
            line,
            " full {} (ready {}) change {} (e2e {}) RSS {}",
            ms(f.full_sync),
            ms(f.start_to_ready),
            ms(f.change),
            ms(f.change_e2e),
            mb(f.rss_kb)
        );
        if let Some(ns) = f.connect4_ns {
            let _ = write!(line, " connect4 {ns:.0} ns");
        }
        if let Some(p) = f.paired {
            let _ = write!(
                line,
                " of direct {:.1} % ({} pairs, quartiles {:.1}-{:.1} %)",
                p.median * 100.0,
                p.pairs,
                p.quartiles.0 * 100.0,
                p.quartiles.1 * 100.0
            );
        }
    }
    if let Some(r) = &t.rules {
        let _ = write!(line, " full {} change {}", ms(r.full), ms(r.change));
    }
    if let Some(l) = &t.load {
        let _ = write!(
            line,
            " | {} conn/s p50 {:.1} µs p99 {:.1} µs err {}",
            thousands(l.rate()),
            l.p50_us,
            l.p99_us,
            l.errors
        );
    }
    if let Some((text, ok)) = &t.spread {
        let _ = write!(line, " | spread {}{text}", if *ok { "" } else { "BAD " });
    }
    let _ = write!(line, " | busy {:.0}%/{:.0}%", t.busy_before, t.busy_during);
    if let Some(e) = &t.error {
        let _ = write!(line, " | ERROR {e}");
    }
    line
}

/// The median of the figures `f` picks from the successful trials of (n, imp).
fn median(trials: &[Trial], n: u32, imp: Impl, f: impl Fn(&Trial) -> Option<f64>) -> Option<f64> {
    median_of(
        trials
            .iter()
            .filter(|t| t.n == n && t.imp == imp && t.error.is_none())
            .filter_map(f),
    )
}

/// Medians of one (N, implementation).
#[derive(Debug, Clone, Copy, Default)]
struct Row {
    full: Option<f64>,
    ready: Option<f64>,
    change: Option<f64>,
    change_e2e: Option<f64>,
    rate: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    rss_kb: Option<f64>,
    hwm_kb: Option<f64>,
    tool_kb: Option<f64>,
    kernel_kb: Option<f64>,
    connect4_ns: Option<f64>,
    /// Median over rounds of this round's rate over direct's in the same round.
    of_direct: Option<f64>,
    /// The same against iptables.
    of_iptables: Option<f64>,
}

fn row(trials: &[Trial], n: u32, imp: Impl) -> Row {
    let m = |f: &dyn Fn(&Trial) -> Option<f64>| median(trials, n, imp, f);
    let secs = |d: Duration| d.as_secs_f64();
    Row {
        full: m(&|t| {
            t.ferry
                .as_ref()
                .map(|f| secs(f.full_sync))
                .or(t.rules.as_ref().map(|r| secs(r.full)))
        }),
        ready: m(&|t| t.ferry.as_ref().map(|f| secs(f.start_to_ready))),
        change: m(&|t| {
            t.ferry
                .as_ref()
                .map(|f| secs(f.change))
                .or(t.rules.as_ref().map(|r| secs(r.change)))
        }),
        change_e2e: m(&|t| t.ferry.as_ref().map(|f| secs(f.change_e2e))),
        rate: m(&|t| t.load.map(|l| l.rate())),
        p50: m(&|t| t.load.map(|l| l.p50_us)),
        p99: m(&|t| t.load.map(|l| l.p99_us)),
        rss_kb: m(&|t| t.ferry.as_ref().map(|f| f.rss_kb as f64)),
        hwm_kb: m(&|t| t.ferry.as_ref().map(|f| f.hwm_kb as f64)),
        tool_kb: m(&|t| {
            t.rules
                .as_ref()
                .map(|r| r.tool_rss_full_kb.max(r.tool_rss_change_kb) as f64)
        }),
        kernel_kb: m(&|t| {
            t.ferry
                .as_ref()
                .map(|f| f.kernel_delta_kb as f64)
                .or(t.rules.as_ref().map(|r| r.kernel_delta_kb as f64))
        }),
        connect4_ns: m(&|t| t.ferry.as_ref().and_then(|f| f.connect4_ns)),
        of_direct: m(&|t| {
            t.ferry
                .as_ref()
                .and_then(|f| f.paired.map(|p| p.median))
                .or_else(|| paired(trials, t, Impl::Direct))
        }),
        of_iptables: m(&|t| paired(trials, t, Impl::Iptables)),
    }
}

/// `t`'s connection rate over `other`'s in the same round and N: the two ran minutes apart at
/// most, so a machine whose speed drifts over a run moves both alike.
fn paired(trials: &[Trial], t: &Trial, other: Impl) -> Option<f64> {
    let rate = t.load?.rate();
    let base = trials
        .iter()
        .find(|o| o.n == t.n && o.round == t.round && o.imp == other && o.error.is_none())?
        .load?
        .rate();
    (base > 0.0).then(|| rate / base)
}

fn dur(x: Option<f64>) -> String {
    opt(x, |s| ms(Duration::from_secs_f64(s)))
}

/// Writes `lb.md` and (if gnuplot works) `lb.png` under `options.out`.
pub fn write(
    options: &Options,
    meta: &Meta,
    trials: &[Trial],
) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    std::fs::create_dir_all(&options.out)?;
    let rows: BTreeMap<(u32, Impl), Row> = options
        .sizes
        .iter()
        .flat_map(|n| Impl::ALL.iter().map(move |i| (*n, *i)))
        .map(|(n, i)| ((n, i), row(trials, n, i)))
        .collect();
    let plot = plot::draw(options, &rows_for_plot(&rows));
    let mut md = String::new();
    header(&mut md, options, meta);
    results_table(&mut md, options, &rows);
    targets(&mut md, options, &rows);
    if plot.is_some() {
        md.push_str("\n![connection rate, connect latency and sync time against N](lb.png)\n");
    }
    md.push_str(method::METHOD);
    trial_table(&mut md, trials);
    let path = options.out.join("lb.md");
    std::fs::write(&path, md)?;
    Ok((path, plot))
}

fn rows_for_plot(rows: &BTreeMap<(u32, Impl), Row>) -> Vec<plot::Point> {
    rows.iter()
        .map(|((n, imp), r)| plot::Point {
            n: *n,
            imp: *imp,
            rate: r.rate,
            p50: r.p50,
            p99: r.p99,
            full: r.full,
            change: r.change,
        })
        .collect()
}

fn header(md: &mut String, options: &Options, meta: &Meta) {
    let _ = write!(
        md,
        "# Service load balancing: ferry against kube-proxy's iptables and nftables shapes\n\n\
         Written by `cargo xtask bench lb` on {date} (tree at {rev}; ferry binary {path}, built {built}). Machine: {machine}; {tools}. \
         N Services of 10 endpoints each; medians of {rounds} round(s), implementations \
         alternating; {secs} s of load per trial, {threads} client thread(s). \
         Machine load average (1/5/15 min) {start} at the start, {end} at the end; the run took {took:.0} min; \
         the per-trial CPU load is in the last table.\n\n",
        date = meta.date,
        rev = meta.revision,
        built = meta.binary,
        path = meta.binary_path,
        machine = meta.machine,
        tools = meta.tools,
        rounds = options.rounds,
        secs = options.duration.as_secs_f64(),
        threads = options.threads,
        start = meta.load_start,
        end = meta.load_end,
        took = meta.took.as_secs_f64() / 60.0,
    );
}

fn results_table(md: &mut String, options: &Options, rows: &BTreeMap<(u32, Impl), Row>) {
    md.push_str(
        "## Results\n\n\
         | N | implementation | full sync | one endpoint change | connections/s | of direct | connect p50 / p99 | memory |\n\
         |---:|---|---:|---:|---:|---:|---:|---|\n",
    );
    for &n in &options.sizes {
        for imp in Impl::ALL {
            let Some(r) = rows.get(&(n, imp)) else {
                continue;
            };
            if !options.impls.contains(&imp) {
                continue;
            }
            let (full, change, memory) = match imp {
                Impl::Direct => ("–".into(), "–".into(), "–".into()),
                Impl::Ferry => (
                    format!("{} (LB maps); ready in {}", dur(r.full), dur(r.ready)),
                    format!(
                        "{} (LB maps); {} file to maps",
                        dur(r.change),
                        dur(r.change_e2e)
                    ),
                    format!(
                        "RSS {} (peak {}); kernel ≈ {}",
                        opt(r.rss_kb, |k| mb(k as u64)),
                        opt(r.hwm_kb, |k| mb(k as u64)),
                        opt(r.kernel_kb, |k| mb(k.max(0.0) as u64))
                    ),
                ),
                Impl::Iptables | Impl::Nftables => (
                    dur(r.full),
                    dur(r.change),
                    format!(
                        "n/a (no daemon); tool peak RSS {}; kernel ≈ {}",
                        opt(r.tool_kb, |k| mb(k as u64)),
                        opt(r.kernel_kb, |k| mb(k.max(0.0) as u64))
                    ),
                ),
            };
            let share = opt(r.of_direct, |x| format!("{:.1} %", x * 100.0));
            let kernel = opt(r.connect4_ns, |ns| {
                format!("; `connect4` {} ns in the kernel", thousands(ns))
            });
            let _ = writeln!(
                md,
                "| {} | {} | {full} | {change} | {} | {share} | {} / {} µs{} | {memory} |",
                thousands(f64::from(n)),
                imp.name(),
                opt(r.rate, thousands),
                opt(r.p50, |x| format!("{x:.1}")),
                opt(r.p99, |x| format!("{x:.1}")),
                if imp == Impl::Ferry {
                    kernel.as_str()
                } else {
                    ""
                },
            );
        }
    }
}

fn targets(md: &mut String, options: &Options, rows: &BTreeMap<(u32, Impl), Row>) {
    let big = options.sizes.iter().copied().max().unwrap_or(0);
    let get = |n: u32, imp: Impl| rows.get(&(n, imp)).copied().unwrap_or_default();
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let f = get(big, Impl::Ferry);
    let shares: Vec<(u32, Option<f64>)> = options
        .sizes
        .iter()
        .map(|&n| (n, get(n, Impl::Ferry).of_direct))
        .collect();
    let share_text: Vec<String> = shares
        .iter()
        .map(|(n, s)| {
            format!(
                "{}: {}",
                thousands(f64::from(*n)),
                opt(*s, |x| format!("{:.1} %", x * 100.0))
            )
        })
        .collect();
    let shares_ok = shares
        .iter()
        .map(|(_, s)| s.map(|x| x >= 0.95))
        .collect::<Option<Vec<_>>>()
        .map(|v| v.iter().all(|b| *b));
    let vs_ipt = f.of_iptables;
    let _ = write!(
        md,
        "\n## Targets (N = {big})\n\n| target | measured | |\n|---|---|---|\n\
         | full sync of {nbig} Services under 1 s | {full} (LB maps) | {v1} |\n\
         | one endpoint change under 1 ms | {change} (LB maps) | {v2} |\n\
         | connection rate at least 95 % of direct at every N | {shares} | {v3} |\n\
         | at least 2x iptables' connection rate at {nbig} Services | {ratio} | {v4} |\n\
         | RSS under 100 MB at {nbig} Services | {rss} | {v5} |\n",
        nbig = thousands(f64::from(big)),
        full = dur(f.full),
        v1 = verdict(f.full.map(|s| s < 1.0)),
        change = dur(f.change),
        v2 = verdict(f.change.map(|s| s < 0.001)),
        shares = share_text.join(", "),
        v3 = verdict(shares_ok),
        ratio = opt(vs_ipt, |x| format!("{x:.2}x")),
        v4 = verdict(vs_ipt.map(|x| x >= 2.0)),
        rss = opt(f.rss_kb, |k| mb(k as u64)),
        v5 = verdict(f.rss_kb.map(|k| k < 100.0 * 1024.0)),
    );
}

fn trial_table(md: &mut String, trials: &[Trial]) {
    md.push_str(
        "\n## Every trial\n\n\
         | round | N | implementation | full sync | change | programmed | conn/s | p50 / p99 µs | errors | spread check | CPU busy before / during |\n\
         |---:|---:|---|---:|---:|---|---:|---:|---:|---|---:|\n",
    );
    for t in trials {
        let (full, change, programmed) = match (&t.ferry, &t.rules) {
            (Some(f), _) => (
                ms(f.full_sync),
                ms(f.change),
                format!(
                    "{} + {} map writes; ready {}; RSS {}; daemon CPU {} ms during the load",
                    thousands(f.full_ops),
                    thousands(f.change_ops),
                    ms(f.start_to_ready),
                    mb(f.rss_kb),
                    f.idle_cpu_ms
                ),
            ),
            (_, Some(r)) => (
                ms(r.full),
                ms(r.change),
                format!(
                    "{} input lines; tool peak RSS {}",
                    thousands(r.lines as f64),
                    mb(r.tool_rss_full_kb)
                ),
            ),
            _ => ("–".into(), "–".into(), "–".into()),
        };
        let (rate, lat, errors) = t.load.map_or(("–".into(), "–".into(), "–".into()), |l| {
            (
                thousands(l.rate()),
                format!("{:.1} / {:.1}", l.p50_us, l.p99_us),
                l.errors.to_string(),
            )
        });
        let spread = match (&t.spread, &t.error) {
            (_, Some(e)) => format!("ERROR: {}", e.replace('|', "/")),
            (Some((text, ok)), _) => format!("{}{text}", if *ok { "" } else { "**BAD** " }),
            (None, _) => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {full} | {change} | {programmed} | {rate} | {lat} | {errors} | {spread} | {:.0} % / {:.0} % |",
            t.round + 1,
            thousands(f64::from(t.n)),
            t.imp.name(),
            t.busy_before,
            t.busy_during
        );
    }
}
