//! Where schedules live: one trait over Temporal's schedule RPCs, so that the
//! reconciler can run against the real server ([`TemporalStore`]) or an
//! in-memory one ([`MemoryStore`]) in tests and for fault injection.

mod activity;
mod memory;
mod pace;
mod rpc;
mod temporal;

use std::collections::HashMap;
use std::future::Future;

pub use activity::{Action, Activity, Counters};
pub use memory::{MemoryStore, SchedulerModel};
pub use pace::{Answer, MIN_RATE, Pace, PaceStatus, THROTTLED_RECENTLY, Turn};
pub use rpc::{Code, Rpc};
pub use temporal::{RPC_TIMEOUT, RpcCounts, TemporalStore};

pub use crate::spec::listed::{LISTED_SPEC_ENTRIES, ListedSpec, as_listed};

use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::spec::{
    DesiredSchedule, Fingerprint, MEMO_FINGERPRINT, MEMO_PROJECT, PAUSE_NOTE_PREFIX, json_payload,
};

/// The search attribute that holds a schedule's fingerprint: a Keyword
/// attribute that the namespace must have for the no-op to cost only the
/// listing.
pub const FINGERPRINT_ATTRIBUTE: &str = "ScheduleSyncFingerprint";

/// A schedule as a listing saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The schedule id.
    pub schedule_id: String,
    /// The project named in the memo marker, if any.
    pub owner: Option<String>,
    /// The fingerprint we last wrote, if the listing shows it.
    pub fingerprint: Option<Fingerprint>,
    /// Whether the schedule is paused.
    pub paused: bool,
    /// The pause notes.
    pub notes: String,
    /// The spec as a listing shows it, when it shows one (Temporal's does).
    pub spec: Option<ListedSpec>,
    /// What the entry shows of the schedule's firing (last and next
    /// actions; a describe adds its counters), when the store tells.
    pub activity: Option<Activity>,
}

impl Observed {
    /// Whether the schedule is paused by someone other than schedule-sync.
    pub fn paused_by_operator(&self) -> bool {
        self.paused && !self.notes.starts_with(PAUSE_NOTE_PREFIX)
    }
}

/// What a listing returned.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Every schedule seen whose id is one of the project's form.
    pub schedules: Vec<Observed>,
    /// False when the listing failed part-way or was cut short; then nothing
    /// is deleted.
    pub complete: bool,
}

/// The search attributes an update sends: every attribute the schedule holds
/// that is not ours, kept as it is, plus our fingerprint. Temporal replaces
/// the whole set on update, so anything left out here would be deleted.
pub fn merged_search_attributes(
    held: &HashMap<String, Payload>,
    fingerprint: &Fingerprint,
) -> HashMap<String, Payload> {
    let mut merged = held.clone();
    merged.insert(
        FINGERPRINT_ATTRIBUTE.to_owned(),
        json_payload(&fingerprint.0.clone().into()),
    );
    merged
}

/// The memo a create sends: the owner marker and the fingerprint.
pub fn marker_memo(project: &str, fingerprint: &Fingerprint) -> HashMap<String, Payload> {
    HashMap::from([
        (MEMO_PROJECT.to_owned(), json_payload(&project.into())),
        (
            MEMO_FINGERPRINT.to_owned(),
            json_payload(&fingerprint.0.clone().into()),
        ),
    ])
}

/// The memo an update sends: none when `current` carries `project`'s marker
/// already, else (an adoption) every field `current` holds with our marker
/// added. Servers differ here: Temporal 1.29 ignores a memo on update;
/// 1.32's CHASM scheduler replaces the whole memo with the one sent (so the
/// fields of others are sent back); 1.32 refuses an update that carries a
/// memo for a workflow-backed schedule (one made while the CHASM scheduler
/// was off), which is why a schedule that is ours already gets none.
pub fn update_memo(
    project: &str,
    desired: &DesiredSchedule,
    current: &Described,
) -> Option<HashMap<String, Payload>> {
    if current.observed.owner.as_deref() == Some(project) {
        return None;
    }
    let mut memo = current.memo.clone();
    memo.extend(marker_memo(project, &desired.fingerprint));
    Some(memo)
}

/// Keeps, in the schedule `sent` by an update, the count of actions left
/// that `current` holds: Temporal counts a limit down as the schedule
/// fires, an update replaces the whole state, and a limit is set at create
/// (or when a file first declares one), never reset. A limit the file drops
/// is lifted.
pub fn keep_remaining_actions(
    sent: &mut temporalio_common::protos::temporal::api::schedule::v1::Schedule,
    current: &Described,
) {
    let held = current.schedule.state.as_ref();
    let state = sent.state.get_or_insert_with(Default::default);
    if let Some(held) = held.filter(|h| h.limited_actions && state.limited_actions) {
        state.remaining_actions = held.remaining_actions;
    }
}

/// A schedule as `DescribeSchedule` returns it, with the token that an update
/// must send back.
#[derive(Clone, Debug)]
pub struct Described {
    /// What a listing would show.
    pub observed: Observed,
    /// The schedule as the server holds it.
    pub schedule: temporalio_common::protos::temporal::api::schedule::v1::Schedule,
    /// The conflict token of this version.
    pub conflict_token: Vec<u8>,
    /// The search attributes the schedule holds (Temporal's own system
    /// attributes left out, as DescribeSchedule leaves them out).
    pub search_attributes: HashMap<String, Payload>,
    /// The fields of the schedule's memo (ours among them, if it is ours).
    pub memo: HashMap<String, Payload>,
}

impl Described {
    /// The keys of the schedule's memo that are not schedule-sync's marker,
    /// sorted.
    pub fn foreign_memo(&self) -> Vec<String> {
        use crate::spec::{MEMO_FINGERPRINT, MEMO_PROJECT};
        let mut keys: Vec<String> = self
            .memo
            .keys()
            .filter(|key| ![MEMO_PROJECT, MEMO_FINGERPRINT].contains(&key.as_str()))
            .cloned()
            .collect();
        keys.sort();
        keys
    }
}

/// What happened to a create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The schedule is new.
    Created,
    /// The id was taken; the caller goes the update path.
    AlreadyExists,
}

/// The paused state an update writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseState {
    /// Paused or not.
    pub paused: bool,
    /// The notes that go with it.
    pub notes: String,
}

/// The schedule RPCs the reconciler needs.
pub trait ScheduleStore: Send + Sync {
    /// Every schedule whose id has the form of `project`'s. `complete` is false
    /// when a page failed after others succeeded.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when not even the first page could be read.
    fn list(&self, project: &str) -> impl Future<Output = Result<Observation, StoreError>> + Send;

    /// One schedule, or `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for any failure but "not found".
    fn describe(
        &self,
        schedule_id: &str,
    ) -> impl Future<Output = Result<Option<Described>, StoreError>> + Send;

    /// Creates a schedule carrying `project`'s marker and the fingerprint, in
    /// `pause` state, with the search attributes `keep` besides ours (those
    /// of a schedule that is re-created to adopt it). `request_id` is the idempotency key: the caller makes a
    /// fresh one for each create it means, and sends the same one only when
    /// it retries that create. Temporal remembers a create's request id even
    /// after the schedule is deleted, and answers OK without creating
    /// anything when it sees it again.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for any failure but "already exists".
    fn create(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        keep: &HashMap<String, Payload>,
        request_id: &str,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;

    /// Replaces the schedule `current` with `desired` in `pause` state,
    /// guarded by `current`'s conflict token. Keeps every search attribute of
    /// `current` that is not ours. To adopt a schedule (one without
    /// `project`'s marker) it sends the marker too, in the memo that
    /// [`update_memo`] makes: Temporal 1.32's CHASM scheduler stores it,
    /// 1.29 ignores it (only a create sets a memo there).
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; [`StoreError::is_conflict`] when the token is
    /// refused as stale (Temporal 1.32's CHASM scheduler; 1.29 answers OK and
    /// drops a stale update instead), or when a workflow-backed schedule on
    /// 1.32 refuses the memo of an adoption.
    fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        current: &Described,
        request_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Pauses or resumes a schedule with a note.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    fn set_paused(
        &self,
        schedule_id: &str,
        pause: &PauseState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a schedule; one that is already gone counts as deleted.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for any failure but "not found".
    fn delete(&self, schedule_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The custom search attributes the namespace has, with their types: one
    /// `ListSearchAttributes`, made before writing schedules whose started
    /// workflows carry search attributes, so that a missing one is a clear
    /// error and not a rejection halfway through an apply.
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    fn search_attribute_types(
        &self,
    ) -> impl Future<Output = Result<AttributeTypes, StoreError>> + Send;

    /// The pace of this store's calls (see [`Pace`]), for a store that
    /// paces them; `None` (the default) for one that does not.
    fn pace_status(&self) -> Option<PaceStatus> {
        None
    }

    /// Whether the schedule `schedule_id` carries `project`'s marker, as
    /// its scheduler workflow shows it without waiting for that workflow to
    /// run. On Temporal 1.29 a describe of a schedule is a query to that
    /// workflow, answered only after its first workflow task; this is the
    /// part of the describe that needs none. Only `true` tells anything:
    /// `false` when there is no such workflow running (as for a schedule of
    /// 1.32's CHASM scheduler), when the workflow's memo lacks the marker
    /// (1.32 runs one whose memo does), and for a store without scheduler
    /// workflows (the default).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for any failure but "not found".
    fn owned_without_waiting(
        &self,
        schedule_id: &str,
        project: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (schedule_id, project);
        std::future::ready(Ok(false))
    }
}

/// Search attribute names and their types.
pub type AttributeTypes = std::collections::BTreeMap<String, crate::project::action::AttributeType>;

/// A shared store is a store.
impl<S: ScheduleStore> ScheduleStore for std::sync::Arc<S> {
    fn list(&self, project: &str) -> impl Future<Output = Result<Observation, StoreError>> + Send {
        (**self).list(project)
    }

    fn describe(
        &self,
        schedule_id: &str,
    ) -> impl Future<Output = Result<Option<Described>, StoreError>> + Send {
        (**self).describe(schedule_id)
    }

    fn owned_without_waiting(
        &self,
        schedule_id: &str,
        project: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).owned_without_waiting(schedule_id, project)
    }

    fn create(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        keep: &HashMap<String, Payload>,
        request_id: &str,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send {
        (**self).create(project, desired, pause, keep, request_id)
    }

    fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        current: &Described,
        request_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update(project, desired, pause, current, request_id)
    }

    fn set_paused(
        &self,
        schedule_id: &str,
        pause: &PauseState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).set_paused(schedule_id, pause)
    }

    fn delete(&self, schedule_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(schedule_id)
    }

    fn search_attribute_types(
        &self,
    ) -> impl Future<Output = Result<AttributeTypes, StoreError>> + Send {
        (**self).search_attribute_types()
    }

    fn pace_status(&self) -> Option<PaceStatus> {
        (**self).pace_status()
    }
}

/// The message of a call that shutdown kept from being sent.
const NOT_STARTED: &str = "not started: shutting down";

/// A failed schedule RPC.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{rpc} failed ({code:?}): {message}")]
pub struct StoreError {
    /// The RPC.
    pub(crate) rpc: &'static str,
    /// The gRPC status code.
    pub(crate) code: tonic::Code,
    /// The server's message, with secrets removed.
    pub(crate) message: String,
}

impl StoreError {
    /// A failure of `rpc` with `code`, as a store of one's own (a test
    /// double) answers.
    pub fn new(rpc: &'static str, code: Code, message: impl Into<String>) -> StoreError {
        StoreError {
            rpc,
            code: code.to_grpc(),
            message: message.into(),
        }
    }

    /// The RPC, as Temporal names it (`CreateSchedule`, …).
    pub fn rpc(&self) -> &'static str {
        self.rpc
    }

    /// The status code it failed with.
    pub fn code(&self) -> Code {
        Code::from_grpc(self.code)
    }

    /// The server's message, with secrets removed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error of an RPC that was not sent because shutdown has begun.
    pub(crate) fn not_started(rpc: &'static str) -> StoreError {
        StoreError {
            rpc,
            code: tonic::Code::Cancelled,
            message: NOT_STARTED.into(),
        }
    }

    /// Whether trying again later may succeed. A call the server cancelled
    /// (an overloaded server gives up on some, answering Cancelled) may:
    /// only one that our own shutdown kept from being sent may not.
    pub fn is_retryable(&self) -> bool {
        let cancelled_by_server =
            self.code == tonic::Code::Cancelled && self.message != NOT_STARTED;
        (is_retryable(self.code) || cancelled_by_server) && !self.is_too_large()
    }

    /// Whether the server refused the call for load: a rate or concurrency
    /// limit of the namespace, answered with ResourceExhausted. Throttling is
    /// a server that answers: the call is paced and sent again, and it never
    /// counts as Temporal being away.
    pub fn is_throttled(&self) -> bool {
        self.code == tonic::Code::ResourceExhausted && !self.is_too_large()
    }

    /// Whether the message was too large for gRPC (also ResourceExhausted,
    /// but no limit of the server's load: sending it again cannot help).
    fn is_too_large(&self) -> bool {
        self.code == tonic::Code::ResourceExhausted && self.message.contains("larger than max")
    }

    /// Whether the error is a lost race on the conflict token.
    pub fn is_conflict(&self) -> bool {
        self.code == tonic::Code::FailedPrecondition
    }

    /// Whether the error says Temporal cannot be reached at all (the
    /// connection is refused or broken, or an RPC got no answer in time), as
    /// opposed to a server that answers but is busy.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.code,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
        )
    }
}

/// The one place that sorts gRPC codes into "back off and retry" and "will
/// not heal by retrying".
pub fn is_retryable(code: tonic::Code) -> bool {
    use tonic::Code;
    match code {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Internal
        | Code::Unknown => true,
        // Our own shutdown cancels; nothing to retry then (a cancel by
        // the server is, see `StoreError::is_retryable`).
        Code::Cancelled
        | Code::Ok
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Unauthenticated => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: tonic::Code, message: &str) -> StoreError {
        StoreError {
            rpc: "CreateSchedule",
            code,
            message: message.into(),
        }
    }

    #[test]
    fn a_rate_limit_is_throttling_and_no_outage() {
        let limited = error(
            tonic::Code::ResourceExhausted,
            "namespace rate limit exceeded",
        );
        assert!(limited.is_throttled());
        assert!(limited.is_retryable());
        assert!(!limited.is_unreachable());
        let away = error(tonic::Code::Unavailable, "connection refused");
        assert!(!away.is_throttled());
        assert!(away.is_unreachable());
    }

    #[test]
    fn a_message_too_large_is_neither_throttling_nor_retryable() {
        let large = error(
            tonic::Code::ResourceExhausted,
            "grpc: received message larger than max (5000000 vs. 4194304)",
        );
        assert!(!large.is_throttled());
        assert!(!large.is_retryable());
    }

    #[test]
    fn transient_codes_retry_and_permanent_ones_do_not() {
        assert!(is_retryable(tonic::Code::Unavailable));
        assert!(is_retryable(tonic::Code::ResourceExhausted));
        assert!(is_retryable(tonic::Code::DeadlineExceeded));
        assert!(!is_retryable(tonic::Code::PermissionDenied));
        assert!(!is_retryable(tonic::Code::NotFound));
        assert!(!is_retryable(tonic::Code::InvalidArgument));
        let cancelled =
            StoreError::new("CreateSchedule", Code::Cancelled, "operation was canceled");
        assert!(cancelled.is_retryable(), "cancelled by the server");
        assert!(!cancelled.is_unreachable(), "the server answered");
        assert!(!StoreError::not_started("CreateSchedule").is_retryable());
    }
}
