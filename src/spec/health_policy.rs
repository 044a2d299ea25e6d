//! What the health of a schedule depends on besides its listing: its
//! jitter, catch-up window and overlap policy, from the declared schedule or
//! the Temporal one. `health` classifies with it.

use std::time::Duration;

use crate::project::{OverlapPolicy, Schedule};

/// What the health of a schedule depends on besides its listing, kept
/// small: the reconciler holds one per schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The most jitter, in seconds.
    pub jitter_seconds: u32,
    /// The catch-up window in seconds; `None` for Temporal's default.
    pub catchup_seconds: Option<u32>,
    /// Whether a firing behind a running workflow is skipped (`skip`,
    /// `buffer_one`).
    pub skips: bool,
}

impl Policy {
    /// The policy of a declared schedule.
    pub fn of(declared: &Schedule) -> Policy {
        let seconds = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        Policy {
            jitter_seconds: seconds(declared.jitter),
            catchup_seconds: declared.catchup_window.map(seconds),
            skips: matches!(
                declared.overlap_policy,
                OverlapPolicy::Skip | OverlapPolicy::BufferOne
            ),
        }
    }

    /// The policy of a Temporal schedule.
    pub fn of_temporal(
        schedule: &temporalio_common::protos::temporal::api::schedule::v1::Schedule,
    ) -> Policy {
        use temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy;
        let seconds = |d: Option<&prost_wkt_types::Duration>| {
            d.map(|d| u32::try_from(d.seconds).unwrap_or(0))
        };
        let policies = schedule.policies.unwrap_or_default();
        Policy {
            jitter_seconds: seconds(schedule.spec.as_ref().and_then(|s| s.jitter.as_ref()))
                .unwrap_or(0),
            catchup_seconds: seconds(policies.catchup_window.as_ref()),
            skips: matches!(
                ScheduleOverlapPolicy::try_from(policies.overlap_policy),
                Ok(ScheduleOverlapPolicy::Skip
                    | ScheduleOverlapPolicy::BufferOne
                    | ScheduleOverlapPolicy::Unspecified)
            ),
        }
    }
}
