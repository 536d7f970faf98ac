//! `parse_duration`: the durations the command line takes (`--timeout`,
//! `--visibility-timeout`, `--poll`), as humantime reads them or as a bare
//! number of seconds; shared by `cli` and `redis`, depending on neither.
//! The fuzz target `fuzz/fuzz_targets/cli_duration.rs` includes this file
//! by path, so it uses no other module of the crate.

use std::time::{Duration, TryFromFloatSecsError};

/// Why a duration was refused; each names the text it was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum DurationError {
    /// Digits and dots that are not one number (`1..2`).
    #[error("not a number of seconds: {text:?}")]
    NotSeconds {
        text: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    /// A number of seconds no `Duration` holds.
    #[error("{text:?}: {source}")]
    OutOfRange {
        text: String,
        #[source]
        source: TryFromFloatSecsError,
    },
    /// Numbers so large that the total could reach `u64::MAX` seconds.
    #[error("{text:?} is too long: each number of a duration must stay under {MAX_NUMBER} (of any unit)")]
    TooLong { text: String },
    /// Neither a bare number nor a humantime duration.
    #[error("not a duration: {text:?}: {source} (try 500ms, 90s, 2m)")]
    NotDuration {
        text: String,
        #[source]
        source: humantime::DurationError,
    },
}

/// A duration as humantime reads it (`500ms`, `5s`, `2m`, `1.5s`,
/// `1m 30s`), or a bare number of seconds (`2`, `0.5`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let bare = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if bare {
        let secs: f64 = text.parse().map_err(|source| DurationError::NotSeconds {
            text: text.to_owned(),
            source,
        })?;
        return Duration::try_from_secs_f64(secs).map_err(|source| DurationError::OutOfRange {
            text: text.to_owned(),
            source,
        });
    }
    if !below_overflow(text) {
        return Err(DurationError::TooLong {
            text: text.to_owned(),
        });
    }
    humantime::parse_duration(text).map_err(|source| DurationError::NotDuration {
        text: text.to_owned(),
        source,
    })
}

/// The largest number [`below_overflow`] lets through, whatever its unit.
const MAX_NUMBER: u64 = 300_000_000_000;

/// Whether `text`'s total stays far below `u64::MAX` seconds, taking each
/// number as years (humantime's largest unit, 31,557,600 s). humantime 2.4
/// panics (`Duration::new` overflowing) when components add up to exactly
/// `u64::MAX` seconds with their nanoseconds summing to one second (the
/// fuzz target `cli_duration` found `18446744073709551615s` followed by
/// `500ms 500ms`); below this bound its sum cannot get there. Any number
/// above [`MAX_NUMBER`], or a total above 10^19 s, is refused instead.
fn below_overflow(text: &str) -> bool {
    const YEAR: u128 = 31_557_600;
    let mut total: u128 = 0;
    for number in text
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|part| !part.is_empty())
    {
        let whole = number.split('.').next().unwrap_or("");
        if whole.len() > 12 {
            return false;
        }
        let n: u128 = whole.parse().unwrap_or(0);
        if n > u128::from(MAX_NUMBER) {
            return false;
        }
        total += (n + 1) * YEAR;
        if total >= 10_000_000_000_000_000_000 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
    }

    /// Found by the fuzz target `cli_duration`: humantime 2.4 panicked
    /// ("overflow in Duration::new") on seconds at `u64::MAX` whose
    /// milliseconds add up to one second.
    #[test]
    fn a_total_near_u64_max_seconds_is_refused_not_a_panic() {
        let crash = "18446744073709551615s01000ms1000ms0\u{1c}m0\u{1c}m";
        for text in [crash, "18446744073709551615s 500ms 500ms", "300000000001s"] {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.contains("too long"), "{text:?}: {err}");
        }
        // Long but honest durations still parse.
        assert_eq!(
            parse_duration("300000000000s"),
            Ok(Duration::from_secs(300_000_000_000))
        );
        assert_eq!(
            parse_duration("1000y").map(|d| d.as_secs()),
            Ok(31_557_600_000)
        );
    }

    #[test]
    fn nonsense_is_refused_with_the_text() {
        for bad in ["", "5 parsecs", "fast", "1..2", "-1s", "5x"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{:?}", bad.trim())), "{bad:?}: {err}");
        }
    }
}
