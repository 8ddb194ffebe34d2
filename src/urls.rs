//! URLs parsed once, on the `url` crate: `PublicUrl`, an http(s) base that links are made from (tessera's
//! public URL, and the APNs and Google API bases), and `DatabaseUrl`, which never prints its password.
//! Plain values: no other module of the crate below them.

use std::fmt;

use url::{Host, Url};

/// An absolute `http(s)://host[:port][/path]` with no user, password, query or fragment, held without a
/// trailing slash, so `format!("{url}/v1/…")` is always a well-formed link.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicUrl {
    url: Url,
    /// The normal form (`url` without the trailing slash of its path).
    text: String,
}

/// Why a base URL cannot be used; the messages never repeat the URL (it may carry a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not a URL ({0})")]
    NotAUrl(url::ParseError),
    #[error("is not an http(s) URL")]
    NotHttp,
    #[error("has a user or password; give them some other way")]
    HasUserinfo,
    #[error("has a query or a fragment, which links are appended after")]
    HasQuery,
    #[error("contains white space")]
    WhiteSpace,
}

impl PublicUrl {
    pub fn parse(text: &str) -> Result<PublicUrl, UrlError> {
        // The url crate drops tabs and newlines and trims spaces without a word; a setting that has them
        // is a mistake worth naming.
        if text.chars().any(char::is_whitespace) {
            return Err(UrlError::WhiteSpace);
        }
        let url = Url::parse(text).map_err(UrlError::NotAUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::NotHttp);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::HasUserinfo);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(UrlError::HasQuery);
        }
        let text = url.as_str().trim_end_matches('/').to_string();
        Ok(PublicUrl { url, text })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The path under the host, `""` or `/prefix`, without a trailing slash.
    pub fn path(&self) -> &str {
        self.url.path().trim_end_matches('/')
    }

    /// `scheme://host[:port]`, as a browser sends it in `Origin`.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The host to connect to and name in TLS: a name or an address, IPv6 without its brackets.
    pub fn host(&self) -> String {
        match self.url.host() {
            Some(Host::Ipv6(address)) => address.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }

    /// The port, the scheme's own when none is written.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// `host[:port]` as an HTTP/2 `:authority` (the port only when it is not the scheme's own).
    pub fn authority(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = UrlError;
    fn from_str(text: &str) -> Result<PublicUrl, UrlError> {
        PublicUrl::parse(text)
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicUrl({:?})", self.text)
    }
}

impl PartialEq<&str> for PublicUrl {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

/// A database URL (`sqlite://FILE` or `postgres://…`) whose `Debug` and `Display` show it with its
/// password and any secret query parameter replaced by `***`; `expose` gives it whole, to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    /// The file of a `sqlite://FILE[?options]` URL (sqlx's own reading: everything after `//`).
    pub fn sqlite_file(&self) -> Option<&str> {
        let rest = self.0.strip_prefix("sqlite://")?;
        Some(rest.split('?').next().unwrap_or(rest))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", redact(&self.0))
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

const HIDDEN: &str = "***";
const UNREADABLE: &str = "(a URL that cannot be read, not shown)";

/// Whether a query parameter holds a secret (libpq's `password` and `sslpassword`, and the like).
fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token"].iter().any(|s| name.contains(s)) || matches!(name.as_str(), "pass" | "pwd")
}

/// `url` as it may be shown: the password of its user part and the values of secret query parameters
/// become `***`; the rest is kept as written. A URL that cannot be parsed is not shown at all.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else { return UNREADABLE.to_string() };
    if parsed.password().is_some() && parsed.set_password(Some(HIDDEN)).is_err() {
        return UNREADABLE.to_string();
    }
    if let Some(query) = parsed.query() {
        let shown: Vec<String> = query.split('&').map(redact_parameter).collect();
        parsed.set_query(Some(&shown.join("&")));
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

/// A setting's value quoted for an error message: redacted when it reads as a URL, as written when it
/// does not and cannot hold a password (no `@`), else not at all.
pub fn shown(value: &str) -> String {
    if Url::parse(value).is_ok() {
        format!("`{}`", redact(value))
    } else if value.contains('@') || value.contains('=') {
        "the value".to_string()
    } else {
        format!("`{value}`")
    }
}

/// One `name=value` of a query, its value hidden when the (decoded) name is a secret's.
fn redact_parameter(pair: &str) -> String {
    let Some((name, _)) = url::form_urlencoded::parse(pair.as_bytes()).next() else { return pair.to_string() };
    match pair.split_once('=') {
        Some((raw_name, _)) if is_secret_parameter(&name) => format!("{raw_name}={HIDDEN}"),
        _ => pair.to_string(),
    }
}

/// `url` without its query and fragment (where an API key may travel), for error messages.
pub fn without_query(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => UNREADABLE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_held_in_its_normal_form_without_a_trailing_slash() {
        let url = PublicUrl::parse("HTTPS://Wallet.Example.COM:443/loyalty/").unwrap();
        assert_eq!(url.as_str(), "https://wallet.example.com/loyalty");
        assert_eq!(url.to_string(), "https://wallet.example.com/loyalty");
        assert_eq!(url.path(), "/loyalty");
        assert_eq!(url.origin(), "https://wallet.example.com");
        assert_eq!(
            (url.host(), url.port(), url.authority()),
            ("wallet.example.com".into(), 443, "wallet.example.com".into())
        );
        assert!(url.is_https());
        let bare = PublicUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (bare.as_str(), bare.path(), bare.origin()),
            ("http://127.0.0.1:8080", "", "http://127.0.0.1:8080".into())
        );
        assert_eq!((bare.port(), bare.authority()), (8080, "127.0.0.1:8080".into()));
        assert!(!bare.is_https());
        let v6 = PublicUrl::parse("https://[::1]:8443").unwrap();
        assert_eq!((v6.host(), v6.port(), v6.authority()), ("::1".into(), 8443, "[::1]:8443".into()));
        let idn = PublicUrl::parse("https://bücher.example/w").unwrap();
        assert_eq!(idn.origin(), "https://xn--bcher-kva.example");
    }

    #[test]
    fn a_public_url_cannot_hold_a_bad_value() {
        for (text, expected) in [
            ("wallet.example.com", "is not a URL"),
            ("https://", "is not a URL"),
            ("https://wallet.example:99999", "is not a URL"),
            ("https://wallet.example:port", "is not a URL"),
            ("ftp://wallet.example", "is not an http(s) URL"),
            ("mailto:a@example.com", "is not an http(s) URL"),
            ("https://user:hunter2@wallet.example", "has a user or password"),
            ("https://user@wallet.example", "has a user or password"),
            ("https://wallet.example/?a=1", "has a query"),
            ("https://wallet.example/#top", "has a query or a fragment"),
            ("https://wallet.example/a b", "white space"),
            ("https://wallet.example\t", "white space"),
        ] {
            let err = PublicUrl::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn a_database_url_shows_without_its_secrets() {
        let url = DatabaseUrl::new("postgres://u:pw@h:5432/db?password=secret2&sslmode=require&sslpassword=k");
        assert_eq!(url.to_string(), "postgres://u:***@h:5432/db?password=***&sslmode=require&sslpassword=***");
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(\"postgres://u:***@h:5432/db?password=***&sslmode=require&sslpassword=***\")"
        );
        assert_eq!(url.expose(), "postgres://u:pw@h:5432/db?password=secret2&sslmode=require&sslpassword=k");
        // A name spelled with escapes is still a password; other parameters keep their spelling.
        assert_eq!(
            redact("postgres://h/db?pass%77ord=x&sslrootcert=%2Fa%20b.pem"),
            "postgres://h/db?pass%77ord=***&sslrootcert=%2Fa%20b.pem"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://u:p@[broken/db"), UNREADABLE);
        let sqlite = DatabaseUrl::new("sqlite:///var/lib/tessera/tessera.db?mode=rwc");
        assert_eq!(sqlite.to_string(), "sqlite:///var/lib/tessera/tessera.db?mode=rwc");
        assert_eq!(sqlite.sqlite_file(), Some("/var/lib/tessera/tessera.db"));
        assert!(sqlite.is_sqlite());
        assert_eq!(DatabaseUrl::new("sqlite://tessera.db").sqlite_file(), Some("tessera.db"));
    }

    #[test]
    fn an_api_url_is_shown_without_its_query() {
        assert_eq!(
            without_query("https://g.example/walletobjects/v1/x?key=abc#f"),
            "https://g.example/walletobjects/v1/x"
        );
        assert_eq!(without_query("https://u:p@g.example/a"), "https://u@g.example/a");
    }
}
