//! The APNs channel: one push (`{}` on the pass type's topic) per device token waiting in `push_jobs`.

use std::sync::Arc;
use std::time::Duration;

use super::policy::Delays;
use super::{Attempt, Channel, ChannelSpec, RetryPolicy, Verdict};
use crate::push::apns::{ApnsClient, ApnsError, ApnsReply};
use crate::store::{Job, Outbox, PushEffect, RefusalChange, Settled, Store, StoreResult};

/// The service_state row recording that APNs refuses our credentials.
pub const APNS_FORBIDDEN: &str = "apns_forbidden";
/// Pushes per round (HTTP/2 multiplexes them over the pool's connections).
const ROUND: i64 = 1000;

pub struct ApnsChannel {
    apns: Arc<ApnsClient>,
    store: Store,
    spec: ChannelSpec,
}

impl ApnsChannel {
    /// `retry_base_ms` is the first retry's delay (`TESSERA_PUSH_RETRY_BASE_MS`).
    pub fn new(apns: Arc<ApnsClient>, store: Store, retry_base_ms: i64) -> ApnsChannel {
        let spec = ChannelSpec {
            name: crate::metrics::APNS,
            outbox: Outbox::Apns,
            forbidden_key: APNS_FORBIDDEN,
            // Twelve attempts, doubling to five minutes: about eighteen minutes of retries.
            policy: RetryPolicy {
                delays: Delays::Doubling { base_ms: retry_base_ms, cap_ms: 5 * 60 * 1000 },
                budget: Some(12),
                max_retry_after_ms: 60 * 60 * 1000,
                forbidden_probe_ms: 60_000,
            },
            forbidden_hint: "APNs refuses tessera's credentials: pushes are kept until the certificate or key is fixed; run `tessera doctor`",
            rejected_hint: "check TESSERA_APNS_URL and the pass type",
            keys_in_logs: false,
        };
        ApnsChannel { apns, store, spec }
    }
}

/// What an APNs answer (or a transport failure) means for the push.
pub fn classify(reply: Result<ApnsReply, ApnsError>) -> Attempt<PushEffect> {
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => {
            return Attempt {
                verdict: Verdict::Retry { after: None },
                status: None,
                reason: e.chain(),
                effect: PushEffect::None,
            };
        }
    };
    let reason = reply.reason.unwrap_or_default();
    let (verdict, effect) = match (reply.status, reason.as_str()) {
        (200, _) => (Verdict::Delivered, PushEffect::None),
        (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => {
            (Verdict::Gone("unregistered"), PushEffect::Unregister)
        }
        // The client forgets the token APNs called expired; the push goes again at once.
        (403, "ExpiredProviderToken") => (Verdict::Retry { after: Some(Duration::ZERO) }, PushEffect::None),
        (403, _) => (Verdict::Forbidden, PushEffect::None),
        (429 | 500..=599, _) => (Verdict::Retry { after: None }, PushEffect::None),
        _ => (Verdict::Rejected("failed"), PushEffect::None),
    };
    Attempt { verdict, status: Some(reply.status), reason, effect }
}

impl Channel for ApnsChannel {
    type Round = ();
    type Effect = PushEffect;

    fn spec(&self) -> &ChannelSpec {
        &self.spec
    }

    fn round_size(&self) -> i64 {
        ROUND
    }

    async fn prepare(&self, _jobs: &[Job]) -> StoreResult<()> {
        Ok(())
    }

    async fn send(&self, _round: &(), job: &Job) -> Attempt<PushEffect> {
        let mut attempt = classify(self.apns.push(&job.id).await);
        if job.attempts > 0 && attempt.verdict == (Verdict::Retry { after: Some(Duration::ZERO) }) {
            // A fresh token refused again (a clock off, say): back off like any other failure.
            attempt.verdict = Verdict::Retry { after: None };
        }
        attempt
    }

    async fn settle(&self, round: &[Settled<PushEffect>], refusal: &RefusalChange) -> StoreResult<()> {
        self.store.record_push_results(round, self.spec.forbidden_key, refusal).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, reason: &str) -> Result<ApnsReply, ApnsError> {
        Ok(ApnsReply { status, reason: (!reason.is_empty()).then(|| reason.to_string()) })
    }

    #[test]
    fn answers_map_to_verdicts() {
        assert_eq!(classify(reply(200, "")).verdict, Verdict::Delivered);
        for (status, reason) in [(410, "Unregistered"), (400, "BadDeviceToken"), (400, "DeviceTokenNotForTopic")] {
            let a = classify(reply(status, reason));
            assert_eq!(
                (a.verdict, a.effect),
                (Verdict::Gone("unregistered"), PushEffect::Unregister),
                "{status} {reason}"
            );
        }
        assert_eq!(classify(reply(400, "BadTopic")).verdict, Verdict::Rejected("failed"));
        assert_eq!(classify(reply(403, "BadCertificate")).verdict, Verdict::Forbidden);
        assert_eq!(
            classify(reply(403, "ExpiredProviderToken")).verdict,
            Verdict::Retry { after: Some(Duration::ZERO) }
        );
        for status in [429, 500, 503] {
            assert_eq!(classify(reply(status, "")).verdict, Verdict::Retry { after: None });
        }
        let a = classify(reply(403, "BadCertificate"));
        assert_eq!((a.status, a.reason.as_str()), (Some(403), "BadCertificate"));
    }
}
