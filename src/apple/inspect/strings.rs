//! The `xx.lproj/pass.strings` files: their encoding and syntax, and whether every language defines
//! every localizable string pass.json uses.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::report::Collector;
use super::values::quote;
use crate::templates::strings::parse_strings_file;

/// Wallet speaks about 40 languages; past this many the checks, which look every string up in every
/// language, would only cost time.
const MAX_LANGUAGES: usize = 100;

/// Strings looked up language by language at most this many times per pass (each time to name the
/// files at fault); more findings than that would be cut from the report anyway.
const MAX_SCANS: usize = 200;

/// The parsed strings of each language, by language folder (`en`, `zh-Hans`, …).
#[derive(Debug, Default)]
pub struct Localizations {
    by_language: BTreeMap<String, BTreeMap<String, String>>,
    /// Every key once, so that each string pass.json uses costs one lookup, not one per language.
    index: HashMap<String, KeyStats>,
}

#[derive(Debug, Default)]
struct KeyStats {
    /// How many languages define the key.
    languages: usize,
    /// How many of those translations carry `%@`.
    with_placeholder: usize,
}

/// A string in pass.json that Wallet looks up in the strings files, and where it is.
#[derive(Debug, Clone)]
pub struct Localizable {
    pub text: String,
    /// `storeCard.primaryFields[0].label`, for messages.
    pub at: String,
    /// A changeMessage, whose every translation needs `%@`.
    pub is_change_message: bool,
}

pub fn strings_file(language: &str) -> String {
    format!("{language}.lproj/pass.strings")
}

impl Localizations {
    /// Reads every top-level `xx.lproj/pass.strings`, reporting files Wallet cannot read.
    pub fn read(files: &BTreeMap<String, Vec<u8>>, out: &mut Collector) -> Localizations {
        let mut by_language = BTreeMap::new();
        for (name, data) in files {
            let Some(language) = name.strip_suffix(".lproj/pass.strings") else { continue };
            if language.contains('/') {
                continue; // a nested folder; the bundle-layout check reports it
            }
            if by_language.len() == MAX_LANGUAGES {
                out.warn(Some(name), format!("is past the {MAX_LANGUAGES}th language; tessera inspect reads no more"));
                break;
            }
            let Some(text) = decode(name, data, out) else { continue };
            match parse_strings_file(&text) {
                Ok(entries) => {
                    by_language.insert(language.to_string(), collect(name, entries, out));
                }
                Err((line, message)) => out.error(Some(name), format!("line {line}: {message}")),
            }
        }
        let mut index: HashMap<String, KeyStats> = HashMap::new();
        for (key, value) in by_language.values().flatten() {
            let stats = index.entry(key.clone()).or_default();
            stats.languages += 1;
            stats.with_placeholder += usize::from(value.contains("%@"));
        }
        Localizations { by_language, index }
    }

    /// Warns, naming the strings file, where a language lacks a string pass.json uses that another
    /// language defines (that language shows the raw key), and where a changeMessage translation has no
    /// `%@`. A string no language defines is plain text, not a key, and is left alone.
    pub fn check_uses(&self, uses: &[Localizable], out: &mut Collector) {
        let mut seen = HashSet::new();
        let mut scans_left = MAX_SCANS;
        // One check per distinct string: a hostile pass.json may repeat one a hundred thousand times.
        for usage in uses.iter().filter(|u| seen.insert((u.text.as_str(), u.is_change_message))) {
            let Some(stats) = self.index.get(&usage.text) else { continue };
            if stats.languages < self.by_language.len() && scans_left > 0 {
                scans_left -= 1;
                self.warn_missing(usage, out);
            }
            if usage.is_change_message && stats.with_placeholder < stats.languages && scans_left > 0 {
                scans_left -= 1;
                self.warn_without_placeholder(usage, out);
            }
        }
    }

    fn warn_missing(&self, usage: &Localizable, out: &mut Collector) {
        for (language, strings) in &self.by_language {
            if !strings.contains_key(&usage.text) {
                out.warn(
                    Some(&strings_file(language)),
                    format!(
                        "has no {}, which pass.json uses at {} and other languages define; Wallet shows the raw key in this language",
                        quote(&usage.text),
                        usage.at
                    ),
                );
            }
        }
    }

    fn warn_without_placeholder(&self, usage: &Localizable, out: &mut Collector) {
        for (language, strings) in &self.by_language {
            if strings.get(&usage.text).is_some_and(|t| !t.contains("%@")) {
                out.warn(
                    Some(&strings_file(language)),
                    format!(
                        "translates the changeMessage {} of {} without %@; the lock screen shows a generic message instead of the new value",
                        quote(&usage.text),
                        usage.at
                    ),
                );
            }
        }
    }

    /// True when some language defines `key`.
    pub fn defines(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }
}

/// The file's text, or `None` after reporting why it cannot be read.
fn decode(name: &str, data: &[u8], out: &mut Collector) -> Option<String> {
    if let Some(rest) = data.strip_prefix(b"\xef\xbb\xbf") {
        out.warn(
            Some(name),
            "starts with a UTF-8 byte-order mark; Wallet copes, but tools that do not read the mark as part of the first key",
        );
        return utf8(name, rest, out);
    }
    let little_endian = match data.get(..2) {
        Some([0xff, 0xfe]) => true,
        Some([0xfe, 0xff]) => false,
        _ => return utf8(name, data, out),
    };
    let body = data.get(2..).unwrap_or_default();
    if body.len() % 2 != 0 {
        out.error(Some(name), "is UTF-16 with an odd number of bytes; the file is cut short");
        return None;
    }
    let units = body.chunks_exact(2).map(|pair| match pair {
        [a, b] if little_endian => u16::from_le_bytes([*a, *b]),
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    });
    match char::decode_utf16(units).collect::<Result<String, _>>() {
        Ok(text) => {
            out.warn(Some(name), "is UTF-16; Wallet reads it, but UTF-8 is what every current tool writes and reads");
            Some(text)
        }
        Err(_) => {
            out.error(Some(name), "is not valid UTF-16 (an unpaired surrogate); Wallet cannot read it");
            None
        }
    }
}

fn utf8(name: &str, data: &[u8], out: &mut Collector) -> Option<String> {
    match std::str::from_utf8(data) {
        Ok(text) => Some(text.to_string()),
        Err(e) => {
            out.error(
                Some(name),
                format!(
                    "is neither UTF-8 nor UTF-16 (invalid UTF-8 at byte {}); Wallet cannot read it",
                    e.valid_up_to()
                ),
            );
            None
        }
    }
}

/// The entries as a map, warning about keys defined twice (the last one wins, silently).
fn collect(name: &str, entries: Vec<(String, String)>, out: &mut Collector) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        if map.insert(key.clone(), value).is_some() {
            out.warn(Some(name), format!("defines {} twice; only the last one counts", quote(&key)));
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[u8]) -> (Localizations, Vec<super::super::report::Finding>) {
        let mut out = Collector::default();
        let files = BTreeMap::from([("en.lproj/pass.strings".to_string(), data.to_vec())]);
        let loc = Localizations::read(&files, &mut out);
        (loc, out.findings().to_vec())
    }

    #[test]
    fn encodings() {
        let cases: [(&[u8], Option<&str>, bool); 6] = [
            (b"\"a\" = \"b\";", None, true),
            (b"\xef\xbb\xbf\"a\" = \"b\";", Some("byte-order mark"), true),
            (b"\xff\xfe\"\0a\0\"\0=\0\"\0b\0\"\0;\0", Some("is UTF-16"), true),
            (b"\xff\xfe\"\0a", Some("odd number"), false),
            (b"\"a\" = \"\xff\";", Some("neither UTF-8 nor UTF-16"), false),
            (b"\"a\" = \"b\"", Some("line 1"), false),
        ];
        for (data, phrase, parsed) in cases {
            let (loc, findings) = read(data);
            assert_eq!(loc.defines("a"), parsed, "{data:?}");
            match phrase {
                None => assert!(findings.is_empty(), "{findings:?}"),
                Some(p) => assert!(
                    findings
                        .iter()
                        .any(|f| f.file.as_deref() == Some("en.lproj/pass.strings") && f.message.contains(p)),
                    "{data:?}: {findings:?}"
                ),
            }
        }
    }

    #[test]
    fn a_key_missing_in_one_language_names_that_file() {
        let mut out = Collector::default();
        let files = BTreeMap::from([
            ("en.lproj/pass.strings".to_string(), b"\"points\" = \"POINTS\"; \"change\" = \"Now %@\";".to_vec()),
            ("th.lproj/pass.strings".to_string(), b"\"change\" = \"no placeholder\";".to_vec()),
        ]);
        let loc = Localizations::read(&files, &mut out);
        let uses = [
            Localizable {
                text: "points".into(),
                at: "storeCard.primaryFields[0].label".into(),
                is_change_message: false,
            },
            Localizable { text: "change".into(), at: "storeCard.primaryFields[0]".into(), is_change_message: true },
            Localizable { text: "Plain text".into(), at: "description".into(), is_change_message: false },
        ];
        loc.check_uses(&uses, &mut out);
        let findings = out.findings();
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings.iter().all(|f| f.file.as_deref() == Some("th.lproj/pass.strings")));
        assert!(findings[0].message.contains("has no \"points\""), "{findings:?}");
        assert!(findings[1].message.contains("without %@"), "{findings:?}");
    }
}
