//! The Google worker: claims due object jobs (oldest change first), waits for their share of the
//! deployment's request rate, sends each member's latest state (one request per object however many
//! changes queued up) and settles the round in one transaction.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::google::wallet::{FORBIDDEN_PROBE_MS, GoogleWallet};
use crate::metrics::Metrics;
use crate::store::{GoogleJob, GoogleOutcome, GoogleResult, Store, StoreResult};

/// The service_state key recording that Google refuses the service account.
pub const GOOGLE_FORBIDDEN: &str = "google_forbidden";
/// Callback nonces are kept this long (Google's callbacks expire within minutes).
const NONCE_MEMORY_SECS: i64 = 7 * 86_400;

#[derive(Clone)]
pub struct GoogleWorker {
    store: Store,
    wallet: Arc<GoogleWallet>,
    metrics: Arc<Metrics>,
    lease_ms: i64,
    idle_poll_ms: i64,
}

impl GoogleWorker {
    pub fn new(
        store: Store,
        wallet: Arc<GoogleWallet>,
        metrics: Arc<Metrics>,
        lease_ms: i64,
        idle_poll_ms: i64,
    ) -> Self {
        GoogleWorker { store, wallet, metrics, lease_ms, idle_poll_ms }
    }

    /// Up to one second of the rate, or one job while Google refuses us (a probe).
    async fn claim(&self) -> StoreResult<Vec<GoogleJob>> {
        let limit = if self.wallet.forbidden() { 1 } else { self.wallet.batch() };
        self.store.claim_google_jobs(limit, self.lease_ms).await
    }

    /// Sends a round: reads the members' current state, waits for the rate, sends concurrently.
    async fn send_round(&self, jobs: Vec<GoogleJob>) -> StoreResult<Vec<GoogleResult>> {
        // By program (a deployment serves one, but the rows say which).
        let mut targets = std::collections::HashMap::new();
        let programs: std::collections::BTreeSet<&str> = jobs.iter().map(|j| j.program.as_str()).collect();
        for program in programs {
            let ids: Vec<&str> = jobs.iter().filter(|j| j.program == program).map(|j| j.member_id.as_str()).collect();
            for (member, state) in self.store.google_targets(program, &ids).await? {
                targets.insert((member.program.clone(), member.member_id.clone()), (member, state));
            }
        }
        if let Err(e) = self.wallet.take_rate(jobs.len() as i64, i64::MAX).await {
            tracing::warn!(error = %e, "reserving Google's request rate failed; the round goes out unthrottled");
        }
        let mut sends = JoinSet::new();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Some((member, state)) = targets.remove(&(job.program.clone(), job.member_id.clone())) else {
                results.push(GoogleResult { job, outcome: GoogleOutcome::Gone });
                continue;
            };
            let wallet = self.wallet.clone();
            sends.spawn(async move {
                let outcome = wallet.sync(&member, &state, job.attempts).await;
                GoogleResult { job, outcome }
            });
        }
        while let Some(joined) = sends.join_next().await {
            if let Ok(result) = joined {
                self.observe(&result);
                results.push(result);
            }
        }
        Ok(results)
    }

    fn observe(&self, result: &GoogleResult) {
        match &result.outcome {
            GoogleOutcome::Current(_) => tracing::debug!(member = %result.job.member_id, "Google object current"),
            GoogleOutcome::Retry { reason, .. } => {
                tracing::warn!(reason = %reason, attempts = result.job.attempts + 1, "Google object update failed; will retry")
            }
            GoogleOutcome::Failed { reason } => tracing::error!(
                reason = %reason,
                member = %result.job.member_id,
                "Google refused the object; not retried (check the google/ templates)"
            ),
            GoogleOutcome::Forbidden { reason, .. } => tracing::error!(
                reason = %reason,
                "Google refuses the service account (403): updates are stopped and kept until it may act for the issuer; run `tessera doctor`"
            ),
            GoogleOutcome::Gone => {}
        }
    }

    /// Records (and clears) "Google refuses the service account" where every instance and `doctor` see it.
    async fn update_forbidden(&self, results: &[GoogleResult]) -> StoreResult<()> {
        let refused = results.iter().find_map(|r| match &r.outcome {
            GoogleOutcome::Forbidden { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        let current = results.iter().any(|r| matches!(r.outcome, GoogleOutcome::Current(_)));
        if let Some(reason) = refused {
            self.metrics.google_forbidden.store(1, Ordering::Relaxed);
            self.store.set_service_state(GOOGLE_FORBIDDEN, Some(&reason)).await?;
        } else if current && self.metrics.google_forbidden.swap(0, Ordering::Relaxed) == 1 {
            tracing::info!("Google accepts the service account again; object updates resume");
            self.store.set_service_state(GOOGLE_FORBIDDEN, None).await?;
        }
        Ok(())
    }

    async fn idle(&self, last_prune: &mut std::time::Instant, shutdown: &mut watch::Receiver<bool>) {
        if let Ok(depth) = self.store.google_outbox_depth().await {
            self.metrics.google_outbox_depth.store(depth.max(0) as u64, Ordering::Relaxed);
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            *last_prune = std::time::Instant::now();
            if let Err(e) = self.store.prune_google_nonces(NONCE_MEMORY_SECS).await {
                tracing::warn!(error = %e, "pruning Google callback nonces failed");
            }
        }
        let poll = if self.wallet.forbidden() { FORBIDDEN_PROBE_MS } else { self.idle_poll_ms };
        let wait = match self.store.next_google_due().await {
            Ok(Some(due)) => (due - crate::time_fmt::now_unix_ms()).clamp(0, poll),
            _ => poll,
        };
        tokio::select! {
            _ = self.store.google_outbox_changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Runs until `shutdown` turns true, finishing the round in flight.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.store.is_sqlite()
            && let Ok(n) = self.store.release_google_leases().await
            && n > 0
        {
            tracing::info!(jobs = n, "Google object jobs left by the previous run are due again");
        }
        if let Ok(Some((reason, _))) = self.store.service_state(GOOGLE_FORBIDDEN).await {
            tracing::error!(reason = %reason, "Google refused the service account before this start; probing before resuming");
            self.metrics.google_forbidden.store(1, Ordering::Relaxed);
        }
        let mut last_prune = std::time::Instant::now() - Duration::from_secs(3600);
        while !*shutdown.borrow() {
            let jobs = self.claim().await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "claiming Google object jobs failed; retrying shortly");
                Vec::new()
            });
            if jobs.is_empty() {
                self.idle(&mut last_prune, &mut shutdown).await;
                continue;
            }
            let settled = async {
                let results = self.send_round(jobs).await?;
                self.update_forbidden(&results).await?;
                self.store.record_google_results(&results).await
            };
            if let Err(e) = settled.instrument(tracing::info_span!("google round")).await {
                // The jobs stay leased and are sent again when the lease ends: at least once.
                tracing::error!(error = %e, "a Google round failed to settle");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tracing::info!("Google worker stopped");
    }
}
