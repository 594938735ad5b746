//! Encoded cluster answers, kept per receive loop for the snapshot they came from.
//!
//! The zone's answer to a question depends only on the snapshot, the question as sent (the
//! case is echoed) and the client's size limit, except for the id, the RD and CD bits, and
//! address lists rotated by the id. An entry holds the response encoded at rotation 0 and
//! where the rotated address runs are; a hit copies it, stamps the id and bits, and rotates
//! the runs' data in place, which gives the bytes the full path would have written. Entries
//! are made only when a second encoding at other rotations confirms that prediction.

use crate::wire::quick::{AddressData, QuickQuery};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Record;
use std::collections::HashMap;

/// Entries per loop; past it the cache starts over (queries for random names cannot grow it).
const MAX_ENTRIES: usize = 8192;
/// Rotations the prediction is checked at before an entry with address runs is kept.
pub(crate) const CHECKED_ROTATIONS: [usize; 2] = [1, 3];

/// One loop's cache.
#[derive(Debug, Default)]
pub(crate) struct ResponseCache {
    entries: HashMap<Box<[u8]>, Cached>,
    /// The handler's generation the entries belong to.
    generation: u64,
    /// The current query's key (reused).
    pub(crate) key: Vec<u8>,
    /// Scratch space for rotations (reused).
    scratch: Vec<u8>,
}

#[derive(Debug)]
pub(crate) enum Cached {
    Response(Entry),
    /// Not a zone answer, or one the cache cannot reproduce: the full path every time.
    Uncacheable,
}

/// A response at rotation 0.
#[derive(Debug)]
pub(crate) struct Entry {
    pub bytes: Box<[u8]>,
    pub rcode: ResponseCode,
    /// Runs of address records rotated together: each run's data offsets and length.
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub offsets: Vec<usize>,
    pub len: usize,
}

impl ResponseCache {
    /// Forgets everything when the handler published a new snapshot since.
    pub(crate) fn sync(&mut self, generation: u64) {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
        }
    }

    /// Answers `query` (whose key is in `self.key`) from the cache into `out`.
    pub(crate) fn hit(&mut self, query: &QuickQuery, out: &mut Vec<u8>) -> Hit {
        match self.entries.get(self.key.as_slice()) {
            None => Hit::Miss,
            Some(Cached::Uncacheable) => Hit::Uncacheable,
            Some(Cached::Response(entry)) => {
                out.clear();
                out.extend_from_slice(&entry.bytes);
                query.stamp(out);
                rotate(out, &entry.runs, usize::from(query.id), &mut self.scratch);
                Hit::Written(entry.rcode)
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn responses(&self) -> usize {
        self.entries
            .values()
            .filter(|c| matches!(c, Cached::Response(_)))
            .count()
    }

    /// Keeps `cached` under the current key, made from the snapshot of `generation`.
    pub(crate) fn insert(&mut self, generation: u64, cached: Cached) {
        if generation != self.generation {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries
            .insert(self.key.clone().into_boxed_slice(), cached);
    }
}

/// What the cache had for a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    /// The response is written; its rcode.
    Written(ResponseCode),
    /// Known not to be cacheable.
    Uncacheable,
    Miss,
}

/// Rotates every run of `response` left by `rotation` places, as the zone rotates address
/// lists.
pub(crate) fn rotate(response: &mut [u8], runs: &[Run], rotation: usize, scratch: &mut Vec<u8>) {
    for run in runs {
        let n = run.offsets.len();
        let by = rotation % n;
        if by == 0 {
            continue;
        }
        scratch.clear();
        for offset in &run.offsets {
            scratch.extend_from_slice(&response[*offset..*offset + run.len]);
        }
        for (k, offset) in run.offsets.iter().enumerate() {
            let from = ((k + by) % n) * run.len;
            response[*offset..*offset + run.len].copy_from_slice(&scratch[from..from + run.len]);
        }
    }
}

/// The runs of `answers` as encoded at `addresses`: two or more consecutive address records
/// of one owner, type and TTL.
pub(crate) fn runs(answers: &[Record], addresses: &[AddressData]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut k = 0;
    while k < addresses.len() {
        let first = &answers[addresses[k].index];
        let mut end = k + 1;
        while end < addresses.len()
            && addresses[end].index == addresses[end - 1].index + 1
            && addresses[end].len == addresses[k].len
            && answers[addresses[end].index].name == first.name
            && answers[addresses[end].index].ttl == first.ttl
        {
            end += 1;
        }
        if end - k > 1 {
            runs.push(Run {
                offsets: addresses[k..end].iter().map(|a| a.offset).collect(),
                len: addresses[k].len,
            });
        }
        k = end;
    }
    runs
}
