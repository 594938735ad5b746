//! Typed access to `bpf_sock_addr` fields, always with 4-byte loads and stores (what the
//! verifier requires for `user_port` and accepts everywhere else).

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    programs::SockAddrContext,
};
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

/// A `sock_addr` hook's context.
pub struct SockAddr<'a>(pub &'a SockAddrContext);

impl SockAddr<'_> {
    /// Destination (connect/sendmsg) or peer/source (getpeername/recvmsg) IPv4 address,
    /// network-order bytes read as a native `u32`.
    #[inline(always)]
    pub fn ip4(&self) -> u32 {
        // SAFETY: the kernel passes a valid `bpf_sock_addr` for the program's whole run and the
        // verifier checks the field access; the volatile read keeps it a single 4-byte load.
        unsafe { read_volatile(addr_of!((*self.0.sock_addr).user_ip4)) }
    }

    #[inline(always)]
    pub fn set_ip4(&self, ip: u32) {
        // SAFETY: as in `ip4`; `user_ip4` is writable in every hook that calls this.
        unsafe { write_volatile(addr_of_mut!((*self.0.sock_addr).user_ip4), ip) }
    }

    /// IPv6 counterpart of [`Self::ip4`], as four network-order words.
    #[inline(always)]
    pub fn ip6(&self) -> [u32; 4] {
        // SAFETY: as in `ip4`; four separate 4-byte loads.
        unsafe {
            let p = addr_of!((*self.0.sock_addr).user_ip6).cast::<u32>();
            [
                read_volatile(p),
                read_volatile(p.add(1)),
                read_volatile(p.add(2)),
                read_volatile(p.add(3)),
            ]
        }
    }

    #[inline(always)]
    pub fn set_ip6(&self, ip: [u32; 4]) {
        // SAFETY: as in `ip4`; four separate 4-byte stores within `user_ip6`.
        unsafe {
            let p = addr_of_mut!((*self.0.sock_addr).user_ip6).cast::<u32>();
            write_volatile(p, ip[0]);
            write_volatile(p.add(1), ip[1]);
            write_volatile(p.add(2), ip[2]);
            write_volatile(p.add(3), ip[3]);
        }
    }

    /// Port in network byte order (the low 16 bits of `user_port`).
    #[inline(always)]
    pub fn port(&self) -> u16 {
        // SAFETY: as in `ip4`.
        let raw = unsafe { read_volatile(addr_of!((*self.0.sock_addr).user_port)) };
        raw as u16
    }

    #[inline(always)]
    pub fn set_port(&self, port: u16) {
        // SAFETY: as in `ip4`; `user_port` must be written as a whole u32.
        unsafe { write_volatile(addr_of_mut!((*self.0.sock_addr).user_port), u32::from(port)) }
    }

    /// The socket's L4 protocol (`IPPROTO_TCP` / `IPPROTO_UDP`, ...).
    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        // SAFETY: as in `ip4`.
        let raw = unsafe { read_volatile(addr_of!((*self.0.sock_addr).protocol)) };
        raw as u8
    }

    /// The socket's cookie, stable for its lifetime.
    #[inline(always)]
    pub fn cookie(&self) -> u64 {
        // SAFETY: `bpf_get_socket_cookie` accepts a `sock_addr` context pointer.
        unsafe { bpf_get_socket_cookie(self.0.as_ptr()) }
    }

    /// The cookie of the socket's network namespace: the client identity for ClientIP
    /// affinity in the socket LB.
    #[inline(always)]
    pub fn netns_cookie(&self) -> u64 {
        // SAFETY: `bpf_get_netns_cookie` accepts a `sock_addr` context pointer.
        unsafe { bpf_get_netns_cookie(self.0.as_ptr()) }
    }
}
