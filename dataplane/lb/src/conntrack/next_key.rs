//! `BPF_MAP_GET_NEXT_KEY` from a given key. aya iterates a map only from its first key, but a
//! sweep doing bounded work per call must resume where the previous call stopped.
#![allow(
    unsafe_code,
    reason = "the bpf(2) syscall for one command aya does not expose; one block, justified below"
)]

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
};

use nix::libc;

use crate::common::CtKey;

/// `enum bpf_cmd` value of `BPF_MAP_GET_NEXT_KEY`.
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// The map element commands' part of `union bpf_attr` (the kernel zero-fills the rest).
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    next_key: u64,
    flags: u64,
}

/// The key after `after` in map `fd`, or its first key for `None`; `Ok(None)` past the last.
/// A key no longer in the map starts over at the first (the kernel's rule for hash maps).
///
/// `fd` must be a map whose keys are [`CtKey`]s (the caller has checked its key size).
pub(super) fn next_key(fd: BorrowedFd<'_>, after: Option<&CtKey>) -> io::Result<Option<CtKey>> {
    let mut next = CtKey::default();
    let attr = ElemAttr {
        map_fd: u32::try_from(fd.as_raw_fd()).map_err(|_| io::ErrorKind::InvalidInput)?,
        _pad: 0,
        key: after.map_or(0, |k| std::ptr::from_ref(k) as u64),
        next_key: std::ptr::from_mut(&mut next) as u64,
        flags: 0,
    };
    // SAFETY: `attr` is a valid BPF_MAP_GET_NEXT_KEY argument of the size passed; `key` is null
    // or points to a live `CtKey` and `next_key` to a writable one, and the map's key size is
    // `size_of::<CtKey>()`, so the kernel reads and writes only within them. `fd` stays open
    // for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_GET_NEXT_KEY,
            &raw const attr,
            size_of::<ElemAttr>(),
        )
    };
    if rc == 0 {
        return Ok(Some(next));
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::ENOENT) {
        Ok(None)
    } else {
        Err(error)
    }
}
