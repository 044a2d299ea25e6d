//! The one run loop: the only place that awaits, sleeps and selects. It owns
//! the status sender, waits for a trigger, runs one attempt at a time, feeds
//! the outcome to [`transition`] and publishes the result.

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connector::{AttemptError, Connector, Guarded};
use super::status::{Record, ScheduleView};
use super::{Command, Options, ProjectError, Status};
use crate::apply::{Report, reconcile};
use crate::project::Project;
use crate::runtime::lifecycle::{ErrorKind, Event, State, transition};
use crate::runtime::retry::JitterSource;

/// How soon a reconciler that gave way to a newer writer reconciles again.
pub(crate) const SUPERSEDED_RECHECK: Duration = Duration::from_secs(30);

/// Maps tokio's clock (paused in tests) onto wall-clock times for the status.
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
        self.wall + self.instant.elapsed()
    }

    fn instant_at(&self, at: SystemTime) -> Instant {
        let offset = at.duration_since(self.wall).unwrap_or(Duration::ZERO);
        self.instant + offset
    }
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
    /// When the next attempt starts; `None` waits for a trigger.
    due: Option<Instant>,
}

/// Where the first project comes from.
pub(super) enum Source {
    /// Loaded by the host.
    Loaded(Project),
    /// To load from this folder, inside the task.
    Dir(std::path::PathBuf),
}

impl Source {
    async fn load(self, environment: Option<String>) -> Result<Project, ProjectError> {
        match self {
            Source::Loaded(project) => Ok(project),
            Source::Dir(dir) => {
                let started = Instant::now();
                let options = crate::project::LoadOptions::environment(environment.as_deref());
                let loaded =
                    tokio::task::spawn_blocking(move || load_leaving_a_core(&dir, &options))
                        .await
                        .map_err(|panicked| ProjectError::LoadFailed(panicked.to_string()))?;
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                match loaded {
                    Ok(loaded) => {
                        let workflows = loaded.project.workflows.len();
                        tracing::info!(elapsed_ms, workflows, "project loaded");
                        Ok(loaded.project)
                    }
                    Err(invalid) => {
                        for diagnostic in &invalid.diagnostics {
                            tracing::error!("{diagnostic}");
                        }
                        tracing::error!(
                            elapsed_ms,
                            "the project is invalid; nothing is sent to Temporal"
                        );
                        Err(invalid.into())
                    }
                }
            }
        }
    }
}

/// Loads the project in the background with one core fewer than the
/// machine has, so that the host (serving its first requests while this
/// runs) keeps a core to itself.
fn load_leaving_a_core(
    dir: &std::path::Path,
    options: &crate::project::LoadOptions,
) -> Result<crate::project::Loaded, crate::project::InvalidProject> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(cores.saturating_sub(1).max(1))
        .build()
    {
        Ok(pool) => pool.install(|| crate::project::load_with(dir, options)),
        Err(_) => crate::project::load_with(dir, options),
    }
}

pub(super) async fn run<C: Connector>(
    connector: C,
    options: Options,
    source: Source,
    sender: watch::Sender<Status>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shutdown: CancellationToken,
) {
    let clock = Clock::new();
    let record = Record {
        writer: options.reconcile.plan.writer,
        ..Record::default()
    };
    let mut this = Loop {
        jitter: JitterSource::new(options.retry.jitter),
        connector,
        options,
        state: State::Pending,
        state_entered_at: clock.now(),
        record,
        view: ScheduleView::default(),
        sender,
        clock,
        store: None,
        due: None,
    };
    this.publish();
    match source.load(this.options.environment.clone()).await {
        Ok(project) => this.accept(project),
        Err(error) => this.step(Event::Failed {
            at: this.clock.now(),
            kind: ErrorKind::Fatal,
            error: error.to_string(),
            jitter: 1.0,
        }),
    }
    let mut commands_open = true;
    loop {
        let due = this.due;
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            command = commands.recv(), if commands_open => {
                match command {
                    Some(command) => this.command(command),
                    None => commands_open = false,
                }
                continue;
            }
            () = sleep_until(due) => {}
        }
        // Triggers that queued up meanwhile coalesce into this attempt.
        while let Ok(command) = commands.try_recv() {
            this.command(command);
        }
        if !this.attempt(&shutdown).await {
            break;
        }
    }
    this.step(Event::ShutdownRequested);
    tracing::info!("the reconciler stopped");
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
            let attempt = tokio::time::timeout(
                timeout,
                attempt(
                    &self.connector,
                    &mut self.store,
                    &project,
                    &self.options,
                    shutdown,
                ),
            );
            tokio::pin!(attempt);
            tokio::select! {
                biased;
                result = &mut attempt => Some((result, false)),
                () = shutdown.cancelled() => {
                    // Not ready from this moment on, while the work in
                    // flight (no new RPC starts) gets its grace period.
                    self.state = transition(self.state.clone(), Event::ShutdownRequested, &self.options.retry);
                    self.state_entered_at = self.clock.now();
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
            .filter(|o| o.effect != crate::apply::Effect::Superseded)
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
        self.record.report = Some(std::sync::Arc::new(report));
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
        self.record.last_success = Some(at);
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

    fn command(&mut self, command: Command) {
        match command {
            Command::Reload(Ok(project)) => {
                *self.record.totals.reloads.entry("applied").or_default() += 1;
                self.accept(project);
            }
            Command::Reload(Err(error)) => {
                *self.record.totals.reloads.entry("invalid").or_default() += 1;
                tracing::warn!(%error, "the reload was refused; the last good project stays");
                self.record.reload_error = Some(error.to_string());
                self.publish();
            }
            Command::Resync => self.due = Some(Instant::now()),
        }
    }

    /// Takes `project` as the one to reconcile, at once.
    fn accept(&mut self, project: Project) {
        self.record.revision += 1;
        self.record.reload_error = None;
        self.record.project = Some(std::sync::Arc::new(project));
        // The last report was of another project.
        self.record.report = None;
        self.due = Some(Instant::now());
        self.publish();
    }

    /// Moves the state machine and schedules the next attempt.
    fn step(&mut self, event: Event) {
        let next = transition(self.state.clone(), event, &self.options.retry);
        self.due = match &next {
            State::Retrying { next_retry_at, .. } | State::Failed { next_retry_at, .. } => {
                Some(self.clock.instant_at(*next_retry_at))
            }
            State::Synced { .. } => {
                // A writer that gave way looks again soon, with or without
                // a resync: the newer writer may have written just what it
                // wants too (replicas started together), and then it reports
                // in sync instead of superseded.
                let superseded = self
                    .record
                    .report
                    .as_ref()
                    .is_some_and(|r| r.plan.superseded_by().is_some());
                let every = match (self.options.resync, superseded) {
                    (Some(every), true) => Some(every.min(SUPERSEDED_RECHECK)),
                    (None, true) => Some(SUPERSEDED_RECHECK),
                    (every, false) => every,
                };
                every.map(|every| Instant::now() + every)
            }
            State::Pending | State::ShuttingDown => None,
        };
        if next.name() != self.state.name() {
            self.state_entered_at = self.clock.now();
        }
        self.state = next;
        self.publish();
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
/// once shutdown has begun.
async fn attempt<C: Connector>(
    connector: &C,
    store: &mut Option<C::Store>,
    project: &Project,
    options: &Options,
    shutdown: &CancellationToken,
) -> Result<Report, AttemptError> {
    let inner = match store {
        Some(connected) => connected,
        None => store.insert(connector.connect().await?),
    };
    let guarded = Guarded { inner, shutdown };
    Ok(reconcile(&guarded, project, options.reconcile).await?)
}
