//! `gauntlet serve` on loopback: one `POST /v1/infer` round trip (new connection, one
//! forward pass) against the floor measured in the same run — the same forward pass called
//! in-process. After criterion's figures, a bounded load loop (fixed count, 4 clients)
//! prints requests per second and p50/p99 latency.
//!
//! `cargo bench -p gauntlet --bench serve`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_engine::fixture::{FixtureSpec, Preset, WeightFormat};
use gauntlet_engine::forward::{Control, ForwardPlan, seed_input};
use gauntlet_engine::load::{CancellationToken, LoadOptions, Loader};
use gauntlet_kernels::CpuKernels;

const IO_DEADLINE: Duration = Duration::from_secs(10);
/// How long the server may take to print its address (it loads the model first).
const START_DEADLINE: Duration = Duration::from_secs(60);
const BODY: &str = r#"{"seed": 3, "steps": 1}"#;
/// Requests in the latency loop, per preset (bounded count; 4 clients share them).
const LOAD_REQUESTS: usize = 2000;

/// A server child that is killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(model: &std::path::Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
            .arg("serve")
            .arg(model)
            .args(["--addr", "127.0.0.1:0", "--max-concurrent", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gauntlet serve");
        let stdout = child.stdout.take().expect("piped stdout");
        // Read on a thread so the wait has a deadline: a server that neither listens
        // nor exits must fail the bench, not hang it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(START_DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gauntlet serve printed no address within {START_DEADLINE:?}");
            }
        };
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"));
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a fresh connection; panics unless the answer is 200.
fn infer(addr: SocketAddr) {
    let mut s = TcpStream::connect_timeout(&addr, IO_DEADLINE).expect("connect");
    s.set_read_timeout(Some(IO_DEADLINE)).expect("read timeout");
    s.set_write_timeout(Some(IO_DEADLINE))
        .expect("write timeout");
    write!(
        s,
        "POST /v1/infer HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("HTTP/1.1 200"), "infer failed: {reply}");
}

fn latency_loop(addr: SocketAddr, label: &str, floor: Duration) {
    let started = Instant::now();
    let mut all: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(move || {
                    (0..LOAD_REQUESTS / 4)
                        .map(|_| {
                            let t = Instant::now();
                            infer(addr);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("client thread"))
            .collect()
    });
    let wall = started.elapsed();
    all.sort_unstable();
    let pick = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    println!(
        "serve/{label}: {} requests, 4 clients: {:.0} req/s, p50 {:?}, p99 {:?} \
         (p50 = {:.1}x the in-process forward pass, {floor:?})",
        all.len(),
        all.len() as f64 / wall.as_secs_f64(),
        pick(0.50),
        pick(0.99),
        pick(0.50).as_secs_f64() / floor.as_secs_f64()
    );
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (label, preset) in [("tiny", Preset::Tiny), ("small", Preset::Small)] {
        let path = dir.path().join(format!("{label}.gguf"));
        FixtureSpec {
            preset,
            format: WeightFormat::Tq2_0,
            seed: 3,
        }
        .write_file(&path)
        .expect("write fixture");

        let mut group = c.benchmark_group(format!("serve/{label}"));
        group.measurement_time(Duration::from_secs(3));

        // The floor: the forward pass a request runs, called in-process.
        let model = Loader::new(LoadOptions::default())
            .load_path(&path)
            .expect("load fixture");
        let plan = ForwardPlan::new(&model).expect("forward plan");
        let kernels = CpuKernels::from_env(1).expect("kernels");
        let input = seed_input(3, plan.hidden());
        let control = Control::new(CancellationToken::new(), None);
        group.bench_function("forward_pass_in_process", |b| {
            b.iter(|| plan.run(&kernels, &input, 1, &control).expect("pass"))
        });

        // The floor's median over a fixed count, for the load loop's ratio.
        let mut passes: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                plan.run(&kernels, &input, 1, &control).expect("pass");
                t.elapsed()
            })
            .collect();
        passes.sort_unstable();
        let floor = passes[passes.len() / 2];

        let server = Server::start(&path);
        infer(server.addr); // warm: the first request after start is not representative
        group.bench_function("http_infer_round_trip", |b| b.iter(|| infer(server.addr)));
        group.finish();
        latency_loop(server.addr, label, floor);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
