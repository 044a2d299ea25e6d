//! HTTP probes for a host that serves with axum (feature `http`): `/livez`,
//! `/readyz`, `/healthz` and `/schedules` (PRODUCT.md §5), read from a
//! [`ReconcilerHandle`]. `/metrics` is the host's: it owns the recorder.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::runtime::ReconcilerHandle;
use crate::runtime::lifecycle::State;

/// The probes of one reconciler, to merge into the host's router.
pub fn router(handle: ReconcilerHandle) -> Router {
    router_for(vec![handle])
}

/// The probes of several reconcilers (one per project) in one host.
///
/// With one handle the answers are those of [`router`]. With several,
/// `/livez` and `/readyz` answer 200 only when every reconciler is live or
/// ready; `/healthz` gives `ready`, `live` and `projects`, one `/healthz`
/// object per reconciler; `/schedules` lists the schedules of all, each
/// entry with its `project`.
pub fn router_for(handles: Vec<ReconcilerHandle>) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .route("/schedules", get(schedules))
        .with_state(Arc::new(handles))
}

type Handles = Arc<Vec<ReconcilerHandle>>;

async fn livez(Extract(handles): Extract<Handles>) -> (StatusCode, Json<Value>) {
    let live = handles.iter().all(ReconcilerHandle::is_live);
    (code(live), Json(json!({ "live": live })))
}

async fn readyz(Extract(handles): Extract<Handles>) -> (StatusCode, Json<Value>) {
    let ready = handles.iter().all(ReconcilerHandle::is_ready);
    let body = match handles.as_slice() {
        [one] => json!({ "ready": ready, "state": one.state().name() }),
        all => json!({
            "ready": ready,
            "projects": all.iter().map(|handle| json!({
                "project": handle.status().project,
                "ready": handle.is_ready(),
                "state": handle.state().name(),
            })).collect::<Vec<Value>>(),
        }),
    };
    (code(ready), Json(body))
}

async fn healthz(Extract(handles): Extract<Handles>) -> Json<Value> {
    Json(match handles.as_slice() {
        [one] => health(one),
        all => json!({
            "ready": all.iter().all(ReconcilerHandle::is_ready),
            "live": all.iter().all(ReconcilerHandle::is_live),
            "projects": all.iter().map(health).collect::<Vec<Value>>(),
        }),
    })
}

/// One reconciler's `/healthz`.
fn health(handle: &ReconcilerHandle) -> Value {
    let status = handle.status();
    let counts: serde_json::Map<String, Value> = status
        .counts()
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count.into()))
        .collect();
    let health: serde_json::Map<String, Value> = status
        .health_counts()
        .into_iter()
        .map(|(health, count)| (health.name().to_owned(), count.into()))
        .collect();
    let reason = match &status.state {
        State::Failed { reason, .. } => serde_json::to_value(reason).ok(),
        _ => None,
    };
    let pace = handle.pace();
    json!({
        "state": status.state.name(),
        "attempt": status.state.attempt(),
        "next_retry_at": status.state.next_retry_at().map(rfc3339),
        "last_error": status.state.last_error(),
        "failed_reason": reason,
        "state_entered_at": rfc3339(status.state_entered_at),
        "last_success_at": status.last_success.map(rfc3339),
        "ready": handle.is_ready(),
        "live": handle.is_live(),
        "project": status.project,
        "config_revision": status.revision,
        "reload_error": status.reload_error,
        "schedules": counts,
        // How the declared schedules fire, as the last listing showed.
        "health": health,
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
    })
}

/// One entry per declared schedule, then one per held deletion (status
/// `held_deletion`, with the reason, and no workflow: the project no longer
/// declares it); of every reconciler, each entry naming its `project`.
async fn schedules(Extract(handles): Extract<Handles>) -> Json<Value> {
    let mut entries = Vec::new();
    for handle in handles.iter() {
        let status = handle.status();
        for schedule in status.schedules.iter() {
            let mut entry = serde_json::to_value(schedule).unwrap_or_default();
            if let Value::Object(fields) = &mut entry {
                fields.insert("project".to_owned(), json!(status.project));
            }
            entries.push(entry);
        }
        entries.extend(status.held_deletions.iter().map(|held| {
            json!({
                "id": held.id,
                "project": status.project,
                "workflow": null,
                "status": "held_deletion",
                "reason": held.reason,
                "last_error": null,
            })
        }));
    }
    Json(Value::Array(entries))
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
