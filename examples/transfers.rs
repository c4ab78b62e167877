//! Money moved between a few hot accounts by several threads, twice.
//!
//! First with what per-key compare-and-swap offers: each transfer reads both balances,
//! then writes the debit and the credit as two conditional updates. Each update is safe
//! on its own (none is lost), but nothing makes the two land together: when the credit is
//! refused as stale after the debit went in, the money has left one account and reached
//! none, unless the application writes compensation (which can fail the same way) or a
//! lock of its own around every transfer. An auditor reading all balances meanwhile also
//! sees totals that are wrong while transfers are half done.
//!
//! Then with transactions: `Store::transact` reads both balances at one instant, and
//! commits the debit and the credit together or not at all, retrying on a conflict. The
//! total never moves, and the auditor's `get_many` never sees half a transfer.
//!
//! ```text
//! cargo run --release --example transfers -- [--threads N] [--transfers N] [--accounts N]
//! ```
//!
//! Ends with `transfers: N committed, M refused, total BEFORE -> AFTER` for the
//! transactional run, and exits with status 1 if that run did not conserve the total or
//! its auditor saw a wrong one.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use verkv::{Store, Transaction};

/// What every account holds at the start.
const OPENING_BALANCE: u64 = 1_000;

const USAGE: &str =
    "usage: transfers [--threads N] [--transfers N (per thread)] [--accounts N (at least 2)]";

struct Options {
    threads: usize,
    transfers: u64,
    accounts: u64,
}

impl Options {
    fn from_args(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            threads: 4,
            transfers: 100_000,
            accounts: 4,
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |value: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: {value:?} is not a number"))
            };
            match flag.as_str() {
                "--threads" => options.threads = number(&value)? as usize,
                "--transfers" => options.transfers = number(&value)?,
                "--accounts" => options.accounts = number(&value)?,
                other => return Err(format!("unknown option {other}")),
            }
        }
        if options.accounts < 2 || options.threads == 0 {
            return Err("at least 2 accounts and 1 thread".to_string());
        }
        Ok(options)
    }
}

/// A small random number generator (xorshift), one per thread.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// Two different accounts and an amount to move between them.
    fn transfer(&mut self, accounts: u64) -> (u64, u64, u64) {
        let from = self.below(accounts);
        let to = (from + 1 + self.below(accounts - 1)) % accounts;
        (from, to, 1 + self.below(OPENING_BALANCE / 4))
    }
}

/// What one run counted.
#[derive(Default)]
struct Tally {
    committed: AtomicU64,
    refused: AtomicU64,
    /// Transfers whose debit went in and whose credit did not (per-key run only).
    half_done: AtomicU64,
    /// Audits (a read of every balance) whose total was not the opening total.
    wrong_audits: AtomicU64,
    audits: AtomicU64,
}

fn opened(accounts: u64) -> Store<u64, u64> {
    let store = Store::new();
    for account in 0..accounts {
        store.insert(account, OPENING_BALANCE).unwrap();
    }
    store
}

fn total(store: &Store<u64, u64>, accounts: &[u64]) -> u64 {
    let keys: Vec<&u64> = accounts.iter().collect();
    store
        .get_many(&keys)
        .iter()
        .flatten()
        .map(|read| read.value)
        .sum()
}

/// Runs `transfer` on every thread `options.transfers` times while an auditor reads every
/// balance at one instant ([`Store::get_many`]) and counts the totals that are wrong.
fn run(
    options: &Options,
    store: &Store<u64, u64>,
    tally: &Tally,
    transfer: impl Fn(&mut Dice) + Sync,
) {
    let accounts: Vec<u64> = (0..options.accounts).collect();
    let expected = OPENING_BALANCE * options.accounts;
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                tally.audits.fetch_add(1, Ordering::Relaxed);
                if total(store, &accounts) != expected {
                    tally.wrong_audits.fetch_add(1, Ordering::Relaxed);
                }
                thread::yield_now();
            }
        });
        let workers: Vec<_> = (0..options.threads)
            .map(|thread| {
                let transfer = &transfer;
                scope.spawn(move || {
                    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (thread as u64 + 1) << 17);
                    for _ in 0..options.transfers {
                        transfer(&mut dice);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
}

fn main() -> ExitCode {
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("transfers: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let accounts: Vec<u64> = (0..options.accounts).collect();
    let before = OPENING_BALANCE * options.accounts;
    println!(
        "{} threads, {} transfers each, between {} accounts of {OPENING_BALANCE}\n",
        options.threads, options.transfers, options.accounts
    );

    // 1. Per-key compare-and-swap: read both, write the debit, then the credit.
    let store = opened(options.accounts);
    let per_key = Tally::default();
    run(&options, &store, &per_key, |dice| {
        let (from, to, amount) = dice.transfer(options.accounts);
        let (Some(source), Some(target)) = (store.get(&from), store.get(&to)) else {
            return;
        };
        if source.value < amount {
            per_key.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if store
            .update(&from, &source.version, source.value - amount)
            .is_err()
        {
            per_key.refused.fetch_add(1, Ordering::Relaxed);
            return; // nothing moved: the caller would retry
        }
        match store.update(&to, &target.version, target.value + amount) {
            Ok(_) => per_key.committed.fetch_add(1, Ordering::Relaxed),
            // The debit is in, the credit is not: the money left and arrived nowhere.
            Err(_) => per_key.half_done.fetch_add(1, Ordering::Relaxed),
        };
    });
    let after = total(&store, &accounts);
    println!("per-key updates (two compare-and-swaps per transfer):");
    println!(
        "  {} transfers done, {} refused before writing, {} half done (debited, credit refused as stale)",
        per_key.committed.load(Ordering::Relaxed),
        per_key.refused.load(Ordering::Relaxed),
        per_key.half_done.load(Ordering::Relaxed),
    );
    println!(
        "  the auditor saw a wrong total in {} of {} reads",
        per_key.wrong_audits.load(Ordering::Relaxed),
        per_key.audits.load(Ordering::Relaxed)
    );
    println!(
        "  total {before} -> {after}: no single update was lost, yet {} went missing;",
        before.abs_diff(after)
    );
    println!("  per-key CAS cannot tie two writes together without compensation or a lock of the application's own\n");

    // 2. Transactions: both balances read at one instant, both written or neither.
    let store = opened(options.accounts);
    let transactional = Tally::default();
    run(&options, &store, &transactional, |dice| {
        let (from, to, amount) = dice.transfer(options.accounts);
        let moved = store.transact(&[from, to], |read| {
            let (Some(source), Some(target)) = (&read[0], &read[1]) else {
                return Err("no such account");
            };
            if source.value < amount {
                return Err("insufficient funds");
            }
            Ok(Transaction::new()
                .put(from, source.value - amount)
                .put(to, target.value + amount))
        });
        let counter = match moved {
            Ok(_) => &transactional.committed,
            Err(_) => &transactional.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let after = total(&store, &accounts);
    let wrong_audits = transactional.wrong_audits.load(Ordering::Relaxed);
    println!("transactions (Store::transact: read at one instant, commit both or neither):");
    println!(
        "  the auditor saw a wrong total in {wrong_audits} of {} reads",
        transactional.audits.load(Ordering::Relaxed)
    );
    println!(
        "transfers: {} committed, {} refused, total {before} -> {after}",
        transactional.committed.load(Ordering::Relaxed),
        transactional.refused.load(Ordering::Relaxed),
    );
    if after == before && wrong_audits == 0 {
        ExitCode::SUCCESS
    } else {
        println!("BUG: the transactional run did not conserve the total");
        ExitCode::FAILURE
    }
}
