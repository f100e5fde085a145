//! `sandboxed!`: a test re-runs itself inside a sandbox and asserts on its own memory behaviour.

use std::time::Duration;

use gauntlet_harness::sandbox::{INSIDE_ENV, Limits, Mechanism, Sandbox, Termination};

const MIB: u64 = 1 << 20;

/// Touches every page so the memory is resident, not just reserved.
fn touch(bytes: usize) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    for page in v.chunks_mut(4096) {
        page[0] = 1;
    }
    v
}

#[test]
fn test_that_outgrows_its_limit_is_oom_killed_with_its_peak() {
    gauntlet_harness::sandboxed!(
        Sandbox::builder()
            .memory_max(64 * MIB)
            .swap_max(0)
            .timeout(Duration::from_secs(20))
            .allow_fallback(false),
        |o| {
            assert_eq!(o.termination, Termination::OomKilled, "{}", o.summary());
            let peak = o.peak_memory_bytes.unwrap_or(0);
            assert!(
                (48 * MIB..=66 * MIB).contains(&peak),
                "peak {peak}: {}",
                o.summary()
            );
        }
    );
    std::hint::black_box(touch(256 << 20));
}

#[test]
fn body_runs_inside_the_sandbox_and_a_pass_is_required() {
    gauntlet_harness::sandboxed!(Limits {
        memory_max: Some(512 * MIB),
        timeout: Some(Duration::from_secs(20)),
        ..Limits::default()
    });
    // Only the sandboxed re-run gets here.
    assert_eq!(
        std::env::var(INSIDE_ENV).as_deref(),
        Ok("body_runs_inside_the_sandbox_and_a_pass_is_required")
    );
    std::hint::black_box(touch(16 << 20));
}

#[test]
fn a_failing_body_is_seen_by_the_outside_check() {
    gauntlet_harness::sandboxed!(Sandbox::builder().timeout(Duration::from_secs(20)), |o| {
        assert_eq!(
            o.termination,
            Termination::Exited { code: 101 },
            "{}",
            o.summary()
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("deliberate failure inside"), "{err}");
    });
    panic!("deliberate failure inside the sandbox");
}

#[test]
fn rust_allocation_failure_under_rlimit_is_labelled_as_such() {
    gauntlet_harness::sandboxed!(
        Sandbox::builder()
            .mechanism(Mechanism::Rlimit)
            .memory_max(1024 * MIB)
            .timeout(Duration::from_secs(20)),
        |o| {
            assert_eq!(
                o.termination,
                Termination::AllocationFailure {
                    marker: "memory allocation of".into()
                },
                "{}",
                o.summary()
            );
            assert_eq!(o.signal, Some(libc::SIGABRT));
            assert!(!o.oom_killed);
        }
    );
    // The address-space limit refuses the reservation itself: no page is ever touched.
    let v: Vec<u8> = Vec::with_capacity(4 << 30);
    std::hint::black_box(v);
}
