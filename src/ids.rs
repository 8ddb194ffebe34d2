//! Random identifiers and constant-time comparison.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` random bytes from OpenSSL's CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buf).expect("the OpenSSL random generator failed");
    URL_SAFE_NO_PAD.encode(&buf)
}

/// 128 random bits as 32 lowercase hex characters (serial numbers: Wallet likes 16+ characters).
pub fn random_hex128() -> String {
    let mut buf = [0u8; 16];
    openssl::rand::rand_bytes(&mut buf).expect("the OpenSSL random generator failed");
    hex::encode(buf)
}

/// Where decisions get the identifiers of a new member and its pass, so tests can pass predictable ones.
pub trait IdSource {
    /// The unguessable id in the member's links.
    fn public_id(&mut self) -> String;
    /// The pass's serial number.
    fn serial(&mut self) -> String;
    /// The pass's authenticationToken.
    fn auth_token(&mut self) -> String;
    /// A coupon's code (what its barcode carries and staff redeem).
    fn coupon_code(&mut self) -> String {
        crate::domain::CouponCode::random().into_string()
    }
}

/// Fresh random identifiers from OpenSSL's CSPRNG.
pub struct RandomIds;

impl IdSource for RandomIds {
    fn public_id(&mut self) -> String {
        random_token(16)
    }
    fn serial(&mut self) -> String {
        random_hex128()
    }
    fn auth_token(&mut self) -> String {
        random_token(32)
    }
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// HMAC-SHA256 of `message` with `key` (OpenSSL).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    // OpenSSL refuses an empty key; HMAC pads keys with zeros, so one zero byte is the same key.
    let key = PKey::hmac(if key.is_empty() { &[0] } else { key }).expect("an HMAC key from bytes");
    let mut signer = Signer::new(MessageDigest::sha256(), &key).expect("an HMAC-SHA256 signer");
    signer.update(message).expect("hashing");
    signer.sign_to_vec().expect("an HMAC signature")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = random_token(16);
        let b = random_token(16);
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(random_hex128().len(), 32);
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
