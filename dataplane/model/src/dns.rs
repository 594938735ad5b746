//! The cluster DNS zone compiled from the snapshot: every name with its records, as the
//! Kubernetes DNS-Based Service Discovery specification (schema 1.1.0) and CoreDNS's kubernetes
//! plugin define them. The DNS engine answers from a [`DnsTable`]; NODATA vs NXDOMAIN, the SOA,
//! TTLs, case echoing and the wire format are its business.
//!
//! [`DnsBuilder`] keeps the table in step with snapshots, recompiling only Services whose
//! snapshot entry changed; a [`DnsTable`] is a persistent-map snapshot, O(1) to clone.

mod builder;
mod names;
mod service;

pub use builder::{DnsBuilder, DnsTable};
pub use names::{dashed_ip, parse_dashed_ip, reverse_name};

use std::net::{Ipv4Addr, Ipv6Addr};

/// The schema version served at `dns-version.<zone>`.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// An SRV record's data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Fully qualified, lowercase, without the trailing dot.
    pub target: String,
}

/// The records of one name. Names are lowercase and carry no trailing dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub srv: Vec<Srv>,
    pub cname: Option<String>,
    pub ptr: Vec<String>,
    pub txt: Vec<String>,
}

impl Records {
    fn merge(&mut self, other: &Records) {
        self.a.extend(&other.a);
        self.aaaa.extend(&other.aaaa);
        self.srv.extend(other.srv.iter().cloned());
        if self.cname.is_none() {
            self.cname.clone_from(&other.cname);
        }
        self.ptr.extend(other.ptr.iter().cloned());
        self.txt.extend(other.txt.iter().cloned());
    }

    /// Sorted and deduplicated, so equal sets compare equal.
    fn normalize(&mut self) {
        self.a.sort_unstable();
        self.a.dedup();
        self.aaaa.sort_unstable();
        self.aaaa.dedup();
        self.srv.sort_unstable();
        self.srv.dedup();
        self.ptr.sort_unstable();
        self.ptr.dedup();
        self.txt.sort_unstable();
        self.txt.dedup();
    }
}
