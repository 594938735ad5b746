//! Where Ferry pins its BPF objects, so the datapath outlives the daemon.
//!
//! ```text
//! <root>/maps/<MAP>             every map of the object (reused by the next daemon)
//! <root>/links/<program>        cgroup links of the socket-LB programs
//! <root>/links/<program>@<if>   tc links of the NodePort programs
//! ```

use crate::LbError;
use std::path::{Path, PathBuf};

/// The production default: under the bpffs mount.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/ferry";

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinLayout {
    root: PathBuf,
}

impl PinLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.root.join("maps").join(name)
    }

    pub fn link(&self, name: &str) -> PathBuf {
        self.root.join("links").join(name)
    }

    /// Creates the folders; the root's parent must be on a bpffs.
    pub fn create(&self) -> Result<(), LbError> {
        let parent = self.root.parent().unwrap_or(Path::new("/"));
        if !on_bpffs(parent) {
            return Err(LbError::PinPath {
                path: self.root.clone(),
                reason: format!(
                    "{} is not on a bpffs (mount -t bpf bpf /sys/fs/bpf)",
                    parent.display()
                ),
            });
        }
        for dir in [self.root.join("maps"), self.root.join("links")] {
            std::fs::create_dir_all(&dir).map_err(|e| LbError::PinPath {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Removes everything pinned under the root: links first (which detaches the programs),
    /// then maps. Returns what was removed.
    pub fn remove_all(&self) -> Result<Vec<PathBuf>, LbError> {
        let mut removed = Vec::new();
        for dir in [self.root.join("links"), self.root.join("maps")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| LbError::PinPath {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                removed.push(path);
            }
            let _ = std::fs::remove_dir(&dir);
        }
        let _ = std::fs::remove_dir(&self.root);
        Ok(removed)
    }
}

fn on_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == BPF_FS_MAGIC)
}
