//! `schedule-sync import` on the real dev server: schedules made with the
//! `temporal` CLI, in every shape a workflow file can say, come back as
//! files that `plan --adopt` finds no field to change in; adoption then
//! leaves their firing times as they were. Schedules a file cannot express
//! are skipped with the reason and left alone.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};

use schedule_sync::dev_server::DevServer;

fn run(server: &DevServer, args: &[&str]) -> Output {
    support::run_binary(server, args)
}

fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// `temporal schedule create` with the common flags and `extra`.
fn create(server: &DevServer, id: &str, extra: &[&str]) {
    let mut args = vec![
        "schedule",
        "create",
        "--schedule-id",
        id,
        "--type",
        "Report",
        "--task-queue",
        "reports",
    ];
    if !extra.contains(&"--workflow-id") {
        args.extend(["--workflow-id", id]);
    }
    args.extend_from_slice(extra);
    let output = Command::new(server.cli())
        .args(&args)
        .args(["--address", &server.address()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "temporal {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The shapes a workflow file can say, made the way people make schedules
/// with the `temporal` CLI.
fn expressible() -> Vec<(&'static str, Vec<&'static str>)> {
    let twelve: Vec<&'static str> = (0..12)
        .flat_map(|hour| {
            [
                "--cron",
                [
                    "0 0 * * *",
                    "0 1 * * *",
                    "0 2 * * *",
                    "0 3 * * *",
                    "0 4 * * *",
                    "0 5 * * *",
                    "0 6 * * *",
                    "0 7 * * *",
                    "0 8 * * *",
                    "0 9 * * *",
                    "0 10 * * *",
                    "0 11 * * *",
                ][hour],
            ]
        })
        .collect();
    vec![
        ("legacy.nightly", vec!["--cron", "0 2 * * *"]),
        (
            "legacy.tokyo-weekdays",
            vec!["--cron", "CRON_TZ=Asia/Tokyo 30 9 * * 1-5 # weekdays"],
        ),
        ("legacy.seconds", vec!["--cron", "10 */5 8-18 * * 1-5 *"]),
        ("legacy.new-year-2027", vec!["--cron", "0 0 1 1 * 2027"]),
        ("legacy.months", vec!["--cron", "0 6 */2 jan,jul *"]),
        (
            "legacy.sundays",
            vec!["--cron", "0 9 * * sun", "--cron", "@daily"],
        ),
        ("legacy.hourly", vec!["--interval", "1h"]),
        (
            "legacy.phased",
            vec!["--interval", "15m/5m", "--time-zone", "Europe/Berlin"],
        ),
        (
            "legacy.new-york",
            vec!["--cron", "0 7 * * *", "--time-zone", "America/New_York"],
        ),
        (
            "legacy.held",
            vec!["--cron", "0 4 * * *", "--paused", "--notes", "held by ops"],
        ),
        (
            "legacy.jittered",
            vec![
                "--cron",
                "0 3 * * *",
                "--jitter",
                "5m",
                "--catchup-window",
                "10m",
            ],
        ),
        (
            "legacy.allow-all",
            vec![
                "--interval",
                "30m",
                "--overlap-policy",
                "AllowAll",
                "--pause-on-failure",
            ],
        ),
        (
            "legacy.cancel-other",
            vec!["--cron", "*/20 * * * *", "--overlap-policy", "CancelOther"],
        ),
        (
            "legacy.buffer-one",
            vec![
                "--cron",
                "0 12 * * *",
                "--overlap-policy",
                "BufferOne",
                "--catchup-window",
                "1h",
            ],
        ),
        (
            "legacy.with-input",
            vec![
                "--cron",
                "0 5 * * *",
                "--input",
                r#"{"region": "eu", "days": [1, 2.5], "dry": false}"#,
            ],
        ),
        (
            "legacy.string-input",
            vec!["--interval", "2h/30m", "--input", r#""hello""#],
        ),
        (
            "legacy.bounded",
            vec![
                "--cron",
                "0 8 * * *",
                "--start-time",
                "2026-01-01T00:00:00Z",
                "--end-time",
                "2031-06-01T12:30:00Z",
            ],
        ),
        (
            "legacy.mixed",
            vec![
                "--cron",
                "0 1 * * *",
                "--interval",
                "2h",
                "--calendar",
                r#"{"hour":"5","minute":"7"}"#,
            ],
        ),
        ("legacy.twelve", twelve),
        (
            "legacy.limited",
            vec!["--cron", "0 2 * * *", "--remaining-actions", "3"],
        ),
    ]
}

/// Shapes no workflow file can say, each with a word its reason must hold.
fn inexpressible() -> Vec<(&'static str, Vec<&'static str>, &'static str)> {
    vec![
        (
            "legacy.memo",
            vec!["--cron", "0 2 * * *", "--schedule-memo", r#"team="x""#],
            "memo",
        ),
        (
            "legacy.other-id",
            vec!["--cron", "0 2 * * *", "--workflow-id", "someone-else"],
            "someone-else",
        ),
        (
            "legacy.timeout",
            vec!["--cron", "0 2 * * *", "--execution-timeout", "1h"],
            "execution timeout",
        ),
        (
            "legacy.two-args",
            vec!["--cron", "0 2 * * *", "--input", "1", "--input", "2"],
            "2 arguments",
        ),
        (
            "legacy.binary",
            vec![
                "--cron",
                "0 2 * * *",
                "--input",
                "aGk=",
                "--input-meta",
                "encoding=binary/plain",
            ],
            "binary/plain",
        ),
        (
            "legacy.Bad Name",
            vec!["--cron", "0 2 * * *"],
            "not a workflow id",
        ),
    ]
}

/// The future action times the server gives each schedule.
fn future_times(server: &DevServer, ids: &[&str]) -> BTreeMap<String, Vec<String>> {
    ids.iter()
        .map(|id| {
            let described = support::describe(server, id);
            let times = described["info"]["futureActionTimes"]
                .as_array()
                .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            ((*id).to_owned(), times)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_made_schedules_round_trip_through_import_and_adoption() {
    let server = support::dev_server().await;
    let expressible = expressible();
    let inexpressible = inexpressible();
    for (id, args) in &expressible {
        create(&server, id, args);
    }
    for (id, args, _) in &inexpressible {
        create(&server, id, args);
    }
    // A schedule of another project's form is not selected by the prefix.
    create(&server, "elsewhere.nightly", &["--cron", "0 2 * * *"]);
    let ids: Vec<&str> = expressible.iter().map(|(id, _)| *id).collect();
    let all: BTreeSet<&str> = ids
        .iter()
        .copied()
        .chain(inexpressible.iter().map(|(id, _, _)| *id))
        .collect();
    support::eventually(20, "every schedule is listed", || async {
        let listed = support::temporal_json(&server, &["schedule", "list"]);
        listed.as_array().is_some_and(|a| a.len() == all.len() + 1)
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("legacy");
    let project_arg = project.to_str().unwrap();
    let output = run(
        &server,
        &[
            "import",
            project_arg,
            "--project",
            "legacy",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "some are skipped: {output:?}"
    );
    let report = json_of(&output);
    let imported: BTreeSet<&str> = report["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["schedule_id"].as_str().unwrap())
        .collect();
    assert_eq!(imported, ids.iter().copied().collect(), "{report:#}");
    let skipped: BTreeMap<&str, &str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["schedule_id"].as_str().unwrap(),
                s["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), inexpressible.len(), "{report:#}");
    for (id, _, word) in &inexpressible {
        let reason = skipped
            .get(id)
            .unwrap_or_else(|| panic!("{id} not skipped: {report:#}"));
        assert!(reason.contains(word), "{id}: {reason}");
    }
    // The project's default task queue is the one the schedules use, so no
    // file names it; the files read as a person would write them.
    let project_file = std::fs::read_to_string(project.join("project.yaml")).unwrap();
    assert!(
        project_file.contains("task_queue: \"reports\""),
        "{project_file}"
    );
    let file = |name: &str| std::fs::read_to_string(project.join("workflows").join(name)).unwrap();
    assert!(
        file("nightly.yaml").contains("cron: \"0 2 * * *\""),
        "{}",
        file("nightly.yaml")
    );
    assert!(
        !file("nightly.yaml").contains("task_queue"),
        "{}",
        file("nightly.yaml")
    );
    let phased = file("phased.yaml");
    assert!(
        phased.contains("every: 15m\n  offset: 5m\n  timezone: Europe/Berlin"),
        "{phased}"
    );
    assert!(file("jittered.yaml").contains("jitter: 5m"));
    assert!(
        file("with-input.yaml")
            .contains(r#"input: {"days": [1, 2.5], "dry": false, "region": "eu"}"#)
    );
    assert!(
        file("held.yaml").contains("held by ops"),
        "the operator's pause is explained"
    );
    assert!(
        !file("held.yaml").contains("\n  enabled:"),
        "an operator's pause is not ours to make permanent: {}",
        file("held.yaml")
    );

    // `plan --adopt`: an adoption of each, and no field to change.
    let output = run(
        &server,
        &["plan", project_arg, "--adopt", "--format", "json"],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let plan = json_of(&output);
    let steps = plan["plan"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), ids.len(), "{plan:#}");
    for step in steps {
        assert_eq!(step["action"], "update", "{step}");
        assert_eq!(step["reason"], "adopted", "{step}");
    }
    let changes = plan["changes"].as_object().unwrap();
    assert!(
        changes
            .values()
            .all(|c| c.as_array().is_some_and(Vec::is_empty)),
        "imported files differ from the schedules: {changes:#?}"
    );

    // The comparison sees a difference: one edit shows as one field change.
    let jittered = project.join("workflows/jittered.yaml");
    let original = std::fs::read_to_string(&jittered).unwrap();
    std::fs::write(&jittered, original.replace("jitter: 5m", "jitter: 6m")).unwrap();
    let output = run(
        &server,
        &["plan", project_arg, "--adopt", "--format", "json"],
    );
    let edited = json_of(&output);
    assert_eq!(
        edited["changes"]["legacy.jittered"][0]["field"], "jitter",
        "{edited:#}"
    );
    std::fs::write(&jittered, original).unwrap();

    let before = future_times(&server, &ids);
    let output = run(&server, &["apply", project_arg, "--adopt"]);
    assert!(output.status.success(), "{output:?}");
    let after = future_times(&server, &ids);
    let output = run(&server, &["plan", project_arg, "--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // Read back with the temporal CLI: each carries the marker now, the
    // operator's pause is kept, and the firing times are the ones the server
    // gave before (those still ahead of the second reading).
    for id in &ids {
        let described = support::describe(&server, id);
        assert!(
            described["memo"]["fields"]["schedule-sync.project"].is_object(),
            "{id} has no marker: {described:#}"
        );
        let (was, is) = (&before[*id], &after[*id]);
        assert!(!is.is_empty(), "{id} fires no more");
        let last_was = was.last().unwrap();
        let first_is = is.first().unwrap();
        let kept: Vec<&String> = was.iter().filter(|t| *t >= first_is).collect();
        let now: Vec<&String> = is.iter().filter(|t| *t <= last_was).collect();
        assert_eq!(kept, now, "{id}: firing times changed");
    }
    let held = support::describe(&server, "legacy.held");
    assert_eq!(held["schedule"]["state"]["paused"], true);
    assert_eq!(held["schedule"]["state"]["notes"], "held by ops");
    // The skipped ones are as they were: no marker.
    for (id, _, _) in &inexpressible {
        let described = support::describe(&server, id);
        assert!(
            described["memo"]["fields"]["schedule-sync.project"].is_null(),
            "{id} was touched: {described:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn import_never_overwrites_and_a_broken_request_writes_nothing() {
    let server = support::dev_server().await;
    create(&server, "shop.cleanup", &["--interval", "1h"]);
    create(&server, "shop.report", &["--cron", "0 6 * * 1"]);
    create(&server, "other.report", &["--cron", "0 6 * * 1"]);
    let dir = support::project_dir("shop", &["id: cleanup\nschedule:\n  every: 2h\n"]);
    let dir_arg = dir.path().to_str().unwrap();
    let files_before = std::fs::read_dir(dir.path().join("workflows"))
        .unwrap()
        .count();

    // Without a project file and a name, nothing happens.
    let empty = tempfile::tempdir().unwrap();
    let output = run(
        &server,
        &[
            "import",
            empty.path().to_str().unwrap(),
            "--id",
            "shop.report",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--project"));
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    // Listed ids: the declared one and the foreign one are skipped, the
    // other is written, and the plan of adopting it is shown.
    let output = run(
        &server,
        &[
            "import",
            dir_arg,
            "--id",
            "shop.cleanup,shop.report",
            "--id",
            "other.report",
            "--id",
            "shop.missing",
            "--adopt-plan",
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text.contains("imported shop.report"), "{text}");
    assert!(
        text.contains("skipped shop.cleanup: the project declares workflow `cleanup` already"),
        "{text}"
    );
    assert!(
        text.contains("skipped other.report: its id is not of the form `shop.<workflow id>`"),
        "{text}"
    );
    assert!(
        text.contains("skipped shop.missing: it does not exist"),
        "{text}"
    );
    assert!(text.contains("update shop.report (adopted)"), "{text}");
    assert!(text.contains("nothing was written to Temporal"), "{text}");
    let report = std::fs::read_to_string(dir.path().join("workflows/report.yaml")).unwrap();
    assert!(report.contains("cron: \"0 6 * * 1\""), "{report}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("workflows"))
            .unwrap()
            .count(),
        files_before + 1
    );

    // Again: the file exists, so nothing is overwritten.
    let output = run(
        &server,
        &[
            "import", dir_arg, "--prefix", "shop.rep", "--format", "json",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let json = json_of(&output);
    assert_eq!(json["imported"], serde_json::json!([]));
    assert_eq!(json["skipped"][0]["schedule_id"], "shop.report");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("workflows/report.yaml")).unwrap(),
        report
    );

    // Import wrote nothing to Temporal: no schedule carries a marker.
    for id in ["shop.cleanup", "shop.report", "other.report"] {
        let described = support::describe(&server, id);
        assert!(
            described["memo"]["fields"]["schedule-sync.project"].is_null(),
            "{id}"
        );
    }
}
