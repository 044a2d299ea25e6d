//! `TemporalStore` against the real dev server: markers, fingerprints,
//! conflict tokens, pauses and idempotent create and delete, read back
//! through the store and independently through the `temporal` CLI.

mod support;

use std::path::Path;
use std::time::Duration;

use schedule_sync::plan::{self, PlanOptions};
use schedule_sync::project;
use schedule_sync::spec::{self, DesiredSchedule, PAUSE_NOTE_PREFIX};
use schedule_sync::store::Observation;
use schedule_sync::store::{Created, PauseState, ScheduleStore, TemporalStore};

/// Lists until `want` schedules show up: the listing is eventually consistent.
async fn list_until(store: &TemporalStore, project: &str, want: usize) -> Observation {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let observation = store.list(project).await.expect("lists");
        if observation.schedules.len() == want || tokio::time::Instant::now() > deadline {
            return observation;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_store_round_trips_schedules_on_the_real_server() {
    let server = support::dev_server().await;
    let client = support::client(&server).await;
    let namespace = server.namespace().to_owned();
    assert!(
        TemporalStore::has_fingerprint_attribute(&client, &namespace)
            .await
            .unwrap(),
        "the dev server registers the fingerprint attribute"
    );
    let store = TemporalStore::new(client, namespace, true);

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let project = project::load(&example).unwrap().project;
    let wanted = spec::desired(&project);
    assert_eq!(wanted.len(), 4);

    for schedule in &wanted {
        assert_eq!(
            store
                .create(
                    "billing",
                    schedule,
                    &pause_of(schedule),
                    &Default::default(),
                    &request_id(schedule)
                )
                .await
                .unwrap(),
            Created::Created
        );
    }
    // A retried create (same request id) is idempotent; a different create on
    // a taken id finds it taken.
    assert_eq!(
        store
            .create(
                "billing",
                &wanted[0],
                &pause_of(&wanted[0]),
                &Default::default(),
                &request_id(&wanted[0])
            )
            .await
            .unwrap(),
        Created::Created
    );
    let mut other = wanted[0].clone();
    other.fingerprint = spec::Fingerprint("another".into());
    assert_eq!(
        store
            .create(
                "billing",
                &other,
                &pause_of(&other),
                &Default::default(),
                "another-create"
            )
            .await
            .unwrap(),
        Created::AlreadyExists
    );

    // Everything reads back with our marker and fingerprint: a plan of the
    // same project writes nothing.
    let observation = list_until(&store, "billing", 4).await;
    assert!(observation.complete);
    assert_eq!(observation.schedules.len(), 4, "{observation:#?}");
    let compact: Vec<spec::CompactSchedule> = wanted.iter().map(Into::into).collect();
    let plan = plan::plan("billing", &compact, &observation, PlanOptions::default());
    assert!(plan.is_empty(), "{plan:#?}");
    let disabled = observation
        .schedules
        .iter()
        .find(|o| o.schedule_id == "billing.dunning")
        .unwrap();
    assert!(disabled.paused && disabled.notes.starts_with(PAUSE_NOTE_PREFIX));

    // The server keeps the structured spec exactly as we send it.
    let report = wanted
        .iter()
        .find(|d| d.schedule_id == "billing.nightly-report")
        .unwrap();
    let described = store
        .describe(&report.schedule_id)
        .await
        .unwrap()
        .expect("exists");
    let sent = report.schedule.spec.as_ref().unwrap();
    let held = described.schedule.spec.as_ref().unwrap();
    assert_eq!(held.structured_calendar, sent.structured_calendar);
    assert_eq!(held.timezone_name, sent.timezone_name);
    assert_eq!(held.jitter, sent.jitter);
    assert_eq!(described.schedule.policies, report.schedule.policies);

    // Independently, through the CLI: the marker and the fingerprint.
    let cli = support::describe(&server, "billing.nightly-report");
    let attribute = &cli["searchAttributes"]["indexedFields"]["ScheduleSyncFingerprint"]["data"];
    assert!(attribute.is_string(), "{cli:#}");
    assert!(
        cli["memo"]["fields"]["schedule-sync.project"].is_object(),
        "{cli:#}"
    );

    // An update with the current token lands; the same token again is a lost race.
    let paused = PauseState {
        paused: true,
        notes: "investigating".into(),
    };
    store
        .update("billing", report, &paused, &described, "update-1")
        .await
        .unwrap();
    // A retry of that very update (a lost response) is deduplicated, not refused.
    store
        .update("billing", report, &paused, &described, "update-1")
        .await
        .unwrap();
    // Updates reach the scheduler as signals, processed in order. Wait
    // until the first one shows.
    let mut after = store.describe(&report.schedule_id).await.unwrap().unwrap();
    for _ in 0..50 {
        if after.observed.notes == "investigating" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = store.describe(&report.schedule_id).await.unwrap().unwrap();
    }
    assert!(after.observed.paused_by_operator(), "{:?}", after.observed);
    assert_ne!(after.conflict_token, described.conflict_token);
    let cli = support::describe(&server, "billing.nightly-report");
    assert_eq!(cli["schedule"]["state"]["paused"], true);
    assert_eq!(cli["schedule"]["state"]["notes"], "investigating");

    // A different change on the old token lost the race. This server (1.29,
    // workflow-based scheduler) answers OK and drops the update, so a lost
    // race shows only on reading back: the reconciler must verify.
    let mut changed = report.clone();
    changed.fingerprint = spec::Fingerprint("changed".into());
    changed.schedule.spec.as_mut().unwrap().jitter = Some(prost_wkt_types::Duration {
        seconds: 99,
        nanos: 0,
    });
    store
        .update("billing", &changed, &paused, &described, "update-2")
        .await
        .expect("the server takes the stale update without an error");
    // A later patch (a signal behind the stale update) marks when it was handled.
    let resumed = PauseState {
        paused: false,
        notes: "resumed".into(),
    };
    store
        .set_paused(&report.schedule_id, &resumed)
        .await
        .unwrap();
    let mut last = store.describe(&report.schedule_id).await.unwrap().unwrap();
    for _ in 0..50 {
        if !last.observed.paused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = store.describe(&report.schedule_id).await.unwrap().unwrap();
    }
    assert!(!last.observed.paused, "the patch was applied");
    assert_eq!(
        last.schedule.spec.unwrap().jitter,
        sent.jitter,
        "the stale update was dropped"
    );
    assert_eq!(last.observed.fingerprint, Some(report.fingerprint.clone()));

    // Delete is idempotent; describe of a deleted schedule is None.
    store.delete(&report.schedule_id).await.unwrap();
    store.delete(&report.schedule_id).await.unwrap();
    assert!(store.describe(&report.schedule_id).await.unwrap().is_none());

    // Another project's listing never sees billing's schedules.
    assert!(store.list("bill").await.unwrap().schedules.is_empty());
    server.stop();
}

/// The pause state a desired schedule is created in.
fn pause_of(schedule: &DesiredSchedule) -> PauseState {
    let state = schedule.schedule.state.clone().unwrap_or_default();
    PauseState {
        paused: state.paused,
        notes: state.notes,
    }
}

/// A request id for the first create of `schedule` in this test.
fn request_id(schedule: &DesiredSchedule) -> String {
    format!("test-create-{}", schedule.schedule_id)
}
