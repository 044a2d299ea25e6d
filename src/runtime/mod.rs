//! The runtime component a host server embeds: [`Reconciler::spawn`] returns
//! at once with a [`ReconcilerHandle`], and one background task reconciles
//! at startup, on reload and on an optional periodic resync, retrying with
//! backoff while Temporal is away. The task alone owns the watch channel that
//! publishes its [`Status`]; probes, metrics and shutdown read it.
//!
//! ```
//! # async fn demo() {
//! use std::sync::Arc;
//! use schedule_sync::runtime::{Options, Reconciler};
//! use schedule_sync::store::MemoryStore;
//! use tokio_util::sync::CancellationToken;
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
//! let project = schedule_sync::project::load(&dir).unwrap().project;
//! let shutdown = CancellationToken::new();
//! let store = Arc::new(MemoryStore::new());
//! let handle = Reconciler::new(store.clone(), Options::default()).spawn(project, shutdown.clone());
//! handle.wait_synced().await.unwrap();
//! assert!(handle.is_ready());
//! // The example's 4 schedules, and the project's writer fence.
//! assert_eq!(store.writes(), 5);
//! handle.shutdown().await;
//! assert!(!handle.is_ready());
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo());
//! ```

mod connector;
pub mod lifecycle;
pub mod retry;
mod run;
mod status;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use connector::{AttemptError, Connector, TemporalConnector};
pub use status::{HeldDeletion, ScheduleState, ScheduleStatus, Status};

use crate::apply::ReconcileOptions;
use crate::project::{InvalidProject, Project};
use crate::runtime::lifecycle::State;
use crate::runtime::retry::RetryPolicy;
use crate::store::{Pace, PaceStatus};

/// How the reconciler behaves; every field has a default.
#[derive(Clone, Debug)]
pub struct Options {
    /// Backoff, budget and slow retry.
    pub retry: RetryPolicy,
    /// Reconcile again this long after each success; `None` for never.
    pub resync: Option<Duration>,
    /// The longest one attempt (connect, list, writes) may take.
    pub attempt_timeout: Duration,
    /// How long work in flight may go on after shutdown is requested.
    pub shutdown_timeout: Duration,
    /// Options of each reconcile (adoption, mass deletes, concurrency).
    pub reconcile: ReconcileOptions,
    /// This writer's revision (a build or deploy number that grows with
    /// every deploy, rollbacks included). Among the writers of one project
    /// the highest revision wins, and any revision outranks none; without
    /// one, the writer started last wins. See [`crate::fence`].
    pub revision: Option<u64>,
    /// The most RPCs per second sent to Temporal; `None` for no ceiling.
    /// Below it, the pace adapts to the server: it slows down when Temporal
    /// throttles (ResourceExhausted) and speeds up again while answers are
    /// fine. See [`crate::store::Pace`].
    pub max_rps: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry: RetryPolicy::default(),
            resync: None,
            attempt_timeout: Duration::from_secs(5 * 60),
            shutdown_timeout: Duration::from_secs(10),
            reconcile: ReconcileOptions::default(),
            revision: None,
            max_rps: None,
        }
    }
}

/// A reconciler, ready to spawn.
pub struct Reconciler<C> {
    connector: C,
    options: Options,
}

impl Reconciler<TemporalConnector> {
    /// A reconciler for the Temporal server that `settings` name, with the
    /// default options and connect timeout.
    pub fn temporal(settings: crate::connection::Settings) -> Self {
        let connector =
            TemporalConnector::new(settings, crate::connection::DEFAULT_CONNECT_TIMEOUT);
        Reconciler::new(connector, Options::default())
    }
}

impl<C: Connector> Reconciler<C> {
    /// A reconciler that reaches Temporal through `connector`.
    pub fn new(connector: C, options: Options) -> Self {
        Reconciler { connector, options }
    }

    /// Starts the background task on the current tokio runtime and returns
    /// at once, to reconcile `project`. The task stops when `shutdown` is
    /// cancelled.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn(self, project: Project, shutdown: CancellationToken) -> ReconcilerHandle {
        self.start(run::Source::Loaded(project), shutdown)
    }

    /// Like [`Reconciler::spawn`], but the project in `dir` is loaded inside
    /// the background task, so that even a large project costs the host's
    /// startup nothing. An invalid project leaves the state `Failed` with
    /// its errors until a reload brings a valid one.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn_from(self, dir: PathBuf, shutdown: CancellationToken) -> ReconcilerHandle {
        self.start(run::Source::Dir(dir), shutdown)
    }

    fn start(mut self, source: run::Source, shutdown: CancellationToken) -> ReconcilerHandle {
        crate::observe::describe();
        self.options.reconcile.plan.writer =
            crate::fence::WriterKey::of(self.options.revision, std::time::SystemTime::now());
        let (status_tx, status_rx) = watch::channel(Status::starting(std::time::SystemTime::now()));
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        // One pace for every RPC of this reconciler, across reconnects.
        let pace = Pace::new(self.options.max_rps).stopping_at(shutdown.clone());
        self.connector.pace_with(pace.clone());
        crate::observe::pace_started(pace.status().ceiling);
        tokio::spawn(crate::observe::follow(status_rx.clone()));
        let task = tokio::spawn(run::run(
            self.connector,
            self.options,
            source,
            status_tx,
            commands_rx,
            shutdown.clone(),
        ));
        ReconcilerHandle {
            status: status_rx,
            commands: commands_tx,
            shutdown,
            task: Arc::new(Mutex::new(Some(task))),
            pace,
        }
    }
}

/// What the handle asks of the run loop.
#[derive(Debug)]
enum Command {
    /// Use this project from now on, or report why it was refused.
    Reload(Result<Project, ProjectError>),
    /// Reconcile now.
    Resync,
}

/// The host's side of a running reconciler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReconcilerHandle {
    status: watch::Receiver<Status>,
    commands: mpsc::UnboundedSender<Command>,
    shutdown: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    pace: Pace,
}

/// Why a project was refused: the last good one stays.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProjectError {
    /// The project has errors.
    #[error("{}", .0.summary())]
    Invalid(#[from] InvalidProject),
    /// Loading it failed before it could be checked (the loader panicked).
    #[error("loading the project failed: {0}")]
    LoadFailed(String),
}

/// The reconciler stopped (shut down, or its task died) before it synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the reconciler stopped before it synced")]
pub struct Stopped;

impl ReconcilerHandle {
    /// The current lifecycle state.
    pub fn state(&self) -> State {
        self.status.borrow().state.clone()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every new status.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The pace of the reconciler's RPCs to Temporal: the current rate, and
    /// whether (and how often) Temporal throttled them.
    pub fn pace(&self) -> PaceStatus {
        self.pace.status()
    }

    /// Waits until a reconcile has succeeded.
    ///
    /// # Errors
    ///
    /// [`Stopped`] when the reconciler shuts down or dies first.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future only stops the wait.
    pub async fn wait_synced(&self) -> Result<(), Stopped> {
        let mut status = self.status.clone();
        let reached = status
            .wait_for(|s| s.ever_synced || s.state == State::ShuttingDown)
            .await
            .map_err(|_| Stopped)?;
        if reached.ever_synced && reached.state != State::ShuttingDown {
            Ok(())
        } else {
            Err(Stopped)
        }
    }

    /// Readiness: false until the first successful reconcile, true from
    /// then on, false again from shutdown on.
    pub fn is_ready(&self) -> bool {
        self.status.borrow().is_ready() && self.is_live()
    }

    /// Liveness: false when the background task has died (for instance by
    /// panicking) without being asked to shut down.
    pub fn is_live(&self) -> bool {
        // The task owns the sender; it is gone once the task ends.
        self.status.has_changed().is_ok() || self.status.borrow().state == State::ShuttingDown
    }

    /// Reconciles `project` from now on. A reconcile under way finishes
    /// first; several reloads in a row coalesce into one reconcile.
    pub fn reload(&self, project: Project) {
        let _ = self.commands.send(Command::Reload(Ok(project)));
    }

    /// Loads the project in `dir` and reloads with it. An invalid project is
    /// refused: the last good one stays, nothing is deleted because of it,
    /// and the error shows in the status (and so in `/healthz` and the
    /// `schedule_sync_config_reload_total{outcome="invalid"}` metric).
    ///
    /// # Errors
    ///
    /// Why the project was refused.
    pub async fn reload_from(&self, dir: PathBuf) -> Result<(), ProjectError> {
        let result = match tokio::task::spawn_blocking(move || crate::project::load(&dir)).await {
            Ok(loaded) => loaded.map(|l| l.project).map_err(ProjectError::from),
            Err(panicked) => Err(ProjectError::LoadFailed(panicked.to_string())),
        };
        let answer = result.as_ref().map(drop).map_err(Clone::clone);
        let _ = self.commands.send(Command::Reload(result));
        answer
    }

    /// Reconciles now (coalesced with any other trigger).
    pub fn resync(&self) {
        let _ = self.commands.send(Command::Resync);
    }

    /// Asks the task to stop and waits for it: no new RPC starts, work in
    /// flight gets [`Options::shutdown_timeout`] and is then abandoned.
    /// Calling it again, or from a clone, waits for the same end.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.join().await;
    }

    /// Waits for the task to end (after shutdown, or a panic).
    pub async fn join(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match task {
            Some(task) => {
                if let Err(error) = task.await {
                    tracing::error!(%error, "the reconciler task died");
                }
            }
            None => {
                // Another caller is joining: wait for the sender to go.
                let mut status = self.status.clone();
                while status.changed().await.is_ok() {}
            }
        }
    }
}
