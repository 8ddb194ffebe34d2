//! The delivery engine: drains each outbox to its destination through a channel.
//!
//! The engine (`engine`) owns what every destination shares: claiming due jobs under a lease, sending a
//! round concurrently, turning each answer's verdict into the job's fate under one retry policy
//! (`policy`), settling a round in one transaction while the next is sent, the forbidden mode (403: one
//! probe now and then, recorded where every instance and `doctor` see it), the metrics labelled by channel,
//! and the wake-ups (in process, and NOTIFY on PostgreSQL). A channel (`apns`, `google_objects`, `google_offers`) knows
//! only its destination: what a round needs read first, how to send one job and what the answer means,
//! and what settling records beside the job row.

pub mod apns;
pub mod engine;
pub mod google_objects;
pub mod google_offers;
pub mod policy;

use std::future::Future;
use std::time::Duration;

pub use engine::{Engine, EngineSettings};
pub use policy::RetryPolicy;

use crate::store::{Job, Outbox, RefusalChange, Settled, StoreResult};

/// What an answer (or its absence) means for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again later (429, 5xx, no answer); `after` is the destination's Retry-After, if it said one.
    Retry {
        after: Option<Duration>,
    },
    /// The recipient is gone (an unregistered device): the job goes. The word is the result's label.
    Gone(&'static str),
    /// Refused for good, our fault (a template, a topic): the job goes, loudly. The word is the label.
    Rejected(&'static str),
    /// Our credentials are refused (403): the channel pauses, probing, and the job waits.
    Forbidden,
}

/// One job's attempt, as the channel saw it.
#[derive(Debug, Clone)]
pub struct Attempt<E> {
    pub verdict: Verdict,
    /// The destination's status code, when it answered (`None` also when nothing had to be sent).
    pub status: Option<u16>,
    /// The destination's reason, or why there was no answer (empty when delivered).
    pub reason: String,
    /// What settling records beside the job row.
    pub effect: E,
}

/// What the engine needs to know of a channel, fixed when it is made.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// The `channel` label of the metrics, and the logs' word for it.
    pub name: &'static str,
    pub outbox: Outbox,
    /// The `service_state` row that records "the destination refuses our credentials".
    pub forbidden_key: &'static str,
    pub policy: RetryPolicy,
    /// Logged (at error) when the destination refuses our credentials.
    pub forbidden_hint: &'static str,
    /// Logged (at error) when a job is rejected for good.
    pub rejected_hint: &'static str,
    /// Whether a job's key may be logged (a member id may; a device's push token may not).
    pub keys_in_logs: bool,
}

/// A destination the engine delivers to. Adding one is a module implementing this, an outbox (a job table
/// keyed by two text columns, an `Outbox` variant naming it), and the store's settling of its effects.
pub trait Channel: Send + Sync + 'static {
    /// What a round's sends share, read once per round (the members' current state, say).
    type Round: Send + Sync + 'static;
    /// What settling records beside a job row (`Default`: nothing, as for an attempt never made).
    type Effect: Default + Send + Sync + 'static;

    fn spec(&self) -> &ChannelSpec;

    /// Jobs per round while the destination accepts us.
    fn round_size(&self) -> i64;

    /// Reads what the round needs, and waits for the round's share of a shared rate if there is one.
    fn prepare(&self, jobs: &[Job]) -> impl Future<Output = StoreResult<Self::Round>> + Send;

    /// Sends one job and says what the answer means.
    fn send(&self, round: &Self::Round, job: &Job) -> impl Future<Output = Attempt<Self::Effect>> + Send;

    /// Records a round's fate in one transaction: the job rows, the effects, and the change to the
    /// `forbidden_key` row.
    fn settle(
        &self,
        round: &[Settled<Self::Effect>],
        refusal: &RefusalChange,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}
