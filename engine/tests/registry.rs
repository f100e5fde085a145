//! Registry suites; each names the failure story it proves absent.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use gauntlet_engine::registry::{
    AcquireOptions, Maintenance, ModelRegistry, Priority, RegistryError, SlotConfig,
};
use gauntlet_harness::stress::Stress;

fn opts(timeout_ms: u64) -> AcquireOptions {
    AcquireOptions {
        priority: Priority::Normal,
        timeout: Some(Duration::from_millis(timeout_ms)),
    }
}

/// Waits (bounded) until `cond` holds; the event, not a guessed sleep.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Story: two concurrent first callers each load the weights (2× peak, OOM kill).
#[test]
fn sixty_four_concurrent_first_callers_cause_exactly_one_load() {
    for round in 0..10u64 {
        let loads = Arc::new(AtomicUsize::new(0));
        let registry = Arc::new(ModelRegistry::<Vec<u8>>::new());
        let l = loads.clone();
        let slot = registry
            .register(
                "m",
                move |_| {
                    l.fetch_add(1, Ordering::SeqCst);
                    Ok(vec![7u8; 1 << 20])
                },
                SlotConfig::default(),
            )
            .unwrap();
        let s = slot.clone();
        Stress::new(64, 64)
            .seed(round)
            .jitter(Duration::from_micros(200))
            .watchdog(Duration::from_secs(10))
            .run(move |ctx| {
                ctx.breadcrumb("acquiring");
                let lease = s.acquire(opts(10_000)).expect("acquire");
                assert_eq!(lease[0], 7);
            });
        assert_eq!(loads.load(Ordering::SeqCst), 1, "round {round}");
        assert_eq!(slot.stats().loads_started, 1, "round {round}");
    }
}

#[test]
fn failed_load_leaves_the_cell_empty_and_the_next_caller_retries() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let registry = ModelRegistry::<u32>::new();
    registry
        .register(
            "m",
            move |_| match a.fetch_add(1, Ordering::SeqCst) {
                0 => Err("disk on fire".into()),
                _ => Ok(5),
            },
            SlotConfig::default(),
        )
        .unwrap();
    let err = registry.acquire("m", opts(5_000)).err().unwrap();
    assert!(
        matches!(&err, RegistryError::LoadFailed { reason, .. } if reason == "disk on fire"),
        "{err}"
    );
    assert_eq!(*registry.acquire("m", opts(5_000)).unwrap(), 5);
    let s = registry.slot("m").unwrap().stats();
    assert_eq!((s.loads_started, s.loads_failed), (2, 1));
    assert!(
        s.last_access.is_some_and(|a| a < Duration::from_secs(5)),
        "{s:?}"
    );
    assert!(!s.is_loading && s.active == 0 && s.queued == 0, "{s:?}");
}

#[test]
fn panicking_loader_poisons_nothing_and_the_next_caller_retries() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let registry = ModelRegistry::<u32>::new();
    registry
        .register(
            "m",
            move |_| {
                if a.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("loader bug");
                }
                Ok(9)
            },
            SlotConfig::default(),
        )
        .unwrap();
    let err = registry.acquire("m", opts(5_000)).err().unwrap();
    assert!(
        err.to_string().contains("loader panicked: loader bug"),
        "{err}"
    );
    assert_eq!(*registry.acquire("m", opts(5_000)).unwrap(), 9);
}

/// Story: more users than the model can serve at once.
#[test]
fn access_limit_is_never_exceeded_under_stress() {
    let registry = ModelRegistry::<u32>::new();
    let slot = registry
        .register(
            "m",
            |_| Ok(1),
            SlotConfig {
                max_users: 3,
                ..SlotConfig::default()
            },
        )
        .unwrap();
    let s = slot.clone();
    let report = Stress::new(12, 600)
        .seed(17)
        .jitter(Duration::from_micros(100))
        .watchdog(Duration::from_secs(10))
        .run(move |ctx| {
            let _lease = s.acquire(opts(10_000)).expect("acquire");
            let _inside = ctx.concurrent();
            ctx.jitter();
        });
    assert!(report.max_concurrency <= 3, "{report:?}");
    assert_eq!(
        report.max_concurrency, 3,
        "contention reached the limit: {report:?}"
    );
    let st = slot.stats();
    assert_eq!((st.active, st.queued), (0, 0));
}

#[test]
fn waiter_deadline_expires_with_a_typed_error_while_the_load_goes_on() {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let registry = ModelRegistry::<u32>::new();
    let slot = registry
        .register(
            "m",
            move |_| {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
                Ok(3)
            },
            SlotConfig::default(),
        )
        .unwrap();
    let err = slot.acquire(opts(50)).err().unwrap();
    assert!(matches!(err, RegistryError::LoadTimedOut { .. }), "{err}");
    assert!(slot.stats().is_loading, "the shared load was not cancelled");
    release.send(()).unwrap();
    assert_eq!(*slot.acquire(opts(5_000)).unwrap(), 3);
    assert_eq!(
        slot.stats().loads_started,
        1,
        "the same load served the next caller"
    );
}

#[test]
fn cancel_loading_stops_the_attempt_and_the_next_caller_starts_over() {
    let registry = ModelRegistry::<u32>::new();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let slot = registry
        .register(
            "m",
            move |ctx| {
                if a.fetch_add(1, Ordering::SeqCst) > 0 {
                    return Ok(2);
                }
                let end = Instant::now() + Duration::from_secs(10);
                while !ctx.is_cancelled() && Instant::now() < end {
                    std::thread::yield_now();
                }
                Err("stopped".into())
            },
            SlotConfig::default(),
        )
        .unwrap();
    let s = slot.clone();
    let waiter = std::thread::spawn(move || s.acquire(opts(10_000)).err());
    wait_until("the load to start", || slot.stats().is_loading);
    assert!(slot.cancel_loading());
    let err = waiter.join().unwrap().expect("cancelled");
    assert!(matches!(err, RegistryError::LoadCancelled { .. }), "{err}");
    assert_eq!(*slot.acquire(opts(5_000)).unwrap(), 2);
}

/// Story: a manager that creates a second instance doubles memory; a swap must fit both.
#[test]
fn hot_swap_under_continuous_use_shows_no_error_and_frees_the_old_model() {
    let registry = ModelRegistry::<Vec<u8>>::new();
    let slot = registry
        .register("m", |_| Ok(vec![1u8; 1 << 16]), SlotConfig::default())
        .unwrap();
    let old = Arc::downgrade(slot.acquire(opts(5_000)).unwrap().model());
    let seen = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let (s, v) = (slot.clone(), seen.clone());
    let users = std::thread::spawn(move || {
        Stress::new(4, 400_000)
            .seed(23)
            .watchdog(Duration::from_secs(10))
            .run(move |_| {
                // Enough use after the switch has been seen: the rest of the run is idle.
                if v[1].load(Ordering::Relaxed) >= 500 {
                    return;
                }
                let lease = s.acquire(opts(5_000)).expect("no caller sees an error");
                match lease[0] {
                    1 => v[0].fetch_add(1, Ordering::Relaxed),
                    2 => v[1].fetch_add(1, Ordering::Relaxed),
                    other => panic!("torn model {other}"),
                };
            })
    });
    wait_until("users on the old model", || {
        seen[0].load(Ordering::Relaxed) > 200
    });
    slot.swap(|_| Ok(vec![2u8; 1 << 16]), 1 << 16, Duration::from_secs(5))
        .unwrap();
    users.join().unwrap();
    assert!(
        seen[1].load(Ordering::Relaxed) >= 500,
        "users moved to the new model"
    );
    assert_eq!(slot.acquire(opts(5_000)).unwrap()[0], 2);
    assert!(
        old.upgrade().is_none(),
        "old model freed after its last lease"
    );
    assert_eq!(slot.stats().loads_started, 1, "a swap is not a reload");
}

/// Story: two first callers load twice and the peak doubles; run under a memory limit of 1.5×
/// the model so a second copy would be OOM-killed, not merely counted.
#[test]
fn single_flight_fits_in_a_sandbox_of_one_and_a_half_models() {
    const MODEL: usize = 128 << 20;
    gauntlet_harness::sandboxed!(
        gauntlet_harness::sandbox::Sandbox::builder()
            .memory_max((MODEL as u64) * 3 / 2)
            .swap_max(0)
            .timeout(Duration::from_secs(60))
            .allow_fallback(false),
        |o| assert!(
            o.success(),
            "{}\n{}",
            o.summary(),
            String::from_utf8_lossy(&o.stderr)
        )
    );
    let loads = Arc::new(AtomicUsize::new(0));
    let registry = ModelRegistry::<Vec<u8>>::new();
    let l = loads.clone();
    let slot = registry
        .register(
            "big",
            move |_| {
                l.fetch_add(1, Ordering::SeqCst);
                Ok(vec![3u8; MODEL]) // every page written: resident, not just reserved
            },
            SlotConfig::default(),
        )
        .unwrap();
    let s = slot.clone();
    Stress::new(64, 64)
        .seed(31)
        .jitter(Duration::from_micros(500))
        .watchdog(Duration::from_secs(30))
        .run(move |_| {
            let lease = s.acquire(opts(30_000)).expect("acquire");
            assert_eq!(lease[MODEL - 1], 3);
        });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn swap_is_refused_when_old_and_new_together_exceed_the_budget() {
    let registry = ModelRegistry::<Vec<u8>>::with_memory(
        Arc::new(|m: &Vec<u8>| m.len() as u64),
        Arc::new(|| Some(100)),
    );
    let slot = registry
        .register("m", |_| Ok(vec![1u8; 60]), SlotConfig::default())
        .unwrap();
    drop(slot.acquire(opts(5_000)).unwrap());
    let err = slot
        .swap(|_| Ok(vec![2u8; 50]), 50, Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(
        err,
        RegistryError::SwapRefused {
            id: "m".into(),
            old_bytes: 60,
            new_bytes: 50,
            budget: 100
        }
    );
    assert_eq!(
        slot.acquire(opts(5_000)).unwrap()[0],
        1,
        "old model still serves"
    );
    let ok = slot
        .swap(|_| Ok(vec![2u8; 40]), 40, Duration::from_secs(5))
        .unwrap();
    assert_eq!((ok.old_bytes, ok.new_bytes), (60, 40));
}

#[test]
fn maintenance_refuses_new_acquisitions_while_in_flight_users_finish() {
    let registry = ModelRegistry::<u32>::new();
    let slot = registry
        .register("m", |_| Ok(4), SlotConfig::default())
        .unwrap();
    let held = slot.acquire(opts(5_000)).unwrap();
    slot.set_maintenance(Some(Maintenance {
        reason: "re-quantizing".into(),
        eta: Some(Duration::from_secs(60)),
    }));
    match slot.acquire(opts(5_000)) {
        Err(RegistryError::Unavailable { reason, eta, .. }) => {
            assert_eq!(reason, "re-quantizing");
            assert!(eta.is_some_and(|e| e <= Duration::from_secs(60)));
        }
        other => panic!("expected Unavailable, got {:?}", other.err()),
    }
    assert_eq!(*held, 4, "the in-flight user keeps its model");
    drop(held);
    slot.set_maintenance(None);
    assert_eq!(*slot.acquire(opts(5_000)).unwrap(), 4);
}

fn queue_order(
    aging: Duration,
    first: Priority,
    pause: Duration,
    rest: &[Priority],
) -> Vec<Priority> {
    let registry = ModelRegistry::<u32>::new();
    let slot = registry
        .register(
            "m",
            |_| Ok(0),
            SlotConfig {
                max_users: 1,
                aging,
                ..SlotConfig::default()
            },
        )
        .unwrap();
    let holder = slot.acquire(opts(5_000)).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for (i, p) in std::iter::once(first)
        .chain(rest.iter().copied())
        .enumerate()
    {
        let (s, o) = (slot.clone(), order.clone());
        threads.push(std::thread::spawn(move || {
            let _l = s
                .acquire(AcquireOptions {
                    priority: p,
                    timeout: Some(Duration::from_secs(10)),
                })
                .unwrap();
            o.lock().unwrap().push(p);
        }));
        wait_until("the request to queue", || slot.stats().queued == i + 1);
        if i == 0 && !pause.is_zero() {
            // Aging is a function of time waited; this lets the first request age.
            std::thread::sleep(pause);
        }
    }
    drop(holder);
    for t in threads {
        t.join().unwrap();
    }
    order.lock().unwrap().clone()
}

#[test]
fn waiters_are_served_by_priority_then_fifo() {
    use Priority::*;
    let order = queue_order(
        Duration::ZERO,
        Test,
        Duration::ZERO,
        &[Normal, High, Normal],
    );
    assert_eq!(order, [High, Normal, Normal, Test]);
}

#[test]
fn aging_lets_a_long_waiting_low_priority_request_overtake() {
    use Priority::*;
    // Test (−1) waits three aging periods: effective +2 > High (+1).
    let order = queue_order(
        Duration::from_millis(40),
        Test,
        Duration::from_millis(130),
        &[High, Normal],
    );
    assert_eq!(order[0], Test, "{order:?}");
}

#[test]
fn unknown_and_duplicate_ids_are_typed_errors() {
    let registry = ModelRegistry::<u32>::new();
    registry
        .register("a", |_| Ok(1), SlotConfig::default())
        .unwrap();
    assert!(matches!(
        registry.register("a", |_| Ok(1), SlotConfig::default()),
        Err(RegistryError::Duplicate { .. })
    ));
    assert!(matches!(
        registry.acquire("b", AcquireOptions::default()),
        Err(RegistryError::UnknownModel { .. })
    ));
}
