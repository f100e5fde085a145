//! `POST /v1/infer`: validate, admit, run on the blocking pool, answer in time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use gauntlet_engine::forward::{Control, ForwardError};
use gauntlet_engine::registry::{Priority, RegistryError};
use serde_json::json;

use super::body::Fields;
use super::host::{Input, Job, JobError};
use super::{ApiError, AppState, Ticket};

const FIELDS: &[&str] = &["seed", "input", "steps", "priority", "timeout_ms"];
/// Most passes one request may ask for; the timeout bounds the time anyway.
const MAX_STEPS: u64 = 10_000_000;

fn parse(body: Result<Bytes, BytesRejection>) -> Result<(Job, Option<Duration>), ApiError> {
    let f = Fields::parse(body, FIELDS)?;
    let input = match (f.u64_in("seed", 0..=u64::MAX)?, f.f32_array("input")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "input",
                "give either seed or input, not both",
            ));
        }
        (Some(s), None) => Input::Seed(s),
        (None, Some(v)) => Input::Values(v),
        (None, None) => return Err(ApiError::field("seed", "one of seed or input is required")),
    };
    let steps = f.u64_in("steps", 1..=MAX_STEPS)?.unwrap_or(1);
    let priority = match f.i64_in("priority", -1..=1)?.unwrap_or(0) {
        -1 => Priority::Test,
        1 => Priority::High,
        _ => Priority::Normal,
    };
    let timeout = f
        .u64_in("timeout_ms", 1..=u64::MAX)?
        .map(Duration::from_millis);
    let steps = u32::try_from(steps).unwrap_or(u32::MAX);
    Ok((
        Job {
            input,
            steps,
            priority,
        },
        timeout,
    ))
}

fn level(p: Priority) -> usize {
    match p {
        Priority::Test => 0,
        Priority::Normal => 1,
        Priority::High => 2,
    }
}

fn maintenance_error(s: &AppState) -> Option<ApiError> {
    let m = s
        .host
        .maintenance
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()?;
    let (reason, eta, _) = m;
    let e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("in maintenance: {reason}"),
    )
    .with(json!({ "reason": reason, "eta_minutes": eta }));
    Some(e.retry_after(eta.map_or(60, |m| m.saturating_mul(60).max(1))))
}

fn job_error(e: JobError, timeout: Duration) -> ApiError {
    match e {
        JobError::Registry(RegistryError::Unavailable { reason, eta, .. }) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("in maintenance: {reason}"),
        )
        .with(json!({ "reason": reason, "eta_minutes": eta.map(|d| d.as_secs() / 60) }))
        .retry_after(eta.map_or(60, |d| d.as_secs().max(1))),
        JobError::Registry(
            e @ (RegistryError::AccessTimeout { .. } | RegistryError::LoadTimedOut { .. }),
        ) => timed_out(timeout, &e.to_string()),
        JobError::Forward(e @ ForwardError::TimedOut { .. }) => timed_out(timeout, &e.to_string()),
        JobError::Forward(e @ ForwardError::Cancelled { .. }) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        JobError::Forward(e @ ForwardError::InputLength { .. }) => {
            ApiError::field("input", e.to_string())
        }
        JobError::Forward(e @ ForwardError::NonFinite { .. }) => {
            ApiError::field("input", e.to_string())
        }
        JobError::Registry(
            e @ (RegistryError::LoadFailed { .. } | RegistryError::LoadCancelled { .. }),
        ) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(1),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn timed_out(timeout: Duration, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "inference did not finish within {} ms; it was cancelled ({why})",
            timeout.as_millis()
        ),
    )
    .with(json!({ "timeout_ms": timeout.as_millis() as u64 }))
}

/// The handler. The server-side timeout is the smaller of `--infer-timeout` and the
/// request's `timeout_ms` and covers queueing, a first-use load and the passes; when it
/// fires the handler answers 504 at once and the computation stops at its next block.
pub async fn infer(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (job, asked) = parse(body)?;
    if let Some(e) = maintenance_error(&s) {
        return Err(e);
    }
    let timeout = asked.map_or(s.infer_timeout, |t| t.min(s.infer_timeout));
    let mut ticket = Ticket::admit(&s, level(job.priority)).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "queue full: {} running and {} queued at most; retry later",
                s.admission.max_concurrent, s.admission.queue_depth
            ),
        )
        .retry_after(1)
    })?;
    let start = Instant::now();
    let cancel = s.shutdown.child_token();
    // Cancels the computation if this handler is dropped (client gone, or timed out below).
    let _guard = cancel.clone().drop_guard();
    let control = Control {
        cancel,
        deadline: Some(start + timeout),
    };
    let state = s.clone();
    let work = tokio::task::spawn_blocking(move || {
        let r = state.host.run_job(&job, &control, || ticket.start());
        drop(ticket);
        r
    });
    let outcome = match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(timed_out(timeout, "server-side timeout")),
        Ok(Err(join)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("inference task failed: {join}"),
        )),
        Ok(Ok(Err(e))) => Err(job_error(e, timeout)),
        Ok(Ok(Ok(summary))) => Ok(summary),
    };
    match outcome {
        Ok(summary) => Ok(Json(json!({
            "output": summary,
            "elapsed_ms": start.elapsed().as_secs_f64() * 1e3,
        }))),
        Err(e) => {
            if e.status().is_server_error() {
                s.host.note_error(e.message.clone());
            }
            Err(e)
        }
    }
}
