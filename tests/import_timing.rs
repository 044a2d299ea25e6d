//! Every timing shape a Temporal schedule can hold, made through Temporal's
//! API directly (raw CreateSchedule requests, shaped as the SDKs send them:
//! single values with no end or step, ranges with no step), comes
//! through the round trip on the dev server: `import`, `plan --adopt` with no
//! field to change, `apply --adopt`, then a plain `plan` that exits 0. Read
//! back with the `temporal` CLI, the next firing times, the policies, the
//! state and the limit on actions are as before; a schedule with an id of
//! its own keeps its id, and once its file is removed it is deleted.

mod support;

use std::collections::BTreeMap;
use std::process::Output;

use schedule_sync::dev_server::DevServer;
use serde_json::Value;
use temporalio_common::protos::temporal::api::common::v1::WorkflowType;
use temporalio_common::protos::temporal::api::schedule::v1::{
    IntervalSpec, Range, Schedule, ScheduleAction, ScheduleSpec, ScheduleState,
    StructuredCalendarSpec, schedule_action,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;
use temporalio_common::protos::temporal::api::workflowservice::v1::CreateScheduleRequest;

/// A value as the SDKs send it: start only.
fn at(value: i32) -> Vec<Range> {
    vec![Range {
        start: value,
        end: 0,
        step: 0,
    }]
}

fn span(start: i32, end: i32, step: i32) -> Vec<Range> {
    vec![Range { start, end, step }]
}

/// A calendar as the SDKs send one: the fields named, the others at the
/// defaults the SDKs fill in (second, minute and hour 0; every day, month
/// and weekday; an empty year, every year). The server matches nothing with
/// an empty field.
fn calendar(edit: impl FnOnce(&mut StructuredCalendarSpec)) -> StructuredCalendarSpec {
    let mut calendar = StructuredCalendarSpec {
        second: at(0),
        minute: at(0),
        hour: at(0),
        day_of_month: span(1, 31, 0),
        month: span(1, 12, 0),
        day_of_week: span(0, 6, 0),
        ..Default::default()
    };
    edit(&mut calendar);
    calendar
}

/// Every second of the days a calendar names, for an exclusion.
fn whole_days(edit: impl FnOnce(&mut StructuredCalendarSpec)) -> StructuredCalendarSpec {
    calendar(|c| {
        c.second = span(0, 59, 1);
        c.minute = span(0, 59, 1);
        c.hour = span(0, 23, 1);
        edit(c);
    })
}

fn seconds(seconds: i64) -> Option<prost_wkt_types::Duration> {
    Some(prost_wkt_types::Duration { seconds, nanos: 0 })
}

fn interval(every: i64, phase: i64) -> IntervalSpec {
    IntervalSpec {
        interval: seconds(every),
        phase: (phase != 0).then(|| seconds(phase)).flatten(),
    }
}

/// The schedules, by id, as an SDK user would make them.
fn schedules() -> Vec<(&'static str, ScheduleSpec, ScheduleState)> {
    let unlimited = ScheduleState::default();
    let limited = |n| ScheduleState {
        limited_actions: true,
        remaining_actions: n,
        ..Default::default()
    };
    vec![
        (
            "daily-billing-report",
            ScheduleSpec {
                structured_calendar: vec![calendar(|c| {
                    c.hour = at(2);
                    c.minute = at(30);
                    c.day_of_week = span(1, 5, 0);
                    c.comment = "weekday nights".into();
                })],
                ..Default::default()
            },
            unlimited.clone(),
        ),
        (
            "payments.calendar-comment",
            ScheduleSpec {
                structured_calendar: vec![
                    calendar(|c| {
                        c.hour = at(6);
                        c.day_of_month = vec![
                            Range {
                                start: 1,
                                end: 0,
                                step: 0,
                            },
                            Range {
                                start: 15,
                                end: 0,
                                step: 0,
                            },
                        ];
                        c.comment = "eu # twice a month".into();
                    }),
                    calendar(|c| {
                        c.second = span(0, 30, 30);
                        c.minute = span(0, 59, 15);
                        c.hour = span(9, 17, 1);
                        c.month = span(1, 12, 3);
                        c.year = span(2026, 2030, 1);
                    }),
                ],
                timezone_name: "America/New_York".into(),
                ..Default::default()
            },
            unlimited.clone(),
        ),
        (
            "payments.intervals",
            ScheduleSpec {
                interval: vec![
                    interval(3600, 0),
                    interval(86_400, 7200),
                    interval(5400, 60),
                ],
                ..Default::default()
            },
            unlimited.clone(),
        ),
        (
            "payments.excluded",
            ScheduleSpec {
                structured_calendar: vec![calendar(|c| c.hour = at(9))],
                exclude_structured_calendar: vec![
                    whole_days(|c| {
                        c.day_of_week = vec![
                            Range {
                                start: 0,
                                end: 0,
                                step: 0,
                            },
                            Range {
                                start: 6,
                                end: 0,
                                step: 0,
                            },
                        ]
                    }),
                    whole_days(|c| {
                        c.month = at(12);
                        c.day_of_month = at(25);
                        c.comment = "Christmas".into();
                    }),
                ],
                timezone_name: "Europe/Berlin".into(),
                ..Default::default()
            },
            unlimited,
        ),
        (
            "payments.limited",
            ScheduleSpec {
                interval: vec![interval(3600, 0)],
                ..Default::default()
            },
            limited(10),
        ),
        (
            "billing:month-end",
            ScheduleSpec {
                structured_calendar: vec![calendar(|c| {
                    c.hour = at(18);
                    c.day_of_month = span(28, 31, 1);
                })],
                interval: vec![interval(7 * 86_400, 3600)],
                exclude_structured_calendar: vec![whole_days(|c| c.month = at(12))],
                timezone_name: "Asia/Tokyo".into(),
                ..Default::default()
            },
            limited(5),
        ),
    ]
}

/// Creates `id` with Temporal's own API, not schedule-sync's mapping.
async fn create(server: &DevServer, id: &str, spec: ScheduleSpec, state: ScheduleState) {
    let client = support::client(server).await;
    let mut service = client.connection().workflow_service();
    let schedule = Schedule {
        spec: Some(spec),
        action: Some(ScheduleAction {
            action: Some(schedule_action::Action::StartWorkflow(
                NewWorkflowExecutionInfo {
                    workflow_id: id.to_owned(),
                    workflow_type: Some(WorkflowType {
                        name: "Report".into(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "payments-q".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        }),
        policies: None,
        state: Some(state),
    };
    service
        .create_schedule(tonic::Request::new(CreateScheduleRequest {
            namespace: server.namespace().to_owned(),
            schedule_id: id.to_owned(),
            schedule: Some(schedule),
            identity: "an SDK user".into(),
            request_id: format!("sdk-{id}"),
            ..Default::default()
        }))
        .await
        .unwrap_or_else(|e| panic!("{id}: {e}"));
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// What `temporal schedule describe` shows of a schedule that must survive
/// adoption: the next firing times, the zone, the limit, and the policies
/// by meaning (an unset overlap policy is skip, an unset catch-up window is
/// a year).
struct Seen {
    times: Vec<String>,
    timezone: String,
    limit: (Value, Value),
    policies: (String, String, bool),
    marker: bool,
}

fn seen(server: &DevServer, id: &str) -> Seen {
    let described = support::describe(server, id);
    let schedule = &described["schedule"];
    let policies = &schedule["policies"];
    let overlap = policies["overlapPolicy"]
        .as_str()
        .filter(|p| !p.contains("UNSPECIFIED") && *p != "Unspecified")
        .unwrap_or("Skip")
        .to_ascii_lowercase()
        .replace("schedule_overlap_policy_", "");
    Seen {
        times: described["info"]["futureActionTimes"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default(),
        // No zone is UTC.
        timezone: schedule["spec"]["timezoneName"]
            .as_str()
            .filter(|z| !z.is_empty())
            .unwrap_or("UTC")
            .to_owned(),
        limit: (
            schedule["state"]["limitedActions"].clone(),
            schedule["state"]["remainingActions"].clone(),
        ),
        policies: (
            overlap,
            policies["catchupWindow"]
                .as_str()
                .unwrap_or("31536000s")
                .to_owned(),
            policies["pauseOnFailure"].as_bool().unwrap_or(false),
        ),
        marker: described["memo"]["fields"]["schedule-sync.project"].is_object(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_timing_shape_made_through_the_api_round_trips_through_import_and_adoption() {
    let server = support::dev_server().await;
    let schedules = schedules();
    for (id, spec, state) in &schedules {
        create(&server, id, spec.clone(), state.clone()).await;
    }
    let ids: Vec<&str> = schedules.iter().map(|(id, _, _)| *id).collect();
    support::eventually(20, "every schedule is listed", || async {
        support::listed_schedules(&server).len() == ids.len()
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("payments");
    let project_arg = project.to_str().unwrap();
    let id_list = ids.join(",");
    let output = support::run_binary(
        &server,
        &[
            "import",
            project_arg,
            "--project",
            "payments",
            "--id",
            &id_list,
            "--format",
            "json",
        ],
    );
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["imported"].as_array().unwrap().len(), ids.len());
    let file = |name: &str| {
        std::fs::read_to_string(project.join("workflows").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let own = file("daily-billing-report.yaml");
    assert!(own.contains("  id: daily-billing-report\n"), "{own}");
    assert!(
        own.contains("cron: \"30 2 * * 1-5 # weekday nights\""),
        "{own}"
    );
    let comment = file("calendar-comment.yaml");
    assert!(comment.contains("  calendar:\n"), "{comment}");
    assert!(
        comment.contains("comment: \"eu # twice a month\""),
        "{comment}"
    );
    let intervals = file("intervals.yaml");
    assert!(intervals.contains("@every 1d/2h"), "{intervals}");
    let excluded = file("excluded.yaml");
    assert!(excluded.contains("  exclude:\n"), "{excluded}");
    assert!(file("limited.yaml").contains("  remaining_actions: 10\n"));
    let month_end = file("billing-month-end.yaml");
    assert!(
        month_end.contains("  id: \"billing:month-end\"\n"),
        "{month_end}"
    );
    assert!(
        month_end.contains("  remaining_actions: 5\n"),
        "{month_end}"
    );

    // `plan --adopt`: an adoption of each, and no field to change.
    let output = support::run_binary(
        &server,
        &["plan", project_arg, "--adopt", "--format", "json"],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let plan = json_of(&output);
    let steps = plan["plan"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), ids.len(), "{plan:#}");
    assert!(
        steps
            .iter()
            .all(|s| s["action"] == "update" && s["reason"] == "adopted"),
        "{plan:#}"
    );
    assert!(
        plan["changes"]
            .as_object()
            .unwrap()
            .values()
            .all(|c| c.as_array().is_some_and(Vec::is_empty)),
        "imported files differ from the schedules: {plan:#}"
    );

    let before: BTreeMap<&str, Seen> = ids.iter().map(|id| (*id, seen(&server, id))).collect();
    let output = support::run_binary(&server, &["apply", project_arg, "--adopt"]);
    assert!(output.status.success(), "{output:?}");
    let output = support::run_binary(&server, &["plan", project_arg, "--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    for id in &ids {
        let (was, is) = (&before[id], seen(&server, id));
        assert!(is.marker, "{id} has no marker");
        assert!(!was.marker, "{id} had a marker before adoption");
        assert_eq!(is.timezone, was.timezone, "{id}");
        assert_eq!(is.limit, was.limit, "{id}: the limit on actions");
        assert_eq!(is.policies, was.policies, "{id}");
        assert!(!is.times.is_empty(), "{id} fires no more");
        let last_was = was
            .times
            .last()
            .unwrap_or_else(|| panic!("{id} had no firing times"));
        let first_is = is.times.first().unwrap();
        let kept: Vec<&String> = was.times.iter().filter(|t| *t >= first_is).collect();
        let now: Vec<&String> = is.times.iter().filter(|t| *t <= last_was).collect();
        assert_eq!(kept, now, "{id}: firing times changed");
    }
    // The fence records the schedules with ids of their own.
    let fence = support::describe(&server, "payments.~writer");
    let notes = fence["schedule"]["state"]["notes"].as_str().unwrap();
    assert!(
        notes.contains("schedules=billing:month-end,daily-billing-report"),
        "{notes}"
    );

    // The file of one with an id of its own is removed: it is deleted.
    std::fs::remove_file(project.join("workflows/daily-billing-report.yaml")).unwrap();
    let output = support::run_binary(&server, &["apply", project_arg]);
    assert!(output.status.success(), "{output:?}");
    support::eventually(20, "the schedule is gone", || async {
        !support::listed_schedules(&server).contains(&"daily-billing-report".to_owned())
    })
    .await;
    assert_eq!(support::listed_schedules(&server).len(), ids.len() - 1);
}
