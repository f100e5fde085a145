//! `gauntlet serve MODEL.gguf`: an HTTP model host that stays reliable under load.
//!
//! Start-up order matters: the memory pre-flight, then (unless `--lazy-weights`) the load,
//! then the listener — so a model that cannot fit or cannot load is a clean start-up error
//! (exit 4 or 2), never an OOM kill on the first request. The bound address is printed on
//! stdout as `listening on http://ADDR` (use `--addr 127.0.0.1:0` for an ephemeral port).
//!
//! Exit codes: 0 after a SIGTERM/SIGINT shutdown, 2 invalid model or arguments, 4 will not
//! fit in memory, 1 anything else (address in use, runtime failure).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use gauntlet_engine::gguf::MappedGguf;
use gauntlet_engine::load::{CancellationToken, LoadMode};
use gauntlet_engine::preflight::{Outcome, ResidentEstimate, SystemRoot, check};
use gauntlet_kernels::KernelPath;

use crate::exit;
use crate::serve::host::Host;
use crate::serve::{Admission, AppState, router};

/// Arguments of `gauntlet serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The GGUF model file.
    pub model: PathBuf,
    /// Address to listen on (port 0: any free port, printed at start-up).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Load on the first request (single flight) instead of before listening.
    #[arg(long)]
    pub lazy_weights: bool,
    /// Longest one inference may take, queueing and first-use load included.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub infer_timeout: Duration,
    /// Budget for loading the model.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub load_timeout: Duration,
    /// Inferences computing at once (default: CPU count).
    #[arg(long)]
    pub max_concurrent: Option<usize>,
    /// Inferences waiting beyond those; more get 429.
    #[arg(long, default_value_t = 64)]
    pub queue_depth: usize,
    /// File holding the admin bearer token; without it the admin routes do not exist.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// Skip the memory pre-flight.
    #[arg(long)]
    pub no_memcheck: bool,
    /// How long in-flight requests may finish after SIGTERM/SIGINT before they are cancelled.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

/// Refuses before anything is allocated when the model will not fit (exit 4) or is not a
/// valid GGUF (exit 2).
fn preflight(path: &Path) -> Result<(), ExitCode> {
    let mapped = MappedGguf::open(path).map_err(|e| {
        eprintln!("gauntlet serve: {}: {e}", path.display());
        exit::code(exit::INVALID)
    })?;
    let g = mapped.gguf();
    let estimate = ResidentEstimate::new(
        LoadMode::Mmap,
        g.tensor_infos().iter().map(|t| t.size_bytes()),
        g.tensor_data_offset(),
    );
    let report = check(&estimate, &SystemRoot::host());
    if report.outcome == Outcome::Tight {
        eprintln!("gauntlet serve: {}", report.message());
        return Err(exit::code(exit::WONT_FIT));
    }
    Ok(())
}

fn read_token(path: &Path) -> Result<String, ExitCode> {
    let token = std::fs::read_to_string(path)
        .map_err(|e| {
            eprintln!("gauntlet serve: admin token file {}: {e}", path.display());
            exit::code(exit::INVALID)
        })?
        .trim()
        .to_string();
    if token.len() < 16 {
        eprintln!(
            "gauntlet serve: admin token in {} is shorter than 16 characters; use a longer random token",
            path.display()
        );
        return Err(exit::code(exit::INVALID));
    }
    Ok(token)
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `gauntlet serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    match serve(args) {
        Ok(()) => exit::code(exit::OK),
        Err(code) => code,
    }
}

fn serve(args: ServeArgs) -> Result<(), ExitCode> {
    let token = args
        .admin_token_file
        .as_deref()
        .map(read_token)
        .transpose()?;
    let kernel_path = KernelPath::from_env().map_err(|e| {
        eprintln!("gauntlet serve: {e}");
        exit::code(exit::INVALID)
    })?;
    if !args.no_memcheck {
        preflight(&args.model)?;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_concurrent = args.max_concurrent.unwrap_or(cpus).max(1);
    let host = Host::new(
        &args.model,
        kernel_path,
        !args.no_memcheck,
        args.load_timeout,
        max_concurrent,
    )
    .map_err(|e| {
        eprintln!("gauntlet serve: {e}");
        exit::code(exit::IO)
    })?;
    if !args.lazy_weights {
        host.load_now().map_err(|e| {
            eprintln!("gauntlet serve: {e}");
            let wont_fit = e.to_string().contains("will not fit");
            exit::code(if wont_fit {
                exit::WONT_FIT
            } else {
                exit::INVALID
            })
        })?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("gauntlet serve: cannot start the runtime: {e}");
            exit::code(exit::IO)
        })?;
    let shutdown = CancellationToken::new();
    let state = Arc::new(AppState {
        host,
        admission: Admission::new(max_concurrent, args.queue_depth),
        infer_timeout: args.infer_timeout,
        admin_token: token,
        shutdown: shutdown.clone(),
        lazy: args.lazy_weights,
    });
    let grace = args.shutdown_grace;
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            stop_signal().await;
            eprintln!("gauntlet serve: stopping; in-flight requests have {grace:?}");
            s2.cancel();
        });
        let server = axum::serve(listener, router(state))
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::select! {
            r = server => r.map_err(|e| format!("server failed: {e}")),
            _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                eprintln!("gauntlet serve: grace period over; cancelling in-flight requests");
                Ok(())
            }
        }
    });
    // Whatever still computes stops at its next block.
    shutdown.cancel();
    rt.shutdown_timeout(Duration::from_secs(1));
    result.map_err(|e| {
        eprintln!("gauntlet serve: {e}");
        exit::code(exit::IO)
    })
}
