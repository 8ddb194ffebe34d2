//! The staff page (`staff.html` of the program folder): sign-in, and the scanner once signed in.

use serde::Serialize;

use super::{Program, STAFF_TEMPLATE, TemplateError, jinja_error};

/// What `staff.html` sees besides `t` (the strings of `locale`) and `locales`.
#[derive(Debug, Clone, Serialize)]
pub struct StaffContext<'a> {
    /// The public URL's path (`""` or `/prefix`), for the page's own requests.
    pub base_path: &'a str,
    pub signed_in: bool,
    /// The CSRF token the page sends with every scan and the sign-out (signed in only).
    pub csrf: &'a str,
    /// A strings key for the sign-in form's message (`staff.wrong_token`), if any.
    pub error: Option<&'a str>,
}

impl Program {
    pub fn render_staff(&self, locale: &str, ctx: &StaffContext<'_>) -> Result<String, TemplateError> {
        let template = self.env.get_template(STAFF_TEMPLATE).map_err(|e| jinja_error(&self.dir, &e))?;
        // The strings the page's script needs, as one JSON object.
        let strings = &self.strings(locale).entries;
        let script_strings: std::collections::BTreeMap<&str, &str> = strings
            .iter()
            .filter(|(k, _)| k.starts_with("staff.") || k.starts_with("tier."))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let script_strings =
            serde_json::to_string(&script_strings).unwrap_or_else(|_| "{}".into()).replace("</", "<\\/");
        template
            .render(minijinja::context! {
                base_path => ctx.base_path, signed_in => ctx.signed_in, csrf => ctx.csrf, error => ctx.error,
                locale => locale, t => strings, locales => self.strings.keys().collect::<Vec<_>>(),
                organization_name => &self.organization_name,
                script_strings => minijinja::Value::from_safe_string(script_strings),
            })
            .map_err(|e| jinja_error(&self.dir, &e))
    }

    /// Renders the staff page signed in and out, in every locale.
    pub(super) fn check_staff_renders(&self) -> Result<(), TemplateError> {
        for locale in self.strings.keys() {
            for signed_in in [false, true] {
                let ctx = StaffContext { base_path: "", signed_in, csrf: "csrf", error: Some("staff.wrong_token") };
                self.render_staff(locale, &ctx)?;
            }
        }
        Ok(())
    }
}
