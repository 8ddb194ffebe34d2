//! Safe printing of untrusted text in messages.

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
