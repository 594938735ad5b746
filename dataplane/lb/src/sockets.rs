//! Destroying connected UDP sockets aimed at backends that left their Service.
//!
//! The socket LB rewrites a ClusterIP to a backend at `connect()`, so a connected UDP socket's
//! peer *is* the backend, and it keeps sending there after the backend is gone. kube-proxy
//! flushes the conntrack entries of such flows; the equivalent here is to abort the sockets
//! (`SOCK_DESTROY` over `NETLINK_SOCK_DIAG`, as `ss -K` and Cilium do): the owner's next call
//! fails with `ECONNABORTED`, and a new `connect()` picks a current backend. TCP connections
//! are left alone, to finish on a terminating endpoint.
//!
//! Sockets live in every pod's network namespace, so each namespace of the host
//! ([`NetnsSources`]) gets one pass: a worker thread enters it (`setns`), opens a sock_diag
//! socket there, dumps the connected UDP sockets of each family whose remote matches (the
//! kernel filters by state, by port when all backends share one, and by a bytecode program on
//! the remote address; the result is checked again here), and destroys those the caller
//! selects. A few workers share the namespaces; the calling thread never changes namespace.
//! Failures are logged with the namespace and the reason and never stop the other namespaces.

mod diag;
mod netns;
mod wire;

pub use netns::{Netns, NetnsSources};

use crate::common::{AF_INET, AF_INET6, RevNatKey, RevNatValue, addr, maps};
use aya::Ebpf;
use aya::maps::{HashMap as BpfHashMap, MapData, MapError};
use diag::DiagSocket;
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Worker threads per pass (each enters namespaces one after the other).
const WORKERS: usize = 4;

/// A connected UDP socket found in some namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectedUdp {
    /// `AF_INET` or `AF_INET6` (also for a v4-mapped socket).
    pub family: u8,
    pub local: SocketAddr,
    /// As the socket sees it: `[::ffff:a.b.c.d]:port` on a v4-mapped socket.
    pub remote: SocketAddr,
    /// `SO_COOKIE`, as `bpf_get_socket_cookie()` returns it.
    pub cookie: u64,
}

/// Destroys the connected UDP sockets to any of `backends` that the socket LB translated (a
/// `REVNAT` entry records the socket's cookie and backend), in every namespace of the host;
/// returns how many. Sockets that dialled a backend's address themselves are left alone, as
/// kube-proxy flushes only the conntrack entries it NATed. If `REVNAT` cannot be read, every
/// matching socket is destroyed: a reconnect is cheaper than a client stuck on a dead backend.
pub fn destroy_translated_udp(ebpf: &Ebpf, backends: &BTreeSet<SocketAddr>) -> usize {
    if backends.is_empty() {
        return 0;
    }
    let revnat = ebpf.map(maps::REVNAT).and_then(|map| {
        BpfHashMap::<&MapData, RevNatKey, RevNatValue>::try_from(map)
            .inspect_err(|error| tracing::warn!(%error, "lb: cannot open REVNAT"))
            .ok()
    });
    let select = |socket: &ConnectedUdp| revnat.as_ref().is_none_or(|map| translated(map, socket));
    destroy_connected_udp(&NetnsSources::default(), backends, &select)
}

/// Whether the socket LB sent `socket` to its remote.
fn translated(
    revnat: &BpfHashMap<&MapData, RevNatKey, RevNatValue>,
    socket: &ConnectedUdp,
) -> bool {
    let (family, addr) = addr::ip_words(socket.remote.ip());
    let key = RevNatKey {
        cookie: socket.cookie,
        addr,
        port: socket.remote.port().to_be(),
        family,
        _pad: [0; 5],
    };
    match revnat.get(&key, 0) {
        Ok(_) => true,
        Err(MapError::KeyNotFound) => false,
        Err(error) => {
            tracing::warn!(remote = %socket.remote, %error, "lb: REVNAT lookup failed; destroying");
            true
        }
    }
}

/// Destroys, in every namespace `sources` lists, the connected UDP sockets whose remote is one
/// of `backends` (an IPv4 backend also matches v4-mapped IPv6 sockets) and that `select`
/// accepts; returns how many.
pub fn destroy_connected_udp(
    sources: &NetnsSources,
    backends: &BTreeSet<SocketAddr>,
    select: &(dyn Fn(&ConnectedUdp) -> bool + Sync),
) -> usize {
    if backends.is_empty() {
        return 0;
    }
    destroy_in_namespaces(&sources.list(), backends, select)
}

/// [`destroy_connected_udp`] in the given namespaces.
pub fn destroy_in_namespaces(
    namespaces: &[Netns],
    backends: &BTreeSet<SocketAddr>,
    select: &(dyn Fn(&ConnectedUdp) -> bool + Sync),
) -> usize {
    if backends.is_empty() {
        return 0;
    }
    let started = Instant::now();
    let targets = Targets::new(backends);
    let next = AtomicUsize::new(0);
    let destroyed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let mut spawned = 0;
        for _ in 0..WORKERS.min(namespaces.len()) {
            let work = || {
                while let Some(ns) = namespaces.get(next.fetch_add(1, Ordering::Relaxed)) {
                    destroyed.fetch_add(in_netns(ns, &targets, select), Ordering::Relaxed);
                }
            };
            match std::thread::Builder::new()
                .name("ferry-lb-sockets".into())
                .spawn_scoped(scope, work)
            {
                Ok(_) => spawned += 1,
                Err(error) => tracing::warn!(%error, "lb: cannot start a socket worker"),
            }
        }
        if spawned == 0 && !namespaces.is_empty() {
            tracing::error!("lb: no socket worker started; UDP sockets to removed backends stay");
        }
    });
    let destroyed = destroyed.into_inner();
    let took = started.elapsed();
    if destroyed > 0 {
        tracing::info!(
            destroyed,
            namespaces = namespaces.len(),
            backends = ?backends,
            took_ms = took.as_secs_f64() * 1e3,
            "lb: destroyed connected UDP sockets to removed backends"
        );
    } else {
        tracing::debug!(
            namespaces = namespaces.len(),
            backends = ?backends,
            took_ms = took.as_secs_f64() * 1e3,
            "lb: no connected UDP sockets to removed backends"
        );
    }
    destroyed
}

/// One namespace, on a worker thread: enter it, then [`destroy_here`].
fn in_netns(
    ns: &Netns,
    targets: &Targets,
    select: &(dyn Fn(&ConnectedUdp) -> bool + Sync),
) -> usize {
    let file = match ns.open() {
        Ok(file) => file,
        Err(error) => {
            // Its last process exited since the listing: no sockets left there.
            tracing::debug!(netns = %ns, %error, "lb: network namespace gone");
            return 0;
        }
    };
    if let Err(errno) = setns(&file, CloneFlags::CLONE_NEWNET) {
        tracing::warn!(netns = %ns, error = %errno, "lb: cannot enter the network namespace");
        return 0;
    }
    match destroy_here(targets, select, ns) {
        Ok(destroyed) => destroyed,
        Err(error) => {
            tracing::warn!(netns = %ns, %error, "lb: cannot list UDP sockets");
            0
        }
    }
}

/// Destroys the matching sockets of the calling thread's network namespace.
fn destroy_here(
    targets: &Targets,
    select: &(dyn Fn(&ConnectedUdp) -> bool + Sync),
    ns: &dyn Display,
) -> Result<usize, diag::DiagError> {
    let mut diag = DiagSocket::open()?;
    let mut destroyed = 0;
    for dump in &targets.dumps {
        let found = diag.connected_udp(dump.family, dump.dport, dump.bytecode.as_deref())?;
        for socket in found {
            let (Some(local), Some(remote)) = (socket.local(), socket.remote()) else {
                continue;
            };
            let entry = ConnectedUdp {
                family: socket.family,
                local,
                remote,
                cookie: socket.id.cookie(),
            };
            if !targets.matches(remote) || !select(&entry) {
                continue;
            }
            match diag.destroy(&socket) {
                Ok(()) => destroyed += 1,
                // Closed since the dump.
                Err(error) if error.errno() == Errno::ENOENT => {}
                Err(error) => {
                    tracing::warn!(netns = %ns, %local, %remote, %error, "lb: cannot destroy a UDP socket");
                }
            }
        }
    }
    Ok(destroyed)
}

/// The backends looked for, and the dumps that find them.
#[derive(Debug)]
struct Targets {
    /// Canonical: IPv4 backends as IPv4.
    backends: BTreeSet<SocketAddr>,
    dumps: Vec<Dump>,
}

/// One dump request: a family and the kernel-side filters.
#[derive(Debug)]
struct Dump {
    family: u8,
    dport: Option<u16>,
    bytecode: Option<Vec<u8>>,
}

impl Targets {
    fn new(backends: &BTreeSet<SocketAddr>) -> Self {
        let backends: BTreeSet<SocketAddr> = backends.iter().copied().map(canonical).collect();
        let v4: Vec<SocketAddr> = backends
            .iter()
            .copied()
            .filter(SocketAddr::is_ipv4)
            .collect();
        let all: Vec<SocketAddr> = backends.iter().copied().collect();
        let mut dumps = Vec::new();
        if !v4.is_empty() {
            dumps.push(Dump::new(AF_INET, &v4));
        }
        // IPv6 sockets: IPv6 backends, and IPv4 ones reached through v4-mapped addresses.
        if !all.is_empty() {
            dumps.push(Dump::new(AF_INET6, &all));
        }
        Self { backends, dumps }
    }

    fn matches(&self, remote: SocketAddr) -> bool {
        self.backends.contains(&canonical(remote))
    }
}

impl Dump {
    fn new(family: u8, remotes: &[SocketAddr]) -> Self {
        let ports: BTreeSet<u16> = remotes.iter().map(SocketAddr::port).collect();
        Self {
            family,
            dport: match ports.len() {
                1 => ports.first().copied(),
                _ => None,
            },
            bytecode: wire::remote_filter(remotes),
        }
    }
}

/// `[::ffff:a.b.c.d]:p` as `a.b.c.d:p`; anything else unchanged.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests;
