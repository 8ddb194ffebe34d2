//! Small parsers and printers for the value formats pass.json uses: CSS rgb() colors, W3C dates,
//! IANA charset names, UUIDs; and safe quoting of untrusted text in messages.

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

/// How a color string fails Apple's `rgb(r, g, b)` form.
#[derive(Debug, PartialEq, Eq)]
pub enum ColorProblem {
    /// `#rrggbb`: not Apple's documented form, though some readers take it.
    Hex,
    Malformed,
    /// A component above 255.
    OutOfRange,
}

/// Checks a CSS-style `rgb(r, g, b)` triple with components 0–255, as Apple documents colors.
pub fn check_rgb(text: &str) -> Result<(), ColorProblem> {
    let is_hex = |s: &str| matches!(s.len(), 3 | 6) && s.bytes().all(|b| b.is_ascii_hexdigit());
    if text.strip_prefix('#').is_some_and(is_hex) {
        return Err(ColorProblem::Hex);
    }
    let inner =
        text.trim().strip_prefix("rgb(").and_then(|rest| rest.strip_suffix(')')).ok_or(ColorProblem::Malformed)?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.len() != 3 {
        return Err(ColorProblem::Malformed);
    }
    for part in parts {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ColorProblem::Malformed);
        }
        if part.parse::<u16>().map_err(|_| ColorProblem::Malformed)? > 255 {
            return Err(ColorProblem::OutOfRange);
        }
    }
    Ok(())
}

/// Parses a W3C date and time (ISO 8601 with hours, minutes and a time zone, seconds and a fraction
/// optional), as Apple requires for dates in pass.json. Answers Unix seconds, or what is wrong.
pub fn parse_w3c_datetime(text: &str) -> Result<i64, &'static str> {
    const SHAPE: &str = "is not a W3C date and time such as 2026-12-31T23:59:00Z or 2026-12-31T23:59:00+07:00";
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from.checked_add(len)?)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let at = |i: usize| b.get(i).copied();
    let (Some(year), Some(month), Some(day)) = (digits(0, 4), digits(5, 2), digits(8, 2)) else {
        return Err(SHAPE);
    };
    if at(4) != Some(b'-') || at(7) != Some(b'-') {
        return Err(SHAPE);
    }
    if b.len() == 10 {
        return Err("has a date but no time; Wallet needs hours, minutes and a time zone");
    }
    let (Some(hour), Some(minute)) = (digits(11, 2), digits(14, 2)) else { return Err(SHAPE) };
    if at(10) != Some(b'T') || at(13) != Some(b':') {
        return Err(SHAPE);
    }
    let mut i = 16;
    let mut second = 0;
    if at(i) == Some(b':') {
        second = digits(i + 1, 2).ok_or(SHAPE)?;
        i += 3;
        if at(i) == Some(b'.') {
            i += 1;
            let start = i;
            while at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            if i == start {
                return Err(SHAPE);
            }
        }
    }
    let offset_seconds = parse_zone(b.get(i..).unwrap_or_default())?;
    calendar_to_unix([year, month, day, hour, minute, second.min(59)], offset_seconds)
}

/// `Z`, `±HH:MM` or `±HHMM` → seconds east of UTC.
fn parse_zone(zone: &[u8]) -> Result<i32, &'static str> {
    const NO_ZONE: &str = "has no time zone (end it with Z or an offset such as +07:00); Wallet needs one";
    let sign = match zone.first() {
        Some(b'Z') if zone.len() == 1 => return Ok(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(NO_ZONE),
    };
    let rest = zone.get(1..).unwrap_or_default();
    let (hh, mm) = match rest.len() {
        5 if rest.get(2) == Some(&b':') => (rest.get(0..2), rest.get(3..5)),
        4 => (rest.get(0..2), rest.get(2..4)),
        _ => return Err(NO_ZONE),
    };
    let number = |part: Option<&[u8]>| -> Option<i32> {
        let part = part?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    match (number(hh), number(mm)) {
        (Some(h), Some(m)) if h <= 23 && m <= 59 => Ok(sign * (h * 3600 + m * 60)),
        _ => Err(NO_ZONE),
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

/// Character sets a barcode's `messageEncoding` may name (IANA names, compared without case).
const CHARSETS: &[&str] = &[
    "iso-8859-1",
    "iso-8859-2",
    "iso-8859-3",
    "iso-8859-4",
    "iso-8859-5",
    "iso-8859-6",
    "iso-8859-7",
    "iso-8859-8",
    "iso-8859-9",
    "iso-8859-10",
    "iso-8859-13",
    "iso-8859-14",
    "iso-8859-15",
    "iso-8859-16",
    "utf-8",
    "utf-16",
    "utf-16be",
    "utf-16le",
    "utf-32",
    "us-ascii",
    "shift_jis",
    "euc-jp",
    "iso-2022-jp",
    "euc-kr",
    "gb2312",
    "gbk",
    "gb18030",
    "big5",
    "koi8-r",
    "koi8-u",
    "windows-1250",
    "windows-1251",
    "windows-1252",
    "windows-1253",
    "windows-1254",
    "windows-1255",
    "windows-1256",
    "windows-1257",
    "windows-1258",
    "tis-620",
    "macintosh",
];

pub fn is_known_charset(name: &str) -> bool {
    CHARSETS.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// `8-4-4-4-12` hexadecimal digits, as a beacon's proximityUUID.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An ISO 4217 code: three upper-case letters.
pub fn is_currency_code(text: &str) -> bool {
    text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase())
}

/// The closest of `known` to `key` when they differ only in case, for "did you mean" hints.
pub fn same_but_case<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors() {
        for ok in ["rgb(0, 0, 0)", "rgb(255,255,255)", "rgb( 36 , 40 , 56 )"] {
            assert_eq!(check_rgb(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("#ffcc00", ColorProblem::Hex),
            ("rgb(256, 0, 0)", ColorProblem::OutOfRange),
            ("rgb(0, 0)", ColorProblem::Malformed),
            ("rgb(-1, 0, 0)", ColorProblem::Malformed),
            ("rgba(0, 0, 0, 1)", ColorProblem::Malformed),
            ("rgb(1.5, 0, 0)", ColorProblem::Malformed),
            ("rgb(0000, 0, 0)", ColorProblem::Malformed),
            ("red", ColorProblem::Malformed),
            ("", ColorProblem::Malformed),
        ];
        for (text, problem) in cases {
            assert_eq!(check_rgb(text), Err(problem), "{text}");
        }
    }

    #[test]
    fn w3c_dates() {
        assert_eq!(parse_w3c_datetime("1970-01-01T00:00Z"), Ok(0));
        assert_eq!(parse_w3c_datetime("1970-01-01T07:00:00+07:00"), Ok(0));
        assert_eq!(parse_w3c_datetime("1970-01-01T00:00:01.250-0100"), Ok(3601));
        assert_eq!(parse_w3c_datetime("2026-12-31T23:59:60Z"), parse_w3c_datetime("2026-12-31T23:59:59Z"));
        for bad in [
            "2026-12-31",
            "2026-12-31T23:59",
            "2026-12-31T23:59:00",
            "2026-02-30T10:00Z",
            "2026-13-01T10:00Z",
            "2026-12-31T24:00Z",
            "2026-12-31 23:59Z",
            "2026-12-31T23:59:00.Z",
            "2026-12-31T23:59:00+25:00",
            "31/12/2026",
            "",
            "２０２６-12-31T23:59Z",
        ] {
            assert!(parse_w3c_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_escapes_and_cuts() {
        assert_eq!(escaped("ok\u{1b}[31m", 4), "ok\\u{1b}[…");
        assert_eq!(quote("a\u{0}b\n"), "\"a\\0b\\n\"");
        assert_eq!(quote(&"x".repeat(100)), format!("{:?}…", "x".repeat(60)));
    }

    #[test]
    fn small_formats() {
        assert!(is_uuid("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0"));
        assert!(!is_uuid("E2C56DB5-DFFB-48D2-B060"));
        assert!(is_currency_code("THB") && !is_currency_code("thb") && !is_currency_code("BAHT"));
        assert!(is_known_charset("ISO-8859-1") && !is_known_charset("latin-1"));
        assert_eq!(same_but_case("webserviceurl", &["webServiceURL"]), Some("webServiceURL"));
    }
}
