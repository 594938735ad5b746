//! Forwarding names outside the cluster zone: upstream servers over UDP with TCP on TC, a
//! timeout per attempt, the next upstream on failure, and a bounded cache of the answers.

mod upstreams;

pub use upstreams::{RESOLV_CONF, from_resolv_conf};

use crate::cache::{Cache, CacheKey};
use crate::metrics::DnsMetrics;
use crate::wire::EDNS_PAYLOAD;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    #[error("no upstream DNS server is configured")]
    NoUpstream,
    #[error("every upstream failed; last: {upstream}: {reason}")]
    Failed {
        upstream: SocketAddr,
        reason: String,
    },
}

/// Sends queries to the upstream servers, answering repeats from its cache.
#[derive(Debug)]
pub(crate) struct Forwarder {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
    cache: Cache,
    /// Where the next query starts in `upstreams`, spreading load over them.
    next: AtomicUsize,
}

impl Forwarder {
    pub(crate) fn new(upstreams: Vec<SocketAddr>, timeout: Duration, cache_entries: usize) -> Self {
        Self {
            upstreams,
            timeout,
            cache: Cache::new(cache_entries),
            next: AtomicUsize::new(0),
        }
    }

    /// The upstream's answer to `query` (its answer, authority and additional sections and
    /// rcode), from the cache when fresh there, with TTLs aged.
    pub(crate) async fn resolve(
        &self,
        query: &Query,
        metrics: &DnsMetrics,
    ) -> Result<Message, ForwardError> {
        let key = CacheKey::new(query);
        if let Some(hit) = self.cache.get(&key) {
            metrics.cache_lookup(true);
            return Ok(hit);
        }
        metrics.cache_lookup(false);
        let response = self.ask_upstreams(query, metrics).await?;
        self.cache.insert(key, &response);
        metrics.cache_size(self.cache.len());
        Ok(response)
    }

    async fn ask_upstreams(
        &self,
        query: &Query,
        metrics: &DnsMetrics,
    ) -> Result<Message, ForwardError> {
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // Two attempts' worth at most, so the client (glibc waits 5 s) hears SERVFAIL rather
        // than nothing, however many upstreams are down.
        let give_up = Instant::now() + self.timeout * 2;
        let mut last = None;
        for i in 0..self.upstreams.len() {
            let upstream = self.upstreams[(start + i) % self.upstreams.len()];
            let now = Instant::now();
            if now >= give_up {
                break;
            }
            let deadline = (now + self.timeout).min(give_up);
            match exchange(upstream, query, deadline).await {
                Ok(response) => return Ok(response),
                Err(error) => {
                    tracing::debug!(%upstream, %error, name = %query.name(), "dns: upstream failed");
                    metrics.upstream_error(upstream);
                    last = Some((upstream, error.to_string()));
                }
            }
        }
        let (upstream, reason) = last.unwrap_or_else(|| (self.upstreams[0], "no attempt".into()));
        Err(ForwardError::Failed { upstream, reason })
    }
}

/// One query to one upstream: UDP, then TCP when the answer was truncated.
async fn exchange(upstream: SocketAddr, query: &Query, deadline: Instant) -> io::Result<Message> {
    let id: u16 = rand_id();
    let mut request = Message::new(id, MessageType::Query, OpCode::Query);
    request.metadata.recursion_desired = true;
    request.add_query(query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    request.set_edns(edns);
    let bytes = request.to_vec().map_err(io::Error::other)?;
    let response = timeout_at(deadline, udp_exchange(upstream, &bytes, id, query))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer over UDP"))??;
    if !response.metadata.truncation {
        return Ok(response);
    }
    timeout_at(deadline, tcp_exchange(upstream, &bytes, id, query))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer over TCP"))?
}

async fn udp_exchange(
    upstream: SocketAddr,
    bytes: &[u8],
    id: u16,
    query: &Query,
) -> io::Result<Message> {
    let local: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // A fresh socket per query: a random source port, and only this upstream's datagrams.
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(bytes).await?;
    // We advertise 1232 bytes; more room only in case an upstream ignores it.
    let mut buffer = vec![0; 4096];
    loop {
        let len = socket.recv(&mut buffer).await?;
        // Anything that is not the answer to this question is ignored (spoofing, stale).
        if let Some(response) = matching(&buffer[..len], id, query) {
            return Ok(response);
        }
    }
}

async fn tcp_exchange(
    upstream: SocketAddr,
    bytes: &[u8],
    id: u16,
    query: &Query,
) -> io::Result<Message> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(bytes.len()).map_err(io::Error::other)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await?;
    loop {
        let len = usize::from(stream.read_u16().await?);
        let mut buffer = vec![0; len];
        stream.read_exact(&mut buffer).await?;
        if let Some(response) = matching(&buffer, id, query) {
            return Ok(response);
        }
    }
}

/// `bytes` parsed, if it is the response to `id` asking `query`.
fn matching(bytes: &[u8], id: u16, query: &Query) -> Option<Message> {
    let response = Message::from_vec(bytes).ok()?;
    let same_question = response.queries.len() == 1
        && response.queries[0].name() == query.name()
        && response.queries[0].query_type() == query.query_type()
        && response.queries[0].query_class() == query.query_class();
    (response.metadata.id == id
        && response.metadata.message_type == MessageType::Response
        && same_question)
        .then_some(response)
}

/// A query id nobody off-path can guess cheaply: std's randomly keyed hasher over a counter.
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() & 0xffff) as u16
}
