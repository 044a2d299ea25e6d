//! A held spec's firing times and exclusions in the forms a person writes:
//! cron strings where a cron string says exactly the same, calendar entries
//! written as fields where none does, `every` and `offset` for intervals.

use std::fmt::Write as _;
use std::time::Duration;

use temporalio_common::protos::temporal::api::schedule::v1::{
    IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec,
};

use super::{quoted, std_duration};
use crate::compare::changes::normal_calendar;
use crate::cron::{self, Calendar, CalendarField};
use crate::duration::format_duration;
use crate::spec::timing::structured;

/// `cron:` (one line or a list), `every:` and `offset:`, or, when a
/// calendar says what no cron string can, `calendar:` entries and an
/// `every:` list.
pub(super) fn write_timing(out: &mut String, spec: &ScheduleSpec) -> Result<(), String> {
    let cron_lines: Option<Vec<String>> = spec.structured_calendar.iter().map(cron_line).collect();
    let Some(mut lines) = cron_lines else {
        out.push_str("  calendar:\n");
        for calendar in &spec.structured_calendar {
            let _ = writeln!(out, "    - {}", calendar_mapping(calendar));
        }
        if !spec.interval.is_empty() {
            out.push_str("  every:\n");
            for interval in &spec.interval {
                let (every, offset) = interval_parts(interval)?;
                if offset.is_zero() {
                    let _ = writeln!(out, "    - {}", format_duration(every));
                } else {
                    let _ = writeln!(
                        out,
                        "    - {{every: {}, offset: {}}}",
                        format_duration(every),
                        format_duration(offset)
                    );
                }
            }
        }
        return Ok(());
    };
    if let ([], [interval]) = (lines.as_slice(), spec.interval.as_slice()) {
        let (every, offset) = interval_parts(interval)?;
        let _ = writeln!(out, "  every: {}", format_duration(every));
        if !offset.is_zero() {
            let _ = writeln!(out, "  offset: {}", format_duration(offset));
        }
        return Ok(());
    }
    for interval in &spec.interval {
        let (every, offset) = interval_parts(interval)?;
        lines.push(if offset.is_zero() {
            format!("@every {}", format_duration(every))
        } else {
            format!(
                "@every {}/{}",
                format_duration(every),
                format_duration(offset)
            )
        });
    }
    write_list(out, "cron", &lines);
    Ok(())
}

/// `exclude:`: each excluded calendar as a cron string, or as a calendar
/// entry when no cron string says it.
pub(super) fn write_exclusions(out: &mut String, spec: &ScheduleSpec) {
    if spec.exclude_structured_calendar.is_empty() {
        return;
    }
    let items: Vec<String> = spec
        .exclude_structured_calendar
        .iter()
        .map(|c| cron_line(c).map_or_else(|| calendar_mapping(c), |line| quoted(&line)))
        .collect();
    match items.as_slice() {
        [one] => {
            let _ = writeln!(out, "  exclude: {one}");
        }
        _ => {
            out.push_str("  exclude:\n");
            for item in &items {
                let _ = writeln!(out, "    - {item}");
            }
        }
    }
}

fn write_list(out: &mut String, key: &str, lines: &[String]) {
    match lines {
        [line] => {
            let _ = writeln!(out, "  {key}: {}", quoted(line));
        }
        _ => {
            let _ = writeln!(out, "  {key}:");
            for line in lines {
                let _ = writeln!(out, "    - {}", quoted(line));
            }
        }
    }
}

fn interval_parts(interval: &IntervalSpec) -> Result<(Duration, Duration), String> {
    let every = interval
        .interval
        .as_ref()
        .map(std_duration)
        .ok_or("it has an interval with no length")?;
    Ok((
        every,
        interval
            .phase
            .as_ref()
            .map(std_duration)
            .unwrap_or_default(),
    ))
}

/// A structured calendar as a cron line (five fields when the second is 0
/// and every year matches, six with a year, seven with a second), when the
/// line reads back as the same calendar.
fn cron_line(calendar: &StructuredCalendarSpec) -> Option<String> {
    if calendar.comment.contains(['\n', '\r', '#']) || calendar.comment.trim() != calendar.comment {
        return None;
    }
    let calendar_normal = normal_calendar(calendar);
    let c = &calendar_normal;
    let at_zero = matches!(c.second.as_slice(), [r] if r.start == 0 && r.end == 0);
    let mut fields = Vec::new();
    if !at_zero {
        fields.push(field(&c.second, 0, 59));
    }
    fields.extend([
        field(&c.minute, 0, 59),
        field(&c.hour, 0, 23),
        field(&c.day_of_month, 1, 31),
        field(&c.month, 1, 12),
        field(&c.day_of_week, 0, 6),
    ]);
    if !at_zero || !c.year.is_empty() {
        // An empty year list is every year; no range can spell it but `*`.
        fields.push(if c.year.is_empty() {
            "*".to_owned()
        } else {
            field(&c.year, i32::MIN, i32::MAX)
        });
    }
    let mut line = fields.join(" ");
    if !c.comment.is_empty() {
        line.push_str(" # ");
        line.push_str(&c.comment);
    }
    let parsed = cron::parse(&line).ok()?;
    let cron::Timing::Calendar(back) = parsed.timing else {
        return None;
    };
    (parsed.timezone.is_none()
        && normal_calendar(&structured(&back, parsed.comment.as_deref())) == calendar_normal)
        .then_some(line)
}

/// A structured calendar as a one-line calendar entry, each field that is
/// not Temporal's default written as a number or a cron field.
fn calendar_mapping(calendar: &StructuredCalendarSpec) -> String {
    let c = normal_calendar(calendar);
    let default = normal_calendar(&structured(&Calendar::midnight(), None));
    let mut parts = Vec::new();
    for key in CalendarField::ALL {
        let (ranges, defaults) = match key {
            CalendarField::Second => (&c.second, &default.second),
            CalendarField::Minute => (&c.minute, &default.minute),
            CalendarField::Hour => (&c.hour, &default.hour),
            CalendarField::DayOfMonth => (&c.day_of_month, &default.day_of_month),
            CalendarField::Month => (&c.month, &default.month),
            CalendarField::DayOfWeek => (&c.day_of_week, &default.day_of_week),
            CalendarField::Year => (&c.year, &default.year),
        };
        if ranges == defaults {
            continue;
        }
        let value = match ranges.as_slice() {
            [r] if r.start == r.end => r.start.to_string(),
            _ => {
                let (min, max) = match key {
                    CalendarField::Year => (i32::MIN, i32::MAX),
                    other => {
                        let (min, max) = other.bounds();
                        (
                            i32::try_from(min).unwrap_or(0),
                            i32::try_from(max).unwrap_or(0),
                        )
                    }
                };
                quoted(&field(ranges, min, max))
            }
        };
        parts.push(format!("{}: {value}", key.key()));
    }
    if !c.comment.is_empty() {
        parts.push(format!("comment: {}", quoted(&c.comment)));
    }
    format!("{{{}}}", parts.join(", "))
}

/// One cron field: `*`, `*/s`, `a`, `a-b` or `a-b/s`, comma-separated.
fn field(ranges: &[Range], min: i32, max: i32) -> String {
    if ranges.is_empty() {
        return "*".to_owned();
    }
    ranges
        .iter()
        .map(|r| {
            let (start, end, step) = (r.start, r.end.max(r.start), r.step.max(1));
            match (start == min && end == max, start == end, step) {
                (true, _, 1) => "*".to_owned(),
                (true, _, step) => format!("*/{step}"),
                (false, true, _) => start.to_string(),
                (false, _, 1) => format!("{start}-{end}"),
                (false, _, step) => format!("{start}-{end}/{step}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
