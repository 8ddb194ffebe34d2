//! The Google offers channel: each coupon's OfferObject brought to the coupon's state, linked from the
//! member's loyalty object and announced on it once (notifying while the object's budget allows), under
//! the deployment's shared REST rate. A job carries the coupon id; what it sends is decided from what
//! Google last accepted (`google::offers::decide_offer`), so a retry sends only the steps still missing.

use std::collections::HashMap;
use std::sync::Arc;

use super::google_objects::{classify, status_of};
use super::policy::Delays;
use super::{Attempt, Channel, ChannelSpec, RetryPolicy, Verdict};
use crate::google::offers::{OfferSnapshot, OfferWork, decide_offer, object_state};
use crate::google::wallet::{GoogleWallet, SyncError, describe};
use crate::model::{OfferProgress, OfferTarget};
use crate::store::{Job, Outbox, RefusalChange, Settled, Store, StoreResult};

/// The service_state row recording that Google refuses the service account's offer requests.
pub const GOOGLE_OFFERS_FORBIDDEN: &str = "google_offers_forbidden";
const DAY_SECS: i64 = 86_400;

pub struct GoogleOffersChannel {
    wallet: Arc<GoogleWallet>,
    store: Store,
    spec: ChannelSpec,
}

/// A round's coupons by id: each with what Google has, the state it should show, and what to send.
pub struct OfferRound {
    targets: HashMap<String, (OfferTarget, &'static str, OfferWork)>,
    now: i64,
}

impl GoogleOffersChannel {
    pub fn new(wallet: Arc<GoogleWallet>, store: Store) -> GoogleOffersChannel {
        let spec = ChannelSpec {
            name: crate::metrics::GOOGLE_OFFERS,
            outbox: Outbox::GoogleOffers,
            forbidden_key: GOOGLE_OFFERS_FORBIDDEN,
            // Each attempt sends the coupon's whole state, so it is retried until Google takes it.
            policy: RetryPolicy {
                delays: Delays::Doubling { base_ms: 1000, cap_ms: 5 * 60 * 1000 },
                budget: None,
                max_retry_after_ms: 60 * 60 * 1000,
                forbidden_probe_ms: 60_000,
            },
            forbidden_hint: "Google refuses the service account: coupons wait until it may act for the issuer; run `tessera doctor`",
            rejected_hint: "check the offers/*/google/ templates",
            keys_in_logs: true,
        };
        GoogleOffersChannel { wallet, store, spec }
    }
}

/// What to send for a coupon at `now`.
pub fn plan(target: &OfferTarget, now: i64) -> (&'static str, OfferWork) {
    let wanted = object_state(target.coupon.state_at(now));
    let recent = target.loyalty.notified_at.iter().filter(|t| now - **t < DAY_SECS).count();
    let snapshot = OfferSnapshot {
        wanted,
        accepted: &target.accepted,
        loyalty_inserted: target.loyalty.inserted,
        linked: target.linked,
        links_held: target.member_links.len(),
        messaged: target.messaged,
        recent_notifications: recent,
    };
    (wanted, decide_offer(&snapshot))
}

impl Channel for GoogleOffersChannel {
    type Round = OfferRound;
    type Effect = OfferProgress;

    fn spec(&self) -> &ChannelSpec {
        &self.spec
    }

    fn round_size(&self) -> i64 {
        self.wallet.batch()
    }

    /// Reads the coupons with what Google has, plans each, and waits for the round's share of the rate.
    async fn prepare(&self, jobs: &[Job]) -> StoreResult<OfferRound> {
        let now = crate::time_fmt::now_unix();
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        let mut targets = HashMap::new();
        for target in self.store.offer_targets(&ids).await? {
            let (wanted, work) = plan(&target, now);
            targets.insert(target.coupon.coupon_id.clone(), (target, wanted, work));
        }
        let requests: usize = targets.values().map(|(_, _, work)| work.requests()).sum();
        self.wallet.rate.prefill(requests as i64).await?;
        Ok(OfferRound { targets, now })
    }

    async fn send(&self, round: &OfferRound, job: &Job) -> Attempt<OfferProgress> {
        let Some((target, wanted, work)) = round.targets.get(job.id.as_str()) else {
            let reason = "the coupon is no longer in the database".to_string();
            return Attempt { verdict: Verdict::Gone("gone"), status: None, reason, effect: OfferProgress::default() };
        };
        let (progress, result) = self.wallet.sync_offer(target, wanted, *work, round.now).await;
        match result {
            Ok(()) => Attempt { verdict: Verdict::Delivered, status: None, reason: String::new(), effect: progress },
            Err(error) => {
                let reason = match &error {
                    SyncError::Google(answer) => describe(answer),
                    SyncError::Template(e) => e.to_string(),
                };
                Attempt { verdict: classify(&error), status: status_of(&error), reason, effect: progress }
            }
        }
    }

    async fn settle(&self, round: &[Settled<OfferProgress>], refusal: &RefusalChange) -> StoreResult<()> {
        self.store.record_offer_results(round, self.spec.forbidden_key, refusal).await
    }
}
