//! Why a step failed: an RPC error from Temporal, or something the step
//! found out itself (no made-up gRPC codes).

use std::time::Duration;

use crate::store::StoreError;

/// Why a step failed.
#[derive(Clone, Debug, thiserror::Error)]
pub(super) enum Failure {
    /// Temporal answered an RPC with an error (after the retries).
    #[error(transparent)]
    Store(StoreError),
    /// Temporal kept throttling an RPC (its namespace's rate limit), even
    /// at a slower pace each time.
    #[error(
        "Temporal throttled {} {} times in a row (the namespace's rate limit); \
         the next reconcile goes on at a slower pace: {}",
        last.rpc,
        super::THROTTLED_ATTEMPTS,
        last.message
    )]
    Throttled {
        /// The last throttled answer.
        last: StoreError,
    },
    /// Temporal became unreachable during the reconcile.
    #[error(
        "Temporal became unreachable during the reconcile ({threshold} RPCs in a row failed, \
         the last with: {})",
        last.message,
        threshold = super::OUTAGE_THRESHOLD
    )]
    Unreachable {
        /// The error that showed Temporal away.
        last: StoreError,
    },
    /// Temporal answered OK to each create, but holds no such schedule.
    #[error("Temporal answered OK to creating {0} twice, but holds no such schedule")]
    CreateNotHeld(String),
    /// The schedule was deleted to adopt it, and could not be created again.
    #[error(
        "{schedule_id} was deleted to adopt it and could not be created again yet ({reason}); \
         the next reconcile creates it"
    )]
    AdoptionInterrupted {
        /// The schedule.
        schedule_id: String,
        /// What went wrong with the re-creation.
        reason: String,
        /// Whether that may heal by retrying.
        retryable: bool,
    },
    /// An update was answered OK but never showed in the schedule.
    #[error("the update of {schedule_id} did not show within {waited:?}")]
    UpdateNotShown {
        /// The schedule.
        schedule_id: String,
        /// How long the read-back waited.
        waited: Duration,
    },
    /// The schedule kept appearing and vanishing while it was written.
    #[error("{0} kept appearing and vanishing while it was written; another writer is at work")]
    Churning(String),
    /// Another writer kept changing the schedule between our read and
    /// write, [`RACE_ATTEMPTS`](super::RACE_ATTEMPTS) times in a row.
    #[error("another writer changed {schedule_id} at the same time{}", last.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    LostRace {
        /// The schedule.
        schedule_id: String,
        /// The refusal of the last try, when the server refused it (a
        /// stale conflict token); none when it answered OK and the update
        /// never showed because another one landed first.
        last: Option<StoreError>,
    },
}

/// The one place an RPC's error becomes a step's: throttling is told apart.
impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        if error.is_throttled() {
            Failure::Throttled { last: error }
        } else {
            Failure::Store(error)
        }
    }
}

impl Failure {
    /// Whether the next attempt may succeed where this one failed.
    pub(super) fn is_retryable(&self) -> bool {
        match self {
            Failure::Store(error) => error.is_retryable(),
            Failure::AdoptionInterrupted { retryable, .. } => *retryable,
            Failure::Unreachable { .. }
            | Failure::Throttled { .. }
            | Failure::CreateNotHeld(_)
            | Failure::UpdateNotShown { .. }
            | Failure::Churning(_) => true,
            // Another writer is at work: not retried at once, which would
            // fail the whole attempt, but followed up (below).
            Failure::LostRace { .. } => false,
        }
    }

    /// Whether the failure heals by itself soon, so that the runtime
    /// reconciles again shortly even without a periodic resync: a lost
    /// race (the other writer is done in a moment).
    pub(super) fn heals_soon(&self) -> bool {
        matches!(self, Failure::LostRace { .. })
    }
}
