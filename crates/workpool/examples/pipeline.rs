//! A parse -> transform -> write pipeline over a million lines, on two
//! pools, in order, with memory bounded end to end: `Pool::map` over a
//! `Pool::map`.
//!
//! - Stage 1 (`parse`, 2 workers) parses each line into a record.
//! - Stage 2 (`transform`, 2 workers) scores each record.
//! - The caller writes the results in input order (here: checks and sums
//!   them).
//!
//! Each stage pulls its inputs lazily from the one before, as its window
//! has room: no stage has a thread of its own, both run at once, and at
//! no point does the pipeline hold more than the two windows. The peak
//! RSS printed at the end stays a few MB whatever `LINES` is.
//!
//! Run: `cargo run --release -p workpool --example pipeline`.

use std::time::Instant;
use workpool::Pool;

const LINES: u64 = 1_000_000;

/// A parsed line.
#[derive(Debug)]
struct Record {
    id: u64,
    amount: u64,
}

fn parse(line: String) -> Record {
    let (id, amount) = line.split_once(',').expect("id,amount");
    Record {
        id: id.parse().expect("a number"),
        amount: amount.parse().expect("a number"),
    }
}

fn transform(record: Record) -> (u64, u64) {
    // A little work per record: a checksum of its fields.
    let score = (0..16).fold(record.amount, |acc, i| acc.rotate_left(5) ^ (record.id + i));
    (record.id, score)
}

/// The peak resident set of this process, in MB (Linux), if known.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let parsers = Pool::builder().capacity(2).name("parse").build()?;
    let transformers = Pool::builder().capacity(2).name("transform").build()?;
    // The input: generated lazily, as a file read line by line would be.
    let lines = (0..LINES).map(|id| format!("{id},{}", id * 3 % 1_000));

    let start = Instant::now();
    let parsed = parsers.map(lines, parse);
    // A parse error would end the pipeline here; none is expected.
    let records = parsed.map(|record| record.expect("parse panicked"));
    let scored = transformers.map(records, transform);

    let mut expected_id = 0;
    let mut checksum = 0u64;
    for result in scored {
        let (id, score) = result?;
        assert_eq!(id, expected_id, "written out of order");
        expected_id += 1;
        checksum = checksum.wrapping_add(score);
    }
    let elapsed = start.elapsed();
    assert_eq!(expected_id, LINES);
    println!(
        "{LINES} lines parsed on one pool and transformed on another, in order: {elapsed:.2?} \
         ({:.1} M lines/s), checksum {checksum:x}",
        LINES as f64 / elapsed.as_secs_f64() / 1e6
    );
    if let Some(mb) = peak_rss_mb() {
        println!("peak RSS {mb:.1} MB: the windows, not the input");
    }
    Ok(())
}
