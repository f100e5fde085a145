//! Bencher Metric Format: `{ "<benchmark>": { "latency": { "value", "lower_value", "upper_value" } } }`.
//!
//! Bencher's built-in `latency` measure is in nanoseconds, which is the unit history
//! stores, so values are written unconverted.

use serde_json::{Map, Value, json};

use crate::history::BenchRecord;

/// The BMF document for one run's benchmarks.
pub fn document(benches: &[BenchRecord]) -> Value {
    let mut root = Map::new();
    for b in benches {
        root.insert(
            b.name.clone(),
            json!({ "latency": { "value": b.estimate, "lower_value": b.lower, "upper_value": b.upper } }),
        );
    }
    Value::Object(root)
}
