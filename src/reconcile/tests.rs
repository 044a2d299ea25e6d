//! The apply engine against the in-memory store, in paused time.

use super::*;
use crate::fence::WriterKey;
use crate::plan::Untouched;
use crate::spec::desired;
use crate::store::{MemoryStore, SchedulerModel};

fn project(files: &[&str]) -> Project {
    crate::project::test_project("foo", files)
}

/// A store whose fence of project `foo` names the default writer already,
/// as after a first write, so that counts and injected faults concern the
/// schedules only.
fn fenced_store() -> MemoryStore {
    fenced_store_as(SchedulerModel::Workflow129)
}

/// [`fenced_store`], behaving as `model`.
fn fenced_store_as(model: SchedulerModel) -> MemoryStore {
    let store = MemoryStore::behaving_as(model);
    let mut fence = crate::fence::fence_schedule("foo").schedule;
    fence.state.as_mut().unwrap().notes = crate::fence::notes(WriterKey::default());
    store.insert_unowned_with_memo(
        &crate::fence::fence_id("foo"),
        fence,
        &[(crate::spec::MEMO_PROJECT, "foo")],
    );
    store
}

fn as_writer(writer: WriterKey) -> ReconcileOptions {
    let mut options = ReconcileOptions::default();
    options.plan.writer = writer;
    options
}

/// The writer that `foo`'s fence in `store` names.
fn fence_writer(store: &MemoryStore) -> Option<WriterKey> {
    let fence = store.get(&crate::fence::fence_id("foo"))?;
    crate::fence::parse(&fence.state.unwrap_or_default().notes).map(|w| w.key)
}

#[tokio::test(start_paused = true)]
async fn the_first_write_records_the_writer_and_a_newer_one_takes_over() {
    let store = MemoryStore::new();
    let old = WriterKey::revision(1);
    let report = reconcile(&store, &project(&[A, B]), as_writer(old))
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(fence_writer(&store), Some(old));
    let fence = store.get(&crate::fence::fence_id("foo")).unwrap();
    assert!(fence.state.unwrap().paused, "the fence never fires");
    assert!(fence.spec.unwrap().structured_calendar.is_empty());

    // The new version changes A and drops B, and takes the fence first.
    let new = WriterKey::revision(2);
    let report = reconcile(&store, &project(&[A2]), as_writer(new))
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(fence_writer(&store), Some(new));
    assert!(store.get("foo.b").is_none());

    // The old version now writes nothing: not A back, not B again.
    let writes = store.writes();
    let report = reconcile(&store, &project(&[A, B]), as_writer(old))
        .await
        .unwrap();
    assert_eq!(store.writes(), writes, "{report:#?}");
    assert!(!report.converged());
    assert_eq!(report.plan.superseded_by().unwrap().key, new);
    assert_eq!(
        report.plan.untouched,
        vec![
            Untouched::Superseded {
                schedule_id: "foo.a".into(),
                operation: "update"
            },
            Untouched::Superseded {
                schedule_id: "foo.b".into(),
                operation: "create"
            },
        ]
    );
    // ... unless forced, which leaves the fence to the newer writer.
    let mut forced = as_writer(old);
    forced.plan.force = true;
    let report = reconcile(&store, &project(&[A, B]), forced).await.unwrap();
    assert!(report.converged(), "{report:#?}");
    assert!(store.get("foo.b").is_some());
    assert_eq!(fence_writer(&store), Some(new));
}

#[tokio::test(start_paused = true)]
async fn a_claim_read_back_names_the_newer_writer_when_one_raced_ahead() {
    let store = fenced_store();
    store.freeze_listing();
    // The listing still shows the old fence; the fence itself names a
    // newer writer by the time we claim.
    store.operator_pause(
        &crate::fence::fence_id("foo"),
        &crate::fence::notes(WriterKey::revision(5)),
    );
    let report = reconcile(&store, &project(&[A]), as_writer(WriterKey::revision(3)))
        .await
        .unwrap();
    assert_eq!(
        store.calls_of(crate::store::Rpc::CreateSchedule),
        0,
        "{report:#?}"
    );
    assert_eq!(store.calls_of(crate::store::Rpc::PatchSchedule), 0);
    assert_eq!(
        report.plan.superseded_by().unwrap().key,
        WriterKey::revision(5)
    );
}

#[tokio::test(start_paused = true)]
async fn a_newer_writer_that_claims_mid_way_stops_the_steps_not_yet_started() {
    let store = MemoryStore::new();
    let files: Vec<String> = (0..40)
        .map(|i| format!("id: w{i}\nschedule:\n  every: 1h\n"))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let mut options = as_writer(WriterKey::revision(1));
    options.concurrency = 1;
    // Each create takes a while; a newer writer claims after a few.
    store.delay(
        crate::store::Rpc::CreateSchedule,
        std::time::Duration::from_millis(300),
    );
    let racing = async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        store.operator_pause(
            &crate::fence::fence_id("foo"),
            &crate::fence::notes(WriterKey::revision(2)),
        );
    };
    let project = project(&files);
    let (report, ()) = tokio::join!(reconcile(&store, &project, options), racing);
    let report = report.unwrap();
    let superseded = report
        .outcomes
        .iter()
        .filter(|o| o.effect == Effect::Superseded)
        .count();
    let applied = report
        .outcomes
        .iter()
        .filter(|o| o.effect == Effect::Applied)
        .count();
    assert!(
        (3..=12).contains(&applied),
        "applied {applied}: {report:#?}"
    );
    assert_eq!(applied + superseded, 40);
    assert_eq!(
        report.plan.superseded_by().unwrap().key,
        WriterKey::revision(2)
    );
}

const A: &str = "id: a\nschedule:\n  cron: \"@daily\"\n";
const B: &str = "id: b\nschedule:\n  cron: \"@hourly\"\n";
const C: &str = "id: c\nschedule:\n  every: 1h\n";
const A2: &str = "id: a\nschedule:\n  cron: \"@weekly\"\n";

#[tokio::test(start_paused = true)]
async fn an_unchanged_project_costs_one_listing_and_zero_writes() {
    let store = fenced_store();
    let first = reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(first.converged());
    assert_eq!(store.writes(), 3);
    let calls_before = store.calls().len();
    let second = reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(second.plan.steps.is_empty());
    assert_eq!(
        store.calls()[calls_before..],
        [crate::store::Rpc::ListSchedules]
    );
    assert_eq!(store.writes(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_lagging_listing_causes_no_error_and_no_duplicate() {
    let store = fenced_store();
    store.freeze_listing();
    for _ in 0..2 {
        // The listing still shows nothing: the creates find the ids taken.
        let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
    }
    assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 4);
    assert_eq!(
        store.calls_of(crate::store::Rpc::UpdateSchedule),
        0,
        "a create that finds its schedule already as wanted writes nothing more"
    );
    store.catch_up_listing();
    store.freeze_listing();
    for _ in 0..2 {
        // The listing still shows B after its deletion.
        let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
    }
    store.catch_up_listing();
    assert!(store.get("foo.b").is_none());
    assert!(store.get("foo.a").is_some());
    let settled = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(settled.plan.steps.is_empty(), "{settled:#?}");
}

#[tokio::test(start_paused = true)]
async fn an_edit_made_out_of_band_is_corrected_but_an_operator_pause_is_kept() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    let wanted = store.get("foo.a").unwrap();
    store.operator_edit("foo.a", |s| {
        s.spec.as_mut().unwrap().timezone_name = "UTC".into()
    });
    store.operator_pause("foo.b", "hold off");
    let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(store.get("foo.a"), Some(wanted));
    assert!(store.get("foo.b").unwrap().state.unwrap().paused);
}

#[tokio::test(start_paused = true)]
async fn resource_exhausted_backs_off_exponentially_then_succeeds() {
    let store = fenced_store();
    store.fail_next(
        crate::store::Rpc::CreateSchedule,
        crate::store::Code::ResourceExhausted,
        3,
    );
    let started = tokio::time::Instant::now();
    let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(started.elapsed(), Duration::from_millis(200 + 400 + 800));
    assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 4);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_retried_and_does_not_stop_the_others() {
    let store = fenced_store();
    store.fail_next(
        crate::store::Rpc::CreateSchedule,
        crate::store::Code::InvalidArgument,
        1,
    );
    let report = reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
        .await
        .unwrap();
    let failed: Vec<&StepOutcome> = report
        .outcomes
        .iter()
        .filter(|o| o.error.is_some())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].step,
        Step::Create {
            schedule_id: "foo.a".into()
        }
    );
    assert!(store.get("foo.b").is_some() && store.get("foo.c").is_some());
    assert!(!report.converged());
    assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 3);
}

#[tokio::test(start_paused = true)]
async fn a_lost_race_is_re_read_and_retried() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    store.fail_next(
        crate::store::Rpc::UpdateSchedule,
        crate::store::Code::FailedPrecondition,
        1,
    );
    let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    let updates = store.calls_of(crate::store::Rpc::UpdateSchedule);
    assert_eq!(updates, 2);
    let want = &desired(&project(&[A2]))[0];
    assert_eq!(store.get("foo.a").unwrap().spec, want.schedule.spec);
}

#[tokio::test(start_paused = true)]
async fn losing_every_race_is_reported_not_forced() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    store.fail_next(
        crate::store::Rpc::UpdateSchedule,
        crate::store::Code::FailedPrecondition,
        RACE_ATTEMPTS as usize,
    );
    let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(!report.converged());
    assert!(
        report.outcomes[0]
            .error
            .as_deref()
            .unwrap()
            .contains("FailedPrecondition")
    );
}

#[tokio::test(start_paused = true)]
async fn an_operator_pause_survives_an_update() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    store.operator_pause("foo.a", "incident 7");
    let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    let state = store.get("foo.a").unwrap().state.unwrap();
    assert!(state.paused);
    assert_eq!(state.notes, "incident 7");
    let again = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.plan.untouched,
        vec![Untouched::PausedByOperator {
            schedule_id: "foo.a".into()
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_schedule_without_our_marker_is_never_written_unless_adopted() {
    let store = MemoryStore::new();
    let foreign = desired(&project(&[A2]))[0].schedule.clone();
    store.insert_unowned("foo.a", foreign.clone());
    let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(store.writes(), 0);
    assert_eq!(store.get("foo.a").unwrap(), foreign);
    assert!(!report.converged());
    let mut options = ReconcileOptions::default();
    options.plan.adopt = true;
    let adopted = reconcile(&store, &project(&[A]), options).await.unwrap();
    assert!(adopted.converged(), "{adopted:#?}");
    let after = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(after.plan.steps.is_empty(), "adopted and now ours");
}

#[tokio::test(start_paused = true)]
async fn adoption_of_a_schedule_the_listing_does_not_show_yet() {
    let store = MemoryStore::new();
    store.freeze_listing();
    let foreign = desired(&project(&[A2]))[0].schedule.clone();
    store.insert_unowned("foo.a", foreign.clone());
    // Without --adopt, the create that finds the id taken leaves it alone.
    let refused = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(refused.outcomes[0].effect, Effect::Conflict, "{refused:#?}");
    assert_eq!(store.get("foo.a").unwrap(), foreign);
    assert_eq!(store.owner("foo.a"), None);
    // With it, the create goes the update path and adopts it.
    let mut options = ReconcileOptions::default();
    options.plan.adopt = true;
    let adopted = reconcile(&store, &project(&[A]), options).await.unwrap();
    assert!(
        matches!(adopted.plan.steps[..], [Step::Create { .. }]),
        "{adopted:#?}"
    );
    assert!(adopted.converged(), "{adopted:#?}");
    assert_eq!(store.owner("foo.a").as_deref(), Some("foo"));
    assert_ne!(store.get("foo.a").unwrap(), foreign);
}

#[tokio::test(start_paused = true)]
async fn flipping_enabled_pauses_and_resumes() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    let off = "id: a\nschedule:\n  cron: \"@daily\"\n  enabled: false\n";
    reconcile(&store, &project(&[off]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(store.get("foo.a").unwrap().state.unwrap().paused);
    reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(!store.get("foo.a").unwrap().state.unwrap().paused);
}

const MANY: &str = "id: m\nschedule:\n  cron:\n    - \"0 0 * * *\"\n    - \"0 1 * * *\"\n    - \"0 2 * * *\"\n    - \"0 3 * * *\"\n    - \"0 4 * * *\"\n    - \"0 5 * * *\"\n    - \"0 6 * * *\"\n    - \"0 7 * * *\"\n    - \"0 8 * * *\"\n    - \"0 9 * * *\"\n    - \"0 10 * * *\"\n    - \"0 11 * * *\"\n";

#[tokio::test(start_paused = true)]
async fn a_schedule_deleted_by_an_operator_is_created_again() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    store.operator_delete("foo.a");
    let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(report.outcomes[0].effect, Effect::Applied);
    assert!(store.get("foo.a").is_some(), "re-created");
    // Dropped from the project, then declared again.
    reconcile(&store, &project(&[B]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(store.get("foo.a").is_none());
    reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(
        store.get("foo.a").is_some(),
        "declared again, created again"
    );
}

#[tokio::test(start_paused = true)]
async fn adoption_re_creates_the_schedule_when_the_memo_cannot_be_updated() {
    let store = MemoryStore::new();
    let foreign = desired(&project(&[A2]))[0].schedule.clone();
    store.insert_unowned("foo.a", foreign);
    store.tag("foo.a", "Team", "ops");
    let mut options = ReconcileOptions::default();
    options.plan.adopt = true;
    let adopted = reconcile(&store, &project(&[A]), options).await.unwrap();
    assert!(adopted.converged(), "{adopted:#?}");
    assert_eq!(store.owner("foo.a").as_deref(), Some("foo"));
    assert_eq!(store.calls_of(crate::store::Rpc::DeleteSchedule), 1);
    assert_eq!(
        store
            .search_attributes("foo.a")
            .get("Team")
            .map(String::as_str),
        Some("\"ops\""),
        "the re-created schedule keeps the tags it had"
    );
    let plain = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(
        plain.converged() && plain.plan.steps.is_empty(),
        "{plain:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn on_the_chasm_scheduler_adoption_updates_in_place_keeping_the_memo_of_others() {
    let store = MemoryStore::behaving_as(SchedulerModel::Chasm132);
    let foreign = desired(&project(&[A2]))[0].schedule.clone();
    store.insert_unowned_with_memo("foo.a", foreign, &[("made-by", "ops")]);
    store.tag("foo.a", "Team", "ops");
    let mut options = ReconcileOptions::default();
    options.plan.adopt = true;
    let adopted = reconcile(&store, &project(&[A]), options).await.unwrap();
    assert!(adopted.converged(), "{adopted:#?}");
    assert_eq!(store.owner("foo.a").as_deref(), Some("foo"));
    assert_eq!(
        store.calls_of(crate::store::Rpc::DeleteSchedule),
        0,
        "no re-create"
    );
    assert_eq!(store.calls_of(crate::store::Rpc::UpdateSchedule), 1);
    assert_eq!(
        store.memo("foo.a").get("made-by").map(String::as_str),
        Some("\"ops\"")
    );
    assert_eq!(
        store
            .search_attributes("foo.a")
            .get("Team")
            .map(String::as_str),
        Some("\"ops\"")
    );
    let plain = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(plain.plan.steps.is_empty(), "{plain:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_workflow_backed_schedule_on_1_32_is_updated_without_a_memo_and_adopted_by_re_creating() {
    let store = MemoryStore::behaving_as(SchedulerModel::Workflow132);
    reconcile(&store, &project(&[B]), ReconcileOptions::default())
        .await
        .unwrap();
    let changed = "id: b\nschedule:\n  cron: \"@weekly\"\n";
    let report = reconcile(&store, &project(&[changed]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(
        store.calls_of(crate::store::Rpc::UpdateSchedule),
        1,
        "ours: sent without a memo"
    );

    let foreign = desired(&project(&[A2]))[0].schedule.clone();
    store.insert_unowned("foo.a", foreign);
    let mut options = ReconcileOptions::default();
    options.plan.adopt = true;
    let adopted = reconcile(&store, &project(&[A, changed]), options)
        .await
        .unwrap();
    assert!(adopted.converged(), "{adopted:#?}");
    assert_eq!(store.owner("foo.a").as_deref(), Some("foo"));
    assert_eq!(
        store.calls_of(crate::store::Rpc::UpdateSchedule),
        2,
        "the refused memo is no lost race: not retried"
    );
    assert_eq!(store.calls_of(crate::store::Rpc::DeleteSchedule), 1);
}

#[tokio::test(start_paused = true)]
async fn an_update_keeps_search_attributes_that_are_not_ours() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    store.tag("foo.a", "Team", "payments");
    let report = reconcile(&store, &project(&[A2]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(store.calls_of(crate::store::Rpc::UpdateSchedule), 1);
    let attributes = store.search_attributes("foo.a");
    assert_eq!(
        attributes.get("Team").map(String::as_str),
        Some("\"payments\"")
    );
    assert_eq!(
        attributes.get(crate::store::FINGERPRINT_ATTRIBUTE),
        Some(&format!(
            "\"{}\"",
            desired(&project(&[A2]))[0].fingerprint.0
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn more_than_ten_cron_entries_cost_no_write_when_unchanged() {
    let store = MemoryStore::new();
    reconcile(&store, &project(&[MANY]), ReconcileOptions::default())
        .await
        .unwrap();
    let writes = store.writes();
    for _ in 0..2 {
        let again = reconcile(&store, &project(&[MANY]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(again.plan.steps.is_empty(), "{again:#?}");
    }
    assert_eq!(store.writes(), writes);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_temporal_ends_the_reconcile_at_once() {
    let many: Vec<String> = (0..300)
        .map(|i| format!("id: w{i}\nschedule:\n  cron: \"@daily\"\n"))
        .collect();
    let files: Vec<&str> = many.iter().map(String::as_str).collect();
    let store = fenced_store();
    // The listing works, then Temporal goes away for good.
    store.fail_next(
        crate::store::Rpc::CreateSchedule,
        crate::store::Code::Unavailable,
        10_000,
    );
    let started = tokio::time::Instant::now();
    let options = ReconcileOptions {
        concurrency: 2,
        ..Default::default()
    };
    let report = reconcile(&store, &project(&files), options).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(!report.converged());
    assert!(report.outcomes.iter().all(|o| o.retryable));
    let not_started = report
        .outcomes
        .iter()
        .filter(|o| o.effect == Effect::NotStarted)
        .count();
    assert!(not_started >= 290, "{not_started} not started");
    // Two steps at a time, each retrying at 0.2, 0.6, 1.4 and 3 s: the
    // outage is declared at 3 s, after at most 5 creates of each.
    assert!(
        store.calls_of(crate::store::Rpc::CreateSchedule) <= 10,
        "{} creates",
        store.calls_of(crate::store::Rpc::CreateSchedule)
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_temporal_is_not_taken_for_an_outage() {
    let store = fenced_store();
    store.fail_next(
        crate::store::Rpc::CreateSchedule,
        crate::store::Code::ResourceExhausted,
        12,
    );
    let options = ReconcileOptions {
        concurrency: 1,
        ..Default::default()
    };
    let report = reconcile(&store, &project(&[A, B, C]), options)
        .await
        .unwrap();
    // a spends its throttled attempts; b and c still go ahead: throttling
    // never stops the reconcile as an outage would.
    let effects: Vec<Effect> = report.outcomes.iter().map(|o| o.effect).collect();
    assert_eq!(effects, [Effect::Failed, Effect::Applied, Effect::Applied]);
    let error = report.outcomes[0].error.as_deref().unwrap();
    assert!(error.contains("throttled"), "{error}");
    assert!(report.outcomes[0].retryable);
    assert_eq!(
        store.calls_of(crate::store::Rpc::CreateSchedule),
        crate::reconcile::THROTTLED_ATTEMPTS as usize + 3 + 1
    );
}

#[tokio::test(start_paused = true)]
async fn throttled_answers_have_a_budget_of_their_own() {
    let store = fenced_store();
    // More throttled answers than the attempts for other errors, then an
    // error that may heal: the create still lands.
    store.fail_next(
        crate::store::Rpc::CreateSchedule,
        crate::store::Code::ResourceExhausted,
        6,
    );
    store.fail_next(
        crate::store::Rpc::CreateSchedule,
        crate::store::Code::Unavailable,
        1,
    );
    let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 6 + 1 + 1);
}

#[tokio::test(start_paused = true)]
async fn writes_act_on_the_schedule_as_it_is_not_as_a_stale_listing_shows_it() {
    let store = MemoryStore::new();
    let off = "id: b\nschedule:\n  cron: \"@hourly\"\n  enabled: false\n";
    reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
        .await
        .unwrap();
    store.freeze_listing();
    // Since the listing: a deleted, b replaced by a hand-made schedule.
    store.operator_delete("foo.a");
    store.operator_delete("foo.b");
    store.insert_unowned("foo.b", desired(&project(&[B]))[0].schedule.clone());
    let mut options = ReconcileOptions::default();
    options.plan.allow_mass_delete = true;
    let report = reconcile(&store, &project(&[off, C]), options)
        .await
        .unwrap();
    let effects: Vec<(String, Effect)> = report
        .outcomes
        .iter()
        .map(|o| (o.step.schedule_id().to_owned(), o.effect))
        .collect();
    assert_eq!(
        effects,
        vec![
            ("foo.a".to_owned(), Effect::AlreadyDone),
            ("foo.b".to_owned(), Effect::Conflict),
        ]
    );
    assert!(report.outcomes.iter().all(|o| o.error.is_none()));
    assert_eq!(store.calls_of(crate::store::Rpc::DeleteSchedule), 0);
    assert_eq!(store.calls_of(crate::store::Rpc::PatchSchedule), 0);
    assert!(
        store.owner("foo.b").is_none(),
        "the hand-made one is left alone"
    );
}

#[tokio::test(start_paused = true)]
async fn only_a_create_sent_twice_is_read_back() {
    let store = fenced_store();
    store.lose_next_create_answers(1);
    let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    // a: created, answer lost, sent again (answered OK by its request
    // id), then described to make sure it exists; b: created once. The
    // other describe reads the writer fence before the first write.
    assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 3);
    assert_eq!(store.calls_of(crate::store::Rpc::DescribeSchedule), 2);
    assert!(store.get("foo.a").is_some() && store.get("foo.b").is_some());
}

/// `n` workflows that each fire hourly.
fn hourly(n: usize) -> Project {
    let files: Vec<String> = (0..n)
        .map(|i| format!("id: w{i}\nschedule:\n  every: 1h\n"))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    project(&files)
}

/// Reconciles `project` as three writers started together, each named in
/// the fence as `name` with rank `keys[i]`, against `store`, whose creates
/// take 200 ms (about the dev server's pace at a concurrency of 16).
async fn three_writers(store: &MemoryStore, project: &Project, keys: [WriterKey; 3]) {
    store.delay(
        crate::store::Rpc::CreateSchedule,
        std::time::Duration::from_millis(200),
    );
    let names = ["pod-a/1", "pod-b/1", "pod-c/1"];
    let desired = DesiredProject::of(project);
    let reports = futures_util::future::join_all(
        keys.iter()
            .zip(names)
            .map(|(key, name)| run(store, &desired, as_writer(*key), &(), name)),
    )
    .await;
    for report in reports {
        report.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn writers_started_together_send_each_create_about_once() {
    let start =
        |ms| WriterKey::started_at(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    for model in [SchedulerModel::Workflow129, SchedulerModel::Chasm132] {
        let store = MemoryStore::behaving_as(model);
        let project = hourly(400);
        three_writers(&store, &project, [start(1_000), start(1_004), start(1_009)]).await;
        for i in 0..400 {
            assert!(store.get(&format!("foo.w{i}")).is_some(), "{model:?}: w{i}");
        }
        // Three creates of the fence (one made, two found taken), and one
        // create per schedule, with at most a few sent twice.
        let creates = store.calls_of(crate::store::Rpc::CreateSchedule);
        assert!(
            (403..=410).contains(&creates),
            "{model:?}: {creates} creates"
        );
        assert_eq!(fence_writer(&store), Some(start(1_009)), "{model:?}");
        assert_eq!(store.calls_of(crate::store::Rpc::DeleteSchedule), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn peers_started_together_let_the_first_claim_write() {
    for model in [SchedulerModel::Workflow129, SchedulerModel::Chasm132] {
        let store = MemoryStore::behaving_as(model);
        let project = hourly(400);
        let peer = WriterKey::revision(7);
        three_writers(&store, &project, [peer; 3]).await;
        for i in 0..400 {
            assert!(store.get(&format!("foo.w{i}")).is_some(), "{model:?}: w{i}");
        }
        let creates = store.calls_of(crate::store::Rpc::CreateSchedule);
        assert_eq!(creates, 403, "{model:?}: {creates} creates");
        assert_eq!(
            store.calls_of(crate::store::Rpc::UpdateSchedule),
            0,
            "{model:?}"
        );
    }
}

/// Listings that lag behind every write (the visibility store behind):
/// each peer that waits sees no progress and claims over the one writing.
/// A peer's claim stops no writer, so every peer that begins writing
/// finishes, and every schedule is written.
#[tokio::test(start_paused = true)]
async fn peers_converge_though_listings_never_show_their_writes() {
    for model in [SchedulerModel::Workflow129, SchedulerModel::Chasm132] {
        let store = MemoryStore::behaving_as(model);
        store.freeze_listing();
        let project = hourly(400);
        let peer = WriterKey::revision(7);
        store.delay(
            crate::store::Rpc::CreateSchedule,
            std::time::Duration::from_millis(200),
        );
        let names = ["pod-a/1", "pod-b/1", "pod-c/1"];
        let desired = DesiredProject::of(&project);
        let reports = futures_util::future::join_all(
            names
                .iter()
                .map(|name| run(&store, &desired, as_writer(peer), &(), name)),
        )
        .await;
        for report in reports {
            let report = report.unwrap();
            assert!(
                report
                    .outcomes
                    .iter()
                    .all(|o| o.effect != Effect::Superseded),
                "{model:?}: a peer's claim stopped a writer"
            );
        }
        for i in 0..400 {
            assert!(store.get(&format!("foo.w{i}")).is_some(), "{model:?}: w{i}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_makes_no_progress_is_claimed_over_after_one_listing() {
    let store = MemoryStore::new();
    let peer = WriterKey::revision(7);
    let mut fence = crate::fence::fence_schedule("foo").schedule;
    fence.state.as_mut().unwrap().notes = crate::fence::notes_by(peer, "gone/1");
    store.insert_unowned_with_memo(
        &crate::fence::fence_id("foo"),
        fence,
        &[(crate::spec::MEMO_PROJECT, "foo")],
    );
    let started = tokio::time::Instant::now();
    let desired = DesiredProject::of(&project(&[A, B]));
    let report = run(&store, &desired, as_writer(peer), &(), "here/2")
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    let fence = store.get(&crate::fence::fence_id("foo")).unwrap();
    let holder = crate::fence::parse(&fence.state.unwrap().notes).unwrap();
    assert_eq!(holder.name, "here/2");
    assert_eq!(
        store.calls_of(crate::store::Rpc::ListSchedules),
        2,
        "one listing more, to watch"
    );
    assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 2);
    assert!(started.elapsed() < crate::fence::SETTLE * 2);
}

#[tokio::test(start_paused = true)]
async fn a_claim_never_overwrites_a_claim_made_since_the_fence_was_read() {
    for model in [SchedulerModel::Workflow129, SchedulerModel::Chasm132] {
        let store = fenced_store_as(model);
        // Our claim takes a second to arrive; a newer writer claims meanwhile.
        store.delay(
            crate::store::Rpc::UpdateSchedule,
            std::time::Duration::from_secs(1),
        );
        let racing = async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            store.operator_pause(
                &crate::fence::fence_id("foo"),
                &crate::fence::notes_by(WriterKey::revision(5), "newer/1"),
            );
        };
        let project = project(&[A]);
        let (report, ()) = tokio::join!(
            reconcile(&store, &project, as_writer(WriterKey::revision(3))),
            racing
        );
        let report = report.unwrap();
        assert_eq!(
            store.calls_of(crate::store::Rpc::UpdateSchedule),
            1,
            "{model:?}"
        );
        assert_eq!(
            fence_writer(&store),
            Some(WriterKey::revision(5)),
            "{model:?}: the newer claim stays"
        );
        assert_eq!(
            store.calls_of(crate::store::Rpc::CreateSchedule),
            0,
            "{model:?}"
        );
        assert_eq!(
            report.plan.superseded_by().unwrap().key,
            WriterKey::revision(5)
        );
    }
}

/// The count a limit on actions has left in `store`.
fn remaining(store: &MemoryStore, id: &str) -> (bool, i64) {
    let state = store.get(id).unwrap().state.unwrap_or_default();
    (state.limited_actions, state.remaining_actions)
}

#[tokio::test(start_paused = true)]
async fn a_limit_on_actions_is_set_at_create_and_its_countdown_is_never_reset() {
    let store = fenced_store();
    let limited = "id: l\nschedule:\n  every: 1h\n  remaining_actions: 3\n";
    let report = reconcile(&store, &project(&[limited]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(remaining(&store, "foo.l"), (true, 3));

    // The server counts it down: no drift, no write.
    assert!(store.take_action("foo.l") && store.take_action("foo.l"));
    let writes = store.writes();
    let calls = store.calls().len();
    let report = reconcile(&store, &project(&[limited]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.plan.steps.is_empty(), "{report:#?}");
    assert_eq!(store.calls()[calls..], [crate::store::Rpc::ListSchedules]);
    assert_eq!(store.writes(), writes);

    // An update for another field, or for the limit itself, keeps the count.
    for file in [
        "id: l\nschedule:\n  every: 1h\n  jitter: 5s\n  remaining_actions: 3\n",
        "id: l\nschedule:\n  every: 1h\n  jitter: 5s\n  remaining_actions: 10\n",
    ] {
        let report = reconcile(&store, &project(&[file]), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(
            report.converged() && report.plan.steps.len() == 1,
            "{report:#?}"
        );
        assert_eq!(remaining(&store, "foo.l"), (true, 1), "{file}");
    }
    assert!(store.take_action("foo.l"));
    assert!(!store.take_action("foo.l"), "spent");

    // Dropping the key lifts the limit.
    let unlimited = "id: l\nschedule:\n  every: 1h\n  jitter: 5s\n";
    let report = reconcile(&store, &project(&[unlimited]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(remaining(&store, "foo.l"), (false, 0));
}

const OWN: &str = "id: report\nschedule:\n  id: daily-billing-report\n  every: 1h\n";

#[tokio::test(start_paused = true)]
async fn a_schedule_with_an_id_of_its_own_is_adopted_tracked_and_deleted_like_any_other() {
    let store = MemoryStore::behaving_as(SchedulerModel::Chasm132);
    let made_by_an_sdk = desired(&project(&[OWN]))[0].schedule.clone();
    store.insert_unowned("daily-billing-report", made_by_an_sdk);

    // Not ours until adopted.
    let report = reconcile(&store, &project(&[A, B, OWN]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.plan.untouched.contains(&Untouched::Conflict {
        schedule_id: "daily-billing-report".into(),
        owner: None
    }));
    let mut adopt = ReconcileOptions::default();
    adopt.plan.adopt = true;
    let report = reconcile(&store, &project(&[A, B, OWN]), adopt)
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(store.owner("daily-billing-report").as_deref(), Some("foo"));
    let fence = store.get(&crate::fence::fence_id("foo")).unwrap();
    assert!(
        crate::fence::recorded(&fence.state.unwrap().notes).contains("daily-billing-report"),
        "the fence records it"
    );

    // The no-op: the listing, and one describe for it.
    let calls = store.calls().len();
    let writes = store.writes();
    let report = reconcile(&store, &project(&[A, B, OWN]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.plan.steps.is_empty(), "{report:#?}");
    assert_eq!(
        store.calls()[calls..],
        [
            crate::store::Rpc::ListSchedules,
            crate::store::Rpc::DescribeSchedule
        ]
    );
    assert_eq!(store.writes(), writes);

    // Drift is corrected.
    store.operator_edit("daily-billing-report", |s| {
        s.spec.as_mut().unwrap().interval[0].interval = Some(prost_wkt_types::Duration {
            seconds: 60,
            nanos: 0,
        });
    });
    let report = reconcile(&store, &project(&[A, B, OWN]), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(report.plan.steps.len(), 1, "{report:#?}");
    assert!(report.converged());

    // Its file is removed: found through the fence's record, and deleted.
    let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.plan.steps,
        vec![Step::Delete {
            schedule_id: "daily-billing-report".into()
        }]
    );
    assert!(report.converged(), "{report:#?}");
    assert!(store.get("daily-billing-report").is_none());
}

#[tokio::test(start_paused = true)]
async fn removing_the_files_of_most_schedules_with_ids_of_their_own_is_held() {
    let store = fenced_store();
    let own = |n: u32| format!("id: r{n}\nschedule:\n  id: report-{n}\n  every: 1h\n");
    let files: Vec<String> = (0..3).map(own).collect();
    let all: Vec<&str> = files.iter().map(String::as_str).chain([A]).collect();
    let report = reconcile(&store, &project(&all), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    let report = reconcile(&store, &project(&[A]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.plan.steps.is_empty(), "{report:#?}");
    assert_eq!(
        report
            .plan
            .untouched
            .iter()
            .filter(|u| matches!(u, Untouched::HeldDeletion { .. }))
            .count(),
        3
    );
    assert!(store.get("report-0").is_some());
}

/// A memory store whose calls a server's limit paces at `rate` requests a
/// second, throttled a moment ago, as a Temporal store reports its pace
/// (only the report: the calls themselves are not slowed).
struct PacedAt<'a> {
    inner: &'a MemoryStore,
    rate: f64,
}

impl ScheduleStore for PacedAt<'_> {
    async fn list(&self, project: &str) -> Result<crate::store::Observation, StoreError> {
        self.inner.list(project).await
    }

    async fn describe(
        &self,
        schedule_id: &str,
    ) -> Result<Option<crate::store::Described>, StoreError> {
        self.inner.describe(schedule_id).await
    }

    async fn owned_without_waiting(
        &self,
        schedule_id: &str,
        project: &str,
    ) -> Result<bool, StoreError> {
        self.inner.owned_without_waiting(schedule_id, project).await
    }

    async fn create(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &crate::store::PauseState,
        keep: &HashMap<String, temporalio_common::protos::temporal::api::common::v1::Payload>,
        request_id: &str,
    ) -> Result<crate::store::Created, StoreError> {
        self.inner
            .create(project, desired, pause, keep, request_id)
            .await
    }

    async fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &crate::store::PauseState,
        current: &crate::store::Described,
        request_id: &str,
    ) -> Result<(), StoreError> {
        self.inner
            .update(project, desired, pause, current, request_id)
            .await
    }

    async fn set_paused(
        &self,
        schedule_id: &str,
        pause: &crate::store::PauseState,
    ) -> Result<(), StoreError> {
        self.inner.set_paused(schedule_id, pause).await
    }

    async fn delete(&self, schedule_id: &str) -> Result<(), StoreError> {
        self.inner.delete(schedule_id).await
    }

    async fn search_attribute_types(&self) -> Result<crate::store::AttributeTypes, StoreError> {
        self.inner.search_attribute_types().await
    }

    fn pace_status(&self) -> Option<crate::store::PaceStatus> {
        Some(crate::store::PaceStatus {
            rate: Some(self.rate),
            ceiling: None,
            throttled: 1,
            last_throttled: None,
            throttled_recently: true,
        })
    }
}

/// `count` schedules created one at a time, each create taking 100 ms
/// (10 a second), by a writer of revision 1 on `store`. A newer writer
/// (revision 2) claims the fence `claimed_at` after the start, if given.
/// Returns the report and how often the fence was read after the claim.
async fn create_one_at_a_time<S: ScheduleStore>(
    store: &S,
    memory: &MemoryStore,
    count: usize,
    claimed_at: Option<Duration>,
) -> (Report, usize) {
    let files: Vec<String> = (0..count)
        .map(|i| format!("id: w{i}\nschedule:\n  every: 1h\n"))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let project = project(&files);
    let mut options = as_writer(WriterKey::revision(1));
    options.concurrency = 1;
    memory.delay(
        crate::store::Rpc::CreateSchedule,
        Duration::from_millis(100),
    );
    let racing = async {
        if let Some(at) = claimed_at {
            tokio::time::sleep(at).await;
            memory.operator_pause(
                &crate::fence::fence_id("foo"),
                &crate::fence::notes(WriterKey::revision(2)),
            );
        }
    };
    let (report, ()) = tokio::join!(reconcile(store, &project, options), racing);
    let report = report.unwrap();
    // The claim described the fence twice (before and after its write);
    // no create was sent twice, so no other describe was made.
    let reads = memory.calls_of(crate::store::Rpc::DescribeSchedule) - 2;
    (report, reads)
}

fn count_effect(report: &Report, effect: Effect) -> usize {
    report
        .outcomes
        .iter()
        .filter(|o| o.effect == effect)
        .count()
}

#[tokio::test(start_paused = true)]
async fn unpaced_the_fence_is_read_every_second_beside_the_writes() {
    let store = MemoryStore::new();
    let (report, reads) = create_one_at_a_time(&store, &store, 200, None).await;
    assert!(report.converged());
    // 20 s of writes, one read a second.
    assert!((18..=21).contains(&reads), "{reads} reads of the fence");
}

#[tokio::test(start_paused = true)]
async fn paced_by_a_limit_the_fence_reads_take_a_fiftieth_of_the_pace_until_the_last_writes() {
    let store = MemoryStore::new();
    let paced = PacedAt {
        inner: &store,
        rate: 10.0,
    };
    let (report, reads) = create_one_at_a_time(&paced, &store, 200, None).await;
    assert!(report.converged());
    // 20 s of writes at 10 a second: a read every 5 s for the first 15 s
    // (2% of the pace), then one a second for the last 50 writes.
    assert!((6..=9).contains(&reads), "{reads} reads of the fence");
}

#[tokio::test(start_paused = true)]
async fn paced_by_a_limit_a_newer_writer_still_stops_the_writes_within_the_spaced_read() {
    let store = MemoryStore::new();
    let paced = PacedAt {
        inner: &store,
        rate: 10.0,
    };
    let (report, _) =
        create_one_at_a_time(&paced, &store, 200, Some(Duration::from_millis(2_500))).await;
    // Seen at the read of 5 s: about 50 writes made, the rest left to it.
    let applied = count_effect(&report, Effect::Applied);
    let superseded = count_effect(&report, Effect::Superseded);
    assert!((40..=55).contains(&applied), "applied {applied}");
    assert_eq!(applied + superseded, 200);
    assert_eq!(
        report.plan.superseded_by().unwrap().key,
        WriterKey::revision(2)
    );
}

#[tokio::test(start_paused = true)]
async fn paced_by_a_limit_a_newer_writer_near_the_end_is_seen_within_a_second() {
    let store = MemoryStore::new();
    let paced = PacedAt {
        inner: &store,
        rate: 10.0,
    };
    // 60 writes (6 s): from the first second on, those left fit in one
    // spaced gap, so the fence is read every second.
    let (report, _) =
        create_one_at_a_time(&paced, &store, 60, Some(Duration::from_millis(2_500))).await;
    let applied = count_effect(&report, Effect::Applied);
    assert!((25..=36).contains(&applied), "applied {applied}");
    assert_eq!(applied + count_effect(&report, Effect::Superseded), 60);
}

/// A store whose describes find no answer within the RPC timeout, as a
/// fence just created or claimed does on Temporal 1.29 while the server's
/// scheduler worker has a backlog: it waits for the schedule's first
/// workflow task.
fn late_describes() -> MemoryStore {
    late_describes_as(SchedulerModel::Workflow129)
}

/// [`late_describes`], behaving as `model`.
fn late_describes_as(model: SchedulerModel) -> MemoryStore {
    let store = fenced_store_as(model);
    store.delay(
        crate::store::Rpc::DescribeSchedule,
        crate::store::RPC_TIMEOUT,
    );
    store.fail_next(
        crate::store::Rpc::DescribeSchedule,
        crate::store::Code::DeadlineExceeded,
        RPC_ATTEMPTS as usize,
    );
    store
}

#[tokio::test(start_paused = true)]
async fn a_fence_read_that_gets_no_answer_in_time_is_no_outage() {
    let files = [A, B, C];
    for rate in [None, Some(10.0)] {
        let store = late_describes();
        let started = tokio::time::Instant::now();
        let report = match rate {
            None => reconcile(&store, &project(&files), ReconcileOptions::default()).await,
            Some(rate) => {
                let paced = PacedAt {
                    inner: &store,
                    rate,
                };
                reconcile(&paced, &project(&files), ReconcileOptions::default()).await
            }
        }
        .unwrap();
        assert!(report.converged(), "{report:#?}");
        assert_eq!(count_effect(&report, Effect::Applied), 3);
        // The claim's read is given up after one timeout, not retried
        // five times: the steps write without the fence.
        let took = started.elapsed();
        assert!(took < 2 * crate::store::RPC_TIMEOUT, "took {took:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_behind_a_fence_read_that_timed_out_is_still_found() {
    let store = late_describes();
    store.fail_next(
        crate::store::Rpc::CreateSchedule,
        crate::store::Code::Unavailable,
        10_000,
    );
    let report = reconcile(&store, &project(&[A, B, C]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(!report.converged());
    assert!(report.outcomes.iter().all(|o| o.retryable), "{report:#?}");
    let creates = store.calls_of(crate::store::Rpc::CreateSchedule);
    // Each step retries at 0.2, 0.6, 1.4 and 3 s: the outage is declared
    // at 3 s, after at most five creates of each of the three.
    assert!(creates <= 15, "{creates} creates");
    let unreachable = report
        .outcomes
        .iter()
        .filter(|o| {
            o.error
                .as_deref()
                .is_some_and(|e| e.contains("unreachable"))
        })
        .count();
    assert_eq!(unreachable, 3, "{report:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_fence_just_created_is_not_read_back() {
    let store = MemoryStore::new();
    let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(report.converged(), "{report:#?}");
    assert_eq!(fence_writer(&store), Some(WriterKey::default()));
    // The claim's one read, which found no fence; the create's answer
    // tells the rest.
    assert_eq!(store.calls_of(crate::store::Rpc::DescribeSchedule), 1);
    assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 3);
}

#[tokio::test(start_paused = true)]
async fn a_create_the_server_cancelled_is_sent_again_and_its_late_read_back_is_no_outage() {
    // An overloaded server cancels the first create of each schedule (it
    // may have carried them out), and the read-backs of the creates sent
    // again wait, as on 1.29 a describe of a schedule whose first workflow
    // task is queued does: four of each get no answer in time.
    for model in [SchedulerModel::Workflow129, SchedulerModel::Chasm132] {
        let store = late_describes_as(model);
        store.fail_next(
            crate::store::Rpc::CreateSchedule,
            crate::store::Code::Cancelled,
            2,
        );
        // The claim's read of the fence and four read-backs of each create,
        // with the RPC_ATTEMPTS that `late_describes_as` queued.
        store.fail_next(
            crate::store::Rpc::DescribeSchedule,
            crate::store::Code::DeadlineExceeded,
            1 + 2 * 4 - RPC_ATTEMPTS as usize,
        );
        let started = tokio::time::Instant::now();
        let report = reconcile(&store, &project(&[A, B]), ReconcileOptions::default())
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(report.converged(), "{model:?}: {report:#?}");
        assert_eq!(count_effect(&report, Effect::Applied), 2);
        assert_eq!(store.calls_of(crate::store::Rpc::CreateSchedule), 4);
        assert!(store.get("foo.a").is_some() && store.get("foo.b").is_some());
        let asked = store.calls_of(crate::store::Rpc::DescribeWorkflowExecution);
        if model == SchedulerModel::Workflow129 {
            // Each read-back waited for one describe, then read the owner
            // from the scheduler workflow: the claim's read (10 s), then
            // one read-back (10 s).
            assert_eq!(asked, 2);
            assert!(took < 3 * crate::store::RPC_TIMEOUT, "took {took:?}");
        } else {
            // No scheduler workflow to read: the describes are retried
            // until one answers.
            assert!(took > 4 * crate::store::RPC_TIMEOUT, "took {took:?}");
        }
    }
}
