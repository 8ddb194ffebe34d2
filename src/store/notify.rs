//! Waking idle push workers when push work is committed: in-process on SQLite (one process owns the
//! file), and across instances on PostgreSQL with LISTEN/NOTIFY (a NOTIFY in the transaction is delivered
//! when it commits, so no worker wakes for work it cannot see yet).

use std::time::Duration;

use sqlx::{Any, Transaction};

use super::{Store, StoreResult};

const CHANNEL: &str = "tessera_outbox";

/// Announces, in the caller's transaction, that push jobs are waiting (PostgreSQL only).
pub(crate) async fn announce_outbox(tx: &mut Transaction<'static, Any>, sqlite: bool) -> StoreResult<()> {
    if !sqlite {
        sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// On PostgreSQL, listens for other instances' (and our own) outbox announcements and wakes this
    /// instance's worker; reconnects after losing the connection. The worker's slow poll covers the
    /// moments it is away. Nothing to do on SQLite.
    pub fn spawn_outbox_listener(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.sqlite {
            return None;
        }
        let (url, signal) = (self.url.to_string(), self.outbox_signal.clone());
        Some(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed; the push worker polls meanwhile");
                        } else {
                            while listener.recv().await.is_ok() {
                                signal.notify_one();
                            }
                            tracing::warn!("the outbox listener lost its connection; reconnecting");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot connect the outbox listener; retrying"),
                }
                // Wake the worker once: changes made while we were away are found by its next claim.
                signal.notify_one();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}
