//! The pass images: PNG only, Apple's sizes, the images the style shows, and the ones a card needs.

use std::collections::BTreeMap;

use super::fields::Style;
use super::report::Collector;
use crate::apple::{image_points, image_scale, png_size};

/// The images each style draws; Wallet ignores the others.
fn images_of(style: Style) -> &'static [&'static str] {
    match style {
        Style::StoreCard | Style::Coupon => &["icon", "logo", "strip"],
        Style::EventTicket => &["icon", "logo", "strip", "background", "thumbnail"],
        Style::Generic => &["icon", "logo", "thumbnail"],
        Style::BoardingPass => &["icon", "logo", "footer"],
    }
}

/// Apple's size in points of `base` for `style`; the strip's height depends on the style.
fn points(base: &str, style: Option<Style>) -> Option<(u32, u32)> {
    match (base, style) {
        ("strip", Some(Style::EventTicket)) => Some((375, 98)),
        ("strip", Some(Style::Coupon)) => Some((375, 144)),
        _ => image_points(base),
    }
}

/// What the images check needs to know of pass.json.
pub struct ImageContext {
    pub style: Option<Style>,
    pub has_logo_text: bool,
}

pub fn check_images(files: &BTreeMap<String, Vec<u8>>, context: &ImageContext, out: &mut Collector) {
    for (name, data) in files {
        check_image(name, data, context.style, out);
    }
    let has = |base: &str| {
        files.keys().any(|name| {
            let file = name.rsplit('/').next().unwrap_or(name);
            image_scale(file).is_some_and(|(b, _)| b == base)
        })
    };
    if context.style == Some(Style::StoreCard) && !has("strip") {
        out.warn(
            Some("strip.png"),
            "is missing; a storeCard without a strip image shows its balance on a plain background and looks unfinished",
        );
    }
    if !has("logo") && !context.has_logo_text {
        out.warn(Some("logo.png"), "is missing and pass.json has no logoText; the top of the card is empty");
    }
    for base in ["logo", "strip", "thumbnail", "background", "footer"] {
        let one = format!("{base}.png");
        let two = format!("{base}@2x.png");
        if files.contains_key(&one) && !files.contains_key(&two) {
            out.warn(Some(&two), format!("is missing; every current iPhone shows {one} blurred"));
        }
    }
}

fn check_image(name: &str, data: &[u8], style: Option<Style>, out: &mut Collector) {
    let file_name = name.rsplit('/').next().unwrap_or(name);
    let lower = file_name.to_ascii_lowercase();
    if !lower.ends_with(".png") {
        if [".jpg", ".jpeg", ".gif", ".webp", ".heic"].iter().any(|x| lower.ends_with(x)) {
            out.error(Some(name), "is not a PNG; Wallet ignores other image formats");
        }
        return;
    }
    let size = png_size(data).filter(|&(w, h)| w > 0 && h > 0);
    let Some((w, h)) = size else {
        return out.error(Some(name), "is not a valid PNG");
    };
    let Some((base, scale)) = image_scale(file_name) else { return };
    if let Some(style) = style
        && image_points(base).is_some()
        && !images_of(style).contains(&base)
    {
        out.warn(Some(name), format!("is not shown on a {}; Wallet ignores it", style.key()));
    }
    let Some((pw, ph)) = points(base, style) else { return };
    let (ew, eh) = (pw.saturating_mul(scale), ph.saturating_mul(scale));
    if base == "icon" && (w, h) != (ew, eh) {
        out.warn(Some(name), format!("is {w}x{h} px; Apple's size is {ew}x{eh}"));
    } else if base != "icon" && (w > ew || h > eh) {
        out.warn(Some(name), format!("is {w}x{h} px, larger than Apple's {ew}x{eh}; Wallet crops it"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut data = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        data.extend_from_slice(&w.to_be_bytes());
        data.extend_from_slice(&h.to_be_bytes());
        data
    }

    fn run(files: &[(&str, Vec<u8>)], style: Style) -> Vec<super::super::report::Finding> {
        let files: BTreeMap<String, Vec<u8>> = files.iter().map(|(n, d)| (n.to_string(), d.clone())).collect();
        let mut out = Collector::default();
        check_images(&files, &ImageContext { style: Some(style), has_logo_text: false }, &mut out);
        out.finish().findings
    }

    #[test]
    fn rules() {
        let card = || {
            vec![
                ("icon.png", png(29, 29)),
                ("icon@2x.png", png(58, 58)),
                ("logo.png", png(160, 50)),
                ("logo@2x.png", png(320, 100)),
                ("strip.png", png(375, 123)),
                ("strip@2x.png", png(750, 246)),
            ]
        };
        assert!(run(&card(), Style::StoreCard).is_empty(), "{:?}", run(&card(), Style::StoreCard));
        let with = |extra: (&'static str, Vec<u8>)| {
            let mut files = card();
            files.retain(|(n, _)| *n != extra.0);
            files.push(extra);
            files
        };
        let without = |name: &str| {
            let mut files = card();
            files.retain(|(n, _)| *n != name);
            files
        };
        type Case<'a> = (Vec<(&'a str, Vec<u8>)>, Style, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            (with(("icon.png", png(30, 30))), Style::StoreCard, "icon.png", "Apple's size is 29x29"),
            (with(("strip@2x.png", png(750, 300))), Style::StoreCard, "strip@2x.png", "Wallet crops it"),
            (card(), Style::EventTicket, "strip.png", "larger than Apple's 375x98"),
            (with(("thumbnail.png", png(90, 90))), Style::StoreCard, "thumbnail.png", "not shown on a storeCard"),
            (with(("logo.png", b"GIF89a".to_vec())), Style::StoreCard, "logo.png", "not a valid PNG"),
            (with(("photo.jpg", vec![0xff, 0xd8])), Style::StoreCard, "photo.jpg", "not a PNG"),
            (
                without("strip.png").into_iter().filter(|(n, _)| !n.starts_with("strip")).collect(),
                Style::StoreCard,
                "strip.png",
                "plain background",
            ),
            (without("logo@2x.png"), Style::StoreCard, "logo@2x.png", "blurred"),
            (
                without("logo.png").into_iter().filter(|(n, _)| !n.starts_with("logo")).collect(),
                Style::StoreCard,
                "logo.png",
                "top of the card is empty",
            ),
            (with(("icon.png", png(0, 0))), Style::StoreCard, "icon.png", "not a valid PNG"),
        ];
        for (files, style, file, phrase) in cases {
            let findings = run(&files, style);
            assert!(
                findings.iter().any(|f| f.file.as_deref() == Some(file) && f.message.contains(phrase)),
                "{file} {phrase}: {findings:?}"
            );
        }
    }
}
