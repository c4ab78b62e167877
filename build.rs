//! Selects a deliberately broken build of the store (a mutant) for the checkers to catch.
//!
//! `VERKV_MUTANT=NAME cargo test ...` compiles the crate with `cfg(verkv_mutant = "NAME")`.
//! An environment variable rather than `RUSTFLAGS` because only this crate sees it: the
//! dependencies keep their build and are shared by every mutant. An unknown name stops
//! the build, so that a typo never runs the checkers against the unbroken store.

use std::env;
use std::process::ExitCode;

/// The environment variable naming the mutant.
const VARIABLE: &str = "VERKV_MUTANT";

/// Every mutant the code knows, each the name of one `cfg(verkv_mutant = "...")`.
const MUTANTS: &[&str] = &[
    "no_version_check",
    "no_single_flight",
    "no_rerun",
    "no_revocation",
    "first_word_only",
    "no_invalidation",
    "no_stamp_check",
    "unheard_writes",
    "shared_stripe",
    "no_expiry_check",
    "untracked_time_to_live",
    "trusting_read",
    "snapshot_no_resume",
    "blocking_async",
    "frequent_return_to_window",
    "txn_one_at_a_time",
    "pg_txn_unlocked",
    "near_txn_keeps_copies",
    "no_cancel_on_drop",
];

fn main() -> ExitCode {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={VARIABLE}");
    let values: Vec<String> = MUTANTS.iter().map(|name| format!("\"{name}\"")).collect();
    println!(
        "cargo::rustc-check-cfg=cfg(verkv_mutant, values({}))",
        values.join(", ")
    );
    let Some(chosen) = env::var_os(VARIABLE) else {
        return ExitCode::SUCCESS;
    };
    match chosen.to_str() {
        Some(name) if MUTANTS.contains(&name) => {
            println!("cargo::rustc-cfg=verkv_mutant=\"{name}\"");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "{VARIABLE}={} names no mutant; the mutants are: {}",
                chosen.to_string_lossy(),
                MUTANTS.join(", ")
            );
            ExitCode::FAILURE
        }
    }
}
