//! Builds `ferry-ebpf` for `bpfel-unknown-none` (via aya-build) into `$OUT_DIR/ferry-bpf`,
//! which `src/lib.rs` embeds.
//!
//! Needs the pinned nightly (+ rust-src) and `bpf-linker` on `PATH`; `xtask/setup.sh` installs
//! both. With `AYA_BUILD_SKIP=1` the BPF build is skipped and an empty placeholder object is
//! written instead, so the crate builds on plain stable (the loader then reports the object as
//! missing and the privileged tests skip, or fail under `CI=true`).

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, bail};
use aya_build::{Package, Toolchain};

/// The nightly that builds the BPF crate. Keep in sync with `EBPF_NIGHTLY` in `xtask/setup.sh`
/// (bpf-linker there is linked against this nightly's LLVM).
const EBPF_NIGHTLY: &str = "nightly-2026-05-20";

/// The BPF crate's package name, and its `[[bin]]` name: aya-build copies each bin target to
/// `$OUT_DIR/<bin name>`.
const EBPF_PACKAGE: &str = "ferry-ebpf";
const EBPF_BIN: &str = "ferry-bpf";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.join("../..");
    println!("cargo:rerun-if-changed=build.rs");
    // aya-build watches the BPF crate's own directory; the shared types live next to it.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("ebpf/common").display()
    );
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");

    if skip_requested() {
        let out = PathBuf::from(env::var("OUT_DIR")?).join(EBPF_BIN);
        fs::write(&out, []).with_context(|| format!("writing placeholder {}", out.display()))?;
        println!("cargo:warning=AYA_BUILD_SKIP is set: embedding an empty BPF object");
        return Ok(());
    }
    if !on_path("bpf-linker") {
        bail!(
            "bpf-linker is not on PATH: run xtask/setup.sh and add ~/.cargo/bin to PATH, \
             or set AYA_BUILD_SKIP=1 to build without the BPF object"
        );
    }

    quiet_nested_cargo();
    let ebpf_dir = workspace.join("ebpf/lb");
    let root_dir = ebpf_dir.to_str().context("non-UTF-8 path to ebpf/lb")?;
    aya_build::build_ebpf(
        [Package {
            name: EBPF_PACKAGE,
            root_dir,
            ..Default::default()
        }],
        Toolchain::Custom(EBPF_NIGHTLY),
    )
}

/// aya-build turns every stderr line of the nested `cargo build` into a `cargo:warning`, which
/// cargo then replays on every later build of this crate: ~35 "Compiling ..." lines. A quiet
/// nested cargo still reports compiler warnings and errors, just not its progress.
#[allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe in edition 2024; justified below"
)]
fn quiet_nested_cargo() {
    // SAFETY: called before aya-build spawns anything; this build script has no other threads
    // that could read the environment concurrently.
    unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
}

/// The same test aya-build applies to `AYA_BUILD_SKIP`.
fn skip_requested() -> bool {
    env::var_os("AYA_BUILD_SKIP").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
