//! What the worker sends for a member's object, decided from what Google last accepted: nothing (it is
//! current), an insert (never inserted), or a PATCH with absolute values that asks for a phone
//! notification only for a balance or tier change, and at most three times in 24 hours. When a refused
//! update is tried again is the delivery engine's policy (`delivery::policy`).

/// Google allows three notifying updates per pass per 24 hours.
pub const NOTIFICATIONS_PER_DAY: usize = 3;
const DAY_SECS: i64 = 86_400;

pub use crate::model::ObjectState;

/// The member's state now, as far as the object shows it.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub update_tag: i64,
    pub points: i64,
    pub tier: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Google already has this state.
    Nothing,
    Insert,
    Patch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub send: Request,
    /// Ask Google to notify the phone (`notifyPreference: NOTIFY_ON_UPDATE`).
    pub notify: bool,
    /// `notified_at` to record once Google accepts the update.
    pub notified_at: Vec<i64>,
}

pub fn decide(current: Current<'_>, state: &ObjectState, now: i64) -> Update {
    let recent: Vec<i64> = state.notified_at.iter().copied().filter(|t| now - t < DAY_SECS).collect();
    if state.inserted && state.synced_tag == current.update_tag {
        return Update { send: Request::Nothing, notify: false, notified_at: recent };
    }
    if !state.inserted {
        return Update { send: Request::Insert, notify: false, notified_at: recent };
    }
    let member_sees_it = state.synced_points.is_some_and(|p| p != current.points)
        || state.synced_tier.as_deref().is_some_and(|t| t != current.tier);
    let notify = member_sees_it && recent.len() < NOTIFICATIONS_PER_DAY;
    let mut notified_at = recent;
    if notify {
        notified_at.push(now);
    }
    Update { send: Request::Patch, notify, notified_at }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(tag: i64, points: i64, tier: &str, notified_at: Vec<i64>) -> ObjectState {
        ObjectState {
            inserted: true,
            synced_tag: tag,
            synced_points: Some(points),
            synced_tier: Some(tier.into()),
            notified_at,
            saved: false,
        }
    }

    #[test]
    fn a_current_object_gets_nothing_and_a_new_one_an_insert() {
        let now = 1_000_000;
        let current = Current { update_tag: 7, points: 10, tier: "gold" };
        assert_eq!(decide(current, &synced(7, 10, "gold", vec![]), now).send, Request::Nothing);
        let fresh = decide(current, &ObjectState::default(), now);
        assert_eq!((fresh.send, fresh.notify), (Request::Insert, false));
    }

    #[test]
    fn balance_and_tier_changes_notify_three_times_a_day_then_silently() {
        let mut state = synced(1, 10, "gold", vec![]);
        let mut now = 1_000_000;
        let mut notified = 0;
        for points in [20, 30, 40, 50] {
            let u = decide(Current { update_tag: state.synced_tag + 1, points, tier: "gold" }, &state, now);
            assert_eq!(u.send, Request::Patch);
            notified += u.notify as usize;
            state = synced(state.synced_tag + 1, points, "gold", u.notified_at);
            now += 60;
        }
        assert_eq!(notified, 3);
        // A day after the first, one more may notify.
        let u = decide(Current { update_tag: 9, points: 60, tier: "gold" }, &state, 1_000_000 + DAY_SECS);
        assert!(u.notify);
        assert_eq!(u.notified_at.len(), 3);
    }

    #[test]
    fn a_name_change_updates_silently() {
        let u = decide(Current { update_tag: 2, points: 10, tier: "gold" }, &synced(1, 10, "gold", vec![]), 5);
        assert_eq!((u.send, u.notify), (Request::Patch, false));
        let u = decide(Current { update_tag: 2, points: 10, tier: "platinum" }, &synced(1, 10, "gold", vec![]), 5);
        assert!(u.notify);
    }
}
