//! Metrics: every name in one place, and one observer ([`follow`]) that
//! derives them from the reconciler's published status, through the
//! `metrics` facade. The library installs no recorder: the host (or `serve`)
//! does.

use std::time::SystemTime;

use tokio::sync::watch;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::runtime::Status;
use crate::runtime::lifecycle::State;

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

/// Gives each metric its help text and unit on the installed recorder.
pub fn describe() {
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
        HELD_DELETIONS,
        "Deletions held back by the last reconcile (incomplete listing or mass delete)"
    );
}

/// Records how many deletions the last reconcile held back.
pub fn held_deletions(count: usize) {
    gauge!(HELD_DELETIONS).set(count as f64);
}

/// Mirrors every status the reconciler publishes into the metrics, until
/// the reconciler's task ends. The runtime spawns one per reconciler: the
/// loop itself records no metric, and everything here is read from the
/// [`Status`], so the metrics say what the probes say.
///
/// Counters are set to the status's running totals. The duration histogram
/// takes the last attempt's duration each time the number of finished
/// attempts grows; two attempts that finish before the observer runs once
/// (which takes two attempts well under a millisecond apart) record one
/// duration.
pub async fn follow(mut status: watch::Receiver<Status>) {
    let mut attempts_seen = 0;
    loop {
        let current = status.borrow_and_update().clone();
        record(&current, &mut attempts_seen);
        if status.changed().await.is_err() {
            return;
        }
    }
}

/// Sets every metric from `status`.
fn record(status: &Status, attempts_seen: &mut u64) {
    let state = &status.state;
    for name in State::NAMES {
        gauge!(STATE, "state" => name).set(if name == state.name() { 1.0 } else { 0.0 });
    }
    gauge!(STATE_ENTERED).set(unix_seconds(status.state_entered_at));
    gauge!(RETRY_ATTEMPT).set(f64::from(state.attempt()));
    for (name, count) in status.counts() {
        gauge!(SCHEDULES, "status" => name).set(count as f64);
    }
    gauge!(HELD_DELETIONS).set(status.held_deletions.len() as f64);
    if let Some(at) = status.last_success {
        gauge!(LAST_SUCCESS).set(unix_seconds(at));
    }
    let totals = &status.totals;
    for (outcome, count) in &totals.attempts {
        counter!(RECONCILE_TOTAL, "outcome" => *outcome).absolute(*count);
    }
    for ((operation, outcome), count) in &totals.operations {
        counter!(OPERATIONS_TOTAL, "operation" => *operation, "outcome" => *outcome)
            .absolute(*count);
    }
    for (outcome, count) in &totals.reloads {
        counter!(CONFIG_RELOAD_TOTAL, "outcome" => *outcome).absolute(*count);
    }
    let finished = totals.attempts_finished();
    if finished > *attempts_seen {
        if let Some(took) = totals.last_attempt {
            histogram!(RECONCILE_DURATION).record(took.as_secs_f64());
        }
        *attempts_seen = finished;
    }
}

/// Records one RPC (the store calls this as each RPC ends).
pub fn rpc(rpc: &'static str, code: tonic::Code) {
    counter!(RPC_TOTAL, "rpc" => rpc, "code" => format!("{code:?}")).increment(1);
}

/// Records the pace of RPCs (the limiter calls this as it changes).
pub fn pace(requests_per_second: f64) {
    gauge!(PACE).set(requests_per_second);
}

/// Exports the pace of a reconciler that has just started: its ceiling (0
/// without one) and no throttled answer yet, so that both series exist
/// from the start.
pub fn pace_started(ceiling: Option<f64>) {
    pace(ceiling.unwrap_or(0.0));
    counter!(THROTTLED_TOTAL).increment(0);
}

/// Records one throttled answer (the limiter calls this as it comes).
pub fn throttled() {
    counter!(THROTTLED_TOTAL).increment(1);
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
