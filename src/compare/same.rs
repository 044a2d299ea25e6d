//! Whether the server already holds what the project wants: a held schedule
//! and a desired one compared field by field, in their normal forms.

use temporalio_common::protos::temporal::api::schedule::v1::Schedule;

use super::changes::normalized;
use crate::spec::DesiredSchedule;
use crate::store::{Described, PauseState};

/// Whether `current` already holds `want` in `pause` state, fingerprint
/// included where the namespace shows one: then an update would write the
/// same thing again.
pub(crate) fn holds(current: &Described, want: &DesiredSchedule, pause: &PauseState) -> bool {
    let state = current.schedule.state.clone().unwrap_or_default();
    let fingerprint_ok = current
        .observed
        .fingerprint
        .as_ref()
        .is_none_or(|f| *f == want.fingerprint);
    fingerprint_ok
        && state.paused == pause.paused
        && (!pause.paused || state.notes == pause.notes)
        && same_schedule(&current.schedule, &want.schedule)
}

/// Whether the schedule the server holds has every managed field of `want`
/// (the paused state is the plan's business, not the fingerprint's), each
/// compared in its [`normalized`] form.
pub(crate) fn same_schedule(held: &Schedule, want: &Schedule) -> bool {
    let (held, want) = (&normalized(held), &normalized(want));
    use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
    let start = |s: &Schedule| match s.action.as_ref().and_then(|a| a.action.as_ref()) {
        Some(Action::StartWorkflow(start)) => Some((
            start.workflow_id.clone(),
            start.workflow_type.as_ref().map(|t| t.name.clone()),
            start.task_queue.as_ref().map(|q| q.name.clone()),
            start.input.as_ref().map(|i| {
                i.payloads
                    .iter()
                    .map(|p| p.data.clone())
                    .collect::<Vec<_>>()
            }),
        )),
        _ => None,
    };
    let policies = |s: &Schedule| {
        let p = s.policies.unwrap_or_default();
        (
            p.overlap_policy.max(1),
            p.catchup_window,
            p.pause_on_failure,
        )
    };
    held.spec == want.spec
        && start(held) == start(want)
        && super::action::options(held) == super::action::options(want)
        && policies(held) == policies(want)
        && limited(held) == limited(want)
}

/// Whether actions are limited; how many are left is the server's count,
/// never compared.
fn limited(schedule: &Schedule) -> bool {
    schedule.state.as_ref().is_some_and(|s| s.limited_actions)
}
