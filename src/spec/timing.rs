//! A schedule's timing as Temporal holds it (structured calendars,
//! intervals, excluded calendars, the limit on actions) and as the
//! fingerprint sees it.
//!
//! The fingerprint's form of the timing shapes that the version before
//! calendar entries, interval lists and exclusions already had (cron strings
//! only, or one `every`) is kept byte for byte, and the new keys appear in it
//! only when a file sets them: a schedule applied by that version whose file
//! is unchanged keeps its fingerprint, so an upgrade writes nothing.

use std::time::Duration;

use serde_json::json;
use temporalio_common::protos::temporal::api::schedule::v1::{
    IntervalSpec, Range as ProtoRange, ScheduleSpec, StructuredCalendarSpec,
};

use crate::cron::{Calendar, Range, Timing as CronTiming};
use crate::project::{CalendarEntry, Interval, Schedule as DeclaredSchedule, Timing};

/// The `timing` member of the fingerprint's canonical form.
pub(super) fn canonical_timing(timing: &Timing) -> serde_json::Value {
    let cron = || {
        timing
            .cron
            .iter()
            .map(|e| cron_json(&e.spec.timing, e.spec.comment.as_deref()))
            .collect::<Vec<_>>()
    };
    match (
        timing.cron.as_slice(),
        timing.calendars.as_slice(),
        timing.every.as_slice(),
    ) {
        // The two forms of the version before: kept as they were.
        (_, [], []) => json!({ "cron": cron() }),
        ([], [], [one]) => json!({ "every": interval_json(one) }),
        _ => json!({
            "cron": cron(),
            "calendar": timing.calendars.iter().map(calendar_entry_json).collect::<Vec<_>>(),
            "every": timing.every.iter().map(interval_json).collect::<Vec<_>>(),
        }),
    }
}

/// The members of the fingerprint's canonical form that only schedules
/// using the newer keys have, each present only when set.
pub(super) fn canonical_extras(
    declared: &DeclaredSchedule,
) -> serde_json::Map<String, serde_json::Value> {
    let mut extras = serde_json::Map::new();
    if !declared.exclude.is_empty() {
        extras.insert(
            "exclude".into(),
            declared
                .exclude
                .iter()
                .map(calendar_entry_json)
                .collect::<Vec<_>>()
                .into(),
        );
    }
    if let Some(limit) = declared.remaining_actions {
        extras.insert("remaining_actions".into(), limit.into());
    }
    if let Some(id) = &declared.id {
        extras.insert("schedule_id".into(), id.clone().into());
    }
    extras
}

fn interval_json(interval: &Interval) -> serde_json::Value {
    json!([
        interval.every.as_millis() as u64,
        interval.offset.as_millis() as u64
    ])
}

fn calendar_entry_json(entry: &CalendarEntry) -> serde_json::Value {
    calendar_json(&entry.calendar, entry.comment.as_deref())
}

pub(super) fn cron_json(timing: &CronTiming, comment: Option<&str>) -> serde_json::Value {
    match timing {
        CronTiming::Calendar(c) => calendar_json(c, comment),
        CronTiming::Interval { every, phase } => {
            json!({ "every": [every.as_millis() as u64, phase.as_millis() as u64] })
        }
    }
}

fn calendar_json(c: &Calendar, comment: Option<&str>) -> serde_json::Value {
    let ranges = |rs: &[Range]| {
        rs.iter()
            .map(|r| [r.start, r.end, r.step])
            .collect::<Vec<_>>()
    };
    json!({
        "second": ranges(&c.second), "minute": ranges(&c.minute), "hour": ranges(&c.hour),
        "day_of_month": ranges(&c.day_of_month), "month": ranges(&c.month),
        "day_of_week": ranges(&c.day_of_week), "year": ranges(&c.year),
        "comment": comment,
    })
}

/// Fills the calendars, intervals and exclusions of `spec`: the calendars
/// of the cron strings, then the calendar entries; the intervals of the cron
/// strings, then those of `every`.
pub(super) fn fill_spec(spec: &mut ScheduleSpec, declared: &DeclaredSchedule) {
    let timing = &declared.timing;
    for entry in &timing.cron {
        match &entry.spec.timing {
            CronTiming::Calendar(c) => spec
                .structured_calendar
                .push(structured(c, entry.spec.comment.as_deref())),
            CronTiming::Interval { every, phase } => spec.interval.push(interval(*every, *phase)),
        }
    }
    for entry in &timing.calendars {
        spec.structured_calendar
            .push(structured(&entry.calendar, entry.comment.as_deref()));
    }
    for every in &timing.every {
        spec.interval.push(interval(every.every, every.offset));
    }
    for entry in &declared.exclude {
        spec.exclude_structured_calendar
            .push(structured(&entry.calendar, entry.comment.as_deref()));
    }
}

fn interval(every: Duration, phase: Duration) -> IntervalSpec {
    IntervalSpec {
        interval: Some(super::duration(every)),
        phase: (!phase.is_zero()).then(|| super::duration(phase)),
    }
}

fn proto_ranges(ranges: &[Range]) -> Vec<ProtoRange> {
    // The server stores every range with its end and step written out, so
    // they are sent that way and read back unchanged.
    let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    ranges
        .iter()
        .map(|r| ProtoRange {
            start: int(r.start),
            end: int(r.end),
            step: int(r.step),
        })
        .collect()
}

pub(crate) fn structured(calendar: &Calendar, comment: Option<&str>) -> StructuredCalendarSpec {
    StructuredCalendarSpec {
        second: proto_ranges(&calendar.second),
        minute: proto_ranges(&calendar.minute),
        hour: proto_ranges(&calendar.hour),
        day_of_month: proto_ranges(&calendar.day_of_month),
        month: proto_ranges(&calendar.month),
        year: proto_ranges(&calendar.year),
        day_of_week: proto_ranges(&calendar.day_of_week),
        comment: comment.unwrap_or_default().to_owned(),
    }
}
