//! The reconciler's metrics: one observer per reconciler that follows its
//! published status and sets every gauge and counter from it, under the
//! names of [`crate::telemetry`].

use tokio::sync::watch;

use metrics::{counter, gauge, histogram};

use super::lifecycle::State;
use super::{ScheduleStatus, Status};
use crate::health::Health;
use crate::telemetry::{
    CONFIG_RELOAD_TOTAL, HELD_DELETIONS, LAST_SUCCESS, OPERATIONS_TOTAL, PACE, PROJECT_LABEL,
    RECONCILE_DURATION, RECONCILE_TOTAL, RETRY_ATTEMPT, SCHEDULE_HEALTH, SCHEDULE_LAST_ACTION,
    SCHEDULE_NEXT_ACTION, SCHEDULES, SCHEDULES_BY_HEALTH, STATE, STATE_ENTERED, pace_started,
    unix_seconds,
};

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
    for state in super::ScheduleState::ALL {
        gauge!(SCHEDULES, PROJECT_LABEL => project.clone(), "status" => state.name()).set(0.0);
    }
    for health in Health::ALL {
        gauge!(SCHEDULES_BY_HEALTH, PROJECT_LABEL => project.clone(), "health" => health.name())
            .set(0.0);
    }
    gauge!(HELD_DELETIONS, PROJECT_LABEL => project.clone()).set(0.0);
    gauge!(PACE, PROJECT_LABEL => project).set(0.0);
}
