//! `schedule-sync import`: workflow files from the schedules Temporal holds.
//! It reads Temporal and writes files into the project folder; it never
//! writes to Temporal. Taking the schedules over is `apply --adopt`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use schedule_sync::import::{Imported, Skipped, Target, import};
use schedule_sync::project::{self, names};
use schedule_sync::store::{Described, ScheduleStore, TemporalStore};
use serde::Serialize;

use crate::args::{Format, TemporalArgs};
use crate::output::{self, Stream, errln, outln};
use crate::report::Changes;

/// What `import` was asked.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The project folder; made, with a project.yaml, when it has none.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Import the schedules whose ids start with this.
    #[arg(long, conflicts_with_all = ["query", "ids"])]
    pub prefix: Option<String>,
    /// Import the schedules that this visibility query lists, e.g.
    /// `TemporalSchedulePaused = false`.
    #[arg(long, conflicts_with = "ids")]
    pub query: Option<String>,
    /// Import these schedules (repeat the flag, or separate with commas).
    #[arg(long = "id", value_name = "SCHEDULE_ID", value_delimiter = ',')]
    pub ids: Vec<String>,
    /// The project's name, for a folder without project.yaml.
    #[arg(long)]
    pub project: Option<String>,
    /// The default task queue of a new project; by default the one most
    /// imported schedules use.
    #[arg(long)]
    pub task_queue: Option<String>,
    /// Where the workflow files go, relative to the project folder.
    #[arg(long, default_value = "workflows")]
    pub out: PathBuf,
    /// Then show what `apply --adopt` would do, as `plan --adopt` does.
    #[arg(long)]
    pub adopt_plan: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub temporal: TemporalArgs,
}

/// The project the files are for: the folder's own, or a new one.
struct Destination {
    name: String,
    /// Known for an existing project; chosen from the schedules for a new one.
    task_queue: Option<String>,
    /// Workflow ids the project declares already, and their files.
    declared: BTreeMap<String, PathBuf>,
    exists: bool,
}

#[derive(Serialize)]
struct ImportReport {
    project: String,
    created_project_file: bool,
    imported: Vec<Imported>,
    skipped: Vec<Skipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    adopt_plan: Option<serde_json::Value>,
}

/// Runs `import`: 0 every selected schedule imported, 2 some skipped, 1 an
/// error (then no file was written).
pub fn run(args: &ImportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_import(args)) {
        Ok((report, adopt_text)) => {
            match args.format {
                Format::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                Format::Text => output::write(
                    Stream::Out,
                    text(&report, adopt_text.as_deref(), args).as_bytes(),
                ),
            }
            if report.skipped.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(error) => {
            errln!("error: {error:#}");
            errln!("nothing was written");
            ExitCode::FAILURE
        }
    }
}

async fn run_import(args: &ImportArgs) -> anyhow::Result<(ImportReport, Option<String>)> {
    use schedule_sync::connection::{DEFAULT_CONNECT_TIMEOUT, Settings};
    use schedule_sync::runtime::{Connector, TemporalConnector};

    let destination = destination(args)?;
    let settings = Settings::load(&args.temporal.overrides())?;
    let store = TemporalConnector::new(settings, DEFAULT_CONNECT_TIMEOUT)
        .connect()
        .await?;
    let ids = selected(&store, args, &destination.name).await?;
    let mut described = Vec::with_capacity(ids.len());
    let mut skipped = Vec::new();
    for id in ids {
        match store.describe(&id).await {
            Ok(Some(schedule)) => described.push(schedule),
            Ok(None) => skipped.push(Skipped {
                schedule_id: id,
                reason: "it does not exist (any more)".to_owned(),
            }),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read the schedule `{id}`"));
            }
        }
    }
    let task_queue = match &destination.task_queue {
        Some(queue) => queue.clone(),
        None => args
            .task_queue
            .clone()
            .or_else(|| most_common_task_queue(&described))
            .context("no schedule to import, so there is no task queue to start a project with; name one with --task-queue")?,
    };
    // Temporal 1.32 keeps an action's search attributes as they were sent,
    // without their types where the sender named none: the namespace's
    // listing names them, read once when some action has any.
    let attribute_types = if described.iter().any(has_action_search_attributes) {
        store
            .search_attribute_types()
            .await
            .context("cannot list the namespace's search attributes")?
    } else {
        Default::default()
    };
    let target = Target {
        project: &destination.name,
        task_queue: &task_queue,
        folder: &args.out,
        attribute_types: &attribute_types,
    };
    let mut imported: Vec<Imported> = Vec::new();
    for schedule in &described {
        match import(&target, schedule) {
            Ok(file) => {
                if let Some(first) = imported.iter().find(|i| i.workflow == file.workflow) {
                    skipped.push(Skipped {
                        reason: format!(
                            "its workflow would be `{}`, as the one of `{}`",
                            file.workflow, first.schedule_id
                        ),
                        schedule_id: file.schedule_id,
                    });
                } else if let Some(existing) = destination.declared.get(&file.workflow) {
                    skipped.push(Skipped {
                        schedule_id: file.schedule_id,
                        reason: format!(
                            "the project declares workflow `{}` already, in {}",
                            file.workflow,
                            existing.display()
                        ),
                    });
                } else if args.dir.join(&file.file).exists() {
                    skipped.push(Skipped {
                        schedule_id: file.schedule_id,
                        reason: format!("{} exists already", file.file.display()),
                    });
                } else {
                    imported.push(file);
                }
            }
            Err(skip) => skipped.push(skip),
        }
    }
    skipped.sort_by(|a, b| a.schedule_id.cmp(&b.schedule_id));
    let created_project_file = !destination.exists && !imported.is_empty();
    write_files(
        args,
        &destination,
        &task_queue,
        &imported,
        created_project_file,
    )?;
    let mut report = ImportReport {
        project: destination.name.clone(),
        created_project_file,
        imported,
        skipped,
        adopt_plan: None,
    };
    let mut adopt_text = None;
    if args.adopt_plan && (destination.exists || created_project_file) {
        let (json, text) = adopt_plan(&store, &args.dir).await?;
        report.adopt_plan = Some(json);
        adopt_text = Some(text);
    }
    Ok((report, adopt_text))
}

/// Whether the workflows that `described` starts carry search attributes.
fn has_action_search_attributes(described: &Described) -> bool {
    use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
    matches!(
        described.schedule.action.as_ref().and_then(|a| a.action.as_ref()),
        Some(Action::StartWorkflow(start))
            if start.search_attributes.as_ref().is_some_and(|a| !a.indexed_fields.is_empty())
    )
}

/// The project in `args.dir`, or the one `--project` names when the folder
/// has none yet.
fn destination(args: &ImportArgs) -> anyhow::Result<Destination> {
    if args.dir.join(project::PROJECT_FILE).exists() {
        let loaded = project::load(&args.dir).map_err(|invalid| {
            for diagnostic in &invalid.diagnostics {
                errln!("{diagnostic}\n");
            }
            anyhow::anyhow!("the project in {} is invalid", args.dir.display())
        })?;
        let project = loaded.project;
        if let Some(name) = args.project.as_ref().filter(|n| **n != project.name()) {
            bail!(
                "--project {name} differs from the name in {}: {}",
                args.dir.join(project::PROJECT_FILE).display(),
                project.name()
            );
        }
        if args.task_queue.is_some() {
            bail!("--task-queue is for a new project; this one has its task queue in project.yaml");
        }
        return Ok(Destination {
            declared: project
                .workflows()
                .iter()
                .map(|w| (w.id.clone(), w.file.clone()))
                .collect(),
            name: project.name().to_owned(),
            task_queue: Some(project.task_queue().to_owned()),
            exists: true,
        });
    }
    let Some(name) = args.project.clone() else {
        bail!(
            "{} has no {}: name the new project with --project",
            args.dir.display(),
            project::PROJECT_FILE
        );
    };
    if !names::is_project_name(&name) {
        bail!(
            "`{name}` is not a project name: {}",
            names::PROJECT_NAME_RULE
        );
    }
    if let Some(problem) = args
        .task_queue
        .as_deref()
        .and_then(names::temporal_name_problem)
    {
        bail!("the task queue is refused: {problem}");
    }
    Ok(Destination {
        name,
        task_queue: None,
        declared: BTreeMap::new(),
        exists: false,
    })
}

/// The schedule ids to import, sorted: the listed ones, those a visibility
/// query finds, or those whose id starts with a prefix (the project's, by
/// default).
async fn selected(
    store: &TemporalStore,
    args: &ImportArgs,
    project: &str,
) -> anyhow::Result<Vec<String>> {
    let ids: BTreeSet<String> = if !args.ids.is_empty() {
        args.ids.iter().cloned().collect()
    } else if let Some(query) = &args.query {
        store
            .list_ids(query)
            .await
            .with_context(|| format!("cannot list the schedules matching `{query}`"))?
            .into_iter()
            .collect()
    } else {
        let prefix = args.prefix.clone().unwrap_or_else(|| format!("{project}."));
        if prefix.contains(['\'', '"', '\\']) {
            bail!(
                "the prefix `{prefix}` holds a quote or backslash, which no schedule id of a project holds"
            );
        }
        let query = format!("ScheduleId STARTS_WITH '{prefix}'");
        let listed = match store.list_ids(&query).await {
            // A server that cannot filter by id lists everything.
            Err(error) if error.code() == schedule_sync::Code::InvalidArgument => {
                store.list_ids("").await
            }
            other => other,
        }
        .context("cannot list the schedules")?;
        listed
            .into_iter()
            .filter(|id| id.starts_with(&prefix))
            .collect()
    };
    // The project's writer fence is schedule-sync's own record, no candidate
    // (named with --id, it is skipped with the reason).
    let fence = schedule_sync::fence::fence_id(project);
    Ok(ids
        .into_iter()
        .filter(|id| *id != fence || args.ids.contains(id))
        .collect())
}

/// The task queue most of the schedules start their workflows on (the
/// first by name on a tie): the new project's default, so that most files
/// need not name one.
fn most_common_task_queue(described: &[Described]) -> Option<String> {
    use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for schedule in described {
        if let Some(Action::StartWorkflow(start)) = schedule
            .schedule
            .action
            .as_ref()
            .and_then(|a| a.action.as_ref())
            && let Some(queue) = start.task_queue.as_ref().filter(|q| !q.name.is_empty())
        {
            *counts.entry(queue.name.as_str()).or_default() += 1;
        }
    }
    let most = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, count)| *count == most)
        .map(|(queue, _)| queue.to_owned())
}

/// Writes the project file (for a new project) and the workflow files,
/// none over an existing file; then loads the project to check that it
/// declares each of them. On any failure the files written are removed.
fn write_files(
    args: &ImportArgs,
    destination: &Destination,
    task_queue: &str,
    imported: &[Imported],
    create_project_file: bool,
) -> anyhow::Result<()> {
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        if create_project_file {
            std::fs::create_dir_all(&args.dir)
                .with_context(|| format!("cannot create {}", args.dir.display()))?;
            let path = args.dir.join(project::PROJECT_FILE);
            let text = format!(
                "# Made by schedule-sync import.\nname: {}\ntask_queue: {}\n",
                destination.name,
                serde_json::Value::from(task_queue)
            );
            write_new(&path, &text)?;
            written.push(path);
        }
        for file in imported {
            let path = args.dir.join(&file.file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            write_new(&path, &file.text)?;
            written.push(path);
        }
        if written.is_empty() {
            return Ok(());
        }
        let loaded = project::load(&args.dir).map_err(|invalid| {
            anyhow::anyhow!(
                "the project does not load with the imported files: {}",
                invalid.summary()
            )
        })?;
        let missing: Vec<String> = imported
            .iter()
            .filter(|file| {
                !loaded
                    .project
                    .workflows()
                    .iter()
                    .any(|w| w.id == file.workflow)
            })
            .map(|file| file.file.display().to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "the project's `workflows` globs do not match {} (write them elsewhere with --out)",
                missing.join(", ")
            );
        }
        Ok(())
    })();
    if result.is_err() {
        for path in written.iter().rev() {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What `apply --adopt` would do with the project as it now is, as `plan
/// --adopt` shows it.
async fn adopt_plan(
    store: &TemporalStore,
    dir: &Path,
) -> anyhow::Result<(serde_json::Value, String)> {
    use schedule_sync::reconcile::{ReconcileOptions, Report, preview};
    let loaded = project::load(dir).map_err(|invalid| anyhow::anyhow!("{invalid}"))?;
    let mut options = ReconcileOptions::default();
    options.plan.adopt = true;
    let preview = preview(store, &loaded.project, options).await?;
    let report = Report {
        plan: preview.plan,
        outcomes: Vec::new(),
        health: preview.health,
    };
    let changes: Changes = preview.changes;
    let fires = crate::report::next_fires(&loaded.project, &report);
    let text = crate::report::render_report(&report, &changes, &fires, false);
    let json = serde_json::json!({ "plan": report.plan, "changes": changes });
    Ok((json, text))
}

fn text(report: &ImportReport, adopt_text: Option<&str>, args: &ImportArgs) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if report.created_project_file {
        let _ = writeln!(
            out,
            "created {} for project {}",
            args.dir.join(project::PROJECT_FILE).display(),
            report.project
        );
    }
    for file in &report.imported {
        let _ = writeln!(
            out,
            "imported {} -> {}",
            file.schedule_id,
            args.dir.join(&file.file).display()
        );
        for note in &file.notes {
            let _ = writeln!(out, "         note: {note}");
        }
    }
    for skip in &report.skipped {
        let _ = writeln!(out, " skipped {}: {}", skip.schedule_id, skip.reason);
    }
    let _ = writeln!(
        out,
        "{} imported, {} skipped; nothing was written to Temporal",
        report.imported.len(),
        report.skipped.len()
    );
    if let Some(plan) = adopt_text {
        let _ = writeln!(
            out,
            "\nwhat `schedule-sync apply --adopt` would do:\n{plan}"
        );
    } else if !report.imported.is_empty() {
        let _ = writeln!(
            out,
            "next: `schedule-sync plan --adopt {0}`, then `schedule-sync apply --adopt {0}` to take them over",
            args.dir.display()
        );
    }
    out
}
