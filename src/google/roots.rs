//! Google's root signing keys for callbacks (`TESSERA_GOOGLE_ROOT_KEYS`: a URL or a file), cached for an
//! hour; a stale copy is used when a refresh fails, and a refresh is forced (at most every five minutes)
//! when a callback's intermediate key verifies with none of them, as after Google rotates its keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::ecv2::{CallbackError, RootKeys};

const FRESH_FOR: Duration = Duration::from_secs(3600);
const FORCED_REFRESH_EVERY: Duration = Duration::from_secs(300);

pub struct RootKeyCache {
    source: String,
    http: reqwest::Client,
    cached: Mutex<Option<(Arc<RootKeys>, Instant)>>,
}

impl RootKeyCache {
    pub fn new(source: &str) -> RootKeyCache {
        RootKeyCache { source: source.to_string(), http: reqwest::Client::new(), cached: Mutex::new(None) }
    }

    /// The keys: cached when fresh (or when `force` asks too soon after the last fetch).
    pub async fn get(&self, force: bool) -> Result<Arc<RootKeys>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((keys, at)) = cached.as_ref() {
            let age = at.elapsed();
            if (!force && age < FRESH_FOR) || (force && age < FORCED_REFRESH_EVERY) {
                return Ok(keys.clone());
            }
        }
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cached = Some((keys.clone(), Instant::now()));
                Ok(keys)
            }
            Err(e) => match cached.as_ref() {
                Some((keys, _)) => {
                    tracing::warn!(source = %self.source, error = %e, "refreshing Google's root keys failed; using the copy we have");
                    Ok(keys.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self) -> Result<RootKeys, String> {
        let bytes = if self.source.starts_with("http://") || self.source.starts_with("https://") {
            let response = self
                .http
                .get(&self.source)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| format!("{} cannot be fetched: {}", self.source, e.without_url()))?;
            if !response.status().is_success() {
                return Err(format!("{} answered {}", self.source, response.status().as_u16()));
            }
            response.bytes().await.map_err(|e| format!("{}: {}", self.source, e.without_url()))?.to_vec()
        } else {
            tokio::fs::read(&self.source).await.map_err(|e| format!("{} cannot be read: {e}", self.source))?
        };
        RootKeys::parse(&bytes).map_err(|e: CallbackError| format!("{}: {e}", self.source))
    }
}
