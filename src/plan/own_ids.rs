//! Schedules with ids of their own (`schedule.id`, such as
//! `daily-billing-report`): ours by the marker like any other, but outside
//! the project's id prefix, so the plan takes them from the desired
//! schedules and from the writer fence's record.

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::{CompactSchedule, owns_id};
use crate::store::Observed;

/// The ids outside `project`'s prefix that the plan looks at: those the
/// project declares and those the fence records.
pub(super) fn own_ids<'a>(
    project: &str,
    desired: &'a [CompactSchedule],
    recorded: &'a BTreeSet<String>,
) -> BTreeSet<&'a str> {
    desired
        .iter()
        .map(|d| &*d.schedule_id)
        .filter(|id| !owns_id(project, id))
        .chain(recorded.iter().map(String::as_str))
        .collect()
}

/// What the fence must record: the own ids the project declares, and the
/// recorded ones that still carry the project's marker (a deletion drops
/// one from the record at the next claim after it is gone).
pub(super) fn record(
    project: &str,
    desired: &[CompactSchedule],
    recorded: &BTreeSet<String>,
    observed: &BTreeMap<&str, &Observed>,
) -> BTreeSet<String> {
    let declared = desired
        .iter()
        .map(|d| &*d.schedule_id)
        .filter(|id| !owns_id(project, id));
    let still_ours = recorded.iter().map(String::as_str).filter(|id| {
        observed
            .get(id)
            .is_some_and(|o| o.owner.as_deref() == Some(project))
    });
    declared.chain(still_ours).map(str::to_owned).collect()
}
