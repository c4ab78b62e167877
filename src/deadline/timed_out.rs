//! How a bounded operation reports that it stopped: its deadline passed ([`TimedOut`],
//! with the [`Phase`] it was in) or it was cancelled ([`Interrupted`]).

use std::fmt;
use std::time::Duration;

/// Where an operation was when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting behind other operations (for its shard lock; on a database server, for a
    /// pooled connection or a row lock): it never started.
    Queued,
    /// Inside an optimistic retry loop, after this many attempts were refused as stale.
    Retrying {
        /// Attempts made (each a read and a refused compare-and-swap).
        attempts: u32,
    },
    /// Waiting for a record to change.
    Watching,
    /// Waiting for another caller's load of the same key to finish
    /// ([`get_or_load`](crate::Store::get_or_load)). That load goes on.
    Loading,
    /// Running on a database server (a backend's statement timeout): the server cancelled
    /// the statement, which had no effect.
    Running,
}

/// An operation ran out of time. It had no effect.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{Phase, TimedOut};
///
/// let late = TimedOut::new(Phase::Queued, Duration::from_millis(5));
/// assert_eq!(late.to_string(), "timed out after 5ms queued behind other operations; the operation did not start");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    phase: Phase,
    /// Nanoseconds waited; `u64` rather than `Duration` keeps the error small.
    waited_nanos: u64,
}

impl TimedOut {
    /// A timeout in `phase` after waiting `waited`.
    pub fn new(phase: Phase, waited: Duration) -> Self {
        TimedOut {
            phase,
            waited_nanos: u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Where the operation was when time ran out.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// How long the operation waited before giving up.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos)
    }

    /// The same timeout, reported as happening inside a retry loop after `attempts`
    /// refused attempts (if there were any).
    pub(crate) fn after_attempts(self, attempts: u32) -> Self {
        match self.phase {
            Phase::Queued if attempts > 0 => TimedOut {
                phase: Phase::Retrying { attempts },
                ..self
            },
            _ => self,
        }
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waited = self.waited();
        match self.phase {
            Phase::Queued => write!(
                f,
                "timed out after {waited:?} queued behind other operations; the operation did not start"
            ),
            Phase::Retrying { attempts } => write!(
                f,
                "timed out after {waited:?} retrying; {attempts} attempts were stale and nothing was written"
            ),
            Phase::Watching => write!(f, "timed out after {waited:?} waiting for a change"),
            Phase::Loading => write!(
                f,
                "timed out after {waited:?} waiting for another caller's load; the load goes on"
            ),
            Phase::Running => write!(
                f,
                "timed out after {waited:?} running on the server; the statement was cancelled and had no effect"
            ),
        }
    }
}

impl std::error::Error for TimedOut {}

/// Why a bounded operation stopped before taking effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// Its deadline passed.
    TimedOut(TimedOut),
    /// Its [`CancelToken`](crate::CancelToken) was cancelled.
    Cancelled,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupted::TimedOut(timed_out) => timed_out.fmt(f),
            Interrupted::Cancelled => f.write_str("operation cancelled"),
        }
    }
}

impl std::error::Error for Interrupted {}

/// Lets code that is generic over how it waits treat every wait's error as an
/// interruption (the statistics count them) when waiting cannot fail.
impl From<std::convert::Infallible> for Interrupted {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_where_time_ran_out() {
        let ms = Duration::from_millis(3);
        assert_eq!(
            TimedOut::new(Phase::Retrying { attempts: 4 }, ms).to_string(),
            "timed out after 3ms retrying; 4 attempts were stale and nothing was written"
        );
        assert_eq!(
            TimedOut::new(Phase::Watching, ms).to_string(),
            "timed out after 3ms waiting for a change"
        );
        assert_eq!(
            TimedOut::new(Phase::Loading, ms).to_string(),
            "timed out after 3ms waiting for another caller's load; the load goes on"
        );
        assert_eq!(
            TimedOut::new(Phase::Running, ms).to_string(),
            "timed out after 3ms running on the server; the statement was cancelled and had no effect"
        );
        assert_eq!(Interrupted::Cancelled.to_string(), "operation cancelled");
    }

    #[test]
    fn queued_timeouts_move_into_the_retry_phase_after_attempts() {
        let queued = TimedOut::new(Phase::Queued, Duration::ZERO);
        assert_eq!(queued.after_attempts(0).phase(), Phase::Queued);
        assert_eq!(
            queued.after_attempts(2).phase(),
            Phase::Retrying { attempts: 2 }
        );
    }

    #[test]
    fn waited_time_saturates() {
        assert_eq!(
            TimedOut::new(Phase::Queued, Duration::MAX).waited(),
            Duration::from_nanos(u64::MAX)
        );
    }
}
