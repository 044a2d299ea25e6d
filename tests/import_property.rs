//! A property of `import`: any schedule spec the API can hold either imports
//! to a workflow file that loads back as exactly that schedule, or is skipped
//! with a reason. It never yields a wrong file.
//!
//! The specs are drawn by a seeded generator (the same cases on every run)
//! over every spec field a file can hold and many it cannot: calendars with
//! ranges in and out of bounds, ends of 0 and steps of 0, empty fields,
//! comments with `#`, new lines and surrounding space; intervals with
//! nanoseconds and phases not shorter than the interval; excluded
//! calendars; zones by name, empty, unknown or as data; jitter, start and
//! end times; limits on actions, spent or not; and ids with or without the
//! project's prefix. The check of a file is made here, independently of the
//! import's own: the file is loaded as a project would load it, and the
//! schedule it declares must equal the held one field by field once both
//! are in Temporal's normal form.

use std::path::Path;

use schedule_sync::compare::changes::{field_changes, normalized};
use schedule_sync::import::{Target, import};
use schedule_sync::project::{Project, check_workflow_source};
use schedule_sync::spec::{desired, json_payload};
use schedule_sync::store::{Described, Observed};
use temporalio_common::protos::temporal::api::common::v1::{Payloads, WorkflowType};
use temporalio_common::protos::temporal::api::schedule::v1::{
    IntervalSpec, Range, Schedule, ScheduleAction, SchedulePolicies, ScheduleSpec, ScheduleState,
    StructuredCalendarSpec, schedule_action,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

const PROJECT: &str = "billing";
const CASES: u64 = 4_000;

/// xorshift64*: small, seeded, and the same on every platform.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn int(&mut self, low: i32, high: i32) -> i32 {
        low + i32::try_from(self.below(u64::try_from(high - low + 1).unwrap_or(1))).unwrap_or(0)
    }
}

fn ranges(draw: &mut Draw, min: i32, max: i32) -> Vec<Range> {
    let count = *draw.pick(&[0, 1, 1, 1, 2, 3]);
    (0..count)
        .map(|_| {
            // Now and then a value just outside the field's bounds.
            let below = i32::from(draw.chance(3));
            let start = draw.int(min - below, max);
            let end = match draw.below(4) {
                0 => 0,
                1 => start,
                _ => {
                    let above = i32::from(draw.chance(3));
                    draw.int(start, max + above)
                }
            };
            let step = *draw.pick(&[0, 1, 1, 1, 2, 3, 7]);
            Range { start, end, step }
        })
        .collect()
}

fn calendar(draw: &mut Draw) -> StructuredCalendarSpec {
    let comment = if draw.chance(30) {
        draw.pick(&[
            "nightly",
            "weekdays only",
            "a # b",
            " padded ",
            "two\nlines",
            "é ünïcode",
        ])
        .to_string()
    } else {
        String::new()
    };
    StructuredCalendarSpec {
        second: ranges(draw, 0, 59),
        minute: ranges(draw, 0, 59),
        hour: ranges(draw, 0, 23),
        day_of_month: ranges(draw, 1, 31),
        month: ranges(draw, 1, 12),
        year: if draw.chance(20) {
            ranges(draw, 2000, 2100)
        } else {
            Vec::new()
        },
        day_of_week: ranges(draw, 0, 6),
        comment,
    }
}

fn duration(draw: &mut Draw, max_seconds: u64) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: i64::try_from(draw.below(max_seconds)).unwrap_or(0),
        nanos: if draw.chance(10) {
            i32::try_from(draw.below(1_000_000_000)).unwrap_or(0)
        } else if draw.chance(20) {
            i32::try_from(draw.below(1000) * 1_000_000).unwrap_or(0)
        } else {
            0
        },
    }
}

fn interval(draw: &mut Draw) -> IntervalSpec {
    let every = duration(draw, 200_000);
    let phase = if draw.chance(50) {
        Some(duration(
            draw,
            u64::try_from(every.seconds).unwrap_or(1) + 2,
        ))
    } else {
        None
    };
    IntervalSpec {
        interval: Some(every),
        phase,
    }
}

fn spec(draw: &mut Draw) -> ScheduleSpec {
    let calendars = *draw.pick(&[0, 0, 1, 1, 2, 3]);
    let intervals = *draw.pick(&[0, 0, 1, 1, 2]);
    let excluded = *draw.pick(&[0, 0, 0, 1, 2]);
    #[allow(deprecated)]
    ScheduleSpec {
        structured_calendar: (0..calendars).map(|_| calendar(draw)).collect(),
        interval: (0..intervals).map(|_| interval(draw)).collect(),
        exclude_structured_calendar: (0..excluded).map(|_| calendar(draw)).collect(),
        timezone_name: draw
            .pick(&[
                "",
                "",
                "UTC",
                "Europe/Berlin",
                "America/New_York",
                "Mars/Olympus",
            ])
            .to_string(),
        timezone_data: if draw.chance(3) {
            vec![1, 2, 3]
        } else {
            Vec::new()
        },
        jitter: draw.chance(30).then(|| duration(draw, 7200)),
        start_time: draw.chance(15).then(|| prost_wkt_types::Timestamp {
            seconds: 1_767_225_600 + i64::try_from(draw.below(100_000_000)).unwrap_or(0),
            nanos: 0,
        }),
        end_time: draw.chance(15).then(|| prost_wkt_types::Timestamp {
            seconds: 1_900_000_000 + i64::try_from(draw.below(100_000_000)).unwrap_or(0),
            nanos: 0,
        }),
        ..Default::default()
    }
}

fn held(draw: &mut Draw, case: u64) -> Described {
    let schedule_id = match draw.below(4) {
        0 => format!("daily-report-{case}"),
        1 => format!("team:report.{case}"),
        2 => format!("bad id {case}"),
        _ => format!("{PROJECT}.w{case}"),
    };
    let limited = draw.chance(20);
    let state = ScheduleState {
        limited_actions: limited,
        remaining_actions: if limited {
            i64::try_from(draw.below(5)).unwrap_or(0)
        } else {
            0
        },
        ..Default::default()
    };
    let schedule = Schedule {
        spec: Some(spec(draw)),
        action: Some(ScheduleAction {
            action: Some(schedule_action::Action::StartWorkflow(
                NewWorkflowExecutionInfo {
                    workflow_id: schedule_id.clone(),
                    workflow_type: Some(WorkflowType {
                        name: "Report".into(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "q".into(),
                        ..Default::default()
                    }),
                    input: draw.chance(30).then(|| Payloads {
                        payloads: vec![json_payload(&serde_json::json!({"n": case}))],
                    }),
                    ..Default::default()
                },
            )),
        }),
        policies: Some(SchedulePolicies {
            overlap_policy: i32::try_from(draw.below(7)).unwrap_or(0),
            catchup_window: draw.chance(30).then(|| duration(draw, 100_000)),
            pause_on_failure: draw.chance(20),
            ..Default::default()
        }),
        state: Some(state.clone()),
    };
    Described {
        observed: Observed {
            schedule_id,
            owner: None,
            fingerprint: None,
            paused: state.paused,
            notes: state.notes,
            spec: schedule
                .spec
                .as_ref()
                .map(schedule_sync::store::ListedSpec::of),
            activity: None,
        },
        schedule,
        conflict_token: Vec::new(),
        search_attributes: Default::default(),
        memo: Default::default(),
    }
}

/// The schedule the imported file declares, loaded as a project loads it.
fn loaded(text: &str, file: &Path) -> schedule_sync::spec::DesiredSchedule {
    let outcome = check_workflow_source(file.to_path_buf(), text, "q");
    let workflow = outcome.workflow.unwrap_or_else(|| {
        panic!(
            "the file does not load:\n{text}\n{:#?}",
            outcome.diagnostics
        )
    });
    desired(&Project::new(PROJECT, "q", vec![workflow]).unwrap()).remove(0)
}

#[test]
fn any_spec_imports_to_a_file_that_loads_back_as_it_or_is_skipped_with_a_reason() {
    let no_types = schedule_sync::store::AttributeTypes::new();
    let target = Target {
        project: PROJECT,
        task_queue: "q",
        folder: Path::new("workflows"),
        attribute_types: &no_types,
    };
    let mut draw = Draw(0x9E37_79B9_7F4A_7C15);
    let (mut imported, mut skipped) = (0, 0);
    // Imported files that use each of the newer keys.
    let mut keys = std::collections::BTreeMap::<&str, u64>::new();
    for case in 0..CASES {
        let held = held(&mut draw, case);
        match import(&target, &held) {
            Err(skip) => {
                assert!(!skip.reason.trim().is_empty(), "case {case}: no reason");
                skipped += 1;
            }
            Ok(file) => {
                imported += 1;
                for key in [
                    "  calendar:",
                    "  exclude:",
                    "  remaining_actions:",
                    "  id:",
                    "  every:\n    -",
                ] {
                    if file.text.contains(key) {
                        *keys.entry(key).or_default() += 1;
                    }
                }
                let want = loaded(&file.text, &file.file);
                assert_eq!(
                    want.schedule_id, held.observed.schedule_id,
                    "case {case}: the schedule id\n{}",
                    file.text
                );
                let want = want.schedule;
                let (held_normal, want_normal) = (normalized(&held.schedule), normalized(&want));
                assert_eq!(
                    held_normal.spec, want_normal.spec,
                    "case {case}: the spec differs\n{}",
                    file.text
                );
                assert_eq!(
                    field_changes(&held.schedule, &want),
                    Vec::new(),
                    "case {case}\n{}",
                    file.text
                );
                let limits = |s: &Schedule| {
                    let state = s.state.clone().unwrap_or_default();
                    (state.limited_actions, state.remaining_actions)
                };
                assert_eq!(
                    limits(&held.schedule),
                    limits(&want),
                    "case {case}\n{}",
                    file.text
                );
                let start = |s: &Schedule| match s.action.as_ref().and_then(|a| a.action.as_ref()) {
                    Some(schedule_action::Action::StartWorkflow(start)) => {
                        start.workflow_id.clone()
                    }
                    None => String::new(),
                };
                assert_eq!(
                    start(&held.schedule),
                    start(&want),
                    "case {case}: the workflow id"
                );
            }
        }
    }
    // The generator reaches both outcomes often, or the property says little.
    assert!(imported > CASES / 10, "only {imported} imported");
    assert!(skipped > CASES / 10, "only {skipped} skipped");
    assert_eq!(keys.len(), 5, "imported files by key: {keys:?}");
    assert!(
        keys.values().all(|n| *n >= 10),
        "imported files by key: {keys:?}"
    );
}
