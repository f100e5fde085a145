//! Sandbox start + teardown around `true`, against a plain spawn of `true` in the same run.
//!
//! Goal: under 20 ms extra per run (median). Where no cgroup can be made the sandboxed case is
//! skipped with one `SKIP` line and only the baseline runs.

use std::process::{Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_harness::sandbox::{Output, Sandbox};

fn spawn_true(c: &mut Criterion) {
    let mut group = c.benchmark_group("sandbox_true");
    group.sample_size(50);
    group.bench_function("plain_spawn", |b| {
        b.iter(|| {
            let st = Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("spawn true");
            assert!(st.success());
        })
    });
    match Sandbox::builder()
        .memory_max(256 << 20)
        .cpus(1.0)
        .pids_max(64)
        .allow_fallback(false)
        .output(Output::Capture { limit: 4096 })
        .build()
    {
        Ok(sb) => {
            let name = format!("sandboxed_{}", sb.mechanism());
            group.bench_function(name, |b| {
                b.iter(|| {
                    let o = sb.run(Command::new("true")).expect("sandboxed true");
                    assert_eq!(o.exit_code, Some(0), "{}", o.summary());
                })
            });
        }
        Err(e) => println!("SKIP sandboxed case: {e}"),
    }
    group.finish();
}

criterion_group!(benches, spawn_true);
criterion_main!(benches);
