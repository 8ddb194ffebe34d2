//! Safe printing of untrusted text in messages, and calendar arithmetic.

use serde_json::Value;

/// Untrusted text as it appears in a message: quoted, control characters escaped, cut at 60
/// characters so a megabyte-long key cannot flood the terminal.
pub fn quote(text: &str) -> String {
    const MAX: usize = 60;
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX).collect();
    if chars.next().is_some() { format!("{head:?}…") } else { format!("{head:?}") }
}

/// Untrusted text shown bare (an entry or certificate name): control characters escaped, cut at
/// `max_chars` characters.
pub fn escaped(text: &str, max_chars: usize) -> String {
    let mut shown: String = text
        .chars()
        .take(max_chars)
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        shown.push('…');
    }
    shown
}

/// "a string", "a number", … for messages that say what a value is instead of what it should be.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Year, month, day, hour, minute, second at `offset_seconds` east of UTC → Unix seconds.
pub fn calendar_to_unix(
    [year, month, day, hour, minute, second]: [u32; 6],
    offset_seconds: i32,
) -> Result<i64, &'static str> {
    const INVALID: &str = "names a day or time that does not exist";
    let month = u8::try_from(month).ok().and_then(|m| time::Month::try_from(m).ok()).ok_or(INVALID)?;
    let year = i32::try_from(year).map_err(|_| INVALID)?;
    let date =
        time::Date::from_calendar_date(year, month, u8::try_from(day).map_err(|_| INVALID)?).map_err(|_| INVALID)?;
    let small = |v: u32| u8::try_from(v).map_err(|_| INVALID);
    let clock = time::Time::from_hms(small(hour)?, small(minute)?, small(second)?).map_err(|_| INVALID)?;
    let offset = time::UtcOffset::from_whole_seconds(offset_seconds).map_err(|_| INVALID)?;
    Ok(time::PrimitiveDateTime::new(date, clock).assume_offset(offset).unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_and_cuts() {
        assert_eq!(escaped("ok\u{1b}[31m", 4), "ok\\u{1b}[…");
        assert_eq!(quote("a\u{0}b\n"), "\"a\\0b\\n\"");
        assert_eq!(quote(&"x".repeat(100)), format!("{:?}…", "x".repeat(60)));
    }
}
