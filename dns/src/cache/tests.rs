use super::*;
use hickory_proto::op::{MessageType, OpCode};
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::{A, SOA};

fn query(name: &str) -> Query {
    Query::query(Name::from_ascii(name).unwrap(), RecordType::A)
}

fn answer(name: &str, ttls: &[u32]) -> Message {
    let mut m = Message::new(1, MessageType::Response, OpCode::Query);
    m.add_query(query(name));
    for (i, ttl) in ttls.iter().enumerate() {
        let ip = std::net::Ipv4Addr::new(192, 0, 2, u8::try_from(i).unwrap());
        m.add_answer(Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            *ttl,
            RData::A(A(ip)),
        ));
    }
    m
}

fn negative(name: &str, rcode: ResponseCode, soa_ttl: u32, minimum: u32) -> Message {
    let mut m = answer(name, &[]);
    m.metadata.response_code = rcode;
    let soa = SOA::new(
        Name::from_ascii("ns.example.").unwrap(),
        Name::from_ascii("host.example.").unwrap(),
        1,
        1,
        1,
        1,
        minimum,
    );
    m.add_authority(Record::from_rdata(
        Name::from_ascii("example.").unwrap(),
        soa_ttl,
        RData::SOA(soa),
    ));
    m
}

#[test]
fn answers_live_for_their_smallest_ttl_and_age() {
    let cache = Cache::new(10);
    let key = CacheKey::new(&query("a.example."));
    let now = Instant::now();
    cache.insert_at(key.clone(), &answer("a.example.", &[60, 30]), now);
    let hit = cache.get_at(&key, now + Duration::from_secs(10)).unwrap();
    let ttls: Vec<u32> = hit.answers.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls, [50, 20]);
    assert!(cache.get_at(&key, now + Duration::from_secs(30)).is_none());
    assert_eq!(cache.len(), 0, "expired entries go");
}

#[test]
fn keys_ignore_case() {
    assert_eq!(
        CacheKey::new(&query("A.Example.")),
        CacheKey::new(&query("a.example."))
    );
}

#[test]
fn negative_answers_live_for_the_soa_negative_ttl() {
    assert_eq!(
        cache_ttl(&negative("x.example.", ResponseCode::NXDomain, 900, 60)),
        Some(60)
    );
    assert_eq!(
        cache_ttl(&negative("x.example.", ResponseCode::NoError, 20, 60)),
        Some(20)
    );
    assert_eq!(
        cache_ttl(&negative("x.example.", ResponseCode::NXDomain, 9000, 9000)),
        Some(1800)
    );
    assert_eq!(
        cache_ttl(&answer("x.example.", &[])),
        None,
        "no SOA: not kept"
    );
}

#[test]
fn failures_truncations_and_ttl_zero_are_not_kept() {
    let mut failed = answer("x.example.", &[60]);
    failed.metadata.response_code = ResponseCode::ServFail;
    assert_eq!(cache_ttl(&failed), None);
    let mut truncated = answer("x.example.", &[60]);
    truncated.metadata.truncation = true;
    assert_eq!(cache_ttl(&truncated), None);
    assert_eq!(cache_ttl(&answer("x.example.", &[0, 60])), None);
    assert_eq!(cache_ttl(&answer("x.example.", &[86400])), Some(3600));
}

#[test]
fn the_cache_never_grows_past_its_capacity() {
    let cache = Cache::new(3);
    let now = Instant::now();
    for i in 0..10 {
        let name = format!("n{i}.example.");
        cache.insert_at(CacheKey::new(&query(&name)), &answer(&name, &[60]), now);
        assert!(cache.len() <= 3);
    }
    let fresh = "fresh.example.";
    cache.insert_at(CacheKey::new(&query(fresh)), &answer(fresh, &[60]), now);
    assert!(cache.get_at(&CacheKey::new(&query(fresh)), now).is_some());
    let off = Cache::new(0);
    off.insert_at(CacheKey::new(&query(fresh)), &answer(fresh, &[60]), now);
    assert_eq!(off.len(), 0);
}
