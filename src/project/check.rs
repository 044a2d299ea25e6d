//! Turns the node tree of one file into typed values, collecting every problem
//! instead of stopping at the first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::diagnostic::Diagnostic;
use super::model::{CronEntry, JsonText, OverlapPolicy, Schedule, Workflow};
use super::names;
use super::node::{Node, Position, Value, WORKFLOW_KEYS, quote};
use crate::cron;
use crate::duration::parse_duration;

mod action;
mod timing;

pub use timing::{CALENDAR_KEYS, INTERVAL_KEYS, MAX_REMAINING_ACTIONS};

/// The keys of `project.yaml`.
pub const PROJECT_KEYS: [&str; 4] = ["name", "task_queue", "workflows", "environments"];
/// The keys of a `schedule:` block.
pub const SCHEDULE_KEYS: [&str; 16] = [
    "cron",
    "calendar",
    "every",
    "offset",
    "exclude",
    "remaining_actions",
    "id",
    "timezone",
    "enabled",
    "jitter",
    "overlap_policy",
    "catchup_window",
    "pause_on_failure",
    "start_at",
    "end_at",
    "input",
];

/// Temporal's smallest catch-up window.
pub const MIN_CATCHUP_WINDOW: Duration = Duration::from_secs(10);

/// The problems found in one file so far, and the file's text for snippets.
pub struct FileCheck<'a> {
    file: &'a Path,
    source: &'a str,
    /// Other files whose values were merged into this one (an environment's
    /// override in `project.yaml`): position origin `n` is `origins[n - 1]`.
    origins: Vec<(&'a Path, &'a str)>,
    /// Everything found so far.
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> FileCheck<'a> {
    /// Starts checking `file`, whose text is `source`.
    pub fn new(file: &'a Path, source: &'a str) -> Self {
        FileCheck {
            file,
            source,
            origins: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    /// Names the file of the positions marked with origin `n` (the `n`th
    /// call), so that a problem with a merged-in value is reported in the
    /// file, at the line and column, where that value was written.
    pub fn with_origin(mut self, file: &'a Path, source: &'a str) -> Self {
        self.origins.push((file, source));
        self
    }

    /// Records an error and returns it for more detail.
    pub(super) fn error(&mut self, at: Position, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::error(self.file, at, message))
    }

    pub(super) fn warning(&mut self, at: Position, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::warning(self.file, at, message))
    }

    pub(super) fn push(&mut self, mut diagnostic: Diagnostic) -> &mut Diagnostic {
        let at = Position {
            line: diagnostic.line,
            column: diagnostic.column,
        };
        let (file, source) = match at.origin() {
            0 => (self.file, self.source),
            n => self
                .origins
                .get(n as usize - 1)
                .copied()
                .unwrap_or((self.file, self.source)),
        };
        file.clone_into(&mut diagnostic.file);
        diagnostic.line = at.local().line;
        self.diagnostics.push(diagnostic.with_snippet(source));
        self.diagnostics.last_mut().expect("just pushed")
    }

    /// Whether any error was recorded.
    pub fn failed(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub(super) fn wrong_type(&mut self, node: &Node, key: &str, expected: &str) {
        let found = node.describe();
        // A key is quoted as code; a whole file ("the workflow file") is not.
        let subject = if key.contains([' ', '.']) {
            key.to_owned()
        } else {
            format!("`{key}`")
        };
        let d = self.error(node.at, format!("{subject} is {found}"));
        d.expected = Some(expected.to_owned());
    }

    /// A string value, or an error that says what was found instead.
    pub(super) fn string<'n>(&mut self, node: &'n Node, key: &str) -> Option<&'n str> {
        match &node.value {
            Value::Str(text) => Some(text),
            _ => {
                let hint = matches!(node.value, Value::Int(_) | Value::Float(_) | Value::Bool(_))
                    .then(|| format!("quote it: {key}: \"…\""));
                self.wrong_type(node, key, "a string");
                if let (Some(hint), Some(d)) = (hint, self.diagnostics.last_mut()) {
                    d.help = Some(hint);
                }
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, key, "true or false");
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, key: &str) -> Option<Duration> {
        let text = self.string(node, key)?;
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(node.at, format!("`{key}` is not a duration: {e}"))
                    .expected = Some("a duration such as 30s, 5m or 1h30m".to_owned());
                None
            }
        }
    }

    fn timestamp(&mut self, node: &Node, key: &str) -> Option<DateTime<Utc>> {
        let text = self.string(node, key)?;
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                self.error(
                    node.at,
                    format!("`{key}` {} is not a timestamp: {e}", quote(text)),
                )
                .expected = Some("an RFC 3339 timestamp such as 2026-01-01T00:00:00Z".to_owned());
                None
            }
        }
    }

    /// Reports the keys of `entries` that are not in `known`, suggesting the
    /// nearest known key. `strict` makes them errors, otherwise only likely
    /// misspellings are warned about.
    pub(super) fn unknown_keys(
        &mut self,
        entries: &[(Node, Node)],
        known: &[&str],
        section: &str,
        strict: bool,
    ) {
        for (key, _) in entries {
            let Some(name) = key.as_str() else {
                if strict {
                    self.wrong_type(key, section, "a key that is a string");
                }
                continue;
            };
            if known.contains(&name) {
                continue;
            }
            let suggestion = nearest(name, known);
            let list = known.join(", ");
            if strict {
                let d = self.error(key.at, format!("unknown key `{name}` in {section}"));
                d.expected = Some(format!("one of {list}"));
                d.help = suggestion.map(|s| format!("did you mean `{s}`?"));
            } else if let Some(s) = suggestion {
                let d = self.warning(
                    key.at,
                    format!("`{name}` is not a key of schedule-sync and is ignored"),
                );
                d.help = Some(format!("did you mean `{s}`?"));
            }
        }
    }

    pub(super) fn check_name(
        &mut self,
        node: &Node,
        key: &str,
        valid: fn(&str) -> bool,
        rule: &str,
    ) -> Option<String> {
        let text = self.string(node, key)?;
        if valid(text) {
            Some(text.to_owned())
        } else {
            self.error(
                node.at,
                format!("`{key}` {} is not a valid name", quote(text)),
            )
            .expected = Some(rule.to_owned());
            None
        }
    }

    pub(super) fn temporal_name(&mut self, node: &Node, key: &str) -> Option<String> {
        let text = self.string(node, key)?;
        match names::temporal_name_problem(text) {
            None => Some(text.to_owned()),
            Some(problem) => {
                self.error(
                    node.at,
                    format!("`{key}` {} is not usable: {problem}", quote(text)),
                )
                .expected = Some("a non-empty name without surrounding white space".to_owned());
                None
            }
        }
    }
}

/// The nearest of `known` to `name`, if it is close enough to be a misspelling.
pub(super) fn nearest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let lowered = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lowered, k), *k))
        .filter(|(distance, k)| *distance <= (k.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

pub(super) fn get<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// What `project.yaml` declares.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFile {
    /// The project name.
    pub name: String,
    /// The default task queue.
    pub task_queue: String,
    /// The workflow globs, with their positions.
    pub workflows: Vec<(String, Position)>,
}

/// The default workflow glob.
pub const DEFAULT_WORKFLOWS_GLOB: &str = "workflows/**/*.yaml";

/// Checks the root node of `project.yaml`.
pub fn project_file(check: &mut FileCheck<'_>, root: &Node) -> Option<ProjectFile> {
    let Some(entries) = root.as_map() else {
        check.wrong_type(
            root,
            "project.yaml",
            "a mapping with `name` and `task_queue`",
        );
        return None;
    };
    check.unknown_keys(entries, &PROJECT_KEYS, "project.yaml", true);
    let name = match get(entries, "name") {
        Some(node) => check.check_name(
            node,
            "name",
            names::is_project_name,
            names::PROJECT_NAME_RULE,
        ),
        None => {
            check.error(root.at, "project.yaml has no `name`").expected =
                Some("`name: <project name>`, the owner of the project's schedules".to_owned());
            None
        }
    };
    let task_queue = match get(entries, "task_queue") {
        Some(node) => check.temporal_name(node, "task_queue"),
        None => {
            check
                .error(root.at, "project.yaml has no `task_queue`")
                .expected =
                Some("`task_queue: <queue>`, the default task queue of its workflows".to_owned());
            None
        }
    };
    let workflows = match get(entries, "workflows") {
        None => vec![(DEFAULT_WORKFLOWS_GLOB.to_owned(), root.at)],
        Some(node) => globs(check, node),
    };
    Some(ProjectFile {
        name: name?,
        task_queue: task_queue?,
        workflows,
    })
}

fn globs(check: &mut FileCheck<'_>, node: &Node) -> Vec<(String, Position)> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Str(_) => vec![node],
        _ => {
            check.wrong_type(
                node,
                "workflows",
                "a list of globs such as workflows/**/*.yaml",
            );
            return Vec::new();
        }
    };
    if items.is_empty() {
        check
            .error(node.at, "`workflows` is an empty list")
            .expected = Some("at least one glob, or no `workflows` key for the default".to_owned());
    }
    let mut out = Vec::new();
    for item in items {
        let Some(text) = check.string(item, "workflows") else {
            continue;
        };
        let escapes = Path::new(text).components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if escapes || text.starts_with('/') {
            check
                .error(
                    item.at,
                    format!("the glob {} leaves the project folder", quote(text)),
                )
                .expected =
                Some("a relative glob without `..`, such as workflows/**/*.yaml".to_owned());
        } else if let Err(e) = globset::Glob::new(text) {
            check
                .error(
                    item.at,
                    format!("the glob {} is malformed: {}", quote(text), e.kind()),
                )
                .expected = Some("a glob such as workflows/**/*.yaml".to_owned());
        } else {
            out.push((text.to_owned(), item.at));
        }
    }
    out
}

/// Defaults that a workflow file inherits from its project, and how far
/// to check it.
pub struct Defaults<'p> {
    /// The project's task queue.
    pub task_queue: &'p str,
    /// Run the lints of `validate` as of this time (see [`super::lint`]).
    pub lint_at: Option<DateTime<Utc>>,
}

/// Checks the root node of a workflow file.
pub fn workflow_file(
    check: &mut FileCheck<'_>,
    root: &Node,
    file: PathBuf,
    defaults: &Defaults<'_>,
) -> Option<Workflow> {
    let Some(entries) = root.as_map() else {
        let expected = "a mapping with at least `id`";
        if root.value == Value::Null {
            check.error(root.at, "the workflow file is empty").expected = Some(expected.to_owned());
        } else {
            check.wrong_type(root, "the workflow file", expected);
        }
        return None;
    };
    check.unknown_keys(entries, &WORKFLOW_KEYS, "the workflow file", false);
    let id = match get(entries, "id") {
        Some(node) => check.check_name(node, "id", names::is_workflow_id, names::WORKFLOW_ID_RULE),
        None => {
            check
                .error(root.at, "the workflow file has no `id`")
                .expected = Some("`id: <workflow id>`, unique within the project".to_owned());
            None
        }
    };
    let workflow_type = get(entries, "type").and_then(|n| check.temporal_name(n, "type"));
    let task_queue = get(entries, "task_queue").and_then(|n| check.temporal_name(n, "task_queue"));
    let schedule = match get(entries, "schedule") {
        None => None,
        Some(node) => Some(schedule(check, node, defaults.lint_at)?),
    };
    if check.failed() {
        return None;
    }
    let id = id?;
    Some(Workflow {
        workflow_type: workflow_type.unwrap_or_else(|| id.clone()),
        task_queue: task_queue.unwrap_or_else(|| defaults.task_queue.to_owned()),
        id,
        file,
        schedule,
    })
}

fn schedule(
    check: &mut FileCheck<'_>,
    node: &Node,
    lint_at: Option<DateTime<Utc>>,
) -> Option<Schedule> {
    let Some(entries) = node.as_map() else {
        check.wrong_type(
            node,
            "schedule",
            "a mapping with `cron`, `calendar` or `every`",
        );
        return None;
    };
    let known: Vec<&str> = SCHEDULE_KEYS
        .iter()
        .chain(&super::action::ACTION_KEYS)
        .copied()
        .collect();
    check.unknown_keys(entries, &known, "`schedule`", true);
    let errors_before = check.diagnostics.iter().filter(|d| d.is_error()).count();

    let timezone_node = get(entries, "timezone");
    let timezone = timezone_node.and_then(|n| {
        let text = check.string(n, "timezone")?;
        zone(check, n.at, text, "timezone")
    });
    let timing = timing::timing(
        check,
        node,
        entries,
        timezone
            .as_deref()
            .map(|z| (z, timezone_node.map(|n| n.at))),
    );
    let exclude =
        get(entries, "exclude").map_or(Some(Vec::new()), |n| timing::exclusions(check, n));
    let remaining_actions =
        get(entries, "remaining_actions").and_then(|n| timing::remaining_actions(check, n));
    let schedule_id = get(entries, "id").and_then(|n| timing::schedule_id(check, n));

    let enabled = get(entries, "enabled").map_or(Some(true), |n| check.boolean(n, "enabled"));
    let pause_on_failure = get(entries, "pause_on_failure")
        .map_or(Some(false), |n| check.boolean(n, "pause_on_failure"));
    let jitter =
        get(entries, "jitter").map_or(Some(Duration::ZERO), |n| check.duration(n, "jitter"));
    let catchup_window = match get(entries, "catchup_window") {
        None => None,
        Some(n) => match check.duration(n, "catchup_window") {
            Some(d) if d < MIN_CATCHUP_WINDOW => {
                check
                    .error(n.at, "`catchup_window` is shorter than 10s")
                    .expected = Some("at least 10s (Temporal's minimum)".to_owned());
                None
            }
            other => other,
        },
    };
    let overlap_policy =
        get(entries, "overlap_policy").map_or(Some(OverlapPolicy::Skip), |n| overlap(check, n));
    let start_at = get(entries, "start_at").and_then(|n| check.timestamp(n, "start_at"));
    let end_at = get(entries, "end_at").and_then(|n| check.timestamp(n, "end_at"));
    if let (Some(start), Some(end), Some(node)) = (start_at, end_at, get(entries, "end_at"))
        && end <= start
    {
        check
            .error(node.at, "`end_at` is not after `start_at`")
            .expected = Some("an end later than the start".to_owned());
    }
    let input = get(entries, "input").and_then(|n| match n.to_json() {
        Ok(json) => Some(json),
        Err(at) => {
            check
                .error(at, "`input` holds a value with no JSON form")
                .expected = Some("numbers that are finite, and keys that are scalars".to_owned());
            None
        }
    });
    let start = action::start_options(check, entries);

    let errors_after = check.diagnostics.iter().filter(|d| d.is_error()).count();
    if errors_after > errors_before {
        return None;
    }
    let timing = timing?;
    let (start, one_argument) = start?;
    let timezone = timezone
        .or_else(|| timing.cron.iter().find_map(|e| e.spec.timezone.clone()))
        .unwrap_or_else(|| "UTC".to_owned());
    let schedule = Schedule {
        timing,
        timezone,
        enabled: enabled?,
        jitter: jitter?,
        overlap_policy: overlap_policy?,
        catchup_window,
        pause_on_failure: pause_on_failure?,
        start_at,
        end_at,
        input: input.or(one_argument).map(JsonText::from),
        start,
        exclude: exclude?,
        remaining_actions,
        id: schedule_id,
    };
    if let Some(now) = lint_at {
        let cron_at: Vec<Position> =
            get(entries, "cron").map_or_else(Vec::new, |n| match &n.value {
                Value::Seq(items) => items.iter().map(|i| i.at).collect(),
                _ => vec![n.at],
            });
        let end_at = get(entries, "end_at").map(|n| n.at);
        for warning in super::lint::schedule(check.file, &schedule, &cron_at, end_at, now) {
            check.push(warning);
        }
    }
    Some(schedule)
}

/// Checks an IANA zone name.
fn zone(check: &mut FileCheck<'_>, at: Position, text: &str, key: &str) -> Option<String> {
    if text.parse::<chrono_tz::Tz>().is_ok() {
        return Some(text.to_owned());
    }
    let d = check.error(
        at,
        format!("`{key}` {} is not an IANA time zone", quote(text)),
    );
    d.expected = Some("a zone name such as UTC, Europe/Berlin or America/New_York".to_owned());
    if let Ok(zone) = chrono_tz::Tz::from_str_insensitive(text) {
        d.help = Some(format!("did you mean `{}`?", zone.name()));
    }
    None
}

fn overlap(check: &mut FileCheck<'_>, node: &Node) -> Option<OverlapPolicy> {
    let text = check.string(node, "overlap_policy")?;
    if let Some((_, policy)) = OverlapPolicy::SPELLINGS.iter().find(|(s, _)| *s == text) {
        return Some(*policy);
    }
    let spellings: Vec<&str> = OverlapPolicy::SPELLINGS.iter().map(|(s, _)| *s).collect();
    let d = check.error(
        node.at,
        format!("`overlap_policy` {} is not a policy", quote(text)),
    );
    d.expected = Some(format!("one of {}", spellings.join(", ")));
    d.help = nearest(text, &spellings).map(|s| format!("did you mean `{s}`?"));
    None
}

fn cron_entries(
    check: &mut FileCheck<'_>,
    node: &Node,
    timezone: Option<(&str, Option<Position>)>,
) -> Option<Vec<CronEntry>> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) if items.is_empty() => {
            check.error(node.at, "`cron` is an empty list").expected =
                Some("at least one cron string".to_owned());
            return None;
        }
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut entries = Vec::new();
    let mut zones: Vec<(String, Position)> = timezone
        .map(|(z, at)| (z.to_owned(), at.unwrap_or(node.at)))
        .into_iter()
        .collect();
    for item in items {
        let Some(text) = check.string(item, "cron") else {
            continue;
        };
        match cron::parse(text) {
            Ok(spec) if super::lint::never_fires(&spec) => {
                let d = check.error(
                    item.at,
                    format!("the cron string {} never fires", quote(text)),
                );
                d.expected = Some(
                    "a cron whose fields name at least one day (day 30 of February never comes)"
                        .to_owned(),
                );
            }
            Ok(spec) => {
                if let Some(zone_name) = &spec.timezone {
                    if zone(check, item.at, zone_name, "CRON_TZ").is_none() {
                        continue;
                    }
                    if let Some((first, first_at)) = zones.first()
                        && first != zone_name
                    {
                        let message = format!(
                            "the cron time zone `{zone_name}` conflicts with `{first}` at line {}",
                            first_at.local().line
                        );
                        check.error(item.at, message).expected =
                            Some("one time zone for the whole schedule".to_owned());
                        continue;
                    }
                    zones.push((zone_name.clone(), item.at));
                }
                entries.push(CronEntry {
                    text: text.to_owned(),
                    spec,
                });
            }
            Err(e) => {
                let at = point_into(check.source, item.at, text, e.offset);
                check.error(at, format!("invalid cron string {}: {}", quote(text), e.message))
                    .expected = Some(
                    "Temporal cron: 5-7 fields (minute hour day-of-month month day-of-week [year]), \
                     a macro such as @daily, or @every 1h"
                        .to_owned(),
                );
            }
        }
    }
    Some(entries)
}

/// The position of character `offset` inside the scalar `text` that starts at
/// `at`, when the scalar sits on one line as written; otherwise `at` itself.
fn point_into(source: &str, at: Position, text: &str, offset: usize) -> Position {
    let Some(line) = source.lines().nth(at.line.saturating_sub(1) as usize) else {
        return at;
    };
    let rest: String = line
        .chars()
        .skip(at.column.saturating_sub(1) as usize)
        .collect();
    let skip = if rest.starts_with(text) {
        0
    } else if (rest.starts_with('"') || rest.starts_with('\'')) && rest[1..].starts_with(text) {
        1
    } else {
        return at;
    };
    Position {
        line: at.line,
        column: at.column + u32::try_from(skip + offset).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        assert_eq!(nearest("cronn", &SCHEDULE_KEYS), Some("cron"));
        assert_eq!(nearest("time_zone", &SCHEDULE_KEYS), Some("timezone"));
        assert_eq!(
            nearest("overlap-policy", &SCHEDULE_KEYS),
            Some("overlap_policy")
        );
        assert_eq!(nearest("Enabled", &SCHEDULE_KEYS), Some("enabled"));
        assert_eq!(nearest("retries", &SCHEDULE_KEYS), None);
    }

    #[test]
    fn positions_point_inside_plain_and_quoted_scalars() {
        let source = "a: 0 25 * * *\nb: \"0 25 * * *\"\n";
        let plain = Position { line: 1, column: 4 };
        assert_eq!(
            point_into(source, plain, "0 25 * * *", 2),
            Position { line: 1, column: 6 }
        );
        let quoted = Position { line: 2, column: 4 };
        assert_eq!(
            point_into(source, quoted, "0 25 * * *", 2),
            Position { line: 2, column: 7 }
        );
    }
}
