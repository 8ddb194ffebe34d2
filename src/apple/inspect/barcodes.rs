//! `barcodes` and the legacy `barcode`: what staff scan at the till.

use super::report::Collector;
use super::shape::{Object, PASS_JSON, objects, optional_array, optional_object, optional_string, warn_unknown_keys};
use super::values::{is_known_charset, quote};

const FORMATS: [&str; 4] =
    ["PKBarcodeFormatQR", "PKBarcodeFormatPDF417", "PKBarcodeFormatAztec", "PKBarcodeFormatCode128"];
const KEYS: [&str; 4] = ["format", "message", "messageEncoding", "altText"];

/// Checks every barcode; answers whether at least one is scannable (a known format and a message).
pub fn check_barcodes(pass: &Object, out: &mut Collector) -> bool {
    let mut scannable = false;
    if let Some(items) = optional_array(pass, "barcodes", "", out) {
        for (at, barcode) in objects(items, "barcodes", out) {
            scannable |= check_barcode(barcode, &at, out);
        }
    }
    if let Some(legacy) = optional_object(pass, "barcode", "", out) {
        scannable |= check_barcode(legacy, "barcode", out);
        if legacy.get("format").and_then(|f| f.as_str()) == Some("PKBarcodeFormatCode128") {
            out.warn(PASS_JSON, "barcode (the legacy key) cannot be Code128; iOS 8 and earlier show no code");
        }
        if !pass.contains_key("barcodes") {
            out.warn(
                PASS_JSON,
                "has only the legacy barcode key, deprecated since iOS 9; add a barcodes array (keep barcode for older phones)",
            );
        }
    }
    scannable
}

fn check_barcode(barcode: &Object, at: &str, out: &mut Collector) -> bool {
    warn_unknown_keys(barcode, &KEYS, at, out);
    let format = optional_string(barcode, "format", at, out);
    match format {
        None if !barcode.contains_key("format") => out.error(PASS_JSON, format!("{at} has no format")),
        Some(f) if !FORMATS.contains(&f) => {
            out.error(PASS_JSON, format!("{at}.format is {}; it must be one of {}", quote(f), FORMATS.join(", ")))
        }
        _ => {}
    }
    let message = optional_string(barcode, "message", at, out);
    match message {
        None if !barcode.contains_key("message") => out.error(PASS_JSON, format!("{at} has no message")),
        Some("") => out.warn(PASS_JSON, format!("{at}.message is empty; the code scans as nothing")),
        _ => {}
    }
    let encoding = optional_string(barcode, "messageEncoding", at, out);
    match encoding {
        None if !barcode.contains_key("messageEncoding") => {
            out.error(PASS_JSON, format!("{at} has no messageEncoding (iso-8859-1 is usual)"))
        }
        Some(name) if !is_known_charset(name) => out.warn(
            PASS_JSON,
            format!("{at}.messageEncoding {} is not an IANA character set name; iso-8859-1 is usual", quote(name)),
        ),
        _ => {}
    }
    optional_string(barcode, "altText", at, out);
    if let Some(text) = message {
        check_encodable(text, format, encoding, at, out);
    }
    matches!(format, Some(f) if FORMATS.contains(&f)) && message.is_some_and(|m| !m.is_empty())
}

/// Characters the code or its encoding cannot carry: Wallet then draws no code at all.
fn check_encodable(message: &str, format: Option<&str>, encoding: Option<&str>, at: &str, out: &mut Collector) {
    if format == Some("PKBarcodeFormatCode128") && !message.is_ascii() {
        out.warn(PASS_JSON, format!("{at}.message has characters Code 128 cannot encode (it carries ASCII only)"));
    } else if encoding.is_some_and(|e| e.eq_ignore_ascii_case("iso-8859-1"))
        && message.chars().any(|c| u32::from(c) > 0xff)
    {
        out.warn(
            PASS_JSON,
            format!("{at}.message has characters iso-8859-1 cannot encode; use messageEncoding utf-8 or drop them"),
        );
    }
}
