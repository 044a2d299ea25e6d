//! Reconciles against the real dev server, read back through the `temporal` CLI.

mod support;

use std::path::Path;
use std::time::Duration;

use schedule_sync::plan::{HoldReason, Step, Untouched};
use schedule_sync::project;
use schedule_sync::reconcile::{ReconcileOptions, reconcile};
use schedule_sync::store::{ScheduleStore, TemporalStore};

fn copy_example() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let target = tempfile::tempdir().unwrap();
    for entry in walkdir_files(&source) {
        let relative = entry.strip_prefix(&source).unwrap();
        let to = target.path().join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, to).unwrap();
    }
    target
}

fn walkdir_files(dir: &Path) -> Vec<std::path::PathBuf> {
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

async fn wait_for_listing(store: &TemporalStore, count: usize) {
    for _ in 0..100 {
        if store.list("billing").await.unwrap().schedules.len() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the listing never showed {count} schedules");
}

#[tokio::test]
async fn apply_creates_then_does_nothing_then_updates_keeping_an_operator_pause_then_deletes() {
    let server = support::dev_server().await;
    let client = support::client(&server).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = copy_example();
    let load = || project::load(dir.path()).unwrap().project;

    let first = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(first.outcomes.len(), 4);
    assert!(
        first
            .outcomes
            .iter()
            .all(|o| matches!(o.step, Step::Create { .. }) && o.error.is_none())
    );
    assert!(first.converged());
    wait_for_listing(&store, 4).await;

    let again = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(
        again.plan.steps.is_empty(),
        "an unchanged project writes nothing: {again:#?}"
    );

    // An operator pauses a schedule; the project then changes it.
    let address = server.address();
    let status = std::process::Command::new(server.cli())
        .args(["schedule", "toggle", "--pause", "--reason", "incident 42"])
        .args([
            "--schedule-id",
            "billing.nightly-report",
            "--address",
            &address,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let file = dir.path().join("workflows/reports/nightly-report.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("jitter: 30s", "jitter: 45s");
    std::fs::write(&file, text).unwrap();
    // The pause is a signal to the scheduler: wait until a listing shows it.
    for _ in 0..100 {
        let listing = store.list("billing").await.unwrap();
        if listing
            .schedules
            .iter()
            .any(|o| o.schedule_id == "billing.nightly-report" && o.paused)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let changed = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(
        changed.plan.steps,
        vec![Step::Update {
            schedule_id: "billing.nightly-report".into(),
            keep_operator_pause: true,
            adopt: false
        }]
    );
    assert!(changed.converged(), "{changed:#?}");
    let mut described = serde_json::Value::Null;
    for _ in 0..50 {
        described = support::describe(&server, "billing.nightly-report");
        if described["schedule"]["spec"]["jitter"] == "45s" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        described["schedule"]["spec"]["jitter"], "45s",
        "{described:#}"
    );
    assert_eq!(described["schedule"]["state"]["paused"], true);
    assert_eq!(described["schedule"]["state"]["notes"], "incident 42");

    // Removing two of four workflows deletes their schedules (half is allowed).
    std::fs::remove_file(dir.path().join("workflows/dunning.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("workflows/invoice-sweep.yaml")).unwrap();
    let shrunk = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    let deleted: Vec<&Step> = shrunk
        .plan
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Delete { .. }))
        .collect();
    assert_eq!(deleted.len(), 2, "{shrunk:#?}");
    assert!(shrunk.converged());
    wait_for_listing(&store, 2).await;

    // Removing all of them is held.
    for name in [
        "workflows/quarter-close.yaml",
        "workflows/reports/nightly-report.yaml",
    ] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let emptied = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(emptied.plan.steps.is_empty());
    assert!(emptied.plan.untouched.iter().all(|u| matches!(
        u,
        Untouched::HeldDeletion {
            why: HoldReason::MassDelete,
            ..
        }
    )));
    assert!(!emptied.converged());
    server.stop();
}
