use super::*;
use hickory_proto::op::{OpCode, ResponseCode};

#[test]
fn the_udp_limit_is_the_clients_buffer_between_512_and_ours() {
    let mut edns = Edns::new();
    for (payload, limit) in [(4096, 1232), (1232, 1232), (1000, 1000), (100, 512)] {
        edns.set_max_payload(payload);
        assert_eq!(response_limit(Some(&edns), Transport::Udp), limit);
    }
    assert_eq!(response_limit(None, Transport::Udp), 512);
    assert_eq!(response_limit(None, Transport::Tcp), 65535);
}

#[test]
fn an_extended_rcode_goes_in_the_opt_record() {
    let mut metadata = Metadata::new(7, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::BADVERS;
    let response = Response {
        metadata,
        query: None,
        answers: &[],
        authorities: &[],
        additionals: &[],
        edns: response_edns(Some(&Edns::new())),
    };
    let message = Message::from_vec(&encode(&response, 512)).unwrap();
    // 16 is BADVERS in an OPT context (hickory reads it back as BADSIG, the same code).
    assert_eq!(u16::from(message.metadata.response_code), 16);
}

#[test]
fn unreadable_packets_are_told_apart() {
    assert_eq!(read_query(b"\x00\x01"), Err(Unreadable::Drop));
    // QR set: a response, never answered.
    assert_eq!(
        read_query(b"\x00\x01\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03"),
        Err(Unreadable::Drop)
    );
    let Err(Unreadable::FormErr(metadata)) =
        read_query(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03")
    else {
        panic!("a query header with a broken body is FORMERR");
    };
    assert_eq!(metadata.id, 0xabcd);
    assert!(metadata.recursion_desired);
}
