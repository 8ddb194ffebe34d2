//! The pass.json rules, table-driven: a valid pass.json mutated one rule at a time, each asserting the
//! severity, the file named and a key phrase of the finding.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::pass_json::{check_pass_json, parse_pass_json};
use super::report::{Collector, Finding, Severity};
use super::strings::Localizations;

/// 2026-12-01T00:00:00Z.
const NOW: i64 = 1_796_083_200;

const EN: &str = r#""pass.description" = "Loyalty card"; "points.label" = "POINTS"; "points.change" = "You now have %@ points";
"name.label" = "MEMBER"; "tier.label" = "TIER"; "tier.gold" = "Gold"; "tier.change" = "Your tier is now %@";
"expires.label" = "EXPIRES"; "terms.label" = "Terms"; "terms.text" = "No cash value.";"#;
const TH: &str = r#""pass.description" = "บัตรสมาชิก"; "points.label" = "คะแนน"; "points.change" = "ตอนนี้คุณมี %@ คะแนน";
"name.label" = "สมาชิก"; "tier.label" = "ระดับ"; "tier.gold" = "โกลด์"; "tier.change" = "ระดับของคุณคือ %@";
"expires.label" = "หมดอายุ"; "terms.label" = "เงื่อนไข"; "terms.text" = "ไม่มีมูลค่าเป็นเงินสด";"#;

pub(super) fn valid_pass() -> Value {
    json!({
        "formatVersion": 1,
        "passTypeIdentifier": "pass.com.example.tessera",
        "teamIdentifier": "EXAMPLE123",
        "serialNumber": "0123456789abcdef0123456789abcdef",
        "authenticationToken": "sample-token-0123456789abcdef",
        "webServiceURL": "https://wallet.example.com/",
        "organizationName": "Tessera Coffee",
        "description": "pass.description",
        "backgroundColor": "rgb(122, 88, 22)",
        "foregroundColor": "rgb(255, 255, 255)",
        "labelColor": "rgb(255, 226, 160)",
        "sharingProhibited": true,
        "expirationDate": "2030-12-31T23:59:00+07:00",
        "locations": [{ "latitude": 13.75, "longitude": 100.5, "relevantText": "Welcome" }],
        "beacons": [{ "proximityUUID": "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", "major": 1, "minor": 2 }],
        "barcodes": [{ "format": "PKBarcodeFormatQR", "message": "M-1001", "messageEncoding": "iso-8859-1", "altText": "M-1001" }],
        "storeCard": {
            "headerFields": [{ "key": "level", "label": "tier.label", "value": "tier.gold" }],
            "primaryFields": [{
                "key": "points", "label": "points.label", "value": 1250,
                "numberStyle": "PKNumberStyleDecimal", "changeMessage": "points.change"
            }],
            "secondaryFields": [
                { "key": "name", "label": "name.label", "value": "Somchai" },
                { "key": "tier", "label": "tier.label", "value": "tier.gold", "changeMessage": "tier.change" }
            ],
            "auxiliaryFields": [
                {
                    "key": "expires", "label": "expires.label", "value": "2030-12-31T23:59:00+07:00",
                    "dateStyle": "PKDateStyleMedium", "timeStyle": "PKDateStyleNone", "textAlignment": "PKTextAlignmentRight"
                },
                { "key": "credit", "value": 12.5, "currencyCode": "THB", "numberStyle": "PKNumberStyleDecimal" }
            ],
            "backFields": [{
                "key": "terms", "label": "terms.label", "value": "terms.text", "dataDetectorTypes": ["PKDataDetectorTypeLink"]
            }]
        }
    })
}

pub(super) fn check(pass: &Value) -> Vec<Finding> {
    let files = BTreeMap::from([
        ("en.lproj/pass.strings".to_string(), EN.as_bytes().to_vec()),
        ("th.lproj/pass.strings".to_string(), TH.as_bytes().to_vec()),
    ]);
    let mut out = Collector::default();
    let localizations = Localizations::read(&files, &mut out);
    let raw = serde_json::to_vec(pass).expect("serializes");
    if let Some(object) = parse_pass_json(&raw, &mut out) {
        check_pass_json(&object, &localizations, NOW, &mut out);
    }
    out.finish().findings
}

/// Sets the value at a JSON pointer, inserting an object key or replacing an array item.
pub(super) fn set(pass: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
    match pass.pointer_mut(parent).unwrap_or_else(|| panic!("{parent} exists")) {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
        }
        Value::Array(items) => items[last.parse::<usize>().expect("an index")] = value,
        other => panic!("{parent} is {other}"),
    }
}

pub(super) fn remove(pass: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
    match pass.pointer_mut(parent).unwrap_or_else(|| panic!("{parent} exists")) {
        Value::Object(map) => {
            map.remove(last).unwrap_or_else(|| panic!("{pointer} exists"));
        }
        Value::Array(items) => {
            items.remove(last.parse::<usize>().expect("an index"));
        }
        other => panic!("{parent} is {other}"),
    }
}

pub(super) fn push(pass: &mut Value, pointer: &str, value: Value) {
    pass.pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("{pointer} is an array"))
        .push(value);
}

use Severity::{Error, Warning};

const PASS: &str = "pass.json";
const TH_STRINGS: &str = "th.lproj/pass.strings";

pub(super) type Mutation = fn(&mut Value);

/// (the mutation, its severity, a phrase of its message); each finding must name pass.json.
pub(super) type Case = (Mutation, Severity, &'static str);

/// Top-level keys, web service, colors, dates, relevance, barcodes and what a live card needs.
const CASES: &[Case] = &[
    (|p| remove(p, "/description"), Error, "description is missing"),
    (|p| remove(p, "/serialNumber"), Error, "serialNumber is missing"),
    (|p| set(p, "/formatVersion", json!(2)), Error, "formatVersion must be the number 1"),
    (|p| set(p, "/formatVersion", json!("1")), Error, "formatVersion must be the number 1"),
    (|p| set(p, "/organizationName", json!(5)), Error, "organizationName must be a string, not a number"),
    (|p| set(p, "/passTypeIdentifier", json!("")), Error, "passTypeIdentifier is empty"),
    (|p| set(p, "/passTypeIdentifier", json!("com.example")), Warning, "does not start with `pass.`"),
    (|p| set(p, "/teamIdentifier", Value::Null), Error, "teamIdentifier must be a string, not null"),
    (|p| set(p, "/serialNumber", json!("42")), Warning, "under 16 characters"),
    (|p| set(p, "/webserviceURL", json!("https://x")), Warning, "did you mean `webServiceURL`"),
    (|p| set(p, "/backgroundColor", json!("rgb(256, 0, 0)")), Error, "above 255"),
    (|p| set(p, "/foregroundColor", json!("white")), Error, "not a CSS color"),
    (|p| set(p, "/labelColor", json!(0)), Error, "labelColor must be a string"),
    (|p| set(p, "/labelColor", json!("#ffe2a0")), Warning, "hex color"),
    (|p| set(p, "/expirationDate", json!("2030-12-31")), Error, "expirationDate \"2030-12-31\" has a date but no time"),
    (|p| set(p, "/expirationDate", json!("2020-01-01T00:00:00Z")), Warning, "shows the pass as expired"),
    (|p| set(p, "/relevantDate", json!("tomorrow")), Error, "is not a W3C date"),
    (|p| set(p, "/relevantDates", json!([{}])), Error, "needs a date, or a startDate and an endDate"),
    (|p| set(p, "/barcodes/0/format", json!("QR")), Error, "barcodes[0].format is \"QR\""),
    (|p| remove(p, "/barcodes/0/message"), Error, "barcodes[0] has no message"),
    (|p| set(p, "/barcodes/0/message", json!(1001)), Error, "barcodes[0].message must be a string"),
    (|p| set(p, "/barcodes/0/message", json!("")), Warning, "scans as nothing"),
    (|p| remove(p, "/barcodes/0/messageEncoding"), Error, "no messageEncoding"),
    (|p| set(p, "/barcodes/0/messageEncoding", json!("latin-1")), Warning, "not an IANA character set"),
    (|p| set(p, "/barcodes/0/message", json!("สมชาย")), Warning, "iso-8859-1 cannot encode"),
    (|p| set(p, "/barcodes/0/altText", json!(5)), Error, "barcodes[0].altText must be a string"),
    (|p| set(p, "/barcodes", json!({})), Error, "barcodes must be an array"),
    (
        |p| {
            let code = p["barcodes"][0].take();
            remove(p, "/barcodes");
            set(p, "/barcode", code);
        },
        Warning,
        "only the legacy barcode key",
    ),
    (
        |p| {
            set(
                p,
                "/barcode",
                json!({ "format": "PKBarcodeFormatCode128", "message": "1", "messageEncoding": "iso-8859-1" }),
            )
        },
        Warning,
        "cannot be Code128",
    ),
    (|p| remove(p, "/barcodes"), Warning, "staff cannot scan"),
    (
        |p| {
            remove(p, "/webServiceURL");
            remove(p, "/authenticationToken");
        },
        Warning,
        "never updates",
    ),
    (|p| remove(p, "/authenticationToken"), Error, "without an authenticationToken"),
    (|p| remove(p, "/webServiceURL"), Error, "without a webServiceURL"),
    (|p| set(p, "/authenticationToken", json!("short")), Error, "at least 16"),
    (|p| set(p, "/webServiceURL", json!("http://wallet.example.com")), Warning, "webServiceURL is http"),
    (|p| set(p, "/webServiceURL", json!("ftp://wallet.example.com")), Error, "not an https URL"),
    (|p| set(p, "/webServiceURL", json!("https://")), Error, "not an https URL"),
    (
        |p| {
            for _ in 0..10 {
                push(p, "/locations", json!({ "latitude": 1, "longitude": 2 }));
            }
        },
        Warning,
        "only the first 10",
    ),
    (|p| set(p, "/locations/0/latitude", json!("13.75")), Error, "locations[0].latitude must be a number"),
    (|p| remove(p, "/locations/0/longitude"), Error, "locations[0] has no longitude"),
    (|p| set(p, "/locations/0/latitude", json!(91)), Error, "outside ±90 degrees"),
    (|p| remove(p, "/beacons/0/proximityUUID"), Error, "no proximityUUID"),
    (|p| set(p, "/beacons/0/proximityUUID", json!("beacon-1")), Error, "is not a UUID"),
    (|p| set(p, "/beacons/0/major", json!(70000)), Error, "from 0 to 65535"),
    (|p| set(p, "/maxDistance", json!("100")), Error, "maxDistance must be a number"),
    (|p| set(p, "/voided", json!("yes")), Error, "voided must be true or false"),
    (|p| set(p, "/sharingProhibited", json!(1)), Error, "sharingProhibited must be true or false"),
    (
        |p| set(p, "/associatedStoreIdentifiers", json!(["123"])),
        Error,
        "associatedStoreIdentifiers[0] must be a number",
    ),
    (|p| set(p, "/appLaunchURL", json!("tessera://card")), Warning, "needs associatedStoreIdentifiers"),
    (|p| set(p, "/groupingIdentifier", json!("trip")), Warning, "only to event tickets"),
    (|p| set(p, "/nfc", json!({ "message": "x".repeat(65), "encryptionPublicKey": "k" })), Error, "at most 64"),
];

#[test]
fn the_valid_pass_has_no_findings() {
    let findings = check(&valid_pass());
    assert!(findings.is_empty(), "{findings:#?}");
}

/// Applies each mutation to the valid pass and asserts its finding: severity, pass.json, phrase.
pub(super) fn assert_cases(cases: &[Case]) {
    for (mutate, severity, phrase) in cases {
        let mut pass = valid_pass();
        mutate(&mut pass);
        let findings = check(&pass);
        let found = findings
            .iter()
            .any(|f| f.severity == *severity && f.file.as_deref() == Some(PASS) && f.message.contains(phrase));
        assert!(found, "no {severity:?} on pass.json containing {phrase:?} in {findings:#?}");
    }
}

#[test]
fn each_top_level_rule_fires_with_its_severity_file_and_phrase() {
    assert_cases(CASES);
}

#[test]
fn localization_gaps_name_the_strings_file() {
    // A key defined in en only: the Thai strings file is at fault.
    let files = BTreeMap::from([
        (
            "en.lproj/pass.strings".to_string(),
            format!("{EN}\n\"bonus.label\" = \"BONUS\"; \"bonus.change\" = \"Bonus %@\";").into_bytes(),
        ),
        ("th.lproj/pass.strings".to_string(), format!("{TH}\n\"bonus.change\" = \"โบนัสเปลี่ยน\";").into_bytes()),
    ]);
    let mut pass = valid_pass();
    set(&mut pass, "/storeCard/backFields/0/label", json!("bonus.label"));
    set(&mut pass, "/storeCard/backFields/0/changeMessage", json!("bonus.change"));
    let mut out = Collector::default();
    let localizations = Localizations::read(&files, &mut out);
    let object = pass.as_object().expect("an object").clone();
    check_pass_json(&object, &localizations, NOW, &mut out);
    let findings = out.finish().findings;
    let on_th = |phrase: &str| {
        findings
            .iter()
            .any(|f| f.severity == Warning && f.file.as_deref() == Some(TH_STRINGS) && f.message.contains(phrase))
    };
    assert!(on_th("has no \"bonus.label\""), "{findings:#?}");
    assert!(on_th("storeCard.backFields[0].label"), "{findings:#?}");
    assert!(on_th("translates the changeMessage \"bonus.change\""), "{findings:#?}");
    assert!(!findings.iter().any(|f| f.file.as_deref() == Some("en.lproj/pass.strings")), "{findings:#?}");
}

#[test]
fn pass_json_that_is_not_an_object_or_not_json() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: [(&[u8], &str); 4] = [
        (b"[]", "is an array, not a JSON object"),
        (b"{\"formatVersion\": 1e400}", "not valid JSON"),
        (deep.as_bytes(), "not valid JSON"),
        (b"{\"a\": \"\xff\"}", "not valid JSON"),
    ];
    for (raw, phrase) in cases {
        let mut out = Collector::default();
        assert!(parse_pass_json(raw, &mut out).is_none());
        let findings = out.finish().findings;
        assert!(
            findings
                .iter()
                .any(|f| f.severity == Error && f.file.as_deref() == Some(PASS) && f.message.contains(phrase)),
            "{phrase}: {findings:#?}"
        );
    }
}

#[test]
fn a_byte_order_mark_is_a_warning_and_the_json_still_reads() {
    let mut out = Collector::default();
    assert!(parse_pass_json(b"\xef\xbb\xbf{}", &mut out).is_some());
    let findings = out.finish().findings;
    assert!(
        findings
            .iter()
            .any(|f| f.severity == Warning && f.file.as_deref() == Some(PASS) && f.message.contains("byte-order mark")),
        "{findings:#?}"
    );
}
