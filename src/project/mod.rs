//! The project model: loading `project.yaml` and its workflow files into
//! validated, typed values, with every problem reported at once.

mod check;
pub mod diagnostic;
mod files;
mod model;
pub mod names;
pub mod node;
mod schedule_ids;
mod timing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use check::{
    CALENDAR_KEYS, DEFAULT_WORKFLOWS_GLOB, INTERVAL_KEYS, MAX_REMAINING_ACTIONS,
    MIN_CATCHUP_WINDOW, SCHEDULE_KEYS,
};
pub use diagnostic::{Diagnostic, Related, Severity};
pub use files::{MAX_FILE_BYTES, MAX_WORKFLOW_FILES};
pub use model::{
    CalendarEntry, CronEntry, Interval, OverlapPolicy, Project, Schedule, Timing, Workflow,
};

use check::{Defaults, FileCheck};
use node::Position;

/// The name of the project file in a project folder.
pub const PROJECT_FILE: &str = "project.yaml";

/// A valid project and the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The project.
    pub project: Project,
    /// Problems that do not make the project invalid.
    pub warnings: Vec<Diagnostic>,
}

/// A project that failed to load: every problem found, errors and warnings,
/// sorted by file, line and column.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the project is invalid: {} error(s)", self.error_count())]
pub struct InvalidProject {
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
}

impl InvalidProject {
    /// How many of the diagnostics are errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// The errors, one `file:line:column: message` per line, for logs and
    /// status pages.
    pub fn summary(&self) -> String {
        let lines: Vec<String> = self
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                format!(
                    "{}:{}:{}: {}",
                    d.file.display(),
                    d.line,
                    d.column,
                    d.message
                )
            })
            .collect();
        format!("invalid project: {}", lines.join("\n"))
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
/// let loaded = schedule_sync::project::load(dir.path()).unwrap();
/// assert_eq!(loaded.project.workflows[0].task_queue, "q");
/// ```
pub fn load(dir: &Path) -> Result<Loaded, InvalidProject> {
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
    let mut diagnostics = check.diagnostics;
    let Some(declared) = declared.filter(|_| !diagnostics.iter().any(Diagnostic::is_error)) else {
        return Err(invalid(diagnostics));
    };

    let found = files::find(dir, project_path, &declared.workflows);
    diagnostics.extend(found.diagnostics);
    let defaults = Defaults {
        task_queue: &declared.task_queue,
    };
    let outcomes: Vec<FileOutcome> = found
        .files
        .into_par_iter()
        .map(|file| load_workflow(dir, file, &defaults))
        .collect();

    diagnostics.extend(duplicates(dir, &outcomes));
    diagnostics.extend(schedule_ids::collisions(dir, &declared.name, &outcomes));
    let mut workflows = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        diagnostics.extend(outcome.diagnostics);
        workflows.extend(outcome.workflow);
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(invalid(diagnostics));
    }
    workflows.sort_by(|a, b| a.id.cmp(&b.id));
    sort(&mut diagnostics);
    Ok(Loaded {
        project: Project {
            name: declared.name,
            task_queue: declared.task_queue,
            workflows,
        },
        warnings: diagnostics,
    })
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

fn load_workflow(dir: &Path, file: PathBuf, defaults: &Defaults<'_>) -> FileOutcome {
    match files::read(dir, &file) {
        Ok(source) => check_workflow_source(file, &source, defaults.task_queue),
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
    let mut outcome = FileOutcome {
        file,
        workflow: None,
        declared_id: None,
        declared_schedule_id: None,
        diagnostics: Vec::new(),
    };
    let root = match files::parse::<node::WorkflowRoot>(&outcome.file, source) {
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
    outcome.declared_schedule_id = schedule_ids::declared_schedule_id(&root);
    let defaults = Defaults { task_queue };
    let mut check = FileCheck::new(&outcome.file, source);
    outcome.workflow = check::workflow_file(&mut check, &root, outcome.file.clone(), &defaults);
    outcome.diagnostics = check.diagnostics;
    outcome
}

/// One error per workflow id declared in more than one file, naming the
/// first. Outcomes come sorted by file, so "first" is stable.
fn duplicates(dir: &Path, outcomes: &[FileOutcome]) -> Vec<Diagnostic> {
    let mut first: HashMap<&str, (&Path, Position)> = HashMap::with_capacity(outcomes.len());
    let mut out = Vec::new();
    for outcome in outcomes {
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
