//! How the PostgreSQL tests find a server: `VERKV_POSTGRES_URL`, which `.ci/test` sets
//! after starting a throwaway cluster. Without it a test fails and says how to get one;
//! it never skips.

use std::sync::atomic::{AtomicU32, Ordering};

/// The server's URL.
///
/// # Panics
///
/// If `VERKV_POSTGRES_URL` is not set.
pub(crate) fn url() -> String {
    std::env::var("VERKV_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL server for this test: VERKV_POSTGRES_URL is not set. \
             Run the suite with `bash .ci/test` (it installs PostgreSQL if needed, starts a \
             throwaway cluster and sets the variable), or point VERKV_POSTGRES_URL at a \
             server you may create tables in"
        )
    })
}

/// A table name no other test of this run uses.
pub(crate) fn table(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
