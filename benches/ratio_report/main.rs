//! The ratio report: ours against each peer, interleaved in short slices over many rounds
//! in one process, printed as ours/peer median (min–max) per workload, as a Markdown
//! table.
//!
//! ```text
//! cargo bench --bench ratio_report            # the default plan, a few minutes
//! VERKV_BENCH_LONG=1 cargo bench --bench ratio_report   # every key count up to 1e7
//! cargo bench --bench ratio_report -- --test  # one short round of everything (CI)
//! ```
//!
//! Why interleaved: shared machines drift in speed by tens of percent between runs, and
//! even within one. Running every contender for a few milliseconds in turn, round after
//! round, exposes them all to the same drift; each round gives one ratio per peer, and the
//! median over rounds discards the rounds a burst of outside load disturbed.

#[path = "../common/mod.rs"]
mod common;
mod targets;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::plan::{self, Comparison, Slice};

/// Rounds per comparison: each gives one ratio per peer.
const ROUNDS: usize = 21;

/// Roughly how long one contender runs per round.
const SLICE: Duration = Duration::from_millis(8);

/// How many units of `slice` take about `target`, found by doubling from one unit.
fn calibrate(slice: &mut dyn Slice, target: Duration) -> u64 {
    let mut units = 1u64;
    loop {
        let took = slice.run(units);
        if took >= target / 4 || units >= 1 << 40 {
            let scale = target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            return ((units as f64 * scale) as u64).max(1);
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

/// Measures one comparison; its table rows.
fn measure(comparison: &Comparison, rounds: usize, slice_time: Duration) -> String {
    let mut slices: Vec<Box<dyn Slice>> = comparison
        .contenders
        .iter()
        .map(|contender| (contender.make)())
        .collect();
    let units = calibrate(slices[0].as_mut(), slice_time);
    let ops = (units * comparison.ops_per_unit()) as f64 / comparison.scenario.threads as f64;
    // Nanoseconds per operation per thread, per contender, one entry per round.
    let mut nanos = vec![Vec::with_capacity(rounds); slices.len()];
    for round in 0..rounds {
        // Rotate who goes first, so that no contender always follows the same one.
        for turn in 0..slices.len() {
            let index = (round + turn) % slices.len();
            let took = slices[index].run(units);
            nanos[index].push(took.as_secs_f64() * 1e9 / ops);
        }
    }
    let mut rows = String::new();
    let (ours_median, _, _) = spread(&mut nanos[0].clone());
    for (index, contender) in comparison.contenders.iter().enumerate().skip(1) {
        let mut ratios: Vec<f64> = nanos[0]
            .iter()
            .zip(&nanos[index])
            .map(|(ours, peer)| ours / peer)
            .collect();
        let (median, min, max) = spread(&mut ratios);
        let (peer_median, _, _) = spread(&mut nanos[index].clone());
        let verdict =
            match targets::target(comparison.workload, comparison.scenario, contender.name) {
                Some((limit, wording)) if median <= limit => format!("met ({wording})"),
                Some((limit, wording)) => format!(
                    "**missed by {:.0}%** ({wording})",
                    (median / limit - 1.0) * 100.0
                ),
                None => String::new(),
            };
        writeln!(
            rows,
            "| {} | {} | {:.1} | {:.1} | {:.2} ({:.2}–{:.2}) | {} |",
            comparison.id(),
            contender.name,
            ours_median,
            peer_median,
            median,
            min,
            max,
            verdict
        )
        .expect("writing to a string cannot fail");
    }
    rows
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
    let quick = std::env::args().any(|arg| arg == "--test");
    let long = plan::long_run();
    let (rounds, slice_time) = if quick {
        (1, Duration::from_micros(200))
    } else {
        (ROUNDS, SLICE)
    };
    let started = Instant::now();
    println!(
        "machine: {} threads available, {}; {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model(),
        rustc_version()
    );
    println!(
        "plan: {}; {rounds} rounds of ~{slice_time:?} slices per contender",
        if long { "long" } else { "default" }
    );
    println!();
    println!("| workload/keys/dist/threads/value | peer | ours ns/op | peer ns/op | ours/peer median (min–max) | target |");
    println!("|---|---|---:|---:|---|---|");
    for comparison in plan::comparisons(long) {
        print!("{}", measure(&comparison, rounds, slice_time));
    }
    println!();
    println!("total time: {:.0?}", started.elapsed());
}
