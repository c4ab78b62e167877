//! Where an expiring store reads the time: the system's monotonic clock, or a clock the
//! caller moves by hand (for tests that drive expiry deterministically).

use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The clock a store reads to decide expiry, set with
/// [`StoreBuilder::clock`](crate::StoreBuilder::clock).
///
/// A store reads it only if it has some expiry (a time-to-live, a time-to-idle, an
/// [`Expiry`](crate::Expiry) policy, or a write made through
/// [`expiring_after`](crate::Store::expiring_after)); a store without expiry never does.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{ManualClock, Store};
///
/// let clock = ManualClock::new();
/// let store: Store<&str, u32> = Store::builder()
///     .time_to_live(Duration::from_secs(10))
///     .clock(clock.clone())
///     .build();
/// store.insert("a", 1).unwrap();
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(store.get(&"a"), None);
/// ```
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's monotonic clock ([`Instant::now`]): the default.
    #[default]
    System,
    /// A clock that stands still until [`ManualClock::advance`] moves it.
    Manual(ManualClock),
}

impl From<ManualClock> for Clock {
    fn from(clock: ManualClock) -> Self {
        Clock::Manual(clock)
    }
}

/// A clock moved only by hand: time starts at zero and stands still until
/// [`advance`](ManualClock::advance) is called. Clones share one time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let clock = verkv::ManualClock::new();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.elapsed(), Duration::from_millis(1500));
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    /// Nanoseconds since the clock was made.
    nanos: Arc<AtomicU64>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock forward by `by` (saturating: it stops at about 584 years).
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// How far the clock has been moved since it was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

/// `duration` in nanoseconds, `u64::MAX` for anything longer (about 584 years and up):
/// the time arithmetic of expiry saturates there, which reads as "never".
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A started clock: the time, in nanoseconds since a fixed origin, that expiry counts in.
#[derive(Debug, Clone)]
pub(crate) enum Ticker {
    System(Instant),
    Manual(ManualClock),
}

impl Ticker {
    /// Starts `clock`: a system clock counts from now.
    pub(crate) fn start(clock: &Clock) -> Self {
        match clock {
            Clock::System => Ticker::System(Instant::now()),
            Clock::Manual(manual) => Ticker::Manual(manual.clone()),
        }
    }

    /// Nanoseconds since the origin.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self {
            Ticker::System(origin) => nanos(origin.elapsed()),
            Ticker::Manual(manual) => manual.nanos.load(Ordering::Acquire),
        }
    }
}
