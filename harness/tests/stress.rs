//! Stress runs: stuck-task reports, seeded jitter, concurrency measurement, replay.

use std::{
    process::Command,
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use gauntlet_harness::stress::{SEED_ENV, Stress, StressError};

const WATCHDOG: Duration = Duration::from_millis(300);

#[test]
fn stuck_thread_is_named_with_its_breadcrumb_within_the_watchdog() {
    let (release, wait) = mpsc::channel::<()>();
    let wait = Arc::new(Mutex::new(wait));
    let started = Instant::now();
    let result = Stress::new(4, 40)
        .seed(5)
        .watchdog(WATCHDOG)
        .try_run(move |ctx| {
            ctx.breadcrumb(format!("iteration {} working", ctx.iteration()));
            if ctx.task() == 2 && ctx.iteration() == 6 {
                ctx.breadcrumb("waiting for a release that never comes");
                // Blocks until the test drops `release` after checking the report.
                let _ = wait.lock().unwrap().recv();
            }
        });
    let elapsed = started.elapsed();
    let Err(StressError::Stuck { stuck, seed, .. }) = &result else {
        panic!("expected a stuck report, got {result:?}");
    };
    assert_eq!(*seed, 5);
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!((stuck[0].task, stuck[0].iteration), (2, 6));
    assert_eq!(
        stuck[0].last_breadcrumb.as_deref(),
        Some("waiting for a release that never comes")
    );
    // Detected within the watchdog period plus its polling slack, not after a test timeout.
    assert!(elapsed < WATCHDOG * 3, "took {elapsed:?}");
    let msg = result.unwrap_err().to_string();
    assert!(msg.contains("GAUNTLET_STRESS_SEED=5"), "{msg}");
    drop(release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_tokio_task_is_named_and_aborted() {
    let (_keep, never) = tokio::sync::watch::channel(());
    let result = Stress::new(3, 30)
        .seed(9)
        .watchdog(WATCHDOG)
        .try_run_async(move |ctx| {
            let mut never = never.clone();
            async move {
                if ctx.task() == 1 && ctx.iteration() == 4 {
                    ctx.breadcrumb("awaiting a change that never comes");
                    let _ = never.changed().await;
                }
            }
        })
        .await;
    let Err(StressError::Stuck { stuck, .. }) = &result else {
        panic!("expected a stuck report, got {result:?}");
    };
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0].task, 1);
    assert_eq!(
        stuck[0].last_breadcrumb.as_deref(),
        Some("awaiting a change that never comes")
    );
}

fn jitter_trace(seed: u64) -> Vec<(usize, u64, Duration)> {
    let trace = Arc::new(Mutex::new(Vec::new()));
    let t = trace.clone();
    Stress::new(4, 40)
        .seed(seed)
        .jitter(Duration::from_micros(200))
        .watchdog(Duration::from_secs(10))
        .run(move |ctx| {
            t.lock()
                .unwrap()
                .push((ctx.task(), ctx.iteration(), ctx.applied_jitter()));
        });
    let mut v = trace.lock().unwrap().clone();
    v.sort();
    v
}

#[test]
fn same_seed_gives_the_same_jitter_sequence() {
    if std::env::var(SEED_ENV).is_ok() {
        // The variable overrides every seed, which is what this test compares.
        println!("SKIP {SEED_ENV} is set");
        return;
    }
    let a = jitter_trace(99);
    let b = jitter_trace(99);
    assert_eq!(a.len(), 40);
    assert_eq!(a, b, "same seed, same (task, iteration, jitter) triples");
    assert!(a.iter().any(|(_, _, j)| !j.is_zero()), "jitter was applied");
    let c = jitter_trace(100);
    assert_ne!(a, c, "another seed gives another sequence");
    let plan = Stress::new(4, 40).jitter(Duration::from_micros(200));
    for (task, it, j) in &a {
        assert_eq!(plan.planned_jitter(99, *task, *it), *j);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrency_equals_the_semaphore_limit() {
    let permits = Arc::new(tokio::sync::Semaphore::new(3));
    let report = Stress::new(12, 240)
        .seed(3)
        .watchdog(Duration::from_secs(10))
        .run_async(move |ctx| {
            let permits = permits.clone();
            async move {
                let _permit = permits.acquire().await.expect("semaphore open");
                let _inside = ctx.concurrent();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    assert_eq!(report.max_concurrency, 3, "{report:?}");
    assert_eq!(report.iterations, 240);
}

#[test]
fn report_counts_every_call_and_orders_percentiles() {
    let report = Stress::new(3, 90)
        .seed(1)
        .watchdog(Duration::from_secs(10))
        .run(|ctx| ctx.breadcrumb("tick"));
    assert_eq!(report.iterations, 90);
    assert_eq!(report.concurrency, 3);
    assert!(
        report.max_concurrency >= 1 && report.max_concurrency <= 3,
        "{report:?}"
    );
    assert!(report.latency_p50 <= report.latency_p99 && report.latency_p99 <= report.latency_max);
    assert!(report.throughput_per_s > 0.0);
}

#[test]
fn panicking_body_is_reported_with_task_iteration_and_breadcrumb() {
    let result = Stress::new(2, 20)
        .seed(11)
        .watchdog(Duration::from_secs(10))
        .try_run(|ctx| {
            ctx.breadcrumb("about to check the invariant");
            assert!(ctx.iteration() != 13, "invariant broken");
        });
    match result {
        Err(StressError::Panicked {
            task,
            iteration,
            message,
            last_breadcrumb,
            seed,
        }) => {
            assert_eq!((task, iteration, seed), (1, 13, 11));
            assert!(message.contains("invariant broken"), "{message}");
            assert_eq!(
                last_breadcrumb.as_deref(),
                Some("about to check the invariant")
            );
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
}

/// Set on the re-run of `seed_variable_replays_a_run`.
const REPLAY_CHILD: &str = "GAUNTLET_STRESS_REPLAY_CHILD";

#[test]
fn seed_variable_replays_a_run() {
    if std::env::var(REPLAY_CHILD).is_ok() {
        let report = Stress::new(2, 4).seed(1).run(|_| {});
        println!("replayed-seed={}", report.seed);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["seed_variable_replays_a_run", "--exact", "--nocapture"])
        .env(REPLAY_CHILD, "1")
        .env(SEED_ENV, "4242")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("replayed-seed=4242"), "{stdout}");
    let bad = Command::new(std::env::current_exe().unwrap())
        .args(["seed_variable_replays_a_run", "--exact", "--nocapture"])
        .env(REPLAY_CHILD, "1")
        .env(SEED_ENV, "not-a-number")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an unsigned 64-bit integer"));
}
