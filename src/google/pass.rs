//! Pure builders for Google Wallet: the ids of the class and of a member's object, and the signed
//! "Add to Google Wallet" link. No I/O; the worker and the member answer use them.

use serde::Serialize;
use serde_json::{Value, json};

use super::account::ServiceAccount;

pub const SAVE_URL_PREFIX: &str = "https://pay.google.com/gp/v/save/";
/// Browsers truncate longer links (Google: "JWTs used in web links must not exceed 1800 characters").
pub const MAX_JWT_CHARS: usize = 1800;

/// The program's class: `<issuer>.<program>`.
pub fn class_id(issuer_id: &str, program: &str) -> String {
    format!("{issuer_id}.{program}")
}

/// A member's object: `<issuer>.<program>-<member id>`. Member ids are `[A-Za-z0-9._-]{1,64}` and
/// program names `[A-Za-z0-9_-]`, all characters Google allows in an id, so the mapping is the identity
/// on the member id and is reversed by [`member_of_object`].
pub fn object_id(issuer_id: &str, program: &str, member_id: &str) -> String {
    format!("{issuer_id}.{program}-{member_id}")
}

/// The member id of one of this issuer's and program's object ids, if it is one.
pub fn member_of_object<'a>(issuer_id: &str, program: &str, object_id: &'a str) -> Option<&'a str> {
    let rest = object_id.strip_prefix(issuer_id)?.strip_prefix('.')?.strip_prefix(program)?.strip_prefix('-')?;
    rest.parse::<crate::domain::MemberId>().ok().map(|_| rest)
}

#[derive(Serialize)]
struct SaveClaims<'a> {
    iss: &'a str,
    aud: &'static str,
    typ: &'static str,
    iat: i64,
    origins: Vec<String>,
    payload: Value,
}

/// The origin (`scheme://host[:port]`) of the public URL, for the JWT's `origins`.
pub fn origin(public_url: &str) -> String {
    match crate::urls::PublicUrl::parse(public_url) {
        Ok(url) => url.origin(),
        Err(_) => public_url.to_string(),
    }
}

/// A save link whose JWT names the object already inserted (the "skinny" JWT).
pub fn skinny_link(
    account: &ServiceAccount,
    public_url: &str,
    object_id: &str,
    class_id: &str,
    iat: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let payload = json!({"loyaltyObjects": [{"id": object_id, "classId": class_id}]});
    link(account, public_url, payload, iat)
}

/// A save link carrying the whole object (and the class when it may not exist yet), for when the API
/// cannot be reached: as rendered if that fits, else without the translations (the member's own
/// language stays; the worker's update brings the rest once Google answers); `None` when even that is
/// longer than browsers keep.
pub fn fat_link(
    account: &ServiceAccount,
    public_url: &str,
    object: &Value,
    class: Option<&Value>,
    iat: i64,
) -> Result<Option<String>, jsonwebtoken::errors::Error> {
    let payload = |object: &Value, class: Option<&Value>| {
        let mut payload = json!({"loyaltyObjects": [object]});
        if let Some(class) = class {
            payload["loyaltyClasses"] = json!([class]);
        }
        payload
    };
    let fits = |url: &String| url.len() - SAVE_URL_PREFIX.len() <= MAX_JWT_CHARS;
    let url = link(account, public_url, payload(object, class), iat)?;
    if fits(&url) {
        return Ok(Some(url));
    }
    let (object, class) = (without_translations(object), class.map(without_translations));
    let url = link(account, public_url, payload(&object, class.as_ref()), iat)?;
    Ok(fits(&url).then_some(url))
}

/// `value` without the `localized*` and `contentDescription` members (Google falls back to the plain
/// label in the member's language).
fn without_translations(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with("localized") && *k != "contentDescription")
                .map(|(k, v)| (k.clone(), without_translations(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_translations).collect()),
        other => other.clone(),
    }
}

pub(super) fn link(
    account: &ServiceAccount,
    public_url: &str,
    payload: Value,
    iat: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = SaveClaims {
        iss: &account.email,
        aud: "google",
        typ: "savetowallet",
        iat,
        origins: vec![origin(public_url)],
        payload,
    };
    Ok(format!("{SAVE_URL_PREFIX}{}", account.sign(&claims)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_round_trip_and_use_only_googles_characters() {
        for member in ["M-1001", "a", "x.y_z-1", "..a", &"9".repeat(64)] {
            let id = object_id("3388000000022", "default", member);
            assert!(id.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)), "{id}");
            assert_eq!(member_of_object("3388000000022", "default", &id), Some(member));
        }
        assert_eq!(member_of_object("3388000000022", "default", "3388000000023.default-M-1"), None);
        assert_eq!(member_of_object("3388000000022", "default", "3388000000022.other-M-1"), None);
        assert_eq!(member_of_object("3388000000022", "default", "3388000000022.default-"), None);
        assert_eq!(member_of_object("3388000000022", "default", "3388000000022.default-a/b"), None);
    }

    #[test]
    fn translations_are_dropped_to_fit_and_the_rest_kept() {
        let object = json!({"id": "1.p-m", "loyaltyPoints": {"label": "ĐIỂM", "localizedLabel": {"x": 1}, "balance": {"int": 5}},
            "heroImage": {"sourceUri": {"uri": "u"}, "contentDescription": {}}, "textModulesData": [{"id": "a", "localizedBody": {}}]});
        assert_eq!(
            without_translations(&object),
            json!({"id": "1.p-m", "loyaltyPoints": {"label": "ĐIỂM", "balance": {"int": 5}},
                "heroImage": {"sourceUri": {"uri": "u"}}, "textModulesData": [{"id": "a"}]})
        );
    }

    #[test]
    fn the_origin_drops_the_path() {
        assert_eq!(origin("https://cards.example.com/tessera"), "https://cards.example.com");
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
