//! The cached path against the full one: for every query, id, flag, EDNS size and case the
//! receive loop meets, [`Handler::handle_cached`] must give the bytes [`Handler::handle`]
//! gives, hit or miss, and forget answers when a new table is published.

use super::*;

/// Outcomes reduced to what can be compared.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Reply(Vec<u8>),
    Drop,
    Pending,
}

fn full(h: &Handler, packet: &[u8], transport: Transport) -> Seen {
    match h.handle(packet, CLIENT.parse().unwrap(), transport) {
        Step::Reply(bytes) => Seen::Reply(bytes),
        Step::Drop => Seen::Drop,
        Step::Pending(_) => Seen::Pending,
    }
}

fn cached(h: &Handler, packet: &[u8], transport: Transport, cache: &mut ResponseCache) -> Seen {
    let mut out = Vec::new();
    let from = CLIENT.parse().unwrap();
    match h.handle_cached(packet, from, transport, cache, &mut out) {
        Outcome::Reply => Seen::Reply(out),
        Outcome::Drop => Seen::Drop,
        Outcome::Pending(_) => Seen::Pending,
    }
}

/// A query with everything the key leaves out set from `variant`.
fn variant(name: &str, qtype: RecordType, edns: Option<u16>, variant: u16) -> Vec<u8> {
    let mut packet = query(name, qtype, edns);
    packet[..2].copy_from_slice(&variant.wrapping_mul(7919).to_be_bytes());
    // RD, CD, AD and the query's rcode bits vary; none of them may change the answer.
    packet[2] = (packet[2] & !0x01) | u8::from(variant.is_multiple_of(2));
    packet[3] = ((variant % 4) as u8) << 4 | (variant % 3) as u8;
    packet
}

fn names() -> Vec<(&'static str, RecordType)> {
    vec![
        ("web.shop.svc.cluster.local.", RecordType::A),
        ("WeB.ShOp.svc.cluster.local.", RecordType::A),
        ("web.shop.svc.cluster.local.", RecordType::AAAA),
        ("web.shop.svc.cluster.local.", RecordType::ANY),
        ("web.shop.svc.cluster.local.", RecordType::SRV),
        ("_http._tcp.web.shop.svc.cluster.local.", RecordType::SRV),
        ("pg.db.svc.cluster.local.", RecordType::A),
        ("pg.db.svc.cluster.local.", RecordType::AAAA),
        ("pg.db.svc.cluster.local.", RecordType::ANY),
        ("_http._tcp.pg.db.svc.cluster.local.", RecordType::SRV),
        ("pg-0.pg.db.svc.cluster.local.", RecordType::A),
        ("alias.shop.svc.cluster.local.", RecordType::A),
        ("search.shop.svc.cluster.local.", RecordType::A),
        ("search.shop.svc.cluster.local.", RecordType::CNAME),
        ("literal.shop.svc.cluster.local.", RecordType::A),
        ("nope.shop.svc.cluster.local.", RecordType::A),
        (
            "web.shop.svc.cluster.local.shop.svc.cluster.local.",
            RecordType::A,
        ),
        ("shop.svc.cluster.local.", RecordType::A),
        ("cluster.local.", RecordType::SOA),
        ("cluster.local.", RecordType::NS),
        ("cluster.local.", RecordType::ANY),
        ("ns.dns.cluster.local.", RecordType::A),
        ("dns-version.cluster.local.", RecordType::TXT),
        ("10-2-0-1.db.pod.cluster.local.", RecordType::A),
        ("10.0.96.10.in-addr.arpa.", RecordType::PTR),
        ("99.0.96.10.in-addr.arpa.", RecordType::PTR),
        ("example.com.", RecordType::A),
        ("*.shop.svc.cluster.local.", RecordType::A),
        ("web.shop.svc.cluster.local.", RecordType::AXFR),
        ("web.shop.svc.cluster.local.", RecordType::Unknown(65000)),
    ]
}

fn assert_same(h: &Handler, cache: &mut ResponseCache, packet: &[u8], transport: Transport) {
    let want = full(h, packet, transport);
    let got = cached(h, packet, transport, cache);
    assert_eq!(got, want, "{packet:?} over {transport:?}");
}

#[test]
fn cached_answers_are_the_full_paths_bytes() {
    let h = handler();
    let mut cache = ResponseCache::default();
    for round in 0..3u16 {
        for (name, qtype) in names() {
            for edns in [None, Some(100), Some(512), Some(1232), Some(4096)] {
                for v in 0..12u16 {
                    let packet = variant(name, qtype, edns, v + 12 * round);
                    for transport in [Transport::Udp, Transport::Tcp] {
                        assert_same(&h, &mut cache, &packet, transport);
                    }
                }
            }
        }
    }
    assert!(cache.responses() > 100, "{} cached", cache.responses());
}

#[test]
fn rotated_and_truncated_lists_match_for_every_id() {
    let h = big_headless(100);
    let mut cache = ResponseCache::default();
    for (name, qtype) in [
        ("many.big.svc.cluster.local.", RecordType::A),
        ("_http._tcp.many.big.svc.cluster.local.", RecordType::SRV),
    ] {
        for edns in [None, Some(1232)] {
            for id in 0..300u16 {
                let mut packet = query(name, qtype, edns);
                packet[..2].copy_from_slice(&id.to_be_bytes());
                for transport in [Transport::Udp, Transport::Tcp] {
                    assert_same(&h, &mut cache, &packet, transport);
                }
            }
        }
    }
    let h = big_headless(7);
    for id in 0..50u16 {
        let mut packet = query("many.big.svc.cluster.local.", RecordType::A, None);
        packet[..2].copy_from_slice(&id.to_be_bytes());
        assert_same(&h, &mut cache, &packet, Transport::Udp);
    }
    assert!(cache.responses() >= 5, "rotated lists are cached too");
}

#[test]
fn a_new_table_empties_the_cache() {
    let h = handler();
    let mut cache = ResponseCache::default();
    let packet = query("new.shop.svc.cluster.local.", RecordType::A, None);
    let Seen::Reply(before) = cached(&h, &packet, Transport::Udp, &mut cache) else {
        panic!("no reply");
    };
    assert_eq!(
        Message::from_vec(&before).unwrap().metadata.response_code,
        ResponseCode::NXDomain
    );
    let mut services = fixture();
    services.push(cluster_ip("shop", "new", &["10.96.7.7"]));
    let mut state = DesiredState::default();
    for s in services {
        state.services.insert(s.service.key.clone(), Arc::new(s));
    }
    let mut builder = DnsBuilder::new("cluster.local", 2000);
    builder.update(&state);
    h.publish(Snapshot::new(builder.table(), 30));
    assert_same(&h, &mut cache, &packet, Transport::Udp);
    let Seen::Reply(after) = cached(&h, &packet, Transport::Udp, &mut cache) else {
        panic!("no reply");
    };
    assert_eq!(
        data(&Message::from_vec(&after).unwrap().answers),
        ["10.96.7.7"]
    );
}

#[test]
fn before_the_first_table_and_after_it() {
    let h = unpublished(PodMode::Insecure);
    let mut cache = ResponseCache::default();
    let packet = query("web.shop.svc.cluster.local.", RecordType::A, None);
    assert_same(&h, &mut cache, &packet, Transport::Udp);
    assert_same(&h, &mut cache, &packet, Transport::Udp);
    let mut state = DesiredState::default();
    for s in fixture() {
        state.services.insert(s.service.key.clone(), Arc::new(s));
    }
    let mut builder = DnsBuilder::new("cluster.local", 1000);
    builder.update(&state);
    h.publish(Snapshot::new(builder.table(), 30));
    assert_same(&h, &mut cache, &packet, Transport::Udp);
    assert_same(&h, &mut cache, &packet, Transport::Udp);
}

/// Mutated packets, each sent twice (a miss, then a hit if cached): the same outcome as the
/// full path every time.
#[test]
fn mutated_queries_get_what_the_full_path_gives() {
    let h = handler();
    let mut cache = ResponseCache::default();
    let seeds = [
        query("web.shop.svc.cluster.local.", RecordType::A, Some(1232)),
        query("_http._tcp.pg.db.svc.cluster.local.", RecordType::SRV, None),
        query("alias.shop.svc.cluster.local.", RecordType::A, Some(512)),
        query("pg.db.svc.cluster.local.", RecordType::A, None),
        query("10-1-2-3.shop.pod.cluster.local.", RecordType::ANY, None),
    ];
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for round in 0..20_000u32 {
        let mut packet = seeds[round as usize % seeds.len()].clone();
        for _ in 0..(next() % 3 + 1) {
            let at = next() as usize % packet.len();
            match next() % 4 {
                0 => packet.truncate(at.max(1)),
                1 => packet.push(next().to_le_bytes()[0]),
                _ => packet[at] = next().to_le_bytes()[0],
            }
        }
        let transport = if round % 3 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        assert_same(&h, &mut cache, &packet, transport);
        assert_same(&h, &mut cache, &packet, transport);
    }
}
