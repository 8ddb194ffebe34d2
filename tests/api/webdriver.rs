//! The few W3C WebDriver commands the browser tests use (https://www.w3.org/TR/webdriver2/), as JSON over
//! HTTP to chromedriver with the reqwest client the suite has anyway. A WebDriver crate (fantoccini) pulled
//! about twenty crates of its own into every build of the suite, a Unicode segmenter among them, for these
//! dozen requests (time to green, BENCHMARKS.md).

use std::time::Duration;

use serde_json::{Value, json};

/// The key of an element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The Enter key, as WebDriver's "Element Send Keys" takes it.
pub const ENTER: &str = "\u{E007}";

/// An error answer (`{"value": {"error", "message"}}`) or a failed request, as text.
#[derive(Debug)]
pub struct WebDriverError(String);

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, WebDriverError>;

/// One WebDriver session.
#[derive(Clone)]
pub struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    base: String,
}

/// An element of the session's current page.
pub struct Element {
    session: Session,
    id: String,
}

/// Starts a session with these capabilities (`alwaysMatch`) on the driver at `driver` (its base URL).
pub async fn new_session(driver: &str, capabilities: serde_json::Map<String, Value>) -> Result<Session> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().map_err(failed)?;
    let body = json!({ "capabilities": { "alwaysMatch": capabilities } });
    let value = answer(http.post(format!("{driver}/session")).json(&body).send().await).await?;
    let id = value["sessionId"].as_str().ok_or_else(|| WebDriverError(format!("no sessionId in {value}")))?;
    Ok(Session { http, base: format!("{driver}/session/{id}") })
}

impl Session {
    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        answer(self.http.post(format!("{}{path}", self.base)).json(&body).send().await).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        answer(self.http.get(format!("{}{path}", self.base)).send().await).await
    }

    /// Sets the page-load, script and implicit-wait timeouts.
    pub async fn set_timeouts(&self, page_load: Duration, script: Duration, implicit: Duration) -> Result<()> {
        let millis = |d: Duration| d.as_millis() as u64;
        let body = json!({ "pageLoad": millis(page_load), "script": millis(script), "implicit": millis(implicit) });
        self.post("/timeouts", body).await.map(drop)
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    pub async fn current_url(&self) -> Result<String> {
        Ok(self.get("/url").await?.as_str().unwrap_or_default().to_string())
    }

    pub async fn source(&self) -> Result<String> {
        Ok(self.get("/source").await?.as_str().unwrap_or_default().to_string())
    }

    /// The first element matching a CSS selector (an error when none does).
    pub async fn find(&self, css: &str) -> Result<Element> {
        let value = self.post("/element", json!({ "using": "css selector", "value": css })).await?;
        self.element(&value)
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let value = self.post("/elements", json!({ "using": "css selector", "value": css })).await?;
        value.as_array().map(|all| all.iter().map(|v| self.element(v)).collect()).unwrap_or_else(|| Ok(Vec::new()))
    }

    fn element(&self, value: &Value) -> Result<Element> {
        let id = value[ELEMENT_KEY].as_str().ok_or_else(|| WebDriverError(format!("not an element: {value}")))?;
        Ok(Element { session: self.clone(), id: id.to_string() })
    }

    /// Runs `script` as a function body with no arguments; a returned promise is awaited.
    pub async fn execute(&self, script: &str) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        let png = self.get("/screenshot").await?;
        let png = png.as_str().ok_or_else(|| WebDriverError(format!("not a screenshot: {png}")))?;
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, png).map_err(failed)
    }

    /// Ends the session (the driver closes the browser).
    pub async fn close(&self) -> Result<()> {
        answer(self.http.delete(&self.base).send().await).await.map(drop)
    }
}

impl Element {
    fn path(&self, command: &str) -> String {
        format!("/element/{}/{command}", self.id)
    }

    /// The rendered text (innerText as the user sees it).
    pub async fn text(&self) -> Result<String> {
        Ok(self.session.get(&self.path("text")).await?.as_str().unwrap_or_default().to_string())
    }

    pub async fn click(&self) -> Result<()> {
        self.session.post(&self.path("click"), json!({})).await.map(drop)
    }

    pub async fn clear(&self) -> Result<()> {
        self.session.post(&self.path("clear"), json!({})).await.map(drop)
    }

    /// Types `text` as key presses.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.session.post(&self.path("value"), json!({ "text": text })).await.map(drop)
    }
}

fn failed(e: impl std::fmt::Display) -> WebDriverError {
    WebDriverError(e.to_string())
}

/// The `value` of a success, or the driver's error and message.
async fn answer(response: reqwest::Result<reqwest::Response>) -> Result<Value> {
    let response = response.map_err(failed)?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| WebDriverError(format!("{status}: {e}")))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    Err(WebDriverError(format!("{status} {}: {}", value["error"], value["message"])))
}
