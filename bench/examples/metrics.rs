//! Publishes a store's statistics through the `metrics` facade and prints what a
//! recorder received, as a Prometheus exporter would serve it.
//!
//! ```text
//! cargo run -p verkv-bench --example metrics
//! ```

use std::sync::Arc;
use std::thread;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use verkv::Store;

fn main() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other recorder is installed in this example");

    let store: Arc<Store<u32, u64>> = Arc::new(Store::builder().shards(4).hot_keys(3).build());
    for key in 0..100 {
        store.insert(key, 0).unwrap();
    }
    // Four writers fight over key 7 (and now and then key 8), each reading and then
    // writing: some of their writes are refused as stale, and some queue for the lock.
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for round in 0..2_000u32 {
                    let key = if round % 10 == writer { 8 } else { 7 };
                    let read = store.get(&key).unwrap();
                    let _ = store.update(&key, &read.version, read.value + 1);
                    store.get(&(100 + round % 50)); // misses
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }

    let stats = store.stats().unwrap();
    stats.publish();
    println!("{stats}\n");

    let mut lines: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _description, value)| {
            let (_kind, key) = key.into_parts();
            let labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}=\"{}\"", label.key(), label.value()))
                .collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let value = match value {
                DebugValue::Counter(count) => count.to_string(),
                DebugValue::Gauge(gauge) => gauge.to_string(),
                DebugValue::Histogram(samples) => format!("{} samples", samples.len()),
            };
            format!("{}{labels} {value}", key.name())
        })
        .collect();
    lines.sort();
    for line in lines {
        println!("{line}");
    }
    println!("\nhottest conflicting keys:");
    for hot in store.stats_top_conflicts() {
        println!("  {hot}");
    }
}
