//! Running commands from the workspace root, with `~/.cargo/bin` (bpf-linker) on PATH.

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::Command;

/// The workspace root (the parent of this crate).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// A command run from the workspace root with `~/.cargo/bin` first on PATH.
pub fn command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).current_dir(root());
    if let Some(home) = std::env::var_os("HOME") {
        let mut path = PathBuf::from(home).join(".cargo/bin").into_os_string();
        if let Some(old) = std::env::var_os("PATH") {
            path.push(":");
            path.push(old);
        }
        command.env("PATH", path);
    }
    command
}

pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = command(program, args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed: {status}", args.join(" "));
    }
    Ok(())
}

pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(&cargo, args)
}

/// Runs `f` on a thread that joined network namespace `netns`; sockets it makes stay there.
pub fn in_netns<T: Send>(
    netns: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    let ns = std::fs::File::open(std::path::Path::new("/run/netns").join(netns))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<T> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                f()
            })
            .join()
            .map_err(|_| anyhow::anyhow!("a thread in {netns} panicked"))?
    })
}
