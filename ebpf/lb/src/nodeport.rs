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
    AF_INET, BACKEND_FLAG_REMOTE, Backend, CT_FLAG_SNAT, CtForward, FRONTEND_FLAG_PRESERVE_CLIENT,
    FrontendKey, maglev::flow_hash, stats,
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
///
/// The stages after parsing are BPF-to-BPF calls (`#[inline(never)]`, results through
/// out-parameters and scalars): one inlined body does not fit the verifier's 512-byte stack,
/// while the frames of any chain of stages do.
#[classifier]
pub fn nodeport_ingress(ctx: TcContext) -> i32 {
    let mut pkt = Packet::default();
    if Packet::parse_into(&ctx, &mut pkt) == 0 {
        return PASS;
    }
    if conntrack::is_snat_port(u16::from_be(pkt.dport)) {
        let verdict = masqueraded_reply(&ctx, &mut pkt);
        if verdict != NOT_A_REPLY {
            return verdict;
        }
    }
    let mut flow = CtForward::default();
    if conntrack::forward(&pkt, &mut flow) == 0 {
        let verdict = new_flow(&pkt, &mut flow);
        if verdict != NEW_FLOW {
            return verdict;
        }
    }
    translate(&ctx, &mut pkt, &flow)
}

/// Applies `flow` to a client's packet: DNAT to the backend, and for a masqueraded flow SNAT
/// and a redirect. Returns the verdict.
#[inline(never)]
fn translate(ctx: &TcContext, pkt: &mut Packet, flow: &CtForward) -> i32 {
    if pkt
        .rewrite(ctx, End::Destination, flow.backend_addr, flow.backend_port)
        .is_err()
    {
        return DROP;
    }
    let masqueraded = flow.flags & CT_FLAG_SNAT != 0;
    if masqueraded
        && pkt
            .rewrite(ctx, End::Source, flow.snat_addr, flow.snat_port)
            .is_err()
    {
        return DROP;
    }
    count(stats::NODEPORT_NAT_PACKETS);
    if masqueraded {
        fib::redirect(ctx, pkt)
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
    // Masqueraded replies are restored at ingress: an entry of one here is something else.
    let Some(flow) = conntrack::reverse(&conntrack::key_of(&pkt), &pkt, false) else {
        return PASS;
    };
    if pkt
        .rewrite(&ctx, End::Source, flow.frontend_addr, flow.frontend_port)
        .is_err()
    {
        return DROP;
    }
    count(stats::NODEPORT_NAT_PACKETS);
    PASS
}

/// [`masqueraded_reply`]'s result for a packet that is not such a reply.
const NOT_A_REPLY: i32 = -2;

/// A reply to a masqueraded flow (to a SNAT port of the node): restores the client as the
/// destination and the frontend as the source, and sends it back out. Returns the verdict, or
/// [`NOT_A_REPLY`].
#[inline(never)]
fn masqueraded_reply(ctx: &TcContext, pkt: &mut Packet) -> i32 {
    let Some(flow) = conntrack::reverse(&conntrack::key_of(pkt), pkt, true) else {
        return NOT_A_REPLY;
    };
    if pkt
        .rewrite(ctx, End::Source, flow.frontend_addr, flow.frontend_port)
        .is_err()
        || pkt
            .rewrite(ctx, End::Destination, flow.client_addr, flow.client_port)
            .is_err()
    {
        return DROP;
    }
    count(stats::NODEPORT_NAT_PACKETS);
    fib::redirect(ctx, pkt)
}

/// [`new_flow`]'s result when it wrote the new flow, and [`choose`]'s when it chose.
const NEW_FLOW: i32 = -3;

/// The first packet of a flow: writes the new flow to `flow` and returns [`NEW_FLOW`], or
/// returns the verdict for a packet that is not addressed to a frontend (`PASS`) or cannot be
/// served (`DROP`).
#[inline(never)]
fn new_flow(pkt: &Packet, flow: &mut CtForward) -> i32 {
    let mut backend = Backend {
        addr: [0; 4],
        port: 0,
        family: 0,
        flags: 0,
    };
    let mut flags = 0;
    let verdict = choose(pkt, &mut backend, &mut flags);
    if verdict != NEW_FLOW {
        return verdict;
    }
    let masquerade =
        flags & FRONTEND_FLAG_PRESERVE_CLIENT == 0 && backend.flags & BACKEND_FLAG_REMOTE != 0;
    let snat_addr = if masquerade {
        let Some(addr) = node_addr(pkt.family) else {
            count(stats::SNAT_FAILED);
            return DROP;
        };
        Some(addr)
    } else {
        None
    };
    if conntrack::create(pkt, &backend, snat_addr.as_ref(), flow) == 0 {
        count(stats::SNAT_FAILED);
        return DROP;
    }
    NEW_FLOW
}

/// The backend for the first packet of a flow, written to `backend` with the frontend's flags
/// to `flags`; returns [`NEW_FLOW`], or the verdict as [`new_flow`] does.
#[inline(never)]
fn choose(pkt: &Packet, backend: &mut Backend, flags: &mut u32) -> i32 {
    let key = FrontendKey {
        addr: pkt.dst,
        port: pkt.dport,
        family: pkt.family,
        proto: pkt.proto,
    };
    let hash = flow_hash(pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto);
    let client = Client::Addr(pkt.src, pkt.family);
    match pick(&EXT_FRONTENDS, &key, client, Some(hash)) {
        Pick::Pass => PASS,
        Pick::To {
            backend: chosen,
            flags: frontend_flags,
        } if chosen.family == pkt.family => {
            *backend = chosen;
            *flags = frontend_flags;
            NEW_FLOW
        }
        Pick::To { .. } | Pick::Reject => {
            count(stats::NODEPORT_NO_BACKEND);
            DROP
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
