//! The Google Wallet half of a program folder: `google/class.json` (the program's loyalty class),
//! `google/object.json` (a member's loyalty object) and `google/tiers/<tier>/object.json` (a tier's own
//! object template, if it has one). Rendered with the same engine and strings as the Apple pass;
//! `localized("key")` writes a LocalizedString of a strings key in every locale, the given one first.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value as Jinja;
use serde::Serialize;
use serde_json::{Value, json};

use super::{MemberFields, Program, TemplateError, jinja_error, terr};

pub const CLASS_TEMPLATE: &str = "google/class.json";
/// Every strings key with its value per locale, one locale first.
pub type Translations = BTreeMap<String, Vec<(String, String)>>;
pub const OBJECT_TEMPLATE: &str = "google/object.json";

/// What `google/class.json` sees besides `t`, `localized` and `program`.
#[derive(Debug, Clone, Serialize)]
pub struct ClassContext<'a> {
    pub class_id: &'a str,
    pub logo_url: &'a str,
    pub callback_url: &'a str,
}

/// What `google/object.json` sees besides `t`, `localized`, `program` and `tier`.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectContext<'a> {
    pub object_id: &'a str,
    pub class_id: &'a str,
    /// ACTIVE, or EXPIRED for a retired member.
    pub state: &'a str,
    pub member: MemberFields<'a>,
    /// The tier's strip image (in the tier's colours), served by tessera.
    pub tier_image_url: &'a str,
}

impl Program {
    /// Whether the folder has the Google templates (required when Google Wallet is configured).
    pub fn has_google_templates(&self) -> bool {
        self.env.get_template(CLASS_TEMPLATE).is_ok() && self.env.get_template(OBJECT_TEMPLATE).is_ok()
    }

    pub fn render_google_class(&self, ctx: &ClassContext<'_>) -> Result<Value, TemplateError> {
        let lowest = self.tiers.first().map(|(_, t)| t.design.background_color.as_str()).unwrap_or("");
        let context = minijinja::context! {
            class_id => ctx.class_id, logo_url => ctx.logo_url, callback_url => ctx.callback_url,
            hex_background_color => hex_color(lowest),
            ..self.google_common(&self.default_locale)
        };
        self.render_json(CLASS_TEMPLATE, context)
    }

    pub fn render_google_object(&self, ctx: &ObjectContext<'_>) -> Result<Value, TemplateError> {
        let tier_template = format!("google/tiers/{}/object.json", ctx.member.tier);
        let name = if self.env.get_template(&tier_template).is_ok() { tier_template.as_str() } else { OBJECT_TEMPLATE };
        let tier = self.tier(ctx.member.tier).map(|t| &t.design);
        let context = minijinja::context! {
            object_id => ctx.object_id, class_id => ctx.class_id, state => ctx.state, member => &ctx.member,
            tier_image_url => ctx.tier_image_url, barcode_type => google_barcode_type(self.barcode_format),
            barcode => self.barcodes.barcode(&self.name, ctx.member.member_id),
            tier => tier, tier_color => tier.map(|t| hex_color(&t.background_color)),
            ..self.google_common(ctx.member.locale)
        };
        self.render_json(name, context)
    }

    /// Renders the class and every tier's object in every locale (retired or not), so a broken Google
    /// template stops start-up rather than an update.
    pub(super) fn check_google_renders(&self) -> Result<(), TemplateError> {
        if !self.has_google_templates() {
            return Ok(());
        }
        let (url, class_id) = ("https://example.invalid/x", "1.sample");
        self.render_google_class(&ClassContext { class_id, logo_url: url, callback_url: url })?;
        let attributes = [json!({}), json!({"perks": "Free coffee"})];
        for (tier, _) in &self.tiers {
            for locale in self.strings.keys() {
                for (i, attrs) in attributes.iter().enumerate() {
                    let member = MemberFields {
                        member_id: "M-SAMPLE",
                        display_name: "Sample Member",
                        name: Some("Sample Member"),
                        tier,
                        points: 1250,
                        locale,
                        attributes: attrs,
                        latest_offer: None,
                    };
                    let state = if i == 0 { "ACTIVE" } else { "EXPIRED" };
                    let ctx = ObjectContext { object_id: "1.sample-M", class_id, state, member, tier_image_url: url };
                    self.render_google_object(&ctx)?;
                }
            }
        }
        Ok(())
    }

    /// `t` (the strings of `locale`), `localized` and `program`.
    pub(super) fn google_common(&self, locale: &str) -> Jinja {
        let translations = self.translations_for(locale);
        let localized = Jinja::from_function(move |key: &str| -> Result<Jinja, minijinja::Error> {
            let values = translations.get(key).ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::UndefinedError,
                    format!("no string \"{key}\" in pass.strings"),
                )
            })?;
            Ok(Jinja::from_serialize(localized_string(values)))
        });
        minijinja::context! {
            t => &self.strings(locale).entries, localized => localized,
            program => minijinja::context! { organization_name => &self.organization_name, name => &self.name },
        }
    }

    /// `translations(locale)`, built once per locale on first use: every object update renders with it.
    fn translations_for(&self, locale: &str) -> Arc<Translations> {
        let all = self
            .google_translations
            .get_or_init(|| self.strings.keys().map(|l| (l.clone(), Arc::new(self.translations(l)))).collect());
        all.get(locale).or_else(|| all.get(&self.default_locale)).cloned().unwrap_or_default()
    }

    /// Every key with its value per locale, `locale` first.
    fn translations(&self, locale: &str) -> Translations {
        let mut order: Vec<&str> = vec![locale];
        order.extend(self.strings.keys().map(String::as_str).filter(|l| *l != locale));
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for l in order.into_iter().filter(|l| self.strings.contains_key(*l)) {
            for (key, value) in &self.strings[l].entries {
                out.entry(key.clone()).or_default().push((l.to_string(), value.clone()));
            }
        }
        out
    }

    pub(super) fn render_json(&self, name: &str, context: Jinja) -> Result<Value, TemplateError> {
        let template = self.env.get_template(name).map_err(|e| jinja_error(&self.dir, &e))?;
        let text = template.render(context).map_err(|e| jinja_error(&self.dir, &e))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(terr(&self.dir.join(name), None, "renders JSON that is not an object")),
            Err(e) => {
                let line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("").trim();
                Err(terr(&self.dir.join(name), None, format!("renders invalid JSON ({e}) at rendered line `{line}`")))
            }
        }
    }
}

/// Google's LocalizedString: the first value is the default, the others its translations.
fn localized_string(values: &[(String, String)]) -> Value {
    let entry = |(language, value): &(String, String)| json!({"language": language, "value": value});
    let mut out = json!({ "defaultValue": values.first().map(entry).unwrap_or(Value::Null) });
    if values.len() > 1 {
        out["translatedValues"] = values[1..].iter().map(entry).collect();
    }
    out
}

/// `rgb(122, 88, 22)` → `#7a5816` (tier.toml colours are checked to be rgb() at load).
pub fn hex_color(rgb: &str) -> String {
    let inner = rgb.trim_start_matches("rgb(").trim_end_matches(')');
    let parts: Vec<u8> = inner.split(',').filter_map(|p| p.trim().parse().ok()).collect();
    match parts.as_slice() {
        [r, g, b] => format!("#{r:02x}{g:02x}{b:02x}"),
        _ => "#000000".into(),
    }
}

pub(super) fn google_barcode_type(apple: &str) -> &'static str {
    match apple {
        "PKBarcodeFormatPDF417" => "PDF_417",
        "PKBarcodeFormatAztec" => "AZTEC",
        "PKBarcodeFormatCode128" => "CODE_128",
        _ => "QR_CODE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> Program {
        Program::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"), "default").unwrap()
    }

    fn member<'a>(locale: &'a str, attributes: &'a Value) -> MemberFields<'a> {
        MemberFields {
            member_id: "M-1",
            display_name: "สมชาย ใจดี",
            name: Some("สมชาย ใจดี"),
            tier: "gold",
            points: 1250,
            locale,
            attributes,
            latest_offer: None,
        }
    }

    #[test]
    fn the_class_has_what_google_requires_in_every_locale() {
        let class = program()
            .render_google_class(&ClassContext {
                class_id: "338.default",
                logo_url: "https://x/logo",
                callback_url: "https://x/cb",
            })
            .unwrap();
        assert_eq!(class["id"], "338.default");
        assert_eq!(class["reviewStatus"], "UNDER_REVIEW");
        assert_eq!(class["callbackOptions"]["url"], "https://x/cb");
        assert_eq!(class["programLogo"]["sourceUri"]["uri"], "https://x/logo");
        assert!(class["hexBackgroundColor"].as_str().unwrap().starts_with('#'));
        let languages: Vec<&str> = class["localizedProgramName"]["translatedValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["language"].as_str().unwrap())
            .collect();
        assert_eq!(class["localizedProgramName"]["defaultValue"]["language"], "en");
        assert_eq!(languages, ["th", "vi"]);
    }

    #[test]
    fn the_object_speaks_the_members_language_and_carries_the_apple_barcode_value() {
        let attributes = json!({"perks": "Free upsize"});
        let ctx = ObjectContext {
            object_id: "338.default-M-1",
            class_id: "338.default",
            state: "ACTIVE",
            member: member("th", &attributes),
            tier_image_url: "https://x/gold.png",
        };
        let object = program().render_google_object(&ctx).unwrap();
        assert_eq!(object["loyaltyPoints"]["balance"]["int"], 1250);
        assert_eq!(object["loyaltyPoints"]["label"], "คะแนน");
        assert_eq!(object["loyaltyPoints"]["localizedLabel"]["defaultValue"]["language"], "th");
        assert_eq!(object["barcode"]["value"], "M-1");
        assert_eq!(object["barcode"]["type"], "QR_CODE");
        assert_eq!(object["accountName"], "สมชาย ใจดี");
        assert_eq!(object["state"], "ACTIVE");
        let modules = object["textModulesData"].as_array().unwrap();
        let attribute = modules.iter().find(|m| m["id"] == "perks").unwrap();
        assert_eq!(attribute["body"], "Free upsize");
        let tier_perk = modules.iter().find(|m| m["id"] == "perk1").unwrap();
        assert_eq!(tier_perk["body"], "อัปไซซ์ฟรีทุกแก้ว");
        assert!(object["secondaryLoyaltyPoints"]["balance"]["string"].is_string());
    }

    #[test]
    fn colours_become_hex() {
        assert_eq!(hex_color("rgb(122, 88, 22)"), "#7a5816");
        assert_eq!(hex_color("rgb(0,0,255)"), "#0000ff");
    }
}
