//! The decisions behind offers, as pure code: which members a grant gives coupons to (and what each card
//! shows after it), and why a coupon cannot be redeemed. No database or clock of its own.

use std::collections::{HashMap, HashSet};

use super::{PassChange, next_modified_at};
use crate::domain::MemberId;
use crate::ids::IdSource;
use crate::model::{CouponRecord, CouponState, MemberRecord, OfferRecord};

/// What the store read inside a grant's transaction.
pub struct GrantSnapshot<'a> {
    pub offer: &'a OfferRecord,
    /// The existing members the request names (locked on PostgreSQL).
    pub members: &'a HashMap<String, MemberRecord>,
    /// Members who already hold coupons of this offer.
    pub holders: &'a HashSet<String>,
    /// Coupons of this offer granted so far (for the quota).
    pub issued: i64,
    pub now: i64,
}

/// A coupon to create: its own code, Apple serial and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoupon {
    pub coupon_id: String,
    pub member_id: String,
    pub slot: i64,
    pub code: String,
    pub serial_number: String,
    pub authentication_token: String,
}

/// What a grant writes and answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantPlan {
    pub coupons: Vec<NewCoupon>,
    /// Members granted now (their cards show the offer and are pushed).
    pub granted: Vec<String>,
    pub already: Vec<String>,
    pub unknown: Vec<String>,
    pub retired: Vec<String>,
    /// The granted members' cards: the latest offer on the back, a new tag and a push.
    pub cards: Vec<PassChange>,
}

/// Why a grant is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRefusal {
    Withdrawn,
    /// The window has closed: a coupon would be born expired.
    Ended {
        valid_until: i64,
    },
    /// The quota leaves `left` coupons and the grant needs `needed`.
    Quota {
        left: i64,
        needed: i64,
    },
}

/// Decides a grant of `snapshot.offer` to `requested` (in request order, duplicates counted once):
/// unknown and retired members are listed, members holding the offer already are `already`, every other
/// member gets `per_member` coupons, within the quota or not at all.
pub fn decide_grant(
    snapshot: &GrantSnapshot<'_>,
    requested: &[MemberId],
    ids: &mut impl IdSource,
) -> Result<GrantPlan, GrantRefusal> {
    let offer = snapshot.offer;
    if offer.withdrawn_at.is_some() {
        return Err(GrantRefusal::Withdrawn);
    }
    if snapshot.now >= offer.valid_until {
        return Err(GrantRefusal::Ended { valid_until: offer.valid_until });
    }
    let mut plan = GrantPlan::default();
    let mut seen = HashSet::new();
    for id in requested {
        let id = id.as_str();
        if !seen.insert(id) {
            continue;
        }
        match snapshot.members.get(id) {
            None => plan.unknown.push(id.to_string()),
            Some(m) if m.retired => plan.retired.push(id.to_string()),
            Some(_) if snapshot.holders.contains(id) => plan.already.push(id.to_string()),
            Some(_) => plan.granted.push(id.to_string()),
        }
    }
    let needed = plan.granted.len() as i64 * offer.per_member;
    if let Some(quota) = offer.quota {
        let left = (quota - snapshot.issued).max(0);
        if needed > left {
            return Err(GrantRefusal::Quota { left, needed });
        }
    }
    for member_id in &plan.granted {
        let member = &snapshot.members[member_id];
        for slot in 1..=offer.per_member {
            plan.coupons.push(NewCoupon {
                coupon_id: ids.public_id(),
                member_id: member_id.clone(),
                slot,
                code: ids.coupon_code(),
                serial_number: format!("cp-{}", ids.serial()),
                authentication_token: ids.auth_token(),
            });
        }
        plan.cards.push(PassChange {
            serial_number: member.serial_number.clone(),
            voided: member.voided,
            modified_at: next_modified_at(member.modified_at, snapshot.now),
        });
    }
    Ok(plan)
}

/// Why a coupon cannot be redeemed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unredeemable {
    AlreadyRedeemed { at: i64, location: Option<String> },
    Expired { at: i64 },
    Withdrawn,
    NotYetValid { from: i64 },
}

/// Whether `coupon` can be redeemed at `now`, and if not, why (a scan says this without redeeming; a
/// redemption that lost the race is explained by it).
pub fn redeemable(coupon: &CouponRecord, now: i64) -> Result<(), Unredeemable> {
    match coupon.state_at(now) {
        CouponState::Redeemed => Err(Unredeemable::AlreadyRedeemed {
            at: coupon.redeemed_at.unwrap_or(coupon.modified_at),
            location: coupon.redeemed_location.clone(),
        }),
        CouponState::Expired => Err(Unredeemable::Expired { at: coupon.valid_until }),
        CouponState::Withdrawn => Err(Unredeemable::Withdrawn),
        CouponState::Active if now < coupon.valid_from => Err(Unredeemable::NotYetValid { from: coupon.valid_from }),
        CouponState::Active => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CouponCounts;

    const NOW: i64 = 2_000_000;

    struct Counting(u32);

    impl IdSource for Counting {
        fn public_id(&mut self) -> String {
            self.0 += 1;
            format!("c{}", self.0)
        }
        fn serial(&mut self) -> String {
            format!("s{}", self.0)
        }
        fn auth_token(&mut self) -> String {
            format!("t{}", self.0)
        }
        fn coupon_code(&mut self) -> String {
            format!("code{}", self.0)
        }
    }

    fn offer(per_member: i64, quota: Option<i64>) -> OfferRecord {
        OfferRecord {
            program: "p".into(),
            offer_id: "o".into(),
            template: "free-drink".into(),
            valid_from: NOW - 10,
            valid_until: NOW + 100,
            per_member,
            quota,
            withdrawn_at: None,
            created_at: NOW - 10,
            updated_at: NOW - 10,
            counts: CouponCounts::default(),
        }
    }

    fn member(id: &str, retired: bool) -> MemberRecord {
        MemberRecord {
            program: "p".into(),
            member_id: id.into(),
            public_id: format!("pub-{id}"),
            name: None,
            tier: "gold".into(),
            points: 0,
            locale: None,
            attributes: "{}".into(),
            retired,
            ledger_sequence: None,
            created_at: 0,
            updated_at: 0,
            serial_number: format!("S-{id}"),
            authentication_token: "t".into(),
            pass_type_id: "pass.x".into(),
            team_id: "T".into(),
            voided: retired,
            update_tag: 1,
            modified_at: NOW,
            latest_offer: None,
        }
    }

    fn grant(offer: &OfferRecord, issued: i64, holders: &[&str], ids: &[&str]) -> Result<GrantPlan, GrantRefusal> {
        let members: HashMap<String, MemberRecord> = [member("A", false), member("B", false), member("R", true)]
            .into_iter()
            .map(|m| (m.member_id.clone(), m))
            .collect();
        let holders: HashSet<String> = holders.iter().map(|h| h.to_string()).collect();
        let snapshot = GrantSnapshot { offer, members: &members, holders: &holders, issued, now: NOW };
        let requested: Vec<MemberId> = ids.iter().map(|i| i.parse().unwrap()).collect();
        decide_grant(&snapshot, &requested, &mut Counting(0))
    }

    #[test]
    fn a_grant_sorts_members_and_gives_each_its_coupons() {
        let plan = grant(&offer(2, None), 0, &["B"], &["A", "B", "R", "X", "A"]).unwrap();
        assert_eq!(plan.granted, ["A"]);
        assert_eq!(plan.already, ["B"]);
        assert_eq!(plan.retired, ["R"]);
        assert_eq!(plan.unknown, ["X"]);
        assert_eq!(
            plan.coupons.iter().map(|c| (c.member_id.as_str(), c.slot)).collect::<Vec<_>>(),
            [("A", 1), ("A", 2)]
        );
        assert!(plan.coupons.iter().all(|c| c.serial_number.starts_with("cp-")));
        assert_ne!(plan.coupons[0].code, plan.coupons[1].code);
        // The card's Last-Modified moves at least a second past its last one.
        assert_eq!(plan.cards, [PassChange { serial_number: "S-A".into(), voided: false, modified_at: NOW + 1 }]);
    }

    #[test]
    fn a_grant_past_the_quota_the_window_or_a_withdrawal_is_refused_whole() {
        assert_eq!(grant(&offer(1, Some(3)), 2, &[], &["A", "B"]), Err(GrantRefusal::Quota { left: 1, needed: 2 }));
        assert!(grant(&offer(1, Some(3)), 1, &[], &["A", "B"]).is_ok());
        let ended = OfferRecord { valid_until: NOW, ..offer(1, None) };
        assert_eq!(grant(&ended, 0, &[], &["A"]), Err(GrantRefusal::Ended { valid_until: NOW }));
        let withdrawn = OfferRecord { withdrawn_at: Some(NOW - 1), ..offer(1, None) };
        assert_eq!(grant(&withdrawn, 0, &[], &["A"]), Err(GrantRefusal::Withdrawn));
        // Nothing to grant (all unknown or already holding) is not a quota problem.
        assert!(grant(&offer(1, Some(0)), 0, &["A"], &["A", "X"]).is_ok());
    }

    fn coupon(state: CouponState) -> CouponRecord {
        CouponRecord {
            coupon_id: "c".into(),
            program: "p".into(),
            offer_id: "o".into(),
            member_id: "A".into(),
            code: "CPN-X".into(),
            stored_state: state,
            granted_at: NOW - 5,
            redeemed_at: (state == CouponState::Redeemed).then_some(NOW - 1),
            redeemed_location: (state == CouponState::Redeemed).then(|| "Siam".to_string()),
            serial_number: "cp-s".into(),
            authentication_token: "t".into(),
            pass_type_id: "pass.x".into(),
            update_tag: 1,
            modified_at: NOW,
            template: "free-drink".into(),
            valid_from: NOW - 10,
            valid_until: NOW + 100,
            member_name: None,
            member_tier: "gold".into(),
            member_locale: None,
        }
    }

    #[test]
    fn a_coupon_is_redeemable_only_while_active_inside_its_window() {
        assert_eq!(redeemable(&coupon(CouponState::Active), NOW), Ok(()));
        assert_eq!(
            redeemable(&coupon(CouponState::Redeemed), NOW),
            Err(Unredeemable::AlreadyRedeemed { at: NOW - 1, location: Some("Siam".into()) })
        );
        assert_eq!(redeemable(&coupon(CouponState::Withdrawn), NOW), Err(Unredeemable::Withdrawn));
        assert_eq!(redeemable(&coupon(CouponState::Expired), NOW), Err(Unredeemable::Expired { at: NOW + 100 }));
        // Expired by the clock before the sweep marked it; not yet valid before the window opens.
        assert_eq!(redeemable(&coupon(CouponState::Active), NOW + 100), Err(Unredeemable::Expired { at: NOW + 100 }));
        assert_eq!(
            redeemable(&coupon(CouponState::Active), NOW - 11),
            Err(Unredeemable::NotYetValid { from: NOW - 10 })
        );
    }
}
