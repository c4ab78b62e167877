//! The performance targets, as ratios ours/peer that the median must not exceed.

use crate::common::workload::{Scenario, Workload};

/// The highest acceptable median ratio ours/`peer` for `workload` in `scenario`, with
/// the target's wording; `None` where no target applies.
pub(crate) fn target(
    workload: Workload,
    scenario: Scenario,
    peer: &str,
) -> Option<(f64, &'static str)> {
    let threads = scenario.threads;
    let read = matches!(workload, Workload::GetHit | Workload::GetMiss);
    match (workload, peer) {
        (_, "dashmap") if read && threads == 1 => Some((0.95, "<= 0.95 vs dashmap, 1 thread")),
        (_, "dashmap") if read && threads == 2 => Some((0.7, "<= 0.7 vs dashmap, 2 threads")),
        (_, "papaya") if read && threads == 2 => Some((1.0, "<= 1.0 vs papaya, 2 threads")),
        (Workload::GetHit, "moka") => Some((0.2, ">= 5x moka's throughput")),
        (Workload::Update, "dashmap") => Some((1.0, "<= 1.0 vs dashmap insert (overwrite)")),
        (Workload::Update, "papaya") => Some((1.0 / 3.0, ">= 3x faster than papaya compute")),
        (Workload::UpdateStale, "verkv-get") => Some((1.1, "<= 1.1 vs our own get")),
        (Workload::BoundedGetHit, "moka") => Some((0.1, ">= 10x moka's throughput")),
        (Workload::BoundedGetHit, "quick_cache") => Some((1.0, "<= 1.0 vs quick_cache")),
        _ => None,
    }
}

/// The lowest acceptable median ratio ours/`peer`, for peers that are ours with
/// something switched on, whose cost is bounded from below; `None` where none applies.
pub(crate) fn floor(workload: Workload, peer: &str) -> Option<(f64, &'static str)> {
    let read = matches!(workload, Workload::GetHit | Workload::GetMiss);
    match peer {
        "verkv-stats" if read => Some((1.0 / 1.05, "statistics on <= 1.05x off")),
        _ => None,
    }
}
