//! `gauntlet fixture`: write a deterministic BitNet b1.58-shaped model file.
//!
//! Exit codes: 0 written, 1 I/O failure, 2 invalid arguments (from clap).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gauntlet_engine::fixture::{FixtureSpec, Preset, WeightFormat};

use crate::exit;

/// Arguments of `gauntlet fixture`.
#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Model size: tiny (<1 MiB), small (tens of MiB) or bitnet-2b4t (>1 GiB, BitNet b1.58 2B4T shapes).
    #[arg(long, value_parser = parse_preset)]
    pub preset: Preset,
    /// Ternary format of the projection weights: tq2_0, tq1_0 or i2_s.
    #[arg(long, default_value = "tq2_0", value_parser = parse_format)]
    pub format: WeightFormat,
    /// Seed for every generated value; the same seed gives the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (written to a temporary name, then renamed into place).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
}

fn parse_format(s: &str) -> Result<WeightFormat, String> {
    s.parse()
}

/// Runs `gauntlet fixture`.
pub fn run(args: FixtureArgs) -> ExitCode {
    let spec = FixtureSpec {
        preset: args.preset,
        format: args.format,
        seed: args.seed,
    };
    match spec.write_file(&args.output) {
        Ok(()) => {
            let len = std::fs::metadata(&args.output).map_or(0, |m| m.len());
            println!(
                "wrote {}: {len} bytes ({} preset, {} weights, seed {})",
                args.output.display(),
                spec.preset,
                spec.format,
                spec.seed
            );
            exit::code(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("help: check that the output directory exists, is writable and has space");
            exit::code(exit::IO)
        }
    }
}
