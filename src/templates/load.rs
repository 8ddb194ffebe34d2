//! Reading a program folder: program.toml, images, tiers, strings and the two templates, each checked
//! with the file (and line) at fault.

use std::collections::BTreeMap;
use std::path::Path;

use super::strings::parse_strings;
use super::{
    PAGE_TEMPLATE, PASS_TEMPLATE, REQUIRED_IMAGES, STAFF_TEMPLATE, Strings, TemplateError, Tier, TierDesign,
    jinja_error, terr,
};

/// Apple's barcode format for program.toml's `barcode_format`.
pub(super) fn barcode_format(name: &str, program_path: &Path) -> Result<&'static str, TemplateError> {
    Ok(match name {
        "qr" => "PKBarcodeFormatQR",
        "pdf417" => "PKBarcodeFormatPDF417",
        "aztec" => "PKBarcodeFormatAztec",
        "code128" => "PKBarcodeFormatCode128",
        other => {
            return Err(terr(
                program_path,
                None,
                format!("barcode_format `{other}` is not one of qr, pdf417, aztec, code128"),
            ));
        }
    })
}

/// `images/*.png`, with the ones Wallet requires.
pub(super) fn program_images(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, TemplateError> {
    let images = read_pngs(&dir.join("images"))?;
    if let Some(missing) = REQUIRED_IMAGES.iter().find(|r| !images.contains_key(**r)) {
        return Err(terr(&dir.join("images").join(missing), None, "is missing; Wallet refuses a pass without it"));
    }
    Ok(images)
}

/// `tiers/<name>/`: tier.toml (colors) and the images that replace the program's.
pub(super) fn tier(dir: &Path, program_path: &Path, name: &str) -> Result<Tier, TemplateError> {
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
    {
        return Err(terr(program_path, None, format!("tier `{name}` must be lowercase letters, digits, - or _")));
    }
    let tier_dir = dir.join("tiers").join(name);
    let mut design: TierDesign = read_toml(&tier_dir.join("tier.toml"))?;
    design.name = name.to_string();
    for (key, color) in [
        ("background_color", &design.background_color),
        ("foreground_color", &design.foreground_color),
        ("label_color", &design.label_color),
    ] {
        if !is_rgb(color) {
            return Err(terr(
                &tier_dir.join("tier.toml"),
                None,
                format!("{key} `{color}` is not of the form rgb(r, g, b)"),
            ));
        }
    }
    let images =
        if tier_dir.join("images").is_dir() { read_pngs(&tier_dir.join("images"))? } else { read_pngs(&tier_dir)? };
    Ok(Tier { design, images })
}

/// Every `<locale>.lproj/pass.strings`; each must define every key of the default locale's.
pub(super) fn strings(
    dir: &Path,
    default_locale: &str,
    program_path: &Path,
) -> Result<BTreeMap<String, Strings>, TemplateError> {
    let mut strings = BTreeMap::new();
    for entry in read_dir(dir)? {
        let Some(locale) = entry.file_name().to_str().and_then(|n| n.strip_suffix(".lproj")).map(str::to_string) else {
            continue;
        };
        let path = entry.path().join("pass.strings");
        let raw = std::fs::read(&path).map_err(|e| terr(&path, None, format!("cannot be read: {e}")))?;
        let text = std::str::from_utf8(&raw).map_err(|_| terr(&path, None, "is not UTF-8"))?;
        let entries = parse_strings(text).map_err(|(line, msg)| terr(&path, Some(line), msg))?;
        strings.insert(locale, Strings { raw, entries: entries.into_iter().collect() });
    }
    let Some(default_strings) = strings.get(default_locale) else {
        return Err(terr(
            program_path,
            None,
            format!("default_locale `{default_locale}` has no {default_locale}.lproj/pass.strings"),
        ));
    };
    for (locale, s) in &strings {
        if let Some(missing) = default_strings.entries.keys().find(|k| !s.entries.contains_key(*k)) {
            return Err(terr(
                &dir.join(format!("{locale}.lproj/pass.strings")),
                None,
                format!("has no \"{missing}\", which {default_locale}.lproj defines; every locale needs every key"),
            ));
        }
    }
    Ok(strings)
}

/// The pass.json and page.html templates and every `google/**/*.json`, compiled (named by their path in
/// the program folder); an undefined variable is an error, not blank.
pub(super) fn environment(dir: &Path) -> Result<minijinja::Environment<'static>, TemplateError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let mut names: Vec<String> = vec![PASS_TEMPLATE.into(), PAGE_TEMPLATE.into(), STAFF_TEMPLATE.into()];
    json_files_under(dir, Path::new("google"), &mut names)?;
    json_files_under(dir, Path::new("offers"), &mut names)?;
    for template in names {
        let path = dir.join(&template);
        let source = std::fs::read_to_string(&path).map_err(|e| terr(&path, None, format!("cannot be read: {e}")))?;
        // .json templates escape as JSON (minijinja picks the auto-escaping from the name).
        env.add_template_owned(template, source).map_err(|e| jinja_error(dir, &e))?;
    }
    Ok(env)
}

/// The `.json` files under `dir/relative`, as `/`-separated paths relative to `dir`.
fn json_files_under(dir: &Path, relative: &Path, out: &mut Vec<String>) -> Result<(), TemplateError> {
    if !dir.join(relative).is_dir() {
        return Ok(());
    }
    for entry in read_dir(&dir.join(relative))? {
        let child = relative.join(entry.file_name());
        if entry.path().is_dir() {
            json_files_under(dir, &child, out)?;
        } else if child.extension().is_some_and(|e| e == "json") {
            out.push(child.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Every perk a tier lists is a key the strings define (every locale has the default's keys).
pub(super) fn check_perks(dir: &Path, tiers: &[(String, Tier)], strings: &Strings) -> Result<(), TemplateError> {
    for (name, tier) in tiers {
        if let Some(missing) = tier.design.perks.iter().find(|k| !strings.entries.contains_key(*k)) {
            return Err(terr(
                &dir.join("tiers").join(name).join("tier.toml"),
                None,
                format!(
                    "perk \"{missing}\" is not a key of the strings files; add it to every <locale>.lproj/pass.strings"
                ),
            ));
        }
    }
    Ok(())
}

fn is_rgb(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    parts.len() == 3 && parts.iter().all(|p| p.parse::<u8>().is_ok())
}

pub(super) fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|e| terr(path, None, format!("cannot be read: {e}")))?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        terr(path, line, e.message().to_string())
    })
}

pub(super) fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, TemplateError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| terr(dir, None, format!("cannot be read: {e}")))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

pub(super) fn read_pngs(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, TemplateError> {
    let mut out = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in read_dir(dir)? {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".png") {
            continue;
        }
        let bytes =
            std::fs::read(entry.path()).map_err(|e| terr(&entry.path(), None, format!("cannot be read: {e}")))?;
        if crate::apple::png_size(&bytes).is_none() {
            return Err(terr(&entry.path(), None, "is not a PNG file (Wallet shows PNG only)"));
        }
        out.insert(name, bytes);
    }
    Ok(out)
}
