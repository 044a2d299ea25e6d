//! The next firing times of a schedule, for `plan` to show what a change
//! means. Computed the way Temporal does: calendar fields matched from the
//! year down in the schedule's time zone, intervals counted from the epoch
//! plus the phase. Jitter, start and end times are applied; pauses are not.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::cron::{Calendar, Range, Timing as CronTiming};
use crate::project::{Schedule, Timing};

/// How far ahead the search looks before it gives up (a calendar whose only
/// years are past, or February 30th).
const HORIZON_DAYS: i64 = 366 * 5;

fn matches(ranges: &[Range], value: u32) -> bool {
    ranges.is_empty() || ranges.iter().any(|r| r.contains(value))
}

/// The first time strictly after `after` that `calendar` names in `zone`.
fn next_calendar(calendar: &Calendar, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&zone);
    let mut day = local.date_naive();
    let last_day = day + chrono::Duration::days(HORIZON_DAYS);
    while day <= last_day {
        let day_matches = matches(&calendar.year, u32::try_from(day.year()).unwrap_or(0))
            && matches(&calendar.month, day.month())
            && matches(&calendar.day_of_month, day.day())
            && matches(&calendar.day_of_week, day.weekday().num_days_from_sunday());
        if day_matches && let Some(found) = first_in_day(calendar, zone, day, after) {
            return Some(found);
        }
        day = day.succ_opt()?;
    }
    None
}

fn first_in_day(
    calendar: &Calendar,
    zone: Tz,
    day: NaiveDate,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    for hour in (0..24).filter(|h| matches(&calendar.hour, *h)) {
        for minute in (0..60).filter(|m| matches(&calendar.minute, *m)) {
            for second in (0..60).filter(|s| matches(&calendar.second, *s)) {
                let naive = day.and_hms_opt(hour, minute, second)?;
                // A time skipped by a DST change does not fire; a repeated
                // one fires at its first occurrence.
                let Some(at) = zone.from_local_datetime(&naive).earliest() else {
                    continue;
                };
                let at = at.with_timezone(&Utc);
                if at > after {
                    return Some(at);
                }
            }
        }
    }
    None
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
    while out.len() < count {
        let candidates: Vec<DateTime<Utc>> = match &schedule.timing {
            Timing::Cron(entries) => entries
                .iter()
                .filter_map(|e| match &e.spec.timing {
                    CronTiming::Calendar(c) => next_calendar(c, zone, cursor),
                    CronTiming::Interval { every, phase } => next_interval(*every, *phase, cursor),
                })
                .collect(),
            Timing::Every { every, offset } => {
                next_interval(*every, *offset, cursor).into_iter().collect()
            }
        };
        let Some(next) = candidates.into_iter().min() else {
            break;
        };
        if schedule.end_at.is_some_and(|end| next > end) {
            break;
        }
        out.push(next);
        cursor = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::check_workflow_source;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

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
}
