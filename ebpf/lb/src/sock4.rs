//! IPv4 socket load balancing: `connect4`, `sendmsg4`, `recvmsg4`, `getpeername4`.

use aya_ebpf::{macros::cgroup_sock_addr, programs::SockAddrContext};
use ferry_ebpf_common::{AF_INET, FrontendKey, stats};

use crate::{
    affinity::Client,
    lb::{Pick, VERDICT_PROCEED, VERDICT_REJECT, pick},
    maps::FRONTENDS,
    revnat::{self, Seen},
    sock_addr::SockAddr,
    stats::count,
};

/// TCP and connected-UDP `connect()` to a service address → a backend.
#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    translate(&SockAddr(&ctx))
}

/// Unconnected UDP `sendmsg()` / `sendto()` to a service address → a backend.
#[cgroup_sock_addr(sendmsg4)]
pub fn sendmsg4(ctx: SockAddrContext) -> i32 {
    translate(&SockAddr(&ctx))
}

/// Unconnected UDP `recvmsg()` / `recvfrom()`: a reply from the backend appears to come from
/// the service address.
#[cgroup_sock_addr(recvmsg4)]
pub fn recvmsg4(ctx: SockAddrContext) -> i32 {
    restore(&SockAddr(&ctx))
}

/// `getpeername()` on a translated socket reports the service address.
#[cgroup_sock_addr(getpeername4)]
pub fn getpeername4(ctx: SockAddrContext) -> i32 {
    restore(&SockAddr(&ctx))
}

#[inline(always)]
fn seen(ip: u32, port: u16) -> Seen {
    Seen {
        addr: [ip, 0, 0, 0],
        port,
        family: AF_INET,
    }
}

#[inline(always)]
fn translate(sa: &SockAddr<'_>) -> i32 {
    let frontend = seen(sa.ip4(), sa.port());
    let key = FrontendKey {
        addr: frontend.addr,
        port: frontend.port,
        family: AF_INET,
        proto: sa.protocol(),
    };
    match pick(&FRONTENDS, &key, Client::Netns(sa.netns_cookie()), None) {
        Pick::Pass => VERDICT_PROCEED,
        Pick::To { backend, .. } if backend.family == AF_INET => {
            sa.set_ip4(backend.addr[0]);
            sa.set_port(backend.port);
            revnat::record(sa, seen(backend.addr[0], backend.port), frontend);
            count(stats::SOCK_TRANSLATED);
            VERDICT_PROCEED
        }
        Pick::To { .. } | Pick::Reject => {
            count(stats::SOCK_NO_BACKEND);
            VERDICT_REJECT
        }
    }
}

#[inline(always)]
fn restore(sa: &SockAddr<'_>) -> i32 {
    if let Some(frontend) = revnat::lookup(sa, seen(sa.ip4(), sa.port())) {
        sa.set_ip4(frontend.addr[0]);
        sa.set_port(frontend.port);
    }
    VERDICT_PROCEED
}
