//! kube-proxy's nftables mode, as `nft -f` input: table `ip kube-proxy`, one
//! `service-ips` verdict map (`ip daddr . meta l4proto . th dport vmap`) into per-Service
//! chains that pick an endpoint chain with `numgen random mod E vmap`, each endpoint chain a
//! DNAT. A full sync is one transaction; an endpoint change rewrites the changed Service's
//! chains and drops the removed endpoint's chain, as kube-proxy's partial syncs do.
//! (nft 1.0.6: chain names unquoted; numeric hook priorities.)

use super::names;
use super::topology::{self, CLUSTER_CIDR, SERVICE_CIDR, SERVICE_PORT, TARGET_PORT};
use std::fmt::Write;

const T: &str = "ip kube-proxy";

/// Everything for N Services (for a fresh namespace).
pub fn full(n: u32) -> String {
    let mut out = String::with_capacity(n as usize * 3000);
    base(&mut out);
    for i in 0..n {
        service(&mut out, i, false, false);
        let vip = topology::vip(i);
        writeln!(out, "add element {T} cluster-ips {{ {vip} }}").unwrap_or_default();
        writeln!(
            out,
            "add element {T} service-ips {{ {vip} . tcp . {SERVICE_PORT} : goto {} }}",
            names::nft_service(i)
        )
        .unwrap_or_default();
    }
    out
}

/// The transaction for "endpoint 0 of Service `changed` replaced".
pub fn change(changed: u32) -> String {
    let mut out = format!("add table {T} {{ comment \"rules for kube-proxy\" ; }}\n");
    service(&mut out, changed, true, true);
    let old = names::nft_endpoint(changed, topology::endpoint(changed, 0));
    writeln!(out, "flush chain {T} {old}\ndelete chain {T} {old}").unwrap_or_default();
    out
}

/// A Service's endpoint chains, then its service chain (which refers to them). With
/// `rewrite`, existing chains are flushed first.
fn service(out: &mut String, i: u32, changed: bool, rewrite: bool) {
    let endpoints = topology::endpoints(i, changed);
    let flush = |out: &mut String, chain: &str| {
        writeln!(out, "add chain {T} {chain}").unwrap_or_default();
        if rewrite {
            writeln!(out, "flush chain {T} {chain}").unwrap_or_default();
        }
    };
    for ip in &endpoints {
        let chain = names::nft_endpoint(i, *ip);
        flush(out, &chain);
        writeln!(
            out,
            "add rule {T} {chain} ip saddr {ip} jump mark-for-masquerade\n\
             add rule {T} {chain} meta l4proto tcp dnat to {ip}:{TARGET_PORT}"
        )
        .unwrap_or_default();
    }
    let chain = names::nft_service(i);
    flush(out, &chain);
    writeln!(
        out,
        "add rule {T} {chain} ip daddr {vip} tcp dport {SERVICE_PORT} ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade",
        vip = topology::vip(i)
    )
    .unwrap_or_default();
    let picks: Vec<String> = endpoints
        .iter()
        .enumerate()
        .map(|(k, ip)| format!("{k} : goto {}", names::nft_endpoint(i, *ip)))
        .collect();
    writeln!(
        out,
        "add rule {T} {chain} numgen random mod {} vmap {{ {} }}",
        endpoints.len(),
        picks.join(", ")
    )
    .unwrap_or_default();
}

/// The table, its base chains, sets and maps, as kube-proxy writes them.
fn base(out: &mut String) {
    let vmap3 = "type ipv4_addr . inet_proto . inet_service : verdict";
    let vmap2 = "type inet_proto . inet_service : verdict";
    writeln!(
        out,
        "add table {T} {{ comment \"rules for kube-proxy\" ; }}\n\
         add chain {T} mark-for-masquerade\n\
         add rule {T} mark-for-masquerade mark set mark or 0x4000\n\
         add chain {T} masquerading\n\
         add rule {T} masquerading mark and 0x4000 == 0 return\n\
         add rule {T} masquerading mark set mark xor 0x4000\n\
         add rule {T} masquerading masquerade fully-random\n\
         add chain {T} services\n\
         add chain {T} service-endpoints-check\n\
         add chain {T} firewall-check\n\
         add chain {T} cluster-ips-check\n\
         add chain {T} nodeport-endpoints-check\n\
         add chain {T} reject-chain {{ comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ; }}\n\
         add rule {T} reject-chain reject\n\
         add set {T} cluster-ips {{ type ipv4_addr ; comment \"Active ClusterIPs\" ; }}\n\
         add set {T} nodeport-ips {{ type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }}\n\
         add map {T} firewall-ips {{ {vmap3} ; comment \"destinations that are subject to LoadBalancerSourceRanges\" ; }}\n\
         add map {T} no-endpoint-services {{ {vmap3} ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }}\n\
         add map {T} no-endpoint-nodeports {{ {vmap2} ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }}\n\
         add map {T} service-ips {{ {vmap3} ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }}\n\
         add map {T} service-nodeports {{ {vmap2} ; comment \"NodePort traffic\" ; }}\n\
         add rule {T} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n\
         add rule {T} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips\n\
         add rule {T} cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n\
         add rule {T} cluster-ips-check ip daddr {{ {SERVICE_CIDR} }} drop comment \"Drop traffic to unallocated ClusterIPs\"\n\
         add rule {T} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports\n\
         add rule {T} services ip daddr . meta l4proto . th dport vmap @service-ips\n\
         add rule {T} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
    )
    .unwrap_or_default();
    for (chain, hook, priority, jumps) in [
        (
            "filter-prerouting",
            "filter hook prerouting",
            -110,
            &["ct state new jump firewall-check"][..],
        ),
        (
            "filter-forward",
            "filter hook forward",
            -110,
            &[
                "ct state new jump service-endpoints-check",
                "ct state new jump cluster-ips-check",
            ],
        ),
        (
            "filter-input",
            "filter hook input",
            -110,
            &[
                "ct state new jump nodeport-endpoints-check",
                "ct state new jump service-endpoints-check",
            ],
        ),
        (
            "filter-output",
            "filter hook output",
            -110,
            &[
                "ct state new jump service-endpoints-check",
                "ct state new jump firewall-check",
            ],
        ),
        (
            "filter-output-post-dnat",
            "filter hook output",
            -90,
            &["ct state new jump cluster-ips-check"],
        ),
        (
            "nat-prerouting",
            "nat hook prerouting",
            -100,
            &["jump services"],
        ),
        ("nat-output", "nat hook output", -100, &["jump services"]),
        (
            "nat-postrouting",
            "nat hook postrouting",
            100,
            &["jump masquerading"],
        ),
    ] {
        writeln!(
            out,
            "add chain {T} {chain} {{ type {hook} priority {priority} ; }}"
        )
        .unwrap_or_default();
        for rule in jumps {
            writeln!(out, "add rule {T} {chain} {rule}").unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sync_maps_every_service_to_its_chain() {
        let text = full(3);
        assert_eq!(
            text.matches("add element ip kube-proxy service-ips")
                .count(),
            3
        );
        assert_eq!(text.matches("numgen random mod 10 vmap").count(), 3);
        assert_eq!(text.matches("dnat to").count(), 30);
    }

    #[test]
    fn a_change_touches_one_service_only() {
        let text = change(2);
        assert_eq!(text.matches("dnat to").count(), 10);
        assert!(text.contains(&format!(
            "delete chain ip kube-proxy {}",
            names::nft_endpoint(2, topology::endpoint(2, 0))
        )));
        assert!(!text.contains("add element"));
    }
}
