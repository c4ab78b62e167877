//! The notification connection's loop, written once for either face (`connection.rs`):
//! it `LISTEN`s on the table's channel, registers as a listener (which turns the table's
//! change trigger on), and drops (or re-stamps) the local copy of every key it hears
//! about. The blocking near-cache runs it on a thread of its own, the async one as a task
//! of the runtime it was built on.
//!
//! Memory serves copies only once the registration has committed: by then every write
//! that will not be notified has committed (see the PostgreSQL backend's `listeners.rs`),
//! so a copy read afterwards shows it. At the start memory is empty, and every copy is
//! read after the registration.
//!
//! When the connection is lost the near-cache stops serving from memory at once; the
//! loop connects again, `LISTEN`s and registers first, then refuses every copy and
//! clears memory, and only then serves from memory again. A change committed while it
//! was away (when the trigger may have been off, if the lost session's registration was
//! withdrawn) is either in a copy that was cleared, or read again after the
//! registration. When the near-cache is dropped the loop withdraws its registration
//! (the last one turns the trigger off) and ends.

use crate::sync::{AtomicBool, Ordering};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::postgres::Notification;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::stats::count;
use super::{Cached, Shared};
use crate::backend::asynchronous::pause::within;
use crate::backend::postgres::{Batch, Registry};
use crate::backend::Context;
use crate::deadline::Phase;
use crate::store::Cause;

/// The longest the loop waits for a notification without looking whether it must stop.
const SLICE: Duration = Duration::from_millis(20);
/// The pause between two attempts to connect again.
const RETRY: Duration = Duration::from_millis(50);

/// A notification connection of one face: the blocking client, whose steps are ready when
/// first polled (the loop then runs on a thread of its own), or the async one.
pub(super) trait Connection: Batch + Sized {
    /// The connection settings this face's client takes.
    type Config;

    /// Opens a connection to the server of `config`.
    fn open(config: &Self::Config) -> impl Future<Output = Result<Self, ::postgres::Error>>;

    /// What the connection hears within `slice`.
    fn next(&mut self, slice: Duration) -> impl Future<Output = Heard>;

    /// The server process of the session.
    fn pid(&mut self) -> impl Future<Output = Result<u32, ::postgres::Error>>;
}

/// What a notification connection heard within a slice of time.
pub(super) enum Heard {
    /// A notification, on any channel the session listens on.
    Notification(Notification),
    /// Nothing.
    Silence,
    /// That the connection is lost.
    Lost,
}

/// Where and how the loop listens, over connections `C`.
pub(super) struct Listener<C: Connection> {
    pub(super) config: C::Config,
    pub(super) channel: String,
    /// How it registers as a listener of the table.
    pub(super) registry: Registry,
    /// How long the connection may stay silent before a round trip checks it is alive.
    pub(super) heartbeat: Duration,
}

impl<C: Connection> Listener<C> {
    /// Opens the connection, listens and registers (trying again while the table's lock
    /// is not granted in time, until `stop` says): the connection and its server process.
    pub(super) async fn connect(&self, stop: &impl Fn() -> bool) -> Result<(C, u32), Cause> {
        let failed = |error: ::postgres::Error| {
            Cause::new(format!("cannot open the notification connection: {error}"))
        };
        let mut client = C::open(&self.config).await.map_err(failed)?;
        self.registry
            .listen(&mut client, None, stop)
            .await
            .map_err(failed)?;
        let pid = client.pid().await.map_err(failed)?;
        Ok((client, pid))
    }

    /// Serves `client` until the near-cache is dropped, reconnecting after each loss.
    pub(super) async fn run<K, V, Ver>(&self, shared: &Arc<Shared<K, V, Ver>>, mut client: C)
    where
        K: Hash + Eq + Clone + DeserializeOwned,
        V: Clone,
        Ver: Clone + std::fmt::Display,
    {
        let _stopped = Incoherent(&shared.counters.coherent);
        let stop = || shared.stop.load(Ordering::SeqCst);
        loop {
            self.listen(shared, &mut client).await;
            shared.counters.coherent.store(false, Ordering::SeqCst);
            shared.listener_pid.store(0, Ordering::SeqCst);
            if stop() {
                // Nobody relies on this registration any more. If the withdrawal fails,
                // the registration goes when the connection (dropped next) does.
                let _ = self.registry.unlisten(&mut client).await;
                return;
            }
            count(&shared.counters.disconnects);
            loop {
                if stop() {
                    return;
                }
                if let Ok((reconnected, pid)) = self.connect(&stop).await {
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
                C::pause(RETRY).await;
            }
        }
    }

    /// Handles notifications until the connection is lost or the near-cache dropped.
    async fn listen<K, V, Ver>(&self, shared: &Shared<K, V, Ver>, client: &mut C)
    where
        K: Hash + Eq + Clone + DeserializeOwned,
        V: Clone,
        Ver: Clone + std::fmt::Display,
    {
        // A silent loss must fail the heartbeat's round trip, not hang it.
        let patience = patience(self.heartbeat);
        let mut last_heard = Instant::now();
        while !shared.stop.load(Ordering::SeqCst) {
            match client.next(SLICE).await {
                Heard::Notification(notification) => {
                    last_heard = Instant::now();
                    if notification.channel() == self.channel {
                        apply(shared, notification.payload());
                        count(&shared.counters.invalidations);
                    }
                }
                Heard::Lost => return,
                Heard::Silence if last_heard.elapsed() >= self.heartbeat => {
                    let alive = Context::within(patience);
                    match within(&alive, Phase::Watching, client.batch_execute("")).await {
                        Ok(Ok(())) => last_heard = Instant::now(),
                        _ => return,
                    }
                }
                Heard::Silence => {}
            }
        }
    }
}

/// How long the heartbeat's round trip may go unanswered (and a connection attempt take)
/// before the connection counts as lost: the heartbeat, at least a second.
pub(super) fn patience(heartbeat: Duration) -> Duration {
    heartbeat.max(Duration::from_secs(1))
}

/// Marks memory as not coherent when dropped: when the loop ends, even by a panic (or
/// its task is dropped with the runtime),
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
