//! The project model: loading `project.yaml` and its workflow files into
//! validated, typed values, with every problem reported at once.

pub mod action;
mod check;
pub mod diagnostic;
mod environment;
mod files;
pub mod fire_times;
mod lint;
mod model;
pub mod names;
pub mod node;
mod schedule_ids;
mod timing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rayon::prelude::*;

pub use check::{
    CALENDAR_KEYS, DEFAULT_WORKFLOWS_GLOB, INTERVAL_KEYS, MAX_REMAINING_ACTIONS,
    MIN_CATCHUP_WINDOW, SCHEDULE_KEYS,
};
pub use diagnostic::{Diagnostic, Related, Severity};
pub use environment::{ENVIRONMENT_KEYS, ENVIRONMENT_VARIABLE, Environment};
pub use files::{MAX_FILE_BYTES, MAX_WORKFLOW_FILES};
pub use lint::{CROWD_THRESHOLD, CROWD_WINDOW};
pub use model::{
    CalendarEntry, CronEntry, Interval, JsonText, OverlapPolicy, Project, Schedule, Timing,
    Workflow,
};

use check::{Defaults, FileCheck};
use environment::Patches;
use node::{Node, Position};

/// The name of the project file in a project folder.
pub const PROJECT_FILE: &str = "project.yaml";

/// A valid project and the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The project.
    pub project: Project,
    /// Problems that do not make the project invalid.
    pub warnings: Vec<Diagnostic>,
    /// The environment the project was loaded for, when one was selected.
    pub environment: Option<Environment>,
    /// Every environment that `project.yaml` declares.
    pub environments: Vec<Environment>,
}

/// How to load a project.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// The environment whose overrides apply; `None` loads the files as
    /// written.
    pub environment: Option<String>,
    /// Run the lints of `validate` as of this time: DST gaps and overlaps,
    /// an `end_at` in the past, schedules crowding one instant. `None` (the
    /// default) skips them; they cost time and depend on the clock.
    pub lint_at: Option<DateTime<Utc>>,
}

impl LoadOptions {
    /// Options that select `environment`.
    pub fn environment(environment: Option<&str>) -> Self {
        LoadOptions {
            environment: environment.map(str::to_owned),
            lint_at: None,
        }
    }
}

/// A project that cannot be used: every problem found, errors and warnings,
/// sorted by file, line and column. The one error for it, whether
/// [`load`] finds it or a reload of a running reconciler does; its message
/// names each error with its place (see [`InvalidProject::summary`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.summary())]
pub struct InvalidProject {
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
}

impl InvalidProject {
    /// How many of the diagnostics are errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// The message: `invalid project (N error(s)):`, then each error as
    /// `file:line:column: message`, one per line, for logs and status pages.
    pub fn summary(&self) -> String {
        let mut summary = format!("invalid project ({} error(s)):", self.error_count());
        for d in self.diagnostics.iter().filter(|d| d.is_error()) {
            summary.push_str(&format!(
                "\n{}:{}:{}: {}",
                d.file.display(),
                d.line,
                d.column,
                d.message
            ));
        }
        summary
    }

    /// A project that breaks the rules that `messages` state, each an error
    /// of `project.yaml`.
    pub(crate) fn of_messages(messages: &[String]) -> Self {
        let diagnostics = messages
            .iter()
            .map(|m| {
                Diagnostic::error(
                    Path::new(PROJECT_FILE),
                    Position { line: 0, column: 0 },
                    m.clone(),
                )
            })
            .collect();
        InvalidProject { diagnostics }
    }

    /// The project in `dir` could not be loaded at all: the loader failed
    /// (a bug) with `why`.
    pub(crate) fn load_failed(dir: &Path, why: &str) -> Self {
        let diagnostic = Diagnostic::error(
            Path::new(PROJECT_FILE),
            Position { line: 0, column: 0 },
            format!("loading the project in {} failed: {why}", dir.display()),
        );
        InvalidProject {
            diagnostics: vec![diagnostic],
        }
    }
}

/// Loads and validates the project in `dir`. Reads only files; no network.
///
/// # Errors
///
/// [`InvalidProject`] with every problem of every file when any file is invalid.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("project.yaml"), "name: demo\ntask_queue: q\n").unwrap();
/// std::fs::create_dir(dir.path().join("workflows")).unwrap();
/// std::fs::write(
///     dir.path().join("workflows/report.yaml"),
///     "id: report\nschedule:\n  cron: \"0 2 * * *\"\n",
/// )
/// .unwrap();
/// let loaded = schedule_sync::load(dir.path()).unwrap();
/// assert_eq!(loaded.project.name(), "demo");
/// assert_eq!(loaded.project.task_queue(), "q");
/// assert_eq!(loaded.project.schedule_count(), 1);
/// ```
pub fn load(dir: &Path) -> Result<Loaded, InvalidProject> {
    load_with(dir, &LoadOptions::default())
}

/// Loads and validates the project in `dir` for the environment that
/// `options` selects, with its overrides merged into the workflow files.
///
/// # Errors
///
/// [`InvalidProject`] with every problem of every file, the overrides
/// included, and when `project.yaml` does not declare the environment.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Loaded, InvalidProject> {
    let loaded = load_as(dir, options, |_, workflow| workflow)?;
    let mut workflows = loaded.kept;
    workflows.sort_by(|a, b| a.id.cmp(&b.id));
    let project = Project {
        name: loaded.name,
        task_queue: loaded.task_queue,
        workflows,
    };
    let mut warnings = loaded.warnings;
    if let Some(now) = options.lint_at {
        warnings.extend(lint::crowded(&project, now));
    }
    sort(&mut warnings);
    Ok(Loaded {
        project,
        warnings,
        environment: loaded.environment,
        environments: loaded.environments,
    })
}

/// Loads a project as [`load_with`] does, keeping of each workflow what
/// `keep` makes of it as soon as its file is checked (the typed project
/// never exists at once).
pub(crate) fn load_as<T: Send>(
    dir: &Path,
    options: &LoadOptions,
    keep: impl Fn(&str, Workflow) -> T + Sync,
) -> Result<LoadedAs<T>, InvalidProject> {
    let project_path = Path::new(PROJECT_FILE);
    let invalid = |mut diagnostics: Vec<Diagnostic>| {
        sort(&mut diagnostics);
        InvalidProject { diagnostics }
    };
    // A project file that is a link out of the folder is never read: its
    // text could show in a diagnostic.
    let real_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Some(outside) = files::leads_out(&real_dir, &dir.join(project_path), project_path) {
        return Err(invalid(vec![outside]));
    }
    let source = match files::read(dir, project_path) {
        Ok(source) => source,
        Err(mut diagnostic) => {
            if !dir.join(project_path).exists() {
                diagnostic.message = format!("no {PROJECT_FILE} in {}", dir.display());
                diagnostic.expected = Some(format!("a project folder with {PROJECT_FILE}"));
            }
            return Err(invalid(vec![*diagnostic]));
        }
    };
    let root = files::parse::<node::Node>(project_path, &source).map_err(|d| invalid(vec![*d]))?;
    let mut check = FileCheck::new(project_path, &source);
    let declared = check::project_file(&mut check, &root);
    let environments = root
        .as_map()
        .map(|entries| environment::declared(&mut check, entries))
        .unwrap_or_default();
    let selected = match &options.environment {
        None => None,
        Some(name) => match environments.iter().find(|e| e.environment.name == *name) {
            Some(selected) => Some(selected),
            None => {
                unknown_environment(&mut check, &root, name, &environments);
                None
            }
        },
    };
    let mut diagnostics = check.diagnostics;
    let Some(declared) = declared.filter(|_| !diagnostics.iter().any(Diagnostic::is_error)) else {
        return Err(invalid(diagnostics));
    };
    let patches = selected.map(|s| Patches::of(s, project_path, &source));

    let found = files::find(dir, project_path, &declared.workflows);
    diagnostics.extend(found.diagnostics);
    let defaults = Defaults {
        task_queue: &declared.task_queue,
        lint_at: options.lint_at,
    };
    // Each workflow is kept as `keep` makes it as soon as its file is
    // checked: the typed workflows need never exist all at once.
    let outcomes: Vec<Checked<T>> = found
        .files
        .into_par_iter()
        .map(|file| {
            let outcome = load_workflow(dir, file, &defaults, patches.as_ref());
            let workflow = outcome.workflow;
            let schedule = workflow.as_ref().and_then(|w| {
                let own = w.schedule.as_ref()?.id.clone();
                Some(ScheduleKey {
                    workflow: w.id.clone(),
                    own,
                })
            });
            Checked {
                outcome: FileIds {
                    file: outcome.file,
                    declared_id: outcome.declared_id,
                    declared_schedule_id: outcome.declared_schedule_id,
                    diagnostics: outcome.diagnostics,
                },
                schedule,
                kept: workflow.map(|w| keep(&declared.name, w)),
            }
        })
        .collect();

    diagnostics.extend(duplicates(dir, &outcomes));
    diagnostics.extend(schedule_ids::collisions(dir, &declared.name, &outcomes));
    if let Some(selected) = selected {
        let ids: Vec<&str> = outcomes
            .iter()
            .filter_map(|o| o.outcome.declared_id.as_ref().map(|(id, _)| id.as_str()))
            .collect();
        diagnostics.extend(environment::unknown_ids(
            selected,
            project_path,
            &source,
            &ids,
        ));
    }
    let mut kept = Vec::with_capacity(outcomes.len());
    for checked in outcomes {
        diagnostics.extend(checked.outcome.diagnostics);
        kept.extend(checked.kept);
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(invalid(diagnostics));
    }
    Ok(LoadedAs {
        name: declared.name,
        task_queue: declared.task_queue,
        kept,
        warnings: diagnostics,
        environment: selected.map(|s| s.environment.clone()),
        environments: environments.into_iter().map(|e| e.environment).collect(),
    })
}

/// What [`load_as`] found: the project's name and task queue, each valid
/// workflow as its `keep` made it (in no particular order), and the rest
/// of [`Loaded`].
pub(crate) struct LoadedAs<T> {
    pub(crate) name: String,
    task_queue: String,
    pub(crate) kept: Vec<T>,
    warnings: Vec<Diagnostic>,
    environment: Option<Environment>,
    environments: Vec<Environment>,
}

/// One checked workflow file: its outcome without the workflow, what the
/// checks across files need of its schedule, and the workflow as kept.
struct Checked<T> {
    outcome: FileIds,
    schedule: Option<ScheduleKey>,
    kept: Option<T>,
}

/// A [`FileOutcome`] without its workflow, which is kept apart as
/// [`load_as`]'s `keep` made it.
struct FileIds {
    file: PathBuf,
    declared_id: Option<(String, Position)>,
    declared_schedule_id: Option<(String, Position)>,
    diagnostics: Vec<Diagnostic>,
}

/// The ids of a valid workflow's schedule, for the checks across files.
struct ScheduleKey {
    /// The workflow id.
    workflow: String,
    /// The schedule's own id (`schedule.id`), when it has one.
    own: Option<String>,
}

fn unknown_environment(
    check: &mut FileCheck<'_>,
    root: &Node,
    name: &str,
    declared: &[environment::Declared],
) {
    let at = root
        .as_map()
        .and_then(|entries| {
            entries
                .iter()
                .find(|(k, _)| k.as_str() == Some("environments"))
        })
        .map_or(root.at, |(k, _)| k.at);
    let names: Vec<&str> = declared
        .iter()
        .map(|d| d.environment.name.as_str())
        .collect();
    let d = check.error(
        at,
        format!("{PROJECT_FILE} declares no environment `{name}`"),
    );
    d.expected = Some(if names.is_empty() {
        format!("an `environments:` section in {PROJECT_FILE} that declares `{name}`")
    } else {
        format!("one of {}", names.join(", "))
    });
}

/// The environments that the `project.yaml` in `dir` declares, read from
/// that file alone (the workflow files are not read): what a host needs to
/// connect before the project loads.
///
/// # Errors
///
/// [`InvalidProject`] when `project.yaml` cannot be read or its
/// `environments:` section is invalid.
pub fn environments(dir: &Path) -> Result<Vec<Environment>, InvalidProject> {
    let project_path = Path::new(PROJECT_FILE);
    let invalid = |diagnostics| InvalidProject { diagnostics };
    let source = files::read(dir, project_path).map_err(|d| invalid(vec![*d]))?;
    let root = files::parse::<Node>(project_path, &source).map_err(|d| invalid(vec![*d]))?;
    let mut check = FileCheck::new(project_path, &source);
    let declared = root
        .as_map()
        .map(|entries| environment::declared(&mut check, entries))
        .unwrap_or_default();
    let errors: Vec<Diagnostic> = check
        .diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    Ok(declared.into_iter().map(|d| d.environment).collect())
}

/// The one environment that a command acts on: `name` when given (from a
/// flag, [`ENVIRONMENT_VARIABLE`] or `Options`); without a name, none: the
/// project as its files are written, with Temporal's own connection
/// settings.
///
/// # Errors
///
/// A message for a person when `project.yaml` declares no environment
/// `name`.
pub fn select<'e>(
    environments: &'e [Environment],
    name: Option<&str>,
) -> Result<Option<&'e Environment>, String> {
    let Some(name) = name else {
        return Ok(None);
    };
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    environments
        .iter()
        .find(|e| e.name == name)
        .map(Some)
        .ok_or_else(|| {
            if names.is_empty() {
                format!("{PROJECT_FILE} declares no environments, so none named `{name}`")
            } else {
                format!(
                    "{PROJECT_FILE} declares no environment `{name}`; it declares {}",
                    names.join(", ")
                )
            }
        })
}

/// What `validate` finds: the project as its files are written and in each
/// environment that `project.yaml` declares.
#[derive(Clone, Debug)]
pub struct Validation {
    /// The project as written, counted, when it is valid.
    pub project: Option<Counted>,
    /// The names of the environments checked.
    pub environments: Vec<String>,
    /// Every problem found, once each; a problem found only in one
    /// environment says so at the start of its message.
    pub diagnostics: Vec<Diagnostic>,
}

/// A valid project as `validate` reports it: its name and how many
/// workflows and schedules it declares. `validate` keeps no more of it, so
/// that checking 100,000 workflows does not hold them all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counted {
    /// The project's name.
    pub name: String,
    /// How many workflow files it has.
    pub workflows: usize,
    /// How many of them declare a schedule.
    pub schedules: usize,
}

impl Validation {
    /// Whether no error was found.
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the project in `dir` as [`load_with`] does, lints included,
/// keeping of it only its counts: each workflow is dropped as soon as its
/// file is checked, once the crowd lint has counted its firings.
fn check_counted(
    dir: &Path,
    options: &LoadOptions,
) -> Result<(Counted, Vec<Diagnostic>), InvalidProject> {
    let crowd = options.lint_at.map(lint::Crowd::new);
    let loaded = load_as(dir, options, |_, workflow| {
        if let Some(crowd) = &crowd {
            crowd.add(&workflow);
        }
        workflow.schedule.is_some()
    })?;
    let counted = Counted {
        name: loaded.name,
        workflows: loaded.kept.len(),
        schedules: loaded.kept.iter().filter(|scheduled| **scheduled).count(),
    };
    let mut warnings = loaded.warnings;
    warnings.extend(crowd.map(lint::Crowd::warnings).unwrap_or_default());
    sort(&mut warnings);
    Ok((counted, warnings))
}

/// Checks the project in `dir` as written and in every environment, with
/// the lints as of `lint_at` when given.
pub fn validate(dir: &Path, lint_at: Option<DateTime<Utc>>) -> Validation {
    let base = check_counted(
        dir,
        &LoadOptions {
            environment: None,
            lint_at,
        },
    );
    let (project, mut diagnostics) = match base {
        Ok((counted, warnings)) => (Some(counted), warnings),
        Err(invalid) => (None, invalid.diagnostics),
    };
    // Read from project.yaml alone: the environments are checked even when
    // a workflow file is invalid as written.
    let environments: Vec<String> = environments(dir)
        .map(|all| all.into_iter().map(|e| e.name).collect())
        .unwrap_or_default();
    let seen = |d: &Diagnostic, all: &[Diagnostic]| {
        all.iter().any(|o| {
            (&o.file, o.line, o.column, &o.message) == (&d.file, d.line, d.column, &d.message)
        })
    };
    let base_count = diagnostics.len();
    for name in &environments {
        let options = LoadOptions {
            environment: Some(name.clone()),
            lint_at,
        };
        let found = match check_counted(dir, &options) {
            Ok((_, warnings)) => warnings,
            Err(invalid) => invalid.diagnostics,
        };
        for mut d in found {
            if seen(&d, &diagnostics[..base_count]) {
                continue;
            }
            d.message = format!("in environment `{name}`: {}", d.message);
            if !seen(&d, &diagnostics) {
                diagnostics.push(d);
            }
        }
    }
    sort(&mut diagnostics);
    Validation {
        project,
        environments,
        diagnostics,
    }
}

/// What one workflow file gave: the workflow when it is valid, the id it
/// declares (valid or not, for the duplicate check) and its problems.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// The file, relative to the project folder.
    pub file: PathBuf,
    /// The workflow, when the file is valid.
    pub workflow: Option<Workflow>,
    /// The `id` the file declares, valid or not, and the position of its key.
    pub declared_id: Option<(String, Position)>,
    /// The `schedule.id` the file declares, and the position of its value.
    pub declared_schedule_id: Option<(String, Position)>,
    /// Every problem in the file.
    pub diagnostics: Vec<Diagnostic>,
}

fn load_workflow(
    dir: &Path,
    file: PathBuf,
    defaults: &Defaults<'_>,
    patches: Option<&Patches<'_>>,
) -> FileOutcome {
    match files::read(dir, &file) {
        Ok(source) => check_workflow(file, &source, defaults, patches),
        Err(diagnostic) => FileOutcome {
            file,
            workflow: None,
            declared_id: None,
            declared_schedule_id: None,
            diagnostics: vec![*diagnostic],
        },
    }
}

/// Checks the text of one workflow file, named `file` in messages, whose
/// project's task queue is `task_queue`. No file is read: this is what an
/// editor integration or a fuzzer calls.
///
/// ```
/// use std::path::PathBuf;
/// let outcome = schedule_sync::project::check_workflow_source(
///     PathBuf::from("w.yaml"),
///     "id: w\nschedule:\n  cron: \"0 25 * * *\"\n",
///     "queue",
/// );
/// assert!(outcome.workflow.is_none());
/// assert_eq!(outcome.diagnostics[0].line, 3);
/// ```
pub fn check_workflow_source(file: PathBuf, source: &str, task_queue: &str) -> FileOutcome {
    let defaults = Defaults {
        task_queue,
        lint_at: None,
    };
    check_workflow(file, source, &defaults, None)
}

/// Checks one workflow file's text with an environment's overrides merged
/// in.
fn check_workflow(
    file: PathBuf,
    source: &str,
    defaults: &Defaults<'_>,
    patches: Option<&Patches<'_>>,
) -> FileOutcome {
    let mut outcome = FileOutcome {
        file,
        workflow: None,
        declared_id: None,
        declared_schedule_id: None,
        diagnostics: Vec::new(),
    };
    let mut root = match files::parse::<node::WorkflowRoot>(&outcome.file, source) {
        Ok(root) => root,
        Err(diagnostic) => {
            outcome.diagnostics.push(*diagnostic);
            return outcome;
        }
    };
    outcome.declared_id = root.as_map().and_then(|entries| {
        entries.iter().find_map(|(key, value)| {
            (key.as_str() == Some("id"))
                .then(|| value.as_str().map(|id| (id.to_owned(), key.at)))?
        })
    });
    let patch = patches
        .zip(outcome.declared_id.as_ref())
        .and_then(|(patches, (id, _))| {
            patches
                .by_id
                .get(id.as_str())
                .filter(|_| root.as_map().is_some())
        });
    if let Some(patch) = patch {
        root.merge(patch);
    }
    outcome.declared_schedule_id = schedule_ids::declared_schedule_id(&root);
    let mut check = FileCheck::new(&outcome.file, source);
    if let Some(patches) = patches {
        check = check.with_origin(patches.file, patches.source);
    }
    outcome.workflow = check::workflow_file(&mut check, &root, outcome.file.clone(), defaults);
    outcome.diagnostics = check.diagnostics;
    outcome
}

/// One error per workflow id declared in more than one file, naming the
/// first. Outcomes come sorted by file, so "first" is stable.
fn duplicates<T>(dir: &Path, outcomes: &[Checked<T>]) -> Vec<Diagnostic> {
    let mut first: HashMap<&str, (&Path, Position)> = HashMap::with_capacity(outcomes.len());
    let mut out = Vec::new();
    for Checked { outcome, .. } in outcomes {
        let Some((id, at)) = &outcome.declared_id else {
            continue;
        };
        let Some((file, first_at)) = first.get(id.as_str()).copied() else {
            first.insert(id, (&outcome.file, *at));
            continue;
        };
        let source = std::fs::read_to_string(dir.join(&outcome.file)).unwrap_or_default();
        out.push(
            Diagnostic::error(
                &outcome.file,
                *at,
                format!(
                    "the workflow id `{id}` is also declared in {}",
                    file.display()
                ),
            )
            .expected("workflow ids that are unique within the project")
            .related(Related {
                file: file.to_path_buf(),
                line: first_at.line,
                column: first_at.column,
                note: "first declared".to_owned(),
            })
            .with_snippet(&source),
        );
    }
    out
}

fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.severity).cmp(&(&b.file, b.line, b.column, b.severity))
    });
}

/// A project named `name` made of workflow file texts, for unit tests.
///
/// # Panics
///
/// When a text is not a valid workflow file.
#[cfg(test)]
pub(crate) fn test_project(name: &str, files: &[&str]) -> Project {
    let workflows = files
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let outcome = check_workflow_source(format!("w{i}.yaml").into(), text, "q");
            outcome
                .workflow
                .unwrap_or_else(|| panic!("{:#?}", outcome.diagnostics))
        })
        .collect();
    Project {
        name: name.to_owned(),
        task_queue: "q".to_owned(),
        workflows,
    }
}
