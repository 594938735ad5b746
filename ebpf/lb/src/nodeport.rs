//! tc classifiers for NodePort / externalIP / LoadBalancer-IP traffic, attached to the ingress
//! and egress of each external interface of the node.
//!
//! * A client's packet to an `EXT_FRONTENDS` address (or of a flow already in `CT_FWD`) is
//!   DNATed at ingress to the flow's backend. Not masqueraded (a local backend, or
//!   [`FRONTEND_FLAG_PRESERVE_CLIENT`]) it continues into the stack, which forwards it to the
//!   backend; the reply leaves through this interface's egress, where its source becomes the
//!   frontend again (it cannot be done where the reply enters the node: with the node's own
//!   address as source the stack would drop it as a martian).
//! * Masqueraded (policy `Cluster` and a [`BACKEND_FLAG_REMOTE`] backend), it is also SNATed to
//!   the node address (`NODE_ADDRS`) and a free port, and redirected out by FIB lookup. The
//!   reply comes back to that address on this interface's ingress, gets both ends restored,
//!   and is redirected back out to the client the same way.
//! * A frontend without backends drops the packet (and counts it).

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    macros::classifier,
    programs::TcContext,
};
use ferry_ebpf_common::{
    AF_INET, BACKEND_FLAG_REMOTE, CT_FLAG_SNAT, CtForward, CtKey, FRONTEND_FLAG_PRESERVE_CLIENT,
    FrontendKey, conntrack::SNAT_PORT_MIN, maglev::flow_hash, stats,
};

use crate::{
    affinity::Client,
    conntrack, fib,
    lb::{Pick, pick},
    maps::{EXT_FRONTENDS, NODE_ADDRS},
    packet::{End, Packet},
    stats::count,
};

const PASS: i32 = TC_ACT_OK as i32;
const DROP: i32 = TC_ACT_SHOT as i32;

/// Ingress of an external interface: DNAT of new and tracked flows, reverse NAT of replies to
/// masqueraded flows.
#[classifier]
pub fn nodeport_ingress(ctx: TcContext) -> i32 {
    let Some(mut pkt) = Packet::parse(&ctx) else {
        return PASS;
    };
    if u16::from_be(pkt.dport) >= SNAT_PORT_MIN
        && let Some(verdict) = masqueraded_reply(&ctx, &mut pkt)
    {
        return verdict;
    }
    let fwd_key = conntrack::key_of(&pkt);
    let flow = match conntrack::forward(&fwd_key) {
        Some(flow) => flow,
        None => match new_flow(&pkt, &fwd_key) {
            Ok(Some(flow)) => flow,
            Ok(None) => return PASS,
            Err(verdict) => return verdict,
        },
    };
    if pkt
        .rewrite(&ctx, End::Destination, flow.backend_addr, flow.backend_port)
        .is_err()
    {
        return DROP;
    }
    let masqueraded = flow.flags & CT_FLAG_SNAT != 0;
    if masqueraded
        && pkt
            .rewrite(&ctx, End::Source, flow.snat_addr, flow.snat_port)
            .is_err()
    {
        return DROP;
    }
    count(stats::NODEPORT_NAT_PACKETS);
    if masqueraded {
        fib::redirect(&ctx, &pkt)
    } else {
        PASS
    }
}

/// Egress of the same interface: a reply of a backend to a client that was not masqueraded
/// gets the frontend back as its source.
#[classifier]
pub fn nodeport_egress(ctx: TcContext) -> i32 {
    let Some(mut pkt) = Packet::parse(&ctx) else {
        return PASS;
    };
    let Some(flow) = conntrack::reverse(&conntrack::key_of(&pkt)) else {
        return PASS;
    };
    if flow.flags & CT_FLAG_SNAT != 0 {
        // Masqueraded replies are restored at ingress; this one is something else.
        return PASS;
    }
    if pkt
        .rewrite(&ctx, End::Source, flow.frontend_addr, flow.frontend_port)
        .is_err()
    {
        return DROP;
    }
    count(stats::NODEPORT_NAT_PACKETS);
    PASS
}

/// A reply to a masqueraded flow (to a SNAT port of the node): restores the client as the
/// destination and the frontend as the source, and sends it back out. `None` if `pkt` is not
/// one.
#[inline(always)]
fn masqueraded_reply(ctx: &TcContext, pkt: &mut Packet) -> Option<i32> {
    let flow = conntrack::reverse(&conntrack::key_of(pkt))?;
    if flow.flags & CT_FLAG_SNAT == 0 {
        return None;
    }
    if pkt
        .rewrite(ctx, End::Source, flow.frontend_addr, flow.frontend_port)
        .is_err()
        || pkt
            .rewrite(ctx, End::Destination, flow.client_addr, flow.client_port)
            .is_err()
    {
        return Some(DROP);
    }
    count(stats::NODEPORT_NAT_PACKETS);
    Some(fib::redirect(ctx, pkt))
}

/// The first packet of a flow: `Ok(None)` if it is not addressed to a frontend, the new flow
/// otherwise, or the verdict for a packet that cannot be served.
#[inline(always)]
fn new_flow(pkt: &Packet, fwd_key: &CtKey) -> Result<Option<CtForward>, i32> {
    let key = FrontendKey {
        addr: pkt.dst,
        port: pkt.dport,
        family: pkt.family,
        proto: pkt.proto,
    };
    let hash = flow_hash(pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto);
    let client = Client::Addr(pkt.src, pkt.family);
    let (backend, flags) = match pick(&EXT_FRONTENDS, &key, client, Some(hash)) {
        Pick::Pass => return Ok(None),
        Pick::To { backend, flags } if backend.family == pkt.family => (backend, flags),
        Pick::To { .. } | Pick::Reject => {
            count(stats::NODEPORT_NO_BACKEND);
            return Err(DROP);
        }
    };
    let masquerade =
        flags & FRONTEND_FLAG_PRESERVE_CLIENT == 0 && backend.flags & BACKEND_FLAG_REMOTE != 0;
    let snat_addr = if masquerade {
        let Some(addr) = node_addr(pkt.family) else {
            count(stats::SNAT_FAILED);
            return Err(DROP);
        };
        Some(addr)
    } else {
        None
    };
    match conntrack::create(pkt, fwd_key, &backend, snat_addr) {
        Some(flow) => Ok(Some(flow)),
        None => {
            count(stats::SNAT_FAILED);
            Err(DROP)
        }
    }
}

/// The node's address of `family` from `NODE_ADDRS`; `None` if userspace set none.
#[inline(always)]
fn node_addr(family: u8) -> Option<[u32; 4]> {
    let addrs = NODE_ADDRS.get(0)?;
    let addr = if family == AF_INET {
        [addrs.ipv4, 0, 0, 0]
    } else {
        addrs.ipv6
    };
    (addr != [0; 4]).then_some(addr)
}
