//! The files of a .pkpass: entry names checked, each entry read through a cap, nothing trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use super::report::Collector;
use super::values::{escaped, quote};
use super::zip_layout::{self, Entry, METHOD_STORED};

/// All entries together expand to at most this much; a real pass is well under 1 MiB.
pub const MAX_TOTAL: u64 = 64 << 20;

/// The readable files by name, and the names of entries that are there but could not be read
/// (already reported), so that later checks do not also call them missing.
#[derive(Debug, Default)]
pub struct Archive {
    pub files: BTreeMap<String, Vec<u8>>,
    pub unreadable: BTreeSet<String>,
}

impl Archive {
    /// True when the archive holds `name`, readable or not.
    pub fn has(&self, name: &str) -> bool {
        self.files.contains_key(name) || self.unreadable.contains(name)
    }
}

/// The most one file may expand to, and why; past it the entry is refused unread.
fn cap_for(name: &str) -> (u64, &'static str) {
    match name {
        "pass.json" => (
            2 << 20,
            "a pass.json is a few KB, and Wallet parses it on the phone at every update; tessera inspect reads at most 2 MiB",
        ),
        "manifest.json" => (1 << 20, "a manifest lists a few dozen hashes; tessera inspect reads at most 1 MiB"),
        "signature" => (1 << 20, "a signature is a few KB; tessera inspect reads at most 1 MiB"),
        _ if name.ends_with(".strings") => {
            (64 << 10, "a strings file is a few KB; tessera inspect reads at most 64 KiB")
        }
        _ => (16 << 20, "Wallet's largest image is well under 1 MiB; tessera inspect reads at most 16 MiB of any file"),
    }
}

/// Reads the archive, reporting what is wrong with it. `None` when it cannot be read at all.
pub fn read_archive(bytes: &[u8], out: &mut Collector) -> Option<Archive> {
    let layout = match zip_layout::read_layout(bytes) {
        Ok(layout) => layout,
        Err(problem) => {
            out.error(None, problem);
            return None;
        }
    };
    let mut archive = Archive::default();
    let mut seen_folded = BTreeMap::new();
    for bad in &layout.bad {
        let shown = shown_name(&bad.name_raw);
        out.error(as_file(&shown), bad.problem.as_str());
        archive.unreadable.insert(shown);
    }
    let mut total = 0u64;
    for entry in &layout.entries {
        let Some(name) = checked_name(&entry.name_raw, &archive, out) else { continue };
        if let Some(first) = seen_folded.insert(name.to_lowercase(), name.clone()) {
            out.warn(
                Some(&name),
                format!("differs from {} only in case; on a case-insensitive disk one hides the other", quote(&first)),
            );
        }
        if name.ends_with('/') {
            continue; // a folder entry carries no data
        }
        match read_entry(bytes, entry, &name, MAX_TOTAL.saturating_sub(total)) {
            Ok(data) => {
                total = total.saturating_add(data.len() as u64);
                archive.files.insert(name, data);
            }
            Err(problem) => {
                out.error(Some(&name), problem);
                archive.unreadable.insert(name);
            }
        }
    }
    Some(archive)
}

/// Longer names are refused, so every name the checks see is shown whole.
const MAX_NAME_CHARS: usize = 200;

/// The entry's name as a report shows it: UTF-8 where it is, control characters escaped, cut at
/// `MAX_NAME_CHARS`.
pub fn shown_name(raw: &[u8]) -> String {
    escaped(&String::from_utf8_lossy(raw), MAX_NAME_CHARS)
}

/// The name to blame in a finding; an empty name is no name.
fn as_file(shown: &str) -> Option<&str> {
    (!shown.is_empty()).then_some(shown)
}

/// The entry's name when it is one Wallet can find and no other entry has; otherwise reports why not.
fn checked_name(raw: &[u8], archive: &Archive, out: &mut Collector) -> Option<String> {
    let shown = shown_name(raw);
    let problem = match std::str::from_utf8(raw) {
        Err(_) => Some("has a name that is not UTF-8; Wallet looks files up by their UTF-8 names"),
        Ok(name) => name_problem(name),
    };
    if let Some(problem) = problem {
        out.error(as_file(&shown), problem);
        return None;
    }
    if archive.has(&shown) {
        out.error(Some(&shown), "appears twice in the archive; readers disagree about which copy counts");
        return None;
    }
    Some(shown)
}

/// Why Wallet cannot take `name` as a path inside the pass, if it cannot.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("an entry has an empty name");
    }
    if name.chars().nth(MAX_NAME_CHARS).is_some() {
        return Some("has a name longer than 200 characters; no pass file is named so");
    }
    if name.chars().any(char::is_control) {
        return Some("has a NUL or control character in its name; no pass file is named so");
    }
    if name.contains('\\') {
        return Some("has a backslash in its name; ZIP paths use /, so Wallet looks for a file literally named so");
    }
    if name.starts_with('/') || name.as_bytes().get(1) == Some(&b':') {
        return Some("is an absolute path; paths in a pass are relative to the pass");
    }
    let inner = name.strip_suffix('/').unwrap_or(name);
    for component in inner.split('/') {
        match component {
            ".." => return Some("has a `..` component; a pass file cannot point outside the pass"),
            "." | "" => return Some("has an empty or `.` path component; Wallet does not find such a file"),
            _ => {}
        }
    }
    None
}

/// The entry's bytes. Refused unread when its header declares more than the file's cap or what is
/// left of the total cap; otherwise read through `take(declared + 1)`, so a header that lies
/// (a deflate bomb) costs at most one byte more than it admits to.
fn read_entry(bytes: &[u8], entry: &Entry, name: &str, total_left: u64) -> Result<Vec<u8>, String> {
    let (cap, why) = cap_for(name);
    let declared = entry.uncompressed_size;
    if declared > cap {
        return Err(format!("is {declared} bytes by its ZIP header; {why}"));
    }
    if declared > total_left {
        return Err(format!(
            "takes the archive past {} MiB in all; a real pass is well under 1 MiB, so reading stopped here",
            MAX_TOTAL >> 20
        ));
    }
    let data = if entry.method == METHOD_STORED {
        bytes.get(entry.data.clone()).ok_or("its data lies outside the file")?.to_vec()
    } else {
        inflate(bytes, entry, declared)?
    };
    let got = data.len() as u64;
    if got > declared {
        return Err(format!(
            "expands past the {declared} bytes its ZIP header declares (a deflate bomb, or a corrupt entry); reading stopped there"
        ));
    }
    if got < declared {
        return Err(format!(
            "decompresses to {got} bytes, but the ZIP directory says {declared}; the entry is corrupt"
        ));
    }
    if crc32fast::hash(&data) != entry.crc32 {
        return Err("does not match the CRC-32 in the ZIP directory; the entry is corrupt".into());
    }
    Ok(data)
}

/// Inflates a deflated entry, producing at most `declared + 1` bytes whatever the stream holds.
fn inflate(bytes: &[u8], entry: &Entry, declared: u64) -> Result<Vec<u8>, String> {
    let mut raw = bytes.get(entry.local_offset..entry.data.end).ok_or("its data lies outside the file")?;
    let limit = declared.saturating_add(1);
    // The decoder may produce up to the limit (so the overrun shows here, not as its own error); the
    // CRC is checked afterwards over what came out.
    let options = ::zip::read::ZipReadOptions::new()
        .ignore_crc32(true)
        .override_compressed_size(entry.compressed_size)
        .override_uncompressed_size(limit);
    let file = ::zip::read::read_zipfile_from_stream_with_options(&mut raw, options)
        .map_err(|e| format!("cannot be read: {e}"))?
        .ok_or("has no local header where the central directory says")?;
    let mut data = Vec::new();
    file.take(limit)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot be decompressed ({e}); the entry is corrupt"))?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_wallet_cannot_take() {
        let long = "x".repeat(201);
        let cases = [
            ("", "empty name"),
            ("../pass.json", "`..`"),
            ("images/../../etc/passwd", "`..`"),
            ("/pass.json", "absolute"),
            ("C:/pass.json", "absolute"),
            ("en.lproj\\pass.strings", "backslash"),
            ("pass\0.json", "NUL"),
            ("icon\n.png", "control"),
            ("./pass.json", "`.`"),
            ("en.lproj//pass.strings", "empty"),
            (long.as_str(), "longer than 200"),
        ];
        for (name, phrase) in cases {
            let problem = name_problem(name).unwrap_or_else(|| panic!("{name:?} passes"));
            assert!(problem.contains(phrase), "{name:?}: {problem}");
        }
        for fine in ["pass.json", "en.lproj/pass.strings", "zh-Hans.lproj/logo@2x.png", "en.lproj/"] {
            assert_eq!(name_problem(fine), None, "{fine}");
        }
    }

    #[test]
    fn shown_names_escape_control_characters() {
        assert_eq!(shown_name(b"pass\0.json"), "pass\\u{0}.json");
        assert_eq!(shown_name(b"a\xffb"), "a\u{fffd}b");
    }
}
