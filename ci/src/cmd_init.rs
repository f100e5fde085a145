//! `gauntlet init`: give another Rust project this repository's nextest profiles,
//! timeout policy and a sharded CI workflow.
//!
//! The nextest profiles and `gauntlet.toml` are this repository's own files, compiled
//! in, so what `init` writes is exactly what `gauntlet check-config` proves here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::exit;

/// This repository's nextest profiles (default, ci, wsl2, gpu) and test groups.
const NEXTEST_TOML: &str = include_str!("../../.config/nextest.toml");
/// This repository's timeout policy and analysis thresholds.
const GAUNTLET_TOML: &str = include_str!("../../gauntlet.toml");
/// A sharded workflow for a project that is not gauntlet itself.
const CI_YML: &str = include_str!("init/ci.yml");

/// Writes `.config/nextest.toml`, `gauntlet.toml` and `.github/workflows/ci.yml`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project root to write into (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

/// The files `init` writes, relative to the project root, with their content.
pub fn files() -> [(&'static str, String); 3] {
    [
        (".config/nextest.toml", NEXTEST_TOML.to_owned()),
        ("gauntlet.toml", GAUNTLET_TOML.to_owned()),
        (
            ".github/workflows/ci.yml",
            CI_YML.replace("@GAUNTLET_GIT@", env!("CARGO_PKG_REPOSITORY")),
        ),
    ]
}

/// Writes the files; refuses (before writing anything) if one exists and `force` is off.
pub fn write(root: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
    if !root.join("Cargo.toml").is_file() {
        return Err(format!(
            "{}: no Cargo.toml here; run `gauntlet init` in a Rust project's root or pass its directory",
            root.display()
        ));
    }
    let files = files();
    if !force {
        let existing: Vec<String> = files
            .iter()
            .map(|(rel, _)| root.join(rel))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "would overwrite {}; nothing was written (pass --force to replace them)",
                existing.join(", ")
            ));
        }
    }
    let mut written = Vec::new();
    for (rel, content) in files {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Runs `gauntlet init`.
pub fn run(args: InitArgs) -> ExitCode {
    let root = args.dir.unwrap_or_else(|| PathBuf::from("."));
    match write(&root, args.force) {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
            println!(
                "next: `gauntlet check-config` proves the profiles outlast the budgets; `cargo nextest run --profile ci` uses them"
            );
            exit::code(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::code(exit::INVALID)
        }
    }
}
