//! `Autoscale`: a pool that finds its own capacity from its own figures.
//!
//! The pool's maintenance thread feeds a policy one [`Sample`] per
//! interval (the window's completions, its tasks' run time, whether tasks
//! waited for a worker) and applies the capacity it answers through the
//! same code as `tune` (`pool/scale.rs`). The policies are small state
//! machines with no clock and no thread of their own, so that the tests
//! below drive them with figures of a simulated pool, deterministically.
//!
//! - [`Autoscale::throughput`]: hill climbing on completions per second,
//!   as .NET's thread pool injects threads (CoreCLR `HillClimbing.cpp`),
//!   without its sine wave: a step search that keeps a direction while
//!   completions rise by more than the noise (5 %, or 1/sqrt of a window's
//!   completions where that is more), turns back and halves
//!   its step when they do not, and, when throughput is the same, prefers
//!   fewer threads; it settles where both sides lose, and probes again a
//!   few intervals later.
//! - [`Autoscale::latency`]: Netflix concurrency-limits' Gradient2 on task
//!   run time: past the tolerance (1.2x the no-load run time) the limit
//!   moves halfway to `limit x tolerance x baseline / current` (the factor
//!   at least 1/2); it holds from 1.05x to 1.2x, and below grows by its
//!   square root while tasks wait, so it climbs to a downstream's knee and
//!   backs off as soon as run time rises past it. A start far past a knee
//!   is found by shrinking while run time keeps falling.
//! - Both, when no task waits for a worker: the capacity is not what
//!   limits the pool, and idle threads drift down toward the busy ones.

use std::fmt;
use std::time::Duration;

/// How a pool finds its own capacity: a policy, the bounds it keeps to and
/// how often it looks. Set with
/// [`PoolBuilder::autoscale`](crate::PoolBuilder::autoscale); a manual
/// [`Pool::tune`](crate::Pool::tune) pauses it until
/// [`Pool::resume_autoscale`](crate::Pool::resume_autoscale).
///
/// Use it when the right capacity depends on something the pool cannot
/// know in advance and that moves: a downstream's concurrency (a database,
/// an API) for `latency`, blocking I/O of varying speed for `throughput`.
/// Keep a fixed capacity where it is known (CPU-bound work: the number of
/// cores), where every thread must be accounted for up front, or where
/// tasks are too few for per-interval figures to mean anything (under a
/// few dozen completions an interval).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool::{Autoscale, Pool};
///
/// let pool = Pool::builder()
///     .capacity(4) // where it starts
///     .autoscale(Autoscale::throughput().bounds(2, 64).interval(Duration::from_millis(250)))
///     .build()?;
/// assert_eq!(pool.capacity(), Some(4));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Autoscale {
    policy: Policy,
    min: usize,
    max: usize,
    interval: Duration,
}

/// Which figures an [`Autoscale`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    Throughput,
    Latency,
}

impl Autoscale {
    /// The default interval between two looks: long enough for a window
    /// of 10 ms tasks to hold dozens of completions, short enough to reach
    /// a knee in a few seconds.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);

    /// The default bounds: 1 to 512.
    pub const DEFAULT_BOUNDS: (usize, usize) = (1, 512);

    /// Hill climbing on completions per second: finds the capacity past
    /// which more threads complete no more tasks (blocking I/O, mixed
    /// work), and prefers fewer threads where throughput is the same.
    ///
    /// # Examples
    ///
    /// ```
    /// let scale = workpool::Autoscale::throughput();
    /// assert_eq!(scale.bounds_of(), workpool::Autoscale::DEFAULT_BOUNDS);
    /// ```
    pub fn throughput() -> Autoscale {
        Autoscale::with(Policy::Throughput)
    }

    /// A Gradient2-style limit on task run time: holds run time near its
    /// no-load level (up to 1.2x it) while taking as much concurrency as
    /// that allows, to protect a downstream past whose knee every call gets
    /// slower.
    ///
    /// # Examples
    ///
    /// ```
    /// let scale = workpool::Autoscale::latency().bounds(2, 128);
    /// assert_eq!(scale.bounds_of(), (2, 128));
    /// ```
    pub fn latency() -> Autoscale {
        Autoscale::with(Policy::Latency)
    }

    fn with(policy: Policy) -> Autoscale {
        Autoscale {
            policy,
            min: Autoscale::DEFAULT_BOUNDS.0,
            max: Autoscale::DEFAULT_BOUNDS.1,
            interval: Autoscale::DEFAULT_INTERVAL,
        }
    }

    /// The capacity stays within `min..=max`. Checked by
    /// [`build`](crate::PoolBuilder::build): `min` at least 1, `min <= max`,
    /// `max` at most [`PoolBuilder::MAX_CAPACITY`](crate::PoolBuilder::MAX_CAPACITY).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{Autoscale, BuildError, Pool};
    /// let error = Pool::builder().autoscale(Autoscale::throughput().bounds(8, 4)).build();
    /// assert!(matches!(error, Err(BuildError::AutoscaleBounds { min: 8, max: 4 })));
    /// ```
    pub fn bounds(mut self, min: usize, max: usize) -> Autoscale {
        self.min = min;
        self.max = max;
        self
    }

    /// How often the policy looks at the pool's figures and may change its
    /// capacity. Default [`DEFAULT_INTERVAL`](Self::DEFAULT_INTERVAL);
    /// checked by `build` (at least 1 ms, at most an hour).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let scale = workpool::Autoscale::latency().interval(Duration::from_secs(1));
    /// assert_eq!(scale.interval_of(), Duration::from_secs(1));
    /// ```
    pub fn interval(mut self, interval: Duration) -> Autoscale {
        self.interval = interval;
        self
    }

    /// The bounds set, `(min, max)`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(workpool::Autoscale::latency().bounds(3, 9).bounds_of(), (3, 9));
    /// ```
    pub fn bounds_of(&self) -> (usize, usize) {
        (self.min, self.max)
    }

    /// The interval set.
    ///
    /// # Examples
    ///
    /// ```
    /// let scale = workpool::Autoscale::throughput();
    /// assert_eq!(scale.interval_of(), workpool::Autoscale::DEFAULT_INTERVAL);
    /// ```
    pub fn interval_of(&self) -> Duration {
        self.interval
    }

    /// The shortest interval `build` accepts.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
    /// The longest interval `build` accepts.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

    /// What is wrong with these settings, if anything: the `BuildError`.
    pub(crate) fn check(&self) -> Result<(), crate::BuildError> {
        use crate::BuildError;
        if self.min == 0 || self.min > self.max || self.max > crate::PoolBuilder::MAX_CAPACITY {
            return Err(BuildError::AutoscaleBounds {
                min: self.min,
                max: self.max,
            });
        }
        if self.interval < Autoscale::MIN_INTERVAL || self.interval > Autoscale::MAX_INTERVAL {
            return Err(BuildError::AutoscaleInterval {
                interval: self.interval,
            });
        }
        Ok(())
    }

    /// The policy's state machine, starting from `capacity`.
    pub(crate) fn controller(&self, capacity: usize) -> Controller {
        let capacity = capacity.clamp(self.min, self.max);
        let state = match self.policy {
            Policy::Throughput => State::Climb(Climb::new(capacity)),
            Policy::Latency => State::Gradient(Gradient::new(capacity)),
        };
        Controller {
            min: self.min,
            max: self.max,
            state,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self.policy {
            Policy::Throughput => "throughput",
            Policy::Latency => "latency",
        }
    }
}

impl fmt::Debug for Autoscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Autoscale")
            .field("policy", &self.name())
            .field("min", &self.min)
            .field("max", &self.max)
            .field("interval", &self.interval)
            .finish()
    }
}

/// What the pool did in one interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    /// Tasks completed in the interval.
    pub(crate) completed: u64,
    /// How long the interval was.
    pub(crate) elapsed: Duration,
    /// The mean run time of the tasks timed in it (none timed: `None`).
    pub(crate) run_time: Option<Duration>,
    /// Tasks waited for a worker at its end (queued, or submitters
    /// blocked): the capacity is what limits the pool.
    pub(crate) saturated: bool,
    /// Workers running a task at its end.
    pub(crate) busy: usize,
}

impl Sample {
    fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.completed as f64 / seconds
        } else {
            0.0
        }
    }
}

/// A policy's answer: the capacity from now on, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) capacity: usize,
    pub(crate) why: &'static str,
}

/// A policy's state, within its bounds.
#[derive(Debug)]
pub(crate) struct Controller {
    min: usize,
    max: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    Climb(Climb),
    Gradient(Gradient),
}

impl Controller {
    /// The capacity after `sample`, taken at `capacity`.
    pub(crate) fn next(&mut self, capacity: usize, sample: &Sample) -> Decision {
        let (min, max) = (self.min, self.max);
        let decision = match &mut self.state {
            State::Climb(climb) => climb.next(capacity, sample, min, max),
            State::Gradient(gradient) => gradient.next(capacity, sample, min, max),
        };
        Decision {
            capacity: decision.capacity.clamp(min, max),
            ..decision
        }
    }
}

/// Completions per second must rise by more than this to count as a rise
/// (or fall by more to count as a fall): the noise of a window.
const NOISE: f64 = 0.05;

/// The largest step of the climb.
const MAX_STEP: usize = 64;

/// Intervals a settled climb holds before it probes again.
const SETTLED_HOLD: u32 = 3;

/// The smallest step of the climb at `capacity`.
fn smallest_step(capacity: usize) -> usize {
    (capacity / 16).max(1)
}

/// Hill climbing on completions per second, against a reference: the
/// capacity with the best rate seen since the climb last turned. A step
/// that beats it by more than the noise becomes the reference and the
/// step doubles; a step down that keeps within the noise of the best rate
/// seen since the work last changed (the peak) becomes the reference too
/// (as many completions with fewer threads); anything else goes back to
/// the reference, turns, and halves the step. A step down is at most half
/// the capacity. A turn at a step of one has found the place: it holds
/// there a few intervals, then probes again, the other way (at once if the
/// rate there moves by more than twice the noise: the work changed).
#[derive(Debug)]
struct Climb {
    /// The reference: a capacity and its rate.
    best: Option<(usize, f64)>,
    /// The best rate since the work last changed.
    peak: f64,
    step: usize,
    up: bool,
    /// Intervals left to hold a settled capacity, and its rate then.
    hold: u32,
    held_rate: f64,
    /// Turns at a step of one in a row: two (both sides tried) settle.
    turns_at_one: u8,
}

impl Climb {
    fn new(_capacity: usize) -> Climb {
        Climb {
            best: None,
            peak: 0.0,
            step: 1,
            up: true,
            hold: 0,
            held_rate: 0.0,
            turns_at_one: 0,
        }
    }

    fn next(&mut self, capacity: usize, sample: &Sample, min: usize, max: usize) -> Decision {
        let rate = sample.rate();
        // A window of `n` completions is off by about 1/sqrt(n) of them:
        // the noise a change must beat, at least `NOISE`.
        let noise = NOISE.max(1.0 / (sample.completed.max(1) as f64).sqrt());
        if !sample.saturated {
            // The capacity is not what limits the pool: no figure says
            // more threads would help, and idle ones cost. Drift down
            // toward the busy ones, by half the gap.
            *self = Climb::new(capacity);
            let gap = capacity.saturating_sub(sample.busy.max(min));
            return Decision {
                capacity: capacity - gap.div_ceil(2),
                why: "not saturated: fewer idle threads",
            };
        }
        // Settled (holding, or about to probe from the settled capacity):
        // a rate moved by more than twice the noise means the work changed.
        let settled = self.hold > 0 || (self.best.is_none() && self.held_rate > 0.0);
        if settled {
            let moved = (rate - self.held_rate).abs() > 2.0 * noise * self.held_rate;
            if moved {
                // Climb afresh, the way the rate went.
                self.hold = 0;
                self.best = None;
                self.peak = 0.0;
                self.step = 1;
                self.turns_at_one = 0;
                self.up = rate > self.held_rate;
                self.held_rate = 0.0;
            } else if self.hold > 0 {
                self.hold -= 1;
                return Decision {
                    capacity,
                    why: "settled",
                };
            }
        }
        self.peak = self.peak.max(rate);
        let Some((best, best_rate)) = self.best else {
            self.best = Some((capacity, rate));
            return self.go(capacity, min, max, "probing");
        };
        if capacity == best {
            // Back at the reference (or held at a bound): measured again.
            // Moved by more than twice the noise, the work changed: the
            // climb starts afresh from here, the way the rate went.
            if (rate - best_rate).abs() > 2.0 * noise * best_rate {
                self.peak = rate;
                self.step = 1;
                self.turns_at_one = 0;
                self.up = rate > best_rate;
            }
            self.best = Some((best, rate));
            return self.go(capacity, min, max, "probing");
        }
        if rate > best_rate * (1.0 + noise) {
            self.turns_at_one = 0;
            self.best = Some((capacity, rate));
            self.step = (self.step * 2).min(MAX_STEP);
            let why = if self.up {
                "completions rose: more threads"
            } else {
                "completions rose with fewer threads: fewer"
            };
            return self.go(capacity, min, max, why);
        }
        if !self.up && rate >= best_rate.max(self.peak) * (1.0 - noise) {
            // As many completions with fewer threads.
            self.best = Some((capacity, best_rate.max(rate)));
            self.step = (self.step * 2).min(MAX_STEP);
            return self.go(capacity, min, max, "completions held: fewer threads");
        }
        let why = if self.up {
            "completions flat or fell: back to fewer threads"
        } else {
            "completions fell: back to more threads"
        };
        self.turn(best, best_rate, why)
    }

    /// A step in the climb's direction: at least a sixteenth of the
    /// capacity, since a step of one thread among many moves completions
    /// by less than a window's noise.
    fn go(&mut self, capacity: usize, min: usize, max: usize, why: &'static str) -> Decision {
        let step = self.step.max(smallest_step(capacity));
        let next = if self.up {
            capacity.saturating_add(step).min(max)
        } else {
            capacity
                .saturating_sub(step.min(capacity / 2).max(1))
                .max(min)
        };
        if next == capacity {
            // At a bound: turn around, one step at a time.
            self.up = !self.up;
            self.step = 1;
        }
        Decision {
            capacity: next,
            why,
        }
    }

    /// Back to the reference, turned around with half the step; turns at
    /// the smallest step on both sides settle there: the next probe, after
    /// the hold, goes up first (a knee that moved up shows no change at a
    /// settled capacity below it; one that moved down does, and starts a
    /// fresh climb).
    fn turn(&mut self, best: usize, best_rate: f64, why: &'static str) -> Decision {
        self.up = !self.up;
        if self.step <= smallest_step(best) {
            self.turns_at_one += 1;
            if self.turns_at_one >= 2 {
                self.turns_at_one = 0;
                self.hold = SETTLED_HOLD;
                self.held_rate = best_rate;
                self.best = None;
                self.up = true;
            }
        } else {
            self.turns_at_one = 0;
        }
        self.step = (self.step / 2).max(1);
        Decision {
            capacity: best,
            why,
        }
    }
}

/// Run time may rise to this multiple of its baseline before the limit
/// shrinks (Gradient2's tolerance, tighter than its default 1.5: past a
/// knee every extra call slows every call, and 1.5x the run time was 0.88x
/// the best throughput in the simulated downstream of the tests).
const TOLERANCE: f64 = 1.2;

/// The limit grows only while run time is within this multiple of its
/// baseline (at the no-load level); between this and [`TOLERANCE`] it
/// holds, so that it settles just past a knee instead of swinging across it.
const GROW_BELOW: f64 = 1.05;

/// A Gradient2-style limit on run time.
#[derive(Debug)]
struct Gradient {
    limit: f64,
    /// The no-load run time, in seconds: follows a lower run time at once,
    /// and a higher one slowly, only while run time stays past the
    /// tolerance (the work itself got slower, not the capacity too high).
    baseline: Option<f64>,
    /// At first no figure says what the no-load run time is (a pool may
    /// start far past its knee): the limit shrinks by a quarter each
    /// interval while run time keeps falling, as Vegas probes for its
    /// no-load round trip, then the gradient takes over.
    discovering: Option<f64>,
}

/// How slowly the baseline follows a higher run time: a 1/this step.
const BASELINE_DRIFT: f64 = 100.0;

impl Gradient {
    fn new(capacity: usize) -> Gradient {
        Gradient {
            limit: capacity as f64,
            baseline: None,
            discovering: Some(f64::MAX),
        }
    }

    fn next(&mut self, capacity: usize, sample: &Sample, min: usize, max: usize) -> Decision {
        // A manual tune, or the first look: start from what is in force.
        if (self.limit.round() as usize).clamp(min, max) != capacity {
            self.limit = capacity as f64;
        }
        let Some(run_time) = sample.run_time.map(|t| t.as_secs_f64().max(1e-9)) else {
            return Decision {
                capacity,
                why: "no task timed",
            };
        };
        let baseline = match self.baseline {
            None => run_time,
            Some(base) if run_time < base => run_time,
            Some(base) if run_time > TOLERANCE * base => {
                // Slowly, and faster where the limit cannot shrink more.
                let drift = if self.limit <= min as f64 {
                    10.0
                } else {
                    BASELINE_DRIFT
                };
                base + (run_time - base) / drift
            }
            Some(base) => base,
        };
        self.baseline = Some(baseline);
        if let Some(before) = self.discovering {
            if run_time < before * (1.0 - NOISE) && self.limit > min as f64 {
                self.discovering = Some(run_time);
                self.limit = (self.limit * 0.75).max(min as f64);
                return Decision {
                    capacity: self.limit.round() as usize,
                    why: "finding the no-load run time: fewer",
                };
            }
            self.discovering = None;
        }
        let gradient = (TOLERANCE * baseline / run_time).clamp(0.5, 1.0);
        let (limit, why) = if gradient < 1.0 {
            // Past the knee: shrink, halfway to where the gradient points.
            let target = self.limit * gradient;
            (
                self.limit - (self.limit - target) / 2.0,
                "run time rose past its baseline",
            )
        } else if run_time > GROW_BELOW * baseline {
            (self.limit, "run time within its tolerance: held")
        } else if sample.saturated {
            (
                self.limit + self.limit.sqrt(),
                "run time at its baseline: more",
            )
        } else {
            // Not limited by capacity: no reason to grow; idle threads drift
            // down toward the busy ones.
            let busy = sample.busy.max(min) as f64;
            (
                self.limit - (self.limit - busy).max(0.0) / 2.0,
                "not saturated: fewer idle threads",
            )
        };
        self.limit = limit.clamp(min as f64, max as f64);
        Decision {
            capacity: self.limit.round() as usize,
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A downstream with a knee (a saturated database): up to `knee`
    /// concurrent calls each take `base`; past it calls queue (run time
    /// grows as `calls / knee`) and each extra call adds `penalty` to every
    /// call (contention), so throughput falls past the knee. Tasks are fed
    /// without end (always saturated).
    #[derive(Clone, Copy)]
    struct Downstream {
        knee: usize,
        base: f64,
        penalty: f64,
    }

    impl Downstream {
        fn run_time(&self, capacity: usize) -> f64 {
            let queueing = (capacity as f64 / self.knee as f64).max(1.0);
            self.base * queueing + self.penalty * capacity.saturating_sub(self.knee) as f64
        }

        fn rate(&self, capacity: usize) -> f64 {
            capacity as f64 / self.run_time(capacity)
        }

        /// The interval's figures at `capacity`, with completions and run
        /// time off by `noise` (a fraction, either sign).
        fn sample(&self, capacity: usize, noise: f64) -> Sample {
            let elapsed = Duration::from_millis(200);
            let completed = (self.rate(capacity) * 0.2 * (1.0 + noise)).max(0.0) as u64;
            Sample {
                completed,
                elapsed,
                run_time: Some(Duration::from_secs_f64(
                    self.run_time(capacity) * (1.0 - noise),
                )),
                saturated: true,
                busy: capacity,
            }
        }
    }

    const DB: Downstream = Downstream {
        knee: 32,
        base: 0.010,
        penalty: 0.000_2,
    };

    /// Over `seen`, the mean throughput as a fraction of the best, and the
    /// worst interval's.
    fn share_of_best(downstream: &Downstream, seen: &[usize]) -> (f64, f64) {
        let best = oracle(downstream, 512);
        let shares: Vec<f64> = seen.iter().map(|&c| downstream.rate(c) / best).collect();
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        (mean, shares.iter().copied().fold(f64::MAX, f64::min))
    }

    /// Runs `rounds` intervals from `start`; returns the capacities chosen.
    fn run(
        scale: Autoscale,
        start: usize,
        rounds: usize,
        downstream: impl Fn(usize) -> Downstream,
        noise: impl Fn(usize) -> f64,
    ) -> Vec<usize> {
        let mut controller = scale.controller(start);
        let mut capacity = start.clamp(scale.min, scale.max);
        let mut seen = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let sample = downstream(round).sample(capacity, noise(round));
            capacity = controller.next(capacity, &sample).capacity;
            seen.push(capacity);
        }
        seen
    }

    /// A fixed pseudo-random noise in `-amplitude..amplitude` per round.
    fn jitter(amplitude: f64) -> impl Fn(usize) -> f64 {
        move |round| {
            let x = (round as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(17);
            ((x % 2001) as f64 / 1000.0 - 1.0) * amplitude
        }
    }

    fn quiet(_: usize) -> f64 {
        0.0
    }

    /// The best throughput of any capacity in `1..=max`.
    fn oracle(downstream: &Downstream, max: usize) -> f64 {
        (1..=max).map(|c| downstream.rate(c)).fold(0.0, f64::max)
    }

    /// The steady-knee targets over `seen[from..]`: >= 0.9x the best
    /// throughput on average (no interval under 0.8x), at most 1.5x the
    /// best capacity's threads and run time.
    fn assert_at_the_knee(downstream: &Downstream, seen: &[usize], from: usize) {
        assert_at_the_knee_until(downstream, seen, from, seen.len());
    }

    fn assert_at_the_knee_until(downstream: &Downstream, seen: &[usize], from: usize, to: usize) {
        let settled = &seen[from..to];
        let (mean, worst) = share_of_best(downstream, settled);
        assert!(
            mean >= 0.9 && worst >= 0.8,
            "{mean:.2} / {worst:.2}: {seen:?}"
        );
        let knee = downstream.knee;
        assert!(
            settled.iter().all(|&c| c * 2 <= knee * 3),
            "threads: {seen:?}"
        );
        let base = downstream.run_time(knee);
        assert!(
            settled
                .iter()
                .all(|&c| downstream.run_time(c) <= 1.5 * base),
            "run time: {seen:?}"
        );
    }

    /// Intervals from `from` until the throughput is within 0.9x the best.
    fn intervals_to_reach(downstream: &Downstream, seen: &[usize], from: usize) -> Option<usize> {
        let best = oracle(downstream, 512);
        seen[from..]
            .iter()
            .position(|&c| downstream.rate(c) >= 0.9 * best)
    }

    /// From `start`, `scale` gets within 0.9x the best throughput in fewer
    /// than `within` intervals, and holds the knee's targets from `settled`.
    fn finds_the_knee(scale: Autoscale, start: usize, within: usize, settled: usize) {
        let seen = run(scale, start, 200, |_| DB, quiet);
        let reached = intervals_to_reach(&DB, &seen, 0);
        assert!(
            reached.is_some_and(|n| n < within),
            "{scale:?} from {start}: {seen:?}"
        );
        assert_at_the_knee(&DB, &seen, settled);
    }

    /// The knee moves 32 -> 8 -> 64, every 100 intervals.
    fn moving(round: usize) -> Downstream {
        Downstream {
            knee: [32, 8, 64][(round / 100).min(2)],
            ..DB
        }
    }

    /// `scale` is back within 0.9x the new best within 15 intervals (3 s)
    /// of each move of the knee, and holds its targets after 30.
    fn follows_the_moving_knee(scale: Autoscale) {
        let seen = run(scale, 2, 300, moving, quiet);
        for phase in 1..3 {
            let downstream = moving(phase * 100);
            let back = intervals_to_reach(&downstream, &seen, phase * 100);
            assert!(
                back.is_some_and(|n| n <= 15),
                "{scale:?} phase {phase}: {:?}",
                &seen[phase * 100 - 5..]
            );
            assert_at_the_knee_until(&downstream, &seen, phase * 100 + 30, (phase + 1) * 100);
        }
    }

    #[test]
    fn throughput_climbs_to_the_knee_within_25_intervals_and_stays_near_it() {
        // 25 intervals of 200 ms: 5 s.
        finds_the_knee(Autoscale::throughput(), 2, 25, 40);
    }

    #[test]
    fn throughput_backs_off_from_an_oversized_start() {
        // ants-style: started at 512, far past the knee.
        finds_the_knee(Autoscale::throughput(), 512, 40, 60);
    }

    #[test]
    fn throughput_holds_under_noise_without_swinging_far() {
        let seen = run(Autoscale::throughput(), 2, 300, |_| DB, jitter(0.03));
        assert_at_the_knee(&DB, &seen, 60);
    }

    #[test]
    fn throughput_tells_a_change_from_the_noise_of_a_small_window() {
        // 50 ms calls, knee 4: about 16 completions a window, off by 15 %
        // either way. A threshold of 5 % would chase that noise; one scaled
        // to the window's count holds near the knee.
        let slow = |_: usize| Downstream {
            knee: 4,
            base: 0.050,
            penalty: 0.001,
        };
        let seen = run(Autoscale::throughput(), 2, 300, slow, jitter(0.15));
        let tail = &seen[100..];
        assert!(tail.iter().all(|&c| (3..=5).contains(&c)), "{tail:?}");
        let (mean, _) = share_of_best(&slow(0), tail);
        assert!(mean >= 0.95, "{mean:.3}: {tail:?}");
    }

    #[test]
    fn throughput_follows_a_moved_knee() {
        follows_the_moving_knee(Autoscale::throughput());
    }

    #[test]
    fn throughput_on_cpu_bound_tasks_settles_between_cores_and_twice_cores() {
        // 4 cores, 1 ms of CPU a task: past 4 threads they share the cores
        // (run time grows, completions do not), plus a little switching.
        let cpu = |_: usize| Downstream {
            knee: 4,
            base: 0.001,
            penalty: 0.000_01,
        };
        for start in [1, 64] {
            let seen = run(Autoscale::throughput(), start, 200, cpu, quiet);
            let settled = &seen[50..];
            // Settled between cores and twice cores; a probe one below now
            // and then (it loses completions, and comes back).
            let within = settled.iter().filter(|&&c| (4..=8).contains(&c)).count();
            assert!(within * 10 >= settled.len() * 8, "from {start}: {seen:?}");
            assert!(
                settled.iter().all(|&c| (3..=9).contains(&c)),
                "from {start}: {seen:?}"
            );
        }
    }

    #[test]
    fn latency_climbs_to_the_knee_and_holds_run_time_near_its_baseline() {
        finds_the_knee(Autoscale::latency(), 2, 25, 40);
    }

    #[test]
    fn latency_backs_off_from_an_oversized_start() {
        finds_the_knee(Autoscale::latency(), 512, 25, 50);
    }

    #[test]
    fn latency_follows_a_moved_knee_within_15_intervals() {
        follows_the_moving_knee(Autoscale::latency());
    }

    #[test]
    fn latency_holds_under_noise() {
        let seen = run(Autoscale::latency(), 2, 300, |_| DB, jitter(0.03));
        assert_at_the_knee(&DB, &seen, 60);
        let tail = &seen[100..];
        let (lo, hi) = (*tail.iter().min().unwrap(), *tail.iter().max().unwrap());
        assert!(hi - lo <= 8, "swings {lo}..{hi}: {tail:?}");
    }

    #[test]
    fn both_policies_stay_within_their_bounds() {
        for scale in [Autoscale::throughput(), Autoscale::latency()] {
            let scale = scale.bounds(3, 20);
            for start in [1, 3, 10, 20, 500] {
                let seen = run(scale, start, 100, |_| DB, jitter(0.2));
                assert!(
                    seen.iter().all(|c| (3..=20).contains(c)),
                    "{scale:?} from {start}: {seen:?}"
                );
            }
        }
    }

    #[test]
    fn an_idle_pool_sheds_threads_toward_the_busy_ones() {
        for scale in [Autoscale::throughput(), Autoscale::latency()] {
            let mut controller = scale.controller(64);
            let mut capacity = 64;
            for _ in 0..20 {
                let sample = Sample {
                    completed: 10,
                    elapsed: Duration::from_millis(200),
                    run_time: Some(Duration::from_millis(1)),
                    saturated: false,
                    busy: 2,
                };
                capacity = controller.next(capacity, &sample).capacity;
            }
            assert!(capacity <= 3, "{scale:?}: {capacity}");
        }
    }

    #[test]
    fn settings_out_of_range_are_refused_with_what_was_asked() {
        use crate::BuildError;
        assert_eq!(Autoscale::throughput().check().ok(), Some(()));
        assert!(matches!(
            Autoscale::throughput().bounds(0, 4).check(),
            Err(BuildError::AutoscaleBounds { min: 0, max: 4 })
        ));
        assert!(matches!(
            Autoscale::latency().bounds(1, usize::MAX).check(),
            Err(BuildError::AutoscaleBounds { .. })
        ));
        assert!(matches!(
            Autoscale::latency().interval(Duration::ZERO).check(),
            Err(BuildError::AutoscaleInterval { interval }) if interval == Duration::ZERO
        ));
    }
}
