//! The runtime component in paused tokio time, with in-memory stores: every
//! arrow of the lifecycle as the run loop drives it, exact backoff gaps with
//! jitter off, the retry budget and the slow retry, triggers, readiness,
//! liveness, and shutdown: during a backoff, an RPC, a connect and the
//! first load, with the host's token never cancelled by the library.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schedule_sync::project::{self, Project};
use schedule_sync::runtime::lifecycle::{FailedReason, State};
use schedule_sync::runtime::retry::Jitter;
use schedule_sync::runtime::{
    AttemptError, Connector, FOLLOW_UP, Options, Reconciler, ReconcilerHandle, ReloadError,
    ScheduleState, Stopped,
};
use schedule_sync::spec::DesiredSchedule;
use schedule_sync::store::Observation;
use schedule_sync::store::{
    Created, Described, MemoryStore, PauseState, ScheduleStore, StoreError,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing")
}

fn billing() -> Project {
    project::load(&example()).unwrap().project
}

/// A project folder named `name` with one workflow per `(id, hour)`, each
/// firing daily at that hour.
fn folder(name: &str, workflows: &[(&str, u32)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        format!("name: {name}\ntask_queue: q\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("workflows")).unwrap();
    for (id, hour) in workflows {
        std::fs::write(
            dir.path().join(format!("workflows/{id}.yaml")),
            format!("id: {id}\nschedule:\n  cron: \"0 {hour} * * *\"\n"),
        )
        .unwrap();
    }
    dir
}

fn loaded(dir: &tempfile::TempDir) -> Project {
    project::load(dir.path()).unwrap().project
}

fn no_jitter() -> Options {
    let mut options = Options::default();
    options.retry.jitter = Jitter::Off;
    options
}

/// Fails to connect with the queued errors, then hands out the store; notes
/// when each connect was tried.
struct Flaky {
    store: Arc<MemoryStore>,
    failures: Mutex<VecDeque<AttemptError>>,
    always_fail: Mutex<Option<AttemptError>>,
    tried_at: Mutex<Vec<Instant>>,
}

#[derive(Clone)]
struct FlakyConnector(Arc<Flaky>);

impl std::ops::Deref for FlakyConnector {
    type Target = Flaky;
    fn deref(&self) -> &Flaky {
        &self.0
    }
}

impl FlakyConnector {
    fn new(failures: Vec<AttemptError>) -> Self {
        FlakyConnector(Arc::new(Flaky {
            store: Arc::new(MemoryStore::new()),
            failures: Mutex::new(failures.into()),
            always_fail: Mutex::new(None),
            tried_at: Mutex::new(Vec::new()),
        }))
    }

    /// Seconds since `start` of each connect tried.
    fn tries(&self, start: Instant) -> Vec<u64> {
        let tried = self.tried_at.lock().unwrap();
        tried.iter().map(|t| (*t - start).as_secs()).collect()
    }
}

impl Connector for FlakyConnector {
    type Store = Arc<MemoryStore>;

    async fn connect(&self) -> Result<Arc<MemoryStore>, AttemptError> {
        self.tried_at.lock().unwrap().push(Instant::now());
        if let Some(error) = self.always_fail.lock().unwrap().clone() {
            return Err(error);
        }
        match self.failures.lock().unwrap().pop_front() {
            Some(error) => Err(error),
            None => Ok(self.store.clone()),
        }
    }
}

fn unavailable() -> AttemptError {
    AttemptError::retryable("connecting to Temporal at 127.0.0.1:1 failed")
}

async fn wait_for(handle: &ReconcilerHandle, what: &str, test: impl Fn(&State) -> bool) -> State {
    let mut status = handle.subscribe();
    let reached = tokio::time::timeout(
        Duration::from_secs(3600),
        status.wait_for(|s| test(&s.state)),
    )
    .await
    .unwrap_or_else(|_| panic!("never reached {what}: {:?}", handle.state()))
    .unwrap_or_else(|_| panic!("the task ended before {what}"));
    reached.state.clone()
}

#[tokio::test(start_paused = true)]
async fn spawning_returns_at_once_and_the_first_sync_makes_it_ready() {
    let connector = FlakyConnector::new(vec![]);
    let shutdown = CancellationToken::new();
    let handle = Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), shutdown);
    // Nothing ran yet: spawn does not wait for Temporal, and the project's
    // 4 schedules show as pending from the start.
    assert_eq!(handle.state(), State::Pending);
    assert!(!handle.is_ready());
    assert!(handle.is_live());
    let pending: Vec<ScheduleState> = handle.status().schedules.iter().map(|s| s.status).collect();
    assert_eq!(pending, [ScheduleState::Pending; 4]);
    handle.wait_synced().await.unwrap();
    assert!(matches!(handle.state(), State::Synced { .. }));
    assert!(handle.is_ready());
    // The 4 schedules and the project's writer fence.
    assert_eq!(connector.store.writes(), 5);
    let status = handle.status();
    assert_eq!(status.revision, 1);
    assert!(status.last_success.is_some());
    assert!(
        status
            .schedules
            .iter()
            .all(|s| s.status == ScheduleState::InSync)
    );
    handle.shutdown().await;
    assert_eq!(handle.state(), State::ShuttingDown);
    assert!(!handle.is_ready(), "not ready from shutdown on");
}

#[tokio::test(start_paused = true)]
async fn retrying_backs_off_1_2_4_8_16_30_seconds_with_jitter_off() {
    let connector = FlakyConnector::new(vec![unavailable(); 8]);
    let start = Instant::now();
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), CancellationToken::new());
    let state = wait_for(&handle, "the first retry", |s| {
        matches!(s, State::Retrying { .. })
    })
    .await;
    match state {
        State::Retrying {
            attempt,
            last_error,
            ..
        } => {
            assert_eq!(attempt, 1);
            assert!(last_error.contains("127.0.0.1:1"), "{last_error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!handle.is_ready(), "not ready before the first sync");
    handle.wait_synced().await.unwrap();
    // 8 failures, then success: gaps 1, 2, 4, 8, 16, 30, 30, 30.
    assert_eq!(
        connector.tries(start),
        vec![0, 1, 3, 7, 15, 31, 61, 91, 121]
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_seeded_jitter_gives_the_same_gaps_every_run_within_the_bounds() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let connector = FlakyConnector::new(vec![unavailable(); 5]);
        let mut options = Options::default();
        options.retry.jitter = Jitter::Full { seed: Some(42) };
        let handle =
            Reconciler::new(connector.clone(), options).spawn(billing(), CancellationToken::new());
        handle.wait_synced().await.unwrap();
        let tried = connector.tried_at.lock().unwrap().clone();
        let gaps: Vec<Duration> = tried.windows(2).map(|w| w[1] - w[0]).collect();
        for (n, gap) in gaps.iter().enumerate() {
            let cap = Duration::from_secs(1 << n);
            assert!(*gap <= cap, "gap {n} is {gap:?}, over {cap:?}");
        }
        runs.push(gaps);
        handle.shutdown().await;
    }
    assert_eq!(runs[0], runs[1]);
    assert_ne!(
        runs[0],
        vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4),
            Duration::from_secs(8),
            Duration::from_secs(16)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn after_five_minutes_of_failures_it_is_failed_and_retries_slowly_until_synced() {
    let connector = FlakyConnector::new(vec![]);
    *connector.always_fail.lock().unwrap() = Some(unavailable());
    let start = Instant::now();
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), CancellationToken::new());
    let state = wait_for(&handle, "Failed", |s| matches!(s, State::Failed { .. })).await;
    assert!(
        matches!(
            state,
            State::Failed {
                reason: FailedReason::BudgetSpent,
                attempt: 15,
                ..
            }
        ),
        "{state:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(301));
    // The slow retry: every 5 minutes, still failing.
    wait_for(&handle, "the second slow retry", |s| s.attempt() == 17).await;
    assert_eq!(connector.tries(start)[14..], [301, 601, 901]);
    *connector.always_fail.lock().unwrap() = None;
    handle.wait_synced().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1201));
    assert_eq!(handle.status().state.attempt(), 0);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_fails_at_once_and_the_slow_retry_still_runs() {
    let connector = FlakyConnector::new(vec![AttemptError::fatal("PermissionDenied: no access")]);
    let start = Instant::now();
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), CancellationToken::new());
    let state = wait_for(&handle, "Failed", |s| matches!(s, State::Failed { .. })).await;
    assert!(
        matches!(
            state,
            State::Failed {
                reason: FailedReason::Fatal,
                attempt: 1,
                ..
            }
        ),
        "{state:?}"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    handle.wait_synced().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(300));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_project_at_start_is_failed_until_a_good_reload() {
    let connector = FlakyConnector::new(vec![]);
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("project.yaml"), "name: billing\n").unwrap();
    let handle = Reconciler::new(connector.clone(), no_jitter())
        .spawn_from(broken.path().to_owned(), CancellationToken::new());
    let state = wait_for(&handle, "Failed", |s| matches!(s, State::Failed { .. })).await;
    let error = state.last_error().unwrap();
    assert!(
        error.starts_with("invalid project (1 error(s)):") && error.contains("project.yaml"),
        "{error}"
    );
    assert!(matches!(
        state,
        State::Failed {
            reason: FailedReason::Fatal,
            ..
        }
    ));
    tokio::time::sleep(Duration::from_secs(900)).await;
    assert_eq!(
        connector.store.calls().len(),
        0,
        "nothing to reconcile, nothing sent"
    );
    handle.reload(billing()).unwrap();
    handle.wait_synced().await.unwrap();
    assert_eq!(handle.status().revision, 1);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn once_synced_it_stays_ready_through_later_retries() {
    let connector = FlakyConnector::new(vec![]);
    let mut options = no_jitter();
    options.resync = Some(Duration::from_secs(60));
    let handle =
        Reconciler::new(connector.clone(), options).spawn(billing(), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    connector.store.fail_next(
        schedule_sync::Rpc::ListSchedules,
        schedule_sync::Code::Unavailable,
        100,
    );
    let state = wait_for(&handle, "Retrying after Synced", |s| {
        matches!(s, State::Retrying { .. })
    })
    .await;
    assert_eq!(state.attempt(), 1);
    assert!(handle.is_ready(), "readiness latches on the first sync");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_periodic_resync_runs_after_each_success() {
    let connector = FlakyConnector::new(vec![]);
    let mut options = no_jitter();
    options.resync = Some(Duration::from_secs(60));
    let handle =
        Reconciler::new(connector.clone(), options).spawn(billing(), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    tokio::time::sleep(Duration::from_secs(150)).await;
    assert_eq!(
        connector.store.calls_of(schedule_sync::Rpc::ListSchedules),
        3,
        "at 0, 60 and 120 s"
    );
    assert_eq!(
        connector.store.writes(),
        5,
        "the first reconcile wrote the 4 schedules and the writer fence; the resyncs nothing"
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reloads_in_a_row_coalesce_into_one_reconcile() {
    let connector = FlakyConnector::new(vec![]);
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    let lists = connector.store.calls_of(schedule_sync::Rpc::ListSchedules);
    for _ in 0..5 {
        handle.reload(billing()).unwrap();
    }
    handle.resync().unwrap();
    let mut status = handle.subscribe();
    let reloaded = status
        .wait_for(|s| s.revision == 2 && s.ever_synced && s.totals.attempts_finished() == 2)
        .await
        .unwrap()
        .clone();
    assert_eq!(reloaded.totals.reloads.get("applied"), Some(&5));
    // Nothing else is due: the next 10 minutes bring no reconcile.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        connector.store.calls_of(schedule_sync::Rpc::ListSchedules),
        lists + 1
    );
    assert_eq!(handle.status().revision, 2);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_latest_reload_replaces_one_still_waiting() {
    let store = Arc::new(SlowStore {
        inner: MemoryStore::new(),
        delay: Some(Duration::from_secs(2)),
    });
    let first = folder("shop", &[("a", 1)]);
    let handle =
        Reconciler::new(store.clone(), no_jitter()).spawn(loaded(&first), CancellationToken::new());
    // While the first reconcile is under way, two reloads come: the second
    // replaces the first, which is never reconciled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (older, latest) = (
        folder("shop", &[("a", 1), ("b", 2)]),
        folder("shop", &[("a", 1), ("c", 3)]),
    );
    handle.reload(loaded(&older)).unwrap();
    handle.reload(loaded(&latest)).unwrap();
    let mut status = handle.subscribe();
    let done = status
        .wait_for(|s| s.revision == 2 && s.totals.attempts_finished() == 2)
        .await
        .unwrap()
        .clone();
    assert!(matches!(done.state, State::Synced { .. }), "{done:?}");
    let ids: Vec<&str> = done.schedules.iter().map(|s| &*s.id).collect();
    assert_eq!(ids, ["shop.a", "shop.c"]);
    assert!(store.inner.get("shop.c").is_some());
    assert!(
        store.inner.get("shop.b").is_none(),
        "the older reload was dropped"
    );
    assert_eq!(done.totals.reloads.get("applied"), Some(&2));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_reload_never_drops_a_good_one_still_waiting() {
    let store = Arc::new(SlowStore {
        inner: MemoryStore::new(),
        delay: Some(Duration::from_secs(2)),
    });
    let first = folder("shop", &[("a", 1)]);
    let handle =
        Reconciler::new(store.clone(), no_jitter()).spawn(loaded(&first), CancellationToken::new());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let good = folder("shop", &[("a", 1), ("b", 2)]);
    handle.reload_from(good.path().to_owned()).await.unwrap();
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("project.yaml"), "name: shop\n").unwrap();
    let refused = handle.reload_from(broken.path().to_owned()).await;
    assert!(
        matches!(refused, Err(ReloadError::Invalid(_))),
        "{refused:?}"
    );
    let mut status = handle.subscribe();
    let done = status
        .wait_for(|s| {
            s.revision == 2 && s.reload_error.is_some() && s.totals.attempts_finished() == 2
        })
        .await
        .unwrap()
        .clone();
    assert!(
        store.inner.get("shop.b").is_some(),
        "the good reload was reconciled"
    );
    let error = done.reload_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("project.yaml"),
        "the refusal came last: {done:?}"
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reload_and_resync_say_when_the_reconciler_has_stopped() {
    let connector = FlakyConnector::new(vec![]);
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    assert_eq!(handle.resync(), Ok(()));
    handle.shutdown().await;
    assert_eq!(handle.resync(), Err(Stopped));
    assert_eq!(handle.reload(billing()), Err(Stopped));
    let refused = handle.reload_from(example()).await;
    assert!(
        matches!(refused, Err(ReloadError::Stopped(Stopped))),
        "{refused:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn reload_says_so_when_the_task_died() {
    let handle = Reconciler::new(Arc::new(PanickingStore), no_jitter())
        .spawn(billing(), CancellationToken::new());
    handle.join().await;
    assert_eq!(handle.resync(), Err(Stopped));
    assert_eq!(handle.reload(billing()), Err(Stopped));
}

#[tokio::test(start_paused = true)]
async fn an_invalid_reload_keeps_the_last_good_project_and_deletes_nothing() {
    let connector = FlakyConnector::new(vec![]);
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    let calls = connector.store.calls().len();
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("project.yaml"), "name: billing\n").unwrap();
    let refused = handle.reload_from(broken.path().to_owned()).await;
    let error = refused.unwrap_err();
    assert!(
        matches!(&error, ReloadError::Invalid(invalid) if invalid.error_count() > 0),
        "{error}"
    );
    let error = error.to_string();
    assert!(error.contains("project.yaml"), "{error}");
    let mut status = handle.subscribe();
    let status = status
        .wait_for(|s| s.reload_error.is_some())
        .await
        .unwrap()
        .clone();
    assert_eq!(status.reload_error.as_deref(), Some(error.as_str()));
    assert_eq!(status.revision, 1);
    assert!(matches!(status.state, State::Synced { .. }));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(connector.store.calls().len(), calls, "no RPC at all");
    assert_eq!(
        connector.store.calls_of(schedule_sync::Rpc::DeleteSchedule),
        0
    );
    // A good reload afterwards clears the error.
    handle.reload_from(example()).await.unwrap();
    let mut status = handle.subscribe();
    status
        .wait_for(|s| s.revision == 2 && s.reload_error.is_none())
        .await
        .unwrap();
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_backoff_ends_at_once() {
    let connector = FlakyConnector::new(vec![unavailable(); 10]);
    let shutdown = CancellationToken::new();
    let handle = Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), shutdown.clone());
    wait_for(&handle, "the 4th retry", |s| s.attempt() == 4).await;
    let tries = connector.tried_at.lock().unwrap().len();
    let asked = Instant::now();
    shutdown.cancel();
    handle.join().await;
    assert_eq!(asked.elapsed(), Duration::ZERO);
    assert_eq!(handle.state(), State::ShuttingDown);
    assert_eq!(
        connector.tried_at.lock().unwrap().len(),
        tries,
        "no attempt after shutdown"
    );
    assert!(handle.wait_synced().await.is_err());
}

/// A store whose every RPC takes `delay`, or never ends.
struct SlowStore {
    inner: MemoryStore,
    delay: Option<Duration>,
}

impl SlowStore {
    async fn wait(&self) {
        match self.delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None => std::future::pending().await,
        }
    }
}

impl ScheduleStore for SlowStore {
    async fn list(&self, project: &str) -> Result<Observation, StoreError> {
        self.wait().await;
        self.inner.list(project).await
    }
    async fn describe(&self, id: &str) -> Result<Option<Described>, StoreError> {
        self.wait().await;
        self.inner.describe(id).await
    }
    async fn create(
        &self,
        project: &str,
        d: &DesiredSchedule,
        pause: &PauseState,
        keep: &std::collections::HashMap<String, Payload>,
        request_id: &str,
    ) -> Result<Created, StoreError> {
        self.wait().await;
        self.inner.create(project, d, pause, keep, request_id).await
    }
    async fn update(
        &self,
        project: &str,
        d: &DesiredSchedule,
        pause: &PauseState,
        current: &Described,
        request_id: &str,
    ) -> Result<(), StoreError> {
        self.wait().await;
        self.inner
            .update(project, d, pause, current, request_id)
            .await
    }
    async fn set_paused(&self, id: &str, pause: &PauseState) -> Result<(), StoreError> {
        self.wait().await;
        self.inner.set_paused(id, pause).await
    }
    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.wait().await;
        self.inner.delete(id).await
    }
    async fn search_attribute_types(
        &self,
    ) -> Result<schedule_sync::store::AttributeTypes, StoreError> {
        self.wait().await;
        self.inner.search_attribute_types().await
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_an_rpc_lets_it_finish_and_starts_no_other() {
    let store = Arc::new(SlowStore {
        inner: MemoryStore::new(),
        delay: Some(Duration::from_secs(2)),
    });
    let mut options = no_jitter();
    options.reconcile.concurrency = 1;
    let shutdown = CancellationToken::new();
    let handle = Reconciler::new(store.clone(), options).spawn(billing(), shutdown.clone());
    // The listing takes 2 s; the next RPC (reading the writer fence before
    // the first write) is in flight from 2 s to 4 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(store.inner.calls(), [schedule_sync::Rpc::ListSchedules]);
    let asked = Instant::now();
    shutdown.cancel();
    handle.join().await;
    assert_eq!(
        asked.elapsed(),
        Duration::from_secs(1),
        "the RPC in flight finished"
    );
    assert_eq!(
        store.inner.calls(),
        [
            schedule_sync::Rpc::ListSchedules,
            schedule_sync::Rpc::DescribeSchedule
        ],
        "no new RPC after shutdown"
    );
    assert_eq!(handle.state(), State::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn readiness_drops_the_moment_shutdown_is_asked_while_an_rpc_is_in_flight() {
    let store = Arc::new(SlowStore {
        inner: MemoryStore::new(),
        delay: Some(Duration::from_secs(2)),
    });
    let shutdown = CancellationToken::new();
    let handle = Reconciler::new(store.clone(), no_jitter()).spawn(billing(), shutdown.clone());
    handle.wait_synced().await.unwrap();
    assert!(handle.is_ready());
    // A resync whose listing is in flight from now on for 2 s.
    handle.resync().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    shutdown.cancel();
    tokio::task::yield_now().await;
    assert_eq!(handle.state(), State::ShuttingDown);
    assert!(
        !handle.is_ready(),
        "a stopping host must leave the load balancer at once"
    );
    assert_eq!(asked.elapsed(), Duration::ZERO);
    // The listing in flight still finishes.
    handle.join().await;
    assert_eq!(asked.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_an_rpc_that_never_ends_after_the_timeout() {
    let store = Arc::new(SlowStore {
        inner: MemoryStore::new(),
        delay: None,
    });
    let shutdown = CancellationToken::new();
    let handle = Reconciler::new(store.clone(), no_jitter()).spawn(billing(), shutdown.clone());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(handle.state(), State::Pending);
    let asked = Instant::now();
    handle.shutdown().await;
    assert_eq!(asked.elapsed(), Duration::from_secs(10));
    assert_eq!(handle.state(), State::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_hangs_times_out_and_is_retried() {
    let store = Arc::new(SlowStore {
        inner: MemoryStore::new(),
        delay: None,
    });
    let mut options = no_jitter();
    options.attempt_timeout = Duration::from_secs(20);
    let start = Instant::now();
    let handle = Reconciler::new(store, options).spawn(billing(), CancellationToken::new());
    let state = wait_for(&handle, "Retrying", |s| matches!(s, State::Retrying { .. })).await;
    assert_eq!(start.elapsed(), Duration::from_secs(20));
    assert!(
        state.last_error().unwrap().contains("timed out"),
        "{state:?}"
    );
    handle.shutdown().await;
}

/// A store that panics, to kill the task.
struct PanickingStore;

impl ScheduleStore for PanickingStore {
    async fn list(&self, _: &str) -> Result<Observation, StoreError> {
        panic!("a bug in the store")
    }
    async fn describe(&self, _: &str) -> Result<Option<Described>, StoreError> {
        unreachable!()
    }
    async fn create(
        &self,
        _: &str,
        _: &DesiredSchedule,
        _: &PauseState,
        _: &std::collections::HashMap<String, Payload>,
        _: &str,
    ) -> Result<Created, StoreError> {
        unreachable!()
    }
    async fn update(
        &self,
        _: &str,
        _: &DesiredSchedule,
        _: &PauseState,
        _: &Described,
        _: &str,
    ) -> Result<(), StoreError> {
        unreachable!()
    }
    async fn set_paused(&self, _: &str, _: &PauseState) -> Result<(), StoreError> {
        unreachable!()
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        unreachable!()
    }
    async fn search_attribute_types(
        &self,
    ) -> Result<schedule_sync::store::AttributeTypes, StoreError> {
        unreachable!()
    }
}

#[tokio::test(start_paused = true)]
async fn liveness_fails_when_the_task_dies() {
    let handle = Reconciler::new(Arc::new(PanickingStore), no_jitter())
        .spawn(billing(), CancellationToken::new());
    assert!(handle.wait_synced().await.is_err());
    assert!(!handle.is_live());
    assert!(!handle.is_ready());
}

#[tokio::test(start_paused = true)]
async fn the_library_never_cancels_the_hosts_token() {
    let host = CancellationToken::new();
    let handle =
        Reconciler::new(FlakyConnector::new(vec![]), no_jitter()).spawn(billing(), host.clone());
    handle.wait_synced().await.unwrap();
    handle.shutdown().await;
    assert_eq!(handle.state(), State::ShuttingDown);
    assert!(!host.is_cancelled(), "the host's token is the host's");

    // The host's token still stops the reconciler.
    let handle =
        Reconciler::new(FlakyConnector::new(vec![]), no_jitter()).spawn(billing(), host.clone());
    handle.wait_synced().await.unwrap();
    host.cancel();
    handle.join().await;
    assert_eq!(handle.state(), State::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn readiness_is_false_the_instant_the_host_cancels_with_no_wait_for_the_loop() {
    let host = CancellationToken::new();
    let handle =
        Reconciler::new(FlakyConnector::new(vec![]), no_jitter()).spawn(billing(), host.clone());
    handle.wait_synced().await.unwrap();
    assert!(handle.is_ready());
    host.cancel();
    // No await in between: the run loop has not run, and still it says not
    // ready, and no one waiting for a sync waits on.
    assert!(matches!(handle.status().state, State::Synced { .. }));
    assert!(!handle.is_ready());
    assert_eq!(handle.wait_synced().await, Err(Stopped));
    handle.join().await;
    assert_eq!(handle.state(), State::ShuttingDown);
}

/// Connects never: a peer that takes the TCP connection and never answers.
#[derive(Clone, Default)]
struct SilentConnector {
    tries: Arc<Mutex<u32>>,
}

impl Connector for SilentConnector {
    type Store = Arc<MemoryStore>;

    async fn connect(&self) -> Result<Arc<MemoryStore>, AttemptError> {
        *self.tries.lock().unwrap() += 1;
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_drops_a_connect_in_flight_at_once() {
    let connector = SilentConnector::default();
    let shutdown = CancellationToken::new();
    let handle = Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), shutdown.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        *connector.tries.lock().unwrap(),
        1,
        "a connect is under way"
    );
    assert_eq!(handle.state(), State::Pending);
    let asked = Instant::now();
    shutdown.cancel();
    handle.join().await;
    assert_eq!(
        asked.elapsed(),
        Duration::ZERO,
        "not the 10 s shutdown timeout: a connect has nothing to finish"
    );
    assert_eq!(handle.state(), State::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn shutdown_before_the_first_load_ends_it_without_loading() {
    let connector = FlakyConnector::new(vec![]);
    let shutdown = CancellationToken::new();
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn_from(example(), shutdown.clone());
    shutdown.cancel();
    handle.join().await;
    let status = handle.status();
    assert_eq!(status.state, State::ShuttingDown);
    assert_eq!(status.project, None, "never loaded");
    assert!(connector.tried_at.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn durations_as_long_as_duration_max_mean_never_and_panic_nowhere() {
    let never = Duration::MAX;
    let mut options = Options::default();
    options.retry.initial = never;
    options.retry.max = never;
    options.retry.budget = never;
    options.retry.slow_retry = never;
    options.retry.jitter = Jitter::Full { seed: Some(1) };
    options.resync = Some(never);
    options.attempt_timeout = never;
    options.shutdown_timeout = never;
    // Synced, with a resync that never comes.
    let connector = FlakyConnector::new(vec![]);
    let handle = Reconciler::new(connector.clone(), options.clone())
        .spawn(billing(), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    tokio::time::sleep(Duration::from_secs(365 * 86_400)).await;
    assert_eq!(
        connector.store.calls_of(schedule_sync::Rpc::ListSchedules),
        1
    );
    handle.shutdown().await;

    // Retrying and Failed, with backoffs that never end.
    for error in [unavailable(), AttemptError::fatal("PermissionDenied")] {
        let connector = FlakyConnector::new(vec![error]);
        let handle = Reconciler::new(connector.clone(), options.clone())
            .spawn(billing(), CancellationToken::new());
        let state = wait_for(&handle, "a failure", |s| s.attempt() == 1).await;
        assert!(state.next_retry_at().is_some(), "{state:?}");
        tokio::time::sleep(Duration::from_secs(365 * 86_400)).await;
        assert_eq!(connector.tried_at.lock().unwrap().len(), 1);
        handle.shutdown().await;
        assert_eq!(handle.state(), State::ShuttingDown);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_race_is_followed_up_soon_without_a_periodic_resync() {
    let connector = FlakyConnector::new(vec![]);
    let store = connector.store.clone();
    let (v1, v2) = (folder("race", &[("a", 1)]), folder("race", &[("a", 2)]));
    let handle = Reconciler::new(connector.clone(), no_jitter())
        .spawn(loaded(&v1), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    // Another writer wins every race for `race.a` during the next reconcile.
    store.fail_next(
        schedule_sync::Rpc::UpdateSchedule,
        schedule_sync::Code::FailedPrecondition,
        schedule_sync::reconcile::RACE_ATTEMPTS as usize,
    );
    handle.reload(loaded(&v2)).unwrap();
    let mut status = handle.subscribe();
    let lost = status
        .wait_for(|s| s.revision == 2 && s.totals.attempts_finished() == 2)
        .await
        .unwrap()
        .clone();
    let lost_at = Instant::now();
    assert!(matches!(lost.state, State::Synced { .. }), "{lost:?}");
    assert_eq!(lost.schedules[0].status, ScheduleState::Error);
    assert!(
        lost.schedules[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("another writer")),
        "{lost:?}"
    );
    // The follow-up comes after FOLLOW_UP, with no resync configured, and
    // lands the update.
    let healed = status
        .wait_for(|s| s.schedules[0].status == ScheduleState::InSync)
        .await
        .unwrap()
        .clone();
    assert_eq!(lost_at.elapsed(), FOLLOW_UP);
    assert_eq!(healed.totals.attempts_finished(), 3);
    let hour = store
        .get("race.a")
        .unwrap()
        .spec
        .unwrap()
        .structured_calendar[0]
        .hour[0]
        .start;
    assert_eq!(hour, 2);
    // And then nothing more is due.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(handle.status().totals.attempts_finished(), 3);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn metric_timestamps_come_from_the_wall_clock_when_they_are_set() {
    // Eight failures: 121 s of tokio's (paused) clock pass before the sync,
    // and next to no wall-clock time.
    let connector = FlakyConnector::new(vec![unavailable(); 8]);
    let start = Instant::now();
    let handle =
        Reconciler::new(connector.clone(), no_jitter()).spawn(billing(), CancellationToken::new());
    handle.wait_synced().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(121));
    let status = handle.status();
    let now = std::time::SystemTime::now();
    for (what, at) in [
        ("last_success", status.last_success.unwrap()),
        ("state_entered_at", status.state_entered_at),
    ] {
        let off = now.duration_since(at).unwrap_or_else(|e| e.duration());
        assert!(
            off < Duration::from_secs(60),
            "{what} is {off:?} away from the wall clock"
        );
    }
    handle.shutdown().await;
}
