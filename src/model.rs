//! Plain data shared by the decisions (`plan`), the store and the handlers. No behaviour beyond naming
//! (and the parser `json_object!` generates for a ledger event).

use crate::domain::{Attributes, EventId, Locale, MemberId, MemberName, Points, Sequence, TierName, json_object};

/// A member joined with its Apple pass, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub program: String,
    pub member_id: String,
    pub public_id: String,
    pub name: Option<String>,
    pub tier: String,
    pub points: i64,
    pub locale: Option<String>,
    /// A JSON object, as text.
    pub attributes: String,
    pub retired: bool,
    pub ledger_sequence: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub serial_number: String,
    pub authentication_token: String,
    pub pass_type_id: String,
    pub team_id: String,
    pub voided: bool,
    pub update_tag: i64,
    /// Unix seconds; the pass's Last-Modified.
    pub modified_at: i64,
    /// The template of the latest offer granted to the member (its title is on the card's back).
    pub latest_offer: Option<String>,
}

/// What the admin API (or a ledger event) sets on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub name: Option<MemberName>,
    pub tier: TierName,
    pub points: Points,
    pub locale: Option<Locale>,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created,
    Updated,
    Unchanged,
}

json_object! {
    unknown_fields: ignored,
    /// One ledger event: the new balance and tier of a member, in the member's order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LedgerEvent {
        pub id: EventId,
        pub member_id: MemberId,
        pub sequence: Sequence,
        /// The new balance (absolute, never a delta).
        pub points: Points,
        pub tier: TierName,
        /// Optional; an unknown member without one shows its member ID.
        pub name: Option<MemberName>,
    }
}

/// What became of one ledger event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Applied,
    Duplicate,
    Stale,
    Retired,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Applied => "applied",
            EventStatus::Duplicate => "duplicate",
            EventStatus::Stale => "stale",
            EventStatus::Retired => "retired",
        }
    }
}

/// What tessera knows of a member's object (the `google_objects` row; all defaults when none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectState {
    pub inserted: bool,
    /// The pass update tag of the state Google last accepted (0: none).
    pub synced_tag: i64,
    pub synced_points: Option<i64>,
    pub synced_tier: Option<String>,
    /// Unix seconds of notifications asked for, newest last.
    pub notified_at: Vec<i64>,
    pub saved: bool,
}

/// A stored offer with its coupons counted by state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferRecord {
    pub program: String,
    pub offer_id: String,
    pub template: String,
    /// Unix seconds: coupons are redeemable in [valid_from, valid_until).
    pub valid_from: i64,
    pub valid_until: i64,
    pub per_member: i64,
    pub quota: Option<i64>,
    pub withdrawn_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub counts: CouponCounts,
}

/// An offer's coupons by state (an active coupon past the window counts as expired).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CouponCounts {
    pub granted: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub withdrawn: i64,
}

/// What a coupon is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponState {
    Active,
    Redeemed,
    Expired,
    Withdrawn,
}

impl CouponState {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponState::Active => "active",
            CouponState::Redeemed => "redeemed",
            CouponState::Expired => "expired",
            CouponState::Withdrawn => "withdrawn",
        }
    }

    /// The stored word; anything else reads as withdrawn (never redeemable).
    pub fn parse(word: &str) -> CouponState {
        match word {
            "active" => CouponState::Active,
            "redeemed" => CouponState::Redeemed,
            "expired" => CouponState::Expired,
            _ => CouponState::Withdrawn,
        }
    }

    /// The Apple coupon pass is voided once the coupon is used up or taken back.
    pub fn voids_pass(self) -> bool {
        matches!(self, CouponState::Redeemed | CouponState::Withdrawn)
    }
}

/// A stored coupon with what its pass shows of its offer and member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRecord {
    pub coupon_id: String,
    pub program: String,
    pub offer_id: String,
    pub member_id: String,
    pub code: String,
    /// As stored: an `Active` coupon past `valid_until` is expired (see `state_at`).
    pub stored_state: CouponState,
    pub granted_at: i64,
    pub redeemed_at: Option<i64>,
    pub redeemed_location: Option<String>,
    pub serial_number: String,
    pub authentication_token: String,
    pub pass_type_id: String,
    pub update_tag: i64,
    pub modified_at: i64,
    pub template: String,
    pub valid_from: i64,
    pub valid_until: i64,
    pub member_name: Option<String>,
    pub member_tier: String,
    pub member_locale: Option<String>,
}

impl CouponRecord {
    /// The coupon's state at `now`: an active coupon whose window closed is expired even before the
    /// sweep marks it.
    pub fn state_at(&self, now: i64) -> CouponState {
        match self.stored_state {
            CouponState::Active if now >= self.valid_until => CouponState::Expired,
            state => state,
        }
    }
}

/// A coupon with what Google has of it and of its member's loyalty object: what a Google offers job reads.
#[derive(Debug, Clone)]
pub struct OfferTarget {
    pub coupon: CouponRecord,
    /// 1..per_member: the coupon's place in its grant (part of its object id).
    pub slot: i64,
    /// The OfferObject state Google last accepted ('' while not inserted).
    pub accepted: String,
    /// Whether the loyalty object links this coupon's object.
    pub linked: bool,
    /// Whether the coupon's message was posted on the loyalty object.
    pub messaged: bool,
    /// The member's loyalty object as Google last accepted it.
    pub loyalty: ObjectState,
    /// (offer id, slot) of the member's coupons the loyalty object links already.
    pub member_links: Vec<(String, i64)>,
}

/// What a Google offers job got Google to accept (recorded even when a later request of it failed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferProgress {
    /// The object state Google accepted.
    pub accepted: Option<String>,
    pub linked: bool,
    /// The message type posted.
    pub message: Option<&'static str>,
    /// Unix seconds of a notification the loyalty object spent on it.
    pub notified_at: Option<i64>,
}
