//! When a schedule fires and what it leaves out: cron strings, calendar
//! entries written as fields, intervals, exclusions and a limit on the
//! number of actions, as a workflow file declares them.

use std::time::Duration;

use serde::Serialize;

use super::model::{CronEntry, humane};
use crate::cron::Calendar;

/// The firing times of a schedule: the union of every entry's times, as
/// Temporal's spec holds them. At least one entry is present.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timing {
    /// Cron strings (`cron:`), each a calendar or an `@every` interval.
    pub cron: Vec<CronEntry>,
    /// Calendar entries written as fields (`calendar:`).
    pub calendars: Vec<CalendarEntry>,
    /// Intervals (`every:`, with `offset:` for a single one).
    pub every: Vec<Interval>,
}

impl Timing {
    /// Cron strings only.
    pub fn cron(entries: Vec<CronEntry>) -> Self {
        Timing {
            cron: entries,
            ..Timing::default()
        }
    }

    /// One interval only.
    pub fn every(every: Duration, offset: Duration) -> Self {
        Timing {
            every: vec![Interval { every, offset }],
            ..Timing::default()
        }
    }

    /// Whether nothing makes the schedule fire.
    pub fn is_empty(&self) -> bool {
        self.cron.is_empty() && self.calendars.is_empty() && self.every.is_empty()
    }
}

/// A fixed interval, shifted from the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Interval {
    /// Time between firings, at least a second.
    #[serde(with = "humane")]
    pub every: Duration,
    /// Shift from the epoch, below `every`.
    #[serde(with = "humane")]
    pub offset: Duration,
}

/// One calendar entry: a time matches when every field does. Fields a file
/// leaves out take Temporal's defaults (second, minute and hour 0; every
/// day, month, weekday and year).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CalendarEntry {
    /// The fields.
    #[serde(skip)]
    pub calendar: Calendar,
    /// The comment Temporal keeps with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}
