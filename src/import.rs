//! Workflow files written from schedules that Temporal already holds, for
//! `schedule-sync import`: the way in for teams whose schedules were made
//! with the Temporal CLI, the UI or SDK code.
//!
//! [`import`] turns one described schedule into the text of one workflow
//! file, in the forms a person writes (cron strings, `every`/`offset`,
//! durations such as `30s`, the input as JSON), or says why it cannot. A
//! schedule is imported only when the file it gets reads back, through the
//! same loader and mapping as any project, as a schedule that `plan` finds no
//! field to change in; anything else is skipped with the reason, never
//! guessed. Nothing here talks to Temporal or writes a file.
//!
//! The file keeps the schedule's id: a schedule `billing.nightly` becomes
//! workflow `nightly` of project `billing`. Temporal cannot rename a
//! schedule, so one whose id is not of that form (`daily-billing-report`)
//! gets a file that names it (`schedule: {id: daily-billing-report}`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::SecondsFormat;
use serde::Serialize;
use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
use temporalio_common::protos::temporal::api::schedule::v1::{Schedule, ScheduleSpec};
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

use crate::compare::changes::{field_changes, json_value, normalized};
use crate::compare::same_schedule;
use crate::duration::format_duration;
use crate::project::names::{
    SCHEDULE_ID_RULE, WORKFLOW_ID_RULE, is_project_name, is_schedule_id, is_workflow_id,
};
use crate::project::{Project, check_workflow_source};
use crate::spec::{PAUSE_NOTE_PREFIX, desired};
use crate::store::Described;

mod action;
#[cfg(test)]
mod property;
mod timing;

/// The project the files are written for.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The project name: imported schedule ids must start with it and `.`.
    pub project: &'a str,
    /// The project's default task queue; a file names its own only when it
    /// differs.
    pub task_queue: &'a str,
    /// The folder the files go to, relative to the project folder.
    pub folder: &'a Path,
    /// The namespace's search attributes and their types, for those that a
    /// held action names without a type (Temporal 1.32 keeps a search
    /// attribute of an action as it was sent, which may be untyped; 1.29
    /// names the type). Empty when unknown: then such a schedule is skipped.
    pub attribute_types: &'a crate::store::AttributeTypes,
}

/// One schedule turned into a workflow file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// The schedule id.
    pub schedule_id: String,
    /// The workflow id in the project.
    pub workflow: String,
    /// The file to write, relative to the project folder.
    pub file: PathBuf,
    /// Its text.
    #[serde(skip)]
    pub text: String,
    /// What a reader should know, also written at the top of the file.
    pub notes: Vec<String>,
}

/// A schedule that no workflow file can express exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The schedule id.
    pub schedule_id: String,
    /// Why, in words for the person running the import.
    pub reason: String,
}

/// The workflow file of the schedule `described`, or why there is none.
///
/// # Errors
///
/// A [`Skipped`] naming the first reason the schedule cannot be expressed.
pub fn import(target: &Target<'_>, described: &Described) -> Result<Imported, Skipped> {
    let schedule_id = described.observed.schedule_id.clone();
    let skip = |reason: String| Skipped {
        schedule_id: schedule_id.clone(),
        reason,
    };
    if schedule_id == crate::fence::fence_id(target.project) {
        return Err(skip(
            "it is schedule-sync's record of the project's newest writer, not a workflow".into(),
        ));
    }
    let (workflow, own_id) = workflow_id(target.project, &schedule_id).map_err(skip)?;
    if let Some(owner) = described
        .observed
        .owner
        .as_deref()
        .filter(|o| *o != target.project)
    {
        return Err(skip(format!("it belongs to project `{owner}`")));
    }
    let foreign_memo = described.foreign_memo();
    if !foreign_memo.is_empty() {
        return Err(skip(format!(
            "its memo holds {}, which schedule-sync does not keep",
            listed(&foreign_memo)
        )));
    }
    let file = target.folder.join(format!("{workflow}.yaml"));
    let (text, notes) = render(target, &workflow, own_id, described).map_err(skip)?;
    check_round_trip(target, &file, &text, &described.schedule).map_err(skip)?;
    Ok(Imported {
        schedule_id,
        workflow,
        file,
        text,
        notes,
    })
}

/// The workflow id that `schedule_id` stands for in `project`, and the
/// schedule id when it is not of the project's form: then the file names it
/// (`schedule.id`), since Temporal cannot rename a schedule, and the
/// workflow id is the schedule id with each `:` written `-`. An id of
/// another project's form (`shop.report`) is left to that project.
fn workflow_id<'a>(
    project: &str,
    schedule_id: &'a str,
) -> Result<(String, Option<&'a str>), String> {
    if let Some(workflow) = schedule_id
        .strip_prefix(project)
        .and_then(|rest| rest.strip_prefix('.'))
    {
        if !is_workflow_id(workflow) {
            return Err(format!(
                "`{workflow}` is not a workflow id schedule-sync accepts ({WORKFLOW_ID_RULE})"
            ));
        }
        return Ok((workflow.to_owned(), None));
    }
    if let Some((other, rest)) = schedule_id.split_once('.')
        && is_project_name(other)
        && is_workflow_id(rest)
    {
        return Err(format!(
            "its id is not of the form `{project}.<workflow id>` but of project `{other}`'s; import it into that project"
        ));
    }
    if !is_schedule_id(schedule_id) {
        return Err(format!(
            "its id is neither of the form `{project}.<workflow id>` nor one a workflow file can name ({SCHEDULE_ID_RULE}), and Temporal cannot rename a schedule"
        ));
    }
    let workflow = schedule_id.replace(':', "-");
    if !is_workflow_id(&workflow) {
        return Err(format!(
            "no workflow id schedule-sync accepts can stand for it ({WORKFLOW_ID_RULE})"
        ));
    }
    Ok((workflow, Some(schedule_id)))
}

fn listed(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text of the file and the notes for the reader, or why the schedule
/// holds something a workflow file cannot say.
fn render(
    target: &Target<'_>,
    workflow: &str,
    own_id: Option<&str>,
    described: &Described,
) -> Result<(String, Vec<String>), String> {
    let schedule = &described.schedule;
    let start = start_action(schedule)?;
    let spec = plain_spec(schedule.spec.as_ref())?;
    let policies = schedule.policies.unwrap_or_default();
    if policies.keep_original_workflow_id {
        return Err("it keeps the original workflow id on retried actions".into());
    }
    let state = schedule.state.clone().unwrap_or_default();
    if state.limited_actions && state.remaining_actions <= 0 {
        return Err("it is limited to a number of actions, and has taken them all".into());
    }

    let mut notes = Vec::new();
    let ours_paused = state.paused && state.notes.starts_with(PAUSE_NOTE_PREFIX);
    if state.paused && !ours_paused {
        notes.push(format!(
            "Paused in Temporal{}. schedule-sync keeps an operator's pause: it stays paused until someone resumes it. Write `enabled: false` to keep it paused for good.",
            if state.notes.is_empty() {
                String::new()
            } else {
                format!(" (notes: {})", one_line(&state.notes))
            }
        ));
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported by schedule-sync from the Temporal schedule `{}`.",
        one_line(&described.observed.schedule_id)
    );
    for note in &notes {
        let _ = writeln!(out, "# {note}");
    }
    let _ = writeln!(out, "id: {}", scalar(workflow));
    let workflow_type = start
        .workflow_type
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or_default();
    if workflow_type != workflow {
        let _ = writeln!(out, "type: {}", scalar(workflow_type));
    }
    let task_queue = start
        .task_queue
        .as_ref()
        .map(|q| q.name.as_str())
        .unwrap_or_default();
    if task_queue != target.task_queue {
        let _ = writeln!(out, "task_queue: {}", scalar(task_queue));
    }
    out.push_str("schedule:\n");
    if let Some(own) = own_id {
        let _ = writeln!(out, "  id: {}", scalar(own));
    }
    timing::write_timing(&mut out, spec)?;
    timing::write_exclusions(&mut out, spec);
    let timezone = spec.timezone_name.as_str();
    if !timezone.is_empty() && timezone != "UTC" {
        let _ = writeln!(out, "  timezone: {}", scalar(timezone));
    }
    if ours_paused {
        out.push_str("  enabled: false\n");
    }
    if let Some(jitter) = spec
        .jitter
        .as_ref()
        .map(std_duration)
        .filter(|d| !d.is_zero())
    {
        let _ = writeln!(out, "  jitter: {}", format_duration(jitter));
    }
    let normal = normalized(schedule);
    let normal_policies = normal.policies.unwrap_or_default();
    let overlap = normal_policies.overlap_policy;
    if overlap
        != temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy::Skip as i32
    {
        let _ = writeln!(out, "  overlap_policy: {}", overlap_name(overlap)?);
    }
    if let Some(window) = normal_policies.catchup_window.as_ref().map(std_duration)
        && window != crate::spec::TEMPORAL_DEFAULT_CATCHUP_WINDOW
    {
        let _ = writeln!(out, "  catchup_window: {}", format_duration(window));
    }
    if policies.pause_on_failure {
        out.push_str("  pause_on_failure: true\n");
    }
    for (key, time) in [("start_at", &spec.start_time), ("end_at", &spec.end_time)] {
        if let Some(time) = time {
            let time = chrono::DateTime::from_timestamp(
                time.seconds,
                u32::try_from(time.nanos).unwrap_or(0),
            )
            .ok_or_else(|| format!("its {key} is outside the years a file can name"))?;
            let _ = writeln!(
                out,
                "  {key}: {}",
                time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
    }
    match arguments(start)?.as_slice() {
        [] => {}
        [input] => {
            let _ = writeln!(out, "  input: {}", flow_json(input));
        }
        args => {
            let args: Vec<String> = args.iter().map(flow_json).collect();
            let _ = writeln!(out, "  args: [{}]", args.join(", "));
        }
    }
    if state.limited_actions {
        let _ = writeln!(out, "  remaining_actions: {}", state.remaining_actions);
    }
    action::write_options(
        &mut out,
        start,
        &described.observed.schedule_id,
        target.attribute_types,
    )?;
    Ok((out, notes))
}

/// The start-workflow action, when it asks for nothing a workflow file
/// cannot say.
fn start_action(schedule: &Schedule) -> Result<&NewWorkflowExecutionInfo, String> {
    let Some(Action::StartWorkflow(start)) =
        schedule.action.as_ref().and_then(|a| a.action.as_ref())
    else {
        return Err("its action is not to start a workflow".into());
    };
    // Every field is named, so that a field added to Temporal's protocol
    // is a compile error here rather than a setting lost on adoption. The
    // options a file can say are written, and checked, by `action`.
    let NewWorkflowExecutionInfo {
        workflow_id: _,
        workflow_type: _,
        task_queue,
        input: _,
        workflow_execution_timeout: _,
        workflow_run_timeout: _,
        workflow_task_timeout: _,
        workflow_id_reuse_policy,
        retry_policy: _,
        cron_schedule,
        memo: _,
        search_attributes: _,
        header,
        user_metadata: _,
        versioning_override,
        priority: _,
    } = start;
    let mut unsupported = Vec::new();
    if *workflow_id_reuse_policy != 0 {
        unsupported.push("a workflow id reuse policy");
    }
    if !cron_schedule.is_empty() {
        unsupported.push("a cron schedule on the workflow itself");
    }
    if header.as_ref().is_some_and(|h| !h.fields.is_empty()) {
        unsupported.push("headers");
    }
    if versioning_override.is_some() {
        unsupported.push("a versioning override");
    }
    if task_queue.as_ref().is_none_or(|q| q.name.is_empty()) {
        unsupported.push("no task queue");
    }
    if unsupported.is_empty() {
        Ok(start)
    } else {
        Err(format!(
            "its workflow action has {}, which a workflow file cannot say",
            unsupported.join(", ")
        ))
    }
}

/// The spec, when it holds only what a workflow file can say.
// `exclude_calendar` is deprecated in the protocol, and still honoured.
#[allow(deprecated)]
fn plain_spec(spec: Option<&ScheduleSpec>) -> Result<&ScheduleSpec, String> {
    let Some(spec) = spec else {
        return Err("it has no spec".into());
    };
    if !spec.exclude_calendar.is_empty() {
        // The server turns them into structured calendars on create.
        return Err("its spec excludes calendars the server did not canonicalise".into());
    }
    if !spec.timezone_data.is_empty() {
        return Err("its time zone is given as data, not by name".into());
    }
    if !spec.calendar.is_empty() || !spec.cron_string.is_empty() {
        // The server turns both into structured calendars on create.
        return Err("its spec holds calendars the server did not canonicalise".into());
    }
    if spec.structured_calendar.is_empty() && spec.interval.is_empty() {
        return Err(
            "it has neither a calendar nor an interval: it only runs when triggered".into(),
        );
    }
    Ok(spec)
}

/// The JSON arguments, or why the input is not JSON.
fn arguments(start: &NewWorkflowExecutionInfo) -> Result<Vec<serde_json::Value>, String> {
    start
        .input
        .as_ref()
        .map(|i| i.payloads.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|payload| json_or_reason(payload, "input"))
        .collect()
}

/// The JSON value of `payload`, or why it has none: an encoding other than
/// plain JSON (encrypted or binary data among them), or JSON that does not
/// parse. `what` names the payload in the reason.
fn json_or_reason(
    payload: &temporalio_common::protos::temporal::api::common::v1::Payload,
    what: &str,
) -> Result<serde_json::Value, String> {
    json_value(payload).ok_or_else(|| {
        let encoding = payload
            .metadata
            .get("encoding")
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .unwrap_or_else(|| "no encoding".to_owned());
        if encoding == "json/plain" {
            format!("its {what} is not valid JSON")
        } else if encoding.contains("encrypted")
            || payload.metadata.contains_key("encryption-key-id")
        {
            format!(
                "its {what} is encrypted (`{}`), and a workflow file holds plain JSON",
                one_line(&encoding)
            )
        } else {
            format!(
                "its {what} is encoded as `{}`, not plain JSON",
                one_line(&encoding)
            )
        }
    })
}

fn overlap_name(policy: i32) -> Result<&'static str, String> {
    use crate::project::OverlapPolicy;
    use temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy as Proto;
    let ours = match Proto::try_from(policy) {
        Ok(Proto::Skip | Proto::Unspecified) => OverlapPolicy::Skip,
        Ok(Proto::BufferOne) => OverlapPolicy::BufferOne,
        Ok(Proto::BufferAll) => OverlapPolicy::BufferAll,
        Ok(Proto::CancelOther) => OverlapPolicy::CancelOther,
        Ok(Proto::TerminateOther) => OverlapPolicy::TerminateOther,
        Ok(Proto::AllowAll) => OverlapPolicy::AllowAll,
        Err(_) => return Err(format!("its overlap policy {policy} is unknown")),
    };
    Ok(OverlapPolicy::SPELLINGS
        .iter()
        .find(|(_, p)| *p == ours)
        .map_or("skip", |(name, _)| name))
}

/// Loads `text` as the project would and checks that the schedule it
/// declares is the one the server holds.
fn check_round_trip(
    target: &Target<'_>,
    file: &Path,
    text: &str,
    held: &Schedule,
) -> Result<(), String> {
    let outcome = check_workflow_source(file.to_path_buf(), text, target.task_queue);
    let Some(workflow) = outcome.workflow else {
        let problems: Vec<String> = outcome
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect();
        return Err(format!(
            "its workflow file would not load: {}",
            problems.join("; ")
        ));
    };
    let project = Project {
        name: target.project.to_owned(),
        task_queue: target.task_queue.to_owned(),
        workflows: vec![workflow],
    };
    let want = desired(&project)
        .pop()
        .ok_or("its workflow file declares no schedule")?;
    let changes = field_changes(held, &want.schedule);
    if !changes.is_empty() {
        let fields: Vec<String> = changes
            .iter()
            .map(|c| {
                format!(
                    "{} (`{}` would read back as `{}`)",
                    c.field, c.current, c.desired
                )
            })
            .collect();
        return Err(format!(
            "no workflow file reads back as this schedule: {}",
            fields.join(", ")
        ));
    }
    if !same_schedule(held, &want.schedule) {
        return Err("no workflow file reads back as this schedule exactly".into());
    }
    Ok(())
}

fn std_duration(d: &prost_wkt_types::Duration) -> Duration {
    Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    )
}

/// A string as a YAML scalar: plain when it is a simple name that YAML
/// reads back as the same string, double-quoted (JSON escapes) otherwise.
fn scalar(text: &str) -> String {
    let simple = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
        );
    if simple {
        text.to_owned()
    } else {
        quoted(text)
    }
}

fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// A JSON value written as a one-line YAML flow value, keys sorted, with a
/// space after each `:` and `,`.
fn flow_json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(flow_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            // Sorted in any build of serde_json, as the fingerprint is.
            map.iter()
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .map(|(k, v)| format!("{}: {}", quoted(k), flow_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        scalar => scalar.to_string(),
    }
}

/// Text on one line, for a YAML comment or a message.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Observed;
    use temporalio_common::protos::temporal::api::common::v1::{
        Header, Memo, Payloads, RetryPolicy, SearchAttributes,
    };
    use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;

    const PROJECT: &str = "billing";

    fn target() -> Target<'static> {
        static NO_TYPES: crate::store::AttributeTypes = std::collections::BTreeMap::new();
        Target {
            project: PROJECT,
            task_queue: "q",
            folder: Path::new("workflows"),
            attribute_types: &NO_TYPES,
        }
    }

    /// The schedule a workflow file declares, as Temporal would describe it.
    fn described(file: &str) -> Described {
        let project = crate::project::test_project(PROJECT, &[file]);
        let want = desired(&project).remove(0);
        let state = want.schedule.state.clone().unwrap_or_default();
        Described {
            observed: Observed {
                schedule_id: want.schedule_id.clone(),
                owner: None,
                fingerprint: None,
                paused: state.paused,
                notes: state.notes,
                spec: want
                    .schedule
                    .spec
                    .as_ref()
                    .map(crate::store::ListedSpec::of),
                activity: None,
            },
            schedule: want.schedule,
            conflict_token: Vec::new(),
            search_attributes: Default::default(),
            memo: Default::default(),
        }
    }

    #[test]
    fn every_shape_a_file_can_declare_comes_back_as_the_same_schedule() {
        let files = [
            "id: a\nschedule:\n  cron: \"0 2 * * *\"\n",
            "id: a\nschedule:\n  cron: \"CRON_TZ=Asia/Tokyo 30 9 * * mon-fri # weekdays\"\n",
            "id: a\nschedule:\n  cron: [\"15 */10 * * * * 2027-2030/3\", \"@every 1h/15m\", \"0 0 1 jan,jul *\"]\n",
            "id: a\ntype: \"yes\"\ntask_queue: \"other queue\"\nschedule:\n  every: 90m\n  offset: 250ms\n",
            "id: a\nschedule:\n  cron: \"@weekly\"\n  timezone: America/New_York\n  enabled: false\n  jitter: 1h30m\n  \
             overlap_policy: allow\n  catchup_window: 10s\n  pause_on_failure: true\n  \
             start_at: 2026-01-01T00:00:00.25Z\n  end_at: 2099-12-31T23:59:59Z\n  \
             input: {\"list\": [1, -2.5e10, null, \"é\\n\"], \"yes\": true}\n",
            "id: a\nschedule:\n  cron: \"0 9 * * 7\"\n  input: \"on\"\n",
        ];
        for file in files {
            let held = described(file);
            let imported =
                import(&target(), &held).unwrap_or_else(|s| panic!("{file}: {}", s.reason));
            assert_eq!(imported.file, Path::new("workflows/a.yaml"));
            let outcome = check_workflow_source(imported.file.clone(), &imported.text, "q");
            let workflow = outcome
                .workflow
                .unwrap_or_else(|| panic!("{}\n{:#?}", imported.text, outcome.diagnostics));
            let again = desired(&Project {
                name: PROJECT.into(),
                task_queue: "q".into(),
                workflows: vec![workflow],
            })
            .remove(0);
            assert!(
                same_schedule(&held.schedule, &again.schedule),
                "{file}\n{}",
                imported.text
            );
            assert_eq!(
                again.enabled, !held.observed.paused,
                "our own pause is carried as `enabled: false`"
            );
        }
    }

    #[test]
    fn files_read_as_a_person_writes_them() {
        let text = import(
            &target(),
            &described("id: a\ntype: Report\nschedule:\n  every: 15m\n  offset: 5m\n  jitter: 30s\n  input: {region: eu}\n"),
        )
        .unwrap()
        .text;
        assert_eq!(
            text,
            "# Imported by schedule-sync from the Temporal schedule `billing.a`.\n\
             id: a\ntype: Report\nschedule:\n  every: 15m\n  offset: 5m\n  jitter: 30s\n  \
             input: {\"region\": \"eu\"}\n"
        );
    }

    #[test]
    fn what_a_file_cannot_say_is_skipped_with_the_reason() {
        let base = "id: a\nschedule:\n  cron: \"0 2 * * *\"\n";
        type Spoil = fn(&mut Described);
        let cases: [(&str, Spoil); 13] = [
            ("excludes calendars the server did not canonicalise", |d| {
                #[allow(deprecated)]
                d.schedule
                    .spec
                    .as_mut()
                    .unwrap()
                    .exclude_calendar
                    .push(Default::default());
            }),
            ("time zone is given as data", |d| {
                d.schedule.spec.as_mut().unwrap().timezone_data = vec![1, 2];
            }),
            ("neither a calendar nor an interval", |d| {
                d.schedule
                    .spec
                    .as_mut()
                    .unwrap()
                    .structured_calendar
                    .clear();
            }),
            ("original workflow id", |d| {
                d.schedule
                    .policies
                    .as_mut()
                    .unwrap()
                    .keep_original_workflow_id = true;
            }),
            ("belongs to project `shop`", |d| {
                d.observed.owner = Some("shop".into())
            }),
            ("neither of the form `billing.<workflow id>`", |d| {
                d.observed.schedule_id = "billing x".into();
            }),
            ("its memo holds `team`", |d| {
                d.memo
                    .insert("team".into(), crate::spec::json_payload(&"x".into()));
            }),
            ("has headers, which a workflow file cannot say", |d| {
                start_of(d).header = Some(Header {
                    fields: [("auth".to_owned(), crate::spec::json_payload(&"x".into()))].into(),
                });
            }),
            ("its input is encrypted", |d| {
                let mut payload = crate::spec::json_payload(&"x".into());
                payload
                    .metadata
                    .insert("encoding".into(), b"binary/encrypted".to_vec());
                start_of(d).input = Some(Payloads {
                    payloads: vec![payload],
                });
            }),
            (
                "its workflow memo field `team` is encoded as `binary/protobuf`",
                |d| {
                    let mut payload = crate::spec::json_payload(&"x".into());
                    payload
                        .metadata
                        .insert("encoding".into(), b"binary/protobuf".to_vec());
                    start_of(d).memo = Some(Memo {
                        fields: [("team".to_owned(), payload)].into(),
                    });
                },
            ),
            (
                "its search attribute `Region` names no type, and the namespace",
                |d| {
                    start_of(d).search_attributes = Some(SearchAttributes {
                        indexed_fields: [(
                            "Region".to_owned(),
                            crate::spec::json_payload(&"eu".into()),
                        )]
                        .into(),
                    });
                },
            ),
            ("its summary is JSON but not text", |d| {
                start_of(d).user_metadata = Some(UserMetadata {
                    summary: Some(crate::spec::json_payload(&1.into())),
                    details: None,
                });
            }),
            ("would not load", |d| {
                start_of(d).retry_policy = Some(RetryPolicy {
                    backoff_coefficient: 0.5,
                    ..Default::default()
                });
            }),
        ];
        for (reason, spoil) in cases {
            let mut held = described(base);
            spoil(&mut held);
            let skipped = import(&target(), &held).expect_err(reason);
            assert!(
                skipped.reason.contains(reason),
                "{reason}: {}",
                skipped.reason
            );
        }
    }

    fn start_of(d: &mut Described) -> &mut NewWorkflowExecutionInfo {
        let Some(Action::StartWorkflow(start)) =
            d.schedule.action.as_mut().and_then(|a| a.action.as_mut())
        else {
            unreachable!()
        };
        start
    }

    #[test]
    fn every_start_option_comes_back_as_the_same_schedule() {
        let file = "id: a\nschedule:\n  cron: \"0 2 * * *\"\n  workflow_id: \"nightly report\"\n  \
                    args: [eu, {formats: [pdf]}, 3, null]\n  execution_timeout: 2h\n  run_timeout: 1h\n  \
                    task_timeout: 20s\n  retry_policy:\n    initial_interval: 1500ms\n    \
                    backoff_coefficient: 1.5\n    maximum_interval: 1m\n    maximum_attempts: 5\n    \
                    non_retryable_error_types: [Bad, \"Worse: yes\"]\n  \
                    memo: {team: billing, \"yes\": [1, 2.5], nested: {a: null}}\n  \
                    search_attributes:\n    K: {type: Keyword, value: \"on\"}\n    \
                    L: {type: KeywordList, value: [a, \"b c\"]}\n    T: {type: Text, value: \"é\\nx\"}\n    \
                    I: {type: Int, value: -9223372036854775808}\n    D: {type: Double, value: 0.1}\n    \
                    B: {type: Bool, value: false}\n    W: {type: Datetime, value: 2026-01-01T00:00:00.5+02:00}\n  \
                    summary: \"Nightly: \\\"report\\\"\"\n  details: \"line 1\\nline 2\\n\"\n  \
                    priority: {priority_key: 2, fairness_key: \"tenant a\", fairness_weight: 0.1}\n";
        let held = described(file);
        let imported = import(&target(), &held).unwrap_or_else(|s| panic!("{}", s.reason));
        let outcome = check_workflow_source(imported.file.clone(), &imported.text, "q");
        let workflow = outcome
            .workflow
            .unwrap_or_else(|| panic!("{}\n{:#?}", imported.text, outcome.diagnostics));
        let again = desired(&Project {
            name: PROJECT.into(),
            task_queue: "q".into(),
            workflows: vec![workflow],
        })
        .remove(0);
        assert_eq!(again.schedule, held.schedule, "{}", imported.text);
        let want = desired(&crate::project::test_project(PROJECT, &[file])).remove(0);
        assert_eq!(again.fingerprint, want.fingerprint, "{}", imported.text);
        for key in [
            "workflow_id",
            "args",
            "retry_policy",
            "memo",
            "search_attributes",
            "summary",
            "details",
            "priority",
        ] {
            assert!(
                imported.text.contains(&format!("  {key}:")),
                "{key}: {}",
                imported.text
            );
        }
    }

    #[test]
    fn defaults_held_by_the_server_are_left_out_of_the_file() {
        let mut held = described("id: a\nschedule:\n  every: 1h\n");
        let start = start_of(&mut held);
        // As the `temporal` CLI makes a schedule: a task timeout of 10s.
        start.workflow_task_timeout = Some(prost_wkt_types::Duration {
            seconds: 10,
            nanos: 0,
        });
        start.header = Some(Header::default());
        start.user_metadata = Some(UserMetadata::default());
        let text = import(&target(), &held).unwrap().text;
        assert!(!text.contains("timeout"), "{text}");
        assert!(!text.contains("summary"), "{text}");
    }

    #[test]
    fn a_value_no_file_reads_back_exactly_is_refused_not_rounded() {
        let mut held = described("id: a\nschedule:\n  every: 1h\n");
        // 1h and a nanosecond: a duration in a file has milliseconds at most.
        held.schedule.spec.as_mut().unwrap().interval[0].interval =
            Some(prost_wkt_types::Duration {
                seconds: 3600,
                nanos: 1,
            });
        let skipped = import(&target(), &held).unwrap_err();
        assert!(skipped.reason.contains("reads back"), "{}", skipped.reason);
    }

    #[test]
    fn names_are_plain_only_when_yaml_reads_them_as_the_same_string() {
        assert_eq!(scalar("Report"), "Report");
        assert_eq!(scalar("billing.v2/report"), "billing.v2/report");
        for tricky in ["yes", "No", "null", "2026", "my queue", "-x", "a: b", ""] {
            assert!(scalar(tricky).starts_with('"'), "{tricky}");
        }
    }
}
