//! The HTTP side of `gauntlet serve`: routes, admission, status pages and errors.
//!
//! Lock discipline, because a lock held across a multi-second forward pass is the incident
//! this host exists to prevent: `/healthz` touches nothing shared; `/readyz` and
//! `/v1/status` read atomics and take only short-lived mutexes that no load or inference
//! holds while it works; inference runs on tokio's blocking pool holding only a registry
//! lease (a counted permit, not a lock).

mod admin;
mod body;
pub mod host;
mod infer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gauntlet_engine::load::CancellationToken;
use serde_json::json;

use host::Host;

/// Largest request body: a hidden-width input of a few thousand floats fits many times over.
pub const BODY_LIMIT: usize = 1 << 20;

/// Everything handlers share.
pub struct AppState {
    /// The hosted model.
    pub host: Host,
    /// Admission counters.
    pub admission: Admission,
    /// Longest any inference may take.
    pub infer_timeout: Duration,
    /// The admin bearer token, when admin routes exist.
    pub admin_token: Option<String>,
    /// Cancelled at shutdown: every request's token is a child of it.
    pub shutdown: CancellationToken,
    /// True when loading waits for the first request.
    pub lazy: bool,
}

/// Requests admitted: running plus queued, bounded by `max_concurrent + queue_depth`.
#[derive(Debug)]
pub struct Admission {
    max_concurrent: usize,
    queue_depth: usize,
    in_system: AtomicUsize,
    active: AtomicUsize,
    /// Queued requests by priority: test (−1), normal (0), high (1).
    queued: [AtomicUsize; 3],
}

impl Admission {
    /// Limits: `max_concurrent` computing at once, `queue_depth` more waiting.
    pub fn new(max_concurrent: usize, queue_depth: usize) -> Self {
        Admission {
            max_concurrent: max_concurrent.max(1),
            queue_depth,
            in_system: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            queued: Default::default(),
        }
    }

    fn queued_by_level(&self) -> [usize; 3] {
        [0, 1, 2].map(|i| self.queued[i].load(Ordering::Relaxed))
    }
}

/// One admitted request: queued until [`Ticket::start`], then active; frees its place when
/// dropped (which happens when the computation ends, not when the handler gives up).
pub struct Ticket {
    state: Arc<AppState>,
    level: usize,
    active: bool,
}

impl Ticket {
    /// Admits a request of queue `level` (0..=2), or `None` when the queue is full.
    pub fn admit(state: &Arc<AppState>, level: usize) -> Option<Ticket> {
        let a = &state.admission;
        let cap = a.max_concurrent + a.queue_depth;
        a.in_system
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        a.queued[level].fetch_add(1, Ordering::AcqRel);
        Some(Ticket {
            state: state.clone(),
            level,
            active: false,
        })
    }

    /// The request got its permit and starts computing.
    pub fn start(&mut self) {
        if !self.active {
            let a = &self.state.admission;
            a.queued[self.level].fetch_sub(1, Ordering::AcqRel);
            a.active.fetch_add(1, Ordering::AcqRel);
            self.active = true;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let a = &self.state.admission;
        if self.active {
            a.active.fetch_sub(1, Ordering::AcqRel);
        } else {
            a.queued[self.level].fetch_sub(1, Ordering::AcqRel);
        }
        a.in_system.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An error response: a status and a JSON body `{"error", "field"?, ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
    retry_after: Option<u64>,
    extra: serde_json::Value,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
            extra: serde_json::Value::Null,
        }
    }

    /// 422 naming the field at fault.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {}", message.into()),
        );
        e.field = Some(field.to_string());
        e
    }

    /// Adds a `Retry-After` header (seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds members to the JSON body.
    pub fn with(mut self, extra: serde_json::Value) -> Self {
        self.extra = extra;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message, "status": self.status.as_u16() });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        if let (Some(obj), serde_json::Value::Object(extra)) = (body.as_object_mut(), self.extra) {
            obj.extend(extra);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The router: public routes always, admin routes only with a token.
pub fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/status", get(status))
        .route("/v1/infer", post(infer::infer));
    if state.admin_token.is_some() {
        r = r
            .route("/admin/maintenance", post(admin::maintenance))
            .route("/admin/models/swap", post(admin::swap))
            .route("/admin/stats", get(admin::stats));
    }
    r.layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state(state)
}

/// Liveness: answers from the handler alone, sharing nothing with loads or inference.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The host's state in one word, plus load progress when loading.
fn state_json(s: &AppState) -> (bool, serde_json::Value) {
    let stats = s.host.slot.stats();
    let maint = s
        .host
        .maintenance
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let done = s.host.progress.bytes_done.load(Ordering::Relaxed);
    let total = s.host.progress.bytes_total.load(Ordering::Relaxed);
    let progress = json!({
        "bytes_done": done,
        "bytes_total": total,
        "fraction": if total > 0 { done as f64 / total as f64 } else { 0.0 },
    });
    if let Some((reason, eta, since)) = maint {
        let v = json!({ "state": "maintenance", "reason": reason, "eta_minutes": eta,
            "since_s": since.elapsed().as_secs() });
        return (false, v);
    }
    if stats.swapping {
        return (true, json!({ "state": "swapping", "progress": progress }));
    }
    if stats.is_loading {
        return (false, json!({ "state": "loading", "progress": progress }));
    }
    if s.host.slot.is_loaded() {
        return (true, json!({ "state": "ready" }));
    }
    // Lazy and not loaded yet: requests are accepted and the first one loads.
    (s.lazy, json!({ "state": "idle", "lazy": s.lazy }))
}

/// Readiness: 200 once requests can be served, else 503 with the state and progress.
async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let (ready, v) = state_json(&s);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(v)).into_response()
}

/// Everything an operator wants to see at once.
fn status_json(s: &AppState) -> serde_json::Value {
    let (ready, mut v) = state_json(s);
    let stats = s.host.slot.stats();
    let [test, normal, high] = s.admission.queued_by_level();
    v["ready"] = json!(ready);
    v["loads"] = json!(stats.loads_started);
    v["loads_failed"] = json!(stats.loads_failed);
    v["queue"] = json!({ "high": high, "normal": normal, "test": test,
        "depth_limit": s.admission.queue_depth });
    v["active"] = json!(s.admission.active.load(Ordering::Relaxed));
    v["max_concurrent"] = json!(s.admission.max_concurrent);
    v["model_bytes"] = json!(
        s.host
            .model_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    v["model_path"] = json!(
        s.host
            .path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .display()
            .to_string()
    );
    v["kernel_path"] = json!(format!("{:?}", s.host.kernel_path()));
    v["last_errors"] = json!(*s.host.last_errors.lock().unwrap_or_else(|p| p.into_inner()));
    v
}

async fn status(State(s): State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    axum::Json(status_json(&s))
}
