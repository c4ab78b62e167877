//! A warm restart: a store of a million records goes to a snapshot file and comes back
//! in a new store with every value and version, and a client's version from before the
//! restart is still refused once stale.
//!
//! ```text
//! cargo run --release --all-features --example warm_restart -- [--records N] [--rounds N] [--window-ms N]
//! ```
//!
//! Fills a store with `N` `u64` → `u64` records (pseudo-random 64-bit values), updates
//! a tenth of them and removes a thousandth, snapshots it to a file in a temporary
//! directory, restores a new store from the file and compares every record. Then it
//! measures `get` throughput on one thread while snapshots run on another, against the
//! same reads with no snapshot, in alternating windows of the same run (`--rounds` of
//! each, `--window-ms` long). Last, the same round trip for `N` small documents (a struct
//! of five fields, two of them strings, through serde: the "small JSON records" of a web
//! service's cache). Prints the timings and ends with one summary line; exits non-zero if
//! anything differs.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use verkv::{Error, Store, StoreBuilder};

const USAGE: &str = "usage: warm_restart [--records N] [--rounds N] [--window-ms N]";

struct Options {
    records: u64,
    rounds: usize,
    window: Duration,
}

impl Options {
    fn from_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            records: 1_000_000,
            rounds: 5,
            window: Duration::from_millis(300),
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number: u64 = value
                .parse()
                .map_err(|_| format!("{flag} takes a number, not {value:?}"))?;
            match flag.as_str() {
                "--records" if number >= 1000 => options.records = number,
                "--records" => return Err(format!("--records {number}: at least 1000")),
                "--rounds" => options.rounds = number.max(1) as usize,
                "--window-ms" => options.window = Duration::from_millis(number.max(10)),
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(options)
    }
}

/// A record's value: pseudo-random, all 64 bits used (the worst case for the snapshot's
/// variable-length integers).
fn value(key: u64, round: u64) -> u64 {
    let mut x = key ^ round.wrapping_mul(0xA076_1D64_78BD_642F);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A directory of its own under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("verkv-warm-restart-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The key whose version a client holds across the restart.
const CLIENT: u64 = 40;

fn milliseconds(duration: Duration) -> u128 {
    duration.as_millis()
}

fn main() -> ExitCode {
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("warm_restart: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("warm_restart: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let n = options.records;
    let started = Instant::now();
    let store: Store<u64, u64> = Store::builder().capacity(n as usize).build();
    // `n` records stay; a thousandth more come, are written and go: their versions are
    // retired, and must never be handed out again.
    let gone = n..n + n / 1000;
    for key in 0..gone.end {
        store
            .insert(key, value(key, 0))
            .map_err(|e| e.to_string())?;
    }
    // A client reads a record and keeps its version, as an ETag, across the restart; the
    // record then moves on (it is one of those written again).
    let held = store.get(&CLIENT).ok_or("the client's key is missing")?;
    // A tenth of the records are written twice more.
    for key in (0..n).step_by(10) {
        for round in 1..=2 {
            let current = store.version(&key).ok_or("a key went missing")?;
            store
                .update(&key, &current, value(key, round))
                .map_err(|e| e.to_string())?;
        }
    }
    for key in gone.clone() {
        let current = store
            .update(&key, &1, value(key, 1))
            .map_err(|e| e.to_string())?;
        store.remove(&key, &current).map_err(|e| e.to_string())?;
    }
    println!(
        "filled {} records ({} written twice more; {} more created, written and removed) in {} ms",
        store.len(),
        n.div_ceil(10),
        gone.end - gone.start,
        milliseconds(started.elapsed())
    );

    let dir = TempDir::new().map_err(|e| format!("temporary directory: {e}"))?;
    let path = dir.0.join("cache.snapshot");
    let started = Instant::now();
    let written = store.snapshot_to_file(&path).map_err(|e| e.to_string())?;
    let snapshot_time = started.elapsed();
    let raw = written.records * 24;
    println!(
        "snapshot: {written} in {} ms (synced and renamed into place); {:.2} bytes per record, \
         {:.2}x the raw 24 bytes of key, value and version",
        milliseconds(snapshot_time),
        written.bytes as f64 / written.records as f64,
        written.bytes as f64 / raw as f64
    );

    let started = Instant::now();
    let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (restored, report) = StoreBuilder::<u64, u64>::new()
        .capacity(n as usize)
        .restore(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| e.to_string())?;
    let restore_time = started.elapsed();
    println!("restore: {report} in {} ms", milliseconds(restore_time));

    let mut compared = 0u64;
    for (key, record) in store.iter() {
        if restored.get(&key).as_ref() != Some(&record) {
            return Err(format!(
                "key {key}: {record:?} before, {:?} after",
                restored.get(&key)
            ));
        }
        compared += 1;
    }
    if restored.len() as u64 != compared || compared != n {
        return Err(format!(
            "{} records after, {compared} before, {n} written",
            restored.len()
        ));
    }
    println!("compared: all {compared} records have the same value and version");

    stale_versions_stay_stale(&restored, held.version, gone.start)?;
    reads_during_snapshots(&restored, options)?;
    documents_round_trip(n, &dir)?;

    println!(
        "warm restart: {compared} records restored, all identical (snapshot {} ms, {:.1} MB; \
         restore {} ms)",
        milliseconds(snapshot_time),
        written.bytes as f64 / 1e6,
        milliseconds(restore_time)
    );
    Ok(())
}

/// A small record of the kind a web service caches as a JSON document: a few fields,
/// strings among them, through serde like any user type.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Profile {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: u32,
}

impl Profile {
    fn of(id: u64) -> Profile {
        Profile {
            id,
            name: format!("user {id}"),
            email: format!("user{id}@example.org"),
            active: id % 3 != 0,
            score: value(id, 7) as u32,
        }
    }
}

/// `n` small documents to a snapshot file and back, every one compared.
fn documents_round_trip(n: u64, dir: &TempDir) -> Result<(), String> {
    let store: Store<u64, Profile> = Store::builder().capacity(n as usize).build();
    for id in 0..n {
        store
            .insert(id, Profile::of(id))
            .map_err(|e| e.to_string())?;
    }
    let path = dir.0.join("documents.snapshot");
    let started = Instant::now();
    let written = store.snapshot_to_file(&path).map_err(|e| e.to_string())?;
    let snapshot_time = started.elapsed();
    let started = Instant::now();
    let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (restored, _) = StoreBuilder::<u64, Profile>::new()
        .capacity(n as usize)
        .restore(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| e.to_string())?;
    let restore_time = started.elapsed();
    for id in 0..n {
        if restored.get(&id) != store.get(&id) {
            return Err(format!("document {id} differs after the restore"));
        }
    }
    println!(
        "documents: {n} small records restored, all identical (snapshot {} ms, {:.1} MB; \
         restore {} ms)",
        milliseconds(snapshot_time),
        written.bytes as f64 / 1e6,
        milliseconds(restore_time)
    );
    Ok(())
}

/// A version a client held from before the restart is refused once the record moved on,
/// and a removed key created again does not get its old versions back.
fn stale_versions_stay_stale(
    restored: &Store<u64, u64>,
    held: u64,
    removed: u64,
) -> Result<(), String> {
    let current = restored
        .version(&CLIENT)
        .ok_or("the client's key is missing")?;
    if current == held {
        return Err("the client's record did not move on".to_string());
    }
    let refused = restored
        .update(&CLIENT, &held, 0)
        .err()
        .ok_or("a stale version was accepted")?;
    println!(
        "key {CLIENT}: the client's version {held} from before the restart is refused: {}",
        refused.error
    );
    let written = restored
        .update(&CLIENT, &current, 1)
        .map_err(|e| e.to_string())?;
    let refused = restored
        .update(&CLIENT, &current, 2)
        .err()
        .ok_or("a stale version was accepted")?;
    if refused.error
        != (Error::Stale {
            expected: current,
            current: written,
        })
    {
        return Err(format!("key {CLIENT}: {}", refused.error));
    }
    println!(
        "key {CLIENT}: after a write (version {written}), version {current} held from before \
         the restart is refused too: {}",
        refused.error
    );
    // Removed at version 2 before the restart; a client may still hold 1 or 2.
    let again = restored.insert(removed, 0).map_err(|e| e.to_string())?;
    for old in [1, 2] {
        if restored.update(&removed, &old, 1).is_ok() {
            return Err(format!("key {removed}: its old version {old} was accepted"));
        }
    }
    println!(
        "key {removed}: removed at version 2 before the restart, created again at version \
         {again}; its old versions 1 and 2 are refused"
    );
    Ok(())
}

/// The CPU time this thread has had, where the system says (Linux's schedstat), so that
/// reads can be counted per second of CPU as well as per second of the clock: on a busy
/// machine a snapshot thread also takes CPU from the reader, which says nothing of the
/// store.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Reads per second of the clock, and per second of the reader's CPU time (the same if
/// the system does not say).
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: f64,
}

/// `get` throughput on one thread, with snapshots running on another and without, in
/// alternating windows. Prints the medians, and the median of the ratios of each window
/// with snapshots to the quiet one before it.
fn reads_during_snapshots(store: &Store<u64, u64>, options: &Options) -> Result<(), String> {
    let keys = options.records;
    let mut quiet = Vec::new();
    let mut busy = Vec::new();
    let mut snapshots = 0u32;
    let mut buffer = Vec::new();
    for round in 0..options.rounds * 2 {
        let with_snapshots = round % 2 == 1;
        let stop = AtomicBool::new(false);
        let rate = thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let started = Instant::now();
                let cpu_start = thread_cpu_time();
                let mut reads = 0u64;
                let mut x = 0x2545_F491_4F6C_DD1Du64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        std::hint::black_box(store.get(&(x % keys)));
                    }
                    reads += 256;
                }
                let wall = started.elapsed();
                let cpu = cpu_start
                    .zip(thread_cpu_time())
                    .map(|(start, end)| end.saturating_sub(start))
                    .filter(|cpu| !cpu.is_zero())
                    .unwrap_or(wall);
                Rate {
                    wall: reads as f64 / wall.as_secs_f64(),
                    cpu: reads as f64 / cpu.as_secs_f64().max(1e-9),
                }
            });
            let started = Instant::now();
            let mut written = Ok(());
            if with_snapshots {
                // Into memory, as into a file's page cache, without the disk.
                while written.is_ok() && started.elapsed() < options.window {
                    buffer.clear();
                    written = store.snapshot_to(&mut buffer).map(|_| snapshots += 1);
                }
            } else {
                thread::sleep(options.window);
            }
            stop.store(true, Ordering::Relaxed);
            let rate = reader.join().map_err(|_| "the reader panicked".to_string());
            written.map_err(|e| e.to_string()).and(rate)
        })?;
        if with_snapshots {
            busy.push(rate);
        } else {
            quiet.push(rate);
        }
    }
    for (name, of) in [
        ("per second", (|rate: &Rate| rate.wall) as fn(&Rate) -> f64),
        ("per CPU-second of the reader", |rate: &Rate| rate.cpu),
    ] {
        let quiet: Vec<f64> = quiet.iter().map(of).collect();
        let busy: Vec<f64> = busy.iter().map(of).collect();
        let ratios: Vec<f64> = busy.iter().zip(&quiet).map(|(b, q)| b / q).collect();
        println!(
            "get on one thread, {name}: {:.2} M without snapshots (range {}), {:.2} M while \
             snapshots ran on another thread (range {}): {:.0}% of it (median of {} paired \
             windows, range {}%)",
            median(&quiet) / 1e6,
            range(&quiet, 1e-6),
            median(&busy) / 1e6,
            range(&busy, 1e-6),
            median(&ratios) * 100.0,
            ratios.len(),
            range(&ratios, 100.0),
        );
    }
    println!("({snapshots} snapshots ran in the windows with snapshots)");
    Ok(())
}

/// The median of `values`.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The range of `values`, each times `scale`.
fn range(values: &[f64], scale: f64) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    format!("{:.2}-{:.2}", low * scale, high * scale)
}
