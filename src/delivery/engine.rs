//! The engine's loop for one channel: claim due jobs under a lease, send them concurrently, decide each
//! job's fate, settle the round in one transaction while the next round is sent; idle until work is due
//! or announced. Runs in every instance of the `worker` role, beside the HTTP server or alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::policy::{RetryPolicy, random_fraction};
use super::{Attempt, Channel, Verdict};
use crate::metrics::{ChannelMetrics, Metrics};
use crate::store::{Job, JobAction, Outcome, RefusalChange, Settled, Store, StoreResult};
use crate::time_fmt::now_unix_ms;

/// The depth gauge is refreshed from the database at least this often while the engine is busy.
const DEPTH_REFRESH_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// A claimed job is this instance's for this long; a crashed instance's jobs come back after it.
    /// A send that takes longer than three quarters of it is given up as a retry, so a round settles
    /// while it still holds its jobs.
    pub lease_ms: i64,
    /// Idle, the engine looks for due jobs at least this often (it is also woken by new work).
    pub idle_poll_ms: i64,
}

pub struct Engine<C: Channel> {
    channel: Arc<C>,
    store: Store,
    metrics: Arc<ChannelMetrics>,
    settings: EngineSettings,
    /// When the depth gauge was last read from the database (unix ms).
    depth_read_at: Arc<AtomicI64>,
}

impl<C: Channel> Clone for Engine<C> {
    fn clone(&self) -> Self {
        Engine {
            channel: self.channel.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            settings: self.settings,
            depth_read_at: self.depth_read_at.clone(),
        }
    }
}

/// The fate of a job after an attempt, under the channel's policy: what happens to its row, and what came
/// of it. `jitter` is the caller's randomness (0.0..1.0).
pub fn fate<E>(policy: &RetryPolicy, job: Job, attempt: Attempt<E>, now: i64, jitter: f64) -> Settled<E> {
    let (action, outcome) = match attempt.verdict {
        Verdict::Delivered => (JobAction::Done, Outcome::Delivered),
        Verdict::Gone(word) => (JobAction::Done, Outcome::Gone(word)),
        Verdict::Rejected(word) => (JobAction::Done, Outcome::Rejected(word)),
        Verdict::Retry { .. } if policy.exhausted(job.attempts) => (JobAction::GiveUp, Outcome::GaveUp),
        Verdict::Retry { after } => {
            (JobAction::Retry { at: now + policy.delay_ms(job.attempts, after, jitter) }, Outcome::Retrying)
        }
        Verdict::Forbidden => (JobAction::Wait { until: now + policy.forbidden_probe_ms }, Outcome::Forbidden),
    };
    Settled { job, action, outcome, status: attempt.status, reason: attempt.reason, at: now, effect: attempt.effect }
}

/// The fate of a job whose round could not be prepared: tried again soon, no attempt counted.
pub fn not_sent<E: Default>(policy: &RetryPolicy, job: Job, now: i64, jitter: f64) -> Settled<E> {
    Settled {
        job,
        action: JobAction::Wait { until: now + policy.postpone_ms(jitter) },
        outcome: Outcome::NotSent,
        status: None,
        reason: "not sent: the database did not answer while the round was prepared; tried again shortly".into(),
        at: now,
        effect: E::default(),
    }
}

/// What a round changes in "the destination refuses our credentials": set by a 403, cleared by an
/// answer that reached the destination and was accepted, else kept.
pub fn refusal_change<E>(round: &[Settled<E>], forbidden_before: bool) -> RefusalChange {
    if let Some(refused) = round.iter().find(|s| s.outcome == Outcome::Forbidden) {
        let reason = if refused.reason.is_empty() { "403" } else { refused.reason.as_str() };
        return RefusalChange::Set(reason.to_string());
    }
    let accepted = round.iter().any(|s| s.outcome == Outcome::Delivered && s.status.is_some());
    if forbidden_before && accepted { RefusalChange::Clear } else { RefusalChange::Keep }
}

/// While the destination refuses us, when the next probe may go.
struct Probe {
    next_at: i64,
}

impl<C: Channel> Engine<C> {
    pub fn new(channel: Arc<C>, store: Store, metrics: &Metrics, settings: EngineSettings) -> Self {
        let metrics = metrics.channel(channel.spec().name);
        Engine { channel, store, metrics, settings, depth_read_at: Arc::new(AtomicI64::new(0)) }
    }

    /// Claims the next round: up to a round's worth of due jobs, or while the destination refuses us, one
    /// job (a probe) once the probe interval has passed.
    async fn claim(&self, probe: &mut Probe) -> Vec<Job> {
        let spec = self.channel.spec();
        let forbidden = self.metrics.is_forbidden();
        let now = now_unix_ms();
        if forbidden && now < probe.next_at {
            return Vec::new();
        }
        let limit = if forbidden { 1 } else { self.channel.round_size() };
        let jobs = self.store.claim_jobs(spec.outbox, limit, self.settings.lease_ms).await.unwrap_or_else(|e| {
            tracing::error!(channel = spec.name, error = %e, "claiming jobs failed; retrying shortly");
            Vec::new()
        });
        if forbidden && !jobs.is_empty() {
            probe.next_at = now + spec.policy.forbidden_probe_ms;
        }
        jobs
    }

    /// Sends a round concurrently and decides every job's fate. A round that cannot be prepared (its
    /// data cannot be read, its turn of a shared rate cannot be reserved) is not sent: each job is tried
    /// again shortly, no attempt counted.
    async fn send_round(&self, jobs: Vec<Job>) -> Vec<Settled<C::Effect>> {
        let spec = self.channel.spec();
        let round = match self.channel.prepare(&jobs).await {
            Ok(round) => Arc::new(round),
            Err(e) => {
                tracing::error!(channel = spec.name, jobs = jobs.len(), error = %format!("{:#}", anyhow::Error::new(e)), "preparing a round failed; its jobs are tried again shortly");
                let now = now_unix_ms();
                let unsent: Vec<_> =
                    jobs.into_iter().map(|job| not_sent(&spec.policy, job, now, random_fraction())).collect();
                unsent.iter().for_each(|s| self.metrics.count(s.outcome.label()));
                return unsent;
            }
        };
        let limit = Duration::from_millis((self.settings.lease_ms * 3 / 4) as u64);
        let mut sends = JoinSet::new();
        let count = jobs.len();
        for job in jobs {
            let (channel, round) = (self.channel.clone(), round.clone());
            sends.spawn(async move {
                let attempt = match tokio::time::timeout(limit, channel.send(&round, &job)).await {
                    Ok(attempt) => attempt,
                    Err(_) => Attempt {
                        verdict: Verdict::Retry { after: None },
                        status: None,
                        reason: format!("no answer within {} ms", limit.as_millis()),
                        effect: C::Effect::default(),
                    },
                };
                (job, attempt)
            });
        }
        let mut settled = Vec::with_capacity(count);
        while let Some(joined) = sends.join_next().await {
            let Ok((job, attempt)) = joined else { continue };
            let done = fate(&spec.policy, job, attempt, now_unix_ms(), random_fraction());
            self.observe(&done);
            settled.push(done);
        }
        settled
    }

    fn observe(&self, s: &Settled<C::Effect>) {
        let spec = self.channel.spec();
        self.metrics.count(s.outcome.label());
        let (channel, attempts, reason, status) = (spec.name, s.job.attempts + 1, s.reason.as_str(), s.status);
        let job = if spec.keys_in_logs { s.job.id.as_str() } else { "" };
        match s.outcome {
            Outcome::Delivered => {
                self.metrics.latency.observe((s.at - s.job.enqueued_at).max(0) as f64 / 1000.0);
                tracing::debug!(channel, job, attempts, "delivered");
            }
            Outcome::Gone(_) => {
                tracing::info!(channel, job, status, reason, "the recipient is gone; the job is dropped")
            }
            Outcome::Rejected(_) => {
                tracing::error!(
                    channel,
                    job,
                    status,
                    reason,
                    hint = spec.rejected_hint,
                    "refused for good; not retried"
                )
            }
            Outcome::Retrying => tracing::warn!(channel, job, status, reason, attempts, "delivery failed; will retry"),
            Outcome::GaveUp => {
                tracing::error!(channel, job, status, reason, attempts, "delivery failed too often; given up")
            }
            Outcome::Forbidden => {
                tracing::error!(
                    channel,
                    reason,
                    hint = spec.forbidden_hint,
                    "our credentials are refused (403); jobs wait"
                )
            }
            Outcome::NotSent => {}
        }
    }

    /// Records a round and what it changed in the forbidden state, in one transaction; refreshes the depth
    /// gauge when it is old.
    async fn settle(&self, round: &[Settled<C::Effect>], refusal: RefusalChange) -> StoreResult<()> {
        self.channel.settle(round, &refusal).await?;
        if refusal == RefusalChange::Clear {
            tracing::info!(channel = self.channel.spec().name, "our credentials are accepted again; deliveries resume");
        }
        if now_unix_ms() - self.depth_read_at.load(Ordering::Relaxed) > DEPTH_REFRESH_MS {
            self.refresh_depth().await;
        }
        Ok(())
    }

    async fn refresh_depth(&self) {
        if let Ok(depth) = self.store.outbox_depth(self.channel.spec().outbox).await {
            self.metrics.depth.store(depth.max(0) as u64, Ordering::Relaxed);
            self.depth_read_at.store(now_unix_ms(), Ordering::Relaxed);
        }
    }

    /// Takes what a round's answers say of the forbidden state at once (before the next claim), so a
    /// refusal stops the next full round and starts the probe interval. Answers the change to record.
    fn take_refusal(&self, round: &[Settled<C::Effect>], probe: &mut Probe) -> RefusalChange {
        let change = refusal_change(round, self.metrics.is_forbidden());
        match change {
            RefusalChange::Set(_) => {
                self.metrics.forbidden.store(1, Ordering::Relaxed);
                probe.next_at = now_unix_ms() + self.channel.spec().policy.forbidden_probe_ms;
            }
            RefusalChange::Clear => self.metrics.forbidden.store(0, Ordering::Relaxed),
            RefusalChange::Keep => {}
        }
        change
    }

    /// Nothing to send: refresh the depth gauge, then sleep until the next job falls due, work is
    /// announced, shutdown, or the idle poll passes. While the destination refuses us, announcements do
    /// not wake it: it sleeps until the next probe may go and a job is due for it.
    async fn idle(&self, probe: &Probe, shutdown: &mut watch::Receiver<bool>) {
        let outbox = self.channel.spec().outbox;
        self.refresh_depth().await;
        let now = now_unix_ms();
        let until_due = match self.store.next_job_due(outbox).await {
            Ok(Some(due)) => (due - now).clamp(0, self.settings.idle_poll_ms),
            _ => self.settings.idle_poll_ms,
        };
        if self.metrics.is_forbidden() {
            let wait = (probe.next_at - now).max(until_due).max(0);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                _ = shutdown.changed() => {}
            }
            return;
        }
        tokio::select! {
            _ = self.store.outbox_changed(outbox) => {}
            _ = tokio::time::sleep(Duration::from_millis(until_due as u64)) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Before the first round: leases of a dead process are void on SQLite (one process owns the file), and
    /// a refusal recorded earlier is probed once before deliveries resume.
    async fn start(&self, probe: &mut Probe) {
        let spec = self.channel.spec();
        if self.store.is_sqlite()
            && let Ok(n) = self.store.release_leases(spec.outbox).await
            && n > 0
        {
            tracing::info!(channel = spec.name, jobs = n, "jobs left by the previous run are due again");
        }
        if let Ok(Some((reason, _))) = self.store.service_state(spec.forbidden_key).await {
            tracing::error!(channel = spec.name, reason = %reason, "our credentials were refused before this start; probing before resuming");
            self.metrics.forbidden.store(1, Ordering::Relaxed);
            probe.next_at = now_unix_ms();
        }
    }

    /// Runs until `shutdown` turns true, then finishes the round in flight; jobs left are sent after the
    /// next start (or by another instance).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.channel.spec().name;
        let mut probe = Probe { next_at: 0 };
        self.start(&mut probe).await;
        let mut settling: Option<tokio::task::JoinHandle<()>> = None;
        let mut jobs: Vec<Job> = Vec::new();
        loop {
            if jobs.is_empty() {
                if *shutdown.borrow() {
                    break;
                }
                jobs = self.claim(&mut probe).await;
            }
            if jobs.is_empty() {
                // Settling the last round may have made jobs due (a change during a send): look again.
                if let Some(round) = settling.take() {
                    let _ = round.await;
                    continue;
                }
                self.idle(&probe, &mut shutdown).await;
                continue;
            }
            // Claimed jobs wait until settled: the gauge shows at least them.
            self.metrics.depth.fetch_max(jobs.len() as u64, Ordering::Relaxed);
            let span = tracing::info_span!("delivery round", channel = name, jobs = jobs.len());
            let round = self.send_round(std::mem::take(&mut jobs)).instrument(span).await;
            let refusal = self.take_refusal(&round, &mut probe);
            // Claim the next round before settling this one, so the settling overlaps the next round's
            // sends. This round's jobs stay leased until settled, so none is claimed twice.
            if !*shutdown.borrow() {
                jobs = self.claim(&mut probe).await;
            }
            if let Some(previous) = settling.take() {
                let _ = previous.await;
            }
            let engine = self.clone();
            settling = Some(tokio::spawn(async move {
                if let Err(e) = engine.settle(&round, refusal).await {
                    // The jobs stay leased and are sent again when the lease ends: at least once.
                    tracing::error!(channel = name, error = %e, "recording a round failed");
                }
            }));
        }
        if let Some(round) = settling.take() {
            let _ = round.await;
        }
        tracing::info!(channel = name, "delivery stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::Delays;
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        delays: Delays::Doubling { base_ms: 1000, cap_ms: 300_000 },
        budget: Some(3),
        max_retry_after_ms: 3_600_000,
        forbidden_probe_ms: 60_000,
    };

    fn job(attempts: i64) -> Job {
        Job { scope: "s".into(), id: "i".into(), attempts, enqueued_at: 0, lease: 1 }
    }

    fn attempt(verdict: Verdict, status: Option<u16>) -> Attempt<()> {
        Attempt { verdict, status, reason: String::new(), effect: () }
    }

    #[test]
    fn each_verdict_has_its_fate() {
        let now = 1_000_000;
        let f = |attempts, verdict| fate(&POLICY, job(attempts), attempt(verdict, None), now, 0.5);
        let delivered = f(0, Verdict::Delivered);
        assert_eq!((delivered.action, delivered.outcome), (JobAction::Done, Outcome::Delivered));
        assert_eq!(f(0, Verdict::Gone("unregistered")).outcome.label(), "unregistered");
        assert_eq!(f(0, Verdict::Rejected("failed")).action, JobAction::Done);
        assert_eq!(f(0, Verdict::Retry { after: None }).action, JobAction::Retry { at: now + 1000 });
        let told = Verdict::Retry { after: Some(Duration::from_secs(30)) };
        assert_eq!(f(1, told).action, JobAction::Retry { at: now + 30_000 });
        let last = f(2, Verdict::Retry { after: None });
        assert_eq!((last.action, last.outcome.label()), (JobAction::GiveUp, "gave-up"));
        let refused = f(5, Verdict::Forbidden);
        assert_eq!((refused.action, refused.outcome), (JobAction::Wait { until: now + 60_000 }, Outcome::Forbidden));
    }

    #[test]
    fn an_unprepared_round_is_postponed_without_spending_an_attempt() {
        let s: Settled<()> = not_sent(&POLICY, job(2), 1_000_000, 0.5);
        assert_eq!((s.action, s.outcome.label()), (JobAction::Wait { until: 1_001_000 }, "not-sent"));
        assert!(!s.reason.contains("error"), "plain words: {}", s.reason);
    }

    #[test]
    fn a_refusal_is_set_by_a_403_and_cleared_only_by_an_answer_that_was_accepted() {
        let round = |attempts: Vec<(Verdict, Option<u16>)>| -> Vec<Settled<()>> {
            attempts.into_iter().map(|(v, status)| fate(&POLICY, job(0), attempt(v, status), 0, 0.5)).collect()
        };
        let refused = round(vec![(Verdict::Delivered, Some(200)), (Verdict::Forbidden, Some(403))]);
        assert_eq!(refusal_change(&refused, false), RefusalChange::Set("403".into()));
        // Nothing had to be sent (Google already had it): that says nothing of our credentials.
        assert_eq!(refusal_change(&round(vec![(Verdict::Delivered, None)]), true), RefusalChange::Keep);
        assert_eq!(refusal_change(&round(vec![(Verdict::Delivered, Some(200))]), true), RefusalChange::Clear);
        assert_eq!(refusal_change(&round(vec![(Verdict::Delivered, Some(200))]), false), RefusalChange::Keep);
    }
}
