//! The crate's error type.

use aya::{EbpfError, maps::MapError, programs::ProgramError};

/// Everything that can go wrong loading, attaching or programming the BPF side.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    /// The embedded object is empty.
    #[error("the embedded BPF object is empty (ferry-lb was built with AYA_BUILD_SKIP=1)")]
    ObjectMissing,
    /// The object could not be parsed or its maps could not be created.
    #[error("loading the BPF object failed")]
    Object(#[source] Box<EbpfError>),
    /// The object has no program of this name.
    #[error("BPF program {program} not found in the object")]
    ProgramMissing {
        /// Program (function) name.
        program: String,
    },
    /// The program exists but is of another kind than the operation needs.
    #[error("BPF program {program} is a {actual}, expected a {expected}")]
    ProgramKind {
        /// Program (function) name.
        program: String,
        /// Its kind, as aya reports it.
        actual: String,
        /// The kind the operation needs.
        expected: &'static str,
    },
    /// Loading (the verifier) or attaching a program failed.
    #[error("BPF program {program}: {action} failed")]
    Program {
        /// Program (function) name.
        program: String,
        /// `load` or `attach`.
        action: &'static str,
        /// aya's error; for a verifier rejection its message carries the verifier log.
        #[source]
        source: Box<ProgramError>,
    },
    /// An attached program's link cannot be owned as a bpf_link (so it cannot be pinned).
    #[error("BPF program {program}: its link is not a bpf_link")]
    Link {
        /// Program (function) name.
        program: String,
        /// aya's error.
        #[source]
        source: Box<aya::programs::links::LinkError>,
    },
    /// The object has no map of this name.
    #[error("BPF map {map} not found in the object")]
    MapMissing {
        /// Map name.
        map: &'static str,
    },
    /// A map operation failed.
    #[error("BPF map {map}: {action} failed")]
    Map {
        /// Map name.
        map: &'static str,
        /// `open`, `insert`, `remove`.
        action: &'static str,
        /// aya's error.
        #[source]
        source: Box<MapError>,
    },
    /// A pin path, cgroup or interface could not be used.
    #[error("{path}: {reason}")]
    PinPath {
        /// The path involved.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}
