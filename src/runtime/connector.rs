//! How an attempt reaches a [`ScheduleStore`]: a [`Connector`] makes one
//! (connecting counts as part of the attempt), and [`AttemptError`] sorts
//! what went wrong into retryable and fatal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::connection::{ConnectionError, Settings};
use crate::runtime::lifecycle::ErrorKind;
use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::store::{
    Created, Described, Pace, PauseState, ScheduleStore, StoreError, TemporalStore,
};

/// Makes the store that an attempt talks to: a [`TemporalConnector`], or
/// an `Arc<MemoryStore>` in tests. Its items are hidden: hosts pass one of
/// those two to [`Reconciler::new`](crate::Reconciler::new), and do not
/// implement it (its items may change in any release).
pub trait Connector: Send + Sync + 'static {
    /// The store it makes.
    #[doc(hidden)]
    type Store: ScheduleStore + 'static;

    /// Connects. The run loop bounds the call by the attempt timeout.
    ///
    /// # Errors
    ///
    /// An [`AttemptError`] saying whether trying again may help.
    #[doc(hidden)]
    fn connect(&self) -> impl Future<Output = Result<Self::Store, AttemptError>> + Send;

    /// Paces the RPCs of every store it makes from now on with `pace`: the
    /// reconciler's one rate limiter, which outlives reconnects. The
    /// reconciler calls it once, before the first connect. The default
    /// ignores it: a store that is no server has no limit to keep.
    #[doc(hidden)]
    fn pace_with(&mut self, pace: Pace) {
        let _ = pace;
    }
}

/// Why an attempt failed, and whether retrying may heal it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AttemptError {
    /// Retryable or fatal.
    pub kind: ErrorKind,
    /// What happened, with secrets removed.
    pub message: String,
}

impl AttemptError {
    /// An error that may heal.
    pub fn retryable(message: impl Into<String>) -> Self {
        AttemptError {
            kind: ErrorKind::Retryable,
            message: message.into(),
        }
    }

    /// An error that will not heal by retrying.
    pub fn fatal(message: impl Into<String>) -> Self {
        AttemptError {
            kind: ErrorKind::Fatal,
            message: message.into(),
        }
    }
}

impl From<StoreError> for AttemptError {
    /// Sorted by [`crate::store::is_retryable`]: PermissionDenied, an unknown
    /// namespace (NotFound) or Unauthenticated are fatal.
    fn from(error: StoreError) -> Self {
        AttemptError {
            kind: if error.is_retryable() {
                ErrorKind::Retryable
            } else {
                ErrorKind::Fatal
            },
            message: error.to_string(),
        }
    }
}

impl From<ConnectionError> for AttemptError {
    /// Settings that cannot work are fatal; a server that is away or silent
    /// is retryable.
    fn from(error: ConnectionError) -> Self {
        match error {
            ConnectionError::Config(_) => AttemptError::fatal(error.to_string()),
            _ => AttemptError::retryable(error.to_string()),
        }
    }
}

/// Connects to Temporal with [`Settings`].
#[derive(Clone, Debug)]
pub struct TemporalConnector {
    /// The settings, or why they could not be read (then every attempt
    /// fails with that error, which is fatal).
    settings: Result<Settings, ConnectionError>,
    connect_timeout: Duration,
    /// Shared by every store it makes.
    pace: Pace,
}

impl TemporalConnector {
    /// A connector for `settings`, giving up on one connect after
    /// `connect_timeout`.
    pub fn new(settings: Settings, connect_timeout: Duration) -> Self {
        TemporalConnector {
            settings: Ok(settings),
            connect_timeout,
            pace: Pace::default(),
        }
    }

    /// A connector for the outcome of [`Settings::load`]: settings that could
    /// not be read make every attempt fail with their (fatal) error, so that
    /// a host still starts and reports it instead of refusing to start.
    pub fn from_loaded(
        settings: Result<Settings, ConnectionError>,
        connect_timeout: Duration,
    ) -> Self {
        TemporalConnector {
            settings,
            connect_timeout,
            pace: Pace::default(),
        }
    }

    /// The connector, pacing the stores it makes with `pace` (for a caller
    /// without a reconciler, such as the `apply` command).
    #[must_use]
    #[doc(hidden)]
    pub fn with_pace(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }
}

impl Connector for TemporalConnector {
    type Store = TemporalStore;

    async fn connect(&self) -> Result<TemporalStore, AttemptError> {
        let settings = self
            .settings
            .as_ref()
            .map_err(|e| AttemptError::from(e.clone()))?;
        let client = settings.connect(self.connect_timeout).await?;
        let namespace = settings.namespace.clone();
        let store = TemporalStore::new(client, namespace, false).with_pace(self.pace.clone());
        let probe = tokio::time::timeout(self.connect_timeout, store.probe_fingerprint_attribute())
            .await
            .map_err(|_| AttemptError::retryable("listing the search attributes timed out"))?;
        let attribute = fingerprint_attribute(probe)?;
        Ok(store.using_fingerprint_attribute(attribute))
    }

    fn pace_with(&mut self, pace: Pace) {
        self.pace = pace;
    }
}

/// Whether to use the fingerprint attribute, from the probe of the
/// namespace's search attributes.
fn fingerprint_attribute(probe: Result<bool, StoreError>) -> Result<bool, AttemptError> {
    Ok(match probe {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(
                "the namespace has no `{0}` search attribute, so each schedule is described \
                 to compare; register it with: temporal operator search-attribute create \
                 --name {0} --type Keyword",
                crate::store::FINGERPRINT_ATTRIBUTE
            );
            false
        }
        // A least-privilege key may not list search attributes; the
        // schedules themselves are still ours to read and write.
        Err(error) if error.code == tonic::Code::PermissionDenied => {
            tracing::warn!(
                %error,
                "may not list the namespace's search attributes, so each schedule is \
                 described to compare"
            );
            false
        }
        Err(error) => return Err(error.into()),
    })
}

/// A store that refuses to start an RPC once shutdown has begun; RPCs
/// already in flight go on.
pub(crate) struct Guarded<'a, S> {
    pub(crate) inner: &'a S,
    pub(crate) shutdown: &'a CancellationToken,
}

impl<S> Guarded<'_, S> {
    fn open(&self, rpc: &'static str) -> Result<(), StoreError> {
        if self.shutdown.is_cancelled() {
            Err(StoreError::not_started(rpc))
        } else {
            Ok(())
        }
    }
}

impl<S: ScheduleStore> ScheduleStore for Guarded<'_, S> {
    async fn list(&self, project: &str) -> Result<crate::store::Observation, StoreError> {
        self.open("ListSchedules")?;
        self.inner.list(project).await
    }

    async fn describe(&self, schedule_id: &str) -> Result<Option<Described>, StoreError> {
        self.open("DescribeSchedule")?;
        self.inner.describe(schedule_id).await
    }

    async fn owned_without_waiting(
        &self,
        schedule_id: &str,
        project: &str,
    ) -> Result<bool, StoreError> {
        self.open("DescribeWorkflowExecution")?;
        self.inner.owned_without_waiting(schedule_id, project).await
    }

    async fn create(
        &self,
        project: &str,
        desired: &crate::spec::DesiredSchedule,
        pause: &PauseState,
        keep: &std::collections::HashMap<String, Payload>,
        request_id: &str,
    ) -> Result<Created, StoreError> {
        self.open("CreateSchedule")?;
        self.inner
            .create(project, desired, pause, keep, request_id)
            .await
    }

    async fn update(
        &self,
        project: &str,
        desired: &crate::spec::DesiredSchedule,
        pause: &PauseState,
        current: &Described,
        request_id: &str,
    ) -> Result<(), StoreError> {
        self.open("UpdateSchedule")?;
        self.inner
            .update(project, desired, pause, current, request_id)
            .await
    }

    async fn set_paused(&self, schedule_id: &str, pause: &PauseState) -> Result<(), StoreError> {
        self.open("PatchSchedule")?;
        self.inner.set_paused(schedule_id, pause).await
    }

    async fn delete(&self, schedule_id: &str) -> Result<(), StoreError> {
        self.open("DeleteSchedule")?;
        self.inner.delete(schedule_id).await
    }

    async fn search_attribute_types(&self) -> Result<crate::store::AttributeTypes, StoreError> {
        self.open("ListSearchAttributes")?;
        self.inner.search_attribute_types().await
    }

    fn pace_status(&self) -> Option<crate::store::PaceStatus> {
        self.inner.pace_status()
    }
}

/// Hands out one shared store: for embedders' tests with a
/// [`crate::store::MemoryStore`], and for fault injection.
impl<S: ScheduleStore + 'static> Connector for Arc<S> {
    type Store = Arc<S>;

    async fn connect(&self) -> Result<Arc<S>, AttemptError> {
        Ok(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: tonic::Code) -> Result<bool, StoreError> {
        Err(StoreError {
            rpc: "ListSearchAttributes",
            code,
            message: "refused".into(),
        })
    }

    #[test]
    fn a_key_that_may_not_list_search_attributes_falls_back_to_describing() {
        assert_eq!(
            fingerprint_attribute(refused(tonic::Code::PermissionDenied)),
            Ok(false)
        );
        assert_eq!(fingerprint_attribute(Ok(true)), Ok(true));
        assert_eq!(fingerprint_attribute(Ok(false)), Ok(false));
        let unauthenticated = fingerprint_attribute(refused(tonic::Code::Unauthenticated));
        assert_eq!(unauthenticated.map_err(|e| e.kind), Err(ErrorKind::Fatal));
        let away = fingerprint_attribute(refused(tonic::Code::Unavailable));
        assert_eq!(away.map_err(|e| e.kind), Err(ErrorKind::Retryable));
    }
}
