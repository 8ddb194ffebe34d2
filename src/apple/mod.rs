//! Apple Wallet: the signing identity, the .pkpass builder and the inspector.

pub mod certs;
pub mod inspect;
pub mod pass;
pub mod signed_data;
pub mod web_service;
pub mod zip;

pub use certs::SigningIdentity;
pub use pass::{CouponData, PassBuilder, PassData};

/// Width and height of a PNG, read from its IHDR chunk; `None` if the bytes are not a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}

/// Apple's image sizes in points for a store card; @2x and @3x multiply them.
pub fn image_points(base_name: &str) -> Option<(u32, u32)> {
    match base_name {
        "icon" => Some((29, 29)),
        "logo" => Some((160, 50)),
        "strip" => Some((375, 123)),
        "thumbnail" => Some((90, 90)),
        "background" => Some((180, 220)),
        "footer" => Some((295, 15)),
        _ => None,
    }
}

/// `strip@2x.png` → (`strip`, 2).
pub fn image_scale(file_name: &str) -> Option<(&str, u32)> {
    let stem = file_name.strip_suffix(".png")?;
    Some(match stem.rsplit_once('@') {
        Some((base, "2x")) => (base, 2),
        Some((base, "3x")) => (base, 3),
        Some(_) => return None,
        None => (stem, 1),
    })
}
