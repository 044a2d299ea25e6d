//! The JSON Schemas under `schema/`, which editors use to check project files
//! as they are typed, against the loader, which stays the authority.
//!
//! Every good project of the corpus and the example validates; each bad
//! project that a schema can catch fails on the file that holds the mistake,
//! at the place it is; the bad projects that only the loader can refuse are
//! listed with the reason, and the schema accepts them, so the list of what a
//! schema cannot express stays true. The schemas' patterns are held against
//! the loader's own functions on edge cases, their key lists against the
//! loader's, and `schedule-sync schema` prints the committed files.

use std::path::{Path, PathBuf};
use std::process::Command;

use schedule_sync::duration::parse_duration;
use schedule_sync::project::action::{
    ACTION_KEYS, AttributeType, PRIORITY_KEYS, RETRY_POLICY_KEYS,
};
use schedule_sync::project::names::{is_project_name, is_workflow_id, temporal_name_problem};
use schedule_sync::project::node::WORKFLOW_KEYS;
use schedule_sync::project::{self, DEFAULT_WORKFLOWS_GLOB, OverlapPolicy, SCHEDULE_KEYS};
use serde_json::{Value, json};

const PROJECT_SCHEMA: &str = "schema/project.schema.json";
const WORKFLOW_SCHEMA: &str = "schema/workflow.schema.json";

/// The bad projects a schema catches: the case, the file that must fail, and
/// the JSON pointers of the values (or, for a missing or unknown key, of the
/// mapping) that the schema must flag.
#[rustfmt::skip]
const CAUGHT: &[(&str, &str, &[&str])] = &[
    ("cron-empty-list", "workflows/a.yaml", &["/schedule/cron"]),
    ("cron-number", "workflows/a.yaml", &["/schedule/cron"]),
    ("enabled-yes", "workflows/a.yaml", &["/schedule/enabled"]),
    ("env-misspelt-key", "project.yaml", &["/environments/staging"]),
    ("env-missing-namespace", "project.yaml", &["/environments/staging"]),
    ("env-override-id", "project.yaml", &["/environments/staging/overrides/a"]),
    ("errors-in-several-files", "workflows/b.yaml", &["/schedule/every"]),
    ("every-without-unit", "workflows/a.yaml", &["/schedule/every"]),
    ("jitter-fraction", "workflows/a.yaml", &["/schedule/jitter"]),
    ("jitter-negative", "workflows/a.yaml", &["/schedule/jitter"]),
    ("many-problems-at-once", "workflows/a.yaml", &["/schedule/jitter", "/schedule/overlap_policy", "/schedule"]),
    ("offset-with-cron", "workflows/a.yaml", &["/schedule"]),
    ("overlap-unknown", "workflows/a.yaml", &["/schedule/overlap_policy"]),
    ("pause-on-failure-string", "workflows/a.yaml", &["/schedule/pause_on_failure"]),
    ("project-bad-name", "project.yaml", &["/name"]),
    ("project-blank-task-queue", "project.yaml", &["/task_queue"]),
    ("project-glob-escapes", "project.yaml", &["/workflows"]),
    ("project-missing-name", "project.yaml", &[""]),
    ("project-missing-task-queue", "project.yaml", &[""]),
    ("project-name-number", "project.yaml", &["/name"]),
    ("project-name-with-slash", "project.yaml", &["/name"]),
    ("project-not-a-mapping", "project.yaml", &[""]),
    ("project-unknown-key", "project.yaml", &[""]),
    ("project-workflows-empty", "project.yaml", &["/workflows"]),
    ("schedule-misspelt-key", "workflows/a.yaml", &["/schedule"]),
    ("schedule-without-timing", "workflows/a.yaml", &["/schedule"]),
    ("calendar-unknown-key", "workflows/a.yaml", &["/schedule/calendar"]),
    ("remaining-actions-zero", "workflows/a.yaml", &["/schedule/remaining_actions"]),
    ("remaining-actions-text", "workflows/a.yaml", &["/schedule/remaining_actions"]),
    ("schedule-id-charset", "workflows/a.yaml", &["/schedule/id"]),
    ("schedule-not-a-mapping", "workflows/a.yaml", &["/schedule"]),
    ("start-at-not-a-date", "workflows/a.yaml", &["/schedule/start_at"]),
    ("workflow-bad-id", "workflows/a.yaml", &["/id"]),
    ("workflow-empty", "workflows/a.yaml", &[""]),
    ("workflow-id-with-slash", "workflows/a.yaml", &["/id"]),
    ("workflow-list", "workflows/a.yaml", &[""]),
    ("workflow-missing-id", "workflows/a.yaml", &[""]),
    ("workflow-task-queue-number", "workflows/a.yaml", &["/task_queue"]),
    ("workflow-type-padded", "workflows/a.yaml", &["/type"]),
    ("retry-coefficient-below-one", "workflows/a.yaml", &["/schedule/retry_policy/backoff_coefficient"]),
    ("retry-unknown-key", "workflows/a.yaml", &["/schedule/retry_policy"]),
    ("search-attribute-value-wrong-type", "workflows/a.yaml", &["/schedule/search_attributes/Count"]),
    ("search-attribute-unknown-type", "workflows/a.yaml", &["/schedule/search_attributes/CustomerId/type"]),
    ("search-attribute-bad-datetime", "workflows/a.yaml", &["/schedule/search_attributes/Due"]),
    ("input-and-args", "workflows/a.yaml", &["/schedule"]),
    ("memo-not-a-mapping", "workflows/a.yaml", &["/schedule/memo"]),
    ("priority-key-zero", "workflows/a.yaml", &["/schedule/priority/priority_key"]),
    ("summary-number", "workflows/a.yaml", &["/schedule/summary"]),
];

/// The bad projects that only the loader refuses, and why. Those whose files
/// read as JSON must pass the schema.
#[rustfmt::skip]
const BEYOND: &[(&str, &str)] = &[
    ("calendar-duplicate-entry", "entries compared by meaning"),
    ("calendar-hour-out-of-range", "each calendar field's bounds"),
    ("catchup-too-short", "a duration's lower bound (10s)"),
    ("cron-bad-month-name", "cron syntax"),
    ("cron-bad-zone-prefix", "IANA zone names"),
    ("cron-never-fires", "days that no month has"),
    ("cron-conflicting-zones", "agreement of CRON_TZ and timezone"),
    ("cron-every-phase-too-long", "cron syntax"),
    ("cron-four-fields", "cron syntax"),
    ("cron-hour-out-of-range", "cron syntax"),
    ("cron-list-two-bad", "cron syntax"),
    ("cron-question-mark", "cron syntax"),
    ("cron-unknown-macro", "cron syntax"),
    ("duplicate-ids", "uniqueness across files"),
    ("end-before-start", "order of two timestamps"),
    ("env-override-bad-value", "values checked once merged into another file"),
    ("env-override-bad-cron", "values checked once merged into another file"),
    ("env-same-namespace", "comparison of two environments"),
    ("env-unknown-workflow", "ids declared in other files"),
    ("every-list-duplicate", "intervals compared by meaning"),
    ("every-list-offset-too-long", "comparison of two durations"),
    ("every-list-zero", "a duration's lower bound (1s)"),
    ("every-too-short", "a duration's lower bound (1s)"),
    ("exclude-bad-cron", "cron syntax"),
    ("exclude-interval", "cron syntax"),
    ("offset-not-shorter", "comparison of two durations"),
    ("project-glob-malformed", "glob syntax"),
    ("schedule-id-shared", "uniqueness across files"),
    ("schedule-id-with-project-prefix", "the project's name, in another file"),
    ("timezone-unknown", "IANA zone names"),
    ("timeout-zero", "a duration's lower bound (above 0s)"),
    ("retry-maximum-below-initial", "comparison of two durations"),
    ("fairness-key-too-long", "a length in bytes (64)"),
];

/// The bad projects that do not read as JSON at all: the parser refuses them
/// before any schema could look.
#[rustfmt::skip]
const UNREADABLE: &[(&str, &str)] = &[
    ("alias-bomb", "alias expansion is bounded"),
    ("duplicate-keys", "duplicate keys"),
    ("input-complex-key", "a mapping key that is a list"),
    ("missing-project-file", "no file"),
    ("not-utf8", "not UTF-8"),
    ("project-invalid-yaml", "malformed YAML"),
    ("tab-indentation", "malformed YAML"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).expect("the schema exists");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn validator(path: &str) -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema(path))
        .unwrap_or_else(|e| panic!("{path} does not compile: {e}"))
}

/// Reads a YAML file as the loader does (YAML 1.2 booleans, duplicate keys
/// refused, an empty file is null), into JSON.
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: unreadable: {e}", path.display()));
    if text.trim().is_empty() {
        return Value::Null;
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
    };
    serde_saphyr::from_str_with_options(&text, options)
        .unwrap_or_else(|e| panic!("{}: not readable as JSON: {e}", path.display()))
}

/// Each error as `pointer: message`.
fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The validator for a file of a project: `project.yaml` or a workflow file.
fn for_file<'v>(
    file: &Path,
    project: &'v jsonschema::Validator,
    workflow: &'v jsonschema::Validator,
) -> &'v jsonschema::Validator {
    if file == Path::new(project::PROJECT_FILE) {
        project
    } else {
        workflow
    }
}

fn cases(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("tests/corpus").join(kind))
        .expect("the corpus exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The YAML files under `dir`, relative to it.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable") {
            let path = entry.expect("readable").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path.strip_prefix(base).unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_schemas_are_valid_draft_2020_12() {
    for path in [PROJECT_SCHEMA, WORKFLOW_SCHEMA] {
        let schema = schema(path);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{path}"
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{path} does not follow its meta-schema: {e}");
        }
    }
}

#[test]
fn every_good_project_and_the_example_validate() {
    let (project, workflow) = (validator(PROJECT_SCHEMA), validator(WORKFLOW_SCHEMA));
    let mut dirs: Vec<PathBuf> = cases("good")
        .iter()
        .map(|c| root().join("tests/corpus/good").join(c))
        .collect();
    dirs.push(root().join("examples/billing"));
    let mut problems = Vec::new();
    let mut checked = 0;
    for dir in dirs {
        // Exactly the files the loader reads.
        let loaded = project::load(&dir)
            .unwrap_or_else(|e| panic!("{}: {:#?}", dir.display(), e.diagnostics));
        let files = std::iter::once(PathBuf::from(project::PROJECT_FILE))
            .chain(loaded.project.workflows().iter().map(|w| w.file.clone()));
        for file in files {
            let value = yaml(&dir.join(&file));
            for error in errors(for_file(&file, &project, &workflow), &value) {
                problems.push(format!("{}: {error}", dir.join(&file).display()));
            }
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked >= 40, "only {checked} files checked");
}

#[test]
fn the_bad_projects_a_schema_can_catch_fail_where_the_mistake_is() {
    let (project, workflow) = (validator(PROJECT_SCHEMA), validator(WORKFLOW_SCHEMA));
    for (case, file, pointers) in CAUGHT {
        let path = root().join("tests/corpus/bad").join(case).join(file);
        let found = errors(for_file(Path::new(file), &project, &workflow), &yaml(&path));
        assert!(
            !found.is_empty(),
            "{}: the schema accepts it",
            path.display()
        );
        for pointer in *pointers {
            assert!(
                found.iter().any(|e| e.starts_with(&format!("{pointer}: "))),
                "{}: nothing flagged at {pointer:?}: {found:#?}",
                path.display()
            );
        }
    }
}

#[test]
fn the_bad_projects_beyond_a_schema_pass_it() {
    let (project, workflow) = (validator(PROJECT_SCHEMA), validator(WORKFLOW_SCHEMA));
    for (case, _why) in BEYOND {
        let dir = root().join("tests/corpus/bad").join(case);
        let files = yaml_files(&dir);
        assert!(!files.is_empty(), "{}: no files", dir.display());
        for file in files {
            let found = errors(
                for_file(&file, &project, &workflow),
                &yaml(&dir.join(&file)),
            );
            assert!(
                found.is_empty(),
                "{}: the schema catches it now; move it to CAUGHT: {found:#?}",
                dir.join(&file).display()
            );
        }
    }
}

#[test]
fn every_bad_project_is_classified() {
    let mut listed: Vec<&str> = CAUGHT
        .iter()
        .map(|(case, _, _)| *case)
        .chain(BEYOND.iter().map(|(case, _)| *case))
        .chain(UNREADABLE.iter().map(|(case, _)| *case))
        .collect();
    listed.sort_unstable();
    let corpus = cases("bad");
    assert_eq!(
        listed, corpus,
        "each bad project of tests/corpus/bad goes in exactly one of CAUGHT, BEYOND and UNREADABLE"
    );
}

/// Whether the workflow schema accepts a schedule with `key: value` next to a cron.
fn schedule_accepts(workflow: &jsonschema::Validator, key: &str, value: &str) -> bool {
    let mut schedule = json!({"cron": "@daily"});
    schedule[key] = json!(value);
    workflow.is_valid(&json!({"id": "a", "schedule": schedule}))
}

#[test]
fn the_duration_pattern_is_the_loaders() {
    let workflow = validator(WORKFLOW_SCHEMA);
    let samples = [
        "0s",
        "30s",
        "250ms",
        "2d",
        "007s",
        "1h30m",
        "1h 30m 5s",
        " 5m ",
        "\t10s\n",
        "5m\u{a0}5s\u{3000}",
        "1s\u{85}",
        "",
        " ",
        "30",
        "1h30",
        "5mins",
        "1w",
        "5us",
        "5S",
        "5 m",
        "5m s",
        "-5s",
        "+5s",
        "1.5h",
        "h",
        "5µs",
        "٣s",
        "5s\u{feff}",
    ];
    for sample in samples {
        assert_eq!(
            schedule_accepts(&workflow, "jitter", sample),
            parse_duration(sample).is_ok(),
            "{sample:?}"
        );
    }
    // Beyond the pattern: a part or a total too large for the loader.
    for too_long in ["4294967296s", "99999999999999999999s"] {
        assert!(parse_duration(too_long).is_err());
        assert!(schedule_accepts(&workflow, "jitter", too_long));
    }
}

#[test]
fn the_timestamp_pattern_accepts_all_the_loader_does() {
    let workflow = validator(WORKFLOW_SCHEMA);
    let parses = |text: &str| chrono::DateTime::parse_from_rfc3339(text).is_ok();
    for both in [
        "2026-01-01T00:00:00Z",
        "2027-01-01T00:00:00+01:00",
        "2026-01-01 00:00:00Z",
        "2026-01-01t00:00:00z",
        "2026-01-01T00:00:00.5-05:30",
        "2026-01-01T00:00:00.123456789123Z",
        "2026-01-01T00:00:00\u{2212}05:00",
        "2026-06-30T23:59:60Z",
    ] {
        assert!(parses(both), "{both:?}");
        assert!(schedule_accepts(&workflow, "start_at", both), "{both:?}");
    }
    for neither in [
        "tomorrow",
        "2026-01-01",
        "2026-01-01T00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00.Z",
        " 2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z ",
        "2026-01-01_00:00:00Z",
    ] {
        assert!(!parses(neither), "{neither:?}");
        assert!(
            !schedule_accepts(&workflow, "start_at", neither),
            "{neither:?}"
        );
    }
    // Beyond the pattern: dates and times out of range.
    for out_of_range in [
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00+24:00",
    ] {
        assert!(!parses(out_of_range), "{out_of_range:?}");
        assert!(
            schedule_accepts(&workflow, "start_at", out_of_range),
            "{out_of_range:?}"
        );
    }
}

#[test]
fn the_name_patterns_are_the_loaders() {
    let (project, workflow) = (validator(PROJECT_SCHEMA), validator(WORKFLOW_SCHEMA));
    let long = |c: &str, n: usize| c.repeat(n);
    let project_names = [
        "billing".to_owned(),
        "a".to_owned(),
        "team-7".to_owned(),
        "x1".to_owned(),
        "a--b".to_owned(),
        long("a", 63),
        long("a", 64),
        String::new(),
        "Billing".to_owned(),
        "7team".to_owned(),
        "-team".to_owned(),
        "team-".to_owned(),
        "a_b".to_owned(),
        "a.b".to_owned(),
        "a/b".to_owned(),
        "é".to_owned(),
    ];
    for name in &project_names {
        assert_eq!(
            project.is_valid(&json!({"name": name, "task_queue": "q"})),
            is_project_name(name),
            "{name:?}"
        );
    }
    let workflow_ids = [
        "nightly-report".to_owned(),
        "Report_2".to_owned(),
        "a.b".to_owned(),
        "9lives".to_owned(),
        "a-".to_owned(),
        long("a", 128),
        long("a", 129),
        String::new(),
        "-a".to_owned(),
        ".a".to_owned(),
        "_a".to_owned(),
        "a/b".to_owned(),
        "a b".to_owned(),
        "é".to_owned(),
    ];
    for id in &workflow_ids {
        assert_eq!(
            workflow.is_valid(&json!({"id": id})),
            is_workflow_id(id),
            "{id:?}"
        );
    }
    let temporal_names = [
        "reports".to_owned(),
        "Nightly Report".to_owned(),
        "é".to_owned(),
        "\u{feff}q".to_owned(),
        "q\u{200b}".to_owned(),
        long("x", 1000),
        long("x", 1001),
        String::new(),
        " ".to_owned(),
        " q".to_owned(),
        "q ".to_owned(),
        "q\n".to_owned(),
        "\u{a0}q".to_owned(),
        "q\u{3000}".to_owned(),
        "\u{2028}q".to_owned(),
        "a\u{7}b".to_owned(),
        "a\u{85}b".to_owned(),
        "a\u{9f}b".to_owned(),
        "a\tb".to_owned(),
    ];
    for name in &temporal_names {
        let usable = temporal_name_problem(name).is_none();
        assert_eq!(
            workflow.is_valid(&json!({"id": "a", "type": name})),
            usable,
            "type {name:?}"
        );
        assert_eq!(
            workflow.is_valid(&json!({"id": "a", "task_queue": name})),
            usable,
            "task_queue {name:?}"
        );
        assert_eq!(
            project.is_valid(&json!({"name": "p", "task_queue": name})),
            usable,
            "project task_queue {name:?}"
        );
    }
    // Beyond the pattern: the limit is 1000 bytes, and a schema counts characters.
    let wide = long("é", 600);
    assert!(temporal_name_problem(&wide).is_some());
    assert!(workflow.is_valid(&json!({"id": "a", "type": wide})));
}

#[test]
fn globs_that_leave_the_project_are_refused() {
    let project = validator(PROJECT_SCHEMA);
    let accepts =
        |glob: Value| project.is_valid(&json!({"name": "p", "task_queue": "q", "workflows": glob}));
    for good in [
        "workflows/**/*.yaml",
        "./jobs/*.yml",
        "a..b/*.yaml",
        "..a/x",
        "x/...",
    ] {
        assert!(accepts(json!(good)), "{good:?}");
        assert!(accepts(json!([good])), "{good:?}");
    }
    for bad in [
        "../other/*.yaml",
        "/etc/*.yaml",
        "a/../../b",
        "a/..",
        "..",
        "a//../b",
    ] {
        assert!(!accepts(json!(bad)), "{bad:?}");
        assert!(!accepts(json!(["ok/*.yaml", bad])), "{bad:?}");
    }
    assert!(!accepts(json!([])));
    assert!(!accepts(json!([1])));
}

#[test]
fn the_key_lists_and_policies_are_the_loaders() {
    let workflow = schema(WORKFLOW_SCHEMA);
    let keys = |object: &Value| -> Vec<String> {
        let mut keys: Vec<String> = object
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let sorted = |list: &[&str]| -> Vec<String> {
        let mut list: Vec<String> = list.iter().map(|k| (*k).to_owned()).collect();
        list.sort();
        list
    };
    assert_eq!(keys(&workflow["properties"]), sorted(&WORKFLOW_KEYS));
    let schedule = &workflow["$defs"]["schedule"];
    let schedule_keys: Vec<&str> = SCHEDULE_KEYS.iter().chain(&ACTION_KEYS).copied().collect();
    assert_eq!(keys(&schedule["properties"]), sorted(&schedule_keys));
    assert_eq!(
        keys(&workflow["$defs"]["retryPolicy"]["properties"]),
        sorted(&RETRY_POLICY_KEYS)
    );
    assert_eq!(
        keys(&workflow["$defs"]["priority"]["properties"]),
        sorted(&PRIORITY_KEYS)
    );
    let types: Vec<&str> = AttributeType::ALL.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        workflow["$defs"]["searchAttribute"]["properties"]["type"]["enum"],
        json!(types)
    );
    assert_eq!(schedule["additionalProperties"], false);
    assert_eq!(workflow["additionalProperties"], true);
    let spellings: Vec<&str> = OverlapPolicy::SPELLINGS.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        schedule["properties"]["overlap_policy"]["enum"],
        json!(spellings)
    );
    let project = schema(PROJECT_SCHEMA);
    assert_eq!(
        keys(&project["properties"]),
        sorted(&["name", "task_queue", "workflows", "environments"])
    );
    assert_eq!(project["additionalProperties"], false);
    assert_eq!(
        project["properties"]["workflows"]["default"],
        json!([DEFAULT_WORKFLOWS_GLOB])
    );
}

#[test]
fn the_schema_command_prints_the_committed_files() {
    for (kind, path) in [("project", PROJECT_SCHEMA), ("workflow", WORKFLOW_SCHEMA)] {
        let output = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
            .args(["schema", kind])
            .output()
            .expect("the binary runs");
        assert!(output.status.success(), "{output:?}");
        let committed = std::fs::read(root().join(path)).expect("the schema exists");
        assert!(
            output.stdout == committed,
            "`schedule-sync schema {kind}` differs from {path}"
        );
    }
}
