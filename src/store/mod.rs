//! Where schedules live: one trait over Temporal's schedule RPCs, so that the
//! reconciler can run against the real server ([`TemporalStore`]) or an
//! in-memory one ([`MemoryStore`]) in tests and for fault injection.

mod memory;
mod temporal;

use std::future::Future;

pub use memory::MemoryStore;
pub use temporal::{RpcCounts, TemporalStore};

use crate::desired::DesiredSchedule;
use crate::plan::{Observation, Observed};

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

    /// Creates a schedule carrying `project`'s marker and the fingerprint.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for any failure but "already exists".
    fn create(
        &self,
        project: &str,
        desired: &DesiredSchedule,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;

    /// Replaces a schedule with `desired` in `pause` state, guarded by the
    /// conflict token of the version it was computed from; sets the marker.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; [`StoreError::is_conflict`] when the token is stale.
    fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        conflict_token: &[u8],
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
}

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

    fn create(
        &self,
        project: &str,
        desired: &DesiredSchedule,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send {
        (**self).create(project, desired)
    }

    fn update(
        &self,
        project: &str,
        desired: &DesiredSchedule,
        pause: &PauseState,
        conflict_token: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update(project, desired, pause, conflict_token)
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
}

/// A failed schedule RPC.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{rpc} failed ({code:?}): {message}")]
pub struct StoreError {
    /// The RPC.
    pub rpc: &'static str,
    /// The gRPC status code.
    pub code: tonic::Code,
    /// The server's message, with secrets removed.
    pub message: String,
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        is_retryable(self.code)
    }

    /// Whether the error is a lost race on the conflict token.
    pub fn is_conflict(&self) -> bool {
        self.code == tonic::Code::FailedPrecondition
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
        // Our own shutdown cancels; nothing to retry then.
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

    #[test]
    fn transient_codes_retry_and_permanent_ones_do_not() {
        assert!(is_retryable(tonic::Code::Unavailable));
        assert!(is_retryable(tonic::Code::ResourceExhausted));
        assert!(is_retryable(tonic::Code::DeadlineExceeded));
        assert!(!is_retryable(tonic::Code::PermissionDenied));
        assert!(!is_retryable(tonic::Code::NotFound));
        assert!(!is_retryable(tonic::Code::InvalidArgument));
    }
}
