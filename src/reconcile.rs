//! One reconcile: list, plan, then carry out the plan's steps against a
//! [`ScheduleStore`] with bounded concurrency, each schedule with its own
//! outcome, so that one failing schedule does not stop the others.

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;

use crate::desired::{DesiredSchedule, desired};
use crate::plan::{Plan, PlanOptions, Step, plan};
use crate::project::Project;
use crate::store::{Created, PauseState, ScheduleStore, StoreError};

/// How many schedule writes run at once by default.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Options of a reconcile.
#[derive(Clone, Copy, Debug)]
pub struct ReconcileOptions {
    /// Plan options (adoption, mass deletes).
    pub plan: PlanOptions,
    /// Writes in flight at once.
    pub concurrency: usize,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            plan: PlanOptions::default(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// The outcome of one step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepOutcome {
    /// The step.
    #[serde(flatten)]
    pub step: Step,
    /// `None` when it succeeded, else the error.
    pub error: Option<String>,
}

/// What a reconcile did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The plan it carried out.
    pub plan: Plan,
    /// One outcome per step, in plan order.
    pub outcomes: Vec<StepOutcome>,
}

impl Report {
    /// Whether every step succeeded and nothing was held or in conflict.
    pub fn converged(&self) -> bool {
        use crate::plan::Untouched;
        self.outcomes.iter().all(|o| o.error.is_none())
            && self.plan.untouched.iter().all(|u| {
                matches!(
                    u,
                    Untouched::Unchanged { .. } | Untouched::PausedByOperator { .. }
                )
            })
    }
}

/// Lists, plans and applies `project`.
///
/// # Errors
///
/// A [`StoreError`] when the listing fails; nothing is written then.
pub async fn reconcile<S: ScheduleStore>(
    store: &S,
    project: &Project,
    options: ReconcileOptions,
) -> Result<Report, StoreError> {
    let wanted = desired(project);
    let observation = store.list(&project.name).await?;
    let plan = plan(&project.name, &wanted, &observation, options.plan);
    let outcomes = stream::iter(plan.steps.iter().cloned())
        .map(|step| {
            let wanted = &wanted;
            async move {
                let error = execute(store, &project.name, wanted, &step)
                    .await
                    .err()
                    .map(|e| e.to_string());
                StepOutcome { step, error }
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    Ok(Report { plan, outcomes })
}

fn find<'d>(wanted: &'d [DesiredSchedule], schedule_id: &str) -> &'d DesiredSchedule {
    wanted
        .iter()
        .find(|d| d.schedule_id == schedule_id)
        .expect("the plan only names desired schedules for creates and updates")
}

/// The pause state to write for `want`, keeping an operator's pause.
fn pause_for(want: &DesiredSchedule, keep_operator_pause: Option<&PauseState>) -> PauseState {
    match keep_operator_pause {
        Some(operator) => operator.clone(),
        None => {
            let state = want.schedule.state.clone().unwrap_or_default();
            PauseState {
                paused: state.paused,
                notes: state.notes,
            }
        }
    }
}

async fn execute<S: ScheduleStore>(
    store: &S,
    project: &str,
    wanted: &[DesiredSchedule],
    step: &Step,
) -> Result<(), StoreError> {
    match step {
        Step::Create { schedule_id } => {
            let want = find(wanted, schedule_id);
            match store.create(project, want).await? {
                Created::Created => Ok(()),
                // Taken since the listing (or the listing lagged): update it,
                // if it is ours.
                Created::AlreadyExists => update(store, project, want, false).await,
            }
        }
        Step::Update {
            schedule_id, adopt, ..
        } => update(store, project, find(wanted, schedule_id), *adopt).await,
        Step::Pause { schedule_id } => {
            let want = find(wanted, schedule_id);
            store.set_paused(schedule_id, &pause_for(want, None)).await
        }
        Step::Unpause { schedule_id } => {
            let note = "schedule-sync: enabled in the project".to_owned();
            store
                .set_paused(
                    schedule_id,
                    &PauseState {
                        paused: false,
                        notes: note,
                    },
                )
                .await
        }
        Step::Delete { schedule_id } => store.delete(schedule_id).await,
    }
}

/// Reads the schedule for its conflict token and pause, then updates it.
async fn update<S: ScheduleStore>(
    store: &S,
    project: &str,
    want: &DesiredSchedule,
    adopt: bool,
) -> Result<(), StoreError> {
    let Some(current) = store.describe(&want.schedule_id).await? else {
        // Deleted since the listing: create it again.
        return store.create(project, want).await.map(drop);
    };
    let ours = current.observed.owner.as_deref() == Some(project);
    let adoptable = adopt && current.observed.owner.is_none();
    if !(ours || adoptable) {
        return Err(StoreError {
            rpc: "DescribeSchedule",
            code: tonic::Code::AlreadyExists,
            message: format!(
                "{} exists without this project's marker; it is left alone (use --adopt to take it over)",
                want.schedule_id
            ),
        });
    }
    let operator_pause =
        (want.enabled && current.observed.paused_by_operator()).then(|| PauseState {
            paused: true,
            notes: current.observed.notes.clone(),
        });
    let pause = pause_for(want, operator_pause.as_ref());
    store
        .update(project, want, &pause, &current.conflict_token)
        .await
}
