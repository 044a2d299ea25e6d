//! The store contract: one set of behavioural tests, run against the
//! in-memory store and against the real store on a real Temporal server, for
//! each server version: 1.29 (the CLI's dev server) and 1.32 (with the CHASM
//! scheduler). The in-memory store stands in for Temporal in the unit tests,
//! modelling each version's scheduler, so wherever it disagrees with the
//! server, a test here fails.
//!
//! Each behaviour is one the reconciler relies on, and most of them surprise:
//! a create's request id outlives the schedule, an update replaces the search
//! attributes wholesale, the listing shows at most ten calendars; and where
//! the versions differ, each test asserts each version's behaviour: an update
//! ignores the memo on 1.29 and replaces it on 1.32, and a stale conflict
//! token is accepted and dropped on 1.29 and refused on 1.32.

mod support;

use std::time::Duration;

use schedule_sync::compare::changes::field_changes;
use schedule_sync::dev_server::DevServer;
use schedule_sync::project::action::AttributeType;
use schedule_sync::spec::{DesiredSchedule, desired};
use schedule_sync::store::{
    Created, Described, FINGERPRINT_ATTRIBUTE, LISTED_SPEC_ENTRIES, MemoryStore, PauseState,
    ScheduleStore, SchedulerModel, TemporalStore, as_listed,
};
use support::Version;
use temporalio_common::protos::temporal::api::common::v1::Memo;
use temporalio_common::protos::temporal::api::schedule::v1::{Schedule, schedule_action};
use temporalio_common::protos::temporal::api::workflowservice::v1::CreateScheduleRequest;

/// What a test needs besides the store: acting on schedules as a person or
/// another tool would.
trait Backend {
    type Store: ScheduleStore;
    /// The server version the backend is or models.
    fn version(&self) -> Version;
    fn store(&self) -> &Self::Store;
    /// Creates a schedule without our marker, with the memo field
    /// [`MADE_BY`] = "a person".
    async fn insert_unowned(&self, schedule_id: &str, schedule: Schedule);
    /// Sets a search attribute, keeping the others, as another tool would.
    async fn tag(&self, schedule_id: &str, name: &str, value: &str);
    /// Deletes a schedule, as `temporal schedule delete` does.
    async fn operator_delete(&self, schedule_id: &str);
    /// Lets a schedule with a limit on actions fire until the limit is
    /// spent, and describes it then.
    async fn spend(&self, schedule_id: &str) -> Described;
}

/// A memo field that another tool set.
const MADE_BY: &str = "made-by";

struct Memory(MemoryStore, Version);

impl Memory {
    /// The in-memory store modelling `version`'s scheduler.
    fn of(version: Version) -> Self {
        let model = match version {
            Version::V1_29 => SchedulerModel::Workflow129,
            Version::V1_32 => SchedulerModel::Chasm132,
        };
        let store = MemoryStore::behaving_as(model);
        store.register_search_attribute("Team", AttributeType::Keyword);
        for (name, kind) in START_ATTRIBUTES {
            store.register_search_attribute(name, kind);
        }
        Memory(store, version)
    }
}

/// The search attributes that started workflows carry in these tests, one
/// of each type, registered in every namespace the tests use.
const START_ATTRIBUTES: [(&str, AttributeType); 7] = [
    ("CustomerId", AttributeType::Keyword),
    ("Tags", AttributeType::KeywordList),
    ("Notes", AttributeType::Text),
    ("Count", AttributeType::Int),
    ("Score", AttributeType::Double),
    ("Urgent", AttributeType::Bool),
    ("Due", AttributeType::Datetime),
];

impl Backend for Memory {
    type Store = MemoryStore;
    fn version(&self) -> Version {
        self.1
    }
    fn store(&self) -> &MemoryStore {
        &self.0
    }
    async fn insert_unowned(&self, schedule_id: &str, schedule: Schedule) {
        self.0
            .insert_unowned_with_memo(schedule_id, schedule, &[(MADE_BY, "a person")]);
    }
    async fn tag(&self, schedule_id: &str, name: &str, value: &str) {
        self.0.tag(schedule_id, name, value);
    }
    async fn operator_delete(&self, schedule_id: &str) {
        self.0.operator_delete(schedule_id);
    }
    async fn spend(&self, schedule_id: &str) -> Described {
        while self.0.take_action(schedule_id) {}
        self.0.describe(schedule_id).await.unwrap().unwrap()
    }
}

struct Server {
    server: DevServer,
    store: TemporalStore,
    client: temporalio_client::Client,
    version: Version,
}

impl Server {
    async fn start(version: Version) -> Self {
        Self::start_with(version, true).await
    }

    /// A server of `version`; on 1.32 with new schedules made on the CHASM
    /// scheduler (`chasm`) or as workflows.
    async fn start_with(version: Version, chasm: bool) -> Self {
        let mut options = support::options(version);
        options.chasm_scheduler = chasm;
        options
            .search_attributes
            .push(("Team".to_owned(), "Keyword".to_owned()));
        options.search_attributes.extend(
            START_ATTRIBUTES
                .iter()
                .map(|(name, kind)| ((*name).to_owned(), kind.name().to_owned())),
        );
        let server = support::start(options).await;
        let client = support::client(&server).await;
        let store = TemporalStore::new(client.clone(), server.namespace().to_owned(), true);
        Server {
            server,
            store,
            client,
            version,
        }
    }
}

impl Backend for Server {
    type Store = TemporalStore;
    fn version(&self) -> Version {
        self.version
    }
    fn store(&self) -> &TemporalStore {
        &self.store
    }
    async fn insert_unowned(&self, schedule_id: &str, schedule: Schedule) {
        let mut service = self.client.connection().workflow_service();
        service
            .create_schedule(tonic::Request::new(CreateScheduleRequest {
                namespace: self.server.namespace().to_owned(),
                schedule_id: schedule_id.to_owned(),
                schedule: Some(schedule),
                identity: "a person".into(),
                request_id: format!("by-hand-{schedule_id}"),
                memo: Some(Memo {
                    fields: [(
                        MADE_BY.to_owned(),
                        schedule_sync::spec::json_payload(&"a person".into()),
                    )]
                    .into(),
                }),
                ..Default::default()
            }))
            .await
            .expect("a hand-made create");
    }
    async fn tag(&self, schedule_id: &str, name: &str, value: &str) {
        support::tag(&self.server, &self.store, schedule_id, name, value).await;
    }
    async fn operator_delete(&self, schedule_id: &str) {
        let output = std::process::Command::new(self.server.cli())
            .args(["schedule", "delete", "--schedule-id", schedule_id])
            .args(["--address", &self.server.address()])
            .args(["--namespace", self.server.namespace()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    async fn spend(&self, schedule_id: &str) -> Described {
        // The schedule fires every second: give it a minute at most.
        for _ in 0..600 {
            let held = self.store.describe(schedule_id).await.unwrap().unwrap();
            if held.schedule.state.as_ref().unwrap().remaining_actions == 0 {
                return held;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let held = self.store.describe(schedule_id).await.unwrap().unwrap();
        panic!(
            "{schedule_id} never spent its actions: {:?}",
            held.schedule.state
        );
    }
}

fn wanted(files: &[&str]) -> Vec<DesiredSchedule> {
    desired(&support::project_of("acme", files))
}

fn pause_of(want: &DesiredSchedule) -> PauseState {
    let state = want.schedule.state.clone().unwrap_or_default();
    PauseState {
        paused: state.paused,
        notes: state.notes,
    }
}

const W1: &str = "id: w1\nschedule:\n  cron: \"0 1 * * *\"\n";
const W1_CHANGED: &str = "id: w1\nschedule:\n  cron: \"0 2 * * *\"\n  jitter: 30s\n";
const W1_OTHER: &str = "id: w1\nschedule:\n  cron: \"0 3 * * *\"\n";

async fn created<B: Backend>(backend: &B, want: &DesiredSchedule, request_id: &str) -> Described {
    let store = backend.store();
    assert_eq!(
        store
            .create(
                "acme",
                want,
                &pause_of(want),
                &Default::default(),
                request_id
            )
            .await
            .unwrap(),
        Created::Created
    );
    store
        .describe(&want.schedule_id)
        .await
        .unwrap()
        .expect("a create shows in describe at once")
}

/// Waits until an update moved the schedule past `before`.
async fn after_update<B: Backend>(backend: &B, before: &Described) -> Described {
    let id = before.observed.schedule_id.clone();
    for _ in 0..100 {
        let now = backend.store().describe(&id).await.unwrap().unwrap();
        if now.conflict_token != before.conflict_token {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the update of {id} never showed");
}

async fn a_create_carries_the_marker_and_the_fingerprint<B: Backend>(backend: &B) {
    let want = &wanted(&[W1])[0];
    let held = created(backend, want, "create-1").await;
    assert_eq!(held.observed.owner.as_deref(), Some("acme"));
    assert_eq!(held.observed.fingerprint.as_ref(), Some(&want.fingerprint));
    assert_eq!(held.schedule.spec, want.schedule.spec);
    assert!(!held.observed.paused);
}

async fn a_taken_id_is_found_taken_unless_the_request_id_repeats<B: Backend>(backend: &B) {
    let want = &wanted(&[W1])[0];
    created(backend, want, "create-1").await;
    let store = backend.store();
    let pause = pause_of(want);
    assert_eq!(
        store
            .create("acme", want, &pause, &Default::default(), "create-2")
            .await
            .unwrap(),
        Created::AlreadyExists
    );
    // A retry of the first create (its answer was lost) is answered as done.
    assert_eq!(
        store
            .create("acme", want, &pause, &Default::default(), "create-1")
            .await
            .unwrap(),
        Created::Created
    );
}

async fn a_request_id_outlives_its_schedule<B: Backend>(backend: &B) {
    let want = &wanted(&[W1])[0];
    created(backend, want, "create-1").await;
    backend.operator_delete(&want.schedule_id).await;
    let store = backend.store();
    assert!(store.describe(&want.schedule_id).await.unwrap().is_none());
    // The server answers OK to the old request id and creates nothing.
    let pause = pause_of(want);
    assert_eq!(
        store
            .create("acme", want, &pause, &Default::default(), "create-1")
            .await
            .unwrap(),
        Created::Created
    );
    assert!(
        store.describe(&want.schedule_id).await.unwrap().is_none(),
        "a create with a remembered request id made a schedule"
    );
    // A fresh request id creates it.
    let held = created(backend, want, "create-2").await;
    assert_eq!(held.observed.owner.as_deref(), Some("acme"));
}

async fn an_update_sets_the_memo_on_1_32_only_keeping_the_fields_of_others<B: Backend>(
    backend: &B,
) {
    let want = &wanted(&[W1])[0];
    let other = &wanted(&[W1_OTHER])[0];
    backend
        .insert_unowned(&want.schedule_id, other.schedule.clone())
        .await;
    let store = backend.store();
    let before = store.describe(&want.schedule_id).await.unwrap().unwrap();
    assert_eq!(before.observed.owner, None);
    // An adoption: the store sends the held memo with our marker.
    store
        .update("acme", want, &pause_of(want), &before, "update-1")
        .await
        .unwrap();
    let after = after_update(backend, &before).await;
    assert_eq!(after.schedule.spec, want.schedule.spec, "the update landed");
    let made_by = after.memo.get(MADE_BY).map(|p| p.data.clone());
    assert_eq!(made_by, Some(br#""a person""#.to_vec()), "{after:#?}");
    match backend.version() {
        Version::V1_29 => assert_eq!(after.observed.owner, None, "1.29 ignores the memo"),
        Version::V1_32 => assert_eq!(after.observed.owner.as_deref(), Some("acme")),
    }
}

async fn an_update_keeps_the_search_attributes_of_others<B: Backend>(backend: &B) {
    let want = &wanted(&[W1])[0];
    let changed = &wanted(&[W1_CHANGED])[0];
    created(backend, want, "create-1").await;
    backend.tag(&want.schedule_id, "Team", "payments").await;
    let store = backend.store();
    let before = store.describe(&want.schedule_id).await.unwrap().unwrap();
    store
        .update("acme", changed, &pause_of(changed), &before, "update-1")
        .await
        .unwrap();
    after_update(backend, &before).await;
    let id = want.schedule_id.as_str();
    // The attributes show a moment after the definition on Temporal 1.29.
    support::eventually(10, "the new fingerprint shows", || async {
        store
            .describe(id)
            .await
            .unwrap()
            .is_some_and(|d| d.observed.fingerprint.as_ref() == Some(&changed.fingerprint))
    })
    .await;
    let held = store.describe(id).await.unwrap().unwrap();
    let team = held.search_attributes.get("Team").map(|p| p.data.clone());
    assert_eq!(team, Some(br#""payments""#.to_vec()), "{held:#?}");
    assert_eq!(
        held.search_attributes
            .keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        [FINGERPRINT_ATTRIBUTE, "Team"].into(),
    );
}

async fn a_stale_conflict_token_is_dropped_on_1_29_and_refused_on_1_32<B: Backend>(backend: &B) {
    let want = &wanted(&[W1])[0];
    let changed = &wanted(&[W1_CHANGED])[0];
    let other = &wanted(&[W1_OTHER])[0];
    let first = created(backend, want, "create-1").await;
    let store = backend.store();
    store
        .update("acme", changed, &pause_of(changed), &first, "update-1")
        .await
        .unwrap();
    let second = after_update(backend, &first).await;
    // Computed from the first version, sent after the second.
    let stale = store
        .update("acme", other, &pause_of(other), &first, "update-2")
        .await;
    if backend.version() == Version::V1_32 {
        let error = stale.expect_err("Temporal 1.32 refuses a stale token");
        assert!(error.is_conflict(), "{error:?}");
        let held = store.describe(&want.schedule_id).await.unwrap().unwrap();
        assert_eq!(held.conflict_token, second.conflict_token);
        assert_eq!(held.schedule.spec, changed.schedule.spec);
        return;
    }
    stale.expect("Temporal 1.29 takes a stale update without an error");
    // A patch queued behind it tells when the stale update was handled.
    let note = PauseState {
        paused: true,
        notes: "marker".into(),
    };
    store.set_paused(&want.schedule_id, &note).await.unwrap();
    let last = after_update(backend, &second).await;
    let mut last = last;
    for _ in 0..50 {
        if last.observed.notes == "marker" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = store.describe(&want.schedule_id).await.unwrap().unwrap();
    }
    assert_eq!(last.observed.notes, "marker");
    assert_eq!(
        last.schedule.spec, changed.schedule.spec,
        "the stale update was dropped"
    );
}

async fn a_listing_shows_at_most_ten_calendars<B: Backend>(backend: &B) {
    let crons: String = (0..12)
        .map(|h| format!("    - \"0 {h} * * *\"\n"))
        .collect();
    let many = format!("id: many\nschedule:\n  cron:\n{crons}");
    let want = &wanted(&[&many])[0];
    let sent = want.schedule.spec.as_ref().unwrap();
    assert_eq!(sent.structured_calendar.len(), 12);
    created(backend, want, "create-1").await;
    let store = backend.store();
    let mut listed = None;
    for _ in 0..100 {
        let observation = store.list("acme").await.unwrap();
        if let Some(seen) = observation.schedules.into_iter().next() {
            listed = seen.spec.map(|s| s.spec());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = listed.expect("the schedule is listed, with its spec");
    assert_eq!(listed.structured_calendar.len(), LISTED_SPEC_ENTRIES);
    assert_eq!(listed, as_listed(sent));
    // Describe shows all twelve.
    let held = store.describe(&want.schedule_id).await.unwrap().unwrap();
    assert_eq!(held.schedule.spec.unwrap().structured_calendar.len(), 12);
}

async fn a_missing_schedule_describes_as_none_and_deletes_as_done<B: Backend>(backend: &B) {
    let store = backend.store();
    assert!(store.describe("acme.nothing").await.unwrap().is_none());
    store.delete("acme.nothing").await.unwrap();
    let want = &wanted(&[W1])[0];
    created(backend, want, "create-1").await;
    store.delete(&want.schedule_id).await.unwrap();
    store.delete(&want.schedule_id).await.unwrap();
    assert!(store.describe(&want.schedule_id).await.unwrap().is_none());
}

/// What the read-back of a create relies on when the describe waits on the
/// server's backlog: on 1.29 the running scheduler workflow of one of our
/// schedules shows our marker without that wait. It never claims a
/// schedule that is not ours, nor one that is gone; 1.32's CHASM scheduler
/// runs no workflow that shows it.
async fn a_schedule_shows_it_is_ours_without_waiting_where_a_workflow_runs_it<B: Backend>(
    backend: &B,
) {
    let store = backend.store();
    let want = &wanted(&[W1])[0];
    let other = &wanted(&[W1_OTHER])[0];
    let ours = async |id: &str| store.owned_without_waiting(id, "acme").await;
    let id = want.schedule_id.as_str();
    assert!(!ours(id).await.unwrap(), "no schedule yet");
    created(backend, want, "create-1").await;
    backend
        .insert_unowned("acme.unowned", other.schedule.clone())
        .await;
    assert_eq!(ours(id).await.unwrap(), backend.version() == Version::V1_29);
    assert!(
        !store
            .owned_without_waiting(&want.schedule_id, "shop")
            .await
            .unwrap()
    );
    assert!(!ours("acme.unowned").await.unwrap(), "without the marker");
    backend.operator_delete(&want.schedule_id).await;
    assert!(!ours(id).await.unwrap(), "deleted");
}

/// What the writer fence relies on: a schedule with `~` in its id and no
/// firing times can be created paused with notes; pausing it again replaces
/// the notes; describe and the listing both show the new notes.
async fn a_paused_schedule_takes_new_notes_and_lists_them<B: Backend>(backend: &B) {
    use schedule_sync::fence::{WriterKey, fence_id, fence_schedule, notes, parse};
    let store = backend.store();
    let fence = fence_schedule("acme");
    let first = PauseState {
        paused: true,
        notes: notes(WriterKey::revision(1)),
    };
    let keep = std::collections::HashMap::new();
    let made = store
        .create("acme", &fence, &first, &keep, "claim-1")
        .await
        .unwrap();
    assert_eq!(made, Created::Created);
    let second = PauseState {
        paused: true,
        notes: notes(WriterKey::revision(2)),
    };
    store.set_paused(&fence_id("acme"), &second).await.unwrap();
    let mut described = None;
    for _ in 0..100 {
        let held = store.describe(&fence_id("acme")).await.unwrap().unwrap();
        if held.observed.notes == second.notes {
            described = Some(held);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = described.expect("describe shows the new notes");
    assert!(held.observed.paused);
    assert_eq!(held.observed.owner.as_deref(), Some("acme"));
    let spec = held.schedule.spec.unwrap_or_default();
    assert!(spec.structured_calendar.is_empty() && spec.interval.is_empty());
    let mut listed = None;
    for _ in 0..100 {
        let observation = store.list("acme").await.unwrap();
        if let Some(seen) = observation
            .schedules
            .into_iter()
            .find(|o| o.schedule_id == fence_id("acme") && o.notes == second.notes)
        {
            listed = Some(seen);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = listed.expect("the listing shows the new notes");
    assert_eq!(parse(&listed.notes).unwrap().key, WriterKey::revision(2));
}

/// A schedule made as a workflow on Temporal 1.32 (the CHASM scheduler off,
/// as it is by default, or a schedule made before it was turned on) refuses
/// an update that carries a memo, as the memory store's
/// [`SchedulerModel::Workflow132`] does: an adoption is refused, and the
/// update of a schedule that is ours (which carries no memo) lands.
async fn a_workflow_backed_schedule_on_1_32_refuses_a_memo_on_update<B: Backend>(backend: &B) {
    let want = &wanted(&[W1])[0];
    let other = &wanted(&[W1_OTHER])[0];
    let changed = &wanted(&[W1_CHANGED])[0];
    backend
        .insert_unowned(&want.schedule_id, other.schedule.clone())
        .await;
    let store = backend.store();
    let before = store.describe(&want.schedule_id).await.unwrap().unwrap();
    let refused = store
        .update("acme", want, &pause_of(want), &before, "update-1")
        .await
        .expect_err("the adoption's memo is refused");
    assert!(refused.is_conflict(), "{refused:?}");
    let held = store.describe(&want.schedule_id).await.unwrap().unwrap();
    assert_eq!(
        held.conflict_token, before.conflict_token,
        "nothing changed"
    );

    let ours = &wanted(&["id: w2\nschedule:\n  cron: \"0 4 * * *\"\n"])[0];
    let first = created(backend, ours, "create-2").await;
    let mut changed = changed.clone();
    changed.schedule_id = ours.schedule_id.clone();
    store
        .update("acme", &changed, &pause_of(&changed), &first, "update-2")
        .await
        .unwrap();
    let after = after_update(backend, &first).await;
    assert_eq!(after.schedule.spec, changed.schedule.spec);
    assert_eq!(after.observed.owner.as_deref(), Some("acme"));
}

mod memory_1_32_workflow_backed {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_workflow_backed_schedule_on_1_32_refuses_a_memo_on_update() {
        let memory = Memory(
            MemoryStore::behaving_as(SchedulerModel::Workflow132),
            Version::V1_32,
        );
        super::a_workflow_backed_schedule_on_1_32_refuses_a_memo_on_update(&memory).await;
    }
}

mod server_1_32_workflow_backed {
    use super::*;

    #[tokio::test]
    async fn a_workflow_backed_schedule_on_1_32_refuses_a_memo_on_update() {
        let server = Server::start_with(Version::V1_32, false).await;
        super::a_workflow_backed_schedule_on_1_32_refuses_a_memo_on_update(&server).await;
    }
}

/// One test per behaviour, against each store and server version, named
/// `<store>_<version>::<behaviour>`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        contract!(@memory memory_1_29, Version::V1_29, $($name),*);
        contract!(@memory memory_1_32, Version::V1_32, $($name),*);
        contract!(@server server_1_29, Version::V1_29, $($name),*);
        contract!(@server server_1_32, Version::V1_32, $($name),*);
    };
    (@memory $module:ident, $version:expr, $($name:ident),*) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    super::$name(&Memory::of($version)).await;
                }
            )*
        }
    };
    (@server $module:ident, $version:expr, $($name:ident),*) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&Server::start($version).await).await;
                }
            )*
        }
    };
}

/// Every start option a workflow file can set.
const W1_OPTIONS: &str = "id: w1\nschedule:\n  cron: \"0 1 * * *\"\n  workflow_id: nightly\n  \
     args: [eu, {dry: true}]\n  execution_timeout: 2h\n  run_timeout: 1h\n  task_timeout: 20s\n  \
     retry_policy: {initial_interval: 2s, backoff_coefficient: 1.5, maximum_interval: 2m, \
     maximum_attempts: 5, non_retryable_error_types: [Fatal]}\n  memo: {team: billing, rows: 10}\n  \
     search_attributes:\n    CustomerId: {type: Keyword, value: acme}\n    \
     Tags: {type: KeywordList, value: [eu, nightly]}\n    Notes: {type: Text, value: the run}\n    \
     Count: {type: Int, value: 42}\n    Score: {type: Double, value: 0.75}\n    \
     Urgent: {type: Bool, value: true}\n    Due: {type: Datetime, value: 2027-01-01T00:00:00Z}\n  \
     summary: Nightly\n  details: \"Builds it.\\nOwner: billing.\"\n  \
     priority: {priority_key: 2, fairness_key: tenant-a, fairness_weight: 2.5}\n";

/// The same schedule with other start options, the memo of started
/// workflows among them.
const W1_OTHER_OPTIONS: &str = "id: w1\nschedule:\n  cron: \"0 1 * * *\"\n  run_timeout: 3h\n  \
     memo: {team: shop}\n  search_attributes: {Count: {type: Int, value: 7}}\n  summary: Other\n  \
     priority: {priority_key: 4}\n";

async fn every_start_option_is_held_as_sent<B: Backend>(backend: &B) {
    let want = &wanted(&[W1_OPTIONS])[0];
    let held = created(backend, want, "create-1").await;
    assert_eq!(field_changes(&held.schedule, &want.schedule), Vec::new());
    let action = |s: &Schedule| match s.action.as_ref().and_then(|a| a.action.as_ref()) {
        Some(schedule_action::Action::StartWorkflow(start)) => start.clone(),
        None => panic!("no start action"),
    };
    let (held, sent) = (action(&held.schedule), action(&want.schedule));
    // Both versions keep the priority and the user metadata as sent; the
    // server names each search attribute's type in its payload.
    assert_eq!(held.priority, sent.priority);
    assert_eq!(held.user_metadata, sent.user_metadata);
    assert_eq!(held.retry_policy, sent.retry_policy);
    assert_eq!(held.memo, sent.memo);
    assert_eq!(held.input, sent.input);
    let kinds: Vec<(String, String)> = held
        .search_attributes
        .iter()
        .flat_map(|a| a.indexed_fields.iter())
        .map(|(name, payload)| {
            (
                name.clone(),
                String::from_utf8_lossy(&payload.metadata["type"]).into_owned(),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let mut expected: Vec<(String, String)> = START_ATTRIBUTES
        .iter()
        .map(|(name, kind)| ((*name).to_owned(), kind.name().to_owned()))
        .collect();
    expected.sort();
    assert_eq!(kinds, expected);
}

async fn an_update_replaces_the_start_options_and_the_started_workflows_memo<B: Backend>(
    backend: &B,
) {
    let want = &wanted(&[W1_OPTIONS])[0];
    let first = created(backend, want, "create-1").await;
    let other = &wanted(&[W1_OTHER_OPTIONS])[0];
    backend
        .store()
        .update("acme", other, &pause_of(other), &first, "update-1")
        .await
        .unwrap();
    let after = after_update(backend, &first).await;
    // Unlike the schedule's own memo, which 1.29 keeps on update, the memo
    // of started workflows is part of the action: both versions replace it.
    assert_eq!(field_changes(&after.schedule, &other.schedule), Vec::new());
    assert_ne!(field_changes(&after.schedule, &want.schedule), Vec::new());
}

async fn a_search_attribute_the_namespace_lacks_is_refused_and_listed_as_missing<B: Backend>(
    backend: &B,
) {
    let types = backend.store().search_attribute_types().await.unwrap();
    for (name, kind) in START_ATTRIBUTES {
        assert_eq!(types.get(name), Some(&kind), "{name}");
    }
    assert_eq!(
        types.get(FINGERPRINT_ATTRIBUTE),
        Some(&AttributeType::Keyword)
    );
    assert!(!types.contains_key("Missing"));
    let want = &wanted(&[
        "id: w1\nschedule:\n  cron: \"0 1 * * *\"\n  search_attributes: {Missing: {type: Keyword, value: x}}\n",
    ])[0];
    let refused = backend
        .store()
        .create(
            "acme",
            want,
            &pause_of(want),
            &Default::default(),
            "create-1",
        )
        .await
        .expect_err("an unknown search attribute is refused");
    assert_eq!(
        refused.code(),
        schedule_sync::Code::InvalidArgument,
        "{refused:?}"
    );
    assert!(refused.message().contains("Missing"), "{refused:?}");
    assert!(
        backend
            .store()
            .describe(&want.schedule_id)
            .await
            .unwrap()
            .is_none()
    );
}

// `allow_all`: the workflows started never run (no worker), and a skipped
// firing takes no action.
const LIMITED: &str =
    "id: l\nschedule:\n  every: 1s\n  overlap_policy: allow_all\n  remaining_actions: 2\n";
const LIMITED_CHANGED: &str = "id: l\nschedule:\n  every: 1s\n  overlap_policy: allow_all\n  \
                               jitter: 1s\n  remaining_actions: 2\n";

/// Temporal counts a limit on actions down as the schedule fires (each
/// action moves the conflict token), stops firing at 0, and an update that
/// sends back the count it holds, as ours does, leaves the count there:
/// neither the countdown nor an update resets it.
async fn a_limit_on_actions_counts_down_and_an_update_keeps_the_count<B: Backend>(backend: &B) {
    let want = &wanted(&[LIMITED])[0];
    let held = created(backend, want, "create-limited").await;
    let state = held.schedule.state.clone().unwrap();
    assert!(state.limited_actions);
    assert!(
        (1..=2).contains(&state.remaining_actions),
        "{}",
        state.remaining_actions
    );
    let spent = backend.spend(&want.schedule_id).await;
    assert!(spent.schedule.state.as_ref().unwrap().limited_actions);
    assert_ne!(
        spent.conflict_token, held.conflict_token,
        "an action moves the conflict token"
    );
    let changed = &wanted(&[LIMITED_CHANGED])[0];
    backend
        .store()
        .update(
            "acme",
            changed,
            &pause_of(changed),
            &spent,
            "update-limited",
        )
        .await
        .unwrap();
    let after = after_update(backend, &spent).await;
    assert!(
        after.schedule.spec.as_ref().unwrap().jitter.is_some(),
        "the update landed"
    );
    let state = after.schedule.state.unwrap();
    assert!(state.limited_actions);
    assert_eq!(state.remaining_actions, 0, "the update reset the count");
}

contract!(
    every_start_option_is_held_as_sent,
    an_update_replaces_the_start_options_and_the_started_workflows_memo,
    a_search_attribute_the_namespace_lacks_is_refused_and_listed_as_missing,
    a_limit_on_actions_counts_down_and_an_update_keeps_the_count,
    a_create_carries_the_marker_and_the_fingerprint,
    a_taken_id_is_found_taken_unless_the_request_id_repeats,
    a_request_id_outlives_its_schedule,
    an_update_sets_the_memo_on_1_32_only_keeping_the_fields_of_others,
    an_update_keeps_the_search_attributes_of_others,
    a_stale_conflict_token_is_dropped_on_1_29_and_refused_on_1_32,
    a_listing_shows_at_most_ten_calendars,
    a_missing_schedule_describes_as_none_and_deletes_as_done,
    a_paused_schedule_takes_new_notes_and_lists_them,
    a_schedule_shows_it_is_ours_without_waiting_where_a_workflow_runs_it,
);
