//! The desired state: the Temporal schedule that each scheduled workflow of a
//! project should be, its id, and the fingerprint of everything we manage.
//!
//! # Schedule ids
//!
//! A schedule's id is `<project>.<workflow id>`, for example
//! `billing.nightly-report`. Project names hold no `.` (see
//! [`crate::project::names`]), so the first `.` always ends the project name:
//! project `foo` owns the ids that start with `foo.`, and can never claim one
//! of project `foo-bar` (`foo-bar.…`). The workflows a schedule starts get the
//! schedule id as their workflow id (Temporal appends the fire time).
//!
//! # Ownership and fingerprint
//!
//! Every schedule we create carries, in its memo, the project that owns it
//! ([`MEMO_PROJECT`]). The fingerprint is a SHA-256 over a canonical JSON form
//! of every managed field (spec, action, input, policies, enabled); it lets a
//! reconcile tell an unchanged schedule from a changed one without comparing
//! Temporal's normalised read-back field by field.

pub mod action;
mod compact;
pub mod health_policy;
pub mod listed;
pub(crate) mod timing;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads, WorkflowType};
use temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy;
use temporalio_common::protos::temporal::api::schedule::v1::{
    Schedule, ScheduleAction, SchedulePolicies, ScheduleSpec, ScheduleState, schedule_action,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

use crate::project::{JsonText, OverlapPolicy, Project, Schedule as DeclaredSchedule, Workflow};

/// The ids of schedules, which the project checks too: defined there.
pub use crate::project::names::{owns_id, schedule_id};
pub use compact::{CompactSchedule, DesiredProject, load_desired};

/// The memo key naming the project that owns a schedule.
pub const MEMO_PROJECT: &str = "schedule-sync.project";
/// The memo key holding the fingerprint a schedule was created with.
pub const MEMO_FINGERPRINT: &str = "schedule-sync.fingerprint";
/// How the notes of a schedule paused by `enabled: false` begin. A paused
/// schedule whose notes do not begin so was paused by an operator.
pub const PAUSE_NOTE_PREFIX: &str = "schedule-sync: disabled";
/// The catch-up window Temporal applies when a schedule names none.
pub const TEMPORAL_DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);
/// The version of the fingerprint's canonical form; bump it when the form
/// changes, so that every schedule is rewritten once.
pub const FINGERPRINT_VERSION: u32 = 1;

/// A hex SHA-256 of the managed fields of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Fingerprint(pub String);

/// One schedule as the project wants it in Temporal.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredSchedule {
    /// `<project>.<workflow id>`.
    pub schedule_id: String,
    /// The workflow id in the project.
    pub workflow: String,
    /// The schedule to send.
    pub schedule: Schedule,
    /// The fingerprint of the managed fields.
    pub fingerprint: Fingerprint,
    /// Whether the project wants it running.
    pub enabled: bool,
}

/// The desired schedules of `project`, sorted by schedule id.
pub fn desired(project: &Project) -> Vec<DesiredSchedule> {
    project
        .scheduled()
        .map(|(workflow, schedule)| desired_one(&project.name, workflow, schedule))
        .collect()
}

fn desired_one(project: &str, workflow: &Workflow, declared: &DeclaredSchedule) -> DesiredSchedule {
    let schedule_id = id_of(project, workflow, declared);
    let fingerprint = Fingerprint(compact::hex(&fingerprint_bytes(
        &schedule_id,
        workflow,
        declared,
    )));
    DesiredSchedule {
        schedule: schedule(&schedule_id, workflow, declared),
        schedule_id,
        workflow: workflow.id.clone(),
        fingerprint,
        enabled: declared.enabled,
    }
}

/// The schedule id of `declared`: its own, or `<project>.<workflow id>`.
fn id_of(project: &str, workflow: &Workflow, declared: &DeclaredSchedule) -> String {
    declared
        .id
        .clone()
        .unwrap_or_else(|| schedule_id(project, &workflow.id))
}

/// The SHA-256 of the canonical form of the managed fields.
fn fingerprint_bytes(
    schedule_id: &str,
    workflow: &Workflow,
    declared: &DeclaredSchedule,
) -> [u8; 32] {
    let canonical = canonical(schedule_id, workflow, declared);
    Sha256::digest(canonical_json(&canonical).as_bytes()).into()
}

/// `value` as compact JSON text with the keys of every object sorted, in any
/// build: serde_json's `preserve_order` feature (which a host may turn on,
/// and Cargo then turns on for this crate too) would keep them in the order
/// they were written instead.
///
/// ```
/// let value = serde_json::json!({"b": [1, {"d": 2, "c": 3}], "a": null});
/// assert_eq!(schedule_sync::spec::canonical_json(&value), r#"{"a":null,"b":[1,{"c":3,"d":2}]}"#);
/// ```
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// The canonical JSON of every managed field; [`canonical_json`] writes it
/// with sorted keys, so equal schedules give equal text. The start options
/// ([`action`]) add a `start` key only when they ask for something, so a
/// schedule without them keeps the fingerprint it always had.
fn canonical(
    schedule_id: &str,
    workflow: &Workflow,
    declared: &DeclaredSchedule,
) -> serde_json::Value {
    let timing = timing::canonical_timing(&declared.timing);
    let mut canonical = json!({
        "version": FINGERPRINT_VERSION,
        "timing": timing,
        "timezone": declared.timezone,
        "jitter_ms": declared.jitter.as_millis() as u64,
        "start_at": declared.start_at.map(|t| t.to_rfc3339()),
        "end_at": declared.end_at.map(|t| t.to_rfc3339()),
        "type": workflow.workflow_type,
        "task_queue": workflow.task_queue,
        "input": declared.input.as_ref().map(JsonText::value),
        "overlap": format!("{:?}", declared.overlap_policy),
        "catchup_window_ms": declared.catchup_window.map(|d| d.as_millis() as u64),
        "pause_on_failure": declared.pause_on_failure,
        "enabled": declared.enabled,
    });
    if let serde_json::Value::Object(map) = &mut canonical {
        map.extend(timing::canonical_extras(declared));
        if let Some(start) = action::fingerprint_json(&declared.start, schedule_id) {
            map.insert("start".to_owned(), start);
        }
    }
    canonical
}

fn duration(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_wkt_types::Timestamp {
    prost_wkt_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A JSON payload, as Temporal's SDKs encode one.
pub fn json_payload(value: &serde_json::Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Default::default()
    }
}

fn overlap(policy: OverlapPolicy) -> ScheduleOverlapPolicy {
    match policy {
        OverlapPolicy::Skip => ScheduleOverlapPolicy::Skip,
        OverlapPolicy::BufferOne => ScheduleOverlapPolicy::BufferOne,
        OverlapPolicy::BufferAll => ScheduleOverlapPolicy::BufferAll,
        OverlapPolicy::CancelOther => ScheduleOverlapPolicy::CancelOther,
        OverlapPolicy::TerminateOther => ScheduleOverlapPolicy::TerminateOther,
        OverlapPolicy::AllowAll => ScheduleOverlapPolicy::AllowAll,
    }
}

fn schedule(schedule_id: &str, workflow: &Workflow, declared: &DeclaredSchedule) -> Schedule {
    let mut spec = ScheduleSpec {
        timezone_name: declared.timezone.clone(),
        jitter: (!declared.jitter.is_zero()).then(|| duration(declared.jitter)),
        start_time: declared.start_at.map(timestamp),
        end_time: declared.end_at.map(timestamp),
        ..Default::default()
    };
    timing::fill_spec(&mut spec, declared);
    let input = declared.input.as_ref().map(|text| Payloads {
        payloads: vec![json_payload(&text.value())],
    });
    let mut start = NewWorkflowExecutionInfo {
        workflow_id: schedule_id.to_owned(),
        workflow_type: Some(WorkflowType {
            name: workflow.workflow_type.clone(),
        }),
        task_queue: Some(TaskQueue {
            name: workflow.task_queue.clone(),
            ..Default::default()
        }),
        input,
        ..Default::default()
    };
    action::apply(&declared.start, &mut start);
    Schedule {
        spec: Some(spec),
        action: Some(ScheduleAction {
            action: Some(schedule_action::Action::StartWorkflow(start)),
        }),
        policies: Some(SchedulePolicies {
            overlap_policy: overlap(declared.overlap_policy) as i32,
            // Sent even when not declared: the server stores its default
            // (one year) anyway, and a Describe then reads back what we sent.
            catchup_window: Some(duration(
                declared
                    .catchup_window
                    .unwrap_or(TEMPORAL_DEFAULT_CATCHUP_WINDOW),
            )),
            pause_on_failure: declared.pause_on_failure,
            ..Default::default()
        }),
        state: Some(ScheduleState {
            paused: !declared.enabled,
            notes: if declared.enabled {
                String::new()
            } else {
                format!("{PAUSE_NOTE_PREFIX} in {}", workflow.file.display())
            },
            limited_actions: declared.remaining_actions.is_some(),
            remaining_actions: declared
                .remaining_actions
                .map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::protos::temporal::api::schedule::v1::Range as ProtoRange;

    fn project(files: &[&str]) -> Project {
        crate::project::test_project("billing", files)
    }

    #[test]
    fn ids_cannot_collide_across_look_alike_projects() {
        assert!(owns_id("foo", &schedule_id("foo", "x")));
        assert!(!owns_id("foo", &schedule_id("foo-bar", "x")));
        assert!(!owns_id("foo-bar", &schedule_id("foo", "bar.x")));
        assert!(!owns_id("foo", "foo."));
        assert!(!owns_id("foo", "foo"));
    }

    #[test]
    fn a_cron_schedule_maps_onto_every_temporal_field() {
        let p = project(&[
            "id: report\ntype: Report\ntask_queue: reports\nschedule:\n  cron: \"0 2 * * * # nightly\"\n  timezone: Europe/Berlin\n  jitter: 30s\n  overlap_policy: buffer_one\n  catchup_window: 1m\n  pause_on_failure: true\n  start_at: 2026-01-01T00:00:00Z\n  input: {region: eu}\n",
        ]);
        let d = &desired(&p)[0];
        assert_eq!(d.schedule_id, "billing.report");
        let spec = d.schedule.spec.as_ref().unwrap();
        assert_eq!(spec.timezone_name, "Europe/Berlin");
        assert_eq!(
            spec.jitter,
            Some(prost_wkt_types::Duration {
                seconds: 30,
                nanos: 0
            })
        );
        assert_eq!(spec.start_time.as_ref().unwrap().seconds, 1_767_225_600);
        let calendar = &spec.structured_calendar[0];
        let range = |start, end, step| vec![ProtoRange { start, end, step }];
        assert_eq!(calendar.hour, range(2, 2, 1));
        assert_eq!(calendar.minute, range(0, 0, 1));
        assert_eq!(calendar.day_of_month, range(1, 31, 1));
        assert_eq!(calendar.day_of_week, range(0, 6, 1));
        assert_eq!(calendar.comment, "nightly");
        let Some(schedule_action::Action::StartWorkflow(start)) =
            d.schedule.action.as_ref().unwrap().action.as_ref()
        else {
            panic!("no start action");
        };
        assert_eq!(start.workflow_id, "billing.report");
        assert_eq!(start.workflow_type.as_ref().unwrap().name, "Report");
        assert_eq!(start.task_queue.as_ref().unwrap().name, "reports");
        let payload = &start.input.as_ref().unwrap().payloads[0];
        assert_eq!(payload.data, br#"{"region":"eu"}"#);
        let policies = d.schedule.policies.as_ref().unwrap();
        assert_eq!(
            policies.overlap_policy,
            ScheduleOverlapPolicy::BufferOne as i32
        );
        assert_eq!(
            policies.catchup_window,
            Some(prost_wkt_types::Duration {
                seconds: 60,
                nanos: 0
            })
        );
        assert!(policies.pause_on_failure);
        assert!(!d.schedule.state.as_ref().unwrap().paused);
    }

    #[test]
    fn an_interval_and_a_disabled_schedule_map_too() {
        let p = project(&["id: sweep\nschedule:\n  every: 15m\n  offset: 5m\n  enabled: false\n"]);
        let d = &desired(&p)[0];
        let interval = &d.schedule.spec.as_ref().unwrap().interval[0];
        assert_eq!(interval.interval.as_ref().unwrap().seconds, 900);
        assert_eq!(interval.phase.as_ref().unwrap().seconds, 300);
        let state = d.schedule.state.as_ref().unwrap();
        assert!(state.paused);
        assert!(state.notes.starts_with(PAUSE_NOTE_PREFIX));
    }

    #[test]
    fn the_fingerprint_is_stable_and_sees_every_managed_field() {
        let base = "id: w\nschedule:\n  cron: \"0 2 * * *\"\n";
        let same = project(&[base]);
        assert_eq!(
            desired(&same)[0].fingerprint,
            desired(&project(&[base]))[0].fingerprint
        );
        // Spelling that means the same thing gives the same fingerprint.
        let respelt = project(&["id: w\nschedule:\n  cron: \"0 2 * * *   \"\n  enabled: true\n"]);
        assert_eq!(
            desired(&same)[0].fingerprint,
            desired(&respelt)[0].fingerprint
        );
        let changes = [
            "id: w\nschedule:\n  cron: \"0 3 * * *\"\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  timezone: Asia/Tokyo\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  jitter: 1s\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  enabled: false\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  input: 1\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  overlap_policy: allow\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  catchup_window: 10s\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  pause_on_failure: true\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  end_at: 2030-01-01T00:00:00Z\n",
            "id: w\ntype: Other\nschedule:\n  cron: \"0 2 * * *\"\n",
            "id: w\ntask_queue: other\nschedule:\n  cron: \"0 2 * * *\"\n",
            "id: w\nschedule:\n  every: 1h\n",
        ];
        let mut seen = std::collections::HashSet::new();
        seen.insert(desired(&same)[0].fingerprint.clone());
        for change in changes {
            assert!(
                seen.insert(desired(&project(&[change]))[0].fingerprint.clone()),
                "{change}"
            );
        }
    }

    /// The fingerprint of one fixed schedule, as every build of this
    /// version computes it. The test build turns on serde_json's
    /// `preserve_order` (a host may, and Cargo unifies features), which keeps
    /// map keys in written order: the fingerprint must not follow.
    #[test]
    fn the_fingerprint_does_not_depend_on_how_serde_json_was_built() {
        let file = "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  \
                    input: {zeta: 1, alpha: {y: 2, b: [3, {d: 4, c: 5}]}}\n";
        let want = desired(&project(&[file])).remove(0);
        assert_eq!(want.fingerprint.0, GOLDEN_FINGERPRINT);
    }

    /// The canonical form of the timing shapes the version before calendar
    /// entries, interval lists, exclusions, limits and own ids wrote, as it
    /// wrote them: a file that uses none of the newer keys keeps its
    /// fingerprint, so an upgrade writes nothing.
    #[test]
    fn files_without_the_newer_keys_keep_the_canonical_form_of_the_version_before() {
        let canonical_of = |file: &str| {
            let p = project(&[file]);
            let (workflow, schedule) = p.scheduled().next().unwrap();
            canonical_json(&canonical(
                &schedule_id("billing", &workflow.id),
                workflow,
                schedule,
            ))
        };
        let rest = r#""catchup_window_ms":null,"enabled":true,"end_at":null,"input":null,"jitter_ms":0,"overlap":"Skip","pause_on_failure":false,"start_at":null,"task_queue":"q","timezone":"UTC","#;
        assert_eq!(
            canonical_of("id: w\nschedule:\n  every: 15m\n  offset: 5m\n"),
            format!(r#"{{{rest}"timing":{{"every":[900000,300000]}},"type":"w","version":1}}"#)
        );
        assert_eq!(
            canonical_of("id: w\nschedule:\n  cron: [\"0 2 * * * # n\", \"@every 1h/1m\"]\n"),
            format!(
                r#"{{{rest}"timing":{{"cron":[{{"comment":"n","day_of_month":[[1,31,1]],"day_of_week":[[0,6,1]],"hour":[[2,2,1]],"minute":[[0,0,1]],"month":[[1,12,1]],"second":[[0,0,1]],"year":[]}},{{"every":[3600000,60000]}}]}},"type":"w","version":1}}"#
            )
        );
        // One interval in a list is the same schedule, and the same fingerprint.
        assert_eq!(
            desired(&project(&["id: w\nschedule:\n  every: [15m]\n"]))[0].fingerprint,
            desired(&project(&["id: w\nschedule:\n  every: 15m\n"]))[0].fingerprint
        );
    }

    #[test]
    fn the_fingerprint_sees_every_newer_key() {
        let base = "id: w\nschedule:\n  cron: \"0 2 * * *\"\n";
        let changes = [
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  calendar: {hour: 3}\n",
            "id: w\nschedule:\n  calendar: {hour: 2}\n",
            "id: w\nschedule:\n  calendar: {hour: 2, comment: x}\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  every: 1h\n",
            "id: w\nschedule:\n  every: [1h, 2h]\n",
            "id: w\nschedule:\n  every: [1h, {every: 2h, offset: 1m}]\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  exclude: \"* * 25 12 *\"\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  exclude: {month: 12, day_of_month: 25}\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  remaining_actions: 5\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  remaining_actions: 6\n",
            "id: w\nschedule:\n  cron: \"0 2 * * *\"\n  id: own-id\n",
        ];
        let mut seen = std::collections::HashSet::new();
        seen.insert(desired(&project(&[base]))[0].fingerprint.clone());
        for change in changes {
            assert!(
                seen.insert(desired(&project(&[change]))[0].fingerprint.clone()),
                "{change}"
            );
        }
    }

    #[test]
    fn calendars_intervals_exclusions_limits_and_own_ids_map_onto_temporal() {
        let p = project(&[
            "id: w\nschedule:\n  id: daily-billing-report\n  cron: \"0 2 * * *\"\n  \
             calendar: [{hour: 9, day_of_week: mon-fri, comment: weekdays}]\n  \
             every: [1h, {every: 1d, offset: 2h}]\n  exclude: [\"* * 25 12 *\", {month: 1}]\n  \
             remaining_actions: 7\n",
        ]);
        let d = &desired(&p)[0];
        assert_eq!(d.schedule_id, "daily-billing-report");
        let Some(schedule_action::Action::StartWorkflow(start)) =
            d.schedule.action.as_ref().unwrap().action.as_ref()
        else {
            panic!("no start action");
        };
        assert_eq!(start.workflow_id, "daily-billing-report");
        let spec = d.schedule.spec.as_ref().unwrap();
        let range = |start, end, step| vec![ProtoRange { start, end, step }];
        assert_eq!(spec.structured_calendar.len(), 2);
        assert_eq!(spec.structured_calendar[1].hour, range(9, 9, 1));
        assert_eq!(spec.structured_calendar[1].minute, range(0, 0, 1));
        assert_eq!(spec.structured_calendar[1].day_of_week, range(1, 5, 1));
        assert_eq!(spec.structured_calendar[1].day_of_month, range(1, 31, 1));
        assert_eq!(spec.structured_calendar[1].comment, "weekdays");
        let seconds: Vec<(i64, Option<i64>)> = spec
            .interval
            .iter()
            .map(|i| (i.interval.unwrap().seconds, i.phase.map(|p| p.seconds)))
            .collect();
        assert_eq!(seconds, [(3600, None), (86_400, Some(7200))]);
        assert_eq!(spec.exclude_structured_calendar.len(), 2);
        assert_eq!(
            spec.exclude_structured_calendar[0].day_of_month,
            range(25, 25, 1)
        );
        assert_eq!(spec.exclude_structured_calendar[1].month, range(1, 1, 1));
        let state = d.schedule.state.as_ref().unwrap();
        assert!(state.limited_actions);
        assert_eq!(state.remaining_actions, 7);
    }

    const GOLDEN_FINGERPRINT: &str =
        "217bc9f0e637f05e10f3679d2c1ced3ccaf2caa5e651aa81e696481320592749";
}
