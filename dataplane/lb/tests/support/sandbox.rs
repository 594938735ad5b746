//! A network namespace (only `lo`, up) and a child cgroup under a private cgroup2 mount, both
//! created for one test and removed on drop, also when the test panics.
//!
//! Nothing is attached to the root cgroup or to a real interface: socket-LB programs go on
//! [`Sandbox::cgroup_dir`], and traffic stays on the namespace's loopback (a translation that
//! fails makes `connect` to a service address fail with `ENETUNREACH`, since `lo` is the only
//! route there).

use std::{
    fs::{self, File},
    io::ErrorKind,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, bail};
use nix::sched::{CloneFlags, setns};
use tempfile::TempDir;

/// The namespace and cgroup of one test. See the module docs.
#[derive(Debug)]
pub struct Sandbox {
    netns: String,
    netns_created: bool,
    /// `None` once deliberately leaked (it could not be unmounted).
    mount: Option<TempDir>,
    mounted: bool,
    cgroup: PathBuf,
}

impl Sandbox {
    /// Creates `ferrytest-<tag>-<pid>` (netns) and `<tmp>/ferrytest-<tag>-<pid>` (cgroup).
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let name = format!("ferrytest-{tag}-{}", std::process::id());
        let mount = tempfile::Builder::new()
            .prefix("ferrytest-cgroup2-")
            .tempdir()?;
        let cgroup_root = mount.path().to_owned();
        let cgroup = cgroup_root.join(&name);
        let mut sandbox = Self {
            netns: name,
            netns_created: false,
            mount: Some(mount),
            mounted: false,
            cgroup,
        };
        run("ip", &["netns", "add", &sandbox.netns])?;
        sandbox.netns_created = true;
        run("ip", &["-n", &sandbox.netns, "link", "set", "lo", "up"])?;
        let dir = cgroup_root
            .to_str()
            .context("non-UTF-8 temp dir")?
            .to_owned();
        run("mount", &["-t", "cgroup2", "none", &dir])?;
        sandbox.mounted = true;
        fs::create_dir(&sandbox.cgroup)
            .with_context(|| format!("mkdir {}", sandbox.cgroup.display()))?;
        Ok(sandbox)
    }

    /// The network namespace's name, for `ip netns exec`.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The child cgroup (a cgroup v2 directory) to attach programs to.
    pub fn cgroup_dir(&self) -> &Path {
        &self.cgroup
    }

    /// Runs `f` on a fresh thread that has joined the namespace; sockets it creates stay in
    /// the namespace wherever they are used afterwards. The calling thread is not moved.
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        let ns = File::open(Path::new("/run/netns").join(&self.netns))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    setns(&ns, CloneFlags::CLONE_NEWNET).context("setns")?;
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Processes moved into the cgroup have exited by now (their output was awaited), but
        // the kernel may take a moment to release the cgroup (EBUSY meanwhile).
        if self.cgroup.exists() {
            for attempt in 0.. {
                match fs::remove_dir(&self.cgroup) {
                    Ok(()) => break,
                    Err(e) if attempt < 50 && e.kind() == ErrorKind::ResourceBusy => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        eprintln!("sandbox: rmdir {}: {e}", self.cgroup.display());
                        break;
                    }
                }
            }
        }
        if self.mounted
            && let Some(dir) = self.mount.take()
            && let Err(e) = run("umount", &[&dir.path().to_string_lossy()])
        {
            eprintln!("sandbox: {e:#}; leaving {} in place", dir.path().display());
            // Removing the temp dir would recurse into the still-mounted cgroup tree.
            let _ = dir.keep();
        }
        if self.netns_created
            && let Err(e) = run("ip", &["netns", "del", &self.netns])
        {
            eprintln!("sandbox: {e:#}");
        }
        // `self.mount`, if still here, is an unmounted (or never mounted) temp dir: removed next.
    }
}

/// Runs a setup command, failing with its stderr.
fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("spawning {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
