//! The decision tables: each row is a situation, the plan it must produce, and the invariants every plan keeps.

use serde_json::json;

use super::*;
use crate::domain::{Attributes, Context, FromJson, Points, Sequence, TierName};

const NOW: i64 = 1_000_000;
const IDENTITY: (&str, &str) = ("pass.example.loyalty", "TEAM123456");

/// Predictable ids: the n-th new member gets pub-n, serial-n and token-n.
#[derive(Default)]
struct CountingIds([u32; 3]);

impl CountingIds {
    fn next(&mut self, kind: usize, prefix: &str) -> String {
        self.0[kind] += 1;
        format!("{prefix}-{}", self.0[kind])
    }
}

impl IdSource for CountingIds {
    fn public_id(&mut self) -> String {
        self.next(0, "pub")
    }
    fn serial(&mut self) -> String {
        self.next(1, "serial")
    }
    fn auth_token(&mut self) -> String {
        self.next(2, "token")
    }
}

/// An existing member with pass `S-<id>`, last changed 50 seconds ago.
fn member(id: &str, sequence: Option<i64>, points: i64, tier: &str) -> MemberRecord {
    MemberRecord {
        program: "prog".into(),
        member_id: id.into(),
        public_id: format!("P-{id}"),
        name: None,
        tier: tier.into(),
        points,
        locale: None,
        attributes: "{}".into(),
        retired: false,
        ledger_sequence: sequence,
        created_at: NOW - 1000,
        updated_at: NOW - 500,
        serial_number: format!("S-{id}"),
        authentication_token: format!("T-{id}"),
        pass_type_id: IDENTITY.0.into(),
        team_id: IDENTITY.1.into(),
        voided: false,
        update_tag: 7,
        modified_at: NOW - 50,
        latest_offer: None,
    }
}

/// Ann: ledger sequence 2, 100 points, gold.
fn ann() -> MemberRecord {
    MemberRecord { name: Some("Ann".into()), ..member("A", Some(2), 100, "gold") }
}

fn retired(m: MemberRecord) -> MemberRecord {
    MemberRecord { retired: true, voided: true, ..m }
}

fn modified_at(at: i64, m: MemberRecord) -> MemberRecord {
    MemberRecord { modified_at: at, ..m }
}

const TIERS: &[&str] = &["silver", "gold", "platinum"];

fn tier(name: &str) -> TierName {
    TierName::parse(name, &TIERS).unwrap()
}

fn points(n: i64) -> Points {
    Points::new(n).unwrap()
}

fn attributes(object: serde_json::Value) -> Attributes {
    Attributes::from_json(&object, &Context { tiers: &TIERS, offers: &TIERS }).unwrap()
}

fn ev(id: &str, member_id: &str, sequence: i64, balance: i64, tier_name: &str) -> LedgerEvent {
    LedgerEvent {
        id: id.parse().unwrap(),
        member_id: member_id.parse().unwrap(),
        sequence: Sequence::new(sequence).unwrap(),
        points: points(balance),
        tier: tier(tier_name),
        name: None,
    }
}

fn named(name: &str, e: LedgerEvent) -> LedgerEvent {
    LedgerEvent { name: Some(name.parse().unwrap()), ..e }
}

fn put(name: Option<&str>, tier_name: &str, balance: i64) -> MemberChange {
    MemberChange {
        name: name.map(|n| n.parse().unwrap()),
        tier: tier(tier_name),
        points: points(balance),
        locale: None,
        attributes: Attributes::default(),
    }
}

fn at(t: i64) -> String {
    match t - NOW {
        0 => "now".into(),
        d => format!("now{d:+}"),
    }
}

/// A member in one line, the way the tables expect it.
fn describe(m: &MemberRecord) -> String {
    let seq = m.ledger_sequence.map_or("-".into(), |s| s.to_string());
    let mut out =
        format!("{} {} {} name={} seq={seq}", m.member_id, m.tier, m.points, m.name.as_deref().unwrap_or("-"));
    if let Some(locale) = &m.locale {
        out += &format!(" locale={locale}");
    }
    if m.attributes != "{}" {
        out += &format!(" attributes={}", m.attributes);
    }
    for (flag, word) in [(m.retired, " retired"), (m.voided, " voided")] {
        if flag {
            out += word;
        }
    }
    out + &format!(" modified={}", at(m.modified_at))
}

fn describe_plan(plan: &Plan) -> [Vec<String>; 4] {
    [
        plan.created.iter().map(describe).collect(),
        plan.updated.iter().map(describe).collect(),
        plan.changed_passes
            .iter()
            .map(|p| {
                format!("{}{} modified={}", p.serial_number, if p.voided { " voided" } else { "" }, at(p.modified_at))
            })
            .collect(),
        plan.event_statuses_to_record.iter().map(|(id, s)| format!("{id} {}", s.as_str())).collect(),
    ]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What every plan must satisfy, whatever the case: new members are whole and get no push; existing
/// members keep their ids; a pass changes exactly when it shows a change, and then Last-Modified is
/// max(now, previous + 1).
fn check_invariants(case: &str, before: &[MemberRecord], plan: &Plan) {
    for (i, c) in plan.created.iter().enumerate() {
        let n = i + 1;
        assert!(before.iter().all(|b| b.member_id != c.member_id), "{case}: created an existing member");
        assert_eq!(
            (c.public_id.clone(), c.serial_number.clone(), c.authentication_token.clone()),
            (format!("pub-{n}"), format!("serial-{n}"), format!("token-{n}")),
            "{case}: one set of new ids per new member"
        );
        assert_eq!((c.created_at, c.updated_at, c.modified_at, c.update_tag), (NOW, NOW, NOW, 0), "{case}");
        assert_eq!((c.program.as_str(), (c.pass_type_id.as_str(), c.team_id.as_str())), ("prog", IDENTITY), "{case}");
        assert!(!c.retired && !c.voided, "{case}");
        assert!(plan.changed_passes.iter().all(|p| p.serial_number != c.serial_number), "{case}: pushed a new pass");
    }
    for u in &plan.updated {
        let b = before.iter().find(|b| b.member_id == u.member_id).expect("updated a member that existed");
        let ids = |m: &MemberRecord| {
            (m.public_id.clone(), m.serial_number.clone(), m.authentication_token.clone(), m.created_at, m.update_tag)
        };
        assert_eq!(ids(u), ids(b), "{case}: ids, creation time and tag are kept");
        assert_ne!(u, b, "{case}: an update that changes nothing");
        assert_eq!(u.updated_at, NOW, "{case}");
        match plan.changed_passes.iter().find(|p| p.serial_number == u.serial_number) {
            Some(p) => {
                assert!(shows_change(b, u), "{case}: a pass changed without a visible change");
                assert_eq!((p.modified_at, u.modified_at), (NOW.max(b.modified_at + 1), p.modified_at), "{case}");
                assert_eq!(p.voided, u.voided, "{case}");
            }
            None => {
                assert!(!shows_change(b, u), "{case}: a visible change without a pass change");
                assert_eq!(u.modified_at, b.modified_at, "{case}");
            }
        }
    }
    assert_eq!(
        plan.changed_passes.len(),
        plan.updated.iter().filter(|u| plan.changed_passes.iter().any(|p| p.serial_number == u.serial_number)).count(),
        "{case}: every changed pass belongs to an updated member, once"
    );
}

struct LedgerCase {
    name: &'static str,
    members: Vec<MemberRecord>,
    seen_before: &'static [&'static str],
    events: Vec<LedgerEvent>,
    statuses: &'static str,
    created: &'static [&'static str],
    updated: &'static [&'static str],
    changed: &'static [&'static str],
    recorded: &'static [&'static str],
}

fn ledger_cases() -> Vec<LedgerCase> {
    [ordering_and_duplicate_cases(), new_and_retired_member_cases(), pass_change_cases()]
        .into_iter()
        .flatten()
        .collect()
}

/// Which events apply: by id, then by sequence.
fn ordering_and_duplicate_cases() -> Vec<LedgerCase> {
    let none: &[&str] = &[];
    vec![
        LedgerCase {
            name: "an event applies and the pass changes",
            members: vec![ann()],
            seen_before: none,
            events: vec![ev("e3", "A", 3, 200, "gold")],
            statuses: "applied",
            created: none,
            updated: &["A gold 200 name=Ann seq=3 modified=now"],
            changed: &["S-A modified=now"],
            recorded: none,
        },
        LedgerCase {
            name: "sequences 3,1,2: the newest applies, the older ones are stale",
            members: vec![member("N", None, 0, "silver")],
            seen_before: none,
            events: vec![
                ev("e3", "N", 3, 300, "gold"),
                ev("e1", "N", 1, 100, "silver"),
                ev("e2", "N", 2, 200, "silver"),
            ],
            statuses: "applied stale stale",
            created: none,
            updated: &["N gold 300 name=- seq=3 modified=now"],
            changed: &["S-N modified=now"],
            recorded: &["e1 stale", "e2 stale"],
        },
        LedgerCase {
            name: "sequences 1,3,2: two apply, the last is stale",
            members: vec![member("N", None, 0, "silver")],
            seen_before: none,
            events: vec![
                ev("e1", "N", 1, 100, "silver"),
                ev("e3", "N", 3, 300, "gold"),
                ev("e2", "N", 2, 200, "silver"),
            ],
            statuses: "applied applied stale",
            created: none,
            updated: &["N gold 300 name=- seq=3 modified=now"],
            changed: &["S-N modified=now"],
            recorded: &["e2 stale"],
        },
        LedgerCase {
            name: "a sequence equal to the last applied is stale",
            members: vec![ann()],
            seen_before: none,
            events: vec![ev("e2", "A", 2, 999, "platinum")],
            statuses: "stale",
            created: none,
            updated: none,
            changed: none,
            recorded: &["e2 stale"],
        },
        LedgerCase {
            name: "the same id twice in one batch: the second is a duplicate",
            members: vec![ann()],
            seen_before: none,
            events: vec![ev("x", "A", 3, 200, "gold"), ev("x", "A", 4, 300, "platinum")],
            statuses: "applied duplicate",
            created: none,
            updated: &["A gold 200 name=Ann seq=3 modified=now"],
            changed: &["S-A modified=now"],
            recorded: none,
        },
        LedgerCase {
            name: "an id seen before is a duplicate and changes nothing",
            members: vec![ann()],
            seen_before: &["old"],
            events: vec![ev("old", "A", 3, 200, "gold")],
            statuses: "duplicate",
            created: none,
            updated: none,
            changed: none,
            recorded: none,
        },
    ]
}

/// Members the batch creates, and members it must leave alone.
fn new_and_retired_member_cases() -> Vec<LedgerCase> {
    let none: &[&str] = &[];
    vec![
        LedgerCase {
            name: "an unknown member is created by its event, without a name, and its new pass is not pushed",
            members: vec![],
            seen_before: none,
            events: vec![ev("n1", "NEW", 5, 100, "silver")],
            statuses: "applied",
            created: &["NEW silver 100 name=- seq=5 modified=now"],
            updated: none,
            changed: none,
            recorded: none,
        },
        LedgerCase {
            name: "an unknown member is created with the event's name",
            members: vec![],
            seen_before: none,
            events: vec![named("Nguyễn Văn A", ev("n1", "NEW", 0, 0, "silver"))],
            statuses: "applied",
            created: &["NEW silver 0 name=Nguyễn Văn A seq=0 modified=now"],
            updated: none,
            changed: none,
            recorded: none,
        },
        LedgerCase {
            name: "a new member's later events shape the new record; stale ones still lose",
            members: vec![],
            seen_before: none,
            events: vec![
                ev("n1", "NEW", 5, 100, "silver"),
                ev("n2", "NEW", 6, 300, "gold"),
                ev("n3", "NEW", 4, 999, "platinum"),
            ],
            statuses: "applied applied stale",
            created: &["NEW gold 300 name=- seq=6 modified=now"],
            updated: none,
            changed: none,
            recorded: &["n3 stale"],
        },
        LedgerCase {
            name: "an event for a retired member: retired, nothing changes",
            members: vec![retired(ann())],
            seen_before: none,
            events: vec![ev("r1", "A", 9, 500, "platinum")],
            statuses: "retired",
            created: none,
            updated: none,
            changed: none,
            recorded: &["r1 retired"],
        },
    ]
}

/// When a pass changes, and its Last-Modified; several members at once.
fn pass_change_cases() -> Vec<LedgerCase> {
    let none: &[&str] = &[];
    vec![
        LedgerCase {
            name: "same points and tier: applied, the sequence moves, the pass does not change",
            members: vec![ann()],
            seen_before: none,
            events: vec![ev("e3", "A", 3, 100, "gold")],
            statuses: "applied",
            created: none,
            updated: &["A gold 100 name=Ann seq=3 modified=now-50"],
            changed: none,
            recorded: none,
        },
        LedgerCase {
            name: "a name renames; an event without one keeps it",
            members: vec![ann()],
            seen_before: none,
            events: vec![named("Anna", ev("e3", "A", 3, 100, "gold")), ev("e4", "A", 4, 150, "gold")],
            statuses: "applied applied",
            created: none,
            updated: &["A gold 150 name=Anna seq=4 modified=now"],
            changed: &["S-A modified=now"],
            recorded: none,
        },
        LedgerCase {
            name: "a change and its reversal in one batch leave the pass alone",
            members: vec![ann()],
            seen_before: none,
            events: vec![ev("e3", "A", 3, 200, "platinum"), ev("e4", "A", 4, 100, "gold")],
            statuses: "applied applied",
            created: none,
            updated: &["A gold 100 name=Ann seq=4 modified=now-50"],
            changed: none,
            recorded: none,
        },
        LedgerCase {
            name: "Last-Modified moves at least one second past the previous one",
            members: vec![
                modified_at(NOW, member("L", Some(1), 10, "silver")),
                modified_at(NOW + 5, member("F", Some(1), 10, "silver")),
            ],
            seen_before: none,
            events: vec![ev("l2", "L", 2, 20, "silver"), ev("f2", "F", 2, 20, "silver")],
            statuses: "applied applied",
            created: none,
            updated: &["L silver 20 name=- seq=2 modified=now+1", "F silver 20 name=- seq=2 modified=now+6"],
            changed: &["S-L modified=now+1", "S-F modified=now+6"],
            recorded: none,
        },
        LedgerCase {
            name: "several members in one batch, in request order",
            members: vec![ann(), member("N", Some(0), 0, "silver"), retired(member("R", Some(1), 5, "gold"))],
            seen_before: &["seen"],
            events: vec![
                ev("a3", "A", 3, 200, "gold"),
                ev("new1", "NEW", 1, 5, "silver"),
                ev("r2", "R", 2, 1, "gold"),
                ev("n1", "N", 1, 0, "silver"),
                ev("a3", "A", 4, 300, "gold"),
                ev("seen", "N", 2, 50, "gold"),
                ev("a1", "A", 1, 1, "silver"),
            ],
            statuses: "applied applied retired applied duplicate duplicate stale",
            created: &["NEW silver 5 name=- seq=1 modified=now"],
            updated: &["A gold 200 name=Ann seq=3 modified=now", "N silver 0 name=- seq=1 modified=now-50"],
            changed: &["S-A modified=now"],
            recorded: &["r2 retired", "a1 stale"],
        },
    ]
}

#[test]
fn ledger_batches_decide_as_the_table_says() {
    for case in ledger_cases() {
        let snapshot = Snapshot {
            now: NOW,
            fresh_event_ids: case
                .events
                .iter()
                .map(|e| e.id.as_str().to_owned())
                .filter(|id| !case.seen_before.contains(&id.as_str()))
                .collect(),
            members: case.members.iter().map(|m| (m.member_id.clone(), m.clone())).collect(),
        };
        let plan = decide_ledger_batch("prog", &case.events, &snapshot, IDENTITY, &mut CountingIds::default());
        let statuses: Vec<&str> = plan.statuses.iter().map(|s| s.as_str()).collect();
        assert_eq!(statuses.join(" "), case.statuses, "{}: statuses", case.name);
        let expected = [case.created, case.updated, case.changed, case.recorded].map(strings);
        assert_eq!(describe_plan(&plan), expected, "{}: [created, updated, changed, recorded]", case.name);
        check_invariants(case.name, &case.members, &plan);
    }
}

enum Admin {
    Put(MemberChange),
    Retire,
}

struct AdminCase {
    name: &'static str,
    existing: Option<MemberRecord>,
    action: Admin,
    outcome: Option<UpsertOutcome>,
    created: &'static [&'static str],
    updated: &'static [&'static str],
    changed: &'static [&'static str],
}

fn admin_cases() -> Vec<AdminCase> {
    [upsert_cases(), retire_cases()].into_iter().flatten().collect()
}

fn upsert_cases() -> Vec<AdminCase> {
    let none: &[&str] = &[];
    let updated = Some(UpsertOutcome::Updated);
    let thai = MemberChange {
        locale: Some("th".parse().unwrap()),
        attributes: attributes(json!({"city": "BKK"})),
        ..put(None, "gold", 1)
    };
    vec![
        AdminCase {
            name: "PUT of an unknown member creates it and its pass",
            existing: None,
            action: Admin::Put(thai.clone()),
            outcome: Some(UpsertOutcome::Created),
            created: &[r#"A gold 1 name=- seq=- locale=th attributes={"city":"BKK"} modified=now"#],
            updated: none,
            changed: none,
        },
        AdminCase {
            name: "a PUT that changes nothing leaves member and pass alone",
            existing: Some(ann()),
            action: Admin::Put(put(Some("Ann"), "gold", 100)),
            outcome: Some(UpsertOutcome::Unchanged),
            created: none,
            updated: none,
            changed: none,
        },
        AdminCase {
            name: "a PUT with new points updates member and pass, and keeps the ledger sequence",
            existing: Some(ann()),
            action: Admin::Put(put(Some("Ann"), "gold", 250)),
            outcome: updated,
            created: none,
            updated: &["A gold 250 name=Ann seq=2 modified=now"],
            changed: &["S-A modified=now"],
        },
        AdminCase {
            name: "a PUT removing the name, or changing locale and attributes, changes the pass",
            existing: Some(ann()),
            action: Admin::Put(MemberChange { points: points(100), ..thai }),
            outcome: updated,
            created: none,
            updated: &[r#"A gold 100 name=- seq=2 locale=th attributes={"city":"BKK"} modified=now"#],
            changed: &["S-A modified=now"],
        },
        AdminCase {
            name: "a PUT reinstates a retired member with the same fields: un-voided, the pass changes",
            existing: Some(retired(ann())),
            action: Admin::Put(put(Some("Ann"), "gold", 100)),
            outcome: updated,
            created: none,
            updated: &["A gold 100 name=Ann seq=2 modified=now"],
            changed: &["S-A modified=now"],
        },
        AdminCase {
            name: "a PUT right after a change in the same second moves Last-Modified one second on",
            existing: Some(modified_at(NOW, ann())),
            action: Admin::Put(put(Some("Ann"), "platinum", 100)),
            outcome: updated,
            created: none,
            updated: &["A platinum 100 name=Ann seq=2 modified=now+1"],
            changed: &["S-A modified=now+1"],
        },
    ]
}

fn retire_cases() -> Vec<AdminCase> {
    let none: &[&str] = &[];
    vec![
        AdminCase {
            name: "DELETE retires the member and voids the pass",
            existing: Some(ann()),
            action: Admin::Retire,
            outcome: None,
            created: none,
            updated: &["A gold 100 name=Ann seq=2 retired voided modified=now"],
            changed: &["S-A voided modified=now"],
        },
        AdminCase {
            name: "DELETE of a retired member changes nothing",
            existing: Some(retired(ann())),
            action: Admin::Retire,
            outcome: None,
            created: none,
            updated: none,
            changed: none,
        },
    ]
}

#[test]
fn admin_changes_decide_as_the_table_says() {
    for case in admin_cases() {
        let existing = case.existing.as_ref();
        let (plan, outcome) = match &case.action {
            Admin::Put(change) => {
                let ids = &mut CountingIds::default();
                let (plan, outcome) =
                    decide_upsert("prog", &"A".parse().unwrap(), change, existing, IDENTITY, NOW, ids);
                (plan, Some(outcome))
            }
            Admin::Retire => (decide_retire(existing.expect("retire needs a member"), NOW), None),
        };
        assert_eq!(outcome, case.outcome, "{}: outcome", case.name);
        assert_eq!(plan.touches_passes(), !case.created.is_empty() || !case.changed.is_empty(), "{}", case.name);
        let expected = [case.created, case.updated, case.changed, &[]].map(strings);
        assert_eq!(describe_plan(&plan), expected, "{}: [created, updated, changed, recorded]", case.name);
        assert!(plan.statuses.is_empty(), "{}: no ledger statuses", case.name);
        check_invariants(case.name, case.existing.as_slice(), &plan);
    }
}

#[test]
fn the_shown_fields_are_exactly_the_visible_ones() {
    let base = ann();
    let visible: [fn(&mut MemberRecord); 7] = [
        |m| m.points += 1,
        |m| m.tier = "silver".into(),
        |m| m.name = None,
        |m| m.locale = Some("vi".into()),
        |m| m.attributes = r#"{"a":1}"#.into(),
        |m| m.retired = true,
        |m| m.voided = true,
    ];
    for change in visible {
        let mut after = base.clone();
        change(&mut after);
        assert!(shows_change(&base, &after), "{after:?}");
    }
    let hidden = MemberRecord { ledger_sequence: Some(9), updated_at: NOW, update_tag: 99, ..base.clone() };
    assert!(!shows_change(&base, &hidden));
}
