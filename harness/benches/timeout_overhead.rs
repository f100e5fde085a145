//! Overhead of `#[gauntlet_harness::timeout]` on an empty passing test, sync and async,
//! against a plain test and against ntest's and rstest's timeout wrappers in the same run.
//! The goal is under 100 µs per test; the ratio to ntest/rstest shows what the extra work
//! (budget derivation, context, breadcrumbs) costs over a bare thread + channel.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn plain_sync() -> u32 {
    black_box(1)
}

#[gauntlet_harness::timeout("30s")]
fn gauntlet_sync() -> u32 {
    black_box(1)
}

#[ntest::timeout(30000)]
fn ntest_sync() -> u32 {
    black_box(1)
}

fn rstest_sync() -> u32 {
    rstest::timeout::execute_with_timeout_sync(|| black_box(1), Duration::from_secs(30))
}

/// What `#[tokio::test]` expands to: a current-thread runtime per test.
#[tokio::main(flavor = "current_thread")]
async fn plain_async() -> u32 {
    tokio::task::yield_now().await;
    black_box(1)
}

#[tokio::main(flavor = "current_thread")]
#[gauntlet_harness::timeout("30s")]
async fn gauntlet_async() -> u32 {
    tokio::task::yield_now().await;
    black_box(1)
}

#[tokio::main(flavor = "current_thread")]
async fn rstest_async() -> u32 {
    let body = || async {
        tokio::task::yield_now().await;
        black_box(1)
    };
    rstest::timeout::execute_with_timeout_async(body, Duration::from_secs(30)).await
}

fn overhead(c: &mut Criterion) {
    let mut sync = c.benchmark_group("empty_test_sync");
    sync.bench_function("plain", |b| b.iter(plain_sync));
    sync.bench_function("gauntlet_timeout", |b| b.iter(gauntlet_sync));
    sync.bench_function("ntest_timeout", |b| b.iter(ntest_sync));
    sync.bench_function("rstest_timeout", |b| b.iter(rstest_sync));
    sync.finish();
    let mut asynchronous = c.benchmark_group("empty_test_async");
    asynchronous.bench_function("plain_tokio_test", |b| b.iter(plain_async));
    asynchronous.bench_function("gauntlet_timeout", |b| b.iter(gauntlet_async));
    asynchronous.bench_function("rstest_timeout", |b| b.iter(rstest_async));
    asynchronous.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = overhead
}
criterion_main!(benches);
