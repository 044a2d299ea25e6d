//! The fields that differ between the schedule Temporal holds and the desired
//! one, in words a reviewer reads in `plan`: one line per managed field.

use serde::Serialize;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy;
use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
use temporalio_common::protos::temporal::api::schedule::v1::{
    Range, Schedule, ScheduleSpec, StructuredCalendarSpec,
};

use crate::spec::TEMPORAL_DEFAULT_CATCHUP_WINDOW;

/// One managed field whose value differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The field, as PRODUCT.md's schema or Temporal's schedule names it.
    pub field: &'static str,
    /// Its value on the server.
    pub current: String,
    /// Its value in the project.
    pub desired: String,
}

/// The managed fields of `held` that differ from `want`, in a fixed order.
/// The paused state is left out: pauses are the plan's business. Both are
/// [`normalized`] first, so two spellings of one meaning are no change.
pub fn field_changes(held: &Schedule, want: &Schedule) -> Vec<FieldChange> {
    let (held, want) = (normalized(held), normalized(want));
    let mut changes = Vec::new();
    for (field, render) in FIELDS.iter().chain(&TIMING_FIELDS) {
        let (current, desired) = (render(&held), render(&want));
        if current != desired {
            changes.push(FieldChange {
                field,
                current,
                desired,
            });
        }
    }
    let (held_options, want_options) =
        (super::action::options(&held), super::action::options(&want));
    for ((field, current), desired) in super::action::FIELDS
        .into_iter()
        .zip(held_options)
        .zip(want_options)
    {
        if current != desired {
            changes.push(FieldChange {
                field,
                current,
                desired,
            });
        }
    }
    changes
}

/// `schedule` with each managed field that Temporal reads the same way in
/// two spellings written in the one schedule-sync sends: no time zone is
/// `UTC`, a zero jitter or phase is none, an empty input is none, a JSON
/// input is its compact form with sorted keys, no catch-up window is
/// Temporal's default of one year, and no overlap policy is `skip`. A
/// schedule made with the Temporal CLI or an SDK then compares equal to the
/// one a workflow file declares with the same meaning.
pub fn normalized(schedule: &Schedule) -> Schedule {
    let mut schedule = schedule.clone();
    if let Some(spec) = schedule.spec.as_mut() {
        if spec.timezone_name.is_empty() && spec.timezone_data.is_empty() {
            spec.timezone_name = "UTC".to_owned();
        }
        spec.jitter = spec.jitter.take().filter(|d| !is_zero(d));
        for interval in &mut spec.interval {
            interval.phase = interval.phase.take().filter(|d| !is_zero(d));
        }
        normal_calendars(spec);
    }
    if let Some(Action::StartWorkflow(start)) =
        schedule.action.as_mut().and_then(|a| a.action.as_mut())
    {
        start.input = start.input.take().filter(|i| !i.payloads.is_empty());
        for payload in start.input.iter_mut().flat_map(|i| i.payloads.iter_mut()) {
            if let Some(value) = json_value(payload) {
                payload.data = crate::spec::canonical_json(&value).into_bytes();
            }
        }
    }
    let policies = schedule.policies.get_or_insert_with(Default::default);
    policies.overlap_policy = policies
        .overlap_policy
        .max(ScheduleOverlapPolicy::Skip as i32);
    policies
        .catchup_window
        .get_or_insert(prost_wkt_types::Duration {
            seconds: i64::try_from(TEMPORAL_DEFAULT_CATCHUP_WINDOW.as_secs()).unwrap_or(i64::MAX),
            nanos: 0,
        });
    schedule
}

/// The value of a payload in the `json/plain` encoding, when it parses.
pub fn json_value(payload: &Payload) -> Option<serde_json::Value> {
    (payload.metadata.get("encoding").map(Vec::as_slice) == Some(b"json/plain".as_slice()))
        .then(|| serde_json::from_slice(&payload.data).ok())
        .flatten()
}

fn is_zero(duration: &prost_wkt_types::Duration) -> bool {
    duration.seconds == 0 && duration.nanos == 0
}

type Render = fn(&Schedule) -> String;

const FIELDS: [(&str, Render); 12] = [
    ("cron", |s| spec(s).map(calendars).unwrap_or_default()),
    ("every", |s| spec(s).map(intervals).unwrap_or_default()),
    ("timezone", |s| {
        spec(s).map(|s| s.timezone_name.clone()).unwrap_or_default()
    }),
    ("jitter", |s| {
        seconds(spec(s).and_then(|s| s.jitter.as_ref()))
    }),
    ("start", |s| {
        timestamp(spec(s).and_then(|s| s.start_time.as_ref()))
    }),
    ("end", |s| {
        timestamp(spec(s).and_then(|s| s.end_time.as_ref()))
    }),
    ("type", |s| {
        start(s)
            .and_then(|w| w.workflow_type.as_ref())
            .map(|t| t.name.clone())
            .unwrap_or_default()
    }),
    ("task_queue", |s| {
        start(s)
            .and_then(|w| w.task_queue.as_ref())
            .map(|q| q.name.clone())
            .unwrap_or_default()
    }),
    ("input", |s| {
        start(s)
            .and_then(|w| w.input.as_ref())
            .map(|i| {
                i.payloads
                    .iter()
                    .map(|p| String::from_utf8_lossy(&p.data).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }),
    ("overlap_policy", |s| {
        let policy = s.policies.as_ref().map_or(0, |p| p.overlap_policy);
        // Unspecified means Skip on the server.
        ScheduleOverlapPolicy::try_from(policy.max(1))
            .map(|p| {
                p.as_str_name()
                    .trim_start_matches("SCHEDULE_OVERLAP_POLICY_")
            })
            .unwrap_or("?")
            .to_ascii_lowercase()
    }),
    ("catchup_window", |s| {
        seconds(s.policies.as_ref().and_then(|p| p.catchup_window.as_ref()))
    }),
    ("pause_on_failure", |s| {
        s.policies
            .as_ref()
            .is_some_and(|p| p.pause_on_failure)
            .to_string()
    }),
];

fn spec(schedule: &Schedule) -> Option<&ScheduleSpec> {
    schedule.spec.as_ref()
}

fn start(
    schedule: &Schedule,
) -> Option<&temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo> {
    let Action::StartWorkflow(start) = schedule.action.as_ref()?.action.as_ref()?;
    Some(start)
}

fn seconds(duration: Option<&prost_wkt_types::Duration>) -> String {
    duration.map_or_else(String::new, |d| format!("{}s", d.seconds))
}

fn timestamp(time: Option<&prost_wkt_types::Timestamp>) -> String {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map_or_else(String::new, |t| t.to_rfc3339())
}

fn intervals(spec: &ScheduleSpec) -> String {
    spec.interval
        .iter()
        .map(|i| {
            let every = seconds(i.interval.as_ref());
            match i.phase.as_ref().filter(|p| p.seconds != 0) {
                Some(phase) => format!("{every} offset {}s", phase.seconds),
                None => every,
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Calendars as 6-field cron lines (second first), `*` for a full field.
fn calendars(spec: &ScheduleSpec) -> String {
    spec.structured_calendar
        .iter()
        .map(calendar)
        .collect::<Vec<_>>()
        .join("; ")
}

fn calendar(c: &StructuredCalendarSpec) -> String {
    let mut fields = vec![
        ranges(&c.second, 0, 59),
        ranges(&c.minute, 0, 59),
        ranges(&c.hour, 0, 23),
        ranges(&c.day_of_month, 1, 31),
        ranges(&c.month, 1, 12),
        ranges(&c.day_of_week, 0, 6),
    ];
    if !c.year.is_empty() {
        fields.push(ranges(&c.year, i32::MIN, i32::MAX));
    }
    let mut line = fields.join(" ");
    if !c.comment.is_empty() {
        line.push_str(" # ");
        line.push_str(&c.comment);
    }
    line
}

/// A field's ranges as `a`, `a-b` or `a-b/s`, comma-separated; `*` when they
/// cover `min..=max` (Temporal reads an empty field as the whole range for
/// the date fields and as 0 for the time fields, which we never send empty).
fn ranges(ranges: &[Range], min: i32, max: i32) -> String {
    let whole = |r: &Range| r.start == min && r.end.max(r.start) == max && r.step.max(1) == 1;
    if ranges.is_empty() || ranges.iter().any(whole) {
        return "*".into();
    }
    ranges
        .iter()
        .map(|r| {
            let end = r.end.max(r.start);
            match (end == r.start, r.step.max(1)) {
                (true, _) => r.start.to_string(),
                (false, 1) => format!("{}-{end}", r.start),
                (false, step) => format!("{}-{end}/{step}", r.start),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The fields of the newer timing keys, after [`FIELDS`].
const TIMING_FIELDS: [(&str, Render); 2] = [
    ("exclude", |s| {
        spec(s)
            .map(|s| {
                s.exclude_structured_calendar
                    .iter()
                    .map(calendar)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }),
    // Whether actions are limited, not how many are left: Temporal counts
    // them down, and that is no change.
    ("remaining_actions", |s| {
        if s.state.as_ref().is_some_and(|s| s.limited_actions) {
            "limited".to_owned()
        } else {
            String::new()
        }
    }),
];

/// Each calendar and excluded calendar of `spec` in its
/// [`normal_calendar`] form.
fn normal_calendars(spec: &mut ScheduleSpec) {
    for calendar in spec
        .structured_calendar
        .iter_mut()
        .chain(spec.exclude_structured_calendar.iter_mut())
    {
        *calendar = normal_calendar(calendar);
    }
}

/// `calendar` with every range written out as the server reads it: an end
/// before the start is the start, a step of 0 is 1, and a single value has
/// step 1. An empty field stays empty: the server matches no value with it
/// (an empty year is every year); the SDKs fill in the defaults they
/// document before sending.
pub fn normal_calendar(calendar: &StructuredCalendarSpec) -> StructuredCalendarSpec {
    let normal = |ranges: &[Range]| ranges.iter().map(normal_range).collect::<Vec<_>>();
    StructuredCalendarSpec {
        second: normal(&calendar.second),
        minute: normal(&calendar.minute),
        hour: normal(&calendar.hour),
        day_of_month: normal(&calendar.day_of_month),
        month: normal(&calendar.month),
        year: normal(&calendar.year),
        day_of_week: normal(&calendar.day_of_week),
        comment: calendar.comment.clone(),
    }
}

fn normal_range(range: &Range) -> Range {
    let end = range.end.max(range.start);
    Range {
        start: range.start,
        end,
        step: if end == range.start {
            1
        } else {
            range.step.max(1)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::desired;

    fn schedule(file: &str) -> Schedule {
        let project = crate::project::test_project("foo", &[file]);
        desired(&project).remove(0).schedule
    }

    #[test]
    fn only_the_fields_that_differ_are_named() {
        let held = schedule("id: a\nschedule:\n  cron: \"30 9 * * 1-5\"\n  jitter: 30s\n");
        let want = schedule(
            "id: a\nschedule:\n  cron: \"*/15 9-17 * * *\"\n  jitter: 45s\n  timezone: Europe/Paris\n",
        );
        let changes = field_changes(&held, &want);
        let named: Vec<(&str, &str, &str)> = changes
            .iter()
            .map(|c| (c.field, c.current.as_str(), c.desired.as_str()))
            .collect();
        assert_eq!(
            named,
            vec![
                ("cron", "0 30 9 * * 1-5", "0 0-59/15 9-17 * * *"),
                ("timezone", "UTC", "Europe/Paris"),
                ("jitter", "30s", "45s"),
            ]
        );
        assert!(field_changes(&want, &want).is_empty());
    }

    #[test]
    fn intervals_policies_and_input_are_compared() {
        let held = schedule("id: a\nschedule:\n  every: 15m\n");
        let want = schedule(
            "id: a\nschedule:\n  every: 15m\n  offset: 5m\n  overlap_policy: buffer_one\n  \
             pause_on_failure: true\n  input: {day: 1}\n",
        );
        let fields: Vec<&str> = field_changes(&held, &want)
            .iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            vec!["every", "input", "overlap_policy", "pause_on_failure"]
        );
        let every = &field_changes(&held, &want)[0];
        assert_eq!(
            (every.current.as_str(), every.desired.as_str()),
            ("900s", "900s offset 300s")
        );
    }

    #[test]
    fn two_spellings_of_one_meaning_are_no_change() {
        let want = schedule("id: a\nschedule:\n  every: 15m\n  input: {b: 1, a: [1, 2]}\n");
        // As the Temporal CLI makes it: no zone, zero jitter and phase, the
        // input as typed, no catch-up window and no overlap policy.
        let mut held = want.clone();
        let spec = held.spec.as_mut().unwrap();
        spec.timezone_name.clear();
        spec.jitter = Some(prost_wkt_types::Duration::default());
        spec.interval[0].phase = Some(prost_wkt_types::Duration::default());
        let Some(Action::StartWorkflow(start)) =
            held.action.as_mut().and_then(|a| a.action.as_mut())
        else {
            unreachable!()
        };
        start.input.as_mut().unwrap().payloads[0].data = br#"{ "b": 1,  "a": [1, 2] }"#.to_vec();
        let policies = held.policies.as_mut().unwrap();
        policies.catchup_window = None;
        policies.overlap_policy = 0;
        assert_eq!(field_changes(&held, &want), Vec::new());
        assert!(crate::compare::same_schedule(&held, &want));

        // A different value is still a change.
        start_input(&mut held, br#"{"b": 2, "a": [1, 2]}"#);
        assert_eq!(field_changes(&held, &want)[0].field, "input");
        assert!(!crate::compare::same_schedule(&held, &want));
    }

    #[test]
    fn calendars_as_an_sdk_writes_them_equal_the_ones_a_file_declares() {
        let want = schedule(
            "id: a\nschedule:\n  calendar: {hour: 2, day_of_week: \"1-5\"}\n  exclude: {month: 12}\n",
        );
        // As the SDKs send a calendar: single values with no end or step,
        // ranges with no step.
        let mut held = want.clone();
        let spec = held.spec.as_mut().unwrap();
        for calendar in spec
            .structured_calendar
            .iter_mut()
            .chain(spec.exclude_structured_calendar.iter_mut())
        {
            calendar.minute = vec![Range {
                start: 0,
                end: 0,
                step: 0,
            }];
            calendar.day_of_month.iter_mut().for_each(|r| r.step = 0);
            calendar
                .hour
                .iter_mut()
                .for_each(|r| (r.end, r.step) = (0, 0));
        }
        assert_eq!(field_changes(&held, &want), Vec::new());
        assert!(crate::compare::same_schedule(&held, &want));
        // An empty field matches nothing on the server: not the default.
        let mut empty = held.clone();
        empty.spec.as_mut().unwrap().structured_calendar[0]
            .second
            .clear();
        assert_eq!(field_changes(&empty, &want)[0].field, "cron");
        // A different exclusion is a change, and named.
        held.spec.as_mut().unwrap().exclude_structured_calendar[0].month[0].start = 11;
        assert_eq!(field_changes(&held, &want)[0].field, "exclude");
    }

    #[test]
    fn the_countdown_of_a_limit_is_no_change_but_the_limit_is() {
        let want = schedule("id: a\nschedule:\n  every: 1h\n  remaining_actions: 5\n");
        let mut held = want.clone();
        held.state.as_mut().unwrap().remaining_actions = 2;
        assert_eq!(field_changes(&held, &want), Vec::new());
        assert!(crate::compare::same_schedule(&held, &want));
        held.state.as_mut().unwrap().limited_actions = false;
        assert_eq!(field_changes(&held, &want)[0].field, "remaining_actions");
        assert!(!crate::compare::same_schedule(&held, &want));
    }

    fn start_input(schedule: &mut Schedule, data: &[u8]) {
        if let Some(Action::StartWorkflow(start)) =
            schedule.action.as_mut().and_then(|a| a.action.as_mut())
        {
            start.input.as_mut().unwrap().payloads[0].data = data.to_vec();
        }
    }
}
