//! A future that completes at an instant, for async waits with a deadline, with no
//! runtime: one background thread (started on first use) sleeps until the earliest
//! alarm and wakes its task.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The task to wake, shared by an alarm and the timer thread's queue; the queue
/// holds it weakly, so a dropped alarm is forgotten.
type Slot = Mutex<Option<Waker>>;

struct Entry {
    at: Instant,
    slot: Weak<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// The alarms not yet due, earliest first, and the condition the thread sleeps on.
struct Timer {
    queue: Mutex<BinaryHeap<Reverse<Entry>>>,
    wake_up: Condvar,
}

impl Timer {
    /// The process's timer, its thread started on first use; `None` if the thread
    /// could not be started.
    fn get() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                queue: Mutex::new(BinaryHeap::new()),
                wake_up: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("verkv-alarms".into())
                .spawn(move || timer.run())
                .ok()
                .map(|_| timer)
        })
    }

    fn add(&self, at: Instant, slot: &Arc<Slot>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let earliest = queue.peek().is_none_or(|Reverse(first)| at < first.at);
        queue.push(Reverse(Entry {
            at,
            slot: Arc::downgrade(slot),
        }));
        if earliest {
            self.wake_up.notify_one();
        }
    }

    fn run(&self) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            while queue.peek().is_some_and(|Reverse(first)| first.at <= now) {
                let Some(Reverse(due)) = queue.pop() else {
                    break;
                };
                if let Some(slot) = due.slot.upgrade() {
                    let waker = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            }
            queue = match queue.peek() {
                Some(Reverse(first)) => {
                    let wait = first.at.saturating_duration_since(now);
                    self.wake_up
                        .wait_timeout(queue, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake_up
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// Completes at `at`.
pub(crate) struct Alarm {
    at: Instant,
    slot: Option<Arc<Slot>>,
}

impl Alarm {
    pub(crate) fn at(at: Instant) -> Self {
        Alarm { at, slot: None }
    }
}

impl Future for Alarm {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        let Some(timer) = Timer::get() else {
            // No thread to wake us: ask to be polled again.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        match &self.slot {
            Some(slot) => {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            }
            None => {
                let slot = Arc::new(Mutex::new(Some(cx.waker().clone())));
                timer.add(self.at, &slot);
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}
