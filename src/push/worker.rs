//! The push worker: claims due outbox jobs, sends them concurrently through APNs, and settles the results
//! in one transaction per batch. Runs in the `serve` process beside the HTTP server.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::apns::{ApnsClient, ApnsError, ApnsReply};
use crate::metrics::Metrics;
use crate::store::{PushJob, PushOutcome, PushResult, Store, StoreResult};
use crate::time_fmt::now_unix_ms;

/// The service_state key recording that APNs refuses our credentials.
pub const APNS_FORBIDDEN: &str = "apns_forbidden";

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs claimed per round (each round's pushes go out concurrently).
    pub batch: i64,
    /// First retry delay; doubles per attempt (with ±20 % jitter), capped at `retry_cap_ms`.
    pub retry_base_ms: i64,
    pub retry_cap_ms: i64,
    /// A claimed job is someone's for this long; a crashed worker's jobs come back after it.
    pub lease_ms: i64,
    /// While APNs refuses our credentials (403), one probe per this many milliseconds.
    pub forbidden_probe_ms: i64,
    /// Idle, the worker looks for due jobs at least this often (it is also woken by new work).
    pub idle_poll_ms: i64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch: 1000,
            retry_base_ms: 1000,
            retry_cap_ms: 5 * 60 * 1000,
            lease_ms: 15_000,
            forbidden_probe_ms: 60_000,
            idle_poll_ms: 1_000,
        }
    }
}

#[derive(Clone)]
pub struct PushWorker {
    store: Store,
    apns: Arc<ApnsClient>,
    metrics: Arc<Metrics>,
    settings: WorkerSettings,
}

/// A fraction in [0.8, 1.2) from OpenSSL's generator.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = openssl::rand::rand_bytes(&mut b);
    0.8 + 0.4 * (u16::from_le_bytes(b) as f64 / 65536.0)
}

impl PushWorker {
    pub fn new(store: Store, apns: Arc<ApnsClient>, metrics: Arc<Metrics>, settings: WorkerSettings) -> Self {
        PushWorker { store, apns, metrics, settings }
    }

    fn retry_at(&self, attempts: i64, now: i64) -> i64 {
        let delay = (self.settings.retry_base_ms as f64 * 2f64.powi(attempts.min(30) as i32))
            .min(self.settings.retry_cap_ms as f64);
        now + (delay * jitter()) as i64
    }

    /// Maps an APNs answer (or a transport failure) to what happens to the job.
    pub fn classify(&self, job: &PushJob, reply: Result<ApnsReply, ApnsError>, now: i64) -> PushOutcome {
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                return PushOutcome::Retry {
                    status: None,
                    reason: e.chain(),
                    retry_at: self.retry_at(job.attempts, now),
                };
            }
        };
        let reason = reply.reason.clone().unwrap_or_default();
        match (reply.status, reason.as_str()) {
            (200, _) => PushOutcome::Delivered,
            (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => {
                PushOutcome::Unregistered { status: reply.status, reason }
            }
            (403, "ExpiredProviderToken") => {
                self.apns.renew_token();
                PushOutcome::Retry { status: Some(403), reason, retry_at: now }
            }
            (403, _) => PushOutcome::Forbidden { reason, retry_at: now + self.settings.forbidden_probe_ms },
            (429 | 500..=599, _) => {
                PushOutcome::Retry { status: Some(reply.status), reason, retry_at: self.retry_at(job.attempts, now) }
            }
            (status, _) => PushOutcome::Failed { status, reason },
        }
    }

    /// Claims the next round: up to `batch` due jobs, or one while APNs refuses our credentials (a probe).
    async fn claim(&self) -> StoreResult<Vec<PushJob>> {
        let forbidden = self.metrics.apns_forbidden.load(Ordering::Relaxed) == 1;
        let limit = if forbidden { 1 } else { self.settings.batch };
        self.store.claim_push_jobs(limit, self.settings.lease_ms).await
    }

    /// Pushes a round concurrently (HTTP/2 multiplexes them) and classifies every answer.
    async fn send_round(&self, jobs: Vec<PushJob>) -> Vec<PushResult> {
        let mut sends = JoinSet::new();
        let count = jobs.len();
        for job in jobs {
            let apns = self.apns.clone();
            sends.spawn(async move {
                let reply = apns.push(&job.push_token).await;
                (job, reply)
            });
        }
        let mut results = Vec::with_capacity(count);
        while let Some(joined) = sends.join_next().await {
            let Ok((job, reply)) = joined else { continue };
            let now = now_unix_ms();
            let outcome = self.classify(&job, reply, now);
            self.observe(&job, &outcome, now);
            results.push(PushResult { job, outcome, at: now });
        }
        results
    }

    /// Records a round's results (and the 403 state) in the database.
    async fn settle(&self, results: &[PushResult]) -> StoreResult<()> {
        self.update_forbidden(results).await?;
        self.store.record_push_results(results).await
    }

    fn observe(&self, job: &PushJob, outcome: &PushOutcome, now: i64) {
        self.metrics.push(outcome.label());
        match outcome {
            PushOutcome::Delivered => {
                self.metrics.push_latency.observe((now - job.enqueued_at).max(0) as f64 / 1000.0);
                tracing::debug!(attempts = job.attempts + 1, "push delivered");
            }
            PushOutcome::Unregistered { status, reason } => {
                tracing::info!(status, reason = %reason, "APNs says the device token is gone; registration removed")
            }
            PushOutcome::Retry { status, reason, .. } => {
                tracing::warn!(status = ?status, reason = %reason, attempts = job.attempts + 1, "push failed; will retry")
            }
            PushOutcome::Failed { status, reason } => {
                tracing::error!(status, reason = %reason, "APNs refused the push; not retried (check TESSERA_APNS_URL and the pass type)")
            }
            PushOutcome::Forbidden { reason, .. } => tracing::error!(
                reason = %reason,
                "APNs refuses tessera's credentials (403): pushes are stopped and kept until the certificate or key is fixed; run `tessera doctor`"
            ),
        }
    }

    /// Records (and clears) "APNs refuses our credentials" in the database, so `doctor` and every
    /// instance see it.
    async fn update_forbidden(&self, results: &[PushResult]) -> StoreResult<()> {
        let refused = results.iter().find_map(|r| match &r.outcome {
            PushOutcome::Forbidden { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        let delivered = results.iter().any(|r| r.outcome == PushOutcome::Delivered);
        if let Some(reason) = refused {
            self.metrics.apns_forbidden.store(1, Ordering::Relaxed);
            let value = if reason.is_empty() { "403".to_string() } else { reason };
            self.store.set_service_state(APNS_FORBIDDEN, Some(&value)).await?;
        } else if delivered && self.metrics.apns_forbidden.swap(0, Ordering::Relaxed) == 1 {
            tracing::info!("APNs accepts tessera's credentials again; pushes resume");
            self.store.set_service_state(APNS_FORBIDDEN, None).await?;
        }
        Ok(())
    }

    /// Nothing due: count the outbox, prune old ledger ids now and then, and sleep until the next job
    /// falls due, a change arrives, shutdown, or a second passes (other instances' changes do not wake us).
    async fn idle(&self, last_prune: &mut std::time::Instant, shutdown: &mut watch::Receiver<bool>) {
        if let Ok(depth) = self.store.outbox_depth().await {
            self.metrics.outbox_depth.store(depth.max(0) as u64, Ordering::Relaxed);
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            *last_prune = std::time::Instant::now();
            match self.store.prune_ledger_events().await {
                Ok(n) if n > 0 => tracing::info!(events = n, "forgot ledger event ids older than 35 days"),
                Err(e) => tracing::warn!(error = %e, "pruning ledger event ids failed"),
                _ => {}
            }
        }
        let wait = match self.store.next_push_due().await {
            Ok(Some(due)) => (due - now_unix_ms()).clamp(0, self.settings.idle_poll_ms),
            _ => self.settings.idle_poll_ms,
        };
        tokio::select! {
            _ = self.store.outbox_changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Runs until `shutdown` turns true, then finishes the round in flight; jobs left are sent after the
    /// next start.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.store.is_sqlite() {
            // One instance per SQLite file: leases left by a previous process are void.
            if let Ok(n) = self.store.release_push_leases().await
                && n > 0
            {
                tracing::info!(jobs = n, "push jobs left by the previous run are due again");
            }
        }
        if let Ok(Some((reason, _))) = self.store.service_state(APNS_FORBIDDEN).await {
            tracing::error!(reason = %reason, "APNs refused tessera's credentials before this start; probing once before resuming");
            self.metrics.apns_forbidden.store(1, Ordering::Relaxed);
        }
        let mut last_prune = std::time::Instant::now() - Duration::from_secs(3600);
        let mut settling: Option<tokio::task::JoinHandle<()>> = None;
        let mut jobs: Vec<PushJob> = Vec::new();
        loop {
            if jobs.is_empty() {
                if *shutdown.borrow() {
                    break;
                }
                jobs = self.claim().await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "claiming push jobs failed; retrying shortly");
                    Vec::new()
                });
            }
            if jobs.is_empty() {
                // Settling the last round may have made jobs due (a change during a push): look again.
                if let Some(round) = settling.take() {
                    let _ = round.await;
                    continue;
                }
                self.idle(&mut last_prune, &mut shutdown).await;
                continue;
            }
            let results =
                self.send_round(std::mem::take(&mut jobs)).instrument(tracing::info_span!("push round")).await;
            // Claim the next round before settling this one, so the settling overlaps the next round's
            // pushes. This round's jobs stay leased until settled, so none is claimed twice.
            if !*shutdown.borrow() {
                jobs = self.claim().await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "claiming push jobs failed; retrying shortly");
                    Vec::new()
                });
            }
            if let Some(round) = settling.take() {
                let _ = round.await;
            }
            let worker = self.clone();
            settling = Some(tokio::spawn(async move {
                if let Err(e) = worker.settle(&results).await {
                    // The jobs stay leased and are pushed again when the lease ends: at least once.
                    tracing::error!(error = %e, "recording push results failed");
                }
            }));
        }
        if let Some(round) = settling.take() {
            let _ = round.await;
        }
        tracing::info!("push worker stopped");
    }
}
