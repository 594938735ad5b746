//! `aya::Pod` for every map type (userspace only, `user` feature).
#![allow(
    unsafe_code,
    reason = "aya::Pod is an unsafe marker trait; each impl is justified below"
)]

use crate::{
    AffinityKey, AffinityValue, Backend, BackendSlotKey, CtConfig, CtForward, CtKey, CtReverse,
    Frontend, FrontendKey, FrontendValue, MaglevKey, MaglevTable, NodeAddrs, RevNatKey, RevNatSlot,
    RevNatValue, SockRevNat,
};

// SAFETY: each type is `#[repr(C)]`, `Copy`, made only of integers and integer arrays, and has
// no implicit padding (asserted by its size check), so every byte pattern is a valid value and
// every byte of a value is initialised.
unsafe impl aya::Pod for FrontendKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Frontend {}
// SAFETY: as above (a `Frontend` and an array of `Backend`s, both padding-free).
unsafe impl aya::Pod for FrontendValue {}
// SAFETY: as above.
unsafe impl aya::Pod for BackendSlotKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Backend {}
// SAFETY: as above.
unsafe impl aya::Pod for RevNatKey {}
// SAFETY: as above.
unsafe impl aya::Pod for RevNatValue {}
// SAFETY: as above.
unsafe impl aya::Pod for SockRevNat {}
// SAFETY: as above.
unsafe impl aya::Pod for RevNatSlot {}
// SAFETY: as above.
unsafe impl aya::Pod for NodeAddrs {}
// SAFETY: as above.
unsafe impl aya::Pod for AffinityKey {}
// SAFETY: as above.
unsafe impl aya::Pod for AffinityValue {}
// SAFETY: as above.
unsafe impl aya::Pod for CtKey {}
// SAFETY: as above.
unsafe impl aya::Pod for CtForward {}
// SAFETY: as above.
unsafe impl aya::Pod for CtReverse {}
// SAFETY: as above.
unsafe impl aya::Pod for CtConfig {}
// SAFETY: as above.
unsafe impl aya::Pod for MaglevKey {}
// SAFETY: as above.
unsafe impl aya::Pod for MaglevTable {}
