//! What a schedule's start-workflow action carries besides the workflow type,
//! task queue and `input`: the started workflows' id, timeouts, retry
//! policy, memo, search attributes, summary and details, priority and
//! several arguments. Every field is optional; an empty [`StartOptions`] asks
//! for nothing, as a workflow file without these keys does.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The keys of a `schedule:` block that shape the workflows it starts.
pub const ACTION_KEYS: [&str; 11] = [
    "workflow_id",
    "args",
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

/// The keys of `retry_policy:`.
pub const RETRY_POLICY_KEYS: [&str; 5] = [
    "initial_interval",
    "backoff_coefficient",
    "maximum_interval",
    "maximum_attempts",
    "non_retryable_error_types",
];

/// The keys of `priority:`.
pub const PRIORITY_KEYS: [&str; 3] = ["priority_key", "fairness_key", "fairness_weight"];

/// The workflow task timeout Temporal applies when an action names none; a
/// file that names it asks for nothing different.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(10);

/// The options of the workflows a schedule starts, beyond type, task queue
/// and the one `input`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StartOptions {
    /// The id of started workflows (Temporal appends the fire time); the
    /// schedule id when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Several arguments (`args:` with two or more values); one argument is
    /// the schedule's `input`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<serde_json::Value>>,
    /// The limit on a whole workflow execution, retries and continue-as-new
    /// included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_timeout: Option<Duration>,
    /// The limit on one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_timeout: Option<Duration>,
    /// The limit on one workflow task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_timeout: Option<Duration>,
    /// How a failed workflow is retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// The started workflows' memo, JSON values by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub memo: BTreeMap<String, serde_json::Value>,
    /// The started workflows' search attributes, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub search_attributes: BTreeMap<String, AttributeValue>,
    /// A one-line summary that the Web UI shows for started workflows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Longer details that the Web UI shows for started workflows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// The started workflows' priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

impl StartOptions {
    /// Whether nothing is asked for beyond what a file without these keys
    /// asks for.
    pub fn is_empty(&self) -> bool {
        *self == StartOptions::default()
    }
}

/// Temporal's retry policy for started workflows; an absent field takes the
/// server's default when a workflow is retried.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// The wait before the first retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_interval: Option<Duration>,
    /// How much each wait grows, at least 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_coefficient: Option<f64>,
    /// The longest wait, not below the initial one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_interval: Option<Duration>,
    /// Attempts in all, the first included; 0 or absent is unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_attempts: Option<u32>,
    /// Error types that are not retried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub non_retryable_error_types: Vec<String>,
}

/// The priority of started workflows' tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Priority {
    /// 1 is the highest; the server's default (3) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_key: Option<u32>,
    /// Tasks with one fairness key share the queue's capacity by weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fairness_key: Option<String>,
    /// The weight of the fairness key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fairness_weight: Option<f32>,
}

impl Priority {
    /// Whether every field is absent.
    pub fn is_empty(&self) -> bool {
        *self == Priority::default()
    }
}

/// The types of Temporal search attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum AttributeType {
    /// An exact-match string.
    Keyword,
    /// A list of exact-match strings.
    KeywordList,
    /// Full text.
    Text,
    /// A 64-bit integer.
    Int,
    /// A 64-bit float.
    Double,
    /// A boolean.
    Bool,
    /// A moment in time.
    Datetime,
}

impl AttributeType {
    /// Every type, in Temporal's spelling.
    pub const ALL: [(&'static str, AttributeType); 7] = [
        ("Keyword", AttributeType::Keyword),
        ("KeywordList", AttributeType::KeywordList),
        ("Text", AttributeType::Text),
        ("Int", AttributeType::Int),
        ("Double", AttributeType::Double),
        ("Bool", AttributeType::Bool),
        ("Datetime", AttributeType::Datetime),
    ];

    /// Temporal's name of the type, as `temporal operator search-attribute
    /// create --type` takes it.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("Keyword", |(name, _)| name)
    }

    /// The type that Temporal's name `name` stands for.
    pub fn from_name(name: &str) -> Option<AttributeType> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
}

/// A search attribute's value, of one of Temporal's types.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", content = "value")]
pub enum AttributeValue {
    /// An exact-match string.
    Keyword(String),
    /// A list of exact-match strings.
    KeywordList(Vec<String>),
    /// Full text.
    Text(String),
    /// A 64-bit integer.
    Int(i64),
    /// A finite 64-bit float.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// A moment in time.
    Datetime(DateTime<Utc>),
}

impl AttributeValue {
    /// The value's type.
    pub fn attribute_type(&self) -> AttributeType {
        match self {
            AttributeValue::Keyword(_) => AttributeType::Keyword,
            AttributeValue::KeywordList(_) => AttributeType::KeywordList,
            AttributeValue::Text(_) => AttributeType::Text,
            AttributeValue::Int(_) => AttributeType::Int,
            AttributeValue::Double(_) => AttributeType::Double,
            AttributeValue::Bool(_) => AttributeType::Bool,
            AttributeValue::Datetime(_) => AttributeType::Datetime,
        }
    }

    /// The value as JSON, as Temporal's SDKs encode it in a payload: a
    /// string, a list of strings, a number, a boolean, or an RFC 3339 string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AttributeValue::Keyword(s) | AttributeValue::Text(s) => s.clone().into(),
            AttributeValue::KeywordList(items) => items.clone().into(),
            AttributeValue::Int(i) => (*i).into(),
            AttributeValue::Double(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            AttributeValue::Bool(b) => (*b).into(),
            AttributeValue::Datetime(t) => datetime_text(t).into(),
        }
    }

    /// The value of type `kind` that `json` holds, if it fits the type.
    pub fn from_json(kind: AttributeType, json: &serde_json::Value) -> Option<AttributeValue> {
        use serde_json::Value;
        Some(match (kind, json) {
            (AttributeType::Keyword, Value::String(s)) => AttributeValue::Keyword(s.clone()),
            (AttributeType::Text, Value::String(s)) => AttributeValue::Text(s.clone()),
            (AttributeType::KeywordList, Value::Array(items)) => AttributeValue::KeywordList(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<_>>()?,
            ),
            (AttributeType::Int, Value::Number(n)) => AttributeValue::Int(n.as_i64()?),
            (AttributeType::Double, Value::Number(n)) => {
                AttributeValue::Double(n.as_f64().filter(|f| f.is_finite())?)
            }
            (AttributeType::Bool, Value::Bool(b)) => AttributeValue::Bool(*b),
            (AttributeType::Datetime, Value::String(s)) => {
                AttributeValue::Datetime(DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc))
            }
            _ => return None,
        })
    }
}

/// A moment as the file, the fingerprint and the payload write it: RFC 3339
/// in UTC, with as many fraction digits as it needs.
pub fn datetime_text(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
