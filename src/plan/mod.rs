//! The plan: what a reconcile must do to bring Temporal to the desired state.
//! A pure function of the desired schedules and what a listing observed; it
//! never talks to Temporal.
//!
//! Rules, in the order they apply to one schedule id:
//!
//! 1. desired, not observed: **create**, unless its `end_at` has passed
//!    (the server deletes a schedule some time after its end; it is not
//!    created again): **ended**;
//! 2. observed without our marker (or another project's): **conflict**,
//!    reported and never touched, unless adoption was asked for (then
//!    **update**);
//! 3. owned, fingerprint differs: **update**. An operator pause is carried
//!    over into the update;
//! 4. owned, fingerprint equal, but the listing shows a spec other than the
//!    desired one: someone edited it out of band (in the UI or CLI), which
//!    leaves our fingerprint in place: **update**, reported as such;
//! 5. owned, fingerprint equal: **unchanged**, except that a paused state that
//!    disagrees with `enabled` is corrected (**pause** when the project
//!    disables it and someone resumed it, **unpause** when only our own
//!    pause is left over), and an operator pause of an enabled schedule is
//!    kept and reported as **paused by operator**;
//! 6. owned, not desired: **delete**, unless the deletions are held: the
//!    listing was incomplete, or the deletions would remove more than half of
//!    our schedules (or all of them) without `allow_mass_delete`.
//!
//! Then the writer fence (see [`crate::fence`]): when the project's fence
//! names a newer writer than ours, every step is left undone and reported
//! **superseded** (a deletion is held, with that reason); otherwise a plan
//! with steps records us in the fence first, unless it names us already
//! and records every schedule with an id of its own that the plan needs.
//!
//! Schedules with ids of their own (`schedule.id`, outside the project's id
//! prefix) take part like the others: those the project declares and those
//! the fence records (so that one whose file is gone is still deleted).

pub mod markdown;
mod own_ids;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::fence::{self, Writer, WriterKey, fence_id};
use crate::spec::{CompactSchedule, owns_id};
use crate::store::{Observation, Observed};

/// Options of a plan.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Take over schedules that sit on our ids without our marker.
    pub adopt: bool,
    /// Allow a reconcile to delete more than half (or all) of our schedules.
    pub allow_mass_delete: bool,
    /// Our rank among the project's writers.
    pub writer: WriterKey,
    /// Write even when a newer writer holds the fence.
    pub force: bool,
    /// The time of the plan, in seconds since the epoch, to tell a
    /// schedule whose `end_at` has passed; `None` creates every missing
    /// schedule.
    pub now_seconds: Option<i64>,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// Create the schedule.
    Create {
        /// The schedule id.
        schedule_id: String,
    },
    /// Rewrite the schedule with the desired one.
    Update {
        /// The schedule id.
        schedule_id: String,
        /// Keep it paused: an operator paused it.
        keep_operator_pause: bool,
        /// Take it over from no owner.
        adopt: bool,
        /// Why: the project changed it, or someone edited it out of band.
        reason: UpdateReason,
    },
    /// Pause it: the project disables it, and something resumed it.
    Pause {
        /// The schedule id.
        schedule_id: String,
    },
    /// Resume it: the project enables it, and only our own pause is left.
    Unpause {
        /// The schedule id.
        schedule_id: String,
    },
    /// Delete it: the project no longer declares it.
    Delete {
        /// The schedule id.
        schedule_id: String,
    },
}

impl Step {
    /// The schedule the step writes.
    pub fn schedule_id(&self) -> &str {
        match self {
            Step::Create { schedule_id }
            | Step::Update { schedule_id, .. }
            | Step::Pause { schedule_id }
            | Step::Unpause { schedule_id }
            | Step::Delete { schedule_id } => schedule_id,
        }
    }

    /// The operation, as the `operation` label of metrics names it.
    pub fn operation(&self) -> &'static str {
        match self {
            Step::Create { .. } => "create",
            Step::Update { .. } => "update",
            Step::Pause { .. } => "pause",
            Step::Unpause { .. } => "unpause",
            Step::Delete { .. } => "delete",
        }
    }
}

/// Why a schedule is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateReason {
    /// The project's definition differs from the one last written.
    Changed,
    /// The definition is the one last written, but someone edited the
    /// schedule in the Temporal UI or CLI since; the edit is corrected.
    EditedOutOfBand,
    /// It has no marker and `adopt` takes it over.
    Adopted,
}

/// Why a schedule is left alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Untouched {
    /// It matches the project.
    Unchanged {
        /// The schedule id.
        schedule_id: String,
    },
    /// An operator paused it; the pause is respected.
    PausedByOperator {
        /// The schedule id.
        schedule_id: String,
    },
    /// It sits on one of our ids without our marker.
    Conflict {
        /// The schedule id.
        schedule_id: String,
        /// The project its marker names, if any.
        owner: Option<String>,
    },
    /// A newer writer holds the project's fence: the step it needed was left
    /// undone.
    Superseded {
        /// The schedule id.
        schedule_id: String,
        /// The operation left undone.
        operation: &'static str,
    },
    /// It is not on the server and its `end_at` has passed: it would never
    /// fire, so it is not created again.
    Ended {
        /// The schedule id.
        schedule_id: String,
    },
    /// Its deletion is held.
    HeldDeletion {
        /// The schedule id.
        schedule_id: String,
        /// Why.
        why: HoldReason,
    },
}

/// Why deletions are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HoldReason {
    /// The listing was incomplete.
    IncompleteListing,
    /// The deletions would remove more than half, or all, of our schedules.
    MassDelete,
    /// A newer writer holds the project's fence.
    Superseded,
}

/// What the plan does about the project's writer fence.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FenceStep {
    /// Nothing to claim: no step needs it, or the listing shows a writer of
    /// our rank there (the fence is still read afresh before the first
    /// write: the listing lags).
    #[default]
    None,
    /// Record us in the fence before the first step (over `current`, an
    /// older writer, or none).
    Claim {
        /// The writer the fence names now, if there is a fence.
        current: Option<Writer>,
    },
    /// A newer writer holds the fence: no step is taken.
    Superseded {
        /// That writer.
        by: Writer,
    },
    /// A newer writer holds the fence, and the plan goes ahead anyway
    /// (forced), leaving the fence as it is.
    Forced {
        /// That writer.
        over: Writer,
    },
}

/// The steps to take and what is left alone, each sorted by schedule id.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Writes to make.
    pub steps: Vec<Step>,
    /// Schedules left alone, and why.
    pub untouched: Vec<Untouched>,
    /// The writer fence.
    pub fence: FenceStep,
    /// The schedules with ids of their own that the fence records for the
    /// project once it is claimed (see [`crate::fence::recorded`]).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub record: BTreeSet<String>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The newer writer that holds the fence, when this plan gave way to it.
    pub fn superseded_by(&self) -> Option<&Writer> {
        match &self.fence {
            FenceStep::Superseded { by } => Some(by),
            _ => None,
        }
    }

    /// Leaves every step undone because `by`, a newer writer, holds the
    /// fence: each becomes [`Untouched::Superseded`] (a deletion, a held
    /// deletion).
    pub fn give_way(&mut self, by: Writer) {
        for step in std::mem::take(&mut self.steps) {
            self.untouched.push(superseded(step));
        }
        self.untouched
            .sort_by(|a, b| untouched_id(a).cmp(untouched_id(b)));
        self.fence = FenceStep::Superseded { by };
    }
}

fn superseded(step: Step) -> Untouched {
    let operation = step.operation();
    match step {
        Step::Delete { schedule_id } => Untouched::HeldDeletion {
            schedule_id,
            why: HoldReason::Superseded,
        },
        other => Untouched::Superseded {
            schedule_id: other.schedule_id().to_owned(),
            operation,
        },
    }
}

/// Computes the plan of `project` from the desired schedules and an observation.
pub fn plan(
    project: &str,
    desired: &[CompactSchedule],
    observation: &Observation,
    options: PlanOptions,
) -> Plan {
    let fence_id = fence_id(project);
    let fence_notes = observation
        .schedules
        .iter()
        .find(|o| o.schedule_id == fence_id)
        .map(|o| o.notes.as_str());
    let fence = fence_notes.map(fence::parse);
    let recorded = fence_notes.map(fence::recorded).unwrap_or_default();
    let own = own_ids::own_ids(project, desired, &recorded);
    let observed: BTreeMap<&str, &Observed> = observation
        .schedules
        .iter()
        .filter(|o| {
            (owns_id(project, &o.schedule_id) && o.schedule_id != fence_id)
                || own.contains(o.schedule_id.as_str())
        })
        .map(|o| (o.schedule_id.as_str(), o))
        .collect();
    let mut plan = Plan {
        record: own_ids::record(project, desired, &recorded, &observed),
        ..Plan::default()
    };
    for want in desired {
        let id = want.schedule_id.to_string();
        let Some(seen) = observed.get(&*want.schedule_id) else {
            if ended(want, options.now_seconds) {
                plan.untouched.push(Untouched::Ended { schedule_id: id });
            } else {
                plan.steps.push(Step::Create { schedule_id: id });
            }
            continue;
        };
        let ours = seen.owner.as_deref() == Some(project);
        let adoptable = options.adopt && seen.owner.is_none();
        if !(ours || adoptable) {
            plan.untouched.push(Untouched::Conflict {
                schedule_id: id,
                owner: seen.owner.clone(),
            });
            continue;
        }
        let operator_pause = seen.paused_by_operator();
        let reason = if !ours {
            Some(UpdateReason::Adopted)
        } else if !seen
            .fingerprint
            .as_ref()
            .is_some_and(|f| want.has_fingerprint(f))
        {
            Some(UpdateReason::Changed)
        } else if edited_out_of_band(seen, want) {
            Some(UpdateReason::EditedOutOfBand)
        } else {
            None
        };
        if let Some(reason) = reason {
            plan.steps.push(Step::Update {
                schedule_id: id,
                keep_operator_pause: operator_pause && want.enabled,
                adopt: !ours,
                reason,
            });
        } else if !want.enabled && !seen.paused {
            plan.steps.push(Step::Pause { schedule_id: id });
        } else if want.enabled && seen.paused && !operator_pause {
            plan.steps.push(Step::Unpause { schedule_id: id });
        } else if want.enabled && operator_pause {
            plan.untouched
                .push(Untouched::PausedByOperator { schedule_id: id });
        } else {
            plan.untouched
                .push(Untouched::Unchanged { schedule_id: id });
        }
    }

    let wanted: BTreeSet<&str> = desired.iter().map(|d| &*d.schedule_id).collect();
    let owned = observed
        .values()
        .filter(|o| o.owner.as_deref() == Some(project))
        .count();
    let doomed: Vec<&str> = observed
        .values()
        .filter(|o| o.owner.as_deref() == Some(project) && !wanted.contains(o.schedule_id.as_str()))
        .map(|o| o.schedule_id.as_str())
        .collect();
    let hold = if !observation.complete {
        Some(HoldReason::IncompleteListing)
    } else if !options.allow_mass_delete
        && !doomed.is_empty()
        && (doomed.len() == owned || doomed.len() * 2 > owned)
    {
        Some(HoldReason::MassDelete)
    } else {
        None
    };
    for id in doomed {
        match hold {
            Some(why) => plan.untouched.push(Untouched::HeldDeletion {
                schedule_id: id.to_owned(),
                why,
            }),
            None => plan.steps.push(Step::Delete {
                schedule_id: id.to_owned(),
            }),
        }
    }
    plan.steps
        .sort_by(|a, b| a.schedule_id().cmp(b.schedule_id()));
    plan.untouched
        .sort_by(|a, b| untouched_id(a).cmp(untouched_id(b)));
    if plan.steps.is_empty() {
        return plan;
    }
    // A fence whose notes someone replaced names no writer: it is claimed
    // again, as if there were none.
    let held = fence.flatten();
    match held {
        Some(newer) if newer.key > options.writer && options.force => {
            plan.fence = FenceStep::Forced { over: newer };
        }
        Some(newer) if newer.key > options.writer => plan.give_way(newer),
        Some(peer) if peer.key == options.writer && plan.record.is_subset(&recorded) => {}
        current => plan.fence = FenceStep::Claim { current },
    }
    plan
}

/// Whether the fence `held` (read afresh) keeps a writer of rank `ours`
/// from writing: it names a newer writer.
pub fn outranked(held: Option<&Writer>, ours: WriterKey) -> bool {
    held.is_some_and(|writer| writer.key > ours)
}

/// Whether the listed spec differs from the desired one, compared as a
/// listing shows both: Temporal lists only the first ten calendars,
/// intervals and exclusions of a spec.
fn edited_out_of_band(seen: &Observed, want: &CompactSchedule) -> bool {
    seen.spec
        .as_ref()
        .is_some_and(|listed| !want.lists_as(listed))
}

fn untouched_id(untouched: &Untouched) -> &str {
    match untouched {
        Untouched::Unchanged { schedule_id }
        | Untouched::PausedByOperator { schedule_id }
        | Untouched::Conflict { schedule_id, .. }
        | Untouched::Superseded { schedule_id, .. }
        | Untouched::Ended { schedule_id }
        | Untouched::HeldDeletion { schedule_id, .. } => schedule_id,
    }
}

/// Whether `want` has an end that lies before `now_seconds`.
fn ended(want: &CompactSchedule, now_seconds: Option<i64>) -> bool {
    matches!((want.end_seconds, now_seconds), (Some(end), Some(now)) if end < now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::{self, WriterKey, fence_id};
    use crate::spec::DesiredProject;
    use crate::spec::{Fingerprint, PAUSE_NOTE_PREFIX};
    use crate::store::ListedSpec;

    fn project(files: &[&str]) -> Vec<CompactSchedule> {
        DesiredProject::of(&crate::project::test_project("foo", files)).schedules
    }

    fn seen(want: &CompactSchedule) -> Observed {
        let want = want.desired();
        Observed {
            schedule_id: want.schedule_id.clone(),
            owner: Some("foo".into()),
            fingerprint: Some(want.fingerprint.clone()),
            paused: !want.enabled,
            spec: want.schedule.spec.as_ref().map(ListedSpec::of),
            activity: None,
            notes: if want.enabled {
                String::new()
            } else {
                format!("{PAUSE_NOTE_PREFIX} in w.yaml")
            },
        }
    }

    fn observation(schedules: Vec<Observed>) -> Observation {
        Observation {
            schedules,
            complete: true,
        }
    }

    const A: &str = "id: a\nschedule:\n  cron: \"@daily\"\n";
    const B: &str = "id: b\nschedule:\n  cron: \"@hourly\"\n";
    const C: &str = "id: c\nschedule:\n  every: 1h\n";

    #[test]
    fn an_unchanged_project_plans_no_writes() {
        let want = project(&[A, B, C]);
        let plan = plan(
            "foo",
            &want,
            &observation(want.iter().map(seen).collect()),
            PlanOptions::default(),
        );
        assert!(plan.is_empty(), "{plan:#?}");
        assert_eq!(plan.untouched.len(), 3);
    }

    #[test]
    fn missing_schedules_are_created_and_changed_ones_updated() {
        let want = project(&[A, B]);
        let mut stale = seen(&want[1]);
        stale.fingerprint = Some(Fingerprint("old".into()));
        let plan = plan(
            "foo",
            &want,
            &observation(vec![stale]),
            PlanOptions::default(),
        );
        assert_eq!(
            plan.steps,
            vec![
                Step::Create {
                    schedule_id: "foo.a".into()
                },
                Step::Update {
                    schedule_id: "foo.b".into(),
                    keep_operator_pause: false,
                    adopt: false,
                    reason: UpdateReason::Changed,
                },
            ]
        );
    }

    #[test]
    fn a_schedule_without_our_marker_is_a_conflict_unless_adopted() {
        let want = project(&[A]);
        let mut foreign = seen(&want[0]);
        foreign.owner = None;
        let observed = observation(vec![foreign]);
        let plan_default = plan("foo", &want, &observed, PlanOptions::default());
        assert!(plan_default.steps.is_empty());
        assert_eq!(
            plan_default.untouched,
            vec![Untouched::Conflict {
                schedule_id: "foo.a".into(),
                owner: None
            }]
        );
        let adopted = plan(
            "foo",
            &want,
            &observed,
            PlanOptions {
                adopt: true,
                ..PlanOptions::default()
            },
        );
        assert_eq!(
            adopted.steps,
            vec![Step::Update {
                schedule_id: "foo.a".into(),
                keep_operator_pause: false,
                adopt: true,
                reason: UpdateReason::Adopted,
            }]
        );
    }

    #[test]
    fn another_projects_marker_is_never_adopted() {
        let want = project(&[A]);
        let mut other = seen(&want[0]);
        other.owner = Some("foo-bar".into());
        let plan = plan(
            "foo",
            &want,
            &observation(vec![other]),
            PlanOptions {
                adopt: true,
                ..PlanOptions::default()
            },
        );
        assert!(plan.steps.is_empty());
    }

    #[test]
    fn a_spec_edited_out_of_band_is_corrected_and_reported() {
        let want = project(&[A, B]);
        let mut edited = seen(&want[0]);
        let mut spec = edited.spec.unwrap().spec();
        spec.timezone_name = "Asia/Tokyo".into();
        edited.spec = Some(ListedSpec::of(&spec));
        let mut operator_paused = seen(&want[1]);
        operator_paused.paused = true;
        operator_paused.notes = "maintenance".into();
        let plan = plan(
            "foo",
            &want,
            &observation(vec![edited, operator_paused]),
            PlanOptions::default(),
        );
        assert_eq!(
            plan.steps,
            vec![Step::Update {
                schedule_id: "foo.a".into(),
                keep_operator_pause: false,
                adopt: false,
                reason: UpdateReason::EditedOutOfBand,
            }]
        );
        assert_eq!(
            plan.untouched,
            vec![Untouched::PausedByOperator {
                schedule_id: "foo.b".into()
            }]
        );
        let mut unlisted = seen(&want[0]);
        unlisted.spec = None;
        let blind = plan_of(&want[..1], unlisted);
        assert!(blind.is_empty(), "a listing without specs proves nothing");
    }

    fn plan_of(want: &[CompactSchedule], seen: Observed) -> Plan {
        plan(
            "foo",
            want,
            &observation(vec![seen]),
            PlanOptions::default(),
        )
    }

    #[test]
    fn look_alike_projects_are_invisible() {
        let want = project(&[A]);
        let lookalike = Observed {
            schedule_id: "foo-bar.x".into(),
            owner: Some("foo-bar".into()),
            ..seen(&want[0])
        };
        let plan = plan(
            "foo",
            &want,
            &observation(vec![seen(&want[0]), lookalike]),
            PlanOptions::default(),
        );
        assert!(plan.is_empty());
        assert_eq!(plan.untouched.len(), 1);
    }

    #[test]
    fn an_operator_pause_is_kept_and_reported() {
        let want = project(&[A]);
        let mut paused = seen(&want[0]);
        paused.paused = true;
        paused.notes = "investigating incident 42".into();
        let plan_same = plan(
            "foo",
            &want,
            &observation(vec![paused.clone()]),
            PlanOptions::default(),
        );
        assert!(plan_same.steps.is_empty());
        assert_eq!(
            plan_same.untouched,
            vec![Untouched::PausedByOperator {
                schedule_id: "foo.a".into()
            }]
        );
        paused.fingerprint = Some(Fingerprint("old".into()));
        let plan_changed = plan(
            "foo",
            &want,
            &observation(vec![paused]),
            PlanOptions::default(),
        );
        assert_eq!(
            plan_changed.steps,
            vec![Step::Update {
                schedule_id: "foo.a".into(),
                keep_operator_pause: true,
                adopt: false,
                reason: UpdateReason::Changed,
            }]
        );
    }

    #[test]
    fn a_resumed_disabled_schedule_is_paused_again_and_our_leftover_pause_is_lifted() {
        let disabled = project(&["id: a\nschedule:\n  cron: \"@daily\"\n  enabled: false\n"]);
        let mut resumed = seen(&disabled[0]);
        resumed.paused = false;
        let plan_resumed = plan(
            "foo",
            &disabled,
            &observation(vec![resumed]),
            PlanOptions::default(),
        );
        assert_eq!(
            plan_resumed.steps,
            vec![Step::Pause {
                schedule_id: "foo.a".into()
            }]
        );

        let enabled = project(&[A]);
        let mut leftover = seen(&enabled[0]);
        leftover.paused = true;
        leftover.notes = format!("{PAUSE_NOTE_PREFIX} in w.yaml");
        let plan_leftover = plan(
            "foo",
            &enabled,
            &observation(vec![leftover]),
            PlanOptions::default(),
        );
        assert_eq!(
            plan_leftover.steps,
            vec![Step::Unpause {
                schedule_id: "foo.a".into()
            }]
        );
    }

    #[test]
    fn deletions_need_a_complete_listing() {
        let want = project(&[A, B, C]);
        let mut observed: Vec<Observed> = want.iter().map(seen).collect();
        observed.push(Observed {
            schedule_id: "foo.gone".into(),
            ..seen(&want[0])
        });
        let complete = plan(
            "foo",
            &want,
            &observation(observed.clone()),
            PlanOptions::default(),
        );
        assert_eq!(
            complete.steps,
            vec![Step::Delete {
                schedule_id: "foo.gone".into()
            }]
        );
        let partial = plan(
            "foo",
            &want,
            &Observation {
                schedules: observed,
                complete: false,
            },
            PlanOptions::default(),
        );
        assert!(partial.steps.is_empty());
        assert!(partial.untouched.contains(&Untouched::HeldDeletion {
            schedule_id: "foo.gone".into(),
            why: HoldReason::IncompleteListing
        }));
    }

    #[test]
    fn deleting_more_than_half_or_all_is_held_unless_allowed() {
        let want = project(&[A]);
        let observed: Vec<Observed> = ["a", "x", "y"]
            .iter()
            .map(|w| Observed {
                schedule_id: format!("foo.{w}"),
                ..seen(&want[0])
            })
            .collect();
        let held = plan(
            "foo",
            &want,
            &observation(observed.clone()),
            PlanOptions::default(),
        );
        assert!(held.steps.is_empty(), "{held:#?}");
        assert_eq!(
            held.untouched
                .iter()
                .filter(|u| matches!(
                    u,
                    Untouched::HeldDeletion {
                        why: HoldReason::MassDelete,
                        ..
                    }
                ))
                .count(),
            2
        );
        let allowed = plan(
            "foo",
            &want,
            &observation(observed.clone()),
            PlanOptions {
                allow_mass_delete: true,
                ..PlanOptions::default()
            },
        );
        assert_eq!(allowed.steps.len(), 2);

        let all = plan(
            "foo",
            &[],
            &observation(observed[..1].to_vec()),
            PlanOptions::default(),
        );
        assert!(all.steps.is_empty(), "deleting all of one schedule is held");

        let half = project(&[A, B]);
        let mut two_of_four: Vec<Observed> = half.iter().map(seen).collect();
        two_of_four.push(Observed {
            schedule_id: "foo.x".into(),
            ..seen(&half[0])
        });
        two_of_four.push(Observed {
            schedule_id: "foo.y".into(),
            ..seen(&half[0])
        });
        let exactly_half = plan(
            "foo",
            &half,
            &observation(two_of_four),
            PlanOptions::default(),
        );
        assert_eq!(
            exactly_half.steps.len(),
            2,
            "half is allowed, more than half is not"
        );
    }

    /// The fence of project `foo` naming a writer of rank `key`.
    fn fence(key: WriterKey) -> Observed {
        Observed {
            schedule_id: fence_id("foo"),
            owner: Some("foo".into()),
            fingerprint: None,
            paused: true,
            notes: fence::notes(key),
            spec: None,
            activity: None,
        }
    }

    #[test]
    fn a_missing_schedule_whose_end_has_passed_is_not_created_again() {
        let project = crate::project::test_project(
            "foo",
            &[
                "id: done\nschedule:\n  cron: \"@daily\"\n  end_at: 2001-01-01T00:00:00Z\n",
                "id: live\nschedule:\n  cron: \"@daily\"\n  end_at: 2099-01-01T00:00:00Z\n",
            ],
        );
        let want = DesiredProject::of(&project).schedules;
        let options = PlanOptions {
            now_seconds: Some(1_800_000_000),
            ..PlanOptions::default()
        };
        let plan = plan("foo", &want, &Observation::default(), options);
        assert_eq!(
            plan.steps,
            vec![Step::Create {
                schedule_id: "foo.live".to_owned()
            }]
        );
        assert_eq!(
            plan.untouched,
            vec![Untouched::Ended {
                schedule_id: "foo.done".to_owned()
            }]
        );
        // Without a time, every missing schedule is created.
        let timeless = plan_default_creates(&want);
        assert_eq!(timeless, 2);
    }

    fn plan_default_creates(want: &[CompactSchedule]) -> usize {
        plan("foo", want, &Observation::default(), PlanOptions::default())
            .steps
            .len()
    }

    fn with_writer(writer: WriterKey, force: bool) -> PlanOptions {
        PlanOptions {
            writer,
            force,
            ..PlanOptions::default()
        }
    }

    #[test]
    fn a_newer_writer_in_the_fence_leaves_every_step_undone_and_reported() {
        let want = project(&[A, B]);
        let mut changed = seen(&want[1]);
        changed.fingerprint = Some(Fingerprint("old".into()));
        let gone = Observed {
            schedule_id: "foo.gone".into(),
            ..seen(&want[0])
        };
        let schedules = vec![fence(WriterKey::revision(2)), changed, gone];
        // Listed without `foo.a`: a create, an update and a delete wait.
        let older = plan(
            "foo",
            &want,
            &observation(schedules.clone()),
            with_writer(WriterKey::revision(1), false),
        );
        assert!(older.steps.is_empty(), "{older:#?}");
        assert_eq!(older.superseded_by().unwrap().key, WriterKey::revision(2));
        assert_eq!(
            older.untouched,
            vec![
                Untouched::Superseded {
                    schedule_id: "foo.a".into(),
                    operation: "create"
                },
                Untouched::Superseded {
                    schedule_id: "foo.b".into(),
                    operation: "update"
                },
                Untouched::HeldDeletion {
                    schedule_id: "foo.gone".into(),
                    why: HoldReason::Superseded
                },
            ]
        );
        // The fence is nobody's schedule to delete or count.
        assert!(
            !older
                .untouched
                .iter()
                .any(|u| untouched_id(u) == fence_id("foo"))
        );

        // A peer goes ahead without claiming; a newer writer claims first;
        // a forced older one goes ahead and leaves the fence alone.
        let peer = plan(
            "foo",
            &want,
            &observation(schedules.clone()),
            with_writer(WriterKey::revision(2), false),
        );
        assert_eq!((peer.steps.len(), &peer.fence), (3, &FenceStep::None));
        let newer = plan(
            "foo",
            &want,
            &observation(schedules.clone()),
            with_writer(WriterKey::revision(3), false),
        );
        assert!(
            matches!(&newer.fence, FenceStep::Claim { current: Some(w) } if w.key == WriterKey::revision(2))
        );
        assert_eq!(newer.steps.len(), 3);
        let forced = plan(
            "foo",
            &want,
            &observation(schedules),
            with_writer(WriterKey::revision(1), true),
        );
        assert!(matches!(&forced.fence, FenceStep::Forced { .. }));
        assert_eq!(forced.steps.len(), 3);
    }

    #[test]
    fn nothing_to_write_needs_no_fence_whoever_holds_it() {
        let want = project(&[A]);
        let schedules = vec![fence(WriterKey::revision(9)), seen(&want[0])];
        let plan = plan(
            "foo",
            &want,
            &observation(schedules),
            with_writer(WriterKey::revision(1), false),
        );
        assert!(plan.steps.is_empty());
        assert_eq!(plan.fence, FenceStep::None);
        assert_eq!(
            plan.untouched,
            vec![Untouched::Unchanged {
                schedule_id: "foo.a".into()
            }]
        );
    }

    #[test]
    fn a_first_write_claims_a_fence_that_is_not_there_yet_or_names_nobody() {
        let want = project(&[A]);
        let none = plan("foo", &want, &observation(vec![]), PlanOptions::default());
        assert_eq!(none.fence, FenceStep::Claim { current: None });
        let mut scribbled = fence(WriterKey::revision(5));
        scribbled.notes = "paused by hand".into();
        let plan = plan(
            "foo",
            &want,
            &observation(vec![scribbled]),
            PlanOptions::default(),
        );
        assert_eq!(plan.fence, FenceStep::Claim { current: None });
    }
}
