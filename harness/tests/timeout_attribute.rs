//! `#[timeout]` in every supported position: passing bodies pass, panics keep their payload
//! (so `#[should_panic(expected)]` works), and a body that blocks fails on time with the
//! diagnostic. Blocking bodies wait on a channel the test closes afterwards, so no abandoned
//! thread outlives its test.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use gauntlet_harness::timeout;
use rstest::rstest;

#[test]
#[timeout]
fn default_class_passes() {
    assert!(gauntlet_harness::deadline() > Duration::from_secs(1));
}

#[test]
#[timeout("45s")]
fn literal_passes_and_returns() -> Result<(), String> {
    gauntlet_harness::stage("inside");
    Ok(())
}

#[test]
#[timeout(class = "model_loading")]
fn class_budget_is_at_least_the_base() {
    let ctx = gauntlet_harness::TestContext::current().expect("inside a #[timeout] test");
    assert_eq!(
        ctx.budget().class,
        Some(gauntlet_harness::budget::Class::ModelLoading)
    );
    assert!(ctx.budget().total >= ctx.budget().base || ctx.budget().product() < 1.0);
}

#[test]
#[should_panic(expected = "original message 42")]
#[timeout("30s")]
fn should_panic_keeps_the_payload() {
    panic!("original message {}", 42);
}

#[tokio::test]
#[timeout("30s")]
async fn tokio_current_thread_below() {
    tokio::task::yield_now().await;
    gauntlet_harness::stage("after yield");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[timeout("30s")]
async fn tokio_multi_thread_below() {
    let handle = tokio::spawn(async { 7 });
    assert_eq!(handle.await.expect("task"), 7);
}

#[timeout("30s")]
#[tokio::test]
async fn tokio_attribute_below_timeout_is_reordered() {
    tokio::task::yield_now().await;
}

#[tokio::test(start_paused = true)]
#[timeout("30s")]
async fn tokio_paused_clock_is_virtual() {
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(wall.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
#[should_panic(expected = "async panic")]
#[timeout("30s")]
async fn tokio_should_panic() {
    panic!("async panic");
}

#[rstest]
#[case::one(1, "one")]
#[case::two(2, "two")]
#[gauntlet_harness::timeout("30s")]
fn rstest_cases_run_under_the_watchdog(#[case] n: u32, #[case] word: &str) {
    assert!(gauntlet_harness::TestContext::current().is_some());
    assert_eq!(word.len(), 3);
    assert!(n <= 2);
}

#[timeout("150ms")]
fn blocks_until(rx: mpsc::Receiver<()>) {
    gauntlet_harness::stage("waiting on the channel");
    gauntlet_harness::progress("0 of 1 messages");
    let _ = rx.recv();
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn blocked_body_fails_on_time_with_diagnostic() {
    let (tx, rx) = mpsc::channel::<()>();
    let start = Instant::now();
    let result = std::panic::catch_unwind(move || blocks_until(rx));
    let elapsed = start.elapsed();
    drop(tx);
    let text = panic_text(result.expect_err("the watchdog must fail the test"));
    let budget_ms = gauntlet_harness::TestContext::current().map_or(0, |_| 0);
    assert_eq!(budget_ms, 0, "no context outside a #[timeout] test");
    assert!(text.contains("ran out of its time budget"), "{text}");
    assert!(text.contains("waiting on the channel"), "{text}");
    assert!(text.contains("0 of 1 messages"), "{text}");
    assert!(text.contains("150ms"), "{text}");
    assert!(
        elapsed >= Duration::from_millis(150),
        "fired early: {elapsed:?}"
    );
    // Scaled budgets on slow machines stay well below this bound (150ms × factors).
    assert!(elapsed < Duration::from_secs(30), "fired late: {elapsed:?}");
}

#[tokio::main(flavor = "current_thread")]
#[timeout("150ms")]
async fn async_body_blocking_its_runtime(rx: mpsc::Receiver<()>) {
    let _ = rx.recv();
}

#[test]
fn async_body_blocking_its_runtime_thread_fails_on_time() {
    let (tx, rx) = mpsc::channel::<()>();
    let start = Instant::now();
    let result = std::panic::catch_unwind(move || async_body_blocking_its_runtime(rx));
    drop(tx);
    let text = panic_text(result.expect_err("the watchdog must fail the test"));
    assert!(text.contains("ran out of its time budget"), "{text}");
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[test]
#[timeout("30s")]
fn deadline_leaves_a_margin_before_the_watchdog() {
    let ctx = gauntlet_harness::TestContext::current().expect("inside a #[timeout] test");
    let total = ctx.budget().total;
    let deadline = gauntlet_harness::deadline();
    assert!(deadline + gauntlet_harness::margin(total) <= total);
    assert!(deadline > total / 2, "{deadline:?} of {total:?}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
#[timeout("150ms")]
async fn stage_from_worker_then_block(rx: mpsc::Receiver<()>) {
    let ctx = gauntlet_harness::TestContext::current().expect("inside a #[timeout] body");
    tokio::spawn(async move {
        let _entered = ctx.enter();
        gauntlet_harness::stage("recorded on a tokio worker");
    })
    .await
    .expect("task");
    let _ = rx.recv();
}

#[test]
fn stages_from_other_threads_reach_the_diagnostic_through_enter() {
    let (tx, rx) = mpsc::channel::<()>();
    let result = std::panic::catch_unwind(move || stage_from_worker_then_block(rx));
    drop(tx);
    let text = panic_text(result.expect_err("the watchdog must fail the test"));
    assert!(text.contains("recorded on a tokio worker"), "{text}");
}
