//! `STATS`: per-CPU `u64` counters, incremented by BPF; userspace sums the CPUs.
//!
//! Each constant is an index into the map; [`NAMES`] gives the metric-friendly name of each.

/// Socket-LB operations (`connect`, `sendmsg`) translated to a backend.
pub const SOCK_TRANSLATED: u32 = 0;
/// Socket-LB operations rejected (`EPERM`): the frontend has no usable backend.
pub const SOCK_NO_BACKEND: u32 = 1;
/// tc packets dropped: the `EXT_FRONTENDS` frontend has no usable backend.
pub const NODEPORT_NO_BACKEND: u32 = 2;
/// tc packets rewritten (either direction).
pub const NODEPORT_NAT_PACKETS: u32 = 3;
/// tc conntrack flows created (one per `CT_FWD` + `CT_REV` pair).
pub const CT_CREATED: u32 = 4;
/// Backend picks served from `AFFINITY` (socket LB and tc).
pub const AFFINITY_HITS: u32 = 5;
/// tc packets dropped because a flow could not be masqueraded (no node address in
/// `NODE_ADDRS` for the family, or no free SNAT port).
pub const SNAT_FAILED: u32 = 6;
/// tc packets dropped because the FIB lookup for a redirect failed.
pub const REDIRECT_FAILED: u32 = 7;
/// tc conntrack flows found dead (past their lifetime, or a closing TCP flow reopened by a SYN)
/// and reclaimed by the datapath: by a new packet of the flow, or by a new masqueraded flow
/// taking over the SNAT port. Userspace sweeps are not counted here.
pub const CT_EXPIRED: u32 = 8;
/// Translated TCP connections whose reverse-NAT record could not be written (the kernel refused
/// the `SOCK_REVNAT` insert): they work, but `getpeername()` shows the backend.
pub const SOCK_REVNAT_FAILED: u32 = 9;

/// Number of counters (the map's `max_entries`).
pub const COUNT: u32 = 10;

/// Names of the counters, by index.
pub const NAMES: [&str; COUNT as usize] = [
    "sock_translated",
    "sock_no_backend",
    "nodeport_no_backend",
    "nodeport_nat_packets",
    "ct_created",
    "affinity_hits",
    "snat_failed",
    "redirect_failed",
    "ct_expired",
    "sock_revnat_failed",
];
