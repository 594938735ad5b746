//! `cargo xtask <task>`: the project's developer commands.
//!
//! * `setup`: idempotent machine setup (`xtask/setup.sh`): Debian tools, the pinned BPF
//!   nightly, bpf-linker.
//! * `test`: setup, then every test tier (unit, property, integration, privileged BPF/netns,
//!   end-to-end), then the demo's own smoke run.
//! * `demo [--smoke]`: the daemon on `examples/demo` in a network namespace of its own, with
//!   lines to try; `--smoke` runs those lines and exits.

mod backend;
mod demo;
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
        ["backend", addr, name] => backend::serve(addr, name),
        _ => bail!(
            "usage: cargo xtask <setup | test | demo [--smoke]>\n\
             \x20 setup          install what builds and tests need (idempotent)\n\
             \x20 test           setup, then every test tier\n\
             \x20 demo           run ferry on examples/demo and print lines to try"
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
