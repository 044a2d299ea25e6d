//! Reconciles against real Temporal servers, 1.29 (the CLI's dev server) and
//! 1.32 (the CHASM scheduler), read back through the `temporal` CLI. Each test
//! runs once per version, as `v1_29::<name>` and `v1_32::<name>`.

mod support;

use std::path::Path;
use std::time::Duration;

use schedule_sync::plan::{HoldReason, Step, Untouched, UpdateReason};
use schedule_sync::project;
use schedule_sync::reconcile::{Effect, ReconcileOptions, Report, reconcile};
use schedule_sync::store::{ScheduleStore, TemporalStore};
use support::Version;

async fn wait_for_listing(store: &TemporalStore, count: usize) {
    for _ in 0..100 {
        let listed = store.list("billing").await.unwrap().schedules;
        if listed
            .iter()
            .filter(|s| !support::is_fence(&s.schedule_id))
            .count()
            == count
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the listing never showed {count} schedules");
}

async fn apply_creates_then_does_nothing_then_updates_keeping_an_operator_pause_then_deletes(
    version: Version,
) {
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = support::copy_example();
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
            adopt: false,
            reason: UpdateReason::Changed,
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

fn write_project(dir: &Path, name: &str, workflows: &[(&str, &str)]) {
    std::fs::write(
        dir.join("project.yaml"),
        format!("name: {name}\ntask_queue: q\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    for (id, schedule) in workflows {
        std::fs::write(
            dir.join(format!("workflows/{id}.yaml")),
            format!("id: {id}\nschedule:\n{schedule}"),
        )
        .unwrap();
    }
}

async fn look_alike_projects_and_hand_made_schedules_are_never_touched(version: Version) {
    let server = support::server_of(version).await;
    let store = TemporalStore::new(
        support::client(&server).await,
        server.namespace().to_owned(),
        true,
    );
    let foo_dir = tempfile::tempdir().unwrap();
    let foo_bar = tempfile::tempdir().unwrap();
    write_project(foo_dir.path(), "foo", &[("x", "  cron: \"@daily\"\n")]);
    write_project(foo_bar.path(), "foo-bar", &[("x", "  cron: \"@hourly\"\n")]);
    // A person made `foo.hand` by hand: it sits on one of foo's ids.
    let address = server.address();
    let made = std::process::Command::new(server.cli())
        .args([
            "schedule",
            "create",
            "--schedule-id",
            "foo.hand",
            "--cron",
            "@weekly",
        ])
        .args([
            "--workflow-id",
            "hand",
            "--type",
            "Hand",
            "--task-queue",
            "q",
            "--address",
            &address,
        ])
        .status()
        .unwrap();
    assert!(made.success());
    write_project(
        foo_dir.path(),
        "foo",
        &[
            ("x", "  cron: \"@daily\"\n"),
            ("hand", "  cron: \"@daily\"\n"),
        ],
    );

    let bar = reconcile(
        &store,
        &project::load(foo_bar.path()).unwrap().project,
        ReconcileOptions::default(),
    )
    .await
    .unwrap();
    assert!(bar.converged());
    let mut report = reconcile(
        &store,
        &project::load(foo_dir.path()).unwrap().project,
        ReconcileOptions::default(),
    )
    .await
    .unwrap();
    // The hand-made schedule may not be listed yet; then the create finds it
    // taken and refuses to touch it. Either way it is left alone.
    for _ in 0..50 {
        if report
            .plan
            .untouched
            .iter()
            .any(|u| matches!(u, Untouched::Conflict { .. }))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        report = reconcile(
            &store,
            &project::load(foo_dir.path()).unwrap().project,
            ReconcileOptions::default(),
        )
        .await
        .unwrap();
    }
    assert!(
        report.plan.untouched.contains(&Untouched::Conflict {
            schedule_id: "foo.hand".into(),
            owner: None
        }),
        "{report:#?}"
    );
    assert!(!report.converged());
    let hand = support::describe(&server, "foo.hand");
    assert_eq!(
        hand["schedule"]["action"]["startWorkflow"]["workflowType"]["name"],
        "Hand"
    );

    // foo's schedules never include foo-bar's, and emptying foo deletes only foo's.
    write_project(foo_dir.path(), "foo", &[]);
    std::fs::remove_file(foo_dir.path().join("workflows/x.yaml")).unwrap();
    std::fs::remove_file(foo_dir.path().join("workflows/hand.yaml")).unwrap();
    let mut options = ReconcileOptions::default();
    options.plan.allow_mass_delete = true;
    let emptied = reconcile(
        &store,
        &project::load(foo_dir.path()).unwrap().project,
        options,
    )
    .await
    .unwrap();
    assert_eq!(
        emptied.plan.steps,
        vec![Step::Delete {
            schedule_id: "foo.x".into()
        }]
    );
    let still = support::describe(&server, "foo-bar.x");
    assert!(still["memo"]["fields"]["schedule-sync.project"]["data"].is_string());
    let hand = support::describe(&server, "foo.hand");
    assert!(
        hand["schedule"].is_object(),
        "the hand-made schedule survives"
    );
    server.stop();
}

/// How many steps of `action` were carried out (not found done) in `runs`.
fn applied(runs: &[&Report], action: &str) -> usize {
    runs.iter()
        .flat_map(|r| &r.outcomes)
        .filter(|o| o.effect == Effect::Applied)
        .filter(|o| serde_json::to_value(&o.step).unwrap()["action"] == action)
        .count()
}

/// The schedule ids the `temporal` CLI lists, sorted.
fn listed_ids(server: &schedule_sync::dev_server::DevServer) -> Vec<String> {
    let listed = support::temporal_json(server, &["schedule", "list"]);
    let mut ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["scheduleId"].as_str().map(str::to_owned))
        .filter(|id| !support::is_fence(id))
        .collect();
    ids.sort();
    ids
}

/// The schedule ids `project` wants, sorted.
fn ids_of(project: &project::Project) -> Vec<String> {
    let mut ids: Vec<String> = schedule_sync::spec::desired(project)
        .into_iter()
        .map(|d| d.schedule_id)
        .collect();
    ids.sort();
    ids
}

/// How many `rpc` calls `store` sent, whatever their outcome.
fn sent(store: &TemporalStore, rpc: &str) -> u64 {
    store
        .rpc_counts()
        .get(rpc)
        .map_or(0, |codes| codes.values().sum())
}

async fn three_concurrent_applies_converge_to_one_schedule_each(version: Version) {
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let dir = support::copy_example();
    let project = project::load(dir.path()).unwrap().project;
    let stores: Vec<TemporalStore> = (0..3)
        .map(|_| TemporalStore::new(client.clone(), server.namespace().to_owned(), true))
        .collect();
    let runs = futures_util::future::join_all(
        stores
            .iter()
            .map(|store| reconcile(store, &project, ReconcileOptions::default())),
    )
    .await;
    for run in &runs {
        let report = run.as_ref().unwrap();
        assert!(report.converged(), "{report:#?}");
    }
    // The server refuses a second schedule of the same id anyway; what could
    // go wrong is a loser overwriting the winner. Each schedule is written
    // once by one of the three; the others find it done and write nothing.
    let reports: Vec<&Report> = runs.iter().map(|r| r.as_ref().unwrap()).collect();
    assert_eq!(applied(&reports, "create"), 4, "{reports:#?}");
    assert_eq!(applied(&reports, "update"), 0, "{reports:#?}");
    let updates: u64 = stores.iter().map(|s| sent(s, "UpdateSchedule")).sum();
    assert_eq!(updates, 0, "a loser of the race wrote over the winner");
    wait_for_listing(&stores[0], 4).await;
    assert_eq!(listed_ids(&server), ids_of(&project));
    let after = reconcile(&stores[0], &project, ReconcileOptions::default())
        .await
        .unwrap();
    assert!(after.plan.steps.is_empty(), "{after:#?}");
    server.stop();
}

async fn flipping_enabled_pauses_and_resumes_on_the_server(version: Version) {
    let server = support::server_of(version).await;
    let store = TemporalStore::new(
        support::client(&server).await,
        server.namespace().to_owned(),
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), "flip", &[("job", "  every: 1h\n")]);
    let load = || project::load(dir.path()).unwrap().project;
    assert!(
        reconcile(&store, &load(), ReconcileOptions::default())
            .await
            .unwrap()
            .converged()
    );
    write_project(
        dir.path(),
        "flip",
        &[("job", "  every: 1h\n  enabled: false\n")],
    );
    let mut paused = serde_json::Value::Null;
    for _ in 0..50 {
        let report = reconcile(&store, &load(), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        paused = support::describe(&server, "flip.job");
        if paused["schedule"]["state"]["paused"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(paused["schedule"]["state"]["paused"], true, "{paused:#}");
    assert!(
        paused["schedule"]["state"]["notes"]
            .as_str()
            .unwrap()
            .starts_with("schedule-sync: disabled")
    );
    write_project(dir.path(), "flip", &[("job", "  every: 1h\n")]);
    let mut resumed = serde_json::Value::Null;
    for _ in 0..50 {
        reconcile(&store, &load(), ReconcileOptions::default())
            .await
            .unwrap();
        resumed = support::describe(&server, "flip.job");
        if resumed["schedule"]["state"]["paused"] != true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(resumed["schedule"]["state"]["paused"], true, "{resumed:#}");
    server.stop();
}

async fn without_the_fingerprint_attribute_a_no_op_describes_but_never_writes(version: Version) {
    use schedule_sync::dev_server::DevServer;
    let mut options = support::options(version);
    options.search_attributes.clear();
    let server = DevServer::start(options)
        .await
        .expect("the dev server starts");
    let client = support::client(&server).await;
    let namespace = server.namespace().to_owned();
    assert!(
        !TemporalStore::has_fingerprint_attribute(&client, &namespace)
            .await
            .unwrap()
    );
    let store = TemporalStore::new(client.clone(), namespace.clone(), false);
    let dir = support::copy_example();
    let project = project::load(dir.path()).unwrap().project;
    assert!(
        reconcile(&store, &project, ReconcileOptions::default())
            .await
            .unwrap()
            .converged()
    );
    wait_for_listing(&store, 4).await;

    let counting = TemporalStore::new(client, namespace, false);
    let again = reconcile(&counting, &project, ReconcileOptions::default())
        .await
        .unwrap();
    assert!(again.plan.steps.is_empty(), "{again:#?}");
    let counts = counting.rpc_counts();
    assert_eq!(counts["DescribeSchedule"]["Ok"], 4, "{counts:?}");
    assert!(
        !counts.contains_key("UpdateSchedule") && !counts.contains_key("CreateSchedule"),
        "{counts:?}"
    );

    // A real change is still seen.
    let file = dir.path().join("workflows/invoice-sweep.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("every: 15m", "every: 20m");
    std::fs::write(&file, text).unwrap();
    let changed = support::apply(&counting, dir.path()).await;
    assert_eq!(
        changed.plan.steps,
        vec![Step::Update {
            schedule_id: "billing.invoice-sweep".into(),
            keep_operator_pause: false,
            adopt: false,
            reason: UpdateReason::Changed,
        }]
    );
    assert!(changed.converged(), "{changed:#?}");
    server.stop();
}

/// The interval of `id` as the listing shows it.
async fn listed_interval(store: &TemporalStore, id: &str) -> Option<i64> {
    let listing = store.list("billing").await.unwrap();
    let seen = listing
        .schedules
        .into_iter()
        .find(|o| o.schedule_id == id)?;
    seen.spec?
        .spec()
        .interval
        .first()?
        .interval
        .map(|d| d.seconds)
}

async fn an_edit_made_in_the_cli_is_detected_and_corrected(version: Version) {
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = support::copy_example();
    let load = || project::load(dir.path()).unwrap().project;
    let first = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    assert!(first.converged(), "{first:#?}");
    wait_for_listing(&store, 4).await;

    let status = std::process::Command::new(server.cli())
        .args([
            "schedule",
            "update",
            "--schedule-id",
            "billing.invoice-sweep",
        ])
        .args([
            "--interval",
            "7m",
            "--type",
            "Edited",
            "--task-queue",
            "edited",
        ])
        .args(["--workflow-id", "edited", "--address", &server.address()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if listed_interval(&store, "billing.invoice-sweep").await == Some(420) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        listed_interval(&store, "billing.invoice-sweep").await,
        Some(420)
    );

    let corrected = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    assert_eq!(
        corrected.plan.steps,
        vec![Step::Update {
            schedule_id: "billing.invoice-sweep".into(),
            keep_operator_pause: false,
            adopt: false,
            reason: UpdateReason::EditedOutOfBand,
        }]
    );
    assert!(corrected.converged(), "{corrected:#?}");
    let described = support::describe(&server, "billing.invoice-sweep");
    assert_eq!(
        described["schedule"]["spec"]["interval"][0]["interval"], "900s",
        "{described:#}"
    );
    assert_eq!(
        described["schedule"]["action"]["startWorkflow"]["workflowType"]["name"],
        "InvoiceSweep"
    );
    server.stop();
}

async fn applying_again_at_once_after_creates_and_deletes_neither_fails_nor_duplicates(
    version: Version,
) {
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = support::copy_example();
    let load = || project::load(dir.path()).unwrap().project;
    // No waiting between the runs: the listing may not show the creates yet.
    // A run that sees a stale listing plans the creates again; it must find
    // them done and write nothing more.
    let mut reports = Vec::new();
    for _ in 0..3 {
        let report = reconcile(&store, &load(), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        reports.push(report);
    }
    let runs: Vec<&Report> = reports.iter().collect();
    assert_eq!(applied(&runs, "create"), 4, "{runs:#?}");
    assert_eq!(sent(&store, "UpdateSchedule"), 0, "{runs:#?}");
    wait_for_listing(&store, 4).await;
    assert_eq!(listed_ids(&server), ids_of(&load()));
    std::fs::remove_file(dir.path().join("workflows/dunning.yaml")).unwrap();
    // Nor the delete, when the second run starts.
    let mut reports = Vec::new();
    for _ in 0..3 {
        let report = reconcile(&store, &load(), ReconcileOptions::default())
            .await
            .unwrap();
        assert!(report.converged(), "{report:#?}");
        reports.push(report);
    }
    let runs: Vec<&Report> = reports.iter().collect();
    assert_eq!(applied(&runs, "delete"), 1, "{runs:#?}");
    assert_eq!(applied(&runs, "create"), 0, "{runs:#?}");
    wait_for_listing(&store, 3).await;
    let left = ids_of(&load());
    assert!(!left.contains(&"billing.dunning".to_owned()), "{left:?}");
    assert_eq!(listed_ids(&server), left);
    server.stop();
}

async fn every_kind_of_field_is_updated_and_read_back_with_the_cli(version: Version) {
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = tempfile::tempdir().unwrap();
    let daily = "  cron: \"@daily\"\n";
    // Each variant of `w` changes one field from the one before; the pointer
    // reads it back from `temporal schedule describe`.
    let variants: [(&str, String, &str, serde_json::Value); 12] = [
        (
            "",
            "  cron: \"30 4 * * 1\"\n".into(),
            "/schedule/spec/structuredCalendar/0/hour/0/start",
            4.into(),
        ),
        (
            "",
            "  every: 20m\n".into(),
            "/schedule/spec/interval/0/interval",
            "1200s".into(),
        ),
        (
            "",
            format!("{daily}  timezone: Asia/Tokyo\n"),
            "/schedule/spec/timezoneName",
            "Asia/Tokyo".into(),
        ),
        (
            "",
            format!("{daily}  jitter: 1m\n"),
            "/schedule/spec/jitter",
            "60s".into(),
        ),
        (
            "",
            format!("{daily}  end_at: 2031-01-01T00:00:00Z\n"),
            "/schedule/spec/endTime",
            "2031-01-01T00:00:00Z".into(),
        ),
        (
            "",
            format!("{daily}  overlap_policy: buffer_all\n"),
            "/schedule/policies/overlapPolicy",
            "SCHEDULE_OVERLAP_POLICY_BUFFER_ALL".into(),
        ),
        (
            "",
            format!("{daily}  catchup_window: 2m\n"),
            "/schedule/policies/catchupWindow",
            "120s".into(),
        ),
        (
            "",
            format!("{daily}  pause_on_failure: true\n"),
            "/schedule/policies/pauseOnFailure",
            true.into(),
        ),
        (
            "",
            format!("{daily}  enabled: false\n"),
            "/schedule/state/paused",
            true.into(),
        ),
        (
            "",
            format!("{daily}  input: {{region: eu}}\n"),
            "/schedule/action/startWorkflow/input/payloads/0/data",
            // base64 of {"region":"eu"}, one json/plain payload
            "eyJyZWdpb24iOiJldSJ9".into(),
        ),
        (
            "type: Renamed\n",
            daily.into(),
            "/schedule/action/startWorkflow/workflowType/name",
            "Renamed".into(),
        ),
        (
            "task_queue: elsewhere\n",
            daily.into(),
            "/schedule/action/startWorkflow/taskQueue/name",
            "elsewhere".into(),
        ),
    ];
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        "name: fields\ntask_queue: q\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("workflows/keep.yaml"),
        format!("id: keep\nschedule:\n{daily}"),
    )
    .unwrap();
    for (header, schedule, pointer, expected) in variants {
        let text = format!("id: w\n{header}schedule:\n{schedule}");
        std::fs::write(dir.path().join("workflows/w.yaml"), &text).unwrap();
        let report = support::apply(&store, dir.path()).await;
        assert!(report.converged(), "{text}: {report:#?}");
        let described = support::describe(&server, "fields.w");
        assert_eq!(
            described.pointer(pointer),
            Some(&expected),
            "{text}: {described:#}"
        );
    }
    std::fs::remove_file(dir.path().join("workflows/w.yaml")).unwrap();
    let shrunk = support::apply(&store, dir.path()).await;
    assert!(shrunk.converged(), "{shrunk:#?}");
    let listed = support::temporal_json(&server, &["schedule", "list"]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["scheduleId"].as_str())
        .filter(|id| !support::is_fence(id))
        .collect();
    assert_eq!(ids, vec!["fields.keep"]);
    server.stop();
}

async fn a_fingerprint_left_by_an_earlier_writer_is_not_trusted_when_we_cannot_write_it(
    version: Version,
) {
    // Written first with the attribute (a key that could list it), then by a
    // store that may not use it (a least-privilege key): the attribute's old
    // value must not make every reconcile rewrite the schedule.
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let namespace = server.namespace().to_owned();
    let dir = support::copy_example();
    let full = TemporalStore::new(client.clone(), namespace.clone(), true);
    assert!(support::apply(&full, dir.path()).await.converged());
    wait_for_listing(&full, 4).await;

    let file = dir.path().join("workflows/invoice-sweep.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("every: 15m", "every: 20m");
    std::fs::write(&file, text).unwrap();
    let blind = TemporalStore::new(client.clone(), namespace.clone(), false);
    let changed = support::apply(&blind, dir.path()).await;
    assert!(changed.converged(), "{changed:#?}");
    assert_eq!(changed.plan.steps.len(), 1, "{changed:#?}");

    // The next reconciles find nothing to do: one write, not one per run.
    for _ in 0..2 {
        let counting = TemporalStore::new(client.clone(), namespace.clone(), false);
        let again = support::apply(&counting, dir.path()).await;
        assert!(again.plan.steps.is_empty(), "{again:#?}");
        assert!(
            !counting.rpc_counts().contains_key("UpdateSchedule"),
            "{:?}",
            counting.rpc_counts()
        );
    }
    server.stop();
}

/// `temporal schedule create` of `id`, by hand, without our marker.
fn create_by_hand(server: &schedule_sync::dev_server::DevServer, id: &str) {
    let made = std::process::Command::new(server.cli())
        .args([
            "schedule",
            "create",
            "--schedule-id",
            id,
            "--cron",
            "@weekly",
        ])
        .args([
            "--workflow-id",
            "hand",
            "--type",
            "Hand",
            "--task-queue",
            "q",
        ])
        .args(["--address", &server.address()])
        .status()
        .unwrap();
    assert!(made.success());
}

async fn adoption_updates_in_place_on_1_32_and_re_creates_on_1_29(version: Version) {
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), "adopt", &[("job", "  cron: \"@daily\"\n")]);
    create_by_hand(&server, "adopt.job");
    let load = || project::load(dir.path()).unwrap().project;
    let mut options = ReconcileOptions::default();
    options.plan.adopt = true;
    // The hand-made schedule may not be listed yet: then the create finds
    // the id taken and goes the update path, which adopts it just the same.
    let adopted = reconcile(&store, &load(), options).await.unwrap();
    assert!(adopted.converged(), "{adopted:#?}");
    let deletes = sent(&store, "DeleteSchedule");
    match version {
        Version::V1_29 => assert_eq!(deletes, 1, "1.29 takes no memo on update"),
        Version::V1_32 => assert_eq!(deletes, 0, "the marker lands with the update"),
    }
    let held = support::describe(&server, "adopt.job");
    assert!(
        held["memo"]["fields"]["schedule-sync.project"]["data"].is_string(),
        "{held:#}"
    );
    assert_eq!(
        held["schedule"]["action"]["startWorkflow"]["workflowType"]["name"],
        "job"
    );
    // Once the listing shows the marker, a plain apply finds it ours.
    let mut again = reconcile(&store, &load(), ReconcileOptions::default())
        .await
        .unwrap();
    for _ in 0..50 {
        if again.plan.steps.is_empty() && again.plan.untouched.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        again = reconcile(&store, &load(), ReconcileOptions::default())
            .await
            .unwrap();
    }
    assert!(
        again.converged() && again.plan.steps.is_empty(),
        "{again:#?}"
    );
    server.stop();
}

async fn a_schedule_deleted_by_hand_is_created_again(version: Version) {
    let server = support::server_of(version).await;
    let client = support::client(&server).await;
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    let dir = support::copy_example();
    assert!(support::apply(&store, dir.path()).await.converged());
    wait_for_listing(&store, 4).await;
    let deleted = std::process::Command::new(server.cli())
        .args(["schedule", "delete", "--schedule-id", "billing.dunning"])
        .args(["--address", &server.address()])
        .status()
        .unwrap();
    assert!(deleted.success());
    wait_for_listing(&store, 3).await;
    let report = support::apply(&store, dir.path()).await;
    assert!(report.converged(), "{report:#?}");
    // Not an OK that created nothing: describe shows it at once, and the
    // listing shows it soon after.
    let held = support::describe(&server, "billing.dunning");
    assert!(held["schedule"]["spec"].is_object(), "{held:#}");
    wait_for_listing(&store, 4).await;
    assert!(listed_ids(&server).contains(&"billing.dunning".to_owned()));
    server.stop();
}

on_each_version!(
    apply_creates_then_does_nothing_then_updates_keeping_an_operator_pause_then_deletes,
    look_alike_projects_and_hand_made_schedules_are_never_touched,
    three_concurrent_applies_converge_to_one_schedule_each,
    flipping_enabled_pauses_and_resumes_on_the_server,
    without_the_fingerprint_attribute_a_no_op_describes_but_never_writes,
    an_edit_made_in_the_cli_is_detected_and_corrected,
    applying_again_at_once_after_creates_and_deletes_neither_fails_nor_duplicates,
    every_kind_of_field_is_updated_and_read_back_with_the_cli,
    a_fingerprint_left_by_an_earlier_writer_is_not_trusted_when_we_cannot_write_it,
    adoption_updates_in_place_on_1_32_and_re_creates_on_1_29,
    a_schedule_deleted_by_hand_is_created_again,
);
