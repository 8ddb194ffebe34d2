//! `tessera inspect`: validates a .pkpass the way Wallet would and names the file at fault.
//!
//! Errors are what makes an iPhone refuse the pass; warnings are what works but is wrong or risky
//! (a development certificate chain, an image of the wrong size, an http webServiceURL).
//!
//! The archive is untrusted: it is read from its raw bytes through caps (see `zip_layout` and `archive`).

mod archive;
mod report;
mod values;
mod zip_layout;

use std::collections::BTreeMap;

use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use super::certs::name_entry;
use super::{image_points, image_scale, png_size};

pub use report::{Finding, Report, Severity};

use archive::Archive;
use report::Collector;

/// DER of the signingTime attribute's OID, 1.2.840.113549.1.9.5.
const SIGNING_TIME_OID: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];

pub fn inspect(bytes: &[u8]) -> Report {
    let mut out = Collector::default();
    if let Some(archive) = archive::read_archive(bytes, &mut out) {
        check_contents(&archive, &mut out);
    }
    out.finish()
}

fn check_contents(archive: &Archive, out: &mut Collector) {
    let files = &archive.files;
    for required in ["pass.json", "manifest.json", "signature", "icon.png"] {
        if !archive.has(required) {
            out.error(Some(required), "is missing; Wallet refuses a pass without it");
        }
    }
    if !archive.has("icon@2x.png") {
        out.warn(Some("icon@2x.png"), "is missing; some iPhones refuse a pass without it");
    }
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
    let strings = check_strings(files, out);
    check_manifest(files, out);
    if let Some(pass) = &pass {
        check_pass_json(pass, &strings, out);
    }
    check_images(files, out);
    if let (Some(signature), Some(manifest)) = (files.get("signature"), files.get("manifest.json")) {
        check_signature(signature, manifest, pass.as_ref(), out);
    }
}

fn check_manifest(files: &BTreeMap<String, Vec<u8>>, out: &mut Collector) {
    let Some(raw) = files.get("manifest.json") else {
        return;
    };
    let manifest: BTreeMap<String, String> = match serde_json::from_slice(raw) {
        Ok(m) => m,
        Err(e) => {
            out.error(Some("manifest.json"), format!("is not a JSON object of file names to SHA-1 hashes: {e}"));
            return;
        }
    };
    for (name, data) in files {
        if name == "manifest.json" || name == "signature" {
            continue;
        }
        if name.starts_with("__MACOSX/") || name.ends_with(".DS_Store") {
            out.error(Some(name), "is a macOS metadata file; zip the pass's files, not the folder");
            continue;
        }
        match manifest.get(name) {
            None => out.error(Some(name), "is not listed in manifest.json; Wallet refuses a pass with unlisted files"),
            Some(hash) => {
                let actual = super::pass::sha1_hex(data);
                if *hash != actual {
                    let detail = if hash.eq_ignore_ascii_case(&actual) {
                        "is listed with an upper-case hash; manifest.json needs lowercase hex"
                    } else {
                        "does not match its SHA-1 in manifest.json (the file was changed after signing)"
                    };
                    out.error(Some(name), detail);
                }
            }
        }
    }
    for name in manifest.keys() {
        if !files.contains_key(name) {
            out.error(Some("manifest.json"), format!("lists {name}, which is not in the archive"));
        }
    }
}

fn check_strings(files: &BTreeMap<String, Vec<u8>>, out: &mut Collector) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for (name, data) in files {
        let Some(locale) = name.strip_suffix(".lproj/pass.strings") else {
            continue;
        };
        let text = if data.starts_with(&[0xff, 0xfe]) || data.starts_with(&[0xfe, 0xff]) {
            let le = data[0] == 0xff;
            let units: Vec<u16> = data[2..]
                .chunks_exact(2)
                .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
                .collect();
            String::from_utf16(&units).ok()
        } else {
            String::from_utf8(data.clone()).ok()
        };
        let Some(text) = text else {
            out.error(Some(name), "is neither UTF-8 nor UTF-16");
            continue;
        };
        match crate::templates::parse_strings(&text) {
            Ok(entries) => {
                all.insert(locale.to_string(), entries.into_iter().collect());
            }
            Err((line, message)) => out.error(Some(name), format!("line {line}: {message}")),
        }
    }
    all
}

fn check_pass_json(
    pass: &serde_json::Value,
    strings: &BTreeMap<String, BTreeMap<String, String>>,
    out: &mut Collector,
) {
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
    for style in &present {
        for group in ["headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields"] {
            for field in pass[*style].get(group).and_then(|v| v.as_array()).into_iter().flatten() {
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
                if let Some(message) = field.get("changeMessage").and_then(|v| v.as_str()) {
                    let mut texts = vec![message];
                    texts.extend(strings.values().filter_map(|s| s.get(message).map(String::as_str)));
                    if texts.iter().all(|t| !t.contains("%@")) {
                        out.warn(
                            f,
                            format!("changeMessage of `{key}` has no %@; the lock screen shows a generic message"),
                        );
                    }
                }
            }
        }
    }
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

fn check_signature(signature: &[u8], manifest: &[u8], pass: Option<&serde_json::Value>, out: &mut Collector) {
    let f = Some("signature");
    let pkcs7 = match Pkcs7::from_der(signature) {
        Ok(p) => p,
        Err(_) => {
            out.error(f, "is not a DER PKCS#7 signature");
            return;
        }
    };
    let empty = Stack::<X509>::new().expect("allocating an empty stack");
    let store = X509StoreBuilder::new().expect("allocating a store").build();
    if pkcs7.verify(&empty, &store, Some(manifest), None, Pkcs7Flags::BINARY | Pkcs7Flags::NOVERIFY).is_err() {
        out.error(f, "does not verify over manifest.json (the manifest was changed, or the signature is not detached)");
    }
    if !signature.windows(SIGNING_TIME_OID.len()).any(|w| w == SIGNING_TIME_OID) {
        out.error(f, "has no signingTime attribute, which Wallet requires");
    }
    let signer = match pkcs7.signers(&empty, Pkcs7Flags::empty()) {
        Ok(s) if s.len() == 1 => s.get(0).map(|c| c.to_owned()),
        _ => None,
    };
    let Some(signer) = signer else {
        out.error(f, "does not carry exactly one signer certificate");
        return;
    };
    let uid = name_entry(signer.subject_name(), Nid::USERID);
    let ou = name_entry(signer.subject_name(), Nid::ORGANIZATIONALUNITNAME);
    out.note(format!(
        "signed by {} (pass type {}, team {})",
        subject_cn(&signer),
        uid.as_deref().unwrap_or("?"),
        ou.as_deref().unwrap_or("?")
    ));
    let now = openssl::asn1::Asn1Time::days_from_now(0).expect("current time");
    if signer.not_after() < now {
        out.error(
            f,
            format!("the pass certificate expired on {}; renew it in the Apple Developer portal", signer.not_after()),
        );
    }
    if let Some(pass) = pass {
        let field = |k: &str| pass.get(k).and_then(|v| v.as_str()).map(str::to_string);
        if uid.is_none() {
            out.error(f, "the signer certificate has no UID, so it is not a Pass Type ID certificate");
        } else if field("passTypeIdentifier") != uid {
            out.error(
                Some("pass.json"),
                format!(
                    "passTypeIdentifier {:?} does not match the signing certificate's {:?}",
                    field("passTypeIdentifier").unwrap_or_default(),
                    uid.clone().unwrap_or_default()
                ),
            );
        }
        if ou.is_some() && field("teamIdentifier") != ou {
            out.error(
                Some("pass.json"),
                format!(
                    "teamIdentifier {:?} does not match the signing certificate's {:?}",
                    field("teamIdentifier").unwrap_or_default(),
                    ou.clone().unwrap_or_default()
                ),
            );
        }
    }
    // The chain: the signer's issuer must travel in the signature, and be Apple's WWDR G4.
    let carried: Vec<X509> = pkcs7
        .signed()
        .and_then(|s| s.certificates())
        .map(|s| s.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    let issuer = carried.iter().find(|c| {
        c.subject_name().to_der().ok() == signer.issuer_name().to_der().ok()
            && signer.verify(&c.public_key().expect("public key")).unwrap_or(false)
    });
    let Some(issuer) = issuer else {
        out.error(
            f,
            "does not carry the intermediate that issued the pass certificate (Apple WWDR G4); add it to the signature",
        );
        return;
    };
    if issuer.not_after() < now {
        out.error(
            f,
            format!("the intermediate {} expired on {}; use Apple WWDR G4", subject_cn(issuer), issuer.not_after()),
        );
    }
    match wwdr_generation(issuer) {
        Some("G4") => {}
        Some(generation) => out.error(f, format!("the intermediate is Apple WWDR {generation}; passes need WWDR G4")),
        None => out.warn(f, format!("the chain ends in a root other than Apple's (intermediate: {}); fine for development, an iPhone refuses it", subject_cn(issuer))),
    }
}

fn subject_cn(cert: &X509) -> String {
    name_entry(cert.subject_name(), Nid::COMMONNAME).unwrap_or_else(|| "an unnamed certificate".into())
}

/// `Some("G4")` etc. for Apple's Worldwide Developer Relations intermediates (G1 has no OU), `None` for
/// anything else.
pub fn wwdr_generation(cert: &X509) -> Option<&'static str> {
    let cn = name_entry(cert.subject_name(), Nid::COMMONNAME)?;
    let org = name_entry(cert.subject_name(), Nid::ORGANIZATIONNAME).unwrap_or_default();
    if !cn.contains("Apple Worldwide Developer Relations") || org != "Apple Inc." {
        return None;
    }
    Some(match name_entry(cert.subject_name(), Nid::ORGANIZATIONALUNITNAME).as_deref() {
        Some("G4") => "G4",
        Some("G3") => "G3",
        Some("G2") => "G2",
        Some("G5") => "G5",
        Some("G6") => "G6",
        _ => "G1",
    })
}
