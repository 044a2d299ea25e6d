//! What the reconciler publishes on its watch channel: the lifecycle
//! [`State`] with what probes and `/schedules` show besides it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::fence::{Writer, WriterKey};
use crate::health::{Health, Watch};
use crate::plan::{HoldReason, Untouched};
use crate::reconcile::{Effect, Report};
use crate::runtime::lifecycle::State;
use crate::spec::DesiredProject;

/// A snapshot of the reconciler, as its watch channel publishes it. Computed
/// in one place, `Status::of`, from the lifecycle state and what the run
/// loop has recorded (its `Record`): the probes, the metrics observer and the
/// host all read this, and nothing else.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
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
    /// Running totals since the start, which metrics mirror.
    pub totals: Totals,
    /// This reconciler's rank among the project's writers.
    pub writer: WriterKey,
    /// The newer writer of the project that the last reconcile gave way to.
    pub superseded_by: Option<Writer>,
}

/// Counts since the reconciler started.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Totals {
    /// Finished attempts by outcome: `success`, `retryable_error`,
    /// `fatal_error`, `timeout`.
    pub attempts: BTreeMap<&'static str, u64>,
    /// How long the last finished attempt took.
    pub last_attempt: Option<Duration>,
    /// Schedule writes by operation and outcome (`success`, `error`).
    pub operations: BTreeMap<(&'static str, &'static str), u64>,
    /// Reloads by outcome: `applied`, `invalid`.
    pub reloads: BTreeMap<&'static str, u64>,
}

impl Totals {
    /// How many attempts finished.
    pub fn attempts_finished(&self) -> u64 {
        self.attempts.values().sum()
    }
}

/// What the run loop records besides the lifecycle state: the facts a
/// [`Status`] is computed from.
#[derive(Clone, Debug, Default)]
pub(crate) struct Record {
    pub(crate) ever_synced: bool,
    pub(crate) last_success: Option<SystemTime>,
    pub(crate) revision: u64,
    pub(crate) reload_error: Option<String>,
    /// The project being reconciled.
    pub(crate) project: Option<Arc<DesiredProject>>,
    /// What the last reconcile of that project left.
    pub(crate) last: Option<Reconciled>,
    pub(crate) totals: Totals,
    /// Our rank among the project's writers.
    pub(crate) writer: WriterKey,
}

/// What the run loop keeps of the last report of a reconcile: the status it
/// gives each declared schedule, and what decides when the next reconcile
/// comes. The report itself is dropped: at 100,000 schedules its plan (a
/// copy of every id) and its health map (a copy of every id and of what the
/// statuses hold) would hold about as much as the statuses.
#[derive(Clone, Debug)]
pub(crate) struct Reconciled {
    schedules: Arc<Vec<ScheduleStatus>>,
    held: Arc<Vec<HeldDeletion>>,
    /// The newer writer of the project that the reconcile gave way to.
    pub(crate) superseded_by: Option<Writer>,
    /// Whether a step lost a race to another writer, and is tried again
    /// once that writer is done.
    pub(crate) follow_up: bool,
}

impl Reconciled {
    /// What `report`, of a reconcile of `project`, leaves.
    pub(crate) fn of(project: Option<&DesiredProject>, report: &Report) -> Self {
        let (schedules, held) = schedule_statuses(project, Some(report));
        Reconciled {
            schedules: Arc::new(schedules),
            held: Arc::new(held),
            superseded_by: report.plan.superseded_by().cloned(),
            follow_up: report.outcomes.iter().any(|o| o.follow_up),
        }
    }
}

/// A deletion held back by a safety rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HeldDeletion {
    /// The schedule id.
    pub id: String,
    /// Why it is held.
    pub reason: HoldReason,
}

/// The per-schedule part of a status before a reconcile of the project
/// reported (every schedule pending), kept by the run loop and recomputed
/// only when the project changes, since a project may declare thousands of
/// schedules. Once a reconcile reported, its [`Reconciled`] holds them.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScheduleView {
    project: Option<Arc<DesiredProject>>,
    schedules: Arc<Vec<ScheduleStatus>>,
}

impl ScheduleView {
    fn of(&mut self, record: &Record) -> (Arc<Vec<ScheduleStatus>>, Arc<Vec<HeldDeletion>>) {
        if let Some(last) = &record.last {
            // The pending statuses are not needed again for this project.
            *self = ScheduleView::default();
            return (last.schedules.clone(), last.held.clone());
        }
        if !same(&self.project, &record.project) {
            let (schedules, _) = schedule_statuses(record.project.as_deref(), None);
            *self = ScheduleView {
                project: record.project.clone(),
                schedules: Arc::new(schedules),
            };
        }
        (self.schedules.clone(), Arc::default())
    }
}

/// Whether two optional shared values are the same one.
fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

impl Status {
    /// The status of a reconciler that has just started, with `project`
    /// when the host handed one over (its schedules are then pending).
    pub(crate) fn starting(at: SystemTime, project: Option<Arc<DesiredProject>>) -> Status {
        let record = Record {
            revision: u64::from(project.is_some()),
            project,
            ..Record::default()
        };
        Status::of(&State::Pending, at, &record, &mut ScheduleView::default())
    }

    /// The status of a reconciler in `state` (entered at `entered`) with
    /// `record`: the one place a status is made.
    pub(crate) fn of(
        state: &State,
        entered: SystemTime,
        record: &Record,
        view: &mut ScheduleView,
    ) -> Status {
        let (schedules, held_deletions) = view.of(record);
        Status {
            state: state.clone(),
            state_entered_at: entered,
            ever_synced: record.ever_synced,
            last_success: record.last_success,
            project: record.project.as_ref().map(|p| p.name.clone()),
            revision: record.revision,
            reload_error: record.reload_error.clone(),
            schedules,
            held_deletions,
            totals: record.totals.clone(),
            writer: record.writer,
            superseded_by: record
                .last
                .as_ref()
                .and_then(|last| last.superseded_by.clone()),
        }
    }

    /// Ready: synced once, and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ever_synced && self.state != State::ShuttingDown
    }

    /// How many declared schedules have each health, every health listed
    /// (schedules no listing has shown yet are in none).
    pub fn health_counts(&self) -> Vec<(Health, usize)> {
        crate::health::counts(
            self.schedules
                .iter()
                .filter_map(|s| s.watch.as_ref().map(|w| &w.health)),
        )
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
}

/// Each declared schedule of `project` with its status in `report` (pending
/// when the report does not name it), and the deletions `report` held.
fn schedule_statuses(
    project: Option<&DesiredProject>,
    report: Option<&Report>,
) -> (Vec<ScheduleStatus>, Vec<HeldDeletion>) {
    let mut by_id: HashMap<&str, (ScheduleState, Option<String>)> = HashMap::new();
    let mut held = Vec::new();
    for outcome in report.iter().flat_map(|r| &r.outcomes) {
        let status = match outcome.effect {
            Effect::Failed | Effect::NotStarted => ScheduleState::Error,
            Effect::Conflict => ScheduleState::Conflict,
            Effect::PausedByOperator => ScheduleState::PausedByOperator,
            Effect::Superseded => ScheduleState::Superseded,
            Effect::Applied | Effect::AlreadyDone => ScheduleState::InSync,
        };
        by_id.insert(outcome.step.schedule_id(), (status, outcome.error.clone()));
    }
    for untouched in report.iter().flat_map(|r| &r.plan.untouched) {
        let (id, status) = match untouched {
            Untouched::Unchanged { schedule_id } | Untouched::Ended { schedule_id } => {
                (schedule_id, ScheduleState::InSync)
            }
            Untouched::PausedByOperator { schedule_id } => {
                (schedule_id, ScheduleState::PausedByOperator)
            }
            Untouched::Conflict { schedule_id, .. } => (schedule_id, ScheduleState::Conflict),
            Untouched::Superseded { schedule_id, .. } => (schedule_id, ScheduleState::Superseded),
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
    let schedules = project
        .iter()
        .flat_map(|p| &p.schedules)
        .map(|want| {
            let (status, last_error) = by_id
                .remove(&*want.schedule_id)
                .unwrap_or((ScheduleState::Pending, None));
            let watch = report
                .and_then(|r| r.health.get(&*want.schedule_id))
                .copied();
            ScheduleStatus {
                id: want.schedule_id.clone(),
                workflow: want.workflow.clone(),
                status,
                last_error,
                watch,
            }
        })
        .collect();
    (schedules, held)
}

/// One declared schedule, as `/schedules` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ScheduleStatus {
    /// The schedule id (shared with the desired schedule's).
    #[serde(serialize_with = "shared_text")]
    pub id: Arc<str>,
    /// The workflow id (shared as the schedule id is).
    #[serde(serialize_with = "shared_text")]
    pub workflow: Arc<str>,
    /// Where it stands.
    pub status: ScheduleState,
    /// The error of the last write, if it failed.
    pub last_error: Option<String>,
    /// How it fires (`health`, `last_action`, `next_action`, `running`,
    /// `missed`), as the last reconcile's listing showed it; absent until a
    /// listing shows the schedule.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
}

/// Serializes a shared text as the string it is.
fn shared_text<S: serde::Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(text)
}

/// Where one declared schedule stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScheduleState {
    /// Temporal holds what the project declares.
    InSync,
    /// Not reconciled yet since it was declared.
    Pending,
    /// Paused by an operator; the pause is kept.
    PausedByOperator,
    /// Its id is taken by a schedule without our marker.
    Conflict,
    /// A newer writer of the project (a newer version, or a newer replica
    /// during a rolling deploy) holds the project's fence, and this writer's
    /// change to it was left undone.
    Superseded,
    /// The last write failed.
    Error,
}

impl ScheduleState {
    /// Every status.
    pub const ALL: [ScheduleState; 6] = [
        ScheduleState::InSync,
        ScheduleState::Pending,
        ScheduleState::PausedByOperator,
        ScheduleState::Conflict,
        ScheduleState::Superseded,
        ScheduleState::Error,
    ];

    /// The name that metrics and JSON use.
    pub fn name(self) -> &'static str {
        match self {
            ScheduleState::InSync => "in_sync",
            ScheduleState::Pending => "pending",
            ScheduleState::PausedByOperator => "paused_by_operator",
            ScheduleState::Conflict => "conflict",
            ScheduleState::Superseded => "superseded",
            ScheduleState::Error => "error",
        }
    }
}
