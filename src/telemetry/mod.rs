//! Metrics: every name in one place, and one observer (`follow`) that
//! derives them from the reconciler's published status, through the
//! `metrics` facade. The library installs no recorder: the host (or `serve`)
//! does.
//!
//! Every series carries a `project` label ([`PROJECT_LABEL`]) naming the
//! project of its reconciler, so that several reconcilers in one process
//! (one per project) keep separate series.

use std::time::SystemTime;

use tokio::sync::watch;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::health::Health;
use crate::runtime::lifecycle::State;
use crate::runtime::{ScheduleStatus, Status};

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

/// Mirrors every status the reconciler publishes into the metrics, until
/// the reconciler's task ends. The runtime spawns one per reconciler: the
/// loop itself records no metric, and everything here is read from the
/// [`Status`], so the metrics say what the probes say.
///
/// Every series is labelled with the status's project, or `label` while no
/// project is loaded yet (the runtime passes the project folder's name).
/// When the project's name changes (the first load, or a reload that
/// renames it), the gauges under the old name drop to 0, so that alerts on
/// them resolve.
///
/// Counters are set to the status's running totals. The duration histogram
/// takes the last attempt's duration each time the number of finished
/// attempts grows; two attempts that finish before the observer runs once
/// (which takes two attempts well under a millisecond apart) record one
/// duration.
///
/// With `per_schedule`, each declared schedule also gets its own series
/// ([`SCHEDULE_HEALTH`], [`SCHEDULE_LAST_ACTION`], [`SCHEDULE_NEXT_ACTION`]),
/// set again only when the schedules' statuses change: off by default, as
/// 10,000 schedules would make 70,000 series.
pub(crate) async fn follow(
    mut status: watch::Receiver<Status>,
    label: String,
    ceiling: Option<f64>,
    per_schedule: bool,
) {
    let mut attempts_seen = 0;
    let mut labelled: Option<String> = None;
    let mut schedules_seen: Option<std::sync::Arc<Vec<ScheduleStatus>>> = None;
    loop {
        let current = status.borrow_and_update().clone();
        let project = current.project.clone().unwrap_or_else(|| label.clone());
        if labelled.as_ref() != Some(&project) {
            if let Some(old) = labelled.take() {
                clear(&old);
            }
            // The pace series under the label that the RPCs now carry.
            pace_started(&project, ceiling);
        }
        record(&project, &current, &mut attempts_seen);
        if per_schedule
            && !schedules_seen
                .as_ref()
                .is_some_and(|seen| std::sync::Arc::ptr_eq(seen, &current.schedules))
        {
            record_schedules(&project, &current.schedules);
            schedules_seen = Some(current.schedules.clone());
        }
        labelled = Some(project);
        if status.changed().await.is_err() {
            return;
        }
    }
}

/// Sets every metric of `project` from `status`.
fn record(project: &str, status: &Status, attempts_seen: &mut u64) {
    let project = project.to_owned();
    let state = &status.state;
    for name in State::NAMES {
        gauge!(STATE, PROJECT_LABEL => project.clone(), "state" => name)
            .set(if name == state.name() { 1.0 } else { 0.0 });
    }
    gauge!(STATE_ENTERED, PROJECT_LABEL => project.clone())
        .set(unix_seconds(status.state_entered_at));
    gauge!(RETRY_ATTEMPT, PROJECT_LABEL => project.clone()).set(f64::from(state.attempt()));
    for (name, count) in status.counts() {
        gauge!(SCHEDULES, PROJECT_LABEL => project.clone(), "status" => name).set(count as f64);
    }
    for (health, count) in status.health_counts() {
        gauge!(SCHEDULES_BY_HEALTH, PROJECT_LABEL => project.clone(), "health" => health.name())
            .set(count as f64);
    }
    gauge!(HELD_DELETIONS, PROJECT_LABEL => project.clone())
        .set(status.held_deletions.len() as f64);
    if let Some(at) = status.last_success {
        gauge!(LAST_SUCCESS, PROJECT_LABEL => project.clone()).set(unix_seconds(at));
    }
    let totals = &status.totals;
    for (outcome, count) in &totals.attempts {
        counter!(RECONCILE_TOTAL, PROJECT_LABEL => project.clone(), "outcome" => *outcome)
            .absolute(*count);
    }
    for ((operation, outcome), count) in &totals.operations {
        counter!(
            OPERATIONS_TOTAL,
            PROJECT_LABEL => project.clone(),
            "operation" => *operation,
            "outcome" => *outcome
        )
        .absolute(*count);
    }
    for (outcome, count) in &totals.reloads {
        counter!(CONFIG_RELOAD_TOTAL, PROJECT_LABEL => project.clone(), "outcome" => *outcome)
            .absolute(*count);
    }
    let finished = totals.attempts_finished();
    if finished > *attempts_seen {
        if let Some(took) = totals.last_attempt {
            histogram!(RECONCILE_DURATION, PROJECT_LABEL => project).record(took.as_secs_f64());
        }
        *attempts_seen = finished;
    }
}

/// Sets the series of each schedule in `schedules` that a listing showed.
fn record_schedules(project: &str, schedules: &[ScheduleStatus]) {
    for schedule in schedules {
        let Some(watch) = &schedule.watch else {
            continue;
        };
        let labels = [
            (PROJECT_LABEL, project.to_owned()),
            ("schedule", schedule.id.to_string()),
        ];
        for health in Health::ALL {
            let mut labels = labels.to_vec();
            labels.push(("health", health.name().to_owned()));
            gauge!(SCHEDULE_HEALTH, &labels).set(if health == watch.health { 1.0 } else { 0.0 });
        }
        if let Some(at) = watch.last_action {
            gauge!(SCHEDULE_LAST_ACTION, &labels).set(unix_seconds(at));
        }
        if let Some(at) = watch.next_action {
            gauge!(SCHEDULE_NEXT_ACTION, &labels).set(unix_seconds(at));
        }
    }
}

/// Drops the gauges of a project name no longer in use to 0.
fn clear(project: &str) {
    let project = project.to_owned();
    for name in State::NAMES {
        gauge!(STATE, PROJECT_LABEL => project.clone(), "state" => name).set(0.0);
    }
    gauge!(RETRY_ATTEMPT, PROJECT_LABEL => project.clone()).set(0.0);
    for state in crate::runtime::ScheduleState::ALL {
        gauge!(SCHEDULES, PROJECT_LABEL => project.clone(), "status" => state.name()).set(0.0);
    }
    for health in Health::ALL {
        gauge!(SCHEDULES_BY_HEALTH, PROJECT_LABEL => project.clone(), "health" => health.name())
            .set(0.0);
    }
    gauge!(HELD_DELETIONS, PROJECT_LABEL => project.clone()).set(0.0);
    gauge!(PACE, PROJECT_LABEL => project).set(0.0);
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
fn pace_started(project: &str, ceiling: Option<f64>) {
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

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
