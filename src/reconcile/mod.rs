//! One reconcile: list, plan, then carry out the plan's steps against a
//! [`ScheduleStore`] with bounded concurrency, each schedule with its own
//! outcome, so that one failing schedule does not stop the others.
//!
//! Carrying out a step re-reads its schedule first (the listing may be stale)
//! and reads the result back (Temporal may answer OK to a write it did not
//! make). When Temporal stops answering altogether, no new step starts and
//! the reconcile ends at once: retrying is the lifecycle's business.
//!
//! - `calls`: every RPC goes through one retry policy, one outage breaker
//!   and (for writes) the audit log; the store paces them (see
//!   [`crate::store::Pace`]), and throttling is never an outage;
//! - `steps`: what each kind of step does, and the read-back;
//! - `fingerprints`: the describe fallback for a namespace that cannot show
//!   fingerprints in its listing;
//! - `failure`: why a step failed, as one type.

mod attributes;
mod calls;
mod failure;
mod fencing;
mod fingerprints;
mod own_ids;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;

use crate::compare::changes::{FieldChange, field_changes};
use crate::fence::WriterKey;
use crate::health::{Reads, Watch, watch_desired, watch_project};
use crate::plan::{FenceStep, Plan, PlanOptions, Step, plan};
use crate::project::Project;
use crate::spec::{CompactSchedule, DesiredProject, DesiredSchedule};
use crate::store::{Observation, ScheduleStore, StoreError};
use calls::{Outage, RequestIds};
use failure::Failure;

/// How many schedule writes run at once by default. Against a dev server
/// 64 writes in flight reach about the create rate of 128 (a cold apply of
/// 1,000 makes 94% of the server's ceiling, against 79% with 16); on a
/// rate-limited namespace the store's pace, not this, sets the rate.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// How many describes of schedules run at once: each one is a query to the
/// schedule's workflow on server 1.29, heavier for the server than a write.
const READS_IN_FLIGHT: usize = 16;
/// Attempts of one RPC that fails with a retryable code (Unavailable,
/// Internal, ...), with exponential backoff between them; throttled answers
/// are counted apart ([`THROTTLED_ATTEMPTS`]).
pub const RPC_ATTEMPTS: u32 = 5;
/// How often one RPC is sent when the server keeps throttling it (with the
/// same backoff, and at the store's pace, which slows down with every
/// throttled answer) before the step fails as throttled.
pub const THROTTLED_ATTEMPTS: u32 = 10;
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
/// RPCs in a row, across all steps, that found Temporal unreachable
/// (Unavailable, or no answer within the RPC timeout) before the reconcile
/// gives up: no new step starts, backoffs in progress end, and the reconcile
/// reports the outage as a retryable failure. The failures must also span
/// [`OUTAGE_WINDOW`]: a connection reset that fails every RPC in flight at
/// once is healed by the first retry and is no outage.
pub const OUTAGE_THRESHOLD: u32 = 5;
/// How long RPCs must have found Temporal unreachable, with no success in
/// between, before the reconcile gives up.
pub const OUTAGE_WINDOW: Duration = Duration::from_secs(3);
/// The most writes one step makes (creates and updates calling each other
/// when the schedule keeps vanishing and reappearing) before it gives up.
const MAX_WRITES_PER_STEP: u32 = 6;

/// Options of a reconcile.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
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

/// What carrying out one step found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The write was made and read back.
    Applied,
    /// Nothing was left to write: the schedule was already as wanted (or,
    /// for a delete, already gone or no longer ours).
    AlreadyDone,
    /// Right before writing, the schedule turned out not to carry our marker:
    /// it was left alone.
    Conflict,
    /// An operator paused it since the listing: the pause was kept.
    PausedByOperator,
    /// The step failed; the outcome's `error` says why.
    Failed,
    /// The step was not started, because Temporal became unreachable.
    NotStarted,
    /// The step was not started, because a newer writer took the project's
    /// fence meanwhile.
    Superseded,
}

/// The outcome of one step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepOutcome {
    /// The step.
    #[serde(flatten)]
    pub step: Step,
    /// What it found and did.
    pub effect: Effect,
    /// Set when the effect is [`Effect::Failed`] or [`Effect::NotStarted`].
    pub error: Option<String>,
    /// Whether the error may heal by retrying.
    #[serde(skip)]
    pub retryable: bool,
    /// Whether the step failed for a reason that heals by itself soon
    /// (another writer won a race for the schedule), so that reconciling
    /// again shortly may succeed with nothing changed by anyone. The
    /// runtime then reconciles again after
    /// [`FOLLOW_UP`](crate::runtime::FOLLOW_UP), periodic resync or not.
    #[serde(skip)]
    pub follow_up: bool,
}

impl StepOutcome {
    /// Whether the step left its schedule as the project wants it (or as an
    /// operator's pause wants it).
    pub fn succeeded(&self) -> bool {
        matches!(
            self.effect,
            Effect::Applied | Effect::AlreadyDone | Effect::PausedByOperator
        )
    }
}

/// What a reconcile did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The plan it carried out.
    pub plan: Plan,
    /// One outcome per step, in plan order.
    pub outcomes: Vec<StepOutcome>,
    /// How each declared schedule that the listing showed is firing, by
    /// schedule id (none when the store does not tell).
    #[serde(skip)]
    pub health: BTreeMap<String, Watch>,
}

impl Report {
    /// Whether every step succeeded and nothing was held or in conflict.
    pub fn converged(&self) -> bool {
        use crate::plan::Untouched;
        self.outcomes.iter().all(StepOutcome::succeeded)
            && self.plan.untouched.iter().all(|u| {
                matches!(
                    u,
                    Untouched::Unchanged { .. }
                        | Untouched::PausedByOperator { .. }
                        | Untouched::Ended { .. }
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

/// [`reconcile`] of the compact desired schedules of a project, as the
/// runtime keeps them: each Temporal schedule is decoded only when a step
/// writes it.
///
/// # Errors
///
/// A [`StoreError`] when the listing fails; nothing is written then.
pub async fn reconcile_desired<S: ScheduleStore>(
    store: &S,
    desired: &DesiredProject,
    options: ReconcileOptions,
) -> Result<Report, StoreError> {
    run(store, desired, options, &(), crate::fence::this_process()).await
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
    run(
        store,
        &DesiredProject::of(project),
        options,
        progress,
        crate::fence::this_process(),
    )
    .await
}

/// [`reconcile_desired`] as the writer called `name` in the fence.
async fn run<S: ScheduleStore>(
    store: &S,
    desired: &DesiredProject,
    options: ReconcileOptions,
    progress: &dyn Progress,
    name: &str,
) -> Result<Report, StoreError> {
    let apply = Apply::new(store, &desired.name, &desired.schedules, options.plan, name);
    let (observation, health) = apply
        .observe_with_health(|o| watch_desired(desired, o, std::time::SystemTime::now()))
        .await?;
    let mut plan = apply.plan_observed(&observation, options).await?;
    drop(observation);
    // The listing may be seconds old: before the first write, the fence is
    // read afresh (and claimed, when it names no newer writer), even when
    // the listing showed a peer there.
    if !plan.steps.is_empty() && matches!(plan.fence, FenceStep::Claim { .. } | FenceStep::None) {
        plan = apply.take_turn(plan, options).await?;
        apply.fence_read();
    }
    progress.planned(plan.steps.len());
    // Steps finish in any order (a slow one must not hold the others back);
    // outcomes are put back in plan order afterwards.
    let apply = &apply;
    let concurrency = options.concurrency.max(1);
    apply.expect_steps(plan.steps.len());
    let steps = stream::iter(plan.steps.clone().into_iter().enumerate())
        .map(|(index, step)| async move {
            let outcome = apply.step(step).await;
            progress.finished(&outcome);
            (index, outcome)
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<(usize, StepOutcome)>>();
    // The fence is read again beside the steps while they run.
    let mut outcomes = tokio::select! {
        biased;
        outcomes = steps => outcomes,
        never = apply.watch_fence() => match never {},
    };
    outcomes.sort_by_key(|(index, _)| *index);
    let outcomes = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    if let Some(newer) = apply.newer_writer_seen() {
        // Found while writing: the steps not yet started were left to it.
        plan.fence = FenceStep::Superseded { by: newer };
    }
    Ok(Report {
        plan,
        outcomes,
        health,
    })
}

/// What `status` shows: the plan of `project` (what apply would do, so
/// where each schedule stands) and how each schedule fires, from one
/// listing, without writing and without describing anything.
///
/// # Errors
///
/// A [`StoreError`] when the listing fails.
pub async fn survey<S: ScheduleStore>(
    store: &S,
    project: &Project,
    options: ReconcileOptions,
) -> Result<(Plan, BTreeMap<String, Watch>), StoreError> {
    let desired = DesiredProject::of(project);
    let name = crate::fence::this_process();
    let apply = Apply::new(store, &desired.name, &desired.schedules, options.plan, name);
    apply.survey(project, options).await
}

/// Describes up to `budget` of the schedules in `health` (taking turns
/// with the reconciles before, see [`Reads::pick`]) for what only a
/// Describe shows, and corrects `health` with it. Each Describe waits on
/// the store's pace like any RPC; a failed one ends the reads of this
/// reconcile and fails nothing else.
pub async fn read_describes<S: ScheduleStore>(
    store: &S,
    health: &mut BTreeMap<String, Watch>,
    reads: &mut Reads,
    budget: usize,
) {
    for id in reads.pick(health, budget) {
        match store.describe(&id).await {
            Ok(described) => {
                let counters = described.and_then(|d| d.observed.activity?.counters);
                if let Some(counters) = counters {
                    reads.record(&id, counters);
                }
            }
            Err(error) => {
                tracing::debug!(%error, schedule = %id, "a describe for health failed");
                break;
            }
        }
    }
    reads.correct(health);
}

/// What `plan` shows before anything is written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preview {
    /// The plan.
    pub plan: Plan,
    /// For each update, the fields that differ from what the server holds
    /// (an update of a schedule that vanished meanwhile has none).
    pub changes: BTreeMap<String, Vec<FieldChange>>,
    /// How each declared schedule that the listing showed is firing, by
    /// schedule id.
    #[serde(skip)]
    pub health: BTreeMap<String, Watch>,
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
    let desired = DesiredProject::of(project);
    let name = crate::fence::this_process();
    let apply = Apply::new(store, &desired.name, &desired.schedules, options.plan, name);
    let (plan, health) = apply.survey(project, options).await?;
    let apply = &apply;
    let updated = plan.steps.iter().filter_map(|step| match step {
        Step::Update { schedule_id, .. } => apply
            .wanted
            .get(schedule_id.as_str())
            .map(|want| want.desired()),
        _ => None,
    });
    let changes = stream::iter(updated)
        .map(|want| async move {
            let held = apply.retrying(|| store.describe(&want.schedule_id)).await?;
            let fields = held
                .map(|held| field_changes(&held.schedule, &want.schedule))
                .unwrap_or_default();
            Ok::<_, StoreError>((want.schedule_id.clone(), fields))
        })
        .buffer_unordered(options.concurrency.clamp(1, READS_IN_FLIGHT))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(Preview {
        plan,
        changes,
        health,
    })
}

/// One reconcile of one project against one store.
struct Apply<'a, S> {
    store: &'a S,
    project: &'a str,
    wanted: HashMap<&'a str, &'a CompactSchedule>,
    ordered: &'a [CompactSchedule],
    outage: Outage,
    /// Our rank among the project's writers.
    writer: WriterKey,
    /// Our name in the fence: this process, unless a test says otherwise.
    name: &'a str,
    /// Write even when a newer writer holds the fence.
    force: bool,
    /// Adopt a schedule without our marker that a create finds in the way
    /// (the listing lagged behind its making), as `--adopt` asks.
    adopt: bool,
    watch: fencing::FenceWatch,
}

impl<'a, S: ScheduleStore> Apply<'a, S> {
    fn new(
        store: &'a S,
        project: &'a str,
        wanted: &'a [CompactSchedule],
        options: PlanOptions,
        name: &'a str,
    ) -> Self {
        Apply {
            store,
            project,
            wanted: wanted.iter().map(|d| (&*d.schedule_id, d)).collect(),
            ordered: wanted,
            outage: Outage::default(),
            writer: options.writer,
            name,
            force: options.force,
            adopt: options.adopt,
            watch: fencing::FenceWatch::default(),
        }
    }

    /// Lists the project's schedules and plans the steps.
    async fn observe_and_plan(&self, options: ReconcileOptions) -> Result<Plan, StoreError> {
        let observation = self.observe().await?;
        self.plan_observed(&observation, options).await
    }

    /// Plans `project` from one listing, and tells from it how each
    /// schedule `project` declares fires (the listing is dropped here).
    async fn survey(
        &self,
        project: &Project,
        options: ReconcileOptions,
    ) -> Result<(Plan, BTreeMap<String, Watch>), StoreError> {
        let (observation, health) = self
            .observe_with_health(|o| watch_project(project, o, std::time::SystemTime::now()))
            .await?;
        let plan = self.plan_observed(&observation, options).await?;
        Ok((plan, health))
    }

    /// Lists `project`'s schedules, and tells from the listing how each of
    /// them fires.
    async fn observe_with_health(
        &self,
        watch: impl FnOnce(&Observation) -> BTreeMap<String, Watch>,
    ) -> Result<(Observation, BTreeMap<String, Watch>), StoreError> {
        let observation = self.observe().await?;
        let health = watch(&observation);
        Ok((observation, health))
    }

    /// The listing, with what it leaves out filled in.
    async fn observe(&self) -> Result<Observation, StoreError> {
        let mut observation = self.retrying(|| self.store.list(self.project)).await?;
        self.fill_fingerprints(&mut observation).await;
        self.observe_own_ids(&mut observation).await?;
        Ok(observation)
    }

    /// The plan of `observation`.
    async fn plan_observed(
        &self,
        observation: &Observation,
        options: ReconcileOptions,
    ) -> Result<Plan, StoreError> {
        let mut options = options.plan;
        // Schedules whose end has passed are not created again.
        options.now_seconds = options.now_seconds.or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
        });
        let plan = plan(self.project, self.ordered, observation, options);
        self.check_search_attributes(&plan).await?;
        Ok(plan)
    }

    /// Carries out one step; never fails, the outcome says how it went.
    async fn step(&self, step: Step) -> StepOutcome {
        if let Some(last) = self.outage.gone() {
            return StepOutcome {
                step,
                effect: Effect::NotStarted,
                error: Some(Failure::Unreachable { last }.to_string()),
                retryable: true,
                follow_up: false,
            };
        }
        if let Some(newer) = self.newer_writer() {
            return StepOutcome {
                step,
                effect: Effect::Superseded,
                error: Some(format!("left to a newer writer: {newer}")),
                retryable: false,
                follow_up: false,
            };
        }
        let (effect, error, retryable, follow_up) = match self.execute(&step).await {
            Ok(effect) => (effect, None, false, false),
            Err(failure) => {
                let failure = self.outage.explain(failure);
                (
                    Effect::Failed,
                    Some(failure.to_string()),
                    failure.is_retryable(),
                    failure.heals_soon(),
                )
            }
        };
        StepOutcome {
            step,
            effect,
            error,
            retryable,
            follow_up,
        }
    }

    /// The whole desired schedule a step names, decoded for the write.
    fn want(&self, schedule_id: &str) -> DesiredSchedule {
        self.wanted
            .get(schedule_id)
            .expect("the plan only names desired schedules for creates, updates and pauses")
            .desired()
    }

    async fn execute(&self, step: &Step) -> Result<Effect, Failure> {
        let mut ids = RequestIds::new();
        match step {
            Step::Create { schedule_id } => self.create(&self.want(schedule_id), &mut ids).await,
            Step::Update {
                schedule_id, adopt, ..
            } => self.update(&self.want(schedule_id), *adopt, &mut ids).await,
            Step::Pause { schedule_id } | Step::Unpause { schedule_id } => {
                self.set_paused(&self.want(schedule_id), &mut ids).await
            }
            Step::Delete { schedule_id } => self.delete(schedule_id).await,
        }
    }
}
