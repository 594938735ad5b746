//! `ferry`: the node daemon. This crate wires the sources, the model and the engines; the
//! logic lives in the library crates.

mod admin;
mod check;
mod cli;
mod config;
mod engines;
mod healthcheck;
mod host;
mod memory;
mod pipeline;
mod readiness;
mod run;

use std::process::ExitCode;

/// `EX_USAGE` from sysexits.h: the command line or config file is wrong.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_tracing();
    match cli.command {
        cli::Command::Check(args) => check::run(&args),
        cli::Command::Cleanup(args) => match ferry_lb::cleanup(&args.lb_pin_path) {
            Ok(removed) => {
                for path in &removed {
                    println!("removed {}", path.display());
                }
                println!("{} pinned objects removed", removed.len());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("ferry cleanup: {error}");
                ExitCode::FAILURE
            }
        },
        cli::Command::Run(args) => {
            let config = match config::Config::load(&args) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("ferry: invalid configuration: {error}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            match run::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("ferry stopped: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
