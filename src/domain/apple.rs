//! Apple's web-service values: device library identifiers, push tokens and serial numbers.

use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::{Invalid, from_json_string, text_schema, text_value};

pub const MAX_DEVICE_LIBRARY_ID: usize = 128;
pub const MAX_PUSH_TOKEN: usize = 200;
/// Longest serial number looked up; ours are 32 characters.
pub const MAX_SERIAL_NUMBER: usize = 128;

fn id_chars(text: &str) -> bool {
    text.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A device's library identifier (the `{device}` path segment): 1 to 128 letters, digits, `-`, `_`, `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceLibraryId(String);

impl std::str::FromStr for DeviceLibraryId {
    type Err = Invalid;

    fn from_str(id: &str) -> Result<DeviceLibraryId, Invalid> {
        if id.is_empty() || id.len() > MAX_DEVICE_LIBRARY_ID || !id_chars(id) {
            return Err(Invalid::new("must be 1 to 128 letters, digits, '-', '_' or '.'"));
        }
        Ok(DeviceLibraryId(id.to_owned()))
    }
}

text_value!(DeviceLibraryId);

impl PartialSchema for DeviceLibraryId {
    fn schema() -> RefOr<Schema> {
        let description = "The device library identifier Wallet sends";
        text_schema(description, (1, MAX_DEVICE_LIBRARY_ID), "^[A-Za-z0-9._-]+$", "6b3c1a0e9f2d4c7a")
    }
}

/// An APNs device token: hex, 1 to 200 characters, kept in lowercase. Never shown: its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PushToken(String);

impl std::str::FromStr for PushToken {
    type Err = Invalid;

    fn from_str(token: &str) -> Result<PushToken, Invalid> {
        if token.is_empty() || token.len() > MAX_PUSH_TOKEN || !token.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Invalid::new("must be a hex string of at most 200 characters"));
        }
        Ok(PushToken(token.to_ascii_lowercase()))
    }
}

impl PushToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PushToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PushToken({} hex digits)", self.0.len())
    }
}

from_json_string!(PushToken);

impl PartialSchema for PushToken {
    fn schema() -> RefOr<Schema> {
        text_schema("The APNs device token, in hex", (1, MAX_PUSH_TOKEN), "^[0-9A-Fa-f]+$", "a1b2c3d4e5f6")
    }
}

impl utoipa::ToSchema for PushToken {}

/// A pass's serial number as a path names it: 1 to 128 letters, digits, `-`, `_`, `.` (ours are hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SerialNumber(String);

impl std::str::FromStr for SerialNumber {
    type Err = Invalid;

    fn from_str(serial: &str) -> Result<SerialNumber, Invalid> {
        if serial.is_empty() || serial.len() > MAX_SERIAL_NUMBER || !id_chars(serial) {
            return Err(Invalid::new("must be 1 to 128 letters, digits, '-', '_' or '.'"));
        }
        Ok(SerialNumber(serial.to_owned()))
    }
}

text_value!(SerialNumber);

impl PartialSchema for SerialNumber {
    fn schema() -> RefOr<Schema> {
        let description = "The pass's serialNumber";
        text_schema(description, (1, MAX_SERIAL_NUMBER), "^[A-Za-z0-9._-]+$", "3f2a9c0d5e7b4a1c8d6e0f9a2b3c4d5e")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_library_ids_are_bounded_and_printable() {
        for good in ["dev-1", "a.b_c", &"x".repeat(128)] {
            assert_eq!(good.parse::<DeviceLibraryId>().unwrap().as_str(), good);
        }
        for bad in ["", &"x".repeat(129), "a b", "a/b", "é", "a%2Fb"] {
            assert_eq!(
                bad.parse::<DeviceLibraryId>().unwrap_err().to_string(),
                "must be 1 to 128 letters, digits, '-', '_' or '.'"
            );
        }
    }

    #[test]
    fn push_tokens_are_bounded_hex_kept_lowercase() {
        assert_eq!("ABcd01".parse::<PushToken>().unwrap().as_str(), "abcd01");
        assert!("a".repeat(200).parse::<PushToken>().is_ok());
        for bad in ["", "zz", "ab cd", "0x12", &"a".repeat(201)] {
            assert_eq!(
                bad.parse::<PushToken>().unwrap_err().to_string(),
                "must be a hex string of at most 200 characters"
            );
        }
        assert!(!format!("{:?}", "abcdef".parse::<PushToken>().unwrap()).contains("abcdef"), "Debug hides it");
    }

    #[test]
    fn serial_numbers_are_bounded_ids() {
        for good in ["3f2a9c0d5e7b4a1c8d6e0f9a2b3c4d5e", "S-1", &"a".repeat(128)] {
            assert_eq!(good.parse::<SerialNumber>().unwrap().as_str(), good);
        }
        for bad in ["", &"a".repeat(129), "../etc", "a b", "a\u{0}"] {
            assert!(bad.parse::<SerialNumber>().is_err(), "{bad:?}");
        }
    }
}
