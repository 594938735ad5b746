use super::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(0xbeef, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        message.set_edns(e);
    }
    message.to_vec().unwrap()
}

#[test]
fn a_plain_query_gives_its_key() {
    let mut key = Vec::new();
    let packet = query("Web.shop.svc.cluster.local.", RecordType::A, None);
    let quick = QuickQuery::read(&packet, Transport::Udp, &mut key).unwrap();
    assert_eq!(quick.id, 0xbeef);
    assert_eq!(quick.qtype, 1);
    assert_eq!(quick.flags, [0x01, 0]);
    assert_eq!(&key[..5], &[0, 2, 0, 0, 1], "no EDNS, 512 bytes, type A");
    assert_eq!(&key[5..9], b"\x03Web", "the name as sent");

    let edns = query("web.shop.svc.cluster.local.", RecordType::SRV, Some(4096));
    QuickQuery::read(&edns, Transport::Udp, &mut key).unwrap();
    assert_eq!(&key[..5], &[1, 0x04, 0xd0, 0, 33], "EDNS, 1232 bytes, SRV");
    QuickQuery::read(&edns, Transport::Tcp, &mut key).unwrap();
    assert_eq!(&key[..3], &[1, 0xff, 0xff]);
}

#[test]
fn anything_but_the_plain_form_is_left_to_the_decoder() {
    let mut key = Vec::new();
    let mut read = |packet: &[u8]| QuickQuery::read(packet, Transport::Udp, &mut key);
    let plain = query("web.shop.svc.cluster.local.", RecordType::A, None);
    assert!(read(&plain).is_some());
    let mut trailing = plain.clone();
    trailing.push(0);
    assert!(read(&trailing).is_none());
    let mut response = plain.clone();
    response[2] |= 0x80;
    assert!(read(&response).is_none());
    let mut notify = plain.clone();
    notify[2] |= 4 << 3;
    assert!(read(&notify).is_none());
    assert!(read(&query("web.shop.", RecordType::AXFR, None)).is_none());
    assert!(read(&plain[..plain.len() - 1]).is_none());
    assert!(read(&plain[..5]).is_none());

    let mut chaos = Message::new(1, MessageType::Query, OpCode::Query);
    let mut q = Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    assert!(read(&chaos.to_vec().unwrap()).is_none());

    let mut two = Message::new(1, MessageType::Query, OpCode::Query);
    for name in ["a.example.", "b.example."] {
        two.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    }
    assert!(read(&two.to_vec().unwrap()).is_none());

    let mut version1 = Message::new(1, MessageType::Query, OpCode::Query);
    version1.add_query(Query::query(
        Name::from_ascii("a.example.").unwrap(),
        RecordType::A,
    ));
    let mut edns = Edns::new();
    edns.set_version(1);
    version1.set_edns(edns);
    assert!(read(&version1.to_vec().unwrap()).is_none());

    // A pointer in the question, and a label with a dot in it.
    let mut pointer = plain[..12].to_vec();
    pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert!(read(&pointer).is_none());
    let mut dotted = plain[..12].to_vec();
    dotted.extend_from_slice(&[3, b'a', b'.', b'b', 0, 0, 1, 0, 1]);
    assert!(read(&dotted).is_none());
}

#[test]
fn stamping_sets_the_id_and_the_rd_and_cd_bits() {
    let mut key = Vec::new();
    let mut packet = query("a.example.", RecordType::A, None);
    packet[3] |= 0x10;
    let quick = QuickQuery::read(&packet, Transport::Udp, &mut key).unwrap();
    let mut response = vec![0, 0, 0x84, 0x83, 0, 0];
    quick.stamp(&mut response);
    assert_eq!(response, [0xbe, 0xef, 0x85, 0x93, 0, 0]);
    let mut plain = query("a.example.", RecordType::A, None);
    plain[2] &= !0x01;
    let quick = QuickQuery::read(&plain, Transport::Udp, &mut key).unwrap();
    let mut response = vec![0, 0, 0x85, 0x93];
    quick.stamp(&mut response);
    assert_eq!(response, [0xbe, 0xef, 0x84, 0x83]);
}

#[test]
fn address_records_are_found_in_a_response() {
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{RData, Record};
    let owner = Name::from_ascii("x.example.").unwrap();
    let mut message = Message::new(1, MessageType::Response, OpCode::Query);
    message.add_query(Query::query(owner.clone(), RecordType::A));
    let target = Name::from_ascii("y.example.").unwrap();
    message.add_answer(Record::from_rdata(
        owner,
        30,
        RData::CNAME(CNAME(target.clone())),
    ));
    message.add_answer(Record::from_rdata(
        target.clone(),
        30,
        RData::A(A::new(10, 0, 0, 1)),
    ));
    message.add_answer(Record::from_rdata(
        target,
        30,
        RData::AAAA(AAAA::new(1, 0, 0, 0, 0, 0, 0, 2)),
    ));
    let bytes = message.to_vec().unwrap();
    let found = answer_addresses(&bytes).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].index, found[0].len), (1, 4));
    assert_eq!(&bytes[found[0].offset..found[0].offset + 4], &[10, 0, 0, 1]);
    assert_eq!((found[1].index, found[1].len), (2, 16));
    assert_eq!(bytes[found[1].offset + 15], 2);
    assert!(answer_addresses(&bytes[..bytes.len() - 3]).is_none());
}
