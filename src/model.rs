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
