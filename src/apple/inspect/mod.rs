//! `tessera inspect`: validates a .pkpass the way Wallet would and names the file at fault.
//!
//! Errors are what makes an iPhone refuse the pass; warnings are what works but is wrong, risky or
//! falls flat (a development certificate chain, an image of the wrong size, a card that never updates).
//!
//! The input is untrusted: no check panics, and nothing is read or allocated past a cap, whatever
//! the file's headers claim (see `zip_layout` and `archive`).

mod archive;
mod barcodes;
mod bundle;
mod changes;
mod der;
mod fields;
mod images;
mod manifest;
mod pass_json;
mod relevance;
mod report;
mod shape;
mod signature;
mod strings;
mod values;
mod zip_layout;

#[cfg(test)]
mod field_rules_tests;
#[cfg(test)]
mod rules_tests;

pub use changes::{Silence, SilentField, silent_changes};
pub use report::{Finding, Report, Severity};
pub use signature::wwdr_generation;

use report::Collector;

pub fn inspect(bytes: &[u8]) -> Report {
    inspect_at(bytes, crate::time_fmt::now_unix())
}

/// `inspect` as of `now` (Unix seconds), which dates such as expirationDate are compared with.
fn inspect_at(bytes: &[u8], now: i64) -> Report {
    let mut out = Collector::default();
    if let Some(archive) = archive::read_archive(bytes, &mut out) {
        check_contents(&archive, now, &mut out);
    }
    out.finish()
}

fn check_contents(archive: &archive::Archive, now: i64, out: &mut Collector) {
    let files = &archive.files;
    bundle::check_bundle_files(archive, out);
    let localizations = strings::Localizations::read(files, out);
    manifest::check_manifest(archive, out);
    let pass = files.get("pass.json").and_then(|raw| pass_json::parse_pass_json(raw, out));
    let style = pass.as_ref().and_then(|p| pass_json::check_pass_json(p, &localizations, now, out));
    let has_logo_text = pass.as_ref().is_some_and(|p| p.get("logoText").is_some_and(|t| t.is_string()));
    images::check_images(files, &images::ImageContext { style, has_logo_text }, out);
    if let (Some(signature), Some(manifest)) = (files.get("signature"), files.get("manifest.json")) {
        signature::check_signature(signature, manifest, pass.as_ref(), now, out);
    }
}
