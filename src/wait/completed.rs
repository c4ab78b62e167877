//! Running a future that never waits: how the blocking faces use the loops written once,
//! as futures, for both faces.

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

/// The output of a future that completes when first polled: the loops written once for
/// both faces (the optimistic transaction, `get_or_load`) run this way on the blocking
/// face, whose futures are ready at once.
///
/// # Panics
///
/// If `future` is not ready at once: a blocking caller handed it something to wait for.
pub(crate) fn completed<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the blocking face handed a future that waits"),
    }
}
