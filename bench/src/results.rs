//! Result files: the benchmarks' numbers as small CSV files, for the report's plots and
//! tables.
//!
//! A benchmark writes one only when `VERKV_BENCH_RESULTS` names a folder (`bench/report`
//! sets it); otherwise [`ResultFile`] does nothing, and the benchmark prints its tables
//! as always. The files are plain comma-separated values with a header line; fields never
//! contain a comma (one given with a comma has it replaced by a semicolon).

use std::fmt::Display;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// The environment variable naming the folder the result files go to.
pub const RESULTS_VARIABLE: &str = "VERKV_BENCH_RESULTS";

/// The folder result files go to, if one was asked for.
pub fn folder() -> Option<PathBuf> {
    std::env::var_os(RESULTS_VARIABLE)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// One CSV file of results, or nothing when no folder was asked for.
pub struct ResultFile {
    out: Option<BufWriter<File>>,
}

impl ResultFile {
    /// Creates (or truncates) `name` in the results folder and writes `header` to it; a
    /// file that writes nowhere if `VERKV_BENCH_RESULTS` is not set.
    ///
    /// # Panics
    ///
    /// If the folder is set but the file cannot be created there.
    pub fn create(name: &str, header: &[&str]) -> Self {
        let out = folder().map(|folder| {
            std::fs::create_dir_all(&folder)
                .unwrap_or_else(|error| panic!("creating {}: {error}", folder.display()));
            let path = folder.join(name);
            let file = File::create(&path)
                .unwrap_or_else(|error| panic!("creating {}: {error}", path.display()));
            BufWriter::new(file)
        });
        let mut file = ResultFile { out };
        file.row(header);
        file
    }

    /// Writes one line of `fields`.
    ///
    /// # Panics
    ///
    /// If the line cannot be written.
    pub fn row<T: Display>(&mut self, fields: &[T]) {
        let Some(out) = &mut self.out else { return };
        let line: Vec<String> = fields
            .iter()
            .map(|field| field.to_string().replace(',', ";"))
            .collect();
        writeln!(out, "{}", line.join(",")).expect("writing a result file");
        out.flush().expect("writing a result file");
    }
}
