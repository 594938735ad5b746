//! `ferry run` settings: a YAML file and flags, merged and validated before anything binds.

use crate::cli::RunArgs;
use crate::host;
use ferry_model::ObjectKey;
use ferry_model::lb::LocalDns;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:10256";
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The `--config` file. Keys are camelCase, as in Kubernetes component configs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    manifests: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    node_name: Option<String>,
    #[serde(rename = "nodeIP")]
    node_ip: Option<String>,
    admin_listen: Option<String>,
    cluster_domain: Option<String>,
    #[serde(default)]
    lb: LbSection,
    #[serde(default)]
    dns: DnsSection,
    #[serde(default)]
    ingress: IngressSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LbSection {
    enabled: Option<bool>,
    cgroup: Option<PathBuf>,
    nodeport_interfaces: Option<Vec<String>>,
    pin_path: Option<PathBuf>,
    max_frontends: Option<u32>,
    max_backends: Option<u32>,
    cleanup: Option<bool>,
    algorithm: Option<String>,
    snat_ports: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DnsSection {
    enabled: Option<bool>,
    listen: Option<Vec<String>>,
    ttl: Option<u32>,
    pods: Option<String>,
    endpoint_pod_names: Option<bool>,
    upstreams: Option<Vec<String>>,
    allow: Option<Vec<String>>,
    service: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IngressSection {
    enabled: Option<bool>,
    http: Option<String>,
    https: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--config {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    Manifests(PathBuf),
}

/// The load balancer's engine settings, and whether to remove its pins at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbSettings {
    pub engine: ferry_lb::LbConfig,
    pub cleanup_on_exit: bool,
}

/// Validated settings of `ferry run`; a disabled subsystem is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: SourceConfig,
    pub node_name: String,
    /// This node's addresses, at most one per family (IPv4 first).
    pub node_ips: Vec<IpAddr>,
    pub admin_listen: SocketAddr,
    pub cluster_domain: String,
    pub lb: Option<LbSettings>,
    pub dns: Option<ferry_dns::DnsConfig>,
    pub ingress: Option<ferry_ingress::IngressConfig>,
    /// The cluster DNS Service steered to this node's DNS when both DNS and the LB run.
    pub dns_service: Option<ObjectKey>,
}

impl Config {
    /// Node-local DNS: with DNS and the LB both on and a `--dns-service`, where the LB sends
    /// that Service's DNS port: the listen addresses, a wildcard one standing for the node IP
    /// of its family. `None` when there is nothing to steer to.
    pub fn local_dns(&self) -> Option<LocalDns> {
        let (Some(_), Some(dns), Some(service)) = (&self.lb, &self.dns, &self.dns_service) else {
            return None;
        };
        let listen: Vec<SocketAddr> = dns
            .listen
            .iter()
            .filter_map(|addr| {
                if !addr.ip().is_unspecified() {
                    return Some(*addr);
                }
                let ip = self
                    .node_ips
                    .iter()
                    .find(|ip| ip.is_ipv4() == addr.is_ipv4())?;
                Some(SocketAddr::new(*ip, addr.port()))
            })
            .collect();
        (!listen.is_empty()).then(|| LocalDns {
            service: service.clone(),
            listen,
        })
    }

    /// Reads `--config` if given, lets the flags override it, and validates the result.
    pub fn load(args: &RunArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            None => FileConfig::default(),
            Some(path) => read_file(path)?,
        };
        Self::merge(args, file)
    }

    fn merge(args: &RunArgs, file: FileConfig) -> Result<Self, ConfigError> {
        let manifests = args.manifests.clone().or(file.manifests);
        let kubeconfig = args.kubeconfig.clone().or(file.kubeconfig);
        let source = match (manifests, kubeconfig) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "--manifests / --kubeconfig",
                    "give one source, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "--manifests / --kubeconfig",
                    "a source is required: --manifests DIR (or --kubeconfig FILE)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "--kubeconfig",
                    "the Kubernetes API source is not implemented yet; use --manifests DIR",
                ));
            }
            (Some(dir), None) => {
                if !dir.is_dir() {
                    return Err(invalid(
                        "--manifests",
                        format!("{} is not a directory", dir.display()),
                    ));
                }
                SourceConfig::Manifests(dir)
            }
        };

        let node_name = match args
            .node_name
            .clone()
            .or(file.node_name)
            .or_else(host::hostname)
        {
            Some(name) => name,
            None => return Err(invalid("--node-name", "no hostname to default to; set it")),
        };
        let node_ips = match args.node_ip.as_deref().or(file.node_ip.as_deref()) {
            Some(list) => node_ips(list)?,
            None => host::default_route_ips(),
        };
        let admin_listen = socket_addr(
            "--admin-listen",
            args.admin_listen
                .as_deref()
                .or(file.admin_listen.as_deref())
                .unwrap_or(DEFAULT_ADMIN_LISTEN),
        )?;
        let cluster_domain = args
            .cluster_domain
            .clone()
            .or(file.cluster_domain)
            .unwrap_or_else(|| DEFAULT_CLUSTER_DOMAIN.into())
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !is_domain(&cluster_domain) {
            return Err(invalid(
                "--cluster-domain",
                format!("{cluster_domain:?} is not a DNS domain"),
            ));
        }

        let lb = enabled(args.no_lb, file.lb.enabled)
            .then(|| lb_settings(args, file.lb, &node_ips))
            .transpose()?;
        let dns_service = dns_service(args.dns_service.as_deref().or(file.dns.service.as_deref()))?;
        let dns = enabled(args.no_dns, file.dns.enabled)
            .then(|| dns_config(args, file.dns, &cluster_domain))
            .transpose()?;
        let ingress = enabled(args.no_ingress, file.ingress.enabled)
            .then(|| -> Result<_, ConfigError> {
                let http = args.ingress_http.clone().or(file.ingress.http);
                let https = args.ingress_https.clone().or(file.ingress.https);
                Ok(ferry_ingress::IngressConfig {
                    http: http
                        .map(|a| socket_addr("--ingress-http", &a))
                        .transpose()?,
                    https: https
                        .map(|a| socket_addr("--ingress-https", &a))
                        .transpose()?,
                })
            })
            .transpose()?;

        let config = Config {
            source,
            node_name,
            node_ips,
            admin_listen,
            cluster_domain,
            lb,
            dns,
            ingress,
            dns_service,
        };
        config.check_listeners()?;
        Ok(config)
    }

    /// No two servers may share an address (DNS binds UDP and TCP, the others TCP).
    fn check_listeners(&self) -> Result<(), ConfigError> {
        let mut tcp: Vec<(SocketAddr, &'static str)> = vec![(self.admin_listen, "--admin-listen")];
        if let Some(dns) = &self.dns {
            tcp.extend(dns.listen.iter().map(|a| (*a, "--dns-listen")));
        }
        if let Some(ingress) = &self.ingress {
            tcp.extend(ingress.http.map(|a| (a, "--ingress-http")));
            tcp.extend(ingress.https.map(|a| (a, "--ingress-https")));
        }
        for (i, (addr, setting)) in tcp.iter().enumerate() {
            if let Some((_, other)) = tcp[..i].iter().find(|(a, _)| a == addr) {
                return Err(invalid(
                    setting,
                    format!("{addr} is already used by {other}"),
                ));
            }
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn lb_settings(
    args: &RunArgs,
    file: LbSection,
    node_ips: &[IpAddr],
) -> Result<LbSettings, ConfigError> {
    let cgroup = match args
        .lb_cgroup
        .clone()
        .or(file.cgroup)
        .or_else(host::cgroup2_root)
    {
        Some(path) => path,
        None => return Err(invalid("--lb-cgroup", "no cgroup2 mount found; set it")),
    };
    if !cgroup.join("cgroup.procs").is_file() {
        return Err(invalid(
            "--lb-cgroup",
            format!("{} is not a cgroup2 directory", cgroup.display()),
        ));
    }
    let mut nodeport_interfaces = pick_list(&args.nodeport_interfaces, file.nodeport_interfaces);
    if nodeport_interfaces.is_empty() {
        for iface in node_ips.iter().filter_map(|ip| host::interface_with(*ip)) {
            if !nodeport_interfaces.contains(&iface) {
                nodeport_interfaces.push(iface);
            }
        }
    }
    for name in &nodeport_interfaces {
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
            return Err(invalid(
                "--nodeport-interface",
                format!("{name:?} is not an interface name"),
            ));
        }
    }
    let size = |flag: &Option<String>, file: Option<u32>, setting, default| {
        let value = match flag {
            Some(text) => text
                .parse::<u32>()
                .map_err(|_| invalid(setting, format!("{text:?} is not a number")))?,
            None => file.unwrap_or(default),
        };
        if value == 0 {
            return Err(invalid(setting, "must be at least 1"));
        }
        Ok(value)
    };
    let max_frontends = size(
        &args.lb_max_frontends,
        file.max_frontends,
        "--lb-max-frontends",
        ferry_lb::LbConfig::DEFAULT_MAX_FRONTENDS,
    )?;
    let max_backends = size(
        &args.lb_max_backends,
        file.max_backends,
        "--lb-max-backends",
        ferry_lb::LbConfig::DEFAULT_MAX_BACKENDS,
    )?;
    let algorithm = match args.lb_algorithm.as_deref().or(file.algorithm.as_deref()) {
        None | Some("random") => ferry_lb::Algorithm::Random,
        Some("maglev") => ferry_lb::Algorithm::Maglev,
        Some(other) => {
            return Err(invalid(
                "--lb-algorithm",
                format!("{other:?} is not random or maglev"),
            ));
        }
    };
    let snat_ports = match args.lb_snat_ports.as_deref().or(file.snat_ports.as_deref()) {
        Some(text) => snat_range(text, &host::ephemeral_ports())?,
        None => ferry_lb::LbConfig::DEFAULT_SNAT_PORTS,
    };
    let pin_root = args
        .lb_pin_path
        .clone()
        .or(file.pin_path)
        .unwrap_or_else(|| PathBuf::from(ferry_lb::DEFAULT_PIN_ROOT));
    Ok(LbSettings {
        engine: ferry_lb::LbConfig {
            cgroup,
            pin_root,
            nodeport_interfaces,
            max_frontends,
            max_backends,
            algorithm,
            snat_ports,
        },
        cleanup_on_exit: args.lb_cleanup || file.cleanup.unwrap_or(false),
    })
}

fn dns_config(
    args: &RunArgs,
    file: DnsSection,
    cluster_domain: &str,
) -> Result<ferry_dns::DnsConfig, ConfigError> {
    let listen = pick_list(&args.dns_listen, file.listen)
        .iter()
        .map(|a| socket_addr("--dns-listen", a))
        .collect::<Result<_, _>>()?;
    let mut config = ferry_dns::DnsConfig::new(listen, cluster_domain);
    let ttl =
        match &args.dns_ttl {
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                invalid("--dns-ttl", format!("{text:?} is not a number of seconds"))
            })?),
            None => file.ttl,
        };
    if let Some(ttl) = ttl {
        if ttl > ferry_dns::DnsConfig::MAX_TTL {
            return Err(invalid(
                "--dns-ttl",
                format!("{ttl} is above {}", ferry_dns::DnsConfig::MAX_TTL),
            ));
        }
        config.ttl = ttl;
    }
    if let Some(mode) = args.dns_pods.as_deref().or(file.pods.as_deref()) {
        config.pods = mode.parse().map_err(|e| invalid("--dns-pods", e))?;
    }
    config.endpoint_pod_names =
        args.dns_endpoint_pod_names || file.endpoint_pod_names.unwrap_or(false);
    config.upstreams = pick_list(&args.dns_upstreams, file.upstreams)
        .iter()
        .map(|a| dns_upstream(a))
        .collect::<Result<_, _>>()?;
    if let Some(upstream) = config.upstreams.iter().find(|u| config.listen.contains(u)) {
        return Err(invalid(
            "--dns-upstream",
            format!("{upstream} is a --dns-listen address: queries would loop"),
        ));
    }
    let allow = pick_list(&args.dns_allow, file.allow);
    if !allow.is_empty() {
        config.allow = allow
            .iter()
            .map(|net| cidr("--dns-allow", net))
            .collect::<Result<_, _>>()?;
    }
    Ok(config)
}

/// `--dns-service NS/NAME`: kube-system/kube-dns when absent, nothing for `none`.
fn dns_service(value: Option<&str>) -> Result<Option<ObjectKey>, ConfigError> {
    let value = value.unwrap_or("kube-system/kube-dns");
    if value == "none" {
        return Ok(None);
    }
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    match value.split_once('/') {
        Some((namespace, name)) if dns_label(namespace) && dns_label(name) => {
            Ok(Some(ObjectKey::new(namespace, name)))
        }
        _ => Err(invalid(
            "--dns-service",
            format!("{value:?} is not NAMESPACE/NAME (or none)"),
        )),
    }
}

/// `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
fn dns_upstream(value: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    value.parse().map_err(|_| {
        invalid(
            "--dns-upstream",
            format!("{value:?} is not an address (IP, IP:PORT or [IPv6]:PORT)"),
        )
    })
}

/// `ADDR/LEN`, or a bare address for itself alone.
fn cidr(setting: &'static str, value: &str) -> Result<ferry_dns::IpNet, ConfigError> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(ip.into());
    }
    value
        .parse()
        .map_err(|_| invalid(setting, format!("{value:?} is not a CIDR (ADDR/LEN)")))
}

/// A `--no-x` flag wins; else the file's `enabled`; else on.
fn enabled(disabled_by_flag: bool, in_file: Option<bool>) -> bool {
    !disabled_by_flag && in_file.unwrap_or(true)
}

/// `--lb-snat-ports FIRST-LAST`: unprivileged ports, clear of the node's ephemeral range
/// (`ephemeral`, when known): a masqueraded flow and a node socket on one port would take each
/// other's replies.
fn snat_range(
    text: &str,
    ephemeral: &Option<RangeInclusive<u16>>,
) -> Result<RangeInclusive<u16>, ConfigError> {
    const SETTING: &str = "--lb-snat-ports";
    let parsed = text.split_once('-').and_then(|(first, last)| {
        Some((
            first.trim().parse::<u16>().ok()?,
            last.trim().parse::<u16>().ok()?,
        ))
    });
    let Some((first, last)) = parsed else {
        return Err(invalid(
            SETTING,
            format!("{text:?} is not FIRST-LAST (ports)"),
        ));
    };
    if first < 1024 || first > last {
        return Err(invalid(
            SETTING,
            format!("{text:?}: want 1024 <= FIRST <= LAST <= 65535"),
        ));
    }
    if let Some(ephemeral) = ephemeral
        && first <= *ephemeral.end()
        && *ephemeral.start() <= last
    {
        return Err(invalid(
            SETTING,
            format!(
                "{text:?} overlaps net.ipv4.ip_local_port_range {}-{}: the node's own \
                 connections would take the same ports",
                ephemeral.start(),
                ephemeral.end()
            ),
        ));
    }
    Ok(first..=last)
}

/// `--node-ip`: one address, or a comma-separated IPv4 and IPv6 pair (as kubelet takes it).
fn node_ips(list: &str) -> Result<Vec<IpAddr>, ConfigError> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for text in list.split(',').map(str::trim) {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| invalid("--node-ip", format!("{text:?} is not an IP address")))?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(invalid(
                "--node-ip",
                format!("{ip} cannot be a node address"),
            ));
        }
        if ips.iter().any(|other| other.is_ipv4() == ip.is_ipv4()) {
            return Err(invalid(
                "--node-ip",
                format!("{list:?}: at most one IPv4 and one IPv6 address"),
            ));
        }
        ips.push(ip);
    }
    ips.sort_by_key(IpAddr::is_ipv6);
    Ok(ips)
}

/// Repeatable flags replace the file's list when given at all.
fn pick_list(flags: &[String], file: Option<Vec<String>>) -> Vec<String> {
    if flags.is_empty() {
        file.unwrap_or_default()
    } else {
        flags.to_vec()
    }
}

fn socket_addr(setting: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            setting,
            format!("{value:?} is not an address (IP:PORT, or [IPv6]:PORT)"),
        )
    })
}

fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests;
