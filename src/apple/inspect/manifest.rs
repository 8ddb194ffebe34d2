//! manifest.json: a lowercase hex SHA-1 for every file but itself and the signature, and nothing else.

use std::collections::BTreeMap;

use serde_json::Value;

use super::archive::Archive;
use super::report::Collector;
use super::values::{kind, quote};

const FILE: Option<&str> = Some("manifest.json");

pub fn check_manifest(archive: &Archive, out: &mut Collector) {
    let Some(raw) = archive.files.get("manifest.json") else { return };
    let listed = match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return out.error(FILE, format!("is {}, not a JSON object of file names to SHA-1 hashes", kind(&other)));
        }
        Err(e) => return out.error(FILE, format!("is not valid JSON: {e}")),
    };
    let mut hashes = BTreeMap::new();
    for (name, hash) in &listed {
        match hash.as_str() {
            Some(h) if h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                hashes.insert(name.as_str(), h);
            }
            Some(h) => out.error(FILE, format!("lists {} with {}, which is not a hex SHA-1", quote(name), quote(h))),
            None => out.error(FILE, format!("lists {} with {}, not a hex SHA-1 string", quote(name), kind(hash))),
        }
        if name == "manifest.json" || name == "signature" {
            out.error(FILE, format!("lists {name}, which the manifest must leave out (it cannot hash itself)"));
        } else if !archive.has(name) {
            out.error(FILE, format!("lists {}, which is not in the archive", quote(name)));
        }
    }
    for (name, data) in &archive.files {
        check_listed(name, data, &hashes, listed.contains_key(name), out);
    }
    // Entries that could not be read still have to be listed; their hashes cannot be checked.
    for name in archive.unreadable.iter().filter(|n| !listed.contains_key(*n) && !n.ends_with('/')) {
        out.error(Some(name), "is not listed in manifest.json; Wallet refuses a pass with unlisted files");
    }
}

fn check_listed(name: &str, data: &[u8], hashes: &BTreeMap<&str, &str>, listed: bool, out: &mut Collector) {
    if name == "manifest.json" || name == "signature" || name.ends_with('/') {
        return;
    }
    if name.starts_with("__MACOSX/") || name.rsplit('/').next() == Some(".DS_Store") {
        return out.error(Some(name), "is a macOS metadata file; zip the pass's files, not the folder");
    }
    if !listed {
        return out.error(Some(name), "is not listed in manifest.json; Wallet refuses a pass with unlisted files");
    }
    let Some(hash) = hashes.get(name) else { return }; // a malformed hash, reported above
    let actual = crate::apple::pass::sha1_hex(data);
    if *hash == actual {
        return;
    }
    let detail = if hash.eq_ignore_ascii_case(&actual) {
        "is listed with an upper-case hash; manifest.json needs lowercase hex"
    } else {
        "does not match its SHA-1 in manifest.json (the file was changed after signing)"
    };
    out.error(Some(name), detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(manifest: &str, files: &[(&str, &[u8])]) -> Vec<super::super::report::Finding> {
        let mut archive = Archive::default();
        archive.files.insert("manifest.json".into(), manifest.as_bytes().to_vec());
        for (name, data) in files {
            archive.files.insert(name.to_string(), data.to_vec());
        }
        let mut out = Collector::default();
        check_manifest(&archive, &mut out);
        out.finish().findings
    }

    #[test]
    fn rules() {
        let sha = |d: &[u8]| crate::apple::pass::sha1_hex(d);
        let good = format!("{{\"pass.json\":\"{}\"}}", sha(b"{}"));
        assert!(run(&good, &[("pass.json", b"{}")]).is_empty());
        type Case<'a> = (String, Vec<(&'a str, &'a [u8])>, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            ("[]".into(), vec![], "manifest.json", "not a JSON object"),
            ("{".into(), vec![], "manifest.json", "not valid JSON"),
            (good.clone(), vec![("pass.json", b"{ }")], "pass.json", "does not match its SHA-1"),
            (
                good.to_uppercase().replace("PASS.JSON", "pass.json"),
                vec![("pass.json", b"{}")],
                "pass.json",
                "upper-case",
            ),
            (good.clone(), vec![("pass.json", b"{}"), ("icon.png", b"x")], "icon.png", "not listed"),
            (good.clone(), vec![], "manifest.json", "not in the archive"),
            ("{\"pass.json\": 1}".into(), vec![("pass.json", b"{}")], "manifest.json", "not a hex SHA-1"),
            (
                format!("{{\"pass.json\":\"{}\",\"signature\":\"{}\"}}", sha(b"{}"), sha(b"")),
                vec![("pass.json", b"{}")],
                "manifest.json",
                "must leave out",
            ),
            (good.clone(), vec![("pass.json", b"{}"), ("__MACOSX/._pass.json", b"")], "__MACOSX/._pass.json", "macOS"),
        ];
        for (manifest, files, file, phrase) in cases {
            let findings = run(&manifest, &files);
            assert!(
                findings.iter().any(|f| f.file.as_deref() == Some(file) && f.message.contains(phrase)),
                "{manifest} {file} {phrase}: {findings:?}"
            );
        }
    }
}
