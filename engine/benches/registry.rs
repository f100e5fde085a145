//! Registry fast path: acquire + release of a loaded model, uncontended and with 2 threads.
//!
//! Goal: under 100 ns uncontended. The baseline in the same run is an `Arc` clone + drop, the
//! floor any shared-model handle pays.

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_engine::registry::{AcquireOptions, ModelRegistry, SlotConfig};

fn fast_path(c: &mut Criterion) {
    let registry = ModelRegistry::<Vec<u8>>::new();
    let slot = registry
        .register("m", |_| Ok(vec![0u8; 1024]), SlotConfig::default())
        .expect("register");
    drop(slot.acquire(AcquireOptions::default()).expect("first load"));
    let mut g = c.benchmark_group("registry_fast_path");
    let arc = Arc::new(vec![0u8; 1024]);
    g.bench_function("baseline_arc_clone_drop", |b| {
        b.iter(|| black_box(arc.clone()))
    });
    g.bench_function("acquire_release_uncontended", |b| {
        b.iter(|| black_box(slot.acquire(AcquireOptions::default()).expect("acquire")))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (slot, stop) = (slot.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(slot.acquire(AcquireOptions::default()).expect("acquire"));
            }
        })
    };
    g.bench_function("acquire_release_2_threads", |b| {
        b.iter(|| black_box(slot.acquire(AcquireOptions::default()).expect("acquire")))
    });
    stop.store(true, Ordering::Relaxed);
    other.join().expect("contending thread");
    g.finish();
}

criterion_group!(benches, fast_path);
criterion_main!(benches);
