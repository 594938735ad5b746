//! The fixed part of `lb.md`: how the figures were taken.

pub const METHOD: &str = r#"
## How it was measured

**Topology** (fresh for every trial; `xtask/src/bench/topology.rs`). A client network namespace
and a backend namespace joined by one veth pair (10.140.0.2/30 ↔ 10.140.0.1/30). Service *i*
has ClusterIP 10.96.0.1+*i*, port 80 → 8080, and 10 endpoints 10.128.0.1+16*i*+*j*. The backend
namespace makes the whole endpoint range local (`ip route add local 10.128.0.0/14 dev lo`), so
one listener on 0.0.0.0:8080 is a real backend behind all 10·N endpoint addresses (distinct per
Service, so no implementation can share backend sets). The client namespace routes only
10.96.0.0/16 and 10.128.0.0/14 into the backend namespace; nothing has a default route and the
backend namespace does not forward, so no connection can leave the machine. Client pinned to
CPU 1, backend to CPU 0.

**ferry**: the release binary, `ferry run --manifests DIR --no-dns --no-ingress --lb-cgroup
<child of a private cgroup2 mount> --lb-pin-path <private bpffs> --lb-cleanup`, started with
`nsenter --net` in the client namespace. DIR holds the N Services in files of 500 and one
EndpointSlice file per Service. *Full sync* is the daemon's first LB sync
(`ferry_lb_sync_duration_seconds`, its only observation at readiness: the BPF map writes for
N frontends and 10·N backend slots); *ready in* is process start to `/readyz` 200 (reading and
parsing the manifests, loading and verifying the BPF programs, attaching, syncing). *One
change* replaces endpoint 0 of Service N/2 in its EndpointSlice file: the LB figure is the
histogram delta of that one sync, *file to maps* the wall time from the write until the sync
shows in `/metrics` (it includes the watcher's 25 ms debounce and a rescan of the directory).
Memory: VmRSS after the first sync (and VmHWM, the peak), from `/proc/PID/status`.

**iptables**: kube-proxy's iptables-mode ruleset (`KUBE-SERVICES` → `KUBE-SVC-*` with
`statistic --mode random --probability 1/(E-k)` → `KUBE-SEP-*` with the hairpin masquerade
and `DNAT`, `KUBE-MARK-MASQ`, `KUBE-POSTROUTING`, the filter chains, jumps from the built-in
chains) loaded into the client namespace's own tables with one `iptables-legacy-restore
--noflush` (Debian's default `iptables-nft-restore` takes over 15 minutes at 10 000 Services
on this machine; `--iptables nft` selects it). *One change* is kube-proxy's partial restore
(KEP-3453): `KUBE-SERVICES` and the small chains rewritten in full, then only the changed
Service's `KUBE-SVC`/`KUBE-SEP` chains, the removed endpoint's chain deleted. Chain names have
kube-proxy's format and length (a SipHash stands in for SHA-256). Service order in
`KUBE-SERVICES` is by index, and the client spreads its connections over all N Services, so
the rule walk is the average one (N/2 rules); the worst-placed Service is about twice as slow.

**nftables**: kube-proxy's nftables-mode ruleset (table `ip kube-proxy`, `service-ips`
verdict map into `service-*` chains, `numgen random mod 10 vmap` into `endpoint-*` chains
with `dnat`, the filter and masquerade chains, sets and maps) loaded with one `nft -f`;
*one change* is one `nft -f` transaction that rewrites the changed Service's chains and
deletes the removed endpoint's chain.

*Full sync* and *one change* for iptables and nftables are the wall time of the tool run
(process start included, as for kube-proxy, which runs the same tools). There is no daemon
to measure for them: the memory column shows the tool's peak RSS (`/usr/bin/time`) during
the sync. *kernel ≈* is the change in Slab + VmallocUsed + Percpu of `/proc/meminfo` across
the sync (rules, sets, BPF maps); it is machine-wide, so other work on the machine moves it
by a few MB: read it only at 10 000 Services.

**Connections** (`xtask/src/bench/load.rs`): the client, a re-exec of the xtask binary that
joins the LB cgroup before opening sockets, runs blocking `connect()` + `close()` loops
(SO_LINGER 0: the close is an RST, no TIME_WAIT) for the stated time after a 0.5 s warm-up,
timing every `connect()`. Each thread walks all N ClusterIPs in its own shuffled order;
*direct* runs in a fresh sandbox with nothing programmed and dials the endpoint addresses of
the same Services straight, which is the physical limit. The shared machine's speed drifts
by ±10 % over minutes, more than the cost being measured, so ferry's *of direct* comes from
its own sandbox: after its timed run, two clients stay up side by side, one in the LB
cgroup dialling the ClusterIPs and one in a sibling cgroup without programs dialling the
endpoint addresses straight, and take turns in 24 pairs of 0.25 s slices (ABBA order, after a
0.5 s warm-up slice each), so the machine's slow spells fall on both alike; a trial's ratio is
the median of its pairs' ratios (a pair the machine stalled in drops out; the progress lines
give the quartiles), and the figure is the median over the rounds. For iptables and
nftables, *of direct* (and ferry's ratio to iptables) is the median over the rounds of the
trial's rate over the direct trial's of the same round. Before the load, a *spread check*
sends 1 000 connections to Service N/2's ClusterIP and has the backend count them per local
address: all must land on the 10 current endpoints (the removed one gets none), each within
±50 % of 100.

*`connect4` in the kernel* (ferry): after its timed run, a 2 s run of the same load with
`kernel.bpf_stats_enabled` on; the kernel's `run_time_ns` / `run_cnt` of ferry's `connect4`
program (read with `bpftool` through its pinned link) over that run is the time the socket LB
adds to each `connect()` inside the program (lookups, the choice, the reverse-NAT record).
The cgroup hook's dispatch and the `sock_release` program that deletes the socket's
reverse-NAT record at `close()` are outside it. The statistics are off during the timed run, so their own cost is not in the rate.

*CPU busy* (last table) is the whole machine's from /proc/stat: *before* is the second before
the load with the bench idle, i.e. other work on the machine; *during* includes the bench's
own client and backend (one thread each, pinned to one CPU each).

A socket-LB connect is translated in the `connect()` call (no conntrack, no NAT afterwards);
iptables and nftables translate the first packet with conntrack and DNAT, which is why even
nftables' flat lookup costs a share of the connection rate.
"#;
