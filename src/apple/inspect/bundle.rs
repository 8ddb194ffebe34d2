//! Which files a pass must have, and which ones Wallet never reads.

use super::archive::Archive;
use super::report::Collector;
use crate::apple::{image_points, image_scale};

pub fn check_bundle_files(archive: &Archive, out: &mut Collector) {
    for required in ["pass.json", "manifest.json", "signature", "icon.png"] {
        if !archive.has(required) {
            out.error(Some(required), "is missing; Wallet refuses a pass without it");
        }
    }
    if !archive.has("icon@2x.png") {
        out.warn(Some("icon@2x.png"), "is missing; some iPhones refuse a pass without it");
    }
    for name in archive.files.keys() {
        if !is_pass_file(name) && !is_macos_metadata(name) {
            out.warn(Some(name), "is not a file Wallet reads; it only makes the pass bigger");
        }
    }
}

/// macOS metadata, which the manifest check reports as an error of its own.
fn is_macos_metadata(name: &str) -> bool {
    name.starts_with("__MACOSX/") || name.rsplit('/').next() == Some(".DS_Store")
}

/// A file Wallet reads: pass.json and friends, a known image, or a language folder's strings or image.
fn is_pass_file(name: &str) -> bool {
    let is_image = |file: &str| {
        image_scale(file).is_some_and(|(base, _)| image_points(base).is_some() || base == "personalizationLogo")
    };
    match name.split_once('/') {
        None => matches!(name, "pass.json" | "manifest.json" | "signature" | "personalization.json") || is_image(name),
        Some((folder, file)) => {
            folder.strip_suffix(".lproj").is_some_and(|language| !language.is_empty())
                && !file.contains('/')
                && (file == "pass.strings" || is_image(file))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_wallet_reads() {
        for name in
            ["pass.json", "icon@3x.png", "th.lproj/pass.strings", "zh-Hans.lproj/logo@2x.png", "personalization.json"]
        {
            assert!(super::is_pass_file(name), "{name}");
        }
        for name in ["notes.txt", "images/icon.png", ".lproj/pass.strings", "en.lproj/x/pass.strings", "icon@4x.png"] {
            assert!(!super::is_pass_file(name), "{name}");
        }
    }
}
