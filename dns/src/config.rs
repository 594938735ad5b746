//! Settings of the DNS engine, validated by the daemon before anything binds.

use ipnet::IpNet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// Settings of the DNS engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// UDP and TCP addresses to serve on.
    pub listen: Vec<SocketAddr>,
    /// The cluster zone, lowercase, without a trailing dot (e.g. `cluster.local`).
    pub cluster_domain: String,
    /// TTL of the cluster records, and the SOA minimum (negative answers).
    pub ttl: u32,
    /// Whether `a-b-c-d.<ns>.pod.<zone>` names are answered.
    pub pods: PodMode,
    /// CoreDNS's `endpoint_pod_names`: a headless Service's endpoint without a hostname is
    /// named after its pod (EndpointSlice `targetRef`) rather than its dashed IP.
    pub endpoint_pod_names: bool,
    /// Where names outside the cluster zone go; empty: the nameservers of `/etc/resolv.conf`.
    pub upstreams: Vec<SocketAddr>,
    /// Clients whose names outside the cluster zone are forwarded; others get REFUSED.
    pub allow: Vec<IpNet>,
    /// How long one upstream gets to answer before the next one is tried.
    pub upstream_timeout: Duration,
    /// Forwarded answers kept at most.
    pub cache_entries: usize,
}

impl DnsConfig {
    /// The kubeadm Corefile's `ttl 30`.
    pub const DEFAULT_TTL: u32 = 30;
    /// CoreDNS accepts 0 to 3600.
    pub const MAX_TTL: u32 = 3600;
    pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
    pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

    /// Defaults for everything but the listeners and the zone.
    pub fn new(listen: Vec<SocketAddr>, cluster_domain: &str) -> Self {
        Self {
            listen,
            cluster_domain: cluster_domain.trim_end_matches('.').to_ascii_lowercase(),
            ttl: Self::DEFAULT_TTL,
            pods: PodMode::Insecure,
            endpoint_pod_names: false,
            upstreams: Vec::new(),
            allow: default_allow(),
            upstream_timeout: Self::DEFAULT_UPSTREAM_TIMEOUT,
            cache_entries: Self::DEFAULT_CACHE_ENTRIES,
        }
    }
}

/// CoreDNS's `pods` option, without `verified` (it needs a watch on every pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodMode {
    /// Any well-formed dashed IP in an existing namespace gets its A/AAAA (the kubeadm default).
    Insecure,
    /// No pod names (NXDOMAIN).
    Disabled,
}

impl FromStr for PodMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "insecure" => Ok(Self::Insecure),
            "disabled" => Ok(Self::Disabled),
            other => Err(format!("{other:?} is not insecure or disabled")),
        }
    }
}

/// Loopback, the private ranges (RFC 1918, RFC 6598 shared space, ULA) and link-local: where
/// pods and nodes live. Forwarding for anyone else would make an open resolver.
pub fn default_allow() -> Vec<IpNet> {
    [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ]
    .iter()
    .map(|net| net.parse().expect("a valid built-in network"))
    .collect()
}
