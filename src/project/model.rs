//! The typed, validated project: what the YAML files declare, with every
//! default filled in.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cron::CronSpec;

pub use super::timing::{CalendarEntry, Interval, Timing};

/// A loaded and validated project.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Project {
    /// The owner identity of the project's schedules.
    pub(crate) name: String,
    /// The default task queue for started workflows.
    pub(crate) task_queue: String,
    /// Every workflow file, sorted by workflow id.
    pub(crate) workflows: Vec<Workflow>,
}

impl Project {
    /// A project of workflows that were checked one by one (as
    /// [`crate::project::check_workflow_source`] checks them), with the
    /// checks that span the project: a valid project name and task queue,
    /// and workflow ids that are unique. The workflows are sorted by id.
    ///
    /// # Errors
    ///
    /// [`InvalidProject`](crate::InvalidProject), naming each problem.
    #[doc(hidden)]
    pub fn new(
        name: &str,
        task_queue: &str,
        mut workflows: Vec<Workflow>,
    ) -> Result<Project, crate::project::InvalidProject> {
        let mut problems = Vec::new();
        if !crate::project::names::is_project_name(name) {
            problems.push(format!("{name:?} is not a valid project name"));
        }
        if task_queue.trim().is_empty() {
            problems.push("the task queue is empty".to_owned());
        }
        workflows.sort_by(|a, b| a.id.cmp(&b.id));
        for pair in workflows.windows(2) {
            if pair[0].id == pair[1].id {
                problems.push(format!("the workflow id {:?} is used twice", pair[0].id));
            }
        }
        if !problems.is_empty() {
            return Err(crate::project::InvalidProject::of_messages(&problems));
        }
        Ok(Project {
            name: name.to_owned(),
            task_queue: task_queue.to_owned(),
            workflows,
        })
    }

    /// The project's name: the owner identity of its schedules.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The default task queue of the workflows its schedules start.
    pub fn task_queue(&self) -> &str {
        &self.task_queue
    }

    /// Every workflow file, sorted by workflow id.
    #[doc(hidden)]
    pub fn workflows(&self) -> &[Workflow] {
        &self.workflows
    }

    /// How many schedules the project declares.
    pub fn schedule_count(&self) -> usize {
        self.scheduled().count()
    }

    /// The workflows that declare a schedule.
    #[doc(hidden)]
    pub fn scheduled(&self) -> impl Iterator<Item = (&Workflow, &Schedule)> {
        self.workflows
            .iter()
            .filter_map(|w| w.schedule.as_ref().map(|s| (w, s)))
    }
}

/// One workflow file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workflow {
    /// Unique within the project.
    pub id: String,
    /// The Temporal workflow type; the id unless the file says otherwise.
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// The task queue; the project's unless the file says otherwise.
    pub task_queue: String,
    /// The file, relative to the project folder.
    pub file: PathBuf,
    /// The schedule, when the file declares one.
    pub schedule: Option<Schedule>,
}

/// A workflow's schedule, defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    /// When it fires.
    pub timing: Timing,
    /// IANA time zone name; `UTC` by default.
    pub timezone: String,
    /// False keeps the schedule in Temporal, paused.
    pub enabled: bool,
    /// Random delay added to each firing, up to this much.
    #[serde(with = "humane")]
    pub jitter: Duration,
    /// What to do when a run is still going at the next firing.
    pub overlap_policy: OverlapPolicy,
    /// How far back missed firings are caught up; Temporal's default when absent.
    #[serde(with = "humane_option")]
    pub catchup_window: Option<Duration>,
    /// Pause the schedule when a run fails.
    pub pause_on_failure: bool,
    /// No firing before this.
    pub start_at: Option<DateTime<Utc>>,
    /// No firing after this.
    pub end_at: Option<DateTime<Utc>>,
    /// The one argument passed to the workflow, as JSON.
    pub input: Option<JsonText>,
    /// Times left out of `timing`.
    pub exclude: Vec<CalendarEntry>,
    /// How many actions the schedule takes before it stops, counted from
    /// when it is created (Temporal counts down; nothing resets it).
    pub remaining_actions: Option<u64>,
    /// The schedule's own id, when it is not `<project>.<workflow id>`.
    pub id: Option<String>,
    /// What else the started workflows get: their id, timeouts, retry
    /// policy, memo, search attributes, metadata, priority, arguments.
    #[serde(skip_serializing_if = "crate::project::action::StartOptions::is_empty")]
    pub start: crate::project::action::StartOptions,
}

/// A JSON value kept as its compact text, which costs a tenth of the parsed
/// tree: every loaded workflow holds its input, and a project may have
/// 100,000 of them. Serialized as the value it holds.
#[derive(Clone, Debug)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// The text of `value`.
    ///
    /// ```
    /// use schedule_sync::project::JsonText;
    /// let text = JsonText::new(&serde_json::json!({"region": "eu"}));
    /// assert_eq!(text.as_str(), r#"{"region":"eu"}"#);
    /// assert_eq!(text.value(), serde_json::json!({"region": "eu"}));
    /// ```
    pub fn new(value: &serde_json::Value) -> Self {
        JsonText(value.to_string().into_boxed_str())
    }

    /// The compact JSON text, as `serde_json` writes the value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value, parsed again.
    pub fn value(&self) -> serde_json::Value {
        // Written by `new` from a value: parsing it back cannot fail.
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(value: serde_json::Value) -> Self {
        JsonText::new(&value)
    }
}

/// Equal when the values are (two texts may spell one object's keys in
/// different orders).
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.value() == other.value()
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// A cron string as written, and what it means.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CronEntry {
    /// The text as written in the file.
    pub text: String,
    /// The parsed form.
    #[serde(skip)]
    pub spec: CronSpec,
}

/// Temporal's overlap policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Do not start a run while one is going.
    Skip,
    /// Keep at most one firing waiting.
    BufferOne,
    /// Keep every firing waiting.
    BufferAll,
    /// Cancel the running one, then start.
    CancelOther,
    /// Terminate the running one, then start.
    TerminateOther,
    /// Start regardless.
    AllowAll,
}

impl OverlapPolicy {
    /// The YAML spellings, in the order the docs list them, with the alias last.
    pub const SPELLINGS: [(&'static str, OverlapPolicy); 7] = [
        ("skip", OverlapPolicy::Skip),
        ("buffer_one", OverlapPolicy::BufferOne),
        ("buffer_all", OverlapPolicy::BufferAll),
        ("cancel_other", OverlapPolicy::CancelOther),
        ("terminate_other", OverlapPolicy::TerminateOther),
        ("allow_all", OverlapPolicy::AllowAll),
        ("allow", OverlapPolicy::AllowAll),
    ];
}

pub(super) mod humane {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::duration::format_duration(*d))
    }
}

mod humane_option {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::duration::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}
