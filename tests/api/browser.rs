//! A real browser for the page tests: headless Chromium (Debian's `chromium`) driven over WebDriver
//! (webdriver.rs) by a chromedriver of its own (Debian's `chromium-driver`), one per `Browser`, so tests
//! that start browsers concurrently never share one. Both are found on PATH; where either is missing,
//! `start_browser` gives `None` and the test says "skipped", or fails under CI=true (tools.rs).
//!
//! Every browser is a phone: a 390×844 viewport at a device pixel ratio of 1 (screenshots are 390×844
//! PNGs), touch, mobile layout; optionally with a fake camera that plays a Y4M file (`qr_y4m` writes
//! one showing a QR code), a language, a user agent. Pages that use the camera must be served on
//! 127.0.0.1 or localhost over plain HTTP: only those are secure contexts, where getUserMedia exists.
//!
//! The waiting helpers poll (every 50 ms) up to a 10 s deadline and then panic with what the page
//! showed; there are no fixed sleeps.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::webdriver::{self, Element, Session};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The phone's viewport, in CSS pixels (and in screenshot pixels: the device pixel ratio is 1).
const WIDTH: u32 = 390;
const HEIGHT: u32 = 844;
/// How long the helpers wait for an element or a text.
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// How long chromedriver may take to listen, and Chromium to start (the machine may be busy).
const DRIVER_START: Duration = Duration::from_secs(20);
const SESSION_START: Duration = Duration::from_secs(60);
/// Attempts at a browser before `start_browser` gives up (Chromium can fail to start under load).
const ATTEMPTS: usize = 3;

/// How the browser is set up; `Default` is a plain phone, no camera.
#[derive(Default, Clone)]
pub struct BrowserOptions {
    /// A `.y4m` file (see `qr_y4m`) that the fake camera plays, looping; getUserMedia is granted
    /// without a prompt. `None`: no camera flags at all.
    pub fake_camera: Option<PathBuf>,
    /// An Accept-Language value such as `fr-FR,fr;q=0.9,en;q=0.8`: the header sent (Chromium derives the
    /// q-values itself, in steps of 0.1), navigator.language(s). `None`: Chromium's default (en-US). JS's
    /// default Intl locale stays en-US unless Debian's chromium-l10n is installed.
    pub accept_language: Option<String>,
    /// The User-Agent header and navigator.userAgent. `None`: Chromium's own (which says HeadlessChrome).
    pub user_agent: Option<String>,
}

/// A running headless Chromium. Dropping it kills chromedriver and the browser (their whole process
/// group) and removes the profile; `close` ends the WebDriver session cleanly first.
pub struct Browser {
    client: Session,
    /// Declared before the profile: fields drop in order, so the processes are gone before their
    /// profile folder is removed.
    _driver: Driver,
    /// Chromium's `--user-data-dir`.
    _profile: tempfile::TempDir,
}

/// chromedriver, the leader of a process group of its own that holds Chromium and its helpers too;
/// dropping it kills the whole group.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    /// The group is killed before chromedriver is reaped, so its id cannot have been reused.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let group = format!("-{}", self.child.id());
            let _ =
                Command::new("kill").args(["-KILL", "--", &group]).stdout(Stdio::null()).stderr(Stdio::null()).status();
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The browser and its driver, found on PATH (Debian's `chromium` and `chromium-driver` packages).
struct Programs {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// `None` when Chromium or chromedriver is not on PATH (the test says it is skipped, or fails under
/// CI=true: `tools::require`); otherwise a fresh browser with its own chromedriver on its own port and
/// its own profile. Panics when they are installed but will not start.
pub async fn start_browser(options: BrowserOptions) -> Option<Browser> {
    let chromium = crate::tools::require_tool("chromium", "the browser tests")?;
    let chromedriver = crate::tools::require_tool("chromedriver", "the browser tests")?;
    let programs = Programs { chromium, chromedriver };
    let mut failures = Vec::new();
    for _ in 0..ATTEMPTS {
        match try_start(&options, &programs).await {
            Ok(browser) => return Some(browser),
            Err(error) => failures.push(error),
        }
    }
    panic!("headless Chromium would not start ({ATTEMPTS} attempts):\n{}", failures.join("\n"));
}

async fn try_start(options: &BrowserOptions, programs: &Programs) -> Result<Browser, String> {
    let profile = tempfile::Builder::new()
        .prefix("tessera-chromium-")
        .tempdir()
        .map_err(|e| format!("a temporary profile folder: {e}"))?;
    // On any failure below, dropping `driver` kills chromedriver and whatever Chromium it started.
    let driver = start_driver(&programs.chromedriver).await?;
    let url = format!("http://127.0.0.1:{}", driver.port);
    let connect = webdriver::new_session(&url, capabilities(options, profile.path(), &programs.chromium));
    let client = match tokio::time::timeout(SESSION_START, connect).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(format!("chromedriver could not start Chromium: {e}")),
        Err(_) => return Err(format!("Chromium did not start within {SESSION_START:?}")),
    };
    // Our own polling does the waiting: no implicit waits; a hung page load fails in 30 s, not 300.
    let (page_load, script) = (Duration::from_secs(30), Duration::from_secs(30));
    client.set_timeouts(page_load, script, Duration::ZERO).await.map_err(|e| format!("setting timeouts: {e}"))?;
    Ok(Browser { client, _driver: driver, _profile: profile })
}

fn capabilities(options: &BrowserOptions, profile: &Path, chromium: &Path) -> serde_json::Map<String, Value> {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--disable-dev-shm-usage".to_string(),
        format!("--window-size={WIDTH},{HEIGHT}"),
        format!("--user-data-dir={}", profile.display()),
        "--no-first-run".to_string(),
        "--no-default-browser-check".to_string(),
        "--disable-background-networking".to_string(),
        "--disable-component-update".to_string(),
        "--disable-sync".to_string(),
        "--password-store=basic".to_string(),
        "--disable-crash-reporter".to_string(),
        "--disable-breakpad".to_string(),
    ];
    let mut prefs = serde_json::Map::new();
    if let Some(accept_language) = &options.accept_language {
        // Chromium takes plain tags and derives the q-values itself.
        let tags: Vec<&str> = accept_language
            .split(',')
            .map(|tag| tag.split(';').next().unwrap_or("").trim())
            .filter(|tag| !tag.is_empty())
            .collect();
        let tags = tags.join(",");
        if let Some(first) = tags.split(',').next() {
            args.push(format!("--lang={first}"));
        }
        args.push(format!("--accept-lang={tags}"));
        prefs.insert("intl.accept_languages".into(), json!(tags));
    }
    if let Some(user_agent) = &options.user_agent {
        args.push(format!("--user-agent={user_agent}"));
    }
    if let Some(camera) = &options.fake_camera {
        assert!(camera.exists(), "the fake camera's video {} does not exist", camera.display());
        args.push("--use-fake-device-for-media-stream".into());
        args.push("--use-fake-ui-for-media-stream".into());
        args.push(format!("--use-file-for-fake-video-capture={}", camera.display()));
    }
    // The window size alone leaves a desktop viewport; this makes it a phone's, at a pixel ratio of 1.
    let mut mobile = json!({
        "deviceMetrics": { "width": WIDTH, "height": HEIGHT, "pixelRatio": 1.0, "mobile": true, "touch": true },
    });
    if let Some(user_agent) = &options.user_agent {
        mobile["userAgent"] = json!(user_agent);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args, "prefs": prefs, "mobileEmulation": mobile }),
    );
    capabilities
}

/// Starts chromedriver on a port the kernel picks (`--port=0`, so two never race for one), in a
/// process group of its own, and waits until its /status says ready.
async fn start_driver(chromedriver: &Path) -> Result<Driver, String> {
    let mut child = Command::new(chromedriver)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", chromedriver.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut driver = Driver { child, port: 0 };
    // chromedriver prints "ChromeDriver was started successfully on port N." once it listens; a thread
    // reads that, then drains its output for as long as it runs, so that a full pipe never blocks it.
    let (port_tx, port_rx) = tokio::sync::oneshot::channel::<Result<u16, String>>();
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        let mut said = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if port_tx.is_none() {
                continue;
            }
            let port = line.split("started successfully on port ").nth(1);
            match port.and_then(|rest| rest.trim().trim_end_matches('.').parse::<u16>().ok()) {
                Some(port) => drop(port_tx.take().map(|tx| tx.send(Ok(port)))),
                None => said.push_str(&format!("{line}\n")),
            }
        }
        if let Some(tx) = port_tx {
            let _ = tx.send(Err(format!("chromedriver exited before it listened; it said:\n{said}")));
        }
    });
    driver.port = match tokio::time::timeout(DRIVER_START, port_rx).await {
        Ok(Ok(Ok(port))) => port,
        Ok(Ok(Err(error))) => return Err(error),
        Ok(Err(_)) => return Err("chromedriver's output reader stopped".into()),
        Err(_) => return Err(format!("chromedriver did not listen within {DRIVER_START:?}")),
    };
    let deadline = Instant::now() + DRIVER_START;
    loop {
        if status_ready(driver.port).await {
            return Ok(driver);
        }
        if let Ok(Some(status)) = driver.child.try_wait() {
            return Err(format!("chromedriver exited ({status}) before its /status said ready"));
        }
        if Instant::now() > deadline {
            return Err(format!("chromedriver's /status did not say ready within {DRIVER_START:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether chromedriver's GET /status answers `"ready": true`. (chromedriver keeps the connection
/// open whatever the request says, so the body is read by its Content-Length, not to the end.)
async fn status_ready(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            response.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&response);
            let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
            let length = head
                .lines()
                .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-length")))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())?;
            if body.len() >= length {
                let status: Value = serde_json::from_str(body).ok()?;
                return status["value"]["ready"].as_bool();
            }
        }
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Some(true)))
}

impl Browser {
    /// Navigates and waits for the page's load event.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("loading {url}: {e}"));
    }

    /// The rendered text (what a person sees: innerText, empty when hidden) of the first element
    /// matching `css`, once there is one (10 s).
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.wait_for_element(css).await;
        match element.text().await {
            Ok(text) => text,
            // Replaced between finding and reading: read the new one.
            Err(_) => {
                self.wait_for_element(css).await.text().await.unwrap_or_else(|e| panic!("the text of `{css}`: {e}"))
            }
        }
    }

    /// Polls until the first element matching `css` has a text that contains `needle` and returns that
    /// text; panics after 10 s with the last text and the page source.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = None;
        loop {
            if let Ok(element) = self.client.find(css).await
                && let Ok(text) = element.text().await
            {
                if text.contains(needle) {
                    return text;
                }
                last = Some(text);
            }
            if Instant::now() > deadline {
                let seen = match last {
                    Some(text) => format!("its text was {text:?}"),
                    None => "no element matched".to_string(),
                };
                panic!(
                    "`{css}` did not show {needle:?} within {WAIT:?} ({seen}) on {}; the page source:\n{}",
                    self.current_url().await,
                    self.source().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clears the field matching `css` and types `text` into it as key presses.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for_element(css).await;
        element.clear().await.unwrap_or_else(|e| panic!("clearing `{css}`: {e}"));
        element.send_keys(text).await.unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Presses Enter in the element matching `css` (submitting its form, for an input).
    pub async fn press_enter(&self, css: &str) {
        let element = self.wait_for_element(css).await;
        element.send_keys(webdriver::ENTER).await.unwrap_or_else(|e| panic!("pressing Enter in `{css}`: {e}"));
    }

    /// Clicks the element matching `css`, retrying for 10 s while it is missing, hidden or covered.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let error = match self.client.find(css).await {
                Ok(element) => match element.click().await {
                    Ok(()) => return,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                panic!(
                    "could not click `{css}` within {WAIT:?} ({error}) on {}; the page source:\n{}",
                    self.current_url().await,
                    self.source().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether an element matches `css` now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        let found = self.client.find_all(css).await;
        !found.unwrap_or_else(|e| panic!("looking for `{css}`: {e}")).is_empty()
    }

    /// Runs `js` as the body of a function in the page and returns what it returns (so write
    /// `return …`); a returned promise is awaited. Panics on a script error.
    pub async fn eval(&self, js: &str) -> Value {
        self.client.execute(js).await.unwrap_or_else(|e| panic!("running {js:?}: {e}"))
    }

    /// Every URL the current page loaded: the document's, then each resource's (scripts, styles,
    /// images, fonts, fetches) in load order, without repeats, for asserting nothing came from another
    /// origin.
    pub async fn loaded_urls(&self) -> Vec<String> {
        let urls = self
            .eval(
                "return [document.URL].concat(\
                 performance.getEntriesByType('navigation').map(e => e.name),\
                 performance.getEntriesByType('resource').map(e => e.name));",
            )
            .await;
        let mut seen = Vec::new();
        for url in urls.as_array().expect("an array of URLs") {
            let url = url.as_str().expect("a URL").to_string();
            if !seen.contains(&url) {
                seen.push(url);
            }
        }
        seen
    }

    /// Saves a PNG screenshot of the viewport (390×844) to `target/screenshots/<name>.png` under the
    /// crate's folder and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("screenshots");
        std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("creating {}: {e}", folder.display()));
        let path = folder.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Ends the WebDriver session (chromedriver closes Chromium), then kills chromedriver.
    pub async fn close(self) {
        let _ = self.client.close().await;
        // Dropping `self` then kills chromedriver (and anything left of Chromium) and removes the profile.
    }

    /// The first element matching `css`, waiting for one up to 10 s.
    async fn wait_for_element(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(css).await {
                return element;
            }
            if Instant::now() > deadline {
                panic!(
                    "no element matched `{css}` within {WAIT:?} on {}; the page source:\n{}",
                    self.current_url().await,
                    self.source().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap_or_else(|e| format!("(unknown URL: {e})"))
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap_or_else(|e| format!("(no page source: {e})"))
    }
}

/// Writes a 640×480, 30 fps Y4M video (YUV4MPEG2, C420jpeg: full-range 4:2:0) of a few identical frames,
/// each a QR code of `text` (error correction M): black modules on white, centered, with at least the
/// standard 4-module quiet zone, as large as fits, at least 8 px per module (panics for a text too long
/// for that). For Chromium's `--use-file-for-fake-video-capture` (`BrowserOptions::fake_camera`), which
/// loops it.
pub fn qr_y4m(text: &str, path: &Path) {
    const W: usize = 640;
    const H: usize = 480;
    const FRAMES: usize = 3;
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap_or_else(|e| panic!("a QR code of {text:?}: {e}"));
    let modules = code.width();
    let colors = code.to_colors();
    // The code plus a 4-module quiet zone on each side fits the frame's height.
    let scale = H / (modules + 8);
    assert!(scale >= 8, "a QR code of {text:?} has {modules} modules a side: too many for 8 px each in {H} px");
    let side = modules * scale;
    let (left, top) = ((W - side) / 2, (H - side) / 2);
    let mut luma = vec![255u8; W * H];
    for y in 0..side {
        for x in 0..side {
            if colors[(y / scale) * modules + x / scale] == qrcode::Color::Dark {
                luma[(top + y) * W + left + x] = 0;
            }
        }
    }
    let chroma = vec![128u8; (W / 2) * (H / 2)];
    let mut video = format!("YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..FRAMES {
        video.extend_from_slice(b"FRAME\n");
        video.extend_from_slice(&luma);
        video.extend_from_slice(&chroma); // U
        video.extend_from_slice(&chroma); // V
    }
    std::fs::write(path, video).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
