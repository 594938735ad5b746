//! The common frame of the load-balancer suites: a manifest folder, a socket-LB cgroup, a pin
//! folder on a bpffs of the test's own, and the daemon. Dropped in that order of importance:
//! the daemon first, then its pins (links and maps removed), the cgroup, the manifests.

use crate::netns::Sandbox;
use crate::{Ferry, LbPins};
use std::path::Path;
use std::time::Duration;

#[derive(Debug)]
pub struct LbLab {
    ferry: Option<Ferry>,
    pins: LbPins,
    sandbox: Sandbox,
    dir: tempfile::TempDir,
}

impl LbLab {
    /// A sandbox (namespace `ferrytest-<tag>-<pid>` and a cgroup), a bpffs and a manifest dir.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        Ok(Self {
            ferry: None,
            pins: LbPins::mount()?,
            sandbox: Sandbox::create(tag)?,
            dir: tempfile::tempdir()?,
        })
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn pins(&self) -> &Path {
        self.pins.path()
    }

    /// Writes a manifest file atomically, as editors and kubectl do.
    pub fn write(&self, file: &str, yaml: &str) {
        crate::write_atomic(self.dir.path(), file, yaml).expect("write manifest");
    }

    /// Starts `ferry run` on the manifests in namespace `netns` (the sandbox's by default),
    /// with the LB on the sandbox's cgroup and pins, node `node-a`, ingress off, DNS off unless
    /// `extra` has a `--dns-listen`, plus `extra`; waits until it is ready. A daemon started before is dropped (killed) first.
    pub fn start(&mut self, netns: Option<&str>, extra: &[&str]) -> &mut Ferry {
        self.ferry = None;
        let dir = self
            .dir
            .path()
            .to_str()
            .expect("UTF-8 temp dir")
            .to_string();
        let cgroup = self
            .sandbox
            .cgroup_dir()
            .to_str()
            .expect("UTF-8 cgroup")
            .to_string();
        let pins = self.pins.path().to_str().expect("UTF-8 pins").to_string();
        let mut args = vec![
            "--manifests",
            &dir,
            "--no-ingress",
            "--node-name",
            "node-a",
            "--lb-cgroup",
            &cgroup,
            "--lb-pin-path",
            &pins,
        ];
        if !extra.contains(&"--dns-listen") {
            args.push("--no-dns");
        }
        args.extend_from_slice(extra);
        let netns = netns.unwrap_or(self.sandbox.netns());
        let mut ferry = Ferry::start_in(Some(netns), &args).expect("start ferry");
        ferry.wait_ready(Duration::from_secs(30)).expect("ready");
        self.ferry.insert(ferry)
    }

    pub fn ferry(&self) -> &Ferry {
        self.ferry.as_ref().expect("started")
    }

    /// The daemon, out of the lab (to stop it by hand).
    pub fn take_ferry(&mut self) -> Ferry {
        self.ferry.take().expect("started")
    }

    /// The daemon's log so far, or nothing before it started.
    pub fn log(&self) -> String {
        self.ferry.as_ref().map(Ferry::log).unwrap_or_default()
    }
}
