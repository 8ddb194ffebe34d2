//! `tessera doctor`: checks certificates, keys, templates and settings, and says what is wrong in plain
//! words with the fix. Exit 1 on any error. Renders the sample member before and after a change of
//! points, then of tier, and warns of every field that would change without showing its new value.

use std::process::ExitCode;
use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::x509::X509;

use crate::apple::certs::{SigningIdentity, looks_like_p12, name_entry, p12_advice};
use crate::apple::inspect::wwdr_generation;
use crate::apple::inspect::{Severity, Silence, SilentField, silent_changes};
use crate::apple::{PassBuilder, PassData};
use crate::settings::{Secret, Settings};
use crate::store::Store;
use crate::templates::Program;

#[derive(Default)]
pub struct Findings {
    pub lines: Vec<(Level, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    Ok,
    Warning,
    Error,
}

impl Findings {
    fn ok(&mut self, m: impl Into<String>) {
        self.lines.push((Level::Ok, m.into()));
    }
    fn warn(&mut self, m: impl Into<String>) {
        self.lines.push((Level::Warning, m.into()));
    }
    fn error(&mut self, m: impl Into<String>) {
        self.lines.push((Level::Error, m.into()));
    }
    pub fn has_errors(&self) -> bool {
        self.lines.iter().any(|(l, _)| *l == Level::Error)
    }
}

pub async fn run(settings: &Settings) -> ExitCode {
    let findings = check(settings).await;
    for (level, line) in &findings.lines {
        let tag = match level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        println!("{tag:>7}: {line}");
    }
    let errors = findings.lines.iter().filter(|(l, _)| *l == Level::Error).count();
    let warnings = findings.lines.iter().filter(|(l, _)| *l == Level::Warning).count();
    println!("{errors} error(s), {warnings} warning(s)");
    if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

pub async fn check(settings: &Settings) -> Findings {
    let mut f = Findings::default();
    let identity = check_certificates(settings, &mut f);
    let program = match Program::load(&settings.templates_dir, &settings.program) {
        Ok(p) => {
            check_google(settings, &p, &mut f).await;
            f.ok(format!(
                "templates: program `{}` renders every tier ({}) and locale ({})",
                p.name,
                p.tier_names().collect::<Vec<_>>().join(", "),
                p.locales().collect::<Vec<_>>().join(", ")
            ));
            Some(p)
        }
        Err(e) => {
            f.error(format!("templates: {e}"));
            None
        }
    };
    if let (Some(identity), Some(program)) = (&identity, program) {
        check_sample_pass(settings, identity, program, &mut f);
    }
    if settings.public_url.is_https() {
        f.ok(format!("public URL {} is https", settings.public_url));
    } else {
        f.warn(format!(
            "TESSERA_PUBLIC_URL is {}: iPhones only call an https webServiceURL (unless Developer → Allow HTTP Services is on), so passes will not update; set it to your https address",
            settings.public_url
        ));
    }
    check_database(settings, identity.as_ref(), &mut f).await;
    f
}

/// The Google Wallet settings: the key file, the templates, and whether Google grants a token.
async fn check_google(settings: &Settings, program: &Program, f: &mut Findings) {
    let (Some(issuer), Some(key_file)) = (&settings.google_issuer_id, &settings.google_service_account) else {
        f.ok("Google Wallet is not configured (TESSERA_GOOGLE_ISSUER_ID, TESSERA_GOOGLE_SERVICE_ACCOUNT): Apple Wallet only");
        return;
    };
    f.ok(format!("Google issuer id {issuer}"));
    let account = match crate::google::account::ServiceAccount::load(key_file) {
        Ok(a) => {
            f.ok(format!("Google service account {} (RSA key; tokens from {})", a.email, a.token_uri));
            a
        }
        Err(e) => return f.error(e.to_string()),
    };
    if !program.has_google_templates() {
        f.error(format!(
            "Google Wallet is configured but {} has no google/class.json and google/object.json; copy them from templates/default/google",
            program.dir.display()
        ));
    }
    let tokens = crate::google::client::TokenSource::new(account, reqwest::Client::new());
    match tokens.token().await {
        Ok(_) => f.ok("Google grants the service account an access token for the Wallet API"),
        Err(e) => f.error(format!(
            "Google does not grant an access token: {:#}. A refused grant usually means the key was deleted or the clock is off; an unreachable endpoint, no way out to Google",
            anyhow::Error::new(e)
        )),
    }
}

fn cert_days_left(cert: &X509) -> Option<i32> {
    let now = Asn1Time::days_from_now(0).ok()?;
    now.diff(cert.not_after()).ok().map(|d| d.days)
}

fn check_certificates(settings: &Settings, f: &mut Findings) -> Option<SigningIdentity> {
    for (setting, path) in [
        ("TESSERA_APPLE_CERT", &settings.apple_cert),
        ("TESSERA_APPLE_KEY", &settings.apple_key),
        ("TESSERA_APPLE_WWDR", &settings.apple_wwdr),
    ] {
        if let Ok(bytes) = std::fs::read(path)
            && looks_like_p12(&bytes)
        {
            f.error(p12_advice(setting, path));
            return None;
        }
    }
    let identity = match SigningIdentity::load(
        &settings.apple_cert,
        &settings.apple_key,
        &settings.apple_wwdr,
        settings.apple_key_password.as_ref().map(Secret::expose),
    ) {
        Ok(identity) => identity,
        Err(e) => {
            f.error(format!("{:#}", anyhow::Error::new(e)));
            return None;
        }
    };
    f.ok(format!(
        "pass certificate {}: pass type {}, team {}; the key matches it",
        settings.apple_cert.display(),
        identity.pass_type_id,
        identity.team_id
    ));
    match cert_days_left(&identity.cert) {
        Some(d) if d < 0 => f.error(format!(
            "the pass certificate expired on {}; create a new one on the Pass Type ID's page",
            identity.cert.not_after()
        )),
        Some(d) if d < 30 => {
            f.warn(format!("the pass certificate expires in {d} days ({}); renew it soon", identity.cert.not_after()))
        }
        _ => f.ok(format!("the pass certificate is valid until {}", identity.cert.not_after())),
    }
    let wwdr_key = identity.wwdr.public_key().ok();
    let issued = identity.cert.issuer_name().to_der().ok() == identity.wwdr.subject_name().to_der().ok()
        && wwdr_key.is_some_and(|k| identity.cert.verify(&k).unwrap_or(false));
    if issued {
        f.ok("the pass certificate was issued by TESSERA_APPLE_WWDR");
    } else {
        f.error(format!(
            "the pass certificate was not issued by TESSERA_APPLE_WWDR ({}); for an Apple certificate made after 27 January 2022, use Apple's WWDR G4 intermediate",
            name_entry(identity.wwdr.subject_name(), Nid::COMMONNAME).unwrap_or_default()
        ));
    }
    match cert_days_left(&identity.wwdr) {
        Some(d) if d < 0 => f.error(format!(
            "the WWDR intermediate expired on {}; download WWDR G4 from Apple PKI",
            identity.wwdr.not_after()
        )),
        _ => {}
    }
    match wwdr_generation(&identity.wwdr) {
        Some("G4") => f.ok("the intermediate is Apple WWDR G4"),
        Some(other) => f.error(format!("TESSERA_APPLE_WWDR is Apple WWDR {other}; passes need WWDR G4 (G1 expired in 2023, G3 is refused for passes). Download G4 from Apple PKI")),
        None => f.warn(format!(
            "TESSERA_APPLE_WWDR is not Apple's ({}): passes verify against its root but an iPhone refuses them; use Apple's certificates in production",
            name_entry(identity.wwdr.subject_name(), Nid::COMMONNAME).unwrap_or_default()
        )),
    }
    Some(identity)
}

fn check_sample_pass(settings: &Settings, identity: &SigningIdentity, program: Program, f: &mut Findings) {
    let identity = match SigningIdentity::from_parts(identity.cert.clone(), identity.key.clone(), identity.wwdr.clone())
    {
        Ok(i) => i,
        Err(e) => return f.error(format!("{:#}", anyhow::Error::new(e))),
    };
    let builder = match PassBuilder::new(Arc::new(identity), Arc::new(program), settings.web_service_url()) {
        Ok(b) => b,
        Err(e) => return f.error(format!("the pass builder cannot start: {:#}", anyhow::Error::new(e))),
    };
    check_change_messages(&builder, f);
    let program = builder.program();
    let tiers: Vec<&str> = program.tier_names().collect();
    let locales: Vec<&str> = program.locales().collect();
    // Warnings the sample passes share (an http URL, a development chain) are said once each.
    let mut warnings = std::collections::BTreeSet::new();
    for tier in &tiers {
        for locale in &locales {
            sample_pass(&builder, tier, locale, f, &mut warnings);
        }
    }
    for warning in warnings {
        f.warn(format!("sample passes: {warning}"));
    }
    if !f.has_errors() {
        f.ok(format!(
            "sample passes of every tier ({}) and locale ({}) build, sign and pass inspection",
            tiers.join(", "),
            locales.join(", ")
        ));
    }
}

/// The sample member, in `tier` with `points`.
fn sample_member<'a>(tier: &'a str, points: i64, locale: &'a str, attributes: &'a serde_json::Value) -> PassData<'a> {
    PassData {
        serial_number: "0123456789abcdef0123456789abcdef",
        authentication_token: "doctor-sample-token-0123456789abcdef",
        voided: false,
        member_id: "DOCTOR-1",
        name: Some("Sample"),
        tier,
        points,
        locale: Some(locale),
        attributes,
        latest_offer: None,
        modified_at: crate::time_fmt::now_unix(),
    }
}

/// Renders the sample member twice, differing only in points, then only in tier (the two lowest), and
/// names every front field that changed without a changeMessage showing the new value (`%@`).
fn check_change_messages(builder: &PassBuilder, f: &mut Findings) {
    let program = builder.program();
    let locale = program.default_locale.as_str();
    let attributes = serde_json::json!({});
    let render = |tier: &str, points: i64| {
        let json = builder.render_pass_json(&sample_member(tier, points, locale, &attributes)).ok()?;
        serde_json::from_str::<serde_json::Value>(&json).ok()
    };
    let strings = program.locales().map(|l| (l.to_string(), program.strings(l).entries.clone())).collect();
    let tiers: Vec<&str> = program.tier_names().collect();
    let Some(&first) = tiers.first() else { return };
    let mut changes = vec![("points", first, 1250, first, 1350)];
    if let Some(&next) = tiers.get(1) {
        changes.push(("tier", first, 1250, next, 1250));
    }
    let mut silent = 0;
    for (what, tier_before, points_before, tier_after, points_after) in changes {
        let (Some(before), Some(after)) = (render(tier_before, points_before), render(tier_after, points_after)) else {
            continue; // a sample that does not render is reported by the sample passes below
        };
        for field in silent_changes(&before, &after, &strings) {
            silent += 1;
            f.warn(silent_field_advice(what, &field));
        }
    }
    if silent == 0 {
        f.ok("a change of points or tier shows its new value on the lock screen (%@ in each changed field's message)");
    }
}

fn silent_field_advice(what: &str, field: &SilentField) -> String {
    let place = format!("{} ({})", field.at, field.key);
    match &field.why {
        Silence::NoChangeMessage => format!(
            "a {what} change updates {place} silently: the field has no changeMessage; add one with %@ for the new value, e.g. \"{}.change\" defined as \"… %@ …\" in every pass.strings",
            field.key
        ),
        Silence::NoPlaceholder { message, language: Some(language) } => format!(
            "a {what} change updates {place} without its new value: {language}.lproj/pass.strings translates its changeMessage \"{message}\" without %@"
        ),
        Silence::NoPlaceholder { message, language: None } => {
            format!("a {what} change updates {place} without its new value: its changeMessage \"{message}\" has no %@")
        }
    }
}

/// Builds one sample pass and inspects it the way `tessera inspect` does.
fn sample_pass(
    builder: &PassBuilder,
    tier: &str,
    locale: &str,
    f: &mut Findings,
    warnings: &mut std::collections::BTreeSet<String>,
) {
    let attributes = serde_json::json!({});
    let data = sample_member(tier, 1250, locale, &attributes);
    let bytes = match builder.build(&data) {
        Ok(bytes) => bytes,
        Err(e) => return f.error(format!("a sample {tier} pass cannot be built: {:#}", anyhow::Error::new(e))),
    };
    let report = crate::apple::inspect::inspect(&bytes);
    for finding in &report.findings {
        let text =
            format!("{}{}", finding.file.as_deref().map(|x| format!("{x}: ")).unwrap_or_default(), finding.message);
        match finding.severity {
            Severity::Error => f.error(format!("a sample {tier} pass in {locale} fails inspection: {text}")),
            Severity::Warning if !doctor_says_itself(&text) => {
                warnings.insert(text);
            }
            Severity::Warning => {}
        }
    }
}

/// Warnings doctor gives in its own words (the public URL, the certificate chain, silent changes).
fn doctor_says_itself(warning: &str) -> bool {
    ["webServiceURL", "root", "development", "where Wallet shows the balance"].iter().any(|w| warning.contains(w))
}

async fn check_database(settings: &Settings, identity: Option<&SigningIdentity>, f: &mut Findings) {
    if let Some(path) = settings.database_url.sqlite_file()
        && !std::path::Path::new(path).exists()
    {
        f.ok(format!("database {path} does not exist yet; `tessera serve` creates it"));
        return;
    }
    let store = match Store::connect(settings.database_url.expose()).await {
        Ok(s) => s,
        Err(e) => {
            return f.error(format!(
                "TESSERA_DATABASE_URL: cannot open {}: {:#}",
                settings.database_url,
                anyhow::Error::new(e)
            ));
        }
    };
    match store.issued_identities().await {
        Ok(ids) => {
            f.ok(format!("database {} is reachable", settings.database_url));
            if let Ok(Some((reason, since))) = store.service_state(crate::delivery::apns::APNS_FORBIDDEN).await {
                let waiting = store.outbox_depth(crate::store::Outbox::Apns).await.unwrap_or(0);
                f.error(format!(
                    "APNs refused tessera's credentials (403 {reason}) at {}; {waiting} push(es) are waiting. Check that TESSERA_APPLE_CERT is the Pass Type ID certificate (not an app push certificate) and not revoked, or the .p8 key, key id and team id for token auth; pushes resume by themselves once APNs accepts them",
                    crate::time_fmt::rfc3339(since)
                ));
            }
            if let Ok(Some((reason, since))) =
                store.service_state(crate::delivery::google_objects::GOOGLE_FORBIDDEN).await
            {
                let waiting = store.outbox_depth(crate::store::Outbox::GoogleObjects).await.unwrap_or(0);
                f.error(format!(
                    "Google refused the service account ({reason}) at {}; {waiting} object update(s) are waiting. Add the service account's email under Users in the Google Pay & Wallet Console for this issuer; updates resume by themselves once Google accepts it",
                    crate::time_fmt::rfc3339(since)
                ));
            }
            if let Some(identity) = identity {
                for (pass_type, team, count) in ids {
                    if pass_type != identity.pass_type_id || team != identity.team_id {
                        f.warn(format!(
                            "{count} pass(es) were issued under pass type {pass_type} / team {team}, but the certificate in force is {} / {}; those passes can no longer be updated on phones (Wallet keys a pass by its pass type)",
                            identity.pass_type_id, identity.team_id
                        ));
                    }
                }
            }
        }
        Err(_) => f.ok(
            "database is reachable but not migrated yet; `tessera serve` or `tessera migrate` applies the migrations",
        ),
    }
    store.close().await;
}
