//! The pass style and field rules, table-driven like `rules_tests`: the valid pass.json mutated one
//! rule at a time.

use serde_json::json;

use super::report::Severity::{Error, Warning};
use super::rules_tests::{Case, assert_cases, push, remove, set};

/// The style key, field dictionaries, formats and field counts.
const FIELD_CASES: &[Case] = &[
    (|p| set(p, "/coupon", json!({})), Error, "exactly one style key"),
    (|p| remove(p, "/storeCard"), Error, "found 0"),
    (|p| set(p, "/storeCard", json!([])), Error, "storeCard must be an object"),
    (
        |p| {
            let card = p["storeCard"].take();
            remove(p, "/storeCard");
            set(p, "/boardingPass", card);
        },
        Error,
        "transitType is missing",
    ),
    (
        |p| {
            let card = p["storeCard"].take();
            remove(p, "/storeCard");
            set(p, "/boardingPass", card);
            set(p, "/boardingPass/transitType", json!("PKTransitTypeRocket"));
        },
        Error,
        "transitType is \"PKTransitTypeRocket\"",
    ),
    (|p| set(p, "/storeCard/backFields", json!({})), Error, "storeCard.backFields must be an array"),
    (|p| set(p, "/storeCard/backFields/0", json!("terms")), Error, "storeCard.backFields[0] must be an object"),
    (|p| remove(p, "/storeCard/backFields/0/key"), Error, "backFields[0] has no key"),
    (|p| set(p, "/storeCard/backFields/0/key", json!("points")), Error, "\"points\" is used twice"),
    (|p| remove(p, "/storeCard/secondaryFields/0/value"), Error, "has no value"),
    (|p| set(p, "/storeCard/secondaryFields/0/value", json!(true)), Error, "value must be a string or a number"),
    (|p| set(p, "/storeCard/secondaryFields/0/label", json!(3)), Error, "label must be a string"),
    (
        |p| set(p, "/storeCard/backFields/0/attributedValue", json!([])),
        Error,
        "attributedValue must be a string or a number",
    ),
    (|p| set(p, "/storeCard/auxiliaryFields/0/dateStyle", json!("Short")), Error, "dateStyle is \"Short\""),
    (
        |p| set(p, "/storeCard/secondaryFields/0/timeStyle", json!("PKDateStyleShort")),
        Error,
        "its value must be a date",
    ),
    (|p| set(p, "/storeCard/auxiliaryFields/0/value", json!("2030-12-31")), Error, "no time"),
    (|p| set(p, "/storeCard/auxiliaryFields/0/value", json!("2030-12-31T10:00")), Error, "no time zone"),
    (|p| set(p, "/storeCard/auxiliaryFields/0/value", json!(20301231)), Error, "W3C date string"),
    (
        |p| set(p, "/storeCard/auxiliaryFields/0/ignoresTimeZone", json!("yes")),
        Error,
        "ignoresTimeZone must be true or false",
    ),
    (
        |p| set(p, "/storeCard/primaryFields/0/numberStyle", json!("PKNumberStyleMoney")),
        Error,
        "numberStyle is \"PKNumberStyleMoney\"",
    ),
    (
        |p| set(p, "/storeCard/secondaryFields/0/numberStyle", json!("PKNumberStyleDecimal")),
        Warning,
        "numberStyle applies only to number values",
    ),
    (|p| set(p, "/storeCard/auxiliaryFields/1/currencyCode", json!("baht")), Error, "ISO 4217"),
    (
        |p| set(p, "/storeCard/secondaryFields/0/currencyCode", json!("THB")),
        Warning,
        "currencyCode applies only to number values",
    ),
    (|p| set(p, "/storeCard/auxiliaryFields/0/textAlignment", json!("right")), Error, "textAlignment is \"right\""),
    (
        |p| set(p, "/storeCard/primaryFields/0/textAlignment", json!("PKTextAlignmentLeft")),
        Warning,
        "not allowed in primaryFields",
    ),
    (
        |p| set(p, "/storeCard/backFields/0/dataDetectorTypes", json!(["links"])),
        Error,
        "dataDetectorTypes[0] must be one of",
    ),
    (|p| set(p, "/storeCard/secondaryFields/0/dataDetectorTypes", json!([])), Warning, "only to back fields"),
    (|p| set(p, "/storeCard/auxiliaryFields/0/row", json!(1)), Warning, "row applies only to an eventTicket"),
    (|p| set(p, "/storeCard/primaryFields/0/changeMessage", json!(1)), Error, "changeMessage must be a string"),
    (|p| set(p, "/storeCard/primaryFields/0/changeMessage", json!("Points changed")), Warning, "has no %@"),
    (
        |p| {
            remove(p, "/storeCard/primaryFields/0/changeMessage");
            remove(p, "/storeCard/secondaryFields/1/changeMessage");
        },
        Warning,
        "lock screen says nothing",
    ),
    (|p| push(p, "/storeCard/primaryFields", json!({ "key": "p2", "value": 1 })), Warning, "shows at most 1"),
    (|p| push(p, "/storeCard/auxiliaryFields", json!({ "key": "a3", "value": 1 })), Warning, "at most 4 together"),
    (
        |p| {
            for i in 0..3 {
                push(p, "/storeCard/headerFields", json!({ "key": format!("h{i}"), "value": i }));
            }
        },
        Warning,
        "headerFields has 4 fields",
    ),
    (|p| set(p, "/storeCard/primaryFields", json!([])), Warning, "no primary field"),
    (|p| set(p, "/storeCard/primaryfields", json!([])), Warning, "did you mean `primaryFields`"),
    (|p| set(p, "/storeCard/primaryFields/0/Label", json!("x")), Warning, "did you mean `label`"),
];

#[test]
fn each_field_rule_fires_with_its_severity_file_and_phrase() {
    assert_cases(FIELD_CASES);
}

#[test]
fn a_store_card_balance_without_a_change_message_warns() {
    // The tier keeps its changeMessage, so only the primary field (the balance) updates silently.
    assert_cases(&[(
        |p| remove(p, "/storeCard/primaryFields/0/changeMessage"),
        Warning,
        "storeCard.primaryFields[0] (where Wallet shows the balance) has no changeMessage",
    )]);
    let quiet = super::rules_tests::check(&super::rules_tests::valid_pass());
    assert!(!quiet.iter().any(|f| f.message.contains("where Wallet shows the balance")), "{quiet:#?}");
}
