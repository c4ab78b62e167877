//! The hit-ratio report: real request traces replayed at three cache sizes each against
//! verkv bounded, its peers (moka, quick_cache) and reference policies simulated here
//! (LRU, SIEVE, S3-FIFO and Belady's offline optimum, OPT), printed as a Markdown table,
//! then the mean of each column and its mean gap to OPT, over the traces the policy was
//! tuned on and over those held out of its tuning, side by side.
//!
//! ```text
//! cargo bench -p verkv-bench --bench hit_ratio             # every trace, whole (minutes)
//! cargo bench -p verkv-bench --bench hit_ratio -- gli      # traces whose name has this
//! cargo bench -p verkv-bench --bench hit_ratio -- --test   # the first 20,000 requests (CI)
//! cargo bench -p verkv-bench --bench hit_ratio -- --verkv  # verkv alone, for its policy
//! cargo bench -p verkv-bench --bench hit_ratio -- --held-out=gli,loop  # another split
//! ```
//!
//! With `VERKV_BENCH_RESULTS` set to a folder, the rows are also written there as
//! `hit_ratio.csv` (trace, held out or not, size, then one hit % per column), for the
//! report's plots.
//!
//! The traces are read from `../shared/traces/` relative to the repository root (or from
//! the folder in `VERKV_TRACES`): gzip'd text, one integer key per line; see the README there
//! for their sources. A trace that is not there is skipped with a note. Replay: for each
//! key, `get`; on a miss, insert it. Hit % = hits / requests.
//!
//! How the peers run: moka evicts asynchronously. Its column "moka" calls
//! `run_pending_tasks` after every insert, which makes it apply its admission and eviction
//! before the next request (as a cache that is not read faster than it maintains itself
//! would); "moka, as used" does not, and is what an application calling only `get` and
//! `insert` sees (it may hold more than its bound between maintenance passes).
//! quick_cache runs with its defaults. Every cache is built for `size` entries with the
//! same hasher.
//!
//! The targets: on every row, verkv ≥ the best of moka (both ways) and quick_cache − 0.5
//! points, and ≥ LRU − 1 where LRU beats them; over the tuned rows and over the held-out
//! rows alike, verkv's mean ≥ the best peer's mean (moka, quick_cache, LRU) + 0.5.

mod reference;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use verkv::{DefaultHashBuilder, Store};

use reference::{belady, Lru, S3Fifo, Sieve};
use verkv_bench::results::ResultFile;

/// Requests replayed per trace under `--test`.
const QUICK_PREFIX: usize = 20_000;

/// The traces and the cache sizes each is replayed at: the source papers' sizes, or 5%,
/// 10% and 25% of the trace's distinct keys for the traces without any.
const TRACES: [(&str, [u64; 3]); 12] = [
    ("arc_OLTP", [1_000, 5_000, 20_000]),
    ("arc_P3", [8_192, 32_768, 131_072]),
    ("c2k_web07", [500, 2_000, 8_000]),
    ("lirs_2_pools", [500, 1_000, 2_000]),
    ("lirs_gli", [250, 500, 1_000]),
    ("lirs_loop", [256, 512, 800]),
    ("lirs_multi2", [500, 1_000, 2_000]),
    ("lirs_sprite", [100, 500, 1_000]),
    ("lirs_cpp", [61, 122, 306]),
    ("lirs_scan", [100, 200, 500]),
    ("c2k_web12", [688, 1_376, 3_439]),
    ("c2k_orm_busy", [3_817, 7_635, 19_087]),
];

/// The traces held out of the policy's tuning unless `--held-out=` names others: the four
/// added after the policy was first tuned.
const HELD_OUT: [&str; 4] = ["lirs_cpp", "lirs_scan", "c2k_web12", "c2k_orm_busy"];

/// The most a verkv hit ratio may trail the better of moka and quick_cache, in points.
const TOLERANCE: f64 = 0.5;

/// The most a verkv hit ratio may trail LRU where LRU beats moka and quick_cache.
const LRU_TOLERANCE: f64 = 1.0;

/// How far verkv's mean must lead the best peer's, in points.
const MEAN_LEAD: f64 = 0.5;

/// The report's columns after verkv's: the peers, then the reference policies.
const COLUMNS: [&str; 9] = [
    "verkv",
    "verkv, 1 shard",
    "moka",
    "moka, as used",
    "quick_cache",
    "LRU",
    "SIEVE",
    "S3-FIFO",
    "OPT",
];

/// The columns as `hit_ratio.csv` names them, in the same order.
const CSV_COLUMNS: [&str; 9] = [
    "verkv",
    "verkv_1_shard",
    "moka",
    "moka_as_used",
    "quick_cache",
    "lru",
    "sieve",
    "s3fifo",
    "opt",
];

/// The columns whose means verkv's must lead (the peers and LRU).
const PEERS: [usize; 4] = [2, 3, 4, 5];

/// The column of the offline optimum.
const OPT: usize = 8;

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

/// moka, maintained after every insert or not.
struct Moka {
    cache: moka::sync::Cache<u64, u64, DefaultHashBuilder>,
    maintained: bool,
}

impl Moka {
    fn new(size: u64, maintained: bool) -> Self {
        Moka {
            cache: moka::sync::Cache::builder()
                .max_capacity(size)
                .build_with_hasher(DefaultHashBuilder::default()),
            maintained,
        }
    }
}

impl Replay for Moka {
    fn access(&mut self, key: u64) -> bool {
        if self.cache.get(&key).is_some() {
            return true;
        }
        self.cache.insert(key, key);
        if self.maintained {
            self.cache.run_pending_tasks();
        }
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

fn percent(hits: u64, requests: usize) -> f64 {
    100.0 * hits as f64 / requests.max(1) as f64
}

fn replay(mut cache: impl Replay, trace: &[u64]) -> f64 {
    let hits = trace.iter().filter(|&&key| cache.access(key)).count();
    percent(hits as u64, trace.len())
}

/// Every column's hit ratio for one trace at one size (`None` where not measured).
fn measure(trace: &[u64], size: u64, verkv_only: bool) -> [Option<f64>; 9] {
    let verkv = Some(replay(Verkv::new(size, None), trace));
    if verkv_only {
        return [verkv, None, None, None, None, None, None, None, None];
    }
    let quick_cache = QuickCache(quick_cache::sync::Cache::with(
        size as usize,
        size,
        quick_cache::UnitWeighter,
        DefaultHashBuilder::default(),
        Default::default(),
    ));
    [
        verkv,
        Some(replay(Verkv::new(size, Some(1)), trace)),
        Some(replay(Moka::new(size, true), trace)),
        Some(replay(Moka::new(size, false), trace)),
        Some(replay(quick_cache, trace)),
        Some(replay(Lru::new(size), trace)),
        Some(replay(Sieve::new(size), trace)),
        Some(replay(S3Fifo::new(size), trace)),
        Some(percent(belady(trace, size), trace.len())),
    ]
}

/// Whether verkv's `row` meets the per-row target, and if not by how much it misses.
fn verdict(row: &[Option<f64>; 9]) -> Option<String> {
    let [Some(verkv), _, Some(moka), Some(moka_used), Some(quick_cache), Some(lru), ..] = *row
    else {
        return None;
    };
    let best = moka.max(moka_used).max(quick_cache);
    let mut floor = best - TOLERANCE;
    if lru > best {
        floor = floor.max(lru - LRU_TOLERANCE);
    }
    Some(if verkv >= floor {
        "met".to_owned()
    } else {
        format!("**missed by {:.2}**", floor - verkv)
    })
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

/// The command line.
struct Options {
    quick: bool,
    verkv_only: bool,
    filter: Option<String>,
    /// Parts of the names of the traces held out of tuning.
    held_out: Vec<String>,
}

impl Options {
    fn parse() -> Self {
        let mut options = Options {
            quick: false,
            verkv_only: false,
            filter: None,
            held_out: HELD_OUT.map(str::to_owned).to_vec(),
        };
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--test" => options.quick = true,
                "--verkv" => options.verkv_only = true,
                "--bench" => {}
                _ => match arg.strip_prefix("--held-out=") {
                    Some(names) => {
                        options.held_out = names.split(',').map(str::to_owned).collect();
                    }
                    None => options.filter = Some(arg),
                },
            }
        }
        options
    }

    fn held_out(&self, name: &str) -> bool {
        self.held_out
            .iter()
            .any(|part| name.contains(part.as_str()))
    }
}

/// The rows of one group (tuned or held out): their hit ratios, for the means.
#[derive(Default)]
struct Group {
    rows: Vec<[Option<f64>; 9]>,
}

impl Group {
    /// The mean of `column` over the group's rows, if measured on all of them.
    fn mean(&self, column: usize) -> Option<f64> {
        let values: Option<Vec<f64>> = self.rows.iter().map(|row| row[column]).collect();
        let values = values.filter(|values| !values.is_empty())?;
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }

    /// The mean's line of the summary, and the gap to OPT's line.
    fn print(&self, label: &str) {
        let cell = |value: Option<f64>| value.map_or_else(String::new, |v| format!("{v:.2}"));
        let means: Vec<String> = (0..COLUMNS.len()).map(|c| cell(self.mean(c))).collect();
        let opt = self.mean(OPT);
        let gaps: Vec<String> = (0..COLUMNS.len())
            .map(|c| cell(opt.zip(self.mean(c)).map(|(opt, mean)| opt - mean)))
            .collect();
        let best_peer = PEERS.iter().filter_map(|&c| self.mean(c)).reduce(f64::max);
        let target = match (self.mean(0), best_peer) {
            (Some(verkv), Some(peer)) if verkv >= peer + MEAN_LEAD => {
                format!("met (+{:.2} over the best peer)", verkv - peer)
            }
            (Some(verkv), Some(peer)) => {
                format!("**missed by {:.2}**", peer + MEAN_LEAD - verkv)
            }
            _ => String::new(),
        };
        let rows = self.rows.len();
        println!(
            "| {label}: mean of {rows} rows | | {} | {target} |",
            means.join(" | ")
        );
        println!("| {label}: mean gap to OPT | | {} | |", gaps.join(" | "));
    }
}

fn main() {
    let options = Options::parse();
    let limit = options.quick.then_some(QUICK_PREFIX);
    println!(
        "hit % per trace and cache size{}; held out of tuning: {}",
        if options.quick {
            format!(" (first {QUICK_PREFIX} requests of each trace)")
        } else {
            String::new()
        },
        options.held_out.join(", "),
    );
    println!();
    println!("| trace | size | {} | target |", COLUMNS.join(" | "));
    println!("|---|---:|{}---|", "---:|".repeat(COLUMNS.len()));
    let header: Vec<&str> = ["trace", "held_out", "size"]
        .into_iter()
        .chain(CSV_COLUMNS)
        .collect();
    let mut out = ResultFile::create("hit_ratio.csv", &header);
    let (mut tuned, mut held_out) = (Group::default(), Group::default());
    let mut missed = 0;
    for (name, sizes) in TRACES {
        if options
            .filter
            .as_ref()
            .is_some_and(|part| !name.contains(part.as_str()))
        {
            continue;
        }
        let Some(trace) = load(name, limit) else {
            println!(
                "| {name} | |{} trace not found in {} |",
                " |".repeat(COLUMNS.len()),
                traces_folder().display()
            );
            continue;
        };
        let group = if options.held_out(name) {
            &mut held_out
        } else {
            &mut tuned
        };
        let label = if options.held_out(name) {
            format!("{name} (held out)")
        } else {
            name.to_owned()
        };
        for size in sizes {
            let row = measure(&trace, size, options.verkv_only);
            let verdict = verdict(&row).unwrap_or_default();
            missed += usize::from(verdict.starts_with("**"));
            let cells: Vec<String> = row
                .iter()
                .map(|value| value.map_or_else(String::new, |v| format!("{v:.2}")))
                .collect();
            println!("| {label} | {size} | {} | {verdict} |", cells.join(" | "));
            let fields = [
                name.to_owned(),
                options.held_out(name).to_string(),
                size.to_string(),
            ];
            let values = row
                .iter()
                .map(|value| value.map_or_else(String::new, |v| format!("{v:.3}")));
            out.row(&fields.into_iter().chain(values).collect::<Vec<_>>());
            group.rows.push(row);
        }
    }
    println!();
    println!("| rows | | {} | target |", COLUMNS.join(" | "));
    println!("|---|---:|{}---|", "---:|".repeat(COLUMNS.len()));
    tuned.print("tuned");
    held_out.print("held out");
    let all = Group {
        rows: tuned.rows.into_iter().chain(held_out.rows).collect(),
    };
    all.print("all");
    println!();
    println!("per-row target missed at {missed} rows");
}
