//! The manifest-directory source: Kubernetes objects from a folder of YAML/JSON files.
//!
//! [`ManifestSet`] reads and diffs the folder; [`watch`] drives it from inotify and a periodic
//! rescan and emits [`crate::SourceEvent`]s. A file that does not parse keeps its last good
//! objects; an invalid object keeps its last good version; every problem names its file,
//! document and object.

mod parse;
mod problem;
mod set;
mod walk;
mod watch;

pub use parse::{Document, FileParse, parse_file};
pub use problem::{Location, Problem, Severity};
pub use set::{ManifestSet, Rescan};
pub use watch::{ManifestError, watch};
