//! The `gauntlet` command: fixtures, inspect, load, doctor, run, history and dashboard.
//!
//! Each subcommand lives in its own module under `cmd/` with its clap `Args` and a
//! `run(args) -> ExitCode`; this file only wires them together.

mod exit;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps model loading and ternary kernels honest in CI.
#[derive(Debug, Parser)]
#[command(name = "gauntlet", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
