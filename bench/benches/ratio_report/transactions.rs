//! Transactions across keys measured against what they build on and what they replace:
//! a 2-key transaction against one `update` (its keys on two shards, and on one), a
//! 2-key `get_many` (and `get_many_array`) against one `get`, transactions on disjoint
//! shards at 2 threads against 1, and transfers through `transact` against the same
//! transfers under one global `Mutex<HashMap>`, at 2 threads.

use std::collections::HashMap;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use verkv::{Store, Transaction};

use verkv_bench::results::ResultFile;

use super::{interleave, judge, row, Limit};
use crate::common::plan::Slice;

/// One comparison: ours against one peer, with its target.
pub(crate) struct TxnComparison {
    /// How the report names it.
    pub(crate) id: &'static str,
    peer: &'static str,
    limit: Limit,
    wording: &'static str,
    /// Builds ours and the peer, each with its store prepared.
    make: fn() -> Vec<Box<dyn Slice>>,
}

/// A contender: `work(thread, units)` on each of `threads` threads, released together;
/// the time from the first thread's start to the last one's end.
struct Threads<F> {
    threads: usize,
    work: F,
}

impl<F: Fn(usize, u64) + Sync> Slice for Threads<F> {
    fn run(&mut self, units: u64) -> Duration {
        if self.threads == 1 {
            let started = Instant::now();
            (self.work)(0, units);
            return started.elapsed();
        }
        let start_line = Barrier::new(self.threads);
        let spans: Vec<(Instant, Instant)> = thread::scope(|scope| {
            let workers: Vec<_> = (0..self.threads)
                .map(|thread| {
                    let (start_line, work) = (&start_line, &self.work);
                    scope.spawn(move || {
                        start_line.wait();
                        let started = Instant::now();
                        work(thread, units);
                        (started, Instant::now())
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap())
                .collect()
        });
        let first = spans.iter().map(|span| span.0).min().expect("a thread");
        let last = spans.iter().map(|span| span.1).max().expect("a thread");
        last - first
    }
}

fn on(threads: usize, work: impl Fn(usize, u64) + Sync + 'static) -> Box<dyn Slice> {
    Box::new(Threads { threads, work })
}

/// `count` keys of `store`, each on a shard of its own, or all on one shard if
/// `together`. (Every store seeds its hasher at random: keys are placed by the store
/// that will hold them.)
fn keys(store: &Store<u64, u64>, count: usize, together: bool) -> Vec<u64> {
    let mut keys: Vec<u64> = Vec::new();
    for key in 0.. {
        let shard = store.shard_of(&key);
        let fits = match keys.first() {
            None => true,
            Some(first) if together => store.shard_of(first) == shard,
            Some(_) => keys.iter().all(|other| store.shard_of(other) != shard),
        };
        if fits {
            keys.push(key);
            if keys.len() == count {
                break;
            }
        }
    }
    keys
}

/// A store holding 0 for `count` keys placed as [`keys`] says, and those keys.
fn stored(count: usize, together: bool) -> (Store<u64, u64>, Vec<u64>) {
    let store = Store::new();
    let keys = keys(&store, count, together);
    for &key in &keys {
        store.insert(key, 0).unwrap();
    }
    (store, keys)
}

/// Ours: 2-key transactions (two CAS updates) on `a` and `b`; the peer: one `update`.
fn transaction_vs_update(together: bool) -> Vec<Box<dyn Slice>> {
    let (ours, pair) = stored(2, together);
    let (a, b) = (pair[0], pair[1]);
    let versions = Mutex::new((1u64, 1u64));
    let txn = on(1, move |_, units| {
        let mut held = versions.lock().unwrap();
        for n in 0..units {
            let (va, vb) = *held;
            let done = ours
                .commit(Transaction::new().update(a, va, n).update(b, vb, n))
                .unwrap();
            *held = (*done[0].version().unwrap(), *done[1].version().unwrap());
        }
    });
    let (theirs, one) = stored(1, false);
    let a = one[0];
    let version = Mutex::new(1u64);
    let update = on(1, move |_, units| {
        let mut held = version.lock().unwrap();
        for n in 0..units {
            *held = theirs.update(&a, &held, n).unwrap();
        }
    });
    vec![txn, update]
}

/// Ours: a 2-key `get_many` (keys on two shards), or with `array` the same through
/// `get_many_array`; the peer: one `get`.
fn get_many_vs_get(array: bool) -> Vec<Box<dyn Slice>> {
    let (ours, pair) = stored(2, false);
    let (a, b) = (pair[0], pair[1]);
    let many = on(1, move |_, units| {
        for _ in 0..units {
            if array {
                std::hint::black_box(ours.get_many_array([&a, &b]));
            } else {
                std::hint::black_box(ours.get_many(&[&a, &b]));
            }
        }
    });
    let (theirs, key) = stored(1, false);
    let one = on(1, move |_, units| {
        for _ in 0..units {
            std::hint::black_box(theirs.get(&key[0]));
        }
    });
    vec![many, one]
}

/// 2-key transactions, each thread on two shards of its own: ours at 2 threads, the
/// peer the same at 1 (ns per transaction per thread: the throughput scales by 2/ratio).
fn disjoint_scaling() -> Vec<Box<dyn Slice>> {
    let at = |threads: usize| {
        let (store, four) = stored(4, false);
        let versions: Vec<Mutex<(u64, u64)>> = (0..2).map(|_| Mutex::new((1, 1))).collect();
        on(threads, move |thread, units| {
            let (a, b) = (four[2 * thread], four[2 * thread + 1]);
            let mut held = versions[thread].lock().unwrap();
            for n in 0..units {
                let (va, vb) = *held;
                let done = store
                    .commit(Transaction::new().update(a, va, n).update(b, vb, n))
                    .unwrap();
                *held = (*done[0].version().unwrap(), *done[1].version().unwrap());
            }
        })
    };
    vec![at(2), at(1)]
}

/// Accounts the transfers move money between.
const ACCOUNTS: u64 = 64;

/// A transfer's accounts and amount, from a per-thread step counter.
fn transfer(thread: usize, step: u64) -> (u64, u64, u64) {
    let mixed = (step ^ (thread as u64) << 40).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let from = (mixed >> 32) % ACCOUNTS;
    let to = (from + 1 + (mixed >> 16) % (ACCOUNTS - 1)) % ACCOUNTS;
    (from, to, mixed % 7)
}

/// Transfers at 2 threads: ours through `transact` (a `get_many`, then a transaction on
/// condition nothing moved); the peer under one global `Mutex<HashMap>` holding value and
/// version, reading and writing both accounts under the lock.
fn transfers_vs_global_mutex() -> Vec<Box<dyn Slice>> {
    let accounts: Vec<u64> = (0..ACCOUNTS).collect();
    let store = Store::new();
    for &account in &accounts {
        store.insert(account, 1_000_000u64).unwrap();
    }
    let steps: Vec<Mutex<u64>> = (0..2).map(|_| Mutex::new(0)).collect();
    let ours = on(2, move |thread, units| {
        let mut step = steps[thread].lock().unwrap();
        for _ in 0..units {
            *step += 1;
            let (from, to, amount) = transfer(thread, *step);
            let _ = store.transact(&[from, to], |read| {
                let (Some(source), Some(target)) = (&read[0], &read[1]) else {
                    return Err(());
                };
                if source.value < amount {
                    return Err(());
                }
                Ok(Transaction::new()
                    .put(from, source.value - amount)
                    .put(to, target.value + amount))
            });
        }
    });
    let map: Mutex<HashMap<u64, (u64, u64), verkv::DefaultHashBuilder>> = Mutex::new(
        accounts
            .iter()
            .map(|&account| (account, (1_000_000, 1)))
            .collect(),
    );
    let steps: Vec<Mutex<u64>> = (0..2).map(|_| Mutex::new(0)).collect();
    let theirs = on(2, move |thread, units| {
        let mut step = steps[thread].lock().unwrap();
        for _ in 0..units {
            *step += 1;
            let (from, to, amount) = transfer(thread, *step);
            let mut map = map.lock().unwrap();
            let (source, source_version) = map[&from];
            let (target, target_version) = map[&to];
            if source >= amount {
                map.insert(from, (source - amount, source_version + 1));
                map.insert(to, (target + amount, target_version + 1));
            }
        }
    });
    vec![ours, theirs]
}

/// The comparisons, each with the target.
pub(crate) fn comparisons() -> Vec<TxnComparison> {
    vec![
        TxnComparison {
            id: "txn_2key/distinct_shards/1",
            peer: "verkv-update",
            limit: Limit::AtMost(2.5),
            wording: "<= 2.5x one update",
            make: || transaction_vs_update(false),
        },
        TxnComparison {
            id: "txn_2key/one_shard/1",
            peer: "verkv-update",
            limit: Limit::AtMost(1.5),
            wording: "<= 1.5x one update",
            make: || transaction_vs_update(true),
        },
        TxnComparison {
            id: "get_many_2key/distinct_shards/1",
            peer: "verkv-get",
            limit: Limit::AtMost(2.5),
            wording: "<= 2.5x one get",
            make: || get_many_vs_get(false),
        },
        TxnComparison {
            id: "get_many_array_2key/distinct_shards/1",
            peer: "verkv-get",
            limit: Limit::AtMost(2.5),
            wording: "<= 2.5x one get",
            make: || get_many_vs_get(true),
        },
        TxnComparison {
            id: "txn_2key/disjoint_shards/2",
            peer: "verkv-txn-1-thread",
            limit: Limit::AtMost(2.0 / 1.7),
            wording: "2 threads >= 1.7x the throughput of 1",
            make: disjoint_scaling,
        },
        TxnComparison {
            id: "transfers/64_accounts/2",
            peer: "Mutex<HashMap>",
            limit: Limit::AtMost(1.0),
            wording: "faster than one global lock",
            make: transfers_vs_global_mutex,
        },
    ]
}

/// Measures one comparison: its table row.
pub(crate) fn measure(
    comparison: TxnComparison,
    plan: (usize, Duration, usize),
    out: &mut ResultFile,
) -> String {
    let mut slices = (comparison.make)();
    let pairs = interleave(&mut slices, 1.0, plan);
    let verdict = judge(&pairs[0], comparison.limit, comparison.wording);
    row(comparison.id, comparison.peer, &pairs[0], &verdict, out)
}
