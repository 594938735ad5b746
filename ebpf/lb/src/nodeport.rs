//! tc classifiers for NodePort / externalIP / LoadBalancer traffic.
//!
//! Placeholder: passes every packet, so the tc load/attach pipeline is exercised end to end.
//! The DNAT (ingress) and reverse NAT (egress of the same external interface) come later; see
//! the toolchain notes on why reverse NAT must not happen at the backend side's ingress.

use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};

/// Ingress of an external interface.
#[classifier]
pub fn nodeport_ingress(_ctx: TcContext) -> i32 {
    TC_ACT_OK as i32
}
