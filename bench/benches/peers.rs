//! Criterion benchmarks: every comparison of the plan, ours and each peer.
//!
//! `cargo bench -p verkv-bench --bench peers` runs the default plan (a few minutes);
//! `VERKV_BENCH_LONG=1 cargo bench -p verkv-bench --bench peers` the long one (every key
//! count up to 1e7, every combination: hours). `cargo bench -p verkv-bench --bench peers
//! -- --test` runs each benchmark once, as CI does. Ratios between contenders come from
//! the ratio report (`cargo bench -p verkv-bench --bench ratio_report`), which interleaves
//! them; these benches give criterion's per-contender statistics and history.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::plan::{self, Slice};

fn peers(c: &mut Criterion) {
    let which = plan::which();
    let long = which == plan::Plan::Long;
    for comparison in plan::comparisons(which) {
        let mut group = c.benchmark_group(comparison.id());
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(if long { 1_000 } else { 200 }))
            .measurement_time(Duration::from_millis(if long { 3_000 } else { 700 }))
            .throughput(Throughput::Elements(comparison.ops_per_unit()));
        for contender in &comparison.contenders {
            // Built on first use, so that a filtered-out benchmark never populates a map,
            // and dropped at the end of the loop, so that one map is alive at a time.
            let mut slice: Option<Box<dyn Slice>> = None;
            group.bench_function(contender.name, |bencher| {
                let slice = slice.get_or_insert_with(|| (contender.make)());
                bencher.iter_custom(|units| slice.run(units));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, peers);
criterion_main!(benches);
