//! Waking idle workers (APNs pushes, Google objects) when their work is committed: in-process on SQLite (one process owns the
//! file), and across instances on PostgreSQL with LISTEN/NOTIFY (a NOTIFY in the transaction is delivered
//! when it commits, so no worker wakes for work it cannot see yet).

use std::time::Duration;

use sqlx::{Any, Transaction};

use super::{Store, StoreResult};

const CHANNEL: &str = "tessera_outbox";

/// Which outbox an announcement is about (the NOTIFY payload), so only that worker wakes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outbox {
    Apns,
    Google,
}

impl Outbox {
    fn payload(self) -> &'static str {
        match self {
            Outbox::Apns => "apns",
            Outbox::Google => "google",
        }
    }
}

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
        let (url, signal, google) = (self.url.to_string(), self.outbox_signal.clone(), self.google_signal.clone());
        Some(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed; the push worker polls meanwhile");
                        } else {
                            while let Ok(note) = listener.recv().await {
                                if note.payload() == Outbox::Google.payload() {
                                    google.notify_one();
                                } else {
                                    signal.notify_one();
                                }
                            }
                            tracing::warn!("the outbox listener lost its connection; reconnecting");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot connect the outbox listener; retrying"),
                }
                // Wake the workers once: changes made while we were away are found by their next claim.
                signal.notify_one();
                google.notify_one();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}
