//! `cargo xtask <task>`: the project's developer commands.
//!
//! * `setup`: idempotent machine setup (`xtask/setup.sh`): Debian tools, the pinned BPF
//!   nightly, bpf-linker.
//! * `test`: setup, then every test tier (unit, property, integration, privileged BPF/netns,
//!   end-to-end), then the demo's own smoke run.
//! * `demo [--smoke]`: the daemon on `examples/demo` in a network namespace of its own, with
//!   lines to try; `--smoke` runs those lines and exits.
//! * `bench lb [options]`: ferry against kube-proxy's iptables and nftables rule shapes
//!   (sync time, connection rate and latency, memory); writes `docs/bench/lb.md` and `lb.png`.
//! * `bench dns [options]`: ferry's cluster DNS against NSD with dnsperf (qps, latency, RSS,
//!   memory per object); writes `docs/bench/dns.md`.

mod backend;
mod bench;
mod benchkit;
mod demo;
mod dnsbench;
mod procfs;
mod shell;

use anyhow::bail;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["setup"] => setup(),
        ["test"] => test(),
        ["demo"] => demo::run(false),
        ["demo", "--smoke"] => demo::run(true),
        ["bench", "lb", rest @ ..] => bench::lb(rest),
        ["bench", "dns", rest @ ..] => dnsbench::dns(rest),
        _ => bail!(
            "usage: cargo xtask <setup | test | demo [--smoke] | bench lb|dns [options]>\n\
             \x20 setup          install what builds and tests need (idempotent)\n\
             \x20 test           setup, then every test tier\n\
             \x20 demo           run ferry on examples/demo and print lines to try\n\
             \x20 bench lb       benchmark ferry against iptables and nftables (docs/bench/lb.md);\n\
             \x20                [--sizes 100,1000,10000] [--rounds 3] [--duration 5] [--threads 1]\n\
             \x20                [--impls direct,ferry,iptables,nftables] [--iptables legacy|nft]\n\
             \x20                [--ferry BIN] [--out DIR]\n\
             \x20 bench dns      benchmark ferry's cluster DNS against NSD (docs/bench/dns.md);\n\
             \x20                [--rounds 3] [--duration 10] [--clients 4] [--outstanding 200]\n\
             \x20                [--memory-services 10000] [--ferry BIN] [--out DIR]"
        ),
    }
}

fn setup() -> anyhow::Result<()> {
    shell::run(
        "bash",
        &[shell::root()
            .join("xtask/setup.sh")
            .to_str()
            .unwrap_or_default()],
    )
}

fn test() -> anyhow::Result<()> {
    setup()?;
    shell::cargo(&["build", "--package", "ferry"])?;
    shell::cargo(&["test", "--workspace", "--no-fail-fast"])?;
    println!("\n== demo smoke run ==");
    demo::run(true)
}
