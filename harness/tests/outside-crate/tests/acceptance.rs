//! Tests a project outside Gauntlet would write. The `hangs_*` tests never finish on their
//! own: the harness's watchdog must fail each within its budget, with the diagnostic.

use std::time::Duration;

use gauntlet_harness::timeout;

#[test]
#[timeout("200ms")]
fn hangs_spinning() {
    gauntlet_harness::stage("spinning");
    loop {
        std::hint::spin_loop();
    }
}

#[tokio::test]
#[timeout("200ms")]
async fn hangs_blocking_the_runtime_thread() {
    gauntlet_harness::stage("blocking the runtime thread");
    // Blocks without ever yielding to the runtime, as a synchronous call in async code would.
    loop {
        std::thread::park();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[timeout("200ms")]
async fn hangs_awaiting_never_ready() {
    gauntlet_harness::stage("awaiting a future that is never ready");
    std::future::pending::<()>().await;
}

#[test]
#[timeout("200ms")]
fn passes() {
    assert!(gauntlet_harness::deadline() < Duration::from_secs(3600));
}

#[tokio::test]
#[timeout("200ms")]
async fn passes_async() {
    tokio::task::yield_now().await;
}

#[test]
#[should_panic(expected = "expected failure")]
#[timeout("200ms")]
fn panics_as_expected() {
    panic!("expected failure");
}

#[test]
#[timeout]
fn default_class_comes_from_this_crates_gauntlet_toml() {
    let ctx = gauntlet_harness::TestContext::current().expect("in a #[timeout] test");
    assert_eq!(ctx.budget().base, Duration::from_secs(20));
}
