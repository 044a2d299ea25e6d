//! `schedule-sync plan` and `apply` against the real dev server: exit codes,
//! JSON output, and a broken project that never reaches Temporal.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str], address: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .args(args)
        .args(["--address", address])
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn plan_then_apply_then_plan_again() {
    let server = support::dev_server().await;
    let address = server.address();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let example = example.to_str().unwrap();

    let pending = run(&["plan", example, "--format", "json"], &address);
    assert_eq!(
        pending.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&pending.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&pending.stdout).unwrap();
    assert_eq!(plan["plan"]["steps"].as_array().unwrap().len(), 4);
    let fires = plan["next_fire_times"]["billing.nightly-report"]
        .as_array()
        .unwrap();
    assert_eq!(fires.len(), 3, "{plan:#}");
    // Changes are pending: not converged, as `apply` would say before it ran.
    assert_eq!(plan["converged"], false, "{plan:#}");

    let applied = run(&["apply", example, "--format", "json"], &address);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&applied.stdout).unwrap();
    assert_eq!(report["converged"], true);
    assert_eq!(report["outcomes"].as_array().unwrap().len(), 4);
    // The 4 schedules, and the project's writer fence.
    assert_eq!(
        report["rpc_counts"]["CreateSchedule"]["Ok"], 5,
        "{report:#}"
    );
    assert_eq!(report["rpc_counts"]["ListSchedules"]["Ok"], 1, "{report:#}");
    let text = run(&["apply", example], &address);
    let text = String::from_utf8(text.stdout).unwrap();
    // The listing may still lag the creates (then this run also describes
    // what it would create): the RPC line lists whatever was sent, one listing.
    let rpcs = text.lines().find(|l| l.starts_with("RPCs: "));
    assert!(
        rpcs.is_some_and(|l| l.contains("ListSchedules 1")),
        "{text}"
    );

    // The listing catches up within moments; then nothing is pending.
    let mut code = None;
    for _ in 0..50 {
        code = run(&["plan", example], &address).status.code();
        if code == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(code, Some(0));
    let done = run(&["plan", example, "--format", "json"], &address);
    let done: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(done["converged"], true, "{done:#}");

    // A changed project: the plan names each field that differs.
    let changed = support::copy_example();
    let file = changed.path().join("workflows/reports/nightly-report.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("jitter: 30s", "jitter: 45s");
    std::fs::write(&file, text).unwrap();
    let pending = run(&["plan", changed.path().to_str().unwrap()], &address);
    assert_eq!(pending.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&pending.stdout);
    assert!(stdout.contains("update billing.nightly-report"), "{stdout}");
    assert!(stdout.contains("jitter: 30s -> 45s"), "{stdout}");
    // The text shows the next 3 firing times of the updated schedule, each
    // in the future.
    let next = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("next: "))
        .unwrap_or_else(|| panic!("no firing times: {stdout}"));
    let times: Vec<chrono::DateTime<chrono::Utc>> = next
        .split(", ")
        .map(|t| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%SZ")
                .unwrap()
                .and_utc()
        })
        .collect();
    assert_eq!(times.len(), 3, "{stdout}");
    assert!(
        times[0] > chrono::Utc::now() && times.is_sorted(),
        "{stdout}"
    );
    assert_eq!(stdout.matches(" -> ").count(), 1, "{stdout}");

    // A broken project is refused before any connection.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("project.yaml"), "name: billing\n").unwrap();
    let refused = run(&["apply", broken.path().to_str().unwrap()], &address);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("nothing was sent to Temporal"), "{stderr}");
    let listed = support::listed_schedules(&server);
    assert_eq!(listed.len(), 4, "{listed:?}");
    server.stop();
}

/// A project emptied on purpose keeps its writer fence, and `apply` and
/// `plan` say why and how to remove it: an older writer that still declares
/// the schedules (an old replica, an old checkout) finds the fence and
/// creates nothing again.
#[tokio::test]
async fn an_emptied_project_keeps_its_fence_which_keeps_an_older_writer_out() {
    let server = support::dev_server().await;
    let address = server.address();
    let files: Vec<String> = (0..3)
        .map(|i| format!("id: w{i}\nschedule:\n  cron: \"{i} 3 * * *\"\n"))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let newer = support::project_dir("gone", &files);
    let older = support::project_dir("gone", &files);
    let newer_dir = newer.path().to_str().unwrap();
    let applied = run(&["apply", newer_dir, "--revision", "2"], &address);
    assert_eq!(applied.status.code(), Some(0), "{applied:?}");

    for i in 0..3 {
        std::fs::remove_file(newer.path().join(format!("workflows/w{i}.yaml"))).unwrap();
    }
    let emptied = run(
        &["apply", newer_dir, "--revision", "2", "--allow-mass-delete"],
        &address,
    );
    let stdout = String::from_utf8_lossy(&emptied.stdout);
    assert_eq!(emptied.status.code(), Some(0), "{emptied:?}");
    let note = "its writer fence gone.~writer stays";
    assert!(stdout.contains(note), "{stdout}");
    assert!(
        stdout.contains("temporal schedule delete --schedule-id 'gone.~writer'"),
        "{stdout}"
    );
    support::eventually(10, "the listing shows no schedule", || async {
        support::listed_schedules(&server).is_empty()
    })
    .await;
    let fence = support::describe(&server, "gone.~writer");
    assert!(
        fence.to_string().contains("revision=2"),
        "the fence names the writer that emptied the project: {fence:#}"
    );

    // Once the listing shows the deletions, `plan` has nothing to do and
    // says the same.
    let mut plan = run(&["plan", newer_dir, "--revision", "2"], &address);
    for _ in 0..50 {
        if plan.status.code() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        plan = run(&["plan", newer_dir, "--revision", "2"], &address);
    }
    assert_eq!(plan.status.code(), Some(0), "{plan:?}");
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(stdout.contains(note), "{stdout}");
    let json = run(
        &["plan", newer_dir, "--revision", "2", "--format", "json"],
        &address,
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["writer_fence_left"], "gone.~writer", "{json:#}");

    // The older checkout is refused: the removal stands.
    let refused = run(
        &["apply", older.path().to_str().unwrap(), "--revision", "1"],
        &address,
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(
        stdout.contains("refused: a newer writer holds this project"),
        "{stdout}"
    );
    assert!(support::listed_schedules(&server).is_empty());
    server.stop();
}
