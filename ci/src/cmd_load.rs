//! `gauntlet load FILE`: load a model with a deadline, progress and a memory check.
//!
//! Exit codes: 0 loaded, 2 invalid model or settings, 3 timed out, 4 will not fit in
//! memory (refused before allocating), 5 cancelled (Ctrl-C stops within one chunk),
//! 1 any other I/O failure.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use gauntlet_engine::config::{CliOverrides, LoadConfig};
use gauntlet_engine::load::{
    CancellationToken, LoadError, LoadMode, LoadOptions, LoadedModel, Loader, ProgressEvent, Stage,
};
use gauntlet_engine::preflight::{Outcome, Preflight, SystemRoot};
use indicatif::{ProgressBar, ProgressStyle};

use crate::exit;

/// Arguments of `gauntlet load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The GGUF model file.
    pub file: PathBuf,
    /// Budget for the whole load, e.g. "60s" or "1m30s" (default: gauntlet.toml's
    /// [timeouts].model_loading, GAUNTLET_MODEL_LOAD_TIMEOUT, or 60s).
    #[arg(long)]
    pub timeout: Option<String>,
    /// How tensor bytes become resident: map and populate, or copy into owned memory.
    #[arg(long, default_value = "mmap", value_parser = parse_mode)]
    pub mode: LoadMode,
    /// Skip the memory pre-flight (load even if the estimate exceeds the limit).
    #[arg(long)]
    pub no_memcheck: bool,
    /// Bytes per populate/read step, e.g. "64MiB".
    #[arg(long)]
    pub chunk_size: Option<String>,
    /// No progress output.
    #[arg(long)]
    pub no_progress: bool,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Config file (default: the nearest gauntlet.toml from the current directory up).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn parse_mode(s: &str) -> Result<LoadMode, String> {
    s.parse()
}

fn find_config() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|d| d.join("gauntlet.toml"))
        .find(|p| p.is_file())
}

/// Runs `gauntlet load`.
pub fn run(args: LoadArgs) -> ExitCode {
    let cli = CliOverrides {
        timeout: args.timeout.clone(),
        chunk_size: args.chunk_size.clone(),
        progress_interval: None,
        no_progress: args.no_progress,
    };
    let config_path = args.config.clone().or_else(find_config);
    let cfg = match LoadConfig::load(config_path.as_deref(), &cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::code(exit::INVALID);
        }
    };
    let mut opts = LoadOptions::from_config(&cfg).mode(args.mode);
    if !args.no_memcheck {
        opts = opts.memcheck(SystemRoot::host());
    }
    let token = CancellationToken::new();
    opts = opts.cancel_token(token.clone());
    let show = cfg.progress_reporting.value && !args.json;
    let reporter = show.then(|| Arc::new(Reporter::new(std::io::stderr().is_terminal())));
    if let Some(r) = &reporter {
        let r = r.clone();
        opts = opts.progress(move |e: &ProgressEvent| r.event(e));
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::code(exit::IO);
        }
    };
    let loader = Loader::new(opts);
    let result = runtime.block_on(async {
        let load = loader.load_path_async(&args.file);
        tokio::pin!(load);
        tokio::select! {
            r = &mut load => r,
            _ = tokio::signal::ctrl_c() => {
                // Cancel, then wait for the work to stop (within one chunk) so the
                // exit happens with everything released.
                token.cancel();
                load.await
            }
        }
    });
    if let Some(r) = &reporter {
        r.clear();
    }
    report(&args, &cfg, result)
}

/// Progress on stderr: a bar on a terminal, one plain line per event otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
}

impl Reporter {
    fn new(tty: bool) -> Self {
        let bar = tty.then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Reporter { bar }
    }

    fn event(&self, e: &ProgressEvent) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(e.bytes_total);
                bar.set_position(e.bytes_done);
                bar.set_message(e.stage.as_str());
            }
            None => {
                let pct = (e.bytes_done * 100).checked_div(e.bytes_total).unwrap_or(0);
                let rate = e.bytes_done as f64 / e.elapsed.as_secs_f64().max(1e-9) / 1e9;
                eprintln!(
                    "load: {:<12} {:>6.2}s {:>5.1}% {}/{} bytes {}/{} tensors {rate:.2} GB/s",
                    e.stage.as_str(),
                    e.elapsed.as_secs_f64(),
                    pct as f64,
                    e.bytes_done,
                    e.bytes_total,
                    e.tensors_done,
                    e.tensors_total,
                );
            }
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn outcome_name(p: Option<&Preflight>) -> &'static str {
    match p.map(|p| p.outcome) {
        None => "skipped",
        Some(Outcome::Ok) => "ok",
        Some(Outcome::Tight) => "tight",
        Some(Outcome::Unknown) => "unknown",
    }
}

fn preflight_json(p: Option<&Preflight>) -> serde_json::Value {
    serde_json::json!({
        "outcome": outcome_name(p),
        "estimate_bytes": p.map(|p| p.estimate.total()),
        "allowed_bytes": p.and_then(Preflight::allowed),
        "limit_source": p.and_then(|p| p.binding()).map(|b| b.path.display().to_string()),
        "message": p.map(Preflight::message),
    })
}

fn report(args: &LoadArgs, cfg: &LoadConfig, result: Result<LoadedModel, LoadError>) -> ExitCode {
    let path = args.file.display().to_string();
    let (code, status) = match &result {
        Ok(_) => (exit::OK, "loaded"),
        Err(LoadError::Invalid { .. } | LoadError::NotRegularFile { .. }) => {
            (exit::INVALID, "invalid")
        }
        Err(LoadError::TimedOut { .. }) => (exit::TIMED_OUT, "timed_out"),
        Err(LoadError::WontFit { .. }) => (exit::WONT_FIT, "wont_fit"),
        Err(LoadError::Cancelled { .. }) => (exit::CANCELLED, "cancelled"),
        Err(_) => (exit::IO, "io_error"),
    };
    if args.json {
        let mut obj = serde_json::json!({
            "status": status,
            "path": path,
            "mode": args.mode.as_str(),
            "timeout_s": cfg.model_loading_timeout.value.as_secs_f64(),
            "timeout_source": cfg.model_loading_timeout.origin.to_string(),
        });
        match &result {
            Ok(m) => {
                let s = m.stats();
                obj["elapsed_s"] = s.elapsed.as_secs_f64().into();
                obj["gb_per_s"] = s.gb_per_s().into();
                obj["file_bytes"] = s.file_bytes.into();
                obj["tensor_bytes"] = s.tensor_bytes.into();
                obj["tensors"] = (m.head().tensor_infos().len() as u64).into();
                obj["memcheck"] = preflight_json(s.preflight.as_ref());
            }
            Err(e) => {
                obj["error"] = e.to_string().into();
                obj["stage"] = e.stage().map(Stage::as_str).into();
                if let LoadError::TimedOut {
                    bytes_done,
                    bytes_total,
                    elapsed,
                    ..
                }
                | LoadError::Cancelled {
                    bytes_done,
                    bytes_total,
                    elapsed,
                    ..
                } = e
                {
                    obj["bytes_done"] = (*bytes_done).into();
                    obj["bytes_total"] = (*bytes_total).into();
                    obj["elapsed_s"] = elapsed.as_secs_f64().into();
                }
                if let LoadError::WontFit { preflight } = e {
                    obj["memcheck"] = preflight_json(Some(preflight));
                }
            }
        }
        println!("{obj}");
    } else {
        match &result {
            Ok(m) => print_summary(&args.file, m),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    exit::code(code)
}

fn print_summary(path: &Path, m: &LoadedModel) {
    let s = m.stats();
    println!(
        "loaded {} in {:.3}s: {:.2} GB/s, {} mode, {} tensors, {} file bytes",
        path.display(),
        s.elapsed.as_secs_f64(),
        s.gb_per_s(),
        m.mode(),
        m.head().tensor_infos().len(),
        s.file_bytes,
    );
    match &s.preflight {
        Some(p) => println!("{}", p.message()),
        None => println!("memory check skipped (--no-memcheck)"),
    }
}
