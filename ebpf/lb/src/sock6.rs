//! IPv6 socket load balancing: `connect6`, `sendmsg6`, `recvmsg6`, `getpeername6`.
//!
//! An IPv6 socket may dial an IPv4 service through a v4-mapped address (`::ffff:a.b.c.d`, what
//! dual-stack applications do); the kernel runs these hooks for it, not the IPv4 ones. Such a
//! destination is looked up as the IPv4 frontend and redirected to the v4-mapped backend.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use ferry_ebpf_common::{AF_INET, AF_INET6, FrontendKey, stats};

use crate::{
    affinity::Client,
    lb::{Pick, VERDICT_PROCEED, VERDICT_REJECT, pick},
    maps::FRONTENDS,
    revnat::{self, Seen},
    sock_addr::SockAddr,
    stats::count,
};

/// Word 2 of a v4-mapped address: bytes `00 00 ff ff`.
const V4_MAPPED_WORD2: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);

/// TCP and connected-UDP `connect()` to a service address → a backend.
#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    translate(&SockAddr(&ctx))
}

/// Unconnected UDP `sendmsg()` / `sendto()` to a service address → a backend.
#[cgroup_sock_addr(sendmsg6)]
pub fn sendmsg6(ctx: SockAddrContext) -> i32 {
    translate(&SockAddr(&ctx))
}

/// Unconnected UDP `recvmsg()` / `recvfrom()`: replies appear to come from the service address.
#[cgroup_sock_addr(recvmsg6)]
pub fn recvmsg6(ctx: SockAddrContext) -> i32 {
    restore(&SockAddr(&ctx))
}

/// `getpeername()` on a translated socket reports the service address.
#[cgroup_sock_addr(getpeername6)]
pub fn getpeername6(ctx: SockAddrContext) -> i32 {
    restore(&SockAddr(&ctx))
}

#[inline(always)]
fn seen(addr: [u32; 4], port: u16) -> Seen {
    Seen {
        addr,
        port,
        family: AF_INET6,
    }
}

#[inline(always)]
fn translate(sa: &SockAddr<'_>) -> i32 {
    let frontend = seen(sa.ip6(), sa.port());
    let [w0, w1, w2, w3] = frontend.addr;
    let mapped = w0 == 0 && w1 == 0 && w2 == V4_MAPPED_WORD2;
    let key = FrontendKey {
        addr: if mapped { [w3, 0, 0, 0] } else { frontend.addr },
        port: frontend.port,
        family: if mapped { AF_INET } else { AF_INET6 },
        proto: sa.protocol(),
    };
    let backend = match pick(&FRONTENDS, &key, Client::Netns(sa.netns_cookie()), None) {
        Pick::Pass => return VERDICT_PROCEED,
        Pick::Reject => return reject(),
        Pick::To { backend, .. } => backend,
    };
    // What the socket will see: the backend as-is, or v4-mapped for an IPv4 service.
    let addr = match (mapped, backend.family) {
        (false, AF_INET6) => backend.addr,
        (true, AF_INET) => [0, 0, V4_MAPPED_WORD2, backend.addr[0]],
        _ => return reject(),
    };
    sa.set_ip6(addr);
    sa.set_port(backend.port);
    revnat::record(sa, seen(addr, backend.port), frontend);
    count(stats::SOCK_TRANSLATED);
    VERDICT_PROCEED
}

#[inline(always)]
fn reject() -> i32 {
    count(stats::SOCK_NO_BACKEND);
    VERDICT_REJECT
}

#[inline(always)]
fn restore(sa: &SockAddr<'_>) -> i32 {
    if let Some(frontend) = revnat::lookup(sa, seen(sa.ip6(), sa.port())) {
        sa.set_ip6(frontend.addr);
        sa.set_port(frontend.port);
    }
    VERDICT_PROCEED
}
