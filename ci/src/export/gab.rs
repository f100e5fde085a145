//! github-action-benchmark's `customSmallerIsBetter` input: a JSON array of
//! `{ "name", "unit", "value", "range", "extra" }`.

use serde_json::{Value, json};

use crate::history::BenchRecord;

/// The customSmallerIsBetter array for one run's benchmarks.
pub fn document(benches: &[BenchRecord]) -> Value {
    Value::Array(
        benches
            .iter()
            .map(|b| {
                let half_width = (b.upper - b.lower) / 2.0;
                json!({
                    "name": b.name,
                    "unit": b.unit,
                    "value": b.estimate,
                    "range": format!("± {half_width:.3}"),
                    "extra": format!("confidence interval [{:.3}, {:.3}] {}", b.lower, b.upper, b.unit),
                })
            })
            .collect(),
    )
}
