//! Facts about this host used as defaults: hostname, node IP, cgroup2 mount.

use std::net::IpAddr;
use std::path::PathBuf;

/// The kernel hostname, lowercased as Kubernetes node names are.
pub fn hostname() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?;
    let name = name.to_str()?.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// The node's default addresses: the first IPv4 address of the interface holding the IPv4
/// default route, then the first global IPv6 address of the one holding the IPv6 default
/// route, each when there is one.
pub fn default_route_ips() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let addrs: Vec<_> = addrs.collect();
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let v4 = default_route_interface(&read("/proc/net/route")).and_then(|iface| {
        addrs
            .iter()
            .filter(|a| a.interface_name == iface)
            .find_map(|a| a.address?.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
    });
    let v6 = default_route6_interface(&read("/proc/net/ipv6_route")).and_then(|iface| {
        addrs
            .iter()
            .filter(|a| a.interface_name == iface)
            .filter_map(|a| a.address?.as_sockaddr_in6().map(|s| s.ip()))
            .find(|ip| !ip.is_loopback() && !ip.is_unicast_link_local())
            .map(IpAddr::V6)
    });
    v4.into_iter().chain(v6).collect()
}

/// The interface holding `ip`, if any.
pub fn interface_with(ip: IpAddr) -> Option<String> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    addrs
        .filter(|a| {
            let Some(address) = a.address.as_ref() else {
                return false;
            };
            let found = match ip {
                IpAddr::V4(_) => address.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())),
                IpAddr::V6(_) => address.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())),
            };
            found == Some(ip)
        })
        .map(|a| a.interface_name)
        .next()
}

/// The interface of the `0.0.0.0/0` entry of a `/proc/net/route` table.
fn default_route_interface(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (iface, destination, mask) = (fields.first()?, fields.get(1)?, fields.get(7)?);
        (*destination == "00000000" && *mask == "00000000").then(|| iface.to_string())
    })
}

/// The interface of the `::/0` entry of a `/proc/net/ipv6_route` table that is not a reject
/// route (the kernel keeps one on `lo`).
fn default_route6_interface(table: &str) -> Option<String> {
    const RTF_REJECT: u32 = 0x0200;
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, prefix) = (fields.first()?, fields.get(1)?);
        let flags = u32::from_str_radix(fields.get(8)?, 16).ok()?;
        let iface = fields.get(9)?;
        (destination.bytes().all(|b| b == b'0') && *prefix == "00" && flags & RTF_REJECT == 0)
            .then(|| iface.to_string())
    })
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`, which IPv6 shares).
pub fn ephemeral_ports() -> Option<std::ops::RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut ports = text.split_whitespace().map(str::parse::<u16>);
    Some(ports.next()?.ok()?..=ports.next()?.ok()?)
}

/// Where the cgroup2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on
/// hybrid hosts).
pub fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        // "... mountpoint options ... - fstype source superopts"
        let (left, right) = line.split_once(" - ")?;
        let mountpoint = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mountpoint))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_default_route_interface() {
        let table = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
                     eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn finds_the_ipv6_default_route_interface_but_not_the_reject_route() {
        let zero = "00000000000000000000000000000000";
        let table = format!(
            "{zero} 00 {zero} 00 {zero} ffffffff 00000001 00000000 00200200 lo\n\
             fd000000000000000000000000000000 40 {zero} 00 {zero} 00000100 00000001 00000000 00000001 eth1\n\
             {zero} 00 {zero} 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003 eth0\n"
        );
        assert_eq!(default_route6_interface(&table).as_deref(), Some("eth0"));
        assert_eq!(
            default_route6_interface(&table[..table.find("fd00").unwrap()]),
            None
        );
    }
}
