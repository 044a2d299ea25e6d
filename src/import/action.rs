//! The start options of a held schedule's action as workflow-file keys:
//! the workflows' id, timeouts, retry policy, memo, search attributes,
//! summary and details, and priority. A value that no key can hold (a
//! payload that is not JSON, a search attribute of no known type) is a
//! reason to skip the schedule; a value the loader would refuse is caught by
//! the round-trip check that follows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

use super::{flow_json, json_or_reason, quoted, scalar};
use crate::duration::format_duration;
use crate::project::action::{AttributeType, AttributeValue, DEFAULT_TASK_TIMEOUT, datetime_text};
use crate::spec::action::ATTRIBUTE_TYPE_METADATA;
use crate::store::AttributeTypes;

/// Writes the `schedule:` keys of the options that `start` sets.
pub(super) fn write_options(
    out: &mut String,
    start: &NewWorkflowExecutionInfo,
    schedule_id: &str,
    types: &AttributeTypes,
) -> Result<(), String> {
    if start.workflow_id != schedule_id {
        let _ = writeln!(out, "  workflow_id: {}", scalar(&start.workflow_id));
    }
    let timeouts = [
        (
            "execution_timeout",
            start.workflow_execution_timeout.as_ref(),
        ),
        ("run_timeout", start.workflow_run_timeout.as_ref()),
        ("task_timeout", start.workflow_task_timeout.as_ref()),
    ];
    for (key, timeout) in timeouts {
        let Some(timeout) = timeout.filter(|d| d.seconds != 0 || d.nanos != 0) else {
            continue;
        };
        let timeout = duration(timeout, key)?;
        if key == "task_timeout" && timeout == DEFAULT_TASK_TIMEOUT {
            continue;
        }
        let _ = writeln!(out, "  {key}: {}", format_duration(timeout));
    }
    if let Some(policy) = &start.retry_policy {
        let mut lines = Vec::new();
        if let Some(d) = policy
            .initial_interval
            .as_ref()
            .filter(|d| d.seconds != 0 || d.nanos != 0)
        {
            lines.push(format!(
                "initial_interval: {}",
                format_duration(duration(d, "retry initial interval")?)
            ));
        }
        if policy.backoff_coefficient != 0.0 {
            lines.push(format!(
                "backoff_coefficient: {}",
                policy.backoff_coefficient
            ));
        }
        if let Some(d) = policy
            .maximum_interval
            .as_ref()
            .filter(|d| d.seconds != 0 || d.nanos != 0)
        {
            lines.push(format!(
                "maximum_interval: {}",
                format_duration(duration(d, "retry maximum interval")?)
            ));
        }
        if policy.maximum_attempts != 0 {
            lines.push(format!("maximum_attempts: {}", policy.maximum_attempts));
        }
        if !policy.non_retryable_error_types.is_empty() {
            let types: Vec<String> = policy
                .non_retryable_error_types
                .iter()
                .map(|t| quoted(t))
                .collect();
            lines.push(format!("non_retryable_error_types: [{}]", types.join(", ")));
        }
        if lines.is_empty() {
            // A retry policy of Temporal's defaults, which is not no policy.
            out.push_str("  retry_policy: {}\n");
        } else {
            out.push_str("  retry_policy:\n");
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if let Some(memo) = start.memo.as_ref().filter(|m| !m.fields.is_empty()) {
        out.push_str("  memo:\n");
        let sorted: BTreeMap<_, _> = memo.fields.iter().collect();
        for (key, payload) in sorted {
            let value = json_or_reason(payload, &format!("workflow memo field `{key}`"))?;
            let _ = writeln!(out, "    {}: {}", scalar(key), flow_json(&value));
        }
    }
    if let Some(attributes) = start
        .search_attributes
        .as_ref()
        .filter(|a| !a.indexed_fields.is_empty())
    {
        out.push_str("  search_attributes:\n");
        let sorted: BTreeMap<_, _> = attributes.indexed_fields.iter().collect();
        for (name, payload) in sorted {
            let value = attribute(name, payload, types)?;
            let _ = writeln!(
                out,
                "    {}: {{type: {}, value: {}}}",
                scalar(name),
                value.attribute_type().name(),
                match &value {
                    AttributeValue::Datetime(time) => quoted(&datetime_text(time)),
                    other => flow_json(&other.to_json()),
                }
            );
        }
    }
    if let Some(metadata) = &start.user_metadata {
        for (key, payload) in [
            ("summary", metadata.summary.as_ref()),
            ("details", metadata.details.as_ref()),
        ] {
            let Some(payload) = payload else { continue };
            match json_or_reason(payload, key)? {
                serde_json::Value::String(text) => {
                    let _ = writeln!(out, "  {key}: {}", quoted(&text));
                }
                _ => return Err(format!("its {key} is JSON but not text")),
            }
        }
    }
    if let Some(priority) = &start.priority {
        let mut parts = Vec::new();
        if priority.priority_key != 0 {
            parts.push(format!("priority_key: {}", priority.priority_key));
        }
        if !priority.fairness_key.is_empty() {
            parts.push(format!("fairness_key: {}", quoted(&priority.fairness_key)));
        }
        if priority.fairness_weight != 0.0 {
            parts.push(format!("fairness_weight: {}", priority.fairness_weight));
        }
        if !parts.is_empty() {
            let _ = writeln!(out, "  priority: {{{}}}", parts.join(", "));
        }
    }
    Ok(())
}

/// A held duration, when a file can name it: not negative.
fn duration(d: &prost_wkt_types::Duration, what: &str) -> Result<std::time::Duration, String> {
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(seconds), Ok(nanos)) => Ok(std::time::Duration::new(seconds, nanos)),
        _ => Err(format!("its {} is negative", what.replace('_', " "))),
    }
}

/// A held search attribute, typed by the type its payload names, else by
/// the namespace's type of it.
fn attribute(
    name: &str,
    payload: &Payload,
    types: &AttributeTypes,
) -> Result<AttributeValue, String> {
    let what = format!("search attribute `{name}`");
    let value = json_or_reason(payload, &what)?;
    let named = payload
        .metadata
        .get(ATTRIBUTE_TYPE_METADATA)
        .map(|t| String::from_utf8_lossy(t).into_owned());
    let kind = match named.as_deref() {
        Some(named) => AttributeType::from_name(named).ok_or_else(|| {
            format!("its {what} has the type `{named}`, which schedule-sync does not know")
        })?,
        None => types.get(name).copied().ok_or_else(|| {
            format!("its {what} names no type, and the namespace has no such attribute")
        })?,
    };
    AttributeValue::from_json(kind, &value)
        .ok_or_else(|| format!("its {what} does not hold a {} value", kind.name()))
}
