//! `ferry_dns_*` metrics, named after CoreDNS's where they mean the same.

use crate::wire::Transport;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    transport: &'static str,
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RcodeLabel {
    rcode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

/// The DNS engine's metrics; clones share the same series.
#[derive(Debug, Clone)]
pub struct DnsMetrics {
    requests: Family<RequestLabels, Counter>,
    responses: Family<RcodeLabel, Counter>,
    duration: Histogram,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_entries: Gauge,
    upstream_errors: Family<UpstreamLabel, Counter>,
    names: Gauge,
    serial: Gauge,
}

impl Default for DnsMetrics {
    /// Series registered nowhere, for tests and tools.
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

impl DnsMetrics {
    /// Registers under `registry`; pass a sub-registry with prefix `ferry_dns`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            responses: Family::default(),
            // 10 µs x 2^k up to ~5 s: cluster answers take microseconds, forwarded ones
            // milliseconds, timeouts seconds.
            duration: Histogram::new(exponential_buckets(0.00001, 2.0, 20)),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_entries: Gauge::default(),
            upstream_errors: Family::default(),
            names: Gauge::default(),
            serial: Gauge::default(),
        };
        registry.register(
            "requests",
            "DNS queries received, by transport and query type",
            metrics.requests.clone(),
        );
        registry.register(
            "responses",
            "DNS responses sent, by response code",
            metrics.responses.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a query's arrival to its response",
            metrics.duration.clone(),
        );
        registry.register(
            "forward_cache_hits",
            "Forwarded queries answered from the cache",
            metrics.cache_hits.clone(),
        );
        registry.register(
            "forward_cache_misses",
            "Forwarded queries not in the cache",
            metrics.cache_misses.clone(),
        );
        registry.register(
            "forward_cache_entries",
            "Forwarded answers in the cache",
            metrics.cache_entries.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream queries that failed (timeout, network error, unreadable answer)",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "zone_names",
            "Names with records in the cluster zone and its reverse names",
            metrics.names.clone(),
        );
        registry.register(
            "zone_serial",
            "The cluster zone's SOA serial",
            metrics.serial.clone(),
        );
        metrics
    }

    pub(crate) fn request(&self, transport: Transport, qtype: Option<RecordType>) {
        self.requests
            .get_or_create(&RequestLabels {
                transport: transport.as_str(),
                r#type: qtype.map_or("none", type_label),
            })
            .inc();
    }

    pub(crate) fn response(&self, rcode: ResponseCode, took: Duration) {
        self.responses
            .get_or_create(&RcodeLabel {
                rcode: rcode_label(rcode),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub(crate) fn cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    pub(crate) fn cache_size(&self, entries: usize) {
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    pub(crate) fn upstream_error(&self, upstream: std::net::SocketAddr) {
        self.upstream_errors
            .get_or_create(&UpstreamLabel {
                upstream: upstream.to_string(),
            })
            .inc();
    }

    pub(crate) fn zone(&self, names: usize, serial: u32) {
        self.names.set(i64::try_from(names).unwrap_or(i64::MAX));
        self.serial.set(i64::from(serial));
    }
}

/// A bounded set of label values: the common types by name, the rest as `other`.
fn type_label(qtype: RecordType) -> &'static str {
    match qtype {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::SRV => "SRV",
        RecordType::PTR => "PTR",
        RecordType::CNAME => "CNAME",
        RecordType::TXT => "TXT",
        RecordType::SOA => "SOA",
        RecordType::NS => "NS",
        RecordType::MX => "MX",
        RecordType::ANY => "ANY",
        RecordType::AXFR => "AXFR",
        RecordType::IXFR => "IXFR",
        RecordType::HTTPS => "HTTPS",
        RecordType::SVCB => "SVCB",
        RecordType::CAA => "CAA",
        _ => "other",
    }
}

fn rcode_label(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "other",
    }
}
