//! One reconcile: list, plan, then carry out the plan's steps against a
//! [`ScheduleStore`] with bounded concurrency, each schedule with its own
//! outcome, so that one failing schedule does not stop the others.
//!
//! Carrying out a step re-reads its schedule first (the listing may be stale)
//! and reads the result back (Temporal may answer OK to a write it did not
//! make). When Temporal stops answering altogether, no new step starts and
//! the reconcile ends at once: retrying is the lifecycle's business.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::plan::changes::{FieldChange, field_changes};
use crate::plan::{Plan, PlanOptions, Step, plan};
use crate::project::Project;
use crate::spec::{DesiredSchedule, desired};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::store::{Created, Described, PauseState, ScheduleStore, StoreError};

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
}

impl Report {
    /// Whether every step succeeded and nothing was held or in conflict.
    pub fn converged(&self) -> bool {
        use crate::plan::Untouched;
        self.outcomes.iter().all(StepOutcome::succeeded)
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
    let apply = Apply::new(store, &project.name, &wanted);
    let plan = apply.observe_and_plan(options).await?;
    progress.planned(plan.steps.len());
    // Steps finish in any order (a slow one must not hold the others back);
    // outcomes are put back in plan order afterwards.
    let apply = &apply;
    let mut outcomes: Vec<(usize, StepOutcome)> =
        stream::iter(plan.steps.clone().into_iter().enumerate())
            .map(|(index, step)| async move {
                let outcome = apply.step(step).await;
                progress.finished(&outcome);
                (index, outcome)
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
    let apply = Apply::new(store, &project.name, &wanted);
    let plan = apply.observe_and_plan(options).await?;
    let apply = &apply;
    let updated = plan.steps.iter().filter_map(|step| match step {
        Step::Update { schedule_id, .. } => apply.wanted.get(schedule_id.as_str()).copied(),
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
        .buffer_unordered(options.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(Preview { plan, changes })
}

/// Notices that Temporal has gone away: [`OUTAGE_THRESHOLD`] RPCs in a row
/// that found it unreachable, with no success between them, from any step.
#[derive(Default)]
struct Outage {
    in_a_row: AtomicU32,
    /// When the current run of failures began.
    since: Mutex<Option<tokio::time::Instant>>,
    last: Mutex<Option<StoreError>>,
    down: CancellationToken,
}

impl Outage {
    fn record<T>(&self, result: &Result<T, StoreError>) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Err(error) if error.is_unreachable() => {
                let now = tokio::time::Instant::now();
                let began = *since.get_or_insert(now);
                let count = self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
                let long_enough = now.duration_since(began) >= OUTAGE_WINDOW;
                if count >= OUTAGE_THRESHOLD && long_enough && !self.down.is_cancelled() {
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
                    tracing::warn!(
                        %error,
                        rpcs = count,
                        "Temporal is unreachable; no new schedule write starts in this reconcile"
                    );
                    self.down.cancel();
                }
            }
            _ => {
                self.in_a_row.store(0, Ordering::SeqCst);
                *since = None;
            }
        }
    }

    /// The error of a step that cannot go on because Temporal is away.
    fn error(&self) -> StoreError {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        StoreError {
            rpc: last.as_ref().map_or("ListSchedules", |l| l.rpc),
            code: tonic::Code::Unavailable,
            message: format!(
                "Temporal became unreachable during the reconcile ({OUTAGE_THRESHOLD} RPCs in a \
                 row failed{})",
                last.map(|l| format!(", the last with: {}", l.message))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Request ids of one step: fresh for each write the step means to make,
/// repeated only when that same write is retried.
struct RequestIds {
    nonce: String,
    made: u32,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            nonce: format!("{:032x}", fastrand::u128(..)),
            made: 0,
        }
    }

    fn next(&mut self, operation: &str) -> String {
        self.made += 1;
        format!("schedule-sync-{operation}-{}-{}", self.nonce, self.made)
    }
}

/// One reconcile of one project against one store.
struct Apply<'a, S> {
    store: &'a S,
    project: &'a str,
    wanted: HashMap<&'a str, &'a DesiredSchedule>,
    ordered: &'a [DesiredSchedule],
    outage: Outage,
}

impl<'a, S: ScheduleStore> Apply<'a, S> {
    fn new(store: &'a S, project: &'a str, wanted: &'a [DesiredSchedule]) -> Self {
        Apply {
            store,
            project,
            wanted: wanted.iter().map(|d| (d.schedule_id.as_str(), d)).collect(),
            ordered: wanted,
            outage: Outage::default(),
        }
    }

    async fn observe_and_plan(&self, options: ReconcileOptions) -> Result<Plan, StoreError> {
        let mut observation = self.retrying(|| self.store.list(self.project)).await?;
        self.fill_fingerprints(&mut observation).await;
        Ok(plan(self.project, self.ordered, &observation, options.plan))
    }

    /// Without the fingerprint search attribute a listing shows no
    /// fingerprints. Then each of our desired schedules is described once and
    /// compared field by field with the desired one (the server stores what
    /// we send, so equality is exact); a match counts as the desired
    /// fingerprint, so an unchanged project still writes nothing. A failed
    /// describe leaves the fingerprint unknown, which plans an update.
    async fn fill_fingerprints(&self, observation: &mut crate::store::Observation) {
        let blind: Vec<(usize, String)> = observation
            .schedules
            .iter()
            .enumerate()
            .filter(|(_, o)| o.fingerprint.is_none() && o.owner.as_deref() == Some(self.project))
            .filter(|(_, o)| self.wanted.contains_key(o.schedule_id.as_str()))
            .map(|(i, o)| (i, o.schedule_id.clone()))
            .collect();
        if blind.is_empty() {
            return;
        }
        tracing::info!(
            schedules = blind.len(),
            "the listing shows no fingerprints; describing each schedule to compare \
             (register the ScheduleSyncFingerprint keyword search attribute to avoid this)"
        );
        let found: Vec<(usize, bool)> = stream::iter(blind)
            .map(|(index, id)| async move {
                let want = self.want(&id);
                let described = self.describe(&id).await.ok().flatten();
                let same = described.is_some_and(|d| same_schedule(&d.schedule, &want.schedule));
                (index, same)
            })
            .buffer_unordered(DEFAULT_CONCURRENCY)
            .collect()
            .await;
        for (index, same) in found {
            let observed = &mut observation.schedules[index];
            if same {
                observed.fingerprint = self
                    .wanted
                    .get(observed.schedule_id.as_str())
                    .map(|w| w.fingerprint.clone());
            }
        }
    }

    /// Runs `op` until it succeeds, fails with a code that retrying will not
    /// heal, or [`RPC_ATTEMPTS`] are spent, backing off between attempts. Once
    /// Temporal is found unreachable, nothing more is tried.
    async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            if self.outage.down.is_cancelled() {
                return Err(self.outage.error());
            }
            let result = op().await;
            self.outage.record(&result);
            match result {
                Err(error) if error.is_retryable() && attempt < RPC_ATTEMPTS => {
                    tracing::debug!(%error, attempt, ?delay, "retrying a schedule RPC");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.outage.down.cancelled() => return Err(self.outage.error()),
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// [`Apply::retrying`] for a write, each attempt logged at INFO: the
    /// audit trail of every write sent to Temporal.
    async fn write<T, F, Fut>(
        &self,
        operation: &'static str,
        schedule_id: &str,
        request_id: &str,
        mut op: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.retrying(|| {
            let call = op();
            async move {
                let result = call.await;
                let outcome = match &result {
                    Ok(_) => "ok".to_owned(),
                    Err(error) => format!("{:?}", error.code),
                };
                tracing::info!(
                    target: "schedule_sync::audit",
                    project = self.project,
                    schedule_id,
                    operation,
                    request_id,
                    outcome,
                    "schedule write"
                );
                result
            }
        })
        .await
    }

    /// Carries out one step; never fails, the outcome says how it went.
    async fn step(&self, step: Step) -> StepOutcome {
        if self.outage.down.is_cancelled() {
            return StepOutcome {
                step,
                effect: Effect::NotStarted,
                error: Some(self.outage.error().to_string()),
                retryable: true,
            };
        }
        let (effect, error, retryable) = match self.execute(&step).await {
            Ok(effect) => (effect, None, false),
            Err(error) => (
                Effect::Failed,
                Some(error.to_string()),
                error.is_retryable(),
            ),
        };
        StepOutcome {
            step,
            effect,
            error,
            retryable,
        }
    }

    fn want(&self, schedule_id: &str) -> &'a DesiredSchedule {
        self.wanted
            .get(schedule_id)
            .copied()
            .expect("the plan only names desired schedules for creates, updates and pauses")
    }

    async fn execute(&self, step: &Step) -> Result<Effect, StoreError> {
        let mut ids = RequestIds::new();
        match step {
            Step::Create { schedule_id } => self.create(self.want(schedule_id), &mut ids).await,
            Step::Update {
                schedule_id, adopt, ..
            } => self.update(self.want(schedule_id), *adopt, &mut ids).await,
            Step::Pause { schedule_id } | Step::Unpause { schedule_id } => {
                self.set_paused(self.want(schedule_id), &mut ids).await
            }
            Step::Delete { schedule_id } => self.delete(schedule_id).await,
        }
    }

    fn describe(
        &self,
        schedule_id: &str,
    ) -> impl Future<Output = Result<Option<Described>, StoreError>> {
        self.retrying(move || self.store.describe(schedule_id))
    }

    /// [`Apply::create`] behind a pointer, as the create and update paths
    /// call each other.
    fn create_boxed<'b>(
        &'b self,
        want: &'b DesiredSchedule,
        ids: &'b mut RequestIds,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Effect, StoreError>> + Send + 'b>> {
        if ids.made >= MAX_WRITES_PER_STEP {
            return Box::pin(std::future::ready(Err(churning(want))));
        }
        Box::pin(self.create(want, ids))
    }

    /// [`Apply::update`] behind a pointer.
    fn update_boxed<'b>(
        &'b self,
        want: &'b DesiredSchedule,
        adopt: bool,
        ids: &'b mut RequestIds,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Effect, StoreError>> + Send + 'b>> {
        if ids.made >= MAX_WRITES_PER_STEP {
            return Box::pin(std::future::ready(Err(churning(want))));
        }
        Box::pin(self.update(want, adopt, ids))
    }

    /// Creates `want`. A create that was sent more than once (a retry after
    /// a failed or lost answer) is read back: the server answers a request
    /// id it has seen with OK, whether or not the schedule still exists (it
    /// remembers request ids after a delete). A create that left no schedule
    /// is made again with a fresh request id, once. A create answered OK on
    /// its first sending carried a request id never sent before, so its OK
    /// is a real create and costs no read-back.
    async fn create(
        &self,
        want: &DesiredSchedule,
        ids: &mut RequestIds,
    ) -> Result<Effect, StoreError> {
        let pause = pause_for(want, None);
        let none = HashMap::new();
        for _ in 0..2 {
            let request_id = ids.next("create");
            let mut sent = 0;
            let created = self
                .write("create", &want.schedule_id, &request_id, || {
                    sent += 1;
                    self.store
                        .create(self.project, want, &pause, &none, &request_id)
                })
                .await?;
            if created == Created::AlreadyExists {
                // Taken since the listing (or the listing lagged): update it,
                // if it is ours.
                return self.update_boxed(want, false, ids).await;
            }
            if sent == 1 {
                return Ok(Effect::Applied);
            }
            match self.describe(&want.schedule_id).await? {
                Some(held) if held.observed.owner.as_deref() == Some(self.project) => {
                    return Ok(Effect::Applied);
                }
                Some(_) => return Ok(Effect::Conflict),
                None => tracing::warn!(
                    schedule_id = want.schedule_id,
                    "Temporal answered the create with OK but holds no such schedule; creating it again"
                ),
            }
        }
        Err(StoreError {
            rpc: "CreateSchedule",
            code: tonic::Code::Internal,
            message: format!(
                "Temporal answered OK to creating {} twice, but holds no such schedule",
                want.schedule_id
            ),
        })
    }

    /// Reads the schedule for its conflict token and pause, updates it, and
    /// reads it back. A lost race (a stale token refused, or an update the
    /// server dropped because another landed first) is re-read and tried
    /// again, up to [`RACE_ATTEMPTS`] times; it is never blindly overwritten.
    /// An adoption whose marker the server did not store (Temporal 1.29 sets
    /// a memo only on create) re-creates the schedule with it.
    async fn update(
        &self,
        want: &DesiredSchedule,
        adopt: bool,
        ids: &mut RequestIds,
    ) -> Result<Effect, StoreError> {
        let mut last = None;
        for _ in 0..RACE_ATTEMPTS {
            let Some(current) = self.describe(&want.schedule_id).await? else {
                // Deleted since the listing: create it again.
                return self.create_boxed(want, ids).await;
            };
            let ours = current.observed.owner.as_deref() == Some(self.project);
            let adoptable = adopt && current.observed.owner.is_none();
            if !(ours || adoptable) {
                return Ok(Effect::Conflict);
            }
            let operator_pause = want.enabled && current.observed.paused_by_operator();
            let pause = pause_for(
                want,
                operator_pause.then(|| PauseState {
                    paused: true,
                    notes: current.observed.notes.clone(),
                }),
            );
            if ours && holds(&current, want, &pause) {
                return Ok(Effect::AlreadyDone);
            }
            let request_id = ids.next("update");
            let written = self
                .write("update", &want.schedule_id, &request_id, || {
                    self.store
                        .update(self.project, want, &pause, &current, &request_id)
                })
                .await;
            let kept_pause = if operator_pause {
                Effect::PausedByOperator
            } else {
                Effect::Applied
            };
            match written {
                // A lost race, or deleted since the describe: read again.
                Err(error) if error.is_conflict() || error.code == tonic::Code::NotFound => {
                    last = Some(error);
                }
                Err(error) => return Err(error),
                Ok(()) => match self.read_back(want, &current.conflict_token).await? {
                    ReadBack::Lost(error) => last = Some(error),
                    ReadBack::Applied(held)
                        if held.observed.owner.as_deref() == Some(self.project) =>
                    {
                        return Ok(kept_pause);
                    }
                    ReadBack::Applied(held) if adopt => {
                        return self
                            .recreate(want, &pause, &held.search_attributes, ids)
                            .await
                            .map(|effect| {
                                if effect == Effect::Applied {
                                    kept_pause
                                } else {
                                    effect
                                }
                            });
                    }
                    // Someone else's schedule took its place meanwhile.
                    ReadBack::Applied(_) => return Ok(Effect::Conflict),
                },
            }
        }
        Err(last.unwrap_or_else(|| lost_race(want)))
    }

    /// Adopts a schedule by deleting it and creating it again with our
    /// marker, in `pause` state, keeping the search attributes it `held`:
    /// the only way to set a memo on Temporal 1.29.
    async fn recreate(
        &self,
        want: &DesiredSchedule,
        pause: &PauseState,
        held: &HashMap<String, Payload>,
        ids: &mut RequestIds,
    ) -> Result<Effect, StoreError> {
        tracing::info!(
            schedule_id = want.schedule_id,
            "the server keeps no memo set by an update; re-creating the schedule to adopt it"
        );
        let request_id = ids.next("delete");
        self.write("delete", &want.schedule_id, &request_id, || {
            self.store.delete(&want.schedule_id)
        })
        .await?;
        let request_id = ids.next("create");
        let created = self
            .write("create", &want.schedule_id, &request_id, || {
                self.store
                    .create(self.project, want, pause, held, &request_id)
            })
            .await
            .map_err(|error| StoreError {
                message: format!(
                    "{} was deleted to adopt it and could not be created again yet ({}); the \
                     next reconcile creates it",
                    want.schedule_id, error.message
                ),
                ..error
            })?;
        match (created, self.describe(&want.schedule_id).await?) {
            (Created::Created, Some(held))
                if held.observed.owner.as_deref() == Some(self.project) =>
            {
                Ok(Effect::Applied)
            }
            (Created::AlreadyExists, _) | (_, Some(_)) => Ok(Effect::Conflict),
            (Created::Created, None) => Err(StoreError {
                rpc: "CreateSchedule",
                code: tonic::Code::Internal,
                message: format!(
                    "{} was deleted to adopt it, and its re-creation did not show; the next \
                     reconcile creates it",
                    want.schedule_id
                ),
            }),
        }
    }

    /// Pauses or resumes `want` as the project's `enabled` says, after
    /// checking that it is still ours and that no operator paused it since.
    async fn set_paused(
        &self,
        want: &DesiredSchedule,
        ids: &mut RequestIds,
    ) -> Result<Effect, StoreError> {
        let Some(current) = self.describe(&want.schedule_id).await? else {
            return self.create(want, ids).await;
        };
        if current.observed.owner.as_deref() != Some(self.project) {
            return Ok(Effect::Conflict);
        }
        if want.enabled && current.observed.paused_by_operator() {
            return Ok(Effect::PausedByOperator);
        }
        if current.observed.paused != want.enabled {
            return Ok(Effect::AlreadyDone);
        }
        let pause = if want.enabled {
            PauseState {
                paused: false,
                notes: "schedule-sync: enabled in the project".to_owned(),
            }
        } else {
            pause_for(want, None)
        };
        let operation = if want.enabled { "unpause" } else { "pause" };
        let request_id = ids.next(operation);
        self.write(operation, &want.schedule_id, &request_id, || {
            self.store.set_paused(&want.schedule_id, &pause)
        })
        .await?;
        Ok(Effect::Applied)
    }

    /// Deletes a schedule after checking that it still exists and is ours.
    async fn delete(&self, schedule_id: &str) -> Result<Effect, StoreError> {
        match self.describe(schedule_id).await? {
            Some(current) if current.observed.owner.as_deref() == Some(self.project) => {}
            // Gone already (the listing lagged), or no longer ours.
            _ => return Ok(Effect::AlreadyDone),
        }
        self.write("delete", schedule_id, "", || self.store.delete(schedule_id))
            .await?;
        Ok(Effect::Applied)
    }

    /// Waits until the schedule's version moves past `token`, then tells
    /// whether it holds our update.
    async fn read_back(
        &self,
        want: &DesiredSchedule,
        token: &[u8],
    ) -> Result<ReadBack, StoreError> {
        let deadline = tokio::time::Instant::now() + VERIFY_TIMEOUT;
        loop {
            let Some(now) = self.describe(&want.schedule_id).await? else {
                return Ok(ReadBack::Lost(lost_race(want)));
            };
            if now.conflict_token != token {
                // The schedule itself, not the fingerprint attribute: Temporal
                // shows a new attribute value a moment after the new definition.
                return Ok(if same_schedule(&now.schedule, &want.schedule) {
                    ReadBack::Applied(Box::new(now))
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
}

/// Whether `current` already holds `want` in `pause` state, fingerprint
/// included where the namespace shows one: then an update would write the
/// same thing again.
fn holds(current: &Described, want: &DesiredSchedule, pause: &PauseState) -> bool {
    let state = current.schedule.state.clone().unwrap_or_default();
    let fingerprint_ok = current
        .observed
        .fingerprint
        .as_ref()
        .is_none_or(|f| *f == want.fingerprint);
    fingerprint_ok
        && state.paused == pause.paused
        && (!pause.paused || state.notes == pause.notes)
        && same_schedule(&current.schedule, &want.schedule)
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

/// The pause state to write for `want`, keeping an operator's pause.
fn pause_for(want: &DesiredSchedule, keep_operator_pause: Option<PauseState>) -> PauseState {
    match keep_operator_pause {
        Some(operator) => operator,
        None => {
            let state = want.schedule.state.clone().unwrap_or_default();
            PauseState {
                paused: state.paused,
                notes: state.notes,
            }
        }
    }
}

enum ReadBack {
    Applied(Box<Described>),
    Lost(StoreError),
}

/// The error of a step whose schedule keeps appearing and vanishing under
/// it (another writer deletes and creates it): retried by the next attempt.
fn churning(want: &DesiredSchedule) -> StoreError {
    StoreError {
        rpc: "CreateSchedule",
        code: tonic::Code::Aborted,
        message: format!(
            "{} kept appearing and vanishing while it was written; another writer is at work",
            want.schedule_id
        ),
    }
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
            0,
            "a create that finds its schedule already as wanted writes nothing more"
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

    const MANY: &str = "id: m\nschedule:\n  cron:\n    - \"0 0 * * *\"\n    - \"0 1 * * *\"\n    - \"0 2 * * *\"\n    - \"0 3 * * *\"\n    - \"0 4 * * *\"\n    - \"0 5 * * *\"\n    - \"0 6 * * *\"\n    - \"0 7 * * *\"\n    - \"0 8 * * *\"\n    - \"0 9 * * *\"\n    - \"0 10 * * *\"\n    - \"0 11 * * *\"\n";

    #[tokio::test(start_paused = true)]
    async fn a_schedule_deleted_by_an_operator_is_created_again() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        store.operator_delete("foo.a");
        let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        assert_eq!(report.outcomes[0].effect, Effect::Applied);
        assert!(store.get("foo.a").is_some(), "re-created");
        // Dropped from the project, then declared again.
        reconcile(&store, &project(&[B]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(store.get("foo.a").is_none());
        reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(
            store.get("foo.a").is_some(),
            "declared again, created again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn adoption_re_creates_the_schedule_when_the_memo_cannot_be_updated() {
        let store = MemoryStore::new();
        let foreign = desired(&project(&[A2]))[0].schedule.clone();
        store.insert_unowned("foo.a", foreign);
        store.tag("foo.a", "Team", "ops");
        let mut options = ReconcileOptions::default();
        options.plan.adopt = true;
        let adopted = reconcile(&store, &project(&[A]), options).await.unwrap();
        assert!(adopted.converged(), "{adopted:#?}");
        assert_eq!(store.owner("foo.a").as_deref(), Some("foo"));
        assert_eq!(store.calls_of("DeleteSchedule"), 1);
        assert_eq!(
            store
                .search_attributes("foo.a")
                .get("Team")
                .map(String::as_str),
            Some("\"ops\""),
            "the re-created schedule keeps the tags it had"
        );
        let plain = reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(
            plain.converged() && plain.plan.steps.is_empty(),
            "{plain:#?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_update_keeps_search_attributes_that_are_not_ours() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        store.tag("foo.a", "Team", "payments");
        let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        assert_eq!(store.calls_of("UpdateSchedule"), 1);
        let attributes = store.search_attributes("foo.a");
        assert_eq!(
            attributes.get("Team").map(String::as_str),
            Some("\"payments\"")
        );
        assert_eq!(
            attributes.get(crate::store::FINGERPRINT_ATTRIBUTE),
            Some(&format!(
                "\"{}\"",
                desired(&project(&[A2]))[0].fingerprint.0
            ))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn more_than_ten_cron_entries_cost_no_write_when_unchanged() {
        let store = MemoryStore::new();
        reconcile(&store, &project(&[MANY]), ReconcileOptions::default())
            .await
            .unwrap();
        let writes = store.writes();
        for _ in 0..2 {
            let again = reconcile(&store, &project(&[MANY]), ReconcileOptions::default())
                .await
                .unwrap();
            assert!(again.plan.steps.is_empty(), "{again:#?}");
        }
        assert_eq!(store.writes(), writes);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_temporal_ends_the_reconcile_at_once() {
        let many: Vec<String> = (0..300)
            .map(|i| format!("id: w{i}\nschedule:\n  cron: \"@daily\"\n"))
            .collect();
        let files: Vec<&str> = many.iter().map(String::as_str).collect();
        let store = MemoryStore::new();
        // The listing works, then Temporal goes away for good.
        store.fail_next("CreateSchedule", tonic::Code::Unavailable, 10_000);
        let started = tokio::time::Instant::now();
        let options = ReconcileOptions {
            concurrency: 2,
            ..Default::default()
        };
        let report = reconcile(&store, &project(&files), options).await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert!(!report.converged());
        assert!(report.outcomes.iter().all(|o| o.retryable));
        let not_started = report
            .outcomes
            .iter()
            .filter(|o| o.effect == Effect::NotStarted)
            .count();
        assert!(not_started >= 290, "{not_started} not started");
        // Two steps at a time, each retrying at 0.2, 0.6, 1.4 and 3 s: the
        // outage is declared at 3 s, after at most 5 creates of each.
        assert!(
            store.calls_of("CreateSchedule") <= 10,
            "{} creates",
            store.calls_of("CreateSchedule")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_temporal_is_not_taken_for_an_outage() {
        let store = MemoryStore::new();
        store.fail_next("CreateSchedule", tonic::Code::ResourceExhausted, 8);
        let options = ReconcileOptions {
            concurrency: 1,
            ..Default::default()
        };
        let report = reconcile(&store, &project(&[A, B, C]), options)
            .await
            .unwrap();
        // a spends its own attempts; b and c still go ahead.
        let effects: Vec<Effect> = report.outcomes.iter().map(|o| o.effect).collect();
        assert_eq!(effects, [Effect::Failed, Effect::Applied, Effect::Applied]);
        assert_eq!(store.calls_of("CreateSchedule"), 5 + 4 + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_act_on_the_schedule_as_it_is_not_as_a_stale_listing_shows_it() {
        let store = MemoryStore::new();
        let off = "id: b\nschedule:\n  cron: \"@hourly\"\n  enabled: false\n";
        reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
            .await
            .unwrap();
        store.freeze_listing();
        // Since the listing: a deleted, b replaced by a hand-made schedule.
        store.operator_delete("foo.a");
        store.operator_delete("foo.b");
        store.insert_unowned("foo.b", desired(&project(&[B]))[0].schedule.clone());
        let mut options = ReconcileOptions::default();
        options.plan.allow_mass_delete = true;
        let report = reconcile(&store, &project(&[off, C]), options)
            .await
            .unwrap();
        let effects: Vec<(String, Effect)> = report
            .outcomes
            .iter()
            .map(|o| (o.step.schedule_id().to_owned(), o.effect))
            .collect();
        assert_eq!(
            effects,
            vec![
                ("foo.a".to_owned(), Effect::AlreadyDone),
                ("foo.b".to_owned(), Effect::Conflict),
            ]
        );
        assert!(report.outcomes.iter().all(|o| o.error.is_none()));
        assert_eq!(store.calls_of("DeleteSchedule"), 0);
        assert_eq!(store.calls_of("PatchSchedule"), 0);
        assert!(
            store.owner("foo.b").is_none(),
            "the hand-made one is left alone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_create_sent_twice_is_read_back() {
        let store = MemoryStore::new();
        store.lose_next_create_answers(1);
        let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        // a: created, answer lost, sent again (answered OK by its request
        // id), then described to make sure it exists; b: created once.
        assert_eq!(store.calls_of("CreateSchedule"), 3);
        assert_eq!(store.calls_of("DescribeSchedule"), 1);
        assert!(store.get("foo.a").is_some() && store.get("foo.b").is_some());
    }
}
