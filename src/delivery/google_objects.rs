//! The Google objects channel: each member's loyalty object brought to the member's latest state (one
//! request per object however many changes queued up), oldest change first, under the deployment's
//! shared REST rate.

use std::collections::HashMap;
use std::sync::Arc;

use super::policy::Delays;
use super::{Attempt, Channel, ChannelSpec, RetryPolicy, Verdict};
use crate::google::client::Answer;
use crate::google::sync::{Current, Request, Update, decide};
use crate::google::wallet::{GoogleWallet, SyncError, describe};
use crate::model::{MemberRecord, ObjectState};
use crate::store::{Job, Outbox, RefusalChange, Settled, Store, StoreResult};

/// The service_state row recording that Google refuses the service account.
pub const GOOGLE_FORBIDDEN: &str = "google_forbidden";

pub struct GoogleObjectsChannel {
    wallet: Arc<GoogleWallet>,
    store: Store,
    spec: ChannelSpec,
}

/// A round's members by program and member id: each with what Google last accepted, and what to send.
pub struct Targets(HashMap<String, HashMap<String, (MemberRecord, ObjectState, Update)>>);

impl GoogleObjectsChannel {
    pub fn new(wallet: Arc<GoogleWallet>, store: Store) -> GoogleObjectsChannel {
        let spec = ChannelSpec {
            name: crate::metrics::GOOGLE_OBJECTS,
            outbox: Outbox::GoogleObjects,
            forbidden_key: GOOGLE_FORBIDDEN,
            // An update carries the whole state, so it is retried until Google takes it.
            policy: RetryPolicy {
                delays: Delays::Doubling { base_ms: 1000, cap_ms: 5 * 60 * 1000 },
                budget: None,
                max_retry_after_ms: 60 * 60 * 1000,
                forbidden_probe_ms: 60_000,
            },
            forbidden_hint: "Google refuses the service account: updates are kept until it may act for the issuer; run `tessera doctor`",
            rejected_hint: "check the google/ templates",
            keys_in_logs: true,
        };
        GoogleObjectsChannel { wallet, store, spec }
    }
}

/// What a failed update means for its job.
pub fn classify(error: &SyncError) -> Verdict {
    match error {
        SyncError::Template(_) => Verdict::Rejected("failed"),
        SyncError::Google(Answer::Forbidden(_)) => Verdict::Forbidden,
        SyncError::Google(Answer::Rejected(..)) => Verdict::Rejected("failed"),
        SyncError::Google(Answer::Busy(_, after)) => Verdict::Retry { after: *after },
        SyncError::Google(_) => Verdict::Retry { after: None },
    }
}

pub fn status_of(error: &SyncError) -> Option<u16> {
    match error {
        SyncError::Google(Answer::Forbidden(_)) => Some(403),
        SyncError::Google(Answer::Busy(status, _) | Answer::Rejected(status, _)) => Some(*status),
        SyncError::Google(Answer::NotFound) => Some(404),
        SyncError::Google(Answer::Conflict) => Some(409),
        _ => None,
    }
}

impl Channel for GoogleObjectsChannel {
    type Round = Targets;
    /// The state Google accepted, when it did.
    type Effect = Option<ObjectState>;

    fn spec(&self) -> &ChannelSpec {
        &self.spec
    }

    fn round_size(&self) -> i64 {
        self.wallet.batch()
    }

    /// Reads each member with its object's state, decides what to send, and waits for the round's share
    /// of the rate (the requests that decision needs; a 404 or 409 that needs another asks for its own).
    async fn prepare(&self, jobs: &[Job]) -> StoreResult<Targets> {
        let now = crate::time_fmt::now_unix();
        let mut targets: HashMap<String, HashMap<String, _>> = HashMap::new();
        let programs: std::collections::BTreeSet<&str> = jobs.iter().map(|j| j.scope.as_str()).collect();
        for program in programs {
            let ids: Vec<&str> = jobs.iter().filter(|j| j.scope == program).map(|j| j.id.as_str()).collect();
            for (member, state) in self.store.google_targets(program, &ids).await? {
                let current = Current { update_tag: member.update_tag, points: member.points, tier: &member.tier };
                let update = decide(current, &state, now);
                let by_member = targets.entry(member.program.clone()).or_default();
                by_member.insert(member.member_id.clone(), (member, state, update));
            }
        }
        let requests = targets.values().flat_map(|m| m.values()).filter(|(_, _, u)| u.send != Request::Nothing).count();
        self.wallet.rate.prefill(requests as i64).await?;
        Ok(Targets(targets))
    }

    async fn send(&self, round: &Targets, job: &Job) -> Attempt<Option<ObjectState>> {
        let Some((member, state, update)) = round.0.get(job.scope.as_str()).and_then(|m| m.get(job.id.as_str())) else {
            let reason = "the member is no longer in the database".to_string();
            return Attempt { verdict: Verdict::Gone("gone"), status: None, reason, effect: None };
        };
        match self.wallet.sync(member, state, update.clone()).await {
            Ok(accepted) => {
                Attempt { verdict: Verdict::Delivered, status: None, reason: String::new(), effect: Some(accepted) }
            }
            Err(error) => {
                let reason = match &error {
                    SyncError::Google(answer) => describe(answer),
                    SyncError::Template(e) => e.to_string(),
                };
                Attempt { verdict: classify(&error), status: status_of(&error), reason, effect: None }
            }
        }
    }

    async fn settle(&self, round: &[Settled<Option<ObjectState>>], refusal: &RefusalChange) -> StoreResult<()> {
        self.store.record_google_results(round, self.spec.forbidden_key, refusal).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn google_answers_map_to_verdicts() {
        let g = |answer| classify(&SyncError::Google(answer));
        assert_eq!(g(Answer::Forbidden("no".into())), Verdict::Forbidden);
        assert_eq!(g(Answer::Rejected(400, "bad field".into())), Verdict::Rejected("failed"));
        let after = Some(Duration::from_secs(9));
        assert_eq!(g(Answer::Busy(429, after)), Verdict::Retry { after });
        assert_eq!(g(Answer::Busy(503, None)), Verdict::Retry { after: None });
        assert_eq!(g(Answer::Unreachable("timeout".into())), Verdict::Retry { after: None });
        assert_eq!(g(Answer::Conflict), Verdict::Retry { after: None });
    }
}
