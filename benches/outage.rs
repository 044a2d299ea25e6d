//! How fast `apply` gives up when Temporal dies under it, whatever the size
//! of the project, and what a restart costs.
//!
//! `cargo bench --bench outage` writes a project of `BENCH_OUTAGE_SIZE`
//! (default 10,000) schedules, starts `schedule-sync apply` on a fresh dev
//! server, kills the server with SIGKILL once apply has written a tenth of
//! the schedules (counted from its audit log), and measures the time from
//! the kill to apply's exit. Then it restarts the server on the same
//! database, applies again, and checks that exactly the declared schedules
//! exist and that one more apply writes nothing.
//!
//! Under `cargo test` (no `--bench` argument) it runs on 500 schedules.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use schedule_sync::dev_server::{DevServer, DevServerOptions, find_cli};
use schedule_sync::store::{ScheduleStore, TemporalStore};

fn project_dir(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        "name: outage\ntask_queue: bench\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    for i in 0..count {
        let text = format!(
            "id: job-{i}\nschedule:\n  cron: \"{} {} * * *\"\n",
            i % 60,
            i % 24
        );
        std::fs::write(dir.path().join(format!("workflows/job-{i}.yaml")), text).unwrap();
    }
    dir
}

fn apply(dir: &std::path::Path, address: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .args(["apply", dir.to_str().unwrap(), "--format", "json"])
        .args(["--address", address])
        .env_remove("TEMPORAL_ADDRESS")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null());
    command
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

/// Counts the audit log's write lines on apply's standard error as they
/// come (reading to its end, so that apply never blocks on a full pipe).
fn count_writes(stderr: std::process::ChildStderr) -> Arc<AtomicUsize> {
    let written = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&written);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("schedule write") {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    written
}

/// How many of the project's schedules the server lists, its writer fence
/// left out.
async fn project_listed(store: &TemporalStore) -> usize {
    let fence = schedule_sync::fence::fence_id("outage");
    store
        .list("outage")
        .await
        .unwrap()
        .schedules
        .iter()
        .filter(|s| s.schedule_id != fence)
        .count()
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let count: usize = if bench {
        std::env::var("BENCH_OUTAGE_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000)
    } else {
        500
    };
    let cli = find_cli().expect("the temporal CLI (scripts/install-temporal-cli.sh)");
    let mut server = DevServer::start(DevServerOptions::new(cli))
        .await
        .expect("a dev server");
    let dir = project_dir(count);
    let address = server.address();

    let mut child = apply(dir.path(), &address)
        .env("RUST_LOG", "warn,schedule_sync::audit=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let written = count_writes(child.stderr.take().unwrap());
    // The kill lands while apply is writing: once a tenth of the project is
    // written, most of it is still to be created. (The dev server's listing
    // answers too late to tell: under a burst of creates it took over 10 s.)
    let started = Instant::now();
    while written.load(Ordering::Relaxed) < count / 10 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply exited before the kill, with {} writes",
            written.load(Ordering::Relaxed)
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "apply wrote only {} schedules in two minutes",
            written.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let killed = Instant::now();
    let status = child.wait().unwrap();
    let gave_up = killed.elapsed();
    assert_eq!(status.code(), Some(1), "apply fails when Temporal is gone");
    assert!(
        gave_up < Duration::from_secs(30),
        "gave up after {gave_up:?}"
    );

    server.restart().await.expect("the server restarts");
    let restarted = Instant::now();
    let output = apply(dir.path(), &address).output().unwrap();
    let converged = restarted.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    if output.status.code() != Some(0) {
        let failed: Vec<&serde_json::Value> = report["outcomes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| !o["error"].is_null())
            .collect();
        panic!(
            "the apply after the restart did not converge: {} failed, first: {:#?}; rpcs {:#}",
            failed.len(),
            failed.iter().take(3).collect::<Vec<_>>(),
            report["rpc_counts"]
        );
    }
    let created = report["rpc_counts"]["CreateSchedule"]["Ok"]
        .as_u64()
        .unwrap_or(0);

    let client = server
        .settings()
        .connect(Duration::from_secs(5))
        .await
        .unwrap();
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let deadline = Instant::now() + Duration::from_secs(120);
    let listed = loop {
        let listed = project_listed(&store).await;
        if listed == count || Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(listed, count, "exactly the declared schedules");
    let again = apply(dir.path(), &address).output().unwrap();
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(writes(&again), 0, "the next apply writes nothing");

    println!(
        "outage: {count} schedules; apply exited {:.2} s after SIGKILL of the server; \
         after the restart one apply created the {created} missing in {:.1} s; \
         {listed} listed; the next apply wrote nothing",
        gave_up.as_secs_f64(),
        converged.as_secs_f64()
    );
}
