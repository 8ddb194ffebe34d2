//! The pass style (storeCard, coupon, …) and its field dictionaries: keys, values, formats, and how
//! many fields each style shows.

use std::collections::HashSet;

use serde_json::Value;

use super::report::Collector;
use super::shape::{
    Object, PASS_JSON, join, objects, optional_array, optional_bool, optional_enum, optional_object, optional_string,
    warn_unknown_keys,
};
use super::strings::{Localizable, Localizations};
use super::values::{is_currency_code, kind, parse_w3c_datetime, quote};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    BoardingPass,
    Coupon,
    EventTicket,
    Generic,
    StoreCard,
}

const STYLES: [(&str, Style); 5] = [
    ("boardingPass", Style::BoardingPass),
    ("coupon", Style::Coupon),
    ("eventTicket", Style::EventTicket),
    ("generic", Style::Generic),
    ("storeCard", Style::StoreCard),
];

impl Style {
    pub fn key(self) -> &'static str {
        STYLES.iter().find(|(_, s)| *s == self).map(|(k, _)| *k).unwrap_or("?")
    }
}

const GROUPS: [&str; 6] =
    ["headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields", "additionalInfoFields"];
const STYLE_KEYS: [&str; 7] = [
    "headerFields",
    "primaryFields",
    "secondaryFields",
    "auxiliaryFields",
    "backFields",
    "additionalInfoFields",
    "transitType",
];
const FIELD_KEYS: [&str; 15] = [
    "attributedValue",
    "changeMessage",
    "currencyCode",
    "dataDetectorTypes",
    "dateStyle",
    "ignoresTimeZone",
    "isRelative",
    "key",
    "label",
    "numberStyle",
    "row",
    "semantics",
    "textAlignment",
    "timeStyle",
    "value",
];
const TRANSIT_TYPES: [&str; 5] =
    ["PKTransitTypeAir", "PKTransitTypeBoat", "PKTransitTypeBus", "PKTransitTypeGeneric", "PKTransitTypeTrain"];
const DATE_STYLES: [&str; 5] =
    ["PKDateStyleNone", "PKDateStyleShort", "PKDateStyleMedium", "PKDateStyleLong", "PKDateStyleFull"];
const NUMBER_STYLES: [&str; 4] =
    ["PKNumberStyleDecimal", "PKNumberStylePercent", "PKNumberStyleScientific", "PKNumberStyleSpellOut"];
const ALIGNMENTS: [&str; 4] =
    ["PKTextAlignmentLeft", "PKTextAlignmentCenter", "PKTextAlignmentRight", "PKTextAlignmentNatural"];
const DATA_DETECTORS: [&str; 4] = [
    "PKDataDetectorTypePhoneNumber",
    "PKDataDetectorTypeLink",
    "PKDataDetectorTypeAddress",
    "PKDataDetectorTypeCalendarEvent",
];

/// What the fields tell the rest of the inspection.
#[derive(Debug, Default)]
pub struct FieldSummary {
    /// The style, when exactly one is present.
    pub style: Option<Style>,
    pub localizable: Vec<Localizable>,
    pub has_change_message: bool,
    pub primary_fields: usize,
    /// Where the primary fields without a changeMessage are (`storeCard.primaryFields[0]`).
    pub silent_primary_fields: Vec<String>,
}

/// Checks the style key and every field in it.
pub fn check_fields(pass: &Object, localizations: &Localizations, out: &mut Collector) -> FieldSummary {
    let present: Vec<(&str, Style)> = STYLES.iter().copied().filter(|(k, _)| pass.contains_key(*k)).collect();
    let mut summary = FieldSummary::default();
    if present.len() == 1 {
        summary.style = present.first().map(|(_, s)| *s);
    } else {
        let names: Vec<&str> = STYLES.iter().map(|(k, _)| *k).collect();
        let found: Vec<&str> = present.iter().map(|(k, _)| *k).collect();
        out.error(
            PASS_JSON,
            format!(
                "needs exactly one style key ({}); found {}{}",
                names.join(", "),
                found.len(),
                if found.is_empty() { String::new() } else { format!(" ({})", found.join(", ")) }
            ),
        );
    }
    let mut keys = HashSet::new();
    for (key, style) in present {
        let Some(body) = optional_object(pass, key, "", out) else { continue };
        check_style_body(body, key, style, out);
        for group in GROUPS {
            let at = join(key, group);
            let Some(items) = optional_array(body, group, key, out) else { continue };
            let fields = objects(items, &at, out);
            if group == "primaryFields" {
                summary.primary_fields = fields.len();
            }
            for (path, field) in fields {
                if group == "primaryFields" && !field.contains_key("changeMessage") {
                    summary.silent_primary_fields.push(path.clone());
                }
                let context = FieldContext { style, group, path: &path };
                check_field(field, &context, &mut keys, localizations, &mut summary, out);
            }
        }
        check_counts(body, key, style, out);
    }
    summary
}

fn check_style_body(body: &Object, key: &str, style: Style, out: &mut Collector) {
    warn_unknown_keys(body, &STYLE_KEYS, key, out);
    if style == Style::BoardingPass {
        if !body.contains_key("transitType") {
            out.error(
                PASS_JSON,
                "boardingPass.transitType is missing; a boarding pass needs one (PKTransitTypeAir, …)",
            );
        }
        optional_enum(body, "transitType", &TRANSIT_TYPES, key, out);
    } else if body.contains_key("transitType") {
        out.warn(PASS_JSON, format!("{key}.transitType applies only to a boardingPass; Wallet ignores it here"));
    }
}

/// How many fields of each group a style shows (Apple's Wallet guide and PassFields reference).
/// Wallet accepts more but never shows them, so going over is a warning.
struct Limits {
    header: usize,
    primary: usize,
    secondary: usize,
    auxiliary: usize,
    /// Coupons, store cards and generic passes share four places between the two rows.
    secondary_plus_auxiliary: Option<usize>,
}

fn limits(style: Style) -> Limits {
    match style {
        Style::StoreCard | Style::Coupon | Style::Generic => {
            Limits { header: 3, primary: 1, secondary: 4, auxiliary: 4, secondary_plus_auxiliary: Some(4) }
        }
        Style::EventTicket => {
            Limits { header: 3, primary: 3, secondary: 4, auxiliary: 4, secondary_plus_auxiliary: None }
        }
        Style::BoardingPass => {
            Limits { header: 3, primary: 2, secondary: 4, auxiliary: 5, secondary_plus_auxiliary: None }
        }
    }
}

fn check_counts(body: &Object, key: &str, style: Style, out: &mut Collector) {
    let count = |group: &str| body.get(group).and_then(Value::as_array).map_or(0, Vec::len);
    let limits = limits(style);
    for (group, limit) in [
        ("headerFields", limits.header),
        ("primaryFields", limits.primary),
        ("secondaryFields", limits.secondary),
        ("auxiliaryFields", limits.auxiliary),
    ] {
        let n = count(group);
        if n > limit {
            out.warn(
                PASS_JSON,
                format!("{key}.{group} has {n} fields; a {key} shows at most {limit}, and the rest never appear"),
            );
        }
    }
    let both = count("secondaryFields") + count("auxiliaryFields");
    if let Some(limit) = limits.secondary_plus_auxiliary
        && both > limit
    {
        out.warn(
            PASS_JSON,
            format!(
                "{key} has {both} secondary and auxiliary fields; a {key} shows at most {limit} together, and the rest never appear"
            ),
        );
    }
}

struct FieldContext<'a> {
    style: Style,
    group: &'a str,
    path: &'a str,
}

fn check_field(
    field: &Object,
    context: &FieldContext<'_>,
    keys: &mut HashSet<String>,
    localizations: &Localizations,
    summary: &mut FieldSummary,
    out: &mut Collector,
) {
    let at = context.path;
    warn_unknown_keys(field, &FIELD_KEYS, at, out);
    match optional_string(field, "key", at, out) {
        None if !field.contains_key("key") => out.error(PASS_JSON, format!("{at} has no key; every field needs one")),
        Some("") => out.error(PASS_JSON, format!("{at}.key is empty")),
        Some(key) if !keys.insert(key.to_string()) => out.error(
            PASS_JSON,
            format!("{at}: the field key {} is used twice; keys must be unique in the whole pass", quote(key)),
        ),
        _ => {}
    }
    check_texts(field, at, localizations, summary, out);
    check_formats(field, at, out);
    check_layout(field, context, out);
}

/// value, label, attributedValue and changeMessage: their types, and the strings Wallet localizes.
fn check_texts(
    field: &Object,
    at: &str,
    localizations: &Localizations,
    summary: &mut FieldSummary,
    out: &mut Collector,
) {
    let localizable = |key: &str, text: &str, summary: &mut FieldSummary| {
        let is_change_message = key == "changeMessage";
        summary.localizable.push(Localizable { text: text.to_string(), at: join(at, key), is_change_message });
    };
    match field.get("value") {
        None => out.error(PASS_JSON, format!("{at} has no value; every field needs one")),
        Some(Value::String(text)) => localizable("value", text, summary),
        Some(Value::Number(_)) => {}
        Some(other) => out.error(PASS_JSON, format!("{at}.value must be a string or a number, not {}", kind(other))),
    }
    if let Some(label) = optional_string(field, "label", at, out) {
        localizable("label", label, summary);
    }
    match field.get("attributedValue") {
        None | Some(Value::Number(_)) => {}
        Some(Value::String(text)) => localizable("attributedValue", text, summary),
        Some(other) => {
            out.error(PASS_JSON, format!("{at}.attributedValue must be a string or a number, not {}", kind(other)))
        }
    }
    if let Some(message) = optional_string(field, "changeMessage", at, out) {
        summary.has_change_message = true;
        localizable("changeMessage", message, summary);
        // A key the strings files define is checked per translation; literal text must carry %@ itself.
        if !localizations.defines(message) && !message.contains("%@") {
            out.warn(
                PASS_JSON,
                format!(
                    "{at}.changeMessage {} has no %@; the lock screen shows a generic message instead of the new value",
                    quote(message)
                ),
            );
        }
    }
}

/// Date and number formatting: the styles and what they need of the value.
fn check_formats(field: &Object, at: &str, out: &mut Collector) {
    let date_style = optional_enum(field, "dateStyle", &DATE_STYLES, at, out);
    let time_style = optional_enum(field, "timeStyle", &DATE_STYLES, at, out);
    optional_bool(field, "ignoresTimeZone", at, out);
    optional_bool(field, "isRelative", at, out);
    let value = field.get("value");
    if date_style.is_some() || time_style.is_some() {
        match value {
            Some(Value::String(text)) => {
                if let Err(problem) = parse_w3c_datetime(text) {
                    out.error(
                        PASS_JSON,
                        format!(
                            "{at} has a date or time style, so its value must be a date, but {} {problem}",
                            quote(text)
                        ),
                    );
                }
            }
            Some(other) => out.error(
                PASS_JSON,
                format!("{at} has a date or time style, so its value must be a W3C date string, not {}", kind(other)),
            ),
            None => {}
        }
    }
    let numeric = value.is_some_and(Value::is_number);
    if optional_enum(field, "numberStyle", &NUMBER_STYLES, at, out).is_some() && !numeric && value.is_some() {
        out.warn(
            PASS_JSON,
            format!("{at}.numberStyle applies only to number values; Wallet shows this value as it is"),
        );
    }
    if let Some(code) = optional_string(field, "currencyCode", at, out) {
        if !is_currency_code(code) {
            out.error(
                PASS_JSON,
                format!("{at}.currencyCode {} is not an ISO 4217 code (three capital letters)", quote(code)),
            );
        } else if !numeric && value.is_some() {
            out.warn(
                PASS_JSON,
                format!("{at}.currencyCode applies only to number values; Wallet shows this value as it is"),
            );
        }
    }
}

/// Alignment, data detectors, semantics and rows: where each is allowed.
fn check_layout(field: &Object, context: &FieldContext<'_>, out: &mut Collector) {
    let at = context.path;
    let front = !matches!(context.group, "backFields" | "additionalInfoFields");
    if optional_enum(field, "textAlignment", &ALIGNMENTS, at, out).is_some()
        && matches!(context.group, "primaryFields" | "backFields")
    {
        out.warn(PASS_JSON, format!("{at}.textAlignment is not allowed in {}; Wallet ignores it", context.group));
    }
    if let Some(detectors) = optional_array(field, "dataDetectorTypes", at, out) {
        for (i, detector) in detectors.iter().enumerate() {
            if !detector.as_str().is_some_and(|d| DATA_DETECTORS.contains(&d)) {
                out.error(
                    PASS_JSON,
                    format!("{at}.dataDetectorTypes[{i}] must be one of {}", DATA_DETECTORS.join(", ")),
                );
            }
        }
        if front {
            out.warn(PASS_JSON, format!("{at}.dataDetectorTypes applies only to back fields; Wallet ignores it here"));
        }
    }
    optional_object(field, "semantics", at, out);
    if field.contains_key("row") {
        let is_row = field.get("row").and_then(Value::as_u64).is_some_and(|r| r <= 1);
        if !is_row {
            out.error(PASS_JSON, format!("{at}.row must be 0 or 1"));
        } else if context.group != "auxiliaryFields" || context.style != Style::EventTicket {
            out.warn(
                PASS_JSON,
                format!("{at}.row applies only to an eventTicket's auxiliaryFields; Wallet ignores it here"),
            );
        }
    }
}
