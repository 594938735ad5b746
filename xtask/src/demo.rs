//! `cargo xtask demo`: ferry on `examples/demo`, isolated in a network namespace and a child
//! cgroup of its own (never the machine's root cgroup), with lines to try.

use crate::shell;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const NETNS: &str = "ferry-demo";
/// A cgroup2 mount of the demo's own; the LB attaches to the `demo` child below it.
const CGROUP_MOUNT: &str = "/run/ferry-demo/cgroup2";
/// A bpffs of the demo's own for the LB's pinned links and maps.
const BPFFS_MOUNT: &str = "/run/ferry-demo/bpffs";
const ADMIN: &str = "127.0.0.1:10256";
/// The loopback backends of `examples/demo/web.yaml`.
const BACKENDS: [(&str, &str); 2] = [("127.0.0.1:18081", "web-1"), ("127.0.0.2:18082", "web-2")];

/// Everything the demo created, removed on drop (also after an error).
struct Sandbox {
    children: Vec<Child>,
    cgroup: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // SIGTERM first: ferry then removes what it attached and pinned (--lb-cleanup).
        for child in &mut self.children {
            let _ = shell::command("kill", &["-TERM", &child.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.children {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir(&self.cgroup);
        for mount in [CGROUP_MOUNT, BPFFS_MOUNT] {
            let _ = shell::command("umount", &[mount]).status();
            let _ = std::fs::remove_dir(mount);
        }
        let _ = shell::command("ip", &["netns", "del", NETNS]).status();
    }
}

fn in_netns(args: &[&str]) -> std::process::Command {
    let mut full = vec!["netns", "exec", NETNS];
    full.extend_from_slice(args);
    shell::command("ip", &full)
}

pub fn run(smoke: bool) -> anyhow::Result<()> {
    if !std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    {
        bail!("the demo needs root: it creates a network namespace and a cgroup");
    }
    crate::setup()?;
    shell::cargo(&["build", "--package", "ferry"])?;
    let root = shell::root();
    let ferry = root.join("target/debug/ferry");

    // Leftovers of an interrupted run.
    let _ = shell::command("ip", &["netns", "del", NETNS])
        .stderr(Stdio::null())
        .status();
    let cgroup = Path::new(CGROUP_MOUNT).join("demo");
    let mut sandbox = Sandbox {
        children: Vec::new(),
        cgroup: cgroup.clone(),
    };
    shell::run("ip", &["netns", "add", NETNS])?;
    shell::run("ip", &["-n", NETNS, "link", "set", "lo", "up"])?;
    std::fs::create_dir_all(CGROUP_MOUNT)?;
    shell::run("mount", &["-t", "cgroup2", "none", CGROUP_MOUNT])?;
    std::fs::create_dir_all(&cgroup)?;
    std::fs::create_dir_all(BPFFS_MOUNT)?;
    shell::run("mount", &["-t", "bpf", "bpf", BPFFS_MOUNT])?;
    let pins = format!("{BPFFS_MOUNT}/ferry");

    // The backends run as threads of this process, their listeners bound in the namespace.
    for (addr, name) in BACKENDS {
        let listener = shell::in_netns(NETNS, || Ok(std::net::TcpListener::bind(addr)?))
            .context("starting a demo backend")?;
        std::thread::spawn(move || crate::backend::serve_on(listener, name));
    }
    let manifests = root.join("examples/demo");
    let daemon = in_netns(&[
        ferry.to_str().unwrap_or_default(),
        "run",
        "--manifests",
        manifests.to_str().unwrap_or_default(),
        "--node-name",
        "demo-node",
        "--admin-listen",
        ADMIN,
        "--lb-cgroup",
        cgroup.to_str().unwrap_or_default(),
        "--lb-pin-path",
        &pins,
        "--lb-cleanup",
    ])
    .spawn()
    .context("starting ferry")?;
    sandbox.children.push(daemon);
    wait_ready(&mut sandbox)?;

    let lines = [
        format!("ip netns exec {NETNS} curl -s http://{ADMIN}/readyz"),
        format!("ip netns exec {NETNS} curl -s http://{ADMIN}/debug/state"),
        format!("ip netns exec {NETNS} curl -s http://{ADMIN}/metrics"),
        format!("ip netns exec {NETNS} curl -s http://{}/", BACKENDS[0].0),
        // A client in the LB's cgroup: the ClusterIP is translated at connect().
        format!(
            "ip netns exec {NETNS} sh -c 'echo $$ > {}/cgroup.procs && exec curl -s http://10.96.0.10/'",
            cgroup.display()
        ),
        format!("{} check --manifests examples/demo", ferry.display()),
    ];
    println!("\nferry is running on examples/demo in network namespace {NETNS}. Try:\n");
    for line in &lines {
        println!("  {line}");
    }
    if smoke {
        let (passed, failed) = smoke_test(&lines)?;
        // Stop everything first, so the summary is the last line printed.
        drop(sandbox);
        println!("\ndemo: {passed} passed, {failed} failed");
        if failed > 0 {
            bail!("{failed} demo lines failed");
        }
        return Ok(());
    }
    println!("\nEdit examples/demo/*.yaml and watch /debug/state follow. Ctrl-C stops the demo.");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    while !stop.load(Ordering::SeqCst) {
        if let Some(status) = sandbox
            .children
            .last_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            bail!("ferry exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("\nstopping the demo");
    Ok(())
}

fn wait_ready(sandbox: &mut Sandbox) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(status) = sandbox
            .children
            .last_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            bail!("ferry exited before it was ready: {status}");
        }
        let ready = in_netns(&["curl", "-sf", &format!("http://{ADMIN}/readyz")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("ferry was not ready within 30 s")
}

/// Runs every printed line as printed; each must succeed and print something. Returns how
/// many passed and failed.
fn smoke_test(lines: &[String]) -> anyhow::Result<(usize, usize)> {
    let mut passed = 0;
    let mut failed = 0;
    for line in lines {
        let output = shell::command("sh", &["-c", line]).output()?;
        if output.status.success() && !output.stdout.is_empty() {
            passed += 1;
        } else {
            failed += 1;
            eprintln!(
                "demo line failed: {line}\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    Ok((passed, failed))
}
