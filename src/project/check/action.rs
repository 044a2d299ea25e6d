//! The keys of a `schedule:` block that shape the workflows it starts
//! ([`crate::project::action`]), each checked with the position of what is
//! wrong.

use std::collections::BTreeMap;

use super::{FileCheck, get, nearest};
use crate::project::action::{
    AttributeType, AttributeValue, DEFAULT_TASK_TIMEOUT, PRIORITY_KEYS, Priority,
    RETRY_POLICY_KEYS, RetryPolicy, StartOptions,
};
use crate::project::node::{Node, Value, quote};

/// The longest fairness key Temporal accepts, in bytes.
pub const MAX_FAIRNESS_KEY: usize = 64;

/// The start options that `entries` (a `schedule:` block) declare, and the
/// one argument of `args: [x]`, which is the same as `input: x`. `None` when
/// something is wrong; every problem is recorded in `check`.
pub(super) fn start_options(
    check: &mut FileCheck<'_>,
    entries: &[(Node, Node)],
) -> Option<(StartOptions, Option<serde_json::Value>)> {
    let errors_before = error_count(check);
    let mut options = StartOptions {
        workflow_id: get(entries, "workflow_id")
            .and_then(|n| check.temporal_name(n, "workflow_id")),
        execution_timeout: positive_duration(check, entries, "execution_timeout"),
        run_timeout: positive_duration(check, entries, "run_timeout"),
        task_timeout: positive_duration(check, entries, "task_timeout"),
        retry_policy: get(entries, "retry_policy").and_then(|n| retry_policy(check, n)),
        memo: get(entries, "memo")
            .map(|n| memo(check, n))
            .unwrap_or_default(),
        search_attributes: get(entries, "search_attributes")
            .map(|n| search_attributes(check, n))
            .unwrap_or_default(),
        summary: get(entries, "summary").and_then(|n| text(check, n, "summary")),
        details: get(entries, "details").and_then(|n| text(check, n, "details")),
        priority: get(entries, "priority").and_then(|n| priority(check, n)),
        args: None,
    };
    if options.task_timeout == Some(DEFAULT_TASK_TIMEOUT) {
        // Temporal's default: asking for it is asking for nothing.
        options.task_timeout = None;
    }
    let mut one_argument = None;
    if let Some(node) = get(entries, "args") {
        if let Some(input) = get(entries, "input") {
            check
                .error(input.at, "`schedule` has both `input` and `args`")
                .expected = Some(
                "one of them: `input` for one argument, `args` for a list of arguments".to_owned(),
            );
        }
        match args(check, node) {
            Some(mut values) if values.len() == 1 => one_argument = values.pop(),
            Some(values) if values.is_empty() => {}
            Some(values) => options.args = Some(values),
            None => {}
        }
    }
    (error_count(check) == errors_before).then_some((options, one_argument))
}

fn error_count(check: &FileCheck<'_>) -> usize {
    check.diagnostics.iter().filter(|d| d.is_error()).count()
}

fn positive_duration(
    check: &mut FileCheck<'_>,
    entries: &[(Node, Node)],
    key: &str,
) -> Option<std::time::Duration> {
    let node = get(entries, key)?;
    let duration = check.duration(node, key)?;
    if duration.is_zero() {
        check.error(node.at, format!("`{key}` is zero")).expected =
            Some("a duration above 0s, or no key for no limit".to_owned());
        return None;
    }
    Some(duration)
}

fn text(check: &mut FileCheck<'_>, node: &Node, key: &str) -> Option<String> {
    check.string(node, key).map(str::to_owned)
}

fn args(check: &mut FileCheck<'_>, node: &Node) -> Option<Vec<serde_json::Value>> {
    let Value::Seq(items) = &node.value else {
        check.wrong_type(node, "args", "a list of arguments, each any YAML value");
        return None;
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        match item.to_json() {
            Ok(json) => values.push(json),
            Err(at) => {
                check
                    .error(at, "`args` holds a value with no JSON form")
                    .expected =
                    Some("numbers that are finite, and keys that are scalars".to_owned());
                return None;
            }
        }
    }
    Some(values)
}

fn retry_policy(check: &mut FileCheck<'_>, node: &Node) -> Option<RetryPolicy> {
    let Some(entries) = node.as_map() else {
        check.wrong_type(
            node,
            "retry_policy",
            "a mapping with initial_interval, backoff_coefficient, maximum_interval, maximum_attempts or non_retryable_error_types",
        );
        return None;
    };
    check.unknown_keys(entries, &RETRY_POLICY_KEYS, "`retry_policy`", true);
    let errors_before = error_count(check);
    let initial_interval = positive_duration(check, entries, "initial_interval");
    let maximum_interval = positive_duration(check, entries, "maximum_interval");
    let backoff_coefficient = get(entries, "backoff_coefficient").and_then(|n| {
        let value = match n.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        };
        match value {
            Some(c) if c.is_finite() && c >= 1.0 => Some(c),
            Some(_) => {
                check
                    .error(n.at, "`backoff_coefficient` is below 1")
                    .expected =
                    Some("a number of at least 1 (1 keeps every wait the same)".to_owned());
                None
            }
            None => {
                check.wrong_type(n, "backoff_coefficient", "a number of at least 1");
                None
            }
        }
    });
    if let (Some(initial), Some(maximum), Some(node)) = (
        initial_interval,
        maximum_interval,
        get(entries, "maximum_interval"),
    ) && maximum < initial
    {
        check
            .error(
                node.at,
                "`maximum_interval` is shorter than `initial_interval`",
            )
            .expected = Some("a longest wait at least as long as the first".to_owned());
    }
    let maximum_attempts = get(entries, "maximum_attempts").and_then(|n| match n.value {
        Value::Int(i) => match u32::try_from(i).ok().filter(|a| i32::try_from(*a).is_ok()) {
            Some(attempts) => Some(attempts),
            None => {
                check
                    .error(n.at, format!("`maximum_attempts` {i} is out of range"))
                    .expected = Some(
                    "a whole number from 1 up to 2147483647; 0 or no key for unlimited".to_owned(),
                );
                None
            }
        },
        _ => {
            check.wrong_type(n, "maximum_attempts", "a whole number; 0 for unlimited");
            None
        }
    });
    let non_retryable_error_types = match get(entries, "non_retryable_error_types") {
        None => Vec::new(),
        Some(n) => string_list(check, n, "non_retryable_error_types"),
    };
    (error_count(check) == errors_before).then_some(RetryPolicy {
        initial_interval,
        backoff_coefficient,
        maximum_interval,
        // 0 is Temporal's "unlimited", as is no key.
        maximum_attempts: maximum_attempts.filter(|a| *a != 0),
        non_retryable_error_types,
    })
}

fn string_list(check: &mut FileCheck<'_>, node: &Node, key: &str) -> Vec<String> {
    let Value::Seq(items) = &node.value else {
        check.wrong_type(node, key, "a list of strings");
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| check.temporal_name(item, key))
        .collect()
}

fn memo(check: &mut FileCheck<'_>, node: &Node) -> BTreeMap<String, serde_json::Value> {
    let Some(entries) = node.as_map() else {
        check.wrong_type(node, "memo", "a mapping of keys to any YAML values");
        return BTreeMap::new();
    };
    let mut memo = BTreeMap::new();
    for (key, value) in entries {
        let Some(name) = check.temporal_name(key, "memo") else {
            continue;
        };
        match value.to_json() {
            Ok(json) => {
                memo.insert(name, json);
            }
            Err(at) => {
                check
                    .error(
                        at,
                        format!("`memo` field `{name}` holds a value with no JSON form"),
                    )
                    .expected =
                    Some("numbers that are finite, and keys that are scalars".to_owned());
            }
        }
    }
    memo
}

fn search_attributes(check: &mut FileCheck<'_>, node: &Node) -> BTreeMap<String, AttributeValue> {
    let expected_entry =
        "`{type: <Keyword, KeywordList, Text, Int, Double, Bool or Datetime>, value: <value>}`";
    let Some(entries) = node.as_map() else {
        check.wrong_type(
            node,
            "search_attributes",
            &format!("a mapping of attribute names to {expected_entry}"),
        );
        return BTreeMap::new();
    };
    let mut attributes = BTreeMap::new();
    for (key, value) in entries {
        let Some(name) = check.temporal_name(key, "search_attributes") else {
            continue;
        };
        let Some(fields) = value.as_map() else {
            check.wrong_type(value, &format!("search attribute {name}"), expected_entry);
            continue;
        };
        check.unknown_keys(
            fields,
            &["type", "value"],
            &format!("search attribute `{name}`"),
            true,
        );
        let kind = match get(fields, "type") {
            None => {
                check
                    .error(value.at, format!("search attribute `{name}` has no `type`"))
                    .expected = Some(expected_entry.to_owned());
                continue;
            }
            Some(n) => match check.string(n, "type") {
                None => continue,
                Some(text) => match AttributeType::from_name(text) {
                    Some(kind) => (kind, n),
                    None => {
                        let names: Vec<&str> = AttributeType::ALL.iter().map(|(n, _)| *n).collect();
                        let d = check.error(
                            n.at,
                            format!("{} is not a search attribute type", quote(text)),
                        );
                        d.expected = Some(format!("one of {}", names.join(", ")));
                        d.help = AttributeType::ALL
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(text))
                            .map(|(n, _)| *n)
                            .or_else(|| nearest(text, &names))
                            .map(|s| format!("did you mean `{s}`?"));
                        continue;
                    }
                },
            },
        };
        let (kind, _) = kind;
        let Some(value_node) = get(fields, "value") else {
            check
                .error(
                    value.at,
                    format!("search attribute `{name}` has no `value`"),
                )
                .expected = Some(expected_entry.to_owned());
            continue;
        };
        match attribute_value(kind, value_node) {
            Some(typed) => {
                attributes.insert(name, typed);
            }
            None => {
                check
                    .error(
                        value_node.at,
                        format!(
                            "search attribute `{name}` is {}, which is not a {} value",
                            value_node.describe(),
                            kind.name()
                        ),
                    )
                    .expected = Some(type_rule(kind).to_owned());
            }
        }
    }
    attributes
}

/// The value `node` holds for an attribute of type `kind`, if it fits.
fn attribute_value(kind: AttributeType, node: &Node) -> Option<AttributeValue> {
    match (kind, &node.value) {
        // A whole number is a Double too; a fraction is never an Int.
        (AttributeType::Double, Value::Int(i)) => {
            let f = *i as f64;
            (f as i128 == *i).then_some(AttributeValue::Double(f))
        }
        (AttributeType::Keyword | AttributeType::Text, Value::Str(s)) if s.is_empty() => None,
        _ => AttributeValue::from_json(kind, &node.to_json().ok()?),
    }
}

fn type_rule(kind: AttributeType) -> &'static str {
    match kind {
        AttributeType::Keyword => "a non-empty string (quote numbers and booleans)",
        AttributeType::KeywordList => "a list of strings",
        AttributeType::Text => "a non-empty string (quote numbers and booleans)",
        AttributeType::Int => "a whole number that fits in 64 bits",
        AttributeType::Double => "a finite number",
        AttributeType::Bool => "true or false",
        AttributeType::Datetime => "an RFC 3339 timestamp such as 2026-01-01T00:00:00Z",
    }
}

fn priority(check: &mut FileCheck<'_>, node: &Node) -> Option<Priority> {
    let Some(entries) = node.as_map() else {
        check.wrong_type(
            node,
            "priority",
            "a mapping with priority_key, fairness_key or fairness_weight",
        );
        return None;
    };
    check.unknown_keys(entries, &PRIORITY_KEYS, "`priority`", true);
    let errors_before = error_count(check);
    let priority_key = get(entries, "priority_key").and_then(|n| match n.value {
        Value::Int(i) if (1..=i128::from(i32::MAX)).contains(&i) => u32::try_from(i).ok(),
        _ => {
            check.wrong_type(
                n,
                "priority_key",
                "a whole number from 1 (the highest); Temporal's default levels are 1 to 5",
            );
            None
        }
    });
    let fairness_key = get(entries, "fairness_key").and_then(|n| {
        let key = check.temporal_name(n, "fairness_key")?;
        if key.len() > MAX_FAIRNESS_KEY {
            check
                .error(n.at, "`fairness_key` is longer than 64 bytes")
                .expected = Some("a key of at most 64 bytes".to_owned());
            return None;
        }
        Some(key)
    });
    let fairness_weight = get(entries, "fairness_weight").and_then(|n| {
        let weight = match n.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        };
        match weight {
            Some(w) if (0.001..=1000.0).contains(&w) => Some(w as f32),
            _ => {
                check.wrong_type(n, "fairness_weight", "a number from 0.001 to 1000");
                None
            }
        }
    });
    let priority = Priority {
        priority_key,
        fairness_key,
        fairness_weight,
    };
    (error_count(check) == errors_before && !priority.is_empty()).then_some(priority)
}
