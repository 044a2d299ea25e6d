//! Regression tests on real Temporal servers for the ways a reconcile could
//! lose a schedule or report success without it: each runs the binary as a
//! user would and reads the result back with the `temporal` CLI. Each test
//! runs once per server version, as `v1_29::<name>` and `v1_32::<name>`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use schedule_sync::dev_server::DevServer;
use schedule_sync::store::TemporalStore;
use support::Version;

fn run(args: &[&str], server: &DevServer) -> Output {
    support::run_binary(server, args)
}

/// `apply DIR --format json`, its exit code and report.
fn apply(dir: &Path, server: &DevServer, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["apply", dir.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let output = run(&args, server);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(
        |_| serde_json::json!({ "stderr": String::from_utf8_lossy(&output.stderr) }),
    );
    (output.status.code().unwrap_or(-1), report)
}

/// Whether `temporal schedule describe` finds the schedule.
fn exists(server: &DevServer, schedule_id: &str) -> bool {
    Command::new(server.cli())
        .args(["schedule", "describe", "--schedule-id", schedule_id])
        .args([
            "--address",
            &server.address(),
            "--namespace",
            server.namespace(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The schedule ids `temporal schedule list` shows.
fn listed(server: &DevServer) -> BTreeSet<String> {
    let list = support::temporal_json(server, &["schedule", "list"]);
    list.as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["scheduleId"].as_str().map(str::to_owned))
                .filter(|id| !support::is_fence(id))
                .collect()
        })
        .unwrap_or_default()
}

async fn listed_exactly(server: &DevServer, ids: &BTreeSet<String>) {
    support::eventually(30, "the listing shows exactly the expected ids", || async {
        listed(server) == *ids
    })
    .await;
}

fn writes(report: &serde_json::Value) -> u64 {
    [
        "CreateSchedule",
        "UpdateSchedule",
        "PatchSchedule",
        "DeleteSchedule",
    ]
    .iter()
    .filter_map(|rpc| report["rpc_counts"][rpc].as_object())
    .flat_map(|codes| codes.values())
    .filter_map(serde_json::Value::as_u64)
    .sum()
}

fn workflow(id: &str, cron: &str) -> String {
    format!("id: {id}\nschedule:\n  cron: \"{cron}\"\n")
}

fn ids(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("acme.{n}")).collect()
}

async fn a_schedule_deleted_by_hand_or_dropped_and_declared_again_is_created_again(
    version: Version,
) {
    let server = support::server_of(version).await;
    let (w1, w2, w3) = (
        workflow("w1", "0 1 * * *"),
        workflow("w2", "0 2 * * *"),
        workflow("w3", "0 3 * * *"),
    );
    let dir = support::project_dir("acme", &[&w1, &w2, &w3]);
    assert_eq!(apply(dir.path(), &server, &[]).0, 0);
    listed_exactly(&server, &ids(&["w1", "w2", "w3"])).await;

    let deleted = Command::new(server.cli())
        .args(["schedule", "delete", "--schedule-id", "acme.w1"])
        .args(["--address", &server.address()])
        .status()
        .unwrap();
    assert!(deleted.success());
    listed_exactly(&server, &ids(&["w2", "w3"])).await;
    let (code, report) = apply(dir.path(), &server, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(exists(&server, "acme.w1"), "re-created: {report:#}");

    // Dropped from the project, then declared again.
    let smaller = support::project_dir("acme", &[&w2, &w3]);
    assert_eq!(apply(smaller.path(), &server, &[]).0, 0);
    assert!(!exists(&server, "acme.w1"));
    listed_exactly(&server, &ids(&["w2", "w3"])).await;
    let (code, report) = apply(dir.path(), &server, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(exists(&server, "acme.w1"), "declared again: {report:#}");
    listed_exactly(&server, &ids(&["w1", "w2", "w3"])).await;
}

async fn an_adopted_schedule_stays_ours(version: Version) {
    let server = support::server_of(version).await;
    let made = Command::new(server.cli())
        .args(["schedule", "create", "--schedule-id", "acme.w1"])
        .args(["--cron", "0 5 * * *", "--workflow-id", "by-hand"])
        .args(["--task-queue", "q", "--type", "Handmade"])
        .args(["--address", &server.address()])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let dir = support::project_dir("acme", &[&workflow("w1", "0 1 * * *")]);
    let (code, report) = apply(dir.path(), &server, &[]);
    assert_eq!(code, 1, "a conflict without --adopt: {report:#}");
    let (code, report) = apply(dir.path(), &server, &["--adopt"]);
    assert_eq!(code, 0, "{report:#}");
    let (code, report) = apply(dir.path(), &server, &[]);
    assert_eq!(code, 0, "still ours without --adopt: {report:#}");
    assert_eq!(writes(&report), 0, "{report:#}");
    let held = support::describe(&server, "acme.w1");
    assert!(
        held["memo"]["fields"]["schedule-sync.project"].is_object(),
        "{held:#}"
    );
    let plan = run(&["plan", dir.path().to_str().unwrap()], &server);
    assert_eq!(plan.status.code(), Some(0), "{plan:?}");
}

async fn an_update_keeps_a_tag_that_another_tool_set(version: Version) {
    let server = support::server_with_team(version).await;
    let dir = support::project_dir("acme", &[&workflow("w1", "0 1 * * *")]);
    assert_eq!(apply(dir.path(), &server, &[]).0, 0);
    let store = TemporalStore::new(
        support::client(&server).await,
        server.namespace().to_owned(),
        true,
    );
    support::tag(&server, &store, "acme.w1", "Team", "payments").await;
    let changed = support::project_dir("acme", &[&workflow("w1", "0 4 * * *")]);
    let (code, report) = apply(changed.path(), &server, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["rpc_counts"]["UpdateSchedule"]["Ok"], 1,
        "{report:#}"
    );
    let held = support::describe(&server, "acme.w1");
    let team = &held["searchAttributes"]["indexedFields"]["Team"]["data"];
    // The CLI shows payload data base64-encoded: "payments" as JSON.
    assert_eq!(team, "InBheW1lbnRzIg==", "{held:#}");
    assert_eq!(
        held["schedule"]["spec"]["structuredCalendar"][0]["hour"][0]["start"], 4,
        "{held:#}"
    );
}

async fn twelve_cron_entries_cost_no_write_when_unchanged(version: Version) {
    let server = support::server_of(version).await;
    let crons: String = (0..12)
        .map(|h| format!("    - \"0 {h} * * *\"\n"))
        .collect();
    let many = format!("id: many\nschedule:\n  cron:\n{crons}");
    let dir = support::project_dir("acme", &[&many]);
    assert_eq!(apply(dir.path(), &server, &[]).0, 0);
    listed_exactly(&server, &ids(&["many"])).await;
    for _ in 0..2 {
        let (code, report) = apply(dir.path(), &server, &[]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(writes(&report), 0, "{report:#}");
        assert!(
            report["rpc_counts"]["DescribeSchedule"].is_null(),
            "{report:#}"
        );
    }
    let plan = run(&["plan", dir.path().to_str().unwrap()], &server);
    assert_eq!(plan.status.code(), Some(0), "{plan:?}");
}

async fn a_vanished_folder_deletes_nothing(version: Version) {
    let server = support::server_of(version).await;
    let texts: Vec<String> = (0..10)
        .map(|i| workflow(&format!("w{i}"), "0 1 * * *"))
        .collect();
    let dir = support::project_dir("acme", &[]);
    let team = dir.path().join("workflows/team");
    std::fs::create_dir_all(&team).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let folder = if i < 4 {
            team.clone()
        } else {
            dir.path().join("workflows")
        };
        std::fs::write(folder.join(format!("w{i}.yaml")), text).unwrap();
    }
    assert_eq!(apply(dir.path(), &server, &[]).0, 0);
    let all: BTreeSet<String> = (0..10).map(|i| format!("acme.w{i}")).collect();
    listed_exactly(&server, &all).await;

    // A failed mount: the folder becomes a link to nothing.
    std::fs::remove_dir_all(&team).unwrap();
    std::os::unix::fs::symlink("/nonexistent/team", &team).unwrap();
    let output = run(&["apply", dir.path().to_str().unwrap()], &server);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("symbolic link points to nothing"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent to Temporal"), "{stderr}");
    for id in &all {
        assert!(exists(&server, id), "{id} was deleted");
    }

    // A glob that matches nothing is only a warning, named next to the
    // deletions it causes.
    std::fs::remove_file(&team).unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        "name: acme\ntask_queue: q\nworkflows:\n  - workflows/*.yaml\n  - workflows/team/*.yaml\n",
    )
    .unwrap();
    let plan = run(&["plan", dir.path().to_str().unwrap()], &server);
    assert_eq!(plan.status.code(), Some(2));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("4 deletion(s) above"), "{text}");
    assert!(text.contains("workflows/team/*.yaml"), "{text}");
}

async fn temporal_killed_mid_apply_ends_it_within_30_s_and_a_restart_converges(version: Version) {
    let mut server = support::server_of(version).await;
    let texts: Vec<String> = (0..300)
        .map(|i| workflow(&format!("w{i}"), "0 1 * * *"))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dir = support::project_dir("acme", &refs);
    // The audit log (one line per write, on standard error) shows how far
    // the apply has come.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .args(["apply", dir.path().to_str().unwrap(), "--concurrency", "2"])
        .args(["--address", &server.address(), "--log-format", "json"])
        .env_remove("TEMPORAL_ADDRESS")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    // Killed once 20 creates are done: in the middle, with 280 to go.
    support::eventually(60, "20 creates done", || async {
        let written = std::fs::read_to_string(log.path()).unwrap_or_default();
        written
            .lines()
            .filter(|l| l.contains("schedule_sync::audit") && l.contains("\"create\""))
            .count()
            >= 20
    })
    .await;
    server.kill();
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "apply still running a minute after Temporal died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = killed.elapsed();
    eprintln!("apply gave up {took:?} after Temporal died");
    assert_eq!(status.code(), Some(1));
    assert!(
        took < Duration::from_secs(30),
        "apply took {took:?} to give up"
    );

    server
        .restart()
        .await
        .expect("the server restarts on its database");
    let (code, report) = apply(dir.path(), &server, &[]);
    assert_eq!(code, 0, "{report:#}");
    let all: BTreeSet<String> = (0..300).map(|i| format!("acme.w{i}")).collect();
    listed_exactly(&server, &all).await;
    let (code, report) = apply(dir.path(), &server, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(writes(&report), 0, "{report:#}");
}

async fn a_schedule_deleted_since_the_listing_is_no_error(version: Version) {
    let server = support::server_of(version).await;
    let texts: Vec<String> = (0..4)
        .map(|i| workflow(&format!("w{i}"), "0 1 * * *"))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dir = support::project_dir("acme", &refs);
    assert_eq!(apply(dir.path(), &server, &[]).0, 0);
    listed_exactly(&server, &ids(&["w0", "w1", "w2", "w3"])).await;
    // Deleted by hand, and dropped from the project at once: the listing may
    // still show it when the next apply plans its deletion.
    let deleted = Command::new(server.cli())
        .args(["schedule", "delete", "--schedule-id", "acme.w3"])
        .args(["--address", &server.address()])
        .status()
        .unwrap();
    assert!(deleted.success());
    let smaller = support::project_dir("acme", &refs[..3]);
    let (code, report) = apply(smaller.path(), &server, &[]);
    assert_eq!(code, 0, "{report:#}");
    for outcome in report["outcomes"].as_array().unwrap() {
        assert!(outcome["error"].is_null(), "{report:#}");
    }
    listed_exactly(&server, &ids(&["w0", "w1", "w2"])).await;
}

on_each_version!(
    a_schedule_deleted_by_hand_or_dropped_and_declared_again_is_created_again,
    an_adopted_schedule_stays_ours,
    an_update_keeps_a_tag_that_another_tool_set,
    twelve_cron_entries_cost_no_write_when_unchanged,
    a_vanished_folder_deletes_nothing,
    temporal_killed_mid_apply_ends_it_within_30_s_and_a_restart_converges,
    a_schedule_deleted_since_the_listing_is_no_error,
);
