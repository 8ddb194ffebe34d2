//! Domain values, parsed once at the edge into types that cannot hold a bad value: a member's id, name,
//! tier, points, locale and attributes (`member`), a ledger event's id and sequence (`ledger`), Apple's
//! device library ids, push tokens and serial numbers (`apple`), a scan's barcode and location (`scan`).
//! Each type has one constructor that enforces the contract (SPEC.md) and answers a plain-words reason
//! ([`Invalid`]); the value inside is private and read through `as_str()` or `get()`. Each also describes
//! itself to the OpenAPI document with the constraints its constructor enforces, and `json` builds
//! request bodies out of them that name every field at fault at once. Pure: no HTTP, no database.

mod apple;
mod json;
mod ledger;
mod member;
mod offer;
mod scan;

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

pub use apple::{DeviceLibraryId, MAX_DEVICE_LIBRARY_ID, MAX_PUSH_TOKEN, MAX_SERIAL_NUMBER, PushToken, SerialNumber};
pub(crate) use json::json_object;
pub use json::{Context, Fault, Faults, FromJson, FromObject};
pub use ledger::{EventId, MAX_EVENT_ID, Sequence};
pub use member::{
    Attributes, Locale, MAX_ATTRIBUTES_BYTES, MAX_MEMBER_ID, MAX_NAME_CHARS, MAX_POINTS, MemberId, MemberName, Points,
    TierCatalog, TierName,
};
pub use offer::{
    CouponCode, Instant, MAX_GRANT, MAX_PER_MEMBER, MAX_QUOTA, OfferId, OfferTemplateName, PerMember, Quota,
    is_template_name,
};
pub use scan::{Barcode, Location, MAX_BARCODE, MAX_LOCATION};

/// Why a value is not one of its type, in plain words that follow the field's name ("points must be
/// between 0 and 1000000000000").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(Cow<'static, str>);

impl Invalid {
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Invalid {
        Invalid(reason.into())
    }

    pub fn reason(&self) -> &str {
        &self.0
    }

    pub fn into_reason(self) -> Cow<'static, str> {
        self.0
    }
}

/// A pattern for text without control characters (Unicode category Cc, as `char::is_control`).
const NO_CONTROL: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
/// A pattern for text without control characters that is not blank.
const NOT_BLANK_NO_CONTROL: &str =
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// The OpenAPI schema of a text value: its length bounds in characters, its pattern and an example.
fn text_schema(description: &str, (min, max): (usize, usize), pattern: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .examples([example])
        .into()
}

/// What every text value has: `as_str`, `into_string`, `Display`, `AsRef<str>`, `Serialize` (as the text),
/// and the `ToSchema` half that names its schema after the type.
macro_rules! text_value {
    ($type:ident) => {
        impl $type {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $type {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl utoipa::ToSchema for $type {}
    };
}
use text_value;

/// A text value read from a JSON string with its `FromStr` (that is, its constructor).
macro_rules! from_json_string {
    ($type:ident) => {
        impl $crate::domain::FromJson for $type {
            fn from_json(
                value: &serde_json::Value,
                _: &$crate::domain::Context<'_>,
            ) -> Result<Self, $crate::domain::Invalid> {
                value.as_str().ok_or_else(|| $crate::domain::Invalid::new("must be a string"))?.parse()
            }
        }
    };
}
use from_json_string;
