//! The one run loop: the only place that awaits, sleeps and selects. It owns
//! the status sender, waits for a trigger, runs one attempt at a time, feeds
//! the outcome to [`transition`] and publishes the result.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connector::{AttemptError, Connector, Guarded};
use super::status::{Reconciled, Record, ScheduleView};
use super::{Mailbox, Options, Status};
use crate::health::Reads;
use crate::project::InvalidProject;
use crate::reconcile::{Report, read_describes, reconcile_desired};
use crate::runtime::lifecycle::{ErrorKind, Event, State, transition};
use crate::runtime::retry::JitterSource;
use crate::spec::DesiredProject;

/// How soon a reconciler that gave way to a newer writer reconciles again.
pub(crate) const SUPERSEDED_RECHECK: Duration = Duration::from_secs(30);

/// How soon a reconciler reconciles again after a step failed for a reason
/// that heals by itself (another writer won a race for the schedule), with
/// or without a periodic resync.
pub const FOLLOW_UP: Duration = Duration::from_secs(5);

/// Tokio's clock (paused in tests), read as wall-clock times counted from
/// the start: the times the state machine reasons with (the retry budget,
/// the backoffs), which a step of the system clock or a suspend must not
/// move. The timestamps that metrics show (`state_entered_at`,
/// `last_success`) are read from the wall clock when they are set instead.
struct Clock {
    wall: SystemTime,
    instant: Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            wall: SystemTime::now(),
            instant: Instant::now(),
        }
    }

    fn now(&self) -> SystemTime {
        let elapsed = self.instant.elapsed();
        self.wall.checked_add(elapsed).unwrap_or(self.wall)
    }
}

/// The instant `after` from now, or `None` when that is too far to
/// represent (a [`Duration::MAX`] option): then no timer is set.
fn from_now(after: Duration) -> Option<Instant> {
    Instant::now().checked_add(after)
}

/// The loop's own state; the published status is computed from `state`
/// and `record` by [`Status::of`], in [`Loop::publish`] only.
struct Loop<C: Connector> {
    connector: C,
    options: Options,
    state: State,
    state_entered_at: SystemTime,
    record: Record,
    view: ScheduleView,
    sender: watch::Sender<Status>,
    clock: Clock,
    jitter: JitterSource,
    store: Option<C::Store>,
    /// What the Describes for health found so far.
    reads: Reads,
    /// When the next attempt starts; `None` waits for a trigger.
    due: Option<Instant>,
}

/// Where the first project comes from.
pub(super) enum Source {
    /// Loaded by the host, in the compact form.
    Loaded(Arc<DesiredProject>),
    /// To load from this folder, inside the task.
    Dir(std::path::PathBuf),
}

impl Source {
    async fn load(
        self,
        environment: Option<String>,
    ) -> Result<Arc<DesiredProject>, InvalidProject> {
        match self {
            Source::Loaded(project) => Ok(project),
            Source::Dir(dir) => {
                let started = Instant::now();
                let loaded = {
                    let dir = dir.clone();
                    let options = crate::project::LoadOptions::environment(environment.as_deref());
                    tokio::task::spawn_blocking(move || load_leaving_a_core(&dir, &options)).await
                };
                let loaded = loaded.unwrap_or_else(|panicked| {
                    Err(InvalidProject::load_failed(&dir, &panicked.to_string()))
                });
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                match loaded {
                    Ok((desired, workflows)) => {
                        tracing::info!(elapsed_ms, workflows, "project loaded");
                        Ok(Arc::new(desired))
                    }
                    Err(invalid) => {
                        for diagnostic in &invalid.diagnostics {
                            tracing::error!("{diagnostic}");
                        }
                        tracing::error!(
                            elapsed_ms,
                            "the project is invalid; nothing is sent to Temporal"
                        );
                        Err(invalid)
                    }
                }
            }
        }
    }
}

/// Loads the project in the background with one core fewer than the
/// machine has, so that the host (serving its first requests while this
/// runs) keeps a core to itself, into the compact form the reconciler
/// keeps (moved out of the loading threads' heaps, see
/// [`DesiredProject::repack`]); with the number of workflow files.
fn load_leaving_a_core(
    dir: &std::path::Path,
    options: &crate::project::LoadOptions,
) -> Result<(DesiredProject, usize), InvalidProject> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let loaded = match rayon::ThreadPoolBuilder::new()
        .num_threads(cores.saturating_sub(1).max(1))
        .build()
    {
        Ok(pool) => pool.install(|| crate::spec::load_desired(dir, options)),
        Err(_) => crate::spec::load_desired(dir, options),
    };
    loaded.map(|(mut desired, workflows)| {
        desired.repack();
        (desired, workflows)
    })
}

/// Closes the mailbox when the run loop ends, by return or by panic, so
/// that the handle's requests say the reconciler has stopped.
struct CloseOnDrop(Arc<Mailbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.lock().closed = true;
    }
}

pub(super) async fn run<C: Connector>(
    connector: C,
    options: Options,
    source: Source,
    sender: watch::Sender<Status>,
    mailbox: Arc<Mailbox>,
    shutdown: CancellationToken,
) {
    let _close = CloseOnDrop(mailbox.clone());
    if options.trim_memory {
        super::heap::keep_trim_threshold();
    }
    let record = Record {
        writer: options.reconcile.plan.writer,
        ..Record::default()
    };
    let mut this = Loop {
        jitter: JitterSource::new(options.retry.jitter),
        connector,
        options,
        state: State::Pending,
        state_entered_at: SystemTime::now(),
        record,
        view: ScheduleView::default(),
        sender,
        clock: Clock::new(),
        store: None,
        reads: Reads::default(),
        due: None,
    };
    // Loading a large project takes a while: shutdown does not wait for it.
    let loaded = tokio::select! {
        biased;
        () = shutdown.cancelled() => None,
        loaded = source.load(this.options.environment.clone()) => Some(loaded),
    };
    match loaded {
        None => {
            this.stop();
            return;
        }
        Some(Ok(project)) => this.accept(project),
        Some(Err(invalid)) => this.step(Event::Failed {
            at: this.clock.now(),
            kind: ErrorKind::Fatal,
            error: invalid.to_string(),
            jitter: 1.0,
        }),
    }
    loop {
        let due = this.due;
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = mailbox.posted.notified() => {
                this.take(&mailbox);
                continue;
            }
            () = sleep_until(due) => {}
        }
        // Triggers that came meanwhile coalesce into this attempt.
        this.take(&mailbox);
        if !this.attempt(&shutdown).await {
            break;
        }
    }
    this.stop();
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

impl<C: Connector> Loop<C> {
    /// Runs one attempt. Returns false when shutdown came during it.
    async fn attempt(&mut self, shutdown: &CancellationToken) -> bool {
        let Some(project) = self.record.project.clone() else {
            self.due = None;
            return true;
        };
        let started = Instant::now();
        let timeout = self.options.attempt_timeout;
        let outcome = {
            let attempt = crate::telemetry::for_project(
                project.name.clone(),
                tokio::time::timeout(
                    timeout,
                    attempt(
                        &self.connector,
                        &mut self.store,
                        &mut self.reads,
                        &project,
                        &self.options,
                        shutdown,
                    ),
                ),
            );
            tokio::pin!(attempt);
            tokio::select! {
                biased;
                result = &mut attempt => Some((result, false)),
                () = shutdown.cancelled() => {
                    // Not ready from this moment on (the handle already says
                    // so), while the work in flight (no new RPC starts, a
                    // connect is dropped) gets its grace period.
                    self.state = transition(self.state.clone(), Event::ShutdownRequested, &self.options.retry);
                    self.state_entered_at = SystemTime::now();
                    self.sender.send_replace(Status::of(
                        &self.state,
                        self.state_entered_at,
                        &self.record,
                        &mut self.view,
                    ));
                    let grace = self.options.shutdown_timeout;
                    let finished = tokio::time::timeout(grace, &mut attempt).await;
                    if finished.is_err() {
                        tracing::warn!(?grace, "work in flight was abandoned at shutdown");
                    }
                    finished.ok().map(|result| (result, true))
                }
            }
        };
        let Some((result, stopped)) = outcome else {
            return false;
        };
        let took = started.elapsed();
        let at = self.clock.now();
        let event = match result {
            Ok(Ok(report)) => self.finished(report, at, took),
            Ok(Err(error)) => {
                let outcome = match error.kind {
                    ErrorKind::Retryable => "retryable_error",
                    ErrorKind::Fatal => "fatal_error",
                };
                self.count_attempt(outcome, took);
                self.failure(at, error)
            }
            Err(_) => {
                self.count_attempt("timeout", took);
                self.failure(
                    at,
                    AttemptError::retryable(format!("the attempt timed out after {timeout:?}")),
                )
            }
        };
        if stopped {
            return false;
        }
        self.step(event);
        if self.options.trim_memory {
            super::heap::give_back_freed();
        }
        true
    }

    fn count_attempt(&mut self, outcome: &'static str, took: Duration) {
        let totals = &mut self.record.totals;
        *totals.attempts.entry(outcome).or_default() += 1;
        totals.last_attempt = Some(took);
    }

    fn finished(&mut self, report: Report, at: SystemTime, took: Duration) -> Event {
        // A step left to a newer writer made no write to count.
        for outcome in report
            .outcomes
            .iter()
            .filter(|o| o.effect != crate::reconcile::Effect::Superseded)
        {
            let result = if outcome.succeeded() {
                "success"
            } else {
                "error"
            };
            *self
                .record
                .totals
                .operations
                .entry((outcome.step.operation(), result))
                .or_default() += 1;
        }
        let held = report
            .plan
            .untouched
            .iter()
            .filter(|u| matches!(u, crate::plan::Untouched::HeldDeletion { .. }))
            .count();
        if held > 0 {
            tracing::warn!(held, "deletions are held back; /schedules lists them");
        }
        // Errors that retrying may heal (Temporal busy or away mid-way) make
        // the attempt a failure; the others stay with their schedules.
        let retryable: Vec<String> = report
            .outcomes
            .iter()
            .filter(|o| o.retryable)
            .filter_map(|o| o.error.clone())
            .collect();
        let failed = report.outcomes.iter().filter(|o| !o.succeeded()).count();
        let steps = report.outcomes.len();
        // The statuses are made now, and the report dropped: its plan and
        // health map copy what they hold.
        self.record.last = Some(Reconciled::of(self.record.project.as_deref(), &report));
        drop(report);
        if let Some(first) = retryable.first() {
            self.count_attempt("retryable_error", took);
            return self.failure(
                at,
                AttemptError::retryable(format!(
                    "{} schedule write(s) failed, first: {first}",
                    retryable.len()
                )),
            );
        }
        self.count_attempt("success", took);
        self.record.ever_synced = true;
        self.record.last_success = Some(SystemTime::now());
        tracing::info!(steps, failed, "reconciled");
        Event::Succeeded { at }
    }

    fn failure(&mut self, at: SystemTime, error: AttemptError) -> Event {
        tracing::warn!(error = %error.message, kind = ?error.kind, "a reconcile attempt failed");
        if error.kind == ErrorKind::Retryable {
            // Reconnect next time: the connection may be what broke.
            self.store = None;
        }
        Event::Failed {
            at,
            kind: error.kind,
            error: error.message,
            jitter: self.jitter.next_factor(),
        }
    }

    /// Takes what the host asked since the last look: the latest project
    /// (one at most: a newer reload replaced any older one), a refused
    /// reload that came after it, and a resync.
    fn take(&mut self, mailbox: &Mailbox) {
        let (project, refused, applied, invalid, resync) = {
            let mut requests = mailbox.lock();
            (
                requests.project.take(),
                requests.refused.take(),
                std::mem::take(&mut requests.applied),
                std::mem::take(&mut requests.invalid),
                std::mem::take(&mut requests.resync),
            )
        };
        if applied > 0 {
            *self.record.totals.reloads.entry("applied").or_default() += applied;
        }
        if invalid > 0 {
            *self.record.totals.reloads.entry("invalid").or_default() += invalid;
        }
        if let Some(project) = project {
            self.accept(project);
        }
        if let Some(error) = refused {
            tracing::warn!(%error, "the reload was refused; the last good project stays");
            self.record.reload_error = Some(error.to_string());
        }
        if resync {
            self.due = Some(Instant::now());
        }
        if applied + invalid > 0 {
            self.publish();
        }
    }

    /// Takes `project` as the one to reconcile, at once.
    fn accept(&mut self, project: Arc<DesiredProject>) {
        self.record.revision += 1;
        self.record.reload_error = None;
        self.record.project = Some(project);
        // The last report was of another project.
        self.record.last = None;
        self.due = Some(Instant::now());
        self.publish();
    }

    /// Moves the state machine and schedules the next attempt.
    fn step(&mut self, event: Event) {
        let at = match &event {
            Event::Succeeded { at } | Event::Failed { at, .. } => *at,
            Event::ShutdownRequested => self.clock.now(),
        };
        let next = transition(self.state.clone(), event, &self.options.retry);
        self.due = match &next {
            State::Retrying { next_retry_at, .. } | State::Failed { next_retry_at, .. } => {
                // The timer runs on tokio's clock; the state shows wall time.
                from_now(next_retry_at.duration_since(at).unwrap_or_default())
            }
            State::Synced { .. } => self.after_success().and_then(from_now),
            State::Pending | State::ShuttingDown => None,
        };
        if next.name() != self.state.name() {
            self.state_entered_at = SystemTime::now();
        }
        self.state = next;
        self.publish();
    }

    /// How long after a success the next reconcile comes, if one does: the
    /// periodic resync, or sooner when the last reconcile left work that a
    /// second look may finish.
    fn after_success(&self) -> Option<Duration> {
        let last = self.record.last.as_ref();
        // A writer that gave way looks again soon, with or without a
        // resync: the newer writer may have written just what it wants too
        // (replicas started together), and then it reports in sync instead
        // of superseded.
        let superseded = last.is_some_and(|l| l.superseded_by.is_some());
        // A step that lost a race to another writer is tried again once
        // that writer is done.
        let lost_race = last.is_some_and(|l| l.follow_up);
        let soon = match (lost_race, superseded) {
            (true, _) => Some(FOLLOW_UP),
            (false, true) => Some(SUPERSEDED_RECHECK),
            (false, false) => None,
        };
        match (self.options.resync, soon) {
            (Some(every), Some(soon)) => Some(every.min(soon)),
            (every, soon) => every.or(soon),
        }
    }

    /// Enters `ShuttingDown` for good.
    fn stop(&mut self) {
        self.step(Event::ShutdownRequested);
        tracing::info!("the reconciler stopped");
    }

    /// Publishes the status: the only place it is computed and sent.
    fn publish(&mut self) {
        self.sender.send_replace(Status::of(
            &self.state,
            self.state_entered_at,
            &self.record,
            &mut self.view,
        ));
    }
}

/// Connects if need be, then reconciles through a store that starts no RPC
/// once shutdown has begun. A connect under way when shutdown comes is
/// dropped at once: it has written nothing that could be left half done.
async fn attempt<C: Connector>(
    connector: &C,
    store: &mut Option<C::Store>,
    reads: &mut Reads,
    project: &DesiredProject,
    options: &Options,
    shutdown: &CancellationToken,
) -> Result<Report, AttemptError> {
    let inner = match store {
        Some(connected) => connected,
        None => {
            let connected = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    return Err(AttemptError::retryable("the connect was dropped: shutting down"));
                }
                connected = connector.connect() => connected?,
            };
            store.insert(connected)
        }
    };
    let guarded = Guarded { inner, shutdown };
    let mut report = reconcile_desired(&guarded, project, options.reconcile).await?;
    reads.expect(&mut report.health, project, std::time::SystemTime::now());
    read_describes(
        &guarded,
        &mut report.health,
        reads,
        options.health_describes,
    )
    .await;
    Ok(report)
}
