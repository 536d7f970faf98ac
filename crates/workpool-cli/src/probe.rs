//! What the process costs, read from /proc (Linux only) through the procfs
//! crate: memory, live threads, CPU time; and what machine a table was taken
//! on.

use nix::sys::resource::{getrusage, UsageWho};
use procfs::process::{Process, Stat, Status};
use procfs::{CpuInfo, Current};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// This process's /proc directory, opened once (the thread sampler reads
/// its status every millisecond); `None` if /proc is not there.
fn me() -> Option<&'static Process> {
    static ME: OnceLock<Option<Process>> = OnceLock::new();
    ME.get_or_init(|| Process::myself().ok()).as_ref()
}

/// Another process (`None` if it is gone or /proc is not there).
fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

fn status() -> Option<Status> {
    me()?.status().ok()
}

fn stat() -> Option<Stat> {
    me()?.stat().ok()
}

/// The process's peak resident memory (`VmHWM`), in kB; 0 if unreadable.
pub(crate) fn peak_rss_kb() -> u64 {
    status().and_then(|s| s.vmhwm).unwrap_or(0)
}

/// The process's resident memory now (`VmRSS`), in kB; 0 if unreadable.
pub(crate) fn rss_kb() -> u64 {
    status().and_then(|s| s.vmrss).unwrap_or(0)
}

/// Live OS threads of the process, the calling one included: `num_threads`
/// of /proc/self/stat, the same count as `Threads` in /proc/self/status but
/// about five times cheaper to read and parse with procfs (5 µs against
/// 24 µs), which counts for the [`ThreadSampler`] that reads it every
/// millisecond inside a measured run.
pub(crate) fn threads() -> usize {
    stat().map_or(0, |s| usize::try_from(s.num_threads).unwrap_or(0))
}

/// Another process's peak resident memory (`VmHWM`, kB) and live threads;
/// zeros if it is gone.
pub(crate) fn peak_rss_kb_and_threads_of_pid(pid: u32) -> (u64, usize) {
    process(pid)
        .and_then(|p| p.status().ok())
        .map_or((0, 0), |s| (s.vmhwm.unwrap_or(0), s.threads as usize))
}

/// CPU time (user + system) the whole process has used, threads that have
/// exited included, in clock ticks (see [`ticks_to_ms`]).
pub(crate) fn cpu_ticks() -> u64 {
    stat().map_or(0, |s| s.utime + s.stime)
}

/// The same of another process (0 if it is gone).
pub(crate) fn cpu_ticks_of_pid(pid: u32) -> u64 {
    process(pid)
        .and_then(|p| p.stat().ok())
        .map_or(0, |s| s.utime + s.stime)
}

/// Milliseconds in `ticks` of the clock that /proc counts CPU time in
/// (USER_HZ, `sysconf(_SC_CLK_TCK)` as procfs reads it: 100 on every
/// mainstream architecture).
pub(crate) fn ticks_to_ms(ticks: u64) -> u64 {
    ticks * 1000 / procfs::ticks_per_second().max(1)
}

/// Context switches counted by the kernel: voluntary (the thread blocked:
/// a futex wait, a sleep) and involuntary (the scheduler preempted it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Switches {
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

impl Switches {
    /// Every thread of the process so far, those that have exited included
    /// (`getrusage(RUSAGE_SELF)`); zeros if the call fails.
    pub(crate) fn of_process() -> Switches {
        Switches::read(UsageWho::RUSAGE_SELF)
    }

    /// The calling thread's so far (`getrusage(RUSAGE_THREAD)`).
    pub(crate) fn of_this_thread() -> Switches {
        Switches::read(UsageWho::RUSAGE_THREAD)
    }

    fn read(who: UsageWho) -> Switches {
        getrusage(who).map_or(Switches::default(), |u| Switches {
            voluntary: u64::try_from(u.voluntary_context_switches()).unwrap_or(0),
            involuntary: u64::try_from(u.involuntary_context_switches()).unwrap_or(0),
        })
    }

    /// `self` less `other`, each count floored at 0.
    pub(crate) fn minus(self, other: Switches) -> Switches {
        Switches {
            voluntary: self.voluntary.saturating_sub(other.voluntary),
            involuntary: self.involuntary.saturating_sub(other.involuntary),
        }
    }

    /// `self` plus `other`.
    pub(crate) fn plus(self, other: Switches) -> Switches {
        Switches {
            voluntary: self.voluntary + other.voluntary,
            involuntary: self.involuntary + other.involuntary,
        }
    }
}

/// A thread that samples the process's thread count about every millisecond
/// and keeps the highest.
#[derive(Debug)]
pub(crate) struct ThreadSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    handle: Option<JoinHandle<Switches>>,
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
                    // Its own sleeps, a thousand a second, are not the
                    // measured implementation's: the caller takes them out.
                    Switches::of_this_thread()
                })
                .expect("start the thread sampler")
        };
        ThreadSampler {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// Stops sampling; the highest count seen, the sampler itself not
    /// counted, and the context switches of the sampler's own thread.
    pub(crate) fn finish(mut self) -> (usize, Switches) {
        // One last look, in case the peak fell between two samples.
        self.peak.fetch_max(threads(), Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        let own = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (self.peak.load(Ordering::Relaxed).saturating_sub(1), own)
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
        // The whole release, distribution suffix and all ("6.8.0-45-generic"):
        // procfs's `KernelVersion` keeps only the numbers, so the file is read
        // as it is.
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let cpu = CpuInfo::current()
            .ok()
            .and_then(|info| info.model_name(0).map(|m| m.trim().to_owned()))
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
    fn a_thread_s_sleeps_are_its_own_voluntary_switches() {
        let before = Switches::of_process();
        let own = thread::spawn(|| {
            for _ in 0..5 {
                thread::sleep(Duration::from_millis(1));
            }
            Switches::of_this_thread()
        })
        .join()
        .unwrap();
        assert!(own.voluntary >= 5, "{own:?}");
        // The process's count keeps the exited thread's.
        let grown = Switches::of_process().minus(before);
        assert!(grown.voluntary >= 5, "{grown:?}");
        assert_eq!(own.minus(own), Switches::default());
        assert_eq!(own.plus(Switches::default()), own);
    }

    #[test]
    fn this_process_is_visible() {
        assert!(peak_rss_kb() > 0);
        assert!(rss_kb() > 0 && rss_kb() <= peak_rss_kb());
        assert!(threads() >= 1);
        let sampler = ThreadSampler::start();
        let (peak, _own) = sampler.finish();
        assert!(peak >= 1);
        let (peak, threads) = peak_rss_kb_and_threads_of_pid(std::process::id());
        assert!(peak > 0 && threads >= 1, "{peak} kB, {threads} threads");
    }

    #[test]
    fn stat_and_status_both_count_parked_threads() {
        // Other tests' threads come and go, so the counts are bounded below
        // by the threads held here, not compared exactly.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let parked: Vec<_> = (0..16)
            .map(|_| {
                let rx = Arc::clone(&rx);
                thread::spawn(move || {
                    let _ = rx.lock().map(|rx| rx.recv());
                })
            })
            .collect();
        let from_status = peak_rss_kb_and_threads_of_pid(std::process::id()).1;
        assert!(threads() > 16, "stat: {}", threads());
        assert!(from_status > 16, "status: {from_status}");
        drop(tx);
        for t in parked {
            let _ = t.join();
        }
    }

    #[test]
    fn cpu_time_of_this_process_counts_up() {
        let before = cpu_ticks();
        assert!(cpu_ticks_of_pid(std::process::id()) >= before);
        // Burn at least 50 ms of CPU, so that at least a few ticks pass.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) || cpu_ticks() == before {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            assert!(start.elapsed() < Duration::from_secs(10), "no tick in 10 s");
        }
        let after = cpu_ticks();
        assert!(after > before, "{before} -> {after}");
        assert!(cpu_ticks_of_pid(std::process::id()) >= after);
        assert!(ticks_to_ms(after - before) > 0);
        assert_eq!(ticks_to_ms(procfs::ticks_per_second()), 1000);
        // A pid that is not there reads 0, as a process that has exited does.
        for gone in [i32::MAX as u32, u32::MAX] {
            assert_eq!(cpu_ticks_of_pid(gone), 0);
            assert_eq!(peak_rss_kb_and_threads_of_pid(gone), (0, 0));
        }
    }

    #[test]
    fn machine_is_described() {
        let m = Machine::read();
        assert!(m.cores >= 1);
        assert!(!m.kernel.is_empty() && m.kernel != "unknown", "{m:?}");
        assert!(
            m.kernel.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{m:?}"
        );
        assert!(!m.cpu.is_empty(), "{m:?}");
    }
}
