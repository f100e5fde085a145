//! The `gauntlet` command: fixtures, inspect, load, doctor, run, history and dashboard.
//!
//! Each subcommand lives in its own module, `cmd_<name>.rs`, with its clap `Args` and a
//! `run(args) -> ExitCode`; larger logic has its own directory (`history/`, `serve/`, …).
//! This file only wires them together.

mod analysis;
mod cmd_bench;
mod cmd_check_config;
mod cmd_dashboard;
mod cmd_doctor;
mod cmd_export;
mod cmd_fixture;
mod cmd_init;
mod cmd_inspect;
mod cmd_load;
mod cmd_record;
mod cmd_run;
mod cmd_sandbox;
mod cmd_serve;
mod dashboard;
mod exit;
mod export;
mod history;
mod serve;

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
enum Command {
    /// Write a deterministic BitNet b1.58-shaped GGUF model (tiny, small or bitnet-2b4t).
    Fixture(cmd_fixture::FixtureArgs),
    /// Validate a GGUF file and summarise it (--json for machines).
    Inspect(cmd_inspect::InspectArgs),
    /// Prove .config/nextest.toml kills hung tests only after gauntlet.toml's budgets expire.
    CheckConfig(cmd_check_config::CheckConfigArgs),
    /// Benchmarks: `gauntlet bench kernels` measures ternary GEMV against memory bandwidth.
    Bench(cmd_bench::BenchArgs),
    /// Ingest nextest JUnit, criterion and bench results into the history database.
    Record(cmd_record::RecordArgs),
    /// Analyse history: flaky tests, failures, regressions; render the dashboard.
    Dashboard(cmd_dashboard::DashboardArgs),
    /// Export a recorded run as Bencher Metric Format, github-action-benchmark JSON or merged JUnit.
    Export(cmd_export::ExportArgs),
    /// Run the tests with the profile this environment needs, record them and summarise.
    Run(cmd_run::RunArgs),
    /// Write nextest profiles, gauntlet.toml and a CI workflow into another project.
    Init(cmd_init::InitArgs),
    /// Check this machine: environment, resources, GPU, OOM kills, toolchain, profile.
    Doctor(cmd_doctor::DoctorArgs),
    /// Load a model with a deadline, progress and a memory pre-flight; report GB/s.
    Load(cmd_load::LoadArgs),
    /// Run a command under memory/CPU/pid/time limits in its own cgroup; label OOM kills.
    Sandbox(cmd_sandbox::SandboxArgs),
    /// Serve a model over HTTP: health, readiness, inference with timeouts, queueing, admin.
    Serve(cmd_serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fixture(args) => cmd_fixture::run(args),
        Command::Inspect(args) => cmd_inspect::run(args),
        Command::CheckConfig(args) => cmd_check_config::run(args),
        Command::Bench(args) => cmd_bench::run(args),
        Command::Record(args) => cmd_record::run(args),
        Command::Dashboard(args) => cmd_dashboard::run(args),
        Command::Export(args) => cmd_export::run(args),
        Command::Run(args) => cmd_run::run(args),
        Command::Init(args) => cmd_init::run(args),
        Command::Doctor(args) => cmd_doctor::run(args),
        Command::Load(args) => cmd_load::run(args),
        Command::Sandbox(args) => cmd_sandbox::run(args),
        Command::Serve(args) => cmd_serve::run(args),
    }
}
