//! A coupon's Google side, on the deployment's Google Wallet service: the offer's class (upserted once
//! per process), the coupon's OfferObject, the link from the member's loyalty object, the message that
//! announces it, and the coupon's own save link. All under the shared request rate.

use serde_json::{Value, json};

use super::client::{Answer, Kind};
use super::offers::{MessageType, ObjectStep, OfferWork, offer_class_id, offer_object_id};
use super::pass::{self, MAX_JWT_CHARS, SAVE_URL_PREFIX};
use super::wallet::{GoogleWallet, LINK_DEADLINE, LINK_WAIT, SyncError, image_url};
use crate::model::{OfferProgress, OfferTarget};
use crate::templates::offers::{CouponFields, OfferClassContext, OfferObjectContext};
use crate::templates::{MemberFields, TemplateError};
use crate::time_fmt::rfc3339;

impl GoogleWallet {
    pub fn offer_class_id(&self, offer_id: &str) -> String {
        offer_class_id(&self.issuer_id, &self.program.name, offer_id)
    }

    pub fn offer_object_id(&self, target: &OfferTarget) -> String {
        let c = &target.coupon;
        offer_object_id(&self.issuer_id, &self.program.name, &c.member_id, &c.offer_id, target.slot)
    }

    /// The public URL of an offer template's image (`/google/images/offers/<template>/<name>`).
    pub fn offer_image_url(&self, template: &str, name: &str) -> String {
        format!("{}/google/images/offers/{template}/{name}", self.public_url)
    }

    fn unknown_offer(&self, template: &str) -> TemplateError {
        TemplateError {
            file: self.program.dir.join("offers").join(template),
            line: None,
            message: "is not an offer template of this program (removed since the offer was made?)".into(),
        }
    }

    pub fn offer_class_json(&self, offer_id: &str, template: &str) -> Result<Value, TemplateError> {
        let offer = self.program.offer(template).ok_or_else(|| self.unknown_offer(template))?;
        let hero = match offer.images.contains_key("strip@3x.png") {
            true => self.offer_image_url(template, "strip@3x.png"),
            false => image_url(&self.public_url, None, "logo@3x.png"),
        };
        self.program.render_offer_class(&OfferClassContext {
            class_id: &self.offer_class_id(offer_id),
            offer: offer.fields(offer_id),
            logo_url: &image_url(&self.public_url, None, "logo@3x.png"),
            image_url: &hero,
        })
    }

    /// The coupon's OfferObject in `state`, in the member's language.
    pub fn offer_object_json(&self, target: &OfferTarget, state: &str) -> Result<Value, TemplateError> {
        let c = &target.coupon;
        let offer = self.program.offer(&c.template).ok_or_else(|| self.unknown_offer(&c.template))?;
        let (valid_from, valid_until) = (rfc3339(c.valid_from), rfc3339(c.valid_until));
        let attributes = json!({});
        self.program.render_offer_object(&OfferObjectContext {
            object_id: &self.offer_object_id(target),
            class_id: &self.offer_class_id(&c.offer_id),
            state,
            coupon: CouponFields {
                coupon_id: &c.coupon_id,
                code: &c.code,
                state: c.stored_state.as_str(),
                valid_from: &valid_from,
                valid_until: &valid_until,
            },
            offer: offer.fields(&c.offer_id),
            member: MemberFields {
                member_id: &c.member_id,
                display_name: c.member_name.as_deref().unwrap_or(&c.member_id),
                name: c.member_name.as_deref(),
                tier: &c.member_tier,
                points: 0,
                locale: self.program.resolve_locale(c.member_locale.as_deref()),
                attributes: &attributes,
                latest_offer: None,
            },
        })
    }

    /// The message announcing the coupon on the member's loyalty object, in the member's language.
    pub fn offer_message(&self, target: &OfferTarget, kind: MessageType, now: i64) -> Value {
        let c = &target.coupon;
        let locale = self.program.resolve_locale(c.member_locale.as_deref());
        let (title, details) = match self.program.offer(&c.template) {
            Some(o) => (self.program.text(&o.design.title, locale), self.program.text(&o.design.details, locale)),
            None => (c.offer_id.clone(), String::new()),
        };
        let header = self.program.text("offer.latest.change", locale).replace("%@", &title);
        json!({
            "id": format!("coupon-{}", c.coupon_id),
            "header": header,
            "body": details,
            "messageType": kind.as_str(),
            "displayInterval": {"start": {"date": rfc3339(now)}, "end": {"date": rfc3339(c.valid_until)}},
        })
    }

    /// Inserts the offer's class, or patches it when it exists; once per offer per process.
    pub async fn ensure_offer_class(&self, offer_id: &str, template: &str) -> Result<(), SyncError> {
        let id = self.offer_class_id(offer_id);
        if self.offer_classes.lock().unwrap_or_else(|e| e.into_inner()).contains(&id) {
            return Ok(());
        }
        let class = self.offer_class_json(offer_id, template).map_err(SyncError::Template)?;
        let mut answer = self.api.insert(Kind::OfferClass, &class).await;
        self.count(&answer);
        if matches!(answer, Answer::Conflict) {
            answer = self.api.patch(Kind::OfferClass, &id, &class).await;
            self.count(&answer);
        }
        match answer {
            Answer::Ok(_) => {
                self.offer_classes.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
                Ok(())
            }
            other => Err(SyncError::Google(other)),
        }
    }

    /// Does `work` for the coupon, step by step: answers what Google accepted, and the error that
    /// stopped it (the steps after it wait for the retry).
    pub async fn sync_offer(
        &self,
        target: &OfferTarget,
        wanted: &str,
        work: OfferWork,
        now: i64,
    ) -> (OfferProgress, Result<(), SyncError>) {
        let mut progress = OfferProgress::default();
        let object = match work.object {
            ObjectStep::Nothing => Ok(()),
            ObjectStep::Insert => self.insert_offer_object(target, wanted).await,
            ObjectStep::Patch => self.patch_offer_object(target, wanted).await,
        };
        if let Err(e) = object {
            return (progress, Err(e));
        }
        if work.object != ObjectStep::Nothing {
            progress.accepted = Some(wanted.to_string());
        }
        let loyalty_id = self.object_id(&target.coupon.member_id);
        if work.link {
            let mut ids: Vec<String> = target
                .member_links
                .iter()
                .map(|(offer_id, slot)| {
                    offer_object_id(&self.issuer_id, &self.program.name, &target.coupon.member_id, offer_id, *slot)
                })
                .collect();
            ids.push(self.offer_object_id(target));
            let answer = self.api.patch(Kind::Object, &loyalty_id, &json!({ "linkedObjectIds": ids })).await;
            self.count(&answer);
            if !matches!(answer, Answer::Ok(_)) {
                return (progress, Err(SyncError::Google(answer)));
            }
            progress.linked = true;
        }
        if let Some(kind) = work.message {
            match self.post_message(target, &loyalty_id, kind, now).await {
                Ok(sent) => {
                    progress.message = Some(sent.as_str());
                    progress.notified_at = (sent == MessageType::TextAndNotify).then_some(now);
                }
                Err(e) => return (progress, Err(e)),
            }
        }
        (progress, Ok(()))
    }

    /// Posts the coupon's message; a notifying one Google refuses for its quota goes again as TEXT.
    async fn post_message(
        &self,
        target: &OfferTarget,
        loyalty_id: &str,
        kind: MessageType,
        now: i64,
    ) -> Result<MessageType, SyncError> {
        let answer = self.api.add_message(Kind::Object, loyalty_id, &self.offer_message(target, kind, now)).await;
        self.count(&answer);
        match answer {
            Answer::Ok(_) => Ok(kind),
            Answer::Forbidden(reason) if kind == MessageType::TextAndNotify && is_quota(&reason) => {
                let text = MessageType::Text;
                let answer =
                    self.api.add_message(Kind::Object, loyalty_id, &self.offer_message(target, text, now)).await;
                self.count(&answer);
                match answer {
                    Answer::Ok(_) => Ok(text),
                    other => Err(SyncError::Google(other)),
                }
            }
            other => Err(SyncError::Google(other)),
        }
    }

    async fn insert_offer_object(&self, target: &OfferTarget, state: &str) -> Result<(), SyncError> {
        self.ensure_offer_class(&target.coupon.offer_id, &target.coupon.template).await?;
        let body = self.offer_object_json(target, state).map_err(SyncError::Template)?;
        let mut answer = self.api.insert(Kind::OfferObject, &body).await;
        self.count(&answer);
        if matches!(answer, Answer::Conflict) {
            // Saved from a link that carried the whole object: bring it up to date.
            answer = self.api.patch(Kind::OfferObject, &self.offer_object_id(target), &body).await;
            self.count(&answer);
        }
        match answer {
            Answer::Ok(_) => Ok(()),
            other => Err(SyncError::Google(other)),
        }
    }

    async fn patch_offer_object(&self, target: &OfferTarget, state: &str) -> Result<(), SyncError> {
        let body = self.offer_object_json(target, state).map_err(SyncError::Template)?;
        let answer = self.api.patch(Kind::OfferObject, &self.offer_object_id(target), &body).await;
        self.count(&answer);
        match answer {
            Answer::Ok(_) => Ok(()),
            // Google lost or never had it: insert.
            Answer::NotFound => self.insert_offer_object(target, state).await,
            other => Err(SyncError::Google(other)),
        }
    }

    /// The coupon's own save link: a skinny link once its object is inserted (inserting it now when the
    /// rate allows), else one carrying the object (and the class) when that fits; None otherwise.
    pub async fn coupon_save_link(&self, target: &OfferTarget, wanted: &str) -> Option<String> {
        let iat = crate::time_fmt::now_unix();
        let object_id = self.offer_object_id(target);
        let class_id = self.offer_class_id(&target.coupon.offer_id);
        let mut inserted = !target.accepted.is_empty();
        if !inserted {
            inserted =
                tokio::time::timeout(LINK_DEADLINE, self.insert_offer_now(target, wanted)).await.unwrap_or(false);
        }
        if inserted {
            let payload = json!({"offerObjects": [{"id": object_id, "classId": class_id}]});
            return pass::link(&self.account, &self.public_url, payload, iat).ok();
        }
        let object = self.offer_object_json(target, wanted).ok()?;
        let mut payload = json!({"offerObjects": [object]});
        if let Ok(class) = self.offer_class_json(&target.coupon.offer_id, &target.coupon.template) {
            payload["offerClasses"] = json!([class]);
        }
        let url = pass::link(&self.account, &self.public_url, payload, iat).ok()?;
        (url.len() - SAVE_URL_PREFIX.len() <= MAX_JWT_CHARS).then_some(url)
    }

    async fn insert_offer_now(&self, target: &OfferTarget, wanted: &str) -> bool {
        if self.forbidden() || !self.rate.prefill_within(LINK_WAIT).await.unwrap_or(false) {
            return false;
        }
        if self.insert_offer_object(target, wanted).await.is_err() {
            return false;
        }
        self.store.record_coupon_object(&target.coupon.coupon_id, wanted).await.is_ok()
    }
}

/// Whether a 403's reason is Google's notification quota (not a refused service account).
fn is_quota(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("quota")
}
