//! Lists the manifest files under a folder.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Size and modification time: a file is re-read only when its stamp changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];
/// Bounds a walk through symlinked folders.
const MAX_DEPTH: usize = 32;

/// Every `*.yaml`, `*.yml` and `*.json` file under `root`, recursively, following symlinks and
/// skipping names that start with '.' (editor swap files, and a ConfigMap volume's `..data`
/// twins of every file).
///
/// Hashed, not ordered: a rescan looks up every file, and a `Path` compares component by
/// component, which made the periodic rescan of 20,000 files cost 100-200 ms of CPU.
pub fn manifest_files(root: &Path) -> io::Result<HashMap<PathBuf, Stamp>> {
    let mut files = HashMap::new();
    visit(root, 0, &mut files)?;
    Ok(files)
}

fn visit(dir: &Path, depth: usize, files: &mut HashMap<PathBuf, Stamp>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symlinks; an entry that vanished meanwhile is simply not listed.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                visit(&path, depth + 1, files)?;
            }
        } else if meta.is_file()
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            let stamp = Stamp {
                len: meta.len(),
                modified: meta.modified().ok(),
            };
            files.insert(path, stamp);
        }
    }
    Ok(())
}
