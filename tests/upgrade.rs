//! An upgrade writes nothing: schedules that the version before the start
//! options (`workflow_id`, timeouts, retry policy, memo, search attributes,
//! summary, details, priority, `args`) applied, from files that did not
//! change, plan no change with this version.
//!
//! `tests/fixtures/upgrade-0.1/` holds a project and, in `pinned.json`, what
//! schedule-sync at commit 267033e (before the start options) computed and
//! wrote for it on the Temporal dev server: each schedule's fingerprint (as
//! computed, and as the memo and the search attribute hold it) and its
//! DescribeSchedule read-back, encoded as protobuf. Nothing here recomputes
//! those: they are the previous version's, as it left them in Temporal.

use std::path::{Path, PathBuf};

use prost::Message;
use schedule_sync::project;
use schedule_sync::reconcile::{ReconcileOptions, preview, reconcile};
use schedule_sync::spec::{self, MEMO_FINGERPRINT, MEMO_PROJECT};
use schedule_sync::store::{FINGERPRINT_ATTRIBUTE, MemoryStore};
use temporalio_common::protos::temporal::api::schedule::v1::Schedule;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade-0.1")
}

/// One schedule as the previous version left it.
#[derive(serde::Deserialize)]
struct Pinned {
    schedule_id: String,
    fingerprint: String,
    memo_fingerprint: String,
    attribute_fingerprint: String,
    schedule_protobuf_hex: String,
}

fn pinned() -> Vec<(Pinned, Schedule)> {
    let text = std::fs::read_to_string(fixture().join("pinned.json")).expect("the fixture");
    let pinned: Vec<Pinned> = serde_json::from_str(&text).expect("pinned.json parses");
    pinned
        .into_iter()
        .map(|p| {
            let bytes: Vec<u8> = (0..p.schedule_protobuf_hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&p.schedule_protobuf_hex[i..i + 2], 16).expect("hex"))
                .collect();
            let schedule = Schedule::decode(bytes.as_slice()).expect("a Schedule");
            (p, schedule)
        })
        .collect()
}

/// A store holding the schedules as the previous version left them; with
/// `attribute`, the fingerprint search attribute is there for the listing.
fn store_as_left(attribute: bool) -> MemoryStore {
    let store = MemoryStore::new();
    for (pinned, schedule) in pinned() {
        store.insert_unowned_with_memo(
            &pinned.schedule_id,
            schedule,
            &[
                (MEMO_PROJECT, "upgrade"),
                (
                    MEMO_FINGERPRINT,
                    &serde_json::from_str::<String>(&pinned.memo_fingerprint).unwrap(),
                ),
            ],
        );
        if attribute {
            store.tag(
                &pinned.schedule_id,
                FINGERPRINT_ATTRIBUTE,
                &serde_json::from_str::<String>(&pinned.attribute_fingerprint).unwrap(),
            );
        }
    }
    store
}

#[test]
fn the_fingerprint_of_a_schedule_without_start_options_is_the_previous_versions() {
    let project = project::load(&fixture().join("project"))
        .expect("loads")
        .project;
    let wanted = spec::desired(&project);
    let pinned = pinned();
    assert_eq!(wanted.len(), pinned.len());
    for (pinned, _) in &pinned {
        let want = wanted
            .iter()
            .find(|w| w.schedule_id == pinned.schedule_id)
            .expect("declared");
        assert_eq!(
            want.fingerprint.0, pinned.fingerprint,
            "{}",
            pinned.schedule_id
        );
        assert_eq!(
            format!("\"{}\"", want.fingerprint.0),
            pinned.attribute_fingerprint
        );
    }
}

#[tokio::test]
async fn an_upgrade_writes_nothing_with_or_without_the_fingerprint_attribute() {
    let project = project::load(&fixture().join("project"))
        .expect("loads")
        .project;
    for attribute in [true, false] {
        let store = store_as_left(attribute);
        let shown = preview(&store, &project, ReconcileOptions::default())
            .await
            .expect("plans");
        assert!(
            shown.plan.steps.is_empty(),
            "{attribute}: {:#?}",
            shown.plan
        );
        assert!(
            shown.changes.is_empty(),
            "{attribute}: {:#?}",
            shown.changes
        );
        let report = reconcile(&store, &project, ReconcileOptions::default())
            .await
            .expect("reconciles");
        assert!(report.converged(), "{report:#?}");
        assert_eq!(store.writes(), 0, "{attribute}: {:?}", store.calls());
        // With the attribute, the listing is all it costs.
        if attribute {
            assert_eq!(store.calls_of(schedule_sync::Rpc::DescribeSchedule), 0);
        }
        assert_eq!(store.calls_of(schedule_sync::Rpc::ListSearchAttributes), 0);
    }
}
