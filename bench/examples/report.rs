//! Draws the benchmark report's plots (SVG) and writes its tables (Markdown) from the
//! result files the benchmarks leave in a folder (`VERKV_BENCH_RESULTS`, see
//! `verkv_bench::results`). `bench/report` runs the benchmarks and then this:
//!
//! ```text
//! cargo run --release -p verkv-bench --example report -- RESULTS PLOTS
//! ```
//!
//! `RESULTS` holds `ratio_report.csv`, `memory.csv`, `hit_ratio.csv`, `postgres.csv`,
//! `read_cost.csv` (any may be missing: its plot and table are skipped) and `meta.txt` (`key=value` lines:
//! `commit`, `machine`, `date`, `load`), which names the commit and machine in every
//! plot's title. The plots go to `PLOTS`; the tables to `RESULTS/tables.md`.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// A CSV result file: its header and rows, fields by column name.
struct Table {
    rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    /// Reads `name` from `folder`, or `None` if it is not there.
    fn read(folder: &Path, name: &str) -> Result<Option<Self>> {
        let path = folder.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let mut lines = text.lines().filter(|line| !line.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .ok_or_else(|| format!("{}: empty", path.display()))?
            .split(',')
            .map(str::to_owned)
            .collect();
        let rows = lines
            .map(|line| {
                header
                    .iter()
                    .cloned()
                    .zip(line.split(',').map(str::to_owned))
                    .collect()
            })
            .collect();
        Ok(Some(Table { rows }))
    }
}

/// A field of `row` as a number (NaN if absent or not a number).
fn num(row: &BTreeMap<String, String>, column: &str) -> f64 {
    row.get(column)
        .and_then(|value| value.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A field of `row` as text ("" if absent).
fn text<'a>(row: &'a BTreeMap<String, String>, column: &str) -> &'a str {
    row.get(column).map_or("", String::as_str)
}

/// What every plot's title says of where its numbers come from.
struct Meta {
    commit: String,
    machine: String,
    date: String,
}

impl Meta {
    fn read(folder: &Path) -> Self {
        let text = std::fs::read_to_string(folder.join("meta.txt")).unwrap_or_default();
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map_or_else(|| "unknown".to_owned(), |value| value.trim().to_owned())
        };
        Meta {
            commit: field("commit"),
            machine: field("machine"),
            date: field("date"),
        }
    }

    /// `what`, followed by the commit, machine and date.
    fn title(&self, what: &str) -> String {
        format!(
            "{what} (verkv {}, {}, {})",
            self.commit, self.machine, self.date
        )
    }
}

/// The colour of a series, by name, the same in every plot.
fn colour(name: &str) -> RGBColor {
    match name {
        "verkv" | "verkv (quiet table)" => RGBColor(0xd6, 0x27, 0x28),
        "verkv (table listened to)" => RGBColor(0xff, 0x98, 0x96),
        "dashmap" => RGBColor(0x1f, 0x77, 0xb4),
        "dashmap-cas" => RGBColor(0xae, 0xc7, 0xe8),
        "papaya" => RGBColor(0x2c, 0xa0, 0x2c),
        "moka" => RGBColor(0x94, 0x67, 0xbd),
        "quick_cache" => RGBColor(0xff, 0x7f, 0x0e),
        "rwlock-hashmap" => RGBColor(0x8c, 0x56, 0x4b),
        "verkv-get" => RGBColor(0xf7, 0xb6, 0xd2),
        "LRU" => RGBColor(0x7f, 0x7f, 0x7f),
        "OPT" => RGBColor(0x17, 0x17, 0x17),
        "hand-written SQL" => RGBColor(0x1f, 0x77, 0xb4),
        _ => RGBColor(0xbc, 0xbd, 0x22),
    }
}

/// One line of a panel: its name and points.
type Series = (String, Vec<(f64, f64)>);

/// Draws `series` on `area` as lines with points. The x values are indices into
/// `x_names`, which label the axis (cache sizes, thread or client counts: a few values
/// each, evenly spaced whatever their ratio). The legend goes at `legend`, if any.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
    x_names: &[String],
    legend: Option<SeriesLabelPosition>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let y_hi = series
        .iter()
        .flat_map(|(_, points)| points)
        .fold(0.0f64, |hi, &(_, y)| hi.max(y))
        * 1.1;
    if x_names.is_empty() || y_hi <= 0.0 {
        return Ok(());
    }
    let last = (x_names.len() - 1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.4..last + 0.4, 0.0..y_hi)?;
    let label = |x: &f64| {
        let index = x.round();
        if (x - index).abs() < 1e-6 && (0.0..=last).contains(&index) {
            x_names[index as usize].clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(x_names.len() + 1)
        .x_label_formatter(&label)
        .draw()?;
    draw_lines(&mut chart, series, legend)?;
    Ok(())
}

/// The lines and the legend of one chart.
fn draw_lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    series: &[Series],
    legend: Option<SeriesLabelPosition>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    for (name, points) in series {
        let colour = colour(name);
        let width = if name.starts_with("verkv") { 3 } else { 2 };
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(width),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(width))
            });
        chart.draw_series(
            points
                .iter()
                .map(|&point| Circle::new(point, 3, colour.filled())),
        )?;
    }
    if let Some(position) = legend {
        chart
            .configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 11))
            .draw()?;
    }
    Ok(())
}

/// The hit-ratio plot: hit % against cache size, one panel per trace.
fn hit_ratio_plot(table: &Table, meta: &Meta, out: &Path) -> Result<()> {
    let mut traces: Vec<(String, bool)> = Vec::new();
    for row in &table.rows {
        let trace = (
            text(row, "trace").to_owned(),
            text(row, "held_out") == "true",
        );
        if !traces.contains(&trace) {
            traces.push(trace);
        }
    }
    let columns = [
        ("verkv", "verkv"),
        ("moka", "moka"),
        ("quick_cache", "quick_cache"),
        ("lru", "LRU"),
        ("opt", "OPT"),
    ];
    let cols = 4;
    let rows = traces.len().div_ceil(cols).max(1);
    let root = SVGBackend::new(out, (1400, 330 * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &meta.title("Hit % against cache size (entries), per trace"),
        ("sans-serif", 20),
    )?;
    let areas = root.split_evenly((rows, cols));
    for (index, ((trace, held_out), area)) in traces.iter().zip(&areas).enumerate() {
        let rows: Vec<_> = table
            .rows
            .iter()
            .filter(|row| text(row, "trace") == trace)
            .collect();
        let sizes: Vec<String> = rows
            .iter()
            .map(|row| text(row, "size").to_owned())
            .collect();
        let series: Vec<Series> = columns
            .iter()
            .map(|&(column, name)| {
                let points = rows
                    .iter()
                    .enumerate()
                    .map(|(x, row)| (x as f64, num(row, column)))
                    .filter(|(_, y)| y.is_finite())
                    .collect();
                (name.to_owned(), points)
            })
            .collect();
        let caption = if *held_out {
            format!("{trace} (held out of tuning)")
        } else {
            trace.clone()
        };
        let legend = (index == 0).then_some(SeriesLabelPosition::LowerRight);
        panel(
            area,
            &caption,
            ("cache size", "hit %"),
            &series,
            &sizes,
            legend,
        )?;
    }
    root.present()?;
    Ok(())
}

/// A ratio-report id split into workload, keys, distribution, threads and value.
fn split_id(id: &str) -> Option<(&str, &str, &str, f64, &str)> {
    let mut parts = id.split('/');
    let workload = parts.next()?;
    let keys = parts.next()?;
    let dist = parts.next()?;
    let threads = parts.next()?.strip_suffix('t')?.parse().ok()?;
    let value = parts.next()?;
    Some((workload, keys, dist, threads, value))
}

/// The median of `values` (NaN if empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The workloads of the throughput plot, with their panel titles.
const THROUGHPUT_WORKLOADS: [(&str, &str); 5] = [
    ("get_hit", "get (hit)"),
    ("update", "update (CAS)"),
    ("update_stale", "stale update (refused)"),
    ("mix_98r_1i_1d", "mix 98% get, 1% insert, 1% remove"),
    ("bounded_get_hit", "bounded get (hit)"),
];

/// The peers drawn in the throughput plot.
const THROUGHPUT_PEERS: [&str; 7] = [
    "dashmap",
    "dashmap-cas",
    "papaya",
    "rwlock-hashmap",
    "moka",
    "quick_cache",
    "verkv-get",
];

/// Throughput (million operations per second, all threads) of `peer` ("verkv": ours) in
/// the comparison `workload/keys/uniform/{threads}t/8B`.
fn throughput(table: &Table, workload: &str, keys: &str, threads: f64, peer: &str) -> f64 {
    let rows = table.rows.iter().filter(|row| {
        split_id(text(row, "id")).is_some_and(|(w, k, d, t, v)| {
            w == workload && k == keys && d == "uniform" && t == threads && v == "8B"
        })
    });
    let ns = if peer == "verkv" {
        median(rows.map(|row| num(row, "ours_ns")).collect())
    } else {
        median(
            rows.filter(|row| text(row, "peer") == peer)
                .map(|row| num(row, "peer_ns"))
                .collect(),
        )
    };
    threads * 1e3 / ns
}

/// The throughput plot: operations per second against threads, per workload and key
/// count.
fn throughput_plot(table: &Table, meta: &Meta, out: &Path) -> Result<()> {
    let key_counts = ["1e3", "1e6"];
    let root = SVGBackend::new(out, (1600, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &meta.title("Throughput against threads (million operations/s, all threads)"),
        ("sans-serif", 20),
    )?;
    let areas = root.split_evenly((key_counts.len(), THROUGHPUT_WORKLOADS.len()));
    let mut areas = areas.iter();
    let threads = ["1".to_owned(), "2".to_owned()];
    for keys in key_counts {
        for (workload, title) in THROUGHPUT_WORKLOADS {
            let area = areas.next().expect("one area per panel");
            let series: Vec<Series> = std::iter::once("verkv")
                .chain(THROUGHPUT_PEERS)
                .map(|peer| {
                    let points = [1.0, 2.0]
                        .into_iter()
                        .map(|threads| {
                            let ops = throughput(table, workload, keys, threads, peer);
                            (threads - 1.0, ops)
                        })
                        .filter(|(_, y)| y.is_finite())
                        .collect();
                    (peer.to_owned(), points)
                })
                .filter(|(_, points): &Series| !points.is_empty())
                .collect();
            let caption = format!("{title}, {keys} keys");
            panel(
                area,
                &caption,
                ("threads", "Mops/s"),
                &series,
                &threads,
                Some(SeriesLabelPosition::LowerMiddle),
            )?;
        }
    }
    root.present()?;
    Ok(())
}

/// The maps of the memory plot and table, with how they are named there.
const MEMORY_MAPS: [(&str, &str); 10] = [
    ("verkv", "verkv"),
    ("verkv-bounded", "verkv, bounded"),
    ("verkv-expiring", "verkv, expiring"),
    ("verkv-bounded-expiring", "verkv, bounded and expiring"),
    ("verkv-uuid", "verkv, UUID versions"),
    ("dashmap", "dashmap"),
    ("dashmap-versioned", "dashmap (value, u64 version)"),
    ("dashmap-uuid", "dashmap (value, UUID version)"),
    ("moka-bounded", "moka, bounded"),
    ("quick_cache-bounded", "quick_cache, bounded"),
];

/// The memory plot: heap bytes per record, one bar per map and record count.
fn memory_plot(table: &Table, meta: &Meta, out: &Path) -> Result<()> {
    let mut counts: Vec<f64> = table.rows.iter().map(|row| num(row, "records")).collect();
    counts.sort_by(|a, b| b.total_cmp(a));
    counts.dedup();
    let bytes = |map: &str, records: f64| {
        table
            .rows
            .iter()
            .find(|row| text(row, "map") == map && num(row, "records") == records)
            .map_or(f64::NAN, |row| num(row, "bytes_per_record"))
    };
    let most = table
        .rows
        .iter()
        .map(|row| num(row, "bytes_per_record"))
        .fold(0.0f64, f64::max);
    let root = SVGBackend::new(out, (1000, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &meta.title("Heap bytes per record (u64 keys and values)"),
        ("sans-serif", 18),
    )?;
    let n = MEMORY_MAPS.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(230)
        .build_cartesian_2d(0.0..most * 1.15, 0.0..n)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_desc("bytes per record")
        .disable_y_mesh()
        .y_labels(MEMORY_MAPS.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let index = (n - y - 0.5).round();
            if (y - y.floor() - 0.5).abs() < 0.01 && (0.0..n).contains(&index) {
                MEMORY_MAPS[index as usize].1.to_owned()
            } else {
                String::new()
            }
        })
        .draw()?;
    let shades = [RGBColor(0xd6, 0x27, 0x28), RGBColor(0xff, 0x98, 0x96)];
    let band = 0.8 / counts.len().max(1) as f64;
    for (c, &records) in counts.iter().enumerate() {
        let shade = shades[c % shades.len()];
        let bars = MEMORY_MAPS.iter().enumerate().filter_map(|(i, (map, _))| {
            let value = bytes(map, records);
            let top = n - i as f64 - 0.1 - band * c as f64;
            value.is_finite().then(|| {
                let colour = if map.starts_with("verkv") {
                    shade
                } else if c == 0 {
                    RGBColor(0x1f, 0x77, 0xb4)
                } else {
                    RGBColor(0xae, 0xc7, 0xe8)
                };
                Rectangle::new([(0.0, top - band), (value, top)], colour.filled())
            })
        });
        chart
            .draw_series(bars)?
            .label(format!("{records:.0} records"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], shade.filled()));
        chart.draw_series(MEMORY_MAPS.iter().enumerate().filter_map(|(i, (map, _))| {
            let value = bytes(map, records);
            let top = n - i as f64 - 0.1 - band * c as f64;
            value.is_finite().then(|| {
                Text::new(
                    format!("{value:.1}"),
                    (value + most * 0.01, top - band * 0.1),
                    ("sans-serif", 11),
                )
            })
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

/// The PostgreSQL plot: mean time per operation against clients, per workload.
fn postgres_plot(table: &Table, meta: &Meta, out: &Path) -> Result<()> {
    let mut workloads: Vec<String> = Vec::new();
    for row in &table.rows {
        let workload = text(row, "workload").to_owned();
        if !workloads.contains(&workload) {
            workloads.push(workload);
        }
    }
    let root = SVGBackend::new(out, (1600, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &meta.title("PostgreSQL: mean time per operation (µs) against clients"),
        ("sans-serif", 20),
    )?;
    let areas = root.split_evenly((1, workloads.len().max(1)));
    let subjects = [
        ("bare_per_s", "hand-written SQL"),
        ("quiet_per_s", "verkv (quiet table)"),
        ("heard_per_s", "verkv (table listened to)"),
    ];
    for (index, (workload, area)) in workloads.iter().zip(&areas).enumerate() {
        let rows: Vec<_> = table
            .rows
            .iter()
            .filter(|row| text(row, "workload") == workload)
            .collect();
        let clients: Vec<String> = rows
            .iter()
            .map(|row| text(row, "clients").to_owned())
            .collect();
        let series: Vec<Series> = subjects
            .iter()
            .map(|&(column, name)| {
                let points = rows
                    .iter()
                    .enumerate()
                    .map(|(x, row)| {
                        let clients = num(row, "clients");
                        (x as f64, clients * 1e6 / num(row, column))
                    })
                    .filter(|(_, y)| y.is_finite())
                    .collect();
                (name.to_owned(), points)
            })
            .collect();
        let legend = (index == 0).then_some(SeriesLabelPosition::UpperLeft);
        panel(
            area,
            workload,
            ("clients", "µs per operation"),
            &series,
            &clients,
            legend,
        )?;
    }
    root.present()?;
    Ok(())
}

/// The ratio tables: per workload and scenario, ours/peer median (min–max) per peer.
fn ratio_tables(table: &Table, out: &mut String) {
    let peers = [
        "dashmap",
        "dashmap-cas",
        "papaya",
        "rwlock-hashmap",
        "moka",
        "quick_cache",
        "verkv-get",
    ];
    let mut ids: Vec<&str> = Vec::new();
    for row in &table.rows {
        let id = text(row, "id");
        if split_id(id).is_some() && !ids.contains(&id) {
            ids.push(id);
        }
    }
    let _ = writeln!(
        out,
        "| workload / keys / threads | verkv ns/op | {} |",
        peers.join(" | ")
    );
    let _ = writeln!(out, "|---|---:|{}", "---|".repeat(peers.len()));
    for id in ids {
        let rows: Vec<_> = table
            .rows
            .iter()
            .filter(|row| text(row, "id") == id)
            .collect();
        let ours = median(rows.iter().map(|row| num(row, "ours_ns")).collect());
        let cells: Vec<String> = peers
            .iter()
            .map(|peer| {
                rows.iter()
                    .find(|row| text(row, "peer") == *peer)
                    .map_or_else(
                        || "".to_owned(),
                        |row| {
                            format!(
                                "{:.2} ({:.2}–{:.2})",
                                num(row, "ratio_median"),
                                num(row, "ratio_min"),
                                num(row, "ratio_max")
                            )
                        },
                    )
            })
            .collect();
        let label = split_id(id).map_or_else(
            || id.to_owned(),
            |(w, k, _, t, _)| format!("{w} / {k} / {t}t"),
        );
        let _ = writeln!(out, "| {label} | {ours:.1} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Transactions (ids the workload tables do not split):");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| comparison | peer | ours ns | peer ns | ours/peer median (min–max) | target |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---|---|");
    for row in table
        .rows
        .iter()
        .filter(|row| split_id(text(row, "id")).is_none())
    {
        let _ = writeln!(
            out,
            "| `{}` | {} | {:.1} | {:.1} | {:.2} ({:.2}–{:.2}) | {} |",
            text(row, "id"),
            text(row, "peer"),
            num(row, "ours_ns"),
            num(row, "peer_ns"),
            num(row, "ratio_median"),
            num(row, "ratio_min"),
            num(row, "ratio_max"),
            text(row, "target").replace(';', ",")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Targets, as the report judged them:");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| scenario | peer | ours/peer median (min–max) | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for row in table
        .rows
        .iter()
        .filter(|row| !text(row, "target").is_empty())
    {
        let _ = writeln!(
            out,
            "| `{}` | {} | {:.2} ({:.2}–{:.2}) | {} |",
            text(row, "id"),
            text(row, "peer"),
            num(row, "ratio_median"),
            num(row, "ratio_min"),
            num(row, "ratio_max"),
            text(row, "target").replace(';', ",")
        );
    }
    let _ = writeln!(out);
}

/// The memory table: bytes per record per map, at each record count.
fn memory_table(table: &Table, out: &mut String) {
    let mut counts: Vec<f64> = table.rows.iter().map(|row| num(row, "records")).collect();
    counts.sort_by(|a, b| b.total_cmp(a));
    counts.dedup();
    let heads: Vec<String> = counts.iter().map(|c| format!("{c:.0} records")).collect();
    let _ = writeln!(out, "| map | {} |", heads.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(counts.len()));
    for (map, name) in MEMORY_MAPS {
        let cells: Vec<String> = counts
            .iter()
            .map(|&records| {
                table
                    .rows
                    .iter()
                    .find(|row| text(row, "map") == map && num(row, "records") == records)
                    .map_or_else(String::new, |row| {
                        format!("{:.1}", num(row, "bytes_per_record"))
                    })
            })
            .collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out);
}

/// The hit-ratio summary: the mean of each column over the tuned and held-out traces.
fn hit_ratio_table(table: &Table, out: &mut String) {
    let columns = [
        ("verkv", "verkv"),
        ("moka", "moka"),
        ("moka_as_used", "moka, as used"),
        ("quick_cache", "quick_cache"),
        ("lru", "LRU"),
        ("sieve", "SIEVE"),
        ("s3fifo", "S3-FIFO"),
        ("opt", "OPT"),
    ];
    let names: Vec<&str> = columns.iter().map(|(_, name)| *name).collect();
    let _ = writeln!(out, "| traces | rows | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(columns.len()));
    for (label, held_out) in [("tuned on", "false"), ("held out", "true")] {
        let rows: Vec<_> = table
            .rows
            .iter()
            .filter(|row| text(row, "held_out") == held_out)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let cells: Vec<String> = columns
            .iter()
            .map(|(column, _)| {
                let mean = rows.iter().map(|row| num(row, column)).sum::<f64>() / rows.len() as f64;
                format!("{mean:.2}")
            })
            .collect();
        let _ = writeln!(out, "| {label} | {} | {} |", rows.len(), cells.join(" | "));
    }
    let _ = writeln!(out);
}

/// The instruction-count table: instructions per call, loop included.
fn read_cost_table(table: &Table, out: &mut String) {
    let _ = writeln!(out, "| store | keys | operation | instructions per call |");
    let _ = writeln!(out, "|---|---:|---|---:|");
    for row in &table.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} |",
            text(row, "variant"),
            text(row, "keys"),
            text(row, "operation"),
            num(row, "instructions_per_call")
        );
    }
    let _ = writeln!(out);
}

/// The PostgreSQL table: ours over the hand-written statement, per workload and clients.
fn postgres_table(table: &Table, out: &mut String) {
    let _ = writeln!(
        out,
        "| workload | clients | verkv / hand-written, time per op, median (min–max) | listened-to table | second hand-written (control) | hand-written ops/s | verkv ops/s |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|");
    for row in &table.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} ({:.2}–{:.2}) | {:.2} | {:.2} | {:.0} | {:.0} |",
            text(row, "workload"),
            text(row, "clients"),
            num(row, "quiet_ratio"),
            num(row, "quiet_min"),
            num(row, "quiet_max"),
            num(row, "heard_ratio"),
            num(row, "twin_ratio"),
            num(row, "bare_per_s"),
            num(row, "quiet_per_s"),
        );
    }
    let _ = writeln!(out);
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let results = PathBuf::from(args.next().unwrap_or_else(|| "bench/results".into()));
    let plots = PathBuf::from(args.next().unwrap_or_else(|| "docs/plots".into()));
    std::fs::create_dir_all(&plots)?;
    let meta = Meta::read(&results);
    let mut tables = String::new();
    let _ = writeln!(
        tables,
        "<!-- written by `bench/report` from the files beside it: verkv {}, {}, {} -->\n",
        meta.commit, meta.machine, meta.date
    );
    if let Some(table) = Table::read(&results, "ratio_report.csv")? {
        throughput_plot(&table, &meta, &plots.join("throughput.svg"))?;
        let _ = writeln!(tables, "## Throughput: ours/peer\n");
        ratio_tables(&table, &mut tables);
        println!("drew {}", plots.join("throughput.svg").display());
    }
    if let Some(table) = Table::read(&results, "memory.csv")? {
        memory_plot(&table, &meta, &plots.join("memory.svg"))?;
        let _ = writeln!(tables, "## Memory: heap bytes per record\n");
        memory_table(&table, &mut tables);
        println!("drew {}", plots.join("memory.svg").display());
    }
    if let Some(table) = Table::read(&results, "hit_ratio.csv")? {
        hit_ratio_plot(&table, &meta, &plots.join("hit_ratio.svg"))?;
        let _ = writeln!(tables, "## Hit ratio: mean hit % per group of traces\n");
        hit_ratio_table(&table, &mut tables);
        println!("drew {}", plots.join("hit_ratio.svg").display());
    }
    if let Some(table) = Table::read(&results, "postgres.csv")? {
        postgres_plot(&table, &meta, &plots.join("postgres.svg"))?;
        let _ = writeln!(
            tables,
            "## PostgreSQL: ours over the hand-written statement\n"
        );
        postgres_table(&table, &mut tables);
        println!("drew {}", plots.join("postgres.svg").display());
    }
    if let Some(table) = Table::read(&results, "read_cost.csv")? {
        let _ = writeln!(tables, "## Instructions per call (callgrind)\n");
        read_cost_table(&table, &mut tables);
    }
    std::fs::write(results.join("tables.md"), tables)?;
    println!("wrote {}", results.join("tables.md").display());
    Ok(())
}
