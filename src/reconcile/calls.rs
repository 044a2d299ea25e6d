//! The one way an RPC is made during a reconcile: retried with backoff while
//! the error may heal, sent again at the store's pace when the server
//! throttled it, cut short once Temporal is found away, and (for a write)
//! logged to the audit trail.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio_util::sync::CancellationToken;

use super::failure::Failure;
use super::{
    Apply, FIRST_BACKOFF, MAX_BACKOFF, OUTAGE_THRESHOLD, OUTAGE_WINDOW, RPC_ATTEMPTS,
    THROTTLED_ATTEMPTS,
};
use crate::store::{Created, Described, ScheduleStore, StoreError};

/// Notices that Temporal has gone away: [`OUTAGE_THRESHOLD`] RPCs in a row
/// that found it unreachable, with no success between them, from any step,
/// over at least [`OUTAGE_WINDOW`]. Any answer, a throttled one included,
/// shows the server there and ends the run. A describe that answers late
/// while the server throttles is left out (see `Apply::late_describe`).
#[derive(Default)]
pub(super) struct Outage {
    in_a_row: AtomicU32,
    /// When the current run of failures began.
    since: Mutex<Option<tokio::time::Instant>>,
    /// The error that tipped the reconcile into the outage; set once.
    last: OnceLock<StoreError>,
    down: CancellationToken,
}

impl Outage {
    fn record<T>(&self, result: &Result<T, StoreError>) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Err(error) if error.is_unreachable() => {
                let now = tokio::time::Instant::now();
                let began = *since.get_or_insert(now);
                let count = self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
                let long_enough = now.duration_since(began) >= OUTAGE_WINDOW;
                if count >= OUTAGE_THRESHOLD && long_enough && self.last.set(error.clone()).is_ok()
                {
                    tracing::warn!(
                        %error,
                        rpcs = count,
                        "Temporal is unreachable; no new schedule write starts in this reconcile"
                    );
                    self.down.cancel();
                }
            }
            _ => {
                self.in_a_row.store(0, Ordering::SeqCst);
                *since = None;
            }
        }
    }

    /// The error that showed Temporal away, once it has.
    pub(super) fn gone(&self) -> Option<StoreError> {
        self.last.get().cloned()
    }

    /// `failure` as the step should report it: an unreachable error met
    /// once Temporal is known to be away is the outage, not the step's own.
    pub(super) fn explain(&self, failure: Failure) -> Failure {
        match (failure, self.gone()) {
            (Failure::Store(error), Some(last)) if error.is_unreachable() => {
                Failure::Unreachable { last }
            }
            (failure, _) => failure,
        }
    }
}

/// How the audit log names the answer to a write: `ok` when it took
/// effect, and for a create that found its id taken, `already_exists` (the
/// store answers that as a success, and nothing was written).
pub(super) trait Audited {
    fn audited(&self) -> &'static str;
}

impl Audited for () {
    fn audited(&self) -> &'static str {
        "ok"
    }
}

impl Audited for Created {
    fn audited(&self) -> &'static str {
        match self {
            Created::Created => "ok",
            Created::AlreadyExists => "already_exists",
        }
    }
}

/// Request ids of one step: fresh for each write the step means to make,
/// repeated only when that same write is retried.
pub(super) struct RequestIds {
    nonce: String,
    made: u32,
}

impl RequestIds {
    pub(super) fn new() -> Self {
        RequestIds {
            nonce: format!("{:032x}", fastrand::u128(..)),
            made: 0,
        }
    }

    /// A request id for the next write.
    pub(super) fn next(&mut self, operation: &str) -> String {
        self.made += 1;
        format!("schedule-sync-{operation}-{}-{}", self.nonce, self.made)
    }

    /// How many writes the step has meant to make.
    pub(super) fn made(&self) -> u32 {
        self.made
    }
}

/// What an RPC that found no answer in time may mean.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Late {
    /// Temporal may be away: counted by the outage breaker (unless a
    /// describe while throttled, see `Apply::late_describe`) and retried.
    MayBeAway,
    /// The server is known to answer and the call waits on its backlog:
    /// neither counted nor retried.
    Busy,
    /// A read of a schedule that the server has just created, which waits
    /// on its backlog: retried, but not counted.
    JustCreated,
}

impl<S: ScheduleStore> Apply<'_, S> {
    /// Runs `op` until it succeeds or fails with a code that retrying will
    /// not heal, backing off between attempts. Two budgets: [`RPC_ATTEMPTS`]
    /// for answers that may heal (Unavailable, Internal, ...), and
    /// [`THROTTLED_ATTEMPTS`] for throttled ones, which are sent again at
    /// the store's pace (slowed down by each of them). Once Temporal is
    /// found unreachable, nothing more is tried: the answer is the error
    /// that showed it away.
    pub(super) fn retrying<T, F, Fut>(&self, op: F) -> impl Future<Output = Result<T, StoreError>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.retrying_as(Late::MayBeAway, op)
    }

    /// [`Apply::retrying`] for a read that the server may answer only after
    /// its backlog: the writer fence read by the claim, or a schedule just
    /// created. A schedule (the fence is one) just created or updated by
    /// any writer answers a describe only once the server's scheduler
    /// worker has run its workflow task (on Temporal 1.29 a describe is a
    /// query to the schedule's workflow, buffered until then), and right
    /// after a burst of creates that worker has a backlog of many seconds.
    /// Such a read that finds no answer in time is given up at once, and is
    /// not counted by the outage breaker: the caller goes on without it (the
    /// claim writes without the fence), and the steps' own RPCs find out
    /// whether Temporal is away.
    pub(super) fn reading_once_if_late<T, F, Fut>(
        &self,
        op: F,
    ) -> impl Future<Output = Result<T, StoreError>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.retrying_as(Late::Busy, op)
    }

    async fn retrying_as<T, F, Fut>(&self, late: Late, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut delay = FIRST_BACKOFF;
        let mut attempts = 1;
        let mut throttled = 0;
        loop {
            if let Some(last) = self.outage.gone() {
                return Err(last);
            }
            let result = op().await;
            let timed_out = result
                .as_ref()
                .is_err_and(|error| error.code == tonic::Code::DeadlineExceeded);
            let busy = timed_out
                && match late {
                    Late::Busy | Late::JustCreated => true,
                    Late::MayBeAway => result
                        .as_ref()
                        .is_err_and(|error| self.late_describe(error)),
                };
            if !busy {
                self.outage.record(&result);
            }
            let error = match result {
                Err(error) if late == Late::Busy && timed_out => return Err(error),
                Err(error) if error.is_retryable() => error,
                other => return other,
            };
            let again = if error.is_throttled() {
                throttled += 1;
                throttled < THROTTLED_ATTEMPTS
            } else {
                attempts += 1;
                attempts <= RPC_ATTEMPTS
            };
            if !again {
                return Err(error);
            }
            tracing::debug!(%error, attempts, throttled, ?delay, "retrying a schedule RPC");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.outage.down.cancelled() => {
                    return Err(self.outage.gone().unwrap_or(error));
                }
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Whether `error` is a describe that got no answer in time while the
    /// server throttles this store's calls. On Temporal 1.29 a describe is
    /// a query to the schedule's workflow, which the server's own worker
    /// answers through the namespace's limit: at the limit, describes
    /// answer late. That shows a busy namespace, not an unreachable one, so
    /// the outage breaker does not count it (it is retried as any
    /// `DeadlineExceeded` is).
    fn late_describe(&self, error: &StoreError) -> bool {
        error.rpc == "DescribeSchedule"
            && error.code == tonic::Code::DeadlineExceeded
            && self
                .store
                .pace_status()
                .is_some_and(|pace| pace.throttled_recently)
    }

    /// [`Apply::retrying`] for a write, each attempt logged at INFO: the
    /// audit trail of every write sent to Temporal.
    pub(super) async fn write<T: Audited, F, Fut>(
        &self,
        operation: &'static str,
        schedule_id: &str,
        request_id: &str,
        mut op: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.retrying(|| {
            let call = op();
            async move {
                let result = call.await;
                let outcome = match &result {
                    Ok(done) => done.audited().to_owned(),
                    Err(error) => format!("{:?}", error.code),
                };
                tracing::info!(
                    target: "schedule_sync::audit",
                    project = self.project,
                    schedule_id,
                    operation,
                    request_id,
                    outcome,
                    "schedule write"
                );
                result
            }
        })
        .await
    }

    /// Describes a schedule, retrying.
    pub(super) fn describe(
        &self,
        schedule_id: &str,
    ) -> impl Future<Output = Result<Option<Described>, StoreError>> {
        self.retrying(move || self.store.describe(schedule_id))
    }

    /// Who owns a schedule that the server has just answered a create of
    /// with OK: `Some(owner)` (`None` for a schedule without a marker), or
    /// `None` when it holds no such schedule.
    ///
    /// On Temporal 1.29 a describe of it waits for the schedule's first
    /// workflow task, minutes while the server's scheduler worker has a
    /// backlog after a burst of creates. So a describe that gets no answer
    /// in time is not retried at once: the schedule's scheduler workflow,
    /// which shows the marker without a workflow task (the first half of
    /// the server's own describe), is asked whether it is ours. When it
    /// cannot say so (1.32's CHASM scheduler, whose describes do not wait
    /// this way), the describe is retried. Either way, the server answered
    /// the create, so a describe that gets no answer in time is not counted
    /// by the outage breaker (see [`Apply::reading_once_if_late`]).
    pub(super) async fn owner_of_created(
        &self,
        schedule_id: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        let owner = |held: Option<Described>| held.map(|held| held.observed.owner);
        match self
            .reading_once_if_late(|| self.store.describe(schedule_id))
            .await
        {
            Err(late) if late.code == tonic::Code::DeadlineExceeded => {
                tracing::debug!(
                    schedule_id,
                    "the describe of a schedule just created got no answer in time; \
                     reading its scheduler workflow"
                );
                let ours = self
                    .retrying(|| self.store.owned_without_waiting(schedule_id, self.project))
                    .await?;
                if ours {
                    return Ok(Some(Some(self.project.to_owned())));
                }
                self.retrying_as(Late::JustCreated, || self.store.describe(schedule_id))
                    .await
                    .map(owner)
            }
            held => held.map(owner),
        }
    }
}
