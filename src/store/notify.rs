//! Waking idle delivery workers (one per outbox) when their work is committed: in-process on SQLite (one process owns the
//! file), and across instances on PostgreSQL with LISTEN/NOTIFY (a NOTIFY in the transaction is delivered
//! when it commits, so no worker wakes for work it cannot see yet).

use std::time::Duration;

use sqlx::{Any, Transaction};

use super::jobs::Outbox;
use super::{Store, StoreResult};

const CHANNEL: &str = "tessera_outbox";

/// Announces, in the caller's transaction, that jobs are waiting in `outbox` (PostgreSQL only).
pub(crate) async fn announce(tx: &mut Transaction<'static, Any>, sqlite: bool, outbox: Outbox) -> StoreResult<()> {
    if !sqlite {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(outbox.payload()).execute(&mut **tx).await?;
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
        let (url, store) = (self.url.to_string(), self.clone());
        Some(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed; the push worker polls meanwhile");
                        } else {
                            while let Ok(note) = listener.recv().await {
                                for outbox in Outbox::ALL.into_iter().filter(|o| o.payload() == note.payload()) {
                                    store.wake(outbox);
                                }
                            }
                            tracing::warn!("the outbox listener lost its connection; reconnecting");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot connect the outbox listener; retrying"),
                }
                // Wake the workers once: changes made while we were away are found by their next claim.
                Outbox::ALL.into_iter().for_each(|outbox| store.wake(outbox));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}
