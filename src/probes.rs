//! HTTP probes for a host that serves with axum (feature `http`): `/livez`,
//! `/readyz`, `/healthz` and `/schedules` (PRODUCT.md §5), read from a
//! [`ReconcilerHandle`]. `/metrics` is the host's: it owns the recorder.

use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::runtime::ReconcilerHandle;
use crate::runtime::lifecycle::State;

/// The probes, to merge into the host's router.
pub fn router(handle: ReconcilerHandle) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .route("/schedules", get(schedules))
        .with_state(handle)
}

async fn livez(Extract(handle): Extract<ReconcilerHandle>) -> (StatusCode, Json<Value>) {
    let live = handle.is_live();
    (code(live), Json(json!({ "live": live })))
}

async fn readyz(Extract(handle): Extract<ReconcilerHandle>) -> (StatusCode, Json<Value>) {
    let ready = handle.is_ready();
    let state = handle.state();
    (
        code(ready),
        Json(json!({ "ready": ready, "state": state.name() })),
    )
}

async fn healthz(Extract(handle): Extract<ReconcilerHandle>) -> Json<Value> {
    let status = handle.status();
    let counts: serde_json::Map<String, Value> = status
        .counts()
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count.into()))
        .collect();
    let reason = match &status.state {
        State::Failed { reason, .. } => serde_json::to_value(reason).ok(),
        _ => None,
    };
    let pace = handle.pace();
    Json(json!({
        "state": status.state.name(),
        "attempt": status.state.attempt(),
        "next_retry_at": status.state.next_retry_at().map(rfc3339),
        "last_error": status.state.last_error(),
        "failed_reason": reason,
        "state_entered_at": rfc3339(status.state_entered_at),
        "last_success_at": status.last_success.map(rfc3339),
        "ready": status.is_ready(),
        "live": handle.is_live(),
        "project": status.project,
        "config_revision": status.revision,
        "reload_error": status.reload_error,
        "schedules": counts,
        "held_deletions": *status.held_deletions,
        // Temporal answered ResourceExhausted within the last minute: the
        // reconciler goes on at a slower pace; it is no outage.
        "throttled": pace.throttled_recently,
        "pace": {
            "requests_per_second": pace.rate,
            "max_rps": pace.ceiling,
            "throttled_answers": pace.throttled,
            "last_throttled_at": pace.last_throttled.map(rfc3339),
        },
        "writer": {
            "revision": (status.writer.revision != 0).then_some(status.writer.revision),
            "started_ms": (status.writer.started_ms != 0).then_some(status.writer.started_ms),
            "name": crate::fence::this_process(),
        },
        "superseded_by": status.superseded_by.as_ref().map(|by| json!({
            "revision": by.key.revision,
            "started_ms": by.key.started_ms,
            "name": by.name,
            "description": by.to_string(),
        })),
    }))
}

/// One entry per declared schedule, then one per held deletion (status
/// `held_deletion`, with the reason, and no workflow: the project no longer
/// declares it).
async fn schedules(Extract(handle): Extract<ReconcilerHandle>) -> Json<Value> {
    let status = handle.status();
    let mut entries = serde_json::to_value(&*status.schedules).unwrap_or_default();
    if let Value::Array(list) = &mut entries {
        list.extend(status.held_deletions.iter().map(|held| {
            json!({
                "id": held.id,
                "workflow": null,
                "status": "held_deletion",
                "reason": held.reason,
                "last_error": null,
            })
        }));
    }
    Json(entries)
}

fn code(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
