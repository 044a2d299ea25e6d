//! The corpus of good and bad projects under `tests/corpus/`.
//!
//! Each bad project has an `expected.txt` with one line per error,
//! `file:line:column: part of the message`, and must produce exactly those
//! errors. Each good project must load; its `expected.txt` lists facts such as
//! `workflows: 3` and `warning: file:line:column: part of the message`.
//!
//! Projects are checked as `validate` checks them: as written and in every
//! environment, with the lints as of [`NOW`], a fixed time, so that DST
//! changes and ended schedules fall on known dates.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use schedule_sync::project::{self, Diagnostic, Validation};

/// The time the lints are run as of.
const NOW: &str = "2026-12-01T00:00:00Z";

fn validate(case: &Path) -> Validation {
    let now = DateTime::parse_from_rfc3339(NOW)
        .expect("a timestamp")
        .with_timezone(&Utc);
    project::validate(case, Some(now))
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("the corpus exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn expected(case: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("expected.txt"))
        .unwrap_or_else(|e| panic!("{}: no expected.txt: {e}", case.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `diagnostic` is the one `line` describes: `file:line:column: text`.
fn matches(diagnostic: &Diagnostic, line: &str) -> bool {
    let mut parts = line.splitn(4, ':');
    let (Some(file), Some(l), Some(c), Some(text)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("malformed expectation {line:?}");
    };
    diagnostic.file == Path::new(file)
        && diagnostic.line.to_string() == l
        && diagnostic.column.to_string() == c
        && diagnostic.message.contains(text.trim())
}

fn assert_same(case: &Path, found: &[&Diagnostic], expected: &[&str]) {
    let shown: Vec<String> = found
        .iter()
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
    assert_eq!(
        found.len(),
        expected.len(),
        "{}: found {shown:#?}",
        case.display()
    );
    for line in expected {
        assert!(
            found.iter().any(|d| matches(d, line)),
            "{}: nothing matches {line:?} in {shown:#?}",
            case.display()
        );
    }
}

#[test]
fn the_corpus_is_large_enough() {
    assert!(
        cases("bad").len() >= 40,
        "{} bad projects",
        cases("bad").len()
    );
    assert!(
        cases("good").len() >= 15,
        "{} good projects",
        cases("good").len()
    );
}

#[test]
fn every_bad_project_reports_exactly_its_errors() {
    for case in cases("bad") {
        let validation = validate(&case);
        assert!(
            !validation.is_valid(),
            "{} loaded, but it is invalid",
            case.display()
        );
        let errors: Vec<&Diagnostic> = validation
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect();
        let lines = expected(&case);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_same(&case, &errors, &lines);
        for error in &errors {
            assert!(
                error.expected.is_some(),
                "{}: {error} says nothing of what was expected",
                case.display()
            );
        }
    }
}

#[test]
fn every_good_project_loads_with_the_expected_facts() {
    for case in cases("good") {
        let validation = validate(&case);
        assert!(
            validation.is_valid(),
            "{}: {:#?}",
            case.display(),
            validation.diagnostics
        );
        let counted = validation.project.expect("a valid project is counted");
        // The typed project, for the facts that its counts do not tell.
        let loaded = project::load(&case).expect("a valid project loads");
        assert_eq!(counted.name, loaded.project.name(), "{}", case.display());
        let lines = expected(&case);
        let mut warnings = Vec::new();
        for line in &lines {
            let (key, value) = line.split_once(": ").expect("key: value");
            let project = &loaded.project;
            let first_schedule = project.scheduled().next().map(|(_, s)| s);
            match key {
                "workflows" => {
                    assert_eq!(counted.workflows.to_string(), value, "{}", case.display())
                }
                "schedules" => {
                    assert_eq!(counted.schedules.to_string(), value, "{}", case.display())
                }
                "timezone" => assert_eq!(
                    first_schedule.unwrap().timezone,
                    value,
                    "{}",
                    case.display()
                ),
                "task_queue" => {
                    assert_eq!(
                        project.workflows()[0].task_queue,
                        value,
                        "{}",
                        case.display()
                    )
                }
                "warning" => warnings.push(value),
                other => panic!("{}: unknown expectation {other}", case.display()),
            }
        }
        let found: Vec<&Diagnostic> = validation.diagnostics.iter().collect();
        assert_same(&case, &found, &warnings);
    }
}

#[test]
fn the_start_options_example_is_valid_and_uses_every_option() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/reports");
    let loaded = project::load(&dir).expect("the example is valid");
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let (_, schedule) = loaded.project.scheduled().next().expect("a schedule");
    let start = &schedule.start;
    assert_eq!(start.workflow_id.as_deref(), Some("daily-billing-report"));
    assert_eq!(start.args.as_ref().map(Vec::len), Some(2));
    assert!(start.execution_timeout.is_some() && start.run_timeout.is_some());
    assert!(start.task_timeout.is_some() && start.retry_policy.is_some());
    assert_eq!(start.memo.len(), 2);
    assert_eq!(start.search_attributes.len(), 3);
    assert!(start.summary.is_some() && start.details.is_some());
    assert!(start.priority.is_some());
}

#[test]
fn the_example_project_is_valid_and_complete() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let loaded = project::load(&dir).expect("the example is valid");
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let project = loaded.project;
    assert_eq!(project.name(), "billing");
    let ids: Vec<&str> = project.workflows().iter().map(|w| w.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "dunning",
            "invoice-sweep",
            "nightly-report",
            "quarter-close",
            "refund"
        ]
    );
    let report = &project.workflows()[2];
    assert_eq!(report.task_queue, "reports");
    let schedule = report.schedule.as_ref().unwrap();
    assert_eq!(
        schedule.input.as_ref().map(|input| input.value()),
        Some(serde_json::json!({"region": "eu", "formats": ["pdf", "csv"]}))
    );
    let sweep = project.workflows()[1].schedule.as_ref().unwrap();
    assert_eq!(sweep.timing.every.len(), 1);
    assert!(sweep.timing.cron.is_empty() && sweep.timing.calendars.is_empty());
    assert_eq!(project.workflows()[1].task_queue, "billing-workers");
    assert!(!project.workflows()[0].schedule.as_ref().unwrap().enabled);
}
