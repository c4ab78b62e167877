//! The ratio report: ours against each peer, interleaved in short slices over many rounds
//! in one process, printed as ours/peer median (min–max) per workload, as a Markdown
//! table.
//!
//! ```text
//! cargo bench -p verkv-bench --bench ratio_report             # the default plan, minutes
//! VERKV_BENCH_LONG=1 cargo bench -p verkv-bench --bench ratio_report  # key counts to 1e7
//! cargo bench -p verkv-bench --bench ratio_report -- get_hit  # ids containing this only
//! cargo bench -p verkv-bench --bench ratio_report -- --test   # one short round (CI)
//! VERKV_BENCH_PLAN=report cargo bench -p verkv-bench --bench ratio_report  # the report's plan
//! ```
//!
//! With `VERKV_BENCH_RESULTS` set to a folder, the rows are also written there as
//! `ratio_report.csv`, for the report's plots (see `bench/report`).
//!
//! Why interleaved: shared machines drift in speed by tens of percent between runs, and
//! even within one. Running ours and a peer for a millisecond or two each, back to back,
//! round after round, exposes both to the same drift; each round gives one ratio
//! per peer, and the median over rounds discards the rounds a burst of outside load
//! disturbed.

#[path = "../common/mod.rs"]
mod common;
mod targets;
mod transactions;

use std::process::Command;
use std::time::{Duration, Instant};

use common::plan::{self, Comparison, Slice};
use verkv_bench::results::ResultFile;

/// Rounds per comparison: each gives one ratio per peer.
const ROUNDS: usize = 31;

/// Roughly how long one timed run lasts (at least one unit: a whole pass for inserts and
/// removes).
const RUN: Duration = Duration::from_millis(1);

/// Timed runs per slice; the slice's speed is that of its fastest run.
const RUNS_PER_SLICE: usize = 5;

/// A run that is expected to last longer than this many times the planned run time (a
/// whole pass of inserts or removes over a million keys) is measured with
/// [`HEAVY_ROUNDS`] rounds of one run each, so that a comparison stays within seconds.
const HEAVY_FACTOR: u32 = 10;

/// Rounds per comparison for heavy runs (see [`HEAVY_FACTOR`]).
const HEAVY_ROUNDS: usize = 9;

/// How many units of `slice` take about `target` in the fastest of `runs` runs, found by
/// doubling from one unit: the same estimate the measurement uses, so that a run slowed
/// by a late thread start or a descheduling does not shrink the calibrated size. Also
/// how long a run of that many units is expected to take.
fn calibrate(slice: &mut dyn Slice, target: Duration, runs: usize) -> (u64, Duration) {
    let mut units = 1u64;
    loop {
        let took = (0..runs)
            .map(|_| slice.run(units))
            .min()
            .expect("at least one run");
        if took >= target / 4 || units >= 1 << 40 {
            let scale = target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            let calibrated = ((units as f64 * scale) as u64).max(1);
            return (calibrated, took.mul_f64(calibrated as f64 / units as f64));
        }
        units *= 2;
    }
}

/// The median, minimum and maximum of `values`.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

/// Nanoseconds per operation per thread in one slice: the fastest of its runs of `units`
/// units each.
///
/// On a loaded machine a run is sometimes descheduled part-way, which adds milliseconds
/// that have nothing to do with the contender; runs this short mostly escape that, and
/// the fastest of a few almost surely did.
fn nanos_per_op(slice: &mut dyn Slice, units: u64, ops_per_unit: f64, runs: usize) -> f64 {
    (0..runs)
        .map(|_| slice.run(units))
        .min()
        .expect("a slice has at least one run")
        .as_secs_f64()
        * 1e9
        / (units as f64 * ops_per_unit)
}

/// Measures one comparison; its table rows.
///
/// Each round runs ours and each peer back to back, in pairs: a pair's ratio compares two
/// slices taken moments apart, so drift and outside load affect both alike. The order
/// within a pair alternates and the order of the peers rotates from round to round.
fn measure(
    comparison: &Comparison,
    (rounds, run_time, runs): (usize, Duration, usize),
    out: &mut ResultFile,
) -> String {
    let mut slices: Vec<Box<dyn Slice>> = comparison
        .contenders
        .iter()
        .map(|contender| (contender.make)())
        .collect();
    let ops_per_unit = comparison.ops_per_unit() as f64 / comparison.scenario.threads as f64;
    let pairs = interleave(&mut slices, ops_per_unit, (rounds, run_time, runs));
    let mut rows = String::new();
    for (contender, pairs) in comparison.contenders[1..].iter().zip(&pairs) {
        let verdict =
            match targets::target(comparison.workload, comparison.scenario, contender.name) {
                Some((limit, wording)) => judge(pairs, Limit::AtMost(limit), wording),
                None => match targets::floor(comparison.workload, contender.name) {
                    Some((least, wording)) => judge(pairs, Limit::AtLeast(least), wording),
                    None => String::new(),
                },
            };
        rows.push_str(&row(&comparison.id(), contender.name, pairs, &verdict, out));
    }
    rows
}

/// A bound on the median ratio ours/peer.
#[derive(Clone, Copy)]
enum Limit {
    AtMost(f64),
    AtLeast(f64),
}

/// The verdict on `pairs` (ours, peer) against `limit`, with the target's wording.
fn judge(pairs: &[(f64, f64)], limit: Limit, wording: &str) -> String {
    let (median, _, _) = spread(
        &mut pairs
            .iter()
            .map(|(ours, peer)| ours / peer)
            .collect::<Vec<_>>(),
    );
    match limit {
        Limit::AtMost(limit) if median <= limit => format!("met ({wording})"),
        Limit::AtMost(limit) => format!(
            "**missed by {:.0}%** ({wording})",
            (median / limit - 1.0) * 100.0
        ),
        Limit::AtLeast(least) if median >= least => format!("met ({wording})"),
        Limit::AtLeast(least) => format!(
            "**missed by {:.0}%** ({wording})",
            (least / median - 1.0) * 100.0
        ),
    }
}

/// The header of `ratio_report.csv`: one line per row of the printed table.
const CSV_HEADER: [&str; 9] = [
    "id",
    "peer",
    "ours_ns",
    "peer_ns",
    "ratio_median",
    "ratio_min",
    "ratio_max",
    "rounds",
    "target",
];

/// One table row: the medians of ours and of the peer, and the ratio's median and range;
/// written to `out` as well.
fn row(id: &str, peer: &str, pairs: &[(f64, f64)], verdict: &str, out: &mut ResultFile) -> String {
    let (ours_median, _, _) = spread(&mut pairs.iter().map(|pair| pair.0).collect::<Vec<_>>());
    let (peer_median, _, _) = spread(&mut pairs.iter().map(|pair| pair.1).collect::<Vec<_>>());
    let (median, min, max) = spread(
        &mut pairs
            .iter()
            .map(|(ours, peer)| ours / peer)
            .collect::<Vec<_>>(),
    );
    out.row(&[
        id.to_owned(),
        peer.to_owned(),
        format!("{ours_median:.2}"),
        format!("{peer_median:.2}"),
        format!("{median:.4}"),
        format!("{min:.4}"),
        format!("{max:.4}"),
        pairs.len().to_string(),
        verdict.replace("**", ""),
    ]);
    format!("| {id} | {peer} | {ours_median:.1} | {peer_median:.1} | {median:.2} ({min:.2}–{max:.2}) | {verdict} |\n")
}

/// Times `slices[0]` (ours) against each of the others, interleaved: per peer, per round,
/// (ours, peer) in nanoseconds per operation per thread, `ops_per_unit` operations per
/// thread in a unit. `(rounds, run_time, runs)` as [`measure`] takes them.
fn interleave(
    slices: &mut [Box<dyn Slice>],
    ops_per_unit: f64,
    (rounds, run_time, runs): (usize, Duration, usize),
) -> Vec<Vec<(f64, f64)>> {
    let (units, expected) = calibrate(slices[0].as_mut(), run_time, runs);
    let (rounds, runs) = if expected > run_time * HEAVY_FACTOR {
        (rounds.min(HEAVY_ROUNDS), 1)
    } else {
        (rounds, runs)
    };
    let peers = slices.len() - 1;
    // Per peer, per round: ours' time, the peer's time (ns per operation per thread).
    let mut pairs = vec![Vec::with_capacity(rounds); peers];
    for round in 0..rounds {
        for turn in 0..peers {
            let peer = 1 + (round + turn) % peers;
            let (ours, theirs) = slices.split_at_mut(peer);
            let (ours, theirs) = (ours[0].as_mut(), theirs[0].as_mut());
            let pair = if round % 2 == 0 {
                let ours = nanos_per_op(ours, units, ops_per_unit, runs);
                (ours, nanos_per_op(theirs, units, ops_per_unit, runs))
            } else {
                let theirs = nanos_per_op(theirs, units, ops_per_unit, runs);
                (nanos_per_op(ours, units, ops_per_unit, runs), theirs)
            };
            pairs[peer - 1].push(pair);
        }
    }
    pairs
}

/// The first line of `rustc --version`, if there is a compiler to ask.
fn rustc_version() -> String {
    Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map_or_else(|| "unknown".into(), |text| text.trim().to_owned())
}

/// The CPU model as the kernel names it, where it does.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let mut quick = false;
    let mut filter = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--test" => quick = true,
            // Passed by `cargo bench` to every bench target.
            "--bench" => {}
            _ => filter = Some(arg),
        }
    }
    let which = plan::which();
    let (rounds, run_time, runs) = if quick {
        (1, Duration::from_micros(50), 1)
    } else {
        (ROUNDS, RUN, RUNS_PER_SLICE)
    };
    let started = Instant::now();
    println!(
        "machine: {} threads available, {}; {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model(),
        rustc_version()
    );
    println!(
        "plan: {}; {rounds} rounds; per contender and round the fastest of {runs} runs of ~{run_time:?}",
        which.name()
    );
    println!();
    println!("| workload/keys/dist/threads/value | peer | ours ns/op | peer ns/op | ours/peer median (min–max) | target |");
    println!("|---|---|---:|---:|---|---|");
    let mut out = ResultFile::create("ratio_report.csv", &CSV_HEADER);
    let selected = plan::comparisons(which).into_iter().filter(|comparison| {
        filter
            .as_ref()
            .is_none_or(|part| comparison.id().contains(part.as_str()))
    });
    for comparison in selected {
        print!(
            "{}",
            measure(&comparison, (rounds, run_time, runs), &mut out)
        );
    }
    for comparison in transactions::comparisons() {
        if filter
            .as_ref()
            .is_none_or(|part| comparison.id.contains(part.as_str()))
        {
            print!(
                "{}",
                transactions::measure(comparison, (rounds, run_time, runs), &mut out)
            );
        }
    }
    println!();
    println!("total time: {:.0?}", started.elapsed());
}
