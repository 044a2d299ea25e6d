//! Whether each schedule fires: its health, computed from what a listing
//! already shows (the last actions and the next action times), a pure
//! function tested without a server.
//!
//! | health | when |
//! |---|---|
//! | `paused` | the schedule is paused, by the project (`enabled: false`) or an operator |
//! | `ended` | the server names no next action time: its end passed, or its limit on actions is spent |
//! | `skipping` | a firing passed while the last started run was still running, and the overlap policy skips it (`skip`, `buffer_one`), or a Describe saw skipped or dropped actions since the last one |
//! | `late` | a firing passed more than its catch-up window plus jitter ago with no action: Temporal will not take it any more; or a Describe saw a missed catch-up window since the last one |
//! | `firing` | none of the above |

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::project::fire_times::next_fire_times;
use crate::project::{Project, Schedule};
pub use crate::spec::health_policy::Policy;
use crate::spec::{CompactSchedule, DesiredProject, schedule_id};
pub use crate::store::{Action, Activity, Counters};
use crate::store::{Observation, Observed};

/// Temporal's catch-up window when a schedule names none: one year.
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long after a firing an action may take to show in a listing: the
/// scheduler writes its list entry after it acts, and the listing lags
/// behind that by a second or so.
pub const LISTING_LAG: Duration = Duration::from_secs(5);

/// How a schedule is doing at firing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// Firing as declared (or not due yet).
    Firing,
    /// A firing passed beyond its catch-up window and jitter with no action.
    Late,
    /// Firings are skipped (or buffered actions dropped) because a run is
    /// still going.
    Skipping,
    /// Paused.
    Paused,
    /// Nothing more will fire.
    Ended,
}

impl Health {
    /// Every health, in the order metrics and counts list them.
    pub const ALL: [Health; 5] = [
        Health::Firing,
        Health::Late,
        Health::Skipping,
        Health::Paused,
        Health::Ended,
    ];

    /// The name that metrics, JSON and tables use.
    pub fn name(self) -> &'static str {
        match self {
            Health::Firing => "firing",
            Health::Late => "late",
            Health::Skipping => "skipping",
            Health::Paused => "paused",
            Health::Ended => "ended",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Counters {
    /// The health the change from `before` to `self` shows, if any:
    /// `late` for a missed catch-up window, `skipping` for skipped or
    /// dropped actions.
    pub fn since(&self, before: &Counters) -> Option<Health> {
        if self.missed_catchup_window > before.missed_catchup_window {
            Some(Health::Late)
        } else if self.overlap_skipped > before.overlap_skipped
            || self.buffer_dropped > before.buffer_dropped
        {
            Some(Health::Skipping)
        } else {
            None
        }
    }
}

/// What is known of one schedule's firing: its health with the times that
/// show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Watch {
    /// The health.
    pub health: Health,
    /// When the last action was taken.
    #[serde(serialize_with = "rfc3339_option")]
    pub last_action: Option<SystemTime>,
    /// When the next action is due.
    #[serde(serialize_with = "rfc3339_option")]
    pub next_action: Option<SystemTime>,
    /// Workflows started by the schedule still running: exact when a
    /// Describe read it, else as many as the listing's last actions show.
    pub running: u32,
    /// The firing that passed with no action (for `late` and `skipping`).
    #[serde(serialize_with = "rfc3339_option")]
    pub missed: Option<SystemTime>,
    /// When the last action was due, before jitter.
    #[serde(skip)]
    pub last_scheduled: Option<SystemTime>,
    /// Whether the last action's workflow is still running.
    #[serde(skip)]
    pub last_running: bool,
}

impl Policy {
    fn jitter(&self) -> Duration {
        Duration::from_secs(u64::from(self.jitter_seconds))
    }

    fn catchup_window(&self) -> Duration {
        self.catchup_seconds.map_or(DEFAULT_CATCHUP_WINDOW, |s| {
            Duration::from_secs(u64::from(s))
        })
    }
}

/// The first firing `declared` names after the last action that `activity`
/// shows, if it acted.
pub fn expected_after(declared: &Schedule, activity: &Activity) -> Option<SystemTime> {
    let last = activity.last_action?;
    next_fire_times(declared, DateTime::<Utc>::from(last.scheduled), 1)
        .first()
        .map(|&t| SystemTime::from(t))
}

fn rfc3339_option<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        // As precise as the server's own time, to compare with it.
        Some(time) => serializer.serialize_str(
            &DateTime::<Utc>::from(*time).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ),
        None => serializer.serialize_none(),
    }
}

/// `time` as RFC 3339 text in UTC, to the second.
pub fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The health of a schedule with `policy`, paused or not, whose listing
/// shows `activity`, at `now`, against the firing `expected` after its last
/// action (from its file, [`expected_after`], or the next action time an
/// earlier listing showed). With no action yet, the server's next action
/// time is the one expected. A schedule whose timing changed since its last
/// action can read `late` until it fires under the new timing.
pub fn classify(
    policy: &Policy,
    paused: bool,
    activity: &Activity,
    expected: Option<SystemTime>,
    now: SystemTime,
) -> Watch {
    let mut watch = Watch {
        health: Health::Firing,
        last_action: activity.last_action.map(|a| a.taken),
        next_action: activity.next_action,
        running: activity.running,
        missed: None,
        last_scheduled: activity.last_action.map(|a| a.scheduled),
        last_running: activity.last_running,
    };
    if paused {
        // A paused schedule takes no action; the times a listing shows for
        // it were computed before the pause.
        watch.health = Health::Paused;
        watch.next_action = None;
        return watch;
    }
    let Some(next) = activity.next_action else {
        watch.health = Health::Ended;
        return watch;
    };
    let expected = match (expected, activity.last_action) {
        (Some(t), Some(last)) if t > last.scheduled && t < next => t,
        (Some(_), Some(_)) | (None, Some(_)) => return watch,
        (Some(t), None) => t.min(next),
        (None, None) => next,
    };
    let acted_by = expected + policy.jitter() + LISTING_LAG;
    if policy.skips && activity.last_running && acted_by < now {
        watch.health = Health::Skipping;
        watch.missed = Some(expected);
    } else if acted_by + policy.catchup_window() < now {
        watch.health = Health::Late;
        watch.missed = Some(expected);
    }
    watch
}

/// The schedules `observation` lists, by schedule id.
fn by_id(observation: &Observation) -> HashMap<&str, &Observed> {
    observation
        .schedules
        .iter()
        .map(|o| (o.schedule_id.as_str(), o))
        .collect()
}

/// The watch of each schedule that `project` declares and `observation`
/// shows with its firing, at `now`, by schedule id.
pub fn watch_project(
    project: &Project,
    observation: &Observation,
    now: SystemTime,
) -> BTreeMap<String, Watch> {
    let seen = by_id(observation);
    project
        .scheduled()
        .filter_map(|(workflow, declared)| {
            let id = declared
                .id
                .clone()
                .unwrap_or_else(|| schedule_id(&project.name, &workflow.id));
            let observed = seen.get(id.as_str())?;
            let activity = observed.activity.as_ref()?;
            let expected = expected_after(declared, activity);
            let watch = classify(
                &Policy::of(declared),
                observed.paused,
                activity,
                expected,
                now,
            );
            Some((id, watch))
        })
        .collect()
}

/// The watch of each schedule of `desired` that `observation` shows with
/// its firing, at `now`, by schedule id: as [`watch_project`], but with no
/// file to tell the firing after the last action (a reconciler keeps only
/// the compact form); [`Reads::expect`] adds it from the listing before.
pub fn watch_desired(
    desired: &DesiredProject,
    observation: &Observation,
    now: SystemTime,
) -> BTreeMap<String, Watch> {
    let seen = by_id(observation);
    desired
        .schedules
        .iter()
        .filter_map(|want| {
            let observed = seen.get(&*want.schedule_id)?;
            let activity = observed.activity.as_ref()?;
            let watch = classify(&want.health, observed.paused, activity, None, now);
            Some((want.schedule_id.to_string(), watch))
        })
        .collect()
}

/// What the Describes of earlier reconciles found, kept by a reconciler
/// from one reconcile to the next: a few Describes per reconcile, round
/// robin over the project's schedules, each read against the one before it.
/// Holds one small entry per schedule described.
#[derive(Clone, Debug, Default)]
pub struct Reads {
    /// Where the next round robin turn starts.
    next: usize,
    /// The reconciles done, to tell a fresh read from an older one.
    round: u64,
    seen: HashMap<String, Seen>,
    /// Per schedule, the first firing that an earlier listing expected and
    /// no action has answered yet (or the next one, while none is missed);
    /// keyed by the desired schedule's own id, shared, not a copy of it.
    expected: HashMap<Arc<str>, SystemTime>,
}

/// The last Describe of one schedule.
#[derive(Clone, Copy, Debug)]
struct Seen {
    counters: Counters,
    /// What changed since the Describe before it.
    change: Option<Health>,
    round: u64,
}

impl Reads {
    /// `health` (of [`watch_desired`]) checked against the next action
    /// times that earlier listings showed: a firing expected then that
    /// passed with no action since makes the schedule `skipping` or `late`
    /// as [`classify`] tells. Remembers this listing's next action times.
    pub fn expect(
        &mut self,
        health: &mut BTreeMap<String, Watch>,
        desired: &DesiredProject,
        now: SystemTime,
    ) {
        let wanted: HashMap<&str, &CompactSchedule> = desired
            .schedules
            .iter()
            .map(|w| (&*w.schedule_id, w))
            .collect();
        self.expected.retain(|id, _| health.contains_key(&**id));
        for (id, watch) in health.iter_mut() {
            let Some(want) = wanted.get(id.as_str()) else {
                continue;
            };
            let policy = &want.health;
            if matches!(watch.health, Health::Paused | Health::Ended) {
                self.expected.remove(id.as_str());
                continue;
            }
            let activity = Activity {
                last_action: watch
                    .last_scheduled
                    .zip(watch.last_action)
                    .map(|(scheduled, taken)| Action { scheduled, taken }),
                next_action: watch.next_action,
                running: watch.running,
                last_running: watch.last_running,
                counters: None,
            };
            let earlier = self.expected.get(id.as_str()).copied();
            if watch.health == Health::Firing {
                *watch = classify(policy, false, &activity, earlier, now);
            }
            // The first unanswered firing stays expected until an action
            // answers it; otherwise the next one is.
            let unanswered =
                earlier.filter(|&t| t <= now && watch.last_scheduled.is_none_or(|last| last < t));
            match unanswered.or(watch.next_action) {
                Some(t) => {
                    // Removed first, so that the key is this project's id
                    // (an insert keeps the key there, which may be an id
                    // of the project before a reload, kept alive by it).
                    self.expected.remove(id.as_str());
                    self.expected.insert(want.schedule_id.clone(), t);
                }
                None => {
                    self.expected.remove(id.as_str());
                }
            }
        }
    }

    /// The ids of `health` to describe in this reconcile: `budget` of them,
    /// taking turns, the schedules that the listing shows `late` or
    /// `skipping` first (a Describe tells how many runs were skipped or
    /// missed, and how many run).
    pub fn pick(&mut self, health: &BTreeMap<String, Watch>, budget: usize) -> Vec<String> {
        self.round += 1;
        self.seen.retain(|id, _| health.contains_key(id));
        if health.is_empty() || budget == 0 {
            return Vec::new();
        }
        let start = self.next % health.len();
        let turn = health.keys().skip(start).chain(health.keys().take(start));
        let mut picked: Vec<String> = health
            .iter()
            .filter(|(_, w)| matches!(w.health, Health::Late | Health::Skipping))
            .map(|(id, _)| id.clone())
            .take(budget)
            .collect();
        for id in turn {
            if picked.len() >= budget.min(health.len()) {
                break;
            }
            if !picked.contains(id) {
                picked.push(id.clone());
                self.next += 1;
            }
        }
        picked
    }

    /// Records what a Describe of `id` showed now.
    pub fn record(&mut self, id: &str, counters: Counters) {
        let change = self
            .seen
            .get(id)
            .and_then(|before| counters.since(&before.counters));
        self.seen.insert(
            id.to_owned(),
            Seen {
                counters,
                change,
                round: self.round,
            },
        );
    }

    /// `health` corrected by what the Describes showed: a change since the
    /// Describe before makes a schedule `late` (a missed catch-up window)
    /// or `skipping` (skipped or dropped actions) until its next Describe;
    /// the running workflows of a schedule described in this reconcile are
    /// the Describe's exact count.
    pub fn correct(&self, health: &mut BTreeMap<String, Watch>) {
        for (id, watch) in health.iter_mut() {
            let Some(seen) = self.seen.get(id) else {
                continue;
            };
            if seen.round == self.round {
                watch.running = seen.counters.running_workflows;
            }
            if matches!(watch.health, Health::Paused | Health::Ended) {
                continue;
            }
            match seen.change {
                Some(Health::Late) => watch.health = Health::Late,
                Some(Health::Skipping) if watch.health == Health::Firing => {
                    watch.health = Health::Skipping;
                }
                _ => {}
            }
        }
    }
}

/// How many schedules have each health, every health listed.
pub fn counts<'a>(healths: impl IntoIterator<Item = &'a Health>) -> Vec<(Health, usize)> {
    let mut counts: Vec<(Health, usize)> = Health::ALL.iter().map(|&h| (h, 0)).collect();
    for health in healths {
        if let Some(entry) = counts.iter_mut().find(|(h, _)| h == health) {
            entry.1 += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::duration::parse_duration;

    /// A declared schedule read from `yaml` (the `schedule:` block of a
    /// workflow file).
    fn declared(yaml: &str) -> Schedule {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("project.yaml"),
            "name: watch\ntask_queue: q\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("workflows")).unwrap();
        let indented: String = yaml.lines().map(|l| format!("  {l}\n")).collect();
        std::fs::write(
            dir.path().join("workflows/w.yaml"),
            format!("id: w\nschedule:\n{indented}"),
        )
        .unwrap();
        let loaded = crate::project::load(dir.path()).unwrap();
        loaded.project.workflows[0].schedule.clone().unwrap()
    }

    /// [`classify`] against the firing `declared` names after the last action.
    fn check(declared: &Schedule, paused: bool, activity: &Activity, now: SystemTime) -> Watch {
        let expected = expected_after(declared, activity);
        classify(&Policy::of(declared), paused, activity, expected, now)
    }

    fn at(text: &str) -> SystemTime {
        SystemTime::from(DateTime::parse_from_rfc3339(text).unwrap())
    }

    fn after(time: &str, duration: &str) -> SystemTime {
        at(time) + parse_duration(duration).unwrap()
    }

    fn acted(scheduled: &str, next: &str) -> Activity {
        Activity {
            last_action: Some(Action {
                scheduled: at(scheduled),
                taken: at(scheduled),
            }),
            next_action: Some(at(next)),
            running: 0,
            last_running: false,
            counters: None,
        }
    }

    #[test]
    fn a_schedule_that_acted_on_its_last_firing_is_firing() {
        let hourly = declared("cron: \"0 * * * *\"\ncatchup_window: 1m");
        let activity = acted("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z");
        let watch = check(&hourly, false, &activity, at("2026-05-01T10:30:00Z"));
        assert_eq!(watch.health, Health::Firing);
        assert_eq!(watch.last_action, Some(at("2026-05-01T10:00:00Z")));
        assert_eq!(watch.next_action, Some(at("2026-05-01T11:00:00Z")));
        assert_eq!(watch.missed, None);
    }

    #[test]
    fn late_only_once_the_catch_up_window_and_the_jitter_have_passed() {
        let hourly = declared("cron: \"0 * * * *\"\ncatchup_window: 10m\njitter: 2m");
        // The 11:00 firing never came; the server moved on to 12:00.
        let activity = acted("2026-05-01T10:00:00Z", "2026-05-01T12:00:00Z");
        let limit = at("2026-05-01T11:12:00Z") + LISTING_LAG;
        let inside = check(&hourly, false, &activity, limit);
        assert_eq!(inside.health, Health::Firing, "still inside the window");
        let outside = check(&hourly, false, &activity, limit + Duration::from_secs(1));
        assert_eq!(outside.health, Health::Late);
        assert_eq!(outside.missed, Some(at("2026-05-01T11:00:00Z")));
    }

    #[test]
    fn without_a_catch_up_window_temporal_catches_up_for_a_year() {
        let hourly = declared("cron: \"0 * * * *\"");
        let activity = acted("2026-05-01T10:00:00Z", "2026-05-02T12:00:00Z");
        let day_later = check(&hourly, false, &activity, at("2026-05-02T11:00:00Z"));
        assert_eq!(day_later.health, Health::Firing);
        let year_later = after("2026-05-01T11:00:00Z", "8761h");
        assert_eq!(
            check(&hourly, false, &activity, year_later).health,
            Health::Late
        );
    }

    #[test]
    fn a_passed_firing_behind_a_running_workflow_is_skipping_under_skip_only() {
        let every_second = "every: 1s\ncatchup_window: 10s\n";
        let mut activity = acted("2026-05-01T10:00:00Z", "2026-05-01T10:00:30Z");
        activity.last_running = true;
        activity.running = 1;
        let now = after("2026-05-01T10:00:01Z", "6s");
        for (policy, health) in [
            ("skip", Health::Skipping),
            ("buffer_one", Health::Skipping),
            ("allow_all", Health::Firing),
            ("buffer_all", Health::Firing),
        ] {
            let schedule = declared(&format!("{every_second}overlap_policy: {policy}"));
            let watch = check(&schedule, false, &activity, now);
            assert_eq!(watch.health, health, "{policy}");
            assert_eq!(watch.running, 1);
        }
        // A run that finished leaves nothing to skip behind: then it is late.
        activity.last_running = false;
        let skip = declared(&format!("{every_second}overlap_policy: skip"));
        assert_eq!(
            check(&skip, false, &activity, now + Duration::from_secs(10)).health,
            Health::Late
        );
    }

    #[test]
    fn paused_comes_before_everything_and_no_next_action_is_ended() {
        let hourly = declared("cron: \"0 * * * *\"\ncatchup_window: 1m");
        let stale = acted("2026-05-01T10:00:00Z", "2026-05-01T12:00:00Z");
        let now = at("2026-05-03T00:00:00Z");
        let paused = check(&hourly, true, &stale, now);
        assert_eq!(paused.health, Health::Paused);
        assert_eq!(paused.next_action, None, "a paused schedule acts never");
        assert_eq!(paused.last_action, Some(at("2026-05-01T10:00:00Z")));
        let ended = Activity {
            next_action: None,
            ..stale
        };
        let watch = check(&hourly, false, &ended, now);
        assert_eq!(watch.health, Health::Ended);
        assert_eq!(watch.next_action, None);
    }

    #[test]
    fn a_schedule_that_never_acted_is_late_only_past_the_servers_next_time() {
        let hourly = declared("cron: \"0 * * * *\"\ncatchup_window: 1m");
        let fresh = Activity {
            next_action: Some(at("2026-05-01T11:00:00Z")),
            ..Activity::default()
        };
        let before = check(&hourly, false, &fresh, at("2026-05-01T10:59:00Z"));
        assert_eq!(before.health, Health::Firing);
        assert_eq!(before.last_action, None);
        let stuck = check(&hourly, false, &fresh, at("2026-05-01T11:02:00Z"));
        assert_eq!(stuck.health, Health::Late);
    }

    #[test]
    fn describe_counters_count_only_what_changed_since_the_last_describe() {
        let hourly = declared("cron: \"0 * * * *\"\ncatchup_window: 1m");
        let activity = acted("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z");
        let now = at("2026-05-01T10:30:00Z");
        let mut health = BTreeMap::from([
            ("a".to_owned(), check(&hourly, false, &activity, now)),
            ("b".to_owned(), check(&hourly, true, &activity, now)),
        ]);
        let old = Counters {
            missed_catchup_window: 3,
            overlap_skipped: 7,
            buffer_dropped: 0,
            running_workflows: 2,
        };
        let mut reads = Reads::default();
        assert_eq!(reads.pick(&health, 5), vec!["a", "b"]);
        reads.record("a", old);
        reads.record("b", old);
        let mut first = health.clone();
        reads.correct(&mut first);
        assert_eq!(first["a"].health, Health::Firing, "old counts are history");
        assert_eq!(first["a"].running, 2);
        reads.pick(&health, 5);
        let skipped = Counters {
            overlap_skipped: 8,
            ..old
        };
        reads.record("a", skipped);
        reads.record(
            "b",
            Counters {
                missed_catchup_window: 4,
                ..old
            },
        );
        reads.correct(&mut health);
        assert_eq!(health["a"].health, Health::Skipping);
        assert_eq!(health["b"].health, Health::Paused, "paused comes first");
    }

    #[test]
    fn describes_take_turns_and_late_ones_go_first() {
        let hourly = declared("cron: \"0 * * * *\"\ncatchup_window: 1m");
        let fine = check(
            &hourly,
            false,
            &acted("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z"),
            at("2026-05-01T10:30:00Z"),
        );
        let mut health: BTreeMap<String, Watch> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| (id.to_string(), fine))
            .collect();
        let mut reads = Reads::default();
        assert_eq!(reads.pick(&health, 2), vec!["a", "b"]);
        assert_eq!(reads.pick(&health, 2), vec!["c", "d"]);
        assert_eq!(reads.pick(&health, 2), vec!["e", "a"]);
        health.get_mut("d").unwrap().health = Health::Late;
        assert_eq!(reads.pick(&health, 2), vec!["d", "b"]);
        assert_eq!(reads.pick(&health, 0), Vec::<String>::new());
        assert_eq!(reads.pick(&health, 9).len(), 5, "never one twice");
    }

    #[test]
    fn counts_list_every_health() {
        let counts = counts(&[Health::Late, Health::Firing, Health::Late]);
        assert_eq!(
            counts,
            vec![
                (Health::Firing, 1),
                (Health::Late, 2),
                (Health::Skipping, 0),
                (Health::Paused, 0),
                (Health::Ended, 0),
            ]
        );
    }
}
