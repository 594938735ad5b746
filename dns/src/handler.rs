//! One query, from bytes to bytes: reads it, asks the zone, forwards what is not ours, and
//! encodes the response for the client's transport. Cluster answers are synchronous; only
//! forwarding waits. The receive loops answer repeated questions from a [`ResponseCache`] of
//! encoded responses, which gives the same bytes without decoding, looking up or encoding.

mod cache;

use crate::forward::Forwarder;
use crate::metrics::DnsMetrics;
use crate::wire::quick::{self, QuickQuery};
use crate::wire::{self, Response, Transport, Unreadable};
use crate::zone::{Answer, Lookup, Snapshot, Zone};
use arc_swap::ArcSwapOption;
use cache::{CHECKED_ROTATIONS, Cached, Entry, Hit};
use hickory_proto::op::{Message, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub(crate) use cache::ResponseCache;

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

/// What became of a packet answered into the caller's buffer.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send the buffer back.
    Reply,
    Drop,
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
    /// Bumped after every publish: cached responses of an older generation are stale.
    generation: AtomicU64,
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
            generation: AtomicU64::new(0),
        }
    }

    /// Answers from `snapshot` from now on.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.metrics
            .zone(snapshot.table().len(), snapshot.table().serial());
        self.snapshot.store(Some(Arc::new(snapshot)));
        // After the store: a loop that sees the new generation also sees the new snapshot.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn is_published(&self) -> bool {
        self.snapshot.load().is_some()
    }

    pub(crate) fn metrics(&self) -> &DnsMetrics {
        &self.metrics
    }

    pub(crate) fn handle(&self, bytes: &[u8], src: SocketAddr, transport: Transport) -> Step {
        self.handle_full(bytes, src, transport, Instant::now(), None)
    }

    /// [`Handler::handle`] through `cache`: the response goes to `out`. A repeated question
    /// is answered from the cache; a new one the full way, and its answer is cached when
    /// the zone gave one.
    pub(crate) fn handle_cached(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        transport: Transport,
        cache: &mut ResponseCache,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let started = Instant::now();
        let generation = self.generation.load(Ordering::Acquire);
        cache.sync(generation);
        let quick = QuickQuery::read(bytes, transport, &mut cache.key);
        let mut fill = None;
        let mut missed = false;
        let step = match &quick {
            None => self.handle_full(bytes, src, transport, started, None),
            Some(query) => match cache.hit(query, out) {
                Hit::Written(rcode) => {
                    self.metrics
                        .request(transport, Some(RecordType::from(query.qtype)));
                    self.metrics.response(rcode, started.elapsed());
                    return Outcome::Reply;
                }
                Hit::Uncacheable => self.handle_full(bytes, src, transport, started, None),
                Hit::Miss => {
                    missed = true;
                    self.handle_full(bytes, src, transport, started, Some(&mut fill))
                }
            },
        };
        if missed {
            cache.insert(generation, fill.unwrap_or(Cached::Uncacheable));
        }
        match step {
            Step::Reply(bytes) => {
                *out = bytes;
                Outcome::Reply
            }
            Step::Drop => Outcome::Drop,
            Step::Pending(pending) => Outcome::Pending(pending),
        }
    }

    /// Decodes, looks up and encodes; with `fill`, also makes the cache entry of a zone
    /// answer.
    fn handle_full(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        transport: Transport,
        started: Instant,
        fill: Option<&mut Option<Cached>>,
    ) -> Step {
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
                if let Some(fill) = fill {
                    *fill = Some(self.cache_entry(&request, query, transport, snapshot.as_deref()));
                }
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

    /// The cache entry for `query`: its answer encoded at rotation 0, kept only if rotating
    /// the address runs reproduces the encodings at other rotations.
    fn cache_entry(
        &self,
        request: &Message,
        query: &Query,
        transport: Transport,
        snapshot: Option<&Snapshot>,
    ) -> Cached {
        let encode_at =
            |rotation| match self
                .zone
                .lookup(snapshot, query.name(), query.query_type(), rotation)
            {
                Lookup::Answer(answer) => Some((self.encode(request, transport, &answer), answer)),
                Lookup::Forward | Lookup::Chase { .. } => None,
            };
        let Some((bytes, answer)) = encode_at(0) else {
            return Cached::Uncacheable;
        };
        let Some(addresses) = quick::answer_addresses(&bytes) else {
            return Cached::Uncacheable;
        };
        let runs = cache::runs(&answer.answers, &addresses);
        let mut scratch = Vec::new();
        for rotation in CHECKED_ROTATIONS {
            let Some((truth, _)) = encode_at(rotation) else {
                return Cached::Uncacheable;
            };
            let mut predicted = bytes.clone();
            cache::rotate(&mut predicted, &runs, rotation, &mut scratch);
            if predicted != truth {
                return Cached::Uncacheable;
            }
        }
        Cached::Response(Entry {
            bytes: bytes.into_boxed_slice(),
            rcode: answer.rcode,
            runs,
        })
    }

    fn reply(
        &self,
        request: &Message,
        transport: Transport,
        answer: &Answer,
        started: Instant,
    ) -> Vec<u8> {
        let bytes = self.encode(request, transport, answer);
        self.metrics.response(answer.rcode, started.elapsed());
        bytes
    }

    fn encode(&self, request: &Message, transport: Transport, answer: &Answer) -> Vec<u8> {
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
        wire::encode(&response, limit)
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
