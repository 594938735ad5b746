//! The wire format: reading queries, writing responses that fit the client's buffer.

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, Query};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

pub(crate) mod quick;

/// The EDNS buffer we advertise and the most a UDP answer gets (DNS Flag Day 2020): no IP
/// fragmentation on common paths.
pub const EDNS_PAYLOAD: u16 = 1232;
/// Without EDNS a UDP message holds 512 bytes (RFC 1035 §4.2.1).
const CLASSIC_PAYLOAD: u16 = 512;
/// An OPT record without options: root name, type, class, TTL, RDLENGTH.
const OPT_LEN: usize = 11;
const HEADER_LEN: usize = 12;

/// How a query reached us; it decides the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

/// A packet that is not a query we can read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Too short for a header, or a response: dropped without a word.
    Drop,
    /// A query header followed by garbage: FORMERR to this id.
    FormErr(Metadata),
}

/// Reads a query. Responses and runts are dropped (answering them could loop or reflect).
pub(crate) fn read_query(bytes: &[u8]) -> Result<Message, Unreadable> {
    match Message::from_vec(bytes) {
        Ok(message) if message.metadata.message_type == MessageType::Query => Ok(message),
        Ok(_) => Err(Unreadable::Drop),
        Err(_) if bytes.len() < HEADER_LEN || bytes[2] & 0x80 != 0 => Err(Unreadable::Drop),
        Err(_) => {
            let id = u16::from_be_bytes([bytes[0], bytes[1]]);
            let op_code = hickory_proto::op::OpCode::from_u8((bytes[2] >> 3) & 0x0f);
            let mut metadata = Metadata::new(id, MessageType::Query, op_code);
            metadata.recursion_desired = bytes[2] & 0x01 != 0;
            Err(Unreadable::FormErr(metadata))
        }
    }
}

/// The largest response `query` may get over `transport`: the client's EDNS buffer (at least
/// 512, at most ours) over UDP, 64 KiB over TCP.
pub(crate) fn response_limit(edns: Option<&Edns>, transport: Transport) -> usize {
    match (transport, edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => usize::from(CLASSIC_PAYLOAD),
        (Transport::Udp, Some(edns)) => {
            usize::from(edns.max_payload().clamp(CLASSIC_PAYLOAD, EDNS_PAYLOAD))
        }
    }
}

/// A response to encode.
#[derive(Debug)]
pub(crate) struct Response<'a> {
    pub metadata: Metadata,
    pub query: Option<&'a Query>,
    pub answers: &'a [Record],
    pub authorities: &'a [Record],
    pub additionals: &'a [Record],
    /// Our OPT record, when the query had one.
    pub edns: Option<Edns>,
}

/// Encodes `response` in at most `limit` bytes. When the answer and authority sections do not
/// fit, as many answers as fit are kept and TC is set (the client retries over TCP; clients
/// that cannot still get addresses). The additional section is filled as far as it fits,
/// without TC (RFC 2181 §9). The OPT record always has room.
pub(crate) fn encode(response: &Response<'_>, limit: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(512);
    match try_encode(response, limit, &mut buffer) {
        Ok(_) => buffer,
        Err(error) => {
            tracing::warn!(%error, id = response.metadata.id, "dns: cannot encode a response; SERVFAIL");
            let mut metadata = response.metadata;
            metadata.response_code = hickory_proto::op::ResponseCode::ServFail;
            let empty = Response {
                metadata,
                query: None,
                answers: &[],
                authorities: &[],
                additionals: &[],
                edns: None,
            };
            buffer.clear();
            try_encode(&empty, usize::from(CLASSIC_PAYLOAD), &mut buffer)
                .map(|_| buffer)
                .unwrap_or_default()
        }
    }
}

fn try_encode(
    response: &Response<'_>,
    limit: usize,
    buffer: &mut Vec<u8>,
) -> Result<(), ProtoError> {
    let limit = limit.min(usize::from(u16::MAX));
    let opt_len = if response.edns.is_some() { OPT_LEN } else { 0 };
    let mut encoder = BinEncoder::new(buffer);
    encoder.set_max_size(u16::try_from(limit.saturating_sub(opt_len)).unwrap_or(u16::MAX));
    let place = encoder.place::<Header>()?;
    let queries = match response.query {
        Some(query) => {
            query.emit(&mut encoder)?;
            1
        }
        None => 0,
    };
    let (answers, mut truncated) = emit_section(&mut encoder, response.answers)?;
    let mut authorities = 0;
    let mut additionals = 0;
    if !truncated {
        (authorities, truncated) = emit_section(&mut encoder, response.authorities)?;
    }
    if !truncated {
        (additionals, _) = emit_section(&mut encoder, response.additionals)?;
    }
    encoder.set_max_size(u16::try_from(limit).unwrap_or(u16::MAX));
    let mut metadata = response.metadata;
    if let Some(edns) = &response.edns {
        let mut edns = edns.clone();
        edns.set_rcode_high(metadata.response_code.high());
        edns.emit(&mut encoder)?;
        additionals += 1;
    }
    metadata.truncation = truncated;
    let header = Header {
        metadata,
        counts: HeaderCounts {
            queries,
            answers,
            authorities,
            additionals,
        },
    };
    place.replace(&mut encoder, header)?;
    Ok(())
}

/// Emits as many records as fit; the count and whether some did not.
fn emit_section(
    encoder: &mut BinEncoder<'_>,
    records: &[Record],
) -> Result<(u16, bool), ProtoError> {
    let (count, truncated) = match encoder.emit_all(records.iter()) {
        Ok(count) => (count, false),
        Err(ProtoError::NotAllRecordsWritten { count, .. }) => (count, true),
        Err(error) => return Err(error),
    };
    let count = u16::try_from(count).map_err(|_| ProtoError::Message("too many records"))?;
    Ok((count, truncated))
}

/// Our OPT record for a response to a query that had `edns`.
pub(crate) fn response_edns(request: Option<&Edns>) -> Option<Edns> {
    request.map(|_| {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_version(0);
        edns
    })
}

#[cfg(test)]
mod tests;
