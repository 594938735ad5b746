//! The command line: `ferry run` and `ferry check`. These names are the public interface.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Kubernetes node networking in one daemon: eBPF service load balancing, cluster DNS and ingress"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node daemon.
    Run(Box<RunArgs>),
    /// Validate a manifest directory: print every problem with its file and object.
    Check(CheckArgs),
    /// Remove every BPF program link and map Ferry pinned (detaches the load balancer).
    Cleanup(CleanupArgs),
}

/// Flags of `ferry run`. Values are validated in `config`, so that every configuration error,
/// from a flag or from `--config`, is reported the same way (exit code 64).
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// YAML file with the same settings as the flags (flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve the Kubernetes objects found in this directory (no cluster needed).
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Watch a Kubernetes API server with this kubeconfig (reserved: not implemented yet).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name, for node-local endpoints (default: the hostname).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// This node's IP, or an IPv4,IPv6 pair for dual stack (default: the addresses of the
    /// default-route interfaces).
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<String>,
    /// Admin server: /healthz, /readyz, /metrics, /debug/state (default 127.0.0.1:10256).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Serve DNS on this address, UDP and TCP (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub dns_listen: Vec<String>,
    /// TTL of cluster DNS records and of negative answers, 0 to 3600 (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub dns_ttl: Option<String>,
    /// Pod names `a-b-c-d.<ns>.pod.<zone>`: `insecure` (default) or `disabled`.
    #[arg(long, value_name = "MODE")]
    pub dns_pods: Option<String>,
    /// Name a headless Service's endpoints that have no hostname after their pod, not their
    /// IP (CoreDNS's `endpoint_pod_names`).
    #[arg(long)]
    pub dns_endpoint_pod_names: bool,
    /// Upstream DNS server for names outside the cluster, IP or IP:PORT (repeatable;
    /// default: the nameservers of /etc/resolv.conf).
    #[arg(long = "dns-upstream", value_name = "ADDR")]
    pub dns_upstreams: Vec<String>,
    /// Clients whose other names are forwarded, as a CIDR (repeatable; default: loopback and
    /// private ranges); others get REFUSED for them.
    #[arg(long = "dns-allow", value_name = "CIDR")]
    pub dns_allow: Vec<String>,
    /// The cluster DNS Service whose port 53 the load balancer sends to this node's own DNS
    /// while it answers (default kube-system/kube-dns; `none`: never).
    #[arg(long, value_name = "NS/NAME")]
    pub dns_service: Option<String>,
    /// The cluster DNS domain (default cluster.local).
    #[arg(long, value_name = "DOMAIN")]
    pub cluster_domain: Option<String>,
    /// Serve Ingress HTTP on this address.
    #[arg(long, value_name = "ADDR")]
    pub ingress_http: Option<String>,
    /// Serve Ingress HTTPS on this address.
    #[arg(long, value_name = "ADDR")]
    pub ingress_https: Option<String>,
    /// cgroup2 directory the socket load balancer attaches to (default: the cgroup2 root).
    #[arg(long, value_name = "PATH")]
    pub lb_cgroup: Option<PathBuf>,
    /// Interface for NodePort/externalIP/LoadBalancer traffic (repeatable; default: the one
    /// holding the node IP).
    #[arg(long = "nodeport-interface", value_name = "IFNAME")]
    pub nodeport_interfaces: Vec<String>,
    /// bpffs directory where BPF links and maps are pinned (default /sys/fs/bpf/ferry).
    #[arg(long, value_name = "PATH")]
    pub lb_pin_path: Option<PathBuf>,
    /// How NodePort/external flows pick a backend: `random` (default) or `maglev`
    /// (consistent hashing: every node picks the same backend for a flow).
    #[arg(long, value_name = "ALGORITHM")]
    pub lb_algorithm: Option<String>,
    /// Source ports of masqueraded NodePort/external flows, FIRST-LAST (default 61000-65535:
    /// above the kernel's ephemeral ports, which they must not overlap).
    #[arg(long, value_name = "FIRST-LAST")]
    pub lb_snat_ports: Option<String>,
    /// Capacity of the frontend maps (default 65536).
    #[arg(long, value_name = "N")]
    pub lb_max_frontends: Option<String>,
    /// Capacity of the backend map (default 1048576).
    #[arg(long, value_name = "N")]
    pub lb_max_backends: Option<String>,
    /// On shutdown, remove everything the load balancer attached or pinned (by default the
    /// datapath outlives the daemon).
    #[arg(long)]
    pub lb_cleanup: bool,
    /// Switch the eBPF load balancer off.
    #[arg(long)]
    pub no_lb: bool,
    /// Switch cluster DNS off.
    #[arg(long)]
    pub no_dns: bool,
    /// Switch the ingress router off.
    #[arg(long)]
    pub no_ingress: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The manifest directory to validate.
    #[arg(long, value_name = "DIR")]
    pub manifests: PathBuf,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The pin directory of the daemon to clean up after.
    #[arg(long, value_name = "PATH", default_value = ferry_lb::DEFAULT_PIN_ROOT)]
    pub lb_pin_path: PathBuf,
}

/// Parses the command line. Help and version exit 0; any usage error exits 64, like every
/// other configuration error.
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|error| {
        let _ = error.print();
        if error.use_stderr() {
            ExitCode::from(super::EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })
}
