//! Running one operation on the blocking face: a connection checked out under the
//! context, the server's timeouts set from the deadline, the cancel token relayed to the
//! server, re-runs when a statement's snapshot could not decide, and errors given their
//! meaning (`failure`).

use crate::sync::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::{Client, NoTls};

use super::failure::{setup_failure, Effect, Failure, Step};
use super::pool::{self, Statements};
use super::PgStore;
use crate::backend::Context;
use crate::deadline::{CancelToken, Phase, TimedOut};
use crate::store::Error;
use crate::version::VersionScheme;

/// How often a running statement looks at its cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(1);

impl<K, V, S: VersionScheme> PgStore<K, V, S> {
    /// Runs `attempt` on a pooled connection under `ctx`, again while it answers
    /// [`Step::Again`], and gives its errors their meaning.
    pub(super) fn run<T>(
        &self,
        ctx: &Context<'_>,
        effect: Effect,
        mut attempt: impl FnMut(&mut Client, &Statements) -> Result<Step<T>, Failure>,
    ) -> Result<T, Error<S::Version>> {
        let started = Instant::now();
        let mut conn = pool::checkout(
            &self.pool,
            &self.last_failure,
            ctx,
            self.acquire_timeout,
            started,
        )?;
        loop {
            if ctx.remaining() == Some(Duration::ZERO) {
                return Err(Error::TimedOut(TimedOut::new(
                    Phase::Queued,
                    started.elapsed(),
                )));
            }
            let prepared = conn
                .set_timeouts(ctx.remaining())
                .and_then(|()| conn.statements(&self.sql));
            let statements = prepared.map_err(|error| setup_failure(&error))?;
            let (outcome, cancelled) =
                relay_cancel(&mut conn.client, ctx.cancel_token(), |client| {
                    attempt(client, &statements)
                });
            if cancelled {
                conn.poison();
            }
            match outcome {
                Ok(Step::Done(answer)) => return Ok(answer),
                Ok(Step::Again) => continue,
                Err(failure) => return Err(failure.meaning(effect, started, cancelled)),
            }
        }
    }
}

/// Runs `statement` on `client`; if `token` is cancelled meanwhile, asks the server to
/// cancel it. Returns its outcome and whether a cancel request was sent.
pub(super) fn relay_cancel<T>(
    client: &mut Client,
    token: Option<&CancelToken>,
    statement: impl FnOnce(&mut Client) -> T,
) -> (T, bool) {
    let Some(token) = token else {
        return (statement(client), false);
    };
    let server = client.cancel_token();
    let sent = AtomicBool::new(false);
    let (finished, done) = mpsc::channel::<()>();
    let outcome = thread::scope(|scope| {
        let (sent, server) = (&sent, &server);
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(CANCEL_POLL) {
                if token.is_cancelled() {
                    sent.store(true, Ordering::Relaxed);
                    // If the request cannot be delivered, the statement runs on; its
                    // deadline still bounds it.
                    let _ = server.cancel_query(NoTls);
                    return;
                }
            }
        });
        let outcome = statement(client);
        drop(finished);
        outcome
    });
    (outcome, sent.into_inner())
}
