//! Building hickory records from the table's strings and addresses.

use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{Name, RData, Record};
use std::net::IpAddr;

/// SOA timers, as CoreDNS's: refresh, retry, expire.
const REFRESH: i32 = 7200;
const RETRY: i32 = 1800;
const EXPIRE: i32 = 86400;

/// A fully qualified name from the table's form (lowercase, dotted, no trailing dot; `""` is
/// the root). The table only holds names that fit the wire format.
pub(crate) fn name_from(text: &str) -> Name {
    let labels = text.split('.').filter(|l| !l.is_empty()).map(str::as_bytes);
    Name::from_labels(labels).unwrap_or_else(|_| Name::root())
}

/// `<zone>. SOA ns.dns.<zone>. hostmaster.<zone>. <serial> 7200 1800 86400 <ttl>`: the minimum
/// is the TTL, so negative answers are cached as long as positive ones.
pub(crate) fn soa_record(apex: &Name, zone: &str, serial: u32, ttl: u32) -> Record {
    let soa = SOA::new(
        name_from(&format!("ns.dns.{zone}")),
        name_from(&format!("hostmaster.{zone}")),
        serial,
        REFRESH,
        RETRY,
        EXPIRE,
        ttl,
    );
    Record::from_rdata(apex.clone(), ttl, RData::SOA(soa))
}

/// A/AAAA records of `owner`, the list rotated left by `rotation` places.
pub(crate) fn address_records(
    owner: &Name,
    ips: impl IntoIterator<Item = IpAddr>,
    ttl: u32,
    rotation: usize,
) -> impl Iterator<Item = Record> {
    let mut ips: Vec<IpAddr> = ips.into_iter().collect();
    if ips.len() > 1 {
        let by = rotation % ips.len();
        ips.rotate_left(by);
    }
    let owner = owner.clone();
    ips.into_iter().map(move |ip| {
        let data = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        Record::from_rdata(owner.clone(), ttl, data)
    })
}
