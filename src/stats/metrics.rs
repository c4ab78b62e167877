//! Publishes statistics through the [`metrics`] facade, under the names and labels a
//! Prometheus user expects: `verkv_cache_` and a unit suffix, `_total` for counters,
//! one metric per quantity with a label per kind (`result`, `op`, `reason`, `phase`,
//! `cause`, `shard`).
//!
//! Counters and gauges are published from a snapshot ([`Stats::publish`]), typically
//! right before an exporter is scraped; the lock-wait histogram
//! (`verkv_cache_lock_wait_seconds`) is recorded as each wait happens, since a
//! histogram cannot be published from bucket counts through the facade.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use super::snapshot::Stats;

/// Records a writer's wait for a shard lock in the lock-wait histogram.
pub(crate) fn record_lock_wait(waited: Duration) {
    histogram!("verkv_cache_lock_wait_seconds").record(waited.as_secs_f64());
}

impl Stats {
    /// Publishes these statistics through the [`metrics`] facade to whatever recorder
    /// the application installed (with the `metrics` feature). Counters are set to the
    /// snapshot's absolute values, so publish snapshots of the store's whole life, not
    /// deltas.
    ///
    /// | metric | labels |
    /// |---|---|
    /// | `verkv_cache_requests_total` | `result`: `hit`, `miss` |
    /// | `verkv_cache_loads_total` | `result`: `success`, `failure` |
    /// | `verkv_cache_load_seconds_sum`, `verkv_cache_load_seconds_max` (gauges) | |
    /// | `verkv_cache_writes_total` | `op`: `insert`, `update`, `put`, `remove` |
    /// | `verkv_cache_refusals_total` | `reason`: `stale`, `not_found`, `exists`, `declined`, `too_heavy` |
    /// | `verkv_cache_timeouts_total` | `phase`: `queued`, `retrying`, `watching`, `loading` |
    /// | `verkv_cache_cancellations_total` | |
    /// | `verkv_cache_evictions_total` | `cause`: `capacity`, `expired` |
    /// | `verkv_cache_entries`, `verkv_cache_weight` (gauges) | |
    /// | `verkv_cache_lock_waits_total` | |
    /// | `verkv_cache_lock_wait_seconds_sum`, `verkv_cache_lock_wait_seconds_max` (gauges) | |
    /// | `verkv_cache_conflicts_total` | `shard`: its index |
    /// | `verkv_cache_lock_wait_seconds` (histogram, recorded live) | |
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::builder().statistics(true).build();
    /// store.get(&1);
    /// // With no recorder installed the facade drops them; see the `metrics` example
    /// // (`bench/examples/metrics.rs` in the repository).
    /// store.stats().unwrap().publish();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn publish(&self) {
        let counts: [(&'static str, &'static str, &'static str, u64); 23] = [
            ("verkv_cache_requests_total", "result", "hit", self.hits),
            ("verkv_cache_requests_total", "result", "miss", self.misses),
            (
                "verkv_cache_loads_total",
                "result",
                "success",
                self.loads.succeeded,
            ),
            (
                "verkv_cache_loads_total",
                "result",
                "failure",
                self.loads.failed,
            ),
            (
                "verkv_cache_loads_total",
                "result",
                "abandoned",
                self.loads.abandoned,
            ),
            ("verkv_cache_writes_total", "op", "insert", self.inserts),
            ("verkv_cache_writes_total", "op", "update", self.updates),
            ("verkv_cache_writes_total", "op", "put", self.puts),
            ("verkv_cache_writes_total", "op", "remove", self.removes),
            (
                "verkv_cache_writes_total",
                "op",
                "invalidate",
                self.invalidations,
            ),
            (
                "verkv_cache_transactions_total",
                "outcome",
                "committed",
                self.transactions,
            ),
            (
                "verkv_cache_transactions_total",
                "outcome",
                "conflict",
                self.transaction_conflicts,
            ),
            (
                "verkv_cache_refusals_total",
                "reason",
                "stale",
                self.refusals.stale,
            ),
            (
                "verkv_cache_refusals_total",
                "reason",
                "not_found",
                self.refusals.not_found,
            ),
            (
                "verkv_cache_refusals_total",
                "reason",
                "exists",
                self.refusals.exists,
            ),
            (
                "verkv_cache_refusals_total",
                "reason",
                "declined",
                self.refusals.declined,
            ),
            (
                "verkv_cache_refusals_total",
                "reason",
                "too_heavy",
                self.refusals.too_heavy,
            ),
            (
                "verkv_cache_timeouts_total",
                "phase",
                "queued",
                self.timeouts.queued,
            ),
            (
                "verkv_cache_timeouts_total",
                "phase",
                "retrying",
                self.timeouts.retrying,
            ),
            (
                "verkv_cache_timeouts_total",
                "phase",
                "watching",
                self.timeouts.watching,
            ),
            (
                "verkv_cache_timeouts_total",
                "phase",
                "loading",
                self.timeouts.loading,
            ),
            (
                "verkv_cache_evictions_total",
                "cause",
                "capacity",
                self.evictions.capacity,
            ),
            (
                "verkv_cache_evictions_total",
                "cause",
                "expired",
                self.evictions.expired,
            ),
        ];
        for (name, label, value, count) in counts {
            counter!(name, label => value).absolute(count);
        }
        counter!("verkv_cache_cancellations_total").absolute(self.cancellations);
        counter!("verkv_cache_lock_waits_total").absolute(self.lock_waits.count);
        gauge!("verkv_cache_entries").set(self.entries as f64);
        gauge!("verkv_cache_weight").set(self.weight as f64);
        gauge!("verkv_cache_load_seconds_sum").set(self.loads.total_time.as_secs_f64());
        gauge!("verkv_cache_load_seconds_max").set(self.loads.max_time.as_secs_f64());
        gauge!("verkv_cache_lock_wait_seconds_sum").set(self.lock_waits.total.as_secs_f64());
        gauge!("verkv_cache_lock_wait_seconds_max").set(self.lock_waits.max.as_secs_f64());
        for (shard, &conflicts) in self.conflicts_per_shard.iter().enumerate() {
            counter!("verkv_cache_conflicts_total", "shard" => shard.to_string())
                .absolute(conflicts);
        }
    }
}
