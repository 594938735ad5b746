//! Answers from the cluster zone: what a query gets from a [`DnsTable`], following the
//! Kubernetes DNS specification and CoreDNS's kubernetes plugin, with RFC 2308 negative answers
//! (NXDOMAIN or NODATA, both with the SOA) and the query's case echoed in owner names.

mod records;

use crate::config::PodMode;
use ferry_model::dns::{DnsTable, parse_dashed_ip};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use records::{address_records, name_from, soa_record};
use std::net::IpAddr;

/// `dns-version.<zone>` TXT carries this TTL, as in the spec's example.
const VERSION_TTL: u32 = 28800;
/// CNAMEs followed inside the zone before giving up (ExternalName to ExternalName).
const MAX_CHASE: usize = 8;
/// The reverse zones whose names of cluster addresses we answer (PTR).
const REVERSE_ZONES: [&str; 2] = ["in-addr.arpa", "ip6.arpa"];

/// A published table with the records derived from it once, not per query.
#[derive(Debug)]
pub(crate) struct Snapshot {
    table: DnsTable,
    soa: Record,
    ns: Record,
    /// The SOAs of `in-addr.arpa` and `ip6.arpa`, for negative answers about reverse names.
    reverse_soa: [Record; 2],
}

impl Snapshot {
    pub(crate) fn new(table: DnsTable, ttl: u32) -> Self {
        let apex = name_from(table.zone());
        let soa = soa_record(&apex, table.zone(), table.serial(), ttl);
        let ns = Record::from_rdata(
            apex.clone(),
            ttl,
            RData::NS(hickory_proto::rr::rdata::NS(name_from(&format!(
                "ns.dns.{}",
                table.zone()
            )))),
        );
        let reverse_soa =
            REVERSE_ZONES.map(|zone| soa_record(&name_from(zone), zone, table.serial(), ttl));
        Self {
            table,
            soa,
            ns,
            reverse_soa,
        }
    }

    pub(crate) fn table(&self) -> &DnsTable {
        &self.table
    }
}

/// What the zone says about one question.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// A complete answer from the zone (or SERVFAIL before the first sync).
    Answer(Answer),
    /// Not a cluster name: forward it upstream.
    Forward,
    /// An ExternalName outside the zone asked for an address: `answer` holds the CNAME; the
    /// target's records come from upstream (and when they do not, the CNAME alone stands).
    Chase { answer: Answer, target: Name },
}

/// One response's rcode and sections.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    pub(crate) fn error(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            ..Self::default()
        }
    }
}

/// The cluster zone's settings; the snapshot comes per query.
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    /// Lowercase, no trailing dot.
    name: String,
    ttl: u32,
    pods: PodMode,
}

impl Zone {
    pub(crate) fn new(name: &str, ttl: u32, pods: PodMode) -> Self {
        Self {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            ttl,
            pods,
        }
    }

    /// Answers `qname`/`qtype` from `snapshot` (`None` before the first sync), or says where
    /// else to look. `rotation` rotates address lists (the query id: clients that take the
    /// first address spread over all of them).
    pub(crate) fn lookup(
        &self,
        snapshot: Option<&Snapshot>,
        qname: &Name,
        qtype: RecordType,
        rotation: usize,
    ) -> Lookup {
        let key = lookup_key(qname);
        let in_zone = match &key {
            Some(key) => is_below(key, &self.name),
            None => name_from(&self.name).zone_of(qname),
        };
        let reverse_zone = match &key {
            Some(key) if !in_zone => REVERSE_ZONES.iter().position(|zone| is_below(key, zone)),
            _ => None,
        };
        if !in_zone && reverse_zone.is_none() {
            return Lookup::Forward;
        }
        let Some(snapshot) = snapshot else {
            // Before the first sync nothing is known, not even which reverse names are the
            // cluster's: SERVFAIL, never a NXDOMAIN that could be cached nor an upstream's
            // answer about a cluster address.
            return Lookup::Answer(Answer::error(ResponseCode::ServFail));
        };
        let Some(key) = key else {
            return Lookup::Answer(self.nxdomain(snapshot));
        };
        let query = Query {
            snapshot,
            qname,
            qtype,
            rotation,
        };
        if let Some(zone) = reverse_zone {
            if snapshot.table.records(&key).is_none() {
                // Unknown addresses are the upstream's (CoreDNS's `fallthrough`).
                return Lookup::Forward;
            }
            let mut lookup = self.records(&query, &key);
            if let Lookup::Answer(answer) = &mut lookup
                && !answer.authorities.is_empty()
            {
                // A negative answer (NODATA) carries the reverse zone's SOA, as CoreDNS's
                // does: the cluster zone's would be out of bailiwick.
                answer.authorities = vec![snapshot.reverse_soa[zone].clone()];
            }
            return lookup;
        }
        self.cluster_name(&query, &key)
    }

    fn cluster_name(&self, query: &Query<'_>, key: &str) -> Lookup {
        let snapshot = query.snapshot;
        let relative = key
            .strip_suffix(self.name.as_str())
            .unwrap_or_default()
            .trim_end_matches('.');
        let labels: Vec<&str> = if relative.is_empty() {
            Vec::new()
        } else {
            relative.split('.').collect()
        };
        // Wildcards would let any client list every Service (CoreDNS removed them in 1.9.0).
        if labels.contains(&"*") {
            return Lookup::Answer(self.nxdomain(snapshot));
        }
        if let [ip, namespace, "pod"] = labels.as_slice() {
            return Lookup::Answer(self.pod(query, ip, namespace));
        }
        if labels.is_empty() {
            return Lookup::Answer(self.apex(query));
        }
        if labels == ["ns", "dns"] {
            return Lookup::Answer(self.nameserver(query));
        }
        if snapshot.table.records(key).is_some() {
            return self.records(query, key);
        }
        if snapshot.table.exists(key) {
            return Lookup::Answer(self.nodata(snapshot));
        }
        Lookup::Answer(self.nxdomain(snapshot))
    }

    /// The records of a name that has some.
    fn records(&self, query: &Query<'_>, key: &str) -> Lookup {
        let table = &query.snapshot.table;
        let Some(records) = table.records(key) else {
            return Lookup::Answer(self.nxdomain(query.snapshot));
        };
        if let Some(target) = &records.cname {
            if target.parse::<IpAddr>().is_ok() {
                // An ExternalName that is an IP is "not resolved by DNS servers" (the
                // Kubernetes docs); CoreDNS answers NXDOMAIN.
                return Lookup::Answer(self.nxdomain(query.snapshot));
            }
            return self.cname(query, target);
        }
        let owner = query.qname;
        let ttl = self.ttl;
        let mut answer = Answer {
            authoritative: true,
            ..Answer::default()
        };
        let qtype = query.qtype;
        let any = qtype == RecordType::ANY;
        if qtype == RecordType::A || any {
            let ips = records.a.iter().map(|ip| IpAddr::V4(*ip));
            answer
                .answers
                .extend(address_records(owner, ips, ttl, query.rotation));
        }
        if qtype == RecordType::AAAA || any {
            let ips = records.aaaa.iter().map(|ip| IpAddr::V6(*ip));
            answer
                .answers
                .extend(address_records(owner, ips, ttl, query.rotation));
        }
        if qtype == RecordType::SRV || any {
            let mut targets: Vec<&str> = Vec::new();
            for srv in &records.srv {
                let target = name_from(&srv.target);
                answer.answers.push(Record::from_rdata(
                    owner.clone(),
                    ttl,
                    RData::SRV(hickory_proto::rr::rdata::SRV::new(
                        srv.priority,
                        srv.weight,
                        srv.port,
                        target,
                    )),
                ));
                if !targets.contains(&srv.target.as_str()) {
                    targets.push(&srv.target);
                }
            }
            for target in targets {
                if let Some(found) = table.records(target) {
                    let name = name_from(target);
                    let ips = found
                        .a
                        .iter()
                        .map(|ip| IpAddr::V4(*ip))
                        .chain(found.aaaa.iter().map(|ip| IpAddr::V6(*ip)));
                    answer
                        .additionals
                        .extend(address_records(&name, ips, ttl, 0));
                }
            }
        }
        if qtype == RecordType::PTR || any {
            for target in &records.ptr {
                answer.answers.push(Record::from_rdata(
                    owner.clone(),
                    ttl,
                    RData::PTR(hickory_proto::rr::rdata::PTR(name_from(target))),
                ));
            }
        }
        if qtype == RecordType::TXT || any {
            for text in &records.txt {
                answer.answers.push(Record::from_rdata(
                    owner.clone(),
                    VERSION_TTL,
                    RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![text.clone()])),
                ));
            }
        }
        if answer.answers.is_empty() {
            return Lookup::Answer(self.nodata(query.snapshot));
        }
        Lookup::Answer(answer)
    }

    /// An ExternalName: the CNAME, then what the target has for the question, followed
    /// inside the zone or left to the upstream.
    fn cname(&self, query: &Query<'_>, target: &str) -> Lookup {
        let table = &query.snapshot.table;
        let mut answer = Answer {
            authoritative: true,
            ..Answer::default()
        };
        answer
            .answers
            .push(cname_record(query.qname, target, self.ttl));
        if query.qtype == RecordType::CNAME {
            return Lookup::Answer(answer);
        }
        let mut target = target.to_string();
        for _ in 0..MAX_CHASE {
            if !is_below(&target, &self.name) {
                let wants_address = matches!(query.qtype, RecordType::A | RecordType::AAAA);
                if wants_address {
                    return Lookup::Chase {
                        answer,
                        target: name_from(&target),
                    };
                }
                return Lookup::Answer(answer);
            }
            let Some(records) = table.records(&target) else {
                return Lookup::Answer(answer);
            };
            let owner = name_from(&target);
            if let Some(next) = &records.cname {
                answer.answers.push(cname_record(&owner, next, self.ttl));
                target.clone_from(next);
                continue;
            }
            let ips: Vec<IpAddr> = match query.qtype {
                RecordType::A => records.a.iter().map(|ip| IpAddr::V4(*ip)).collect(),
                RecordType::AAAA => records.aaaa.iter().map(|ip| IpAddr::V6(*ip)).collect(),
                _ => Vec::new(),
            };
            answer
                .answers
                .extend(address_records(&owner, ips, self.ttl, query.rotation));
            return Lookup::Answer(answer);
        }
        Lookup::Answer(answer)
    }

    /// `a-b-c-d.<ns>.pod.<zone>`: the address the label spells, in an existing namespace.
    fn pod(&self, query: &Query<'_>, label: &str, namespace: &str) -> Answer {
        let snapshot = query.snapshot;
        let namespace_exists = snapshot
            .table
            .exists(&format!("{namespace}.pod.{}", self.name));
        let ip = match (self.pods, namespace_exists) {
            (PodMode::Insecure, true) => parse_dashed_ip(label),
            _ => None,
        };
        let Some(ip) = ip else {
            return self.nxdomain(snapshot);
        };
        let wanted = match ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        if query.qtype != wanted && query.qtype != RecordType::ANY {
            return self.nodata(snapshot);
        }
        Answer {
            authoritative: true,
            answers: address_records(query.qname, [ip], self.ttl, 0).collect(),
            ..Answer::default()
        }
    }

    /// The zone apex: SOA and NS, with the nameserver's addresses as glue.
    fn apex(&self, query: &Query<'_>) -> Answer {
        let snapshot = query.snapshot;
        let mut answer = Answer {
            authoritative: true,
            ..Answer::default()
        };
        let (soa, ns) = match query.qtype {
            RecordType::SOA => (true, false),
            RecordType::NS => (false, true),
            RecordType::ANY => (true, true),
            _ => (false, false),
        };
        if soa {
            answer.answers.push(echo(&snapshot.soa, query.qname));
        }
        if ns {
            answer.answers.push(echo(&snapshot.ns, query.qname));
            answer.additionals = self.nameserver_addresses(snapshot, None, RecordType::ANY);
        }
        if answer.answers.is_empty() {
            return self.nodata(snapshot);
        }
        answer
    }

    /// `ns.dns.<zone>`, the apex NS target: the cluster DNS Service's addresses, as CoreDNS
    /// answers with its own.
    fn nameserver(&self, query: &Query<'_>) -> Answer {
        let records = self.nameserver_addresses(query.snapshot, Some(query.qname), query.qtype);
        if records.is_empty() {
            return self.nodata(query.snapshot);
        }
        Answer {
            authoritative: true,
            answers: records,
            ..Answer::default()
        }
    }

    fn nameserver_addresses(
        &self,
        snapshot: &Snapshot,
        owner: Option<&Name>,
        qtype: RecordType,
    ) -> Vec<Record> {
        let service = format!("kube-dns.kube-system.svc.{}", self.name);
        let Some(records) = snapshot.table.records(&service) else {
            return Vec::new();
        };
        let owner = owner
            .cloned()
            .unwrap_or_else(|| name_from(&format!("ns.dns.{}", self.name)));
        let any = qtype == RecordType::ANY;
        let v4 = records
            .a
            .iter()
            .filter(|_| any || qtype == RecordType::A)
            .map(|ip| IpAddr::V4(*ip));
        let v6 = records
            .aaaa
            .iter()
            .filter(|_| any || qtype == RecordType::AAAA)
            .map(|ip| IpAddr::V6(*ip));
        address_records(&owner, v4.chain(v6), self.ttl, 0).collect()
    }

    /// NOERROR, no answer, the SOA in authority (RFC 2308 NODATA).
    fn nodata(&self, snapshot: &Snapshot) -> Answer {
        Answer {
            authoritative: true,
            authorities: vec![snapshot.soa.clone()],
            ..Answer::default()
        }
    }

    fn nxdomain(&self, snapshot: &Snapshot) -> Answer {
        Answer {
            rcode: ResponseCode::NXDomain,
            ..self.nodata(snapshot)
        }
    }
}

/// One question against one snapshot.
struct Query<'a> {
    snapshot: &'a Snapshot,
    qname: &'a Name,
    qtype: RecordType,
    rotation: usize,
}

fn cname_record(owner: &Name, target: &str, ttl: u32) -> Record {
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(name_from(target))),
    )
}

/// `record` with the query's spelling of its owner.
fn echo(record: &Record, owner: &Name) -> Record {
    let mut record = record.clone();
    record.name = owner.clone();
    record.dns_class = DNSClass::IN;
    record
}

/// The table's key for a name: lowercase labels joined by dots, no trailing dot. `None` when a
/// label holds a byte no table name can (a dot, a space, non-ASCII): such names do not exist.
pub(crate) fn lookup_key(name: &Name) -> Option<String> {
    let mut key = String::with_capacity(name.len());
    for label in name.iter() {
        if label.is_empty()
            || label
                .iter()
                .any(|b| !b.is_ascii_graphic() || *b == b'.' || *b == b'\\')
        {
            return None;
        }
        if !key.is_empty() {
            key.push('.');
        }
        key.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    Some(key)
}

/// `name` is `zone` or below it.
fn is_below(name: &str, zone: &str) -> bool {
    match name.strip_suffix(zone) {
        Some("") => true,
        Some(rest) => rest.ends_with('.'),
        None => false,
    }
}

#[cfg(test)]
mod tests;
