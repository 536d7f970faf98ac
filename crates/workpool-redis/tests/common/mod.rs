//! A `redis-server` of the test's own, on a free loopback port, killed when
//! the guard drops; and the demo job's handler.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a server, or says loudly why the test skips and returns `None`.
macro_rules! redis_or_skip {
    () => {
        redis_or_skip!(common::RedisServer::start())
    };
    ($start:expr) => {
        match $start {
            Some(server) => server,
            None => {
                // Straight to stderr, past the test harness's capture, so
                // that a skip shows in a passing run.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {}: redis-server is not on PATH (Debian: apt-get install -y redis-server)",
                    std::thread::current().name().unwrap_or(module_path!())
                );
                return;
            }
        }
    };
}
pub(crate) use redis_or_skip;

pub struct RedisServer {
    child: Child,
    pub url: String,
    pub port: u16,
    /// Its options beyond the port, for a restart.
    args: Vec<String>,
}

impl RedisServer {
    /// A server that keeps nothing on disk.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A server whose data survives a restart: every write is in its
    /// append-only file, synced before the reply, under `dir`.
    pub fn start_persistent(dir: &std::path::Path) -> Option<RedisServer> {
        let dir = dir.to_str().expect("a UTF-8 temp dir");
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            dir,
        ])
    }

    fn start_with(args: &[&str]) -> Option<RedisServer> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return None;
        }
        // A port the OS just handed out, free again once the listener drops.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        let server = RedisServer {
            child: spawn_server(port, &args),
            url: format!("redis://127.0.0.1:{port}"),
            port,
            args,
        };
        server.wait_ready();
        Some(server)
    }

    /// Until it answers `PING` (after loading its data, if any).
    fn wait_ready(&self) {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = client
                .get_connection()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return;
            }
            assert!(
                Instant::now() < until,
                "redis-server on {} never answered PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` of the server: every client's connection drops.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -STOP`: the server stops answering but its sockets stay open,
    /// as a hung host or a paused VM would leave them.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// `kill -CONT` after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let sent = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {sig} failed");
    }

    /// Starts it again on the same port, with the same options.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn_server(self.port, &self.args);
        self.wait_ready();
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

fn spawn_server(port: u16, args: &[String]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo job of `workpool redis produce` and `workpool redis work`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Demo {
    pub id: u64,
    pub sleep_ms: u64,
    pub fail: bool,
}

/// Pushes `n` demo jobs (ids 0..n) of `sleep_ms` that succeed onto
/// `stream`, in one batch.
pub fn push(url: &str, stream: &str, n: u64, sleep_ms: u64) {
    let jobs: Vec<Demo> = (0..n)
        .map(|id| Demo {
            id,
            sleep_ms,
            fail: false,
        })
        .collect();
    workpool_redis::Producer::new(url, stream)
        .unwrap()
        .push_batch(&jobs)
        .unwrap();
}

/// Marks the job done and counts its effect, atomically, once per job ID.
const ONCE: &str = "if redis.call('SET', KEYS[1], 1, 'NX') then \
     redis.call('HINCRBY', KEYS[2], ARGV[1], 1) return 1 end return 0";

/// The test's handler: sleeps, records every run in `{stream}:runs` (by
/// the demo id), and, unless it fails, its effect once per job ID in
/// `{stream}:effects`.
pub fn demo_handler(
    url: &str,
    stream: &str,
) -> impl Fn(workpool_redis::Job) -> Result<(), String> + Send + Sync + 'static {
    let client = redis::Client::open(url).unwrap();
    let stream = stream.to_owned();
    move |job| {
        let demo: Demo = job.decode().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(demo.sleep_ms));
        let mut conn = client.get_connection().map_err(|e| e.to_string())?;
        redis::cmd("HINCRBY")
            .arg(format!("{stream}:runs"))
            .arg(demo.id)
            .arg(1)
            .query::<i64>(&mut conn)
            .map_err(|e| e.to_string())?;
        if demo.fail {
            return Err(format!("job {} fails", demo.id));
        }
        redis::cmd("EVAL")
            .arg(ONCE)
            .arg(2)
            .arg(format!("{stream}:done:{}", job.id()))
            .arg(format!("{stream}:effects"))
            .arg(demo.id)
            .query::<i64>(&mut conn)
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// `HGETALL key` as (id, count) pairs.
pub fn counts(conn: &mut redis::Connection, key: &str) -> std::collections::HashMap<u64, i64> {
    redis::cmd("HGETALL").arg(key).query(conn).unwrap()
}

/// Entries pending in the group, all consumers together.
pub fn pending(conn: &mut redis::Connection, stream: &str, group: &str) -> u64 {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(conn)
        .unwrap();
    match reply {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    }
}

/// Polls `cond` every 10 ms until it holds or `secs` pass.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < until,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The group `g`'s consumers on `stream`, by name, sorted (`XINFO CONSUMERS`).
pub fn consumer_names(conn: &mut redis::Connection, stream: &str) -> Vec<String> {
    let rows: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg("g")
        .query(conn)
        .unwrap();
    let mut names: Vec<String> = rows
        .iter()
        .map(|row| redis::from_redis_value(&row["name"]).unwrap())
        .collect();
    names.sort();
    names
}
