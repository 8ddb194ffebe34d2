//! The fields that change between two renders of one pass without a changeMessage that shows the new
//! value. `doctor` renders the program's sample member twice, differing only in points and then only in
//! tier, and names them: on the phone such a change updates the card without a word.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// The groups on the front of the card, where a member sees a change. The back (perks, terms) follows
/// the tier too, but Wallet is not expected to announce a list of perks.
const FRONT: [&str; 4] = ["headerFields", "primaryFields", "secondaryFields", "auxiliaryFields"];
const STYLES: [&str; 5] = ["boardingPass", "coupon", "eventTicket", "generic", "storeCard"];

/// A field whose value changed with no lock-screen message carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilentField {
    /// `storeCard.primaryFields[0]`.
    pub at: String,
    pub key: String,
    pub why: Silence,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Silence {
    /// No changeMessage at all: the card changes without a word.
    NoChangeMessage,
    /// A changeMessage without `%@` (in `language`'s strings, or as literal text when `None`): Wallet
    /// shows a message, but not the new value.
    NoPlaceholder { message: String, language: Option<String> },
}

/// The front fields of `after` whose value differs from the same key's in `before` and whose
/// changeMessage does not contain `%@`; `strings` are the program's translations (language → key →
/// text), so a changeMessage that is a strings key is checked in every language that defines it.
pub fn silent_changes(
    before: &Value,
    after: &Value,
    strings: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<SilentField> {
    let old: HashMap<&str, &Value> = front_fields(before).map(|(_, field)| field).filter_map(keyed).collect();
    let mut silent = Vec::new();
    for (at, field) in front_fields(after) {
        let Some((key, now)) = keyed(field) else { continue };
        let Some(was) = old.get(key) else { continue };
        let shown = |f: &Value| (f.get("value").cloned(), f.get("attributedValue").cloned());
        if shown(was) == shown(now) {
            continue;
        }
        for why in silences(now.get("changeMessage"), strings) {
            silent.push(SilentField { at: at.clone(), key: key.to_string(), why });
        }
    }
    silent
}

/// Every front field with where it is: (`storeCard.primaryFields[0]`, the field).
fn front_fields(pass: &Value) -> impl Iterator<Item = (String, &Value)> {
    STYLES.iter().filter_map(move |style| Some((*style, pass.get(style)?))).flat_map(|(style, body)| {
        FRONT.iter().filter_map(move |group| Some((group, body.get(group)?.as_array()?))).flat_map(
            move |(group, fields)| fields.iter().enumerate().map(move |(i, f)| (format!("{style}.{group}[{i}]"), f)),
        )
    })
}

fn keyed(field: &Value) -> Option<(&str, &Value)> {
    Some((field.get("key")?.as_str()?, field))
}

/// What is wrong with a changed field's changeMessage; nothing when it shows the new value.
fn silences(message: Option<&Value>, strings: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Silence> {
    let Some(message) = message.and_then(Value::as_str) else { return vec![Silence::NoChangeMessage] };
    let translated: Vec<(&String, &String)> =
        strings.iter().filter_map(|(language, entries)| Some((language, entries.get(message)?))).collect();
    if translated.is_empty() {
        return match message.contains("%@") {
            true => Vec::new(),
            false => vec![Silence::NoPlaceholder { message: message.to_string(), language: None }],
        };
    }
    translated
        .into_iter()
        .filter(|(_, text)| !text.contains("%@"))
        .map(|(language, _)| Silence::NoPlaceholder { message: message.to_string(), language: Some(language.clone()) })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn card(points: i64, tier: &str, points_message: Option<&str>, tier_message: &str) -> Value {
        let mut primary = json!({"key": "points", "label": "points.label", "value": points});
        if let Some(m) = points_message {
            primary["changeMessage"] = json!(m);
        }
        json!({"storeCard": {
            "primaryFields": [primary],
            "secondaryFields": [
                {"key": "name", "value": "Somchai"},
                {"key": "tier", "value": format!("tier.{tier}"), "changeMessage": tier_message}
            ],
            "backFields": [{"key": "perk_1", "value": format!("perk.{tier}")}]
        }})
    }

    fn strings(pairs: &[(&str, &[(&str, &str)])]) -> BTreeMap<String, BTreeMap<String, String>> {
        pairs
            .iter()
            .map(|(l, e)| (l.to_string(), e.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
            .collect()
    }

    #[test]
    fn a_changed_field_without_a_change_message_is_named() {
        let strings = strings(&[("en", &[("tier.change", "Your tier is now %@")])]);
        let found = silent_changes(
            &card(1250, "gold", None, "tier.change"),
            &card(1300, "gold", None, "tier.change"),
            &strings,
        );
        assert_eq!(
            found,
            vec![SilentField {
                at: "storeCard.primaryFields[0]".into(),
                key: "points".into(),
                why: Silence::NoChangeMessage
            }]
        );
    }

    #[test]
    fn a_change_message_is_checked_in_every_language_that_translates_it() {
        let strings = strings(&[
            ("en", &[("points.change", "You now have %@ points"), ("tier.change", "Your tier is now %@")]),
            ("th", &[("points.change", "You now have %@ points"), ("tier.change", "ระดับเปลี่ยนแล้ว")]),
        ]);
        let before = card(1250, "silver", Some("points.change"), "tier.change");
        let after = card(1250, "gold", Some("points.change"), "tier.change");
        let found = silent_changes(&before, &after, &strings);
        let why = Silence::NoPlaceholder { message: "tier.change".into(), language: Some("th".into()) };
        assert_eq!(found, vec![SilentField { at: "storeCard.secondaryFields[1]".into(), key: "tier".into(), why }]);
        // Literal text is checked as it is; the back of the card (perks follow the tier) is not announced.
        let found = silent_changes(&before, &card(1250, "gold", Some("points.change"), "Tier changed"), &strings);
        let why = Silence::NoPlaceholder { message: "Tier changed".into(), language: None };
        assert_eq!(found, vec![SilentField { at: "storeCard.secondaryFields[1]".into(), key: "tier".into(), why }]);
        let quiet = card(1250, "gold", Some("points.change"), "Now %@");
        assert_eq!(silent_changes(&before, &quiet, &strings), vec![]);
        assert_eq!(silent_changes(&before, &before, &strings), vec![]);
    }
}
