//! Argument parsing and the commands of the binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use schedule_sync::project::{self, Diagnostic};
use serde::Serialize;

use crate::args::{Format, TemporalArgs, connection_settings, duration, requests_per_second};
use crate::output::{self, Stream, errln, outln};
use crate::report::{Changes, next_fires, render_report};

/// Keeps Temporal Schedules in step with schedules declared in YAML workflow files.
#[derive(Parser)]
#[command(name = "schedule-sync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

/// Where Temporal is, and how a reconcile writes to it.
#[derive(clap::Args, Clone)]
struct ConnectionArgs {
    #[command(flatten)]
    temporal: TemporalArgs,
    /// The environment of project.yaml to act on: its overrides apply, and
    /// its namespace, address and profile are the connection's defaults.
    /// Required when project.yaml declares environments.
    #[arg(long = "env", env = "SCHEDULE_SYNC_ENV", value_name = "ENVIRONMENT")]
    environment: Option<String>,
    /// Take over schedules that sit on this project's ids without a marker.
    #[arg(long)]
    adopt: bool,
    /// Allow deleting more than half (or all) of the project's schedules.
    #[arg(long)]
    allow_mass_delete: bool,
    /// This writer's revision, e.g. a build or deploy number that grows with
    /// every deploy (rollbacks included). The newest writer of a project
    /// wins; others leave its schedules alone and report them superseded.
    /// Without one, `serve` ranks by its start time, and `plan`/`apply`
    /// below every writer that has one or is a running `serve`.
    #[arg(long, env = "SCHEDULE_SYNC_REVISION")]
    revision: Option<u64>,
    /// Write even when a newer writer holds the project (see --revision).
    #[arg(long)]
    force: bool,
    /// The most RPCs per second sent to Temporal (e.g. a little under the
    /// namespace's rate limit). Below it, the pace adapts: it slows down when
    /// Temporal throttles and speeds up while answers are fine. No ceiling
    /// when absent.
    #[arg(long, env = "SCHEDULE_SYNC_MAX_RPS", value_parser = requests_per_second)]
    max_rps: Option<f64>,
    /// Schedule writes in flight at once.
    #[arg(long, default_value_t = schedule_sync::reconcile::DEFAULT_CONCURRENCY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=512))]
    concurrency: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Checks the project without touching the network, as written and in
    /// every environment, with lints (DST gaps and overlaps, an end in the
    /// past, many schedules firing at one instant). Exit 0 when valid, 1
    /// when not.
    Validate {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Treat warnings as errors (exit 1 when there is any).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Shows what apply would do. Exit 0 nothing to do, 2 changes pending, 1 error.
    Plan {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format; markdown is made for a pull-request comment.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// The reference server: reconciles in the background, retries while
    /// Temporal is away, and serves /livez, /readyz, /healthz, /schedules and
    /// /metrics. SIGHUP reloads the projects; SIGTERM or SIGINT stop it (exit 0).
    Serve {
        /// The project folders: one reconciler each, all in one server.
        #[arg(default_value = ".", num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// Where to listen for HTTP.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Reconcile again this long after each success (e.g. 10m); off when absent.
        #[arg(long, value_parser = duration)]
        resync: Option<std::time::Duration>,
        /// The longest one reconcile attempt may take, connecting included.
        #[arg(long, value_parser = duration, default_value = "5m")]
        attempt_timeout: std::time::Duration,
        /// How long work in flight may go on after SIGTERM.
        #[arg(long, value_parser = duration, default_value = "10s")]
        shutdown_timeout: std::time::Duration,
        /// The interval of the slow retry once retrying fast has failed.
        #[arg(long, value_parser = duration, default_value = "5m")]
        slow_retry: std::time::Duration,
        /// Serve the probes without reconciling (for startup measurements).
        #[arg(long, hide = true)]
        no_reconciler: bool,
        /// The most HTTP connections open at once; more wait to be accepted.
        #[arg(long, default_value_t = 256)]
        max_connections: usize,
        /// Also export one series per schedule (its health, last and next
        /// action), labelled `schedule`: 7 series per schedule, so off by
        /// default; the counts by health are always exported.
        #[arg(long)]
        schedule_metrics: bool,
        /// How many schedules each reconcile describes (taking turns) for
        /// what only a Describe shows: missed catch-up windows, skipped
        /// runs, dropped buffered actions, running workflows. 0 reads only
        /// the listing.
        #[arg(long, default_value_t = schedule_sync::runtime::DEFAULT_HEALTH_DESCRIBES)]
        health_describes: usize,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// One reconcile. Exit 0 when converged, 1 otherwise.
    Apply {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Writes workflow files for schedules that Temporal already holds (made
    /// with the Temporal CLI, the UI or an SDK), so that `plan --adopt` shows
    /// no field to change. Never writes to Temporal. Exit 0 when every
    /// selected schedule was imported, 2 when some were skipped (each is
    /// named with the reason), 1 on an error (then no file is written).
    ///
    /// Schedule `<project>.<workflow>` becomes workflows/<workflow>.yaml.
    /// Without --id, --query or --prefix, the schedules whose ids start with
    /// `<project>.` are imported.
    Import(crate::import::ImportArgs),
    /// Shows each schedule of the project in one table, like `kubectl get
    /// cronjobs`: where it stands against the files (in sync, drift,
    /// missing, paused by operator, ...), how it fires (firing, late,
    /// skipping, paused, ended), its last and next action and its running
    /// workflows. Reads one listing; never writes. Exit 0, or 1 on an error.
    Status(crate::status::StatusArgs),
    /// Prints the JSON Schema of project.yaml or of a workflow file, for editors.
    ///
    /// `schedule-sync schema workflow > workflow.schema.json` writes a local copy.
    Schema {
        /// Which file the schema describes.
        #[arg(value_enum)]
        file: SchemaFile,
    },
    /// Prints a shell completion script, e.g.
    /// `schedule-sync completions bash > /etc/bash_completion.d/schedule-sync`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff), e.g. `schedule-sync man | man -l -`.
    Man,
}

/// The files that have a JSON Schema.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchemaFile {
    /// `project.yaml`.
    Project,
    /// A workflow file.
    Workflow,
}

/// The output of `plan`: for people, for machines, or for a pull request.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(Stream::Err.colour())
        .with_writer(output::Logs);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses the arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return parse_failed(&error),
    };
    init_logging(cli.log_format);
    match cli.command {
        Command::Validate {
            dir,
            format,
            deny_warnings,
        } => validate(&dir, format, deny_warnings),
        Command::Serve {
            dirs,
            listen,
            resync,
            attempt_timeout,
            shutdown_timeout,
            slow_retry,
            no_reconciler,
            max_connections,
            schedule_metrics,
            health_describes,
            connection,
        } => {
            let mut options = schedule_sync::runtime::Options::default();
            options.resync = resync;
            options.attempt_timeout = attempt_timeout;
            options.shutdown_timeout = shutdown_timeout;
            options.schedule_metrics = schedule_metrics;
            options.health_describes = health_describes;
            options.retry.slow_retry = slow_retry;
            options.reconcile.plan.adopt = connection.adopt;
            options.reconcile.plan.allow_mass_delete = connection.allow_mass_delete;
            options.reconcile.plan.force = connection.force;
            options.reconcile.concurrency = connection.concurrency;
            options.revision = connection.revision;
            options.environment = connection.environment.clone();
            options.max_rps = connection.max_rps;
            crate::serve::serve(crate::serve::ServeArgs {
                dirs,
                listen,
                overrides: connection.temporal.overrides(),
                options,
                no_reconciler,
                max_connections,
            })
        }
        Command::Plan {
            dir,
            format,
            connection,
        } => remote(&dir, format, &connection, false),
        Command::Apply {
            dir,
            format,
            connection,
        } => {
            let format = match format {
                Format::Text => PlanFormat::Text,
                Format::Json => PlanFormat::Json,
            };
            remote(&dir, format, &connection, true)
        }
        Command::Import(args) => crate::import::run(&args),
        Command::Status(args) => crate::status::run(&args),
        Command::Schema { file } => {
            // The committed files themselves, so the two can never differ.
            let text = match file {
                SchemaFile::Project => include_str!("../../../schema/project.schema.json"),
                SchemaFile::Workflow => include_str!("../../../schema/workflow.schema.json"),
            };
            print_bytes(text.as_bytes())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "schedule-sync", &mut script);
            print_bytes(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => print_bytes(&page),
                Err(error) => {
                    errln!("error: cannot render the manual page: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints clap's help, version or usage error, as `Parser::parse` would, but
/// through [`output::write`].
fn parse_failed(error: &clap::Error) -> ExitCode {
    let stream = if error.use_stderr() {
        Stream::Err
    } else {
        Stream::Out
    };
    let rendered = error.render();
    let text = if stream.colour() {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    output::write(stream, text.as_bytes());
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

/// Writes `bytes` to standard output: 0, also when the reader left early.
fn print_bytes(bytes: &[u8]) -> ExitCode {
    output::write(Stream::Out, bytes);
    ExitCode::SUCCESS
}

/// `plan` (`write` false) and `apply` (`write` true).
fn remote(
    dir: &std::path::Path,
    format: PlanFormat,
    args: &ConnectionArgs,
    write: bool,
) -> ExitCode {
    let options = project::LoadOptions::environment(args.environment.as_deref());
    let loaded = match project::load_with(dir, &options) {
        Ok(loaded) => loaded,
        Err(invalid) => {
            // A broken project never reaches Temporal.
            for diagnostic in &invalid.diagnostics {
                errln!("{diagnostic}\n");
            }
            errln!("the project is invalid: nothing was sent to Temporal");
            return ExitCode::FAILURE;
        }
    };
    if let Err(message) = project::select(&loaded.environments, args.environment.as_deref()) {
        errln!("error: {message}; nothing was sent to Temporal");
        return ExitCode::FAILURE;
    }
    let settings = match connection_settings(&loaded, &args.temporal) {
        Ok(settings) => settings,
        Err(error) => {
            errln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Which environment a plan or apply acts on, before anything else.
    let place = format!(
        "{} `{}` in namespace {} at {}",
        if write { "applying" } else { "planning" },
        loaded.project.name(),
        settings.namespace,
        settings.host_port()
    );
    let place = match &loaded.environment {
        Some(environment) => format!("environment {}: {place}", environment.name),
        None => place,
    };
    if format != PlanFormat::Markdown {
        errln!("{place}");
    }
    let heading = schedule_sync::plan::markdown::Heading::new(
        loaded.project.name(),
        loaded.environment.as_ref().map(|e| e.name.as_str()),
        &settings.namespace,
        &settings.host_port(),
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_remote(&loaded.project, settings, args, write)) {
        Ok(Remote {
            report,
            changes,
            rpcs,
            fence_left,
            pace,
        }) => {
            let text = match format {
                PlanFormat::Markdown => schedule_sync::plan::markdown::render(
                    &heading,
                    &report.plan,
                    &changes,
                    &next_fires(&loaded.project, &report),
                ),
                PlanFormat::Json => {
                    let mut json = serde_json::to_value(&report).unwrap_or_default();
                    // For `plan`, converged means nothing is left to do,
                    // as it means for `apply` once its steps are carried out.
                    json["converged"] =
                        (report.converged() && (write || report.plan.steps.is_empty())).into();
                    json["warnings"] = loaded
                        .warnings
                        .iter()
                        .map(|w| format!("{}: {}", w.file.display(), w.message))
                        .collect::<Vec<_>>()
                        .into();
                    if !write {
                        json["changes"] = serde_json::to_value(&changes).unwrap_or_default();
                    }
                    json["next_fire_times"] =
                        serde_json::to_value(next_fires(&loaded.project, &report))
                            .unwrap_or_default();
                    json["rpc_counts"] = serde_json::to_value(&rpcs).unwrap_or_default();
                    json["environment"] =
                        serde_json::to_value(&loaded.environment).unwrap_or_default();
                    json["namespace"] = heading.namespace.clone().into();
                    json["pace"] = serde_json::json!({
                        "requests_per_second": pace.rate,
                        "max_rps": pace.ceiling,
                        "throttled": pace.throttled,
                    });
                    if let Some(fence) = &fence_left {
                        json["writer_fence_left"] = fence.as_str().into();
                    }
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                }
                PlanFormat::Text => {
                    let fence = superseded_note(&report, args, write);
                    let calls: Vec<String> = rpcs
                        .iter()
                        .map(|(rpc, codes)| format!("{rpc} {}", codes.values().sum::<u64>()))
                        .collect();
                    let throttled = match (pace.throttled, pace.rate) {
                        (0, _) => String::new(),
                        (count, Some(rate)) => format!(
                            " ({count} throttled by Temporal; paced at {rate:.1} per second)"
                        ),
                        (count, None) => format!(" ({count} throttled by Temporal)"),
                    };
                    format!(
                        "{fence}{}{}{}\nRPCs: {}{throttled}",
                        render_report(
                            &report,
                            &changes,
                            &next_fires(&loaded.project, &report),
                            write
                        ),
                        deletion_warnings(&report, &loaded.warnings),
                        fence_left
                            .as_deref()
                            .map(fence_left_note)
                            .unwrap_or_default(),
                        calls.join(", ")
                    )
                }
            };
            outln!("{text}");
            // Changes that a newer writer's fence holds back are pending too.
            let pending = !report.plan.steps.is_empty() || report.plan.superseded_by().is_some();
            match (write, report.converged(), pending) {
                (true, true, _) => ExitCode::SUCCESS,
                (true, false, _) => ExitCode::FAILURE,
                (false, _, true) => ExitCode::from(2),
                (false, _, false) => ExitCode::SUCCESS,
            }
        }
        Err(error) => {
            errln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What `plan` or `apply` found and did.
struct Remote {
    report: schedule_sync::reconcile::Report,
    changes: Changes,
    rpcs: schedule_sync::store::RpcCounts,
    /// The writer fence of a project that owns no schedule any more.
    fence_left: Option<String>,
    /// The pace of the RPCs, and the throttled answers.
    pace: schedule_sync::store::PaceStatus,
}

async fn run_remote(
    project: &schedule_sync::project::Project,
    settings: schedule_sync::connection::Settings,
    args: &ConnectionArgs,
    write: bool,
) -> anyhow::Result<Remote> {
    use schedule_sync::connection::DEFAULT_CONNECT_TIMEOUT;
    use schedule_sync::reconcile::{ReconcileOptions, Report, preview, reconcile_with_progress};
    use schedule_sync::runtime::{Connector, TemporalConnector};

    // The same connect as `serve`: timeout, attribute check and its warning.
    let store = TemporalConnector::new(settings, DEFAULT_CONNECT_TIMEOUT)
        .with_pace(schedule_sync::store::Pace::new(args.max_rps))
        .connect()
        .await?;
    let mut options = ReconcileOptions::default();
    options.plan.adopt = args.adopt;
    options.plan.allow_mass_delete = args.allow_mass_delete;
    options.plan.force = args.force;
    // A one-off run without a revision ranks below every running server.
    options.plan.writer = args
        .revision
        .map(schedule_sync::fence::WriterKey::revision)
        .unwrap_or_default();
    options.concurrency = args.concurrency;
    let (report, changes) = if write {
        let bar = ProgressBar::default();
        let report = reconcile_with_progress(&store, project, options, &bar).await?;
        bar.0.finish_and_clear();
        (report, Changes::new())
    } else {
        let preview = preview(&store, project, options).await?;
        let report = Report {
            plan: preview.plan,
            outcomes: Vec::new(),
            health: preview.health,
        };
        (report, preview.changes)
    };
    let fence_left = fence_left(&store, project, &report, write).await;
    Ok(Remote {
        report,
        changes,
        rpcs: store.rpc_counts(),
        fence_left,
        pace: store.pace().status(),
    })
}

/// The project's writer fence, when the project declares no schedule and
/// owns none (any more, once `apply` is done): the fence is all that is
/// left of it. One DescribeSchedule, only then.
///
/// The fence is not removed: a writer older than the one that emptied the
/// project (an old replica still running, an old checkout) would find no
/// fence and create again what was removed. Whoever knows that no writer of
/// the project runs any more removes it by hand ([`fence_left_note`]).
async fn fence_left(
    store: &schedule_sync::store::TemporalStore,
    project: &schedule_sync::project::Project,
    report: &schedule_sync::reconcile::Report,
    write: bool,
) -> Option<String> {
    use schedule_sync::store::ScheduleStore;
    let empty = project.scheduled().next().is_none()
        && report.plan.untouched.is_empty()
        && if write {
            report.converged()
        } else {
            report.plan.steps.is_empty()
        };
    if !empty {
        return None;
    }
    let id = schedule_sync::fence::fence_id(project.name());
    match store.describe(&id).await {
        Ok(Some(fence)) if fence.observed.owner.as_deref() == Some(project.name()) => Some(id),
        _ => None,
    }
}

/// Why the writer fence `id` of an emptied project stays, and how to remove it.
fn fence_left_note(id: &str) -> String {
    format!(
        "\nnote: the project owns no schedule; its writer fence {id} stays, so that \
         an older writer still running (an old replica, an old checkout) cannot create \
         again what was removed. Once no writer of this project runs any more, remove \
         it with: temporal schedule delete --schedule-id '{id}'"
    )
}

/// A progress bar on standard error, drawn only when that is a terminal.
struct ProgressBar(indicatif::ProgressBar);

impl Default for ProgressBar {
    fn default() -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            crate::output::ProgressTerm::draw_target(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} schedules {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        ProgressBar(bar)
    }
}

impl schedule_sync::reconcile::Progress for ProgressBar {
    fn planned(&self, steps: usize) {
        self.0.set_length(steps as u64);
    }

    fn finished(&self, outcome: &schedule_sync::reconcile::StepOutcome) {
        if !outcome.succeeded() {
            self.0.set_message("(with errors)");
        }
        self.0.inc(1);
    }
}

/// Why nothing was written, when a newer writer holds the project.
fn superseded_note(
    report: &schedule_sync::reconcile::Report,
    args: &ConnectionArgs,
    write: bool,
) -> String {
    let Some(by) = report.plan.superseded_by() else {
        return String::new();
    };
    let ours = args
        .revision
        .map(schedule_sync::fence::WriterKey::revision)
        .unwrap_or_default();
    format!(
        "refused: a newer writer holds this project: {by}; this {} has {ours}. {} \
         Run it with a higher --revision, or with --force to write anyway \
         (a running newer writer will then put its own version back).\n",
        if write { "apply" } else { "plan" },
        if write {
            "Nothing it superseded was written."
        } else {
            "apply would write nothing it supersedes."
        }
    )
}

/// The project's warnings, shown next to the deletions they may cause: a
/// glob that matches no file drops every schedule it used to declare.
fn deletion_warnings(report: &schedule_sync::reconcile::Report, warnings: &[Diagnostic]) -> String {
    use schedule_sync::plan::{Step, Untouched};
    let deletes = report
        .plan
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Delete { .. }))
        .count()
        + report
            .plan
            .untouched
            .iter()
            .filter(|u| matches!(u, Untouched::HeldDeletion { .. }))
            .count();
    if deletes == 0 || warnings.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nnote: {deletes} deletion(s) above; the project loaded with these warnings, which may be why:"
    );
    for warning in warnings {
        out.push_str(&format!(
            "\n  {}: {}",
            warning.file.display(),
            warning.message
        ));
    }
    out
}

#[derive(Serialize)]
struct ValidateReport<'a> {
    valid: bool,
    project: Option<&'a str>,
    environments: &'a [String],
    workflows: usize,
    schedules: usize,
    errors: usize,
    warnings: usize,
    deny_warnings: bool,
    diagnostics: &'a [Diagnostic],
}

fn validate(dir: &std::path::Path, format: Format, deny_warnings: bool) -> ExitCode {
    let validation = project::validate(dir, Some(chrono::Utc::now()));
    let errors = validation
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .count();
    let warnings = validation.diagnostics.len() - errors;
    let valid = errors == 0 && !(deny_warnings && warnings > 0);
    let project = validation.project.as_ref();
    let report = ValidateReport {
        valid,
        project: project.map(|p| p.name.as_str()),
        environments: &validation.environments,
        workflows: project.map_or(0, |p| p.workflows),
        schedules: project.map_or(0, |p| p.schedules),
        errors,
        warnings,
        deny_warnings,
        diagnostics: &validation.diagnostics,
    };
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Text => output::write(Stream::Out, validate_text(&report).as_bytes()),
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn validate_text(report: &ValidateReport<'_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for diagnostic in report.diagnostics {
        let _ = writeln!(out, "{diagnostic}\n");
    }
    let environments = if report.environments.is_empty() {
        String::new()
    } else {
        format!(" (as written and in {})", report.environments.join(", "))
    };
    if report.valid {
        let _ = writeln!(
            out,
            "project `{}` is valid{environments}: {} workflow(s), {} schedule(s), {} warning(s)",
            report.project.unwrap_or_default(),
            report.workflows,
            report.schedules,
            report.warnings
        );
    } else if report.errors == 0 {
        let _ = writeln!(
            out,
            "the project is refused: {} warning(s), and --deny-warnings makes them errors",
            report.warnings
        );
    } else {
        let _ = writeln!(
            out,
            "the project is invalid{environments}: {} error(s), {} warning(s)",
            report.errors, report.warnings
        );
    }
    out
}
