//! A bounded cache of forwarded answers: positive ones for their smallest TTL (at most an
//! hour), negative ones (NXDOMAIN, NODATA) for their SOA's negative TTL (at most 30 minutes),
//! as CoreDNS's `cache`. Truncated answers, failures and TTL 0 are not kept. Cluster names never
//! come here: they are answered from the live table.

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_POSITIVE_TTL: u32 = 3600;
const MAX_NEGATIVE_TTL: u32 = 1800;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    /// Lowercase.
    name: String,
    qtype: RecordType,
    class: DNSClass,
}

impl CacheKey {
    pub(crate) fn new(query: &Query) -> Self {
        Self {
            name: query.name().to_lowercase().to_ascii(),
            qtype: query.query_type(),
            class: query.query_class(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    message: Message,
    stored: Instant,
    ttl: Duration,
}

#[derive(Debug)]
pub(crate) struct Cache {
    capacity: usize,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// A fresh answer to `key`, its TTLs lowered by the time it spent here.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Message> {
        self.get_at(key, Instant::now())
    }

    fn get_at(&self, key: &CacheKey, now: Instant) -> Option<Message> {
        let mut entries = self.lock();
        let entry = entries.get(key)?;
        let age = now.saturating_duration_since(entry.stored);
        if age >= entry.ttl {
            entries.remove(key);
            return None;
        }
        let mut message = entry.message.clone();
        drop(entries);
        let elapsed = u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
        for record in message
            .answers
            .iter_mut()
            .chain(&mut message.authorities)
            .chain(&mut message.additionals)
        {
            record.ttl = record.ttl.saturating_sub(elapsed);
        }
        Some(message)
    }

    /// Keeps `message` for as long as its TTLs allow, if it may be kept at all.
    pub(crate) fn insert(&self, key: CacheKey, message: &Message) {
        self.insert_at(key, message, Instant::now());
    }

    fn insert_at(&self, key: CacheKey, message: &Message, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        let Some(ttl) = cache_ttl(message) else {
            return;
        };
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| now.saturating_duration_since(e.stored) < e.ttl);
            if entries.len() >= self.capacity {
                // Full of live entries: drop one; the hasher's random order makes it a random one.
                if let Some(victim) = entries.keys().next().cloned() {
                    entries.remove(&victim);
                }
            }
        }
        let mut message = message.clone();
        message.edns = None;
        entries.insert(
            key,
            Entry {
                message,
                stored: now,
                ttl: Duration::from_secs(u64::from(ttl)),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How long `message` may be served from the cache, if at all.
fn cache_ttl(message: &Message) -> Option<u32> {
    if message.metadata.truncation {
        return None;
    }
    let ttl = match message.metadata.response_code {
        ResponseCode::NoError if !message.answers.is_empty() => message
            .answers
            .iter()
            .map(|r| r.ttl)
            .min()?
            .min(MAX_POSITIVE_TTL),
        ResponseCode::NoError | ResponseCode::NXDomain => {
            negative_ttl(&message.authorities)?.min(MAX_NEGATIVE_TTL)
        }
        _ => return None,
    };
    (ttl > 0).then_some(ttl)
}

/// RFC 2308 §5: the smaller of the SOA's TTL and its minimum field.
fn negative_ttl(authorities: &[Record]) -> Option<u32> {
    authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
