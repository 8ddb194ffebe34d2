//! Apple's `.strings` syntax, as Wallet reads it: `"key" = "value";` entries (bare words allowed,
//! `"key";` for a value equal to its key), `/* */` and `//` comments. One pass over the text, whatever
//! its size: the templates' own files and `inspect`'s untrusted ones go through the same parser.

use std::collections::HashSet;
use std::iter::Peekable;
use std::str::Chars;

/// A key as an error message shows it: quoted, escaped, cut at 60 characters.
fn quote(text: &str) -> String {
    const MAX: usize = 60;
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX).collect();
    if chars.next().is_some() { format!("{head:?}…") } else { format!("{head:?}") }
}

/// Parses a `.strings` file, refusing a key defined twice; answers the entries in file order, or the
/// line and the problem.
pub fn parse_strings(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let entries = parse_strings_file(text)?;
    let mut seen = HashSet::new();
    if let Some((key, _)) = entries.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        // The line of its second definition (or of the first, when both share a line).
        let quoted = format!("\"{key}\"");
        let mut lines = text.lines().enumerate().filter(|(_, l)| l.contains(&quoted)).map(|(i, _)| i + 1);
        let first = lines.next().unwrap_or(1);
        let line = lines.next().unwrap_or(first);
        return Err((line, format!("{} is defined twice", quote(key))));
    }
    Ok(entries)
}

/// The entries in file order (duplicates kept, for the caller to report), or the line and the problem.
pub fn parse_strings_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut parser = Parser { chars: text.chars().peekable(), line: 1 };
    let mut entries = Vec::new();
    loop {
        parser.skip_blank()?;
        if parser.chars.peek().is_none() {
            return Ok(entries);
        }
        let key = parser.token()?;
        parser.skip_blank()?;
        let value = match parser.chars.next() {
            Some(';') => key.clone(),
            Some('=') => {
                parser.skip_blank()?;
                let value = parser.token()?;
                parser.skip_blank()?;
                if parser.chars.next() != Some(';') {
                    return Err(parser.problem(format!("expected ; after the value of {}", quote(&key))));
                }
                value
            }
            _ => return Err(parser.problem(format!("expected = after {}", quote(&key)))),
        };
        entries.push((key, value));
    }
}

struct Parser<'a> {
    chars: Peekable<Chars<'a>>,
    line: usize,
}

impl Parser<'_> {
    fn problem(&self, message: impl Into<String>) -> (usize, String) {
        (self.line, message.into())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    /// Skips white space and comments.
    fn skip_blank(&mut self) -> Result<(), (usize, String)> {
        loop {
            match self.chars.peek() {
                Some(c) if c.is_whitespace() || *c == '\u{feff}' => {
                    self.bump();
                }
                Some('/') => {
                    self.bump();
                    match self.bump() {
                        Some('/') => {
                            while self.chars.peek().is_some_and(|c| *c != '\n') {
                                self.bump();
                            }
                        }
                        Some('*') => self.skip_block_comment()?,
                        _ => return Err(self.problem("a / that starts no comment")),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), (usize, String)> {
        let start = self.line;
        let mut star = false;
        loop {
            match self.bump() {
                None => return Err((start, "a /* comment is never closed".into())),
                Some('/') if star => return Ok(()),
                Some(c) => star = c == '*',
            }
        }
    }

    /// A quoted string or a bare word.
    fn token(&mut self) -> Result<String, (usize, String)> {
        match self.chars.peek() {
            Some('"') => {
                self.bump();
                self.quoted()
            }
            Some(c) if is_bare(*c) => {
                let mut word = String::new();
                while let Some(c) = self.chars.peek().copied().filter(|c| is_bare(*c)) {
                    word.push(c);
                    self.bump();
                }
                Ok(word)
            }
            Some(c) => {
                let found = format!("expected a quoted string, found `{}`", c.escape_debug());
                Err(self.problem(found))
            }
            None => Err(self.problem("expected a quoted string, found the end of the file")),
        }
    }

    fn quoted(&mut self) -> Result<String, (usize, String)> {
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(self.problem("a string is never closed (missing \")")),
                Some('"') => return Ok(text),
                Some('\\') => text.push(self.escape()?),
                Some(c) => text.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, (usize, String)> {
        Ok(match self.bump() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some(c @ ('"' | '\\' | '\'')) => c,
            Some('U' | 'u') => {
                let mut code = 0u32;
                for _ in 0..4 {
                    let digit = self.bump().and_then(|c| c.to_digit(16));
                    code = code * 16 + digit.ok_or_else(|| self.problem("\\U needs four hex digits"))?;
                }
                char::from_u32(code).ok_or_else(|| self.problem(format!("\\U{code:04X} is not a character")))?
            }
            Some(other) => return Err(self.problem(format!("unknown escape \\{}", other.escape_debug()))),
            None => return Err(self.problem("a \\ ends the file")),
        })
    }
}

/// Characters an unquoted word may hold, as in Apple's old-style property lists.
fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_$+/:.-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::parse_strings_file;

    #[test]
    fn entries_comments_and_escapes() {
        let text = "/* header\n */\n\"points.label\" = \"คะแนน\";\n// note\n\"q\" = \"say \\\"hi\\\" \\U00e9\";\nbare = word;\n\"same\";";
        let entries = parse_strings_file(text).expect("parses");
        let pairs: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("points.label", "คะแนน"), ("q", "say \"hi\" é"), ("bare", "word"), ("same", "same")]);
    }

    #[test]
    fn problems_carry_their_line() {
        let cases = [
            ("\"a\" = \"b\";\n\"c\" = \"d\"\n", 3, "expected ;"),
            ("\"a\" = \"b\";\n\n\"c\" \"d\";", 3, "expected ="),
            ("\"a\" = \"b", 1, "never closed"),
            ("\n/* open", 2, "never closed"),
            ("\"a\" = \"\\x\";", 1, "unknown escape"),
            ("\"a\" = \"\\UD800\";", 1, "not a character"),
            ("\"a\" = ;", 1, "found `;`"),
            ("/ x", 1, "starts no comment"),
        ];
        for (text, line, phrase) in cases {
            let (at, message) = parse_strings_file(text).expect_err(text);
            assert_eq!(at, line, "{text:?}: {message}");
            assert!(message.contains(phrase), "{text:?}: {message}");
        }
    }
}
