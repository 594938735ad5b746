//! kube-proxy's chain names. kube-proxy hashes with SHA-256 and keeps the first 16 (iptables)
//! or 8 (nftables) base32 characters; here std's SipHash feeds the same base32 encoding, so
//! names have kube-proxy's format and length (which is all the kernel and the restore
//! parsers see) without a hashing dependency.

use super::topology::{self, NAMESPACE, TARGET_PORT};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The first `len` (<= 25) base32 characters of a 128-bit hash of `input`.
fn hash(input: &str, len: usize) -> String {
    let mut bits: u128 = 0;
    for salt in 0..2u8 {
        let mut hasher = DefaultHasher::new();
        (salt, input).hash(&mut hasher);
        bits = (bits << 64) | u128::from(hasher.finish());
    }
    (0..len)
        .map(|k| BASE32[((bits >> (123 - 5 * k)) & 31) as usize] as char)
        .collect()
}

/// `ns/name:port`, kube-proxy's ServicePortName.
pub fn service_port(i: u32) -> String {
    format!("{NAMESPACE}/{}:http", topology::service_name(i))
}

pub fn iptables_svc(i: u32) -> String {
    format!("KUBE-SVC-{}", hash(&format!("{}tcp", service_port(i)), 16))
}

pub fn iptables_sep(i: u32, ip: Ipv4Addr) -> String {
    let input = format!("{}tcp{ip}:{TARGET_PORT}", service_port(i));
    format!("KUBE-SEP-{}", hash(&input, 16))
}

/// `ns/name/tcp/port`, the readable tail of kube-proxy's nftables chain names.
fn nft_tail(i: u32) -> String {
    format!("{NAMESPACE}/{}/tcp/http", topology::service_name(i))
}

pub fn nft_service(i: u32) -> String {
    let tail = nft_tail(i);
    format!("service-{}-{tail}", hash(&tail, 8))
}

pub fn nft_endpoint(i: u32, ip: Ipv4Addr) -> String {
    let tail = format!("{}__{ip}/{TARGET_PORT}", nft_tail(i));
    format!("endpoint-{}-{tail}", hash(&tail, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_kube_proxy_shapes() {
        let svc = iptables_svc(7);
        assert_eq!(svc.len(), "KUBE-SVC-".len() + 16);
        assert!(
            svc.len() <= 28,
            "iptables chain names are at most 28 characters"
        );
        assert_ne!(
            iptables_sep(7, topology::endpoint(7, 0)),
            iptables_sep(7, topology::endpoint(7, 1))
        );
        assert!(nft_service(7).starts_with("service-"));
        assert!(nft_service(7).ends_with("-bench/svc-00007/tcp/http"));
        assert_eq!(hash("x", 8), hash("x", 8));
    }
}
