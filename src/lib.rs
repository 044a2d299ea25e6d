//! schedule-sync keeps Temporal Schedules in step with schedules declared in
//! YAML workflow files, and runs inside a host server: load a project
//! ([`load`]), spawn a [`Reconciler`] on it, and serve readiness, health and
//! metrics from its [`ReconcilerHandle`]. Everything a host uses is here, at
//! the crate root:
//!
//! - the reconciler: [`Reconciler`], [`ReconcilerHandle`], [`Options`],
//!   [`RetryPolicy`], [`ReconcileOptions`], and the [`CancellationToken`]
//!   that stops it (the `tokio-util` type, re-exported so that a host needs
//!   no version of its own);
//! - what it reports: [`Status`], [`State`], [`ScheduleStatus`],
//!   [`ScheduleState`], [`PaceStatus`];
//! - projects: [`load`], [`load_with`], [`LoadOptions`], [`Loaded`],
//!   [`Project`], and the one error for a project that cannot be used,
//!   [`InvalidProject`], with its [`Diagnostic`]s;
//! - Temporal: [`TemporalConnector`] and its [`Settings`]; for tests the
//!   in-memory [`MemoryStore`], which injects faults named by [`Rpc`] and
//!   [`Code`];
//! - the metric names of [`telemetry`], and (feature `http`) the probes
//!   router, [`probes::router`];
//! - errors: [`InvalidProject`], [`ReloadError`], [`Stopped`],
//!   [`ConnectionError`].
//!
//! [`embedding`] shows a whole host. Modules hidden from these docs serve
//! the `schedule-sync` binary and the crate's own tests; they are not part
//! of the API and may change in any release.
//!
//! Inside, a reconcile follows one path, a module a step: `project` loads
//! and checks a folder, `spec` maps it onto the Temporal schedules it wants,
//! `store` reads what Temporal holds, `compare` says whether the two agree
//! and what differs, `plan` decides what to do (a pure function),
//! `reconcile` carries out the plan's steps, `runtime` runs reconciles in
//! the background with retries, readiness and shutdown and turns its status
//! into metrics (named in `telemetry`), and `probes` into HTTP endpoints.
#![deny(missing_docs)]

#[doc(hidden)]
pub mod compare;
#[doc(hidden)]
pub mod connection;
#[doc(hidden)]
pub mod cron;
#[cfg(feature = "dev-server")]
pub mod dev_server;
#[doc(hidden)]
pub mod duration;
pub mod embedding;
#[doc(hidden)]
pub mod fence;
#[doc(hidden)]
pub mod health;
#[doc(hidden)]
pub mod import;
#[doc(hidden)]
pub mod plan;
#[cfg(feature = "http")]
pub mod probes;
#[doc(hidden)]
pub mod project;
#[doc(hidden)]
pub mod reconcile;
#[doc(hidden)]
pub mod runtime;
#[doc(hidden)]
pub mod spec;
#[doc(hidden)]
pub mod store;
pub mod telemetry;

pub use tokio_util::sync::CancellationToken;

pub use reconcile::RPC_ATTEMPTS;
pub use telemetry::RECONCILE_DURATION;

pub use connection::{ConnectionError, DEFAULT_CONNECT_TIMEOUT, Overrides, Settings};
pub use fence::{Writer, WriterKey};
pub use health::{Health, Watch as HealthWatch};
pub use plan::{HoldReason, PlanOptions};
pub use project::{
    Diagnostic, InvalidProject, LoadOptions, Loaded, Project, Severity, load, load_with,
};
pub use project::{Environment, Related};
pub use reconcile::ReconcileOptions;
pub use runtime::lifecycle::{ErrorKind, FailedReason, State};
pub use runtime::retry::{Jitter, RetryPolicy};
pub use runtime::{
    AttemptError, Connector, HeldDeletion, Options, Reconciler, ReconcilerHandle, ReloadError,
    ScheduleState, ScheduleStatus, Status, Stopped, TemporalConnector, Totals,
};
pub use store::{Code, MemoryStore, PaceStatus, Rpc, SchedulerModel, StoreError};
