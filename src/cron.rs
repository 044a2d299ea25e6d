//! Temporal's cron syntax: parsing and checking cron strings the way the
//! Temporal server reads them, so that `validate` refuses exactly what the
//! server would refuse, and says where.
//!
//! Accepted forms:
//!
//! - 5 fields: minute hour day-of-month month day-of-week;
//! - 6 fields: the same, then year;
//! - 7 fields: second, the five, then year;
//! - `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`;
//! - `@every 1h` and `@every 1h/15m` (an interval with a phase);
//! - an optional `CRON_TZ=<zone>` (or `TZ=<zone>`) prefix and a trailing `# comment`.
//!
//! Each field is `*`, a value, `a-b`, `a-b/step`, `a/step` or a comma-separated
//! list of those. Months take names (at least three letters, `jan`), days of the
//! week take names (at least two letters, `mo`) and `7` for Sunday. As in
//! Temporal, day-of-month and day-of-week must both match (AND, not cron's OR).

use std::time::Duration;

use crate::duration::parse_duration;

/// The earliest year a calendar may name (Temporal's bound).
pub const MIN_YEAR: u32 = 2000;
/// The latest year a calendar may name (Temporal's bound).
pub const MAX_YEAR: u32 = 2100;
/// The longest comment Temporal keeps on a calendar.
pub const MAX_COMMENT_LEN: usize = 200;

/// A parsed cron string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSpec {
    /// When it fires.
    pub timing: Timing,
    /// The zone of a `CRON_TZ=` or `TZ=` prefix.
    pub timezone: Option<String>,
    /// The text after `#`, trimmed.
    pub comment: Option<String>,
}

/// The times a cron string names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Calendar fields, as Temporal's structured calendar.
    Calendar(Calendar),
    /// `@every`: a fixed interval, shifted by a phase.
    Interval {
        /// Time between firings, at least one second.
        every: Duration,
        /// Shift from the epoch, below `every`.
        phase: Duration,
    },
}

/// One set of calendar fields; a time matches when every field does.
/// An empty `year` means every year.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Calendar {
    /// 0-59.
    pub second: Vec<Range>,
    /// 0-59.
    pub minute: Vec<Range>,
    /// 0-23.
    pub hour: Vec<Range>,
    /// 1-31.
    pub day_of_month: Vec<Range>,
    /// 1-12.
    pub month: Vec<Range>,
    /// 0-6, Sunday is 0.
    pub day_of_week: Vec<Range>,
    /// 2000-2100; empty for every year.
    pub year: Vec<Range>,
}

/// An inclusive range with a step, as in Temporal's `Range` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First value.
    pub start: u32,
    /// Last value, inclusive; equal to `start` for a single value.
    pub end: u32,
    /// Distance between values, at least 1.
    pub step: u32,
}

impl Range {
    fn single(value: u32) -> Self {
        Range {
            start: value,
            end: value,
            step: 1,
        }
    }

    /// Whether `value` is one of the range's values.
    pub fn contains(&self, value: u32) -> bool {
        value >= self.start && value <= self.end && (value - self.start).is_multiple_of(self.step)
    }
}

/// Why a cron string was refused, and where in it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    /// What is wrong.
    pub message: String,
    /// Offset in characters, from the start of the cron string, of the part at fault.
    pub offset: usize,
}

impl CronError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        CronError {
            message: message.into(),
            offset,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    None,
    Months,
    Weekdays,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: Names,
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: Names::None,
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: Names::None,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: Names::None,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: Names::None,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: Names::Months,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: Names::Weekdays,
};
const YEAR: Field = Field {
    name: "year",
    min: MIN_YEAR,
    max: MAX_YEAR,
    names: Names::None,
};

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// A piece of the cron string with its offset in characters.
#[derive(Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    offset: usize,
}

/// Splits on whitespace, keeping each token's character offset from `base`.
fn tokens(text: &str, base: usize) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (chars, (bytes, c)) in text.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((bytes, chars)),
            (true, Some((b, ch))) => {
                out.push(Token {
                    text: &text[b..bytes],
                    offset: base + ch,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some((b, ch)) = start {
        out.push(Token {
            text: &text[b..],
            offset: base + ch,
        });
    }
    out
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// Parses one cron string.
///
/// # Errors
///
/// A [`CronError`] with the message and the character offset of the part at fault.
///
/// ```
/// use schedule_sync::cron::{parse, Timing};
///
/// let spec = parse("CRON_TZ=Europe/Berlin 0 2 * * mon-fri # weekday report").unwrap();
/// assert_eq!(spec.timezone.as_deref(), Some("Europe/Berlin"));
/// assert!(matches!(spec.timing, Timing::Calendar(_)));
///
/// let error = parse("0 25 * * *").unwrap_err();
/// assert_eq!(error.offset, 2);
/// ```
pub fn parse(text: &str) -> Result<CronSpec, CronError> {
    let leading = char_len(text) - char_len(text.trim_start());
    let mut rest = text.trim_start();
    let mut offset = leading;

    let mut timezone = None;
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(after) = rest.strip_prefix(prefix) {
            let zone_len = after.find(char::is_whitespace).unwrap_or(after.len());
            let zone = &after[..zone_len];
            if zone.is_empty() {
                return Err(CronError::at(
                    offset,
                    format!("`{prefix}` names no time zone"),
                ));
            }
            if after[zone_len..].trim().is_empty() {
                return Err(CronError::at(
                    offset,
                    "a time zone prefix with no cron fields after it",
                ));
            }
            timezone = Some(zone.to_owned());
            offset += char_len(prefix) + char_len(zone);
            rest = &after[zone_len..];
            break;
        }
    }

    let (body, comment) = match rest.split_once('#') {
        Some((body, comment)) => (body, Some(comment.trim())),
        None => (rest, None),
    };
    if let Some(comment) = comment
        && char_len(comment) > MAX_COMMENT_LEN
    {
        return Err(CronError::at(
            offset + char_len(body),
            format!("the comment is longer than Temporal's {MAX_COMMENT_LEN} characters"),
        ));
    }
    let comment = comment.filter(|c| !c.is_empty()).map(str::to_owned);
    let fields = tokens(body, offset);
    let end_offset = offset + char_len(body.trim_end());

    let Some(first) = fields.first() else {
        return Err(CronError::at(end_offset, "the cron string has no fields"));
    };
    if first.text.starts_with('@') {
        let timing = parse_macro(&fields)?;
        return Ok(CronSpec {
            timing,
            timezone,
            comment,
        });
    }
    let calendar = parse_fields(&fields, end_offset)?;
    Ok(CronSpec {
        timing: Timing::Calendar(calendar),
        timezone,
        comment,
    })
}

/// One field of a calendar, for calendar entries written as fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarField {
    /// 0-59.
    Second,
    /// 0-59.
    Minute,
    /// 0-23.
    Hour,
    /// 1-31.
    DayOfMonth,
    /// 1-12, or names (`jan`).
    Month,
    /// 0-6 with 7 for Sunday too, or names (`mon`).
    DayOfWeek,
    /// 2000-2100.
    Year,
}

impl CalendarField {
    /// Every field, in the order Temporal's structured calendar lists them.
    pub const ALL: [CalendarField; 7] = [
        CalendarField::Second,
        CalendarField::Minute,
        CalendarField::Hour,
        CalendarField::DayOfMonth,
        CalendarField::Month,
        CalendarField::DayOfWeek,
        CalendarField::Year,
    ];

    /// The key that names the field in a calendar entry.
    pub fn key(self) -> &'static str {
        match self {
            CalendarField::Second => "second",
            CalendarField::Minute => "minute",
            CalendarField::Hour => "hour",
            CalendarField::DayOfMonth => "day_of_month",
            CalendarField::Month => "month",
            CalendarField::DayOfWeek => "day_of_week",
            CalendarField::Year => "year",
        }
    }

    fn field(self) -> &'static Field {
        match self {
            CalendarField::Second => &SECOND,
            CalendarField::Minute => &MINUTE,
            CalendarField::Hour => &HOUR,
            CalendarField::DayOfMonth => &DAY_OF_MONTH,
            CalendarField::Month => &MONTH,
            CalendarField::DayOfWeek => &DAY_OF_WEEK,
            CalendarField::Year => &YEAR,
        }
    }

    /// The lowest and highest value the field takes (7 for Sunday aside).
    pub fn bounds(self) -> (u32, u32) {
        match self {
            CalendarField::DayOfWeek => (0, 6),
            other => (other.field().min, other.field().max),
        }
    }

    /// The slot of the field in `calendar`.
    pub fn of(self, calendar: &mut Calendar) -> &mut Vec<Range> {
        match self {
            CalendarField::Second => &mut calendar.second,
            CalendarField::Minute => &mut calendar.minute,
            CalendarField::Hour => &mut calendar.hour,
            CalendarField::DayOfMonth => &mut calendar.day_of_month,
            CalendarField::Month => &mut calendar.month,
            CalendarField::DayOfWeek => &mut calendar.day_of_week,
            CalendarField::Year => &mut calendar.year,
        }
    }
}

impl Calendar {
    /// The calendar of an entry that names no field: midnight every day, the
    /// defaults Temporal documents and its SDKs fill in (the server itself
    /// matches nothing with an empty field but the year), written out.
    pub fn midnight() -> Self {
        let all = |field: CalendarField| {
            let (start, end) = field.bounds();
            vec![Range {
                start,
                end,
                step: 1,
            }]
        };
        Calendar {
            second: vec![Range::single(0)],
            minute: vec![Range::single(0)],
            hour: vec![Range::single(0)],
            day_of_month: all(CalendarField::DayOfMonth),
            month: all(CalendarField::Month),
            day_of_week: all(CalendarField::DayOfWeek),
            year: Vec::new(),
        }
    }
}

/// The values of one calendar field written as a cron field: `*`, `9`,
/// `9-17`, `*/15`, `9-17/2`, names (`mon-fri`, `jan`), or a comma-separated
/// list of those. `*` in the year is every year (no ranges).
///
/// # Errors
///
/// A [`CronError`] with the offset in `text` of the part at fault.
///
/// ```
/// use schedule_sync::cron::{CalendarField, Range, parse_calendar_field};
/// let ranges = parse_calendar_field(CalendarField::DayOfWeek, "mon-fri").unwrap();
/// assert_eq!(ranges, [Range { start: 1, end: 5, step: 1 }]);
/// assert!(parse_calendar_field(CalendarField::Hour, "24").is_err());
/// ```
pub fn parse_calendar_field(field: CalendarField, text: &str) -> Result<Vec<Range>, CronError> {
    if text.trim().is_empty() {
        return Err(CronError::at(
            0,
            format!("the {} field is empty", field.key()),
        ));
    }
    if let Some(token) = tokens(text, 0).get(1) {
        return Err(CronError::at(
            token.offset,
            format!("the {} field holds white space", field.key()),
        ));
    }
    let token = tokens(text, 0)[0];
    parse_field(field.field(), token)
}

fn parse_macro(fields: &[Token<'_>]) -> Result<Timing, CronError> {
    let name = fields[0];
    if name.text == "@every" {
        return parse_every(fields);
    }
    let expansion = match name.text {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => {
            return Err(CronError::at(
                name.offset,
                format!(
                    "`{other}` is not a cron macro Temporal knows (@yearly, @annually, @monthly, \
                     @weekly, @daily, @midnight, @hourly, @every)"
                ),
            ));
        }
    };
    if let Some(extra) = fields.get(1) {
        return Err(CronError::at(
            extra.offset,
            format!("`{}` takes nothing after it", name.text),
        ));
    }
    let expanded = tokens(expansion, name.offset);
    parse_fields(&expanded, name.offset).map(Timing::Calendar)
}

fn parse_every(fields: &[Token<'_>]) -> Result<Timing, CronError> {
    let Some(spec) = fields.get(1) else {
        return Err(CronError::at(
            fields[0].offset,
            "`@every` needs an interval, such as `@every 15m`",
        ));
    };
    if let Some(extra) = fields.get(2) {
        return Err(CronError::at(
            extra.offset,
            "`@every` takes one interval, optionally `/phase`",
        ));
    }
    let (every_text, phase_text) = match spec.text.split_once('/') {
        Some((every, phase)) => (every, Some(phase)),
        None => (spec.text, None),
    };
    let every = parse_duration(every_text)
        .map_err(|e| CronError::at(spec.offset, format!("bad interval: {e}")))?;
    if every < Duration::from_secs(1) {
        return Err(CronError::at(
            spec.offset,
            "the interval must be at least 1s",
        ));
    }
    let phase = match phase_text {
        None => Duration::ZERO,
        Some(text) => {
            let phase_offset = spec.offset + char_len(every_text) + 1;
            let phase = parse_duration(text)
                .map_err(|e| CronError::at(phase_offset, format!("bad phase: {e}")))?;
            if phase >= every {
                return Err(CronError::at(
                    phase_offset,
                    "the phase must be shorter than the interval",
                ));
            }
            phase
        }
    };
    Ok(Timing::Interval { every, phase })
}

fn parse_fields(fields: &[Token<'_>], end_offset: usize) -> Result<Calendar, CronError> {
    let layout: &[&Field] = match fields.len() {
        5 => &[&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK],
        6 => &[&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK, &YEAR],
        7 => &[
            &SECOND,
            &MINUTE,
            &HOUR,
            &DAY_OF_MONTH,
            &MONTH,
            &DAY_OF_WEEK,
            &YEAR,
        ],
        n => {
            let offset = fields.get(7).map_or(end_offset, |t| t.offset);
            return Err(CronError::at(
                offset,
                format!(
                    "a cron string has 5, 6 or 7 fields (minute hour day-of-month month \
                     day-of-week [year], or second first), not {n}"
                ),
            ));
        }
    };
    let mut calendar = Calendar {
        second: vec![Range::single(0)],
        year: Vec::new(),
        ..Calendar::default()
    };
    for (field, token) in layout.iter().zip(fields) {
        let ranges = parse_field(field, *token)?;
        let slot = match field.name {
            "second" => &mut calendar.second,
            "minute" => &mut calendar.minute,
            "hour" => &mut calendar.hour,
            "day-of-month" => &mut calendar.day_of_month,
            "month" => &mut calendar.month,
            "day-of-week" => &mut calendar.day_of_week,
            _ => &mut calendar.year,
        };
        *slot = ranges;
    }
    Ok(calendar)
}

fn parse_field(field: &Field, token: Token<'_>) -> Result<Vec<Range>, CronError> {
    if field.name == "year" && token.text == "*" {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    let mut offset = token.offset;
    for part in token.text.split(',') {
        parse_part(field, part, offset, &mut ranges)?;
        offset += char_len(part) + 1;
    }
    Ok(ranges)
}

fn parse_part(
    field: &Field,
    part: &str,
    offset: usize,
    out: &mut Vec<Range>,
) -> Result<(), CronError> {
    let name = field.name;
    if part.is_empty() {
        return Err(CronError::at(
            offset,
            format!("an empty entry in the {name} field"),
        ));
    }
    let (range_text, step) = match part.split_once('/') {
        None => (part, None),
        Some((range_text, step_text)) => {
            let step_offset = offset + char_len(range_text) + 1;
            if step_text.contains('/') {
                return Err(CronError::at(
                    offset,
                    format!("the {name} field has too many `/`"),
                ));
            }
            let step = step_text
                .parse::<u32>()
                .ok()
                .filter(|s| *s >= 1 && step_text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    CronError::at(step_offset, format!("the step `{step_text}` in the {name} field is not a whole number of 1 or more"))
                })?;
            (range_text, Some(step))
        }
    };
    let (mut start, mut end) = if range_text == "*" {
        (field.min, field.max)
    } else if let Some((low, high)) = range_text.split_once('-') {
        if high.contains('-') {
            return Err(CronError::at(
                offset,
                format!("the {name} field has too many `-`"),
            ));
        }
        let start = parse_value(field, low, offset)?;
        let high_offset = offset + char_len(low) + 1;
        let end = parse_value(field, high, high_offset)?;
        if end < start {
            return Err(CronError::at(
                high_offset,
                format!("the {name} range `{range_text}` ends before it starts"),
            ));
        }
        (start, end)
    } else {
        let value = parse_value(field, range_text, offset)?;
        // `a/step` runs from a to the end of the field, as in Temporal.
        (value, if step.is_some() { field.max } else { value })
    };
    let step = step.unwrap_or(1);
    if field.names == Names::Weekdays && end == 7 {
        // 7 is Sunday, which Temporal stores as 0: when the range takes 7
        // and does not already start at 0, Sunday is added as 0.
        if (7 - start).is_multiple_of(step) && start > 0 {
            out.push(Range::single(0));
            if start == 7 {
                return Ok(());
            }
        }
        end = 6;
    }
    if start > end {
        start = end;
    }
    out.push(Range { start, end, step });
    Ok(())
}

fn parse_value(field: &Field, text: &str, offset: usize) -> Result<u32, CronError> {
    let lower = text.to_ascii_lowercase();
    let named = match field.names {
        Names::Months if lower.len() >= 3 => MONTHS
            .iter()
            .position(|m| m.starts_with(&lower))
            .map(|i| i as u32 + 1),
        Names::Weekdays if lower.len() >= 2 => WEEKDAYS
            .iter()
            .position(|d| d.starts_with(&lower))
            .map(|i| i as u32),
        _ => None,
    };
    if let Some(value) = named {
        return Ok(value);
    }
    let bounds = format!("{}-{}", field.min, field.max);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        let hint = match (text, field.names) {
            ("?", _) => " (Temporal has no `?`; use `*`)",
            (t, _) if t.ends_with(['L', 'W']) || t.contains('#') => {
                " (Temporal has no L, W or # modifiers)"
            }
            (_, Names::Months) => " or a month name such as `jan`",
            (_, Names::Weekdays) => " or a weekday name such as `mon`",
            _ => "",
        };
        return Err(CronError::at(
            offset,
            format!(
                "`{text}` in the {} field is not a number in {bounds}{hint}",
                field.name
            ),
        ));
    }
    match text.parse::<u32>() {
        Ok(value) if (field.min..=field.max).contains(&value) => Ok(value),
        _ => Err(CronError::at(
            offset,
            format!(
                "{text} is out of range for the {} field ({bounds})",
                field.name
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar(text: &str) -> Calendar {
        match parse(text).unwrap().timing {
            Timing::Calendar(c) => c,
            Timing::Interval { .. } => panic!("{text} is an interval"),
        }
    }

    fn r(start: u32, end: u32, step: u32) -> Range {
        Range { start, end, step }
    }

    #[test]
    fn five_fields_are_minute_to_day_of_week() {
        let c = calendar("30 2 1-15 * mon-fri");
        assert_eq!(c.second, vec![r(0, 0, 1)]);
        assert_eq!(c.minute, vec![r(30, 30, 1)]);
        assert_eq!(c.hour, vec![r(2, 2, 1)]);
        assert_eq!(c.day_of_month, vec![r(1, 15, 1)]);
        assert_eq!(c.month, vec![r(1, 12, 1)]);
        assert_eq!(c.day_of_week, vec![r(1, 5, 1)]);
        assert!(c.year.is_empty());
    }

    #[test]
    fn six_fields_end_with_a_year_and_seven_start_with_a_second() {
        let six = calendar("0 12 * * * 2030");
        assert_eq!(six.year, vec![r(2030, 2030, 1)]);
        let seven = calendar("15 0 12 * * * 2030-2032");
        assert_eq!(seven.second, vec![r(15, 15, 1)]);
        assert_eq!(seven.year, vec![r(2030, 2032, 1)]);
    }

    #[test]
    fn steps_lists_and_names_are_read_like_temporal() {
        let c = calendar("*/15 3/5 1,15 jan-mar,jul sun,7");
        assert_eq!(c.minute, vec![r(0, 59, 15)]);
        assert_eq!(c.hour, vec![r(3, 23, 5)]);
        assert_eq!(c.day_of_month, vec![r(1, 1, 1), r(15, 15, 1)]);
        assert_eq!(c.month, vec![r(1, 3, 1), r(7, 7, 1)]);
        assert_eq!(c.day_of_week, vec![r(0, 0, 1), r(0, 0, 1)]);
    }

    #[test]
    fn sunday_as_seven_folds_into_zero() {
        assert_eq!(
            calendar("0 0 * * 5-7").day_of_week,
            vec![r(0, 0, 1), r(5, 6, 1)]
        );
        assert_eq!(
            calendar("0 0 * * 1-7/3").day_of_week,
            vec![r(0, 0, 1), r(1, 6, 3)]
        );
        assert_eq!(calendar("0 0 * * 3-7/3").day_of_week, vec![r(3, 6, 3)]);
    }

    #[test]
    fn macros_expand_to_calendars() {
        assert_eq!(calendar("@daily"), calendar("0 0 * * *"));
        assert_eq!(calendar("@midnight"), calendar("0 0 * * *"));
        assert_eq!(calendar("@weekly"), calendar("0 0 * * 0"));
        assert_eq!(calendar("@yearly"), calendar("@annually"));
        assert_eq!(calendar("@hourly"), calendar("0 * * * *"));
        assert_eq!(calendar("@monthly"), calendar("0 0 1 * *"));
    }

    #[test]
    fn every_takes_an_interval_and_a_phase() {
        assert_eq!(
            parse("@every 1h/15m").unwrap().timing,
            Timing::Interval {
                every: Duration::from_secs(3600),
                phase: Duration::from_secs(900)
            }
        );
        assert_eq!(parse("@every 1h/1h").unwrap_err().offset, 10);
        assert!(parse("@every 500ms").is_err());
        assert!(parse("@every").is_err());
    }

    #[test]
    fn prefix_and_comment_are_split_off() {
        let spec = parse("  CRON_TZ=America/New_York 0 9 * * 1 # Monday standup").unwrap();
        assert_eq!(spec.timezone.as_deref(), Some("America/New_York"));
        assert_eq!(spec.comment.as_deref(), Some("Monday standup"));
        assert_eq!(
            parse("TZ=UTC @daily").unwrap().timezone.as_deref(),
            Some("UTC")
        );
        assert!(parse("CRON_TZ=UTC").is_err());
    }

    #[test]
    fn errors_point_at_the_faulty_part() {
        let cases = [
            ("0 25 * * *", 2, "out of range for the hour"),
            ("0 0 * * * 1999", 10, "out of range for the year"),
            ("0 0 ? * *", 4, "no `?`"),
            ("0 0 L * *", 4, "no L, W"),
            ("*/0 * * * *", 2, "step `0`"),
            ("0 0 10-5 * *", 7, "ends before it starts"),
            ("0 0 * foo *", 6, "month name"),
            ("0 0 * * t", 8, "weekday name"),
            ("0 0 * *", 7, "5, 6 or 7 fields"),
            ("1 2 3 4 5 2030 7 8", 17, "5, 6 or 7 fields"),
            ("@reboot", 0, "not a cron macro"),
            ("@daily 5", 7, "takes nothing"),
            ("0 0 1,,2 * *", 6, "empty entry"),
            ("0 0 1-2-3 * *", 4, "too many `-`"),
            ("CRON_TZ=UTC 0 77 * * *", 14, "hour"),
            ("", 0, "no fields"),
        ];
        for (text, offset, needle) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.message.contains(needle), "{text}: {}", error.message);
            assert_eq!(error.offset, offset, "{text}: {}", error.message);
        }
    }

    #[test]
    fn a_long_comment_is_refused() {
        let text = format!("0 0 * * * # {}", "x".repeat(201));
        assert!(parse(&text).unwrap_err().message.contains("comment"));
    }
}
