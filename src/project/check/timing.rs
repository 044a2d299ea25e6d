//! The rules for a schedule's timing keys (`cron`, `calendar`, `every`,
//! `offset`, `exclude`), its limit on actions (`remaining_actions`) and its
//! own id (`id`).

use std::collections::HashSet;
use std::time::Duration;

use super::super::model::{CalendarEntry, Interval, Timing};
use super::super::names;
use super::super::node::{Node, Value, quote};
use super::{FileCheck, cron_entries, get, point_into};
use crate::cron::{self, Calendar, CalendarField, MAX_COMMENT_LEN};

/// The keys of a calendar entry.
pub const CALENDAR_KEYS: [&str; 8] = [
    "second",
    "minute",
    "hour",
    "day_of_month",
    "month",
    "day_of_week",
    "year",
    "comment",
];

/// The keys of one interval in an `every` list.
pub const INTERVAL_KEYS: [&str; 2] = ["every", "offset"];

/// The most actions a schedule can be limited to (Temporal's counter is a
/// signed 64-bit number).
pub const MAX_REMAINING_ACTIONS: u64 = i64::MAX as u64;

/// The timing keys of a `schedule` mapping: at least one of `cron`,
/// `calendar` and `every`, which may mix.
pub(super) fn timing(
    check: &mut FileCheck<'_>,
    node: &Node,
    entries: &[(Node, Node)],
    timezone: Option<(&str, Option<super::Position>)>,
) -> Option<Timing> {
    let cron = get(entries, "cron");
    let calendar = get(entries, "calendar");
    let every = get(entries, "every");
    let offset = get(entries, "offset");
    if cron.is_none() && calendar.is_none() && every.is_none() {
        check
            .error(node.at, "`schedule` has no `cron`, `calendar` or `every`")
            .expected = Some(
            "at least one of `cron: \"0 2 * * *\"`, `calendar: {hour: 2}` and `every: 15m`"
                .to_owned(),
        );
        return None;
    }
    if let (Some(offset), None) = (offset, every) {
        let d = check.error(offset.at, "`offset` goes with `every`, not with `cron`");
        d.expected = Some("`offset` only next to `every: <interval>`".to_owned());
        d.help = Some("for a cron interval with a phase write `@every 1h/15m`".to_owned());
    }
    let cron = match cron {
        Some(node) => cron_entries(check, node, timezone)?,
        None => Vec::new(),
    };
    let calendars = match calendar {
        Some(node) => calendars(check, node, "calendar")?,
        None => Vec::new(),
    };
    let every = match every {
        Some(node) => intervals(check, node, offset)?,
        None => Vec::new(),
    };
    Some(Timing {
        cron,
        calendars,
        every,
    })
}

/// `every: 15m` (with `offset:`), or a list of durations and
/// `{every, offset}` mappings.
fn intervals(
    check: &mut FileCheck<'_>,
    node: &Node,
    offset: Option<&Node>,
) -> Option<Vec<Interval>> {
    let Value::Seq(items) = &node.value else {
        return interval(check, node, offset).map(|i| vec![i]);
    };
    if items.is_empty() {
        check.error(node.at, "`every` is an empty list").expected =
            Some("at least one interval, such as 15m".to_owned());
        return None;
    }
    if let Some(offset) = offset {
        let d = check.error(offset.at, "`offset` goes with a single `every`");
        d.expected = Some("`offset` only next to `every: <interval>`".to_owned());
        d.help = Some("in a list, write `- {every: 1h, offset: 15m}`".to_owned());
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    let mut seen = HashSet::new();
    for item in items {
        let parsed = match item.as_map() {
            Some(entries) => {
                check.unknown_keys(entries, &INTERVAL_KEYS, "an `every` entry", true);
                match get(entries, "every") {
                    Some(every) => interval(check, every, get(entries, "offset")),
                    None => {
                        check
                            .error(item.at, "an `every` entry has no `every`")
                            .expected = Some("`{every: 1h, offset: 15m}`".to_owned());
                        None
                    }
                }
            }
            None => interval(check, item, None),
        };
        match parsed {
            Some(parsed) if !seen.insert(parsed) => {
                check
                    .error(item.at, "this interval is listed twice")
                    .expected = Some("each interval once".to_owned());
                ok = false;
            }
            Some(parsed) => out.push(parsed),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn interval(
    check: &mut FileCheck<'_>,
    every_node: &Node,
    offset: Option<&Node>,
) -> Option<Interval> {
    let every = check.duration(every_node, "every");
    let phase = match offset {
        Some(n) => check.duration(n, "offset"),
        None => Some(Duration::ZERO),
    };
    match (every, phase) {
        (Some(every), _) if every < Duration::from_secs(1) => {
            check
                .error(every_node.at, "`every` is shorter than 1s")
                .expected = Some("an interval of at least 1s (Temporal's minimum)".to_owned());
            None
        }
        (Some(every), Some(phase)) if phase >= every => {
            let at = offset.map_or(every_node.at, |n| n.at);
            check
                .error(at, "`offset` is not shorter than `every`")
                .expected = Some("an offset from 0s up to, not including, the interval".to_owned());
            None
        }
        (Some(every), Some(offset)) => Some(Interval { every, offset }),
        _ => None,
    }
}

/// One calendar entry or a list of them, under `key`.
pub(super) fn calendars(
    check: &mut FileCheck<'_>,
    node: &Node,
    key: &str,
) -> Option<Vec<CalendarEntry>> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) if items.is_empty() => {
            check
                .error(node.at, format!("`{key}` is an empty list"))
                .expected = Some("at least one calendar entry".to_owned());
            return None;
        }
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match calendar_entry(check, item, key) {
            Some(entry) if out.contains(&entry) => {
                check
                    .error(item.at, format!("this `{key}` entry is listed twice"))
                    .expected = Some("each calendar entry once".to_owned());
                ok = false;
            }
            Some(entry) => out.push(entry),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn calendar_entry(check: &mut FileCheck<'_>, node: &Node, key: &str) -> Option<CalendarEntry> {
    let Some(entries) = node.as_map() else {
        check.wrong_type(
            node,
            key,
            "a calendar entry such as `{hour: 2, minute: 30, day_of_week: mon-fri}`",
        );
        return None;
    };
    check.unknown_keys(entries, &CALENDAR_KEYS, &format!("a `{key}` entry"), true);
    let mut calendar = Calendar::midnight();
    let mut ok = true;
    for field in CalendarField::ALL {
        if let Some(value) = get(entries, field.key()) {
            match calendar_field(check, value, field) {
                Some(ranges) => *field.of(&mut calendar) = ranges,
                None => ok = false,
            }
        }
    }
    let comment = match get(entries, "comment") {
        None => None,
        Some(n) => {
            let text = check.string(n, "comment")?;
            if text.chars().count() > MAX_COMMENT_LEN {
                check
                    .error(n.at, "`comment` is longer than 200 characters")
                    .expected =
                    Some("a comment of at most 200 characters (Temporal's limit)".into());
                return None;
            }
            (!text.is_empty()).then(|| text.to_owned())
        }
    };
    ok.then_some(CalendarEntry { calendar, comment })
}

/// A field's value: a number, a cron field (`9-17`, `*/15`, `mon-fri`) or a
/// list of those.
fn calendar_field(
    check: &mut FileCheck<'_>,
    node: &Node,
    field: CalendarField,
) -> Option<Vec<cron::Range>> {
    let key = field.key();
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) if items.is_empty() => {
            check
                .error(node.at, format!("`{key}` is an empty list"))
                .expected = Some("at least one value, or no key for the default".to_owned());
            return None;
        }
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut ranges = Vec::new();
    for item in items {
        let text = match &item.value {
            Value::Int(n) => n.to_string(),
            Value::Str(text) => text.clone(),
            _ => {
                check.wrong_type(
                    item,
                    key,
                    "a number, a range such as `9-17` or `*/15`, or a list of them",
                );
                return None;
            }
        };
        match cron::parse_calendar_field(field, &text) {
            Ok(more) => ranges.extend(more),
            Err(e) => {
                let at = point_into(check.source, item.at, &text, e.offset);
                let (min, max) = field.bounds();
                check
                    .error(
                        at,
                        format!("`{key}` {} is not valid: {}", quote(&text), e.message),
                    )
                    .expected = Some(format!(
                    "a number in {min}-{max}, a range such as `{min}-{max}/2`, `*`, or a list of them"
                ));
                return None;
            }
        }
    }
    Some(ranges)
}

/// `exclude`: cron strings or calendar entries, or a list of them. An
/// interval cannot be excluded, and exclusions take the schedule's zone.
pub(super) fn exclusions(check: &mut FileCheck<'_>, node: &Node) -> Option<Vec<CalendarEntry>> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) if items.is_empty() => {
            check.error(node.at, "`exclude` is an empty list").expected =
                Some("at least one cron string or calendar entry".to_owned());
            return None;
        }
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out: Vec<CalendarEntry> = Vec::new();
    let mut ok = true;
    for item in items {
        let entry = match &item.value {
            Value::Str(text) => excluded_cron(check, item, text),
            _ => calendar_entry(check, item, "exclude"),
        };
        match entry {
            Some(entry) if out.contains(&entry) => {
                check
                    .error(item.at, "this `exclude` entry is listed twice")
                    .expected = Some("each excluded time once".to_owned());
                ok = false;
            }
            Some(entry) => out.push(entry),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn excluded_cron(check: &mut FileCheck<'_>, item: &Node, text: &str) -> Option<CalendarEntry> {
    match cron::parse(text) {
        Ok(spec) => {
            if spec.timezone.is_some() {
                let d = check.error(item.at, "an excluded cron string has a time zone prefix");
                d.expected = Some("a cron string without `CRON_TZ=`".to_owned());
                d.help = Some("exclusions are read in the schedule's `timezone`".to_owned());
                return None;
            }
            match spec.timing {
                cron::Timing::Calendar(calendar) => Some(CalendarEntry {
                    calendar,
                    comment: spec.comment,
                }),
                cron::Timing::Interval { .. } => {
                    check
                        .error(item.at, "an interval cannot be excluded")
                        .expected =
                        Some("a cron string of calendar fields, such as `* * 25 12 *`".to_owned());
                    None
                }
            }
        }
        Err(e) => {
            let at = point_into(check.source, item.at, text, e.offset);
            check
                .error(
                    at,
                    format!("invalid cron string {}: {}", quote(text), e.message),
                )
                .expected = Some(
                "Temporal cron: 5-7 fields (minute hour day-of-month month day-of-week [year])"
                    .to_owned(),
            );
            None
        }
    }
}

/// `remaining_actions`: a whole number of at least 1.
pub(super) fn remaining_actions(check: &mut FileCheck<'_>, node: &Node) -> Option<u64> {
    match node.value {
        Value::Int(n) if n >= 1 && n <= i128::from(MAX_REMAINING_ACTIONS) => u64::try_from(n).ok(),
        Value::Int(_) => {
            check
                .error(node.at, "`remaining_actions` is not 1 or more")
                .expected =
                Some("a whole number of actions from 1; leave the key out for no limit".to_owned());
            None
        }
        _ => {
            check.wrong_type(node, "remaining_actions", "a whole number such as 10");
            None
        }
    }
}

/// `id`: the schedule's own id.
pub(super) fn schedule_id(check: &mut FileCheck<'_>, node: &Node) -> Option<String> {
    let text = check.string(node, "id")?;
    if names::is_schedule_id(text) {
        return Some(text.to_owned());
    }
    let d = check.error(
        node.at,
        format!(
            "`id` {} is not a schedule id schedule-sync accepts",
            quote(text)
        ),
    );
    d.expected = Some(names::SCHEDULE_ID_RULE.to_owned());
    None
}
