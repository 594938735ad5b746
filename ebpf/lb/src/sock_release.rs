//! `sock_release`: a TCP socket of the LB cgroup is going away; its reverse-NAT record goes
//! with it.

use aya_ebpf::{
    EbpfContext as _, helpers::bpf_get_socket_cookie, macros::cgroup_sock, programs::SockContext,
};
use ferry_ebpf_common::IPPROTO_TCP;

use crate::revnat;

/// Deletes the `SOCK_REVNAT` record of a released TCP socket, if it has one.
#[cgroup_sock(sock_release)]
pub fn sock_release(ctx: SockContext) -> i32 {
    // SAFETY: the kernel passes a valid `bpf_sock` for the program's run; the verifier checks
    // the field access.
    let protocol = unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*ctx.sock).protocol)) };
    if protocol == u32::from(IPPROTO_TCP) {
        // SAFETY: `bpf_get_socket_cookie` accepts a `bpf_sock` context pointer.
        revnat::forget(unsafe { bpf_get_socket_cookie(ctx.as_ptr()) });
    }
    // "Allow": the kernel ignores a release hook's verdict, but the verifier wants 0 or 1.
    1
}
