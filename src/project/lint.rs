//! The lints of `validate`: things that are valid but likely not meant.
//!
//! - a calendar time that a DST change skips or repeats: on which dates of
//!   the next year the schedule fires fewer or more times than its cron
//!   says, counted with the server's own calendar search
//!   ([`crate::project::fire_times`]);
//! - an `end_at` in the past;
//! - [`CROWD_THRESHOLD`] or more schedules firing at one instant without
//!   jitter.
//!
//! All are warnings (`validate --deny-warnings` makes them errors). A cron
//! that can never fire (`0 0 30 2 *`) is an error of the file and is found
//! whatever the options ([`never_fires`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::diagnostic::Diagnostic;
use super::model::{Project, Schedule, Workflow};
use super::node::Position;
use crate::cron::{Calendar, CronSpec, Range, Timing as CronTiming};
use crate::project::fire_times::{next_calendar, next_fire_times};

/// How many schedules firing at one instant, none with jitter, draw a
/// warning.
pub const CROWD_THRESHOLD: usize = 10;
/// How far ahead the instants of schedules are compared.
pub const CROWD_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// The firings of one schedule compared, at most (an every-minute schedule
/// is compared over its first hours).
const CROWD_FIRINGS: usize = 200;
/// How far ahead DST changes are looked for.
const DST_WINDOW_DAYS: i64 = 366;

/// Whether a calendar cron names no time at all from 2000 on (`0 0 30 2 *`,
/// or a year already past for every other field).
pub fn never_fires(spec: &CronSpec) -> bool {
    let CronTiming::Calendar(calendar) = &spec.timing else {
        return false;
    };
    let from = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
    from.is_some_and(|from| next_calendar(calendar, Tz::UTC, from).is_none())
}

/// The warnings about one valid schedule of `file`: its cron entries stand
/// at `cron_at` (in order), its `end_at` at `end_at`.
pub(super) fn schedule(
    file: &Path,
    schedule: &Schedule,
    cron_at: &[Position],
    end_at: Option<Position>,
    now: DateTime<Utc>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let (Some(end), Some(at)) = (schedule.end_at, end_at)
        && end < now
    {
        out.push(
            Diagnostic::warning(
                file,
                at,
                format!(
                    "`end_at` {} is in the past: the schedule never fires again, and once the \
                     server has deleted it, it is not created again",
                    end.to_rfc3339()
                ),
            )
            .expected("an end in the future, or no schedule"),
        );
    }
    let Ok(zone) = schedule.timezone.parse::<Tz>() else {
        return out;
    };
    let entries = &schedule.timing.cron;
    if entries.is_empty() {
        return out;
    }
    let dates = dst_dates(zone, now);
    if dates.is_empty() {
        return out;
    }
    for (entry, at) in entries.iter().zip(cron_at) {
        let CronTiming::Calendar(calendar) = &entry.spec.timing else {
            continue;
        };
        // Hourly and finer: fires through the change at its usual pace.
        if every_hour(&calendar.hour) {
            continue;
        }
        let mut fewer = Vec::new();
        let mut more = Vec::new();
        for date in &dates {
            if !active(schedule, *date, zone) {
                continue;
            }
            let Some(wanted) = wall_times(calendar, *date) else {
                continue;
            };
            let fired = firings_on(calendar, zone, *date);
            match fired.len().cmp(&wanted) {
                std::cmp::Ordering::Less => {
                    fewer.push(format!("{date} ({} instead of {wanted})", fired.len()))
                }
                std::cmp::Ordering::Greater => {
                    let times: Vec<String> = fired
                        .iter()
                        .map(|t| t.format("%H:%M:%SZ").to_string())
                        .collect();
                    more.push(format!(
                        "{date} ({} instead of {wanted}: {})",
                        fired.len(),
                        times.join(", ")
                    ));
                }
                std::cmp::Ordering::Equal => {}
            }
        }
        if fewer.is_empty() && more.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        if !fewer.is_empty() {
            parts.push(format!(
                "fires fewer times on {}, where the clocks skip its time",
                fewer.join(", ")
            ));
        }
        if !more.is_empty() {
            parts.push(format!(
                "fires more times on {}, where the clocks repeat its time",
                more.join(", ")
            ));
        }
        out.push(
            Diagnostic::warning(
                file,
                *at,
                format!(
                    "`{}` in {} {} (a DST change, counted as the Temporal server counts)",
                    entry.text,
                    zone.name(),
                    parts.join("; it ")
                ),
            )
            .expected("a time of day that every day has once")
            .help(
                "move it out of the hours the clocks change (often 01:00-03:00), or use \
                 `timezone: UTC`",
            ),
        );
    }
    out
}

fn every_hour(hours: &[Range]) -> bool {
    (0..24).all(|h| hours.is_empty() || hours.iter().any(|r| r.contains(h)))
}

fn matches(ranges: &[Range], value: u32) -> bool {
    ranges.is_empty() || ranges.iter().any(|r| r.contains(value))
}

/// The local dates of the next year on which `zone` changes its offset
/// (and the day before each, for changes near midnight).
fn dst_dates(zone: Tz, now: DateTime<Utc>) -> BTreeSet<NaiveDate> {
    let offset = |at: DateTime<Utc>| zone.offset_from_utc_datetime(&at.naive_utc()).fix();
    let mut dates = BTreeSet::new();
    let mut before = now;
    for day in 1..=DST_WINDOW_DAYS {
        let after = now + chrono::Duration::days(day);
        if offset(before) != offset(after) {
            let date = after.with_timezone(&zone).date_naive();
            dates.insert(date);
            dates.extend(date.pred_opt());
        }
        before = after;
    }
    dates
}

/// Whether `date` lies between the schedule's start and end.
fn active(schedule: &Schedule, date: NaiveDate, zone: Tz) -> bool {
    let day = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
    schedule.start_at.is_none_or(|s| day(s) <= date)
        && schedule.end_at.is_none_or(|e| day(e) >= date)
}

/// How many wall-clock times of `date` the calendar names, as if no clock
/// changed; `None` when they are too many to be worth counting.
fn wall_times(calendar: &Calendar, date: NaiveDate) -> Option<usize> {
    let year = u32::try_from(date.year()).ok()?;
    let day_matches = matches(&calendar.year, year)
        && matches(&calendar.month, date.month())
        && matches(&calendar.day_of_month, date.day())
        && matches(&calendar.day_of_week, date.weekday().num_days_from_sunday());
    if !day_matches {
        return Some(0);
    }
    let count = |ranges: &[Range], upto: u32| (0..upto).filter(|v| matches(ranges, *v)).count();
    let times =
        count(&calendar.hour, 24) * count(&calendar.minute, 60) * count(&calendar.second, 60);
    (times <= 1_000).then_some(times)
}

/// The instants at which the server fires `calendar` on local `date`.
fn firings_on(calendar: &Calendar, zone: Tz, date: NaiveDate) -> Vec<DateTime<Utc>> {
    let Some(midnight) = date.and_hms_opt(0, 0, 0) else {
        return Vec::new();
    };
    // Noon of the day before: well clear of any change.
    let Some(start) = zone
        .from_local_datetime(&(midnight - chrono::Duration::hours(12)))
        .earliest()
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cursor = start.with_timezone(&Utc);
    while let Some(next) = next_calendar(calendar, zone, cursor) {
        let day = next.with_timezone(&zone).date_naive();
        if day > date || out.len() > 2_000 {
            break;
        }
        if day == date {
            out.push(next);
        }
        cursor = next;
    }
    out
}

/// One warning for each group of [`CROWD_THRESHOLD`] or more enabled
/// schedules without jitter that fire at one instant within
/// [`CROWD_WINDOW`] of `now`.
pub(super) fn crowded(project: &Project, now: DateTime<Utc>) -> Vec<Diagnostic> {
    let crowd = Crowd::new(now);
    for (workflow, _) in project.scheduled() {
        crowd.add(workflow);
    }
    crowd.warnings()
}

/// The crowd lint fed one workflow at a time, from any thread, so that a
/// project need not be held whole: each schedule's firings within the
/// window are computed as it is added, and schedules that fire at the same
/// instants share one list of them. What is kept per schedule is its id,
/// its file and the index of its list; per list, its instants once.
pub(super) struct Crowd {
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    seen: Mutex<Firings>,
}

/// What [`Crowd`] has gathered.
#[derive(Default)]
struct Firings {
    /// Each distinct list of instants, by its index.
    lists: Vec<Box<[DateTime<Utc>]>>,
    /// The index of each list in `lists`.
    index: HashMap<Box<[DateTime<Utc>]>, u32>,
    /// Every schedule added, with the index of its list.
    members: Vec<Member>,
}

struct Member {
    id: Box<str>,
    file: Box<Path>,
    list: u32,
}

impl Crowd {
    /// A crowd lint as of `now`.
    pub(super) fn new(now: DateTime<Utc>) -> Self {
        Crowd {
            now,
            until: now + chrono::Duration::from_std(CROWD_WINDOW).unwrap_or_default(),
            seen: Mutex::new(Firings::default()),
        }
    }

    /// Counts `workflow`'s schedule, when it has one that is enabled and
    /// has no jitter.
    pub(super) fn add(&self, workflow: &Workflow) {
        let Some(schedule) = &workflow.schedule else {
            return;
        };
        if !schedule.enabled || !schedule.jitter.is_zero() {
            return;
        }
        let times: Box<[DateTime<Utc>]> = next_fire_times(schedule, self.now, CROWD_FIRINGS)
            .into_iter()
            .take_while(|time| *time <= self.until)
            .collect();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let Firings {
            lists,
            index,
            members,
        } = &mut *seen;
        let list = match index.get(&times) {
            Some(list) => *list,
            None => {
                let Ok(list) = u32::try_from(lists.len()) else {
                    return;
                };
                lists.push(times.clone());
                index.insert(times, list);
                list
            }
        };
        members.push(Member {
            id: workflow.id.as_str().into(),
            file: workflow.file.as_path().into(),
            list,
        });
    }

    /// The warnings, one per distinct group of schedules that crowd an
    /// instant, named at its first instant, the schedules in id order.
    pub(super) fn warnings(self) -> Vec<Diagnostic> {
        let Firings {
            lists,
            index,
            mut members,
        } = self.seen.into_inner().unwrap_or_else(|e| e.into_inner());
        drop(index);
        members.sort_by(|a, b| a.id.cmp(&b.id));
        // The schedules of each list, by their place in `members`.
        let mut of_list: Vec<Vec<u32>> = vec![Vec::new(); lists.len()];
        for (i, member) in members.iter().enumerate() {
            if let Ok(i) = u32::try_from(i) {
                of_list[member.list as usize].push(i);
            }
        }
        // The lists that fire at each instant (in increasing order).
        let mut at: BTreeMap<DateTime<Utc>, Vec<u32>> = BTreeMap::new();
        for (list, times) in (0u32..).zip(&lists) {
            for time in times.iter() {
                at.entry(*time).or_default().push(list);
            }
        }
        drop(lists);
        let mut reported: BTreeSet<Vec<u32>> = BTreeSet::new();
        let mut out = Vec::new();
        for (time, firing) in at {
            let count: usize = firing.iter().map(|l| of_list[*l as usize].len()).sum();
            if count < CROWD_THRESHOLD || reported.contains(&firing) {
                continue;
            }
            let mut crowd: Vec<u32> = firing
                .iter()
                .flat_map(|l| &of_list[*l as usize])
                .copied()
                .collect();
            reported.insert(firing);
            crowd.sort_unstable();
            let file = &members[crowd[0] as usize].file;
            let ids: Vec<&str> = crowd.iter().map(|i| &*members[*i as usize].id).collect();
            out.push(crowd_warning(file, time, &ids));
        }
        out
    }
}

/// The warning that the schedules `ids` (at least one) fire together,
/// first at `time`; it stands in `file`, the first one's.
fn crowd_warning(file: &Path, time: DateTime<Utc>, ids: &[&str]) -> Diagnostic {
    let shown: Vec<&str> = ids.iter().take(12).copied().collect();
    let more = ids
        .len()
        .checked_sub(shown.len())
        .filter(|n| *n > 0)
        .map_or_else(String::new, |n| format!(" and {n} more"));
    Diagnostic::warning(
        file,
        Position::default(),
        format!(
            "{} schedules fire at the same instant without jitter, first at {}: {}{more}",
            ids.len(),
            time.format("%Y-%m-%d %H:%M:%SZ"),
            shown.join(", ")
        ),
    )
    .expected(format!(
        "fewer than {CROWD_THRESHOLD} schedules starting at one instant"
    ))
    .help(
        "add `jitter` (for example `jitter: 1m`) to their schedules so that their \
         workflows do not all start at once",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::check_workflow_source;
    use crate::project::fire_times::at;

    fn lint(body: &str, now: &str) -> Vec<String> {
        let text = format!("id: w\nschedule:\n{body}");
        let workflow = check_workflow_source("w.yaml".into(), &text, "q")
            .workflow
            .unwrap();
        let schedule = workflow.schedule.unwrap();
        let cron_at = [Position { line: 3, column: 9 }; 4];
        schedule_lints(&schedule, &cron_at, at(now))
    }

    fn schedule_lints(
        schedule: &Schedule,
        cron_at: &[Position],
        now: DateTime<Utc>,
    ) -> Vec<String> {
        super::schedule(
            Path::new("w.yaml"),
            schedule,
            cron_at,
            Some(Position::default()),
            now,
        )
        .into_iter()
        .map(|d| d.message)
        .collect()
    }

    #[test]
    fn a_time_in_the_spring_gap_and_the_autumn_overlap_is_named_with_its_dates() {
        let found = lint(
            "  cron: \"30 2 * * *\"\n  timezone: Europe/Berlin\n",
            "2026-12-01T00:00:00Z",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("2027-03-28 (0 instead of 1)"),
            "{found:?}"
        );
    }

    #[test]
    fn an_hour_repeated_in_autumn_fires_twice() {
        let found = lint(
            "  cron: \"30 1 * * *\"\n  timezone: Europe/Berlin\n",
            "2026-09-01T00:00:00Z",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("2026-10-25 (2 instead of 1"), "{found:?}");
        assert!(!found[0].contains("2027-03-28"), "{found:?}");
    }

    #[test]
    fn utc_hourly_and_safe_times_draw_no_warning() {
        let now = "2026-09-01T00:00:00Z";
        assert!(lint("  cron: \"30 2 * * *\"\n", now).is_empty());
        assert!(lint("  cron: \"30 * * * *\"\n  timezone: Europe/Berlin\n", now).is_empty());
        assert!(lint("  cron: \"0 9 * * *\"\n  timezone: Europe/Berlin\n", now).is_empty());
        assert!(lint("  every: 1h\n", now).is_empty());
    }

    #[test]
    fn an_end_in_the_past_is_a_warning() {
        let found = lint(
            "  cron: \"0 9 * * *\"\n  end_at: 2001-01-01T00:00:00Z\n",
            "2026-09-01T00:00:00Z",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("is in the past"), "{found:?}");
    }

    #[test]
    fn a_cron_that_names_no_day_never_fires() {
        let spec = |text: &str| crate::cron::parse(text).unwrap();
        assert!(never_fires(&spec("0 0 30 2 *")));
        assert!(never_fires(&spec("0 0 31 4 *")));
        assert!(!never_fires(&spec("0 0 29 2 *")));
        assert!(!never_fires(&spec("@every 1h")));
    }

    #[test]
    fn ten_schedules_at_one_instant_without_jitter_are_named() {
        let mut files: Vec<String> = (0..CROWD_THRESHOLD)
            .map(|i| format!("id: w{i}\nschedule:\n  cron: \"0 0 * * *\"\n"))
            .collect();
        files.push("id: spread\nschedule:\n  cron: \"0 0 * * *\"\n  jitter: 5m\n".to_owned());
        let texts: Vec<&str> = files.iter().map(String::as_str).collect();
        let project = crate::project::test_project("p", &texts);
        let found = crowded(&project, at("2026-09-01T12:00:00Z"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .message
                .starts_with("10 schedules fire at the same instant")
        );
        assert!(!found[0].message.contains("spread"));

        let fewer = crate::project::test_project("p", &texts[1..]);
        assert!(crowded(&fewer, at("2026-09-01T12:00:00Z")).is_empty());
    }

    #[test]
    fn schedules_of_different_timings_crowd_the_instants_they_share() {
        // Six daily at midnight, six every twelve hours: twelve at each
        // midnight, six at each noon.
        let files: Vec<String> = (0..6)
            .map(|i| format!("id: daily{i}\nschedule:\n  cron: \"0 0 * * *\"\n"))
            .chain((0..6).map(|i| format!("id: half{i}\nschedule:\n  cron: \"0 0,12 * * *\"\n")))
            .collect();
        let texts: Vec<&str> = files.iter().map(String::as_str).collect();
        let project = crate::project::test_project("p", &texts);
        let found = crowded(&project, at("2026-09-01T06:00:00Z"));
        // The same twelve every midnight: named once, at the first.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].message,
            "12 schedules fire at the same instant without jitter, first at \
             2026-09-02 00:00:00Z: daily0, daily1, daily2, daily3, daily4, daily5, half0, \
             half1, half2, half3, half4, half5"
        );
        assert_eq!(found[0].file, Path::new("w0.yaml"));
    }
}
