//! Clock and timestamp formats: RFC 3339 in JSON, HTTP dates in headers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn now_unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn now_unix_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// `2026-11-22T08:00:00Z`
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `2026-11-22T08:00:00.123Z` from unix milliseconds.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&format).unwrap_or_default()
}

/// `Sun, 22 Nov 2026 08:00:00 GMT`
pub fn http_date(unix: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64))
}

/// Parses an HTTP date; `None` for anything unreadable (which callers treat as absent).
pub fn parse_http_date(value: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        assert_eq!(rfc3339(1_795_334_400), "2026-11-22T08:00:00Z");
        let header = http_date(1_795_334_400);
        assert_eq!(header, "Sun, 22 Nov 2026 08:00:00 GMT");
        assert_eq!(parse_http_date(&header), Some(1_795_334_400));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
