//! The notification connection of each face, as the listening loop (`listener.rs`) uses
//! it: the blocking client, whose every step is done when first polled, and (with the
//! `postgres-async` feature) the async client, whose notifications come from the task
//! that drives its connection.

use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, NoTls};

use super::listener::{Connection, Heard};

/// Sets what a notification connection needs on a connection configuration of either
/// client (whose setters are alike): its name as the server shows it, and patience for a
/// silent loss (the heartbeat's, `patience`) on the socket and when connecting.
macro_rules! listener_settings {
    ($config:expr, $patience:expr) => {{
        let (config, patience) = ($config, $patience);
        config
            .application_name("verkv near-cache listener")
            .tcp_user_timeout(patience)
            .keepalives_idle(patience);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(patience);
        }
    }};
}

/// The settings of the blocking face's notification connection: those of `config` (the
/// store's server and role) and the heartbeat's `patience`.
pub(super) fn blocking_settings(
    mut config: ::postgres::Config,
    patience: Duration,
) -> ::postgres::Config {
    listener_settings!(&mut config, patience);
    config
}

impl Connection for Client {
    type Config = ::postgres::Config;

    async fn open(config: &::postgres::Config) -> Result<Client, ::postgres::Error> {
        config.connect(NoTls)
    }

    async fn next(&mut self, slice: Duration) -> Heard {
        let next = self.notifications().timeout_iter(slice).next();
        match next {
            Ok(Some(notification)) => Heard::Notification(notification),
            Ok(None) if self.is_closed() => Heard::Lost,
            Ok(None) => Heard::Silence,
            Err(_) => Heard::Lost,
        }
    }

    async fn pid(&mut self) -> Result<u32, ::postgres::Error> {
        let pid: i32 = self.query_one("SELECT pg_backend_pid()", &[])?.get(0);
        Ok(pid.unsigned_abs())
    }
}

#[cfg(feature = "postgres-async")]
pub(super) use self::awaited::{async_settings, Awaited};

#[cfg(feature = "postgres-async")]
mod awaited {
    use std::time::{Duration, Instant};

    use tokio_postgres::Client;

    use super::super::listener::{Connection, Heard};
    use crate::backend::asynchronous::pause::within;
    use crate::backend::postgres::{connect, Batch, Notifications};
    use crate::backend::Context;
    use crate::deadline::{Interrupted, Phase};

    /// The settings of the async face's notification connection, as
    /// [`blocking_settings`](super::blocking_settings) for the blocking one.
    pub(in super::super) fn async_settings(
        mut config: tokio_postgres::Config,
        patience: Duration,
    ) -> tokio_postgres::Config {
        listener_settings!(&mut config, patience);
        config
    }

    /// The async face's notification connection: its client, and what the task that
    /// drives it hands on of the session's notifications.
    pub(in super::super) struct Awaited {
        client: Client,
        notifications: Notifications,
    }

    impl Batch for Awaited {
        async fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
            self.client.batch_execute(sql).await
        }

        fn is_closed(&self) -> bool {
            self.client.is_closed()
        }

        async fn pause(pause: Duration) {
            <&Client as Batch>::pause(pause).await;
        }
    }

    impl Connection for Awaited {
        type Config = tokio_postgres::Config;

        async fn open(config: &tokio_postgres::Config) -> Result<Awaited, tokio_postgres::Error> {
            let (client, notifications) = connect(config).await?;
            Ok(Awaited {
                client,
                notifications,
            })
        }

        async fn next(&mut self, slice: Duration) -> Heard {
            let slice = Context::until(Instant::now() + slice);
            match within(&slice, Phase::Watching, self.notifications.recv()).await {
                Ok(Some(notification)) => Heard::Notification(notification),
                // The task that drives the connection has ended.
                Ok(None) => Heard::Lost,
                Err(Interrupted::TimedOut(_) | Interrupted::Cancelled) if self.is_closed() => {
                    Heard::Lost
                }
                Err(_) => Heard::Silence,
            }
        }

        async fn pid(&mut self) -> Result<u32, tokio_postgres::Error> {
            let row = self
                .client
                .query_one("SELECT pg_backend_pid()", &[])
                .await?;
            Ok(row.get::<_, i32>(0).unsigned_abs())
        }
    }
}
