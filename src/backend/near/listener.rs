//! The notification connection: a thread of its own that `LISTEN`s on the table's channel,
//! registers as a listener (which turns the table's change trigger on), and drops (or
//! re-stamps) the local copy of every key it hears about.
//!
//! Memory serves copies only once the registration has committed: by then every write
//! that will not be notified has committed (see the PostgreSQL backend's `listeners.rs`),
//! so a copy read afterwards shows it. At the start memory is empty, and every copy is
//! read after the registration.
//!
//! When the connection is lost the near-cache stops serving from memory at once; the
//! thread connects again, `LISTEN`s and registers first, then refuses every copy and
//! clears memory, and only then serves from memory again. A change committed while it
//! was away (when the trigger may have been off, if the lost session's registration was
//! withdrawn) is either in a copy that was cleared, or read again after the
//! registration. When the near-cache is dropped the thread withdraws its registration
//! (the last one turns the trigger off).

use crate::sync::{AtomicBool, Ordering};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Config, NoTls};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::stats::count;
use super::{Cached, Shared};
use crate::backend::postgres::Registry;
use crate::store::Cause;
use crate::wait::completed;

/// The longest the thread blocks without looking whether it must stop.
const SLICE: Duration = Duration::from_millis(20);
/// The pause between two attempts to connect again.
const RETRY: Duration = Duration::from_millis(50);

/// Where and how the thread listens.
pub(super) struct Listener {
    pub(super) config: Config,
    pub(super) channel: String,
    /// How it registers as a listener of the table.
    pub(super) registry: Registry,
    /// How long the connection may stay silent before a round trip checks it is alive.
    pub(super) heartbeat: Duration,
}

impl Listener {
    /// Opens the connection, listens and registers (trying again while the table's lock
    /// is not granted in time, until `stop` says): the client and its server process id.
    pub(super) fn connect(&self, stop: &dyn Fn() -> bool) -> Result<(Client, u32), Cause> {
        let failed = |error: ::postgres::Error| {
            Cause::new(format!("cannot open the notification connection: {error}"))
        };
        let mut client = self.config.connect(NoTls).map_err(failed)?;
        completed(self.registry.listen(&mut client, None, stop)).map_err(failed)?;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .map_err(failed)?
            .get(0);
        Ok((client, pid.unsigned_abs()))
    }

    /// Serves `client` until the near-cache is dropped, reconnecting after each loss.
    pub(super) fn run<K, V, Ver>(&self, shared: &Arc<Shared<K, V, Ver>>, mut client: Client)
    where
        K: Hash + Eq + Clone + DeserializeOwned,
        V: Clone,
        Ver: Clone + std::fmt::Display,
    {
        let _stopped = Incoherent(&shared.counters.coherent);
        let stop = || shared.stop.load(Ordering::SeqCst);
        loop {
            self.listen(shared, &mut client);
            shared.counters.coherent.store(false, Ordering::SeqCst);
            shared.listener_pid.store(0, Ordering::SeqCst);
            if stop() {
                // Nobody relies on this registration any more. If the withdrawal fails,
                // the registration goes when the connection (dropped next) does.
                let _ = completed(self.registry.unlisten(&mut client));
                return;
            }
            count(&shared.counters.disconnects);
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok((reconnected, pid)) = self.connect(&stop) {
                    client = reconnected;
                    // Listening and registered already: refuse every copy, clear, then
                    // serve again.
                    shared.stamps.invalidate_all();
                    shared.local.clear();
                    shared.listener_pid.store(pid, Ordering::SeqCst);
                    shared.counters.coherent.store(true, Ordering::SeqCst);
                    count(&shared.counters.reconnects);
                    break;
                }
                std::thread::sleep(RETRY);
            }
        }
    }

    /// Handles notifications until the connection is lost or the near-cache dropped.
    fn listen<K, V, Ver>(&self, shared: &Shared<K, V, Ver>, client: &mut Client)
    where
        K: Hash + Eq + Clone + DeserializeOwned,
        V: Clone,
        Ver: Clone + std::fmt::Display,
    {
        let mut last_heard = Instant::now();
        while !shared.stop.load(Ordering::SeqCst) {
            let next = client.notifications().timeout_iter(SLICE).next();
            match next {
                Ok(Some(notification)) => {
                    last_heard = Instant::now();
                    if notification.channel() == self.channel {
                        apply(shared, notification.payload());
                        count(&shared.counters.invalidations);
                    }
                }
                Ok(None) if client.is_closed() => return,
                Ok(None) if last_heard.elapsed() >= self.heartbeat => {
                    if client.simple_query("").is_err() {
                        return;
                    }
                    last_heard = Instant::now();
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }
}

/// Marks memory as not coherent when dropped: when the thread ends, even by a panic,
/// memory is no longer served from.
struct Incoherent<'a>(&'a AtomicBool);

impl Drop for Incoherent<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A change notification's payload, as the table's trigger sends it.
#[derive(Deserialize)]
struct Change {
    key: Option<serde_json::Value>,
    version: Option<String>,
}

/// Invalidates what the change in `payload` makes stale: its key's copies, or every copy
/// when the key is not in the payload (too long to notify) or cannot be read as a key.
fn apply<K, V, Ver>(shared: &Shared<K, V, Ver>, payload: &str)
where
    K: Hash + Eq + Clone + DeserializeOwned,
    V: Clone,
    Ver: Clone + std::fmt::Display,
{
    if cfg!(verkv_mutant = "no_invalidation") {
        return;
    }
    let change = serde_json::from_str::<Change>(payload).ok();
    let key = change.as_ref().and_then(|change| {
        let key = change.key.as_ref()?;
        K::deserialize(key).ok()
    });
    let (Some(change), Some(key)) = (change, key) else {
        shared.stamps.invalidate_all();
        shared.local.clear();
        return;
    };
    let tick = shared.stamps.invalidate(&key);
    let Some(copy) = shared.local.get(&key) else {
        return;
    };
    // The trigger sends the version as the database prints it, which is how verkv
    // displays both schemes (a decimal number, a hyphenated lower-case UUID).
    let notified = change.version.as_deref();
    let held = copy.value.record.as_ref().map(|r| r.version.to_string());
    if held.as_deref() == notified {
        // The copy is the state this change made, and every earlier change was handled
        // before this one: it is current as of the tick.
        let restamped = Cached {
            record: copy.value.record,
            stamp: tick,
        };
        let _ = shared.local.update(&key, &copy.version, restamped);
    } else {
        // Refused as stale if another copy landed since: that one carries its own stamp.
        let _ = shared.local.remove(&key, &copy.version);
    }
}
