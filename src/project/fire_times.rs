//! The next firing times of a schedule, for `plan` to show what a change
//! means. Computed the way Temporal does: calendar fields matched from the
//! year down in the schedule's time zone, intervals counted from the epoch
//! plus the phase. Jitter, start and end times are applied; pauses are not.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::cron::{Calendar, Range, Timing as CronTiming};
use crate::project::Schedule;

/// The last year Temporal's calendar search looks at.
const MAX_CALENDAR_YEAR: i32 = 2100;

const HOUR: i64 = 3600;

/// How many excluded times in a row end the search: a schedule whose
/// exclusions cover all its times (every second of every day) has none.
const MAX_EXCLUDED_IN_A_ROW: usize = 100_000;

fn matches(ranges: &[Range], value: u32) -> bool {
    ranges.is_empty() || ranges.iter().any(|r| r.contains(value))
}

/// The instant of the local time `y-mo-d h:m:s` in `zone`, resolved as Go's
/// `time.Date` resolves it (the server's calendar code builds every
/// candidate that way): the wall time is read as UTC, shifted by the zone's
/// offset at that instant, then by the offset at the shifted one. A time
/// repeated by a DST change resolves to its first occurrence where the
/// clock goes back at or after that wall time in UTC (the Americas), to the
/// second elsewhere (Europe, Australia); an hour past 23 rolls to the next
/// day.
fn go_date(zone: Tz, y: i32, mo: u32, d: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    let month_start = NaiveDate::from_ymd_opt(y, mo, 1)?.and_hms_opt(0, 0, 0)?;
    let wall = month_start.and_utc().timestamp()
        + (i64::from(d) - 1) * 24 * HOUR
        + i64::from(h) * HOUR
        + i64::from(m) * 60
        + i64::from(s);
    let offset = |at: i64| -> Option<i64> {
        let at = DateTime::from_timestamp(at, 0)?.naive_utc();
        Some(i64::from(
            zone.offset_from_utc_datetime(&at).fix().local_minus_utc(),
        ))
    };
    let first = offset(wall)?;
    if first == 0 {
        return Some(wall);
    }
    Some(wall - offset(wall - first)?)
}

/// `at` in `zone`.
fn local(zone: Tz, at: i64) -> Option<DateTime<Tz>> {
    Some(DateTime::from_timestamp(at, 0)?.with_timezone(&zone))
}

fn days_in_month(y: i32, mo: u32) -> u32 {
    let next = if mo == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, mo + 1, 1)
    };
    next.and_then(|n| n.pred_opt())
        .map_or(31, |last| last.day())
}

/// The first time strictly after `after` that `calendar` names in `zone`,
/// found as Temporal's server finds it (`compiledCalendar.next` in its
/// scheduler): local fields counted up from the year down to the second,
/// with its handling of DST changes, quirks included. A time skipped by a
/// change does not fire. Around a change that repeats an hour, the server
/// replays the hour it finds repeated with one hour added; in zones where
/// Go resolves a repeated time to its second occurrence that is the hour
/// before the repeated one, so `30 1 * * *` in Europe/Berlin fires at 01:30
/// and again at 02:30 summer time on the night the clocks go back, and
/// `plan` says so because the server will do it.
pub(crate) fn next_calendar(
    calendar: &Calendar,
    zone: Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let start = after.with_timezone(&zone);
    let (mut y, mut mo, mut d) = (start.year(), start.month(), start.day());
    let (mut h, mut m, mut s) = (start.hour(), start.minute(), start.second());
    // In the second copy of a repeated hour, times are that hour plus one.
    let mut dst = if (after - chrono::Duration::hours(1))
        .with_timezone(&zone)
        .hour()
        == h
    {
        HOUR
    } else {
        0
    };
    s += 1;
    'outer: loop {
        if s >= 60 {
            (m, s) = (m + 1, 0);
        }
        if m >= 60 {
            let before = go_date(zone, y, mo, d, h, 0, 0)?;
            (h, m) = (h + 1, 0);
            let next = go_date(zone, y, mo, d, h, 0, 0)?;
            // Two hours between two hour marks: an hour was repeated; go
            // through it again, one hour later.
            if dst == 0 && next - before > HOUR {
                h -= 1;
                dst = HOUR;
            } else {
                dst = 0;
            }
        }
        if h >= 24 {
            (d, h) = (d + 1, 0);
        }
        if d > days_in_month(y, mo) {
            (mo, d) = (mo + 1, 1);
        }
        if mo > 12 {
            (y, mo) = (y + 1, 1);
        }
        if y > MAX_CALENDAR_YEAR {
            return None;
        }
        if !matches(&calendar.year, u32::try_from(y).unwrap_or(0)) {
            (y, mo, d, h, m, s, dst) = (y + 1, 1, 1, 0, 0, 0, 0);
            continue 'outer;
        }
        while !matches(&calendar.month, mo) {
            (mo, d, h, m, s, dst) = (mo + 1, 1, 0, 0, 0, 0);
            if mo > 12 {
                continue 'outer;
            }
        }
        loop {
            let weekday = local(zone, go_date(zone, y, mo, d, h, m, s)?)?
                .weekday()
                .num_days_from_sunday();
            if matches(&calendar.day_of_month, d) && matches(&calendar.day_of_week, weekday) {
                break;
            }
            (d, h, m, s, dst) = (d + 1, 0, 0, 0, 0);
            if d > days_in_month(y, mo) {
                continue 'outer;
            }
        }
        while !matches(&calendar.hour, h) {
            (h, m, s, dst) = (h + 1, 0, 0, 0);
            if h >= 24 {
                continue 'outer;
            }
        }
        while !matches(&calendar.minute, m) {
            (m, s) = (m + 1, 0);
            if m >= 60 {
                continue 'outer;
            }
        }
        while !matches(&calendar.second, s) {
            s += 1;
            if s >= 60 {
                continue 'outer;
            }
        }
        let found = go_date(zone, y, mo, d, h, m, s)?;
        // A local time that does not exist (skipped by a DST change).
        if local(zone, found)?.hour() != h {
            (h, m, s) = (h + 1, 0, 0);
            continue 'outer;
        }
        return DateTime::from_timestamp(found + dst, 0);
    }
}

/// Whether `calendar` names the time `at` in `zone`, as the server checks
/// a time against the calendars a spec excludes.
fn calendar_matches(calendar: &Calendar, zone: Tz, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&zone);
    matches(&calendar.year, u32::try_from(local.year()).unwrap_or(0))
        && matches(&calendar.month, local.month())
        && matches(&calendar.day_of_month, local.day())
        && matches(
            &calendar.day_of_week,
            local.weekday().num_days_from_sunday(),
        )
        && matches(&calendar.hour, local.hour())
        && matches(&calendar.minute, local.minute())
        && matches(&calendar.second, local.second())
}

fn next_interval(every: Duration, phase: Duration, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let every = i64::try_from(every.as_secs()).ok()?.max(1);
    let phase = i64::try_from(phase.as_secs()).ok()?;
    let t = after.timestamp();
    let next = ((t - phase).div_euclid(every) + 1) * every + phase;
    Utc.timestamp_opt(next, 0).single()
}

/// Up to `count` firing times of `schedule` after `after`, without jitter.
pub fn next_fire_times(
    schedule: &Schedule,
    after: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    let zone: Tz = schedule.timezone.parse().unwrap_or(Tz::UTC);
    let mut out = Vec::with_capacity(count);
    let mut cursor = after.max(
        schedule
            .start_at
            .map_or(after, |s| s - chrono::Duration::seconds(1)),
    );
    let mut excluded = 0;
    while out.len() < count && excluded < MAX_EXCLUDED_IN_A_ROW {
        let timing = &schedule.timing;
        let candidates = timing
            .cron
            .iter()
            .filter_map(|e| match &e.spec.timing {
                CronTiming::Calendar(c) => next_calendar(c, zone, cursor),
                CronTiming::Interval { every, phase } => next_interval(*every, *phase, cursor),
            })
            .chain(
                timing
                    .calendars
                    .iter()
                    .filter_map(|e| next_calendar(&e.calendar, zone, cursor)),
            )
            .chain(
                timing
                    .every
                    .iter()
                    .filter_map(|i| next_interval(i.every, i.offset, cursor)),
            );
        let Some(next) = candidates.into_iter().min() else {
            break;
        };
        if schedule.end_at.is_some_and(|end| next > end) {
            break;
        }
        cursor = next;
        if schedule
            .exclude
            .iter()
            .any(|e| calendar_matches(&e.calendar, zone, next))
        {
            excluded += 1;
            continue;
        }
        excluded = 0;
        out.push(next);
    }
    out
}

/// An RFC 3339 instant, in UTC (for tests).
#[cfg(test)]
pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::check_workflow_source;

    fn schedule(body: &str) -> Schedule {
        let text = format!("id: w\nschedule:\n{body}");
        check_workflow_source("w.yaml".into(), &text, "q")
            .workflow
            .unwrap()
            .schedule
            .unwrap()
    }

    fn times(body: &str, after: &str, count: usize) -> Vec<String> {
        next_fire_times(&schedule(body), at(after), count)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn a_daily_cron_fires_in_its_time_zone() {
        assert_eq!(
            times(
                "  cron: \"0 2 * * *\"\n  timezone: Europe/Berlin\n",
                "2026-11-26T12:00:00Z",
                3
            ),
            [
                "2026-11-27T01:00:00+00:00",
                "2026-11-28T01:00:00+00:00",
                "2026-11-29T01:00:00+00:00"
            ]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_combine_with_and() {
        // Friday the 13th only.
        assert_eq!(
            times("  cron: \"0 0 13 * fri\"\n", "2026-01-01T00:00:00Z", 2),
            ["2026-02-13T00:00:00+00:00", "2026-03-13T00:00:00+00:00"]
        );
    }

    #[test]
    fn intervals_count_from_the_epoch_plus_the_phase() {
        assert_eq!(
            times("  every: 15m\n  offset: 5m\n", "2026-11-26T12:00:00Z", 3),
            [
                "2026-11-26T12:05:00+00:00",
                "2026-11-26T12:20:00+00:00",
                "2026-11-26T12:35:00+00:00"
            ]
        );
    }

    #[test]
    fn cron_lists_merge_and_end_at_stops() {
        let body = "  cron: [\"0 9 * * *\", \"0 17 * * *\"]\n  end_at: 2026-11-27T10:00:00Z\n";
        assert_eq!(
            times(body, "2026-11-26T12:00:00Z", 5),
            ["2026-11-26T17:00:00+00:00", "2026-11-27T09:00:00+00:00"]
        );
    }

    #[test]
    fn calendar_entries_intervals_and_cron_merge() {
        let body = "  cron: \"0 9 * * *\"\n  calendar: {hour: 12, minute: 30}\n  \
                    every: [{every: 1d, offset: 15h}]\n";
        assert_eq!(
            times(body, "2026-11-26T00:00:00Z", 4),
            [
                "2026-11-26T09:00:00+00:00",
                "2026-11-26T12:30:00+00:00",
                "2026-11-26T15:00:00+00:00",
                "2026-11-27T09:00:00+00:00"
            ]
        );
    }

    #[test]
    fn excluded_times_do_not_fire() {
        // Daily at 9, but not on weekends and not on Christmas Day.
        let body = "  cron: \"0 9 * * *\"\n  timezone: Europe/Berlin\n  \
                    exclude: [\"* * * * sat,sun\", {month: 12, day_of_month: 25, hour: \"*\", minute: \"*\", second: \"*\"}]\n";
        assert_eq!(
            times(body, "2026-12-23T12:00:00Z", 3),
            [
                "2026-12-24T08:00:00+00:00",
                "2026-12-28T08:00:00+00:00",
                "2026-12-29T08:00:00+00:00"
            ]
        );
        // Everything excluded: no time, and the search ends.
        let never = "  every: 1h\n  exclude: {hour: \"*\", minute: \"*\", second: \"*\"}\n";
        assert!(times(never, "2026-01-01T00:00:00Z", 1).is_empty());
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_does_not_fire() {
        // 02:30 does not exist in Berlin on 2026-03-29.
        assert_eq!(
            times(
                "  cron: \"30 2 * * *\"\n  timezone: Europe/Berlin\n",
                "2026-03-28T12:00:00Z",
                2
            ),
            ["2026-03-30T00:30:00+00:00", "2026-03-31T00:30:00+00:00"]
        );
    }

    #[test]
    fn past_years_fire_never() {
        assert!(times("  cron: \"0 0 1 1 * 2020\"\n", "2026-01-01T00:00:00Z", 1).is_empty());
    }

    /// Times around DST changes, in both hemispheres, as the server's
    /// calendar code gives them (worked out from its `compiledCalendar.next`
    /// in server 1.29.1, run in Go; `tests/fire_times.rs` checks a set of
    /// them against a live server's `futureActionTimes`).
    #[test]
    fn dst_changes_resolve_as_the_server_resolves_them() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            // the clocks go back: 01:30 and, as the server does, 02:30 summer time
            (
                "Europe/Berlin",
                "30 1 * * *",
                "2027-10-30T00:00:00Z",
                &[
                    "2027-10-30T23:30:00Z",
                    "2027-10-31T00:30:00Z",
                    "2027-11-01T00:30:00Z",
                ],
            ),
            // the repeated hour fires once, in winter time
            (
                "Europe/Berlin",
                "30 2 * * *",
                "2027-10-30T00:00:00Z",
                &[
                    "2027-10-30T00:30:00Z",
                    "2027-10-31T01:30:00Z",
                    "2027-11-01T01:30:00Z",
                ],
            ),
            // half-hourly over the change
            (
                "Europe/Berlin",
                "0,30 * * * *",
                "2027-10-30T23:10:00Z",
                &[
                    "2027-10-30T23:30:00Z",
                    "2027-10-31T00:00:00Z",
                    "2027-10-31T01:30:00Z",
                    "2027-10-31T02:00:00Z",
                ],
            ),
            // from inside the second copy of the hour
            (
                "Europe/Berlin",
                "0,30 * * * *",
                "2027-10-31T01:10:00Z",
                &["2027-10-31T02:30:00Z", "2027-10-31T03:00:00Z"],
            ),
            // the clocks go forward: 02:30 does not exist
            (
                "Europe/Berlin",
                "30 2 * * *",
                "2027-03-27T00:00:00Z",
                &["2027-03-27T01:30:00Z", "2027-03-29T00:30:00Z"],
            ),
            // the repeated 01:30 fires twice
            (
                "America/Los_Angeles",
                "30 1 * * *",
                "2027-11-06T00:00:00Z",
                &[
                    "2027-11-06T08:30:00Z",
                    "2027-11-07T08:30:00Z",
                    "2027-11-07T09:30:00Z",
                    "2027-11-08T09:30:00Z",
                ],
            ),
            // 02:30 does not exist
            (
                "America/Los_Angeles",
                "30 2 * * *",
                "2027-03-13T00:00:00Z",
                &["2027-03-13T10:30:00Z", "2027-03-15T09:30:00Z"],
            ),
            // southern autumn
            (
                "Australia/Sydney",
                "30 1 * * *",
                "2027-04-03T00:00:00Z",
                &[
                    "2027-04-03T14:30:00Z",
                    "2027-04-03T15:30:00Z",
                    "2027-04-04T15:30:00Z",
                ],
            ),
            // southern spring
            (
                "Australia/Sydney",
                "30 2 * * *",
                "2027-10-02T00:00:00Z",
                &["2027-10-03T15:30:00Z", "2027-10-04T15:30:00Z"],
            ),
            // a change at midnight
            (
                "America/Santiago",
                "30 23 * * *",
                "2027-04-02T12:00:00Z",
                &[
                    "2027-04-03T02:30:00Z",
                    "2027-04-04T02:30:00Z",
                    "2027-04-04T03:30:00Z",
                    "2027-04-05T03:30:00Z",
                ],
            ),
            // the Sunday whose midnight does not exist is skipped
            (
                "America/Santiago",
                "30 1 * * 0",
                "2027-08-28T12:00:00Z",
                &["2027-08-29T05:30:00Z", "2027-09-12T04:30:00Z"],
            ),
            // a zone at UTC half the year
            (
                "Europe/London",
                "30 0 * * *",
                "2027-10-30T00:00:00Z",
                &[
                    "2027-10-30T23:30:00Z",
                    "2027-10-31T00:30:00Z",
                    "2027-11-01T00:30:00Z",
                ],
            ),
            // a half-hour change
            (
                "Australia/Lord_Howe",
                "15,45 1 * * *",
                "2027-04-03T00:00:00Z",
                &[
                    "2027-04-03T14:15:00Z",
                    "2027-04-03T15:15:00Z",
                    "2027-04-04T14:45:00Z",
                ],
            ),
        ];
        for (zone, cron, after, want) in cases {
            let body = format!("  cron: \"{cron}\"\n  timezone: {zone}\n");
            let got: Vec<String> = next_fire_times(&schedule(&body), at(after), want.len())
                .iter()
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .collect();
            assert_eq!(got, *want, "{cron} in {zone} after {after}");
        }
    }
}
