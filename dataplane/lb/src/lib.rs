//! Userspace side of Ferry's eBPF load balancer.
//!
//! * [`EBPF_OBJECT`]: the `ferry-ebpf` object, built by `build.rs` and embedded at compile time.
//! * [`load`] / [`load_all_programs`] / [`attach_cgroup`]: parse the object (creating its maps),
//!   run every program through the kernel verifier, attach the socket-LB hooks to a cgroup.
//! * [`attach_nodeport`] / [`detach_nodeport`]: the tc NodePort programs on an external
//!   interface; [`Counters`]: the BPF counters.
//! * [`MapWriter`]: the narrow seam through which the sync logic programs frontends and
//!   backends; [`AyaMaps`] writes the kernel maps, [`FakeMaps`] records in memory for tests.
//! * [`forget_flows_to`], [`CtSweeper`], [`configure_conntrack`]: the tc path's flow table
//!   (removing a backend's flows, sweeping expired ones, lifetimes and SNAT pool size).
//! * [`maglev_table`]: the Maglev lookup table of a backend set (`--lb-algorithm maglev`).
//! * [`destroy_translated_udp`]: aborts connected UDP sockets, in every network namespace,
//!   whose backend left its Service.
//!
//! The map layouts and the map/program names are shared with the BPF side through
//! [`ferry_ebpf_common`], re-exported here as [`common`].

mod conntrack;
mod engine;
mod error;
mod load;
mod maglev;
mod map_writer;
mod metrics;
mod pin;
mod sockets;
mod stats;
mod sync;
mod tc;

pub use conntrack::{CtSweeper, configure_conntrack, conntrack_now, forget_flows_to};
pub use engine::{LbConfig, LbEngine, cleanup};
pub use error::LbError;
pub use ferry_ebpf_common as common;
pub use load::{attach_cgroup, load, load_all_programs, load_object};
pub use maglev::table as maglev_table;
pub use map_writer::{AyaMaps, FakeMaps, MapWriter};
pub use metrics::LbMetrics;
pub use pin::DEFAULT_PIN_ROOT;
pub use sockets::{
    ConnectedUdp, Netns, NetnsSources, destroy_connected_udp, destroy_in_namespaces,
    destroy_translated_udp,
};
pub use stats::Counters;
pub use sync::{Algorithm, LbState, MapOp, SyncReport};
pub use tc::{NodePortLinks, attach_nodeport, detach_nodeport, take_nodeport_links};

/// The BPF object (`ferry-ebpf`'s `ferry-bpf` binary for `bpfel-unknown-none`).
///
/// Empty when the crate was built with `AYA_BUILD_SKIP=1`; [`load`] then fails with
/// [`LbError::ObjectMissing`].
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ferry-bpf"));
