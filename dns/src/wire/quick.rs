//! Reading the common query without decoding it, and finding the records in a response we
//! encoded: what the response cache needs on the hot path.
//!
//! [`QuickQuery::read`] accepts only the plainest form of a query (one question, class IN,
//! no compression, an optional OPT record without options, nothing after it); anything else
//! is left to the full decoder. Two queries it accepts with the same key get the same
//! response except for the id, the RD and CD bits and the rotation of address lists.

use super::{CLASSIC_PAYLOAD, EDNS_PAYLOAD, HEADER_LEN, Transport};

const TYPE_OPT: u16 = 41;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_AXFR: u16 = 252;
const TYPE_IXFR: u16 = 251;
const CLASS_IN: u16 = 1;
/// A name's longest wire form (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// What the hot path needs of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuickQuery {
    pub id: u16,
    pub qtype: u16,
    /// The RD and CD bits, in their header positions (bytes 2 and 3).
    pub flags: [u8; 2],
}

impl QuickQuery {
    /// Reads `packet` and writes its cache key to `key` (transport limit, EDNS, type, name
    /// as sent: the case is echoed, so it is part of the key). `None`: not the plain form.
    pub(crate) fn read(packet: &[u8], transport: Transport, key: &mut Vec<u8>) -> Option<Self> {
        let header = packet.get(..HEADER_LEN)?;
        let be = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        // QR = 0 and opcode QUERY; one question, no answers or authorities, at most an OPT.
        if header[2] & 0xf8 != 0 || be(4) != 1 || be(6) != 0 || be(8) != 0 || be(10) > 1 {
            return None;
        }
        let mut at = HEADER_LEN;
        loop {
            let len = usize::from(*packet.get(at)?);
            if len == 0 {
                at += 1;
                break;
            }
            // Labels only (no pointers), with bytes a table name can hold.
            let label = packet.get(at + 1..at + 1 + len).filter(|_| len < 64)?;
            if label
                .iter()
                .any(|b| !b.is_ascii_graphic() || *b == b'.' || *b == b'\\')
            {
                return None;
            }
            at += 1 + len;
        }
        let name = &packet[HEADER_LEN..at];
        if name.len() > MAX_NAME {
            return None;
        }
        let fixed = packet.get(at..at + 4)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        if qclass != CLASS_IN || qtype == TYPE_AXFR || qtype == TYPE_IXFR {
            return None;
        }
        at += 4;
        let limit = if be(10) == 1 {
            // The OPT record: root owner, type, payload, extended rcode, version 0, flags,
            // no options, and the end of the packet.
            let opt = packet.get(at..)?;
            if opt.len() != 11 || opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != TYPE_OPT {
                return None;
            }
            if opt[6] != 0 || opt[9] != 0 || opt[10] != 0 {
                return None;
            }
            let payload = u16::from_be_bytes([opt[3], opt[4]]);
            match transport {
                Transport::Udp => payload.clamp(CLASSIC_PAYLOAD, EDNS_PAYLOAD),
                Transport::Tcp => u16::MAX,
            }
        } else {
            if at != packet.len() {
                return None;
            }
            match transport {
                Transport::Udp => CLASSIC_PAYLOAD,
                Transport::Tcp => u16::MAX,
            }
        };
        key.clear();
        key.push(u8::from(be(10) == 1));
        key.extend_from_slice(&limit.to_be_bytes());
        key.extend_from_slice(&qtype.to_be_bytes());
        key.extend_from_slice(name);
        Some(Self {
            id: be(0),
            qtype,
            flags: [header[2] & 0x01, header[3] & 0x10],
        })
    }

    /// Makes `response` (a cached one) this query's: its id and RD/CD bits.
    pub(crate) fn stamp(&self, response: &mut [u8]) {
        response[..2].copy_from_slice(&self.id.to_be_bytes());
        response[2] = (response[2] & !0x01) | self.flags[0];
        response[3] = (response[3] & !0x10) | self.flags[1];
    }
}

/// An address record's data in an encoded response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddressData {
    /// Index of the record in the answer section.
    pub index: usize,
    /// Where its 4 (A) or 16 (AAAA) bytes start.
    pub offset: usize,
    pub len: usize,
}

/// The A/AAAA records of the answer section of `response` (one we encoded: well formed),
/// with where their data is. `None` if it cannot be walked.
pub(crate) fn answer_addresses(response: &[u8]) -> Option<Vec<AddressData>> {
    let be = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([
            *response.get(at)?,
            *response.get(at + 1)?,
        ]))
    };
    let questions = be(4)?;
    let answers = be(6)?;
    let mut at = HEADER_LEN;
    for _ in 0..questions {
        at = skip_name(response, at)? + 4;
    }
    let mut found = Vec::new();
    for index in 0..usize::from(answers) {
        at = skip_name(response, at)?;
        let rtype = be(at)?;
        let rdlen = usize::from(be(at + 8)?);
        let offset = at + 10;
        if offset + rdlen > response.len() {
            return None;
        }
        if (rtype == TYPE_A && rdlen == 4) || (rtype == TYPE_AAAA && rdlen == 16) {
            found.push(AddressData {
                index,
                offset,
                len: rdlen,
            });
        }
        at = offset + rdlen;
    }
    Some(found)
}

/// The offset just past the name at `at` (labels, ending in the root or a pointer).
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l < 64 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;
