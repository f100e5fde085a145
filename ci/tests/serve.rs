//! `gauntlet serve` against the real binary on loopback, on an ephemeral port: health under
//! load, single-flight lazy loading, timeouts, validation, overload, maintenance, admin auth
//! and shutdown. Every request has a timeout and every test a bounded request count.

mod serve_support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use gauntlet_engine::fixture::{Preset, WeightFormat};
use gauntlet_suites::fixtures;
use serve_support::{SEED, Server, infer, infer_in_background, p99, request, swap};

#[test]
fn healthz_stays_fast_while_inferences_run() {
    let server = Server::start(Preset::Tiny, &["--max-concurrent", "2"]);
    assert_eq!(server.get("/readyz").code, 200);
    assert_eq!(
        server.get("/admin/stats").code,
        404,
        "no token file: admin routes must not exist"
    );
    let long = infer_in_background(
        server.addr,
        br#"{"seed": 1, "steps": 10000000, "timeout_ms": 3000}"#,
    );
    server.wait_status("an active inference", Duration::from_secs(5), |s| {
        s["active"].as_u64() >= Some(1)
    });
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = server.get("/healthz");
        times.push(t.elapsed());
        assert_eq!(r.code, 200);
    }
    let still_active = server.status()["active"].as_u64();
    let p = p99(times);
    assert!(p < Duration::from_millis(50), "healthz p99 {p:?}");
    assert_eq!(
        still_active,
        Some(1),
        "the probes must overlap the inference"
    );
    let r = long.join().expect("client thread");
    assert_eq!(r.code, 504, "{}", r.body);
}

#[test]
fn lazy_32_concurrent_first_requests_load_once() {
    let server = Server::start(Preset::Small, &["--lazy-weights"]);
    let before = server.status();
    assert_eq!(before["loads"], 0, "{before}");
    assert_eq!(before["state"], "idle", "{before}");
    let addr = server.addr;
    let clients: Vec<_> = (0..32)
        .map(|i| infer_in_background(addr, format!(r#"{{"seed": {i}, "timeout_ms": 20000}}"#)))
        .collect();
    let mut sums = std::collections::HashSet::new();
    for c in clients {
        let r = c.join().expect("client thread");
        assert_eq!(r.code, 200, "{}", r.body);
        sums.insert(r.json()["output"]["checksum"].as_str().map(String::from));
    }
    assert_eq!(sums.len(), 32, "each seed gives its own output");
    let after = server.status();
    assert_eq!(after["loads"], 1, "{after}");
    assert_eq!(after["state"], "ready", "{after}");
}

#[test]
fn inference_past_its_timeout_gets_504_and_the_next_succeeds() {
    let server = Server::start(Preset::Tiny, &["--max-concurrent", "1"]);
    let t = Instant::now();
    let r = server.post(
        "/v1/infer",
        r#"{"seed": 2, "timeout_ms": 1, "steps": 100000}"#,
    );
    let took = t.elapsed();
    assert_eq!(r.code, 504, "{}", r.body);
    assert_eq!(r.json()["timeout_ms"], 1);
    // Issue 8 asks timeout + 100 ms; the margin covers connection set-up on a busy CI box.
    assert!(took < Duration::from_millis(300), "504 after {took:?}");
    // The computation stopped: the only permit is free again.
    server.wait_status("no active inference", Duration::from_secs(2), |s| {
        s["active"] == 0
    });
    let ok = server.post("/v1/infer", r#"{"seed": 2}"#);
    assert_eq!(ok.code, 200, "{}", ok.body);
    let again = server.post("/v1/infer", r#"{"seed": 2}"#);
    assert_eq!(
        ok.json()["output"]["checksum"],
        again.json()["output"]["checksum"],
        "same seed, same output"
    );
}

#[test]
fn invalid_bodies_are_rejected_naming_the_field() {
    let server = Server::start(Preset::Tiny, &[]);
    let cases = [
        (r#"{"seed": "nope"}"#, 422, Some("seed")),
        (r#"{"seed": -3}"#, 422, Some("seed")),
        (r#"{"input": [1.0, 2.0]}"#, 422, Some("input")),
        (r#"{"input": [1.0, "x"]}"#, 422, Some("input")),
        (r#"{"seed": 1, "steps": 0}"#, 422, Some("steps")),
        (r#"{"seed": 1, "priority": 5}"#, 422, Some("priority")),
        (r#"{"seed": 1, "temperature": 1}"#, 422, Some("temperature")),
        (r#"{}"#, 422, Some("seed")),
        (r#"[1, 2]"#, 422, Some("body")),
        (r#"{"seed": 1"#, 400, None),
    ];
    for (body, code, field) in cases {
        let r = server.post("/v1/infer", body);
        assert_eq!(r.code, code, "{body} → {}", r.body);
        let j = r.json();
        assert_eq!(j["field"].as_str(), field, "{body} → {j}");
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let huge = format!(r#"{{"seed": 1, "pad": "{}"}}"#, "x".repeat(2 << 20));
    let r = server.post("/v1/infer", &huge);
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(r.json()["field"].as_str(), Some("body"), "{}", r.body);
    // The server is still fine after all of that.
    assert_eq!(server.post("/v1/infer", r#"{"seed": 1}"#).code, 200);
}

#[test]
fn full_queue_gets_429_with_retry_after() {
    let server = Server::start(
        Preset::Tiny,
        &["--max-concurrent", "1", "--queue-depth", "1"],
    );
    let addr = server.addr;
    let long = || {
        infer_in_background(
            addr,
            br#"{"seed": 1, "steps": 10000000, "timeout_ms": 2000}"#,
        )
    };
    let first = long();
    server.wait_status("one active", Duration::from_secs(5), |s| s["active"] == 1);
    let second = long();
    server.wait_status("one queued", Duration::from_secs(5), |s| {
        s["queue"]["normal"] == 1
    });
    let r = server.post("/v1/infer", r#"{"seed": 3}"#);
    assert_eq!(r.code, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    let s = server.status();
    assert_eq!(
        (s["active"].as_u64(), s["queue"]["normal"].as_u64()),
        (Some(1), Some(1))
    );
    for h in [first, second] {
        assert_eq!(h.join().expect("client").code, 504);
    }
}

#[test]
fn admin_needs_the_token_and_maintenance_answers_503_with_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    let token = "0123456789abcdef-serve-test";
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let server = Server::start(
        Preset::Tiny,
        &[
            "--admin-token-file",
            token_file.to_str().expect("utf-8 path"),
        ],
    );
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let wrong = [("Authorization", "Bearer 0123456789abcdef-serve-tesT")];
    assert_eq!(server.get("/admin/stats").code, 401);
    assert_eq!(
        request(server.addr, "GET", "/admin/stats", &wrong, b"").code,
        401
    );
    let stats = request(server.addr, "GET", "/admin/stats", &auth, b"");
    assert_eq!(stats.code, 200, "{}", stats.body);
    assert_eq!(stats.json()["registry"]["loads_started"], 1);

    // A request in flight when maintenance starts still completes.
    let in_flight = infer_in_background(
        server.addr,
        br#"{"seed": 4, "steps": 5000, "timeout_ms": 20000}"#,
    );
    server.wait_status("an active inference", Duration::from_secs(5), |s| {
        s["active"] == 1
    });
    let on = br#"{"enabled": true, "reason": "disk swap", "eta_minutes": 5}"#;
    assert_eq!(
        request(server.addr, "POST", "/admin/maintenance", &wrong, on).code,
        401
    );
    let r = request(server.addr, "POST", "/admin/maintenance", &auth, on);
    assert_eq!(r.code, 200, "{}", r.body);
    let r = server.post("/v1/infer", r#"{"seed": 1}"#);
    assert_eq!(r.code, 503, "{}", r.body);
    assert_eq!(r.json()["reason"], "disk swap");
    assert_eq!(
        server.status()["active"],
        1,
        "the earlier request is still running"
    );
    assert_eq!(r.header("retry-after"), Some("300"));
    assert_eq!(server.get("/readyz").code, 503);
    assert_eq!(server.get("/healthz").code, 200);
    assert_eq!(server.status()["state"], "maintenance");
    let r = in_flight.join().expect("client");
    assert_eq!(
        r.code, 200,
        "in-flight request during maintenance: {}",
        r.body
    );

    let off = br#"{"enabled": false}"#;
    assert_eq!(
        request(server.addr, "POST", "/admin/maintenance", &auth, off).code,
        200
    );
    assert_eq!(server.post("/v1/infer", r#"{"seed": 1}"#).code, 200);
}

#[test]
fn sigterm_exits_zero_within_five_seconds_with_a_request_in_flight() {
    let server = Server::start(Preset::Tiny, &["--shutdown-grace", "1s"]);
    let addr = server.addr;
    let long = std::thread::spawn(move || {
        // The connection may be answered (504/503) or closed at shutdown; either is fine.
        std::panic::catch_unwind(|| {
            infer(
                addr,
                br#"{"seed": 1, "steps": 10000000, "timeout_ms": 30000}"#,
            )
        })
    });
    server.wait_status("an active inference", Duration::from_secs(5), |s| {
        s["active"] == 1
    });
    let (status, took) = server.terminate(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let _ = long.join();
}

#[test]
fn hot_swap_under_a_steady_request_stream_fails_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    let token = "swap-test-token-0123456789";
    std::fs::write(&token_file, token).expect("token file");
    let server = Server::start(
        Preset::Tiny,
        &[
            "--admin-token-file",
            token_file.to_str().expect("utf-8 path"),
        ],
    );
    let checksum = |s: &Server| {
        let r = s.post("/v1/infer", r#"{"seed": 1}"#);
        assert_eq!(r.code, 200, "{}", r.body);
        r.json()["output"]["checksum"].clone()
    };
    let before = checksum(&server);
    // Models load in mmap mode: the mapping of the file is the model's memory.
    // /proc/<pid>/maps shows canonical paths; the fixture path may hold `..`.
    let mapped_name = |p: &std::path::Path| {
        let p = std::fs::canonicalize(p).expect("fixture path");
        p.to_str().expect("utf-8 path").to_string()
    };
    let old_model = mapped_name(&fixtures::path(Preset::Tiny, WeightFormat::Tq2_0, SEED));
    assert!(
        server.maps().contains(&old_model),
        "the first model is mapped while it serves"
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (addr, flag) = (server.addr, stop.clone());
    let (started_tx, started) = mpsc::channel();
    let stream = std::thread::spawn(move || {
        let mut codes = Vec::new();
        // Bounded: at most 5000 requests even if the stop flag never comes.
        while !flag.load(std::sync::atomic::Ordering::Relaxed) && codes.len() < 5000 {
            codes.push(infer(addr, br#"{"seed": 9, "steps": 5}"#).code);
            let _ = started_tx.send(());
        }
        codes
    });
    started
        .recv_timeout(Duration::from_secs(5))
        .expect("the request stream is flowing");
    let new_model = fixtures::path(Preset::Tiny, WeightFormat::Tq2_0, 2);
    let r = swap(server.addr, token, &new_model);
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.json()["swapped"], true);
    let after = checksum(&server);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let codes = stream.join().expect("stream thread");
    assert!(!codes.is_empty());
    assert!(
        codes.iter().all(|c| *c == 200),
        "failed during swap: {codes:?}"
    );
    assert_ne!(before, after, "the swapped-in model computes differently");
    let s = server.status();
    assert_eq!(s["loads"], 1, "a swap is not a load: {s}");
    assert_eq!(s["model_path"], new_model.display().to_string());
    // Memory returns: with every request done, the old model's last lease is gone and its
    // mapping with it (bounded wait: the release happens as the last response is sent).
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.maps().contains(&old_model) {
        assert!(
            Instant::now() < deadline,
            "the old model is still mapped 5 s after its last request"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        server.maps().contains(&mapped_name(&new_model)),
        "the new model is mapped"
    );
}

#[test]
fn healthz_stays_fast_and_readyz_reports_progress_while_a_large_model_loads() {
    let Some(server) = Server::start_or_skip(Preset::Bitnet2b4t, &["--lazy-weights"]) else {
        return;
    };
    let first = infer_in_background(server.addr, br#"{"seed": 1, "timeout_ms": 30000}"#);
    let (mut health, mut saw_loading) = (Vec::new(), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = Instant::now();
        assert_eq!(server.get("/healthz").code, 200);
        health.push(t.elapsed());
        let r = server.get("/readyz");
        if r.code == 200 && r.json()["state"] == "ready" {
            break;
        }
        if r.code == 503 {
            assert_eq!(r.json()["state"], "loading", "{}", r.body);
            saw_loading = Some(r.json());
        }
        assert!(
            Instant::now() < deadline,
            "not ready within 30 s: {}",
            r.body
        );
    }
    let loading = saw_loading.expect("readyz answered 503 while loading at least once");
    assert!(
        loading["progress"]["bytes_total"].as_u64() > Some(1 << 30),
        "{loading}"
    );
    let p = p99(health.clone());
    assert!(
        p < Duration::from_millis(50),
        "healthz p99 {p:?} over {} probes",
        health.len()
    );
    let r = first.join().expect("client");
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(server.status()["loads"], 1);
}

#[test]
fn a_queued_high_priority_request_runs_before_an_earlier_test_priority_one() {
    let server = Server::start(Preset::Tiny, &["--max-concurrent", "1"]);
    let addr = server.addr;
    let send = move |body: &'static str| {
        std::thread::spawn(move || {
            let r = infer(addr, body);
            (r.code, Instant::now())
        })
    };
    let blocker = send(r#"{"seed": 1, "steps": 3000, "timeout_ms": 20000}"#);
    server.wait_status("one active", Duration::from_secs(5), |s| s["active"] == 1);
    let low = send(r#"{"seed": 2, "priority": -1, "steps": 1000, "timeout_ms": 20000}"#);
    server.wait_status("test priority queued", Duration::from_secs(5), |s| {
        s["queue"]["test"] == 1
    });
    let high = send(r#"{"seed": 3, "priority": 1, "steps": 1000, "timeout_ms": 20000}"#);
    server.wait_status("high priority queued", Duration::from_secs(5), |s| {
        s["queue"]["high"] == 1
    });
    let (b, l, h) = (
        blocker.join().expect("client"),
        low.join().expect("client"),
        high.join().expect("client"),
    );
    assert_eq!((b.0, l.0, h.0), (200, 200, 200));
    // Each takes hundreds of milliseconds on the one permit: the order is unambiguous.
    assert!(
        h.1 < l.1,
        "high finished after the earlier test-priority request"
    );
}
