//! The Google Wallet service of one deployment: renders the class and the members' objects, keeps the
//! class upserted, hands out save links (inserting the object first so the JWT carries only ids), and
//! sends one object update for the worker, all under the request rate shared by every instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use super::account::ServiceAccount;
use super::client::{Answer, Kind, WalletApi};
use super::pass;
use super::rate::SharedRate;
use super::sync::{ObjectState, Request, Update};
use crate::metrics::{ChannelMetrics, GOOGLE_OBJECTS, Metrics};
use crate::model::MemberRecord;
use crate::store::Store;
use crate::templates::google::{ClassContext, ObjectContext};
use crate::templates::{MemberFields, Program, TemplateError};

/// The link path inserts the object itself only if the shared rate lets it send within this long.
pub(super) const LINK_WAIT: Duration = Duration::from_secs(1);
pub(super) const LINK_DEADLINE: Duration = Duration::from_secs(3);
/// A failed class upsert is not tried again for this long (the round's other jobs fail with it).
const CLASS_RETRY: Duration = Duration::from_secs(5);

/// Why an object update did not reach Google.
#[derive(Debug)]
pub enum SyncError {
    /// Google's answer (or none) to the last request made.
    Google(Answer),
    /// The object could not be rendered from the templates.
    Template(TemplateError),
}

pub struct GoogleWallet {
    pub issuer_id: String,
    pub class_id: String,
    pub account: ServiceAccount,
    pub api: WalletApi,
    pub(super) program: Arc<Program>,
    pub(super) public_url: String,
    class: Value,
    /// Set once the class is upserted.
    class_ready: AtomicBool,
    /// Held while the class is upserted, so concurrent first callers share one upsert; holds the last
    /// failure for a few seconds, so the jobs of a round fail fast with it instead of each trying again.
    class_upsert: Mutex<Option<(Instant, Answer)>>,
    /// The deployment's REST rate; every request of `api` waits for its turn.
    pub rate: Arc<SharedRate>,
    pub(super) store: Store,
    metrics: Arc<Metrics>,
    /// The object channel's series: its forbidden state says whether Google refuses us.
    channel: Arc<ChannelMetrics>,
    /// Google's root keys for verifying callbacks.
    pub root_keys: super::roots::RootKeyCache,
    /// The offer classes this process upserted (ids).
    pub(super) offer_classes: std::sync::Mutex<std::collections::HashSet<String>>,
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
        let rate = Arc::new(SharedRate::new(store.clone(), rate));
        Ok(GoogleWallet {
            issuer_id: issuer_id.to_string(),
            class_id,
            api: WalletApi::new(api_url, account.clone(), rate.clone()),
            account,
            program,
            public_url: public_url.to_string(),
            class,
            class_ready: AtomicBool::new(false),
            class_upsert: Mutex::new(None),
            rate,
            store,
            channel: metrics.channel(GOOGLE_OBJECTS),
            metrics,
            root_keys: super::roots::RootKeyCache::new(root_keys),
            offer_classes: Default::default(),
        })
    }

    /// Objects per worker round: one second of the rate (at least 1, at most 200).
    pub fn batch(&self) -> i64 {
        self.rate.per_second().clamp(1, 200)
    }

    pub fn object_id(&self, member_id: &str) -> String {
        pass::object_id(&self.issuer_id, &self.program.name, member_id)
    }

    /// Whether Google refuses the service account (403) right now.
    pub fn forbidden(&self) -> bool {
        self.channel.is_forbidden()
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
                latest_offer: None,
            },
            tier_image_url: &image_url(&self.public_url, Some(&member.tier), "strip@3x.png"),
        })
    }

    /// Inserts the class, or patches it when it exists (so template changes reach it); once per process.
    /// Answers Google's refusal when it fails.
    pub async fn ensure_class(&self) -> Result<(), Answer> {
        if self.class_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut last_failure = self.class_upsert.lock().await;
        if self.class_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some((at, answer)) = last_failure.as_ref()
            && at.elapsed() < CLASS_RETRY
        {
            return Err(answer.clone());
        }
        let answer = match self.api.insert(Kind::Class, &self.class).await {
            Answer::Conflict => self.api.patch(Kind::Class, &self.class_id, &self.class).await,
            other => other,
        };
        self.count(&answer);
        match answer {
            Answer::Ok(_) => {
                self.class_ready.store(true, Ordering::Release);
                *last_failure = None;
                Ok(())
            }
            other => {
                *last_failure = Some((Instant::now(), other.clone()));
                Err(other)
            }
        }
    }

    pub(super) fn count(&self, answer: &Answer) {
        self.metrics.google_request(match answer {
            Answer::Ok(_) => "ok",
            Answer::NotFound => "not-found",
            Answer::Conflict => "conflict",
            Answer::Forbidden(_) => "forbidden",
            Answer::Busy(..) => "busy",
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
        Answer::Busy(status, _) => format!("{status} (busy; retrying)"),
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
        let class = (!self.class_ready.load(Ordering::Acquire)).then_some(&self.class);
        (pass::fat_link(&self.account, &self.public_url, &object, class, iat).ok().flatten(), state)
    }

    /// Inserts the member's object now, if Google is reachable and the shared rate allows it soon;
    /// answers the state recorded.
    async fn insert_now(&self, member: &MemberRecord, state: &ObjectState) -> Option<ObjectState> {
        if self.forbidden() || !self.rate.prefill_within(LINK_WAIT).await.ok()? {
            return None;
        }
        let new_state = self.send_insert(member, state, Vec::new()).await.ok()?;
        self.store.record_google_current(&member.program, &member.member_id, &new_state).await.ok()?;
        Some(new_state)
    }

    /// Sends `update` (decided by `sync::decide` from `state`) for `member`; answers the state Google
    /// then has.
    pub async fn sync(
        &self,
        member: &MemberRecord,
        state: &ObjectState,
        update: Update,
    ) -> Result<ObjectState, SyncError> {
        match update.send {
            Request::Nothing => Ok(state.clone()),
            Request::Insert => self.send_insert(member, state, update.notified_at).await,
            Request::Patch => {
                let mut body = self.object_json(member).map_err(SyncError::Template)?;
                if update.notify {
                    body["notifyPreference"] = Value::from("NOTIFY_ON_UPDATE");
                }
                let answer = self.api.patch(Kind::Object, &self.object_id(&member.member_id), &body).await;
                self.count(&answer);
                match answer {
                    Answer::Ok(_) => Ok(accepted(member, state, update.notified_at)),
                    // Google lost or never had it: insert.
                    Answer::NotFound => self.send_insert(member, state, update.notified_at).await,
                    other => Err(SyncError::Google(other)),
                }
            }
        }
    }

    async fn send_insert(
        &self,
        member: &MemberRecord,
        state: &ObjectState,
        notified_at: Vec<i64>,
    ) -> Result<ObjectState, SyncError> {
        self.ensure_class().await.map_err(SyncError::Google)?;
        let body = self.object_json(member).map_err(SyncError::Template)?;
        let mut answer = self.api.insert(Kind::Object, &body).await;
        self.count(&answer);
        if matches!(answer, Answer::Conflict) {
            // Saved from a link that carried the whole object: bring it up to date.
            answer = self.api.patch(Kind::Object, &self.object_id(&member.member_id), &body).await;
            self.count(&answer);
        }
        match answer {
            Answer::Ok(_) => Ok(accepted(member, state, notified_at)),
            other => Err(SyncError::Google(other)),
        }
    }
}

/// The object's state once Google accepted the member's current one.
fn accepted(member: &MemberRecord, state: &ObjectState, notified_at: Vec<i64>) -> ObjectState {
    ObjectState {
        inserted: true,
        synced_tag: member.update_tag,
        synced_points: Some(member.points),
        synced_tier: Some(member.tier.clone()),
        notified_at,
        saved: state.saved,
    }
}
