//! The `.pkpass` response shared by the member's download link and the web service's latest-pass
//! endpoint: 304 when the device has it, else signed bytes from the per-instance cache or a fresh build.

use std::sync::atomic::Ordering;
use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::{self, Bytes};

use std::sync::Arc;

use super::AppState;
use crate::apple::{CouponData, PassData};
use crate::error::ApiError;
use crate::store::{CouponRecord, MemberRecord};

/// A pass the web service serves: a member's loyalty card, or one of its coupons (serials `cp-…`).
#[derive(Debug, Clone)]
pub enum ServedPass {
    Card(Arc<MemberRecord>),
    Coupon(Arc<CouponRecord>),
}

/// Coupon passes' serials start with this (card serials are bare hex), so a lookup knows its table.
pub const COUPON_SERIAL_PREFIX: &str = "cp-";

impl ServedPass {
    pub fn serial_number(&self) -> &str {
        match self {
            ServedPass::Card(m) => &m.serial_number,
            ServedPass::Coupon(c) => &c.serial_number,
        }
    }

    pub fn pass_type_id(&self) -> &str {
        match self {
            ServedPass::Card(m) => &m.pass_type_id,
            ServedPass::Coupon(c) => &c.pass_type_id,
        }
    }

    pub fn authentication_token(&self) -> &str {
        match self {
            ServedPass::Card(m) => &m.authentication_token,
            ServedPass::Coupon(c) => &c.authentication_token,
        }
    }

    fn update_tag(&self) -> i64 {
        match self {
            ServedPass::Card(m) => m.update_tag,
            ServedPass::Coupon(c) => c.update_tag,
        }
    }

    fn modified_at(&self) -> i64 {
        match self {
            ServedPass::Card(m) => m.modified_at,
            ServedPass::Coupon(c) => c.modified_at,
        }
    }

    /// The download's file name.
    fn file_name(&self) -> String {
        match self {
            ServedPass::Card(m) => m.member_id.clone(),
            ServedPass::Coupon(c) => format!("{}-{}", c.offer_id, c.member_id),
        }
    }
}

/// Builds the signed pass of a stored coupon.
pub fn build_coupon_pass(state: &AppState, coupon: &CouponRecord) -> Result<Vec<u8>, ApiError> {
    let started = Instant::now();
    let coupon_state = coupon.state_at(crate::time_fmt::now_unix());
    let data = CouponData {
        serial_number: &coupon.serial_number,
        authentication_token: &coupon.authentication_token,
        voided: coupon.stored_state.voids_pass(),
        coupon_id: &coupon.coupon_id,
        code: &coupon.code,
        state: coupon_state.as_str(),
        valid_from: coupon.valid_from,
        valid_until: coupon.valid_until,
        offer_id: &coupon.offer_id,
        template: &coupon.template,
        member_id: &coupon.member_id,
        member_name: coupon.member_name.as_deref(),
        tier: &coupon.member_tier,
        locale: coupon.member_locale.as_deref(),
        modified_at: coupon.modified_at,
    };
    let built = state.passes.build_coupon(&data);
    observe_build(state, started, built, || format!("building coupon {}", coupon.coupon_id))
}

fn observe_build(
    state: &AppState,
    started: Instant,
    built: Result<Vec<u8>, crate::apple::pass::PassError>,
    what: impl FnOnce() -> String,
) -> Result<Vec<u8>, ApiError> {
    match built {
        Ok(bytes) => {
            state.metrics.passes_built.fetch_add(1, Ordering::Relaxed);
            state.metrics.pass_build_duration.observe(started.elapsed().as_secs_f64());
            Ok(bytes)
        }
        Err(e) => {
            state.metrics.pass_build_failures.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::Internal(anyhow::Error::new(e).context(what())))
        }
    }
}

/// Signed passes by (serial, update tag), bounded by bytes. Any change to a pass moves its update tag
/// (on whichever instance made it), so an entry can never be served for a changed pass; a second device,
/// a retry or a page reload at the same tag costs no signature. Concurrent misses for one key wait for
/// the first build instead of signing again.
pub struct SignedPassCache {
    cache: Option<quick_cache::sync::Cache<(String, i64), Bytes, PassWeight>>,
    /// Signatures in progress at once: one per core. Signing is pure CPU, so more at a time only adds
    /// blocking threads (and their allocator arenas), not throughput.
    signing: tokio::sync::Semaphore,
}

#[derive(Clone)]
struct PassWeight;

impl quick_cache::Weighter<(String, i64), Bytes> for PassWeight {
    fn weight(&self, key: &(String, i64), value: &Bytes) -> u64 {
        // The bytes, the key and the cache's own bookkeeping per entry.
        (value.len() + key.0.len() + 64) as u64
    }
}

/// A pass is about 50 KB; the estimate only sizes the cache's tables.
const TYPICAL_PASS_BYTES: u64 = 48 * 1024;

impl SignedPassCache {
    /// A cache of at most `megabytes` of signed passes; 0 turns it off.
    pub fn new(megabytes: u64) -> SignedPassCache {
        let budget = megabytes * 1024 * 1024;
        let cache = (budget > 0).then(|| {
            let items = (budget / TYPICAL_PASS_BYTES).max(16) as usize;
            quick_cache::sync::Cache::with_weighter(items, budget, PassWeight)
        });
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SignedPassCache { cache, signing: tokio::sync::Semaphore::new(cores) }
    }

    /// Bytes held now.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }
}

/// Builds the signed pass of a stored member.
pub fn build_pass(state: &AppState, record: &MemberRecord) -> Result<Vec<u8>, ApiError> {
    let started = Instant::now();
    let attributes: serde_json::Value =
        serde_json::from_str(&record.attributes).unwrap_or_else(|_| serde_json::json!({}));
    let data = PassData {
        serial_number: &record.serial_number,
        authentication_token: &record.authentication_token,
        voided: record.voided,
        member_id: &record.member_id,
        name: record.name.as_deref(),
        tier: &record.tier,
        points: record.points,
        locale: record.locale.as_deref(),
        attributes: &attributes,
        latest_offer: record.latest_offer.as_deref(),
        modified_at: record.modified_at,
    };
    observe_build(state, started, state.passes.build(&data), || format!("building the pass of {}", record.member_id))
}

/// Builds on the blocking pool: the signature is a fraction of a millisecond of CPU, which must not hold
/// up the async workers (they also answer the cheap 304s).
async fn build_off_thread(state: &AppState, pass: &ServedPass) -> Result<Bytes, ApiError> {
    let _permit = state
        .signed
        .signing
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("the signing queue is closed")))?;
    let (task_state, task_pass) = (state.clone(), pass.clone());
    let bytes = web::block(move || match &task_pass {
        ServedPass::Card(record) => build_pass(&task_state, record),
        ServedPass::Coupon(coupon) => build_coupon_pass(&task_state, coupon),
    })
    .await??;
    Ok(Bytes::from(bytes))
}

/// The signed bytes of a pass at its current update tag.
pub async fn signed_pass(state: &AppState, pass: &ServedPass) -> Result<Bytes, ApiError> {
    let Some(cache) = &state.signed.cache else { return build_off_thread(state, pass).await };
    let key = (pass.serial_number().to_string(), pass.update_tag());
    match cache.get_value_or_guard_async(&key).await {
        Ok(bytes) => {
            state.metrics.pass_cache_hits.fetch_add(1, Ordering::Relaxed);
            Ok(bytes)
        }
        Err(guard) => {
            let bytes = build_off_thread(state, pass).await?;
            let _ = guard.insert(bytes.clone());
            Ok(bytes)
        }
    }
}

/// True when the request's If-Modified-Since is at or after `modified_at` (HTTP dates have one-second
/// resolution; an unreadable header counts as absent).
pub fn not_modified_since(headers: &HeaderMap, modified_at: i64) -> bool {
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::time_fmt::parse_http_date)
        .is_some_and(|since| since >= modified_at)
}

/// The .pkpass response: content type, filename, Last-Modified; 304 when the client has it already.
pub async fn pkpass_response(
    state: &AppState,
    headers: &HeaderMap,
    pass: &ServedPass,
) -> Result<HttpResponse, ApiError> {
    let last_modified = HeaderValue::from_str(&crate::time_fmt::http_date(pass.modified_at()))
        .map_err(|e| ApiError::Internal(e.into()))?;
    if not_modified_since(headers, pass.modified_at()) {
        return Ok(HttpResponse::build(StatusCode::NOT_MODIFIED)
            .insert_header((header::LAST_MODIFIED, last_modified))
            .finish());
    }
    let bytes = signed_pass(state, pass).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}.pkpass\"", pass.file_name()))
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.pkpass")))
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((header::LAST_MODIFIED, last_modified))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_modified_since_is_compared_at_second_resolution() {
        let mut headers = HeaderMap::new();
        assert!(!not_modified_since(&headers, 100));
        headers.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_str(&crate::time_fmt::http_date(100)).unwrap());
        assert!(not_modified_since(&headers, 100));
        assert!(!not_modified_since(&headers, 101));
        headers.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_static("garbage"));
        assert!(!not_modified_since(&headers, 100));
    }

    #[test]
    fn the_cache_holds_its_byte_budget() {
        let cache = SignedPassCache::new(1);
        let inner = cache.cache.as_ref().unwrap();
        for tag in 0..200 {
            inner.insert(("serial".to_string(), tag), Bytes::from(vec![0u8; 48 * 1024]));
        }
        assert!(cache.weight() <= 1024 * 1024, "{} bytes held", cache.weight());
        assert!(inner.len() >= 10, "it keeps what fits: {}", inner.len());
        assert!(SignedPassCache::new(0).cache.is_none(), "0 turns it off");
    }
}
