//! Sending a rewritten packet straight out of the right interface (`bpf_fib_lookup` +
//! `bpf_redirect`, or `bpf_redirect_neigh` when the neighbour is not resolved yet).
//!
//! Used for packets whose new source is a node address: handed to the stack at ingress, they
//! would be dropped as martians (a packet arriving from outside with a local source).

use core::{mem, ptr};

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_SHOT, bpf_fib_lookup},
    helpers::{bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh},
    programs::TcContext,
};
use ferry_ebpf_common::{AF_INET, stats};

use crate::{packet::Packet, stats::count};

/// Routes `pkt` (already rewritten) as if forwarded from the interface it arrived on and
/// redirects it to the egress of the resulting interface. Returns the tc verdict.
#[inline(always)]
pub fn redirect(ctx: &TcContext, pkt: &Packet) -> i32 {
    // SAFETY: `bpf_fib_lookup` is plain old data; all-zero is its "no input" value.
    let mut params: bpf_fib_lookup = unsafe { mem::zeroed() };
    params.family = pkt.family;
    params.l4_protocol = pkt.proto;
    params.sport = pkt.sport;
    params.dport = pkt.dport;
    // SAFETY: the kernel passes a valid `__sk_buff` for the program's whole run.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    if pkt.family == AF_INET {
        params.__bindgen_anon_3.ipv4_src = pkt.src[0];
        params.__bindgen_anon_4.ipv4_dst = pkt.dst[0];
    } else {
        params.__bindgen_anon_3.ipv6_src = pkt.src;
        params.__bindgen_anon_4.ipv6_dst = pkt.dst;
    }
    // SAFETY: `params` is a valid, initialised struct of the size passed.
    let rc = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            &raw mut params,
            mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    match u32::try_from(rc) {
        Ok(BPF_FIB_LKUP_RET_SUCCESS) => {
            if ctx.store(0, &params.dmac, 0).is_err() || ctx.store(6, &params.smac, 0).is_err() {
                count(stats::REDIRECT_FAILED);
                return TC_ACT_SHOT as i32;
            }
            // SAFETY: a helper taking plain integers.
            unsafe { bpf_redirect(params.ifindex, 0) as i32 }
        }
        // SAFETY: a null `params` makes the helper resolve the next hop from the packet itself.
        Ok(BPF_FIB_LKUP_RET_NO_NEIGH) => unsafe {
            bpf_redirect_neigh(params.ifindex, ptr::null_mut(), 0, 0) as i32
        },
        _ => {
            count(stats::REDIRECT_FAILED);
            TC_ACT_SHOT as i32
        }
    }
}
