//! When and where a pass is relevant: dates, locations, beacons, NFC.

use serde_json::Value;

use super::report::Collector;
use super::shape::{
    Object, PASS_JSON, join, objects, optional_array, optional_bool, optional_date, optional_number, optional_object,
    optional_string, warn_unknown_keys,
};
use super::values::{is_uuid, quote};

/// Wallet watches at most this many locations per pass.
const MAX_LOCATIONS: usize = 10;
/// An NFC payload is at most this many bytes.
const MAX_NFC_MESSAGE: usize = 64;

pub fn check_relevance(pass: &Object, now: i64, out: &mut Collector) {
    if let Some(expires) = optional_date(pass, "expirationDate", "", out)
        && expires < now
    {
        out.warn(PASS_JSON, "expirationDate is in the past; Wallet shows the pass as expired");
    }
    optional_date(pass, "relevantDate", "", out);
    check_relevant_dates(pass, out);
    check_locations(pass, out);
    check_beacons(pass, out);
    if let Some(distance) = optional_number(pass, "maxDistance", "", out)
        && distance <= 0.0
    {
        out.warn(PASS_JSON, "maxDistance is not a positive number of meters; the pass is never relevant by location");
    }
    check_nfc(pass, out);
}

fn check_relevant_dates(pass: &Object, out: &mut Collector) {
    let Some(items) = optional_array(pass, "relevantDates", "", out) else { return };
    for (at, entry) in objects(items, "relevantDates", out) {
        warn_unknown_keys(entry, &["date", "startDate", "endDate"], &at, out);
        optional_date(entry, "date", &at, out);
        let start = optional_date(entry, "startDate", &at, out);
        let end = optional_date(entry, "endDate", &at, out);
        let has = |key: &str| entry.contains_key(key);
        let dated = has("date") || (has("startDate") && has("endDate"));
        if !dated {
            out.error(PASS_JSON, format!("{at} needs a date, or a startDate and an endDate"));
        }
        if let (Some(start), Some(end)) = (start, end)
            && end < start
        {
            out.error(PASS_JSON, format!("{at} ends before it starts"));
        }
    }
}

fn check_locations(pass: &Object, out: &mut Collector) {
    let Some(items) = optional_array(pass, "locations", "", out) else { return };
    if items.len() > MAX_LOCATIONS {
        out.warn(
            PASS_JSON,
            format!("locations has {} entries; Wallet watches only the first {MAX_LOCATIONS}", items.len()),
        );
    }
    for (at, location) in objects(items, "locations", out) {
        warn_unknown_keys(location, &["latitude", "longitude", "altitude", "relevantText"], &at, out);
        for (key, bound) in [("latitude", 90.0), ("longitude", 180.0)] {
            if !location.contains_key(key) {
                out.error(PASS_JSON, format!("{at} has no {key}"));
            }
            if let Some(degrees) = optional_number(location, key, &at, out)
                && !(-bound..=bound).contains(&degrees)
            {
                out.error(PASS_JSON, format!("{at}.{key} is {degrees}, outside ±{bound} degrees"));
            }
        }
        optional_number(location, "altitude", &at, out);
        optional_string(location, "relevantText", &at, out);
    }
}

fn check_beacons(pass: &Object, out: &mut Collector) {
    let Some(items) = optional_array(pass, "beacons", "", out) else { return };
    for (at, beacon) in objects(items, "beacons", out) {
        warn_unknown_keys(beacon, &["proximityUUID", "major", "minor", "relevantText"], &at, out);
        match optional_string(beacon, "proximityUUID", &at, out) {
            None if !beacon.contains_key("proximityUUID") => out.error(PASS_JSON, format!("{at} has no proximityUUID")),
            Some(uuid) if !is_uuid(uuid) => {
                out.error(PASS_JSON, format!("{at}.proximityUUID {} is not a UUID", quote(uuid)))
            }
            _ => {}
        }
        for key in ["major", "minor"] {
            let Some(value) = beacon.get(key) else { continue };
            if value.as_u64().is_none_or(|v| v > u64::from(u16::MAX)) {
                out.error(PASS_JSON, format!("{} must be a whole number from 0 to 65535", join(&at, key)));
            }
        }
        optional_string(beacon, "relevantText", &at, out);
    }
}

fn check_nfc(pass: &Object, out: &mut Collector) {
    let Some(nfc) = optional_object(pass, "nfc", "", out) else { return };
    warn_unknown_keys(nfc, &["message", "encryptionPublicKey", "requiresAuthentication"], "nfc", out);
    match optional_string(nfc, "message", "nfc", out) {
        None if !nfc.contains_key("message") => out.error(PASS_JSON, "nfc has no message"),
        Some(message) if message.len() > MAX_NFC_MESSAGE => out.error(
            PASS_JSON,
            format!("nfc.message is {} bytes; Wallet carries at most {MAX_NFC_MESSAGE}", message.len()),
        ),
        _ => {}
    }
    optional_string(nfc, "encryptionPublicKey", "nfc", out);
    optional_bool(nfc, "requiresAuthentication", "nfc", out);
    out.note("the pass has an nfc payload; Wallet uses it only if the pass type has Apple's NFC entitlement");
}

/// Whether the pass carries an NFC payload (then a barcode is not the only way to scan it).
pub fn has_nfc(pass: &Object) -> bool {
    pass.get("nfc").is_some_and(Value::is_object)
}
