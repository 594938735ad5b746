#!/usr/bin/env bash
# Idempotent machine setup for building and testing Ferry (run as root on Debian 12).
# Installs: the Debian tools the tests drive, the pinned nightly that builds the BPF crate,
# and bpf-linker linked against that nightly's own libLLVM (see shared DESIGN.md).
set -euo pipefail

EBPF_NIGHTLY="nightly-2026-05-20"        # rustc 1.97.0-nightly, LLVM 22; also named in dataplane/lb/build.rs
BPF_LINKER_VERSION="0.13.0"
BPF_LINKER_LLVM_FEATURE="llvm-22"        # = the nightly's LLVM major
APT_PACKAGES=(dnsutils curl iproute2 procps util-linux bpftool ethtool iptables nftables gnuplot-nox time nsd dnsperf)

log() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's nsd package enables a system service on port 53; the DNS bench starts its own NSD
# from a config of its own, so the service stays stopped and disabled.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  if systemctl is-enabled --quiet nsd 2>/dev/null || systemctl is-active --quiet nsd 2>/dev/null; then
    log "stopping and disabling the nsd system service"
    systemctl disable --now nsd >/dev/null 2>&1 || log "warning: could not stop the nsd service"
  fi
elif [ -f /run/nsd/nsd.pid ] && kill -0 "$(cat /run/nsd/nsd.pid)" 2>/dev/null; then
  log "stopping the nsd system service"
  kill "$(cat /run/nsd/nsd.pid)" || true
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || log "warning: could not add rustfmt/clippy to the default toolchain"
if ! rustup run "$EBPF_NIGHTLY" rustc --version >/dev/null 2>&1 \
   || ! [ -d "$(rustc +"$EBPF_NIGHTLY" --print sysroot)/lib/rustlib/src/rust/library" ]; then
  log "installing $EBPF_NIGHTLY with rust-src"
  rustup toolchain install "$EBPF_NIGHTLY" --profile minimal --component rust-src --no-self-update
fi

CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
sysroot="$(rustc +"$EBPF_NIGHTLY" --print sysroot)"
llvm_so="$(ls "$sysroot"/lib/libLLVM.so.* | head -n1)"
prefix="$CARGO_HOME/bpf-linker-llvm/$EBPF_NIGHTLY"
mkdir -p "$prefix/lib"
ln -sf "$llvm_so" "$prefix/lib/libLLVM.so"
ln -sf "$llvm_so" "$prefix/lib/$(basename "$llvm_so")"
if [ "$("$CARGO_HOME/bin/bpf-linker" --version 2>/dev/null)" != "bpf-linker $BPF_LINKER_VERSION" ]; then
  log "building bpf-linker $BPF_LINKER_VERSION against $EBPF_NIGHTLY's LLVM"
  LLVM_PREFIX="$prefix" cargo install "bpf-linker@$BPF_LINKER_VERSION" --locked --force \
    --no-default-features --features "$BPF_LINKER_LLVM_FEATURE"
fi
log "ready: $("$CARGO_HOME/bin/bpf-linker" --version), $(rustc +"$EBPF_NIGHTLY" --version)"
