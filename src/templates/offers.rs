//! Offer templates: `templates/<program>/offers/<template>/`.
//!
//! ```text
//! offer.toml                 strings keys of the title, details, fine print and value; redemption channel
//! coupon.json                Jinja template of the Apple coupon pass (style `coupon`)
//! google/offer_class.json    Jinja template of the offer's Google OfferClass
//! google/offer_object.json   Jinja template of a coupon's Google OfferObject
//! *.png                      images that replace the program's of the same name (strip.png: 375x144 pt)
//! ```
//!
//! Rendered with the engine and strings of the card; every template is rendered in every locale at
//! start-up, so one that does not render stops the start instead of a grant.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{MemberFields, PassFields, Program, TemplateError, jinja_error, load, terr};

pub const COUPON_TEMPLATE: &str = "coupon.json";
pub const OFFER_CLASS_TEMPLATE: &str = "google/offer_class.json";
pub const OFFER_OBJECT_TEMPLATE: &str = "google/offer_object.json";
/// Google's redemption channels (OfferClass.redemptionChannel).
const REDEMPTION_CHANNELS: &[&str] = &["INSTORE", "ONLINE", "BOTH", "TEMPORARY_PRICE_REDUCTION"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OfferDesign {
    /// Strings keys (or plain text) of what the coupon says.
    pub title: String,
    pub details: String,
    pub fine_print: String,
    /// What the coupon is worth, shown large on its front ("Free drink", "2× points").
    pub value: String,
    /// INSTORE, ONLINE, BOTH or TEMPORARY_PRICE_REDUCTION.
    #[serde(default = "in_store")]
    pub redemption_channel: String,
}

fn in_store() -> String {
    "INSTORE".into()
}

/// One offer template, read and checked.
#[derive(Debug, Clone)]
pub struct OfferTemplate {
    pub name: String,
    pub design: OfferDesign,
    /// Images of this offer that replace the program's of the same name.
    pub images: BTreeMap<String, Vec<u8>>,
}

/// What coupon.json sees of the coupon.
#[derive(Debug, Clone, Serialize)]
pub struct CouponFields<'a> {
    pub coupon_id: &'a str,
    pub code: &'a str,
    /// active, redeemed, expired or withdrawn.
    pub state: &'a str,
    /// RFC 3339.
    pub valid_from: &'a str,
    pub valid_until: &'a str,
}

/// What coupon.json and the Google templates see of the offer.
#[derive(Debug, Clone, Serialize)]
pub struct OfferFields<'a> {
    pub offer_id: &'a str,
    pub template: &'a str,
    pub title: &'a str,
    pub details: &'a str,
    pub fine_print: &'a str,
    pub value: &'a str,
    pub redemption_channel: &'a str,
}

impl OfferTemplate {
    pub fn fields<'a>(&'a self, offer_id: &'a str) -> OfferFields<'a> {
        let d = &self.design;
        OfferFields {
            offer_id,
            template: &self.name,
            title: &d.title,
            details: &d.details,
            fine_print: &d.fine_print,
            value: &d.value,
            redemption_channel: &d.redemption_channel,
        }
    }
}

/// What coupon.json sees.
#[derive(Debug, Clone, Serialize)]
pub struct CouponContext<'a> {
    pub pass: PassFields<'a>,
    pub coupon: CouponFields<'a>,
    pub offer: OfferFields<'a>,
    pub member: MemberFields<'a>,
}

/// What google/offer_class.json sees besides `t`, `localized` and `program`.
#[derive(Debug, Clone, Serialize)]
pub struct OfferClassContext<'a> {
    pub class_id: &'a str,
    pub offer: OfferFields<'a>,
    pub logo_url: &'a str,
    pub image_url: &'a str,
}

/// What google/offer_object.json sees besides `t`, `localized` and `program`.
#[derive(Debug, Clone, Serialize)]
pub struct OfferObjectContext<'a> {
    pub object_id: &'a str,
    pub class_id: &'a str,
    /// ACTIVE, COMPLETED (redeemed), INACTIVE (withdrawn) or EXPIRED.
    pub state: &'a str,
    pub coupon: CouponFields<'a>,
    pub offer: OfferFields<'a>,
    pub member: MemberFields<'a>,
}

/// `offers/*/`: each folder an offer template (none is fine: a program without offers).
pub(super) fn load_offers(dir: &Path) -> Result<BTreeMap<String, OfferTemplate>, TemplateError> {
    let root = dir.join("offers");
    let mut offers = BTreeMap::new();
    if !root.is_dir() {
        return Ok(offers);
    }
    for entry in load::read_dir(&root)? {
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let folder = entry.path();
        if !crate::domain::is_template_name(&name) {
            return Err(terr(
                &folder,
                None,
                "an offer template's folder name must be lowercase letters, digits, - or _",
            ));
        }
        let toml_path = folder.join("offer.toml");
        let design: OfferDesign = load::read_toml(&toml_path)?;
        if !REDEMPTION_CHANNELS.contains(&design.redemption_channel.as_str()) {
            let message = format!(
                "redemption_channel `{}` is not one of {}",
                design.redemption_channel,
                REDEMPTION_CHANNELS.join(", ")
            );
            return Err(terr(&toml_path, None, message));
        }
        for required in [COUPON_TEMPLATE, OFFER_CLASS_TEMPLATE, OFFER_OBJECT_TEMPLATE] {
            if !folder.join(required).is_file() {
                return Err(terr(&folder.join(required), None, "is missing; every offer template has it"));
            }
        }
        let images = load::read_pngs(&folder)?;
        offers.insert(name.clone(), OfferTemplate { name, design, images });
    }
    Ok(offers)
}

impl Program {
    pub fn offer(&self, template: &str) -> Option<&OfferTemplate> {
        self.offers.get(template)
    }

    pub fn offer_names(&self) -> impl Iterator<Item = &str> {
        self.offers.keys().map(String::as_str)
    }

    /// A strings key's text in `locale` (plain text is itself).
    pub fn text(&self, key: &str, locale: &str) -> String {
        self.strings(locale).entries.get(key).cloned().unwrap_or_else(|| key.to_string())
    }

    /// Every file of an offer's coupon pass except pass.json, manifest.json and signature.
    pub fn coupon_static_files(&self, template: &str) -> Vec<(String, Vec<u8>)> {
        let mut files: BTreeMap<String, Vec<u8>> = self.images.clone();
        // A store card's strip is the wrong size for a coupon (375x144 pt); the offer brings its own.
        files.retain(|name, _| !name.starts_with("strip"));
        if let Some(offer) = self.offer(template) {
            files.extend(offer.images.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut out: Vec<(String, Vec<u8>)> = files.into_iter().collect();
        out.extend(self.strings.iter().map(|(locale, s)| (format!("{locale}.lproj/pass.strings"), s.raw.clone())));
        out
    }

    fn offer_template_name(template: &str, file: &str) -> String {
        format!("offers/{template}/{file}")
    }

    pub fn render_coupon_json(&self, ctx: &CouponContext<'_>) -> Result<String, TemplateError> {
        let name = Self::offer_template_name(ctx.offer.template, COUPON_TEMPLATE);
        let template = self.env.get_template(&name).map_err(|e| jinja_error(&self.dir, &e))?;
        let tier = self.tier(ctx.member.tier).map(|t| &t.design);
        let out = template
            .render(minijinja::context! {
                pass => ctx.pass, coupon => ctx.coupon, offer => ctx.offer, member => ctx.member, tier => tier,
                program => minijinja::context! { organization_name => &self.organization_name, barcode_format => self.barcode_format },
            })
            .map_err(|e| jinja_error(&self.dir, &e))?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&out) {
            let line = out.lines().nth(e.line().saturating_sub(1)).unwrap_or("").trim();
            return Err(terr(
                &self.dir.join(&name),
                None,
                format!("renders invalid JSON ({e}) at rendered line `{line}`"),
            ));
        }
        Ok(out)
    }

    pub fn render_offer_class(&self, ctx: &OfferClassContext<'_>) -> Result<Value, TemplateError> {
        let context = minijinja::context! {
            class_id => ctx.class_id, offer => &ctx.offer, logo_url => ctx.logo_url, image_url => ctx.image_url,
            ..self.google_common(&self.default_locale)
        };
        self.render_json(&Self::offer_template_name(ctx.offer.template, OFFER_CLASS_TEMPLATE), context)
    }

    pub fn render_offer_object(&self, ctx: &OfferObjectContext<'_>) -> Result<Value, TemplateError> {
        let context = minijinja::context! {
            object_id => ctx.object_id, class_id => ctx.class_id, state => ctx.state, coupon => &ctx.coupon,
            offer => &ctx.offer, member => &ctx.member,
            barcode_type => super::google::google_barcode_type(self.barcode_format),
            ..self.google_common(ctx.member.locale)
        };
        self.render_json(&Self::offer_template_name(ctx.offer.template, OFFER_OBJECT_TEMPLATE), context)
    }

    /// Renders every offer's coupon pass (active and voided) and Google class and object in every locale,
    /// and holds the coupon to Apple's layout rules and the strings.
    pub(super) fn check_offer_renders(&self) -> Result<(), TemplateError> {
        let attributes = json!({});
        for offer in self.offers.values() {
            let fields = offer.fields("sample-offer");
            for key in [&offer.design.title, &offer.design.details, &offer.design.fine_print, &offer.design.value] {
                self.check_key(key, &self.dir.join("offers").join(&offer.name).join("offer.toml"))?;
            }
            for locale in self.strings.keys() {
                for state in ["active", "redeemed"] {
                    let coupon = CouponFields {
                        coupon_id: "sample-coupon",
                        code: "CPN-ABCDEFGHIJKLMNOP",
                        state,
                        valid_from: "2026-12-01T00:00:00Z",
                        valid_until: "2026-12-31T23:59:59Z",
                    };
                    let member = MemberFields {
                        member_id: "M-SAMPLE",
                        display_name: "Sample Member",
                        name: Some("Sample Member"),
                        tier: self.tiers.first().map(|(n, _)| n.as_str()).unwrap_or(""),
                        points: 1250,
                        locale,
                        attributes: &attributes,
                        latest_offer: None,
                    };
                    let pass = PassFields {
                        pass_type_identifier: "pass.example",
                        team_identifier: "TEAM",
                        serial_number: "cp-0123456789abcdef0123456789abcdef",
                        authentication_token: "sample-authentication-token-0123456789",
                        web_service_url: "https://example.invalid",
                        voided: state != "active",
                    };
                    let ctx =
                        CouponContext { pass, coupon: coupon.clone(), offer: fields.clone(), member: member.clone() };
                    let json = self.render_coupon_json(&ctx)?;
                    let path = self.dir.join(Self::offer_template_name(&offer.name, COUPON_TEMPLATE));
                    self.check_pass_layout(&json, "coupon", &path)?;
                    let (url, class_id) = ("https://example.invalid/x", "1.sample-offer");
                    let class = OfferClassContext { class_id, offer: fields.clone(), logo_url: url, image_url: url };
                    self.render_offer_class(&class)?;
                    let object = OfferObjectContext {
                        object_id: "1.sample-M-offer",
                        class_id,
                        state: "ACTIVE",
                        coupon,
                        offer: fields.clone(),
                        member,
                    };
                    self.render_offer_object(&object)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::tests::copy_dir;

    fn bundled() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
    }

    #[test]
    fn the_bundled_offers_load_with_their_images() {
        let program = Program::load(&bundled(), "default").unwrap();
        assert_eq!(program.offer_names().collect::<Vec<_>>(), ["double-points", "free-drink"]);
        let files = program.coupon_static_files("free-drink");
        let strip = files.iter().find(|(n, _)| n == "strip.png").unwrap();
        assert_eq!(strip.1, program.offer("free-drink").unwrap().images["strip.png"]);
        assert!(files.iter().any(|(n, _)| n == "th.lproj/pass.strings"));
        assert!(files.iter().any(|(n, _)| n == "icon.png"));
        assert_eq!(program.text("offer.free_drink.title", "th"), "เครื่องดื่มฟรี 1 แก้ว");
    }

    #[test]
    fn a_broken_offer_stops_the_load_naming_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&bundled().join("default"), &tmp.path().join("default"));
        let coupon = tmp.path().join("default/offers/free-drink/coupon.json");
        let text = std::fs::read_to_string(&coupon).unwrap();
        std::fs::write(&coupon, text.replacen("\"coupon\": {", "\"storeCard\": {", 1)).unwrap();
        let err = Program::load(tmp.path(), "default").err().unwrap();
        assert_eq!(err.file, coupon);
        assert!(err.message.contains("coupon"), "{err}");

        std::fs::write(&coupon, text).unwrap();
        let toml = tmp.path().join("default/offers/free-drink/offer.toml");
        let offer = std::fs::read_to_string(&toml).unwrap();
        std::fs::write(&toml, offer.replace("\"INSTORE\"", "\"BY_PIGEON\"")).unwrap();
        let err = Program::load(tmp.path(), "default").err().unwrap();
        assert!(err.message.contains("BY_PIGEON"), "{err}");

        std::fs::write(&toml, offer.replace("offer.free_drink.details", "offer.free_drink.nowhere")).unwrap();
        let err = Program::load(tmp.path(), "default").err().unwrap();
        assert!(err.message.contains("offer.free_drink.nowhere"), "{err}");
    }
}
