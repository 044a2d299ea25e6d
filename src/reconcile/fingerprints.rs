//! The describe fallback: without the fingerprint search attribute a listing
//! shows no fingerprints, so each of our schedules is described and compared.

use futures_util::StreamExt;
use futures_util::stream;

use super::{Apply, READS_IN_FLIGHT};
use crate::compare::same_schedule;
use crate::store::{Observation, ScheduleStore};

impl<S: ScheduleStore> Apply<'_, S> {
    /// Without the fingerprint search attribute a listing shows no
    /// fingerprints. Then each of our desired schedules is described once and
    /// compared field by field with the desired one (the server stores what
    /// we send, so equality is exact); a match counts as the desired
    /// fingerprint, so an unchanged project still writes nothing. A failed
    /// describe leaves the fingerprint unknown, which plans an update.
    pub(super) async fn fill_fingerprints(&self, observation: &mut Observation) {
        let blind: Vec<(usize, String)> = observation
            .schedules
            .iter()
            .enumerate()
            .filter(|(_, o)| o.fingerprint.is_none() && o.owner.as_deref() == Some(self.project))
            .filter(|(_, o)| self.wanted.contains_key(o.schedule_id.as_str()))
            .map(|(i, o)| (i, o.schedule_id.clone()))
            .collect();
        if blind.is_empty() {
            return;
        }
        tracing::info!(
            schedules = blind.len(),
            "the listing shows no fingerprints; describing each schedule to compare \
             (register the ScheduleSyncFingerprint keyword search attribute to avoid this)"
        );
        let found: Vec<(usize, bool)> = stream::iter(blind)
            .map(|(index, id)| async move {
                let want = self.want(&id);
                let described = self.describe(&id).await.ok().flatten();
                let same = described.is_some_and(|d| same_schedule(&d.schedule, &want.schedule));
                (index, same)
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;
        for (index, same) in found {
            let observed = &mut observation.schedules[index];
            if same {
                observed.fingerprint = self
                    .wanted
                    .get(observed.schedule_id.as_str())
                    .map(|w| w.fingerprint());
            }
        }
    }
}
