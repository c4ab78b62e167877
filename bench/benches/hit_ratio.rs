//! The hit-ratio report: real request traces replayed at three or more cache sizes each
//! against verkv bounded, moka, quick_cache, a plain LRU and the offline optimum
//! (Belady), printed as a Markdown table.
//!
//! ```text
//! cargo bench -p verkv-bench --bench hit_ratio             # every trace, whole (a minute)
//! cargo bench -p verkv-bench --bench hit_ratio -- gli      # traces whose name has this
//! cargo bench -p verkv-bench --bench hit_ratio -- --test   # the first 20,000 requests (CI)
//! cargo bench -p verkv-bench --bench hit_ratio -- --verkv  # verkv alone, for its policy
//! ```
//!
//! The traces are read from `../shared/traces/` relative to the repository root (or from
//! the folder in `VERKV_TRACES`): gzip'd text, one integer key per line; see the README there
//! for their sources. A trace that is not there is skipped with a note. Replay: for each
//! key, `get`; on a miss, insert it. Hit % = hits / requests.
//!
//! How the peers run: moka evicts asynchronously, so `run_pending_tasks` is called after
//! every insert, which makes it apply its admission and eviction before the next request
//! (as a cache that is not read faster than it maintains itself would). quick_cache runs
//! with its defaults. Every cache is built for `size` entries with the same hasher.

use std::collections::{BinaryHeap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use verkv::{DefaultHashBuilder, Store};

/// Requests replayed per trace under `--test`.
const QUICK_PREFIX: usize = 20_000;

/// The traces and the cache sizes each is replayed at.
const TRACES: [(&str, [u64; 3]); 8] = [
    ("arc_OLTP", [1_000, 5_000, 20_000]),
    ("arc_P3", [8_192, 32_768, 131_072]),
    ("c2k_web07", [500, 2_000, 8_000]),
    ("lirs_2_pools", [500, 1_000, 2_000]),
    ("lirs_gli", [250, 500, 1_000]),
    ("lirs_loop", [256, 512, 800]),
    ("lirs_multi2", [500, 1_000, 2_000]),
    ("lirs_sprite", [100, 500, 1_000]),
];

/// The most a verkv hit ratio may trail the better of moka and quick_cache, in points.
const TOLERANCE: f64 = 0.5;

/// A cache as the replay sees it: look a key up; on a miss it is inserted.
trait Replay {
    /// Whether `key` was there; if not, inserts it.
    fn access(&mut self, key: u64) -> bool;
}

/// verkv with a bound of `size` records (default shards, or `shards`).
struct Verkv(Store<u64, u64, verkv::Counter, DefaultHashBuilder>);

impl Verkv {
    fn new(size: u64, shards: Option<usize>) -> Self {
        let builder = Store::builder()
            .max_capacity(size)
            .hasher(DefaultHashBuilder::default());
        let builder = match shards {
            Some(shards) => builder.shards(shards),
            None => builder,
        };
        Verkv(builder.build())
    }
}

impl Replay for Verkv {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.put(key, key).expect("a record of weight 1 fits");
        false
    }
}

struct Moka(moka::sync::Cache<u64, u64, DefaultHashBuilder>);

impl Replay for Moka {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        self.0.run_pending_tasks();
        false
    }
}

struct QuickCache(
    quick_cache::sync::Cache<u64, u64, quick_cache::UnitWeighter, DefaultHashBuilder>,
);

impl Replay for QuickCache {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        false
    }
}

/// A plain LRU: a map from key to node, and the nodes in a doubly linked list kept in a
/// vector, most recent at the head.
struct Lru {
    capacity: usize,
    nodes: Vec<LruNode>,
    index: HashMap<u64, usize>,
    head: usize,
    tail: usize,
}

struct LruNode {
    key: u64,
    prev: usize,
    next: usize,
}

const NIL: usize = usize::MAX;

impl Lru {
    fn new(capacity: u64) -> Self {
        Lru {
            capacity: capacity as usize,
            nodes: Vec::new(),
            index: HashMap::new(),
            head: NIL,
            tail: NIL,
        }
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.nodes[node].prev, self.nodes[node].next);
        match prev {
            NIL => self.head = next,
            prev => self.nodes[prev].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.nodes[next].prev = prev,
        }
    }

    fn push_front(&mut self, node: usize) {
        self.nodes[node].prev = NIL;
        self.nodes[node].next = self.head;
        match self.head {
            NIL => self.tail = node,
            head => self.nodes[head].prev = node,
        }
        self.head = node;
    }
}

impl Replay for Lru {
    fn access(&mut self, key: u64) -> bool {
        if let Some(&node) = self.index.get(&key) {
            self.unlink(node);
            self.push_front(node);
            return true;
        }
        let node = if self.nodes.len() < self.capacity {
            self.nodes.push(LruNode {
                key,
                prev: NIL,
                next: NIL,
            });
            self.nodes.len() - 1
        } else {
            let oldest = self.tail;
            self.unlink(oldest);
            self.index.remove(&self.nodes[oldest].key);
            self.nodes[oldest].key = key;
            oldest
        };
        self.index.insert(key, node);
        self.push_front(node);
        false
    }
}

/// Belady's offline optimum: on a miss with the cache full, drop whichever cached key is
/// next requested furthest in the future (or not at all), possibly the requested one.
fn belady(trace: &[u64], capacity: u64) -> f64 {
    // next_use[i]: where trace[i]'s key is requested next (trace.len(): never).
    let mut next_use = vec![trace.len(); trace.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (position, &key) in trace.iter().enumerate().rev() {
        if let Some(next) = seen.insert(key, position) {
            next_use[position] = next;
        }
    }
    // The cached keys with their next use; the heap may hold outdated pairs, skipped
    // when they surface.
    let mut cached: HashMap<u64, usize> = HashMap::new();
    let mut by_next_use: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut hits = 0u64;
    for (position, &key) in trace.iter().enumerate() {
        let next = next_use[position];
        if cached.contains_key(&key) {
            hits += 1;
        } else if cached.len() as u64 >= capacity {
            // The furthest next use among the cached keys.
            let furthest = loop {
                let (when, candidate) = by_next_use.pop().expect("a full cache has keys");
                if cached.get(&candidate) == Some(&when) {
                    break (when, candidate);
                }
            };
            if furthest.0 <= next {
                // The requested key is needed later than any cached one: not kept.
                by_next_use.push(furthest);
                continue;
            }
            cached.remove(&furthest.1);
        }
        cached.insert(key, next);
        by_next_use.push((next, key));
    }
    percent(hits, trace.len())
}

fn percent(hits: u64, requests: usize) -> f64 {
    100.0 * hits as f64 / requests.max(1) as f64
}

fn replay(cache: &mut dyn Replay, trace: &[u64]) -> f64 {
    let hits = trace.iter().filter(|&&key| cache.access(key)).count();
    percent(hits as u64, trace.len())
}

/// The folder the traces are in.
fn traces_folder() -> PathBuf {
    std::env::var_os("VERKV_TRACES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces"),
        PathBuf::from,
    )
}

/// The keys of trace `name`, or `None` if its file is not there.
fn load(name: &str, limit: Option<usize>) -> Option<Vec<u64>> {
    let path = traces_folder().join(format!("{name}.txt.gz"));
    let file = std::fs::File::open(&path).ok()?;
    let lines = BufReader::new(GzDecoder::new(file)).lines();
    let keys = lines
        .map(|line| line.unwrap_or_else(|error| panic!("reading {}: {error}", path.display())))
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{}: not a key: {line:?}", path.display()))
        })
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Some(keys)
}

fn main() {
    let mut quick = false;
    let mut verkv_only = false;
    let mut filter = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--test" => quick = true,
            "--verkv" => verkv_only = true,
            "--bench" => {}
            _ => filter = Some(arg),
        }
    }
    let limit = quick.then_some(QUICK_PREFIX);
    println!(
        "hit % per trace and cache size{}; target: verkv >= max(moka, quick_cache) - {TOLERANCE}",
        if quick {
            format!(" (first {QUICK_PREFIX} requests of each trace)")
        } else {
            String::new()
        }
    );
    println!();
    println!(
        "| trace | size | verkv | verkv, 1 shard | moka | quick_cache | LRU | Belady | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut missed = 0;
    for (name, sizes) in TRACES {
        if filter
            .as_ref()
            .is_some_and(|part| !name.contains(part.as_str()))
        {
            continue;
        }
        let Some(trace) = load(name, limit) else {
            println!(
                "| {name} | | | | | | | | trace not found in {} |",
                traces_folder().display()
            );
            continue;
        };
        for size in sizes {
            let verkv = replay(&mut Verkv::new(size, None), &trace);
            if verkv_only {
                println!("| {name} | {size} | {verkv:.2} | | | | | | |");
                continue;
            }
            let one_shard = replay(&mut Verkv::new(size, Some(1)), &trace);
            let moka = replay(
                &mut Moka(
                    moka::sync::Cache::builder()
                        .max_capacity(size)
                        .build_with_hasher(DefaultHashBuilder::default()),
                ),
                &trace,
            );
            let quick_cache = replay(
                &mut QuickCache(quick_cache::sync::Cache::with(
                    size as usize,
                    size,
                    quick_cache::UnitWeighter,
                    DefaultHashBuilder::default(),
                    Default::default(),
                )),
                &trace,
            );
            let lru = replay(&mut Lru::new(size), &trace);
            let optimum = belady(&trace, size);
            let floor = moka.max(quick_cache) - TOLERANCE;
            let verdict = if verkv >= floor {
                "met".to_owned()
            } else {
                missed += 1;
                format!("**missed by {:.2}**", floor - verkv)
            };
            println!(
                "| {name} | {size} | {verkv:.2} | {one_shard:.2} | {moka:.2} | {quick_cache:.2} | {lru:.2} | {optimum:.2} | {verdict} |"
            );
        }
    }
    println!();
    println!("target missed at {missed} sizes");
}
