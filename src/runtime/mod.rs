//! The runtime component a host server embeds: [`Reconciler::spawn`] returns
//! at once with a [`ReconcilerHandle`], and one background task reconciles
//! at startup, on reload and on an optional periodic resync, retrying with
//! backoff while Temporal is away. The task alone owns the watch channel that
//! publishes its [`Status`]; probes, metrics and shutdown read it. A host may
//! run several reconcilers side by side, one per project: their metrics
//! carry the project's name as a label.
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
//! // The reconciler worked on a child of the host's token.
//! assert!(!shutdown.is_cancelled());
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo());
//! ```

mod connector;
mod heap;
pub mod lifecycle;
mod metrics;
pub mod retry;
mod run;
mod status;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use connector::{AttemptError, Connector, TemporalConnector};
pub use run::FOLLOW_UP;
pub use status::{HeldDeletion, ScheduleState, ScheduleStatus, Status, Totals};

use crate::project::{InvalidProject, Project};
use crate::reconcile::ReconcileOptions;
use crate::runtime::lifecycle::State;
use crate::runtime::retry::RetryPolicy;
use crate::spec::DesiredProject;
use crate::store::{Pace, PaceStatus};

/// How the reconciler behaves; every field has a default. Durations may be
/// as long as [`Duration::MAX`], which means "never".
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// The environment of the project to reconcile (one that its
    /// `project.yaml` declares), whose overrides apply when the project is
    /// loaded from a folder ([`Reconciler::spawn_from`],
    /// [`ReconcilerHandle::reload_from`]). The connection is the host's
    /// choice: see [`crate::connection::Settings::for_environment`].
    pub environment: Option<String>,
    /// The most RPCs per second sent to Temporal; `None` for no ceiling.
    /// Below it, the pace adapts to the server: it slows down when Temporal
    /// throttles (ResourceExhausted) and speeds up again while answers are
    /// fine. See [`crate::store::Pace`].
    pub max_rps: Option<f64>,
    /// Export series per schedule (its health, last and next action), not
    /// only counts by health: off by default, since 10,000 schedules would
    /// make 70,000 series. See [`crate::telemetry::SCHEDULE_HEALTH`].
    pub schedule_metrics: bool,
    /// How many schedules each reconcile describes, round robin, for what
    /// only a Describe shows (missed catch-up windows, overlap skips,
    /// dropped buffered actions, running workflows); paced like every RPC.
    /// 0 reads only the listing.
    pub health_describes: usize,
    /// After each reconcile, give the memory it freed back to the system
    /// (glibc's `malloc_trim`, on Linux with glibc; elsewhere nothing). A
    /// reconcile of 100,000 schedules briefly holds its listing, plan and
    /// report twice over; without this, the allocator keeps that peak in
    /// its per-thread arenas for as long as the process lives. On by
    /// default; it costs a few milliseconds a reconcile. When on, the
    /// reconciler also holds glibc's trim threshold at its default
    /// (`mallopt(M_TRIM_THRESHOLD)`, process-wide), so that the free tops
    /// of the per-thread arenas, which `malloc_trim` leaves, go back too.
    pub trim_memory: bool,
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
            environment: None,
            max_rps: None,
            schedule_metrics: false,
            health_describes: DEFAULT_HEALTH_DESCRIBES,
            trim_memory: true,
        }
    }
}

/// How many schedules a reconcile describes, by default, for the figures
/// only a Describe shows ([`Options::health_describes`]).
pub const DEFAULT_HEALTH_DESCRIBES: usize = 4;

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
    /// at once, to reconcile `project`.
    ///
    /// The task works on a child of `shutdown`: cancelling `shutdown` (the
    /// host's token) stops it, and the library never cancels the host's
    /// token itself ([`ReconcilerHandle::shutdown`] cancels only the child).
    /// Readiness is false from the instant `shutdown` is cancelled.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn(self, project: Project, shutdown: CancellationToken) -> ReconcilerHandle {
        let label = project.name.clone();
        let desired = DesiredProject::of(&project);
        drop(project);
        self.start(run::Source::Loaded(Arc::new(desired)), label, &shutdown)
    }

    /// Like [`Reconciler::spawn`], but the project in `dir` is loaded inside
    /// the background task, so that even a large project costs the host's
    /// startup nothing. An invalid project leaves the state `Failed` with
    /// its errors until a reload brings a valid one. Until the project is
    /// loaded, its metrics carry the folder's name as their `project` label.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn_from(self, dir: PathBuf, shutdown: CancellationToken) -> ReconcilerHandle {
        let label = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.start(run::Source::Dir(dir), label, &shutdown)
    }

    fn start(
        mut self,
        source: run::Source,
        label: String,
        host: &CancellationToken,
    ) -> ReconcilerHandle {
        // Ours to cancel; the host's token stays the host's.
        let shutdown = host.child_token();
        crate::telemetry::describe();
        self.options.reconcile.plan.writer =
            crate::fence::WriterKey::of(self.options.revision, std::time::SystemTime::now());
        let first = match &source {
            run::Source::Loaded(project) => Some(project.clone()),
            run::Source::Dir(_) => None,
        };
        let (status_tx, status_rx) =
            watch::channel(Status::starting(std::time::SystemTime::now(), first));
        let mailbox = Arc::new(Mailbox::default());
        let environment = self.options.environment.clone();
        // One pace for every RPC of this reconciler, across reconnects.
        let pace = Pace::new(self.options.max_rps).stopping_at(shutdown.clone());
        self.connector.pace_with(pace.clone());
        tokio::spawn(metrics::follow(
            status_rx.clone(),
            label,
            pace.status().ceiling,
            self.options.schedule_metrics,
        ));
        let task = tokio::spawn(run::run(
            self.connector,
            self.options,
            source,
            status_tx,
            mailbox.clone(),
            shutdown.clone(),
        ));
        ReconcilerHandle {
            status: status_rx,
            mailbox,
            shutdown,
            task: Arc::new(Mutex::new(Some(task))),
            environment,
            pace,
        }
    }
}

/// What the host asked of the run loop that the loop has not taken yet.
/// Holds at most one project: the latest reload replaces a pending one.
#[derive(Debug, Default)]
struct Requests {
    /// The latest project to reconcile, in the compact form.
    project: Option<Arc<DesiredProject>>,
    /// Why the latest reload was refused, when it came after `project`.
    refused: Option<InvalidProject>,
    /// Reloads accepted and refused since the loop last looked.
    applied: u64,
    /// See `applied`.
    invalid: u64,
    /// Reconcile now.
    resync: bool,
    /// The run loop has ended: nobody takes requests any more.
    closed: bool,
}

/// Where the handle leaves [`Requests`] and wakes the run loop.
#[derive(Debug, Default)]
struct Mailbox {
    requests: Mutex<Requests>,
    posted: Notify,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The host's side of a running reconciler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReconcilerHandle {
    status: watch::Receiver<Status>,
    mailbox: Arc<Mailbox>,
    /// The child of the host's token that the task works on.
    shutdown: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// The environment whose overrides a reload from a folder applies.
    environment: Option<String>,
    pace: Pace,
}

/// The reconciler has stopped (shut down, or its task died): it takes no
/// more requests, and it will not sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the reconciler has stopped")]
pub struct Stopped;

/// Why [`ReconcilerHandle::reload_from`] did not take a project.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The project cannot be used; the last good one stays. Its message
    /// names every error with its file, line and column.
    #[error(transparent)]
    Invalid(#[from] InvalidProject),
    /// The reconciler has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

impl ReconcilerHandle {
    /// The current lifecycle state, as the run loop last published it.
    pub fn state(&self) -> State {
        self.status.borrow().state.clone()
    }

    /// The current status, as the run loop last published it.
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
    /// [`Stopped`] when shutdown is asked, or the reconciler dies, first.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future only stops the wait.
    pub async fn wait_synced(&self) -> Result<(), Stopped> {
        let mut status = self.status.clone();
        let synced = async {
            status
                .wait_for(|s| s.ever_synced || s.state == State::ShuttingDown)
                .await
                .map(|reached| reached.ever_synced && reached.state != State::ShuttingDown)
        };
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Err(Stopped),
            reached = synced => match reached {
                Ok(true) => Ok(()),
                _ => Err(Stopped),
            },
        }
    }

    /// Readiness: false until the first successful reconcile, true from
    /// then on, and false again from the instant shutdown is asked (the
    /// host's token or [`ReconcilerHandle::shutdown`]), without waiting for
    /// the run loop to notice.
    pub fn is_ready(&self) -> bool {
        !self.shutdown.is_cancelled() && self.status.borrow().is_ready() && self.is_live()
    }

    /// Liveness: false when the background task has died (for instance by
    /// panicking) without being asked to shut down.
    pub fn is_live(&self) -> bool {
        // The task owns the sender; it is gone once the task ends.
        self.status.has_changed().is_ok() || self.status.borrow().state == State::ShuttingDown
    }

    /// Reconciles `project` from now on. A reconcile under way finishes
    /// first. Reloads are not queued: one that comes while another waits
    /// replaces it, so only the latest is reconciled.
    ///
    /// # Errors
    ///
    /// [`Stopped`] when the reconciler has stopped (or shutdown is asked).
    pub fn reload(&self, project: Project) -> Result<(), Stopped> {
        self.reload_desired(DesiredProject::of(&project))
    }

    fn reload_desired(&self, project: DesiredProject) -> Result<(), Stopped> {
        let project = Arc::new(project);
        self.post(|requests| {
            requests.project = Some(project);
            requests.refused = None;
            requests.applied += 1;
        })
    }

    /// Loads the project in `dir` and reloads with it, as
    /// [`ReconcilerHandle::reload`] does.
    ///
    /// An invalid project is refused: the last good one stays (as does a
    /// valid one still waiting to be reconciled), nothing is deleted because
    /// of it, and the error shows in the status (`reload_error`, and so in
    /// `/healthz`) and in the `schedule_sync_config_reload_total{outcome=
    /// "invalid"}` metric. The library also logs it once, at WARN, with the
    /// message "the reload was refused; the last good project stays": a host
    /// that reports the returned error itself may filter that line out
    /// (target `schedule_sync::runtime::run`).
    ///
    /// # Errors
    ///
    /// [`ReloadError::Invalid`] with every error of the project;
    /// [`ReloadError::Stopped`] when the reconciler has stopped.
    pub async fn reload_from(&self, dir: PathBuf) -> Result<(), ReloadError> {
        if self.is_stopped() {
            return Err(Stopped.into());
        }
        let loaded = {
            let dir = dir.clone();
            let options = crate::project::LoadOptions::environment(self.environment.as_deref());
            tokio::task::spawn_blocking(move || {
                let (mut desired, workflows) = crate::spec::load_desired(&dir, &options)?;
                // Loaded by the global pool's threads, moved out of their
                // heaps by this one.
                desired.repack();
                Ok((desired, workflows))
            })
            .await
        };
        let loaded = match loaded {
            Ok(loaded) => loaded.map(|(desired, _)| desired),
            Err(panicked) => Err(InvalidProject::load_failed(&dir, &panicked.to_string())),
        };
        match loaded {
            Ok(project) => Ok(self.reload_desired(project)?),
            Err(invalid) => {
                let refused = invalid.clone();
                self.post(|requests| {
                    requests.refused = Some(refused);
                    requests.invalid += 1;
                })?;
                Err(invalid.into())
            }
        }
    }

    /// Reconciles now (coalesced with any other trigger).
    ///
    /// # Errors
    ///
    /// [`Stopped`] when the reconciler has stopped (or shutdown is asked).
    pub fn resync(&self) -> Result<(), Stopped> {
        self.post(|requests| requests.resync = true)
    }

    /// Leaves a request for the run loop and wakes it.
    fn post(&self, request: impl FnOnce(&mut Requests)) -> Result<(), Stopped> {
        if self.shutdown.is_cancelled() {
            return Err(Stopped);
        }
        {
            let mut requests = self.mailbox.lock();
            if requests.closed {
                return Err(Stopped);
            }
            request(&mut requests);
        }
        self.mailbox.posted.notify_one();
        Ok(())
    }

    fn is_stopped(&self) -> bool {
        self.shutdown.is_cancelled() || self.mailbox.lock().closed
    }

    /// Asks the task to stop and waits for it: no new RPC starts, work in
    /// flight gets [`Options::shutdown_timeout`] and is then abandoned.
    /// Calling it again, or from a clone, waits for the same end. It
    /// cancels the reconciler's own token only, never the host's.
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
