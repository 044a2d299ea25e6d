//! Humane durations such as `30s`, `5m` or `1h30m`.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty.
    #[error("the duration is empty")]
    Empty,
    /// A number was not followed by a unit.
    #[error("`{0}` has no unit (use ms, s, m, h or d)")]
    MissingUnit(String),
    /// The unit is not one we know.
    #[error("`{0}` is not a unit (use ms, s, m, h or d)")]
    UnknownUnit(String),
    /// Something other than a digit where a number should start.
    #[error("expected a number at `{0}`")]
    ExpectedNumber(String),
    /// A decimal point: only whole numbers of a unit are accepted.
    #[error("`{0}` has a fraction; write it in a smaller unit (1h30m, not 1.5h)")]
    Fraction(String),
    /// The total does not fit.
    #[error("the duration is too long")]
    Overflow,
}

/// Parses a duration made of one or more `<number><unit>` parts, with units
/// `ms`, `s`, `m`, `h` and `d` (24 hours), such as `90s` or `1h30m`.
/// Parts may be separated by spaces. Fractions are not accepted.
///
/// # Errors
///
/// A [`DurationError`] that says which part is wrong.
///
/// ```
/// use std::time::Duration;
/// use schedule_sync::duration::parse_duration;
///
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert!(parse_duration("30").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(DurationError::ExpectedNumber(rest.to_owned()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        rest = &rest[digits..];
        if rest.starts_with('.') {
            return Err(DurationError::Fraction(text.to_owned()));
        }
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        let unit_size = match unit {
            "" => return Err(DurationError::MissingUnit(text.to_owned())),
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        let part = u32::try_from(number)
            .ok()
            .and_then(|n| unit_size.checked_mul(n))
            .ok_or(DurationError::Overflow)?;
        total = total.checked_add(part).ok_or(DurationError::Overflow)?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it, largest units first.
///
/// ```
/// use std::time::Duration;
/// use schedule_sync::duration::format_duration;
///
/// assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
/// assert_eq!(format_duration(Duration::ZERO), "0s");
/// ```
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut millis = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_durations_add_up() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m 5s"), Ok(Duration::from_secs(5405)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn malformed_durations_say_what_is_wrong() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("30"),
            Err(DurationError::MissingUnit("30".into()))
        );
        assert_eq!(
            parse_duration("5mins"),
            Err(DurationError::UnknownUnit("mins".into()))
        );
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::ExpectedNumber("-5s".into()))
        );
        assert_eq!(
            parse_duration("1.5h"),
            Err(DurationError::Fraction("1.5h".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(parse_duration("4294967296s"), Err(DurationError::Overflow));
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["1h30m", "45s", "2d3h", "1m500ms", "10s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
