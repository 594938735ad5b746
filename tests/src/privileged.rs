//! Gates for tests that need root, an external tool, or the real BPF object.
//!
//! Where a requirement is missing the test prints a loud SKIP and returns, except under
//! `CI=true` (or `CI=1`), where it fails: CI runs as root with every tool installed, so a skip
//! there would hide a broken setup.

use std::{
    error::Error,
    io::Write as _,
    process::{Command, Stdio},
};

/// Whether this is a CI run (`CI=true` or `CI=1`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// True when running as root. Without root: fails under CI, else skips loudly (false).
pub fn require_root(test: &str) -> bool {
    nix::unistd::geteuid().is_root() || skip(test, "needs root")
}

/// True when `tool` is on PATH. Without it: fails under CI, else skips loudly (false).
pub fn require_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found
        || skip(
            test,
            &format!("needs {tool} (cargo xtask setup installs it)"),
        )
}

/// True when the test can load BPF: root, and `object` (the embedded BPF object,
/// `ferry_lb::EBPF_OBJECT`) is a real one. Otherwise: fails under CI, else skips loudly.
pub fn require_bpf(test: &str, object: &[u8]) -> bool {
    if !nix::unistd::geteuid().is_root() {
        skip(test, "needs root")
    } else if object.is_empty() {
        skip(
            test,
            "the embedded BPF object is empty (built with AYA_BUILD_SKIP=1)",
        )
    } else {
        true
    }
}

/// Fails under CI; elsewhere reports the skip and returns false.
fn skip(test: &str, why: &str) -> bool {
    assert!(!in_ci(), "{test}: {why}, and CI=true forbids skipping");
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests, and a skip
    // must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED {test}: {why} !!!!!!!!\n\
         !!!!!!!! run as root with the BPF toolchain; CI=true turns this skip into a failure\n"
    );
    false
}

/// An error and its sources, one per line (`ferry_lb::LbError` keeps aya's error, which
/// carries the verifier log, as its source).
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
