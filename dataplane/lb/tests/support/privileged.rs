//! Gate for tests that load BPF into the kernel: they need root and a real BPF object.
//!
//! Where either is missing the test prints a loud SKIP and returns, except under `CI=true`,
//! where it fails: CI runs as root, so a skip there would hide a broken setup.

use std::{error::Error, io::Write as _};

/// Whether the calling test can run; see the module docs.
pub fn privileged(test: &str) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        "not running as root"
    } else if ferry_lb::EBPF_OBJECT.is_empty() {
        "the embedded BPF object is empty (built with AYA_BUILD_SKIP=1)"
    } else {
        return true;
    };
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    assert!(
        !in_ci,
        "{test}: {why}; with CI=true privileged BPF tests must run, not skip"
    );
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests, and a skip
    // must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED {test}: {why} !!!!!!!!\n\
         !!!!!!!! run as root with the BPF toolchain; CI=true turns this skip into a failure\n"
    );
    false
}

/// An error and its sources, one per line (`LbError` keeps aya's error, which carries the
/// verifier log, as its source).
pub fn chain(error: &dyn Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str("\n  caused by: ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
