//! The `workpool-http` binary's log, written where it is not a terminal (a
//! file, a pipe to a log collector), is plain text: no ANSI colour codes.

use std::process::{Command, Stdio};

#[test]
fn a_log_written_to_a_pipe_has_no_colour_codes() {
    // `--capacity 0` is refused by the pool's builder: the binary logs the
    // error and exits, so there is a log line at once and nothing to stop.
    let output = Command::new(env!("CARGO_BIN_EXE_workpool-http"))
        .args(["--addr", "127.0.0.1:0", "--capacity", "0"])
        // NO_COLOR would turn colours off by itself: without it, only the
        // binary's own check of the terminal does.
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the workpool-http binary runs");
    assert!(!output.status.success(), "status {:?}", output.status);
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains("ERROR") && log.contains("cannot build the pool"),
        "the error is logged to stdout: {log:?}"
    );
    assert!(!log.contains("\x1b["), "colour codes in the log: {log:?}");
    assert!(
        output.stderr.is_empty(),
        "stderr: {:?}",
        String::from_utf8_lossy(&output.stderr)
    );
}
