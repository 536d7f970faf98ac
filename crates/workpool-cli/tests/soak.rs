//! Runs the built `workpool soak` end to end for a few seconds.

use std::collections::HashMap;
use std::process::Command;

/// The fields of the once-a-second line, in order.
const FIELDS: [&str; 15] = [
    "elapsed",
    "accepted",
    "ran",
    "cancelled",
    "refused",
    "lost",
    "duplicated",
    "threads",
    "rss_mb",
    "pool_submitted",
    "pool_completed",
    "multi_submitted",
    "multi_completed",
    "cross_submitted",
    "cross_completed",
];

/// `key=value` pairs of a line, values as numbers (`elapsed` ends in `s`).
fn fields(line: &str) -> (Vec<&str>, HashMap<&str, f64>) {
    let mut keys = Vec::new();
    let mut values = HashMap::new();
    for pair in line.split_whitespace().skip(1) {
        let (key, value) = pair.split_once('=').expect("key=value");
        let value = value.trim_end_matches('s');
        keys.push(key);
        values.insert(key, value.parse().expect("a number"));
    }
    (keys, values)
}

#[test]
fn a_short_soak_passes_and_prints_every_field() {
    let out = Command::new(env!("CARGO_BIN_EXE_workpool"))
        .args(["soak", "--secs", "3", "--threads", "2"])
        .output()
        .expect("run workpool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ticks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("soak elapsed="))
        .collect();
    assert!(ticks.len() >= 3, "{stdout}");
    for line in &ticks {
        let (keys, values) = fields(line);
        assert_eq!(keys, FIELDS, "{line}");
        assert_eq!(values["lost"], 0.0, "{line}");
        assert_eq!(values["duplicated"], 0.0, "{line}");
        assert!(values["threads"] >= 1.0 && values["rss_mb"] > 0.0, "{line}");
    }
    let (_, last) = fields(ticks[ticks.len() - 1]);
    assert!(last["elapsed"] >= 3.0, "{stdout}");
    assert!(last["accepted"] > 0.0 && last["ran"] > 0.0, "{stdout}");
    assert!(last["pool_completed"] > 0.0, "{stdout}");
    assert!(last["multi_completed"] > 0.0, "{stdout}");
    assert!(last["cross_completed"] > 0.0, "{stdout}");

    let done = stdout
        .lines()
        .find(|l| l.starts_with("soak: done after"))
        .expect("a final line");
    assert!(done.contains(" lost=0 duplicated=0 "), "{done}");
    assert!(
        done.contains("refused_ran=0 cancelled_ran=0 mismatched=0"),
        "{done}"
    );

    // The operations where features meet ran, each kind of them.
    let seams = stdout
        .lines()
        .find(|l| l.starts_with("soak: seams: "))
        .expect("a seams line");
    for kind in [
        "scopes ",
        "parallel_execute ",
        "cross-pool joins ",
        "large results ",
    ] {
        let count = seams
            .split(kind)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok());
        assert!(count.is_some_and(|n| n > 0), "{kind}: {seams}");
    }

    // Back to the threads of before the pools.
    let threads = stdout
        .lines()
        .find(|l| l.starts_with("soak: threads:"))
        .expect("a threads line");
    let counts: Vec<&str> = threads
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(counts.len(), 3, "{threads}");
    assert_eq!(counts[0], counts[2], "{threads}");
    assert!(stdout.contains("soak: rss: "), "{stdout}");
    assert!(stdout.contains("bound "), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("soak: ok"), "{stdout}");
}

#[test]
fn soak_help_states_the_bounds() {
    let out = Command::new(env!("CARGO_BIN_EXE_workpool"))
        .args(["soak", "--help"])
        .output()
        .expect("run workpool");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for needle in ["--secs", "--threads", "--rss-slack-mb", "--seed", "warm-up"] {
        assert!(help.contains(needle), "{needle} missing: {help}");
    }
}
