//! The Google Wallet service of one deployment: renders the class and the members' objects, keeps the
//! class upserted, hands out save links (inserting the object first so the JWT carries only ids), and
//! sends one object update for the worker, all under the request rate shared by every instance.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

use super::account::ServiceAccount;
use super::client::{Answer, Kind, WalletApi};
use super::pass;
use super::sync::{Current, ObjectState, Send, decide, retry_delay_ms};
use crate::metrics::Metrics;
use crate::model::MemberRecord;
use crate::store::{GoogleOutcome, Store};
use crate::templates::google::{ClassContext, ObjectContext};
use crate::templates::{MemberFields, Program, TemplateError};

/// The rate limit's name in the database.
const RATE: &str = "google_rest";
/// The link path inserts the object itself only if the shared rate lets it send within this long.
const LINK_WAIT_US: i64 = 1_000_000;
const LINK_DEADLINE: Duration = Duration::from_secs(3);
/// While Google refuses the service account (403), one probe this often.
pub const FORBIDDEN_PROBE_MS: i64 = 60_000;

pub struct GoogleWallet {
    pub issuer_id: String,
    pub class_id: String,
    pub account: ServiceAccount,
    pub api: WalletApi,
    program: Arc<Program>,
    public_url: String,
    class: Value,
    /// Set once the class is upserted; a lock so concurrent first callers share one upsert.
    class_ready: Mutex<bool>,
    /// µs of the shared rate one request costs, and the burst allowed (one second's worth).
    cost_us: i64,
    store: Store,
    metrics: Arc<Metrics>,
    /// Google's root keys for verifying callbacks.
    pub root_keys: super::roots::RootKeyCache,
}

/// The public URL of a template image served by tessera (`/google/images/...`).
pub fn image_url(public_url: &str, tier: Option<&str>, name: &str) -> String {
    match tier {
        Some(tier) => format!("{public_url}/google/images/{tier}/{name}"),
        None => format!("{public_url}/google/images/{name}"),
    }
}

impl GoogleWallet {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer_id: &str,
        account: ServiceAccount,
        api_url: &str,
        rate: f64,
        root_keys: &str,
        program: Arc<Program>,
        public_url: &str,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<GoogleWallet, TemplateError> {
        let class_id = pass::class_id(issuer_id, &program.name);
        let class = program.render_google_class(&ClassContext {
            class_id: &class_id,
            logo_url: &image_url(public_url, None, "logo@3x.png"),
            callback_url: &format!("{public_url}/google/callbacks"),
        })?;
        Ok(GoogleWallet {
            issuer_id: issuer_id.to_string(),
            class_id,
            api: WalletApi::new(api_url, account.clone()),
            account,
            program,
            public_url: public_url.to_string(),
            class,
            class_ready: Mutex::new(false),
            cost_us: (1_000_000.0 / rate).ceil().max(1.0) as i64,
            store,
            metrics,
            root_keys: super::roots::RootKeyCache::new(root_keys),
        })
    }

    /// Requests per worker round: one second of the rate (at least 1, at most 200).
    pub fn batch(&self) -> i64 {
        (1_000_000 / self.cost_us).clamp(1, 200)
    }

    pub fn object_id(&self, member_id: &str) -> String {
        pass::object_id(&self.issuer_id, &self.program.name, member_id)
    }

    pub fn forbidden(&self) -> bool {
        self.metrics.google_forbidden.load(Ordering::Relaxed) == 1
    }

    pub fn object_json(&self, member: &MemberRecord) -> Result<Value, TemplateError> {
        let attributes: Value = serde_json::from_str(&member.attributes).unwrap_or(Value::Null);
        let locale = self.program.resolve_locale(member.locale.as_deref());
        let object_id = self.object_id(&member.member_id);
        self.program.render_google_object(&ObjectContext {
            object_id: &object_id,
            class_id: &self.class_id,
            state: if member.retired { "EXPIRED" } else { "ACTIVE" },
            member: MemberFields {
                member_id: &member.member_id,
                display_name: member.name.as_deref().unwrap_or(&member.member_id),
                name: member.name.as_deref(),
                tier: &member.tier,
                points: member.points,
                locale,
                attributes: &attributes,
            },
            tier_image_url: &image_url(&self.public_url, Some(&member.tier), "strip@3x.png"),
        })
    }

    /// Reserves `n` requests' worth of the shared rate and waits for it; answers false without waiting
    /// when the turn is more than `max_wait_us` away (the reservation is spent either way).
    pub async fn take_rate(&self, n: i64, max_wait_us: i64) -> Result<bool, crate::store::StoreError> {
        let start = self.store.reserve_rate(RATE, n * self.cost_us, 1_000_000).await?;
        let wait = start - crate::time_fmt::now_unix_us();
        if wait > max_wait_us {
            return Ok(false);
        }
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait as u64)).await;
        }
        Ok(true)
    }

    /// Inserts the class, or patches it when it exists (so template changes reach it); once per process.
    /// Answers Google's refusal when it fails.
    pub async fn ensure_class(&self) -> Result<(), Answer> {
        let mut ready = self.class_ready.lock().await;
        if *ready {
            return Ok(());
        }
        let answer = match self.api.insert(Kind::Class, &self.class).await {
            Answer::Conflict => self.api.patch(Kind::Class, &self.class_id, &self.class).await,
            other => other,
        };
        self.count(&answer);
        match answer {
            Answer::Ok(_) => {
                *ready = true;
                Ok(())
            }
            other => Err(other),
        }
    }

    fn count(&self, answer: &Answer) {
        self.metrics.google_request(match answer {
            Answer::Ok(_) => "ok",
            Answer::NotFound => "not-found",
            Answer::Conflict => "conflict",
            Answer::Forbidden(_) => "forbidden",
            Answer::Busy(_) => "busy",
            Answer::Rejected(..) => "rejected",
            Answer::Unreachable(_) => "unreachable",
        });
    }
}

/// An answer in words for logs and the member JSON (never a token).
pub fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Ok(_) => "ok".into(),
        Answer::NotFound => "404 not found".into(),
        Answer::Conflict => "409 already exists".into(),
        Answer::Forbidden(m) => format!("403 {m}"),
        Answer::Busy(status) => format!("{status} (busy; retrying)"),
        Answer::Rejected(status, m) => format!("{status} {m}"),
        Answer::Unreachable(m) => m.clone(),
    }
}

impl GoogleWallet {
    /// `links.google` for a member whose object is in `state`: a skinny link once the object is inserted
    /// (inserting it now if the rate allows), else one carrying the whole object if that fits in a link,
    /// else none. Answers the object's state after it (inserted now, or as it was).
    pub async fn save_link(&self, member: &MemberRecord, state: &ObjectState) -> (Option<String>, ObjectState) {
        let iat = crate::time_fmt::now_unix();
        let object_id = self.object_id(&member.member_id);
        let inserted_now = match state.inserted {
            true => None,
            false => tokio::time::timeout(LINK_DEADLINE, self.insert_now(member, state)).await.ok().flatten(),
        };
        let state = inserted_now.unwrap_or_else(|| state.clone());
        if state.inserted {
            let link = pass::skinny_link(&self.account, &self.public_url, &object_id, &self.class_id, iat).ok();
            return (link, state);
        }
        let Ok(object) = self.object_json(member) else { return (None, state) };
        let class_ready = *self.class_ready.lock().await;
        let class = (!class_ready).then_some(&self.class);
        (pass::fat_link(&self.account, &self.public_url, &object, class, iat).ok().flatten(), state)
    }

    /// Inserts the member's object now, if Google is reachable and the shared rate allows it soon;
    /// answers the state recorded.
    async fn insert_now(&self, member: &MemberRecord, state: &ObjectState) -> Option<ObjectState> {
        if self.forbidden() || !self.take_rate(1, LINK_WAIT_US).await.ok()? {
            return None;
        }
        let outcome = self.send_insert(member, state, Vec::new(), 0, crate::time_fmt::now_unix_ms()).await;
        let GoogleOutcome::Current(new_state) = outcome else { return None };
        self.store.record_google_current(&member.program, &member.member_id, &new_state).await.ok()?;
        Some(new_state)
    }

    /// One update for the worker: what to send for `member` given what Google has, and what came of it.
    pub async fn sync(&self, member: &MemberRecord, state: &ObjectState, attempts: i64) -> GoogleOutcome {
        let now_ms = crate::time_fmt::now_unix_ms();
        let current = Current { update_tag: member.update_tag, points: member.points, tier: &member.tier };
        let update = decide(current, state, now_ms / 1000);
        match update.send {
            Send::Nothing => GoogleOutcome::Current(state.clone()),
            Send::Insert => self.send_insert(member, state, update.notified_at, attempts, now_ms).await,
            Send::Patch => {
                let mut body = match self.object_json(member) {
                    Ok(b) => b,
                    Err(e) => return GoogleOutcome::Failed { reason: e.to_string() },
                };
                if update.notify {
                    body["notifyPreference"] = Value::from("NOTIFY_ON_UPDATE");
                }
                let answer = self.api.patch(Kind::Object, &self.object_id(&member.member_id), &body).await;
                self.count(&answer);
                if matches!(answer, Answer::NotFound) {
                    // Google lost or never had it: insert, paying for the extra request.
                    let _ = self.take_rate(1, i64::MAX).await;
                    return self.send_insert(member, state, update.notified_at, attempts, now_ms).await;
                }
                self.outcome(answer, member, state, update.notified_at, attempts, now_ms)
            }
        }
    }

    async fn send_insert(
        &self,
        member: &MemberRecord,
        state: &ObjectState,
        notified_at: Vec<i64>,
        attempts: i64,
        now_ms: i64,
    ) -> GoogleOutcome {
        if let Err(refusal) = self.ensure_class().await {
            return self.outcome(refusal, member, state, notified_at, attempts, now_ms);
        }
        let body = match self.object_json(member) {
            Ok(b) => b,
            Err(e) => return GoogleOutcome::Failed { reason: e.to_string() },
        };
        let mut answer = self.api.insert(Kind::Object, &body).await;
        self.count(&answer);
        if matches!(answer, Answer::Conflict) {
            // Saved from a link that carried the whole object: bring it up to date.
            answer = self.api.patch(Kind::Object, &self.object_id(&member.member_id), &body).await;
            self.count(&answer);
        }
        self.outcome(answer, member, state, notified_at, attempts, now_ms)
    }

    /// What a request's answer means for the job: current, forbidden, failed for good, or a retry.
    fn outcome(
        &self,
        answer: Answer,
        member: &MemberRecord,
        state: &ObjectState,
        notified_at: Vec<i64>,
        attempts: i64,
        now_ms: i64,
    ) -> GoogleOutcome {
        match answer {
            Answer::Ok(_) => GoogleOutcome::Current(ObjectState {
                inserted: true,
                synced_tag: member.update_tag,
                synced_points: Some(member.points),
                synced_tier: Some(member.tier.clone()),
                notified_at,
                saved: state.saved,
            }),
            Answer::Forbidden(m) => {
                GoogleOutcome::Forbidden { reason: format!("403 {m}"), retry_at: now_ms + FORBIDDEN_PROBE_MS }
            }
            Answer::Rejected(status, m) => GoogleOutcome::Failed { reason: format!("{status} {m}") },
            other => GoogleOutcome::Retry {
                reason: describe(&other),
                retry_at: now_ms + retry_delay_ms(attempts, 1000, random_fraction()),
            },
        }
    }
}

/// A fraction in [0, 1) from OpenSSL's generator, for jitter.
fn random_fraction() -> f64 {
    let mut b = [0u8; 2];
    let _ = openssl::rand::rand_bytes(&mut b);
    u16::from_le_bytes(b) as f64 / 65536.0
}
