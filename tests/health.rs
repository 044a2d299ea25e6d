//! Whether schedules fire, on the real dev server: a schedule that skips
//! every firing behind a run that never ends reads `skipping`, a paused one
//! `paused`, a healthy one `firing` with the server's own last and next
//! action times (read back with the `temporal` CLI). Through the binary's
//! `status` and through a running reconciler's status.

mod support;

use std::time::Duration;

use schedule_sync::connection::DEFAULT_CONNECT_TIMEOUT;
use schedule_sync::health::Health;
use schedule_sync::runtime::{Options, Reconciler, TemporalConnector};
use serde_json::Value;
use support::Version;
use tokio_util::sync::CancellationToken;

on_each_version!(
    status_shows_skipping_paused_and_firing_with_the_servers_times,
    a_running_reconciler_reports_each_schedules_health,
);

/// Every second, on a task queue no worker polls: the first run never
/// finishes, and `skip` skips every firing after it.
const STUCK: &str = "id: stuck\nschedule:\n  every: 1s\n  overlap_policy: skip\n";
/// Every 10 s (time to read the server between two firings), each run
/// started whatever the others do.
const HEALTHY: &str = "id: healthy\nschedule:\n  every: 10s\n  overlap_policy: allow_all\n";
/// Declared off: the schedule exists, paused.
const OFF: &str = "id: off\nschedule:\n  every: 1s\n  enabled: false\n";

/// `schedule-sync status --format json` of the project in `dir`: the rows.
fn status(server: &schedule_sync::dev_server::DevServer, dir: &std::path::Path) -> Vec<Value> {
    let output = support::run_binary(
        server,
        &["status", dir.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn row<'a>(rows: &'a [Value], schedule: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["schedule"] == schedule)
        .unwrap_or_else(|| panic!("no row {schedule} in {rows:#?}"))
}

/// A time as the server or `status` prints it, for comparing.
fn time(value: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    value.as_str().map(|text| {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .into()
    })
}

/// The last action's time and the next action time that `temporal schedule
/// describe` shows.
fn described_times(
    server: &schedule_sync::dev_server::DevServer,
    schedule_id: &str,
) -> (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    let described = support::describe(server, schedule_id);
    let info = &described["info"];
    let last = info["recentActions"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|a| time(&a["actualTime"]));
    let next = info["futureActionTimes"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(time);
    (last, next)
}

async fn status_shows_skipping_paused_and_firing_with_the_servers_times(version: Version) {
    let server = support::server_of(version).await;
    let dir = support::project_dir("watch", &[STUCK, HEALTHY, OFF]);
    let applied = support::run_binary(&server, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    // The first run of `stuck` never ends: every later firing is skipped.
    let mut rows = Vec::new();
    support::eventually(20, "watch.stuck reads skipping", || {
        rows = status(&server, dir.path());
        let stuck = row(&rows, "watch.stuck");
        std::future::ready(stuck["health"] == "skipping")
    })
    .await;
    let stuck = row(&rows, "watch.stuck");
    assert_eq!(stuck["state"], "in_sync", "{stuck:#}");
    assert_eq!(stuck["running"], 1, "{stuck:#}");
    assert!(time(&stuck["missed"]).is_some(), "{stuck:#}");
    let off = row(&rows, "watch.off");
    assert_eq!(off["health"], "paused", "{off:#}");
    assert_eq!(off["last_action"], Value::Null, "{off:#}");
    assert_eq!(off["next_action"], Value::Null, "{off:#}");

    // Between two firings, `status` and the server agree to the nanosecond.
    support::eventually(40, "status shows the server's last and next action", || {
        let before = described_times(&server, "watch.healthy");
        let rows = status(&server, dir.path());
        let after = described_times(&server, "watch.healthy");
        let healthy = row(&rows, "watch.healthy");
        let shown = (time(&healthy["last_action"]), time(&healthy["next_action"]));
        std::future::ready(
            before.0.is_some()
                && before == after
                && shown == before
                && healthy["health"] == "firing"
                && healthy["state"] == "in_sync",
        )
    })
    .await;

    // The table says the same for people.
    let text = support::run_binary(&server, &["status", dir.path().to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    let header = text.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "SCHEDULE", "STATE", "HEALTH", "LAST", "ACTION", "NEXT", "ACTION", "RUNNING"
        ],
        "{text}"
    );
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no line {id}: {text}"))
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("watch.stuck"),
        "watch.stuck in sync skipping",
        "{text}"
    );
    assert_eq!(line("watch.off"), "watch.off in sync paused", "{text}");
}

async fn a_running_reconciler_reports_each_schedules_health(version: Version) {
    let server = support::server_of(version).await;
    let dir = support::project_dir("watch", &[STUCK, HEALTHY, OFF]);
    let project = schedule_sync::project::load(dir.path()).unwrap().project;
    let mut options = Options::default();
    options.resync = Some(Duration::from_secs(1));
    options.health_describes = 1;
    let connector = TemporalConnector::new(server.settings(), DEFAULT_CONNECT_TIMEOUT);
    let shutdown = CancellationToken::new();
    let handle = Reconciler::new(connector, options).spawn(project, shutdown.clone());
    let mut status = handle.subscribe();
    let health = |status: &schedule_sync::runtime::Status, id: &str| {
        status
            .schedules
            .iter()
            .find(|s| &*s.id == id)
            .and_then(|s| s.watch)
            .map(|w| w.health)
    };
    let seen = tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| {
            health(s, "watch.stuck") == Some(Health::Skipping)
                && health(s, "watch.off") == Some(Health::Paused)
                && health(s, "watch.healthy") == Some(Health::Firing)
        }),
    )
    .await
    .expect("within 30 s: skipping, paused and firing")
    .unwrap()
    .clone();
    // As `/schedules` shows each entry.
    let stuck = seen
        .schedules
        .iter()
        .find(|s| &*s.id == "watch.stuck")
        .unwrap();
    let entry = serde_json::to_value(stuck).unwrap();
    assert_eq!(entry["health"], "skipping", "{entry:#}");
    assert_eq!(entry["status"], "in_sync", "{entry:#}");
    assert!(time(&entry["last_action"]).is_some(), "{entry:#}");
    let counts = seen.health_counts();
    assert_eq!(
        counts,
        vec![
            (Health::Firing, 1),
            (Health::Late, 0),
            (Health::Skipping, 1),
            (Health::Paused, 1),
            (Health::Ended, 0),
        ]
    );
    handle.shutdown().await;
    handle.join().await;
}
