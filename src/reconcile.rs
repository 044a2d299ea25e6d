//! One reconcile: list, plan, then carry out the plan's steps against a
//! [`ScheduleStore`] with bounded concurrency, each schedule with its own
//! outcome, so that one failing schedule does not stop the others.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;

use crate::desired::{DesiredSchedule, desired};
use crate::diff::{FieldChange, field_changes};
use crate::plan::{Plan, PlanOptions, Step, plan};
use crate::project::Project;
use crate::store::{Created, PauseState, ScheduleStore, StoreError};

/// How many schedule writes run at once by default.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Attempts of one RPC that fails with a retryable code (ResourceExhausted,
/// Unavailable, ...), with exponential backoff between them.
pub const RPC_ATTEMPTS: u32 = 5;
/// The first backoff after a retryable failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest backoff between two attempts of one RPC.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an update that lost a race is re-read and tried again.
pub const RACE_ATTEMPTS: u32 = 3;
/// How long to wait for an update to show in a read-back (the server applies
/// updates asynchronously), polled every [`VERIFY_POLL`].
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// The read-back poll interval.
pub const VERIFY_POLL: Duration = Duration::from_millis(100);

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
    /// Whether the error may heal by retrying.
    #[serde(skip)]
    pub retryable: bool,
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

/// Hears how a reconcile advances, to drive a progress bar.
pub trait Progress: Sync {
    /// The plan is made and has `steps` writes.
    fn planned(&self, steps: usize);
    /// One step finished.
    fn finished(&self, outcome: &StepOutcome);
}

/// No progress to show.
impl Progress for () {
    fn planned(&self, _: usize) {}
    fn finished(&self, _: &StepOutcome) {}
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
    reconcile_with_progress(store, project, options, &()).await
}

/// [`reconcile`], telling `progress` about each step as it finishes.
///
/// # Errors
///
/// A [`StoreError`] when the listing fails; nothing is written then.
pub async fn reconcile_with_progress<S: ScheduleStore>(
    store: &S,
    project: &Project,
    options: ReconcileOptions,
    progress: &dyn Progress,
) -> Result<Report, StoreError> {
    let wanted = desired(project);
    let plan = observe_and_plan(store, &project.name, &wanted, options).await?;
    progress.planned(plan.steps.len());
    // Steps finish in any order (a slow one must not hold the others back);
    // outcomes are put back in plan order afterwards.
    let mut outcomes: Vec<(usize, StepOutcome)> =
        stream::iter(plan.steps.iter().cloned().enumerate())
            .map(|(index, step)| {
                let wanted = &wanted;
                async move {
                    let error = execute(store, &project.name, wanted, &step).await.err();
                    let outcome = StepOutcome {
                        step,
                        retryable: error.as_ref().is_some_and(StoreError::is_retryable),
                        error: error.map(|e| e.to_string()),
                    };
                    progress.finished(&outcome);
                    (index, outcome)
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
    outcomes.sort_by_key(|(index, _)| *index);
    let outcomes = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    Ok(Report { plan, outcomes })
}

/// What `plan` shows before anything is written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preview {
    /// The plan.
    pub plan: Plan,
    /// For each update, the fields that differ from what the server holds
    /// (an update of a schedule that vanished meanwhile has none).
    pub changes: BTreeMap<String, Vec<FieldChange>>,
}

/// Lists and plans `project` without writing, and describes each schedule
/// the plan would update to name the fields that differ.
///
/// # Errors
///
/// A [`StoreError`] when the listing fails.
pub async fn preview<S: ScheduleStore>(
    store: &S,
    project: &Project,
    options: ReconcileOptions,
) -> Result<Preview, StoreError> {
    let wanted = desired(project);
    let plan = observe_and_plan(store, &project.name, &wanted, options).await?;
    let updated = plan.steps.iter().filter_map(|step| match step {
        Step::Update { schedule_id, .. } => Some(find(&wanted, schedule_id)),
        _ => None,
    });
    let changes = stream::iter(updated)
        .map(|want| async move {
            let held = with_backoff(|| store.describe(&want.schedule_id)).await?;
            let fields = held
                .map(|held| field_changes(&held.schedule, &want.schedule))
                .unwrap_or_default();
            Ok::<_, StoreError>((want.schedule_id.clone(), fields))
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(Preview { plan, changes })
}

async fn observe_and_plan<S: ScheduleStore>(
    store: &S,
    project: &str,
    wanted: &[DesiredSchedule],
    options: ReconcileOptions,
) -> Result<Plan, StoreError> {
    let mut observation = with_backoff(|| store.list(project)).await?;
    fill_fingerprints(store, project, wanted, &mut observation).await;
    Ok(plan(project, wanted, &observation, options.plan))
}

/// Without the fingerprint search attribute a listing shows no fingerprints.
/// Then each of our desired schedules is described once and compared field by
/// field with the desired one (the server stores what we send, so equality is
/// exact); a match counts as the desired fingerprint, so an unchanged project
/// still writes nothing. A failed describe leaves the fingerprint unknown,
/// which plans an update.
async fn fill_fingerprints<S: ScheduleStore>(
    store: &S,
    project: &str,
    wanted: &[DesiredSchedule],
    observation: &mut crate::plan::Observation,
) {
    let blind: Vec<usize> = observation
        .schedules
        .iter()
        .enumerate()
        .filter(|(_, o)| o.fingerprint.is_none() && o.owner.as_deref() == Some(project))
        .map(|(i, _)| i)
        .collect();
    if blind.is_empty() {
        return;
    }
    tracing::info!(
        schedules = blind.len(),
        "the listing shows no fingerprints; describing each schedule to compare \
         (register the ScheduleSyncFingerprint keyword search attribute to avoid this)"
    );
    let found: Vec<(usize, Option<crate::desired::Fingerprint>)> = stream::iter(blind)
        .map(|index| {
            let id = observation.schedules[index].schedule_id.clone();
            async move {
                let Some(want) = wanted.iter().find(|d| d.schedule_id == id) else {
                    return (index, None);
                };
                let described = with_backoff(|| store.describe(&id)).await.ok().flatten();
                let same = described.is_some_and(|d| same_schedule(&d.schedule, &want.schedule));
                (index, same.then(|| want.fingerprint.clone()))
            }
        })
        .buffer_unordered(DEFAULT_CONCURRENCY)
        .collect()
        .await;
    for (index, fingerprint) in found {
        observation.schedules[index].fingerprint = fingerprint;
    }
}

/// Whether the schedule the server holds has every managed field of `want`
/// (the paused state is the plan's business, not the fingerprint's).
fn same_schedule(
    held: &temporalio_common::protos::temporal::api::schedule::v1::Schedule,
    want: &temporalio_common::protos::temporal::api::schedule::v1::Schedule,
) -> bool {
    use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
    let start = |s: &temporalio_common::protos::temporal::api::schedule::v1::Schedule| match s
        .action
        .as_ref()
        .and_then(|a| a.action.as_ref())
    {
        Some(Action::StartWorkflow(start)) => Some((
            start.workflow_id.clone(),
            start.workflow_type.as_ref().map(|t| t.name.clone()),
            start.task_queue.as_ref().map(|q| q.name.clone()),
            start.input.as_ref().map(|i| {
                i.payloads
                    .iter()
                    .map(|p| p.data.clone())
                    .collect::<Vec<_>>()
            }),
        )),
        _ => None,
    };
    let policies = |s: &temporalio_common::protos::temporal::api::schedule::v1::Schedule| {
        let p = s.policies.unwrap_or_default();
        (
            p.overlap_policy.max(1),
            p.catchup_window,
            p.pause_on_failure,
        )
    };
    held.spec == want.spec && start(held) == start(want) && policies(held) == policies(want)
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

/// Runs `op` until it succeeds, fails with a code that retrying will not
/// heal, or [`RPC_ATTEMPTS`] are spent, backing off between attempts.
async fn with_backoff<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(error) if error.is_retryable() && attempt < RPC_ATTEMPTS => {
                tracing::debug!(%error, attempt, ?delay, "retrying a schedule RPC");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            other => return other,
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
            match with_backoff(|| store.create(project, want)).await? {
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
            let pause = pause_for(find(wanted, schedule_id), None);
            with_backoff(|| store.set_paused(schedule_id, &pause)).await
        }
        Step::Unpause { schedule_id } => {
            let note = "schedule-sync: enabled in the project".to_owned();
            let pause = PauseState {
                paused: false,
                notes: note,
            };
            with_backoff(|| store.set_paused(schedule_id, &pause)).await
        }
        Step::Delete { schedule_id } => with_backoff(|| store.delete(schedule_id)).await,
    }
}

/// Reads the schedule for its conflict token and pause, updates it, and reads
/// it back. A lost race (a stale token refused, or an update the server
/// dropped because another landed first) is re-read and tried again, up to
/// [`RACE_ATTEMPTS`] times; it is never blindly overwritten.
async fn update<S: ScheduleStore>(
    store: &S,
    project: &str,
    want: &DesiredSchedule,
    adopt: bool,
) -> Result<(), StoreError> {
    let mut last = None;
    for _ in 0..RACE_ATTEMPTS {
        let Some(current) = with_backoff(|| store.describe(&want.schedule_id)).await? else {
            // Deleted since the listing: create it again.
            return with_backoff(|| store.create(project, want)).await.map(drop);
        };
        let ours = current.observed.owner.as_deref() == Some(project);
        let adoptable = adopt && current.observed.owner.is_none();
        if !(ours || adoptable) {
            return Err(StoreError {
                rpc: "DescribeSchedule",
                code: tonic::Code::AlreadyExists,
                message: format!(
                    "{} exists without this project's marker; it is left alone \
                     (use --adopt to take it over)",
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
        let token = &current.conflict_token;
        match with_backoff(|| store.update(project, want, &pause, token)).await {
            Err(error) if error.is_conflict() => last = Some(error),
            Err(error) => return Err(error),
            Ok(()) => match read_back(store, want, token).await? {
                ReadBack::Applied => return Ok(()),
                ReadBack::Lost(error) => last = Some(error),
            },
        }
    }
    Err(last.unwrap_or_else(|| lost_race(want)))
}

enum ReadBack {
    Applied,
    Lost(StoreError),
}

fn lost_race(want: &DesiredSchedule) -> StoreError {
    StoreError {
        rpc: "UpdateSchedule",
        code: tonic::Code::FailedPrecondition,
        message: format!(
            "another writer changed {} at the same time",
            want.schedule_id
        ),
    }
}

/// Waits until the schedule's version moves past `token`, then tells whether
/// it holds our update.
async fn read_back<S: ScheduleStore>(
    store: &S,
    want: &DesiredSchedule,
    token: &[u8],
) -> Result<ReadBack, StoreError> {
    let deadline = tokio::time::Instant::now() + VERIFY_TIMEOUT;
    loop {
        let Some(now) = with_backoff(|| store.describe(&want.schedule_id)).await? else {
            return Ok(ReadBack::Lost(lost_race(want)));
        };
        if now.conflict_token != token {
            // The schedule itself, not the fingerprint attribute: Temporal
            // shows a new attribute value a moment after the new definition.
            let applied = same_schedule(&now.schedule, &want.schedule);
            return Ok(if applied {
                ReadBack::Applied
            } else {
                ReadBack::Lost(lost_race(want))
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError {
                rpc: "DescribeSchedule",
                code: tonic::Code::DeadlineExceeded,
                message: format!(
                    "the update of {} did not show within {VERIFY_TIMEOUT:?}",
                    want.schedule_id
                ),
            });
        }
        tokio::time::sleep(VERIFY_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Untouched;
    use crate::store::MemoryStore;

    fn project(files: &[&str]) -> Project {
        crate::project::test_project("foo", files)
    }

    const A: &str = "id: a\nschedule:\n  cron: \"@daily\"\n";
    const B: &str = "id: b\nschedule:\n  cron: \"@hourly\"\n";
    const C: &str = "id: c\nschedule:\n  every: 1h\n";
    const A2: &str = "id: a\nschedule:\n  cron: \"@weekly\"\n";

    #[tokio::test(start_paused = true)]
    async fn an_unchanged_project_costs_one_listing_and_zero_writes() {
        let store = MemoryStore::new();
        let first = reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(first.converged());
        assert_eq!(store.writes(), 3);
        let calls_before = store.calls().len();
        let second = reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(second.plan.steps.is_empty());
        assert_eq!(store.calls()[calls_before..], ["ListSchedules"]);
        assert_eq!(store.writes(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_listing_causes_no_error_and_no_duplicate() {
        let store = MemoryStore::new();
        store.freeze_listing();
        for _ in 0..2 {
            // The listing still shows nothing: the creates find the ids taken.
            let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
                .await
                .unwrap();
            assert!(report.converged(), "{report:#?}");
        }
        assert_eq!(store.calls_of("CreateSchedule"), 4);
        assert_eq!(
            store.calls_of("UpdateSchedule"),
            2,
            "same schedule rewritten"
        );
        store.catch_up_listing();
        store.freeze_listing();
        for _ in 0..2 {
            // The listing still shows B after its deletion.
            let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
                .await
                .unwrap();
            assert!(report.converged(), "{report:#?}");
        }
        store.catch_up_listing();
        assert!(store.get("foo.b").is_none());
        assert!(store.get("foo.a").is_some());
        let settled = reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(settled.plan.steps.is_empty(), "{settled:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_edit_made_out_of_band_is_corrected_but_an_operator_pause_is_kept() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        let wanted = store.get("foo.a").unwrap();
        store.operator_edit("foo.a", |s| {
            s.spec.as_mut().unwrap().timezone_name = "UTC".into()
        });
        store.operator_pause("foo.b", "hold off");
        let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        assert_eq!(store.get("foo.a"), Some(wanted));
        assert!(store.get("foo.b").unwrap().state.unwrap().paused);
    }

    #[tokio::test(start_paused = true)]
    async fn resource_exhausted_backs_off_exponentially_then_succeeds() {
        let store = MemoryStore::new();
        store.fail_next("CreateSchedule", tonic::Code::ResourceExhausted, 3);
        let started = tokio::time::Instant::now();
        let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        assert_eq!(started.elapsed(), Duration::from_millis(200 + 400 + 800));
        assert_eq!(store.calls_of("CreateSchedule"), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_not_retried_and_does_not_stop_the_others() {
        let store = MemoryStore::new();
        store.fail_next("CreateSchedule", tonic::Code::InvalidArgument, 1);
        let report = reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
            .await
            .unwrap();
        let failed: Vec<&StepOutcome> = report
            .outcomes
            .iter()
            .filter(|o| o.error.is_some())
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].step,
            Step::Create {
                schedule_id: "foo.a".into()
            }
        );
        assert!(store.get("foo.b").is_some() && store.get("foo.c").is_some());
        assert!(!report.converged());
        assert_eq!(store.calls_of("CreateSchedule"), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_race_is_re_read_and_retried() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        store.fail_next("UpdateSchedule", tonic::Code::FailedPrecondition, 1);
        let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        let updates = store.calls_of("UpdateSchedule");
        assert_eq!(updates, 2);
        let want = &desired(&project(&[A2]))[0];
        assert_eq!(store.get("foo.a").unwrap().spec, want.schedule.spec);
    }

    #[tokio::test(start_paused = true)]
    async fn losing_every_race_is_reported_not_forced() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        store.fail_next(
            "UpdateSchedule",
            tonic::Code::FailedPrecondition,
            RACE_ATTEMPTS as usize,
        );
        let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(!report.converged());
        assert!(
            report.outcomes[0]
                .error
                .as_deref()
                .unwrap()
                .contains("FailedPrecondition")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_operator_pause_survives_an_update() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        store.operator_pause("foo.a", "incident 7");
        let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        let state = store.get("foo.a").unwrap().state.unwrap();
        assert!(state.paused);
        assert_eq!(state.notes, "incident 7");
        let again = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
            .await
            .unwrap();
        assert_eq!(
            again.plan.untouched,
            vec![Untouched::PausedByOperator {
                schedule_id: "foo.a".into()
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_without_our_marker_is_never_written_unless_adopted() {
        let store = MemoryStore::new();
        let foreign = desired(&project(&[A2]))[0].schedule.clone();
        store.insert_unowned("foo.a", foreign.clone());
        let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        assert_eq!(store.writes(), 0);
        assert_eq!(store.get("foo.a").unwrap(), foreign);
        assert!(!report.converged());
        let mut options = ReconcileOptions::default();
        options.plan.adopt = true;
        let adopted = reconcile(&store, &project(&[A]), options).await.unwrap();
        assert!(adopted.converged(), "{adopted:#?}");
        let after = reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(after.plan.steps.is_empty(), "adopted and now ours");
    }

    #[tokio::test(start_paused = true)]
    async fn flipping_enabled_pauses_and_resumes() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        let off = "id: a\nschedule:\n  cron: \"@daily\"\n  enabled: false\n";
        reconcile(&store, &project(&[off]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(store.get("foo.a").unwrap().state.unwrap().paused);
        reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(!store.get("foo.a").unwrap().state.unwrap().paused);
    }
}
