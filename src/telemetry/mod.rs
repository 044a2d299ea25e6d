//! Metrics: every name in one place, and the recorders of what the store
//! sees as it happens (each RPC, the pace, a throttled answer), through the
//! `metrics` facade; the rest is derived from the reconciler's published
//! status by the runtime's observer (`runtime/metrics.rs`). The library installs no recorder: the host (or `serve`)
//! does.
//!
//! Every series carries a `project` label ([`PROJECT_LABEL`]) naming the
//! project of its reconciler, so that several reconcilers in one process
//! (one per project) keep separate series.

use std::time::SystemTime;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

/// 1 for the current state, 0 for the others; label `state`.
pub const STATE: &str = "schedule_sync_state";
/// When the current state was entered, in Unix seconds.
pub const STATE_ENTERED: &str = "schedule_sync_state_entered_timestamp_seconds";
/// Failed attempts in a row (0 when the last attempt succeeded).
pub const RETRY_ATTEMPT: &str = "schedule_sync_retry_attempt";
/// Reconcile attempts by `outcome`: `success`, `retryable_error`, `fatal_error`, `timeout`.
pub const RECONCILE_TOTAL: &str = "schedule_sync_reconcile_total";
/// How long reconcile attempts take.
pub const RECONCILE_DURATION: &str = "schedule_sync_reconcile_duration_seconds";
/// Schedule writes by `operation` and `outcome` (`success`, `error`).
pub const OPERATIONS_TOTAL: &str = "schedule_sync_operations_total";
/// Schedule RPCs by `rpc` and gRPC `code`.
pub const RPC_TOTAL: &str = "schedule_sync_rpc_total";
/// Declared schedules by `status`.
pub const SCHEDULES: &str = "schedule_sync_schedules";
/// When the last reconcile succeeded, in Unix seconds.
pub const LAST_SUCCESS: &str = "schedule_sync_last_success_timestamp_seconds";
/// Schedules of ours that the project no longer declares and whose deletion
/// the last reconcile held back (the listing was incomplete, or a mass delete).
pub const HELD_DELETIONS: &str = "schedule_sync_held_deletions";
/// Config reloads by `outcome`: `applied`, `invalid`.
pub const CONFIG_RELOAD_TOTAL: &str = "schedule_sync_config_reload_total";
/// The pace of RPCs to Temporal, in requests per second (see
/// [`crate::store::Pace`]); 0 while calls are not paced.
pub const PACE: &str = "schedule_sync_pace_requests_per_second";
/// Answers from Temporal that throttled a call (`ResourceExhausted` for a
/// rate or concurrency limit).
pub const THROTTLED_TOTAL: &str = "schedule_sync_throttled_total";

/// Declared schedules by `health` (`firing`, `late`, `skipping`, `paused`,
/// `ended`), as the last reconcile's listing showed them.
pub const SCHEDULES_BY_HEALTH: &str = "schedule_sync_schedules_by_health";
/// Per schedule (opt-in, [`crate::runtime::Options::schedule_metrics`]):
/// 1 for the schedule's health, 0 for the others; labels `schedule`, `health`.
pub const SCHEDULE_HEALTH: &str = "schedule_sync_schedule_health";
/// Per schedule (opt-in): when its last action was taken, in Unix seconds;
/// label `schedule`.
pub const SCHEDULE_LAST_ACTION: &str = "schedule_sync_schedule_last_action_timestamp_seconds";
/// Per schedule (opt-in): when its next action is due, in Unix seconds;
/// label `schedule`.
pub const SCHEDULE_NEXT_ACTION: &str = "schedule_sync_schedule_next_action_timestamp_seconds";

/// The label on every series that names the reconciler's project.
pub const PROJECT_LABEL: &str = "project";

tokio::task_local! {
    /// The project whose reconcile runs in this task, for the RPCs that
    /// the store counts (the store itself serves any project).
    static PROJECT: String;
}

/// Runs `work` with its RPCs counted under `project`'s label.
pub(crate) async fn for_project<F: std::future::Future>(project: String, work: F) -> F::Output {
    PROJECT.scope(project, work).await
}

/// Gives each metric its help text and unit on the installed recorder.
/// The runtime calls it when it spawns a reconciler; a host that installs
/// its recorder later may call it again.
pub(crate) fn describe() {
    describe_gauge!(
        STATE,
        "1 for the reconciler's current state, 0 for the others"
    );
    describe_gauge!(
        STATE_ENTERED,
        Unit::Seconds,
        "When the current state was entered (Unix time)"
    );
    describe_gauge!(RETRY_ATTEMPT, "Failed reconcile attempts in a row");
    describe_counter!(RECONCILE_TOTAL, "Reconcile attempts by outcome");
    describe_histogram!(
        RECONCILE_DURATION,
        Unit::Seconds,
        "Duration of reconcile attempts"
    );
    describe_counter!(OPERATIONS_TOTAL, "Schedule writes by operation and outcome");
    describe_counter!(RPC_TOTAL, "Temporal schedule RPCs by rpc and gRPC code");
    describe_gauge!(SCHEDULES, "Declared schedules by status");
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "When the last reconcile succeeded (Unix time)"
    );
    describe_counter!(CONFIG_RELOAD_TOTAL, "Config reloads by outcome");
    describe_gauge!(
        PACE,
        "The pace of RPCs to Temporal in requests per second (0 while not paced)"
    );
    describe_counter!(THROTTLED_TOTAL, "Throttled answers from Temporal");
    describe_gauge!(
        SCHEDULES_BY_HEALTH,
        "Declared schedules by health (firing, late, skipping, paused, ended)"
    );
    describe_gauge!(
        SCHEDULE_HEALTH,
        "1 for a schedule's health, 0 for the others (per schedule, opt-in)"
    );
    describe_gauge!(
        SCHEDULE_LAST_ACTION,
        Unit::Seconds,
        "When a schedule last acted (Unix time; per schedule, opt-in)"
    );
    describe_gauge!(
        SCHEDULE_NEXT_ACTION,
        Unit::Seconds,
        "When a schedule acts next (Unix time; per schedule, opt-in)"
    );
    describe_gauge!(
        HELD_DELETIONS,
        "Deletions held back by the last reconcile (incomplete listing or mass delete)"
    );
}

/// Records one RPC (the store calls this as each RPC ends), under the
/// project whose reconcile made it (empty outside a reconciler, as in the
/// command line's `apply`).
pub(crate) fn rpc(rpc: &'static str, code: tonic::Code) {
    counter!(RPC_TOTAL, PROJECT_LABEL => current_project(), "rpc" => rpc, "code" => format!("{code:?}"))
        .increment(1);
}

/// Records the pace of RPCs (the limiter calls this as it changes).
pub(crate) fn pace(requests_per_second: f64) {
    gauge!(PACE, PROJECT_LABEL => current_project()).set(requests_per_second);
}

/// Exports the pace of a reconciler that has just started: its ceiling (0
/// without one) and no throttled answer yet, so that both series exist
/// from the start.
pub(crate) fn pace_started(project: &str, ceiling: Option<f64>) {
    gauge!(PACE, PROJECT_LABEL => project.to_owned()).set(ceiling.unwrap_or(0.0));
    counter!(THROTTLED_TOTAL, PROJECT_LABEL => project.to_owned()).increment(0);
}

/// Records one throttled answer (the limiter calls this as it comes).
pub(crate) fn throttled() {
    counter!(THROTTLED_TOTAL, PROJECT_LABEL => current_project()).increment(1);
}

/// The project whose reconcile is running on this task (empty outside a
/// reconciler, as in the command line's `apply`).
fn current_project() -> String {
    PROJECT.try_with(Clone::clone).unwrap_or_default()
}

pub(crate) fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
