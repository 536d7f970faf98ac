//! Runs the built `workpool` binary end to end on a small bench.

use std::process::Command;

/// The fields that docs/bench.md's `--json` table documents: every backticked
/// name in the first column of its rows. The output must carry exactly these.
fn documented_fields() -> Vec<String> {
    let readme = include_str!("../../../docs/bench.md");
    let section = readme
        .split("### `--json`")
        .nth(1)
        .expect("docs/bench.md has a `--json` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let fields: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
        .collect();
    assert!(fields.len() > 20, "too few documented fields: {fields:?}");
    fields
}

#[test]
fn quick_empty_bench_writes_one_json_line_per_pair() {
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-{}.jsonl", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_workpool"))
        .args(["bench", "--quick", "--runs", "1", "--workload", "empty"])
        .args(["--impl", "workpool,crossbeam", "--tasks", "20000", "--json"])
        .arg(&json)
        .output()
        .expect("run workpool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("empty: 20,000 empty tasks"), "{stdout}");
    assert!(stdout.contains("--quick"), "{stdout}");
    assert!(stdout.contains("machine: "), "{stdout}");

    let text = std::fs::read_to_string(&json).expect("the JSON file");
    std::fs::remove_file(&json).ok();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let fields = documented_fields();
    for (line, name) in lines.iter().zip(["workpool", "crossbeam"]) {
        let obj = line.as_object().expect("an object");
        for field in &fields {
            assert!(obj.contains_key(field), "{field} missing: {line}");
        }
        assert_eq!(obj.len(), fields.len(), "undocumented fields: {line}");
        assert_eq!(line["impl"], name);
        assert_eq!(line["workload"], "empty");
        assert_eq!(line["status"], "ok", "{line}");
        assert_eq!(line["quick"], true);
        assert_eq!(line["runs"], 1);
        assert_eq!(line["tasks"], 20_000);
        assert_eq!(line["completed"], 20_000);
        assert_eq!(line["metric"], "tasks_per_sec");
        assert_eq!(line["samples"].as_array().map(Vec::len), Some(1));
        assert!(line["value"].as_f64().is_some_and(|v| v > 0.0), "{line}");
        assert!(
            line["peak_threads"].as_u64().is_some_and(|t| t >= 2),
            "{line}"
        );
        assert!(
            line["peak_rss_mb"].as_f64().is_some_and(|m| m > 0.0),
            "{line}"
        );
        assert!(line["p99_us"].is_null() && line["idle_cpu_ms"].is_null());
        assert_eq!(line["hogs"], 0);
    }
    assert_eq!(lines[0]["ratio"], 1.0);
}

#[test]
fn cold_with_hogs_writes_a_row_per_implementation() {
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-cold-{}.jsonl", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_workpool"))
        .args(["bench", "--quick", "--runs", "1", "--workload", "cold"])
        .args([
            "--impl",
            "workpool,crossbeam",
            "--tasks",
            "1000",
            "--cap",
            "2",
        ])
        .args(["--hogs", "2", "--json"])
        .arg(&json)
        .output()
        .expect("run workpool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2 busy-looping hog threads in each"),
        "{stdout}"
    );
    let title = stdout
        .lines()
        .find(|l| l.starts_with("cold: "))
        .unwrap_or_else(|| panic!("no cold table: {stdout}"));
    assert!(title.contains("10 rounds of 100 empty tasks"), "{title}");
    assert!(title.ends_with("(with 2 hog threads)"), "{title}");
    for name in ["workpool", "crossbeam"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name) && !l.contains("failed")),
            "no {name} row: {stdout}"
        );
    }

    let text = std::fs::read_to_string(&json).expect("the JSON file");
    std::fs::remove_file(&json).ok();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let fields = documented_fields();
    for (line, name) in lines.iter().zip(["workpool", "crossbeam"]) {
        let obj = line.as_object().expect("an object");
        assert_eq!(obj.len(), fields.len(), "undocumented fields: {line}");
        assert_eq!(line["impl"], name);
        assert_eq!(line["workload"], "cold");
        assert_eq!(line["status"], "ok", "{line}");
        assert_eq!(line["hogs"], 2);
        assert_eq!(
            (line["tasks"].as_u64(), line["completed"].as_u64()),
            (Some(1000), Some(1000))
        );
        assert_eq!(line["metric"], "p99_us");
        assert_eq!(line["higher_is_better"], false);
        let (p50, p99) = (line["p50_us"].as_f64(), line["p99_us"].as_f64());
        assert!(
            p50.zip(p99).is_some_and(|(a, b)| 0.0 < a && a <= b),
            "{line}"
        );
        assert_eq!(line["value"].as_f64(), p99);
        assert!(line["due_p99_us"].is_null() && line["idle_cpu_ms"].is_null());
    }
    assert_eq!(lines[0]["ratio"], 1.0);
    // The main thread and the 2 workers: the 2 hogs are not counted.
    assert_eq!(lines[1]["peak_threads"], 3, "{}", lines[1]);
}

#[test]
fn join_sums_results_and_skips_pools_without_them() {
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-join-{}.jsonl", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_workpool"))
        .args(["bench", "--quick", "--runs", "1", "--workload", "join"])
        .args(["--impl", "workpool,threadpool,rayon", "--tasks", "5000"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run workpool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("join: 5,000 tasks returning a u64"),
        "{stdout}"
    );
    assert!(
        stdout.contains("threadpool: skipped: its tasks give no results"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(&json).expect("the JSON file");
    std::fs::remove_file(&json).ok();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    let fields = documented_fields();
    for (line, (name, status)) in lines.iter().zip([
        ("workpool", "ok"),
        ("threadpool", "skipped"),
        ("rayon", "ok"),
    ]) {
        let obj = line.as_object().expect("an object");
        assert_eq!(obj.len(), fields.len(), "undocumented fields: {line}");
        assert_eq!(line["impl"], name);
        assert_eq!(line["workload"], "join");
        assert_eq!(line["kind"], "join");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["metric"], "tasks_per_sec");
        assert_eq!(line["higher_is_better"], true);
        if status == "ok" {
            assert_eq!(line["completed"], 5_000, "{line}");
            assert!(line["value"].as_f64().is_some_and(|v| v > 0.0), "{line}");
        } else {
            assert!(line["value"].is_null() && line["error"].is_string());
        }
    }
    assert_eq!(lines[0]["ratio"], 1.0);
}

#[test]
fn bad_names_are_refused_before_anything_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_workpool"))
        .args(["bench", "--impl", "workpool,threadfun"])
        .output()
        .expect("run workpool");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'threadfun'"), "{err}");
    assert!(out.stdout.is_empty());
}
