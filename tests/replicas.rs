//! Several writers of one project on the real dev server: a rolling deploy
//! (old and new `serve` replicas side by side, each reconciling every
//! second), the old replicas leaving, a rollback, and a person running
//! `apply` with an older checkout. An observer describes every schedule
//! four times a second and counts how often each one changed. The test runs
//! once per server version, as `v1_29::<name>` and `v1_32::<name>`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schedule_sync::dev_server::{DevServer, free_port};
use schedule_sync::store::{ScheduleStore, TemporalStore};
use support::Version;
use support::serve::Serve;

const IDS: [&str; 8] = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"];

/// The old version declares w1-w6 at 01:00; the new one moves w1-w4 to
/// 02:00, keeps w5, drops w6 and adds w7 and w8.
fn version(new: bool) -> tempfile::TempDir {
    let file = |id: &str, hour: u32| format!("id: {id}\nschedule:\n  cron: \"0 {hour} * * *\"\n");
    let files: Vec<String> = if new {
        ["w1", "w2", "w3", "w4"]
            .iter()
            .map(|id| file(id, 2))
            .chain(["w5", "w7", "w8"].iter().map(|id| file(id, 1)))
            .collect()
    } else {
        ["w1", "w2", "w3", "w4", "w5", "w6"]
            .iter()
            .map(|id| file(id, 1))
            .collect()
    };
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    support::project_dir("roll", &files)
}

fn serve(dir: &Path, server: &DevServer) -> Serve {
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .arg("serve")
        .arg(dir)
        .args(["--listen", &address, "--address", &server.address()])
        .args(["--resync", "1s"])
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("SCHEDULE_SYNC_REVISION");
    Serve::spawn(command, &address)
}

/// What each schedule looked like at each look: its hour, or none.
type Seen = Arc<Mutex<BTreeMap<&'static str, Vec<Option<i32>>>>>;

/// How many times the observer has described every schedule.
type Passes = Arc<AtomicUsize>;

/// Describes every schedule every 250 ms until dropped, recording each
/// change of its firing hour (or of its existence), and counting its passes.
fn observe(store: TemporalStore) -> (Seen, Passes, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let passes: Passes = Arc::default();
    let (record, count) = (seen.clone(), passes.clone());
    let task = tokio::spawn(async move {
        loop {
            for id in IDS {
                let schedule_id = format!("roll.{id}");
                let Ok(held) = store.describe(&schedule_id).await else {
                    continue;
                };
                let hour = held.map(|d| {
                    d.schedule.spec.unwrap_or_default().structured_calendar[0].hour[0].start
                });
                let mut seen = record.lock().unwrap();
                let history = seen.entry(id).or_default();
                if history.last() != Some(&hour) {
                    history.push(hour);
                }
            }
            count.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (seen, passes, task)
}

/// Waits until the observer has made `more` passes from now.
async fn observed_again(passes: &Passes, more: usize) {
    let from = passes.load(Ordering::SeqCst);
    support::eventually(30, "the observer's passes", || async {
        passes.load(Ordering::SeqCst) >= from + more
    })
    .await;
}

/// The successful reconciles a replica has made.
fn reconciles(replica: &Serve) -> u64 {
    let series = "schedule_sync_reconcile_total{project=\"roll\",outcome=\"success\"} ";
    replica
        .metrics()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until each of `replicas` has reconciled `more` times from now
/// (each reconciles every second), and the observer has looked after that.
async fn reconciled_again(replicas: &[&Serve], more: u64, passes: &Passes) {
    for replica in replicas {
        let from = reconciles(replica);
        support::eventually(30, "more reconciles", || async {
            reconciles(replica) >= from + more
        })
        .await;
    }
    observed_again(passes, 2).await;
}

/// How often `id` changed since the observer first saw it.
fn changes(seen: &Seen, id: &str) -> usize {
    seen.lock()
        .unwrap()
        .get(id)
        .map_or(0, |history| history.len().saturating_sub(1))
}

fn history(seen: &Seen) -> String {
    format!("{:?}", seen.lock().unwrap())
}

/// The status of each declared schedule in `/schedules`.
fn statuses(replica: &Serve) -> BTreeMap<String, String> {
    let (_, body) = replica.get("/schedules");
    body.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// How many CreateSchedule RPCs a replica sent, whatever their answer.
fn creates_sent(replica: &Serve) -> u64 {
    replica
        .metrics()
        .lines()
        .filter(|l| {
            l.starts_with("schedule_sync_rpc_total{") && l.contains("rpc=\"CreateSchedule\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn all_in_sync(replica: &Serve, count: usize) {
    replica
        .wait_for("/schedules", Duration::from_secs(20), |_, body| {
            body.as_array().is_some_and(|list| {
                list.len() == count && list.iter().all(|e| e["status"] == "in_sync")
            })
        })
        .await;
}

async fn a_rolling_deploy_and_a_rollback_change_each_schedule_at_most_once(
    server_version: Version,
) {
    let server = support::server_of(server_version).await;
    let (old_dir, new_dir) = (version(false), version(true));
    let old = [
        serve(old_dir.path(), &server),
        serve(old_dir.path(), &server),
    ];
    for replica in &old {
        all_in_sync(replica, 6).await;
    }
    // Started together, the two sent one create per schedule between them,
    // not one each, besides one create each of the writer fence.
    let creates: u64 = old.iter().map(creates_sent).sum();
    assert!(
        creates <= 6 + 2,
        "{creates} CreateSchedule RPCs for 6 schedules"
    );
    let client = support::client(&server).await;
    let (seen, passes, observer) = observe(TemporalStore::new(
        client,
        server.namespace().to_owned(),
        true,
    ));
    observed_again(&passes, 1).await;

    // The rolling deploy: both versions reconcile every second, side by side.
    let new = [
        serve(new_dir.path(), &server),
        serve(new_dir.path(), &server),
    ];
    for replica in &new {
        all_in_sync(replica, 7).await;
    }
    // Side by side for a few reconciles of each.
    let all: Vec<&Serve> = old.iter().chain(&new).collect();
    reconciled_again(&all, 4, &passes).await;
    for id in ["w1", "w2", "w3", "w4", "w6", "w7", "w8"] {
        assert_eq!(changes(&seen, id), 1, "{id}: {}", history(&seen));
    }
    assert_eq!(changes(&seen, "w5"), 0, "{}", history(&seen));
    for id in ["w7", "w8"] {
        let last = *seen.lock().unwrap()[id].last().unwrap();
        assert_eq!(last, Some(1), "the old version deleted the new {id}");
    }
    // The old replicas gave way, say so, and stay ready.
    for replica in &old {
        let (code, health) = replica.get("/healthz");
        assert_eq!(code, 200, "{health}");
        assert_eq!(health["ready"], true);
        assert!(health["superseded_by"].is_object(), "{health}");
        let statuses = statuses(replica);
        for id in ["w1", "w2", "w3", "w4", "w6"] {
            assert_eq!(
                statuses[&format!("roll.{id}")],
                "superseded",
                "{statuses:?}"
            );
        }
        assert_eq!(statuses["roll.w5"], "in_sync");
        assert_eq!(replica.get("/readyz").0, 200);
        let metrics = replica.metrics();
        assert!(
            metrics.contains("schedule_sync_schedules{project=\"roll\",status=\"superseded\"} 5"),
            "{metrics}"
        );
    }

    // The old replicas leave: the new ones are in sync and stay so.
    for mut replica in old {
        replica.signal("TERM");
        replica.wait(Duration::from_secs(15)).await;
    }
    for replica in &new {
        all_in_sync(replica, 7).await;
        assert!(replica.get("/healthz").1["superseded_by"].is_null());
    }

    // A rollback: the old version, started again, is now the newest writer.
    let rollback = serve(old_dir.path(), &server);
    all_in_sync(&rollback, 6).await;
    reconciled_again(&[&rollback, &new[0], &new[1]], 3, &passes).await;
    for id in ["w1", "w2", "w3", "w4", "w6", "w7", "w8"] {
        assert_eq!(changes(&seen, id), 2, "{id}: {}", history(&seen));
    }
    assert_eq!(changes(&seen, "w5"), 0);
    for replica in &new {
        let statuses = statuses(replica);
        assert_eq!(statuses["roll.w1"], "superseded", "{statuses:?}");
    }

    // A person with the new checkout and no revision is refused, and told
    // how to go ahead; nothing is written.
    let output = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .args(["apply", new_dir.path().to_str().unwrap()])
        .args(["--address", &server.address()])
        .env_remove("SCHEDULE_SYNC_REVISION")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("refused: a newer writer holds this project"),
        "{text}"
    );
    assert!(
        text.contains("--revision") && text.contains("--force"),
        "{text}"
    );
    observed_again(&passes, 2).await;
    assert_eq!(changes(&seen, "w1"), 2, "{}", history(&seen));
    observer.abort();
}

mod v1_29 {
    #[tokio::test(flavor = "multi_thread")]
    async fn a_rolling_deploy_and_a_rollback_change_each_schedule_at_most_once() {
        super::a_rolling_deploy_and_a_rollback_change_each_schedule_at_most_once(
            super::Version::V1_29,
        )
        .await;
    }
}

mod v1_32 {
    #[tokio::test(flavor = "multi_thread")]
    async fn a_rolling_deploy_and_a_rollback_change_each_schedule_at_most_once() {
        super::a_rolling_deploy_and_a_rollback_change_each_schedule_at_most_once(
            super::Version::V1_32,
        )
        .await;
    }
}
