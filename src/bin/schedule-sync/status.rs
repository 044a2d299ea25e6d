//! `schedule-sync status`: each schedule of a project, where it stands
//! against the files and how it fires, in one table (like `kubectl get
//! cronjobs`), from one listing: no write, no describe.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use schedule_sync::health::{Watch, rfc3339};
use schedule_sync::plan::{Plan, Step, Untouched};
use schedule_sync::project::{self, Project};
use schedule_sync::reconcile::{ReconcileOptions, survey};
use schedule_sync::store::TemporalStore;
use serde::Serialize;

use crate::args::{Format, TemporalArgs};
use crate::output::{Stream, errln, outln};

/// The arguments of `status`.
#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Output format; with --watch, JSON is one document per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Read and print again every --interval, until interrupted.
    #[arg(long, short)]
    watch: bool,
    /// How often --watch reads again.
    #[arg(long, value_parser = crate::args::duration, default_value = "5s")]
    interval: Duration,
    /// The environment of project.yaml to look at (its overrides apply, and
    /// its connection settings are the defaults).
    #[arg(long = "env", env = "SCHEDULE_SYNC_ENV", value_name = "ENVIRONMENT")]
    environment: Option<String>,
    #[command(flatten)]
    temporal: TemporalArgs,
    /// The most RPCs per second sent to Temporal; no ceiling when absent.
    #[arg(long, env = "SCHEDULE_SYNC_MAX_RPS", value_parser = crate::args::requests_per_second)]
    max_rps: Option<f64>,
}

/// Where a schedule stands against the project's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum State {
    /// Temporal holds what the files declare.
    InSync,
    /// Temporal holds something else: `apply` would update it.
    Drift,
    /// Temporal does not hold it: `apply` would create it.
    Missing,
    /// Paused by an operator; `apply` keeps the pause.
    PausedByOperator,
    /// Its id is taken by a schedule that is not the project's.
    Conflict,
    /// A newer writer holds the project.
    Superseded,
    /// Its end has passed before it was ever created.
    Ended,
    /// The project no longer declares it: `apply` would delete it (or holds
    /// the deletion back).
    Undeclared,
}

impl State {
    fn text(self) -> &'static str {
        match self {
            State::InSync => "in sync",
            State::Drift => "drift",
            State::Missing => "missing",
            State::PausedByOperator => "paused by operator",
            State::Conflict => "conflict",
            State::Superseded => "superseded",
            State::Ended => "ended",
            State::Undeclared => "undeclared",
        }
    }
}

/// One line of the table.
#[derive(Debug, Serialize)]
struct Row {
    schedule: String,
    workflow: Option<String>,
    state: State,
    #[serde(flatten)]
    watch: Option<Watch>,
}

/// Runs `status`.
pub(crate) fn run(args: &StatusArgs) -> ExitCode {
    let options = project::LoadOptions::environment(args.environment.as_deref());
    let loaded = match project::load_with(&args.dir, &options) {
        Ok(loaded) => loaded,
        Err(invalid) => {
            for diagnostic in &invalid.diagnostics {
                errln!("{diagnostic}\n");
            }
            errln!("the project is invalid");
            return ExitCode::FAILURE;
        }
    };
    if let Err(message) = project::select(&loaded.environments, args.environment.as_deref()) {
        errln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let settings = match crate::args::connection_settings(&loaded, &args.temporal) {
        Ok(settings) => settings,
        Err(error) => {
            errln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            errln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        use schedule_sync::connection::DEFAULT_CONNECT_TIMEOUT;
        use schedule_sync::runtime::{Connector, TemporalConnector};
        // The same connect and pace as `plan` and `apply`.
        let store = match TemporalConnector::new(settings, DEFAULT_CONNECT_TIMEOUT)
            .with_pace(schedule_sync::store::Pace::new(args.max_rps))
            .connect()
            .await
        {
            Ok(store) => store,
            Err(error) => {
                errln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        loop {
            match rows(&store, &loaded.project).await {
                Ok(rows) => print(&rows, args),
                Err(error) if args.watch => errln!("error: {error}"),
                Err(error) => {
                    errln!("error: {error}");
                    return ExitCode::FAILURE;
                }
            }
            if !args.watch || Stream::Out.reader_left() {
                return ExitCode::SUCCESS;
            }
            tokio::time::sleep(args.interval).await;
        }
    })
}

/// One row per declared schedule, in the project's order, then one per
/// schedule of the project that it no longer declares.
async fn rows(store: &TemporalStore, project: &Project) -> anyhow::Result<Vec<Row>> {
    let (plan, health) = survey(store, project, ReconcileOptions::default()).await?;
    let states = states(&plan);
    let mut rows: Vec<Row> = schedule_sync::spec::desired(project)
        .into_iter()
        .map(|want| Row {
            state: states
                .get(want.schedule_id.as_str())
                .copied()
                .unwrap_or(State::InSync),
            watch: health.get(&want.schedule_id).copied(),
            workflow: Some(want.workflow),
            schedule: want.schedule_id,
        })
        .collect();
    rows.extend(
        states
            .iter()
            .filter(|(_, state)| **state == State::Undeclared)
            .map(|(id, state)| Row {
                schedule: (*id).to_owned(),
                workflow: None,
                state: *state,
                watch: None,
            }),
    );
    Ok(rows)
}

/// Each schedule the plan names, with where it stands.
fn states(plan: &Plan) -> std::collections::BTreeMap<&str, State> {
    let steps = plan.steps.iter().map(|step| {
        let state = match step {
            Step::Create { .. } => State::Missing,
            Step::Update { .. } | Step::Pause { .. } | Step::Unpause { .. } => State::Drift,
            Step::Delete { .. } => State::Undeclared,
        };
        (step.schedule_id(), state)
    });
    let untouched = plan.untouched.iter().map(|untouched| match untouched {
        Untouched::Unchanged { schedule_id } => (schedule_id.as_str(), State::InSync),
        Untouched::PausedByOperator { schedule_id } => {
            (schedule_id.as_str(), State::PausedByOperator)
        }
        Untouched::Conflict { schedule_id, .. } => (schedule_id.as_str(), State::Conflict),
        Untouched::Superseded { schedule_id, .. } => (schedule_id.as_str(), State::Superseded),
        Untouched::Ended { schedule_id } => (schedule_id.as_str(), State::Ended),
        Untouched::HeldDeletion { schedule_id, .. } => (schedule_id.as_str(), State::Undeclared),
    });
    steps.chain(untouched).collect()
}

fn print(rows: &[Row], args: &StatusArgs) {
    match args.format {
        Format::Json if args.watch => {
            outln!("{}", serde_json::to_string(rows).unwrap_or_default());
        }
        Format::Json => {
            outln!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
        }
        Format::Text => {
            if args.watch && Stream::Out.is_terminal() {
                // Redraw in place, as `watch` does.
                crate::output::write(Stream::Out, b"\x1b[H\x1b[2J");
            }
            outln!("{}", table(rows, SystemTime::now()));
        }
    }
}

/// The rows as a table with aligned columns, times shown relative to `now`.
fn table(rows: &[Row], now: SystemTime) -> String {
    let header = [
        "SCHEDULE",
        "STATE",
        "HEALTH",
        "LAST ACTION",
        "NEXT ACTION",
        "RUNNING",
    ];
    let mut lines: Vec<[String; 6]> = vec![header.map(str::to_owned)];
    for row in rows {
        let watch = row.watch.as_ref();
        lines.push([
            row.schedule.clone(),
            row.state.text().to_owned(),
            watch.map_or("-".to_owned(), |w| w.health.to_string()),
            watch
                .and_then(|w| w.last_action)
                .map_or("-".to_owned(), |t| relative(t, now)),
            watch
                .and_then(|w| w.next_action)
                .map_or("-".to_owned(), |t| relative(t, now)),
            watch.map_or("-".to_owned(), |w| w.running.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    lines
        .iter()
        .map(|line| {
            let cells: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("   ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `time` as people read it next to `now`: `12s ago`, `in 3m`, with the
/// absolute time for anything more than a day away.
fn relative(time: SystemTime, now: SystemTime) -> String {
    let (span, past) = match now.duration_since(time) {
        Ok(ago) => (ago, true),
        Err(ahead) => (ahead.duration(), false),
    };
    if span > Duration::from_secs(24 * 3600) {
        return rfc3339(time);
    }
    let whole = Duration::from_secs(span.as_secs());
    let text = if whole.is_zero() {
        "0s".to_owned()
    } else {
        schedule_sync::duration::format_duration(whole)
    };
    if past {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use schedule_sync::health::Health;

    fn watch(health: Health, last: Option<SystemTime>, next: Option<SystemTime>) -> Watch {
        Watch {
            health,
            last_action: last,
            next_action: next,
            running: 1,
            missed: None,
            last_scheduled: last,
            last_running: false,
        }
    }

    #[test]
    fn the_table_aligns_its_columns_and_shows_times_relative_to_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let rows = vec![
            Row {
                schedule: "billing.nightly".into(),
                workflow: Some("nightly".into()),
                state: State::InSync,
                watch: Some(watch(
                    Health::Firing,
                    Some(now - Duration::from_secs(90)),
                    Some(now + Duration::from_secs(3600)),
                )),
            },
            Row {
                schedule: "billing.new".into(),
                workflow: Some("new".into()),
                state: State::Missing,
                watch: None,
            },
        ];
        assert_eq!(
            table(&rows, now),
            "SCHEDULE          STATE     HEALTH   LAST ACTION   NEXT ACTION   RUNNING\n\
             billing.nightly   in sync   firing   1m30s ago     in 1h         1\n\
             billing.new       missing   -        -             -             -"
        );
    }

    #[test]
    fn times_more_than_a_day_away_are_shown_in_full() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let later = now + Duration::from_secs(2 * 24 * 3600);
        assert_eq!(relative(later, now), "2027-01-17T08:00:00Z");
        assert_eq!(relative(now, now), "0s ago");
    }
}
