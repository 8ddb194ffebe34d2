//! Pure decisions for a coupon's Google side: the OfferClass and OfferObject ids, the state an object
//! shows, and what a job sends (the object, the link from the member's loyalty object, the message that
//! tells the member) from what Google last accepted. No I/O.

use crate::model::CouponState;

/// Google allows three notifying messages or updates per object per 24 hours (shared with updates).
pub use super::sync::NOTIFICATIONS_PER_DAY;
/// A loyalty object links at most this many objects (`linkedObjectIds`).
pub const MAX_LINKED: usize = 50;

/// The offer's class: `<issuer>.<program>-offer-<offer id>`.
pub fn offer_class_id(issuer_id: &str, program: &str, offer_id: &str) -> String {
    format!("{issuer_id}.{program}-offer-{offer_id}")
}

/// A coupon's object: `<issuer>.<program>-<member id>-<offer id>`, with the slot appended for the
/// second and later coupons of one grant (`per_member` > 1), so every coupon has its own object.
pub fn offer_object_id(issuer_id: &str, program: &str, member_id: &str, offer_id: &str, slot: i64) -> String {
    match slot {
        ..=1 => format!("{issuer_id}.{program}-{member_id}-{offer_id}"),
        _ => format!("{issuer_id}.{program}-{member_id}-{offer_id}-{slot}"),
    }
}

/// The OfferObject state of a coupon in this state.
pub fn object_state(state: CouponState) -> &'static str {
    match state {
        CouponState::Active => "ACTIVE",
        CouponState::Redeemed => "COMPLETED",
        CouponState::Withdrawn => "INACTIVE",
        CouponState::Expired => "EXPIRED",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Shown on the card and notified on the phone.
    TextAndNotify,
    /// Shown on the card only (the object's notification budget is spent).
    Text,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::TextAndNotify => "TEXT_AND_NOTIFY",
            MessageType::Text => "TEXT",
        }
    }
}

/// What Google has of a coupon, and of its member's loyalty object.
#[derive(Debug, Clone, Copy)]
pub struct OfferSnapshot<'a> {
    /// The object's state now (`object_state` of the coupon's state at this moment).
    pub wanted: &'static str,
    /// The state Google last accepted ('' while the object is not inserted).
    pub accepted: &'a str,
    /// Whether the member's loyalty object is inserted (the member may carry it in Google Wallet).
    pub loyalty_inserted: bool,
    /// Whether the loyalty object already links this coupon's object.
    pub linked: bool,
    /// Objects the loyalty object links already.
    pub links_held: usize,
    /// Whether the coupon's message was posted on the loyalty object.
    pub messaged: bool,
    /// Notifications the loyalty object had in the last 24 hours.
    pub recent_notifications: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStep {
    Nothing,
    /// Insert the object (its class first, if this process has not upserted it).
    Insert,
    /// PATCH the object's state (and the rest of it, absolute values).
    Patch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferWork {
    pub object: ObjectStep,
    /// PATCH the loyalty object's `linkedObjectIds` to include this object.
    pub link: bool,
    /// Post the coupon's message on the loyalty object.
    pub message: Option<MessageType>,
}

impl OfferWork {
    pub const NOTHING: OfferWork = OfferWork { object: ObjectStep::Nothing, link: false, message: None };

    /// REST requests this work needs (a class upsert or a 404 asks for its own turn).
    pub fn requests(&self) -> usize {
        usize::from(self.object != ObjectStep::Nothing) + usize::from(self.link) + usize::from(self.message.is_some())
    }
}

/// What to send for a coupon. An object is inserted only for members whose loyalty object Google has,
/// and only while the coupon is active (a member without a Google card gets the object through the
/// coupon's own save link, which inserts it then); once inserted it follows every state change. A new
/// coupon is linked from the loyalty object and announced on it once, notifying while the object's
/// budget lasts.
pub fn decide_offer(s: &OfferSnapshot<'_>) -> OfferWork {
    let active = s.wanted == "ACTIVE";
    let object = match (s.accepted, s.loyalty_inserted && active) {
        ("", true) => ObjectStep::Insert,
        ("", false) => ObjectStep::Nothing,
        (accepted, _) if accepted != s.wanted => ObjectStep::Patch,
        _ => ObjectStep::Nothing,
    };
    let announce = s.loyalty_inserted && active;
    let link = announce && !s.linked && s.links_held < MAX_LINKED;
    let message = (announce && !s.messaged).then_some(if s.recent_notifications < NOTIFICATIONS_PER_DAY {
        MessageType::TextAndNotify
    } else {
        MessageType::Text
    });
    OfferWork { object, link, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> OfferSnapshot<'static> {
        OfferSnapshot {
            wanted: "ACTIVE",
            accepted: "",
            loyalty_inserted: true,
            linked: false,
            links_held: 0,
            messaged: false,
            recent_notifications: 0,
        }
    }

    #[test]
    fn a_new_coupon_of_a_google_member_is_inserted_linked_and_announced() {
        let work = decide_offer(&fresh());
        assert_eq!(
            work,
            OfferWork { object: ObjectStep::Insert, link: true, message: Some(MessageType::TextAndNotify) }
        );
        assert_eq!(work.requests(), 3);
        let done = OfferSnapshot { accepted: "ACTIVE", linked: true, messaged: true, ..fresh() };
        assert_eq!(decide_offer(&done), OfferWork::NOTHING);
    }

    #[test]
    fn the_message_stops_notifying_once_the_budget_is_spent() {
        let spent = OfferSnapshot { recent_notifications: 3, ..fresh() };
        assert_eq!(decide_offer(&spent).message, Some(MessageType::Text));
        let two = OfferSnapshot { recent_notifications: 2, ..fresh() };
        assert_eq!(decide_offer(&two).message, Some(MessageType::TextAndNotify));
    }

    #[test]
    fn members_without_a_google_card_get_nothing_until_their_link_inserts_it() {
        let none = OfferSnapshot { loyalty_inserted: false, ..fresh() };
        assert_eq!(decide_offer(&none), OfferWork::NOTHING);
        // Inserted through the coupon's own link, then redeemed: the state follows.
        let saved = OfferSnapshot { loyalty_inserted: false, accepted: "ACTIVE", wanted: "COMPLETED", ..fresh() };
        assert_eq!(decide_offer(&saved), OfferWork { object: ObjectStep::Patch, link: false, message: None });
    }

    #[test]
    fn a_coupon_that_ended_before_it_was_sent_is_not_inserted_and_never_announced() {
        for wanted in ["COMPLETED", "INACTIVE", "EXPIRED"] {
            assert_eq!(decide_offer(&OfferSnapshot { wanted, ..fresh() }), OfferWork::NOTHING, "{wanted}");
            let inserted = OfferSnapshot { wanted, accepted: "ACTIVE", ..fresh() };
            assert_eq!(decide_offer(&inserted), OfferWork { object: ObjectStep::Patch, link: false, message: None });
        }
    }

    #[test]
    fn a_full_loyalty_object_links_no_more() {
        let full = OfferSnapshot { links_held: MAX_LINKED, ..fresh() };
        assert!(!decide_offer(&full).link);
    }

    #[test]
    fn ids_follow_the_contract() {
        assert_eq!(offer_class_id("3388", "default", "bday"), "3388.default-offer-bday");
        assert_eq!(offer_object_id("3388", "default", "M-1", "bday", 1), "3388.default-M-1-bday");
        assert_eq!(offer_object_id("3388", "default", "M-1", "bday", 2), "3388.default-M-1-bday-2");
    }
}
