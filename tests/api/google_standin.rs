//! A stand-in for Google Wallet's REST API (`/walletobjects/v1/loyaltyClass|loyaltyObject`) and Google's OAuth
//! token endpoint (`/token`, the service-account JWT-bearer grant): a real HTTP/1.1 server, plain http, on
//! 127.0.0.1. It grants access tokens only to RS256 assertions from the expected service account, stores classes
//! and objects in memory, records every request with the status it answered, and can be told to fail, revoke
//! tokens, or shorten their lifetime. Self-contained, so benches can include it too.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use serde_json::{Value, json};

/// The only scope Google Wallet has; assertions must ask for exactly this.
pub const WALLET_SCOPE: &str = "https://www.googleapis.com/auth/wallet_object.issuer";
pub const DEFAULT_EMAIL: &str = "tessera-test@tessera-test.iam.gserviceaccount.com";

/// A service-account key as Google issues it (JSON file) and its public half.
pub struct ServiceAccount {
    pub email: String,
    pub key_file: PathBuf,
    pub public_key: PKey<Public>,
    pub private_pem: String,
    pub private_key_id: String,
}

/// Generates an RSA-2048 key and writes `dir/service-account.json` in Google's format, for `DEFAULT_EMAIL`.
pub fn write_service_account(dir: &Path, token_uri: &str) -> ServiceAccount {
    write_service_account_as(dir, token_uri, DEFAULT_EMAIL)
}

/// As `write_service_account`, for another `client_email`.
pub fn write_service_account_as(dir: &Path, token_uri: &str, email: &str) -> ServiceAccount {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let private_pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let public_key = PKey::public_key_from_pem(&key.public_key_to_pem().unwrap()).unwrap();
    let private_key_id: String = random_bytes(20).iter().map(|b| format!("{b:02x}")).collect();
    let client_id: String = random_bytes(21).iter().map(|b| char::from(b'0' + b % 10)).collect();
    let file = json!({
        "type": "service_account",
        "project_id": "tessera-test",
        "private_key_id": private_key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!(
            "https://www.googleapis.com/robot/v1/metadata/x509/{}", email.replace('@', "%40")),
        "universe_domain": "googleapis.com",
    });
    let key_file = dir.join("service-account.json");
    std::fs::write(&key_file, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    ServiceAccount { email: email.to_string(), key_file, public_key, private_pem, private_key_id }
}

impl ServiceAccount {
    /// Signs `claims` as an RS256 JWT with this key: for tests that call `/token` themselves (or badly).
    pub fn assertion(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let key = PKey::private_key_from_pem(self.private_pem.as_bytes()).unwrap();
        let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
        signer.update(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap()))
    }

    /// The claims a correct client sends to `token_uri` now: one hour, the wallet scope.
    pub fn claims(&self, token_uri: &str) -> Value {
        let now = unix_now();
        json!({"iss": self.email, "scope": WALLET_SCOPE, "aud": token_uri, "iat": now, "exp": now + 3600})
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// As sent (still percent-encoded), without the query.
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    /// `Null` when the body is empty or not JSON (token requests are form-encoded: see `raw_body`).
    pub body: Value,
    pub raw_body: String,
    /// What the stand-in answered.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

impl Recorded {
    pub fn is_token_request(&self) -> bool {
        self.path == "/token"
    }
}

/// What never changes after start: verification needs no lock.
struct Config {
    email: String,
    public_key: PKey<Public>,
    token_uri: String,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    classes: HashMap<String, Value>,
    objects: HashMap<String, Value>,
    offer_classes: HashMap<String, Value>,
    offer_objects: HashMap<String, Value>,
    /// Notifications each object gave in the last 24 hours (notifying PATCHes and TEXT_AND_NOTIFY
    /// messages; Google allows three).
    notifications: HashMap<String, Vec<Instant>>,
    /// Live access tokens and when they expire; revoking clears it.
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    token_lifetime: u64,
    fail_next: VecDeque<u16>,
    fail_always: Option<u16>,
    /// What `GET /keys` (Google's root signing keys) answers: the document, or 503 while None.
    root_keys: Option<String>,
}

struct Shared {
    config: Config,
    state: Mutex<State>,
}

pub struct GoogleStandIn {
    /// The API base URL, `http://127.0.0.1:PORT`.
    pub base: String,
    /// `base` + `/token`, for the service account's `token_uri`.
    pub token_uri: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping the stand-in drops this sender, which stops the accept loop and closes every connection, so a
    /// restart test can bring a new stand-in up on the same address.
    _stop: tokio::sync::watch::Sender<()>,
}

impl GoogleStandIn {
    /// Starts on a free port; tokens are granted only to assertions from `email` that verify with `public_key`.
    pub async fn start(email: &str, public_key: PKey<Public>) -> GoogleStandIn {
        Self::start_on("127.0.0.1:0".parse().unwrap(), email, public_key).await
    }

    /// Starts on a given address: the restart tests bring Google back where the server expects it. Stored
    /// classes, objects and tokens start empty.
    pub async fn start_on(addr: SocketAddr, email: &str, public_key: PKey<Public>) -> GoogleStandIn {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let token_uri = format!("{base}/token");
        let config = Config { email: email.to_string(), public_key, token_uri: token_uri.clone() };
        let state = State { token_lifetime: 3600, ..State::default() };
        let shared = Arc::new(Shared { config, state: Mutex::new(state) });
        let (stop, stopped) = tokio::sync::watch::channel(());
        let server = shared.clone();
        tokio::spawn(async move {
            loop {
                let mut stop_accepting = stopped.clone();
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stop_accepting.changed() => return,
                };
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let shared = server.clone();
                let mut stop_serving = stopped.clone();
                // A task per connection, keep-alive on (hyper's default): benches send thousands of requests.
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(req, &shared).await) }
                    });
                    let connection =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = stop_serving.changed() => {}
                    }
                });
            }
        });
        GoogleStandIn { base, token_uri, addr, shared, _stop: stop }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    /// Every request, in arrival order, including token requests.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Every request but the token requests.
    pub fn rest_requests(&self) -> Vec<Recorded> {
        self.state().requests.iter().filter(|r| !r.is_token_request()).cloned().collect()
    }

    /// PATCH and PUT requests to `loyaltyObject/{object_id}`, whatever they were answered.
    pub fn patches_of(&self, object_id: &str) -> Vec<Recorded> {
        let state = self.state();
        let targets = |r: &&Recorded| {
            (r.method == "PATCH" || r.method == "PUT")
                && resource_of(&r.path) == Some(("loyaltyObject", object_id.to_string()))
        };
        state.requests.iter().filter(targets).cloned().collect()
    }

    /// Insert requests (POST loyaltyObject) whose body has id `object_id`, whatever they were answered.
    pub fn inserts_of(&self, object_id: &str) -> Vec<Recorded> {
        let state = self.state();
        let targets = |r: &&Recorded| {
            r.method == "POST" && r.path == "/walletobjects/v1/loyaltyObject" && r.body["id"] == object_id
        };
        state.requests.iter().filter(targets).cloned().collect()
    }

    /// The stored object, as the last insert, patch or update left it.
    pub fn object(&self, id: &str) -> Option<Value> {
        self.state().objects.get(id).cloned()
    }

    pub fn class(&self, id: &str) -> Option<Value> {
        self.state().classes.get(id).cloned()
    }

    pub fn offer_class(&self, id: &str) -> Option<Value> {
        self.state().offer_classes.get(id).cloned()
    }

    pub fn offer_object(&self, id: &str) -> Option<Value> {
        self.state().offer_objects.get(id).cloned()
    }

    pub fn offer_objects(&self) -> HashMap<String, Value> {
        self.state().offer_objects.clone()
    }

    /// Counts `n` notifications against an object's 24-hour budget, as if sent earlier today.
    pub fn spend_notifications(&self, object_id: &str, n: usize) {
        let now = Instant::now();
        self.state().notifications.entry(object_id.to_string()).or_default().extend(std::iter::repeat_n(now, n));
    }

    /// Every stored object, by id.
    pub fn objects(&self) -> HashMap<String, Value> {
        self.state().objects.clone()
    }

    /// Stores a class (by its `id`) as if it had been inserted earlier, without a request.
    pub fn seed_class(&self, class: Value) {
        let id = class["id"].as_str().expect("class needs an id").to_string();
        self.state().classes.insert(id, class);
    }

    pub fn seed_object(&self, object: Value) {
        let id = object["id"].as_str().expect("object needs an id").to_string();
        self.state().objects.insert(id, object);
    }

    pub fn tokens_issued(&self) -> usize {
        self.state().tokens_issued
    }

    /// Issues an access token without a token request, for tests that call the REST API themselves.
    pub fn issue_token(&self) -> String {
        issue_token(&mut self.state())
    }

    /// The next `n` REST requests (not token requests) answer `status` with Google's error JSON; calls queue up.
    pub fn fail_next(&self, status: u16, n: usize) {
        self.state().fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// Every REST request answers `status` until `clear_failures`.
    pub fn fail_always(&self, status: u16) {
        self.state().fail_always = Some(status);
    }

    pub fn clear_failures(&self) {
        let mut state = self.state();
        state.fail_next.clear();
        state.fail_always = None;
    }

    /// `GET /keys` answers this root keys document (`Some`), or 503 (`None`, the default).
    pub fn serve_root_keys(&self, document: Option<String>) {
        self.state().root_keys = document;
    }

    /// The root keys URL (`base` + `/keys`).
    pub fn root_keys_url(&self) -> String {
        format!("{}/keys", self.base)
    }

    /// How many times the root keys were asked for.
    pub fn root_key_fetches(&self) -> usize {
        self.state().requests.iter().filter(|r| r.path == "/keys").count()
    }

    /// Revokes every issued access token: REST requests with them get 401 until the client fetches a new one.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Tokens issued from now on have this `expires_in` (seconds; default 3600) and stop working after it.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.state().token_lifetime = secs;
    }

    /// Polls until `f(&requests)` is true or `deadline` passes; returns the requests either way. `f` runs under
    /// the lock, so a bench with many thousands of requests does not copy them all every round.
    pub async fn wait_until(&self, deadline: Duration, f: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let end = Instant::now() + deadline;
        loop {
            {
                let state = self.state();
                if f(&state.requests) || Instant::now() >= end {
                    return state.requests.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn answer(req: Request<hyper::body::Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (authorization, content_type) = (header("authorization"), header("content-type"));
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let raw = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let raw_body = String::from_utf8_lossy(&raw).into_owned();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);

    // The signature check is the slow part: done before taking the lock.
    let grant = (path == "/token").then(|| check_grant(&method, content_type.as_deref(), &raw_body, &shared.config));
    let mut state = shared.state.lock().unwrap();
    let (status, reply) = match grant {
        Some(Ok(())) => {
            let access_token = issue_token(&mut state);
            (200, json!({"access_token": access_token, "expires_in": state.token_lifetime, "token_type": "Bearer"}))
        }
        Some(Err(why)) => (400, json!({"error": "invalid_grant", "error_description": why})),
        None if path == "/keys" => match &state.root_keys {
            Some(document) => (200, serde_json::from_str(document).unwrap_or(Value::Null)),
            None => (503, json!({"error": {"code": 503, "message": "unavailable"}})),
        },
        None => rest(&mut state, &method, &path, authorization.as_deref(), &body),
    };
    state.requests.push(Recorded { method, path, query, authorization, body, raw_body, status, at });
    drop(state);
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(reply.to_string())))
        .unwrap()
}

fn issue_token(state: &mut State) -> String {
    let token = format!("ya29.{}", URL_SAFE_NO_PAD.encode(random_bytes(32)));
    let expires = Instant::now() + Duration::from_secs(state.token_lifetime);
    state.tokens.insert(token.clone(), expires);
    state.tokens_issued += 1;
    token
}

/// Checks a token request as Google does for the JWT-bearer grant; the error names the check that failed.
fn check_grant(method: &str, content_type: Option<&str>, body: &str, config: &Config) -> Result<(), String> {
    if method != "POST" {
        return Err(format!("token requests must be POST, not {method}"));
    }
    if !content_type.is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) {
        return Err(format!("content-type must be application/x-www-form-urlencoded, not {content_type:?}"));
    }
    let field = |name: &str| {
        body.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| form_decode(k) == name)
            .map(|(_, v)| form_decode(v))
    };
    let grant_type = field("grant_type");
    if grant_type.as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return Err(format!("grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer, not {grant_type:?}"));
    }
    let assertion = field("assertion").ok_or("no assertion")?;
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("assertion is not a JWT".into());
    };
    let decode_json = |p: &str| URL_SAFE_NO_PAD.decode(p).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let header_json = decode_json(header).ok_or("JWT header is not base64url JSON")?;
    if header_json["alg"] != "RS256" {
        return Err(format!("alg must be RS256, not {}", header_json["alg"]));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "signature is not base64url")?;
    let mut verifier = Verifier::new(MessageDigest::sha256(), &config.public_key).map_err(|e| e.to_string())?;
    verifier.update(format!("{header}.{claims}").as_bytes()).map_err(|e| e.to_string())?;
    if !verifier.verify(&signature).unwrap_or(false) {
        return Err("Invalid JWT Signature.".into());
    }
    let claims = decode_json(claims).ok_or("JWT claims are not base64url JSON")?;
    let expect = |name: &str, want: &str| match claims[name].as_str() {
        Some(got) if got == want => Ok(()),
        _ => Err(format!("{name} must be {want}, not {}", claims[name])),
    };
    expect("iss", &config.email)?;
    expect("scope", WALLET_SCOPE)?;
    expect("aud", &config.token_uri)?;
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err("iat and exp must be integers".into());
    };
    let now = unix_now();
    if (iat - now).abs() > 300 {
        return Err(format!("iat {iat} is more than 300 s from now ({now})"));
    }
    if exp <= now {
        return Err(format!("exp {exp} is not after now ({now})"));
    }
    if exp - iat > 3600 {
        return Err(format!("Token must be a short-lived token (60 minutes): exp - iat = {}", exp - iat));
    }
    Ok(())
}

/// A REST request: injected failures first (they change nothing), then auth, then the resource.
fn rest(state: &mut State, method: &str, path: &str, authorization: Option<&str>, body: &Value) -> (u16, Value) {
    if let Some(status) = state.fail_always.or_else(|| state.fail_next.pop_front()) {
        return google_error(status, "injected failure");
    }
    let token = authorization.and_then(|a| a.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| &a[7..]));
    let now = Instant::now();
    if token.and_then(|t| state.tokens.get(t)).is_none_or(|expires| now >= *expires) {
        return google_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.");
    }
    let Some(rest) = path.strip_prefix("/walletobjects/v1/") else {
        return google_error(404, "Not Found");
    };
    let mut segments = rest.split('/');
    let kind = segments.next().unwrap_or_default();
    if !["loyaltyClass", "loyaltyObject", "offerClass", "offerObject"].contains(&kind) {
        return google_error(404, "Not Found");
    }
    if let Err(e) = check_required(kind, method, body) {
        return e;
    }
    if let Err(e) = check_links(state, kind, body) {
        return e;
    }
    let notify_kind = kind == "loyaltyObject";
    let store = match kind {
        "loyaltyClass" => &mut state.classes,
        "loyaltyObject" => &mut state.objects,
        "offerClass" => &mut state.offer_classes,
        _ => &mut state.offer_objects,
    };
    let id = segments.next().filter(|s| !s.is_empty()).map(percent_decode);
    let action = segments.next();
    if segments.next().is_some() {
        return google_error(404, "Not Found");
    }
    let missing = |id: &str| google_error(404, &format!("Resource not found: {id}"));
    match (method, id, action) {
        ("POST", None, None) => {
            let Some(id) = body["id"].as_str() else {
                return google_error(400, "Resource id must be set.");
            };
            if !valid_id(id) {
                return google_error(400, &format!("Invalid resource ID: {id}"));
            }
            if store.contains_key(id) {
                return google_error(409, &format!("Resource already exists: {id}"));
            }
            store.insert(id.to_string(), body.clone());
            (200, body.clone())
        }
        ("GET", Some(id), None) => store.get(&id).map_or_else(|| missing(&id), |r| (200, r.clone())),
        ("PATCH", Some(id), None) => {
            let Some(stored) = store.get_mut(&id) else {
                return missing(&id);
            };
            if let Err(e) = check_body(body, &id) {
                return e;
            }
            for (field, value) in body.as_object().unwrap() {
                stored[field] = value.clone();
            }
            let answer = stored.clone();
            if notify_kind && body["notifyPreference"] == "NOTIFY_ON_UPDATE" {
                spend_notification(&mut state.notifications, &id);
            }
            (200, answer)
        }
        ("PUT", Some(id), None) => {
            if !store.contains_key(&id) {
                return missing(&id);
            }
            if let Err(e) = check_body(body, &id) {
                return e;
            }
            let mut replacement = body.clone();
            replacement["id"] = json!(id);
            store.insert(id, replacement.clone());
            (200, replacement)
        }
        // addMessage: appends `message` to `messages`, answers `{"resource": ...}` as Google does.
        ("POST", Some(id), Some("addMessage")) => {
            if !store.contains_key(&id) {
                return missing(&id);
            }
            if !body["message"].is_object() {
                return google_error(400, "message must be set.");
            }
            let notifying = body["message"]["messageType"] == "TEXT_AND_NOTIFY";
            if notify_kind && notifying && !spend_notification(&mut state.notifications, &id) {
                return google_error(
                    403,
                    &format!(
                        "Quota exceeded for issuer when adding TEXT_AND_NOTIFY message to object {id} (quotaExceeded)"
                    ),
                );
            }
            let Some(stored) = (match kind {
                "loyaltyClass" => &mut state.classes,
                "loyaltyObject" => &mut state.objects,
                "offerClass" => &mut state.offer_classes,
                _ => &mut state.offer_objects,
            })
            .get_mut(&id) else {
                return missing(&id);
            };
            match stored["messages"].as_array_mut() {
                Some(messages) => messages.push(body["message"].clone()),
                None => stored["messages"] = json!([body["message"]]),
            }
            (200, json!({"resource": stored}))
        }
        _ => google_error(404, "Not Found"),
    }
}

/// Counts a notification against the object's 24-hour budget; false when it is spent.
fn spend_notification(notifications: &mut HashMap<String, Vec<Instant>>, id: &str) -> bool {
    let times = notifications.entry(id.to_string()).or_default();
    times.retain(|t| t.elapsed() < Duration::from_secs(86_400));
    if times.len() >= 3 {
        return false;
    }
    times.push(Instant::now());
    true
}

/// The fields the Wallet Objects discovery document marks required, on inserts.
fn check_required(kind: &str, method: &str, body: &Value) -> Result<(), (u16, Value)> {
    let required: &[&str] = match kind {
        "offerClass" => &["id", "issuerName", "provider", "title", "redemptionChannel", "reviewStatus"],
        "offerObject" => &["id", "classId", "state"],
        _ => &[],
    };
    if method != "POST" || body.get("message").is_some() {
        return Ok(());
    }
    match required.iter().find(|f| body.get(**f).is_none_or(Value::is_null)) {
        Some(missing) => Err(google_error(400, &format!("{kind}.{missing} is required."))),
        None => Ok(()),
    }
}

/// `linkedObjectIds` may name only objects of this issuer that exist (at most 50).
fn check_links(state: &State, kind: &str, body: &Value) -> Result<(), (u16, Value)> {
    let Some(ids) = body.get("linkedObjectIds") else { return Ok(()) };
    let ids = ids.as_array().ok_or_else(|| google_error(400, "linkedObjectIds must be a list."))?;
    if kind != "loyaltyObject" || ids.len() > 50 {
        return Err(google_error(400, "linkedObjectIds: at most 50, on an object."));
    }
    match ids.iter().find(|id| id.as_str().is_none_or(|id| !state.offer_objects.contains_key(id))) {
        Some(id) => Err(google_error(400, &format!("Linked object {id} does not exist."))),
        None => Ok(()),
    }
}

/// A patch or update body must be an object, and must not name another resource.
fn check_body(body: &Value, id: &str) -> Result<(), (u16, Value)> {
    let Some(fields) = body.as_object() else {
        return Err(google_error(400, "Request body must be a JSON object."));
    };
    match fields.get("id") {
        Some(given) if given.as_str() != Some(id) => {
            Err(google_error(400, &format!("Body id {given} does not match {id}.")))
        }
        _ => Ok(()),
    }
}

/// Google's error shape: `{"error":{"code":404,"message":"...","status":"NOT_FOUND"}}`.
fn google_error(code: u16, message: &str) -> (u16, Value) {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    (code, json!({"error": {"code": code, "message": message, "status": status}}))
}

/// The kind and decoded id that a REST path names, e.g. `("loyaltyObject", "3388.member-1")`.
fn resource_of(path: &str) -> Option<(&str, String)> {
    let rest = path.strip_prefix("/walletobjects/v1/")?;
    let (kind, id) = rest.split_once('/')?;
    (!id.is_empty() && !id.contains('/')).then(|| (kind, percent_decode(id)))
}

/// `^[0-9]+\.[A-Za-z0-9._-]+$`: a numeric issuer id, a dot, and a suffix.
fn valid_id(id: &str) -> bool {
    let Some((issuer, suffix)) = id.split_once('.') else {
        return false;
    };
    let suffix_char = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    !issuer.is_empty()
        && issuer.bytes().all(|b| b.is_ascii_digit())
        && !suffix.is_empty()
        && suffix.bytes().all(suffix_char)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        match (bytes[i], hex_pair) {
            (b'%', Some(h)) => {
                out.push(u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap());
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    bytes
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}
