//! Typed reads of pass.json values that report, naming pass.json and the JSON path, whatever has the
//! wrong type. Every check of pass.json goes through these, so a wrong type is never skipped silently.

use serde_json::{Map, Value};

use super::report::Collector;
use super::values::{kind, parse_w3c_datetime, quote, same_but_case};

pub const PASS_JSON: Option<&str> = Some("pass.json");

pub type Object = Map<String, Value>;

/// `prefix.key`, or `key` at the top level.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn wrong_type(at: &str, wanted: &str, found: &Value, out: &mut Collector) {
    out.error(PASS_JSON, format!("{at} must be {wanted}, not {}", kind(found)));
}

pub fn optional_string<'a>(obj: &'a Object, key: &str, at: &str, out: &mut Collector) -> Option<&'a str> {
    let value = obj.get(key)?;
    let text = value.as_str();
    if text.is_none() {
        wrong_type(&join(at, key), "a string", value, out);
    }
    text
}

/// A string that must be there and not be empty.
pub fn required_string<'a>(obj: &'a Object, key: &str, at: &str, out: &mut Collector) -> Option<&'a str> {
    match obj.get(key) {
        None => {
            out.error(PASS_JSON, format!("{} is missing; Wallet requires it", join(at, key)));
            None
        }
        Some(_) => match optional_string(obj, key, at, out) {
            Some("") => {
                out.error(PASS_JSON, format!("{} is empty", join(at, key)));
                None
            }
            text => text,
        },
    }
}

pub fn optional_bool(obj: &Object, key: &str, at: &str, out: &mut Collector) -> Option<bool> {
    let value = obj.get(key)?;
    let flag = value.as_bool();
    if flag.is_none() {
        wrong_type(&join(at, key), "true or false", value, out);
    }
    flag
}

pub fn optional_number(obj: &Object, key: &str, at: &str, out: &mut Collector) -> Option<f64> {
    let value = obj.get(key)?;
    let number = value.as_f64();
    if number.is_none() {
        wrong_type(&join(at, key), "a number", value, out);
    }
    number
}

pub fn optional_array<'a>(obj: &'a Object, key: &str, at: &str, out: &mut Collector) -> Option<&'a Vec<Value>> {
    let value = obj.get(key)?;
    let items = value.as_array();
    if items.is_none() {
        wrong_type(&join(at, key), "an array", value, out);
    }
    items
}

pub fn optional_object<'a>(obj: &'a Object, key: &str, at: &str, out: &mut Collector) -> Option<&'a Object> {
    let value = obj.get(key)?;
    let inner = value.as_object();
    if inner.is_none() {
        wrong_type(&join(at, key), "an object", value, out);
    }
    inner
}

/// The objects of an array with their paths (`at[i]`), reporting items that are not objects.
pub fn objects<'a>(items: &'a [Value], at: &str, out: &mut Collector) -> Vec<(String, &'a Object)> {
    let mut found = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{at}[{i}]");
        match item.as_object() {
            Some(obj) => found.push((path, obj)),
            None => wrong_type(&path, "an object", item, out),
        }
    }
    found
}

/// An array whose every item is a number (App Store identifiers).
pub fn optional_numbers(obj: &Object, key: &str, at: &str, out: &mut Collector) -> Option<usize> {
    let items = optional_array(obj, key, at, out)?;
    for (i, item) in items.iter().enumerate() {
        if !item.is_number() {
            wrong_type(&format!("{}[{i}]", join(at, key)), "a number", item, out);
        }
    }
    Some(items.len())
}

/// A W3C date string; answers Unix seconds.
pub fn optional_date(obj: &Object, key: &str, at: &str, out: &mut Collector) -> Option<i64> {
    let text = optional_string(obj, key, at, out)?;
    match parse_w3c_datetime(text) {
        Ok(unix) => Some(unix),
        Err(problem) => {
            out.error(PASS_JSON, format!("{} {} {problem}", join(at, key), quote(text)));
            None
        }
    }
}

/// Warns about keys Apple does not define at `at`: Wallet ignores them, which is how a typo such
/// as `webserviceURL` silently costs a feature.
pub fn warn_unknown_keys(obj: &Object, known: &[&str], at: &str, out: &mut Collector) {
    for key in obj.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let hint = same_but_case(key, known).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
        let place = if at.is_empty() { "pass.json".to_string() } else { at.to_string() };
        out.warn(
            PASS_JSON,
            format!("{place} has the key {}, which Apple does not define there; Wallet ignores it{hint}", quote(key)),
        );
    }
}

/// A string that must be one of `allowed` (Apple's PK… constants).
pub fn optional_enum(obj: &Object, key: &str, allowed: &[&str], at: &str, out: &mut Collector) -> Option<bool> {
    let text = optional_string(obj, key, at, out)?;
    let ok = allowed.contains(&text);
    if !ok {
        out.error(PASS_JSON, format!("{} is {}; it must be one of {}", join(at, key), quote(text), allowed.join(", ")));
    }
    Some(ok)
}
