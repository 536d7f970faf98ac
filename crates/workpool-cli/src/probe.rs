//! What the process costs, read from /proc (Linux only): memory, live
//! threads, CPU time; and what machine a table was taken on.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One field of /proc/self/status, whose lines read `Name:\t value [kB]`.
pub(crate) fn status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn status() -> String {
    fs::read_to_string("/proc/self/status").unwrap_or_default()
}

/// The process's peak resident memory (`VmHWM`), in kB; 0 if unreadable.
pub(crate) fn peak_rss_kb() -> u64 {
    status_field(&status(), "VmHWM").unwrap_or(0)
}

/// The process's resident memory now (`VmRSS`), in kB; 0 if unreadable.
pub(crate) fn rss_kb() -> u64 {
    status_field(&status(), "VmRSS").unwrap_or(0)
}

/// Live OS threads of the process, the calling one included.
pub(crate) fn threads() -> usize {
    status_field(&status(), "Threads").unwrap_or(0) as usize
}

/// Linux counts CPU time in /proc in ticks of 1/USER_HZ s; USER_HZ is 100 on
/// every mainstream architecture, and reading it needs `sysconf` (unsafe FFI).
pub(crate) const TICK_MS: u64 = 10;

/// CPU time (user + system) the whole process has used, threads that have
/// exited included, in ticks of [`TICK_MS`].
pub(crate) fn cpu_ticks() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    cpu_ticks_of(&stat).unwrap_or(0)
}

/// The same of another process (0 if it is gone).
pub(crate) fn cpu_ticks_of_pid(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    cpu_ticks_of(&stat).unwrap_or(0)
}

/// utime + stime from a `/proc/[pid]/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn cpu_ticks_of(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A thread that samples the process's thread count about every millisecond
/// and keeps the highest.
#[derive(Debug)]
pub(crate) struct ThreadSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl ThreadSampler {
    pub(crate) fn start() -> ThreadSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(threads()));
        let handle = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            thread::Builder::new()
                .name("thread-sampler".to_owned())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        peak.fetch_max(threads(), Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(1));
                    }
                })
                .expect("start the thread sampler")
        };
        ThreadSampler {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// Stops sampling; the highest count seen, the sampler itself not counted.
    pub(crate) fn finish(mut self) -> usize {
        // One last look, in case the peak fell between two samples.
        self.peak.fetch_max(threads(), Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        self.peak.load(Ordering::Relaxed).saturating_sub(1)
    }
}

/// Where a table was taken.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) cpu: String,
}

impl Machine {
    pub(crate) fn read() -> Machine {
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            cores: cores(),
            kernel,
            cpu,
        }
    }
}

/// Cores this process may use (1 if unknown).
pub(crate) fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let status = "Name:\tworkpool\nVmHWM:\t   12345 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmHWM"), Some(12345));
        assert_eq!(status_field(status, "Threads"), Some(7));
        assert_eq!(status_field(status, "Thread"), None);
        assert_eq!(status_field(status, "VmRSS"), None);
    }

    #[test]
    fn stat_skips_a_name_with_spaces_and_parens() {
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 3 0";
        assert_eq!(cpu_ticks_of(stat), Some(333));
        assert_eq!(cpu_ticks_of("garbage"), None);
    }

    #[test]
    fn this_process_is_visible() {
        assert!(peak_rss_kb() > 0);
        assert!(rss_kb() > 0 && rss_kb() <= peak_rss_kb());
        assert!(threads() >= 1);
        let sampler = ThreadSampler::start();
        assert!(sampler.finish() >= 1);
    }
}
