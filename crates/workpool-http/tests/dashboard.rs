//! The dashboard in a real browser: headless Chromium loads `/`, runs its
//! script against the live service, and the figures it shows must equal
//! `/metrics`; a page opened after the activity draws it at its first
//! paint, from the server's history; a screenshot is saved as
//! `target/dashboard.png`.
//!
//! Without `chromium` on PATH the test says so loudly and passes: `.ci/run`
//! installs it (Debian's package) where it can.

mod common;

use common::{client, fetch, history_until, parse_metrics, sample, TestServer, DEADLINE, NEVER};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use workpool::{HealthPolicy, Pool};

/// `chromium` on PATH, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium with `args`, bounded in time.
async fn run_chromium(chromium: &Path, args: &[&str]) -> Output {
    // A profile of its own, removed afterwards: nothing of a person's
    // profile, nor of a concurrent run, leaks in.
    let profile =
        std::env::temp_dir().join(format!("workpool-http-chromium-{}", std::process::id()));
    let mut command = tokio::process::Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // Containers give /dev/shm little room.
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("chromium finished within 2 minutes")
        .expect("chromium started");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The text of the element with `id` in `dom` (`<span id="workers">4</span>`
/// gives `4`).
fn text_of(dom: &str, id: &str) -> String {
    let marker = format!(" id=\"{id}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no element #{id} in the DOM"));
    // Past the rest of the opening tag (a class may follow the id).
    let start = at + dom[at..].find('>').expect("the tag closes") + 1;
    let end = start + dom[start..].find('<').expect("the element closes");
    dom[start..end].to_owned()
}

/// The value of `attribute` on the element that opens with `<tag id="id"`.
fn attribute_of(dom: &str, tag: &str, id: &str, attribute: &str) -> String {
    let opening = format!("<{tag} id=\"{id}\"");
    let start = dom
        .find(&opening)
        .unwrap_or_else(|| panic!("no <{tag}> #{id} in the DOM"));
    let element = &dom[start..start + dom[start..].find('>').expect("the tag closes")];
    let marker = format!("{attribute}=\"");
    let value = element
        .find(&marker)
        .unwrap_or_else(|| panic!("#{id} has no {attribute}: {element}"))
        + marker.len();
    element[value..value + element[value..].find('"').expect("the value closes")].to_owned()
}

/// The workspace's `target/` (`CARGO_TARGET_TMPDIR` is `target/tmp`).
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_figures_of_metrics_and_draws_its_charts() {
    let Some(chromium) = chromium() else {
        // Straight to the process's stderr: the test harness captures
        // `eprintln!` of passing tests, and a skip must not go unseen.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED: the dashboard's browser test: `chromium` is not on PATH.\n\
             !!! Install it (Debian: `apt-get install -y chromium`; .ci/run does) to run it.\n"
        );
        return;
    };
    let pool = Pool::builder()
        .name("dashboard")
        .capacity(6)
        .expiry(NEVER)
        .build()
        .expect("a pool");
    let server = TestServer::service(pool.clone(), HealthPolicy::default()).await;
    let client = client();
    // A sample of the idle pool, so that the workload falls between two.
    history_until(&client, &server, "a first sample", |h| h.taken >= 1).await;

    // A known workload, over before the page loads: the gauges and counts
    // then hold still while the browser reads them.
    let batch = pool
        .spawn_batch((0..60u64).map(|n| move || n * n))
        .expect("accepted");
    assert_eq!(batch.join().len(), 60);
    pool.wait_idle(DEADLINE).expect("idle");
    for _ in 0..2 {
        let (status, _, _) = fetch(&client, &server.url("/parallel/execute")).await;
        assert_eq!(status, 200);
    }
    pool.wait_idle(DEADLINE).expect("idle");
    // The server has sampled the workload: a page opened now must show it
    // at once, though it saw none of it happen.
    let sampled = history_until(&client, &server, "a sample after the workload", |h| {
        h.samples.last().is_some_and(|s| s.stats.completed == 66)
    })
    .await;
    let workers = sampled.samples.last().expect("a sample").stats.workers;
    assert!(workers >= 1);
    // The idle one and the one after the workload, at least.
    let held = sampled.samples.len();
    assert!(held >= 2, "{held} samples");

    // Five seconds of the page's own (virtual) time: about five polls and
    // draws. Chromium holds virtual time while a fetch is in flight, so a
    // slow machine gets as many as a fast one.
    let page = format!("{}/", server.base);
    let dom = run_chromium(
        &chromium,
        &["--virtual-time-budget=5000", "--dump-dom", &page],
    )
    .await;
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();

    let number = |chart: &str, attribute: &str| -> f64 {
        let text = attribute_of(&dom, "canvas", chart, attribute);
        text.parse()
            .unwrap_or_else(|_| panic!("#{chart} {attribute}={text:?}: a number"))
    };
    for chart in ["chart-workers", "chart-rate", "chart-wait"] {
        let drawn = number(chart, "data-drawn");
        assert!(
            drawn >= 2.0,
            "#{chart} was drawn {drawn} times: it must redraw as figures come"
        );
        // At its first paint, the server's samples from before the page
        // opened (a page that kept its own samples would have one). A
        // rate needs two samples: the first has none.
        let first = number(chart, "data-first-points");
        let want = if chart == "chart-rate" {
            held - 1
        } else {
            held
        };
        assert!(
            first >= want as f64,
            "#{chart} drew {first} samples at its first paint; the server had {held}"
        );
    }
    // The first paint shows the workload: tasks finished per second above
    // zero somewhere in the history, and the workers it started.
    let rate = number("chart-rate", "data-first-peak");
    assert!(rate > 0.0, "tasks/s at the first paint peaks at {rate}");
    let peak = number("chart-workers", "data-first-peak");
    assert!(
        peak >= workers as f64,
        "workers at the first paint peak at {peak}"
    );
    // The capacity is charted beside the workers (an autoscaled pool's
    // moves with it).
    let series = attribute_of(&dom, "canvas", "chart-workers", "data-series");
    assert_eq!(series, "capacity,workers,busy,waiting,queued");
    // The p99 shown is over the policy's window, and says so.
    assert_eq!(text_of(&dom, "window"), "1 min");
    assert_eq!(text_of(&dom, "pool"), "dashboard");
    assert_eq!(text_of(&dom, "health"), "healthy");
    assert_eq!(text_of(&dom, "status"), "", "the page reached the service");

    let (status, _, text) = fetch(&client, &server.url("/metrics")).await;
    assert_eq!(status, 200);
    let scrape = parse_metrics(&text);
    let figure = |name: &str, labels: &[(&str, &str)]| sample(&scrape, name, labels).to_string();
    let pool_label = [("pool", "dashboard")];
    for (id, name, labels) in [
        ("workers", "workpool_workers", &pool_label[..]),
        ("busy", "workpool_busy_workers", &pool_label[..]),
        ("idle", "workpool_idle_workers", &pool_label[..]),
        ("waiting", "workpool_waiting_submitters", &pool_label[..]),
        ("queued", "workpool_queued_tasks", &pool_label[..]),
        ("capacity", "workpool_capacity", &pool_label[..]),
        (
            "submitted",
            "workpool_tasks_submitted_total",
            &pool_label[..],
        ),
        (
            "completed",
            "workpool_tasks_total",
            &[("pool", "dashboard"), ("outcome", "completed")][..],
        ),
        (
            "panicked",
            "workpool_tasks_total",
            &[("pool", "dashboard"), ("outcome", "panicked")][..],
        ),
    ] {
        assert_eq!(
            text_of(&dom, id),
            figure(name, labels),
            "#{id} against {name}"
        );
    }
    // 60 tasks and 2 requests of 3 handlers each.
    assert_eq!(text_of(&dom, "completed"), "66");
    assert_eq!(text_of(&dom, "capacity"), "6");
    // Idle since before the page loaded: nothing finished while it polled.
    assert_eq!(text_of(&dom, "tasks-per-second"), "0.0");

    let screenshot = target_dir().join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    run_chromium(
        &chromium,
        &[
            "--virtual-time-budget=5000",
            "--window-size=1200,900",
            &format!("--screenshot={}", screenshot.display()),
            &page,
        ],
    )
    .await;
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG"),
        "a PNG at {}",
        screenshot.display()
    );
    server.stop().await.expect("a clean stop");
}
