//! [`AsyncVersionedStore::commit`](crate::AsyncVersionedStore::commit) on PostgreSQL: the
//! blocking store's transaction (`postgres/transaction.rs`, whose module docs say how it
//! runs), its statements sent on an async connection.
//!
//! The SQL transaction is begun and ended by statements on the pooled connection, which
//! the operation's cancel relay watches like any other: a transaction whose future is
//! dropped, whose token fires or whose deadline passes has its running statement
//! cancelled, and its connection is closed rather than reused, which rolls back what it
//! had done. A transaction that fails while it runs is rolled back before the connection
//! goes back to the pool.

use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::super::failure::{Effect, Failure, Step};
use super::super::pool::Statements;
use super::super::transaction::{answer, apply, encode, failed, Ran, Sent, Session};
use super::super::versions::PgVersion;
use super::call::Work;
use super::AsyncPgStore;
use crate::backend::Context;
use crate::store::{Committed, Transaction, TransactionRefused, TransactionStep};

/// What begins an SQL transaction as the blocking store's transactions begin.
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// An SQL transaction begun on an async connection.
struct Awaited<'c> {
    client: &'c Client,
}

impl Session for Awaited<'_> {
    async fn query_opt(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Failure> {
        Ok(self.client.query_opt(statement, params).await?)
    }

    async fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(), Failure> {
        self.client.execute(statement, params).await?;
        Ok(())
    }

    async fn rollback(self) -> Result<(), Failure> {
        Ok(self.client.batch_execute("ROLLBACK").await?)
    }

    async fn commit(self) -> Result<(), Failure> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(Failure::Commit)
    }
}

/// A transaction's statements, as the work of one operation.
struct InTransaction<'t, K, V, S: PgVersion> {
    ctx: &'t Context<'t>,
    steps: &'t [TransactionStep<K, V, S::Version>],
    encoded: &'t (Vec<Sent>, Vec<usize>),
}

impl<K: Sync, V: Sync, S: PgVersion> Work for InTransaction<'_, K, V, S> {
    type Output = Ran<S::Version>;

    async fn send(
        &mut self,
        client: &Client,
        statements: &Statements,
    ) -> Result<Step<Ran<S::Version>>, Failure> {
        client.batch_execute(BEGIN).await?;
        let session = Awaited { client };
        let ran = apply::<K, V, S>(session, statements, self.ctx, self.steps, self.encoded);
        match ran.await {
            Ok(ran) => Ok(Step::Done(ran)),
            Err(failure) => {
                // Ends the transaction if the connection still can; if it cannot,
                // the pool does not take the connection back.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(failure)
            }
        }
    }
}

impl<K, V, S> AsyncPgStore<K, V, S>
where
    K: Serialize + Clone + Sync,
    V: Serialize + DeserializeOwned + Sync,
    S: PgVersion,
{
    /// The trait's `commit`: the blocking store's transaction, awaited.
    pub(super) async fn commit_transaction(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>> {
        let started = Instant::now();
        let ran = match encode(&transaction.steps) {
            Ok(encoded) => {
                let work = InTransaction::<K, V, S> {
                    ctx,
                    steps: &transaction.steps,
                    encoded: &encoded,
                };
                self.run_work(ctx, Effect::Reads, work)
                    .await
                    .map_err(failed)
            }
            Err(error) => Err(error),
        };
        answer(ran, transaction, started)
    }
}
