//! Running one operation of the async store: a connection checked out under the context,
//! the server's timeouts set from the deadline, the statement raced against the cancel
//! token and a timer on the client side, a cancel request sent to the server when the
//! statement is abandoned (the token fired, the timer rang, or the future was dropped),
//! re-runs when a statement's snapshot could not decide, and errors given the blocking
//! store's meaning.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::super::codec::Encoded;
use super::super::failure::{setup_failure, Effect, Failure, Step};
use super::super::pool::Statements;
use super::pool::{self, Conn};
use super::AsyncPgStore;
use crate::backend::asynchronous::pause::pause_until;
use crate::backend::Context;
use crate::deadline::{CancelToken, Phase, TimedOut};
use crate::store::{Cause, Error};
use crate::version::VersionScheme;

/// How long after the deadline the client gives up on a statement the server has not
/// answered (the server's `statement_timeout` should have answered at the deadline).
pub(super) const GRACE: Duration = Duration::from_millis(250);

/// Sends the server a cancel request for the statement running on a connection when it
/// is dropped unless disarmed first: it lives beside a running statement, so a future
/// dropped while its statement runs cancels that statement (see [`Conn::cancel`]).
pub(super) struct CancelOnDrop<'c> {
    conn: Option<&'c Conn>,
}

impl<'c> CancelOnDrop<'c> {
    pub(super) fn arm(conn: &'c Conn) -> Self {
        CancelOnDrop { conn: Some(conn) }
    }

    /// The statement has answered: nothing to cancel.
    pub(super) fn disarm(mut self) {
        self.conn = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if cfg!(verkv_mutant = "no_cancel_on_drop") {
            // The connection is still not reused; its statement runs on unobserved.
            conn.poison();
            return;
        }
        conn.cancel();
    }
}

/// What an operation sends the server, and how it reads the answers: one statement, or
/// several (a transaction).
pub(super) trait Work {
    /// The operation's answer.
    type Output;

    /// Sends the statements on `client`, whose prepared statements are `statements`,
    /// and reads the answers: the operation's answer, or [`Step::Again`] to send them
    /// again.
    fn send(
        &mut self,
        client: &Client,
        statements: &Statements,
    ) -> impl Future<Output = Result<Step<Self::Output>, Failure>> + Send;
}

/// One statement, the one `pick` chooses, with `params`; its row, if any, read by
/// `answer`.
pub(super) struct OneRow<'p, A> {
    pub(super) pick: fn(&Statements) -> &Statement,
    pub(super) params: &'p [&'p (dyn ToSql + Sync)],
    pub(super) answer: A,
}

impl<T, A> Work for OneRow<'_, A>
where
    A: FnMut(Option<Row>) -> Result<Step<T>, Failure> + Send,
{
    type Output = T;

    async fn send(&mut self, client: &Client, statements: &Statements) -> Result<Step<T>, Failure> {
        (self.answer)(
            client
                .query_opt((self.pick)(statements), self.params)
                .await?,
        )
    }
}

/// The statement that reads several keys at once, with `keys` encoded; its rows read
/// by `answer`.
pub(super) struct AllRows<'p, A> {
    pub(super) keys: &'p [Encoded],
    pub(super) answer: A,
}

impl<T, A> Work for AllRows<'_, A>
where
    A: FnMut(Vec<Row>, &[Encoded]) -> Result<Step<T>, Failure> + Send,
{
    type Output = T;

    async fn send(&mut self, client: &Client, statements: &Statements) -> Result<Step<T>, Failure> {
        let rows = client.query(&statements.get_many, &[&self.keys]).await?;
        (self.answer)(rows, self.keys)
    }
}

/// How the statements of an operation that were sent ended.
pub(super) enum Ended<T> {
    /// They answered (perhaps with an error).
    Answered(T),
    /// The client's timer rang first: no answer, a cancel request was sent.
    Abandoned,
}

/// Runs `sent` (an operation's statements on `conn`), relaying `token` to the server
/// (the statement running then answers that it was cancelled) and abandoning them at
/// `give_up`. Returns how they ended and whether a cancel request was sent.
pub(super) async fn relay_cancel<T>(
    conn: &Conn,
    sent: impl Future<Output = T>,
    token: Option<&CancelToken>,
    give_up: Option<Instant>,
) -> (Ended<T>, bool) {
    let guard = CancelOnDrop::arm(conn);
    let mut query = pin!(sent);
    let mut cancelled = token.map(CancelToken::listen);
    let mut timer = give_up.map(|at| Box::pin(pause_until(at, None)));
    let mut sent = false;
    let ended = poll_fn(|cx| {
        if let Poll::Ready(answer) = query.as_mut().poll(cx) {
            return Poll::Ready(Ended::Answered(answer));
        }
        // Polled for its wake-up; the token itself says whether it was cancelled (also
        // before the listener was made).
        if let Some(listener) = cancelled.as_mut() {
            if Pin::new(listener).poll(cx).is_ready() {
                cancelled = None;
            }
        }
        if !sent && token.is_some_and(CancelToken::is_cancelled) {
            sent = true;
            cancelled = None;
            conn.cancel();
        }
        if timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
        {
            return Poll::Ready(Ended::Abandoned);
        }
        Poll::Pending
    })
    .await;
    match ended {
        // Dropping the armed guard sends the cancel request.
        Ended::Abandoned => drop(guard),
        Ended::Answered(_) => guard.disarm(),
    }
    (ended, sent)
}

impl<K, V, S: VersionScheme> AsyncPgStore<K, V, S> {
    /// Runs the statement `pick` chooses with `params` on a pooled connection under
    /// `ctx`, reads its answer with `answer`, again while that says [`Step::Again`], and
    /// gives errors their meaning.
    pub(super) async fn run<T>(
        &self,
        ctx: &Context<'_>,
        effect: Effect,
        pick: fn(&Statements) -> &Statement,
        params: &[&(dyn ToSql + Sync)],
        answer: impl FnMut(Option<Row>) -> Result<Step<T>, Failure> + Send,
    ) -> Result<T, Error<S::Version>> {
        let work = OneRow {
            pick,
            params,
            answer,
        };
        self.run_work(ctx, effect, work).await
    }

    /// Runs `work` on a pooled connection under `ctx`, again while it answers
    /// [`Step::Again`], and gives errors their meaning.
    pub(super) async fn run_work<W: Work>(
        &self,
        ctx: &Context<'_>,
        effect: Effect,
        mut work: W,
    ) -> Result<W::Output, Error<S::Version>> {
        let started = Instant::now();
        if ctx.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let mut conn = pool::checkout(&self.pool, ctx, self.acquire_timeout, started).await?;
        loop {
            if ctx.is_cancelled() {
                return Err(Error::Cancelled);
            }
            if ctx.remaining() == Some(Duration::ZERO) {
                return Err(Error::TimedOut(TimedOut::new(
                    Phase::Queued,
                    started.elapsed(),
                )));
            }
            conn.set_timeouts(ctx.remaining())
                .await
                .map_err(|error| setup_failure(&error))?;
            let statements = conn
                .statements(&self.sql)
                .await
                .map_err(|error| setup_failure(&error))?;
            let give_up = ctx.deadline().map(|deadline| deadline + GRACE);
            let sent = work.send(&conn.client, &statements);
            let (ended, cancelled) = relay_cancel(&conn, sent, ctx.cancel_token(), give_up).await;
            let outcome = match ended {
                Ended::Answered(answered) => answered,
                Ended::Abandoned => {
                    let cause = Cause::new(
                        "the server did not answer by the deadline; a cancel request was sent",
                    );
                    return Err(match effect {
                        Effect::Reads => {
                            Error::TimedOut(TimedOut::new(Phase::Running, started.elapsed()))
                        }
                        Effect::Writes => Error::OutcomeUnknown(cause),
                    });
                }
            };
            match outcome {
                Ok(Step::Done(answer)) => return Ok(answer),
                Ok(Step::Again) => continue,
                Err(failure) => return Err(failure.meaning(effect, started, cancelled)),
            }
        }
    }
}
