//! Ferry's BPF programs, built for `bpfel-unknown-none` by `ferry-lb`'s build.rs.
//!
//! * [`sock4`] / [`sock6`]: cgroup `sock_addr` hooks doing socket-level service load balancing
//!   (`connect`, `sendmsg`, `recvmsg`, `getpeername`), over the maps in [`maps`].
//! * [`sock_release`]: forgets a closing TCP socket's reverse-NAT record.
//! * [`nodeport`]: tc classifiers for NodePort / externalIP / LoadBalancer-IP traffic (DNAT,
//!   masquerade, reverse NAT) with a conntrack map ([`conntrack`]).
//! * [`affinity`]: ClientIP session affinity for both.
//!
//! On the host this crate is an empty binary, so `cargo build --workspace` and
//! `cargo clippy --workspace --all-targets` work without the BPF toolchain.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// `atomic_cxchg`: the BPF target offers no `compare_exchange` (see `revnat`).
#![cfg_attr(
    target_arch = "bpf",
    feature(core_intrinsics),
    allow(internal_features)
)]
#![cfg_attr(
    target_arch = "bpf",
    allow(
        unsafe_code,
        reason = "BPF programs are unmangled entry points that read kernel contexts, call helpers \
                  and dereference map values; each unsafe block carries a SAFETY comment"
    )
)]

#[cfg(target_arch = "bpf")]
mod affinity;
#[cfg(target_arch = "bpf")]
mod conntrack;
#[cfg(target_arch = "bpf")]
mod fib;
#[cfg(target_arch = "bpf")]
mod lb;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod nodeport;
#[cfg(target_arch = "bpf")]
mod packet;
#[cfg(target_arch = "bpf")]
mod revnat;
#[cfg(target_arch = "bpf")]
mod sock4;
#[cfg(target_arch = "bpf")]
mod sock6;
#[cfg(target_arch = "bpf")]
mod sock_addr;
#[cfg(target_arch = "bpf")]
mod sock_release;
#[cfg(target_arch = "bpf")]
mod stats;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program in which this is reachable, so it never runs.
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
