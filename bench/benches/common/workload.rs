//! What is measured: the operations of each workload, run on one contender by one or more
//! threads, timed from inside the threads.

use std::fmt;
use std::hint::black_box;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::keys::{self, Dist, Rng};
use crate::common::payload::Payload;
use crate::common::subjects::{Subject, NEVER_CURRENT};

/// One kind of benchmark operation or mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// `get` of a present key.
    GetHit,
    /// `get` of an absent key.
    GetMiss,
    /// `update` (compare-and-swap) at the current version: always succeeds.
    Update,
    /// `update` naming a version the record never had: always refused.
    UpdateStale,
    /// `update_with` at the current version: always succeeds.
    UpdateWith,
    /// `insert` of fresh keys into a map sized for them up front.
    InsertPresized,
    /// `insert` of fresh keys into a map that starts empty and grows.
    InsertGrowing,
    /// `remove` of every key, at its current version.
    Remove,
    /// 98% `get`, 1% `insert`, 1% `remove`.
    ReadMostly,
    /// Churn: 10% `get`, 40% `insert`, 40% `remove`, 10% `update`.
    Churn,
    /// `get` of a present key in a cache with a capacity bound (above the key count, so
    /// every key stays).
    BoundedGetHit,
    /// `insert` of fresh keys into a cache with a capacity bound: once it is full, every
    /// insert evicts.
    InsertEvicting,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::GetHit => "get_hit",
            Workload::GetMiss => "get_miss",
            Workload::Update => "update",
            Workload::UpdateStale => "update_stale",
            Workload::UpdateWith => "update_with",
            Workload::InsertPresized => "insert_presized",
            Workload::InsertGrowing => "insert_growing",
            Workload::Remove => "remove",
            Workload::ReadMostly => "mix_98r_1i_1d",
            Workload::Churn => "churn_10r_40i_40d_10u",
            Workload::BoundedGetHit => "bounded_get_hit",
            Workload::InsertEvicting => "insert_evicting",
        })
    }
}

/// How a workload uses its map over time.
enum Shape {
    /// Operations on a populated map that stays about the same size: any number of them
    /// can be timed in one go.
    Steady,
    /// A pass that inserts every key into an empty map; the map is rebuilt, untimed,
    /// before each pass.
    Fill,
    /// A pass that removes every key from a full map; the map is rebuilt, untimed,
    /// before each pass.
    Drain,
}

impl Workload {
    fn shape(self) -> Shape {
        match self {
            Workload::InsertPresized | Workload::InsertGrowing => Shape::Fill,
            Workload::Remove => Shape::Drain,
            _ => Shape::Steady,
        }
    }

    /// Operations each thread does per unit of [`Bench::run`]: 1 for steady workloads, a
    /// whole pass over its keys for inserts and removes.
    pub(crate) fn ops_per_unit(self, scenario: Scenario) -> u64 {
        match self.shape() {
            Shape::Steady => 1,
            Shape::Fill | Shape::Drain => (scenario.keys / scenario.threads) as u64,
        }
    }

    /// Whether each thread works on keys of its own. Writers that must know the current
    /// version of their keys (to succeed, or to check the outcome) own them; readers share
    /// the whole key space.
    fn partitions_keys(self) -> bool {
        !matches!(
            self,
            Workload::GetHit | Workload::GetMiss | Workload::UpdateStale | Workload::BoundedGetHit
        )
    }
}

/// The size and access pattern a workload runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scenario {
    /// How many records the map holds (and, for inserts, receives).
    pub(crate) keys: usize,
    /// Which keys are touched how often.
    pub(crate) dist: Dist,
    /// How many threads run the workload at once.
    pub(crate) threads: usize,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}t",
            keys_label(self.keys),
            self.dist,
            self.threads
        )
    }
}

/// A key count as benchmark ids show it: `1e3`, `1e6`.
pub(crate) fn keys_label(keys: usize) -> String {
    let exponent = keys.ilog10();
    if 10usize.pow(exponent) == keys {
        format!("1e{exponent}")
    } else {
        keys.to_string()
    }
}

/// What one thread works through: its keys, and the versions of the keys it owns.
struct Lane {
    /// Which thread this is: owned keys are `index * threads + thread`.
    thread: u64,
    stream: Vec<u32>,
    cursor: usize,
    /// The current version of each owned key, `NEVER_CURRENT` if absent.
    versions: Vec<u64>,
    /// Picks the operation in mixes.
    rng: Rng,
    /// How many fresh keys this thread has inserted beyond the populated ones.
    fresh: u64,
}

impl Lane {
    /// The next key index from the stream.
    #[inline]
    fn next_index(&mut self) -> usize {
        let index = self.stream[self.cursor] as usize;
        self.cursor += 1;
        if self.cursor == self.stream.len() {
            self.cursor = 0;
        }
        index
    }
}

/// What every thread runs in one timed pass.
#[derive(Clone, Copy)]
struct Pass {
    workload: Workload,
    keys: u64,
    threads: u64,
    /// Operations per thread in a steady pass.
    ops: u64,
}

/// A workload bound to one contender: the map, populated as the workload needs, and each
/// thread's keys. Every contender of a scenario gets identical key streams.
pub(crate) struct Bench<S, V> {
    subject: S,
    workload: Workload,
    scenario: Scenario,
    lanes: Vec<Lane>,
    value: PhantomData<fn() -> V>,
}

impl<S: Subject<V>, V: Payload> Bench<S, V> {
    /// Builds the contender and prepares it for `workload`.
    ///
    /// # Panics
    ///
    /// If the key count is not a multiple of the thread count, or exceeds `u32::MAX`.
    pub(crate) fn new(workload: Workload, scenario: Scenario) -> Self {
        let Scenario {
            keys,
            dist,
            threads,
        } = scenario;
        assert!(
            threads > 0 && keys % threads == 0,
            "{keys} keys do not split evenly over {threads} threads"
        );
        let range = if workload.partitions_keys() {
            keys / threads
        } else {
            keys
        };
        let lanes = (0..threads)
            .map(|thread| Lane {
                thread: thread as u64,
                stream: keys::stream(dist, range, 0x5EED + thread as u64),
                cursor: 0,
                versions: vec![NEVER_CURRENT; keys / threads],
                rng: Rng::new(0x0DD5 + thread as u64),
                fresh: 0,
            })
            .collect();
        let mut bench = Bench {
            subject: S::build(0),
            workload,
            scenario,
            lanes,
            value: PhantomData,
        };
        bench.rebuild();
        bench
    }

    /// A fresh map in the state the workload starts from (untimed).
    fn rebuild(&mut self) {
        let capacity = match self.workload {
            Workload::InsertGrowing => 0,
            _ => self.scenario.keys,
        };
        // Drop the old map before building the new one, so two are never alive at once.
        self.subject = S::build(0);
        self.subject = S::build(capacity);
        for lane in &mut self.lanes {
            lane.versions.fill(NEVER_CURRENT);
        }
        if !matches!(self.workload.shape(), Shape::Fill) {
            self.populate();
        }
    }

    /// Inserts every key, recording its version with the thread that owns it.
    fn populate(&mut self) {
        let threads = self.scenario.threads;
        for key in 0..self.scenario.keys {
            let version = self
                .subject
                .insert(key as u64, V::make(key as u64))
                .expect("populating inserts fresh keys");
            self.lanes[key % threads].versions[key / threads] = version;
        }
    }

    /// Runs `units` units of the workload on the calling thread and returns the time it
    /// took. For contenders that are not `Sync`.
    ///
    /// # Panics
    ///
    /// If the scenario has more than one thread.
    pub(crate) fn run_local(&mut self, units: u64) -> Duration {
        assert_eq!(
            self.scenario.threads, 1,
            "this contender is single-threaded"
        );
        self.run_with(units, |subject, lanes, pass| {
            run_pass(subject, &mut lanes[0], pass).1
        })
    }

    /// Runs `units` units of the workload; `execute` runs one timed pass on every lane.
    fn run_with(
        &mut self,
        units: u64,
        execute: impl Fn(&S, &mut [Lane], Pass) -> Duration,
    ) -> Duration {
        let mut pass = Pass {
            workload: self.workload,
            keys: self.scenario.keys as u64,
            threads: self.scenario.threads as u64,
            ops: units,
        };
        match self.workload.shape() {
            Shape::Steady => execute(&self.subject, &mut self.lanes, pass),
            Shape::Fill | Shape::Drain => {
                pass.ops = self.workload.ops_per_unit(self.scenario);
                let mut total = Duration::ZERO;
                for _ in 0..units {
                    self.rebuild();
                    total += execute(&self.subject, &mut self.lanes, pass);
                }
                total
            }
        }
    }
}

impl<S: Subject<V> + Sync, V: Payload> Bench<S, V> {
    /// Runs `units` units of the workload on the scenario's threads and returns the time
    /// from the first thread's start to the last one's end.
    pub(crate) fn run(&mut self, units: u64) -> Duration {
        self.run_with(units, in_parallel)
    }
}

/// Runs `pass` on every lane at once, one thread each, all released together; the time
/// from the first thread's start to the last thread's end (so threads that did not
/// actually run at the same time show as slower, not as faster).
fn in_parallel<S: Subject<V> + Sync, V: Payload>(
    subject: &S,
    lanes: &mut [Lane],
    pass: Pass,
) -> Duration {
    if let [lane] = lanes {
        return run_pass(subject, lane, pass).1;
    }
    let start_line = StartLine::new(lanes.len());
    let spans: Vec<(Instant, Duration)> = thread::scope(|scope| {
        let workers: Vec<_> = lanes
            .iter_mut()
            .map(|lane| {
                let start_line = &start_line;
                scope.spawn(move || {
                    start_line.wait();
                    run_pass(subject, lane, pass)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let first_start = spans.iter().map(|span| span.0).min();
    let last_end = spans.iter().map(|(start, took)| *start + *took).max();
    match (first_start, last_end) {
        (Some(start), Some(end)) => end - start,
        _ => Duration::ZERO,
    }
}

/// Releases threads together: each spins until all have arrived, so they start within
/// a fraction of a microsecond of each other instead of waiting to be woken one by one
/// (which, for short runs, would time the wake-ups).
struct StartLine {
    arrived: AtomicUsize,
    expected: usize,
}

impl StartLine {
    fn new(expected: usize) -> Self {
        StartLine {
            arrived: AtomicUsize::new(0),
            expected,
        }
    }

    fn wait(&self) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let mut spins = 0u32;
        while self.arrived.load(Ordering::Acquire) < self.expected {
            spins += 1;
            // Give the processor away now and then, in case the others are waiting for it.
            if spins % 1024 == 0 {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// One thread's timed pass. Every operation's outcome is checked against what the lane
/// knows must happen, and the pass panics if any differs: a benchmark of operations that
/// silently did something else would measure nothing. Returns when it started and how
/// long it took.
fn run_pass<S: Subject<V>, V: Payload>(
    subject: &S,
    lane: &mut Lane,
    pass: Pass,
) -> (Instant, Duration) {
    let start = Instant::now();
    let surprises = match pass.workload {
        Workload::GetHit | Workload::BoundedGetHit => reads(subject, lane, pass.ops, 0, true),
        Workload::GetMiss => reads(subject, lane, pass.ops, pass.keys, false),
        Workload::UpdateStale => stale_updates(subject, lane, pass.ops),
        Workload::Update | Workload::UpdateWith => updates(subject, lane, pass),
        Workload::InsertPresized | Workload::InsertGrowing => fill(subject, lane, pass),
        Workload::Remove => drain(subject, lane, pass),
        Workload::ReadMostly => mix(subject, lane, pass, [98, 1, 1, 0]),
        Workload::Churn => mix(subject, lane, pass, [10, 40, 40, 10]),
        Workload::InsertEvicting => fresh_inserts(subject, lane, pass),
    };
    let elapsed = start.elapsed();
    assert_eq!(
        surprises, 0,
        "{}: {surprises} operations had an unexpected outcome",
        pass.workload
    );
    (start, elapsed)
}

/// `get`s of keys `offset + index`; counts reads whose hit or miss was not `expect_hit`.
fn reads<S: Subject<V>, V: Payload>(
    subject: &S,
    lane: &mut Lane,
    ops: u64,
    offset: u64,
    expect_hit: bool,
) -> u64 {
    let mut surprises = 0;
    for _ in 0..ops {
        let key = offset + lane.next_index() as u64;
        let value = black_box(subject.get(black_box(key)));
        surprises += u64::from(value.is_some() != expect_hit);
    }
    surprises
}

/// `update`s naming a version no record has; counts those that were accepted.
fn stale_updates<S: Subject<V>, V: Payload>(subject: &S, lane: &mut Lane, ops: u64) -> u64 {
    let mut surprises = 0;
    for op in 0..ops {
        let key = lane.next_index() as u64;
        let outcome = subject.update(black_box(key), NEVER_CURRENT, V::make(op));
        surprises += u64::from(outcome.is_some());
    }
    surprises
}

/// The key a lane's index stands for: the lane owns every `threads`-th key.
#[inline]
fn owned_key(lane: &Lane, threads: u64, index: usize) -> u64 {
    index as u64 * threads + lane.thread
}

/// `update`s (or `update_with`s) of owned keys at their current version; counts refusals.
fn updates<S: Subject<V>, V: Payload>(subject: &S, lane: &mut Lane, pass: Pass) -> u64 {
    let mut surprises = 0;
    for op in 0..pass.ops {
        let index = lane.next_index();
        let key = owned_key(lane, pass.threads, index);
        let expected = lane.versions[index];
        let outcome = match pass.workload {
            Workload::UpdateWith => subject.update_with(black_box(key), expected),
            _ => subject.update(black_box(key), expected, V::make(op)),
        };
        match outcome {
            Some(version) => lane.versions[index] = version,
            None => surprises += 1,
        }
    }
    surprises
}

/// `insert`s every owned key, in order, into an empty map; counts refusals.
fn fill<S: Subject<V>, V: Payload>(subject: &S, lane: &mut Lane, pass: Pass) -> u64 {
    let mut surprises = 0;
    for index in 0..pass.ops as usize {
        let key = owned_key(lane, pass.threads, index);
        surprises += u64::from(subject.insert(black_box(key), V::make(key)).is_none());
    }
    surprises
}

/// `insert`s keys never inserted before (beyond the populated ones, each thread its own);
/// counts refusals.
fn fresh_inserts<S: Subject<V>, V: Payload>(subject: &S, lane: &mut Lane, pass: Pass) -> u64 {
    let mut surprises = 0;
    for _ in 0..pass.ops {
        let key = pass.keys + lane.fresh * pass.threads + lane.thread;
        lane.fresh += 1;
        surprises += u64::from(subject.insert(black_box(key), V::make(key)).is_none());
    }
    surprises
}

/// `remove`s every owned key at its version; counts refusals.
fn drain<S: Subject<V>, V: Payload>(subject: &S, lane: &mut Lane, pass: Pass) -> u64 {
    let mut surprises = 0;
    for index in 0..pass.ops as usize {
        let key = owned_key(lane, pass.threads, index);
        surprises += u64::from(!subject.remove(black_box(key), lane.versions[index]));
    }
    surprises
}

/// A mix of operations on owned keys, in percent: `[get, insert, remove, update]`.
///
/// Each operation runs whether or not the key is present (an `insert` of a present key
/// is refused, a `remove` of an absent one too); the lane knows which, and counts
/// outcomes that differ from what must happen.
fn mix<S: Subject<V>, V: Payload>(
    subject: &S,
    lane: &mut Lane,
    pass: Pass,
    [get, insert, remove, _update]: [u64; 4],
) -> u64 {
    let mut surprises = 0;
    for op in 0..pass.ops {
        let index = lane.next_index();
        let key = black_box(owned_key(lane, pass.threads, index));
        let current = lane.versions[index];
        let present = current != NEVER_CURRENT;
        let dice = lane.rng.below(100);
        if dice < get {
            surprises += u64::from(black_box(subject.get(key)).is_some() != present);
        } else if dice < get + insert {
            let outcome = subject.insert(key, V::make(op));
            surprises += u64::from(outcome.is_some() == present);
            if let Some(version) = outcome {
                lane.versions[index] = version;
            }
        } else if dice < get + insert + remove {
            let removed = subject.remove(key, current);
            surprises += u64::from(removed != present);
            if removed {
                lane.versions[index] = NEVER_CURRENT;
            }
        } else {
            let outcome = subject.update(key, current, V::make(op));
            surprises += u64::from(outcome.is_some() != present);
            if let Some(version) = outcome {
                lane.versions[index] = version;
            }
        }
    }
    surprises
}
