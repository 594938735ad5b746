//! Running one command with a deadline, its wall time taken, its output captured in files
//! (a pipe could fill and stall it while we only poll for its exit).

use anyhow::{Context, bail};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Timed {
    pub wall: Duration,
    pub stdout: String,
}

/// Runs `command` (stdin from `input`, or none) in `dir`'s files `<name>.out` / `<name>.err`,
/// killing it after `timeout`. Fails when it fails, naming its stderr.
pub fn timed(
    mut command: Command,
    input: Option<&Path>,
    dir: &Path,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Timed> {
    let out_path = dir.join(format!("{name}.out"));
    let err_path = dir.join(format!("{name}.err"));
    let stdin = match input {
        Some(path) => Stdio::from(File::open(path).with_context(|| path.display().to_string())?),
        None => Stdio::null(),
    };
    command
        .stdin(stdin)
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name}: no exit within {} s; killed", timeout.as_secs());
        }
        // Short sleeps first: most commands here finish in milliseconds.
        let nap = if started.elapsed() < Duration::from_millis(50) {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(5)
        };
        std::thread::sleep(nap);
    };
    let wall = started.elapsed();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let tail: String = stderr.lines().take(5).collect::<Vec<_>>().join(" | ");
        bail!("{name} failed ({status}): {tail}");
    }
    Ok(Timed { wall, stdout })
}

/// `/usr/bin/time -f maxrss_kb=%M -o <dir>/<name>.rss program args...`: the peak RSS of a
/// one-shot tool (iptables-restore, nft), read back with [`peak_rss_kb`].
pub fn with_peak_rss(dir: &Path, name: &str, program: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "/usr/bin/time".to_string(),
        "-f".into(),
        "maxrss_kb=%M".into(),
        "-o".into(),
        dir.join(format!("{name}.rss"))
            .to_string_lossy()
            .into_owned(),
        program.into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

pub fn peak_rss_kb(dir: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.rss"))).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
}
