//! What the worker role forgets on a schedule: ledger event ids past their memory, Google callback nonces
//! past Google's retry window, and scans older than `TESSERA_SCAN_RETENTION_DAYS`. Hourly, and once at
//! start; every instance may run it (the deletes are idempotent).

use std::time::Duration;

use tokio::sync::watch;

use crate::store::Store;

/// Callback nonces are kept this long (Google's callbacks expire within minutes).
const NONCE_MEMORY_SECS: i64 = 7 * 86_400;
const EVERY: Duration = Duration::from_secs(3600);
/// Scans deleted per statement, so no statement holds the writer long.
const SCANS_PER_STATEMENT: i64 = 10_000;

pub struct Housekeeping {
    pub store: Store,
    pub scan_retention_days: i64,
    /// Whether Google Wallet is configured (then there are nonces to forget).
    pub google: bool,
}

impl Housekeeping {
    /// One pass over everything there is to forget (stopping early at shutdown); a failure is logged and
    /// tried again next time.
    pub async fn once(&self, shutdown: &watch::Receiver<bool>) {
        match self.store.prune_ledger_events().await {
            Ok(n) if n > 0 => tracing::info!(events = n, "forgot ledger event ids older than 35 days"),
            Err(e) => tracing::warn!(error = %e, "pruning ledger event ids failed"),
            _ => {}
        }
        if self.google
            && let Err(e) = self.store.prune_google_nonces(NONCE_MEMORY_SECS).await
        {
            tracing::warn!(error = %e, "pruning Google callback nonces failed");
        }
        let before = crate::time_fmt::now_unix_ms() - self.scan_retention_days * 86_400_000;
        let mut deleted = 0;
        while !*shutdown.borrow() {
            match self.store.prune_scans(before, SCANS_PER_STATEMENT).await {
                Ok(n) => {
                    deleted += n;
                    if n < SCANS_PER_STATEMENT as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning scans failed");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(scans = deleted, days = self.scan_retention_days, "deleted scans past their retention");
        }
    }

    /// Marks the coupons of offers whose window closed as expired, within five seconds of each window's
    /// end, until `shutdown` turns true. No request is needed: Apple's passes follow their
    /// `expirationDate`, and the stored state and the counts follow this.
    pub async fn expire_offers(store: Store, mut shutdown: watch::Receiver<bool>) {
        loop {
            let now = crate::time_fmt::now_unix();
            match store.expire_offers(now).await {
                Ok(n) if n > 0 => tracing::info!(coupons = n, "coupons of ended offers marked expired"),
                Err(e) => tracing::warn!(error = %e, "marking expired coupons failed; retrying shortly"),
                _ => {}
            }
            // Until the next window closes, or five seconds (an offer made meanwhile, on any instance).
            let next = store.next_offer_expiry().await.ok().flatten().unwrap_or(now + 5);
            let wait = Duration::from_secs((next - now).clamp(1, 5) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Runs `once` now and then hourly until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.once(&shutdown).await;
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
