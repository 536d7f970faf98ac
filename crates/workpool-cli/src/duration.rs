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
    humantime::parse_duration(text).map_err(|source| DurationError::NotDuration {
        text: text.to_owned(),
        source,
    })
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

    #[test]
    fn nonsense_is_refused_with_the_text() {
        for bad in ["", "5 parsecs", "fast", "1..2", "-1s", "5x"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{:?}", bad.trim())), "{bad:?}: {err}");
        }
    }
}
