//! What both benches share: the ferry binary, its admin server's HTTP, the facts their reports
//! open with (machine, tree, binary, load), medians, and number formats.

use crate::shell;
use anyhow::Context as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Facts about the machine and the run.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub date: String,
    pub machine: String,
    /// Versions of the peers and load tools.
    pub tools: String,
    pub revision: String,
    /// When the ferry binary was built.
    pub binary: String,
    pub binary_path: String,
    pub load_start: String,
    pub load_end: String,
    pub took: Duration,
}

impl Meta {
    /// The facts at the start of a run of `binary`, with the peers' `tools` versions.
    pub fn capture(binary: &Path, tools: String) -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, |c| c.get());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_gib = meminfo
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or("", |(_, m)| m.trim())
            .to_string();
        let dirty =
            !command_line("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
        Self {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            machine: format!(
                "{cpus} CPUs ({model}), {mem_gib:.0} GiB, kernel {}",
                command_line("uname", &["-r"])
            ),
            tools,
            revision: format!(
                "{}{}",
                command_line("git", &["rev-parse", "--short", "HEAD"]),
                if dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            ),
            binary: command_line(
                "date",
                &["-u", "-r", &binary.to_string_lossy(), "+%Y-%m-%d %H:%M UTC"],
            ),
            binary_path: format!("`{}`", binary.display()),
            load_start: loadavg(),
            ..Self::default()
        }
    }

    /// Adds the end of the run: its length and the load average then.
    pub fn finish(mut self, took: Duration) -> Self {
        self.load_end = loadavg();
        self.took = took;
        self
    }
}

/// The first non-empty line a command prints (stdout, else stderr); empty if it cannot run.
pub fn command_line(program: &str, args: &[&str]) -> String {
    shell::command(program, args)
        .output()
        .map(|o| {
            let out = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&out)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The 1, 5 and 15 minute load averages, `a / b / c`.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// `cargo build --release -p ferry`; `target/release/ferry`.
pub fn build_ferry() -> anyhow::Result<PathBuf> {
    let binary = shell::root().join("target/release/ferry");
    // Others may be mid-edit in the same tree: an older binary is better than no run.
    if let Err(error) = shell::cargo(&["build", "--release", "--package", "ferry"]) {
        if !binary.is_file() {
            return Err(error);
        }
        eprintln!("bench: {error:#}; using the existing {}", binary.display());
    }
    Ok(binary)
}

/// One HTTP/1.1 GET of `path` on `stream` (connected to `host`): status code and body.
pub fn http_get(mut stream: TcpStream, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("bad HTTP response")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// The median of the finite figures, if any.
pub fn median(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut xs: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    })
}

/// `x` rounded, with thousands separated by commas.
pub fn thousands(x: f64) -> String {
    let s = (x.round() as u64).to_string();
    let mut out = String::new();
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `f(x)`, or a dash for a figure not measured.
pub fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "–".to_string(), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_formats() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, f64::NAN, 2.0, 3.0]), Some(2.5));
        assert_eq!(median([]), None);
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(opt(None, |x| x.to_string()), "–");
    }
}
