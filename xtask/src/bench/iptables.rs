//! kube-proxy's iptables mode, as `iptables-restore` input: `KUBE-SERVICES` -> `KUBE-SVC-*`
//! (`statistic --mode random`) -> `KUBE-SEP-*` (DNAT), plus the filter chains and the jumps
//! from the built-in chains. A full sync is one restore; an endpoint change is the partial
//! restore of KEP-3453: the small chains and all of `KUBE-SERVICES` rewritten, then only the
//! changed Service's chains, the removed endpoint's chain deleted.

use super::names;
use super::topology::{self, CLUSTER_CIDR, ENDPOINTS, SERVICE_PORT, TARGET_PORT};
use std::fmt::Write;

const FILTER_CHAINS: [&str; 5] = [
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
    "KUBE-SERVICES",
];
const NAT_CHAINS: [&str; 4] = [
    "KUBE-MARK-MASQ",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-SERVICES",
];

/// Everything for N Services, in one restore (for a fresh namespace).
pub fn full(n: u32) -> String {
    let mut out = String::with_capacity(n as usize * 3000);
    filter(&mut out, true);
    nat_head(&mut out, n, true);
    for i in 0..n {
        service_chains(&mut out, i, false);
    }
    out.push_str("COMMIT\n");
    out
}

/// The partial restore for "endpoint 0 of Service `changed` replaced".
pub fn change(n: u32, changed: u32) -> String {
    let mut out = String::with_capacity(n as usize * 200);
    filter(&mut out, false);
    nat_head(&mut out, n, false);
    let old = names::iptables_sep(changed, topology::endpoint(changed, 0));
    // Declared (which flushes it) before it is deleted, as kube-proxy writes it.
    writeln!(out, ":{old} - [0:0]").unwrap_or_default();
    declare_service(&mut out, changed, true);
    service_chains(&mut out, changed, true);
    writeln!(out, "-X {old}").unwrap_or_default();
    out.push_str("COMMIT\n");
    out
}

/// The filter table; with `jumps`, the rules in the built-in chains too (a first sync).
fn filter(out: &mut String, jumps: bool) {
    out.push_str("*filter\n");
    for chain in FILTER_CHAINS {
        writeln!(out, ":{chain} - [0:0]").unwrap_or_default();
    }
    if jumps {
        let new = "-m conntrack --ctstate NEW";
        for (hook, rule) in [
            (
                "INPUT",
                format!(
                    "{new} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
                ),
            ),
            (
                "INPUT",
                "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"
                    .into(),
            ),
            (
                "INPUT",
                format!(
                    "{new} -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
                ),
            ),
            (
                "FORWARD",
                format!(
                    "{new} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
                ),
            ),
            (
                "FORWARD",
                "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD".into(),
            ),
            (
                "FORWARD",
                format!(
                    "{new} -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
                ),
            ),
            (
                "FORWARD",
                format!(
                    "{new} -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
                ),
            ),
            (
                "OUTPUT",
                format!(
                    "{new} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
                ),
            ),
            (
                "OUTPUT",
                format!(
                    "{new} -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
                ),
            ),
        ] {
            writeln!(out, "-A {hook} {rule}").unwrap_or_default();
        }
    }
    out.push_str(
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         COMMIT\n",
    );
}

/// `*nat` up to the per-Service chains: declarations, the small chains, and every rule of
/// `KUBE-SERVICES`. A first sync (`first`) also declares every Service's chains and adds the
/// jumps from the built-in chains; a partial one declares only what it rewrites.
fn nat_head(out: &mut String, n: u32, first: bool) {
    out.push_str("*nat\n");
    for chain in NAT_CHAINS {
        writeln!(out, ":{chain} - [0:0]").unwrap_or_default();
    }
    if first {
        for i in 0..n {
            declare_service(out, i, false);
        }
        out.push_str(
            "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
             -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
             -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
        );
    }
    out.push_str(
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n\
         -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
    );
    for i in 0..n {
        writeln!(
            out,
            "-A KUBE-SERVICES -d {vip}/32 -p tcp -m comment --comment \"{port} cluster IP\" -m tcp --dport {SERVICE_PORT} -j {svc}",
            vip = topology::vip(i),
            port = names::service_port(i),
            svc = names::iptables_svc(i),
        )
        .unwrap_or_default();
    }
    out.push_str(
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n",
    );
}

fn declare_service(out: &mut String, i: u32, changed: bool) {
    writeln!(out, ":{} - [0:0]", names::iptables_svc(i)).unwrap_or_default();
    for ip in topology::endpoints(i, changed) {
        writeln!(out, ":{} - [0:0]", names::iptables_sep(i, ip)).unwrap_or_default();
    }
}

/// The rules of `KUBE-SVC-*` and its `KUBE-SEP-*` chains for Service `i`.
fn service_chains(out: &mut String, i: u32, changed: bool) {
    let (svc, port, vip) = (
        names::iptables_svc(i),
        names::service_port(i),
        topology::vip(i),
    );
    writeln!(
        out,
        "-A {svc} ! -s {CLUSTER_CIDR} -d {vip}/32 -p tcp -m comment --comment \"{port} cluster IP\" -m tcp --dport {SERVICE_PORT} -j KUBE-MARK-MASQ"
    )
    .unwrap_or_default();
    let endpoints = topology::endpoints(i, changed);
    for (k, ip) in endpoints.iter().enumerate() {
        let sep = names::iptables_sep(i, *ip);
        let left = ENDPOINTS as usize - k;
        let statistic = if left > 1 {
            format!(
                " -m statistic --mode random --probability {:.10}",
                1.0 / left as f64
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "-A {svc} -m comment --comment \"{port} -> {ip}:{TARGET_PORT}\"{statistic} -j {sep}"
        )
        .unwrap_or_default();
    }
    for ip in &endpoints {
        let sep = names::iptables_sep(i, *ip);
        writeln!(
            out,
            "-A {sep} -s {ip}/32 -m comment --comment \"{port}\" -j KUBE-MARK-MASQ\n\
             -A {sep} -p tcp -m comment --comment \"{port}\" -m tcp -j DNAT --to-destination {ip}:{TARGET_PORT}"
        )
        .unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sync_has_kube_proxys_rule_counts() {
        let text = full(3);
        let nat = text.split("*nat").nth(1).unwrap_or_default();
        // Per Service: 1 KUBE-SERVICES + 1 masquerade + E jumps + 2E in the SEP chains.
        let rules = nat.lines().filter(|l| l.starts_with("-A KUBE-S")).count();
        assert_eq!(rules, 3 * (2 + 3 * ENDPOINTS as usize) + 1);
        assert_eq!(text.matches("--probability 0.1000000000").count(), 3);
        assert_eq!(text.matches("COMMIT").count(), 2);
    }

    #[test]
    fn a_change_rewrites_kube_services_and_one_service() {
        let text = change(4, 2);
        assert_eq!(text.matches("-A KUBE-SERVICES -d").count(), 4);
        assert_eq!(
            text.matches(&format!("-A {} ", names::iptables_svc(2)))
                .count(),
            11
        );
        // Other Services are only jumped to from KUBE-SERVICES, never rewritten.
        let other = names::iptables_svc(1);
        assert!(!text.contains(&format!(":{other}")));
        assert!(!text.contains(&format!("-A {other}")));
        assert!(text.contains(&format!(
            "-X {}",
            names::iptables_sep(2, topology::endpoint(2, 0))
        )));
    }
}
