//! One query, from bytes to bytes: reads it, asks the zone, forwards what is not ours, and
//! encodes the response for the client's transport. Cluster answers are synchronous; only
//! forwarding waits.

use crate::forward::Forwarder;
use crate::metrics::DnsMetrics;
use crate::wire::{self, Response, Transport, Unreadable};
use crate::zone::{Answer, Lookup, Snapshot, Zone};
use arc_swap::ArcSwapOption;
use hickory_proto::op::{Message, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What became of a packet.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Say nothing (a response, a runt).
    Drop,
    /// Needs an upstream: [`Pending::resolve`] gives the bytes.
    Pending(Box<Pending>),
}

/// A query waiting for an upstream.
#[derive(Debug)]
pub(crate) struct Pending {
    request: Message,
    transport: Transport,
    started: Instant,
    work: Work,
}

#[derive(Debug)]
enum Work {
    Forward,
    /// An ExternalName's CNAME, completed with the target's records when they resolve.
    Chase {
        answer: Answer,
        target: Name,
    },
}

#[derive(Debug)]
pub(crate) struct Handler {
    zone: Zone,
    snapshot: ArcSwapOption<Snapshot>,
    forwarder: Forwarder,
    allow: Vec<IpNet>,
    metrics: DnsMetrics,
}

impl Handler {
    pub(crate) fn new(
        zone: Zone,
        forwarder: Forwarder,
        allow: Vec<IpNet>,
        metrics: DnsMetrics,
    ) -> Self {
        Self {
            zone,
            snapshot: ArcSwapOption::empty(),
            forwarder,
            allow,
            metrics,
        }
    }

    /// Answers from `snapshot` from now on.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.metrics
            .zone(snapshot.table().len(), snapshot.table().serial());
        self.snapshot.store(Some(Arc::new(snapshot)));
    }

    pub(crate) fn is_published(&self) -> bool {
        self.snapshot.load().is_some()
    }

    pub(crate) fn metrics(&self) -> &DnsMetrics {
        &self.metrics
    }

    pub(crate) fn handle(&self, bytes: &[u8], src: SocketAddr, transport: Transport) -> Step {
        let started = Instant::now();
        let request = match wire::read_query(bytes) {
            Ok(request) => request,
            Err(Unreadable::Drop) => return Step::Drop,
            Err(Unreadable::FormErr(metadata)) => {
                self.metrics.request(transport, None);
                let mut request =
                    Message::new(metadata.id, metadata.message_type, metadata.op_code);
                request.metadata = metadata;
                let answer = Answer::error(ResponseCode::FormErr);
                return Step::Reply(self.reply(&request, transport, &answer, started));
            }
        };
        let query = match request.queries.as_slice() {
            [query] => Some(query),
            _ => None,
        };
        self.metrics
            .request(transport, query.map(|q| q.query_type()));
        let error =
            |rcode| Step::Reply(self.reply(&request, transport, &Answer::error(rcode), started));
        if request.metadata.op_code != OpCode::Query {
            return error(ResponseCode::NotImp);
        }
        let Some(query) = query else {
            return error(ResponseCode::FormErr);
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return error(ResponseCode::BADVERS);
        }
        if query.query_class() != DNSClass::IN {
            return error(ResponseCode::NotImp);
        }
        // No zone transfers: the zone is every Service of the cluster.
        if matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR) {
            return error(ResponseCode::Refused);
        }
        let snapshot = self.snapshot.load();
        let rotation = usize::from(request.metadata.id);
        let lookup = self.zone.lookup(
            snapshot.as_deref(),
            query.name(),
            query.query_type(),
            rotation,
        );
        let work = match lookup {
            Lookup::Answer(answer) => {
                return Step::Reply(self.reply(&request, transport, &answer, started));
            }
            Lookup::Forward if !self.allowed(src) => return error(ResponseCode::Refused),
            Lookup::Forward => Work::Forward,
            Lookup::Chase { answer, target } => Work::Chase { answer, target },
        };
        Step::Pending(Box::new(Pending {
            request,
            transport,
            started,
            work,
        }))
    }

    /// Forwarding is for clients in `--dns-allow` only: not an open resolver.
    fn allowed(&self, src: SocketAddr) -> bool {
        let ip = src.ip().to_canonical();
        self.allow.iter().any(|net| net.contains(&ip))
    }

    fn reply(
        &self,
        request: &Message,
        transport: Transport,
        answer: &Answer,
        started: Instant,
    ) -> Vec<u8> {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.recursion_available = true;
        metadata.response_code = answer.rcode;
        let response = Response {
            metadata,
            query: match request.queries.as_slice() {
                [query] => Some(query),
                _ => None,
            },
            answers: &answer.answers,
            authorities: &answer.authorities,
            additionals: &answer.additionals,
            edns: wire::response_edns(request.edns.as_ref()),
        };
        let limit = wire::response_limit(request.edns.as_ref(), transport);
        let bytes = wire::encode(&response, limit);
        self.metrics.response(answer.rcode, started.elapsed());
        bytes
    }
}

impl Pending {
    /// SERVFAIL at once, when too many queries already wait for upstreams.
    pub(crate) fn fail(self, handler: &Handler) -> Vec<u8> {
        let answer = Answer::error(ResponseCode::ServFail);
        handler.reply(&self.request, self.transport, &answer, self.started)
    }

    pub(crate) async fn resolve(self, handler: &Handler) -> Vec<u8> {
        let Self {
            request,
            transport,
            started,
            work,
        } = self;
        let Some(query) = request.queries.first() else {
            let answer = Answer::error(ResponseCode::FormErr);
            return handler.reply(&request, transport, &answer, started);
        };
        let answer = match work {
            Work::Forward => match handler.forwarder.resolve(query, &handler.metrics).await {
                Ok(upstream) => Answer {
                    rcode: upstream.metadata.response_code,
                    authoritative: false,
                    answers: upstream.answers,
                    authorities: upstream.authorities,
                    additionals: upstream.additionals,
                },
                Err(error) => {
                    tracing::debug!(%error, name = %query.name(), "dns: forwarding failed");
                    Answer::error(ResponseCode::ServFail)
                }
            },
            Work::Chase { mut answer, target } => {
                let chased = hickory_proto::op::Query::query(target, query.query_type());
                match handler.forwarder.resolve(&chased, &handler.metrics).await {
                    Ok(upstream) if upstream.metadata.response_code == ResponseCode::NoError => {
                        answer.answers.extend(upstream.answers);
                    }
                    // The CNAME alone, NOERROR: the client may resolve the target itself.
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, name = %chased.name(), "dns: ExternalName target did not resolve");
                    }
                }
                answer
            }
        };
        handler.reply(&request, transport, &answer, started)
    }
}

#[cfg(test)]
mod tests;
