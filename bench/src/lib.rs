//! Almost nothing to use: this package holds verkv's benchmarks (`benches/`), the examples
//! that measure it against peers or serve it over HTTP (`examples/`), and the movies API's
//! end-to-end tests (`tests/`), with the heavy dev-dependencies they need, so that the
//! published crate's own examples and tests never build them. See `Cargo.toml` for how
//! to run them.
//!
//! The one thing here is [`results`]: how the benchmarks leave their numbers in a folder
//! for the report's tables and plots (`bench/report`).

pub mod results;
