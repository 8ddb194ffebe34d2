//! What a card's barcode carries: the member id (the default, because POS systems read it), or, with
//! `signed_barcodes = true` in program.toml, the member id and a short HMAC (`M-1001:3f9a0c1b2d4e`), so a
//! hand-made barcode of someone else's member id is refused at the counter.

use std::sync::OnceLock;

/// Hex characters of HMAC-SHA256 kept: 48 bits, far beyond guessing at a counter.
const SIGNATURE_CHARS: usize = 12;

#[derive(Debug, Default)]
pub struct BarcodeSigning {
    pub enabled: bool,
    /// Set once at start-up from the deployment's secret (kept in the database).
    key: OnceLock<Vec<u8>>,
}

/// Why a barcode is not one of this program's cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarcodeRefusal {
    Unsigned,
    Forged,
}

impl BarcodeSigning {
    pub fn new(enabled: bool) -> BarcodeSigning {
        BarcodeSigning { enabled, key: OnceLock::new() }
    }

    pub fn set_key(&self, key: &[u8]) {
        let _ = self.key.set(key.to_vec());
    }

    fn signature(&self, program: &str, member_id: &str) -> String {
        let key = self.key.get().map(Vec::as_slice).unwrap_or_default();
        let mac = crate::ids::hmac_sha256(key, format!("{program}:{member_id}").as_bytes());
        hex::encode(mac)[..SIGNATURE_CHARS].to_string()
    }

    /// The barcode text of a member's card.
    pub fn barcode(&self, program: &str, member_id: &str) -> String {
        if self.enabled { format!("{member_id}:{}", self.signature(program, member_id)) } else { member_id.to_string() }
    }

    /// The member id a scanned text names, checking the signature when barcodes are signed.
    pub fn member_of<'a>(&self, program: &str, text: &'a str) -> Result<&'a str, BarcodeRefusal> {
        if !self.enabled {
            return Ok(text);
        }
        let (member_id, signature) = text.rsplit_once(':').ok_or(BarcodeRefusal::Unsigned)?;
        let expected = self.signature(program, member_id);
        if crate::ids::constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            Ok(member_id)
        } else {
            Err(BarcodeRefusal::Forged)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_barcodes_are_the_member_id_and_signed_ones_verify() {
        let plain = BarcodeSigning::new(false);
        assert_eq!(plain.barcode("default", "M-1"), "M-1");
        assert_eq!(plain.member_of("default", "M-1"), Ok("M-1"));
        let signed = BarcodeSigning::new(true);
        signed.set_key(b"0123456789abcdef0123456789abcdef");
        let code = signed.barcode("default", "M-1");
        assert!(code.starts_with("M-1:") && code.len() == 4 + SIGNATURE_CHARS, "{code}");
        assert_eq!(signed.member_of("default", &code), Ok("M-1"));
        assert_eq!(signed.member_of("default", "M-1"), Err(BarcodeRefusal::Unsigned));
        let forged = format!("M-2:{}", &code[4..]);
        assert_eq!(signed.member_of("default", &forged), Err(BarcodeRefusal::Forged));
        assert_eq!(signed.member_of("other", &code), Err(BarcodeRefusal::Forged));
        assert_eq!(signed.member_of("default", "M-1:"), Err(BarcodeRefusal::Forged));
        assert_eq!(signed.member_of("default", &format!("{code}0")), Err(BarcodeRefusal::Forged));
    }
}
