//! schedule-sync keeps Temporal Schedules in step with schedules declared in
//! YAML workflow files. A reconcile follows one path, and each module is one
//! step of it:
//!
//! 1. [`project`] loads and checks a project folder (with [`cron`] and
//!    [`duration`] for the syntax of its fields);
//! 2. [`spec`] maps it onto the Temporal schedules it wants: ids, the
//!    schedule itself, its fingerprint, and its next firing times;
//! 3. [`store`] reads what Temporal holds ([`store::TemporalStore`], or
//!    [`store::MemoryStore`] in tests), connected through [`connection`];
//! 4. [`plan`] compares the two, a pure function;
//! 5. [`reconcile`] carries out the plan's steps against the store;
//! 6. [`runtime`] runs reconciles in the background of a host server, with
//!    retries, readiness and shutdown, and publishes its status;
//! 7. [`telemetry`] turns that status into metrics, and [`probes`] (feature
//!    `http`) into HTTP endpoints.
//!
//! [`fence`] ranks the writers of one project (replicas, the versions of a
//! rolling deploy, a person running `apply`) so that the newest one wins.
//!
//! [`import`] goes the other way, for `schedule-sync import`: a schedule
//! Temporal holds, as a workflow file.
//!
//! [`dev_server`] (feature `dev-server`) starts a local Temporal dev server
//! for tests.
#![deny(missing_docs)]

pub mod connection;
pub mod cron;
#[cfg(feature = "dev-server")]
pub mod dev_server;
pub mod duration;
pub mod embedding;
pub mod fence;
pub mod health;
pub mod import;
pub mod plan;
#[cfg(feature = "http")]
pub mod probes;
pub mod project;
pub mod reconcile;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod telemetry;
