//! Any bytes as a DNS query, over UDP and TCP, through ferry-dns's whole query path (read,
//! answer from the cluster zone or forward, encode); `ferry_dns::fuzz::query` asserts the
//! invariants of the response.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ferry_dns::fuzz::query(data));
