//! The start options of a schedule's action as `plan` compares and shows
//! them: one line of text per option, in a normal form, so that two
//! spellings of one meaning (a memo's JSON with other spacing, a task
//! timeout of Temporal's default 10s and none, a search attribute with or
//! without its type in the payload) read the same.

use std::collections::BTreeMap;

use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::schedule::v1::Schedule;
use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

use super::changes::json_value;
use crate::project::action::{AttributeType, AttributeValue, DEFAULT_TASK_TIMEOUT, datetime_text};
use crate::spec::action::ATTRIBUTE_TYPE_METADATA;
use crate::spec::canonical_json;

/// The option names, in the order `plan` lists them.
pub const FIELDS: [&str; 10] = [
    "workflow_id",
    "execution_timeout",
    "run_timeout",
    "task_timeout",
    "retry_policy",
    "memo",
    "search_attributes",
    "summary",
    "details",
    "priority",
];

/// Each option of the start action of `schedule`, by [`FIELDS`] order, in
/// its normal form; an option that is not set is empty text.
pub fn options(schedule: &Schedule) -> [String; 10] {
    let Some(Action::StartWorkflow(start)) =
        schedule.action.as_ref().and_then(|a| a.action.as_ref())
    else {
        return Default::default();
    };
    let NewWorkflowExecutionInfo {
        workflow_id,
        workflow_execution_timeout,
        workflow_run_timeout,
        workflow_task_timeout,
        retry_policy,
        memo,
        search_attributes,
        user_metadata,
        priority,
        ..
    } = start;
    let task_timeout = workflow_task_timeout
        .as_ref()
        .filter(|d| std_duration(d) != DEFAULT_TASK_TIMEOUT);
    let retry = retry_policy.as_ref().map_or_else(String::new, |p| {
        let mut parts = Vec::new();
        if let Some(d) = p.initial_interval.as_ref().filter(|d| !is_zero(d)) {
            parts.push(format!("initial_interval {}", duration_text(d)));
        }
        if p.backoff_coefficient != 0.0 {
            parts.push(format!("backoff_coefficient {}", p.backoff_coefficient));
        }
        if let Some(d) = p.maximum_interval.as_ref().filter(|d| !is_zero(d)) {
            parts.push(format!("maximum_interval {}", duration_text(d)));
        }
        if p.maximum_attempts != 0 {
            parts.push(format!("maximum_attempts {}", p.maximum_attempts));
        }
        if !p.non_retryable_error_types.is_empty() {
            parts.push(format!(
                "non_retryable_error_types [{}]",
                p.non_retryable_error_types.join(", ")
            ));
        }
        if parts.is_empty() {
            "Temporal's defaults".to_owned()
        } else {
            parts.join(", ")
        }
    });
    let memo = memo
        .as_ref()
        .map(|m| {
            m.fields
                .iter()
                .map(|(k, p)| (k.clone(), payload_text(p)))
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|m| !m.is_empty())
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let attributes = search_attributes
        .as_ref()
        .map(|a| {
            a.indexed_fields
                .iter()
                .map(|(k, p)| (k.clone(), attribute_text(p)))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let metadata = |pick: fn(
        &temporalio_common::protos::temporal::api::sdk::v1::UserMetadata,
    ) -> Option<&Payload>| {
        user_metadata
            .as_ref()
            .and_then(pick)
            .map(payload_text)
            .unwrap_or_default()
    };
    let priority = priority.as_ref().map_or_else(String::new, |p| {
        let mut parts = Vec::new();
        if p.priority_key != 0 {
            parts.push(format!("priority_key {}", p.priority_key));
        }
        if !p.fairness_key.is_empty() {
            parts.push(format!("fairness_key {}", p.fairness_key));
        }
        if p.fairness_weight != 0.0 {
            parts.push(format!("fairness_weight {}", p.fairness_weight));
        }
        parts.join(", ")
    });
    [
        workflow_id.clone(),
        duration_option(workflow_execution_timeout.as_ref()),
        duration_option(workflow_run_timeout.as_ref()),
        duration_option(task_timeout),
        retry,
        memo,
        attributes,
        metadata(|m| m.summary.as_ref()),
        metadata(|m| m.details.as_ref()),
        priority,
    ]
}

/// A payload as canonical JSON when it is JSON, else its encoding and bytes.
fn payload_text(payload: &Payload) -> String {
    match json_value(payload) {
        Some(value) => canonical_json(&value),
        None => format!(
            "<{} payload of {} bytes: {}>",
            payload
                .metadata
                .get("encoding")
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .unwrap_or_else(|| "unknown".to_owned()),
            payload.data.len(),
            payload
                .data
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    }
}

/// A search attribute's value: a Datetime in the one form the file writes,
/// any other as canonical JSON.
fn attribute_text(payload: &Payload) -> String {
    let kind = payload
        .metadata
        .get(ATTRIBUTE_TYPE_METADATA)
        .and_then(|t| AttributeType::from_name(&String::from_utf8_lossy(t)));
    if let (Some(AttributeType::Datetime), Some(value)) = (kind, json_value(payload))
        && let Some(AttributeValue::Datetime(time)) =
            AttributeValue::from_json(AttributeType::Datetime, &value)
    {
        return canonical_json(&datetime_text(&time).into());
    }
    payload_text(payload)
}

fn is_zero(d: &prost_wkt_types::Duration) -> bool {
    d.seconds == 0 && d.nanos == 0
}

fn std_duration(d: &prost_wkt_types::Duration) -> std::time::Duration {
    std::time::Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    )
}

fn duration_text(d: &prost_wkt_types::Duration) -> String {
    if d.seconds < 0 || d.nanos < 0 || d.nanos % 1_000_000 != 0 {
        return format!("{}s {}ns", d.seconds, d.nanos);
    }
    crate::duration::format_duration(std_duration(d))
}

fn duration_option(d: Option<&prost_wkt_types::Duration>) -> String {
    d.filter(|d| !is_zero(d))
        .map(duration_text)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::temporal::api::schedule::v1::schedule_action;

    use super::*;
    use crate::compare::changes::field_changes;

    fn schedule(file: &str) -> Schedule {
        crate::spec::desired(&crate::project::test_project("foo", &[file]))
            .remove(0)
            .schedule
    }

    fn start(schedule: &mut Schedule) -> &mut NewWorkflowExecutionInfo {
        let Some(schedule_action::Action::StartWorkflow(start)) =
            schedule.action.as_mut().and_then(|a| a.action.as_mut())
        else {
            unreachable!()
        };
        start
    }

    #[test]
    fn the_plan_names_each_option_that_differs() {
        let held = schedule("id: a\nschedule:\n  every: 1h\n  run_timeout: 1h\n  memo: {a: 1}\n");
        let want = schedule(
            "id: a\nschedule:\n  every: 1h\n  workflow_id: x\n  run_timeout: 2h\n  memo: {a: 1}\n  \
             retry_policy: {maximum_attempts: 3}\n  search_attributes: {K: {type: Keyword, value: v}}\n  \
             summary: s\n  details: d\n  priority: {priority_key: 1}\n  task_timeout: 5s\n  \
             execution_timeout: 3h\n",
        );
        let changes = field_changes(&held, &want);
        let named: Vec<(&str, &str, &str)> = changes
            .iter()
            .map(|c| (c.field, c.current.as_str(), c.desired.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("workflow_id", "foo.a", "x"),
                ("execution_timeout", "", "3h"),
                ("run_timeout", "1h", "2h"),
                ("task_timeout", "", "5s"),
                ("retry_policy", "", "maximum_attempts 3"),
                ("search_attributes", "", "K: \"v\""),
                ("summary", "", "\"s\""),
                ("details", "", "\"d\""),
                ("priority", "", "priority_key 1"),
            ]
        );
    }

    #[test]
    fn what_the_server_adds_or_respells_is_no_change() {
        let want = schedule(
            "id: a\nschedule:\n  every: 1h\n  memo: {b: [1, 2], a: {y: 1, x: 2}}\n  \
             search_attributes: {Due: {type: Datetime, value: 2026-01-01T00:00:00Z}, K: {type: Keyword, value: v}}\n",
        );
        let mut held = want.clone();
        let s = start(&mut held);
        // The `temporal` CLI sends a task timeout of 10s; the server keeps
        // an empty header; payloads may be spelt with other spacing, and a
        // search attribute may come without its type.
        s.workflow_task_timeout = Some(prost_wkt_types::Duration {
            seconds: 10,
            nanos: 0,
        });
        s.header = Some(Default::default());
        let memo = s.memo.as_mut().unwrap();
        memo.fields.get_mut("a").unwrap().data = br#"{ "x": 2, "y": 1 }"#.to_vec();
        let attributes = s.search_attributes.as_mut().unwrap();
        attributes.indexed_fields.get_mut("Due").unwrap().data =
            br#""2026-01-01T01:00:00+01:00""#.to_vec();
        attributes
            .indexed_fields
            .get_mut("K")
            .unwrap()
            .metadata
            .remove(ATTRIBUTE_TYPE_METADATA);
        assert_eq!(field_changes(&held, &want), Vec::new());
        assert!(crate::compare::same_schedule(&held, &want));
        // A different value is a change.
        start(&mut held)
            .memo
            .as_mut()
            .unwrap()
            .fields
            .get_mut("a")
            .unwrap()
            .data = br#"{"x": 3, "y": 1}"#.to_vec();
        assert_eq!(field_changes(&held, &want)[0].field, "memo");
        assert!(!crate::compare::same_schedule(&held, &want));
    }
}
