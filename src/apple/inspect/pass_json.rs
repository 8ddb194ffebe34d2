//! pass.json: parsing, the top-level keys of Apple's Pass dictionary, and what a live loyalty card
//! needs to be useful. Fields, barcodes and relevance have their own modules.

use serde_json::Value;

use super::barcodes::check_barcodes;
use super::fields::{FieldSummary, Style, check_fields};
use super::relevance::{check_relevance, has_nfc};
use super::report::Collector;
use super::shape::{
    Object, PASS_JSON, optional_array, optional_bool, optional_numbers, optional_object, optional_string,
    required_string, warn_unknown_keys,
};
use super::strings::{Localizable, Localizations};
use super::values::{ColorProblem, check_rgb, kind, quote};

/// Every top-level key Apple's Pass reference defines (iOS 18 poster event tickets included).
const TOP_LEVEL_KEYS: &[&str] = &[
    "accessibilityURL",
    "addOnURL",
    "appLaunchURL",
    "associatedStoreIdentifiers",
    "authenticationToken",
    "auxiliaryStoreIdentifiers",
    "backgroundColor",
    "bagPolicyURL",
    "barcode",
    "barcodes",
    "beacons",
    "boardingPass",
    "contactVenueEmail",
    "contactVenuePhoneNumber",
    "contactVenueWebsite",
    "coupon",
    "description",
    "directionsInformationURL",
    "eventTicket",
    "expirationDate",
    "footerBackgroundColor",
    "foregroundColor",
    "formatVersion",
    "generic",
    "groupingIdentifier",
    "labelColor",
    "locations",
    "logoText",
    "maxDistance",
    "merchandiseURL",
    "nfc",
    "orderFoodURL",
    "organizationName",
    "parkingInformationURL",
    "passTypeIdentifier",
    "preferredStyleSchemes",
    "purchaseParkingURL",
    "relevantDate",
    "relevantDates",
    "sellURL",
    "semantics",
    "serialNumber",
    "sharingProhibited",
    "storeCard",
    "suppressHeaderDarkening",
    "suppressStripShine",
    "teamIdentifier",
    "transferURL",
    "transitInformationURL",
    "upcomingPassInformation",
    "useAutomaticColor",
    "userInfo",
    "voided",
    "webServiceURL",
];
const COLORS: [&str; 4] = ["backgroundColor", "foregroundColor", "labelColor", "footerBackgroundColor"];
const FLAGS: [&str; 5] =
    ["voided", "sharingProhibited", "suppressStripShine", "suppressHeaderDarkening", "useAutomaticColor"];
const TEXTS: [&str; 17] = [
    "logoText",
    "groupingIdentifier",
    "appLaunchURL",
    "accessibilityURL",
    "addOnURL",
    "bagPolicyURL",
    "contactVenueEmail",
    "contactVenuePhoneNumber",
    "contactVenueWebsite",
    "directionsInformationURL",
    "merchandiseURL",
    "orderFoodURL",
    "parkingInformationURL",
    "purchaseParkingURL",
    "sellURL",
    "transferURL",
    "transitInformationURL",
];
/// Apple's minimum for the token a device sends back to the web service.
const MIN_TOKEN_LEN: usize = 16;

/// pass.json as a JSON object, or `None` after reporting why it is not one.
pub fn parse_pass_json(raw: &[u8], out: &mut Collector) -> Option<Object> {
    let raw = match raw.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => {
            out.warn(PASS_JSON, "starts with a UTF-8 byte-order mark; JSON has none, and strict readers refuse it");
            rest
        }
        None => raw,
    };
    // serde_json refuses nesting deeper than 128 and numbers beyond f64, so neither can exhaust us.
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(pass)) => Some(pass),
        Ok(other) => {
            out.error(PASS_JSON, format!("is {}, not a JSON object", kind(&other)));
            None
        }
        Err(e) => {
            out.error(PASS_JSON, format!("is not valid JSON: {e}"));
            None
        }
    }
}

/// Checks every rule of pass.json a file can break; answers the pass style when there is exactly one.
pub fn check_pass_json(pass: &Object, localizations: &Localizations, now: i64, out: &mut Collector) -> Option<Style> {
    warn_unknown_keys(pass, TOP_LEVEL_KEYS, "", out);
    check_identity(pass, out);
    check_web_service(pass, out);
    check_colors(pass, out);
    check_other_keys(pass, out);
    check_relevance(pass, now, out);
    let scannable = check_barcodes(pass, out);
    let mut summary = check_fields(pass, localizations, out);
    if let Some(grouping) = pass.get("groupingIdentifier")
        && grouping.is_string()
        && !matches!(summary.style, Some(Style::EventTicket | Style::BoardingPass) | None)
    {
        out.warn(PASS_JSON, "groupingIdentifier applies only to event tickets and boarding passes; Wallet ignores it");
    }
    for key in ["description", "organizationName", "logoText"] {
        if let Some(text) = pass.get(key).and_then(Value::as_str) {
            summary.localizable.push(Localizable { text: text.into(), at: key.into(), is_change_message: false });
        }
    }
    localizations.check_uses(&summary.localizable, out);
    check_live_card(pass, &summary, scannable, out);
    summary.style
}

/// formatVersion and the identifiers Wallet requires.
fn check_identity(pass: &Object, out: &mut Collector) {
    match pass.get("formatVersion") {
        Some(v) if v.as_f64() == Some(1.0) => {}
        Some(_) => out.error(PASS_JSON, "formatVersion must be the number 1"),
        None => out.error(PASS_JSON, "formatVersion is missing; it must be the number 1"),
    }
    for key in ["passTypeIdentifier", "serialNumber", "teamIdentifier", "organizationName", "description"] {
        required_string(pass, key, "", out);
    }
    if let Some(serial) = pass.get("serialNumber").and_then(Value::as_str)
        && !serial.is_empty()
        && serial.chars().count() < 16
    {
        out.warn(
            PASS_JSON,
            format!(
                "serialNumber is {} characters; passes with serials under 16 characters have failed to download",
                serial.chars().count()
            ),
        );
    }
    if let Some(id) = pass.get("passTypeIdentifier").and_then(Value::as_str)
        && !id.is_empty()
        && !id.starts_with("pass.")
    {
        out.warn(
            PASS_JSON,
            format!("passTypeIdentifier {} does not start with `pass.`, as Apple's always do", quote(id)),
        );
    }
}

fn check_web_service(pass: &Object, out: &mut Collector) {
    let url = optional_string(pass, "webServiceURL", "", out);
    let token = optional_string(pass, "authenticationToken", "", out);
    match (pass.contains_key("webServiceURL"), pass.contains_key("authenticationToken")) {
        (true, false) => out.error(PASS_JSON, "webServiceURL is set without an authenticationToken"),
        (false, true) => out.error(PASS_JSON, "authenticationToken is set without a webServiceURL"),
        _ => {}
    }
    if let Some(token) = token
        && token.chars().count() < MIN_TOKEN_LEN
    {
        out.error(
            PASS_JSON,
            format!(
                "authenticationToken is {} characters; Wallet needs at least {MIN_TOKEN_LEN}",
                token.chars().count()
            ),
        );
    }
    let Some(url) = url else { return };
    let parsed = url::Url::parse(url).ok().filter(|u| u.host_str().is_some_and(|h| !h.is_empty()));
    match parsed.as_ref().map(url::Url::scheme) {
        Some("https") => {}
        Some("http") => out.warn(
            PASS_JSON,
            "webServiceURL is http; iPhones only call https unless Developer → Allow HTTP Services is on",
        ),
        _ => out.error(PASS_JSON, format!("webServiceURL {} is not an https URL", quote(url))),
    }
}

fn check_colors(pass: &Object, out: &mut Collector) {
    for key in COLORS {
        let Some(color) = optional_string(pass, key, "", out) else { continue };
        match check_rgb(color) {
            Ok(()) => {}
            Err(ColorProblem::Hex) => out.warn(
                PASS_JSON,
                format!(
                    "{key} {} is a hex color; Apple documents rgb(r, g, b), and Wallet may ignore it",
                    quote(color)
                ),
            ),
            Err(ColorProblem::OutOfRange) => {
                out.error(PASS_JSON, format!("{key} {} has a component above 255", quote(color)))
            }
            Err(ColorProblem::Malformed) => {
                out.error(PASS_JSON, format!("{key} {} is not a CSS color rgb(r, g, b) with 0–255", quote(color)))
            }
        }
    }
}

/// The remaining typed keys: flags, texts, App Store identifiers, semantics.
fn check_other_keys(pass: &Object, out: &mut Collector) {
    for key in FLAGS {
        optional_bool(pass, key, "", out);
    }
    for key in TEXTS {
        optional_string(pass, key, "", out);
    }
    let apps = optional_numbers(pass, "associatedStoreIdentifiers", "", out);
    optional_numbers(pass, "auxiliaryStoreIdentifiers", "", out);
    if pass.contains_key("appLaunchURL") && apps.unwrap_or(0) == 0 {
        out.warn(PASS_JSON, "appLaunchURL needs associatedStoreIdentifiers; without an app to open, Wallet ignores it");
    }
    optional_object(pass, "semantics", "", out);
    if let Some(schemes) = optional_array(pass, "preferredStyleSchemes", "", out)
        && !schemes.iter().all(Value::is_string)
    {
        out.error(PASS_JSON, "preferredStyleSchemes must be an array of strings");
    }
}

/// What a live loyalty card needs to be worth adding: updates, a lock-screen message, a code to scan.
fn check_live_card(pass: &Object, summary: &FieldSummary, scannable: bool, out: &mut Collector) {
    if pass.get("voided") == Some(&Value::Bool(true)) {
        out.note("the pass is voided; Wallet shows it as no longer valid");
    }
    if !pass.contains_key("webServiceURL") {
        out.warn(PASS_JSON, "has no webServiceURL, so the card never updates once it is in Wallet");
    }
    if summary.style.is_some() && !summary.has_change_message {
        out.warn(PASS_JSON, "no field has a changeMessage, so the lock screen says nothing when the balance changes");
    } else if summary.style == Some(Style::StoreCard) {
        for at in &summary.silent_primary_fields {
            out.warn(
                PASS_JSON,
                format!(
                    "{at} (where Wallet shows the balance) has no changeMessage, so a balance change updates the card silently; add one with %@, for example \"You now have %@ points\""
                ),
            );
        }
    }
    let no_codes =
        pass.get("barcodes").and_then(Value::as_array).is_none_or(Vec::is_empty) && !pass.contains_key("barcode");
    if no_codes && !scannable && !has_nfc(pass) {
        out.warn(PASS_JSON, "has no barcode, so staff cannot scan the card");
    }
    if summary.style == Some(Style::StoreCard) && summary.primary_fields == 0 {
        out.warn(
            PASS_JSON,
            "the storeCard has no primary field, so the balance never shows in large type on the front",
        );
    }
}
