//! Wake-ups: workers `LISTEN` on the schema's channel, which enrolments, reconciles and sync
//! requests `NOTIFY` (when their transaction commits). Polling stays the fallback: a worker that
//! misses a notification (its connection was down) finds the work at its next poll.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use super::PostgresStateStore;

/// How long a listener waits before it connects again after its connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

impl PostgresStateStore {
    /// Wakes `wake` (one waiter, or the next to wait) at every notification of the schema's
    /// channel, over a connection of its own outside the pool, reconnecting after failures;
    /// runs until dropped. Over a host's own pool ([`from_pool`](Self::from_pool)) there is
    /// no way to open such a connection: it returns at once, and workers poll.
    pub(crate) async fn listen_for_work(self, wake: Arc<Notify>) {
        let Some(connector) = self.connector.clone() else {
            return;
        };
        let listen = format!("LISTEN \"{}\"", self.sql.leases.channel);
        loop {
            if let Ok((client, mut connection)) = connector.connect().await {
                // The connection's messages are read here; the LISTEN is sent beside them.
                let messages = async {
                    while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
                        if let AsyncMessage::Notification(_) = message {
                            wake.notify_one();
                        }
                    }
                };
                let subscribe = async {
                    if client.batch_execute(&listen).await.is_ok() {
                        // Work may have been asked for while this listener was away.
                        wake.notify_one();
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    () = messages => {}
                    () = subscribe => {}
                }
            }
            tokio::time::sleep(RECONNECT).await;
        }
    }
}
