//! Argument parsing and the commands of the binary.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use schedule_sync::project::{self, Diagnostic};
use serde::Serialize;

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

#[derive(Subcommand)]
enum Command {
    /// Checks the project without touching the network. Exit 0 when valid, 1 when not.
    Validate {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
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
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses the arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Validate { dir, format } => validate(&dir, format),
    }
}

#[derive(Serialize)]
struct ValidateReport<'a> {
    valid: bool,
    project: Option<&'a str>,
    workflows: usize,
    schedules: usize,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
}

fn validate(dir: &std::path::Path, format: Format) -> ExitCode {
    let result = project::load(dir);
    let (report, code) = match &result {
        Ok(loaded) => (
            ValidateReport {
                valid: true,
                project: Some(&loaded.project.name),
                workflows: loaded.project.workflows.len(),
                schedules: loaded.project.scheduled().count(),
                errors: 0,
                warnings: loaded.warnings.len(),
                diagnostics: &loaded.warnings,
            },
            ExitCode::SUCCESS,
        ),
        Err(invalid) => (
            ValidateReport {
                valid: false,
                project: None,
                workflows: 0,
                schedules: 0,
                errors: invalid.error_count(),
                warnings: invalid.diagnostics.len() - invalid.error_count(),
                diagnostics: &invalid.diagnostics,
            },
            ExitCode::FAILURE,
        ),
    };
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        Format::Text => write_text(&mut out, &report),
    };
    if written.is_err() {
        return ExitCode::FAILURE;
    }
    code
}

fn write_text(out: &mut impl Write, report: &ValidateReport<'_>) -> std::io::Result<()> {
    for diagnostic in report.diagnostics {
        writeln!(out, "{diagnostic}\n")?;
    }
    if report.valid {
        writeln!(
            out,
            "project `{}` is valid: {} workflow(s), {} schedule(s), {} warning(s)",
            report.project.unwrap_or_default(),
            report.workflows,
            report.schedules,
            report.warnings
        )
    } else {
        writeln!(
            out,
            "the project is invalid: {} error(s), {} warning(s)",
            report.errors, report.warnings
        )
    }
}
