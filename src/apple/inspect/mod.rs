//! `tessera inspect`: validates a .pkpass the way Wallet would and names the file at fault.
//!
//! Errors are what makes an iPhone refuse the pass; warnings are what works but is wrong or risky
//! (a development certificate chain, an image of the wrong size, an http webServiceURL).
//!
//! The archive is untrusted: it is read from its raw bytes through caps (see `zip_layout` and `archive`).

mod archive;
mod bundle;
mod der;
mod manifest;
mod report;
mod signature;
mod strings;
mod strings_syntax;
mod values;
mod zip_layout;

use std::collections::BTreeMap;

use super::{image_points, image_scale, png_size};

pub use report::{Finding, Report, Severity};
pub use signature::wwdr_generation;

use archive::Archive;
use report::Collector;
use strings::{Localizable, Localizations};

pub fn inspect(bytes: &[u8]) -> Report {
    inspect_at(bytes, crate::time_fmt::now_unix())
}

/// `inspect` as of `now` (Unix seconds), which certificate validity is compared with.
fn inspect_at(bytes: &[u8], now: i64) -> Report {
    let mut out = Collector::default();
    if let Some(archive) = archive::read_archive(bytes, &mut out) {
        check_contents(&archive, now, &mut out);
    }
    out.finish()
}

fn check_contents(archive: &Archive, now: i64, out: &mut Collector) {
    let files = &archive.files;
    bundle::check_bundle_files(archive, out);
    let pass = files.get("pass.json").and_then(|b| match serde_json::from_slice::<serde_json::Value>(b) {
        Ok(v) if v.is_object() => Some(v),
        Ok(_) => {
            out.error(Some("pass.json"), "is not a JSON object");
            None
        }
        Err(e) => {
            out.error(Some("pass.json"), format!("is not valid JSON: {e}"));
            None
        }
    });
    let localizations = Localizations::read(files, out);
    manifest::check_manifest(archive, out);
    if let Some(pass) = &pass {
        check_pass_json(pass, &localizations, out);
    }
    check_images(files, out);
    if let (Some(signature), Some(manifest)) = (files.get("signature"), files.get("manifest.json")) {
        signature::check_signature(signature, manifest, pass.as_ref(), now, out);
    }
}

fn check_pass_json(pass: &serde_json::Value, localizations: &Localizations, out: &mut Collector) {
    let f = Some("pass.json");
    let text = |k: &str| pass.get(k).and_then(|v| v.as_str());
    if pass.get("formatVersion").and_then(|v| v.as_i64()) != Some(1) {
        out.error(f, "formatVersion must be the number 1");
    }
    for key in ["passTypeIdentifier", "serialNumber", "teamIdentifier", "organizationName", "description"] {
        match text(key) {
            None => out.error(f, format!("{key} is missing or not a string")),
            Some("") => out.error(f, format!("{key} is empty")),
            Some(_) => {}
        }
    }
    if let Some(serial) = text("serialNumber")
        && serial.len() < 16
    {
        out.warn(
            f,
            format!(
                "serialNumber is {} characters; passes with serials under 16 characters have failed to download",
                serial.len()
            ),
        );
    }
    match (text("webServiceURL"), pass.get("authenticationToken")) {
        (None, None) => {}
        (Some(_), None) => out.error(f, "webServiceURL is set without an authenticationToken"),
        (None, Some(_)) => out.error(f, "authenticationToken is set without a webServiceURL"),
        (Some(url), Some(token)) => {
            match token.as_str() {
                Some(t) if t.len() >= 16 => {}
                Some(t) => {
                    out.error(f, format!("authenticationToken is {} characters; Wallet needs at least 16", t.len()))
                }
                None => out.error(f, "authenticationToken is not a string"),
            }
            if url.starts_with("http://") {
                out.warn(
                    f,
                    "webServiceURL is http; iPhones only call https unless Developer → Allow HTTP Services is on",
                );
            } else if !url.starts_with("https://") {
                out.error(f, "webServiceURL is not an https URL");
            }
        }
    }
    let styles = ["boardingPass", "coupon", "eventTicket", "generic", "storeCard"];
    let present: Vec<&str> = styles.iter().copied().filter(|s| pass.get(*s).is_some()).collect();
    if present.len() != 1 {
        out.error(f, format!("needs exactly one style key ({}); found {}", styles.join(", "), present.len()));
    }
    if let Some(card) = pass.get("storeCard") {
        let count = |k: &str| card.get(k).and_then(|v| v.as_array()).map(Vec::len).unwrap_or(0);
        if count("primaryFields") > 1 {
            out.error(f, "a storeCard has at most one primary field");
        }
        if count("secondaryFields") + count("auxiliaryFields") > 4 {
            out.error(f, "a storeCard shows at most four secondary and auxiliary fields together");
        }
    }
    let mut keys = std::collections::HashSet::new();
    let mut uses = Vec::new();
    for style in &present {
        for group in ["headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields"] {
            let fields = pass[*style].get(group).and_then(|v| v.as_array()).into_iter().flatten();
            for (i, field) in fields.enumerate() {
                let Some(key) = field.get("key").and_then(|v| v.as_str()) else {
                    out.error(f, format!("a field in {group} has no key"));
                    continue;
                };
                if !keys.insert(key.to_string()) {
                    out.error(f, format!("field key `{key}` is used twice; keys must be unique"));
                }
                if field.get("value").is_none() {
                    out.error(f, format!("field `{key}` has no value"));
                }
                for name in ["label", "value", "changeMessage"] {
                    if let Some(text) = field.get(name).and_then(|v| v.as_str()) {
                        let at = format!("{style}.{group}[{i}].{name}");
                        uses.push(Localizable { text: text.into(), at, is_change_message: name == "changeMessage" });
                    }
                }
                if let Some(message) = field.get("changeMessage").and_then(|v| v.as_str())
                    && !localizations.defines(message)
                    && !message.contains("%@")
                {
                    out.warn(f, format!("changeMessage of `{key}` has no %@; the lock screen shows a generic message"));
                }
            }
        }
    }
    localizations.check_uses(&uses, out);
    for barcode in pass.get("barcodes").and_then(|v| v.as_array()).into_iter().flatten() {
        if barcode.get("message").and_then(|v| v.as_str()).is_none() {
            out.error(f, "a barcode has no message");
        }
        if barcode.get("messageEncoding").and_then(|v| v.as_str()).is_none() {
            out.error(f, "a barcode has no messageEncoding (iso-8859-1 is usual)");
        }
    }
}

fn check_images(files: &BTreeMap<String, Vec<u8>>, out: &mut Collector) {
    for (name, data) in files {
        let file_name = name.rsplit('/').next().unwrap_or(name);
        if !file_name.ends_with(".png") {
            if [".jpg", ".jpeg", ".gif"].iter().any(|x| file_name.to_ascii_lowercase().ends_with(x)) {
                out.error(Some(name), "is not a PNG; Wallet ignores other image formats");
            }
            continue;
        }
        let Some((w, h)) = png_size(data) else {
            out.error(Some(name), "is not a valid PNG");
            continue;
        };
        if let Some((base, scale)) = image_scale(file_name)
            && let Some((pw, ph)) = image_points(base)
        {
            let (ew, eh) = (pw * scale, ph * scale);
            if base == "icon" && (w, h) != (ew, eh) {
                out.warn(Some(name), format!("is {w}x{h} px; Apple's size is {ew}x{eh}"));
            } else if base != "icon" && (w > ew || h > eh) {
                out.warn(Some(name), format!("is {w}x{h} px, larger than Apple's {ew}x{eh}; Wallet crops it"));
            }
        }
    }
}
