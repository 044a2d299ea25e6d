//! What a listing (and a Describe) shows of a schedule's firing: plain data
//! the stores fill and `health` reads.

use std::time::SystemTime;

use serde::Serialize;

/// What a listing shows of a schedule's firing, kept small: a project may
/// hold 100,000 schedules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// The last action the listing shows: when it was due (before jitter)
    /// and when it was taken.
    pub last_action: Option<Action>,
    /// The next time the server will act, if any.
    pub next_action: Option<SystemTime>,
    /// How many of the actions the listing shows (Temporal shows the last
    /// five) started a workflow that is still running.
    pub running: u32,
    /// Whether the last action's workflow is still running.
    pub last_running: bool,
    /// What a Describe shows besides; a listing shows none of it.
    pub counters: Option<Counters>,
}

/// One action a schedule took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// The time it was due, before jitter.
    pub scheduled: SystemTime,
    /// The time it was taken.
    pub taken: SystemTime,
}

/// The figures only a Describe shows, counted by the server since the
/// schedule was created; a Describe at a time is read against the one
/// before it, so only what changed in between counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Firings missed because they were older than the catch-up window.
    pub missed_catchup_window: u64,
    /// Firings skipped by the overlap policy.
    pub overlap_skipped: u64,
    /// Buffered actions dropped because the buffer was full.
    pub buffer_dropped: u64,
    /// Workflows started by the schedule that are still running.
    pub running_workflows: u32,
}
