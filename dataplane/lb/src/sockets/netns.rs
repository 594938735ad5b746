//! The network namespaces of the host: every `/proc/<pid>/ns/net` and every `/run/netns/*`
//! entry, one per namespace (by nsfs inode).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Where namespaces are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsSources {
    /// `/proc`: each process's `ns/net`. Pods' namespaces show up here as long as any process
    /// runs in them (Ferry needs the host's PID namespace for that).
    pub proc: PathBuf,
    /// Directories of namespace bind mounts (`ip netns`, CNI plugins): namespaces that may have
    /// no process at all.
    pub mounts: Vec<PathBuf>,
}

impl Default for NetnsSources {
    fn default() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            mounts: vec![PathBuf::from("/run/netns")],
        }
    }
}

/// One network namespace and the paths it was seen at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    /// The nsfs inode (`ip netns identify`, `ls -l /proc/<pid>/ns/net`).
    pub inode: u64,
    dev: u64,
    /// A few paths to open it by, best first (a process may exit before it is opened).
    paths: Vec<PathBuf>,
}

/// Paths kept per namespace: a fallback or two if the first process exits meanwhile.
const PATHS_KEPT: usize = 3;

impl Netns {
    /// The namespace of the nsfs file `path` (`/run/netns/NAME`, `/proc/PID/ns/net`).
    pub fn at(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            inode: meta.ino(),
            dev: meta.dev(),
            paths: vec![path.to_owned()],
        })
    }

    /// Opens the namespace by the first of its paths that still leads to it (a PID may have
    /// been reused by a process in another namespace meanwhile).
    pub fn open(&self) -> std::io::Result<File> {
        let mut last = std::io::Error::from(std::io::ErrorKind::NotFound);
        for path in &self.paths {
            match File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) {
                Ok((file, meta)) if meta.ino() == self.inode && meta.dev() == self.dev => {
                    return Ok(file);
                }
                Ok(_) => {}
                Err(error) => last = error,
            }
        }
        Err(last)
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net:[{}]", self.inode)?;
        if let Some(path) = self.paths.first() {
            write!(f, " ({})", path.display())?;
        }
        Ok(())
    }
}

impl NetnsSources {
    /// Every namespace found, named mounts first. Unreadable entries are skipped: processes
    /// come and go while `/proc` is read.
    pub fn list(&self) -> Vec<Netns> {
        // Every nsfs file has the nsfs device; anything else under the mount directories (a
        // leftover file whose namespace was unmounted) is not a namespace.
        let nsfs = std::fs::metadata(self.proc.join("self/ns/net"))
            .map(|m| m.dev())
            .ok();
        let mut found: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
        let mut order: Vec<(u64, u64)> = Vec::new();
        let mut add = |path: PathBuf| {
            let Ok(meta) = std::fs::metadata(&path) else {
                return;
            };
            if nsfs.is_some_and(|dev| dev != meta.dev()) {
                return;
            }
            let key = (meta.dev(), meta.ino());
            let paths = found.entry(key).or_insert_with(|| {
                order.push(key);
                Vec::new()
            });
            if paths.len() < PATHS_KEPT {
                paths.push(path);
            }
        };
        for dir in &self.mounts {
            for entry in read_dir(dir) {
                add(entry);
            }
        }
        for entry in read_dir(&self.proc) {
            let is_pid = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if is_pid {
                add(entry.join("ns/net"));
            }
        }
        order
            .into_iter()
            .filter_map(|key| {
                let paths = found.remove(&key)?;
                Some(Netns {
                    inode: key.1,
                    dev: key.0,
                    paths,
                })
            })
            .collect()
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_namespace_is_listed_once_and_opens() {
        let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let sources = NetnsSources::default();
        let list = sources.list();
        assert_eq!(list.iter().filter(|ns| ns.inode == own).count(), 1);
        let ns = list.iter().find(|ns| ns.inode == own).unwrap();
        assert_eq!(ns.open().unwrap().metadata().unwrap().ino(), own);
        assert!(
            ns.to_string().starts_with(&format!("net:[{own}] (")),
            "{ns}"
        );
    }

    #[test]
    fn files_that_are_not_namespaces_are_skipped() {
        let dir = std::env::temp_dir().join(format!("ferry-netns-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stale"), "").unwrap();
        let sources = NetnsSources {
            proc: PathBuf::from("/proc"),
            mounts: vec![dir.clone(), dir.join("missing")],
        };
        let list = sources.list();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            list.iter()
                .all(|ns| !ns.paths.iter().any(|p| p.starts_with(&dir)))
        );
        assert!(!list.is_empty());
    }
}
