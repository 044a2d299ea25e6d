//! Observing schedules with ids of their own (`schedule.id`): a listing by
//! the project's id prefix does not show them, so each one the project
//! declares or the writer fence records is described, once per reconcile.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use futures_util::stream;

use super::{Apply, READS_IN_FLIGHT};
use crate::compare::same_schedule;
use crate::fence::{fence_id, recorded};
use crate::spec::owns_id;
use crate::store::{Observation, ScheduleStore, StoreError};

impl<S: ScheduleStore> Apply<'_, S> {
    /// Adds to `observation` each schedule with an id of its own that the
    /// project declares or its fence records. Without the fingerprint
    /// attribute, one that holds the desired schedule counts as having the
    /// desired fingerprint, as in [`Apply::fill_fingerprints`].
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when one cannot be described: planning without it
    /// would take it for missing.
    pub(super) async fn observe_own_ids(
        &self,
        observation: &mut Observation,
    ) -> Result<(), StoreError> {
        let fence = fence_id(self.project);
        let listed: BTreeSet<&str> = observation
            .schedules
            .iter()
            .map(|o| o.schedule_id.as_str())
            .collect();
        let recorded = observation
            .schedules
            .iter()
            .find(|o| o.schedule_id == fence)
            .map(|o| recorded(&o.notes))
            .unwrap_or_default();
        let ids: BTreeSet<String> = self
            .ordered
            .iter()
            .map(|d| d.schedule_id.to_string())
            .chain(recorded)
            .filter(|id| !owns_id(self.project, id) && !listed.contains(id.as_str()))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let found: Vec<Result<_, StoreError>> = stream::iter(ids)
            .map(|id| async move { self.retrying(|| self.store.describe(&id)).await })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;
        for described in found {
            let Some(described) = described? else {
                continue;
            };
            let mut observed = described.observed;
            if observed.fingerprint.is_none()
                && observed.owner.as_deref() == Some(self.project)
                && let Some(want) = self.wanted.get(observed.schedule_id.as_str())
                && same_schedule(&described.schedule, &want.desired().schedule)
            {
                observed.fingerprint = Some(want.fingerprint());
            }
            observation.schedules.push(observed);
        }
        Ok(())
    }
}
