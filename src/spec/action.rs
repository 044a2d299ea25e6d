//! The start options of a schedule's action ([`StartOptions`]) on the wire,
//! and their part of the fingerprint.
//!
//! A schedule whose file sets none of them has no part here at all: its
//! fingerprint is the one that versions without these keys computed, so an
//! upgrade rewrites nothing.

use std::collections::HashMap;

use serde_json::json;
use temporalio_common::protos::temporal::api::common::v1::{
    Memo, Payload, Payloads, Priority as ProtoPriority, RetryPolicy as ProtoRetryPolicy,
    SearchAttributes,
};
use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;

use super::{duration, json_payload};
use crate::project::action::{AttributeValue, RetryPolicy, StartOptions};

/// The payload metadata key that names a search attribute's type, as
/// Temporal's SDKs write it and as the server adds it when it stores one.
pub const ATTRIBUTE_TYPE_METADATA: &str = "type";

/// A search attribute's value as a payload: JSON, with its type named in
/// the metadata.
pub fn attribute_payload(value: &AttributeValue) -> Payload {
    let mut payload = json_payload(&value.to_json());
    payload.metadata.insert(
        ATTRIBUTE_TYPE_METADATA.to_owned(),
        value.attribute_type().name().as_bytes().to_vec(),
    );
    payload
}

/// Writes `options` into the action `start`, whose workflow id is already
/// the schedule id.
pub(super) fn apply(options: &StartOptions, start: &mut NewWorkflowExecutionInfo) {
    if let Some(id) = &options.workflow_id {
        start.workflow_id.clone_from(id);
    }
    if let Some(args) = &options.args {
        start.input = Some(Payloads {
            payloads: args.iter().map(json_payload).collect(),
        });
    }
    start.workflow_execution_timeout = options.execution_timeout.map(duration);
    start.workflow_run_timeout = options.run_timeout.map(duration);
    start.workflow_task_timeout = options.task_timeout.map(duration);
    start.retry_policy = options.retry_policy.as_ref().map(retry_policy);
    if !options.memo.is_empty() {
        start.memo = Some(Memo {
            fields: options
                .memo
                .iter()
                .map(|(key, value)| (key.clone(), json_payload(value)))
                .collect(),
        });
    }
    if !options.search_attributes.is_empty() {
        start.search_attributes = Some(SearchAttributes {
            indexed_fields: options
                .search_attributes
                .iter()
                .map(|(name, value)| (name.clone(), attribute_payload(value)))
                .collect::<HashMap<_, _>>(),
        });
    }
    if options.summary.is_some() || options.details.is_some() {
        start.user_metadata = Some(UserMetadata {
            summary: options
                .summary
                .as_ref()
                .map(|s| json_payload(&s.as_str().into())),
            details: options
                .details
                .as_ref()
                .map(|s| json_payload(&s.as_str().into())),
        });
    }
    start.priority = options.priority.as_ref().map(|p| ProtoPriority {
        priority_key: p
            .priority_key
            .and_then(|k| i32::try_from(k).ok())
            .unwrap_or(0),
        fairness_key: p.fairness_key.clone().unwrap_or_default(),
        fairness_weight: p.fairness_weight.unwrap_or(0.0),
    });
}

fn retry_policy(policy: &RetryPolicy) -> ProtoRetryPolicy {
    ProtoRetryPolicy {
        initial_interval: policy.initial_interval.map(duration),
        backoff_coefficient: policy.backoff_coefficient.unwrap_or(0.0),
        maximum_interval: policy.maximum_interval.map(duration),
        maximum_attempts: policy
            .maximum_attempts
            .and_then(|a| i32::try_from(a).ok())
            .unwrap_or(0),
        non_retryable_error_types: policy.non_retryable_error_types.clone(),
    }
}

/// The part of the fingerprint's canonical JSON for `options`, or `None`
/// when they ask for nothing (then the fingerprint is the one of a file
/// without these keys). A workflow id equal to the schedule id is no
/// request either.
pub(super) fn fingerprint_json(
    options: &StartOptions,
    schedule_id: &str,
) -> Option<serde_json::Value> {
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
    let mut map = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        if !value.is_null() {
            map.insert(key.to_owned(), value);
        }
    };
    put(
        "workflow_id",
        json!(
            options
                .workflow_id
                .as_deref()
                .filter(|id| *id != schedule_id)
        ),
    );
    put("args", json!(options.args));
    put("execution_timeout_ms", json!(ms(options.execution_timeout)));
    put("run_timeout_ms", json!(ms(options.run_timeout)));
    put("task_timeout_ms", json!(ms(options.task_timeout)));
    put(
        "retry_policy",
        json!(options.retry_policy.as_ref().map(|p| json!({
            "initial_interval_ms": ms(p.initial_interval),
            "backoff_coefficient": p.backoff_coefficient,
            "maximum_interval_ms": ms(p.maximum_interval),
            "maximum_attempts": p.maximum_attempts,
            "non_retryable_error_types": p.non_retryable_error_types,
        }))),
    );
    if !options.memo.is_empty() {
        put("memo", json!(options.memo));
    }
    if !options.search_attributes.is_empty() {
        put(
            "search_attributes",
            options
                .search_attributes
                .iter()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        json!([value.attribute_type().name(), value.to_json()]),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
    }
    put("summary", json!(options.summary));
    put("details", json!(options.details));
    put(
        "priority",
        json!(options.priority.as_ref().map(|p| json!({
            "priority_key": p.priority_key,
            "fairness_key": p.fairness_key,
            "fairness_weight": p.fairness_weight.map(f64::from),
        }))),
    );
    (!map.is_empty()).then(|| map.into())
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::temporal::api::schedule::v1::schedule_action;

    use super::*;
    use crate::spec::desired;

    fn one(file: &str) -> crate::spec::DesiredSchedule {
        desired(&crate::project::test_project("billing", &[file])).remove(0)
    }

    fn start(file: &str) -> NewWorkflowExecutionInfo {
        match one(file).schedule.action.unwrap().action.unwrap() {
            schedule_action::Action::StartWorkflow(start) => start,
        }
    }

    const BASE: &str = "id: w\nschedule:\n  cron: \"0 2 * * *\"\n";

    #[test]
    fn every_option_maps_onto_the_action() {
        let s = start(&format!(
            "{BASE}  workflow_id: wf\n  args: [1, two]\n  execution_timeout: 2h\n  run_timeout: 1h\n  \
             task_timeout: 20s\n  retry_policy: {{initial_interval: 1s, backoff_coefficient: 1.5, \
             maximum_interval: 1m, maximum_attempts: 5, non_retryable_error_types: [Bad]}}\n  \
             memo: {{team: billing}}\n  search_attributes: {{Due: {{type: Datetime, value: 2026-01-01T00:00:00+01:00}}}}\n  \
             summary: S\n  details: D\n  priority: {{priority_key: 2, fairness_key: k, fairness_weight: 2.5}}\n"
        ));
        assert_eq!(s.workflow_id, "wf");
        let args: Vec<&[u8]> = s
            .input
            .as_ref()
            .unwrap()
            .payloads
            .iter()
            .map(|p| p.data.as_slice())
            .collect();
        assert_eq!(args, [b"1".as_slice(), b"\"two\""]);
        assert_eq!(s.workflow_execution_timeout.unwrap().seconds, 7200);
        assert_eq!(s.workflow_run_timeout.unwrap().seconds, 3600);
        assert_eq!(s.workflow_task_timeout.unwrap().seconds, 20);
        let retry = s.retry_policy.unwrap();
        assert_eq!(retry.initial_interval.unwrap().seconds, 1);
        assert_eq!(retry.backoff_coefficient, 1.5);
        assert_eq!(retry.maximum_interval.unwrap().seconds, 60);
        assert_eq!(retry.maximum_attempts, 5);
        assert_eq!(retry.non_retryable_error_types, ["Bad"]);
        assert_eq!(s.memo.unwrap().fields["team"].data, b"\"billing\"");
        let due = &s.search_attributes.unwrap().indexed_fields["Due"];
        assert_eq!(due.data, b"\"2025-12-31T23:00:00Z\"");
        assert_eq!(due.metadata[ATTRIBUTE_TYPE_METADATA], b"Datetime");
        let metadata = s.user_metadata.unwrap();
        assert_eq!(metadata.summary.unwrap().data, b"\"S\"");
        assert_eq!(metadata.details.unwrap().data, b"\"D\"");
        let priority = s.priority.unwrap();
        assert_eq!(
            (
                priority.priority_key,
                priority.fairness_key.as_str(),
                priority.fairness_weight
            ),
            (2, "k", 2.5)
        );
    }

    #[test]
    fn a_schedule_without_options_sends_what_it_always_sent() {
        let s = start(BASE);
        assert_eq!(
            s,
            NewWorkflowExecutionInfo {
                workflow_id: "billing.w".into(),
                workflow_type: s.workflow_type.clone(),
                task_queue: s.task_queue.clone(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn every_option_is_in_the_fingerprint_and_defaults_are_not() {
        let base = one(BASE).fingerprint;
        let same = [
            "  workflow_id: billing.w\n",
            "  task_timeout: 10s\n",
            "  args: []\n",
            "  priority: {}\n",
            "  memo: {}\n",
            "  search_attributes: {}\n",
            "  retry_policy: {maximum_attempts: 0}\n",
        ];
        for extra in same {
            let fingerprint = one(&format!("{BASE}{extra}")).fingerprint;
            if extra.contains("retry_policy") {
                // A retry policy of defaults is a retry policy.
                assert_ne!(fingerprint, base, "{extra}");
            } else {
                assert_eq!(fingerprint, base, "{extra}");
            }
        }
        assert_eq!(
            one(&format!("{BASE}  args: [{{a: 1}}]\n")).fingerprint,
            one(&format!("{BASE}  input: {{a: 1}}\n")).fingerprint
        );
        let changes = [
            "  workflow_id: other\n",
            "  args: [1, 2]\n",
            "  args: [2, 1]\n",
            "  execution_timeout: 1h\n",
            "  run_timeout: 1h\n",
            "  task_timeout: 11s\n",
            "  retry_policy: {}\n",
            "  retry_policy: {initial_interval: 2s}\n",
            "  retry_policy: {backoff_coefficient: 3}\n",
            "  retry_policy: {maximum_interval: 1h}\n",
            "  retry_policy: {maximum_attempts: 3}\n",
            "  retry_policy: {non_retryable_error_types: [A]}\n",
            "  memo: {a: 1}\n",
            "  memo: {a: 2}\n",
            "  search_attributes: {A: {type: Keyword, value: x}}\n",
            "  search_attributes: {A: {type: Text, value: x}}\n",
            "  search_attributes: {A: {type: Int, value: 1}}\n",
            "  search_attributes: {A: {type: Double, value: 1}}\n",
            "  summary: s\n",
            "  details: s\n",
            "  priority: {priority_key: 1}\n",
            "  priority: {fairness_key: k}\n",
            "  priority: {fairness_weight: 2}\n",
        ];
        let mut seen = std::collections::HashSet::from([base]);
        for extra in changes {
            assert!(
                seen.insert(one(&format!("{BASE}{extra}")).fingerprint),
                "{extra}"
            );
        }
    }
}
