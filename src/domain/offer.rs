//! An offer's values (SPEC.md "Offers and e-coupons"): its id, template, validity window, limits, and a
//! coupon's code.

use serde_json::Value;
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::{Context, FromJson, Invalid, MemberId, from_json_string, text_schema, text_value};

/// Members one grant request names at most.
pub const MAX_GRANT: usize = 10_000;
/// Coupons one member gets from one grant at most.
pub const MAX_PER_MEMBER: i64 = 10;
/// The largest quota (a million coupons per offer is far past any campaign; the bound keeps sums exact).
pub const MAX_QUOTA: i64 = 100_000_000;
const CODE_PREFIX: &str = "CPN-";
/// Base32 characters after the prefix: 16 × 5 = 80 random bits.
const CODE_CHARS: usize = 16;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// An offer id: the same rules as a member id (`[A-Za-z0-9._-]{1,64}`, not `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferId(String);

impl std::str::FromStr for OfferId {
    type Err = Invalid;

    fn from_str(id: &str) -> Result<OfferId, Invalid> {
        id.parse::<MemberId>().map(|m| OfferId(m.into_string()))
    }
}

text_value!(OfferId);
from_json_string!(OfferId);

impl PartialSchema for OfferId {
    fn schema() -> RefOr<Schema> {
        let pattern = r"^(?!\.\.?$)[A-Za-z0-9._-]{1,64}$";
        text_schema("Letters, digits, '.', '_' and '-'; not `.` or `..`", (1, 64), pattern, "birthday-drink-2026")
    }
}

/// A folder name of an offer template: lowercase letters, digits, '-' and '_', 1 to 64.
pub fn is_template_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// One of the program's offer templates (checked against `Context::offers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferTemplateName(String);

text_value!(OfferTemplateName);

impl FromJson for OfferTemplateName {
    fn from_json(value: &Value, context: &Context<'_>) -> Result<Self, Invalid> {
        let name = value.as_str().ok_or_else(|| Invalid::new("must be a string"))?;
        if context.offers.defines(name) {
            return Ok(OfferTemplateName(name.to_owned()));
        }
        let known = context.offers.names();
        Err(Invalid::new(match known.is_empty() {
            true => format!("`{name}` is not an offer template; the program has none under offers/"),
            false => format!("`{name}` is not an offer template; the program has {}", known.join(", ")),
        }))
    }
}

impl PartialSchema for OfferTemplateName {
    fn schema() -> RefOr<Schema> {
        text_schema("A folder under templates/<program>/offers/", (1, 64), "^[a-z0-9_-]+$", "free-drink")
    }
}

/// A point in time, read from RFC 3339 text (`2026-12-24T00:00:00+07:00`) into unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(i64);

impl Instant {
    pub fn unix(self) -> i64 {
        self.0
    }

    pub fn from_unix(unix: i64) -> Instant {
        Instant(unix)
    }
}

impl std::str::FromStr for Instant {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Instant, Invalid> {
        let parsed =
            time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).map_err(|_| {
                Invalid::new("must be an RFC 3339 date and time with an offset, e.g. 2026-12-24T00:00:00+07:00")
            })?;
        let unix = parsed.unix_timestamp();
        // Before 2000 or after 9999 is a typo, not a campaign.
        if !(946_684_800..=253_402_300_799).contains(&unix) {
            return Err(Invalid::new("must be between the years 2000 and 9999"));
        }
        Ok(Instant(unix))
    }
}

from_json_string!(Instant);

impl utoipa::ToSchema for Instant {}

impl PartialSchema for Instant {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .description(Some("RFC 3339, with an offset"))
            .examples(["2026-12-24T00:00:00+07:00"])
            .into()
    }
}

/// A whole number within bounds, for an offer's limits.
macro_rules! bounded_count {
    ($type:ident, $min:expr, $max:expr, $description:literal, $example:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $type(i64);

        impl $type {
            pub fn get(self) -> i64 {
                self.0
            }

            pub fn new(value: i64) -> Result<$type, Invalid> {
                if !($min..=$max).contains(&value) {
                    return Err(Invalid::new(format!("must be a whole number from {} to {}", $min, $max)));
                }
                Ok($type(value))
            }
        }

        impl FromJson for $type {
            fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
                match value.as_i64() {
                    Some(n) if value.is_i64() || value.is_u64() => $type::new(n),
                    _ => Err(Invalid::new(format!("must be a whole number from {} to {}", $min, $max))),
                }
            }
        }

        impl utoipa::ToSchema for $type {}

        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some($min as f64))
                    .maximum(Some($max as f64))
                    .description(Some($description))
                    .examples([$example])
                    .into()
            }
        }
    };
}

bounded_count!(PerMember, 1, MAX_PER_MEMBER, "Coupons each member gets from a grant", 1);
bounded_count!(Quota, 1, MAX_QUOTA, "Coupons granted in all at most", 5000);

/// A coupon's code: `CPN-` and 16 base32 characters (80 random bits), read case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CouponCode(String);

impl CouponCode {
    /// A fresh random code.
    pub fn random() -> CouponCode {
        let mut bytes = [0u8; CODE_CHARS];
        openssl::rand::rand_bytes(&mut bytes).expect("the OpenSSL random generator failed");
        let body: String = bytes.iter().map(|b| BASE32[(b & 31) as usize] as char).collect();
        CouponCode(format!("{CODE_PREFIX}{body}"))
    }

    /// Whether a scanned text has the shape of a coupon code (it may still be no coupon's).
    pub fn looks_like(text: &str) -> bool {
        text.parse::<CouponCode>().is_ok()
    }
}

impl std::str::FromStr for CouponCode {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<CouponCode, Invalid> {
        let upper = text.trim().to_ascii_uppercase();
        let body = upper.strip_prefix(CODE_PREFIX).unwrap_or("");
        if body.len() != CODE_CHARS || !body.bytes().all(|c| BASE32.contains(&c)) {
            return Err(Invalid::new("must be a coupon code: CPN- and 16 letters A-Z or digits 2-7"));
        }
        Ok(CouponCode(upper))
    }
}

text_value!(CouponCode);
from_json_string!(CouponCode);

impl PartialSchema for CouponCode {
    fn schema() -> RefOr<Schema> {
        text_schema(
            "The code on the coupon (its barcode)",
            (20, 20),
            "^[Cc][Pp][Nn]-[A-Za-z2-7]{16}$",
            "CPN-K7QX2M4TBR5WZ3HA",
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn codes_are_random_base32_read_in_any_case() {
        let a = CouponCode::random();
        let b = CouponCode::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 20);
        assert_eq!(a.as_str().to_lowercase().parse::<CouponCode>().unwrap(), a);
        for bad in [
            "",
            "CPN-",
            "CPN-ABCDEFGHIJKLMNO",
            "CPN-ABCDEFGHIJKLMNOPQ",
            "CPN-ABCDEFGHIJKLMNO1",
            "XYZ-ABCDEFGHIJKLMNOP",
            "M-1001",
        ] {
            assert!(bad.parse::<CouponCode>().is_err(), "{bad}");
            assert!(!CouponCode::looks_like(bad));
        }
    }

    #[test]
    fn instants_are_rfc3339_with_an_offset() {
        assert_eq!("2026-12-24T00:00:00+07:00".parse::<Instant>().unwrap().unix(), 1_798_045_200);
        assert_eq!("2026-12-23T17:00:00Z".parse::<Instant>().unwrap().unix(), 1_798_045_200);
        for bad in ["2026-12-24", "2026-12-24T00:00:00", "tomorrow", "1970-01-01T00:00:00Z"] {
            assert!(bad.parse::<Instant>().is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_bounded_whole_numbers() {
        let context = Context::without_tiers();
        assert_eq!(PerMember::from_json(&json!(2), &context).unwrap().get(), 2);
        for bad in [json!(0), json!(11), json!(1.5), json!("1"), json!(-1)] {
            assert!(PerMember::from_json(&bad, &context).is_err(), "{bad}");
        }
        assert!(Quota::from_json(&json!(MAX_QUOTA + 1), &context).is_err());
    }
}
