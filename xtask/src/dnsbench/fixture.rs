//! The zone both servers serve, written twice: as Kubernetes manifests for ferry and as an
//! RFC 1035 zone file for NSD, plus the dnsperf query file and the sample the answers are
//! compared on.
//!
//! Namespace `bench`: Services `svc-<i>` (ClusterIP 10.96.0.1+i, named port `http` 80/TCP),
//! headless `hl-<h>` (10 ready endpoints 10.244.h.1..10 without hostnames, port `http`
//! 8080/TCP) and ExternalName `ext-<x>` aimed at `svc-<x>.bench.svc.cluster.local`, a name
//! inside the zone, so that both servers complete the CNAME from their own data and no query
//! leaves the machine.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

pub const ZONE: &str = "cluster.local";
pub const NAMESPACE: &str = "bench";
/// The cluster records' TTL (ferry's default, `--dns-ttl 30`); the SOA minimum too.
pub const TTL: u32 = 30;
/// Endpoints per headless Service (and per Service in the memory fixture).
pub const ENDPOINTS: u32 = 10;
/// Lines of the dnsperf query file; dnsperf loops over it.
const QUERIES: u32 = 20_000;
/// Services per manifest file.
const PER_FILE: u32 = 500;

/// How many objects of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub cluster_ip: u32,
    pub headless: u32,
    pub external: u32,
    /// An EndpointSlice of [`ENDPOINTS`] endpoints for every ClusterIP Service too (the
    /// memory fixture); the DNS answers do not depend on it.
    pub cluster_ip_endpoints: bool,
}

impl Shape {
    /// The serving zone.
    pub const SERVE: Shape = Shape {
        cluster_ip: 1000,
        headless: 50,
        external: 50,
        cluster_ip_endpoints: false,
    };

    /// Services + endpoints, the unit of the memory target.
    pub fn objects(&self) -> u64 {
        let services = u64::from(self.cluster_ip + self.headless + self.external);
        let per = u64::from(ENDPOINTS);
        let endpoints = u64::from(self.headless) * per
            + if self.cluster_ip_endpoints {
                u64::from(self.cluster_ip) * per
            } else {
                0
            };
        services + endpoints
    }
}

fn cluster_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 1)) + i)
}

/// Endpoint `e` of headless Service `h`.
fn headless_ip(h: u32, e: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 244 + (h / 256) as u8, (h % 256) as u8, e as u8 + 1)
}

/// Endpoint `e` of ClusterIP Service `i` (memory fixture): 10.128.0.0/12.
fn backend_ip(i: u32, e: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 1)) + i * 16 + e)
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

fn fqdn(service: &str) -> String {
    format!("{service}.{NAMESPACE}.svc.{ZONE}")
}

/// Writes the manifest directory ferry reads.
pub fn write_manifests(dir: &Path, shape: Shape) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = None;
    for i in 0..shape.cluster_ip {
        if i % PER_FILE == 0 {
            file = Some(create(&dir.join(format!("svc-{:03}.yaml", i / PER_FILE)))?);
        }
        let out = file.as_mut().expect("opened above");
        write!(
            out,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: {NAMESPACE}}}\n\
             spec:\n  clusterIP: {ip}\n  ports: [{{name: http, port: 80, protocol: TCP, targetPort: 8080}}]\n",
            ip = cluster_ip(i)
        )?;
        if shape.cluster_ip_endpoints {
            let ips: Vec<Ipv4Addr> = (0..ENDPOINTS).map(|e| backend_ip(i, e)).collect();
            write_slice(out, &format!("svc-{i}"), &ips)?;
        }
    }
    let mut out = create(&dir.join("headless.yaml"))?;
    for h in 0..shape.headless {
        write!(
            out,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: hl-{h}, namespace: {NAMESPACE}}}\n\
             spec:\n  clusterIP: None\n  ports: [{{name: http, port: 80, protocol: TCP, targetPort: 8080}}]\n"
        )?;
        let ips: Vec<Ipv4Addr> = (0..ENDPOINTS).map(|e| headless_ip(h, e)).collect();
        write_slice(&mut out, &format!("hl-{h}"), &ips)?;
    }
    let mut out = create(&dir.join("external.yaml"))?;
    for x in 0..shape.external {
        write!(
            out,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: ext-{x}, namespace: {NAMESPACE}}}\n\
             spec:\n  type: ExternalName\n  externalName: {target}\n",
            target = fqdn(&format!("svc-{}", x % shape.cluster_ip.max(1)))
        )?;
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::new(std::fs::File::create(path)?))
}

fn write_slice(
    out: &mut impl std::io::Write,
    service: &str,
    ips: &[Ipv4Addr],
) -> anyhow::Result<()> {
    write!(
        out,
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {service}-x7k2p, namespace: {NAMESPACE}, labels: {{kubernetes.io/service-name: {service}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: 8080, protocol: TCP}}]\nendpoints:\n"
    )?;
    for ip in ips {
        writeln!(
            out,
            "- {{addresses: [\"{ip}\"], conditions: {{ready: true}}}}"
        )?;
    }
    Ok(())
}

/// The same names as an NSD zone file: what ferry's model compiles from the manifests
/// (A, SRV per named port and on the bare name with CoreDNS's weights, endpoint names,
/// CNAMEs, `dns-version`), with ferry's SOA and NS.
pub fn zone_file(shape: Shape) -> String {
    let mut z = String::new();
    let _ = write!(
        z,
        "$ORIGIN {ZONE}.\n$TTL {TTL}\n\
         @ IN SOA ns.dns.{ZONE}. hostmaster.{ZONE}. 1 7200 1800 86400 {TTL}\n\
         @ IN NS ns.dns.{ZONE}.\n\
         dns-version 28800 IN TXT \"1.1.0\"\n"
    );
    for i in 0..shape.cluster_ip {
        let name = format!("svc-{i}.{NAMESPACE}.svc");
        let target = fqdn(&format!("svc-{i}"));
        let _ = write!(
            z,
            "{name} IN A {ip}\n{name} IN SRV 0 100 80 {target}.\n_http._tcp.{name} IN SRV 0 100 80 {target}.\n",
            ip = cluster_ip(i)
        );
    }
    for h in 0..shape.headless {
        let name = format!("hl-{h}.{NAMESPACE}.svc");
        let weight = 100 / ENDPOINTS;
        for e in 0..ENDPOINTS {
            let ip = headless_ip(h, e);
            let host = format!("{}.{name}", dashed(ip));
            let _ = write!(
                z,
                "{name} IN A {ip}\n{host} IN A {ip}\n\
                 {name} IN SRV 0 {weight} 8080 {host}.{ZONE}.\n_http._tcp.{name} IN SRV 0 {weight} 8080 {host}.{ZONE}.\n"
            );
        }
    }
    for x in 0..shape.external {
        let target = fqdn(&format!("svc-{}", x % shape.cluster_ip.max(1)));
        let _ = writeln!(z, "ext-{x}.{NAMESPACE}.svc IN CNAME {target}.");
    }
    z
}

/// What a query is meant to get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Positive,
    NoData,
    NxDomain,
}

/// The `i`-th query of the mix: about 90 % positive A/SRV (ClusterIP A and SRV, headless A
/// and SRV, endpoint A, ExternalName A), 5 % NODATA (AAAA of a v4-only Service, TXT of a
/// headless one), 5 % NXDOMAIN (unknown Services and search-path expansions such as
/// `svc-1.bench.svc.cluster.local.bench.svc.cluster.local`).
pub fn query(i: u32, shape: Shape) -> (String, &'static str, Kind) {
    // A small multiplicative hash spreads the names without a random-number crate.
    let r = i.wrapping_mul(2_654_435_761) >> 8;
    let svc = r % shape.cluster_ip.max(1);
    let hl = r % shape.headless.max(1);
    let nx = if i.is_multiple_of(40) {
        // A search-path expansion of a Service name (ndots:5).
        format!("{}.{NAMESPACE}.svc.{ZONE}", fqdn(&format!("svc-{svc}")))
    } else {
        fqdn(&format!("nosuch-{svc}"))
    };
    match i % 20 {
        0 => (nx, "A", Kind::NxDomain),
        1 if i % 40 == 1 => (fqdn(&format!("svc-{svc}")), "AAAA", Kind::NoData),
        1 => (fqdn(&format!("hl-{hl}")), "TXT", Kind::NoData),
        2..=9 => (fqdn(&format!("svc-{svc}")), "A", Kind::Positive),
        10..=13 => (
            format!("_http._tcp.{}", fqdn(&format!("svc-{svc}"))),
            "SRV",
            Kind::Positive,
        ),
        14 | 15 => (fqdn(&format!("hl-{hl}")), "A", Kind::Positive),
        16 => (
            format!("_http._tcp.{}", fqdn(&format!("hl-{hl}"))),
            "SRV",
            Kind::Positive,
        ),
        17 => {
            let ip = headless_ip(hl, r % ENDPOINTS);
            (
                format!("{}.{}", dashed(ip), fqdn(&format!("hl-{hl}"))),
                "A",
                Kind::Positive,
            )
        }
        18 => (
            fqdn(&format!("ext-{}", r % shape.external.max(1))),
            "A",
            Kind::Positive,
        ),
        _ => (fqdn(&format!("svc-{svc}")), "SRV", Kind::Positive),
    }
}

/// The dnsperf input: one `name type` per line; returns the share of each kind.
pub fn write_queries(path: &Path, shape: Shape) -> anyhow::Result<[f64; 3]> {
    let mut out = create(path)?;
    let mut counts = [0u32; 3];
    for i in 0..QUERIES {
        let (name, qtype, kind) = query(i, shape);
        writeln!(out, "{name} {qtype}")?;
        counts[kind as usize] += 1;
    }
    out.flush()?;
    Ok(counts.map(|c| f64::from(c) * 100.0 / f64::from(QUERIES)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_about_90_5_5() {
        let dir = std::env::temp_dir().join(format!("dnsbench-mix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shares = write_queries(&dir.join("q"), Shape::SERVE).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(shares, [90.0, 5.0, 5.0]);
    }

    #[test]
    fn headless_addresses_are_distinct() {
        assert_eq!(headless_ip(0, 0), Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(headless_ip(49, 9), Ipv4Addr::new(10, 244, 49, 10));
        assert_eq!(headless_ip(300, 0), Ipv4Addr::new(10, 245, 44, 1));
        assert_eq!(cluster_ip(255), Ipv4Addr::new(10, 96, 1, 0));
    }
}
