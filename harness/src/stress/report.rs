//! What a stress run reports, and how it fails.

use std::time::Duration;

/// Throughput, latency and concurrency of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct StressReport {
    /// The seed used (replay with `GAUNTLET_STRESS_SEED`).
    pub seed: u64,
    /// Tasks run at once.
    pub concurrency: usize,
    /// Calls of the body made (after environment scaling).
    pub iterations: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Calls per second.
    pub throughput_per_s: f64,
    /// Median duration of one call (jitter excluded).
    pub latency_p50: Duration,
    /// 99th percentile duration of one call.
    pub latency_p99: Duration,
    /// Longest call.
    pub latency_max: Duration,
    /// Highest count of [`super::StressCtx::concurrent`] guards alive at once; when the body
    /// never takes one, the highest number of tasks inside a call at once.
    pub max_concurrency: usize,
}

/// A task that made no progress when the watchdog fired.
#[derive(Debug, Clone, PartialEq)]
pub struct StuckTask {
    /// The task index.
    pub task: usize,
    /// The global iteration it was in.
    pub iteration: u64,
    /// The last [`super::StressCtx::breadcrumb`] it left, if any.
    pub last_breadcrumb: Option<String>,
    /// How long nothing progressed.
    pub stalled_for: Duration,
}

/// Why a stress run failed.
#[derive(Debug, thiserror::Error)]
pub enum StressError {
    /// No task progressed within the watchdog period.
    #[error("stress run stalled: no task progressed for {watchdog:?}; stuck: {}; seed {seed} (replay with GAUNTLET_STRESS_SEED={seed})", describe(.stuck))]
    Stuck {
        /// The seed of the run.
        seed: u64,
        /// The watchdog period.
        watchdog: Duration,
        /// Every task that was stuck.
        stuck: Vec<StuckTask>,
    },
    /// The body panicked.
    #[error("stress task {task} panicked in iteration {iteration}: {message} (last breadcrumb: {}); seed {seed} (replay with GAUNTLET_STRESS_SEED={seed})", .last_breadcrumb.as_deref().unwrap_or("none"))]
    Panicked {
        /// The seed of the run.
        seed: u64,
        /// The task.
        task: usize,
        /// The iteration.
        iteration: u64,
        /// The panic message.
        message: String,
        /// The task's last breadcrumb.
        last_breadcrumb: Option<String>,
    },
    /// `GAUNTLET_STRESS_SEED` is not a number.
    #[error(
        "GAUNTLET_STRESS_SEED={value:?} is not an unsigned 64-bit integer (use the seed a failed run printed)"
    )]
    InvalidSeed {
        /// The value found.
        value: String,
    },
    /// A worker thread could not be started.
    #[error("could not start stress worker: {0}")]
    Spawn(String),
}

impl StressError {
    /// The run's seed, when it got far enough to have one.
    pub fn seed(&self) -> Option<u64> {
        match self {
            StressError::Stuck { seed, .. } | StressError::Panicked { seed, .. } => Some(*seed),
            _ => None,
        }
    }
}

fn describe(stuck: &[StuckTask]) -> String {
    stuck
        .iter()
        .map(|s| {
            format!(
                "task {} in iteration {} after {}",
                s.task,
                s.iteration,
                s.last_breadcrumb
                    .as_deref()
                    .map_or("no breadcrumb".into(), |b| format!("{b:?}"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the report from all call latencies.
pub(crate) fn summarize(
    seed: u64,
    concurrency: usize,
    elapsed: Duration,
    mut latencies: Vec<Duration>,
    (gauge_max, active_max): (Option<usize>, usize),
) -> StressReport {
    latencies.sort_unstable();
    let pick = |q: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[i.min(latencies.len() - 1)]
    };
    let n = latencies.len() as u64;
    StressReport {
        seed,
        concurrency,
        iterations: n,
        elapsed,
        throughput_per_s: if elapsed.is_zero() {
            0.0
        } else {
            n as f64 / elapsed.as_secs_f64()
        },
        latency_p50: pick(0.50),
        latency_p99: pick(0.99),
        latency_max: latencies.last().copied().unwrap_or_default(),
        max_concurrency: gauge_max.unwrap_or(active_max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_sorted_latencies() {
        let lat: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let r = summarize(1, 4, Duration::from_secs(2), lat, (None, 3));
        assert_eq!(r.latency_p50, Duration::from_millis(51));
        assert_eq!(r.latency_p99, Duration::from_millis(99));
        assert_eq!(r.latency_max, Duration::from_millis(100));
        assert_eq!(r.iterations, 100);
        assert_eq!(r.throughput_per_s, 50.0);
        assert_eq!(r.max_concurrency, 3, "no gauge: tasks in body");
        let r = summarize(1, 4, Duration::ZERO, vec![], (Some(2), 4));
        assert_eq!(
            (r.latency_p99, r.max_concurrency, r.throughput_per_s),
            (Duration::ZERO, 2, 0.0)
        );
    }

    #[test]
    fn stuck_message_names_tasks_breadcrumbs_and_seed() {
        let e = StressError::Stuck {
            seed: 42,
            watchdog: Duration::from_millis(200),
            stuck: vec![StuckTask {
                task: 3,
                iteration: 7,
                last_breadcrumb: Some("waiting for lock B".into()),
                stalled_for: Duration::from_millis(210),
            }],
        };
        let m = e.to_string();
        assert!(
            m.contains("task 3 in iteration 7 after \"waiting for lock B\""),
            "{m}"
        );
        assert!(m.contains("GAUNTLET_STRESS_SEED=42"), "{m}");
    }
}
