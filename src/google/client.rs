//! Google's OAuth token endpoint and the Wallet Objects REST API, over HTTP. Knows no database: the
//! worker decides what to send and the store records what came back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use super::account::ServiceAccount;
use crate::settings::Secret;

pub const SCOPE: &str = "https://www.googleapis.com/auth/wallet_object.issuer";
/// Tokens are refreshed this long before Google says they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no access token could be had, in words `doctor` can show.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint {uri} cannot be reached")]
    Unreachable { uri: String, source: reqwest::Error },
    #[error("the token endpoint refused the service account ({status}: {reason})")]
    Refused { status: u16, reason: String },
    #[error("the token endpoint answered something that is not a token")]
    Malformed,
    #[error("cannot sign the token request")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[derive(Clone)]
struct Token {
    value: Arc<Secret>,
    refresh_at: Instant,
}

/// Access tokens for the service account: cached, refreshed before they expire; concurrent callers
/// wait for one refresh instead of each asking.
pub struct TokenSource {
    account: ServiceAccount,
    http: reqwest::Client,
    cached: Mutex<Option<Token>>,
}

#[derive(serde::Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl TokenSource {
    pub fn new(account: ServiceAccount, http: reqwest::Client) -> TokenSource {
        TokenSource { account, http, cached: Mutex::new(None) }
    }

    /// A valid access token, from the cache or a new one.
    pub async fn token(&self) -> Result<Arc<Secret>, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(t.value.clone());
        }
        let token = self.fetch().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Forgets `rejected` (answered 401), so the next caller fetches a new token.
    pub async fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.value.expose() == rejected.expose()) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Token, TokenError> {
        let iat = crate::time_fmt::now_unix();
        let uri = &self.account.token_uri;
        let assertion =
            self.account.sign(&Assertion { iss: &self.account.email, scope: SCOPE, aud: uri, iat, exp: iat + 3600 })?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
        let unreachable = |source| TokenError::Unreachable { uri: uri.clone(), source };
        let response = self.http.post(uri).form(&form).timeout(REQUEST_TIMEOUT).send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unreachable)?;
        if status != 200 {
            return Err(TokenError::Refused { status, reason: oauth_reason(&body) });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        Ok(Token {
            value: Arc::new(Secret::new(answer.access_token)),
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2),
        })
    }
}

/// The `error_description` (or `error`) of an OAuth error answer, bounded.
fn oauth_reason(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = v["error_description"].as_str().or(v["error"].as_str()).unwrap_or("no reason given");
    text.chars().take(200).collect()
}

/// What one REST call came to.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok(Value),
    NotFound,
    Conflict,
    /// 403: the service account may not act for this issuer (or a quota is exhausted).
    Forbidden(String),
    /// 429 or 5xx: try again later (after the Retry-After, when Google gave one).
    Busy(u16, Option<Duration>),
    /// Another 4xx: our request is wrong, retrying cannot help.
    Rejected(u16, String),
    /// No answer (connection, timeout) or no token.
    Unreachable(String),
}

/// Turns of a request rate: every REST request waits for one before it is sent.
pub trait Permits: Send + Sync {
    /// Waits for one request's turn; an error (in words) when the rate cannot be consulted, and then the
    /// request is not sent.
    fn take(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// The Wallet Objects REST API of one issuer.
pub struct WalletApi {
    base: String,
    http: reqwest::Client,
    pub tokens: TokenSource,
    permits: Arc<dyn Permits>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Class,
    Object,
    OfferClass,
    OfferObject,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Class => "loyaltyClass",
            Kind::Object => "loyaltyObject",
            Kind::OfferClass => "offerClass",
            Kind::OfferObject => "offerObject",
        }
    }
}

impl WalletApi {
    pub fn new(base: &str, account: ServiceAccount, permits: Arc<dyn Permits>) -> WalletApi {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        WalletApi { base: base.to_string(), tokens: TokenSource::new(account, http.clone()), http, permits }
    }

    pub async fn insert(&self, kind: Kind, body: &Value) -> Answer {
        let url = format!("{}/walletobjects/v1/{}", self.base, kind.path());
        self.call(reqwest::Method::POST, &url, Some(body)).await
    }

    pub async fn patch(&self, kind: Kind, id: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::PATCH, &self.resource_url(kind, id), Some(body)).await
    }

    /// `POST {kind}/{id}/addMessage` with `{"message": message}`.
    pub async fn add_message(&self, kind: Kind, id: &str, message: &Value) -> Answer {
        let url = format!("{}/addMessage", self.resource_url(kind, id));
        self.call(reqwest::Method::POST, &url, Some(&serde_json::json!({ "message": message }))).await
    }

    pub async fn get(&self, kind: Kind, id: &str) -> Answer {
        self.call(reqwest::Method::GET, &self.resource_url(kind, id), None).await
    }

    fn resource_url(&self, kind: Kind, id: &str) -> String {
        // Ids are [A-Za-z0-9._-] (google::pass::object_id), so they need no escaping in a path.
        format!("{}/walletobjects/v1/{}/{id}", self.base, kind.path())
    }

    /// One call with the cached token, in its turn of the rate; a 401 refreshes the token once and tries
    /// again (in another turn).
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> Answer {
        for attempt in 0..2 {
            if let Err(e) = self.permits.take().await {
                return Answer::Unreachable(e);
            }
            let token = match self.tokens.token().await {
                Ok(t) => t,
                Err(e) => return Answer::Unreachable(format!("{:#}", anyhow::Error::new(e))),
            };
            let mut request = self.http.request(method.clone(), url).bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Answer::Unreachable(format!("{}: {}", crate::urls::without_query(url), e.without_url()));
                }
            };
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                self.tokens.invalidate(&token).await;
                continue;
            }
            let retry_after = response.headers().get(reqwest::header::RETRY_AFTER).and_then(retry_after);
            let bytes = response.bytes().await.unwrap_or_default();
            return classify(status, &bytes, retry_after);
        }
        Answer::Unreachable("Google refused a freshly issued token (401)".into())
    }
}

/// A Retry-After header: delay seconds, or an HTTP date.
fn retry_after(value: &reqwest::header::HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> Answer {
    let message = || {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        v["error"]["message"].as_str().unwrap_or("no message").chars().take(300).collect::<String>()
    };
    match status {
        200..=299 => Answer::Ok(serde_json::from_slice(body).unwrap_or(Value::Null)),
        404 => Answer::NotFound,
        409 => Answer::Conflict,
        403 => Answer::Forbidden(message()),
        429 | 500..=599 => Answer::Busy(status, retry_after),
        401 => Answer::Unreachable("Google refused a freshly issued token (401)".into()),
        _ => Answer::Rejected(status, message()),
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let header = |v: &str| reqwest::header::HeaderValue::from_str(v).unwrap();
        assert_eq!(retry_after(&header("30")), Some(Duration::from_secs(30)));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        let parsed = retry_after(&header(&later)).unwrap();
        assert!((Duration::from_secs(110)..=Duration::from_secs(120)).contains(&parsed), "{parsed:?}");
        assert_eq!(retry_after(&header("soon")), None);
        assert!(matches!(classify(503, b"", Some(Duration::from_secs(5))), Answer::Busy(503, Some(_))));
        assert!(matches!(classify(429, b"", None), Answer::Busy(429, None)));
    }
}
