//! schedule-sync keeps Temporal Schedules in step with schedules declared in
//! YAML workflow files.
//!
//! - [`project`] loads and validates a project folder;
//! - [`cron`] reads Temporal's cron syntax;
//! - [`fire_times`] computes the next firing times of a schedule;
//! - [`desired`] maps a project onto Temporal schedules, with ids and fingerprints;
//! - [`duration`] reads humane durations;
//! - [`plan`] computes what a reconcile must write;
//! - [`reconcile`] carries out a plan against a store;
//! - [`store`] reads and writes Temporal schedules;
//! - [`connection`] connects to Temporal following its own conventions;
//! - [`dev_server`] runs a local Temporal dev server for development and tests.
#![deny(missing_docs)]

pub mod connection;
pub mod cron;
pub mod desired;
pub mod dev_server;
pub mod diff;
pub mod duration;
pub mod fire_times;
pub mod lifecycle;
pub mod metrics;
pub mod plan;
#[cfg(feature = "http")]
pub mod probes;
pub mod project;
pub mod reconcile;
pub mod reconciler;
pub mod retry;
pub mod store;
