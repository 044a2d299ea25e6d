//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

use schedule_sync::dev_server::{self, DevServer, DevServerOptions};

/// The `temporal` binary. A missing binary fails the test: the test command
/// installs it, so its absence is a broken set-up, never a reason to skip.
pub fn temporal_cli() -> PathBuf {
    dev_server::find_cli().unwrap_or_else(|| {
        panic!(
            "no `temporal` binary: run scripts/install-temporal-cli.sh or set {}",
            dev_server::CLI_ENV
        )
    })
}

/// Starts a fresh dev server for one test.
pub async fn dev_server() -> DevServer {
    DevServer::start(DevServerOptions::new(temporal_cli()))
        .await
        .unwrap_or_else(|e| panic!("the Temporal dev server did not start: {e}"))
}

/// Runs the `temporal` CLI against `server` and parses its JSON output.
pub fn temporal_json(server: &DevServer, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(server.cli())
        .args(args)
        .args([
            "--address",
            &server.address(),
            "--namespace",
            server.namespace(),
        ])
        .args(["--output", "json"])
        .output()
        .expect("the temporal CLI runs");
    assert!(
        output.status.success(),
        "temporal {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "temporal {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A client connected to `server`.
pub async fn client(server: &DevServer) -> temporalio_client::Client {
    server
        .settings()
        .connect(std::time::Duration::from_secs(5))
        .await
        .expect("connects to the dev server")
}

/// `temporal schedule describe` of one schedule, as JSON.
pub fn describe(server: &DevServer, schedule_id: &str) -> serde_json::Value {
    temporal_json(
        server,
        &["schedule", "describe", "--schedule-id", schedule_id],
    )
}

/// A copy of `examples/billing` in a temporary folder, to change freely.
pub fn copy_example() -> tempfile::TempDir {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let target = tempfile::tempdir().unwrap();
    for entry in walkdir_files(&source) {
        let relative = entry.strip_prefix(&source).unwrap();
        let to = target.path().join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, to).unwrap();
    }
    target
}

fn walkdir_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// One reconcile of the project in `dir` with the default options.
pub async fn apply<S: schedule_sync::store::ScheduleStore>(
    store: &S,
    dir: &std::path::Path,
) -> schedule_sync::reconcile::Report {
    let project = schedule_sync::project::load(dir).unwrap().project;
    schedule_sync::reconcile::reconcile(store, &project, Default::default())
        .await
        .unwrap()
}
