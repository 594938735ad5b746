//! Ferry's cluster DNS engine (CoreDNS replacement).
//!
//! [`DnsServer`] answers the cluster zone from the last [`DnsTable`] it was given, over UDP and
//! TCP on every listen address, and forwards every other name to upstream servers. The table
//! (names to records) is compiled by the model; this crate owns the DNS semantics on top of it:
//! NXDOMAIN vs NODATA, the SOA, TTLs, case echoing, pod names, truncation and EDNS, forwarding
//! and its cache. Messages are read and written with `hickory-proto`; the listeners are ours,
//! so that a cluster answer is computed and sent from the receive loop without a task or a
//! channel hop, and nothing is logged per query. Each UDP address has a receive loop on a
//! thread of its own, batching datagrams and answering repeated questions from a cache of
//! encoded responses (the same bytes, stamped with the query's id).

mod cache;
mod config;
mod forward;
#[doc(hidden)]
pub mod fuzz;
mod handler;
mod listen;
mod metrics;
mod server;
mod wire;
mod zone;

pub use config::{DnsConfig, PodMode, default_allow};
pub use forward::{RESOLV_CONF, from_resolv_conf};
pub use ipnet::IpNet;
pub use metrics::DnsMetrics;
pub use wire::{EDNS_PAYLOAD, Transport};

use ferry_model::dns::DnsTable;
use forward::Forwarder;
use handler::Handler;
use server::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use zone::{Snapshot, Zone};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns: cannot listen on {transport} {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        transport: &'static str,
        source: std::io::Error,
    },
}

/// The running DNS server. Dropping it stops the listeners.
#[derive(Debug)]
pub struct DnsServer {
    shared: Arc<Shared>,
    ttl: u32,
    local: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds UDP and TCP on every listen address (port 0 picks one, the same for both) and
    /// starts serving: SERVFAIL for cluster names until the first [`DnsServer::publish`].
    /// Upstreams: `config.upstreams`, else the nameservers of `/etc/resolv.conf` that are not
    /// ours.
    pub async fn start(config: DnsConfig, metrics: DnsMetrics) -> Result<Self, DnsError> {
        let mut sockets = Vec::with_capacity(config.listen.len());
        let mut local = Vec::with_capacity(config.listen.len());
        for addr in &config.listen {
            let bind = |transport, source| DnsError::Bind {
                addr: *addr,
                transport,
                source,
            };
            let udp = listen::udp(*addr).map_err(|e| bind("udp", e))?;
            let bound = udp.local_addr().map_err(|e| bind("udp", e))?;
            let tcp = listen::tcp(bound).map_err(|e| bind("tcp", e))?;
            local.push(bound);
            sockets.push((udp, tcp));
        }
        let upstreams = if config.upstreams.is_empty() {
            match std::fs::read_to_string(RESOLV_CONF) {
                Ok(text) => from_resolv_conf(&text, &local),
                Err(error) => {
                    tracing::warn!(%error, path = RESOLV_CONF, "dns: no upstream servers; names outside the cluster get SERVFAIL");
                    Vec::new()
                }
            }
        } else {
            config.upstreams.clone()
        };
        tracing::info!(listen = ?local, upstreams = ?upstreams, zone = %config.cluster_domain, "dns: serving");
        let forwarder = Forwarder::new(upstreams, config.upstream_timeout, config.cache_entries);
        let zone = Zone::new(&config.cluster_domain, config.ttl, config.pods);
        let handler = Handler::new(zone, forwarder, config.allow.clone(), metrics);
        let shared = Arc::new(Shared::new(handler));
        for ((udp, tcp), addr) in sockets.into_iter().zip(&local) {
            server::spawn_udp(udp, shared.clone()).map_err(|source| DnsError::Bind {
                addr: *addr,
                transport: "udp",
                source,
            })?;
            tokio::spawn(server::serve_tcp(tcp, shared.clone()));
        }
        Ok(Self {
            shared,
            ttl: config.ttl,
            local,
        })
    }

    /// Answers from `table` from the next query on.
    pub fn publish(&self, table: DnsTable) {
        self.shared.handler.publish(Snapshot::new(table, self.ttl));
    }

    /// Whether a table has been published (cluster names are answered).
    pub fn is_serving(&self) -> bool {
        self.shared.handler.is_published()
    }

    /// The bound addresses, in the order of `listen`.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    pub fn metrics(&self) -> &DnsMetrics {
        self.shared.handler.metrics()
    }

    /// Stops the listeners and in-flight queries.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
