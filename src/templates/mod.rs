//! Loyalty program templates on disk: `templates/<program>/`.
//!
//! ```text
//! program.toml            organization name, tiers (in order), default locale, barcode format
//! pass.json               Jinja template of the pass (JSON auto-escaping: `{{ member.name }}` is quoted)
//! page.html               Jinja template of the member page
//! staff.html              Jinja template of the staff page (sign-in and scanner)
//! images/*.png            icon, logo, strip at @1x/@2x/@3x
//! tiers/<tier>/tier.toml  colors; tiers/<tier>/*.png overrides images of the same name
//! <locale>.lproj/pass.strings   UTF-8 strings, one set of keys for the pass and the page
//! ```
//!
//! Everything is read and checked once at start-up; a template that does not render is refused with
//! its file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod barcode;
pub mod google;
mod load;
pub mod offers;
pub mod staff;
pub mod strings;
pub use barcode::{BarcodeRefusal, BarcodeSigning};
pub use offers::{CouponContext, CouponFields, OfferClassContext, OfferFields, OfferObjectContext, OfferTemplate};
pub use strings::parse_strings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The file at fault, as a path the user can open.
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for TemplateError {}

pub(crate) fn terr(file: &Path, line: Option<usize>, message: impl Into<String>) -> TemplateError {
    TemplateError { file: file.to_path_buf(), line, message: message.into() }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProgramFile {
    organization_name: String,
    tiers: Vec<String>,
    #[serde(default = "default_locale")]
    default_locale: String,
    #[serde(default = "default_barcode")]
    barcode_format: String,
    /// Cards carry the member id and a short HMAC instead of the bare member id.
    #[serde(default)]
    signed_barcodes: bool,
}

fn default_locale() -> String {
    "en".into()
}
fn default_barcode() -> String {
    "qr".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierDesign {
    #[serde(default, skip_deserializing)]
    pub name: String,
    pub background_color: String,
    pub foreground_color: String,
    pub label_color: String,
    /// Keys of the strings files: the tier's perks, shown on both cards and to staff.
    #[serde(default)]
    pub perks: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub design: TierDesign,
    /// Images of this tier that replace the program's images of the same name.
    pub images: BTreeMap<String, Vec<u8>>,
}

/// A `pass.strings` file: its raw bytes (shipped in the pass as they are) and its entries.
#[derive(Debug, Clone)]
pub struct Strings {
    pub raw: Vec<u8>,
    pub entries: BTreeMap<String, String>,
}

/// What a pass.json template sees.
#[derive(Debug, Clone, Serialize)]
pub struct PassContext<'a> {
    pub pass: PassFields<'a>,
    pub member: MemberFields<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PassFields<'a> {
    pub pass_type_identifier: &'a str,
    pub team_identifier: &'a str,
    pub serial_number: &'a str,
    pub authentication_token: &'a str,
    pub web_service_url: &'a str,
    pub voided: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberFields<'a> {
    pub member_id: &'a str,
    /// The name, or the member ID when there is none.
    pub display_name: &'a str,
    pub name: Option<&'a str>,
    pub tier: &'a str,
    pub points: i64,
    pub locale: &'a str,
    pub attributes: &'a serde_json::Value,
    /// The strings key of the latest offer's title, on the card's back (None: no offer yet).
    pub latest_offer: Option<&'a str>,
}

/// What the member page template sees (besides `t`, the strings of the member's locale).
#[derive(Debug, Clone, Serialize)]
pub struct PageContext<'a> {
    pub member: MemberFields<'a>,
    pub apple_url: &'a str,
    pub google_url: Option<&'a str>,
    /// Google Wallet is configured (so a missing `google_url` means "not available yet").
    pub google_configured: bool,
    /// Where the page's own assets are served (`<public URL>/assets`).
    pub assets_url: &'a str,
    pub page_url: &'a str,
    /// An inline SVG QR code of the page URL, for desktops.
    pub qr_svg: &'a str,
    /// An inline SVG of the card's barcode (what staff scan).
    pub barcode_svg: &'a str,
    /// Show Google Wallet first (an Android phone).
    pub google_first: bool,
    pub retired: bool,
    /// The balance with the locale's digit grouping.
    pub points_display: &'a str,
}

pub struct Program {
    pub name: String,
    pub dir: PathBuf,
    pub organization_name: String,
    pub default_locale: String,
    /// Apple barcode format, e.g. `PKBarcodeFormatQR`.
    pub barcode_format: &'static str,
    /// What the barcodes carry (signed or the bare member id).
    pub barcodes: BarcodeSigning,
    tiers: Vec<(String, Tier)>,
    images: BTreeMap<String, Vec<u8>>,
    strings: BTreeMap<String, Strings>,
    /// `offers/<template>/`, by template name.
    offers: BTreeMap<String, OfferTemplate>,
    /// Per locale, the strings as Google's LocalizedStrings need them (built on first use).
    google_translations: std::sync::OnceLock<BTreeMap<String, std::sync::Arc<google::Translations>>>,
    env: minijinja::Environment<'static>,
}

const PASS_TEMPLATE: &str = "pass.json";
const PAGE_TEMPLATE: &str = "page.html";
const STAFF_TEMPLATE: &str = "staff.html";
/// Images Wallet needs in every pass.
pub const REQUIRED_IMAGES: &[&str] = &["icon.png", "icon@2x.png", "logo.png"];

impl Program {
    /// Loads `templates_dir/program` and checks that every tier and locale renders.
    pub fn load(templates_dir: &Path, program: &str) -> Result<Program, TemplateError> {
        let dir = templates_dir.join(program);
        if !dir.is_dir() {
            return Err(terr(
                &dir,
                None,
                "the program folder does not exist; set TESSERA_TEMPLATES_DIR to the folder holding it",
            ));
        }
        let program_path = dir.join("program.toml");
        let file: ProgramFile = load::read_toml(&program_path)?;
        let barcode_format = load::barcode_format(&file.barcode_format, &program_path)?;
        if file.tiers.is_empty() {
            return Err(terr(&program_path, None, "tiers is empty; list the program's tiers, lowest first"));
        }
        let images = load::program_images(&dir)?;
        let tiers = file
            .tiers
            .iter()
            .map(|name| Ok((name.clone(), load::tier(&dir, &program_path, name)?)))
            .collect::<Result<Vec<_>, TemplateError>>()?;
        let strings = load::strings(&dir, &file.default_locale, &program_path)?;
        load::check_perks(&dir, &tiers, &strings[&file.default_locale])?;
        let offers = offers::load_offers(&dir)?;
        let program = Program {
            name: program.to_string(),
            env: load::environment(&dir)?,
            dir,
            organization_name: file.organization_name,
            default_locale: file.default_locale,
            barcode_format,
            barcodes: BarcodeSigning::new(file.signed_barcodes),
            tiers,
            images,
            strings,
            offers,
            google_translations: Default::default(),
        };
        program.check_renders()?;
        program.check_google_renders()?;
        program.check_staff_renders()?;
        program.check_offer_renders()?;
        Ok(program)
    }

    /// The tier's perks in `locale` (texts of its strings keys).
    pub fn perks(&self, tier: &str, locale: &str) -> Vec<String> {
        let strings = &self.strings(locale).entries;
        let keys = self.tier(tier).map(|t| t.design.perks.as_slice()).unwrap_or_default();
        keys.iter().map(|k| strings.get(k).cloned().unwrap_or_else(|| k.clone())).collect()
    }

    /// The tier's name in `locale` (`tier.<name>` of the strings), else the name itself.
    pub fn tier_label(&self, tier: &str, locale: &str) -> String {
        self.strings(locale).entries.get(&format!("tier.{tier}")).cloned().unwrap_or_else(|| tier.to_string())
    }

    /// The tier's background colour as `#rrggbb`.
    pub fn tier_color(&self, tier: &str) -> String {
        self.tier(tier).map(|t| google::hex_color(&t.design.background_color)).unwrap_or_else(|| "#000000".into())
    }

    pub fn tier_names(&self) -> impl Iterator<Item = &str> {
        self.tiers.iter().map(|(n, _)| n.as_str())
    }

    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.strings.keys().map(String::as_str)
    }

    /// The program locale closest to `wanted` (`th-TH` → `th`), else the default.
    pub fn resolve_locale<'a>(&'a self, wanted: Option<&str>) -> &'a str {
        if let Some(wanted) = wanted {
            let lower = wanted.to_ascii_lowercase().replace('_', "-");
            for candidate in [lower.as_str(), lower.split('-').next().unwrap_or("")] {
                if let Some((k, _)) = self.strings.get_key_value(candidate) {
                    return k;
                }
            }
        }
        &self.default_locale
    }

    pub fn strings(&self, locale: &str) -> &Strings {
        self.strings.get(locale).unwrap_or_else(|| &self.strings[&self.default_locale])
    }

    /// Every file of a tier's pass except pass.json, manifest.json and signature: images (the tier's
    /// overriding the program's) and `<locale>.lproj/pass.strings`.
    pub fn static_files(&self, tier: &str) -> Vec<(String, Vec<u8>)> {
        let mut files: BTreeMap<String, Vec<u8>> = self.images.clone();
        if let Some(t) = self.tier(tier) {
            files.extend(t.images.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut out: Vec<(String, Vec<u8>)> = files.into_iter().collect();
        out.extend(self.strings.iter().map(|(locale, s)| (format!("{locale}.lproj/pass.strings"), s.raw.clone())));
        out
    }

    /// A template image by file name, the tier's own before the program's (`None` for an unknown tier or
    /// image).
    pub fn image(&self, tier: Option<&str>, name: &str) -> Option<&[u8]> {
        match tier {
            Some(tier) => {
                let tier = self.tier(tier)?;
                tier.images.get(name).or_else(|| self.images.get(name)).map(Vec::as_slice)
            }
            None => self.images.get(name).map(Vec::as_slice),
        }
    }

    pub fn render_pass_json(&self, tier: &TierDesign, ctx: &PassContext<'_>) -> Result<String, TemplateError> {
        let template = self.env.get_template(PASS_TEMPLATE).map_err(|e| jinja_error(&self.dir, &e))?;
        let out = template
            .render(minijinja::context! {
                pass => ctx.pass, member => ctx.member, tier => tier,
                barcode => self.barcodes.barcode(&self.name, ctx.member.member_id),
                program => minijinja::context! { organization_name => &self.organization_name, barcode_format => self.barcode_format },
            })
            .map_err(|e| jinja_error(&self.dir, &e))?;
        // Auto-escaping keeps member data from breaking the JSON, but a conditional in the template can.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&out) {
            let line = out.lines().nth(e.line().saturating_sub(1)).unwrap_or("").trim();
            return Err(terr(
                &self.dir.join(PASS_TEMPLATE),
                None,
                format!("renders invalid JSON ({e}) at rendered line `{line}`"),
            ));
        }
        Ok(out)
    }

    pub fn render_page(&self, locale: &str, ctx: &PageContext<'_>) -> Result<String, TemplateError> {
        let template = self.env.get_template(PAGE_TEMPLATE).map_err(|e| jinja_error(&self.dir, &e))?;
        template
            .render(minijinja::context! {
                member => ctx.member, apple_url => ctx.apple_url, google_url => ctx.google_url,
                google_configured => ctx.google_configured, assets_url => ctx.assets_url,
                page_url => ctx.page_url, qr_svg => minijinja::Value::from_safe_string(ctx.qr_svg.to_string()),
                barcode_svg => minijinja::Value::from_safe_string(ctx.barcode_svg.to_string()), google_first => ctx.google_first,
                retired => ctx.retired, points_display => ctx.points_display, locale => locale, t => &self.strings(locale).entries,
                organization_name => &self.organization_name,
            })
            .map_err(|e| jinja_error(&self.dir, &e))
    }

    /// Renders every tier with sample members (with and without a name and attributes, voided or not)
    /// and the page in every locale, so a broken template stops start-up rather than a request.
    fn check_renders(&self) -> Result<(), TemplateError> {
        let attributes = [
            serde_json::json!({}),
            serde_json::json!({"expires": "2027-12-31", "perks": "Free coffee", "next_tier": "gold", "points_to_next_tier": 250}),
        ];
        for (name, tier) in &self.tiers {
            for (i, attrs) in attributes.iter().enumerate() {
                let member = MemberFields {
                    member_id: "M-SAMPLE",
                    display_name: if i == 0 { "M-SAMPLE" } else { "Sample Member" },
                    name: if i == 0 { None } else { Some("Sample Member") },
                    tier: name,
                    points: 1250,
                    locale: &self.default_locale,
                    attributes: attrs,
                    latest_offer: if i == 0 {
                        None
                    } else {
                        self.offers.values().next().map(|o| o.design.title.as_str())
                    },
                };
                let ctx = PassContext {
                    pass: PassFields {
                        pass_type_identifier: "pass.example",
                        team_identifier: "TEAM",
                        serial_number: "0123456789abcdef0123456789abcdef",
                        authentication_token: "sample-authentication-token-0123456789",
                        web_service_url: "https://example.invalid",
                        voided: i == 1,
                    },
                    member: member.clone(),
                };
                let json = self.render_pass_json(&tier.design, &ctx)?;
                self.check_pass_json(&json)?;
                for locale in self.strings.keys() {
                    let page = PageContext {
                        member: member.clone(),
                        apple_url: "/a",
                        google_url: if i == 0 { None } else { Some("/g") },
                        google_configured: i == 0,
                        assets_url: "/assets",
                        page_url: "/p",
                        qr_svg: "<svg/>",
                        barcode_svg: "<svg/>",
                        google_first: i == 1,
                        retired: i == 1,
                        points_display: "1,250",
                    };
                    self.render_page(locale, &page)?;
                }
            }
        }
        Ok(())
    }

    /// Every label, value and changeMessage that names a string key must exist in the strings.
    fn check_pass_json(&self, json: &str) -> Result<(), TemplateError> {
        self.check_pass_layout(json, "storeCard", &self.dir.join(PASS_TEMPLATE))
    }

    /// A rendered pass.json of `style` (storeCard, coupon) holds to Apple's layout for it: one primary
    /// field, at most four secondary and auxiliary fields together; every changeMessage has `%@`; every
    /// label and value that names a strings key exists. `path` is the template, for the message.
    pub(crate) fn check_pass_layout(&self, json: &str, style: &str, path: &Path) -> Result<(), TemplateError> {
        let value: serde_json::Value = serde_json::from_str(json).expect("checked by the render");
        let strings = &self.strings[&self.default_locale];
        let Some(card) = value.get(style) else {
            return Err(terr(path, None, format!("has no {style}; tessera issues this pass as a {style}")));
        };
        let primary = card.get("primaryFields").and_then(|v| v.as_array()).map(Vec::len).unwrap_or(0);
        if primary != 1 {
            return Err(terr(path, None, format!("a {style} has exactly one primary field, this one has {primary}")));
        }
        let count = |k: &str| card.get(k).and_then(|v| v.as_array()).map(Vec::len).unwrap_or(0);
        if count("secondaryFields") + count("auxiliaryFields") > 4 {
            return Err(terr(
                path,
                None,
                format!("a {style} shows at most four secondary and auxiliary fields together"),
            ));
        }
        for group in ["headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields"] {
            for field in card.get(group).and_then(|v| v.as_array()).into_iter().flatten() {
                if let Some(message) = field.get("changeMessage").and_then(|v| v.as_str()) {
                    let text = strings.entries.get(message).map(String::as_str).unwrap_or(message);
                    if !text.contains("%@") {
                        return Err(terr(
                            path,
                            None,
                            format!("changeMessage `{message}` has no %@, so Wallet would not show the new value"),
                        ));
                    }
                }
                for key in ["label", "value"] {
                    if let Some(s) = field.get(key).and_then(|v| v.as_str()) {
                        self.check_key(s, path)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A text that looks like a strings key (`points.label`) must be one.
    pub(crate) fn check_key(&self, text: &str, used_by: &Path) -> Result<(), TemplateError> {
        if looks_like_key(text) && !self.strings[&self.default_locale].entries.contains_key(text) {
            let file = self.dir.join(format!("{}.lproj/pass.strings", self.default_locale));
            let used_by = used_by.strip_prefix(&self.dir).unwrap_or(used_by).display();
            return Err(terr(&file, None, format!("has no \"{text}\", which {used_by} uses")));
        }
        Ok(())
    }
}

impl Program {
    /// What request bodies are checked against: these templates' tiers and offer templates.
    pub fn parse_context(&self) -> crate::domain::Context<'_> {
        crate::domain::Context { tiers: self, offers: &self.offers }
    }
}

/// An offer's template is checked against the offers these templates define.
impl crate::domain::TierCatalog for BTreeMap<String, OfferTemplate> {
    fn defines(&self, name: &str) -> bool {
        self.contains_key(name)
    }

    fn names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }
}

/// A request's tier is checked against the tiers these templates define.
impl crate::domain::TierCatalog for Program {
    fn defines(&self, tier: &str) -> bool {
        self.tier(tier).is_some()
    }

    fn names(&self) -> Vec<&str> {
        self.tier_names().collect()
    }
}

/// `points.label`, `tier.gold`: the template's convention for a localized string.
fn looks_like_key(s: &str) -> bool {
    s.contains('.')
        && !s.contains(' ')
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'_')
}

pub(crate) fn jinja_error(dir: &Path, e: &minijinja::Error) -> TemplateError {
    let file = e.name().map(|n| dir.join(n)).unwrap_or_else(|| dir.to_path_buf());
    let mut message = e.kind().to_string();
    if let Some(detail) = e.detail() {
        message = format!("{message}: {detail}");
    }
    terr(&file, e.line(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_parse_with_comments_escapes_and_unicode() {
        let text = "/* header\n comment */\n\"points.label\" = \"คะแนน\";\n// note\n\"q\" = \"say \\\"hi\\\"\";\n";
        let entries = parse_strings(text).unwrap();
        assert_eq!(entries, vec![("points.label".into(), "คะแนน".into()), ("q".into(), "say \"hi\"".into())]);
    }

    #[test]
    fn strings_errors_carry_the_line() {
        assert_eq!(parse_strings("\"a\" = \"b\";\n\"c\" = \"d\"\n").unwrap_err().0, 3);
        assert_eq!(parse_strings("\"a\" = \"b\";\n\n\"c\" \"d\";").unwrap_err().0, 3);
        assert!(parse_strings("\"a\" = \"b\";\"a\" = \"c\";").unwrap_err().1.contains("twice"));
    }

    #[test]
    fn bundled_program_loads_and_renders_every_tier() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let program = Program::load(&dir, "default").unwrap();
        assert_eq!(program.tier_names().collect::<Vec<_>>(), ["silver", "gold", "platinum"]);
        assert!(program.locales().any(|l| l == "th"));
        assert!(program.locales().any(|l| l == "vi"));
        assert_eq!(program.resolve_locale(Some("th-TH")), "th");
        assert_eq!(program.resolve_locale(Some("de")), "en");
        let gold = program.static_files("gold");
        let strip = gold.iter().find(|(n, _)| n == "strip.png").unwrap();
        assert_eq!(&strip.1, &program.tier("gold").unwrap().images["strip.png"]);
    }

    #[test]
    fn a_broken_template_names_its_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/default");
        copy_dir(&src, &tmp.path().join("default"));
        let pass = tmp.path().join("default/pass.json");
        let text = std::fs::read_to_string(&pass).unwrap();
        std::fs::write(&pass, text.replacen("{{ member.points }}", "{{ member.points ", 1)).unwrap();
        let err = Program::load(tmp.path(), "default").err().unwrap();
        assert_eq!(err.file, pass);
        assert!(err.line.is_some(), "{err}");
    }

    pub(crate) fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
}
