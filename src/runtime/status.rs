//! What the reconciler publishes on its watch channel: the lifecycle
//! [`State`] with what probes and `/schedules` show besides it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::apply::{Effect, Report};
use crate::plan::{HoldReason, Untouched};
use crate::project::Project;
use crate::runtime::lifecycle::State;
use crate::spec::schedule_id;

/// A snapshot of the reconciler.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// The lifecycle state.
    pub state: State,
    /// When `state` was entered.
    pub state_entered_at: SystemTime,
    /// Whether a reconcile ever succeeded: readiness latches on it.
    pub ever_synced: bool,
    /// When the last reconcile succeeded.
    pub last_success: Option<SystemTime>,
    /// The project's name, once one is loaded.
    pub project: Option<String>,
    /// Bumped by every accepted reload (the first project is revision 1).
    pub revision: u64,
    /// Why the last reload was refused, until one is accepted.
    pub reload_error: Option<String>,
    /// One entry per declared schedule; shared between snapshots, so that
    /// publishing a status does not copy it.
    pub schedules: Arc<Vec<ScheduleStatus>>,
    /// Schedules of ours that the project no longer declares, whose deletion
    /// the last reconcile held back, and why.
    pub held_deletions: Arc<Vec<HeldDeletion>>,
}

/// A deletion held back by a safety rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldDeletion {
    /// The schedule id.
    pub id: String,
    /// Why it is held.
    pub reason: HoldReason,
}

impl Status {
    pub(crate) fn new(at: SystemTime) -> Self {
        Status {
            state: State::Pending,
            state_entered_at: at,
            ever_synced: false,
            last_success: None,
            project: None,
            revision: 0,
            reload_error: None,
            schedules: Arc::default(),
            held_deletions: Arc::default(),
        }
    }

    /// Ready: synced once, and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ever_synced && self.state != State::ShuttingDown
    }

    /// How many declared schedules are in each status, every status listed.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        ScheduleState::ALL
            .iter()
            .map(|s| {
                let count = self.schedules.iter().filter(|e| e.status == *s).count();
                (s.name(), count)
            })
            .collect()
    }

    /// Sets `schedules` to the declared schedules of `project`, all pending.
    pub(crate) fn declare(&mut self, project: &Project) {
        self.project = Some(project.name.clone());
        self.schedules = Arc::new(
            project
                .scheduled()
                .map(|(workflow, _)| ScheduleStatus {
                    id: schedule_id(&project.name, &workflow.id),
                    workflow: workflow.id.clone(),
                    status: ScheduleState::Pending,
                    last_error: None,
                })
                .collect(),
        );
    }

    /// Takes each declared schedule's status from a reconcile's report.
    pub(crate) fn record(&mut self, report: &Report) {
        let mut by_id: HashMap<&str, (ScheduleState, Option<String>)> = HashMap::new();
        let mut held = Vec::new();
        for outcome in &report.outcomes {
            let status = match outcome.effect {
                Effect::Failed | Effect::NotStarted => ScheduleState::Error,
                Effect::Conflict => ScheduleState::Conflict,
                Effect::PausedByOperator => ScheduleState::PausedByOperator,
                Effect::Applied | Effect::AlreadyDone => ScheduleState::InSync,
            };
            by_id.insert(outcome.step.schedule_id(), (status, outcome.error.clone()));
        }
        for untouched in &report.plan.untouched {
            let (id, status) = match untouched {
                Untouched::Unchanged { schedule_id } => (schedule_id, ScheduleState::InSync),
                Untouched::PausedByOperator { schedule_id } => {
                    (schedule_id, ScheduleState::PausedByOperator)
                }
                Untouched::Conflict { schedule_id, .. } => (schedule_id, ScheduleState::Conflict),
                Untouched::HeldDeletion { schedule_id, why } => {
                    held.push(HeldDeletion {
                        id: schedule_id.clone(),
                        reason: *why,
                    });
                    continue;
                }
            };
            by_id.insert(id, (status, None));
        }
        for entry in Arc::make_mut(&mut self.schedules) {
            if let Some((status, error)) = by_id.remove(entry.id.as_str()) {
                entry.status = status;
                entry.last_error = error;
            }
        }
        if held != *self.held_deletions {
            self.held_deletions = Arc::new(held);
        }
    }
}

/// One declared schedule, as `/schedules` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScheduleStatus {
    /// The schedule id.
    pub id: String,
    /// The workflow id.
    pub workflow: String,
    /// Where it stands.
    pub status: ScheduleState,
    /// The error of the last write, if it failed.
    pub last_error: Option<String>,
}

/// Where one declared schedule stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleState {
    /// Temporal holds what the project declares.
    InSync,
    /// Not reconciled yet since it was declared.
    Pending,
    /// Paused by an operator; the pause is kept.
    PausedByOperator,
    /// Its id is taken by a schedule without our marker.
    Conflict,
    /// The last write failed.
    Error,
}

impl ScheduleState {
    /// Every status.
    pub const ALL: [ScheduleState; 5] = [
        ScheduleState::InSync,
        ScheduleState::Pending,
        ScheduleState::PausedByOperator,
        ScheduleState::Conflict,
        ScheduleState::Error,
    ];

    /// The name that metrics and JSON use.
    pub fn name(self) -> &'static str {
        match self {
            ScheduleState::InSync => "in_sync",
            ScheduleState::Pending => "pending",
            ScheduleState::PausedByOperator => "paused_by_operator",
            ScheduleState::Conflict => "conflict",
            ScheduleState::Error => "error",
        }
    }
}
