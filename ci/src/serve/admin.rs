//! Admin routes (mounted only with `--admin-token-file`): maintenance, hot swap, stats.
//! Every call needs `Authorization: Bearer <token>`, compared in constant time.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::body::Fields;
use super::{ApiError, AppState, status_json};

/// Longest maintenance reason kept.
const MAX_REASON: usize = 1024;

/// Equal without an early exit, so response time does not reveal how many leading bytes
/// of a guess were right. (The length is not secret.)
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x);
    }
    std::hint::black_box(diff) == 0
}

fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin routes need `Authorization: Bearer <token>` with the server's token",
        )
    };
    let expected = s.admin_token.as_deref().ok_or_else(unauthorized)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    if ct_eq(given.trim().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// `POST /admin/maintenance {enabled, reason, eta_minutes}`.
pub async fn maintenance(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&s, &headers)?;
    let f = Fields::parse(body, &["enabled", "reason", "eta_minutes"])?;
    let enabled = f
        .bool("enabled")?
        .ok_or_else(|| ApiError::field("enabled", "required (true or false)"))?;
    if enabled {
        let reason = f
            .string("reason", MAX_REASON)?
            .unwrap_or_else(|| "maintenance".into());
        let eta = f.u64_in("eta_minutes", 0..=7 * 24 * 60)?;
        s.host.set_maintenance(Some((reason, eta)));
    } else {
        s.host.set_maintenance(None);
    }
    Ok(Json(status_json(&s)))
}

/// `POST /admin/models/swap {path}`: loads the replacement while the old model serves.
pub async fn swap(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&s, &headers)?;
    let f = Fields::parse(body, &["path"])?;
    let path = PathBuf::from(
        f.string("path", 4096)?
            .ok_or_else(|| ApiError::field("path", "required"))?,
    );
    if !path.is_file() {
        return Err(ApiError::field(
            "path",
            format!("{} is not a readable file", path.display()),
        ));
    }
    let state = s.clone();
    let r = tokio::task::spawn_blocking(move || state.host.swap(&path))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match r {
        Ok((old_bytes, new_bytes)) => Ok(Json(
            json!({ "swapped": true, "old_bytes": old_bytes, "new_bytes": new_bytes }),
        )),
        Err(e) => {
            s.host.note_error(e.to_string());
            Err(ApiError::new(StatusCode::CONFLICT, e.to_string()))
        }
    }
}

/// `GET /admin/stats`: the status page plus the registry's raw counters.
pub async fn stats(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&s, &headers)?;
    let st = s.host.slot.stats();
    let mut v = status_json(&s);
    v["registry"] = json!({
        "is_loading": st.is_loading,
        "swapping": st.swapping,
        "queued": st.queued,
        "active": st.active,
        "loads_started": st.loads_started,
        "loads_failed": st.loads_failed,
        "last_access_ms": st.last_access.map(|d| d.as_millis() as u64),
    });
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn ct_eq_compares_whole_strings() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }
}
