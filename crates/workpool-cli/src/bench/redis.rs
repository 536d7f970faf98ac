//! The `redis` workload of `bench`: 10 ms sleep jobs pushed through one
//! local Redis (a `redis-server` the bench starts and stops) and drained by
//! `workpool redis work` processes, each of [`REDIS_CAPACITY`] workers, or
//! by as many `workpool redis apalis-work` processes (apalis, the peer; see
//! [`crate::redis::apalis`]), each of that concurrency.
//!
//! Each run has two phases, each with fresh consumer processes on a fresh
//! stream: throughput (every job pushed as fast as the producer can, timed
//! from the first push until the last job has run) and pickup (jobs pushed
//! at 80 % of the consumers' capacity rate; the consumers' own pickup
//! figures, enqueue to start, read from the line `work` prints at exit).

use super::child::{ChildReport, Percentiles};
use super::plan::{Impl, Point, REDIS_CAPACITY, REDIS_READ_AHEAD};
use crate::probe;
use crate::redis::apalis::{self, ApalisError, ApalisProducer};
use crate::redis::demo::{demo_producer, push_demo, DemoError};
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;
use workpool_redis::Producer;

/// The paced phase pushes at this share of the consumers' capacity rate.
pub(crate) const PACE: f64 = 0.8;

/// How long a server or a consumer may take to start answering.
const READY: Duration = Duration::from_secs(10);

/// Why the bench's Redis, or one `redis` run, failed; each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisBenchError {
    /// No `redis-server` to start: every `redis` row is skipped.
    #[error("redis-server is not on PATH (Debian: apt-get install -y redis-server)")]
    NoServer,
    /// No loopback port for it.
    #[error("no free port: {0}")]
    NoPort(#[source] std::io::Error),
    /// `redis-server` did not start.
    #[error("cannot start redis-server: {0}")]
    StartServer(#[source] std::io::Error),
    /// It started, but never answered.
    #[error("redis-server on port {port} never answered PING")]
    NoPing { port: u16 },
    /// A command of the bench's own failed.
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    /// A consumer process did not start.
    #[error("cannot start a consumer: {0}")]
    StartConsumer(#[source] std::io::Error),
    /// A consumer process exited before it joined.
    #[error("a consumer exited at start: {0}")]
    ExitedAtStart(ExitStatus),
    /// Not every consumer joined within [`READY`].
    #[error("{procs} consumers did not join within {:?}", READY)]
    NotJoined { procs: usize },
    /// `kill` could not be run.
    #[error("cannot run kill: {0}")]
    Kill(#[source] std::io::Error),
    /// `kill -TERM pid` failed.
    #[error("kill -TERM {0} failed")]
    KillFailed(u32),
    /// Waiting for a consumer failed.
    #[error("{0}")]
    Wait(#[source] std::io::Error),
    /// A consumer still ran after SIGTERM and the timeout.
    #[error("a consumer did not exit after SIGTERM")]
    NoExit,
    /// A consumer exited with an error after SIGTERM.
    #[error("a consumer exited with {0}")]
    ExitedWith(ExitStatus),
    /// workpool-redis's producer failed.
    #[error("{0}")]
    Demo(#[from] DemoError),
    /// apalis's producer failed.
    #[error("{0}")]
    Apalis(#[from] ApalisError),
    /// Not every job ran before the run's deadline.
    #[error("timed out with {ran} of {jobs} jobs run")]
    NotAllRan { ran: usize, jobs: usize },
    /// A consumer's exit line lacks its pickup figures (its whole stdout).
    #[error("no pickup figures in {0:?}")]
    NoPickup(String),
}

/// The bench's own `redis-server`, on a free loopback port, nothing kept on
/// disk; killed when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Server {
    /// Starts one, or says why not (no `redis-server` on PATH).
    pub(crate) fn start() -> Result<Server, RedisBenchError> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(RedisBenchError::NoServer);
        }
        // A port the OS just handed out, free again once the listener drops.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(RedisBenchError::NoPort)?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RedisBenchError::StartServer)?;
        let server = Server {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let until = Instant::now() + READY;
        while server.cmd::<String>(&mut redis::cmd("PING")).is_err() {
            if Instant::now() > until {
                return Err(RedisBenchError::NoPing { port });
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn conn(&self) -> Result<redis::Connection, redis::RedisError> {
        redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
    }

    fn cmd<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> Result<T, redis::RedisError> {
        cmd.query(&mut self.conn()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Consumer processes, killed if dropped before [`Consumers::stop`].
#[derive(Debug)]
struct Consumers {
    children: Vec<Child>,
}

impl Drop for Consumers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the consumers of one phase leave: the stdout of each, and the
/// highest peak RSS and thread count of any one of them.
#[derive(Debug)]
struct Stopped {
    stdouts: Vec<String>,
    peak_rss_kb: u64,
    peak_threads: usize,
    release: Duration,
}

impl Consumers {
    /// Starts `procs` consumer processes of `imp` on `stream` and waits
    /// until each has joined (workpool: the consumer group; apalis: its
    /// workers' set).
    fn start(
        exe: &Path,
        server: &Server,
        imp: Impl,
        stream: &str,
        procs: usize,
    ) -> Result<Consumers, RedisBenchError> {
        let mut me = Consumers {
            children: Vec::with_capacity(procs),
        };
        let cap = REDIS_CAPACITY.to_string();
        for i in 0..procs {
            let mut cmd = Command::new(exe);
            cmd.args(["redis"]);
            if imp == Impl::Apalis {
                cmd.args(["apalis-work", "--url", &server.url, "--queue", stream])
                    .args(["--name", &format!("{stream}-c{i}"), "--concurrency", &cap]);
            } else {
                cmd.args(["work", "--url", &server.url, "--stream", stream])
                    .args(["--group", "bench", "--consumer", &format!("c{i}")])
                    .args(["--capacity", &cap])
                    .args(["--queue-capacity", &REDIS_READ_AHEAD.to_string()]);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(RedisBenchError::StartConsumer)?;
            me.children.push(child);
        }
        let until = Instant::now() + READY;
        loop {
            let joined = if imp == Impl::Apalis {
                server
                    .cmd::<usize>(redis::cmd("ZCARD").arg(apalis::workers_key(stream)))
                    .is_ok_and(|n| n == procs)
            } else {
                server
                    .cmd::<Vec<redis::Value>>(
                        redis::cmd("XINFO")
                            .arg("CONSUMERS")
                            .arg(stream)
                            .arg("bench"),
                    )
                    .is_ok_and(|c| c.len() == procs)
            };
            if joined {
                return Ok(me);
            }
            for c in &mut me.children {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(RedisBenchError::ExitedAtStart(status));
                }
            }
            if Instant::now() > until {
                return Err(RedisBenchError::NotJoined { procs });
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM to each, then waits for each to finish its jobs and exit.
    fn stop(mut self, timeout: Duration) -> Result<Stopped, RedisBenchError> {
        let mut peak_rss_kb = 0;
        let mut peak_threads = 0;
        for c in &self.children {
            let (rss_kb, threads) = probe::peak_rss_kb_and_threads_of_pid(c.id());
            peak_rss_kb = peak_rss_kb.max(rss_kb);
            peak_threads = peak_threads.max(threads);
        }
        let stopping = Instant::now();
        for c in &self.children {
            let sent = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .map_err(RedisBenchError::Kill)?;
            if !sent.success() {
                return Err(RedisBenchError::KillFailed(c.id()));
            }
        }
        let mut stdouts = Vec::with_capacity(self.children.len());
        for c in &mut self.children {
            let status = c
                .wait_timeout(timeout)
                .map_err(RedisBenchError::Wait)?
                .ok_or(RedisBenchError::NoExit)?;
            if !status.success() {
                return Err(RedisBenchError::ExitedWith(status));
            }
            let mut out = String::new();
            if let Some(mut pipe) = c.stdout.take() {
                let _ = pipe.read_to_string(&mut out);
            }
            stdouts.push(out);
        }
        let release = stopping.elapsed();
        self.children.clear();
        Ok(Stopped {
            stdouts,
            peak_rss_kb,
            peak_threads,
            release,
        })
    }
}

/// The producer side of one implementation.
enum Pusher {
    Workpool(Producer),
    Apalis(ApalisProducer),
}

impl Pusher {
    fn new(server: &Server, imp: Impl, stream: &str) -> Result<Pusher, RedisBenchError> {
        Ok(if imp == Impl::Apalis {
            Pusher::Apalis(ApalisProducer::new(&server.url, stream)?)
        } else {
            Pusher::Workpool(demo_producer(&server.url, stream)?)
        })
    }

    /// Pushes the demo jobs `ids`, in batches of at most 1,000.
    fn push(&mut self, ids: std::ops::Range<u64>, sleep_ms: u64) -> Result<(), RedisBenchError> {
        match self {
            Pusher::Apalis(p) => Ok(p.push(ids, sleep_ms)?),
            Pusher::Workpool(p) => Ok(push_demo(p, ids, sleep_ms, |_| false).map(|_| ())?),
        }
    }
}

/// Until every job has run once (`HLEN {stream}:runs`, by demo id).
fn wait_all_ran(
    server: &Server,
    stream: &str,
    jobs: usize,
    until: Instant,
) -> Result<(), RedisBenchError> {
    let mut conn = server.conn()?;
    let runs = format!("{stream}:runs");
    loop {
        let ran: usize = redis::cmd("HLEN").arg(&runs).query(&mut conn)?;
        if ran >= jobs {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(RedisBenchError::NotAllRan { ran, jobs });
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// A `Duration`'s `Debug` text (`850µs`, `12.3ms`, `1.2s`) in µs.
fn debug_duration_us(text: &str) -> Option<f64> {
    let text = text.trim().trim_end_matches(',');
    for (unit, us) in [("ns", 1e-3), ("µs", 1.0), ("ms", 1e3), ("s", 1e6)] {
        if let Some(n) = text.strip_suffix(unit) {
            return n.parse::<f64>().ok().map(|n| n * us);
        }
    }
    None
}

/// The `pickup p50 X p99 Y` figures of a consumer's exit line, in µs.
fn pickup_us(stdout: &str) -> Option<(f64, f64)> {
    let line = stdout.lines().rev().find(|l| l.contains("pickup p50"))?;
    let rest = line.split("pickup p50 ").nth(1)?;
    let (p50, p99) = rest.split_once(" p99 ")?;
    Some((debug_duration_us(p50)?, debug_duration_us(p99)?))
}

/// One run of `point` (a `redis` point) on `imp`: both phases.
pub(crate) fn run(
    exe: &Path,
    server: &Server,
    imp: Impl,
    point: &Point,
    run: usize,
    timeout: Duration,
) -> Result<ChildReport, RedisBenchError> {
    let deadline = Instant::now() + timeout;
    let n = point.tasks as u64;
    server.cmd::<()>(&mut redis::cmd("FLUSHALL"))?;

    // Throughput: every job at once.
    let stream = format!("bench-{}-{}-{run}-all", imp.name(), point.procs);
    let building = Instant::now();
    let consumers = Consumers::start(exe, server, imp, &stream, point.procs)?;
    let build = building.elapsed();
    let mut push = Pusher::new(server, imp, &stream)?;
    let server_ticks = probe::cpu_ticks_of_pid(server.child.id());
    let started = Instant::now();
    push.push(0..n, point.sleep_ms)?;
    wait_all_ran(server, &stream, point.tasks, deadline)?;
    let run_time = started.elapsed();
    let server_cpu_ms =
        probe::ticks_to_ms(probe::cpu_ticks_of_pid(server.child.id()).saturating_sub(server_ticks));
    let consumers_cpu_ms = probe::ticks_to_ms(
        consumers
            .children
            .iter()
            .map(|c| probe::cpu_ticks_of_pid(c.id()))
            .sum::<u64>(),
    );
    let thrown = consumers.stop(timeout)?;

    // Pickup: paced at PACE of the capacity rate.
    let stream = format!("bench-{}-{}-{run}-paced", imp.name(), point.procs);
    let consumers = Consumers::start(exe, server, imp, &stream, point.procs)?;
    let mut push = Pusher::new(server, imp, &stream)?;
    let per_sec = PACE * point.cap as f64 * 1e3 / point.sleep_ms.max(1) as f64;
    let t0 = Instant::now();
    let mut pushed = 0;
    while pushed < n {
        let due = ((t0.elapsed().as_secs_f64() * per_sec) as u64 + 1).min(n);
        if due > pushed {
            push.push(pushed..due, point.sleep_ms)?;
            pushed = due;
        } else {
            thread::sleep(Duration::from_micros(500));
        }
    }
    wait_all_ran(server, &stream, point.tasks, deadline)?;
    let paced = consumers.stop(timeout)?;
    let mut p50 = 0f64;
    let mut p99 = 0f64;
    for out in &paced.stdouts {
        let (a, b) = pickup_us(out).ok_or_else(|| RedisBenchError::NoPickup(out.clone()))?;
        (p50, p99) = (p50.max(a), p99.max(b));
    }

    Ok(ChildReport {
        tasks: point.tasks,
        cap: point.cap,
        completed: point.tasks,
        build_ms: build.as_secs_f64() * 1e3,
        run_ms: run_time.as_secs_f64() * 1e3,
        release_ms: thrown.release.as_secs_f64() * 1e3,
        peak_rss_kb: thrown.peak_rss_kb.max(paced.peak_rss_kb),
        peak_threads: thrown.peak_threads.max(paced.peak_threads),
        hogs: 0,
        latency_us: Some(Percentiles {
            p50,
            p99,
            max: f64::NAN,
            due_p99: f64::NAN,
        }),
        idle: None,
        rounds_us: None,
        server_cpu_ms: Some(server_cpu_ms),
        consumers_cpu_ms: Some(consumers_cpu_ms),
        voluntary_switches: 0,
        involuntary_switches: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pickup_figures_of_the_exit_line() {
        let line = "read 5 acked 5 retried 0 dead-lettered 0 reclaimed 0 left pending 0; \
                    pickup p50 850.2µs p99 12.5ms\n";
        assert_eq!(pickup_us(line), Some((850.2, 12_500.0)));
        assert_eq!(debug_duration_us("1.5s"), Some(1.5e6));
        assert_eq!(debug_duration_us("0ns"), Some(0.0));
        assert_eq!(pickup_us("nothing"), None);
    }
}
