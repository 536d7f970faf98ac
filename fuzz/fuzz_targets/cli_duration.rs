//! The CLI's `parse_duration` (`--timeout`, `--visibility-timeout`,
//! `--poll`), its file included as is (the CLI is a binary crate): no
//! input panics; a bare number of seconds reads as that many seconds, and
//! every refusal names the text it was given. (It found humantime 2.4's
//! panic on a total of `u64::MAX` seconds: `duration::below_overflow`.)

#![no_main]

#[path = "../../crates/workpool-cli/src/duration.rs"]
mod duration;

use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    // A command line's argument is a `String` by the time clap hands it over.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match duration::parse_duration(text) {
        Ok(d) => {
            let trimmed = text.trim();
            if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                let secs: f64 = trimmed.parse().expect("a bare number was read");
                assert_eq!(Duration::try_from_secs_f64(secs), Ok(d));
            }
        }
        Err(e) => {
            let message = e.to_string();
            let named = format!("{:?}", text.trim());
            assert!(message.contains(&named), "{message} does not name {named}");
            // A total too long to add up safely is refused by the parser
            // itself, with no cause below it; every other refusal keeps one.
            let ours = matches!(e, duration::DurationError::TooLong { .. });
            assert!(
                ours || std::error::Error::source(&e).is_some(),
                "{message}: no cause kept"
            );
        }
    }
});
