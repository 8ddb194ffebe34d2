//! Request bodies read from JSON objects field by field, so that one answer names every field at fault:
//! each field goes through [`Faults::field`] (one generic reader, whatever the field's type), which
//! records why it is not a value of its type and moves on to the next. [`json_object!`] declares a body
//! and generates its parser, so the type the OpenAPI document describes is the type that parses.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{Invalid, TierCatalog};

/// What parsing a request checks values against besides their own rules.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The program's tiers, for [`super::TierName`].
    pub tiers: &'a dyn TierCatalog,
    /// The program's offer templates, for [`super::OfferTemplateName`] (a catalog of names too).
    pub offers: &'a dyn TierCatalog,
}

impl Context<'static> {
    /// For a body that names no tier.
    pub fn without_tiers() -> Context<'static> {
        const NONE: &[&str] = &[];
        Context { tiers: &NONE, offers: &NONE }
    }
}

/// A value read from one JSON field.
pub trait FromJson: Sized {
    /// Reads a present, non-null value.
    fn from_json(value: &Value, context: &Context<'_>) -> Result<Self, Invalid>;

    /// What an absent (or null) field reads as: by default the field is required.
    fn from_absent() -> Result<Self, Invalid> {
        Err(Invalid::new("is required"))
    }

    /// What a present value of an optional field reads as; a type may read some values as none.
    fn from_json_optional(value: &Value, context: &Context<'_>) -> Result<Option<Self>, Invalid> {
        Self::from_json(value, context).map(Some)
    }
}

/// An optional field: absent or null is `None`.
impl<T: FromJson> FromJson for Option<T> {
    fn from_json(value: &Value, context: &Context<'_>) -> Result<Self, Invalid> {
        T::from_json_optional(value, context)
    }

    fn from_absent() -> Result<Self, Invalid> {
        Ok(None)
    }
}

/// A list: every item read with its type's rules; the first item at fault is named by its index.
impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value, context: &Context<'_>) -> Result<Self, Invalid> {
        let items = value.as_array().ok_or_else(|| Invalid::new("must be an array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| T::from_json(item, context).map_err(|e| Invalid::new(format!("item {i} ({item}) {e}"))))
            .collect()
    }
}

/// One field at fault: its path (`points`, `events[2].tier`; empty for the body itself) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub field: String,
    pub message: Cow<'static, str>,
}

/// The faults of one request, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults(Vec<Fault>);

impl Faults {
    pub fn one(field: impl Into<String>, message: impl Into<Cow<'static, str>>) -> Faults {
        let mut faults = Faults::default();
        faults.push(field, message);
        faults
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<Cow<'static, str>>) {
        self.0.push(Fault { field: field.into(), message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Fault> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<Fault> {
        self.0
    }

    pub fn append(&mut self, mut other: Faults) {
        self.0.append(&mut other.0);
    }

    /// Keeps the first `n` faults (an answer need not list thousands).
    pub fn truncate(&mut self, n: usize) {
        self.0.truncate(n);
    }

    /// Adds the faults of a part of the request under its path: `events[2]` and `tier` give
    /// `events[2].tier`; a fault of the part itself is named by the path alone.
    pub fn nest(&mut self, path: &str, inner: Faults) {
        for fault in inner.0 {
            let field = if fault.field.is_empty() { path.to_string() } else { format!("{path}.{}", fault.field) };
            self.0.push(Fault { field, ..fault });
        }
    }

    /// Reads the field `key` of `object` as a `T`, recording why not under `key`.
    pub fn field<T: FromJson>(&mut self, object: &Map<String, Value>, key: &str, context: &Context<'_>) -> Option<T> {
        let read = match object.get(key) {
            None | Some(Value::Null) => T::from_absent(),
            Some(value) => T::from_json(value, context),
        };
        read.map_err(|invalid| self.push(key, invalid.into_reason())).ok()
    }

    /// Records every key of `object` that is not one of `fields` ("is not a member field (name, …)").
    pub fn refuse_unknown(&mut self, object: &Map<String, Value>, fields: &[&str], what: &str) {
        for key in object.keys().filter(|k| !fields.contains(&k.as_str())) {
            self.push(key.as_str(), format!("is not a {what} field ({})", fields.join(", ")));
        }
    }
}

/// A request body: a JSON object whose fields are domain values. Implemented by [`json_object!`].
pub trait FromObject: Sized {
    /// The fields, as JSON names them.
    const FIELDS: &'static [&'static str];

    /// Reads every field, answering all the faults found, or the body.
    fn from_object(object: &Map<String, Value>, context: &Context<'_>) -> Result<Self, Faults>;

    /// Reads a JSON value that should be such an object.
    fn from_value(value: &Value, context: &Context<'_>) -> Result<Self, Faults> {
        match value {
            Value::Object(object) => Self::from_object(object, context),
            _ => Err(Faults::one("", "must be a JSON object")),
        }
    }
}

/// Declares a request body: the struct, with `utoipa::ToSchema` (so the OpenAPI document describes this
/// very type), and its [`FromObject`] parser, which reads each field through [`Faults::field`] and so
/// names every field at fault at once. `unknown_fields: refused("member")` makes a key that is not a
/// field a fault ("is not a member field (…)"); `unknown_fields: ignored` lets it pass. A field may give
/// its JSON name (`push_token as "pushToken": PushToken`).
macro_rules! json_object {
    (unknown_fields: refused($what:literal), $($body:tt)*) => {
        $crate::domain::json_object!(@define Some($what), $($body)*);
    };
    (unknown_fields: ignored, $($body:tt)*) => {
        $crate::domain::json_object!(@define Option::<&str>::None, $($body)*);
    };
    (@define $refuse:expr,
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident $(as $key:literal)? : $type:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(utoipa::ToSchema)]
        $vis struct $name {
            $($(#[$field_meta])* $(#[schema(rename = $key)])? $field_vis $field: $type,)*
        }

        impl $crate::domain::FromObject for $name {
            const FIELDS: &'static [&'static str] = &[$($crate::domain::json_object!(@key $field $($key)?)),*];

            fn from_object(
                object: &serde_json::Map<String, serde_json::Value>,
                context: &$crate::domain::Context<'_>,
            ) -> Result<Self, $crate::domain::Faults> {
                let mut faults = $crate::domain::Faults::default();
                if let Some(what) = $refuse {
                    faults.refuse_unknown(object, Self::FIELDS, what);
                }
                $(let $field =
                    faults.field::<$type>(object, $crate::domain::json_object!(@key $field $($key)?), context);)*
                match ($($field,)*) {
                    ($(Some($field),)*) if faults.is_empty() => Ok($name { $($field),* }),
                    _ => Err(faults),
                }
            }
        }
    };
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
}
pub(crate) use json_object;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{Locale, MemberName, Points, TierName};

    const TIERS: &[&str] = &["silver", "gold"];

    json_object! {
        unknown_fields: refused("sample"),
        /// A body of each kind of field.
        #[derive(Debug)]
        struct Sample {
            name: MemberName,
            tier: TierName,
            points: Points,
            locale: Option<Locale>,
            renamed as "otherName": Option<Points>,
        }
    }

    json_object! {
        unknown_fields: ignored,
        #[derive(Debug)]
        struct Lenient {
            points: Points,
        }
    }

    fn context() -> Context<'static> {
        Context { tiers: &TIERS, offers: &TIERS }
    }

    fn fields(faults: &Faults) -> Vec<(&str, &str)> {
        faults.iter().map(|f| (f.field.as_str(), f.message.as_ref())).collect()
    }

    #[test]
    fn a_good_body_reads_into_its_values() {
        let body = json!({"name": "Ann", "tier": "gold", "points": 5, "otherName": 7});
        let sample = Sample::from_value(&body, &context()).unwrap();
        assert_eq!((sample.name.as_str(), sample.tier.as_str(), sample.points.get()), ("Ann", "gold", 5));
        assert_eq!((sample.locale, sample.renamed.map(Points::get)), (None, Some(7)));
        assert_eq!(Sample::FIELDS, ["name", "tier", "points", "locale", "otherName"]);
    }

    #[test]
    fn every_field_at_fault_is_named_at_once() {
        let body = json!({"name": 5, "tier": "bronze", "locale": null, "otherName": "x", "extra": 1});
        let faults = Sample::from_value(&body, &context()).unwrap_err();
        assert_eq!(
            fields(&faults),
            [
                ("extra", "is not a sample field (name, tier, points, locale, otherName)"),
                ("name", "must be a string"),
                ("tier", "`bronze` is not a tier of this program; use one of: silver, gold"),
                ("points", "is required"),
                ("otherName", "must be a number"),
            ]
        );
        assert_eq!(fields(&Sample::from_value(&json!([1]), &context()).unwrap_err()), [("", "must be a JSON object")]);
    }

    #[test]
    fn unknown_fields_pass_where_the_body_ignores_them() {
        assert_eq!(Lenient::from_value(&json!({"points": 1, "extra": true}), &context()).unwrap().points.get(), 1);
        assert_eq!(
            fields(&Lenient::from_value(&json!({"extra": true}), &context()).unwrap_err()),
            [("points", "is required")]
        );
    }

    #[test]
    fn nested_faults_carry_their_path() {
        let mut faults = Faults::default();
        faults.nest("events[2]", Faults::one("tier", "is required"));
        faults.nest("events[3]", Faults::one("", "must be a JSON object"));
        assert_eq!(fields(&faults), [("events[2].tier", "is required"), ("events[3]", "must be a JSON object")]);
    }
}
