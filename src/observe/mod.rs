//! Every metric the crate records, named in one place (PRODUCT.md §6), and
//! the functions that record them through the `metrics` facade. The library
//! installs no recorder: the host (or `serve`) does.

use std::time::{Duration, SystemTime};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

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
        HELD_DELETIONS,
        "Deletions held back by the last reconcile (incomplete listing or mass delete)"
    );
}

/// Records how many deletions the last reconcile held back.
pub fn held_deletions(count: usize) {
    gauge!(HELD_DELETIONS).set(count as f64);
}

/// Records that `state` was entered at `at`.
pub fn state_entered(state: &State, at: SystemTime) {
    for name in State::NAMES {
        gauge!(STATE, "state" => name).set(if name == state.name() { 1.0 } else { 0.0 });
    }
    gauge!(STATE_ENTERED).set(unix_seconds(at));
    gauge!(RETRY_ATTEMPT).set(f64::from(state.attempt()));
}

/// Records a finished attempt.
pub fn attempt_finished(outcome: &'static str, took: Duration) {
    counter!(RECONCILE_TOTAL, "outcome" => outcome).increment(1);
    histogram!(RECONCILE_DURATION).record(took.as_secs_f64());
}

/// Records one schedule write.
pub fn operation(operation: &'static str, ok: bool) {
    let outcome = if ok { "success" } else { "error" };
    counter!(OPERATIONS_TOTAL, "operation" => operation, "outcome" => outcome).increment(1);
}

/// Records one RPC.
pub fn rpc(rpc: &'static str, code: tonic::Code) {
    counter!(RPC_TOTAL, "rpc" => rpc, "code" => format!("{code:?}")).increment(1);
}

/// Records how many declared schedules are in each status.
pub fn schedules(counts: &[(&'static str, usize)]) {
    for (status, count) in counts {
        gauge!(SCHEDULES, "status" => *status).set(*count as f64);
    }
}

/// Records a successful reconcile at `at`.
pub fn succeeded(at: SystemTime) {
    gauge!(LAST_SUCCESS).set(unix_seconds(at));
}

/// Records a config reload.
pub fn reload(applied: bool) {
    let outcome = if applied { "applied" } else { "invalid" };
    counter!(CONFIG_RELOAD_TOTAL, "outcome" => outcome).increment(1);
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
