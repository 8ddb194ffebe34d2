//! The `signature` file: a detached DER PKCS#7 signature of manifest.json by a Pass Type ID certificate
//! (RSA), carrying Apple's WWDR G4 intermediate and a signingTime.

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::Id;
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use super::der::{SigningTime, signer_facts};
use super::report::Collector;
use super::shape::{Object, PASS_JSON};
use super::values::{escaped, quote};
use crate::apple::certs::name_entry;

const FILE: Option<&str> = Some("signature");
/// A chain longer than this is no Apple chain (theirs is pass certificate → WWDR → root).
const MAX_CHAIN: usize = 8;
/// Certificates looked through for issuers; each candidate may cost a signature check.
const MAX_CARRIED: usize = 16;

pub fn check_signature(signature: &[u8], manifest: &[u8], pass: Option<&Object>, now: i64, out: &mut Collector) {
    let Some(pkcs7) = parse(signature, out) else { return };
    verify_over_manifest(&pkcs7, manifest, out);
    let signed_at = check_signed_attributes(&pkcs7, out);
    let Some(signer) = signer_certificate(&pkcs7, out) else { return };
    check_signer_key(&signer, out);
    let uid = name_entry(signer.subject_name(), Nid::USERID);
    let ou = name_entry(signer.subject_name(), Nid::ORGANIZATIONALUNITNAME);
    out.note(format!(
        "signed by {} (pass type {}, team {})",
        subject_cn(&signer),
        escaped(uid.as_deref().unwrap_or("?"), 80),
        escaped(ou.as_deref().unwrap_or("?"), 80)
    ));
    let now = match Asn1Time::from_unix(now) {
        Ok(t) => t,
        Err(e) => return out.error(FILE, format!("cannot be checked: the current time is unreadable ({e})")),
    };
    if signer.not_after() < now {
        out.error(
            FILE,
            format!("the pass certificate expired on {}; renew it in the Apple Developer portal", signer.not_after()),
        );
    }
    if signer.not_before() > now {
        out.error(FILE, format!("the pass certificate is not valid before {}", signer.not_before()));
    }
    if let Some(signed_at) = signed_at {
        check_signing_time(&signer, signed_at, &now, out);
    }
    if let Some(pass) = pass {
        check_identifiers(pass, uid, ou, out);
    }
    check_chain(&pkcs7, &signer, &now, out);
}

fn parse(signature: &[u8], out: &mut Collector) -> Option<Pkcs7> {
    if signature.starts_with(b"-----BEGIN") {
        out.error(FILE, "is PEM text, not a DER PKCS#7 signature; convert it with `openssl pkcs7 -outform DER`");
        return None;
    }
    let Ok(pkcs7) = Pkcs7::from_der(signature) else {
        out.error(FILE, "is not a DER PKCS#7 signature");
        return None;
    };
    if pkcs7.signed().is_none() {
        out.error(FILE, "is PKCS#7 but not a signature (SignedData)");
        return None;
    }
    Some(pkcs7)
}

fn verify_over_manifest(pkcs7: &Pkcs7, manifest: &[u8], out: &mut Collector) {
    let (Ok(empty), Ok(store)) = (Stack::<X509>::new(), X509StoreBuilder::new()) else {
        return out.error(FILE, "cannot be checked: OpenSSL could not allocate");
    };
    let store = store.build();
    // NOVERIFY: the chain is checked below by name; here only that the manifest is what was signed.
    if pkcs7.verify(&empty, &store, Some(manifest), None, Pkcs7Flags::BINARY | Pkcs7Flags::NOVERIFY).is_err() {
        out.error(
            FILE,
            "does not verify over manifest.json (the manifest was changed, or the signature is not detached)",
        );
    }
}

/// signingTime, digest and detachment, read from the signer info OpenSSL's API does not expose.
/// Answers the signing time, when there is a readable one.
fn check_signed_attributes(pkcs7: &Pkcs7, out: &mut Collector) -> Option<i64> {
    // Re-encoded by OpenSSL, so a BER signature (indefinite lengths) reads like DER here.
    let Some(facts) = pkcs7.to_der().ok().and_then(|der| signer_facts(&der)) else {
        out.error(FILE, "has a SignedData structure tessera cannot read");
        return None;
    };
    if facts.signer_infos != 1 {
        out.error(FILE, format!("has {} signers; a pass signature has exactly one", facts.signer_infos));
    }
    if !facts.detached {
        out.warn(FILE, "embeds the signed content; Wallet expects a detached signature over manifest.json");
    }
    match facts.digest {
        Some("MD5") => out.error(FILE, "uses the MD5 digest, which is broken; sign with SHA-256 or SHA-1"),
        Some(digest) => out.note(format!("signature digest {digest}")),
        None => out.warn(FILE, "uses a digest algorithm tessera does not know; Wallet may not either"),
    }
    match facts.signing_time {
        SigningTime::Absent => out.error(FILE, "has no signingTime attribute, which Wallet requires"),
        SigningTime::Unreadable => out.error(FILE, "has a signingTime attribute that is not a valid time"),
        SigningTime::At(at) => return Some(at),
    }
    None
}

/// A signing time outside the certificate's life, or ahead of the clock, points at a wrong clock
/// on the signing machine.
fn check_signing_time(signer: &X509, signed_at: i64, now: &Asn1Time, out: &mut Collector) {
    let Ok(at) = Asn1Time::from_unix(signed_at) else {
        return out.error(FILE, "has a signingTime outside the years a certificate can express");
    };
    if signer.not_before() > at || signer.not_after() < at {
        let when = crate::time_fmt::rfc3339(signed_at);
        out.warn(
            FILE,
            format!("was signed at {when}, outside the pass certificate's validity; check the signing clock"),
        );
    } else if at.diff(now).is_ok_and(|d| d.days < -1) {
        let when = crate::time_fmt::rfc3339(signed_at);
        out.warn(FILE, format!("was signed at {when}, more than a day in the future; check the signing clock"));
    }
}

fn signer_certificate(pkcs7: &Pkcs7, out: &mut Collector) -> Option<X509> {
    let signers = Stack::<X509>::new().ok().and_then(|empty| pkcs7.signers(&empty, Pkcs7Flags::empty()).ok());
    match signers {
        Some(s) if s.len() == 1 => s.get(0).map(|c| c.to_owned()),
        _ => {
            out.error(FILE, "does not carry exactly one signer certificate");
            None
        }
    }
}

/// Apple issues Pass Type ID certificates with RSA keys; anything else is another kind of certificate.
fn check_signer_key(signer: &X509, out: &mut Collector) {
    let Ok(key) = signer.public_key() else {
        return out.error(FILE, "the signing certificate has no readable public key");
    };
    let kind = match key.id() {
        Id::RSA if key.bits() < 2048 => {
            return out
                .warn(FILE, format!("the signing certificate has a {}-bit RSA key; Apple's are 2048-bit", key.bits()));
        }
        Id::RSA => return,
        Id::EC => "an EC",
        Id::DSA => "a DSA",
        Id::ED25519 | Id::ED448 => "an EdDSA",
        _ => "a non-RSA",
    };
    out.error(
        FILE,
        format!(
            "the signing certificate has {kind} key; Apple's Pass Type ID certificates are RSA, so this is not one"
        ),
    );
}

fn check_identifiers(pass: &Object, uid: Option<String>, ou: Option<String>, out: &mut Collector) {
    let field = |k: &str| pass.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let mismatch = |key: &str, ours: Option<String>, theirs: Option<String>| {
        format!(
            "{key} {} does not match the signing certificate's {}",
            quote(&ours.unwrap_or_default()),
            quote(&theirs.unwrap_or_default())
        )
    };
    if uid.is_none() {
        out.error(FILE, "the signer certificate has no UID, so it is not a Pass Type ID certificate");
    } else if field("passTypeIdentifier") != uid {
        out.error(PASS_JSON, mismatch("passTypeIdentifier", field("passTypeIdentifier"), uid));
    }
    if ou.is_some() && field("teamIdentifier") != ou {
        out.error(PASS_JSON, mismatch("teamIdentifier", field("teamIdentifier"), ou));
    }
}

/// True when `parent` issued `child`: the names chain and `parent`'s key verifies `child`.
fn issued_by(child: &X509, parent: &X509) -> bool {
    let names_chain = match (child.issuer_name().to_der(), parent.subject_name().to_der()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    names_chain && parent.public_key().is_ok_and(|key| child.verify(&key).unwrap_or(false))
}

fn same(a: &X509, b: &X509) -> bool {
    matches!((a.to_der(), b.to_der()), (Ok(x), Ok(y)) if x == y)
}

enum ChainEnd {
    /// A self-signed root.
    Root,
    /// The last certificate's issuer is not in the signature.
    IssuerNotCarried,
    /// A certificate came round again.
    Loop,
    TooLong,
}

/// Follows issuers through the certificates the signature carries, from the signer up.
fn walk_chain(signer: &X509, carried: &[X509]) -> (Vec<X509>, ChainEnd) {
    let mut chain = vec![signer.clone()];
    loop {
        let Some(current) = chain.last() else { return (chain, ChainEnd::IssuerNotCarried) };
        if issued_by(current, current) {
            return (chain, ChainEnd::Root);
        }
        if chain.len() >= MAX_CHAIN {
            return (chain, ChainEnd::TooLong);
        }
        let Some(issuer) = carried.iter().find(|c| issued_by(current, c)).cloned() else {
            return (chain, ChainEnd::IssuerNotCarried);
        };
        let repeats = chain.iter().any(|c| same(c, &issuer));
        chain.push(issuer);
        if repeats {
            return (chain, ChainEnd::Loop);
        }
    }
}

fn check_chain(pkcs7: &Pkcs7, signer: &X509, now: &Asn1Time, out: &mut Collector) {
    let carried: Vec<X509> = pkcs7
        .signed()
        .and_then(|s| s.certificates())
        .map(|s| s.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    if carried.len() > MAX_CARRIED {
        out.warn(
            FILE,
            format!(
                "carries {} certificates; Apple's signature carries two, and only the first {MAX_CARRIED} are read",
                carried.len()
            ),
        );
    }
    let carried = carried.get(..MAX_CARRIED).unwrap_or(&carried);
    let (chain, end) = walk_chain(signer, carried);
    match end {
        ChainEnd::Loop => {
            let names: Vec<String> = chain.iter().map(subject_cn).collect();
            out.error(FILE, format!("the certificate chain loops ({}); no device can verify it", names.join(" → ")));
        }
        ChainEnd::TooLong => {
            out.error(FILE, format!("the certificate chain is longer than {MAX_CHAIN}; Apple's has three certificates"))
        }
        ChainEnd::Root | ChainEnd::IssuerNotCarried => {}
    }
    // The signer's issuer must travel in the signature, and be Apple's WWDR G4.
    let Some(issuer) = chain.get(1).filter(|c| !same(c, signer)) else {
        return out.error(
            FILE,
            "does not carry the intermediate that issued the pass certificate (Apple WWDR G4); add it to the signature",
        );
    };
    if issuer.not_after() < *now {
        out.error(
            FILE,
            format!("the intermediate {} expired on {}; use Apple WWDR G4", subject_cn(issuer), issuer.not_after()),
        );
    }
    match wwdr_generation(issuer) {
        Some("G4") => {}
        Some(generation) => out.error(FILE, format!("the intermediate is Apple WWDR {generation}; passes need WWDR G4")),
        None => out.warn(
            FILE,
            format!(
                "the chain ends in a root other than Apple's (intermediate: {}); fine for development, an iPhone refuses it",
                subject_cn(issuer)
            ),
        ),
    }
}

/// The certificate's common name, safe to print (a hostile certificate names itself anything).
fn subject_cn(cert: &X509) -> String {
    name_entry(cert.subject_name(), Nid::COMMONNAME)
        .map_or_else(|| "an unnamed certificate".into(), |cn| escaped(&cn, 80))
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
